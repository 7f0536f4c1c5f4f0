#include "tests/unit/harness.h"
#include "server/observe/ratelimit.h"

static void
run_tests(void)
{
	struct ratelimit *rl = ratelimit_new(1000, 3);
	char sum[512];
	int has = 0, logged = 0, i;

	for (i = 0; i < 100; i++)
		logged += ratelimit_hit(rl, i % 2 ? "unauthorized" : "not_allowed", "127.0.0.2", 10000 + i,
		    sum, sizeof(sum), &has) ? 1 : 0;
	CHECK(logged == 3);
	CHECK(ratelimit_flush(rl, 10500, sum, sizeof(sum)) == 0);   /* interval not over */
	CHECK(ratelimit_flush(rl, 11001, sum, sizeof(sum)) == 1);
	CHECK(strstr(sum, "97 suppressed in 1000 ms: ") != NULL);
	CHECK(strstr(sum, "unauthorized 127.0.0.2") != NULL && strstr(sum, "not_allowed 127.0.0.2") != NULL);
	CHECK(ratelimit_flush(rl, 13000, sum, sizeof(sum)) == 0);   /* nothing suppressed since */
	/* Many addresses: bounded table, the rest counted as other. */
	for (i = 0; i < 50; i++) {
		char addr[32];
		(void)snprintf(addr, sizeof(addr), "10.0.0.%d", i);
		(void)ratelimit_hit(rl, "bad_request", addr, 20000, sum, sizeof(sum), &has);
	}
	CHECK(ratelimit_hit(rl, "bad_request", "x", 21001, sum, sizeof(sum), &has) == 1);
	CHECK(has == 1 && strstr(sum, "47 suppressed") != NULL && strstr(sum, "other 39") != NULL);
	ratelimit_free(rl);
}

TEST_MAIN("ratelimit")
