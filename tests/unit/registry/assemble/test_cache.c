/* Unit tests of the bounded digest cache: hits, replacement, eviction order, probe chains. */
#include "tests/unit/harness.h"
#include "registry/assemble/cache.h"
#include "server/base/common.h"

TEST_MAIN("cache")
static void
run_tests(void)
{
	struct cache *c = cache_new(sizeof(int), 8);
	char key[32];
	int v, i, hits;

	CHECK(cache_get(c, "a", &v) == 0);
	v = 1;
	cache_put(c, "a", &v);
	v = 0;
	CHECK(cache_get(c, "a", &v) == 1 && v == 1);
	v = 2;
	cache_put(c, "a", &v);               /* replace, no new entry */
	CHECK(cache_count(c) == 1);
	CHECK(cache_get(c, "a", &v) == 1 && v == 2);
	for (i = 0; i < 100; i++) {          /* churn far past the bound */
		(void)am_fmt(key, sizeof(key), "k%d", i);
		cache_put(c, key, &i);
		CHECK(cache_count(c) <= 8);
		CHECK(cache_get(c, key, &v) == 1 && v == i);
	}
	hits = 0;
	for (i = 0; i < 100; i++) {
		(void)am_fmt(key, sizeof(key), "k%d", i);
		if (cache_get(c, key, &v)) {
			hits++;
			CHECK(v == i && i >= 92);    /* only the newest 8 remain */
		}
	}
	CHECK(hits == 8);
	CHECK(cache_get(NULL, "x", &v) == 0);
	cache_put(NULL, "x", &v);
	CHECK(cache_get(c, "", &v) == 0);
	cache_free(c);
	cache_free(NULL);
}
