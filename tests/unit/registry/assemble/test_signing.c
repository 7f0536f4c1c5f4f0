/* Assembly with signatures, on the in-memory registry: sign, idempotence, unsigned children refused. */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "registry/assemble/assemble.h"
#include "registry/assemble/signing.h"
#include "registry/sign/sign.h"
#include "tests/unit/fake_registry.h"

static int blob_puts;

static enum am_err
f_blob_put(void *ctx, const char *repo, const char *digest, const char *body, size_t len,
    char *err, size_t errlen)
{
	char d[80];

	digest_sha256(body, len, d, sizeof(d));
	if (strcmp(d, digest) != 0)
		return am_fail(err, errlen, AM_EDENIED, "DIGEST_INVALID");
	blob_puts++;
	store(ctx, repo, digest, "application/octet-stream", body, len);
	return AM_OK;
}

/* An image of arch; build tells two builds apart ("" the first). */
static void
push_build(struct fake *f, const char *repo, const char *tag, const char *arch, const char *build,
    char *digest_out)
{
	char config[256], cd[80], manifest[1024];

	(void)am_fmt(config, sizeof(config), "{\"architecture\":\"%s\",\"os\":\"linux\",%s%s%s"
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", arch, build[0] ? "\"created\":\"" : "",
	    build, build[0] ? "\"," : "");
	digest_sha256(config, strlen(config), cd, sizeof(cd));
	store(f, repo, cd, "application/octet-stream", config, strlen(config));
	(void)am_fmt(manifest, sizeof(manifest), "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":"
	    "{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
	    "\"layers\":[]}", MT_OCI_MANIFEST, cd, strlen(config));
	digest_sha256(manifest, strlen(manifest), digest_out, 80);
	store(f, repo, tag, MT_OCI_MANIFEST, manifest, strlen(manifest));
	store(f, repo, digest_out, MT_OCI_MANIFEST, manifest, strlen(manifest));
}

static void
push_image(struct fake *f, const char *repo, const char *tag, const char *arch, char *digest_out)
{
	push_build(f, repo, tag, arch, "", digest_out);
}

static struct rule R;
static struct arch_token ARCHS[2];
static char *GLOBS[] = { "library/*" };
static char DIR_[] = "/tmp/am-asm-sign-XXXXXX";
static char KEY[128], PUB[128], CI_KEY[128], CI_PUB[128];

static void
setup(void)
{
	char err[128], cmd[1024];

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
	CHECK(mkdtemp(DIR_) != NULL);
	(void)am_fmt(KEY, sizeof(KEY), "%s/k.pem", DIR_);
	(void)am_fmt(PUB, sizeof(PUB), "%s/k.pub", DIR_);
	(void)am_fmt(CI_KEY, sizeof(CI_KEY), "%s/ci.pem", DIR_);
	(void)am_fmt(CI_PUB, sizeof(CI_PUB), "%s/ci.pub", DIR_);
	(void)am_fmt(cmd, sizeof(cmd), "for k in k ci; do openssl ecparam -genkey -name prime256v1 -noout "
	    "-out %s/$k.pem 2>/dev/null && chmod 600 %s/$k.pem && openssl ec -in %s/$k.pem -pubout "
	    "-out %s/$k.pub 2>/dev/null || exit 1; done", DIR_, DIR_, DIR_, DIR_);
	CHECK(system(cmd) == 0);
}

/* Layers of repo's signature manifest for digest; -1 when there is none. */
static int
sig_layers(struct fake *f, const char *repo, const char *digest, struct sig_manifest *m)
{
	char tag[96], err[256];
	struct obj *o;

	(void)sig_tag_of(digest, tag, sizeof(tag));
	if ((o = find(f, repo, tag)) == NULL)
		return -1;
	CHECK(sig_manifest_parse(o->body, o->len, m, err, sizeof(err)) == AM_OK);
	return (int)m->n_layers;
}

static void
test_sign_index(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	struct sig_manifest m;
	struct sig_payload p;
	struct sig_key *pub;
	struct obj *o;
	char d1[80], d2[80], err[256];
	const char *repo = "library/app";

	fake_api(&f, &api);
	api.blob_put = f_blob_put;
	api.host = "harbor.example.com";
	(void)am_fmt(R.sign_key_file, sizeof(R.sign_key_file), "%s", KEY);
	push_image(&f, repo, "1.0-amd64", "amd64", d1);
	push_image(&f, repo, "1.0-arm64", "arm64", d2);
	assemble_rule(&api, &R, repo, "1.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED);
	CHECK(res.signatures_made == 1);
	CHECK(sig_layers(&f, repo, res.doc.digest, &m) == 1);
	o = find(&f, repo, m.layers[0].digest);
	CHECK(o != NULL);
	if (o != NULL) {
		CHECK(sig_payload_parse(o->body, o->len, &p, err, sizeof(err)) == AM_OK);
		CHECK_STR(p.digest, res.doc.digest);
		CHECK_STR(p.reference, "harbor.example.com/library/app");
		CHECK(sig_key_load_public(PUB, &pub, err, sizeof(err)) == AM_OK);
		CHECK(sig_verify(pub, o->body, o->len, m.layers[0].signature));
		sig_key_free(pub);
	}
	sig_manifest_clear(&m);
	asm_result_clear(&res);

	/* Again: unchanged, already signed by this key, nothing written. */
	blob_puts = 0;
	assemble_rule(&api, &R, repo, "1.0", 0, &res);
	CHECK(res.outcome == ASM_UNCHANGED);
	CHECK(res.signatures_made == 0 && blob_puts == 0);
	CHECK(sig_layers(&f, repo, res.doc.digest, &m) == 1);
	sig_manifest_clear(&m);
	asm_result_clear(&res);

	/* Dry run: never signs. No blob upload verb: the run fails and says why. */
	api.blob_put = NULL;
	(void)am_fmt(R.sign_key_file, sizeof(R.sign_key_file), "%s", CI_KEY);
	assemble_rule(&api, &R, repo, "1.0", 1, &res);
	CHECK(res.outcome == ASM_UNCHANGED && res.signatures_made == 0);
	asm_result_clear(&res);
	assemble_rule(&api, &R, repo, "1.0", 0, &res);
	CHECK(res.outcome == ASM_FAILED && res.err == AM_ETRANSIENT);
	CHECK(strstr(res.detail, "not signed") != NULL);
	asm_result_clear(&res);
	R.sign_key_file[0] = '\0';
	fake_free(&f);
}

static void
test_signed_children(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	char d1[80], d2[80], err[256];
	const char *repo = "library/kids";
	int made;

	fake_api(&f, &api);
	api.blob_put = f_blob_put;
	R.require_signed = 1;
	R.n_child_keys = 1;
	(void)am_fmt(R.child_keys[0], sizeof(R.child_keys[0]), "%s", CI_PUB);
	push_image(&f, repo, "2.0-amd64", "amd64", d1);
	push_image(&f, repo, "2.0-arm64", "arm64", d2);
	CHECK(asm_sign_index(&api, CI_KEY, repo, d1, &made, err, sizeof(err)) == AM_OK && made);
	/* arm64 signed by a key that is not trusted: refused, naming it, nothing published. */
	CHECK(asm_sign_index(&api, KEY, repo, d2, &made, err, sizeof(err)) == AM_OK && made);
	f.puts = 0;
	assemble_rule(&api, &R, repo, "2.0", 0, &res);
	CHECK(res.outcome == ASM_REFUSED && res.unsigned_child);
	CHECK(strstr(res.detail, "arm64 child library/kids:2.0-arm64 is not signed") != NULL);
	CHECK_STR(res.unsigned_digest, d2);
	CHECK(f.puts == 0 && find(&f, repo, "2.0") == NULL);
	asm_result_clear(&res);
	/* Signed by the CI key (appended to the other): published. */
	CHECK(asm_sign_index(&api, CI_KEY, repo, d2, &made, err, sizeof(err)) == AM_OK && made);
	assemble_rule(&api, &R, repo, "2.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED && !res.unsigned_child);
	asm_result_clear(&res);
	R.require_signed = 0;
	R.n_child_keys = 0;
	fake_free(&f);
}

/*
 * Issue 22 §4: an index already current (pushed by anyone, or published
 * before require_signed_children was turned on) takes the unchanged path;
 * it must run the same child check before it signs or cleans up.
 */
static void
test_unchanged_checks_children(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	char d1[80], d2[80], tag[96];
	const char *repo = "library/late";

	fake_api(&f, &api);
	api.blob_put = f_blob_put;
	push_image(&f, repo, "3.0-amd64", "amd64", d1);
	push_image(&f, repo, "3.0-arm64", "arm64", d2);
	assemble_rule(&api, &R, repo, "3.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED && res.signatures_made == 0);
	asm_result_clear(&res);

	/* The policy turned on (and the index key set) while the index exists. */
	R.require_signed = 1;
	R.n_child_keys = 1;
	(void)am_fmt(R.child_keys[0], sizeof(R.child_keys[0]), "%s", CI_PUB);
	(void)am_fmt(R.sign_key_file, sizeof(R.sign_key_file), "%s", KEY);
	assemble_rule(&api, &R, repo, "3.0", 0, &res);
	CHECK(res.outcome == ASM_REFUSED && res.unsigned_child);
	CHECK(res.signatures_made == 0);
	CHECK(strstr(res.detail, "amd64 child library/late:3.0-amd64 is not signed") != NULL);
	(void)sig_tag_of(res.digest, tag, sizeof(tag));
	CHECK(find(&f, repo, tag) == NULL);
	asm_result_clear(&res);
	/* A dry run says the same. */
	assemble_rule(&api, &R, repo, "3.0", 1, &res);
	CHECK(res.outcome == ASM_REFUSED && res.unsigned_child);
	asm_result_clear(&res);
	R.require_signed = 0;
	R.n_child_keys = 0;
	R.sign_key_file[0] = '\0';
	fake_free(&f);
}

/*
 * Issue 22 §5: children in other repositories ({repo}-{arch}:{version}),
 * cleanup and require_signed_children. After cleanup the children come
 * from the published index; their signatures stay in the source
 * repositories, and that is where they are looked up.
 */
static void
test_cleanup_other_repos_signed(void)
{
	struct fake f;
	struct reg_api api;
	struct asm_result res;
	struct rule x;
	char d1[80], d2[80], err[256];
	int made;

	x = R;
	CHECK(tmpl_compile("{repo}-{arch}:{version}", 1, &x.source, err, sizeof(err)) == AM_OK);
	x.cleanup = 1;
	x.require_signed = 1;
	x.n_child_keys = 1;
	(void)am_fmt(x.child_keys[0], sizeof(x.child_keys[0]), "%s", CI_PUB);
	fake_api(&f, &api);
	api.blob_put = f_blob_put;
	push_image(&f, "library/x-amd64", "1.0", "amd64", d1);
	push_image(&f, "library/x-arm64", "1.0", "arm64", d2);
	CHECK(asm_sign_index(&api, CI_KEY, "library/x-amd64", d1, &made, err, sizeof(err)) == AM_OK && made);
	CHECK(asm_sign_index(&api, CI_KEY, "library/x-arm64", d2, &made, err, sizeof(err)) == AM_OK && made);
	assemble_rule(&api, &x, "library/x", "1.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED && res.tags_removed == 2);
	asm_result_clear(&res);
	/* Both tags are gone: the children come from the published index, still signed. */
	assemble_rule(&api, &x, "library/x", "1.0", 0, &res);
	CHECK(res.outcome == ASM_UNCHANGED);
	CHECK(!res.unsigned_child);
	asm_result_clear(&res);
	/* A rebuilt arm64, signed: published, the amd64 child kept from the index, signed where it lives. */
	push_build(&f, "library/x-arm64", "1.0", "arm64", "2026-01-02T00:00:00Z", d2);
	CHECK(asm_sign_index(&api, CI_KEY, "library/x-arm64", d2, &made, err, sizeof(err)) == AM_OK && made);
	assemble_rule(&api, &x, "library/x", "1.0", 0, &res);
	CHECK(res.outcome == ASM_PUBLISHED && !res.unsigned_child);
	CHECK(strstr(res.doc.body, d1) != NULL && strstr(res.doc.body, d2) != NULL);
	asm_result_clear(&res);
	fake_free(&f);
}

/*
 * Issue 22 §5: each payload is fetched once whatever the number of trusted
 * keys; an unusable layer, a full (64 layers) or an unreadable signature
 * manifest never blocks signing.
 */
static void
test_signature_payloads(void)
{
	struct fake f;
	struct reg_api api;
	struct sig_manifest m;
	char d1[80], err[512], tag[96], body[16384], junk[80];
	const char trusted[2][512] = { "", "" };
	char (*keys)[512] = (char (*)[512])trusted;
	size_t off, i;
	int made;
	const char *repo = "library/sigs";

	fake_api(&f, &api);
	api.blob_put = f_blob_put;
	push_image(&f, repo, "1.0-amd64", "amd64", d1);
	CHECK(asm_sign_index(&api, CI_KEY, repo, d1, &made, err, sizeof(err)) == AM_OK && made);
	(void)am_fmt(keys[0], 512, "%s", PUB);
	(void)am_fmt(keys[1], 512, "%s", CI_PUB);
	f.blob_gets = 0;
	CHECK(asm_child_signed(&api, (const char (*)[512])keys, 2, repo, d1, err, sizeof(err)) == AM_OK);
	CHECK(f.blob_gets == 1);   /* one payload, two keys: one GET */

	/* A layer without a size ahead of the good one: skipped, the image still counts as signed. */
	(void)sig_tag_of(d1, tag, sizeof(tag));
	{
		struct obj *o = find(&f, repo, tag);
		const char *layers = strstr(o->body, "\"layers\":[");
		CHECK(layers != NULL);
		(void)am_fmt(body, sizeof(body), "%.*s\"layers\":[{\"mediaType\":\"x\"},%s",
		    (int)(layers - o->body), o->body, layers + strlen("\"layers\":["));
		store(&f, repo, tag, SIG_MT_MANIFEST, body, strlen(body));
	}
	CHECK(asm_child_signed(&api, (const char (*)[512])keys, 2, repo, d1, err, sizeof(err)) == AM_OK);

	/* 64 layers by nobody on an index digest: signing still happens, the oldest goes. */
	off = (size_t)snprintf(body, sizeof(body), "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":"
	    "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":2},\"layers\":[", SIG_MT_MANIFEST,
	    SIG_MT_CONFIG, d1);
	for (i = 0; i < SIG_MAX_LAYERS; i++) {
		digest_sha256(&i, sizeof(i), junk, sizeof(junk));
		off += (size_t)snprintf(body + off, sizeof(body) - off, "%s{\"mediaType\":\"%s\",\"size\":9,"
		    "\"digest\":\"%s\",\"annotations\":{\"%s\":\"AAAA\"}}", i ? "," : "", SIG_MT_PAYLOAD,
		    junk, SIG_ANN_SIG);
	}
	(void)snprintf(body + off, sizeof(body) - off, "]}");
	store(&f, repo, tag, SIG_MT_MANIFEST, body, strlen(body));
	CHECK(asm_sign_index(&api, KEY, repo, d1, &made, err, sizeof(err)) == AM_OK && made);
	CHECK(sig_layers(&f, repo, d1, &m) == SIG_MAX_LAYERS);
	sig_manifest_clear(&m);
	CHECK(asm_sign_index(&api, KEY, repo, d1, &made, err, sizeof(err)) == AM_OK && !made);

	/* No manifest at all under the signature tag: written over. */
	store(&f, repo, tag, SIG_MT_MANIFEST, "not json", 8);
	CHECK(asm_sign_index(&api, KEY, repo, d1, &made, err, sizeof(err)) == AM_OK && made);
	CHECK(sig_layers(&f, repo, d1, &m) == 1);
	sig_manifest_clear(&m);
	fake_free(&f);
}

static void
run_tests(void)
{
	char cmd[128];

	setup();
	test_sign_index();
	test_signed_children();
	test_unchanged_checks_children();
	test_cleanup_other_repos_signed();
	test_signature_payloads();
	(void)am_fmt(cmd, sizeof(cmd), "rm -rf %s", DIR_);
	CHECK(system(cmd) == 0);
}

TEST_MAIN("signing")
