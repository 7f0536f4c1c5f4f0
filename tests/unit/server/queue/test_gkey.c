/* Packed groups: the four names round-trip, compare exactly, and take only their bytes. */
#include <string.h>

#include "tests/unit/harness.h"
#include "server/queue/gkey.h"
#include "server/base/common.h"

static void
make(struct group *g, const char *host, const char *rule, const char *repo, const char *version)
{
	memset(g, 0, sizeof(*g));
	(void)am_fmt(g->host, sizeof(g->host), "%s", host);
	(void)am_fmt(g->rule_name, sizeof(g->rule_name), "%s", rule);
	(void)am_fmt(g->repo, sizeof(g->repo), "%s", repo);
	(void)am_fmt(g->version, sizeof(g->version), "%s", version);
}

TEST_MAIN("gkey")
static void
run_tests(void)
{
	struct group g, back, other;
	char key[GROUP_NAME_MAX + 160];
	char longrepo[NAME_MAX_REPO];
	size_t n;

	make(&g, "harbor.example.com", "multiarch", "library/app", "1.2.3");
	n = gkey_put(key, &g);
	CHECK(n == gkey_size(&g));
	CHECK(n == strlen("harbor.example.com") + strlen("multiarch") + strlen("library/app") + 5 + 4);
	CHECK(gkey_is(key, &g));
	CHECK(gkey_get(key, &back) == n);
	CHECK(group_equal(&g, &back));

	/* Any field differing, or moved across a field boundary, is another group. */
	make(&other, "harbor.example.com", "multiarch", "library/app", "1.2.4");
	CHECK(!gkey_is(key, &other));
	make(&other, "harbor.example.com", "multiarc", "hlibrary/app", "1.2.3");
	CHECK(!gkey_is(key, &other));
	make(&other, "HARBOR.example.com", "multiarch", "library/app", "1.2.3");
	CHECK(!gkey_is(key, &other));
	make(&other, "harbor.example.com", "multiarch", "library/app", "1.2.3x");
	CHECK(!gkey_is(key, &other));

	/* The longest names still fit a struct group when read back. */
	memset(longrepo, 'a', sizeof(longrepo) - 1);
	longrepo[sizeof(longrepo) - 1] = '\0';
	make(&g, "h", "r", longrepo, "v");
	n = gkey_put(key, &g);
	CHECK(gkey_get(key, &back) == n);
	CHECK_STR(back.repo, longrepo);
	CHECK(gkey_is(key, &back));
}
