/* A pushed signature tag (sha256-<hex>.sig) as a hint for the group waiting for that image's signature. */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <unistd.h>

#include "handlers/webhook.h"
#include "registry/assemble/written.h"

#define CHILD "sha256:4b8f2c0a9e1d3b5f7a6c8e0d2f4b6a8c0e2d4f6a8b0c2e4d6f8a0b2c4e6d8f0a"
#define SIGTAG "sha256-4b8f2c0a9e1d3b5f7a6c8e0d2f4b6a8c0e2d4f6a8b0c2e4d6f8a0b2c4e6d8f0a.sig"

static const char conf_text[] =
    "server = { listen = \"127.0.0.1:8080\"; plain_http = true; allow_unauthenticated = true; };\n"
    "registries = ( { host = \"harbor.example.com\"; url = \"https://10.0.0.5:8443\";\n"
    "    username = \"robot$library+archmerge\"; password_file = \"/nonexistent/robot\"; } );\n"
    "rules = ( { name = \"per-arch\"; repositories = [ \"library/*\" ]; source = \"{repo}:{version}-{arch}\";\n"
    "    target = \"{repo}:{version}\"; architectures = [ \"amd64\", \"arm64\" ]; } );\n";

static struct group queued;
static int n_queued, n_asked;
static char asked[256];

static int
enqueue(void *ctx, const struct group *g)
{
	(void)ctx;
	queued = *g;
	n_queued++;
	return 1;
}

/* Waits for CHILD in library/myapp only. */
static size_t
hint(void *ctx, const char *host, const char *repo, const char *tag, const char *digest, struct group *g,
    size_t max)
{
	(void)ctx;
	(void)tag;
	n_asked++;
	(void)am_fmt(asked, sizeof(asked), "%s %s %s", host, repo, digest);
	if (max < 1 || strcmp(repo, "library/myapp") != 0 || strcmp(digest, CHILD) != 0)
		return 0;
	memset(g, 0, sizeof(*g));
	(void)am_fmt(g->host, sizeof(g->host), "harbor.example.com");
	(void)am_fmt(g->repo, sizeof(g->repo), "library/myapp");
	(void)am_fmt(g->version, sizeof(g->version), "3.8.5");
	(void)am_fmt(g->rule_name, sizeof(g->rule_name), "per-arch");
	return 1;
}

static void
send(const struct webhook_env *env, const char *repo, const char *tag, const char *operator_,
    struct webhook_resp *resp)
{
	struct webhook_req req;
	char body[1024];

	(void)am_fmt(body, sizeof(body), "{\"type\":\"PUSH_ARTIFACT\",\"occur_at\":1767225600,\"operator\":\"%s\","
	    "\"event_data\":{\"resources\":[{\"digest\":\"sha256:1111111111111111111111111111111111111111111111111111"
	    "111111111111\",\"tag\":\"%s\",\"resource_url\":\"harbor.example.com/%s:%s\"}],"
	    "\"repository\":{\"name\":\"x\",\"namespace\":\"library\",\"repo_full_name\":\"%s\"}}}",
	    operator_, tag, repo, tag, repo);
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.content_type = "application/json";
	req.body = body;
	req.body_len = strlen(body);
	webhook_handle(env, &req, resp);
}

/* Two groups wait for CHILD (one per version): every one must be woken, not only the first. */
static char asked_tag[128];
static size_t
hint_two(void *ctx, const char *host, const char *repo, const char *tag, const char *digest,
    struct group *g, size_t max)
{
	size_t i;

	(void)ctx;
	(void)host;
	n_asked++;
	(void)am_fmt(asked_tag, sizeof(asked_tag), "%s", tag);
	if (max < 2 || strcmp(repo, "library/myapp") != 0 || strcmp(digest, CHILD) != 0)
		return 0;
	for (i = 0; i < 2; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		(void)am_fmt(g[i].host, sizeof(g[i].host), "harbor.example.com");
		(void)am_fmt(g[i].repo, sizeof(g[i].repo), "library/myapp");
		(void)am_fmt(g[i].version, sizeof(g[i].version), "%s", i == 0 ? "3.8.5" : "3.9");
		(void)am_fmt(g[i].rule_name, sizeof(g[i].rule_name), "per-arch");
	}
	return 2;
}

/* Harbor's SCANNING_COMPLETED for repo:tag@CHILD, in either format. */
static void
send_scan(const struct webhook_env *env, const char *repo, const char *tag, int cloudevents,
    struct webhook_resp *resp)
{
	struct webhook_req req;
	char body[1536], data[1024];

	(void)am_fmt(data, sizeof(data), "{\"resources\":[{\"digest\":\"%s\",\"tag\":\"%s\","
	    "\"resource_url\":\"harbor.example.com/%s:%s\",\"scan_overview\":{\"application/vnd."
	    "security.vulnerability.report; version=1.1\":{\"scan_status\":\"Success\"}}}],"
	    "\"repository\":{\"name\":\"myapp\",\"namespace\":\"library\",\"repo_full_name\":\"%s\","
	    "\"repo_type\":\"private\"}}", CHILD, tag, repo, tag, repo);
	if (cloudevents)
		(void)am_fmt(body, sizeof(body), "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":"
		    "\"/projects/1/webhook/policies/3\",\"type\":\"harbor.scan.completed\","
		    "\"datacontenttype\":\"application/json\",\"data\":%s,\"operator\":\"auto\"}", data);
	else
		(void)am_fmt(body, sizeof(body), "{\"type\":\"SCANNING_COMPLETED\",\"occur_at\":1767225600,"
		    "\"operator\":\"auto\",\"event_data\":%s}", data);
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.content_type = cloudevents ? "application/cloudevents+json" : "application/json";
	req.body = body;
	req.body_len = strlen(body);
	webhook_handle(env, &req, resp);
}

static void
test_wake_all(const struct cfg *c)
{
	struct webhook_env env;
	struct webhook_resp resp;
	int fmt;

	memset(&env, 0, sizeof(env));
	env.cfg = c;
	env.enqueue = enqueue;
	env.waiting = hint_two;
	n_queued = 0;
	send(&env, "library/myapp", SIGTAG, "robot$library+ci", &resp);
	CHECK(resp.status == 202 && n_queued == 2);
	CHECK(resp.body != NULL && strstr(resp.body, "library/myapp:3.8.5") != NULL &&
	    strstr(resp.body, "library/myapp:3.9") != NULL);
	free(resp.body);

	/* A finished scan of the child, in both formats: both groups again, asked by tag and digest. */
	for (fmt = 0; fmt < 2; fmt++) {
		n_queued = 0;
		send_scan(&env, "library/myapp", "3.8.5-arm64", fmt, &resp);
		CHECK(resp.status == 202 && n_queued == 2);
		CHECK_STR(asked_tag, "3.8.5-arm64");
		CHECK_STR(resp.outcome, "queued");
		free(resp.body);
	}
	/* A scan nobody waits for: ignored, by its own reason. */
	n_queued = 0;
	send_scan(&env, "library/other", "1.0", 0, &resp);
	CHECK(resp.status == 200 && n_queued == 0);
	CHECK_STR(resp.reason, "scan");
	free(resp.body);
	/* Without a waiting table, a scan is no push either way. */
	env.waiting = NULL;
	send_scan(&env, "library/myapp", "3.8.5-arm64", 1, &resp);
	CHECK(resp.status == 200 && n_queued == 0);
	free(resp.body);
}

static void
run_tests(void)
{
	char dir[] = "/tmp/am-sighint-XXXXXX", path[128], err[2048];
	struct webhook_env env;
	struct webhook_resp resp;
	struct cfg *c = NULL;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL);
	(void)am_fmt(path, sizeof(path), "%s/archmerge.conf", dir);
	CHECK((f = fopen(path, "w")) != NULL && fputs(conf_text, f) != EOF && fclose(f) == 0);
	if (cfg_load(path, 0, &c, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	memset(&env, 0, sizeof(env));
	env.cfg = c;
	env.enqueue = enqueue;

	/* Without a hint source: ignored as a signature tag. */
	send(&env, "library/myapp", SIGTAG, "robot$library+ci", &resp);
	CHECK(resp.status == 200 && n_queued == 0);
	CHECK_STR(resp.reason, "signature");
	free(resp.body);

	env.waiting = hint;
	send(&env, "library/myapp", SIGTAG, "robot$library+ci", &resp);
	CHECK(resp.status == 202 && n_queued == 1);
	CHECK_STR(asked, "harbor.example.com library/myapp " CHILD);
	CHECK_STR(queued.repo, "library/myapp");
	CHECK_STR(queued.version, "3.8.5");
	free(resp.body);

	/* Another repository's signature: nobody waits, ignored. */
	send(&env, "library/other", SIGTAG, "robot$library+ci", &resp);
	CHECK(resp.status == 200 && n_queued == 1);
	free(resp.body);
	/* archmerge's own signature push (the digest it just wrote there): ignored before any lookup. */
	n_asked = 0;
	env.written = written_new(4);
	written_note(env.written, "harbor.example.com", "library/myapp", SIGTAG,
	    "sha256:1111111111111111111111111111111111111111111111111111111111111111");
	send(&env, "library/myapp", SIGTAG, "robot$library+ci", &resp);
	CHECK(resp.status == 200 && n_asked == 0 && n_queued == 1);
	CHECK_STR(resp.reason, "own_push");
	free(resp.body);
	written_free(env.written);
	env.written = NULL;
	/* Not quite a signature tag: ordinary rule matching (no rule matches). */
	send(&env, "library/myapp", "sha256-4b8f.sig", "robot$library+ci", &resp);
	CHECK(resp.status == 200 && n_queued == 1);
	CHECK(resp.reason != NULL && strcmp(resp.reason, "signature") != 0);
	free(resp.body);

	test_wake_all(c);
	cfg_free(c);
	CHECK(unlink(path) == 0 && rmdir(dir) == 0);
}

TEST_MAIN("sighint")
