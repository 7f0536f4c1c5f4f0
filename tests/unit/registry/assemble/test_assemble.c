/*
 * Unit tests of index building and of the assembly decision, against an
 * in-memory fake registry behind struct reg_api.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <jansson.h>

#include "registry/assemble/assemble.h"
#include "registry/assemble/cache.h"

#include "tests/unit/fake_registry.h"

/* Push an image: config blob + manifest under tag (and digest); returns manifest digest. */
static void
push_image(struct fake *f, const char *repo, const char *tag, const char *arch,
    const char *variant, int oci, char *digest_out)
{
	char config[256], cd[80], manifest[1024];

	(void)am_fmt(config, sizeof(config),
	    "{\"architecture\":\"%s\",\"os\":\"linux\"%s%s%s,\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
	    arch, variant ? ",\"variant\":\"" : "", variant ? variant : "", variant ? "\"" : "");
	digest_sha256(config, strlen(config), cd, sizeof(cd));
	store(f, repo, cd, "application/octet-stream", config, strlen(config));
	(void)am_fmt(manifest, sizeof(manifest),
	    "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[]}",
	    oci ? MT_OCI_MANIFEST : MT_DOCKER_MANIFEST,
	    oci ? "application/vnd.oci.image.config.v1+json" : "application/vnd.docker.container.image.v1+json",
	    cd, strlen(config));
	digest_sha256(manifest, strlen(manifest), digest_out, 80);
	store(f, repo, tag, oci ? MT_OCI_MANIFEST : MT_DOCKER_MANIFEST, manifest, strlen(manifest));
	store(f, repo, digest_out, oci ? MT_OCI_MANIFEST : MT_DOCKER_MANIFEST, manifest, strlen(manifest));
}

/* buildx-style index: image (pushed by digest) + attestation, under tag. */
static void
push_buildx(struct fake *f, const char *repo, const char *tag, const char *arch, char *image_digest)
{
	char idx[2048], att[80] = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	char size[32];
	struct obj *o;

	push_image(f, repo, "tmp-child", arch, NULL, 1, image_digest);
	o = find(f, repo, image_digest);
	(void)am_fmt(size, sizeof(size), "%zu", o->len);
	(void)am_fmt(idx, sizeof(idx),
	    "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
	    "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%s,\"platform\":{\"architecture\":\"%s\",\"os\":\"linux\"}},"
	    "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":10,\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"},"
	    "\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\",\"vnd.docker.reference.digest\":\"%s\"}}]}",
	    MT_OCI_INDEX, MT_OCI_MANIFEST, image_digest, size, arch, MT_OCI_MANIFEST, att, image_digest);
	store(f, repo, tag, MT_OCI_INDEX, idx, strlen(idx));
}

static struct rule R;
static struct arch_token ARCHS[2];
static char *GLOBS[] = { "library/*" };

static void
setup_rule(int format)
{
	char err[128];

	memset(&R, 0, sizeof(R));
	(void)am_fmt(R.name, sizeof(R.name), "test");
	CHECK(tmpl_compile("{repo}:{version}-{arch}", 1, &R.source, err, sizeof(err)) == AM_OK);
	CHECK(tmpl_compile("{repo}:{version}", 0, &R.target, err, sizeof(err)) == AM_OK);
	(void)am_fmt(ARCHS[0].name, sizeof(ARCHS[0].name), "amd64");
	(void)am_fmt(ARCHS[1].name, sizeof(ARCHS[1].name), "arm64");
	CHECK(arch_builtin("amd64", &ARCHS[0].platform));
	CHECK(arch_builtin("arm64", &ARCHS[1].platform));
	R.archs = ARCHS;
	R.n_archs = 2;
	R.repositories = GLOBS;
	R.n_repositories = 1;
	R.format = format;
}

static void
test_index_build(void)
{
	struct descriptor d[2];
	struct index_doc doc;
	char err[256], digest[80];
	json_t *root;

	memset(d, 0, sizeof(d));
	(void)am_fmt(d[0].media_type, sizeof(d[0].media_type), MT_DOCKER_MANIFEST);
	(void)am_fmt(d[0].digest, sizeof(d[0].digest), "sha256:%064d", 1);
	d[0].size = 100;
	d[0].has_platform = 1;
	CHECK(platform_parse("linux/amd64", &d[0].platform, err, sizeof(err)) == AM_OK);
	d[1] = d[0];
	(void)am_fmt(d[1].digest, sizeof(d[1].digest), "sha256:%064d", 2);
	CHECK(platform_parse("linux/arm/v7", &d[1].platform, err, sizeof(err)) == AM_OK);

	CHECK(index_build(d, 2, INDEX_AUTO, &doc, err, sizeof(err)) == AM_OK);
	CHECK_STR(doc.media_type, MT_DOCKER_LIST);
	digest_sha256(doc.body, doc.len, digest, sizeof(digest));
	CHECK_STR(doc.digest, digest);
	root = json_loads(doc.body, 0, NULL);
	CHECK(root != NULL);
	CHECK_STR(json_string_value(json_object_get(root, "mediaType")), MT_DOCKER_LIST);
	CHECK(json_integer_value(json_object_get(root, "schemaVersion")) == 2);
	CHECK(json_array_size(json_object_get(root, "manifests")) == 2);
	CHECK_STR(json_string_value(json_object_get(json_object_get(
	    json_array_get(json_object_get(root, "manifests"), 1), "platform"), "variant")), "v7");
	CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(root, "manifests"), 0),
	    "digest")), d[0].digest);
	json_decref(root);
	{
		/* same input, same bytes */
		struct index_doc again;
		CHECK(index_build(d, 2, INDEX_AUTO, &again, err, sizeof(err)) == AM_OK);
		CHECK_STR(again.digest, doc.digest);
		index_doc_clear(&again);
	}
	index_doc_clear(&doc);

	CHECK(index_build(d, 2, INDEX_OCI, &doc, err, sizeof(err)) == AM_OK);
	CHECK_STR(doc.media_type, MT_OCI_INDEX);
	index_doc_clear(&doc);

	(void)am_fmt(d[1].media_type, sizeof(d[1].media_type), MT_OCI_MANIFEST);
	CHECK(index_build(d, 2, INDEX_AUTO, &doc, err, sizeof(err)) == AM_OK);
	CHECK_STR(doc.media_type, MT_OCI_INDEX);
	index_doc_clear(&doc);
	CHECK(index_build(d, 2, INDEX_DOCKER, &doc, err, sizeof(err)) == AM_EINVAL);

	d[1].platform = d[0].platform;
	CHECK(index_build(d, 2, INDEX_OCI, &doc, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "same platform") != NULL);
	CHECK(index_build(d, 0, INDEX_OCI, &doc, err, sizeof(err)) == AM_EINVAL);
}

static void
test_manifest_parse(void)
{
	struct manifest m;
	char err[256];
	const char *bad[] = {
		"", "[]", "{\"schemaVersion\":1}", "{\"schemaVersion\":2,\"mediaType\":\"x\"}",
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\"}",
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"a\",\"digest\":\"sha256:zz\",\"size\":1}}",
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":{}}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(manifest_parse(bad[i], strlen(bad[i]), NULL, &m, err, sizeof(err)) == AM_EINVAL);
	/* body and Content-Type disagree */
	{
		const char *b = "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":[]}";
		CHECK(manifest_parse(b, strlen(b), MT_DOCKER_LIST, &m, err, sizeof(err)) == AM_EINVAL);
		CHECK(manifest_parse(b, strlen(b), MT_OCI_INDEX, &m, err, sizeof(err)) == AM_OK);
		CHECK(m.kind == MANIFEST_INDEX);
		manifest_free(&m);
	}
}

static void
test_assemble_flow(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	char d1[80], d2[80], d3[80];
	const char *repo = "library/myapp";

	setup_rule(0);
	fake_api(&f, &api);

	/* only amd64 present: waiting, nothing pushed */
	push_image(&f, repo, "3.8.5-amd64", "amd64", NULL, 0, d1);
	assemble_rule(&api, &R, repo, "3.8.5", 0, &res);
	CHECK(res.outcome == ASM_WAITING);
	CHECK(strstr(res.detail, "arm64") != NULL);
	CHECK(f.puts == 0);
	asm_result_clear(&res);

	/* arm64 arrives (aarch64 in config): published as a Docker list */
	push_image(&f, repo, "3.8.5-arm64", "aarch64", "v8", 0, d2);
	assemble_rule(&api, &R, repo, "3.8.5", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(f.puts == 1);
	CHECK_STR(res.target, "library/myapp:3.8.5");
	CHECK_STR(res.doc.media_type, MT_DOCKER_LIST);
	CHECK(strstr(res.doc.body, d1) != NULL && strstr(res.doc.body, d2) != NULL);
	CHECK(strstr(res.doc.body, d1) < strstr(res.doc.body, d2));   /* rule order */
	CHECK(find(&f, repo, "3.8.5") != NULL);
	asm_result_clear(&res);

	/* again: unchanged, no PUT */
	assemble_rule(&api, &R, repo, "3.8.5", 0, &res);
	CHECK(res.outcome == ASM_UNCHANGED);
	CHECK(f.puts == 1);
	asm_result_clear(&res);

	/* arm64 rebuilt: republished with the new child */
	push_image(&f, repo, "3.8.5-arm64", "arm64", NULL, 0, d3);
	assemble_rule(&api, &R, repo, "3.8.5", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(f.puts == 2);
	CHECK(strstr(res.doc.body, d3) != NULL && strstr(res.doc.body, d2) == NULL);
	asm_result_clear(&res);

	/* dry run on a new version: built, not pushed */
	push_image(&f, repo, "4.0-amd64", "amd64", NULL, 1, d1);
	push_image(&f, repo, "4.0-arm64", "arm64", NULL, 1, d2);
	assemble_rule(&api, &R, repo, "4.0", 1, &res);
	CHECK(res.outcome == ASM_DRY_RUN);
	CHECK_STR(res.doc.media_type, MT_OCI_INDEX);
	CHECK(f.puts == 2);
	asm_result_clear(&res);

	/* registry refuses the PUT: failed, error kept */
	f.fail_put = AM_EDENIED;
	assemble_rule(&api, &R, repo, "4.0", 0, &res);
	CHECK(res.outcome == ASM_FAILED);
	CHECK(res.err == AM_EDENIED);
	CHECK(res.retry_after_ms == -1);
	asm_result_clear(&res);

	/* 429 with Retry-After: transient, and the delay reaches the caller's backoff */
	f.fail_put = AM_ETRANSIENT;
	f.put_retry_after_ms = 3000;
	assemble_rule(&api, &R, repo, "4.0", 0, &res);
	CHECK(res.outcome == ASM_FAILED);
	CHECK(res.err == AM_ETRANSIENT);
	CHECK(res.retry_after_ms == 3000);
	asm_result_clear(&res);
	f.fail_put = AM_OK;
	assemble_rule(&api, &R, repo, "4.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(res.retry_after_ms == -1);
	asm_result_clear(&res);
	fake_free(&f);
}

/* The architectures' reads overlap: two slow manifest GETs are under way at once. */
static void
test_assemble_parallel_reads(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	char d1[80], d2[80];
	const char *repo = "library/par";

	setup_rule(0);
	fake_api(&f, &api);
	push_image(&f, repo, "1.0-amd64", "amd64", NULL, 0, d1);
	push_image(&f, repo, "1.0-arm64", "arm64", "v8", 0, d2);
	f.get_delay_us = 50000;
	assemble_rule(&api, &R, repo, "1.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	/* both chains and the target's HEAD at once; one instance: nothing after the PUT */
	CHECK(f.max_inflight == 3);
	CHECK(f.gets == 2 && f.heads == 1 && f.puts == 1);
	CHECK(strstr(res.doc.body, d1) < strstr(res.doc.body, d2));   /* still rule order */
	asm_result_clear(&res);

	/* Replicas: after the PUT both source HEADs, at once. */
	push_image(&f, repo, "2.0-amd64", "amd64", NULL, 0, d1);
	push_image(&f, repo, "2.0-arm64", "arm64", "v8", 0, d2);
	f.gets = f.heads = f.puts = 0;
	f.max_inflight = f.head_max_inflight = 0;
	assemble_rule_as(&api, &R, repo, "2.0", 0, 2, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(f.max_inflight == 3);
	CHECK(f.head_max_inflight == 2);
	CHECK(f.gets == 2 && f.heads == 3 && f.puts == 1);
	asm_result_clear(&res);
	fake_free(&f);
}

static void
test_assemble_refusals(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	char d1[80], d2[80];
	const char *repo = "library/app";

	setup_rule(0);
	fake_api(&f, &api);
	/* tag says arm64, config says amd64: refused, nothing pushed */
	push_image(&f, repo, "1.0-amd64", "amd64", NULL, 0, d1);
	push_image(&f, repo, "1.0-arm64", "amd64", NULL, 0, d2);
	assemble_rule(&api, &R, repo, "1.0", 0, &res);
	CHECK(res.outcome == ASM_REFUSED);
	CHECK(strstr(res.detail, "linux/amd64") != NULL);
	CHECK(f.puts == 0);
	asm_result_clear(&res);

	/* buildx index as the arm64 source: its image child is used */
	push_buildx(&f, repo, "1.0-arm64", "arm64", d2);
	assemble_rule(&api, &R, repo, "1.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK_STR(res.doc.media_type, MT_OCI_INDEX);   /* one child is OCI */
	CHECK(strstr(res.doc.body, d2) != NULL);
	CHECK(strstr(res.doc.body, "unknown") == NULL);
	asm_result_clear(&res);

	/* buildx index without the expected platform: refused */
	push_buildx(&f, repo, "2.0-arm64", "amd64", d2);
	push_image(&f, repo, "2.0-amd64", "amd64", NULL, 0, d1);
	assemble_rule(&api, &R, repo, "2.0", 0, &res);
	CHECK(res.outcome == ASM_REFUSED);
	asm_result_clear(&res);

	/* format docker with an OCI child: refused, not converted */
	setup_rule(2);
	push_image(&f, repo, "3.0-amd64", "amd64", NULL, 1, d1);
	push_image(&f, repo, "3.0-arm64", "arm64", NULL, 0, d2);
	assemble_rule(&api, &R, repo, "3.0", 0, &res);
	CHECK(res.outcome == ASM_REFUSED);
	asm_result_clear(&res);
	fake_free(&f);
}

/*
 * Harbor's project policy refuses a child (412 PROJECTPOLICYVIOLATION): the
 * group waits, naming the tag, the digest when known, the policy and
 * Harbor's words; nothing is written; once readable it publishes.
 */
static void
test_assemble_policy_blocked(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	char d1[80], d2[80], child[128];
	const char *repo = "library/scanned";
	int n_puts;

	setup_rule(0);
	fake_api(&f, &api);
	push_image(&f, repo, "1.0-amd64", "amd64", NULL, 0, d1);
	push_image(&f, repo, "1.0-arm64", "arm64", NULL, 0, d2);
	(void)am_fmt(f.refused[0], sizeof(f.refused[0]), "%s:1.0-arm64", repo);
	(void)am_fmt(f.refused_msg, sizeof(f.refused_msg), "current image with \"Running\" status of "
	    "vulnerability scanning cannot be pulled due to configured policy in 'Prevent images with "
	    "vulnerability severity of \"High\" or higher from running.'");
	assemble_rule(&api, &R, repo, "1.0", 0, &res);
	CHECK(res.outcome == ASM_WAITING);
	CHECK(res.n_blocked == 1 && res.blocked[0].policy == ASM_POLICY_VULNERABILITY);
	CHECK_STR(res.blocked[0].arch, "arm64");
	CHECK_STR(res.blocked[0].tag, "1.0-arm64");
	CHECK_STR(res.blocked[0].repo, repo);
	CHECK(strstr(res.detail, "arm64 blocked by Harbor's vulnerability policy") != NULL);
	CHECK(strstr(res.detail, "\"Running\" status") != NULL);
	CHECK(strncmp(res.detail, "missing", 7) != 0);
	CHECK(f.puts == 0);
	asm_result_clear(&res);

	/* A missing architecture and a blocked one: "missing" first (reconcile reads it). */
	f.refused[0][0] = '\0';
	(void)am_fmt(f.refused[1], sizeof(f.refused[1]), "%s:2.0-amd64", repo);
	(void)am_fmt(f.refused_msg, sizeof(f.refused_msg), "The image is not signed by cosign.");
	push_image(&f, repo, "2.0-amd64", "amd64", NULL, 0, d1);
	assemble_rule(&api, &R, repo, "2.0", 0, &res);
	CHECK(res.outcome == ASM_WAITING && res.n_blocked == 1);
	CHECK(res.blocked[0].policy == ASM_POLICY_COSIGN);
	CHECK(strncmp(res.detail, "missing arm64; amd64 blocked by Harbor's cosign policy", 54) == 0);
	asm_result_clear(&res);
	f.refused[1][0] = '\0';

	/* A buildx child refused by digest: the digest and the tag it came from are both named. */
	push_buildx(&f, repo, "3.0-arm64", "arm64", d2);
	push_image(&f, repo, "3.0-amd64", "amd64", NULL, 0, d1);
	(void)am_fmt(child, sizeof(child), "%s:%s", repo, d2);
	(void)am_fmt(f.refused[2], sizeof(f.refused[2]), "%s", child);
	(void)am_fmt(f.refused_msg, sizeof(f.refused_msg), "current image with 3 vulnerabilities cannot "
	    "be pulled due to configured policy");
	assemble_rule(&api, &R, repo, "3.0", 0, &res);
	CHECK(res.outcome == ASM_WAITING && res.n_blocked == 1);
	CHECK_STR(res.blocked[0].digest, d2);
	CHECK_STR(res.blocked[0].tag, "3.0-arm64");
	CHECK(f.puts == 0);
	asm_result_clear(&res);

	/* The policy lifts: published. */
	f.refused[2][0] = '\0';
	assemble_rule(&api, &R, repo, "3.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED && res.n_blocked == 0);
	asm_result_clear(&res);
	/* The published index itself cannot be read (unsigned, signature required): written again,
	   never a failure retried for ever; a dry run says it would. */
	(void)am_fmt(f.refused[3], sizeof(f.refused[3]), "%s:3.0", repo);
	n_puts = f.puts;
	assemble_rule(&api, &R, repo, "3.0", 1, &res);
	CHECK(res.outcome == ASM_DRY_RUN && strstr(res.detail, "would be written again") != NULL);
	CHECK(f.puts == n_puts);
	asm_result_clear(&res);
	assemble_rule(&api, &R, repo, "3.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(strstr(res.detail, "target unreadable under the registry's policy") != NULL);
	CHECK(strstr(res.detail, "configure sign") != NULL);
	CHECK(f.puts == n_puts + 1);
	asm_result_clear(&res);
	CHECK(asm_policy_of("The image is not signed by notation.") == ASM_POLICY_NOTATION);
	CHECK(asm_policy_of("") == ASM_POLICY_OTHER);
	CHECK_STR(asm_policy_name(ASM_POLICY_OTHER), "other");
	fake_free(&f);
}

/* Configs are read once per digest when a cache is given: registry requests per index drop. */
static void
test_config_cache(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	char d1[80], d2[80];
	const char *repo = "library/cached";

	setup_rule(0);
	fake_api(&f, &api);
	api.configs = cache_new(sizeof(struct image_info), 16);
	push_image(&f, repo, "1.0-amd64", "amd64", NULL, 0, d1);
	assemble_rule(&api, &R, repo, "1.0", 0, &res);          /* waiting: reads amd64's config */
	/* the target's HEAD ran alongside the reads: spent on a waiting run */
	CHECK(res.outcome == ASM_WAITING && f.blob_gets == 1 && f.heads == 1);
	f.heads = 0;
	asm_result_clear(&res);
	push_image(&f, repo, "1.0-arm64", "arm64", NULL, 0, d2);
	assemble_rule(&api, &R, repo, "1.0", 0, &res);          /* only arm64's config is new */
	CHECK(res.outcome == ASM_PUBLISHED && f.blob_gets == 2);
	/* this run: 2 GET, 1 blob, HEAD, PUT (one instance: no source re-check) */
	CHECK(f.gets == 4 && f.heads == 1 && f.puts == 1);
	asm_result_clear(&res);
	f.gets = f.heads = f.puts = f.blob_gets = 0;
	assemble_rule(&api, &R, repo, "1.0", 0, &res);          /* re-delivery: 2 GET + HEAD */
	CHECK(res.outcome == ASM_UNCHANGED);
	CHECK(f.gets == 2 && f.heads == 1 && f.puts == 0 && f.blob_gets == 0);
	asm_result_clear(&res);
	/* A config whose digest is cached is trusted; a lying tag is still refused
	 * because the platform comes from that same (immutable) config. */
	push_image(&f, repo, "2.0-amd64", "amd64", NULL, 0, d1);
	push_image(&f, repo, "2.0-arm64", "amd64", NULL, 0, d2);
	assemble_rule(&api, &R, repo, "2.0", 0, &res);
	CHECK(res.outcome == ASM_REFUSED);
	asm_result_clear(&res);
	cache_free(api.configs);
	fake_free(&f);
}

/*
 * Another replica rebuilds amd64 while this assembly runs: the fake moves
 * 6.0-amd64 (new content) each time the target PUT lands, `moves` times.
 */
struct moving {
	struct fake *f;
	int moves;
	int salt;
	int drop;             /* the PUT removes 6.0-amd64 instead (cleanup by another replica) */
	int head_fails;       /* source HEADs after a target PUT that fail (429/5xx), left */
	int no_digest;        /* source HEADs carry no Docker-Content-Digest */
	int put_seen;         /* a target PUT landed in this run */
};
static struct moving MOV;

static void
push_salted(struct fake *f, const char *repo, const char *tag, int salt)
{
	char config[256], cd[80], manifest[1024], d[80];

	(void)am_fmt(config, sizeof(config),
	    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"author\":\"build %d\","
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", salt);
	digest_sha256(config, strlen(config), cd, sizeof(cd));
	store(f, repo, cd, "application/octet-stream", config, strlen(config));
	(void)am_fmt(manifest, sizeof(manifest),
	    "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
	    "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[]}",
	    MT_OCI_MANIFEST, cd, strlen(config));
	digest_sha256(manifest, strlen(manifest), d, sizeof(d));
	store(f, repo, tag, MT_OCI_MANIFEST, manifest, strlen(manifest));
	store(f, repo, d, MT_OCI_MANIFEST, manifest, strlen(manifest));
}

static enum am_err
moving_put(void *ctx, const char *repo, const char *ref, const char *mt, const char *body,
    size_t len, struct reg_reply *out, char *err, size_t errlen)
{
	enum am_err rc = f_put(ctx, repo, ref, mt, body, len, out, err, errlen);

	if (rc == AM_OK && strcmp(ref, "6.0") == 0)
		MOV.put_seen = 1;
	if (rc == AM_OK && strcmp(ref, "6.0") == 0 && MOV.drop)
		drop(MOV.f, repo, "6.0-amd64");
	if (rc == AM_OK && strcmp(ref, "6.0") == 0 && MOV.moves > 0) {
		MOV.moves--;
		push_salted(MOV.f, repo, "6.0-amd64", ++MOV.salt);
	}
	return rc;
}

/* A source HEAD after the PUT may fail, and may lack its digest header. */
static enum am_err
moving_head(void *ctx, const char *repo, const char *ref, struct reg_reply *out, char *err, size_t errlen)
{
	enum am_err rc;

	if (strcmp(ref, "6.0") != 0 && MOV.put_seen && MOV.head_fails > 0) {
		MOV.head_fails--;
		out->status = 503;
		return am_fail(err, errlen, AM_ETRANSIENT, "HEAD %s: 503", ref);
	}
	rc = f_head(ctx, repo, ref, out, err, errlen);
	if (rc == AM_OK && strcmp(ref, "6.0") != 0 && MOV.no_digest)
		out->digest[0] = '\0';
	return rc;
}

static int
target_puts(const struct fake *f)
{
	int i, n = 0;

	for (i = 0; i < f->puts && i < 32; i++)
		n += strcmp(f->put_refs[i], "library/mov:6.0") == 0;
	return n;
}

/* Does repo:6.0 name the amd64 child repo:6.0-amd64 holds now, and the arm64 child d2? */
static int
index_has_newest_amd64(struct fake *f, const char *repo, const char *d2)
{
	const struct obj *amd = find(f, repo, "6.0-amd64"), *idx = find(f, repo, "6.0");
	char da[80];

	if (amd == NULL || idx == NULL)
		return 0;
	digest_sha256(amd->body, amd->len, da, sizeof(da));
	return strstr(idx->body, da) != NULL && strstr(idx->body, d2) != NULL;
}

static void
test_source_moved_under_put(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	char d2[80];
	const char *repo = "library/mov";

	setup_rule(INDEX_OCI);
	fake_api(&f, &api);
	api.manifest_put = moving_put;
	MOV.f = &f;
	MOV.salt = 0;
	push_salted(&f, repo, "6.0-amd64", 0);
	push_image(&f, repo, "6.0-arm64", "arm64", NULL, 1, d2);

	/* Replicas: moved once: assembled again, the target names the newest amd64. */
	MOV.moves = 1;
	assemble_rule_as(&api, &R, repo, "6.0", 0, 2, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(target_puts(&f) == 2);
	CHECK(index_has_newest_amd64(&f, repo, d2));
	asm_result_clear(&res);

	/* Still current: one HEAD of the target, no PUT, no source re-check needed. */
	assemble_rule_as(&api, &R, repo, "6.0", 0, 2, &res);
	CHECK(res.outcome == ASM_UNCHANGED);
	CHECK(target_puts(&f) == 2);
	asm_result_clear(&res);

	/* Moving under every PUT: 3 assemblies, then a transient failure for the backoff. */
	MOV.moves = 100;
	push_salted(&f, repo, "6.0-amd64", ++MOV.salt);
	assemble_rule_as(&api, &R, repo, "6.0", 0, 2, &res);
	CHECK(res.outcome == ASM_FAILED && res.err == AM_ETRANSIENT);
	CHECK(target_puts(&f) == 5);
	CHECK(strstr(res.detail, "kept moving") != NULL);
	CHECK(strstr(res.detail, "library/mov:6.0-amd64 moved while assembling") != NULL);
	asm_result_clear(&res);

	/*
	 * One instance: no HEADs after the PUT, so a move under it is not seen
	 * here; the moved tag's own webhook runs the group again (queue rerun).
	 */
	MOV.moves = 1;
	push_salted(&f, repo, "6.0-amd64", ++MOV.salt);
	f.heads = 0;
	assemble_rule(&api, &R, repo, "6.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(target_puts(&f) == 6);
	CHECK(f.heads == 1);                      /* the target's, alongside the reads */
	asm_result_clear(&res);
	assemble_rule(&api, &R, repo, "6.0", 0, &res);   /* that webhook's run */
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(target_puts(&f) == 7);
	CHECK(index_has_newest_amd64(&f, repo, d2));
	asm_result_clear(&res);
	fake_free(&f);
}

/*
 * Issue 22 §5 and §3: the re-check after the PUT. A HEAD that fails is
 * unknown (once more, then assemble again), a HEAD without a digest is
 * answered by a GET, and a tag that is gone is not a moved tag.
 */
static void
test_recheck_unknown_and_gone(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	char d2[80];
	const char *repo = "library/mov";
	int puts;

	setup_rule(INDEX_OCI);
	fake_api(&f, &api);
	api.manifest_put = moving_put;
	api.manifest_head = moving_head;
	memset(&MOV, 0, sizeof(MOV));
	MOV.f = &f;
	push_salted(&f, repo, "6.0-amd64", 0);
	push_image(&f, repo, "6.0-arm64", "arm64", NULL, 1, d2);

	/* amd64 moves under the PUT and the first re-check HEAD fails: retried, the move seen. */
	MOV.moves = 1;
	MOV.head_fails = 1;
	assemble_rule_as(&api, &R, repo, "6.0", 0, 2, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(target_puts(&f) == 2);
	CHECK(index_has_newest_amd64(&f, repo, d2));
	asm_result_clear(&res);

	/*
	 * Every re-check HEAD fails: unknown, never "not moved". Each source is
	 * asked twice, then the run assembles again: its reads find the target
	 * current (nothing moved), so the second run is unchanged, with no PUT.
	 */
	push_salted(&f, repo, "6.0-amd64", ++MOV.salt);
	MOV.head_fails = 100;
	puts = target_puts(&f);
	assemble_rule_as(&api, &R, repo, "6.0", 0, 2, &res);
	CHECK(res.outcome == ASM_UNCHANGED);
	CHECK(MOV.head_fails == 96);
	CHECK(target_puts(&f) == puts + 1);
	CHECK(index_has_newest_amd64(&f, repo, d2));
	asm_result_clear(&res);
	MOV.head_fails = 0;

	/* No Docker-Content-Digest on HEAD: a GET is hashed, nothing looks moved. */
	push_salted(&f, repo, "6.0-amd64", ++MOV.salt);
	MOV.no_digest = 1;
	puts = target_puts(&f);
	assemble_rule_as(&api, &R, repo, "6.0", 0, 2, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(target_puts(&f) == puts + 1);
	CHECK(strstr(res.detail, "moved") == NULL);
	asm_result_clear(&res);
	MOV.no_digest = 0;

	/* The tag removed right after the PUT: not a move, the index stands as published. */
	push_salted(&f, repo, "6.0-amd64", ++MOV.salt);
	MOV.drop = 1;
	puts = target_puts(&f);
	assemble_rule_as(&api, &R, repo, "6.0", 0, 2, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(target_puts(&f) == puts + 1);
	CHECK(strstr(res.detail, "moved") == NULL);
	asm_result_clear(&res);
	MOV.drop = 0;
	fake_free(&f);
}

TEST_MAIN("assemble")
static void
run_tests(void)
{
	test_index_build();
	test_manifest_parse();
	test_assemble_flow();
	test_assemble_parallel_reads();
	test_assemble_refusals();
	test_assemble_policy_blocked();
	test_config_cache();
	test_source_moved_under_put();
	test_recheck_unknown_and_gone();
}
