/*
 * Unit tests: hostile input found by the fuzzers (tests/fuzz/) and the HTTP
 * limits that reach the webhook decision. Each fuzzer finding is kept here as
 * a case (and its raw input in tests/fuzz/corpus/<target>/regress-*).
 */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <unistd.h>
#include <jansson.h>

#include "handlers/event.h"
#include "handlers/webhook.h"
#include "tests/unit/handlers/summary.h"
#include "registry/oci/index.h"
#include "registry/oci/manifest.h"

#define DIGEST "sha256:4b8f2c0a9e1d3b5f7a6c8e0d2f4b6a8c0e2d4f6a8b0c2e4d6f8a0b2c4e6d8f0a"
#define CORPUS "tests/fuzz/corpus/"

static const char conf_text[] =
    "server = { listen = \"127.0.0.1:8080\"; plain_http = true; allow_unauthenticated = true; };\n"
    "registries = ( { host = \"harbor.example.com\"; url = \"https://127.0.0.1:5000\"; } );\n"
    "rules = ( { name = \"r\"; repositories = [ \"library/*\" ]; source = \"{repo}:{version}-{arch}\";\n"
    "            target = \"{repo}:{version}\"; architectures = [ \"amd64\", \"arm64\" ]; } );\n";

static int
no_enqueue(void *ctx, const struct group *g)
{
	(void)ctx;
	(void)g;
	return 1;
}

static struct cfg *
load_cfg(void)
{
	char path[] = "/tmp/am-test-hostile-XXXXXX", err[2048] = "";
	struct cfg *c = NULL;
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, conf_text, sizeof(conf_text) - 1) != (ssize_t)(sizeof(conf_text) - 1) ||
	    close(fd) != 0 || cfg_load(path, 0, &c, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "test configuration refused: %s\n", err);
		exit(2);
	}
	unlink(path);
	return c;
}

static char *
corpus_file(const char *name, size_t *len)
{
	char path[256], err[256];
	char *buf = NULL;

	(void)am_fmt(path, sizeof(path), CORPUS "%s", name);
	if (am_read_file(path, 1 << 20, &buf, len, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "cannot read %s (run from the repository root): %s\n", path, err);
		exit(2);
	}
	return buf;
}

/* A Default payload with one resource; strings are inserted raw (JSON escapes allowed). */
static char *
payload(const char *repo, const char *tag, const char *digest, const char *url)
{
	char *s = xmalloc(4096);

	(void)am_fmt(s, 4096, "{\"type\":\"PUSH_ARTIFACT\",\"operator\":\"admin\",\"event_data\":{"
	    "\"resources\":[{\"digest\":\"%s\",\"tag\":\"%s\",\"resource_url\":\"%s\"}],"
	    "\"repository\":{\"repo_full_name\":\"%s\"}}}", digest, tag, url, repo);
	return s;
}

static void
expect_field(const char *what, char *body, const char *field)
{
	struct event ev;
	char err[256] = "";
	int before = t_failed;

	CHECK(event_parse(body, strlen(body), 0, &ev, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, field) != NULL);
	if (t_failed != before)
		fprintf(stderr, "  case \"%s\": reason \"%s\", expected it to name \"%s\"\n", what, err, field);
	free(body);
}

/* \u0000 inside a name: the reason names the field (the parser used to refuse the whole payload). */
static void
test_nul_names_the_field(void)
{
	const char *url = "harbor.example.com/library/app:1.0-amd64";

	expect_field("NUL in repo", payload("library/app\\u0000x", "1.0-amd64", DIGEST, url),
	    "repo_full_name");
	expect_field("NUL in tag", payload("library/app", "1.0-amd64\\u0000", DIGEST, url), "tag");
	expect_field("NUL in digest", payload("library/app", "1.0-amd64", DIGEST "\\u0000", url), "digest");
	expect_field("NUL in url", payload("library/app", "1.0-amd64", DIGEST,
	    "harbor.example.com\\u0000/x"), "resource_url");
	/* A NUL cut would have left a valid "library/app": it must not pass. */
	expect_field("NUL cut to a valid name", payload("library/app\\u0000/../x", "1.0-amd64", DIGEST, url),
	    "repo_full_name");
}

/* Fuzzer finding (regress-nonascii-host.json): resource_url hosts accepted any byte but space. */
static void
test_host_grammar(void)
{
	struct event ev;
	char err[256], *body;
	size_t len;
	static const char *const good[] = { "harbor.example.com", "harbor.example.com:8443",
	    "10.0.0.5:443", "[::1]:5000", "registry_internal" };
	static const char *const bad[] = { "harb\\u00f6r.example.com", "harbor example.com",
	    "user@harbor.example.com", "harbor.example.com?x", "harbor.example.com#f", "h\\\"x",
	    "harbor.example.com\\r\\nX: y", "" };
	char url[300];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		(void)am_fmt(url, sizeof(url), "%s/library/app:1.0-amd64", good[i]);
		body = payload("library/app", "1.0-amd64", DIGEST, url);
		CHECK(event_parse(body, strlen(body), 0, &ev, err, sizeof(err)) == AM_OK);
		CHECK_STR(ev.resources[0].host, good[i]);
		free(body);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)am_fmt(url, sizeof(url), "%s/library/app:1.0-amd64", bad[i]);
		expect_field(bad[i], payload("library/app", "1.0-amd64", DIGEST, url), "resource_url");
	}
	body = corpus_file("event/regress-nonascii-host.json", &len);
	CHECK(event_parse(body, len, 0, &ev, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, "resource_url") != NULL);
	free(body);
}

static void
expect_clean_reject(const struct webhook_env *env, const char *what, const char *body, size_t len)
{
	struct webhook_req req;
	struct webhook_resp resp;
	json_t *j = NULL;
	size_t i;
	int before = t_failed;

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.content_type = "application/json";
	req.body = body;
	req.body_len = len;
	webhook_handle(env, &req, &resp);
	CHECK(resp.status == 400);
	CHECK(resp.body != NULL);
	if (resp.body != NULL)
		j = json_loads(resp.body, 0, NULL);
	CHECK(json_is_object(j) && json_string_value(json_object_get(j, "error")) != NULL);
	for (i = 0; summary(&resp)[i] != '\0'; i++)
		CHECK((unsigned char)summary(&resp)[i] >= 0x20 && (unsigned char)summary(&resp)[i] < 0x7f);
	if (t_failed != before)
		fprintf(stderr, "  case \"%s\": body %s summary %s\n", what,
		    resp.body ? resp.body : "(null)", summary(&resp));
	json_decref(j);
	free(resp.body);
}

/*
 * Fuzzer finding (regress-nonascii-in-reason.json): a parser message quoting
 * raw UTF-8 reached the log summary, and one cut in the middle of a UTF-8
 * sequence made json_pack fail, leaving the reply without a body.
 */
static void
test_reject_reason_is_ascii(const struct cfg *c)
{
	struct webhook_env env = { c, NULL, no_enqueue, NULL, NULL, NULL, NULL, NULL, NULL };
	char body[1024], *raw;
	size_t len, i, off;

	raw = corpus_file("event/regress-nonascii-in-reason.json", &len);
	expect_clean_reject(&env, "fuzzer input", raw, len);
	free(raw);
	/* An invalid token of two-byte characters, long enough that the reason gets cut. */
	off = (size_t)snprintf(body, sizeof(body), "{\"type\":\"PUSH_ARTIFACT\",\"x\":");
	for (i = 0; i < 300; i++) {
		body[off++] = '\xc3';
		body[off++] = '\xa9';
	}
	body[off++] = '}';
	body[off] = '\0';
	expect_clean_reject(&env, "long UTF-8 token", body, off);
}

static void
test_incomplete_body_is_408(const struct cfg *c)
{
	struct webhook_env env = { c, "Bearer s", no_enqueue, NULL, NULL, NULL, NULL, NULL, NULL };
	struct webhook_req req;
	struct webhook_resp resp;

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.authorization = "Bearer s";
	req.content_type = "application/json";
	req.body = "";
	req.body_incomplete = 1;
	webhook_handle(&env, &req, &resp);
	CHECK(resp.status == 408);
	CHECK(resp.body != NULL && strstr(resp.body, "incomplete") != NULL);
	free(resp.body);
	/* Authentication still comes first. */
	req.authorization = NULL;
	webhook_handle(&env, &req, &resp);
	CHECK(resp.status == 401);
	free(resp.body);
}

/* Fuzzer finding (regress-overlong-tag-matched.txt): a 130-byte tag matched and broke the round trip. */
static void
test_rule_matches_only_valid_names(const struct cfg *c)
{
	const struct rule *r = &c->rules[0];
	struct rule_match m;
	char tag[200];

	memset(tag, 'a', 124);
	(void)am_fmt(tag + 124, sizeof(tag) - 124, "-amd64");       /* 130 characters */
	CHECK(!rule_match_source(r, "library/app", tag, &m));
	tag[128 - 6] = '\0';
	(void)am_fmt(tag + 122, sizeof(tag) - 122, "-amd64");       /* 128: the longest valid tag */
	CHECK(rule_match_source(r, "library/app", tag, &m));
	CHECK(!rule_match_source(r, "library/App", "1.0-amd64", &m));
	CHECK(!rule_match_source(r, "library/app", ".1.0-amd64", &m));
	CHECK(!rule_match_source(r, "library/app", "1.0/x-amd64", &m));
	CHECK(rule_match_source(r, "library/app", "1.0-amd64", &m));
}

/*
 * Fuzzer finding (regress-empty-os-feature.json): an empty os.features entry
 * became "wi," and came out of the built index as ["wi"], so the index did
 * not describe the child. Empty entries name nothing and are dropped.
 */
static void
test_empty_os_feature_round_trips(void)
{
	static const char *const configs[] = {
		"{\"architecture\":\"amd64\",\"os\":\"windows\",\"os.features\":[\"wi\",\"\"]}",
		"{\"architecture\":\"amd64\",\"os\":\"windows\",\"os.features\":[\"\",\"wi\"]}",
		"{\"architecture\":\"amd64\",\"os\":\"windows\",\"os.features\":[\"\",\"wi\",\"\",\"x\"]}",
	};
	static const char *const want[] = { "wi", "wi", "wi,x" };
	struct descriptor d;
	struct index_doc doc;
	struct manifest back;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
		memset(&d, 0, sizeof(d));
		CHECK(config_parse_platform(configs[i], strlen(configs[i]), &d.platform, err,
		    sizeof(err)) == AM_OK);
		CHECK_STR(d.platform.os_features, want[i]);
		(void)am_fmt(d.media_type, sizeof(d.media_type), "%s", MT_OCI_MANIFEST);
		(void)am_fmt(d.digest, sizeof(d.digest), "%s", DIGEST);
		d.size = 1;
		d.has_platform = 1;
		CHECK(index_build(&d, 1, INDEX_OCI, &doc, err, sizeof(err)) == AM_OK);
		CHECK(manifest_parse(doc.body, doc.len, doc.media_type, &back, err, sizeof(err)) == AM_OK);
		CHECK(back.n_children == 1);
		if (back.n_children == 1)
			CHECK_STR(back.children[0].platform.os_features, want[i]);
		manifest_free(&back);
		index_doc_clear(&doc);
	}
}

TEST_MAIN("hostile")
static void
run_tests(void)
{
	struct cfg *c = load_cfg();

	test_nul_names_the_field();
	test_host_grammar();
	test_reject_reason_is_ascii(c);
	test_incomplete_body_is_408(c);
	test_rule_matches_only_valid_names(c);
	test_empty_os_feature_round_trips();
	cfg_free(c);
}
