/* Unit tests: name grammar, templates, rule matching, platform normalisation. */
#include "tests/unit/harness.h"
#include "config/rule.h"

static void
make_rule(struct rule *r, const char *source, const char *target, struct arch_token *archs,
    const char **names, size_t n, char **globs, size_t n_globs)
{
	size_t i;
	char err[256];

	memset(r, 0, sizeof(*r));
	CHECK(tmpl_compile(source, 1, &r->source, err, sizeof(err)) == AM_OK);
	CHECK(tmpl_compile(target, 0, &r->target, err, sizeof(err)) == AM_OK);
	for (i = 0; i < n; i++) {
		memset(&archs[i], 0, sizeof(archs[i]));
		(void)am_fmt(archs[i].name, sizeof(archs[i].name), "%s", names[i]);
		CHECK(arch_builtin(names[i], &archs[i].platform));
	}
	r->archs = archs;
	r->n_archs = n;
	r->repositories = globs;
	r->n_repositories = n_globs;
}

static void
test_names(void)
{
	CHECK(name_valid_repo("library/myapp"));
	CHECK(name_valid_repo("library/team/app-x.y_z__w"));
	CHECK(!name_valid_repo("Library/app"));
	CHECK(!name_valid_repo("library//app"));
	CHECK(!name_valid_repo("library/app/"));
	CHECK(!name_valid_repo("library/-app"));
	CHECK(!name_valid_repo("a/b c"));
	CHECK(!name_valid_repo(""));
	CHECK(name_valid_tag("3.8.5-amd64"));
	CHECK(name_valid_tag("_x"));
	CHECK(!name_valid_tag(".x"));
	CHECK(!name_valid_tag("-x"));
	CHECK(!name_valid_tag("a/b"));
	CHECK(!name_valid_tag("a\nb"));
	{
		char t[200];
		memset(t, 'a', 128); t[128] = '\0';
		CHECK(name_valid_tag(t));
		t[128] = 'a'; t[129] = '\0';
		CHECK(!name_valid_tag(t));
	}
	CHECK(name_valid_digest("sha256:4b8f0000000000000000000000000000000000000000000000000000000000ff"));
	CHECK(!name_valid_digest("sha256:4B8F0000000000000000000000000000000000000000000000000000000000ff"));
	CHECK(!name_valid_digest("sha256:abc"));
	CHECK(!name_valid_digest("md5:4b8f0000000000000000000000000000000000000000000000000000000000ff"));
}

static void
test_templates(void)
{
	struct tmpl t;
	char err[256], buf[128];

	CHECK(tmpl_compile("{repo}:{version}-{arch}", 1, &t, err, sizeof(err)) == AM_OK);
	CHECK(tmpl_expand_tag(&t, "3.8.5", "arm64", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "3.8.5-arm64");
	CHECK(tmpl_compile("{repo}:{arch}-{version}", 1, &t, err, sizeof(err)) == AM_OK);
	CHECK(tmpl_expand_tag(&t, "1.0", "amd64", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "amd64-1.0");
	CHECK(tmpl_compile("{repo}:v{version}", 0, &t, err, sizeof(err)) == AM_OK);
	CHECK(tmpl_expand_tag(&t, "2", NULL, buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "v2");
	/* errors */
	CHECK(tmpl_compile("{repo}:{version}{arch}", 1, &t, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "ambiguous") != NULL);
	CHECK(tmpl_compile("{repo}:{version}", 1, &t, err, sizeof(err)) == AM_EINVAL);
	CHECK(tmpl_compile("{repo}:{version}-{arch}", 0, &t, err, sizeof(err)) == AM_EINVAL);
	CHECK(tmpl_compile("{repo}:{version}-{version}-{arch}", 1, &t, err, sizeof(err)) == AM_EINVAL);
	CHECK(tmpl_compile("{repo}-{arch}:{version}", 0, &t, err, sizeof(err)) == AM_EINVAL);
	CHECK(tmpl_compile("{repo}:{version}/{arch}", 1, &t, err, sizeof(err)) == AM_EINVAL);
	CHECK(tmpl_compile("{repo}:{ver}-{arch}", 1, &t, err, sizeof(err)) == AM_EINVAL);
}

static void
test_matching(void)
{
	struct rule r;
	struct arch_token archs[4];
	const char *names[] = { "amd64", "arm64", "armv7" };
	char *globs[] = { "library/*" };
	struct rule_match m;

	make_rule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", archs, names, 3, globs, 1);
	CHECK(rule_match_source(&r, "library/myapp", "3.8.5-amd64", &m));
	CHECK_STR(m.repo, "library/myapp");
	CHECK_STR(m.version, "3.8.5");
	CHECK(m.arch == 0);
	CHECK(rule_match_source(&r, "library/team/app", "1.0-rc1-armv7", &m));
	CHECK_STR(m.version, "1.0-rc1");
	CHECK(m.arch == 2);
	CHECK(!rule_match_source(&r, "library/myapp", "3.8.5", &m));
	CHECK(!rule_match_source(&r, "library/myapp", "-amd64", &m));
	CHECK(!rule_match_source(&r, "library/myapp", "3.8.5-s390x", &m));
	CHECK(!rule_match_source(&r, "other/myapp", "3.8.5-amd64", &m));
	CHECK(!rule_match_source(&r, "library/myapp", "3.8.5amd64", &m));
	CHECK(rule_match_target(&r, "library/myapp", "3.8.5"));
	CHECK(!rule_match_target(&r, "other/myapp", "3.8.5"));

	make_rule(&r, "{repo}:{arch}-{version}", "{repo}:{version}", archs, names, 2, globs, 1);
	CHECK(rule_match_source(&r, "library/x", "arm64-2.0", &m));
	CHECK_STR(m.version, "2.0");
	CHECK(m.arch == 1);
	CHECK(!rule_match_source(&r, "library/x", "2.0-arm64", &m));
}

static void
test_platforms(void)
{
	struct platform p;
	char err[128], buf[64];

	memset(&p, 0, sizeof(p));
	(void)am_fmt(p.os, sizeof(p.os), "linux");
	(void)am_fmt(p.arch, sizeof(p.arch), "x86_64");
	platform_normalize(&p);
	CHECK_STR(p.arch, "amd64");
	(void)am_fmt(p.arch, sizeof(p.arch), "aarch64");
	(void)am_fmt(p.variant, sizeof(p.variant), "v8");
	platform_normalize(&p);
	CHECK_STR(p.arch, "arm64");
	CHECK_STR(p.variant, "");
	(void)am_fmt(p.arch, sizeof(p.arch), "arm");
	p.variant[0] = '\0';
	platform_normalize(&p);
	CHECK_STR(p.variant, "v7");
	(void)am_fmt(p.arch, sizeof(p.arch), "armel");
	platform_normalize(&p);
	CHECK_STR(p.arch, "arm");
	CHECK_STR(p.variant, "v6");
	(void)am_fmt(p.arch, sizeof(p.arch), "i386");
	p.variant[0] = '\0';
	platform_normalize(&p);
	CHECK_STR(p.arch, "386");
	CHECK(platform_parse("linux/armhf", &p, err, sizeof(err)) == AM_OK);
	platform_format(&p, buf, sizeof(buf));
	CHECK_STR(buf, "linux/arm/v7");
	CHECK(platform_parse("linux", &p, err, sizeof(err)) == AM_EINVAL);
	CHECK(platform_parse("linux/arm/v7/x", &p, err, sizeof(err)) == AM_EINVAL);
	{
		struct platform want, have;
		CHECK(arch_builtin("arm64", &want));
		CHECK(platform_parse("linux/aarch64/v8", &have, err, sizeof(err)) == AM_OK);
		CHECK(platform_satisfies(&have, &want));
		CHECK(platform_parse("linux/amd64", &have, err, sizeof(err)) == AM_OK);
		CHECK(!platform_satisfies(&have, &want));
		CHECK(arch_builtin("armv7", &want));
		CHECK(platform_parse("linux/arm/v6", &have, err, sizeof(err)) == AM_OK);
		CHECK(!platform_satisfies(&have, &want));
		CHECK(!arch_builtin("sparc", &want));
		/* os.version prefixes (issue 9.6): on a dot boundary, only when the rule names one */
		CHECK(arch_builtin("ltsc2019", &want));
		CHECK_STR(want.os_version, "10.0.17763");
		CHECK(platform_parse("windows(10.0.17763.5458)/amd64", &have, err, sizeof(err)) == AM_OK);
		CHECK_STR(have.os, "windows");
		CHECK_STR(have.os_version, "10.0.17763.5458");
		CHECK(platform_satisfies(&have, &want));
		CHECK(platform_parse("windows(10.0.20348.2227)/amd64", &have, err, sizeof(err)) == AM_OK);
		CHECK(!platform_satisfies(&have, &want));
		CHECK(platform_parse("windows(10.0.177630)/amd64", &have, err, sizeof(err)) == AM_OK);
		CHECK(!platform_satisfies(&have, &want));
		CHECK(platform_parse("windows/amd64", &have, err, sizeof(err)) == AM_OK);
		CHECK(!platform_satisfies(&have, &want));
		CHECK(arch_builtin("windows-amd64", &want));
		CHECK(platform_parse("windows(10.0.20348.2227)/amd64", &have, err, sizeof(err)) == AM_OK);
		CHECK(platform_satisfies(&have, &want));
		CHECK(platform_parse("windows()/amd64", &have, err, sizeof(err)) == AM_EINVAL);
		CHECK(platform_parse("(1)/amd64", &have, err, sizeof(err)) == AM_EINVAL);
		CHECK(platform_parse("windows(1/amd64", &have, err, sizeof(err)) == AM_EINVAL);
		CHECK(platform_parse("windows(1)x/amd64", &have, err, sizeof(err)) == AM_EINVAL);
	}
}

TEST_MAIN("rule")
static void
run_tests(void)
{
	test_names();
	test_templates();
	test_matching();
	test_platforms();
}
