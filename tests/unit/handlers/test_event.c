/*
 * Unit tests: Harbor webhook payloads (handlers/event.c). The canonical
 * Default and CloudEvents payloads live in tests/unit/fixtures/; variants are
 * derived from them with Jansson so each case changes one thing only.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <jansson.h>

#include "handlers/event.h"

#define FIXTURES "tests/unit/fixtures/"
#define DIGEST  "sha256:4b8f2c0a9e1d3b5f7a6c8e0d2f4b6a8c0e2d4f6a8b0c2e4d6f8a0b2c4e6d8f0a"
#define DIGEST2 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* The raw bytes of a fixture (caller frees); exits when it is missing. */
static char *
fixture_bytes(const char *name, size_t *len)
{
	char path[256], err[256];
	char *buf = NULL;

	(void)am_fmt(path, sizeof(path), FIXTURES "%s", name);
	if (am_read_file(path, 1 << 20, &buf, len, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "cannot read fixture (run from the repository root): %s\n", err);
		exit(2);
	}
	return buf;
}

/* A fixture as a Jansson tree to derive variants from (caller decrefs). */
static json_t *
fixture_json(const char *name)
{
	char path[256];
	json_error_t jerr;
	json_t *root;

	(void)am_fmt(path, sizeof(path), FIXTURES "%s", name);
	if ((root = json_load_file(path, 0, &jerr)) == NULL) {
		fprintf(stderr, "%s: %d: %s\n", path, jerr.line, jerr.text);
		exit(2);
	}
	return root;
}

/* The payload's event_data (Default) or data (CloudEvents), borrowed. */
static json_t *
payload_data(json_t *root)
{
	json_t *d = json_object_get(root, "event_data");
	return d ? d : json_object_get(root, "data");
}

static json_t *
payload_repo(json_t *root)
{
	return json_object_get(payload_data(root), "repository");
}

static json_t *
payload_res(json_t *root, size_t i)
{
	return json_array_get(json_object_get(payload_data(root), "resources"), i);
}

static json_t *
resource(const char *tag, const char *digest, const char *url)
{
	json_t *r = json_object();

	if (digest != NULL)
		json_object_set_new(r, "digest", json_string(digest));
	if (tag != NULL)
		json_object_set_new(r, "tag", json_string(tag));
	if (url != NULL)
		json_object_set_new(r, "resource_url", json_string(url));
	return r;
}

/* Serialise a tree (steals it) and parse it. */
static enum am_err
parse_tree(json_t *root, int cloudevents, struct event *ev, char *err, size_t errlen)
{
	char *body = json_dumps(root, JSON_COMPACT);
	enum am_err rc;

	json_decref(root);
	if (body == NULL) {
		fprintf(stderr, "json_dumps failed\n");
		exit(2);
	}
	rc = event_parse(body, strlen(body), cloudevents, ev, err, errlen);
	free(body);
	return rc;
}

/* A malformed payload: AM_EINVAL and a reason containing needle. */
static void
expect_invalid(const char *what, const char *body, size_t len, int cloudevents, const char *needle)
{
	struct event ev;
	char err[256] = "";
	int before = t_failed;

	CHECK(event_parse(body, len, cloudevents, &ev, err, sizeof(err)) == AM_EINVAL);
	CHECK(strstr(err, needle) != NULL);
	if (t_failed != before)
		fprintf(stderr, "  case \"%s\": reason \"%s\", expected it to mention \"%s\"\n",
		    what, err, needle);
}

static void
expect_invalid_tree(const char *what, json_t *root, int cloudevents, const char *needle)
{
	char *body = json_dumps(root, JSON_COMPACT);

	json_decref(root);
	expect_invalid(what, body, strlen(body), cloudevents, needle);
	free(body);
}

static void
test_default_fixture(void)
{
	struct event ev;
	char err[256] = "";
	size_t len;
	char *body = fixture_bytes("push-default.json", &len);

	CHECK(event_parse(body, len, 0, &ev, err, sizeof(err)) == AM_OK);
	CHECK_STR(err, "");
	CHECK(ev.is_push == 1);
	CHECK_STR(ev.type, "PUSH_ARTIFACT");
	CHECK_STR(ev.operator_, "robot$library+ci");
	CHECK_STR(ev.repo, "library/myapp");
	CHECK(ev.n_resources == 1);
	CHECK_STR(ev.resources[0].tag, "3.8.5-amd64");
	CHECK_STR(ev.resources[0].digest, DIGEST);
	CHECK_STR(ev.resources[0].host, "harbor.example.com");
	CHECK(ev.resources[0].by_digest == 0);

	/* The body need not be NUL-terminated: only len bytes count. */
	{
		char *copy = malloc(len + 8);
		memcpy(copy, body, len);
		memcpy(copy + len, "}}garbag", 8);
		CHECK(event_parse(copy, len, 0, &ev, err, sizeof(err)) == AM_OK);
		CHECK_STR(ev.repo, "library/myapp");
		free(copy);
	}
	/* Cut short: not JSON any more. */
	expect_invalid("truncated", body, len - 3, 0, "not valid JSON");
	free(body);
}

static void
test_default_variants(void)
{
	struct event ev;
	char err[256] = "";
	json_t *root, *repo, *r;

	/* Nested repository path, no date_created. */
	root = fixture_json("push-default.json");
	repo = payload_repo(root);
	json_object_del(repo, "date_created");
	json_object_set_new(repo, "name", json_string("team/app"));
	json_object_set_new(repo, "repo_full_name", json_string("library/team/app"));
	json_object_set_new(payload_res(root, 0), "resource_url",
	    json_string("harbor.example.com/library/team/app:3.8.5-amd64"));
	CHECK(parse_tree(root, 0, &ev, err, sizeof(err)) == AM_OK);
	CHECK(ev.is_push == 1);
	CHECK_STR(ev.repo, "library/team/app");
	CHECK_STR(ev.resources[0].tag, "3.8.5-amd64");
	CHECK_STR(ev.resources[0].host, "harbor.example.com");

	/* A host with a port is kept whole (mapped to a registry by the config). */
	root = fixture_json("push-default.json");
	json_object_set_new(payload_res(root, 0), "resource_url",
	    json_string("harbor.example.com:8443/library/myapp:3.8.5-amd64"));
	CHECK(parse_tree(root, 0, &ev, err, sizeof(err)) == AM_OK);
	CHECK_STR(ev.resources[0].host, "harbor.example.com:8443");

	/* No operator, no digest field: both optional. */
	root = fixture_json("push-default.json");
	json_object_del(root, "operator");
	json_object_del(payload_res(root, 0), "digest");
	CHECK(parse_tree(root, 0, &ev, err, sizeof(err)) == AM_OK);
	CHECK_STR(ev.operator_, "");
	CHECK_STR(ev.resources[0].digest, "");
	CHECK_STR(ev.resources[0].tag, "3.8.5-amd64");

	/* Longest valid tag (128 characters). */
	{
		char tag[129];
		memset(tag, 'a', 128);
		tag[128] = '\0';
		root = fixture_json("push-default.json");
		json_object_set_new(payload_res(root, 0), "tag", json_string(tag));
		CHECK(parse_tree(root, 0, &ev, err, sizeof(err)) == AM_OK);
		CHECK(strlen(ev.resources[0].tag) == 128);
	}

	/* Brackets inside strings do not count as nesting; moderate nesting is fine. */
	{
		char deep[128], str[256];
		int i;
		for (i = 0; i < 20; i++)
			deep[i] = '[';
		for (; i < 40; i++)
			deep[i] = ']';
		deep[i] = '\0';
		memset(str, '[', 200);
		str[200] = '\0';
		root = fixture_json("push-default.json");
		json_object_set_new(root, "extra", json_loads(deep, 0, NULL));
		json_object_set_new(root, "note", json_string(str));
		json_object_set_new(root, "quoted", json_string("\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"));
		CHECK(parse_tree(root, 0, &ev, err, sizeof(err)) == AM_OK);
		CHECK(ev.is_push == 1);
	}

	/* Digest-only push: the tag repeats the digest, resource_url uses @. */
	root = fixture_json("push-default.json");
	r = payload_res(root, 0);
	json_object_set_new(r, "tag", json_string(DIGEST));
	json_object_set_new(r, "resource_url", json_string("harbor.example.com/library/myapp@" DIGEST));
	CHECK(parse_tree(root, 0, &ev, err, sizeof(err)) == AM_OK);
	CHECK(ev.is_push == 1);
	CHECK(ev.n_resources == 1);
	CHECK(ev.resources[0].by_digest == 1);
	CHECK_STR(ev.resources[0].tag, "");
	CHECK_STR(ev.resources[0].digest, DIGEST);
	CHECK_STR(ev.resources[0].host, "harbor.example.com");

	/* Digest push with the tag absent altogether. */
	root = fixture_json("push-default.json");
	r = payload_res(root, 0);
	json_object_del(r, "tag");
	json_object_set_new(r, "resource_url", json_string("harbor.example.com/library/myapp@" DIGEST));
	CHECK(parse_tree(root, 0, &ev, err, sizeof(err)) == AM_OK);
	CHECK(ev.resources[0].by_digest == 1);

	/* Several resources, kept in order, mixed tag and digest pushes. */
	root = fixture_json("push-default.json");
	{
		json_t *arr = json_object_get(payload_data(root), "resources");
		json_array_append_new(arr, resource(DIGEST2, DIGEST2, "harbor.example.com/library/myapp@" DIGEST2));
		json_array_append_new(arr, resource("3.8.5-arm64", DIGEST2,
		    "other.example.org/library/myapp:3.8.5-arm64"));
	}
	CHECK(parse_tree(root, 0, &ev, err, sizeof(err)) == AM_OK);
	CHECK(ev.n_resources == 3);
	CHECK_STR(ev.resources[0].tag, "3.8.5-amd64");
	CHECK(ev.resources[0].by_digest == 0);
	CHECK(ev.resources[1].by_digest == 1);
	CHECK_STR(ev.resources[1].digest, DIGEST2);
	CHECK_STR(ev.resources[2].tag, "3.8.5-arm64");
	CHECK_STR(ev.resources[2].host, "other.example.org");

	/* Exactly 16 resources is the limit, still accepted. */
	{
		json_t *arr;
		int i;
		root = fixture_json("push-default.json");
		arr = json_object_get(payload_data(root), "resources");
		for (i = 1; i < EVENT_MAX_RESOURCES; i++)
			json_array_append_new(arr, resource("3.8.5-arm64", NULL,
			    "harbor.example.com/library/myapp:3.8.5-arm64"));
		CHECK(parse_tree(root, 0, &ev, err, sizeof(err)) == AM_OK);
		CHECK(ev.n_resources == EVENT_MAX_RESOURCES);
	}
}

static void
test_cloudevents(void)
{
	struct event ev;
	char err[256] = "";
	size_t len;
	char *body = fixture_bytes("push-cloudevents.json", &len);
	json_t *root, *r;

	CHECK(event_parse(body, len, 1, &ev, err, sizeof(err)) == AM_OK);
	CHECK(ev.is_push == 1);
	CHECK_STR(ev.type, "harbor.artifact.pushed");
	CHECK_STR(ev.operator_, "robot$library+ci");
	CHECK_STR(ev.repo, "library/myapp");
	CHECK(ev.n_resources == 1);
	CHECK_STR(ev.resources[0].tag, "3.8.5-amd64");
	CHECK_STR(ev.resources[0].digest, DIGEST);
	CHECK_STR(ev.resources[0].host, "harbor.example.com");
	CHECK(ev.resources[0].by_digest == 0);
	free(body);

	/* Nested repository and digest-only push in CloudEvents form. */
	root = fixture_json("push-cloudevents.json");
	json_object_del(payload_repo(root), "date_created");
	json_object_set_new(payload_repo(root), "repo_full_name", json_string("library/team/app"));
	r = payload_res(root, 0);
	json_object_set_new(r, "tag", json_string(DIGEST));
	json_object_set_new(r, "resource_url", json_string("harbor.example.com/library/team/app@" DIGEST));
	CHECK(parse_tree(root, 1, &ev, err, sizeof(err)) == AM_OK);
	CHECK_STR(ev.repo, "library/team/app");
	CHECK(ev.resources[0].by_digest == 1);

	/* CloudEvents needs "data"; "event_data" is the Default layout's name. */
	root = fixture_json("push-cloudevents.json");
	json_object_set(root, "event_data", json_object_get(root, "data"));
	json_object_del(root, "data");
	expect_invalid_tree("cloudevents without data", root, 1, "\"data\"");
}

static void
test_other_types(void)
{
	struct event ev;
	char err[256] = "";
	const char *pull = "{\"type\":\"PULL_ARTIFACT\",\"occur_at\":1767225600,\"operator\":\"admin\","
	    "\"event_data\":{\"resources\":[{\"tag\":\"3.8.5\",\"resource_url\":"
	    "\"harbor.example.com/library/myapp:3.8.5\"}],"
	    "\"repository\":{\"repo_full_name\":\"library/myapp\"}}}";
	const char *deleted = "{\"specversion\":\"1.0\",\"type\":\"harbor.artifact.deleted\","
	    "\"data\":{\"resources\":[],\"repository\":{\"repo_full_name\":\"library/myapp\"}}}";
	const char *scan = "{\"specversion\":\"1.0\",\"type\":\"harbor.scan.completed\"}";
	json_t *root;

	CHECK(event_parse(pull, strlen(pull), 0, &ev, err, sizeof(err)) == AM_OK);
	CHECK(ev.is_push == 0);
	CHECK_STR(ev.type, "PULL_ARTIFACT");
	CHECK(ev.n_resources == 0);

	/* Other types are not checked further: empty resources is fine there. */
	CHECK(event_parse(deleted, strlen(deleted), 1, &ev, err, sizeof(err)) == AM_OK);
	CHECK(ev.is_push == 0);
	CHECK_STR(ev.type, "harbor.artifact.deleted");
	/* Harbor's finished scan, both formats: repository and resources like a push. */
	{
		const char *scan_def = "{\"type\":\"SCANNING_COMPLETED\",\"occur_at\":1767225600,"
		    "\"operator\":\"auto\",\"event_data\":{\"resources\":[{\"digest\":\"sha256:"
		    "4b8f2c0a9e1d3b5f7a6c8e0d2f4b6a8c0e2d4f6a8b0c2e4d6f8a0b2c4e6d8f0a\",\"tag\":"
		    "\"3.8.5-arm64\",\"resource_url\":\"harbor.example.com/library/myapp:3.8.5-arm64\","
		    "\"scan_overview\":{}}],\"repository\":{\"repo_full_name\":\"library/myapp\"}}}";
		const char *scan_ce = "{\"specversion\":\"1.0\",\"type\":\"harbor.scan.completed\","
		    "\"data\":{\"resources\":[{\"digest\":\"sha256:"
		    "4b8f2c0a9e1d3b5f7a6c8e0d2f4b6a8c0e2d4f6a8b0c2e4d6f8a0b2c4e6d8f0a\",\"tag\":"
		    "\"3.8.5-arm64\",\"resource_url\":\"harbor.example.com/library/myapp:3.8.5-arm64\"}],"
		    "\"repository\":{\"repo_full_name\":\"library/myapp\"}}}";
		CHECK(event_parse(scan_def, strlen(scan_def), 0, &ev, err, sizeof(err)) == AM_OK);
		CHECK(ev.is_scan == 1 && ev.is_push == 0 && ev.n_resources == 1);
		CHECK_STR(ev.repo, "library/myapp");
		CHECK_STR(ev.resources[0].tag, "3.8.5-arm64");
		CHECK(strncmp(ev.resources[0].digest, "sha256:4b8f", 11) == 0);
		CHECK(event_parse(scan_ce, strlen(scan_ce), 1, &ev, err, sizeof(err)) == AM_OK);
		CHECK(ev.is_scan == 1 && ev.is_push == 0 && ev.n_resources == 1);
		CHECK_STR(ev.resources[0].host, "harbor.example.com");
		/* The Default type under CloudEvents is not a scan there. */
		CHECK(event_parse(scan_def, strlen(scan_def), 1, &ev, err, sizeof(err)) == AM_OK);
		CHECK(ev.is_scan == 0);
	}
	/* A scan report without its data wakes nobody, and is no error either. */
	CHECK(event_parse(scan, strlen(scan), 1, &ev, err, sizeof(err)) == AM_OK);
	CHECK(ev.is_push == 0 && ev.is_scan == 0);
	CHECK_STR(ev.type, "harbor.scan.completed");

	/* The Default payload of another type, body otherwise identical to a push. */
	root = fixture_json("push-default.json");
	json_object_set_new(root, "type", json_string("DELETE_ARTIFACT"));
	CHECK(parse_tree(root, 0, &ev, err, sizeof(err)) == AM_OK);
	CHECK(ev.is_push == 0);
	CHECK_STR(ev.type, "DELETE_ARTIFACT");
}

static void
test_malformed(void)
{
	json_t *root;
	char buf[4096];
	int i, n;

	expect_invalid("not JSON", "type=PUSH_ARTIFACT", 18, 0, "not valid JSON");
	expect_invalid("empty body", "", 0, 0, "not valid JSON");
	expect_invalid("array", "[1,2]", 5, 0, "not a JSON object");
	/* Jansson itself refuses a top-level scalar; either reason names JSON. */
	expect_invalid("string", "\"PUSH_ARTIFACT\"", 15, 0, "JSON");
	expect_invalid("duplicate key", "{\"type\":\"PUSH_ARTIFACT\",\"type\":\"PULL_ARTIFACT\"}", 46, 0,
	    "not valid JSON");

	root = fixture_json("push-default.json");
	json_object_del(root, "type");
	expect_invalid_tree("missing type", root, 0, "\"type\"");
	root = fixture_json("push-default.json");
	json_object_set_new(root, "type", json_integer(1));
	expect_invalid_tree("type not a string", root, 0, "\"type\"");
	root = fixture_json("push-default.json");
	json_object_set_new(root, "type", json_string(""));
	expect_invalid_tree("empty type", root, 0, "\"type\"");
	root = fixture_json("push-default.json");
	json_object_set_new(root, "type", json_string(
	    "PUSH_ARTIFACT_PUSH_ARTIFACT_PUSH_ARTIFACT_PUSH_ARTIFACT_PUSH_ARTIFACT"));
	expect_invalid_tree("type too long", root, 0, "\"type\"");

	/* Any event's type reaches the log line: no newline, quote or space in it. */
	{
		static const char *bad_types[] = { "PULL_ARTIFACT\nlevel=error msg=forged",
			"harbor.artifact.deleted\"", "PUSH ARTIFACT", "PUSH_ARTIFACT\r" };
		for (i = 0; i < (int)(sizeof(bad_types) / sizeof(bad_types[0])); i++) {
			root = fixture_json("push-default.json");
			json_object_set_new(root, "type", json_string(bad_types[i]));
			expect_invalid_tree(bad_types[i], root, i % 2, "\"type\"");
		}
	}

	root = fixture_json("push-default.json");
	json_object_del(root, "event_data");
	expect_invalid_tree("missing event_data", root, 0, "\"event_data\"");
	root = fixture_json("push-default.json");
	json_object_set_new(root, "event_data", json_string("x"));
	expect_invalid_tree("event_data not an object", root, 0, "\"event_data\"");
	root = fixture_json("push-cloudevents.json");
	json_object_del(root, "data");
	expect_invalid_tree("missing data", root, 1, "\"data\"");

	root = fixture_json("push-default.json");
	json_object_del(payload_repo(root), "repo_full_name");
	expect_invalid_tree("missing repo_full_name", root, 0, "repo_full_name");
	root = fixture_json("push-default.json");
	json_object_del(payload_data(root), "repository");
	expect_invalid_tree("missing repository", root, 0, "repo_full_name");
	{
		static const char *bad_repos[] = {
			"Library/MyApp", "library/../etc", "library/a..b", "library/my app",
			"library//app", "/library/app", "library/app/", "", "library/app\n",
		};
		for (i = 0; i < (int)(sizeof(bad_repos) / sizeof(bad_repos[0])); i++) {
			root = fixture_json("push-default.json");
			json_object_set_new(payload_repo(root), "repo_full_name", json_string(bad_repos[i]));
			expect_invalid_tree(bad_repos[i], root, 0, "repo_full_name");
		}
	}
	root = fixture_json("push-default.json");
	json_object_set_new(payload_repo(root), "repo_full_name", json_integer(7));
	expect_invalid_tree("repo_full_name not a string", root, 0, "repo_full_name");

	{
		char tag200[201];
		static const char *bad_tags[] = { "a/b", "a\nb", "a\001b", "a\tb", ".hidden", "-x",
			"3.8.5 amd64", "a:b", "a@b" };
		for (i = 0; i < (int)(sizeof(bad_tags) / sizeof(bad_tags[0])); i++) {
			root = fixture_json("push-default.json");
			json_object_set_new(payload_res(root, 0), "tag", json_string(bad_tags[i]));
			expect_invalid_tree(bad_tags[i], root, 0, "resources[0].tag");
		}
		memset(tag200, 'a', 200);
		tag200[200] = '\0';
		root = fixture_json("push-default.json");
		json_object_set_new(payload_res(root, 0), "tag", json_string(tag200));
		expect_invalid_tree("200-char tag", root, 0, "resources[0].tag");
		memset(tag200, 'a', 129);
		tag200[129] = '\0';
		root = fixture_json("push-default.json");
		json_object_set_new(payload_res(root, 0), "tag", json_string(tag200));
		expect_invalid_tree("129-char tag", root, 0, "resources[0].tag");
		/* A "tag" that looks like a digest must be one. */
		root = fixture_json("push-default.json");
		json_object_set_new(payload_res(root, 0), "tag", json_string("sha256:abc"));
		expect_invalid_tree("tag sha256:abc", root, 0, "resources[0].tag");
	}

	{
		static const char *bad_digests[] = {
			"sha256:abc",
			"sha256:4B8F2C0A9E1D3B5F7A6C8E0D2F4B6A8C0E2D4F6A8B0C2E4D6F8A0B2C4E6D8F0A",
			"md5:4b8f2c0a9e1d3b5f7a6c8e0d2f4b6a8c0e2d4f6a8b0c2e4d6f8a0b2c4e6d8f0a",
			"sha256:4b8f2c0a9e1d3b5f7a6c8e0d2f4b6a8c0e2d4f6a8b0c2e4d6f8a0b2c4e6d8f0a0",
			"4b8f2c0a9e1d3b5f7a6c8e0d2f4b6a8c0e2d4f6a8b0c2e4d6f8a0b2c4e6d8f0a",
		};
		for (i = 0; i < (int)(sizeof(bad_digests) / sizeof(bad_digests[0])); i++) {
			root = fixture_json("push-default.json");
			json_object_set_new(payload_res(root, 0), "digest", json_string(bad_digests[i]));
			expect_invalid_tree(bad_digests[i], root, 0, "resources[0].digest");
		}
	}

	root = fixture_json("push-default.json");
	json_array_clear(json_object_get(payload_data(root), "resources"));
	expect_invalid_tree("empty resources", root, 0, "resources");
	root = fixture_json("push-default.json");
	json_object_del(payload_data(root), "resources");
	expect_invalid_tree("missing resources", root, 0, "resources");
	root = fixture_json("push-default.json");
	json_object_set_new(payload_data(root), "resources", json_object());
	expect_invalid_tree("resources not an array", root, 0, "resources");
	root = fixture_json("push-default.json");
	for (i = 0; i < EVENT_MAX_RESOURCES; i++)
		json_array_append_new(json_object_get(payload_data(root), "resources"),
		    resource("3.8.5-arm64", NULL, "harbor.example.com/library/myapp:3.8.5-arm64"));
	expect_invalid_tree("17 resources", root, 0, "more than 16 resources");
	root = fixture_json("push-default.json");
	json_array_append_new(json_object_get(payload_data(root), "resources"), json_string("x"));
	expect_invalid_tree("resource not an object", root, 0, "resources[1]");

	{
		static const char *bad_urls[] = { "/library/myapp:3.8.5-amd64", "", "harbor example.com/library/myapp:x" };
		for (i = 0; i < (int)(sizeof(bad_urls) / sizeof(bad_urls[0])); i++) {
			root = fixture_json("push-default.json");
			json_object_set_new(payload_res(root, 0), "resource_url", json_string(bad_urls[i]));
			expect_invalid_tree(bad_urls[i], root, 0, "resources[0].resource_url");
		}
		root = fixture_json("push-default.json");
		json_object_del(payload_res(root, 0), "resource_url");
		expect_invalid_tree("missing resource_url", root, 0, "resources[0].resource_url");
		/* The second resource is checked too, and named by its index. */
		root = fixture_json("push-default.json");
		json_array_append_new(json_object_get(payload_data(root), "resources"),
		    resource("3.8.5-arm64", NULL, "/library/myapp:3.8.5-arm64"));
		expect_invalid_tree("second resource_url", root, 0, "resources[1].resource_url");
	}

	/* 100 levels of nesting are refused before Jansson recurses. */
	n = am_fmt(buf, sizeof(buf), "{\"type\":\"PUSH_ARTIFACT\",\"x\":");
	CHECK(n == 0);
	n = (int)strlen(buf);
	for (i = 0; i < 100; i++)
		buf[n++] = (i % 2) ? '[' : '{';
	buf[n] = '\0';
	expect_invalid("deep nesting, unterminated", buf, (size_t)n, 0, "nests deeper");
	n = (int)strlen("{\"type\":\"PUSH_ARTIFACT\",\"x\":");
	for (i = 0; i < 100; i++)
		buf[n++] = '[';
	for (i = 0; i < 100; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	buf[n] = '\0';
	expect_invalid("deep nesting, balanced", buf, (size_t)n, 0, "nests deeper");

	/* The Default layout under the CloudEvents media type is a sender mistake. */
	root = fixture_json("push-default.json");
	expect_invalid_tree("Default sent as cloudevents", root, 1, "Default-format");
}

TEST_MAIN("event")
static void
run_tests(void)
{
	test_default_fixture();
	test_default_variants();
	test_cloudevents();
	test_other_types();
	test_malformed();
}
