/*
 * Unit tests: the webhook decision (handlers/webhook.c) against a small
 * configuration loaded from a temporary file, with a fake enqueue that
 * records the groups it is handed. No HTTP, no registry.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <unistd.h>
#include <jansson.h>

#include "handlers/webhook.h"
#include "tests/unit/handlers/summary.h"
#include "registry/assemble/written.h"

#define FIXTURES "tests/unit/fixtures/"
#define DIGEST "sha256:4b8f2c0a9e1d3b5f7a6c8e0d2f4b6a8c0e2d4f6a8b0c2e4d6f8a0b2c4e6d8f0a"
#define SECRET "Bearer s3cret"

static const char conf_text[] =
    "server = {\n"
    "  listen = \"127.0.0.1:8080\";\n"
    "  plain_http = true;\n"
    "  allow_unauthenticated = true;\n"
    "};\n"
    "registries = (\n"
    "  { host = \"harbor.example.com\"; url = \"https://10.0.0.5:8443\";\n"
    "    username = \"robot$library+archmerge\"; password_file = \"/nonexistent/robot\"; }\n"
    ");\n"
    "rules = (\n"
    "  { name = \"per-arch\";\n"
    "    repositories = [ \"library/*\" ];\n"
    "    source = \"{repo}:{version}-{arch}\";\n"
    "    target = \"{repo}:{version}\";\n"
    "    architectures = [ \"amd64\", \"arm64\" ]; }\n"
    ");\n";

/* What the fake queue was handed. */
struct fake_queue {
	size_t n;
	struct group groups[20];
	int ret;        /* 1: queued, 0: coalesced, -1: not recorded */
};

static int
fake_enqueue(void *ctx, const struct group *g)
{
	struct fake_queue *q = ctx;

	if (q->n < sizeof(q->groups) / sizeof(q->groups[0]))
		q->groups[q->n] = *g;
	q->n++;
	return q->ret;
}

static struct cfg *
load_cfg(char *dir, size_t dirlen, char *path, size_t pathlen)
{
	struct cfg *c = NULL;
	char err[2048] = "";
	FILE *f;

	(void)am_fmt(dir, dirlen, "/tmp/am-webhook-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	(void)am_fmt(path, pathlen, "%s/archmerge.conf", dir);
	if ((f = fopen(path, "w")) == NULL || fputs(conf_text, f) == EOF || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
	if (cfg_load(path, 0, &c, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "test configuration refused:\n%s\n", err);
		exit(2);
	}
	return c;
}

static char *
fixture(const char *name, size_t *len)
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

/*
 * The Default fixture with resources[0] replaced (tag, resource_url) and,
 * when type is not NULL, another event type. Caller frees.
 */
static char *
variant(const char *name, const char *type, const char *tag, const char *url)
{
	char path[256];
	json_t *root, *data, *r;
	char *s;

	(void)am_fmt(path, sizeof(path), FIXTURES "%s", name);
	if ((root = json_load_file(path, 0, NULL)) == NULL) {
		fprintf(stderr, "cannot load %s\n", path);
		exit(2);
	}
	data = json_object_get(root, "event_data");
	if (data == NULL)
		data = json_object_get(root, "data");
	r = json_array_get(json_object_get(data, "resources"), 0);
	if (type != NULL)
		json_object_set_new(root, "type", json_string(type));
	if (tag != NULL)
		json_object_set_new(r, "tag", json_string(tag));
	if (url != NULL)
		json_object_set_new(r, "resource_url", json_string(url));
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return s;
}

static void
call(const struct webhook_env *env, const char *method, const char *auth, const char *ct,
    const char *body, int too_large, struct webhook_resp *resp)
{
	struct webhook_req req;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.authorization = auth;
	req.content_type = ct;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.body_too_large = too_large;
	webhook_handle(env, &req, resp);
}

/*
 * Check status and the JSON body's "status" field; when key is given, its
 * string value must contain needle. Returns the parsed body (caller decrefs)
 * and frees resp->body.
 */
static json_t *
expect(const char *what, struct webhook_resp *resp, int status, const char *state,
    const char *key, const char *needle)
{
	json_t *body = NULL;
	const char *v;
	int before = t_failed;

	CHECK(resp->status == status);
	CHECK(resp->body != NULL);
	if (resp->body != NULL)
		body = json_loads(resp->body, 0, NULL);
	CHECK(json_is_object(body));
	CHECK_STR(json_string_value(json_object_get(body, "status")), state);
	if (key != NULL) {
		v = json_string_value(json_object_get(body, key));
		CHECK(v != NULL && strstr(v, needle) != NULL);
	}
	CHECK(summary(resp)[0] != '\0');
	if (t_failed != before)
		fprintf(stderr, "  case \"%s\": status %d body %s summary %s\n", what, resp->status,
		    resp->body ? resp->body : "(null)", summary(resp));
	free(resp->body);
	resp->body = NULL;
	if (body == NULL)
		body = json_object();
	return body;
}

static void
expect_simple(const char *what, struct webhook_resp *resp, int status, const char *state,
    const char *key, const char *needle)
{
	json_decref(expect(what, resp, status, state, key, needle));
}

static void
test_request_checks(const struct cfg *c)
{
	struct fake_queue q = { 0, { { "", "", "", "" } }, 1 };
	struct webhook_env env = { c, SECRET, fake_enqueue, &q, NULL, NULL, NULL, NULL, NULL };
	struct webhook_resp resp;
	size_t len;
	char *push = fixture("push-default.json", &len);

	call(&env, "GET", SECRET, "application/json", push, 0, &resp);
	expect_simple("GET", &resp, 405, "rejected", "error", "POST");
	call(&env, "PUT", SECRET, "application/json", push, 0, &resp);
	expect_simple("PUT", &resp, 405, "rejected", "error", "POST");
	/* The method is checked before anything else. */
	call(&env, "GET", NULL, NULL, NULL, 1, &resp);
	expect_simple("GET, nothing else right", &resp, 405, "rejected", "error", "POST");

	call(&env, "POST", NULL, "application/json", push, 0, &resp);
	expect_simple("no Authorization", &resp, 401, "rejected", "error", "Authorization");
	call(&env, "POST", "Bearer wrong", "application/json", push, 0, &resp);
	expect_simple("wrong secret", &resp, 401, "rejected", "error", "Authorization");
	call(&env, "POST", "Bearer s3cre", "application/json", push, 0, &resp);
	expect_simple("prefix of the secret", &resp, 401, "rejected", "error", "Authorization");
	call(&env, "POST", "Bearer", "application/json", push, 0, &resp);
	expect_simple("scheme only", &resp, 401, "rejected", "error", "Authorization");
	call(&env, "POST", "", "application/json", push, 0, &resp);
	expect_simple("empty Authorization", &resp, 401, "rejected", "error", "Authorization");
	call(&env, "POST", SECRET "x", "application/json", push, 0, &resp);
	expect_simple("secret plus a byte", &resp, 401, "rejected", "error", "Authorization");
	call(&env, "POST", "s3cret", "application/json", push, 0, &resp);
	expect_simple("secret without scheme", &resp, 401, "rejected", "error", "Authorization");
	call(&env, "POST", "bearer s3cret", "application/json", push, 0, &resp);
	expect_simple("different case", &resp, 401, "rejected", "error", "Authorization");
	/* Authentication comes before size and media type: nothing leaks to strangers. */
	call(&env, "POST", "Bearer wrong", "text/plain", push, 1, &resp);
	expect_simple("wrong secret, too large, bad type", &resp, 401, "rejected", "error",
	    "Authorization");

	call(&env, "POST", SECRET, "application/json", push, 1, &resp);
	expect_simple("too large", &resp, 413, "rejected", "error", "too large");
	call(&env, "POST", SECRET, "text/plain", push, 1, &resp);
	expect_simple("too large, bad type", &resp, 413, "rejected", "error", "too large");

	call(&env, "POST", SECRET, NULL, push, 0, &resp);
	expect_simple("no Content-Type", &resp, 415, "rejected", "error", "Content-Type");
	call(&env, "POST", SECRET, "text/plain", push, 0, &resp);
	expect_simple("text/plain", &resp, 415, "rejected", "error", "Content-Type");
	call(&env, "POST", SECRET, "application/jsonx", push, 0, &resp);
	expect_simple("application/jsonx", &resp, 415, "rejected", "error", "Content-Type");
	call(&env, "POST", SECRET, "application/json-patch+json", push, 0, &resp);
	expect_simple("application/json-patch+json", &resp, 415, "rejected", "error", "Content-Type");
	call(&env, "POST", SECRET, "", push, 0, &resp);
	expect_simple("empty Content-Type", &resp, 415, "rejected", "error", "Content-Type");

	CHECK(q.n == 0);
	free(push);
}

static void
test_malformed(const struct cfg *c)
{
	struct fake_queue q = { 0, { { "", "", "", "" } }, 1 };
	struct webhook_env env = { c, SECRET, fake_enqueue, &q, NULL, NULL, NULL, NULL, NULL };
	struct webhook_resp resp;
	char *s;

	call(&env, "POST", SECRET, "application/json", "not json", 0, &resp);
	expect_simple("not JSON", &resp, 400, "rejected", "error", "JSON");
	call(&env, "POST", SECRET, "application/json", "", 0, &resp);
	expect_simple("empty body", &resp, 400, "rejected", "error", "JSON");
	call(&env, "POST", SECRET, "application/json", "{\"type\":\"PUSH_ARTIFACT\"}", 0, &resp);
	expect_simple("no event_data", &resp, 400, "rejected", "error", "event_data");
	s = variant("push-default.json", NULL, "a/b", NULL);
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("bad tag", &resp, 400, "rejected", "error", "resources[0].tag");
	free(s);
	/* Invalid UTF-8 in the body: the error reply must still be valid JSON. */
	call(&env, "POST", SECRET, "application/json", "{\"type\":\"\xc3\x28\"}", 0, &resp);
	expect_simple("invalid UTF-8", &resp, 400, "rejected", "error", "JSON");
	/* A non-push type is logged: one that could forge log lines is refused. */
	s = variant("push-default.json", "PULL_ARTIFACT\nlevel=error msg=forged", NULL, NULL);
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("type with newline", &resp, 400, "rejected", "error", "\"type\"");
	CHECK(strchr(summary(&resp), '\n') == NULL);
	free(s);
	s = fixture("push-default.json", &(size_t){ 0 });
	call(&env, "POST", SECRET, "application/cloudevents+json", s, 0, &resp);
	expect_simple("Default sent as cloudevents", &resp, 400, "rejected", "error", "Default-format");
	free(s);
	CHECK(q.n == 0);
}

static void
test_queued(const struct cfg *c)
{
	struct fake_queue q = { 0, { { "", "", "", "" } }, 1 };
	struct webhook_env env = { c, SECRET, fake_enqueue, &q, NULL, NULL, NULL, NULL, NULL };
	struct webhook_resp resp;
	json_t *body, *groups;
	size_t len;
	char *push = fixture("push-default.json", &len);
	char *s;

	call(&env, "POST", SECRET, "application/json", push, 0, &resp);
	body = expect("matching tag", &resp, 202, "queued", NULL, NULL);
	groups = json_object_get(body, "groups");
	CHECK(json_is_array(groups) && json_array_size(groups) == 1);
	CHECK_STR(json_string_value(json_array_get(groups, 0)), "harbor.example.com/library/myapp:3.8.5");
	json_decref(body);
	CHECK(strstr(summary(&resp), "outcome=queued") != NULL);
	CHECK(strstr(summary(&resp), "repo=library/myapp") != NULL);
	CHECK(strstr(summary(&resp), "coalesced") == NULL);
	CHECK(q.n == 1);
	CHECK_STR(q.groups[0].host, "harbor.example.com");
	CHECK_STR(q.groups[0].rule_name, "per-arch");
	CHECK_STR(q.groups[0].repo, "library/myapp");
	CHECK_STR(q.groups[0].version, "3.8.5");

	/* The same delivery again (Harbor retries): queued again, the queue coalesces. */
	q.ret = 0;
	call(&env, "POST", SECRET, "application/json; charset=utf-8", push, 0, &resp);
	json_decref(expect("charset parameter, coalesced", &resp, 202, "queued", NULL, NULL));
	CHECK(strstr(summary(&resp), "coalesced=1") != NULL);
	CHECK(q.n == 2);
	q.ret = 1;
	call(&env, "POST", SECRET, "Application/JSON", push, 0, &resp);
	json_decref(expect("media type case", &resp, 202, "queued", NULL, NULL));
	CHECK(q.n == 3);

	/* The second architecture, a nested repository, an upper-case host. */
	s = variant("push-default.json", NULL, "1.0-rc1-arm64",
	    "HARBOR.example.COM/library/team/app:1.0-rc1-arm64");
	{
		json_t *root = json_loads(s, 0, NULL);
		json_t *repo = json_object_get(json_object_get(root, "event_data"), "repository");
		json_object_set_new(repo, "repo_full_name", json_string("library/team/app"));
		free(s);
		s = json_dumps(root, JSON_COMPACT);
		json_decref(root);
	}
	q.n = 0;
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	body = expect("nested repo, arm64", &resp, 202, "queued", NULL, NULL);
	CHECK_STR(json_string_value(json_array_get(json_object_get(body, "groups"), 0)),
	    "harbor.example.com/library/team/app:1.0-rc1");
	json_decref(body);
	CHECK(q.n == 1);
	CHECK_STR(q.groups[0].host, "harbor.example.com");
	CHECK_STR(q.groups[0].repo, "library/team/app");
	CHECK_STR(q.groups[0].version, "1.0-rc1");
	free(s);

	/* CloudEvents, with its own media type. */
	free(push);
	push = fixture("push-cloudevents.json", &len);
	q.n = 0;
	call(&env, "POST", SECRET, "application/cloudevents+json", push, 0, &resp);
	body = expect("cloudevents", &resp, 202, "queued", NULL, NULL);
	CHECK_STR(json_string_value(json_array_get(json_object_get(body, "groups"), 0)),
	    "harbor.example.com/library/myapp:3.8.5");
	json_decref(body);
	CHECK(q.n == 1);
	CHECK_STR(q.groups[0].version, "3.8.5");
	free(push);

	/* Several resources: a digest child and a tag; only the tag is queued. */
	{
		json_t *root = json_load_file(FIXTURES "push-default.json", 0, NULL);
		json_t *arr = json_object_get(json_object_get(root, "event_data"), "resources");
		json_array_insert_new(arr, 0, json_pack("{s:s, s:s, s:s}", "digest", DIGEST, "tag", DIGEST,
		    "resource_url", "harbor.example.com/library/myapp@" DIGEST));
		s = json_dumps(root, JSON_COMPACT);
		json_decref(root);
	}
	q.n = 0;
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	body = expect("digest + tag", &resp, 202, "queued", NULL, NULL);
	CHECK(json_array_size(json_object_get(body, "groups")) == 1);
	json_decref(body);
	CHECK(q.n == 1);
	free(s);
}

static void
test_ignored(const struct cfg *c)
{
	struct fake_queue q = { 0, { { "", "", "", "" } }, 1 };
	struct webhook_env env = { c, SECRET, fake_enqueue, &q, NULL, NULL, NULL, NULL, NULL };
	struct webhook_resp resp;
	char *s;

	/* Digest-only push (buildx child, attestation). */
	s = variant("push-default.json", NULL, DIGEST, "harbor.example.com/library/myapp@" DIGEST);
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("digest only", &resp, 200, "ignored", "reason", "digest");
	CHECK(strstr(summary(&resp), "outcome=ignored") != NULL);
	free(s);

	/*
	 * Tags the source template does not match: no architecture suffix, an
	 * architecture the rule does not list. The target "{repo}:{version}"
	 * matches any tag, so the reason given may be "target tag"; only the
	 * outcome is pinned here.
	 */
	s = variant("push-default.json", NULL, "latest", "harbor.example.com/library/myapp:latest");
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("latest", &resp, 200, "ignored", "reason", "");
	free(s);
	s = variant("push-default.json", NULL, "3.8.5-s390x", "harbor.example.com/library/myapp:3.8.5-s390x");
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("unconfigured arch", &resp, 200, "ignored", "reason", "");
	free(s);
	/* A repository outside every rule's globs: no rule matches at all. */
	{
		json_t *root = json_load_file(FIXTURES "push-default.json", 0, NULL);
		json_t *data = json_object_get(root, "event_data");
		json_object_set_new(json_object_get(data, "repository"), "repo_full_name", json_string("other/myapp"));
		json_object_set_new(json_array_get(json_object_get(data, "resources"), 0), "resource_url",
		    json_string("harbor.example.com/other/myapp:3.8.5-amd64"));
		s = json_dumps(root, JSON_COMPACT);
		json_decref(root);
	}
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("repository outside the globs", &resp, 200, "ignored", "reason", "no rule");
	free(s);

	/* archmerge's own index push coming back: recognised, no registry work. */
	s = variant("push-default.json", NULL, "3.8.5", "harbor.example.com/library/myapp:3.8.5");
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("target tag", &resp, 200, "ignored", "reason", "target");
	CHECK(strstr(summary(&resp), "target") != NULL);
	CHECK(q.n == 0);
	free(s);

	/*
	 * The same index pushed by archmerge's own robot (the registry's
	 * username): ignored as a target tag, not for who pushed it.
	 */
	s = variant("push-default.json", NULL, "3.8.5", "harbor.example.com/library/myapp:3.8.5");
	{
		json_t *root = json_loads(s, 0, NULL);
		json_object_set_new(root, "operator", json_string("robot$library+archmerge"));
		free(s);
		s = json_dumps(root, JSON_COMPACT);
		json_decref(root);
	}
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	{
		json_t *body = expect("own robot, target tag", &resp, 200, "ignored", NULL, NULL);
		const char *why = json_string_value(json_object_get(body, "reason"));
		CHECK(why != NULL && strstr(why, "target") != NULL);
		json_decref(body);
	}
	CHECK(q.n == 0);
	free(s);

	/* A host that is not a configured registry. */
	s = variant("push-default.json", NULL, NULL, "harbor.other.org/library/myapp:3.8.5-amd64");
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("unknown host", &resp, 200, "ignored", "reason", "unknown registry host");
	free(s);
	/* The configured host with a port is another host. */
	s = variant("push-default.json", NULL, NULL, "harbor.example.com:443/library/myapp:3.8.5-amd64");
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("host with port", &resp, 200, "ignored", "reason", "unknown registry host");
	free(s);

	/* Other event types, both formats. */
	s = variant("push-default.json", "PULL_ARTIFACT", NULL, NULL);
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("PULL_ARTIFACT", &resp, 200, "ignored", "reason", "not a push");
	CHECK(strstr(summary(&resp), "PULL_ARTIFACT") != NULL);
	free(s);
	s = variant("push-cloudevents.json", "harbor.artifact.deleted", NULL, NULL);
	call(&env, "POST", SECRET, "application/cloudevents+json", s, 0, &resp);
	expect_simple("harbor.artifact.deleted", &resp, 200, "ignored", "reason", "not a push");
	free(s);

	CHECK(q.n == 0);
}

static void
test_unauthenticated(const struct cfg *c)
{
	struct fake_queue q = { 0, { { "", "", "", "" } }, 1 };
	struct webhook_env env = { c, NULL, fake_enqueue, &q, NULL, NULL, NULL, NULL, NULL };
	struct webhook_resp resp;
	size_t len;
	char *push = fixture("push-default.json", &len);

	call(&env, "POST", NULL, "application/json", push, 0, &resp);
	json_decref(expect("no secret, no header", &resp, 202, "queued", NULL, NULL));
	call(&env, "POST", "Bearer anything", "application/json", push, 0, &resp);
	json_decref(expect("no secret, some header", &resp, 202, "queued", NULL, NULL));
	CHECK(q.n == 2);
	/* The other checks still apply. */
	call(&env, "GET", NULL, "application/json", push, 0, &resp);
	expect_simple("no secret, GET", &resp, 405, "rejected", "error", "POST");
	call(&env, "POST", NULL, "text/plain", push, 0, &resp);
	expect_simple("no secret, text/plain", &resp, 415, "rejected", "error", "Content-Type");
	free(push);
}

/* The queue could not record the event (journal write failed): 503, never 202. */
static void
test_not_recorded(const struct cfg *c)
{
	struct fake_queue q = { 0, { { "", "", "", "" } }, -1 };
	struct webhook_env env = { c, SECRET, fake_enqueue, &q, NULL, NULL, NULL, NULL, NULL };
	struct webhook_resp resp;
	size_t len;
	char *push = fixture("push-default.json", &len);

	call(&env, "POST", SECRET, "application/json", push, 0, &resp);
	expect_simple("journal failed", &resp, 503, "unavailable", "error", "durably");
	CHECK(strstr(summary(&resp), "outcome=unavailable") != NULL);
	CHECK(q.n == 1);
	free(push);
}

#define NOTIFY_CT "application/vnd.docker.distribution.events.v1+json"
#define MANIFEST_V2 "application/vnd.docker.distribution.manifest.v2+json"

/* One event of distribution's envelope, the way registry 2.8 writes it. */
static char *
notify_event(const char *action, const char *media_type, const char *repo, const char *tag,
    const char *host, const char *actor)
{
	char buf[2048];

	(void)am_fmt(buf, sizeof(buf), "{\"id\":\"e1\",\"timestamp\":\"2026-12-01T10:00:00Z\","
	    "\"action\":\"%s\",\"target\":{\"mediaType\":\"%s\",\"size\":528,\"digest\":\"%s\","
	    "\"length\":528,\"repository\":\"%s\",\"url\":\"https://%s/v2/%s/%s/%s\""
	    "%s%s%s},\"request\":{\"id\":\"r1\",\"addr\":\"127.0.0.1:5555\",\"host\":\"%s\","
	    "\"method\":\"PUT\",\"useragent\":\"skopeo\"},\"actor\":{\"name\":\"%s\"},"
	    "\"source\":{\"addr\":\"reg:5000\",\"instanceID\":\"i1\"}}",
	    action, media_type, DIGEST, repo, host, repo,
	    strstr(media_type, "manifest") != NULL ? "manifests" : "blobs", DIGEST,
	    tag ? ",\"tag\":\"" : "", tag ? tag : "", tag ? "\"" : "", host, actor);
	return strdup(buf);
}

static char *
envelope(const char *a, const char *b, const char *c3)
{
	char buf[8192];

	(void)am_fmt(buf, sizeof(buf), "{\"events\":[%s%s%s%s%s]}", a, b ? "," : "", b ? b : "",
	    c3 ? "," : "", c3 ? c3 : "");
	return strdup(buf);
}

/* distribution's notification envelope on the same path (issue 12). */
static void
test_envelope(const struct cfg *c)
{
	struct fake_queue q = { 0, { { "", "", "", "" } }, 1 };
	struct webhook_env env = { c, SECRET, fake_enqueue, &q, NULL, NULL, NULL, NULL, NULL };
	struct webhook_resp resp;
	json_t *body, *items;
	char *push = notify_event("push", MANIFEST_V2, "library/app", "3.8.5-amd64", "10.0.0.5:8443",
	    "admin");
	char *pull = notify_event("pull", MANIFEST_V2, "library/app", "3.8.5-amd64", "10.0.0.5:8443",
	    "admin");
	char *blob = notify_event("push", "application/octet-stream", "library/app", NULL,
	    "10.0.0.5:8443", "admin");
	char *bydigest = notify_event("push", MANIFEST_V2, "library/app", NULL, "10.0.0.5:8443", "admin");
	/* archmerge's own output (the target tag) comes back: ignored, whoever pushed it. */
	char *own = notify_event("push", MANIFEST_V2, "library/app", "3.8.5", "10.0.0.5:8443",
	    "admin");
	char *byname = notify_event("push", MANIFEST_V2, "library/app", "3.9.0-arm64",
	    "harbor.example.com", "admin");
	char *stranger = notify_event("push", MANIFEST_V2, "library/app", "3.8.5-amd64",
	    "evil.example:443", "admin");
	char *badtag = notify_event("push", MANIFEST_V2, "library/app", "-bad", "10.0.0.5:8443", "admin");
	char *e;

	/* A tagged manifest push, registry named by its url's host[:port]. */
	e = envelope(push, NULL, NULL);
	call(&env, "POST", SECRET, NOTIFY_CT, e, 0, &resp);
	body = expect("notification push", &resp, 202, "queued", NULL, NULL);
	items = json_object_get(body, "events");
	CHECK(json_array_size(items) == 1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "group")),
	    "harbor.example.com/library/app:3.8.5");
	CHECK(q.n == 1 && strcmp(q.groups[0].version, "3.8.5") == 0);
	json_decref(body);
	free(e);
	/* Same secret check. */
	e = envelope(push, NULL, NULL);
	call(&env, "POST", "Bearer wrong", NOTIFY_CT, e, 0, &resp);
	expect_simple("notification wrong secret", &resp, 401, "rejected", "error", "Authorization");
	CHECK(q.n == 1);
	free(e);
	/* Pull, blob push, push by digest, own output, unknown host: all 200, nothing queued. */
	e = envelope(pull, blob, bydigest);
	call(&env, "POST", SECRET, NOTIFY_CT, e, 0, &resp);
	body = expect("notification ignored", &resp, 200, "ignored", "reason", "not a push");
	items = json_object_get(body, "events");
	CHECK(json_array_size(items) == 3);
	CHECK(strstr(json_string_value(json_object_get(json_array_get(items, 1), "reason")), "blob") != NULL);
	CHECK(strstr(json_string_value(json_object_get(json_array_get(items, 2), "reason")), "digest") != NULL);
	CHECK(q.n == 1);
	json_decref(body);
	free(e);
	e = envelope(own, stranger, badtag);
	call(&env, "POST", SECRET, NOTIFY_CT, e, 0, &resp);
	body = expect("notification own/stranger/bad", &resp, 200, "ignored", "reason",
	    "no rule matches the tag: it is a target");
	items = json_object_get(body, "events");
	CHECK(strstr(json_string_value(json_object_get(json_array_get(items, 1), "reason")),
	    "unknown registry host") != NULL);
	CHECK(strstr(json_string_value(json_object_get(json_array_get(items, 2), "error")), "tag") != NULL);
	CHECK(q.n == 1);
	json_decref(body);
	free(e);
	/* Several events: each handled; one status (202) since one was queued. */
	e = envelope(blob, byname, push);
	call(&env, "POST", SECRET, NOTIFY_CT, e, 0, &resp);
	body = expect("notification mixed", &resp, 202, "queued", NULL, NULL);
	items = json_object_get(body, "events");
	CHECK(json_array_size(items) == 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "status")), "ignored");
	CHECK_STR(json_string_value(json_object_get(json_array_get(items, 1), "group")),
	    "harbor.example.com/library/app:3.9.0");
	CHECK(q.n == 3);
	json_decref(body);
	free(e);
	/* Broken envelopes: 400 with the reason. */
	call(&env, "POST", SECRET, NOTIFY_CT, "{\"events\":{}}", 0, &resp);
	expect_simple("envelope events not array", &resp, 400, "rejected", "error", "events");
	call(&env, "POST", SECRET, NOTIFY_CT, "{\"events\":[]}", 0, &resp);
	expect_simple("envelope empty", &resp, 400, "rejected", "error", "1 to");
	call(&env, "POST", SECRET, NOTIFY_CT, "[1,2", 0, &resp);
	expect_simple("envelope not JSON", &resp, 400, "rejected", "error", "JSON");
	/* Journal failure: 503 for the whole envelope. */
	q.ret = -1;
	e = envelope(push, NULL, NULL);
	call(&env, "POST", SECRET, NOTIFY_CT, e, 0, &resp);
	expect_simple("envelope not recorded", &resp, 503, "unavailable", "error", "durably");
	free(e);
	free(push); free(pull); free(blob); free(bydigest); free(own); free(byname);
	free(stranger); free(badtag);
}

TEST_MAIN("webhook")
/* Adds the operator to a variant. */
static char *
with_operator(char *s, const char *op)
{
	json_t *root = json_loads(s, 0, NULL);

	json_object_set_new(root, "operator", json_string(op));
	free(s);
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return s;
}

/* A queue that also remembers repositories (the queue first: fake_enqueue's view). */
struct remembering {
	struct fake_queue q;
	int remembered;
	char last_remembered[512];
	int announced;
	char last_announced[768];
};

static void
fake_announce(void *ctx, const char *host, const char *repo, const char *tag, const char *digest)
{
	struct remembering *q = ctx;
	q->announced++;
	(void)am_fmt(q->last_announced, sizeof(q->last_announced), "%s/%s:%s@%s", host, repo, tag, digest);
}

static void
fake_remember(void *ctx, const char *host, const char *repo)
{
	struct remembering *q = ctx;
	q->remembered++;
	(void)am_fmt(q->last_remembered, sizeof(q->last_remembered), "%s/%s", host, repo);
}

/*
 * Issue 9.1: archmerge and CI sharing one account. A source tag pushed by
 * that account is processed; archmerge's own writes are known by what they
 * are (an output tag, or the digest it just wrote under that tag); every
 * event matching a rule remembers its repository.
 */
static void
test_shared_account(const struct cfg *c)
{
	struct remembering q;
	struct written *w = written_new(4);
	struct webhook_env env = { c, SECRET, fake_enqueue, &q, NULL, fake_remember, w, fake_announce, NULL };
	struct webhook_resp resp;
	const char *d = "sha256:4b8f2c0a9e1d3b5f7a6c8e0d2f4b6a8c0e2d4f6a8b0c2e4d6f8a0b2c4e6d8f0a";
	char *s;

	memset(&q, 0, sizeof(q));
	q.q.ret = 1;
	s = with_operator(variant("push-default.json", NULL, NULL, NULL), "robot$library+archmerge");
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("source tag by the shared account", &resp, 202, "queued", NULL, NULL);
	CHECK(q.q.n == 1 && q.remembered == 1);
	CHECK_STR(q.last_remembered, "harbor.example.com/library/myapp");
	/* the change feed learns which push a webhook announced */
	CHECK(q.announced == 1);
	CHECK(strncmp(q.last_announced, "harbor.example.com/library/myapp:3.8.5-amd64@sha256:", 52) == 0);
	CHECK(strstr(summary(&resp), "outcome=queued") != NULL);
	free(s);

	/* A target tag: ignored as archmerge's output, repository still remembered. */
	s = with_operator(variant("push-default.json", NULL, "3.8.5",
	    "harbor.example.com/library/myapp:3.8.5"), "robot$library+archmerge");
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("target by the shared account", &resp, 200, "ignored", "reason", "target");
	CHECK(strcmp(resp.reason, "target_tag") == 0);
	CHECK(q.announced == 1);                     /* only source tags are announced */
	CHECK(q.q.n == 1 && q.remembered == 2);
	free(s);

	/* The digest archmerge just wrote under exactly that tag: its own write, whoever sent it. */
	written_note(w, "harbor.example.com", "library/myapp", "3.8.5-amd64", d);
	s = variant("push-default.json", NULL, NULL, NULL);
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("own write by digest", &resp, 200, "ignored", "reason", "own write");
	CHECK(strcmp(resp.reason, "own_push") == 0);
	CHECK(q.q.n == 1 && q.remembered == 3);
	free(s);
	/* The same digest under another source tag is a source push. */
	s = variant("push-default.json", NULL, "3.8.6-amd64",
	    "harbor.example.com/library/myapp:3.8.6-amd64");
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("same digest, other tag", &resp, 202, "queued", NULL, NULL);
	CHECK(q.q.n == 2);
	free(s);
	/* The own write answered for its one event: the tag pushed to that digest again is a
	 * source push (issue 22.5). Bounds: tests/unit/registry/assemble/test_written.c. */
	s = variant("push-default.json", NULL, NULL, NULL);
	call(&env, "POST", SECRET, "application/json", s, 0, &resp);
	expect_simple("own write's digest pushed again", &resp, 202, "queued", NULL, NULL);
	CHECK(q.q.n == 3);
	free(s);
	written_free(w);
}

/*
 * issue 23: one secret per registry. Two registries, each with its own
 * secret: a sender holding A's secret cannot make archmerge read B (Harbor's
 * resource_url and distribution's request.host are the sender's choice).
 */
static const char two_text[] =
    "server = {\n"
    "  listen = \"127.0.0.1:8080\";\n"
    "  plain_http = true;\n"
    "  allow_unauthenticated = true;\n"
    "};\n"
    "registries = (\n"
    "  { host = \"harbor-a.example.com\"; url = \"https://10.0.0.5:8443\";\n"
    "    webhook_secret_file = \"/nonexistent/a\"; },\n"
    "  { host = \"harbor-b.example.com\"; url = \"https://10.0.0.6:8443\";\n"
    "    webhook_secret_file = \"/nonexistent/b\"; }\n"
    ");\n"
    "rules = (\n"
    "  { name = \"per-arch\";\n"
    "    repositories = [ \"library/*\" ];\n"
    "    source = \"{repo}:{version}-{arch}\";\n"
    "    target = \"{repo}:{version}\";\n"
    "    architectures = [ \"amd64\", \"arm64\" ]; }\n"
    ");\n";

static void
test_per_registry_secret(void)
{
	char dir[] = "/tmp/am-webhook2-XXXXXX", path[128], err[2048] = "";
	struct fake_queue q = { 0, { { "", "", "", "" } }, 1 };
	const char *own[2] = { "Bearer a-secret", "Bearer b-secret" };
	struct webhook_env env = { NULL, SECRET, fake_enqueue, &q, NULL, NULL, NULL, NULL, own };
	struct webhook_resp resp;
	struct cfg *c = NULL;
	json_t *body, *items;
	char *to_a = variant("push-default.json", NULL, "3.8.5-amd64",
	    "harbor-a.example.com/library/myapp:3.8.5-amd64");
	char *to_b = variant("push-default.json", NULL, "3.8.5-amd64",
	    "harbor-b.example.com/library/myapp:3.8.5-amd64");
	char *ev_a = notify_event("push", MANIFEST_V2, "library/app", "3.8.5-amd64", "10.0.0.5:8443",
	    "admin");
	char *ev_b = notify_event("push", MANIFEST_V2, "library/app", "3.8.5-amd64", "10.0.0.6:8443",
	    "admin");
	char *e;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL);
	(void)am_fmt(path, sizeof(path), "%s/archmerge.conf", dir);
	CHECK((f = fopen(path, "w")) != NULL && fputs(two_text, f) != EOF && fclose(f) == 0);
	CHECK(cfg_load(path, 0, &c, err, sizeof(err)) == AM_OK);
	if (c == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	CHECK_STR(c->registries[0].webhook_secret_file, "/nonexistent/a");
	CHECK(c->registries[1].webhook_secret_file != NULL);
	env.cfg = c;
	CHECK_STR(webhook_secret_for(&env, "harbor-b.example.com"), "Bearer b-secret");
	CHECK_STR(webhook_secret_for(&env, "unknown.example"), SECRET);

	call(&env, "POST", own[0], "application/json", to_a, 0, &resp);
	expect_simple("A's secret, A named", &resp, 202, "queued", NULL, NULL);
	CHECK(q.n == 1 && strcmp(q.groups[0].host, "harbor-a.example.com") == 0);
	call(&env, "POST", own[0], "application/json", to_b, 0, &resp);
	expect_simple("A's secret, B named", &resp, 200, "ignored", "reason", "not the webhook secret");
	CHECK_STR(resp.reason, "wrong_secret");
	CHECK(q.n == 1);
	/* The server's secret no longer speaks for a registry with its own. */
	call(&env, "POST", SECRET, "application/json", to_b, 0, &resp);
	expect_simple("server's secret, B named", &resp, 200, "ignored", "reason", "not the webhook secret");
	call(&env, "POST", "Bearer c-secret", "application/json", to_b, 0, &resp);
	expect_simple("nobody's secret", &resp, 401, "rejected", "error", "Authorization");
	call(&env, "POST", own[1], "application/json", to_b, 0, &resp);
	expect_simple("B's secret, B named", &resp, 202, "queued", NULL, NULL);
	CHECK(q.n == 2 && strcmp(q.groups[1].host, "harbor-b.example.com") == 0);

	/* distribution's envelope: each event by its own request.host. */
	e = envelope(ev_a, ev_b, NULL);
	call(&env, "POST", own[0], NOTIFY_CT, e, 0, &resp);
	body = expect("envelope, A's secret", &resp, 202, "queued", NULL, NULL);
	items = json_object_get(body, "events");
	CHECK(json_array_size(items) == 2);
	CHECK(strstr(json_string_value(json_object_get(json_array_get(items, 1), "reason")),
	    "not the webhook secret") != NULL);
	CHECK(q.n == 3 && strcmp(q.groups[2].host, "harbor-a.example.com") == 0);
	json_decref(body);
	free(e);

	/* A registry without its own secret answers to the server's, as before. */
	own[1] = NULL;
	call(&env, "POST", SECRET, "application/json", to_b, 0, &resp);
	expect_simple("server's secret, B without its own", &resp, 202, "queued", NULL, NULL);
	call(&env, "POST", own[0], "application/json", to_b, 0, &resp);
	expect_simple("A's secret, B without its own", &resp, 200, "ignored", "reason",
	    "not the webhook secret");
	CHECK(q.n == 4);

	free(to_a);
	free(to_b);
	free(ev_a);
	free(ev_b);
	cfg_free(c);
	CHECK(unlink(path) == 0);
	CHECK(rmdir(dir) == 0);
}

static void
run_tests(void)
{
	char dir[64], path[128];
	struct cfg *c = load_cfg(dir, sizeof(dir), path, sizeof(path));

	CHECK(c->n_rules == 1 && c->n_registries == 1);
	test_request_checks(c);
	test_malformed(c);
	test_queued(c);
	test_ignored(c);
	test_shared_account(c);
	test_unauthenticated(c);
	test_not_recorded(c);
	test_envelope(c);
	test_per_registry_secret();
	cfg_free(c);
	CHECK(unlink(path) == 0);
	CHECK(rmdir(dir) == 0);
}
