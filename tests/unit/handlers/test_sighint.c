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
static int
hint(void *ctx, const char *host, const char *repo, const char *digest, struct group *g)
{
	(void)ctx;
	n_asked++;
	(void)am_fmt(asked, sizeof(asked), "%s %s %s", host, repo, digest);
	if (strcmp(repo, "library/myapp") != 0 || strcmp(digest, CHILD) != 0)
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

	env.sig_hint = hint;
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

	cfg_free(c);
	CHECK(unlink(path) == 0 && rmdir(dir) == 0);
}

TEST_MAIN("sighint")
