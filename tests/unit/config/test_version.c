/*
 * Unit tests: the order of a rule's versions (config/version.c), which
 * floating extra tags follow: version_regex groups numerically, semantic
 * versions by precedence, and no order under version_order = "push".
 */
#include "tests/unit/harness.h"
#include "config/version.h"

/* A rule with version_regex (NULL: none), extra tags and version_order. */
static void
make_rule(struct rule *r, const char *regex, const char *const *extra, size_t n_extra, int order)
{
	char err[256];
	size_t i;

	memset(r, 0, sizeof(*r));
	CHECK(tmpl_compile("{repo}:{version}-{arch}", 1, &r->source, err, sizeof(err)) == AM_OK);
	CHECK(tmpl_compile("{repo}:{version}", 0, &r->target, err, sizeof(err)) == AM_OK);
	if (regex != NULL)
		(void)am_fmt(r->version_regex, sizeof(r->version_regex), "%s", regex);
	for (i = 0; i < n_extra; i++)
		(void)am_fmt(r->extra_tags[i], sizeof(r->extra_tags[i]), "%s", extra[i]);
	r->n_extra_tags = n_extra;
	r->version_order = order;
	if (rule_finish(r, err, sizeof(err)) != AM_OK) {
		CHECK(!"rule_finish");
		fprintf(stderr, "  %s\n", err);
	}
}

/* cmp of a and b under r; 99 when they cannot be ordered. */
static int
order(const struct rule *r, const char *a, const char *b)
{
	int c;

	return version_cmp(r, a, b, &c) == 0 ? c : 99;
}

static int
semver(const char *a, const char *b)
{
	int c;

	return version_semver_cmp(a, b, &c) == 0 ? c : 99;
}

static void
test_parse(void)
{
	int o = -1;

	CHECK(version_order_parse("auto", &o) == 0 && o == RULE_ORDER_AUTO);
	CHECK(version_order_parse("semver", &o) == 0 && o == RULE_ORDER_SEMVER);
	CHECK(version_order_parse("push", &o) == 0 && o == RULE_ORDER_PUSH);
	CHECK(version_order_parse("numeric", &o) == -1);
	CHECK(version_order_parse("", &o) == -1);
}

static void
test_semver(void)
{
	/* Numbers as numbers, not text: the 3.10.0 above 3.9.1. */
	CHECK(semver("3.10.0", "3.9.1") == 1);
	CHECK(semver("3.9.1", "3.10.0") == -1);
	CHECK(semver("3.8.4", "3.8.5") == -1);
	CHECK(semver("3.8.5", "3.8.5") == 0);
	CHECK(semver("10.0.0", "9.99.99") == 1);
	CHECK(semver("1.0.0", "v1.0.0") == 0);
	CHECK(semver("123456789012345678901234567890.0.0", "123456789012345678901234567889.0.0") == 1);
	/* A pre-release is below its release, and pre-releases by identifiers (semver.org 11). */
	CHECK(semver("1.0.0-rc.1", "1.0.0") == -1);
	CHECK(semver("1.0.0", "1.0.0-rc.1") == 1);
	CHECK(semver("1.0.0-rc.1", "0.9.9") == 1);
	CHECK(semver("1.0.0-alpha", "1.0.0-alpha.1") == -1);
	CHECK(semver("1.0.0-alpha.1", "1.0.0-alpha.beta") == -1);
	CHECK(semver("1.0.0-alpha.beta", "1.0.0-beta") == -1);
	CHECK(semver("1.0.0-beta", "1.0.0-beta.2") == -1);
	CHECK(semver("1.0.0-beta.2", "1.0.0-beta.11") == -1);
	CHECK(semver("1.0.0-beta.11", "1.0.0-rc.1") == -1);
	CHECK(semver("1.0.0-rc.1", "1.0.0-rc.1") == 0);
	/* Not semantic versions: no order. */
	CHECK(semver("3.8", "3.8.0") == 99);
	CHECK(semver("latest", "1.0.0") == 99);
	CHECK(semver("1.0.0", "01.0.0") == 99);
	CHECK(semver("1.0.0-01", "1.0.0") == 99);
	CHECK(semver("1.0.0-", "1.0.0") == 99);
	CHECK(semver("1.0.0-a..b", "1.0.0") == 99);
	CHECK(semver("1.0.0_b", "1.0.0") == 99);
	CHECK(semver("1.0.0.1", "1.0.0") == 99);
	CHECK(semver("", "1.0.0") == 99);
}

static void
test_groups(void)
{
	static const char *const extra[] = { "latest", "{1}.{2}", "{version}-all" };
	struct rule r;

	make_rule(&r, "([0-9]+)\\.([0-9]+)\\.([0-9]+)", extra, 3, RULE_ORDER_AUTO);
	CHECK(version_by(&r) == VERSION_BY_GROUPS);
	CHECK(order(&r, "3.10.0", "3.9.1") == 1);
	CHECK(order(&r, "3.9.1", "3.9.0") == 1);
	CHECK(order(&r, "3.7.1", "3.9.0") == -1);
	CHECK(order(&r, "3.8.4", "3.8.4") == 0);
	CHECK(order(&r, "03.8.4", "3.8.4") == 0);
	CHECK(order(&r, "3.8", "3.8.4") == 99);      /* refused by version_regex */
	CHECK(version_orderable(&r, "3.8.4"));
	CHECK(!version_orderable(&r, "latest"));
	CHECK(version_tag_floats(&r, 0));
	CHECK(version_tag_floats(&r, 1));
	CHECK(!version_tag_floats(&r, 2));
	rule_clear(&r);

	/* Groups in order: the build number counts only between equal releases; an absent group is lowest. */
	make_rule(&r, "([0-9]+)\\.([0-9]+)(-b([0-9]+))?", extra, 1, RULE_ORDER_AUTO);
	CHECK(order(&r, "2.1-b3", "2.1-b12") == -1);
	CHECK(order(&r, "2.1", "2.1-b1") == -1);
	CHECK(order(&r, "2.2", "2.1-b99") == 1);
	rule_clear(&r);

	/* Text groups by their bytes, digits in them as numbers, a number below text. */
	make_rule(&r, "([0-9]+)-([a-z0-9]+)", extra, 1, RULE_ORDER_AUTO);
	CHECK(order(&r, "1-bookworm", "1-bullseye") == -1);
	CHECK(order(&r, "1-12", "1-bookworm") == -1);
	CHECK(order(&r, "1-rc9", "1-rc10") == -1);
	CHECK(order(&r, "1-rc", "1-rc1") == -1);
	CHECK(order(&r, "2-a", "1-b") == 1);
	rule_clear(&r);

	/* "semver" wins over the groups; "push" has no order at all. */
	make_rule(&r, "([0-9]+)\\.([0-9]+)\\.([0-9]+)(-rc[0-9]+)?", extra, 1, RULE_ORDER_SEMVER);
	CHECK(version_by(&r) == VERSION_BY_SEMVER);
	CHECK(order(&r, "1.0.0-rc1", "1.0.0") == -1);
	rule_clear(&r);
	make_rule(&r, "([0-9]+)\\.([0-9]+)\\.([0-9]+)", extra, 1, RULE_ORDER_PUSH);
	CHECK(version_by(&r) == VERSION_BY_PUSH);
	CHECK(order(&r, "3.10.0", "3.9.1") == 99);
	CHECK(!version_orderable(&r, "3.10.0"));
	rule_clear(&r);

	/* A regex without groups has nothing to compare: semantic versions. */
	make_rule(&r, "[0-9.]+", extra, 1, RULE_ORDER_AUTO);
	CHECK(version_by(&r) == VERSION_BY_SEMVER);
	rule_clear(&r);
}

static void
test_unsaid(void)
{
	static const char *const latest[] = { "latest" };
	static const char *const pinned[] = { "{version}-all" };
	struct rule r;
	char buf[512];

	make_rule(&r, NULL, latest, 1, RULE_ORDER_AUTO);
	CHECK(version_order_unsaid(&r, buf, sizeof(buf)) == 1);
	CHECK(strstr(buf, "extra tag \"latest\"") != NULL);
	CHECK(strstr(buf, "version_order = \"push\"") != NULL);
	rule_clear(&r);
	make_rule(&r, NULL, latest, 1, RULE_ORDER_SEMVER);
	CHECK(version_order_unsaid(&r, buf, sizeof(buf)) == 0);
	rule_clear(&r);
	make_rule(&r, NULL, latest, 1, RULE_ORDER_PUSH);
	CHECK(version_order_unsaid(&r, buf, sizeof(buf)) == 0);
	rule_clear(&r);
	make_rule(&r, "([0-9]+)\\.([0-9]+)", latest, 1, RULE_ORDER_AUTO);
	CHECK(version_order_unsaid(&r, buf, sizeof(buf)) == 0);
	rule_clear(&r);
	make_rule(&r, NULL, pinned, 1, RULE_ORDER_AUTO);
	CHECK(version_order_unsaid(&r, buf, sizeof(buf)) == 0);
	rule_clear(&r);
}

static void
test_target_version(void)
{
	static const char *const extra[] = { "latest" };
	struct rule r;
	struct arch_token archs[2];
	char buf[128];
	char *globs[] = { "library/*" };

	make_rule(&r, NULL, extra, 1, RULE_ORDER_AUTO);
	memset(archs, 0, sizeof(archs));
	(void)am_fmt(archs[0].name, sizeof(archs[0].name), "amd64");
	(void)am_fmt(archs[1].name, sizeof(archs[1].name), "arm64");
	CHECK(arch_builtin("amd64", &archs[0].platform) && arch_builtin("arm64", &archs[1].platform));
	r.archs = archs;
	r.n_archs = 2;
	r.repositories = globs;
	r.n_repositories = 1;
	CHECK(rule_target_version(&r, "library/app", "3.9.0", buf, sizeof(buf)) == 1);
	CHECK_STR(buf, "3.9.0");
	/* A per-architecture tag has the target's shape here, but is no published version. */
	CHECK(rule_target_version(&r, "library/app", "3.9.0-amd64", buf, sizeof(buf)) == 0);
	rule_clear(&r);
}

static void
run_tests(void)
{
	test_parse();
	test_semver();
	test_groups();
	test_unsaid();
	test_target_version();
}

TEST_MAIN("version")
