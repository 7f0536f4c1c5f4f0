/*
 * Unit tests: the claim on a pushed tag (source, output or none, with every
 * reason) against a configuration loaded from a temporary file, and the one
 * table of reason texts and metric labels.
 */
#include "tests/unit/harness.h"

#include <ctype.h>
#include <stdlib.h>
#include <unistd.h>

#include "config/claim.h"

static const char conf_text[] =
    "server = { listen = \"127.0.0.1:8080\"; plain_http = true; allow_unauthenticated = true; };\n"
    "registries = (\n"
    "  { host = \"harbor.example.com\"; url = \"https://10.0.0.5:8443\"; }\n"
    ");\n"
    "rules = (\n"
    "  { name = \"per-arch\"; repositories = [ \"library/*\" ];\n"
    "    source = \"{repo}:{version}-{arch}\"; target = \"{repo}:{version}\";\n"
    "    architectures = [ \"amd64\", \"arm64\" ];\n"
    "    version_regex = \"[0-9]+(\\\\.[0-9]+)*\";\n"
    "    extra_tags = [ \"latest\", \"{version}-all\" ]; },\n"
    "  { name = \"split\"; repositories = [ \"team/*\" ];\n"
    "    source = \"{repo}-{arch}:{version}\"; target = \"{repo}:{version}\";\n"
    "    architectures = [ \"amd64\", \"arm64\" ]; copy_tag = \"c{version}.{arch}\";\n"
    "    version_regex = \"[0-9.]+\"; },\n"
    /* tools/x:amd64-1.0 is an output of "plain" and a source of "arch first". */
    "  { name = \"plain\"; repositories = [ \"tools/*\" ];\n"
    "    source = \"{repo}:{version}_{arch}\"; target = \"{repo}:{version}\";\n"
    "    architectures = [ \"amd64\", \"arm64\" ]; },\n"
    "  { name = \"arch first\"; repositories = [ \"tools/*\" ];\n"
    "    source = \"{repo}:{arch}-{version}\"; target = \"{repo}:v{version}\";\n"
    "    architectures = [ \"amd64\", \"arm64\" ]; },\n"
    "  { name = \"arch first again\"; repositories = [ \"tools/*\" ];\n"
    "    source = \"{repo}:{arch}-{version}\"; target = \"{repo}:w{version}\";\n"
    "    architectures = [ \"amd64\", \"arm64\" ]; }\n"
    ");\n";

static struct cfg *
load_cfg(void)
{
	char path[64], err[2048] = "";
	struct cfg *c = NULL;
	int fd;

	(void)am_fmt(path, sizeof(path), "/tmp/am-claim-XXXXXX");
	if ((fd = mkstemp(path)) < 0 || write(fd, conf_text, sizeof(conf_text) - 1) !=
	    (ssize_t)(sizeof(conf_text) - 1) || close(fd) != 0) {
		perror(path);
		exit(2);
	}
	if (cfg_load(path, 0, &c, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "test configuration refused:\n%s\n", err);
		exit(2);
	}
	unlink(path);
	return c;
}

static void
test_source(const struct cfg *c)
{
	struct claim cl;

	CHECK(claim_tag(c, "harbor.example.com", "library/app", "3.8.5-arm64", &cl) == CLAIM_SOURCE);
	CHECK(cl.kind == CLAIM_SOURCE && cl.reason == CLAIM_R_NONE);
	CHECK(cl.registry == &c->registries[0]);
	CHECK(cl.rule == &c->rules[0] && cl.cover == &c->rules[0]);
	CHECK_STR(cl.match.repo, "library/app");
	CHECK_STR(cl.match.version, "3.8.5");
	CHECK(cl.match.arch == 1);
	CHECK_STR(cl.token, "arm64");

	/* {arch} in the repository part: the group is the target repository. */
	CHECK(claim_tag(c, "harbor.example.com", "team/app-amd64", "1.0", &cl) == CLAIM_SOURCE);
	CHECK(cl.rule == &c->rules[1] && cl.cover == &c->rules[1]);
	CHECK_STR(cl.match.repo, "team/app");
	CHECK_STR(cl.match.version, "1.0");
	CHECK_STR(cl.token, "amd64");

	/* A source of a later rule wins over an output of an earlier one; among
	 * sources the first rule in the file wins; cover stays the first rule. */
	CHECK(claim_tag(c, "harbor.example.com", "tools/x", "amd64-1.0", &cl) == CLAIM_SOURCE);
	CHECK(cl.rule == &c->rules[3]);
	CHECK(cl.cover == &c->rules[2]);
	CHECK_STR(cl.match.version, "1.0");

	/* The registry by its URL's host:port, and no registry asked at all. */
	CHECK(claim_tag(c, "10.0.0.5:8443", "library/app", "1.0-amd64", &cl) == CLAIM_SOURCE);
	CHECK(cl.registry == &c->registries[0]);
	CHECK(claim_tag(c, NULL, "library/app", "1.0-amd64", &cl) == CLAIM_SOURCE);
	CHECK(cl.registry == NULL && cl.rule == &c->rules[0]);
}

static void
test_output(const struct cfg *c)
{
	struct claim cl;

	CHECK(claim_tag(c, "harbor.example.com", "library/app", "3.8.5", &cl) == CLAIM_OUTPUT);
	CHECK(cl.kind == CLAIM_OUTPUT && cl.reason == CLAIM_R_OUTPUT && cl.output == RULE_OUT_TARGET);
	CHECK(cl.rule == &c->rules[0] && cl.cover == &c->rules[0]);
	CHECK(cl.registry == &c->registries[0]);
	CHECK(claim_tag(c, "harbor.example.com", "team/app", "c3.8.5.arm64", &cl) == CLAIM_OUTPUT);
	CHECK(cl.output == RULE_OUT_COPY && cl.rule == &c->rules[1]);
	CHECK(claim_tag(c, "harbor.example.com", "library/app", "latest", &cl) == CLAIM_OUTPUT);
	CHECK(cl.output == RULE_OUT_EXTRA && cl.rule == &c->rules[0]);
	/* The first rule whose output it is: "plain" before "arch first". */
	CHECK(claim_tag(c, "harbor.example.com", "tools/x", "2.0", &cl) == CLAIM_OUTPUT);
	CHECK(cl.rule == &c->rules[2] && cl.output == RULE_OUT_TARGET);
	CHECK(claim_tag(c, NULL, "tools/x", "v2.0", &cl) == CLAIM_OUTPUT);
	CHECK(cl.rule == &c->rules[2]);   /* "v2.0" is a {version} of "plain" too */
	/* The split rule's target lives in the group repository itself. */
	CHECK(claim_tag(c, "harbor.example.com", "team/app", "1.0", &cl) == CLAIM_OUTPUT);
	CHECK(cl.rule == &c->rules[1]);
}

static void
test_none(const struct cfg *c)
{
	struct claim cl;

	/* By digest comes first, even before the registry. */
	CHECK(claim_tag(c, "nowhere.example", "library/app", "", &cl) == CLAIM_NONE);
	CHECK(cl.reason == CLAIM_R_BY_DIGEST && cl.rule == NULL && cl.registry == NULL);
	CHECK(claim_tag(c, "harbor.example.com", "library/app", NULL, &cl) == CLAIM_NONE);
	CHECK(cl.reason == CLAIM_R_BY_DIGEST);

	CHECK(claim_tag(c, "nowhere.example", "library/app", "1.0-amd64", &cl) == CLAIM_NONE);
	CHECK(cl.reason == CLAIM_R_UNKNOWN_HOST && cl.registry == NULL && cl.rule == NULL);
	CHECK(claim_tag(c, "10.0.0.5:9999", "library/app", "1.0-amd64", &cl) == CLAIM_NONE);
	CHECK(cl.reason == CLAIM_R_UNKNOWN_HOST);

	/* Covered, but neither source nor output (version_regex refuses "beta"). */
	CHECK(claim_tag(c, "harbor.example.com", "library/app", "beta-amd64", &cl) == CLAIM_NONE);
	CHECK(cl.reason == CLAIM_R_NO_RULE && cl.rule == NULL && cl.cover == &c->rules[0]);
	CHECK(cl.registry == &c->registries[0]);
	/* An architecture no rule lists. */
	CHECK(claim_tag(c, "harbor.example.com", "library/app", "1.0-s390x", &cl) == CLAIM_NONE);
	CHECK(cl.reason == CLAIM_R_NO_RULE);
	/* Outside every glob. */
	CHECK(claim_tag(c, "harbor.example.com", "other/app", "1.0-amd64", &cl) == CLAIM_NONE);
	CHECK(cl.reason == CLAIM_R_NO_RULE && cl.cover == NULL);
	/* An unlisted token in the repository part: the team glob covers that name, so
	 * its "{version}" tag reads as the split rule's target, not as a source. */
	CHECK(claim_tag(c, NULL, "team/app-s390x", "1.0", &cl) == CLAIM_OUTPUT);
	/* Names that cannot exist are nobody's. */
	CHECK(claim_tag(c, NULL, "library/App", "1.0-amd64", &cl) == CLAIM_NONE);
	CHECK(cl.reason == CLAIM_R_NO_RULE);
}

static void
test_reasons(void)
{
	static const struct { enum claim_reason r; const char *text, *label; } want[] = {
		{ CLAIM_R_BY_DIGEST, "pushed by digest (no tag)", "by_digest" },
		{ CLAIM_R_UNKNOWN_HOST, "unknown registry host", "unknown_host" },
		{ CLAIM_R_OUTPUT, "no rule matches the tag: it is a target, extra or copy tag of a rule "
		    "(archmerge's own output)", "target_tag" },
		{ CLAIM_R_NO_RULE, "no rule matches the tag", "no_rule" },
		{ CLAIM_R_NOT_PUSH, "not a push event", "not_push" },
		{ CLAIM_R_BLOB, "blob push", "blob" },
		{ CLAIM_R_INVALID, "invalid event", "invalid" },
		{ CLAIM_R_OWN_WRITE, "archmerge's own write (the digest it just pushed under this tag)",
		    "own_push" },
		{ CLAIM_R_SIGNATURE, "signature tag of an image no group waits for", "signature" },
		{ CLAIM_R_SCAN, "scan of an image no group waits for", "scan" },
		{ CLAIM_R_WRONG_SECRET, "the Authorization header is not the webhook secret of the registry "
		    "named", "wrong_secret" },
	};
	size_t i, j;

	CHECK(sizeof(want) / sizeof(want[0]) == CLAIM_R_COUNT - 1);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK_STR(claim_reason_text(want[i].r), want[i].text);
		CHECK_STR(claim_reason_label(want[i].r), want[i].label);
	}
	/* Every reason has a text and a distinct label of [a-z_]. */
	for (i = 1; i < CLAIM_R_COUNT; i++) {
		const char *l = claim_reason_label((enum claim_reason)i);

		CHECK(claim_reason_text((enum claim_reason)i) != NULL && l != NULL && l[0] != '\0');
		for (j = 0; l != NULL && l[j] != '\0'; j++)
			CHECK(islower((unsigned char)l[j]) || l[j] == '_');
		for (j = 1; j < i; j++)
			CHECK(strcmp(l, claim_reason_label((enum claim_reason)j)) != 0);
	}
	CHECK(claim_reason_text(CLAIM_R_NONE) == NULL && claim_reason_label(CLAIM_R_NONE) == NULL);
	CHECK(claim_reason_text(CLAIM_R_COUNT) == NULL && claim_reason_label(CLAIM_R_COUNT) == NULL);
	CHECK(claim_reason_label((enum claim_reason)-1) == NULL);
}

static void
run_tests(void)
{
	struct cfg *c = load_cfg();

	test_source(c);
	test_output(c);
	test_none(c);
	test_reasons();
	cfg_free(c);
}

TEST_MAIN("claim")
