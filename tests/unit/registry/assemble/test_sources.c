/*
 * Unit tests of the source layouts and publishing options: templates with
 * {arch} in the repository part, tag shapes, version_regex, ambiguity
 * checks, extra/copy tags, and the assembly with cross-repository copies,
 * attestations, annotations, optional architectures and cleanup, against an
 * in-memory fake registry behind struct reg_api.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <unistd.h>
#include <jansson.h>

#include "config/config.h"
#include "config/plan.h"
#include "config/rule.h"
#include "registry/assemble/assemble.h"
#include "registry/harbor/tags.h"
#include "tests/unit/fake_registry.h"

/* ---- rules ---- */

static struct arch_token g_archs[8];
static char *g_globs[] = { "library/*" };

/* A rule from templates and tokens ("name" or "name=os/arch[/variant]", "?name" optional). */
static enum am_err
mkrule(struct rule *r, const char *source, const char *target, const char *const *tokens,
    char *err, size_t errlen)
{
	size_t i;
	enum am_err rc;

	rule_clear(r);
	memset(r, 0, sizeof(*r));
	(void)am_fmt(r->name, sizeof(r->name), "test");
	r->repositories = g_globs;
	r->n_repositories = 1;
	r->archs = g_archs;
	if ((rc = tmpl_compile(source, 1, &r->source, err, errlen)) != AM_OK ||
	    (rc = tmpl_compile(target, 0, &r->target, err, errlen)) != AM_OK)
		return rc;
	for (i = 0; tokens[i] != NULL; i++) {
		struct arch_token *t = &g_archs[i];
		const char *name = tokens[i], *eq;
		memset(t, 0, sizeof(*t));
		if (name[0] == '?') {
			t->optional = 1;
			name++;
		}
		eq = strchr(name, '=');
		(void)am_fmt(t->name, sizeof(t->name), "%.*s", (int)(eq ? (size_t)(eq - name) : strlen(name)), name);
		if (eq != NULL)
			CHECK(platform_parse(eq + 1, &t->platform, err, errlen) == AM_OK);
		else
			CHECK(arch_builtin(name, &t->platform));
	}
	r->n_archs = i;
	return AM_OK;
}

static void
test_repo_templates(void)
{
	struct rule r;
	struct rule_match m;
	struct group g;
	char err[512], buf[256], repos[4][RULE_MAX_REPO];
	const char *two[] = { "amd64", "arm64", NULL };

	memset(&r, 0, sizeof(r));
	CHECK(mkrule(&r, "{repo}-{arch}:{version}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	CHECK(r.source.arch_in_repo && r.source.has_arch);
	CHECK(rule_match_source(&r, "library/java-gdal-local-amd64", "3.8.5", &m));
	CHECK_STR(m.repo, "library/java-gdal-local");
	CHECK_STR(m.version, "3.8.5");
	CHECK(m.arch == 0);
	CHECK(rule_match_source(&r, "library/java-gdal-local-arm64", "3.8.5-rc1", &m));
	CHECK(m.arch == 1);
	CHECK_STR(m.version, "3.8.5-rc1");
	CHECK(!rule_match_source(&r, "library/java-gdal-local", "3.8.5", &m));        /* the target */
	CHECK(!rule_match_source(&r, "library/app-s390x", "1.0", &m));
	CHECK(!rule_match_source(&r, "other/app-amd64", "1.0", &m));                  /* glob on {repo} */
	CHECK(!rule_match_source(&r, "library/-amd64", "1.0", &m));                   /* {repo} invalid */
	CHECK(rule_group_of(&r, "library/x-amd64", "2.0", &g));
	CHECK_STR(g.repo, "library/x");
	CHECK_STR(g.version, "2.0");
	CHECK(rule_source_repo(&r, "library/x", 1, buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "library/x-arm64");
	CHECK(rule_source_repos(&r, "library/x", repos, 4) == 2);
	CHECK_STR(repos[0], "library/x-amd64");
	CHECK_STR(repos[1], "library/x-arm64");
	CHECK(rule_match_target(&r, "library/java-gdal-local", "3.8.5"));
	CHECK(tmpl_expand_tag(&r.source, "3.8.5", NULL, buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "3.8.5");

	CHECK(mkrule(&r, "{repo}/{arch}:{version}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	CHECK(rule_match_source(&r, "library/team/app/arm64", "1.0", &m));
	CHECK_STR(m.repo, "library/team/app");
	CHECK(m.arch == 1);

	/* Same repository: the one repository to list is the group's own. */
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	CHECK(rule_source_repos(&r, "library/x", repos, 4) == 1);
	CHECK_STR(repos[0], "library/x");

	/* Grammar errors. */
	CHECK(tmpl_compile("{repo}{arch}:{version}", 1, &r.source, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "ambiguous") != NULL);
	CHECK(tmpl_compile("{repo}-{arch}:{version}-{arch}", 1, &r.source, err, sizeof(err)) == AM_EINVAL);
	CHECK(tmpl_compile("{repo}-{version}:{arch}", 1, &r.source, err, sizeof(err)) == AM_EINVAL);
	CHECK(tmpl_compile("{repo}-X:{version}-{arch}", 1, &r.source, err, sizeof(err)) == AM_EINVAL);
	CHECK(tmpl_compile("{repo}", 1, &r.source, err, sizeof(err)) == AM_EINVAL);
	CHECK(tmpl_compile("{repo}-{arch}:{version}", 0, &r.target, err, sizeof(err)) == AM_EINVAL);
	CHECK(tmpl_compile("{repo}-x:{version}", 0, &r.target, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "{repo}:") != NULL);
	CHECK(tmpl_compile("{repo}:{version}{", 0, &r.target, err, sizeof(err)) == AM_EINVAL);
	CHECK(tmpl_compile("{repo}:{tag}", 0, &r.target, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "unknown placeholder") != NULL);

	/* A token that cannot be part of a repository name. */
	{
		const char *upper[] = { "amd64", "ARM=linux/arm64", NULL };
		CHECK(mkrule(&r, "{repo}-{arch}:{version}", "{repo}:{version}", upper, err, sizeof(err)) == AM_OK);
		CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
		CHECK(strstr(err, "repository name") != NULL);
	}
	rule_clear(&r);
}

static void
test_tag_shapes_and_regex(void)
{
	struct rule r;
	struct rule_match m;
	char err[512];
	const char *toks[] = { "amd64", "arm64", "x86_64=linux/amd64/v2", NULL };
	const char *two[] = { "amd64", "arm64", NULL };

	memset(&r, 0, sizeof(r));
	CHECK(mkrule(&r, "{repo}:{version}_{arch}", "{repo}:{version}", toks, err, sizeof(err)) == AM_OK);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	CHECK(rule_match_source(&r, "library/a", "1.2.3_x86_64", &m));
	CHECK_STR(m.version, "1.2.3");
	CHECK(m.arch == 2);
	CHECK(rule_match_source(&r, "library/a", "1.2.3_beta_arm64", &m));
	CHECK_STR(m.version, "1.2.3_beta");

	CHECK(mkrule(&r, "{repo}:{version}.{arch}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	CHECK(rule_match_source(&r, "library/a", "3.8.5.arm64", &m));
	CHECK_STR(m.version, "3.8.5");
	CHECK(!rule_match_source(&r, "library/a", "3.8.5-arm64", &m));

	/* version_regex: release versions only; the whole version must match even unanchored. */
	CHECK(mkrule(&r, "{repo}:{arch}-{version}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	(void)am_fmt(r.version_regex, sizeof(r.version_regex), "[0-9]+\\.[0-9]+\\.[0-9]+");
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	CHECK(rule_match_source(&r, "library/a", "arm64-3.8.5", &m));
	CHECK_STR(m.version, "3.8.5");
	CHECK(!rule_match_source(&r, "library/a", "arm64-3.8.5-rc1", &m));
	CHECK(!rule_match_source(&r, "library/a", "arm64-v3.8.5", &m));
	CHECK(rule_version_ok(&r, "10.0.1"));
	CHECK(!rule_version_ok(&r, "10.0"));
	CHECK(rule_match_target(&r, "library/a", "3.8.5"));
	CHECK(!rule_match_target(&r, "library/a", "latest"));

	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	(void)am_fmt(r.version_regex, sizeof(r.version_regex), "([0-9]+");
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "version_regex") != NULL);
	rule_clear(&r);
}

static void
test_ambiguity(void)
{
	struct rule r;
	char err[512];
	const char *under[] = { "x86_64", "64=linux/riscv64", NULL };
	const char *before[] = { "arm=linux/arm/v7", "arm-v6=linux/arm/v6", NULL };
	const char *repo[] = { "amd64", "x-amd64=linux/amd64/v3", NULL };
	const char *fine[] = { "armv7", "v7=linux/arm/v6", "arm64", "amd64", "arm64v8=linux/arm64/v9", NULL };
	const char *same[] = { "amd64", "x86_64", NULL };

	memset(&r, 0, sizeof(r));
	/* "1.0_x86_64" = (1.0, x86_64) or (1.0_x86, 64) */
	CHECK(mkrule(&r, "{repo}:{version}_{arch}", "{repo}:{version}", under, err, sizeof(err)) == AM_OK);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "ambiguous") != NULL);
	CHECK(strstr(err, "\"1.0_x86_64\"") != NULL && strstr(err, "\"1.0_x86\"") != NULL);
	/* The same tokens with another separator are fine. */
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", under, err, sizeof(err)) == AM_OK);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	/* {arch} first: "arm-v6-1.0" = (arm-v6, 1.0) or (arm, v6-1.0) */
	CHECK(mkrule(&r, "{repo}:{arch}-{version}", "{repo}:{version}", before, err, sizeof(err)) == AM_OK);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "\"arm-v6-1.0\"") != NULL && strstr(err, "\"v6-1.0\"") != NULL);
	/* ... but not when {arch} comes after: "1.0-arm-v6" has one reading. */
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", before, err, sizeof(err)) == AM_OK);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	/* In the repository part: "library/app-x-amd64" = (library/app, x-amd64) or (library/app-x, amd64) */
	CHECK(mkrule(&r, "{repo}-{arch}:{version}", "{repo}:{version}", repo, err, sizeof(err)) == AM_OK);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "repo \"library/app-x\"") != NULL);
	/* Suffixes that do not include the separator are no ambiguity (armv7 / v7, arm64 / arm64v8). */
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", fine, err, sizeof(err)) == AM_OK);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	/* Two tokens for one platform would always collide. */
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", same, err, sizeof(err)) == AM_OK);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "both stand for linux/amd64") != NULL);
	/* A tag that two tokens fit is refused at match time as well (belt and braces). */
	{
		struct rule_match m;
		CHECK(mkrule(&r, "{repo}:{version}_{arch}", "{repo}:{version}", under, err, sizeof(err)) == AM_OK);
		CHECK(!rule_match_source(&r, "library/a", "1.0_x86_64", &m));
		CHECK(rule_match_source(&r, "library/a", "1.0_64", &m));
	}
	rule_clear(&r);
}

static void
test_extra_and_copy_tags(void)
{
	struct rule r;
	char err[512], buf[RULE_MAX_TAG];
	const char *two[] = { "amd64", "arm64", NULL };

	memset(&r, 0, sizeof(r));
	CHECK(mkrule(&r, "{repo}-{arch}:{version}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	(void)am_fmt(r.version_regex, sizeof(r.version_regex), "^([0-9]+)\\.([0-9]+)\\.([0-9]+)(-rc[0-9]+)?$");
	(void)am_fmt(r.version_groups[0], sizeof(r.version_groups[0]), "major");
	(void)am_fmt(r.version_groups[1], sizeof(r.version_groups[1]), "minor");
	r.n_version_groups = 2;
	(void)am_fmt(r.extra_tags[0], sizeof(r.extra_tags[0]), "latest");
	(void)am_fmt(r.extra_tags[1], sizeof(r.extra_tags[1]), "{major}.{minor}");
	(void)am_fmt(r.extra_tags[2], sizeof(r.extra_tags[2]), "v{1}{4}");
	(void)am_fmt(r.extra_tags[3], sizeof(r.extra_tags[3]), "{version}-stable");
	r.n_extra_tags = 4;
	(void)am_fmt(r.copy_tag_text, sizeof(r.copy_tag_text), "{version}-{arch}");
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	CHECK(rule_extra_tag(&r, 0, "3.8.5", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "latest");
	CHECK(rule_extra_tag(&r, 1, "3.8.5", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "3.8");
	CHECK(rule_extra_tag(&r, 2, "3.8.5-rc2", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "v3-rc2");
	CHECK(rule_extra_tag(&r, 2, "3.8.5", buf, sizeof(buf)) == -1);   /* group 4 did not take part */
	CHECK(rule_extra_tag(&r, 3, "3.8.5", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "3.8.5-stable");
	CHECK(rule_extra_tag(&r, 1, "3.8", buf, sizeof(buf)) == -1);     /* not a version of this rule */
	CHECK(rule_copy_tag(&r, "3.8.5", 1, buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "3.8.5-arm64");
	CHECK(rule_match_target(&r, "library/app", "3.8.5-arm64"));      /* a copy tag is ours */
	CHECK(rule_match_target(&r, "library/app", "latest"));
	CHECK(!rule_match_target(&r, "library/app", "3.8.5-s390x"));

	r.n_extra_tags = 1;
	(void)am_fmt(r.extra_tags[0], sizeof(r.extra_tags[0]), "{major}-{arch}");
	rule_clear(&r);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "unknown placeholder {arch}") != NULL);
	(void)am_fmt(r.extra_tags[0], sizeof(r.extra_tags[0]), "{5}");
	rule_clear(&r);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "at least 5 groups") != NULL);
	(void)am_fmt(r.extra_tags[0], sizeof(r.extra_tags[0]), "-x");
	rule_clear(&r);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	(void)am_fmt(r.extra_tags[0], sizeof(r.extra_tags[0]), "a");
	(void)am_fmt(r.extra_tags[1], sizeof(r.extra_tags[1]), "a");
	r.n_extra_tags = 2;
	rule_clear(&r);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "twice") != NULL);
	r.n_extra_tags = 0;

	(void)am_fmt(r.copy_tag_text, sizeof(r.copy_tag_text), "{version}");
	rule_clear(&r);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "copy_tag") != NULL);
	(void)am_fmt(r.copy_tag_text, sizeof(r.copy_tag_text), "{version}{arch}");
	rule_clear(&r);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "ambiguous") != NULL);

	/* copy_tag with sources in the target repository: nothing is copied, so refused. */
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	(void)am_fmt(r.copy_tag_text, sizeof(r.copy_tag_text), "{version}-{arch}");
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "another repository") != NULL);
	/* version_groups without a regex, or more names than groups. */
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	r.n_version_groups = 1;
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	(void)am_fmt(r.version_regex, sizeof(r.version_regex), "([0-9]+)");
	r.n_version_groups = 2;
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "has 1") != NULL);
	rule_clear(&r);
}

static void
test_tokens(void)
{
	struct platform p, q;
	char err[128], buf[64];
	static const struct { const char *tok, *plat; } want[] = {
		{ "armv7", "linux/arm/v7" }, { "arm32v7", "linux/arm/v7" }, { "armhf", "linux/arm/v7" },
		{ "arm64v8", "linux/arm64" }, { "aarch64", "linux/arm64" }, { "amd64v3", "linux/amd64/v3" },
		{ "x86_64", "linux/amd64" }, { "armv6", "linux/arm/v6" }, { "arm32v6", "linux/arm/v6" },
		{ "armel", "linux/arm/v6" }, { "i386", "linux/386" }, { "386", "linux/386" },
	};
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK(arch_builtin(want[i].tok, &p));
		platform_format(&p, buf, sizeof(buf));
		CHECK_STR(buf, want[i].plat);
	}
	/* containerd: amd64/v1 is plain amd64; amd64v3 wants v3 exactly, amd64 accepts any. */
	CHECK(platform_parse("linux/x86_64/v1", &p, err, sizeof(err)) == AM_OK);
	platform_format(&p, buf, sizeof(buf));
	CHECK_STR(buf, "linux/amd64");
	CHECK(platform_parse("linux/amd64/v3", &p, err, sizeof(err)) == AM_OK);
	CHECK(arch_builtin("amd64v3", &q) && platform_satisfies(&p, &q));
	CHECK(arch_builtin("amd64", &q) && platform_satisfies(&p, &q));
	CHECK(arch_builtin("amd64v2", &q) && !platform_satisfies(&p, &q));
}

/* ---- fake registry with repositories, blobs, mounts and Harbor tag removal ---- */

struct img {
	const char *arch, *variant, *os, *os_version, *created, *label_source, *ann_source, *salt;
	int oci;
};

/* obj[key] merged with the JSON object text more (NULL: nothing). */
static void
merge_obj(json_t *obj, const char *key, const char *more)
{
	json_t *add;

	if (more == NULL)
		return;
	add = json_loads(more, 0, NULL);
	CHECK(json_is_object(add));
	if (json_object_get(obj, key) == NULL)
		json_object_set_new(obj, key, json_object());
	json_object_update(json_object_get(obj, key), add);
	json_decref(add);
}

/*
 * Push an image (config + one layer + manifest) under tag (NULL: by digest
 * only); labels and anns (NULL: none) are JSON objects merged into
 * config.Labels and the manifest's annotations.
 */
static void
push_image_facts(struct fake *f, const char *repo, const char *tag, const struct img *im,
    const char *labels, const char *anns, char *digest_out)
{
	json_t *config, *man;
	char *cbody, *mbody, layer[64], ld[80], cd[80];
	const char *mt = im->oci ? MT_OCI_MANIFEST : MT_DOCKER_MANIFEST;

	(void)am_fmt(layer, sizeof(layer), "layer %s %s", im->arch, im->salt ? im->salt : "");
	digest_sha256(layer, strlen(layer), ld, sizeof(ld));
	store(f, repo, ld, "application/octet-stream", layer, strlen(layer));
	config = json_pack("{s:s, s:s, s:{}, s:{s:s, s:[]}}", "architecture", im->arch,
	    "os", im->os ? im->os : "linux", "config", "rootfs", "type", "layers", "diff_ids");
	if (im->variant)
		json_object_set_new(config, "variant", json_string(im->variant));
	if (im->os_version)
		json_object_set_new(config, "os.version", json_string(im->os_version));
	if (im->created)
		json_object_set_new(config, "created", json_string(im->created));
	if (im->label_source)
		json_object_set_new(json_object_get(config, "config"), "Labels",
		    json_pack("{s:s}", ANN_SOURCE, im->label_source));
	merge_obj(json_object_get(config, "config"), "Labels", labels);
	cbody = json_dumps(config, JSON_COMPACT);
	digest_sha256(cbody, strlen(cbody), cd, sizeof(cd));
	store(f, repo, cd, "application/octet-stream", cbody, strlen(cbody));
	man = json_pack("{s:i, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, s:i}]}", "schemaVersion", 2,
	    "mediaType", mt, "config", "mediaType", "application/vnd.oci.image.config.v1+json",
	    "digest", cd, "size", (int)strlen(cbody), "layers", "mediaType",
	    "application/vnd.oci.image.layer.v1.tar+gzip", "digest", ld, "size", (int)strlen(layer));
	if (im->ann_source)
		json_object_set_new(man, "annotations", json_pack("{s:s}", ANN_SOURCE, im->ann_source));
	merge_obj(man, "annotations", anns);
	mbody = json_dumps(man, JSON_COMPACT);
	digest_sha256(mbody, strlen(mbody), digest_out, 80);
	store(f, repo, digest_out, mt, mbody, strlen(mbody));
	if (tag != NULL)
		store(f, repo, tag, mt, mbody, strlen(mbody));
	free(cbody);
	free(mbody);
	json_decref(config);
	json_decref(man);
}

static void
push_image(struct fake *f, const char *repo, const char *tag, const struct img *im, char *digest_out)
{
	push_image_facts(f, repo, tag, im, NULL, NULL, digest_out);
}

/* buildx-style: image and attestation by digest, index (images, then attestation) under tag. */
static void
push_buildx(struct fake *f, const char *repo, const char *tag, const struct img *im, char *img_d,
    char *att_d)
{
	struct img att = { "unknown", NULL, "unknown", NULL, NULL, NULL, NULL, im->salt, 1 };
	json_t *idx;
	char *body;
	struct obj *io, *ao;

	push_image(f, repo, NULL, im, img_d);
	att.salt = img_d;
	push_image(f, repo, NULL, &att, att_d);
	io = find(f, repo, img_d);
	ao = find(f, repo, att_d);
	idx = json_pack("{s:i, s:s, s:[{s:s, s:s, s:i, s:{s:s, s:s}}, {s:s, s:s, s:i, s:{s:s, s:s}, "
	    "s:{s:s, s:s}}]}", "schemaVersion", 2, "mediaType", MT_OCI_INDEX, "manifests",
	    "mediaType", io->media_type, "digest", img_d, "size", (int)io->len,
	    "platform", "architecture", im->arch, "os", "linux",
	    "mediaType", MT_OCI_MANIFEST, "digest", att_d, "size", (int)ao->len,
	    "annotations", "vnd.docker.reference.digest", img_d, "vnd.docker.reference.type", "attestation-manifest",
	    "platform", "architecture", "unknown", "os", "unknown");
	body = json_dumps(idx, JSON_COMPACT);
	store(f, repo, tag, MT_OCI_INDEX, body, strlen(body));
	free(body);
	json_decref(idx);
}

static json_t *
doc_json(const struct asm_result *res)
{
	return json_loads(res->doc.body ? res->doc.body : "", 0, NULL);
}

static const char *
child_digest(json_t *idx, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(idx, "manifests"), i), "digest"));
}

static void
test_assemble_other_repository(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	struct rule r;
	char err[512], d1[80], d2[80], a2[80];
	const char *two[] = { "amd64", "arm64", NULL };
	struct img amd = { "amd64", NULL, NULL, NULL, NULL, NULL, NULL, "a", 0 };
	struct img arm = { "arm64", NULL, NULL, NULL, NULL, NULL, NULL, "b", 1 };
	json_t *idx;
	int puts;

	memset(&r, 0, sizeof(r));
	CHECK(mkrule(&r, "{repo}-{arch}:{version}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	(void)am_fmt(r.copy_tag_text, sizeof(r.copy_tag_text), "{version}-{arch}");
	r.keep_attestations = 1;
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	fake_api(&f, &api);
	push_image(&f, "library/gdal-amd64", "3.8.5", &amd, d1);
	push_buildx(&f, "library/gdal-arm64", "3.8.5", &arm, d2, a2);

	assemble_rule(&api, &r, "library/gdal", "3.8.5", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK_STR(res.target, "library/gdal:3.8.5");
	/* both images and the attestation now exist in the target repository, by digest */
	CHECK(find(&f, "library/gdal", d1) != NULL && find(&f, "library/gdal", d2) != NULL);
	CHECK(find(&f, "library/gdal", a2) != NULL);
	CHECK(res.manifests_copied == 3);
	CHECK(res.blobs_mounted == 6 && res.blobs_uploaded == 0 && f.copies == 0);   /* config + layer each */
	/* copy tags point at the children */
	CHECK(find(&f, "library/gdal", "3.8.5-amd64") != NULL && find(&f, "library/gdal", "3.8.5-arm64") != NULL);
	CHECK(res.tags_pushed == 2);
	/* the target is the last write */
	CHECK_STR(f.put_refs[f.puts - 1], "library/gdal:3.8.5");
	idx = doc_json(&res);
	CHECK_STR(child_digest(idx, 0), d1);
	CHECK_STR(child_digest(idx, 1), d2);
	CHECK_STR(child_digest(idx, 2), a2);
	json_decref(idx);
	CHECK(strstr(res.detail, "copied 3 manifests") != NULL);
	asm_result_clear(&res);

	/* Again: unchanged, nothing copied or mounted again. */
	puts = f.puts;
	f.mounts = 0;
	assemble_rule(&api, &r, "library/gdal", "3.8.5", 0, &res);
	CHECK(res.outcome == ASM_UNCHANGED);
	CHECK(f.puts == puts && f.mounts == 0);
	asm_result_clear(&res);

	/* The registry declines mounts: blobs are copied through archmerge instead. */
	push_image(&f, "library/gdal-amd64", "4.0", &(struct img){ "amd64", NULL, NULL, NULL, NULL, NULL, NULL,
	    "c", 0 }, d1);
	push_image(&f, "library/gdal-arm64", "4.0", &(struct img){ "arm64", NULL, NULL, NULL, NULL, NULL, NULL,
	    "d", 0 }, d2);
	f.refuse_mounts = 1;
	assemble_rule(&api, &r, "library/gdal", "4.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(res.blobs_uploaded == 4 && res.blobs_mounted == 0 && f.copies == 4);
	CHECK_STR(res.doc.media_type, MT_DOCKER_LIST);   /* both Docker, no attestation */
	asm_result_clear(&res);

	/* Without copy support in the interface: refused, target untouched. */
	push_image(&f, "library/gdal-amd64", "5.0", &amd, d1);
	push_image(&f, "library/gdal-arm64", "5.0", &(struct img){ "arm64", NULL, NULL, NULL, NULL, NULL, NULL,
	    "e", 0 }, d2);
	api.blob_mount = NULL;
	assemble_rule(&api, &r, "library/gdal", "5.0", 0, &res);
	CHECK(res.outcome == ASM_FAILED);
	CHECK(find(&f, "library/gdal", "5.0") == NULL);
	asm_result_clear(&res);
	fake_free(&f);
	rule_clear(&r);
}

static void
test_assemble_attestations(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	struct rule r;
	char err[512], d1[80], d2[80], a1[80], a2[80];
	const char *two[] = { "amd64", "arm64", NULL };
	json_t *idx, *ann;

	memset(&r, 0, sizeof(r));
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	r.keep_attestations = 1;
	fake_api(&f, &api);
	/* Docker media types for the images: with an attestation the output must still be OCI. */
	push_buildx(&f, "library/x", "1.0-amd64", &(struct img){ "amd64", NULL, NULL, NULL, NULL, NULL, NULL,
	    "1", 0 }, d1, a1);
	push_buildx(&f, "library/x", "1.0-arm64", &(struct img){ "arm64", NULL, NULL, NULL, NULL, NULL, NULL,
	    "2", 0 }, d2, a2);
	assemble_rule(&api, &r, "library/x", "1.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK_STR(res.doc.media_type, MT_OCI_INDEX);
	idx = doc_json(&res);
	CHECK(json_array_size(json_object_get(idx, "manifests")) == 4);
	CHECK_STR(child_digest(idx, 0), d1);
	CHECK_STR(child_digest(idx, 1), d2);
	CHECK_STR(child_digest(idx, 2), a1);   /* after the images, in their order */
	CHECK_STR(child_digest(idx, 3), a2);
	ann = json_object_get(json_array_get(json_object_get(idx, "manifests"), 3), "annotations");
	CHECK_STR(json_string_value(json_object_get(ann, "vnd.docker.reference.digest")), d2);
	CHECK_STR(json_string_value(json_object_get(ann, "vnd.docker.reference.type")), "attestation-manifest");
	CHECK(json_object_get(json_array_get(json_object_get(idx, "manifests"), 0), "annotations") == NULL);
	json_decref(idx);
	asm_result_clear(&res);

	/* keep_attestations = false: the Docker images make a Docker list, no annotations anywhere. */
	r.keep_attestations = 0;
	assemble_rule(&api, &r, "library/x", "1.0", 1, &res);
	CHECK(res.outcome == ASM_DRY_RUN);
	CHECK_STR(res.doc.media_type, MT_DOCKER_LIST);
	CHECK(strstr(res.doc.body, "annotations") == NULL);
	asm_result_clear(&res);

	/* format docker with attestations kept: they are left out of the list. */
	r.keep_attestations = 1;
	r.format = INDEX_DOCKER;
	assemble_rule(&api, &r, "library/x", "1.0", 1, &res);
	CHECK(res.outcome == ASM_DRY_RUN);
	CHECK_STR(res.doc.media_type, MT_DOCKER_LIST);
	CHECK(strstr(res.doc.body, a1) == NULL && strstr(res.doc.body, "annotations") == NULL);
	asm_result_clear(&res);
	fake_free(&f);
	rule_clear(&r);
}

static void
test_assemble_extra_tags_and_annotations(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	struct rule r;
	char err[512], d1[80], d2[80], first[80];
	const char *two[] = { "amd64", "arm64", NULL };
	json_t *idx, *ann;
	int puts;

	memset(&r, 0, sizeof(r));
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	(void)am_fmt(r.version_regex, sizeof(r.version_regex), "^([0-9]+)\\.([0-9]+)\\.([0-9]+)$");
	(void)am_fmt(r.extra_tags[0], sizeof(r.extra_tags[0]), "latest");
	(void)am_fmt(r.extra_tags[1], sizeof(r.extra_tags[1]), "{1}.{2}");
	r.n_extra_tags = 2;
	r.created_annotation = 1;
	r.inherit_annotations = 1;
	(void)am_fmt(r.annotations[0].key, sizeof(r.annotations[0].key), "org.opencontainers.image.vendor");
	(void)am_fmt(r.annotations[0].value, sizeof(r.annotations[0].value), "Example");
	(void)am_fmt(r.annotations[1].key, sizeof(r.annotations[1].key), "org.opencontainers.image.version");
	(void)am_fmt(r.annotations[1].value, sizeof(r.annotations[1].value), "v{version}");
	r.n_annotations = 2;
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	fake_api(&f, &api);
	/* created: +02:00 at 11:00 is 09:00Z, older than the other's 10:00Z */
	push_image(&f, "library/y", "3.8.5-amd64", &(struct img){ "amd64", NULL, NULL, NULL,
	    "2026-01-02T11:00:00+02:00", "https://git.example/y", NULL, "1", 0 }, d1);
	push_image(&f, "library/y", "3.8.5-arm64", &(struct img){ "arm64", NULL, NULL, NULL,
	    "2026-01-02T10:00:00.5Z", NULL, "https://git.example/y", "2", 0 }, d2);
	assemble_rule(&api, &r, "library/y", "3.8.5", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK_STR(res.doc.media_type, MT_OCI_INDEX);   /* annotations: never a Docker list */
	idx = doc_json(&res);
	ann = json_object_get(idx, "annotations");
	CHECK_STR(json_string_value(json_object_get(ann, ANN_CREATED)), "2026-01-02T10:00:00.5Z");
	CHECK_STR(json_string_value(json_object_get(ann, ANN_SOURCE)), "https://git.example/y");
	CHECK(json_object_get(ann, ANN_REVISION) == NULL);   /* nobody has one */
	CHECK_STR(json_string_value(json_object_get(ann, "org.opencontainers.image.version")), "v3.8.5");
	CHECK_STR(json_string_value(json_object_get(ann, "org.opencontainers.image.vendor")), "Example");
	json_decref(idx);
	/* keys in sorted order in the bytes */
	CHECK(strstr(res.doc.body, ANN_CREATED) < strstr(res.doc.body, ANN_SOURCE));
	CHECK(strstr(res.doc.body, ANN_SOURCE) < strstr(res.doc.body, "image.vendor"));
	CHECK(find(&f, "library/y", "latest") != NULL && find(&f, "library/y", "3.8") != NULL);
	CHECK(res.tags_pushed == 2);
	CHECK_STR(f.put_refs[f.puts - 1], "library/y:3.8.5");
	CHECK(strstr(res.detail, "extra tags latest,3.8") != NULL);
	(void)am_fmt(first, sizeof(first), "%s", res.digest);
	asm_result_clear(&res);

	/* Same children again: same bytes (created comes from the children), nothing pushed. */
	puts = f.puts;
	assemble_rule(&api, &r, "library/y", "3.8.5", 0, &res);
	CHECK(res.outcome == ASM_UNCHANGED);
	CHECK_STR(res.digest, first);
	CHECK(f.puts == puts);
	asm_result_clear(&res);

	/* An unchanged group re-creates a missing extra tag but never moves an existing one. */
	drop(&f, "library/y", "3.8");
	push_image(&f, "library/y", "latest", &(struct img){ "amd64", NULL, NULL, NULL, NULL, NULL, NULL,
	    "other", 0 }, d1);
	assemble_rule(&api, &r, "library/y", "3.8.5", 0, &res);
	CHECK(res.outcome == ASM_UNCHANGED);
	CHECK(f.puts == puts + 1 && find(&f, "library/y", "3.8") != NULL);
	CHECK(strcmp(f.put_refs[f.puts - 1], "library/y:3.8") == 0);
	asm_result_clear(&res);

	/* Disagreeing sources: no source annotation. */
	push_image(&f, "library/y", "3.8.6-amd64", &(struct img){ "amd64", NULL, NULL, NULL, NULL, "https://a",
	    NULL, "3", 0 }, d1);
	push_image(&f, "library/y", "3.8.6-arm64", &(struct img){ "arm64", NULL, NULL, NULL, NULL, "https://b",
	    NULL, "4", 0 }, d2);
	assemble_rule(&api, &r, "library/y", "3.8.6", 1, &res);
	CHECK(res.outcome == ASM_DRY_RUN);
	CHECK(strstr(res.doc.body, ANN_SOURCE) == NULL && strstr(res.doc.body, ANN_CREATED) == NULL);
	asm_result_clear(&res);

	/* A version outside version_regex is refused (the CLI can ask for any). */
	assemble_rule(&api, &r, "library/y", "3.8", 0, &res);
	CHECK(res.outcome == ASM_REFUSED);
	CHECK(strstr(res.detail, "version_regex") != NULL);
	asm_result_clear(&res);
	fake_free(&f);
	rule_clear(&r);
}

/*
 * The index inherits title, description, licenses, url, documentation,
 * vendor and authors like source and revision: a manifest annotation, else
 * a config label, only when every child agrees; configured ones win.
 */
static void
test_assemble_inherited_facts(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	struct rule r;
	char err[512], d1[80], d2[80], lng[FACT_MAX + 8], labels[FACT_MAX + 64];
	const char *two[] = { "amd64", "arm64", NULL };
	json_t *idx, *ann;

	memset(&f, 0, sizeof(f));
	memset(&r, 0, sizeof(r));
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	r.inherit_annotations = 1;
	(void)am_fmt(r.annotations[0].key, sizeof(r.annotations[0].key), "org.opencontainers.image.vendor");
	(void)am_fmt(r.annotations[0].value, sizeof(r.annotations[0].value), "Configured");
	r.n_annotations = 1;
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	fake_api(&f, &api);
	memset(lng, 'x', FACT_MAX);
	lng[FACT_MAX] = '\0';   /* one byte too long for a fact: dropped, so never agreed */
	(void)am_fmt(labels, sizeof(labels), "{\"org.opencontainers.image.url\": \"%s\"}", lng);
	push_image_facts(&f, "library/z", "1.0-amd64", &(struct img){ "amd64", .salt = "1" },
	    "{\"org.opencontainers.image.title\": \"App\","
	    " \"org.opencontainers.image.description\": \"old words\","
	    " \"org.opencontainers.image.licenses\": \"MIT\","
	    " \"org.opencontainers.image.vendor\": \"Labelled\","
	    " \"org.opencontainers.image.authors\": \"a@example.org\","
	    " \"org.opencontainers.image.url\": \"https://u.example\"}",
	    "{\"org.opencontainers.image.description\": \"An app\","
	    " \"org.opencontainers.image.documentation\": \"https://d.example\"}", d1);
	push_image_facts(&f, "library/z", "1.0-arm64", &(struct img){ "arm64", .salt = "2" },
	    "{\"org.opencontainers.image.title\": \"App\","
	    " \"org.opencontainers.image.description\": \"An app\","
	    " \"org.opencontainers.image.licenses\": \"Apache-2.0\","
	    " \"org.opencontainers.image.vendor\": \"Labelled\","
	    " \"org.opencontainers.image.documentation\": \"https://d.example\","
	    " \"org.opencontainers.image.url\": \"https://u.example\"}", NULL, d2);
	assemble_rule(&api, &r, "library/z", "1.0", 1, &res);
	CHECK(res.outcome == ASM_DRY_RUN);
	idx = doc_json(&res);
	ann = json_object_get(idx, "annotations");
	CHECK_STR(json_string_value(json_object_get(ann, "org.opencontainers.image.title")), "App");
	/* the amd64 manifest's annotation wins over its own label */
	CHECK_STR(json_string_value(json_object_get(ann, "org.opencontainers.image.description")), "An app");
	CHECK_STR(json_string_value(json_object_get(ann, "org.opencontainers.image.documentation")),
	    "https://d.example");
	CHECK_STR(json_string_value(json_object_get(ann, "org.opencontainers.image.url")), "https://u.example");
	CHECK(json_object_get(ann, "org.opencontainers.image.licenses") == NULL);   /* they differ */
	CHECK(json_object_get(ann, "org.opencontainers.image.authors") == NULL);    /* arm64 has none */
	CHECK_STR(json_string_value(json_object_get(ann, "org.opencontainers.image.vendor")), "Configured");
	CHECK(json_object_size(ann) == 5);
	json_decref(idx);
	asm_result_clear(&res);

	/* A value too long to keep is no value: the children no longer agree on url. */
	push_image_facts(&f, "library/z", "1.1-amd64", &(struct img){ "amd64", .salt = "3" }, labels, NULL, d1);
	push_image_facts(&f, "library/z", "1.1-arm64", &(struct img){ "arm64", .salt = "4" }, labels, NULL, d2);
	assemble_rule(&api, &r, "library/z", "1.1", 1, &res);
	CHECK(res.outcome == ASM_DRY_RUN);
	CHECK(strstr(res.doc.body, "image.url") == NULL && strstr(res.doc.body, "image.vendor") != NULL);
	asm_result_clear(&res);

	/* Without inherit_annotations only the configured one is written. */
	r.inherit_annotations = 0;
	assemble_rule(&api, &r, "library/z", "1.0", 1, &res);
	CHECK(res.outcome == ASM_DRY_RUN);
	CHECK(strstr(res.doc.body, "image.title") == NULL && strstr(res.doc.body, "Configured") != NULL);
	asm_result_clear(&res);
	fake_free(&f);
	rule_clear(&r);
}

static void
test_assemble_optional_and_cleanup(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	struct rule r;
	char err[512], d1[80], d2[80], d3[80], first[80], line[256];
	const char *toks[] = { "amd64", "arm64", "?s390x", NULL };
	json_t *idx;

	memset(&r, 0, sizeof(r));
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", toks, err, sizeof(err)) == AM_OK);
	r.cleanup = 1;
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	fake_api(&f, &api);
	push_image(&f, "library/z", "1.0-amd64", &(struct img){ "amd64", NULL, NULL, NULL, NULL, NULL, NULL,
	    "1", 0 }, d1);
	assemble_rule(&api, &r, "library/z", "1.0", 0, &res);
	CHECK(res.outcome == ASM_WAITING);
	CHECK_STR(res.detail, "missing arm64");   /* optional ones are never waited for */
	CHECK(f.deletes == 0);
	asm_result_clear(&res);

	push_image(&f, "library/z", "1.0-arm64", &(struct img){ "arm64", NULL, NULL, NULL, NULL, NULL, NULL,
	    "2", 0 }, d2);
	assemble_rule(&api, &r, "library/z", "1.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(strstr(res.detail, "without optional s390x") != NULL);
	/* cleanup: both per-arch tags removed by digest, after the publish */
	CHECK(res.tags_removed == 2 && f.deletes == 2);
	(void)am_fmt(line, sizeof(line), "library/z %s 1.0-amd64", d1);
	CHECK_STR(f.deleted[0], line);
	CHECK(find(&f, "library/z", "1.0-amd64") == NULL && find(&f, "library/z", d1) != NULL);
	CHECK(find(&f, "library/z", "1.0") != NULL);
	(void)am_fmt(first, sizeof(first), "%s", res.digest);
	asm_result_clear(&res);

	/* The same webhook again: sources are gone, the published index vouches for them. */
	assemble_rule(&api, &r, "library/z", "1.0", 0, &res);
	CHECK(res.outcome == ASM_UNCHANGED);
	CHECK_STR(res.digest, first);
	CHECK(f.deletes == 2);
	asm_result_clear(&res);

	/* The optional architecture arrives later: republished with all three, its tag removed. */
	push_image(&f, "library/z", "1.0-s390x", &(struct img){ "s390x", NULL, NULL, NULL, NULL, NULL, NULL,
	    "3", 0 }, d3);
	assemble_rule(&api, &r, "library/z", "1.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	idx = doc_json(&res);
	CHECK(json_array_size(json_object_get(idx, "manifests")) == 3);
	CHECK_STR(child_digest(idx, 0), d1);
	CHECK_STR(child_digest(idx, 1), d2);
	CHECK_STR(child_digest(idx, 2), d3);
	json_decref(idx);
	CHECK(res.tags_removed == 1 && find(&f, "library/z", "1.0-s390x") == NULL);
	asm_result_clear(&res);

	/* A rebuilt arm64 pushed after cleanup replaces the published child. */
	push_image(&f, "library/z", "1.0-arm64", &(struct img){ "arm64", NULL, NULL, NULL, NULL, NULL, NULL,
	    "rebuilt", 0 }, d2);
	assemble_rule(&api, &r, "library/z", "1.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(strstr(res.doc.body, d2) != NULL);
	asm_result_clear(&res);

	/* No Harbor API: published anyway, the detail says cleanup did not happen. */
	api.tag_delete = NULL;
	push_image(&f, "library/z", "2.0-amd64", &(struct img){ "amd64", NULL, NULL, NULL, NULL, NULL, NULL,
	    "5", 0 }, d1);
	push_image(&f, "library/z", "2.0-arm64", &(struct img){ "arm64", NULL, NULL, NULL, NULL, NULL, NULL,
	    "6", 0 }, d2);
	assemble_rule(&api, &r, "library/z", "2.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED && res.cleanup_failed);
	CHECK(strstr(res.detail, "no Harbor API") != NULL);
	asm_result_clear(&res);

	/* Without cleanup a vanished source tag means waiting, as before. */
	r.cleanup = 0;
	drop(&f, "library/z", "2.0-arm64");
	assemble_rule(&api, &r, "library/z", "2.0", 0, &res);
	CHECK(res.outcome == ASM_WAITING);
	asm_result_clear(&res);
	fake_free(&f);
	rule_clear(&r);
}

/*
 * Issue 22 §6: an index never loses a platform the target has while the
 * rule still lists its architecture. An optional architecture whose tag is
 * gone (cleanup, or retention without cleanup) keeps the published child
 * when another one is rebuilt; a rule that drops the architecture shrinks
 * the index, once, and says so.
 */
static void
test_assemble_never_shrinks(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	struct rule r;
	char err[512], d1[80], d2[80], d3[80];
	const char *three[] = { "amd64", "arm64", "?s390x", NULL };
	const char *two[] = { "amd64", "arm64", NULL };
	int cleanup;

	for (cleanup = 0; cleanup <= 1; cleanup++) {
		const char *repo = cleanup ? "library/keep-c" : "library/keep";
		memset(&r, 0, sizeof(r));
		CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", three, err, sizeof(err)) == AM_OK);
		r.cleanup = cleanup;
		CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
		fake_api(&f, &api);
		push_image(&f, repo, "1.0-amd64", &(struct img){ "amd64", NULL, NULL, NULL, NULL, NULL, NULL,
		    "1", 0 }, d1);
		push_image(&f, repo, "1.0-arm64", &(struct img){ "arm64", NULL, NULL, NULL, NULL, NULL, NULL,
		    "2", 0 }, d2);
		push_image(&f, repo, "1.0-s390x", &(struct img){ "s390x", NULL, NULL, NULL, NULL, NULL, NULL,
		    "3", 0 }, d3);
		assemble_rule(&api, &r, repo, "1.0", 0, &res);
		CHECK(res.outcome == ASM_PUBLISHED);
		CHECK(strstr(res.doc.body, d3) != NULL);
		asm_result_clear(&res);

		/* s390x's tag goes (cleaned up, or removed by retention); then amd64 is rebuilt. */
		drop(&f, repo, "1.0-s390x");
		push_image(&f, repo, "1.0-amd64", &(struct img){ "amd64", NULL, NULL, NULL, NULL, NULL, NULL,
		    "rebuilt", 0 }, d1);
		assemble_rule(&api, &r, repo, "1.0", 0, &res);
		CHECK(res.outcome == ASM_PUBLISHED);
		CHECK(strstr(res.doc.body, d1) != NULL && strstr(res.doc.body, d3) != NULL);
		CHECK(strstr(res.detail, "without optional s390x") == NULL);
		if (!cleanup)
			CHECK(strstr(res.detail, "s390x kept from the published index") != NULL);
		asm_result_clear(&res);

		/* The rule drops s390x: the index shrinks, once, and the detail says so. */
		CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
		r.cleanup = cleanup;
		CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
		if (cleanup) {   /* cleanup removed amd64 and arm64 too: they come from the index */
			CHECK(find(&f, repo, "1.0-amd64") == NULL);
		}
		assemble_rule(&api, &r, repo, "1.0", 0, &res);
		CHECK(res.outcome == ASM_PUBLISHED);
		CHECK(strstr(res.doc.body, d3) == NULL);
		CHECK(strstr(res.detail, "drops linux/s390x") != NULL);
		asm_result_clear(&res);
		assemble_rule(&api, &r, repo, "1.0", 0, &res);
		CHECK(res.outcome == ASM_UNCHANGED);
		asm_result_clear(&res);
		fake_free(&f);
		rule_clear(&r);
	}
}

static void
test_assemble_platforms(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	struct rule r;
	char err[512], d1[80], d2[80];
	const char *win[] = { "amd64", "win=windows/amd64", NULL };
	const char *v3[] = { "amd64", "amd64v3", NULL };
	const char *two[] = { "amd64", "arm64", NULL };
	json_t *idx, *p;

	memset(&r, 0, sizeof(r));
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", win, err, sizeof(err)) == AM_OK);
	fake_api(&f, &api);
	push_image(&f, "library/w", "1-amd64", &(struct img){ "x86_64", NULL, NULL, NULL, NULL, NULL, NULL,
	    "1", 0 }, d1);
	push_image(&f, "library/w", "1-win", &(struct img){ "amd64", NULL, "windows", "10.0.17763.5122",
	    NULL, NULL, NULL, "2", 0 }, d2);
	assemble_rule(&api, &r, "library/w", "1", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	idx = doc_json(&res);
	p = json_object_get(json_array_get(json_object_get(idx, "manifests"), 1), "platform");
	CHECK_STR(json_string_value(json_object_get(p, "os")), "windows");
	CHECK_STR(json_string_value(json_object_get(p, "os.version")), "10.0.17763.5122");
	p = json_object_get(json_array_get(json_object_get(idx, "manifests"), 0), "platform");
	CHECK_STR(json_string_value(json_object_get(p, "architecture")), "amd64");   /* normalised */
	json_decref(idx);
	asm_result_clear(&res);

	/* amd64 accepts any amd64 variant: two v3 images are the same platform twice. */
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", v3, err, sizeof(err)) == AM_OK);
	push_image(&f, "library/w", "2-amd64", &(struct img){ "amd64", "v3", NULL, NULL, NULL, NULL, NULL,
	    "3", 0 }, d1);
	push_image(&f, "library/w", "2-amd64v3", &(struct img){ "amd64", "v3", NULL, NULL, NULL, NULL, NULL,
	    "4", 0 }, d2);
	assemble_rule(&api, &r, "library/w", "2", 0, &res);
	CHECK(res.outcome == ASM_REFUSED);
	CHECK(strstr(res.detail, "same platform linux/amd64/v3") != NULL);
	asm_result_clear(&res);

	/* A target that has the form of a source tag would overwrite an image: refused. */
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	push_image(&f, "library/w", "1.0-amd64-amd64", &(struct img){ "amd64", NULL, NULL, NULL, NULL, NULL,
	    NULL, "5", 0 }, d1);
	push_image(&f, "library/w", "1.0-amd64-arm64", &(struct img){ "arm64", NULL, NULL, NULL, NULL, NULL,
	    NULL, "6", 0 }, d2);
	assemble_rule(&api, &r, "library/w", "1.0-amd64", 0, &res);
	CHECK(res.outcome == ASM_REFUSED);
	CHECK(strstr(res.detail, "per-architecture tag") != NULL);
	CHECK(f.puts == 1);
	asm_result_clear(&res);
	fake_free(&f);
	rule_clear(&r);
}

static void
test_index_spec(void)
{
	struct descriptor img[1], att[1];
	struct index_annotation ann[2] = { { "b", "2" }, { "a", "1" } };
	struct index_spec spec;
	struct index_doc doc;
	char err[256];

	memset(img, 0, sizeof(img));
	memset(att, 0, sizeof(att));
	memset(&spec, 0, sizeof(spec));
	(void)am_fmt(img[0].media_type, sizeof(img[0].media_type), MT_DOCKER_MANIFEST);
	(void)am_fmt(img[0].digest, sizeof(img[0].digest), "sha256:%064d", 1);
	img[0].has_platform = 1;
	CHECK(platform_parse("linux/amd64", &img[0].platform, err, sizeof(err)) == AM_OK);
	(void)am_fmt(att[0].media_type, sizeof(att[0].media_type), MT_OCI_MANIFEST);
	(void)am_fmt(att[0].digest, sizeof(att[0].digest), "sha256:%064d", 2);
	(void)am_fmt(att[0].ref_digest, sizeof(att[0].ref_digest), "%s", img[0].digest);
	att[0].attestation = 1;   /* annotations not kept (too large): synthesised */
	spec.images = img;
	spec.n_images = 1;
	spec.attestations = att;
	spec.n_attestations = 1;
	spec.annotations = ann;
	spec.n_annotations = 2;
	spec.format = INDEX_AUTO;
	CHECK(index_build_spec(&spec, &doc, err, sizeof(err)) == AM_OK);
	CHECK_STR(doc.media_type, MT_OCI_INDEX);
	CHECK(strstr(doc.body, "\"a\": \"1\"") < strstr(doc.body, "\"b\": \"2\""));
	CHECK(strstr(doc.body, "attestation-manifest") != NULL);
	index_doc_clear(&doc);
	spec.format = INDEX_DOCKER;
	CHECK(index_build_spec(&spec, &doc, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "annotations") != NULL);
	spec.n_annotations = 0;
	CHECK(index_build_spec(&spec, &doc, err, sizeof(err)) == AM_OK);
	CHECK(strstr(doc.body, "attestation") == NULL);
	index_doc_clear(&doc);
}

static void
test_harbor_path(void)
{
	char buf[512];
	const char *d = "sha256:4b8f0000000000000000000000000000000000000000000000000000000000ff";

	CHECK(harbor_tag_path("library/team/app", d, "1.0-amd64", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "/projects/library/repositories/team%252Fapp/artifacts/"
	    "sha256%3A4b8f0000000000000000000000000000000000000000000000000000000000ff/tags/1.0-amd64");
	CHECK(harbor_tag_path("library/app", d, "x", buf, sizeof(buf)) == 0);
	CHECK(strstr(buf, "/repositories/app/") != NULL);
	CHECK(harbor_tag_path("app", d, "x", buf, sizeof(buf)) == -1);
}


/* ---- the rule keys in the configuration file ---- */

#define CONF_HEAD \
	"server = { listen = \"127.0.0.1:8080\"; plain_http = true; allow_unauthenticated = true; single_writer = true; };\n" \
	"registries = ( { host = \"h\"; url = \"https://h\"; harbor_url = \"https://h:8443\"; } );\n" \
	"rules = ( { name = \"r\";\n"     /* lines 1-3 */

static char g_conf[64];

/* Load CONF_HEAD + body + " } );"; err gets the errors. */
static struct cfg *
load_rule_text(const char *body, char *err, size_t errlen)
{
	char text[4096];
	struct cfg *c = NULL;
	FILE *f;

	(void)am_fmt(text, sizeof(text), CONF_HEAD "%s} );\n", body);
	f = fopen(g_conf, "w");
	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0)
		abort();
	err[0] = '\0';
	if (cfg_load(g_conf, 0, &c, err, errlen) != AM_OK)
		return NULL;
	return c;
}

/* The body must be refused with needle on line `line` of the file. */
static void
expect_conf_err(const char *body, int line, const char *needle)
{
	char err[4096], prefix[96];
	struct cfg *c = load_rule_text(body, err, sizeof(err));

	(void)am_fmt(prefix, sizeof(prefix), "%s:%d: ", g_conf, line);
	CHECK(c == NULL);
	CHECK(strstr(err, prefix) != NULL && strstr(err, needle) != NULL);
	if (c != NULL || strstr(err, prefix) == NULL || strstr(err, needle) == NULL)
		fprintf(stderr, "  wanted line %d \"%s\", got: %s\n", line, needle, err);
	cfg_free(c);
}

#define BASE_RULE \
	"  repositories = [ \"library/*\" ];\n"                          /* 4 */ \
	"  target = \"{repo}:{version}\";\n"                             /* 5 */ \
	"  architectures = [ \"amd64\", \"arm64\" ];\n"                  /* 6 */

static void
test_config_keys(void)
{
	char err[4096], dir[] = "/tmp/am-sources-XXXXXX";
	struct cfg *c;
	const struct rule *r;

	if (mkdtemp(dir) == NULL)
		abort();
	(void)am_fmt(g_conf, sizeof(g_conf), "%s/a.conf", dir);

	c = load_rule_text(BASE_RULE
	    "  source = \"{repo}-{arch}:{version}\";\n"
	    "  optional = [ \"s390x\", \"armhf\" ];\n"
	    "  version_regex = \"^([0-9]+)\\\\.([0-9]+)\\\\.([0-9]+)$\";\n"
	    "  version_groups = [ \"major\", \"minor\" ];\n"
	    "  copy_tag = \"{version}-{arch}\";\n"
	    "  extra_tags = [ \"latest\", \"{major}.{minor}\" ];\n"
	    "  keep_attestations = false;\n"
	    "  annotations = [ \"org.opencontainers.image.vendor=Example Inc.\", \"x=a=b\" ];\n"
	    "  created_annotation = true;\n"
	    "  inherit_annotations = true;\n"
	    "  cleanup = true;\n", err, sizeof(err));
	CHECK(c != NULL);
	if (c == NULL) {
		fprintf(stderr, "%s\n", err);
	} else {
		r = &c->rules[0];
		CHECK(r->n_archs == 4);
		CHECK(!r->archs[1].optional && r->archs[2].optional && r->archs[3].optional);
		CHECK_STR(r->archs[3].name, "armhf");
		CHECK(r->has_version_re && r->n_version_groups == 2);
		CHECK(r->has_copy_tag);
		CHECK(r->n_extra_tags == 2);
		CHECK_STR(r->extra_tags[1], "{major}.{minor}");
		CHECK(!r->keep_attestations && r->created_annotation && r->inherit_annotations && r->cleanup);
		CHECK(r->n_annotations == 2);
		CHECK_STR(r->annotations[0].value, "Example Inc.");
		CHECK_STR(r->annotations[1].key, "x");
		CHECK_STR(r->annotations[1].value, "a=b");
		CHECK_STR(c->registries[0].harbor_url, "https://h:8443");
	}
	cfg_free(c);

	/* Defaults: attestations kept, nothing else on. */
	c = load_rule_text(BASE_RULE "  source = \"{repo}:{version}-{arch}\";\n", err, sizeof(err));
	CHECK(c != NULL && c->rules[0].keep_attestations && !c->rules[0].cleanup &&
	    c->rules[0].n_extra_tags == 0 && !c->rules[0].has_version_re);
	cfg_free(c);

	expect_conf_err(BASE_RULE "  source = \"{repo}:{version}_{arch}\";\n"
	    "  optional = [ \"linux_amd64\" ];\n"
	    "  platforms = { linux_amd64 = \"linux/amd64/v2\"; };\n", 7,
	    "\"1.0_linux_amd64\" reads as version \"1.0\" with architecture linux_amd64 and as version "
	    "\"1.0_linux\" with architecture amd64");
	expect_conf_err(BASE_RULE "  source = \"{repo}{arch}:{version}\";\n", 7,
	    "rules[0].source: template \"{repo}{arch}:{version}\" is ambiguous");
	expect_conf_err(BASE_RULE "  source = \"{repo}:{version}-{arch}\";\n"
	    "  optional = [ \"arm64\" ];\n", 8, "optional lists \"arm64\" twice");
	expect_conf_err(BASE_RULE "  source = \"{repo}:{version}-{arch}\";\n"
	    "  optional = [ \"x86_64\" ];\n", 6, "both stand for linux/amd64");
	expect_conf_err(BASE_RULE "  source = \"{repo}:{version}-{arch}\";\n"
	    "  version_regex = \"([0-9]\";\n", 8, "version_regex");
	expect_conf_err(BASE_RULE "  source = \"{repo}:{version}-{arch}\";\n"
	    "  copy_tag = \"{version}-{arch}\";\n", 8, "another repository");
	expect_conf_err(BASE_RULE "  source = \"{repo}:{version}-{arch}\";\n"
	    "  extra_tags = [ \"{1}\" ];\n", 8, "needs version_regex");
	expect_conf_err(BASE_RULE "  source = \"{repo}:{version}-{arch}\";\n"
	    "  annotations = [ \"novalue\" ];\n", 8, "must be \"key=value\"");
	expect_conf_err(BASE_RULE "  source = \"{repo}:{version}-{arch}\";\n"
	    "  annotations = [ \"a=1\", \"a=2\" ];\n", 8, "sets \"a\" twice");
	expect_conf_err(BASE_RULE "  source = \"{repo}:{version}-{arch}\";\n"
	    "  format = \"docker\";\n  created_annotation = true;\n", 8, "need an OCI index");
	expect_conf_err(BASE_RULE "  source = \"{repo}:{version}-{arch}\";\n"
	    "  version_groups = [ \"Major\" ];\n  version_regex = \"(1)\";\n", 8, "version_groups");
	expect_conf_err(BASE_RULE "  source = \"{repo}:{version}-{arch}\";\n"
	    "  cleanup = \"yes\";\n", 8, "cleanup must be true or false");
	unlink(g_conf);
	rmdir(dir);
}

TEST_MAIN("sources")
/* The plan: every template expanded once, refusals decided from the rule alone. */
static void
test_plan(void)
{
	struct rule r;
	struct plan p;
	char err[512];
	const char *two[] = { "amd64", "?arm64", NULL };

	memset(&r, 0, sizeof(r));
	CHECK(mkrule(&r, "{repo}-{arch}:{version}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	(void)am_fmt(r.version_regex, sizeof(r.version_regex), "^([0-9]+)\\.([0-9]+)\\.([0-9]+)$");
	(void)am_fmt(r.extra_tags[0], sizeof(r.extra_tags[0]), "latest");
	(void)am_fmt(r.extra_tags[1], sizeof(r.extra_tags[1]), "{1}.{2}");
	(void)am_fmt(r.extra_tags[2], sizeof(r.extra_tags[2]), "{version}");
	r.n_extra_tags = 3;
	(void)am_fmt(r.copy_tag_text, sizeof(r.copy_tag_text), "{version}-{arch}");
	(void)am_fmt(r.annotations[0].key, sizeof(r.annotations[0].key), "org.example.v");
	(void)am_fmt(r.annotations[0].value, sizeof(r.annotations[0].value), "v{version}/{version}");
	r.n_annotations = 1;
	r.cleanup = 1;
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);

	rule_plan(&r, "library/app", "3.8.5", &p);
	CHECK_STR(p.refusal, "");
	CHECK_STR(p.target_tag, "3.8.5");
	CHECK(p.n_archs == 2 && p.cleanup && !p.archs[0].optional && p.archs[1].optional);
	CHECK_STR(p.archs[0].src_repo, "library/app-amd64");
	CHECK_STR(p.archs[1].src_tag, "3.8.5");
	CHECK_STR(p.archs[1].copy_tag, "3.8.5-arm64");
	CHECK(p.n_extra == 3);
	CHECK_STR(p.extra[0].tag, "latest");
	CHECK_STR(p.extra[1].tag, "3.8");
	CHECK_STR(p.extra[2].tag, "");          /* the target itself: skipped without a note */
	CHECK_STR(p.extra[2].note, "");
	CHECK(p.n_annotations == 1);
	CHECK_STR(p.annotations[0].value, "v3.8.5/3.8.5");
	plan_clear(&p);

	rule_plan(&r, "library/app", "3.8", &p);
	CHECK_STR(p.refusal, "version 3.8 does not match version_regex");
	CHECK_STR(p.target_tag, "");
	plan_clear(&p);

	/* A target shaped like a per-architecture tag of the same rule is refused. */
	rule_clear(&r);
	CHECK(mkrule(&r, "{repo}:{version}-{arch}", "{repo}:{version}", two, err, sizeof(err)) == AM_OK);
	CHECK(rule_finish(&r, err, sizeof(err)) == AM_OK);
	rule_plan(&r, "library/app", "1.0-amd64", &p);
	CHECK(strstr(p.refusal, "target library/app:1.0-amd64 has the form of a per-architecture tag") != NULL);
	plan_clear(&p);
	rule_clear(&r);
}

static void
run_tests(void)
{
	test_plan();
	test_repo_templates();
	test_tag_shapes_and_regex();
	test_ambiguity();
	test_extra_and_copy_tags();
	test_tokens();
	test_index_spec();
	test_harbor_path();
	test_assemble_other_repository();
	test_assemble_attestations();
	test_assemble_extra_tags_and_annotations();
	test_assemble_inherited_facts();
	test_assemble_optional_and_cleanup();
	test_assemble_never_shrinks();
	test_assemble_platforms();
	test_config_keys();
}
