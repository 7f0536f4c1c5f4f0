/*
 * Unit tests of floating extra tags ("latest", "{1}.{2}"): a tag several
 * versions write moves to a version only when no higher version writing it
 * is published, as one tag list of the target repository tells. The
 * issue's sequence against the in-memory fake registry: 3.8.4, 3.8.5,
 * 3.9.0, a rebuild of 3.8.4, 3.7.1 late, 3.9.1, 3.10.0.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>

#include "config/plan.h"
#include "config/rule.h"
#include "registry/assemble/assemble.h"
#include "tests/unit/fake_registry.h"

#define REPO "library/app"

static struct arch_token g_archs[2];
static char *g_globs[] = { "library/*" };

/* {repo}:{version}-{arch} -> {repo}:{version} for amd64 and arm64, with extra tags and an order. */
static void
mkrule(struct rule *r, const char *regex, const char *const *extra, size_t n_extra, int order)
{
	char err[512];
	size_t i;

	memset(r, 0, sizeof(*r));
	(void)am_fmt(r->name, sizeof(r->name), "floating");
	r->repositories = g_globs;
	r->n_repositories = 1;
	CHECK(tmpl_compile("{repo}:{version}-{arch}", 1, &r->source, err, sizeof(err)) == AM_OK);
	CHECK(tmpl_compile("{repo}:{version}", 0, &r->target, err, sizeof(err)) == AM_OK);
	memset(g_archs, 0, sizeof(g_archs));
	(void)am_fmt(g_archs[0].name, sizeof(g_archs[0].name), "amd64");
	(void)am_fmt(g_archs[1].name, sizeof(g_archs[1].name), "arm64");
	CHECK(arch_builtin("amd64", &g_archs[0].platform) && arch_builtin("arm64", &g_archs[1].platform));
	r->archs = g_archs;
	r->n_archs = 2;
	r->keep_attestations = 1;
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

/* An image of arch under tag; build makes each build's bytes its own. */
static void
push_image(struct fake *f, const char *tag, const char *arch, const char *build)
{
	char config[256], cd[80], manifest[1024], md[80];

	(void)am_fmt(config, sizeof(config), "{\"architecture\":\"%s\",\"os\":\"linux\",\"config\":"
	    "{\"Labels\":{\"build\":\"%s\"}},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", arch, build);
	digest_sha256(config, strlen(config), cd, sizeof(cd));
	store(f, REPO, cd, "application/octet-stream", config, strlen(config));
	(void)am_fmt(manifest, sizeof(manifest), "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":"
	    "{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
	    "\"layers\":[]}", MT_OCI_MANIFEST, cd, strlen(config));
	digest_sha256(manifest, strlen(manifest), md, sizeof(md));
	store(f, REPO, tag, MT_OCI_MANIFEST, manifest, strlen(manifest));
	store(f, REPO, md, MT_OCI_MANIFEST, manifest, strlen(manifest));
}

/* The last release's extra_at_index: which extra tags name its index. */
static unsigned g_at_index;

/* Push both architectures of version (build names the bytes) and assemble the group. */
static enum asm_outcome
release(struct fake *f, const struct reg_api *api, const struct rule *r, const char *version,
    const char *build, char *detail, size_t dlen)
{
	struct asm_result res;
	char tag[128], salt[128];
	enum asm_outcome o;

	/* Every version and build its own bytes, so that a tag's digest tells which it names. */
	(void)am_fmt(salt, sizeof(salt), "%s/%s", version, build);
	(void)am_fmt(tag, sizeof(tag), "%s-amd64", version);
	push_image(f, tag, "amd64", salt);
	(void)am_fmt(tag, sizeof(tag), "%s-arm64", version);
	push_image(f, tag, "arm64", salt);
	assemble_rule(api, r, REPO, version, 0, &res);
	o = res.outcome;
	g_at_index = res.extra_at_index;
	if (detail != NULL)
		(void)am_fmt(detail, dlen, "%s", res.detail);
	asm_result_clear(&res);
	return o;
}

/* The assembly of an unchanged group (the reconcile pass runs these). */
static enum asm_outcome
rerun(const struct reg_api *api, const struct rule *r, const char *version, char *detail, size_t dlen)
{
	struct asm_result res;
	enum asm_outcome o;

	assemble_rule(api, r, REPO, version, 0, &res);
	o = res.outcome;
	(void)am_fmt(detail, dlen, "%s", res.detail);
	asm_result_clear(&res);
	return o;
}

/* Does tag name what the target tag of version names? */
static int
names(struct fake *f, const char *tag, const char *version)
{
	struct obj *a = find(f, REPO, tag), *b = find(f, REPO, version);

	return a != NULL && b != NULL && a->len == b->len && memcmp(a->body, b->body, a->len) == 0;
}

#define CHECK_NAMES(f, tag, version) do { \
	if (names(f, tag, version)) { t_passed++; } else { t_failed++; \
		fprintf(stderr, "%s:%d: %s does not name %s\n", __FILE__, __LINE__, tag, version); } \
} while (0)

/* The issue's sequence, version_regex groups ordering numerically. */
static void
test_issue_sequence(void)
{
	static const char *const extra[] = { "latest", "{1}.{2}" };
	struct fake f;
	struct reg_api api;
	struct rule r;
	struct obj *o;
	char detail[1024], before[80];
	int lists;

	mkrule(&r, "([0-9]+)\\.([0-9]+)\\.([0-9]+)", extra, 2, RULE_ORDER_AUTO);
	fake_api(&f, &api);

	CHECK(release(&f, &api, &r, "3.8.4", "a", NULL, 0) == ASM_PUBLISHED);
	CHECK_NAMES(&f, "latest", "3.8.4");
	CHECK_NAMES(&f, "3.8", "3.8.4");
	CHECK(release(&f, &api, &r, "3.8.5", "a", NULL, 0) == ASM_PUBLISHED);
	CHECK_NAMES(&f, "latest", "3.8.5");
	CHECK_NAMES(&f, "3.8", "3.8.5");
	CHECK(!names(&f, "3.8.4", "3.8.5"));         /* each version its own index */
	lists = f.tag_lists;
	CHECK(release(&f, &api, &r, "3.9.0", "a", NULL, 0) == ASM_PUBLISHED);
	CHECK(f.tag_lists == lists + 2);             /* for both floating tags: one before the writes, one after */
	CHECK_NAMES(&f, "latest", "3.9.0");
	CHECK_NAMES(&f, "3.9", "3.9.0");
	CHECK_NAMES(&f, "3.8", "3.8.5");
	CHECK(g_at_index == 3u);                     /* both name 3.9.0's index */

	/* The security rebuild of 3.8.4: republished, and neither floating tag goes back. */
	o = find(&f, REPO, "3.8.4");
	digest_sha256(o->body, o->len, before, sizeof(before));
	CHECK(release(&f, &api, &r, "3.8.4", "rebuild", detail, sizeof(detail)) == ASM_PUBLISHED);
	o = find(&f, REPO, "3.8.4");
	CHECK(o != NULL && !names(&f, "latest", "3.8.4"));
	CHECK_NAMES(&f, "latest", "3.9.0");
	CHECK_NAMES(&f, "3.8", "3.8.5");
	CHECK(g_at_index == 0);                      /* what a notification says was tagged: neither */
	CHECK(strstr(detail, "latest stays at 3.9.0") != NULL);
	CHECK(strstr(detail, "3.8 stays at 3.8.5") != NULL);

	/* A backport published late: its own minor line moves, latest does not. */
	CHECK(release(&f, &api, &r, "3.7.1", "a", detail, sizeof(detail)) == ASM_PUBLISHED);
	CHECK_NAMES(&f, "3.7", "3.7.1");
	CHECK_NAMES(&f, "latest", "3.9.0");
	CHECK(g_at_index == 2u);                     /* "3.7" only, not "latest" */
	CHECK(strstr(detail, "extra tags 3.7") != NULL);

	CHECK(release(&f, &api, &r, "3.9.1", "a", NULL, 0) == ASM_PUBLISHED);
	CHECK_NAMES(&f, "latest", "3.9.1");
	CHECK_NAMES(&f, "3.9", "3.9.1");
	/* Numbers, not text: "3.10.0" < "3.9.1" as strings. */
	CHECK(release(&f, &api, &r, "3.10.0", "a", NULL, 0) == ASM_PUBLISHED);
	CHECK_NAMES(&f, "latest", "3.10.0");
	CHECK_NAMES(&f, "3.10", "3.10.0");
	CHECK_NAMES(&f, "3.9", "3.9.1");
	CHECK_NAMES(&f, "3.8", "3.8.5");

	/* Unchanged groups with their tags in place: no tag list at all. */
	lists = f.tag_lists;
	CHECK(rerun(&api, &r, "3.9.1", detail, sizeof(detail)) == ASM_UNCHANGED);
	CHECK(f.tag_lists == lists);

	/* A missing floating tag is re-created for the highest version only. */
	drop(&f, REPO, "latest");
	CHECK(rerun(&api, &r, "3.8.5", detail, sizeof(detail)) == ASM_UNCHANGED);
	CHECK(find(&f, REPO, "latest") == NULL);
	CHECK(strstr(detail, "latest stays at 3.10.0") != NULL);
	CHECK(rerun(&api, &r, "3.10.0", detail, sizeof(detail)) == ASM_UNCHANGED);
	CHECK_NAMES(&f, "latest", "3.10.0");
	fake_free(&f);
	rule_clear(&r);
}

/* Semantic versions (no version_regex): a pre-release below its release; per-architecture tags are no versions. */
static void
test_semver(void)
{
	static const char *const extra[] = { "latest" };
	struct fake f;
	struct reg_api api;
	struct rule r;
	char detail[1024];

	mkrule(&r, NULL, extra, 1, RULE_ORDER_AUTO);
	fake_api(&f, &api);
	CHECK(release(&f, &api, &r, "1.0.0", "a", NULL, 0) == ASM_PUBLISHED);
	CHECK(release(&f, &api, &r, "2.0.0-rc.1", "a", NULL, 0) == ASM_PUBLISHED);
	CHECK_NAMES(&f, "latest", "2.0.0-rc.1");
	CHECK(release(&f, &api, &r, "2.0.0", "a", NULL, 0) == ASM_PUBLISHED);
	CHECK_NAMES(&f, "latest", "2.0.0");
	CHECK(release(&f, &api, &r, "2.0.0-rc.1", "b", detail, sizeof(detail)) == ASM_PUBLISHED);
	CHECK_NAMES(&f, "latest", "2.0.0");
	/* 3.0.0-amd64 alone: shaped like a target of version "3.0.0-amd64", but a per-architecture tag. */
	push_image(&f, "3.0.0-amd64", "amd64", "a");
	CHECK(release(&f, &api, &r, "2.0.1", "a", NULL, 0) == ASM_PUBLISHED);
	CHECK_NAMES(&f, "latest", "2.0.1");
	/* Not a semantic version, no order said: the last push wins, as before. */
	CHECK(release(&f, &api, &r, "nightly", "a", NULL, 0) == ASM_PUBLISHED);
	CHECK_NAMES(&f, "latest", "nightly");
	fake_free(&f);
	rule_clear(&r);

	/* version_order = "semver": a version that is not one leaves floating tags alone. */
	mkrule(&r, NULL, extra, 1, RULE_ORDER_SEMVER);
	fake_api(&f, &api);
	CHECK(release(&f, &api, &r, "1.0.0", "a", NULL, 0) == ASM_PUBLISHED);
	CHECK(release(&f, &api, &r, "nightly", "a", detail, sizeof(detail)) == ASM_PUBLISHED);
	CHECK_NAMES(&f, "latest", "1.0.0");
	CHECK(strstr(detail, "extra tag latest left alone: version nightly is not a semantic version") != NULL);
	fake_free(&f);
	rule_clear(&r);
}

/* version_order = "push": today's last-write-wins, and never a tag list. */
static void
test_push(void)
{
	static const char *const extra[] = { "latest", "{1}.{2}" };
	struct fake f;
	struct reg_api api;
	struct rule r;

	mkrule(&r, "([0-9]+)\\.([0-9]+)\\.([0-9]+)", extra, 2, RULE_ORDER_PUSH);
	fake_api(&f, &api);
	CHECK(release(&f, &api, &r, "3.9.0", "a", NULL, 0) == ASM_PUBLISHED);
	CHECK(release(&f, &api, &r, "3.8.4", "a", NULL, 0) == ASM_PUBLISHED);
	CHECK_NAMES(&f, "latest", "3.8.4");
	CHECK(f.tag_lists == 0);
	fake_free(&f);
	rule_clear(&r);
}

static enum am_err
failing_tags(void *ctx, const char *repo, int (*cb)(void *cbctx, const char *tag), void *cbctx,
    char *err, size_t errlen)
{
	(void)ctx; (void)repo; (void)cb; (void)cbctx;
	return am_fail(err, errlen, AM_ETRANSIENT, "tags/list: 503");
}

/* A failing tag list fails the run before the target moves: the retry redoes it. */
static void
test_list_fails(void)
{
	static const char *const extra[] = { "latest" };
	struct fake f;
	struct reg_api api;
	struct rule r;
	struct asm_result res;

	mkrule(&r, "([0-9]+)\\.([0-9]+)\\.([0-9]+)", extra, 1, RULE_ORDER_AUTO);
	fake_api(&f, &api);
	api.tags_list = failing_tags;
	push_image(&f, "1.0.0-amd64", "amd64", "a");
	push_image(&f, "1.0.0-arm64", "arm64", "a");
	assemble_rule(&api, &r, REPO, "1.0.0", 0, &res);
	CHECK(res.outcome == ASM_FAILED && res.err == AM_ETRANSIENT);
	CHECK(strstr(res.detail, "tags/list: 503") != NULL);
	CHECK(find(&f, REPO, "1.0.0") == NULL && find(&f, REPO, "latest") == NULL);
	asm_result_clear(&res);
	fake_free(&f);
	rule_clear(&r);
}

/* The higher version's run, whole, between the lower one's tag list and its writes. */
struct race {
	struct fake *f;
	const struct reg_api *api;
	const struct rule *r;
	const char *version;
	char detail[1024];
};

static void
race_run(void *arg)
{
	struct race *x = arg;

	CHECK(release(x->f, x->api, x->r, x->version, "race", x->detail, sizeof(x->detail)) == ASM_PUBLISHED);
}

/* A lower version's late write of latest, landing after this run's target PUT. */
static void
tamper(void *arg)
{
	struct fake *f = arg;
	struct obj *o = find(f, REPO, "3.8.5");

	store(f, REPO, "latest", o->media_type, o->body, o->len);
}

/* Arm tamper for the list after the next one (the check after the target PUT). */
static void
arm_tamper(void *arg)
{
	struct fake *f = arg;

	f->after_list = tamper;
	f->after_list_arg = f;
}

/*
 * Two versions at the same moment (two workers, two replicas): 3.8.5 lists
 * before 3.9.0 is published, 3.9.0 runs whole and writes latest, then
 * 3.8.5 writes latest. Its second list after the target finds 3.9.0 and
 * hands latest back.
 */
static void
test_race(void)
{
	static const char *const extra[] = { "latest", "{1}.{2}" };
	struct fake f;
	struct reg_api api;
	struct rule r;
	struct race x;
	char detail[1024];

	mkrule(&r, "([0-9]+)\\.([0-9]+)\\.([0-9]+)", extra, 2, RULE_ORDER_AUTO);
	fake_api(&f, &api);
	CHECK(release(&f, &api, &r, "3.8.4", "a", NULL, 0) == ASM_PUBLISHED);
	x = (struct race){ &f, &api, &r, "3.9.0", "" };
	f.after_list = race_run;
	f.after_list_arg = &x;
	CHECK(release(&f, &api, &r, "3.8.5", "a", detail, sizeof(detail)) == ASM_PUBLISHED);
	CHECK(f.after_list == NULL);                 /* the race did run */
	CHECK(strstr(x.detail, "extra tags latest,3.9") != NULL);
	CHECK_NAMES(&f, "latest", "3.9.0");
	CHECK_NAMES(&f, "3.8", "3.8.5");
	CHECK_NAMES(&f, "3.9", "3.9.0");
	CHECK(strstr(detail, "latest moved on to 3.9.0, published meanwhile") != NULL);

	/* The other way round: 3.9.1 lists, 3.8.6 runs whole (3.9.0 is higher: latest stays), 3.9.1 goes on. */
	x = (struct race){ &f, &api, &r, "3.8.6", "" };
	f.after_list = race_run;
	f.after_list_arg = &x;
	CHECK(release(&f, &api, &r, "3.9.1", "a", detail, sizeof(detail)) == ASM_PUBLISHED);
	CHECK(strstr(x.detail, "latest stays at 3.9.0") != NULL);
	CHECK_NAMES(&f, "latest", "3.9.1");
	CHECK_NAMES(&f, "3.8", "3.8.6");

	/* A lower run's write of latest lands after 3.10.0's target: the check after it writes latest again. */
	f.after_list = arm_tamper;
	f.after_list_arg = &f;
	CHECK(release(&f, &api, &r, "3.10.0", "a", detail, sizeof(detail)) == ASM_PUBLISHED);
	CHECK_NAMES(&f, "latest", "3.10.0");
	CHECK(strstr(detail, "latest written again: another run had moved it") != NULL);
	fake_free(&f);
	rule_clear(&r);
}

static void
run_tests(void)
{
	test_issue_sequence();
	test_race();
	test_semver();
	test_push();
	test_list_fails();
}

TEST_MAIN("floating")
