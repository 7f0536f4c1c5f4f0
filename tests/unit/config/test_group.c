/* Group identity: the rule by name, one equality, one hash, one name. */
#include "tests/unit/harness.h"
#include "config/group.h"
#include "server/base/common.h"

static struct group
grp(const char *rule, const char *version)
{
	struct group g;

	memset(&g, 0, sizeof(g));
	(void)am_fmt(g.host, sizeof(g.host), "harbor.example.com");
	(void)am_fmt(g.rule_name, sizeof(g.rule_name), "%s", rule);
	(void)am_fmt(g.repo, sizeof(g.repo), "library/app");
	(void)am_fmt(g.version, sizeof(g.version), "%s", version);
	return g;
}

static void
test_identity(void)
{
	struct group a = grp("per-arch", "1.0"), b = grp("per-arch", "1.0");
	struct group c = grp("solo", "1.0"), d = grp("per-arch", "1.1");
	char name[GROUP_NAME_MAX];

	CHECK(group_equal(&a, &b) && group_hash(&a) == group_hash(&b));
	CHECK(!group_equal(&a, &c));           /* another rule: another group */
	CHECK(!group_equal(&a, &d));
	CHECK(group_hash(&a) != group_hash(&c));
	/* The separator keeps field boundaries: "ab"+"c" is not "a"+"bc". */
	a = grp("ab", "c");
	b = grp("a", "bc");
	(void)am_fmt(a.repo, sizeof(a.repo), "x");
	(void)am_fmt(b.repo, sizeof(b.repo), "x");
	CHECK(!group_equal(&a, &b));
	CHECK_STR(group_name(&d, name, sizeof(name)), "harbor.example.com/library/app:1.1");
}

TEST_MAIN("group")
static void
run_tests(void)
{
	test_identity();
}
