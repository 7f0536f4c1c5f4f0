/* registry/sign: payload, signature manifest, tags, keys, sign/verify. */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry/sign/sign.h"

#define D1 "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"
#define D2 "sha256:1111111111111111111111111111111111111111111111111111111111111111"

static void
test_payload(void)
{
	struct sig_payload p;
	char err[256], *body = NULL;
	size_t len = 0;

	CHECK(sig_payload_build("harbor.example.com/library/app", D1, &body, &len, err, sizeof(err)) == AM_OK);
	/* Sorted and compact, as cosign writes it. */
	CHECK_STR(body, "{\"critical\":{\"identity\":{\"docker-reference\":\"harbor.example.com/library/app\"},"
	    "\"image\":{\"docker-manifest-digest\":\"" D1 "\"},\"type\":\"cosign container image signature\"},"
	    "\"optional\":null}");
	CHECK(sig_payload_parse(body, len, &p, err, sizeof(err)) == AM_OK);
	CHECK_STR(p.reference, "harbor.example.com/library/app");
	CHECK_STR(p.digest, D1);
	free(body);
	CHECK(sig_payload_build("x", "sha256:abc", &body, &len, err, sizeof(err)) == AM_EINVAL);
	CHECK(sig_payload_parse("{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":"
	    "{\"docker-manifest-digest\":\"" D1 "\"},\"type\":\"atomic container signature\"}}", 150, &p,
	    err, sizeof(err)) != AM_OK);
	CHECK(sig_payload_parse("{\"critical\":{}}", 15, &p, err, sizeof(err)) == AM_EINVAL);
	CHECK(sig_payload_parse("[", 1, &p, err, sizeof(err)) == AM_EINVAL);
}

static void
test_tags_and_references(void)
{
	char b[100];

	CHECK(sig_tag_of(D1, b, sizeof(b)) == 0);
	CHECK_STR(b, "sha256-6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b.sig");
	CHECK(sig_digest_of_tag("sha256-6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b.sig",
	    b, sizeof(b)) == 0);
	CHECK_STR(b, D1);
	CHECK(sig_digest_of_tag("sha256-6c3c.sig", b, sizeof(b)) == -1);
	CHECK(sig_digest_of_tag("1.0-amd64", b, sizeof(b)) == -1);
	CHECK(sig_digest_of_tag("sha256-6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b.att",
	    b, sizeof(b)) == -1);
	CHECK(sig_reference_names("127.0.0.1:5000/library/app:1.0-amd64", "library/app"));
	CHECK(sig_reference_names("harbor.example.com/library/app", "library/app"));
	CHECK(sig_reference_names("library/app@" D1, "library/app"));
	CHECK(sig_reference_names("localhost/library/app", "library/app"));
	CHECK(!sig_reference_names("harbor.example.com/library/other", "library/app"));
	CHECK(!sig_reference_names("harbor.example.com/library/app-x", "library/app"));
}

static void
test_manifest(void)
{
	struct sig_manifest m, back;
	char err[256], *cfg = NULL, *man = NULL;
	size_t clen, mlen;
	const char *other = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":1,\"digest\":\"" D2 "\"},"
	    "\"layers\":[{\"mediaType\":\"" SIG_MT_PAYLOAD "\",\"size\":240,\"digest\":\"" D2 "\","
	    "\"annotations\":{\"" SIG_ANN_SIG "\":\"b3RoZXI=\",\"dev.sigstore.cosign/bundle\":\"{}\"}}]}";

	CHECK(sig_manifest_parse(other, strlen(other), &m, err, sizeof(err)) == AM_OK);
	CHECK(m.n_layers == 1);
	CHECK_STR(m.layers[0].signature, "b3RoZXI=");
	CHECK(m.layers[0].size == 240);
	CHECK(sig_manifest_append(&m, D1, 200, "bWluZQ==", err, sizeof(err)) == AM_OK);
	CHECK(sig_manifest_build(&m, &cfg, &clen, &man, &mlen, err, sizeof(err)) == AM_OK);
	CHECK(strstr(cfg, "\"diff_ids\":[\"" D2 "\",\"" D1 "\"]") != NULL);
	CHECK(strstr(man, "dev.sigstore.cosign/bundle") != NULL);   /* the other layer kept whole */
	CHECK(sig_manifest_parse(man, mlen, &back, err, sizeof(err)) == AM_OK);
	CHECK(back.n_layers == 2);
	CHECK_STR(back.layers[0].signature, "b3RoZXI=");
	CHECK_STR(back.layers[1].signature, "bWluZQ==");
	CHECK_STR(back.layers[1].media_type, SIG_MT_PAYLOAD);
	sig_manifest_clear(&back);
	sig_manifest_clear(&m);
	free(cfg);
	free(man);
	CHECK(sig_manifest_parse("{\"schemaVersion\":1,\"layers\":[]}", 31, &m, err, sizeof(err)) == AM_EINVAL);
	/* A layer that does not parse is skipped, not the whole manifest refused (issue 22 §5). */
	CHECK(sig_manifest_parse("{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"x\"}]}", 48, &m, err,
	    sizeof(err)) == AM_OK);
	CHECK(m.n_layers == 0 && m.n_skipped == 1);
	sig_manifest_clear(&m);
}

static void
run(const char *cmd)
{
	CHECK(system(cmd) == 0);
}

static void
test_keys(void)
{
	char dir[] = "/tmp/am-sign-XXXXXX", cmd[512], key[256], pub[256], other[256], rsa[256], b64[SIG_B64_MAX];
	char err[512];
	struct sig_key *k = NULL, *p = NULL, *o = NULL;

	CHECK(mkdtemp(dir) != NULL);
	(void)am_fmt(key, sizeof(key), "%s/k.pem", dir);
	(void)am_fmt(pub, sizeof(pub), "%s/k.pub", dir);
	(void)am_fmt(other, sizeof(other), "%s/o.pub", dir);
	(void)am_fmt(rsa, sizeof(rsa), "%s/rsa.pem", dir);
	(void)am_fmt(cmd, sizeof(cmd), "openssl ecparam -genkey -name prime256v1 -noout -out %s 2>/dev/null && "
	    "openssl ec -in %s -pubout -out %s 2>/dev/null && openssl ecparam -genkey -name prime256v1 -noout "
	    "2>/dev/null | openssl ec -pubout -out %s 2>/dev/null && openssl genrsa -out %s 2048 2>/dev/null",
	    key, key, pub, other, rsa);
	run(cmd);
	chmod(key, 0644);
	CHECK(sig_key_load_private(key, &k, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "chmod 600") != NULL);
	chmod(key, 0600);
	chmod(rsa, 0600);
	CHECK(sig_key_load_private(key, &k, err, sizeof(err)) == AM_OK);
	CHECK(sig_key_load_public(pub, &p, err, sizeof(err)) == AM_OK);
	CHECK(sig_key_load_public(other, &o, err, sizeof(err)) == AM_OK);
	CHECK(sig_key_load_private(rsa, &(struct sig_key *){ NULL }, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "P-256") != NULL);
	CHECK(sig_key_load_public(key, &(struct sig_key *){ NULL }, err, sizeof(err)) == AM_EINVAL);
	CHECK(sig_sign(k, "payload", 7, b64, sizeof(b64), err, sizeof(err)) == AM_OK);
	CHECK(sig_verify(p, "payload", 7, b64));
	CHECK(sig_verify(k, "payload", 7, b64));
	CHECK(!sig_verify(p, "payloaD", 7, b64));
	CHECK(!sig_verify(o, "payload", 7, b64));
	CHECK(!sig_verify(p, "payload", 7, "!!!!"));
	CHECK(!sig_verify(p, "payload", 7, ""));
	sig_key_free(k);
	sig_key_free(p);
	sig_key_free(o);
	(void)am_fmt(cmd, sizeof(cmd), "rm -rf %s", dir);
	run(cmd);
}

static void
run_tests(void)
{
	test_payload();
	test_tags_and_references();
	test_manifest();
	test_keys();
}

TEST_MAIN("sign")
