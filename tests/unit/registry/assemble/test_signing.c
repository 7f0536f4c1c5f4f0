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

static void
push_image(struct fake *f, const char *repo, const char *tag, const char *arch, char *digest_out)
{
	char config[256], cd[80], manifest[1024];

	(void)am_fmt(config, sizeof(config), "{\"architecture\":\"%s\",\"os\":\"linux\","
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", arch);
	digest_sha256(config, strlen(config), cd, sizeof(cd));
	store(f, repo, cd, "application/octet-stream", config, strlen(config));
	(void)am_fmt(manifest, sizeof(manifest), "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":"
	    "{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
	    "\"layers\":[]}", MT_OCI_MANIFEST, cd, strlen(config));
	digest_sha256(manifest, strlen(manifest), digest_out, 80);
	store(f, repo, tag, MT_OCI_MANIFEST, manifest, strlen(manifest));
	store(f, repo, digest_out, MT_OCI_MANIFEST, manifest, strlen(manifest));
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

static void
run_tests(void)
{
	char cmd[128];

	setup();
	test_sign_index();
	test_signed_children();
	(void)am_fmt(cmd, sizeof(cmd), "rm -rf %s", DIR_);
	CHECK(system(cmd) == 0);
}

TEST_MAIN("signing")
