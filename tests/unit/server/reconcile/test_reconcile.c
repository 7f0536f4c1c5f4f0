/*
 * Unit tests of reconcile without a registry: Link header parsing and
 * next-page resolution (registry/pagelink.c), the remembered-repositories
 * file (server/repos.c), which repositories a rule lists, which groups a tag
 * list yields, and whole passes (server/reconcile.c) over a fake tag list
 * with fake assemble/enqueue callbacks.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "registry/client/pagelink.h"
#include "server/reconcile/reconcile.h"
#include "server/queue/repos.h"

/* ---- Link headers ---- */

static void
test_link_next(void)
{
	char url[128];

	CHECK(pagelink_next("</v2/a/tags/list?n=2&last=b>; rel=\"next\"", url, sizeof(url)) == 1);
	CHECK_STR(url, "/v2/a/tags/list?n=2&last=b");
	CHECK(pagelink_next("<https://r/x?a=1>; rel=\"prev\", <https://r/y>; rel=\"next\"", url,
	    sizeof(url)) == 1);
	CHECK_STR(url, "https://r/y");
	CHECK(pagelink_next("  </p>;rel=next", url, sizeof(url)) == 1);
	CHECK_STR(url, "/p");
	CHECK(pagelink_next("</p>; title=\"a, b; c\"; REL=\"prev NEXT\"", url, sizeof(url)) == 1);
	CHECK_STR(url, "/p");
	CHECK(pagelink_next("</p>; rel=\"prev\"", url, sizeof(url)) == 0);
	CHECK(pagelink_next("</p>; rel=\"nextpage\"", url, sizeof(url)) == 0);
	CHECK(pagelink_next("</p>", url, sizeof(url)) == 0);
	CHECK(pagelink_next("", url, sizeof(url)) == 0);
	CHECK(pagelink_next(NULL, url, sizeof(url)) == 0);
	/* malformed */
	CHECK(pagelink_next("/p; rel=next", url, sizeof(url)) == -1);
	CHECK(pagelink_next("</p; rel=next", url, sizeof(url)) == -1);
	CHECK(pagelink_next("</p>; rel=\"next", url, sizeof(url)) == -1);
	CHECK(pagelink_next("</p> junk; rel=next", url, sizeof(url)) == -1);
	CHECK(pagelink_next("<>; rel=next", url, sizeof(url)) == -1);
	CHECK(pagelink_next("</much-too-long-for-the-buffer>; rel=next", url, 8) == -1);
}

static enum am_err
resolve(const char *base, const char *link, char *out, size_t outlen)
{
	char err[256];

	out[0] = '\0';
	return pagelink_resolve(base, "/v2/a/tags/list?n=2", link, out, outlen, err, sizeof(err));
}

static void
test_link_resolve(void)
{
	const char *b = "https://reg.example:5000";
	char p[256];

	CHECK(resolve(b, "/v2/a/tags/list?n=2&last=b", p, sizeof(p)) == AM_OK);
	CHECK_STR(p, "/v2/a/tags/list?n=2&last=b");
	CHECK(resolve(b, "https://reg.example:5000/v2/a/tags/list?last=b", p, sizeof(p)) == AM_OK);
	CHECK_STR(p, "/v2/a/tags/list?last=b");
	CHECK(resolve(b, "HTTPS://REG.EXAMPLE:5000/v2/a/tags/list?last=b#frag", p, sizeof(p)) == AM_OK);
	CHECK_STR(p, "/v2/a/tags/list?last=b");
	CHECK(resolve(b, "//reg.example:5000/v2/a/tags/list?last=c", p, sizeof(p)) == AM_OK);
	CHECK_STR(p, "/v2/a/tags/list?last=c");
	CHECK(resolve(b, "?last=d", p, sizeof(p)) == AM_OK);
	CHECK_STR(p, "/v2/a/tags/list?last=d");
	CHECK(resolve(b, "list?last=e", p, sizeof(p)) == AM_OK);
	CHECK_STR(p, "/v2/a/tags/list?last=e");
	/* default ports are the same origin */
	CHECK(resolve("https://reg", "https://reg:443/v2/a/tags/list?last=f", p, sizeof(p)) == AM_OK);
	CHECK_STR(p, "/v2/a/tags/list?last=f");
	CHECK(resolve("http://reg:80", "http://reg/v2/a/tags/list", p, sizeof(p)) == AM_OK);
	/* a base URL with a path prefix */
	CHECK(resolve("https://reg/prefix/", "/prefix/v2/a/tags/list?last=g", p, sizeof(p)) == AM_OK);
	CHECK_STR(p, "/v2/a/tags/list?last=g");
	CHECK(resolve("https://reg/prefix", "/v2/a/tags/list", p, sizeof(p)) == AM_EDENIED);

	/* other origins are refused */
	CHECK(resolve(b, "https://evil.example:5000/v2/a/tags/list", p, sizeof(p)) == AM_EDENIED);
	CHECK(resolve(b, "http://reg.example:5000/v2/a/tags/list", p, sizeof(p)) == AM_EDENIED);
	CHECK(resolve(b, "https://reg.example:5001/v2/a/tags/list", p, sizeof(p)) == AM_EDENIED);
	CHECK(resolve(b, "https://reg.example/v2/a/tags/list", p, sizeof(p)) == AM_EDENIED);
	CHECK(resolve(b, "//evil.example/v2/a/tags/list", p, sizeof(p)) == AM_EDENIED);
	CHECK(resolve(b, "https://reg.example:5000.evil.example/x", p, sizeof(p)) != AM_OK);
	CHECK(resolve(b, "https://reg.example:50x/x", p, sizeof(p)) != AM_OK);
	/* unusable */
	CHECK(resolve(b, "https://user@reg.example:5000/v2/a", p, sizeof(p)) == AM_EINVAL);
	CHECK(resolve(b, "https://reg.example:5000", p, sizeof(p)) == AM_EINVAL);
	CHECK(resolve(b, "https://reg.example:5000?x", p, sizeof(p)) == AM_EINVAL);
	CHECK(resolve(b, "/v2/a/tags/list/../../../b/tags/list", p, sizeof(p)) == AM_EINVAL);
	CHECK(resolve(b, "/v2/a/./tags/list", p, sizeof(p)) == AM_EINVAL);
	CHECK(resolve(b, "/v2/%2e%2e/tags/list", p, sizeof(p)) == AM_EINVAL);
	CHECK(resolve(b, "/v2/a/tags/list?last=a b", p, sizeof(p)) == AM_EINVAL);
	CHECK(resolve(b, "/v2/a/tags/list?last=\x01", p, sizeof(p)) == AM_EINVAL);
	CHECK(resolve(b, "", p, sizeof(p)) == AM_EINVAL);
	CHECK(resolve(b, "/v2/a/tags/list?last=bbbbbbbbbbbbbbbbbbbbbbbbb", p, 16) == AM_EINVAL);
	/* ".." inside the query is just text */
	CHECK(resolve(b, "/v2/a/tags/list?last=1..2", p, sizeof(p)) == AM_OK);
}

/* ---- configuration used by the rest ---- */

static const char conf_text[] =
    "server = { listen = \"127.0.0.1:8080\"; plain_http = true; allow_unauthenticated = true; };\n"
    "registries = (\n"
    "  { host = \"harbor.example.com\"; url = \"https://10.0.0.5:8443\"; },\n"
    "  { host = \"other.example.com\"; url = \"https://10.0.0.6:8443\"; }\n"
    ");\n"
    "reconcile = { repositories = [ \"library/extra\", \"other/nope\" ]; page_size = 3; };\n"
    "state_dir = \"/nonexistent/archmerge-state\";\n"
    "rules = (\n"
    "  { name = \"per-arch\";\n"
    "    repositories = [ \"library/app\", \"library/*\", \"library/[ab]x\", \"Bad/Name\" ];\n"
    "    source = \"{repo}:{version}-{arch}\";\n"
    "    target = \"{repo}:{version}\";\n"
    "    architectures = [ \"amd64\", \"arm64\" ]; },\n"
    "  { name = \"arch-first\";\n"
    "    repositories = [ \"team/tool\" ];\n"
    "    source = \"{repo}:{arch}-{version}\";\n"
    "    target = \"{repo}:v{version}\";\n"
    "    architectures = [ \"amd64\", \"arm64\", \"armv7\" ]; }\n"
    ");\n";

static char tmpdir[64];

static struct cfg *
load_cfg(void)
{
	struct cfg *c = NULL;
	char path[128], err[2048] = "";
	FILE *f;

	(void)am_fmt(path, sizeof(path), "%s/archmerge.conf", tmpdir);
	if ((f = fopen(path, "w")) == NULL || fputs(conf_text, f) == EOF || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
	if (cfg_load(path, 0, &c, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "test configuration refused:\n%s\n", err);
		exit(2);
	}
	unlink(path);
	return c;
}

static void
test_repos_for_rule(const struct cfg *c)
{
	char *remembered[] = { "library/seen", "zzz/nope", "library/app" };
	struct rc_names n;

	CHECK(c->reconcile_page_size == 3);
	CHECK_STR(c->state_dir, "/nonexistent/archmerge-state");   /* the top-level key is read */
	memset(&n, 0, sizeof(n));
	reconcile_repos_for_rule(c, 0, remembered, 3, &n);
	CHECK(n.n == 3);
	if (n.n == 3) {
		CHECK_STR(n.v[0], "library/app");      /* the glob without wildcards */
		CHECK_STR(n.v[1], "library/extra");    /* reconcile.repositories it covers */
		CHECK_STR(n.v[2], "library/seen");     /* remembered, covered, deduplicated */
	}
	reconcile_repos_for_rule(c, 1, remembered, 3, &n);
	CHECK(n.n == 4 && strcmp(n.v[3], "team/tool") == 0);
	rc_names_free(&n);
	CHECK(n.n == 0 && n.v == NULL);
}

static void
test_groups_from_tags(const struct cfg *c)
{
	const char *app[] = { "2.0-amd64", "1.0-arm64", "1.0", "latest", "1.0-amd64", "3.0-s390x",
	    "2.0-arm64-extra", "1.0-amd64", "-amd64" };
	const char *tool[] = { "armv7-1.0", "amd64-1.0", "amd64-2.0", "arm64-2.0", "armv7-2.0", "v2.0" };
	struct rc_matches m;
	struct rc_group *g = NULL;
	size_t n = 0, i, hits = 0;

	memset(&m, 0, sizeof(m));
	for (i = 0; i < sizeof(app) / sizeof(app[0]); i++)
		hits += (size_t)reconcile_match_tag(c, "library/app", app[i], &m);
	CHECK(hits == 4);   /* 2.0-amd64, 1.0-arm64, 1.0-amd64 twice */
	for (i = 0; i < sizeof(tool) / sizeof(tool[0]); i++)
		hits += (size_t)reconcile_match_tag(c, "team/tool", tool[i], &m);
	CHECK(hits == 9);
	/* a repository no rule covers yields nothing */
	CHECK(reconcile_match_tag(c, "other/x", "1.0-amd64", &m) == 0);
	reconcile_groups(c, "harbor.example.com", &m, &g, &n);
	CHECK(n == 4);
	if (n == 4) {
		CHECK_STR(g[0].g.repo, "library/app");
		CHECK_STR(g[0].g.version, "1.0");
		CHECK(g[0].complete && g[0].missing[0] == '\0' && strcmp(g[0].g.rule_name, "per-arch") == 0);
		CHECK_STR(g[0].g.host, "harbor.example.com");
		CHECK_STR(g[0].rule, "per-arch");
		CHECK_STR(g[1].g.version, "2.0");
		CHECK(!g[1].complete);
		CHECK_STR(g[1].missing, "arm64");
		CHECK_STR(g[2].g.repo, "team/tool");
		CHECK_STR(g[2].g.version, "1.0");
		CHECK(!g[2].complete && g[2].g.rule_name[0] != '\0' && strcmp(g[2].g.rule_name, "per-arch") != 0);
		CHECK_STR(g[2].missing, "arm64");
		CHECK_STR(g[3].g.version, "2.0");
		CHECK(g[3].complete);
	}
	free(g);
	rc_matches_free(&m);

	/* nothing matched, nothing to collapse */
	reconcile_groups(c, "h", &m, &g, &n);
	CHECK(n == 0);
	free(g);
}

/* ---- whole passes over a fake registry ---- */

struct fake_repo {
	const char *host, *repo;
	const char **tags;
	size_t n;
	enum am_err rc;          /* after listing the tags */
};

struct fake {
	struct fake_repo *repos;
	size_t n_repos;
	char listed[32][300];
	size_t n_listed;
	struct group assembled[32];
	size_t n_assembled;
	enum asm_outcome outcome;
	struct group queued[32];
	size_t n_queued;
	int page_size_seen;
	size_t listed_at_queue;      /* repositories listed when the first group was queued */
	atomic_int *stop_after_list;
};

static enum am_err
fake_list(void *ctx, const char *host, const char *repo, int page_size, rc_tag_fn cb,
    void *cbctx, char *err, size_t errlen)
{
	struct fake *f = ctx;
	size_t i, j;

	f->page_size_seen = page_size;
	if (f->n_listed < 32)
		(void)am_fmt(f->listed[f->n_listed++], sizeof(f->listed[0]), "%s/%s", host, repo);
	if (f->stop_after_list != NULL)
		atomic_store(f->stop_after_list, 1);
	for (i = 0; i < f->n_repos; i++) {
		struct fake_repo *r = &f->repos[i];
		if (strcmp(r->host, host) != 0 || strcmp(r->repo, repo) != 0)
			continue;
		for (j = 0; j < r->n; j++)
			if (cb(cbctx, r->tags[j]) != 0)
				break;
		return r->rc == AM_OK ? AM_OK : am_fail(err, errlen, r->rc, "fake fault %s", repo);
	}
	return am_fail(err, errlen, AM_ENOTFOUND, "GET /v2/%s/tags/list: 404 NAME_UNKNOWN", repo);
}

static void
fake_assemble(void *ctx, const struct group *g, int dry_run, struct asm_result *out)
{
	struct fake *f = ctx;

	memset(out, 0, sizeof(*out));
	if (f->n_assembled < 32)
		f->assembled[f->n_assembled++] = *g;
	out->outcome = dry_run ? ASM_DRY_RUN : f->outcome;
	(void)am_fmt(out->target, sizeof(out->target), "%s:%s", g->repo, g->version);
	if (out->outcome == ASM_PUBLISHED || out->outcome == ASM_UNCHANGED)
		(void)am_fmt(out->digest, sizeof(out->digest), "sha256:%064d", 7);
	if (out->outcome == ASM_FAILED)
		(void)am_fmt(out->detail, sizeof(out->detail), "PUT: 503");
}

static int
fake_enqueue(void *ctx, const struct group *g)
{
	struct fake *f = ctx;

	if (f->n_queued == 0)
		f->listed_at_queue = f->n_listed;
	if (f->n_queued < 32)
		f->queued[f->n_queued++] = *g;
	return 1;
}

static const char *app_tags[] = { "1.0-amd64", "1.0-arm64", "2.0-amd64", "latest" };
static const char *extra_tags[] = { "5.0-arm64", "5.0-amd64" };
static const char *broken_tags[] = { "9.0-amd64", "9.0-arm64" };

static void
setup(struct fake *f, struct fake_repo *repos, struct reconcile_env *env, const struct cfg *c)
{
	memset(f, 0, sizeof(*f));
	memset(repos, 0, 3 * sizeof(*repos));
	repos[0] = (struct fake_repo){ "harbor.example.com", "library/app", app_tags, 4, AM_OK };
	repos[1] = (struct fake_repo){ "harbor.example.com", "library/extra", extra_tags, 2, AM_OK };
	/* half a listing, then a fault: its tags must not count */
	repos[2] = (struct fake_repo){ "harbor.example.com", "library/seen", broken_tags, 2,
	    AM_ETRANSIENT };
	f->repos = repos;
	f->n_repos = 3;
	f->outcome = ASM_PUBLISHED;
	memset(env, 0, sizeof(*env));
	env->cfg = c;
	env->list_tags = fake_list;
	env->assemble = fake_assemble;
	env->enqueue = fake_enqueue;
	env->ctx = f;
	env->keep_groups = 1;
}

static void
test_pass(const struct cfg *c, struct repos *remembered)
{
	struct fake f;
	struct fake_repo repos[3];
	struct reconcile_env env;
	struct reconcile_report rep;
	json_t *j, *groups;
	atomic_int stop;

	setup(&f, repos, &env, c);
	env.remembered = remembered;      /* holds harbor.example.com/library/seen */
	reconcile_run(&env, &rep);
	CHECK(f.page_size_seen == 3);
	/* library/app, library/extra, library/seen (remembered on both), team/tool on each registry */
	CHECK(f.n_listed == 8);
	CHECK_STR(f.listed[0], "harbor.example.com/library/app");
	CHECK_STR(f.listed[2], "harbor.example.com/library/seen");
	CHECK_STR(f.listed[4], "other.example.com/library/app");
	CHECK(rep.n_repos == 8 && rep.list_failed == 1 && rep.absent == 5);
	CHECK(rep.tags == 4 + 2);
	CHECK(rep.groups_seen == 3 && rep.complete == 2 && rep.waiting == 1);
	CHECK(rep.published == 2 && rep.failed == 0 && rep.queued == 0);
	/* only the complete groups were assembled */
	CHECK(f.n_assembled == 2);
	CHECK(f.n_assembled == 2 && strcmp(f.assembled[0].version, "1.0") == 0 &&
	    strcmp(f.assembled[1].repo, "library/extra") == 0);
	CHECK(rep.n_groups == 3);
	if (rep.n_groups == 3) {
		CHECK(rep.groups[1].result == RC_WAITING);
		CHECK_STR(rep.groups[1].missing, "arm64");
		CHECK_STR(rep.groups[1].target, "library/app:2.0");
		CHECK(rep.groups[0].result == RC_PUBLISHED && rep.groups[0].digest[0] == 's');
	}
	j = reconcile_report_json(&rep);
	CHECK(json_integer_value(json_object_get(json_object_get(j, "summary"), "waiting")) == 1);
	groups = json_object_get(j, "groups");
	CHECK(json_array_size(groups) == 3);
	CHECK_STR(json_string_value(json_array_get(json_object_get(json_array_get(groups, 1), "missing"), 0)),
	    "arm64");
	CHECK_STR(json_string_value(json_object_get(json_array_get(groups, 0), "rule")), "per-arch");
	CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(j, "repositories"), 2),
	    "result")), "failed");
	json_decref(j);
	reconcile_report_free(&rep);

	/* dry run, one registry only, nothing remembered from here on */
	setup(&f, repos, &env, c);
	env.dry_run = 1;
	env.only_host = "HARBOR.example.com";
	reconcile_run(&env, &rep);
	CHECK(f.n_listed == 3 && rep.would_publish == 2 && rep.published == 0 && rep.dry_run);
	reconcile_report_free(&rep);

	/* assembly failures are counted */
	setup(&f, repos, &env, c);
	f.outcome = ASM_FAILED;
	env.only_host = "harbor.example.com";
	reconcile_run(&env, &rep);
	CHECK(rep.failed == 2 && rep.n_groups == 3 && strcmp(rep.groups[0].detail, "PUT: 503") == 0);
	reconcile_report_free(&rep);

	/* serve: complete groups are queued, never assembled here; no groups kept */
	setup(&f, repos, &env, c);
	env.assemble = NULL;
	env.keep_groups = 0;
	env.only_host = "harbor.example.com";
	reconcile_run(&env, &rep);
	CHECK(f.n_assembled == 0 && f.n_queued == 2 && rep.queued == 2 && rep.waiting == 1);
	CHECK(rep.n_groups == 0 && rep.groups == NULL);
	/* a repository's groups go to the workers before the next repository is listed */
	CHECK(f.listed_at_queue == 1);
	CHECK(f.n_queued == 2 && strcmp(f.queued[1].version, "5.0") == 0 && strcmp(f.queued[1].rule_name, "per-arch") == 0);
	reconcile_report_free(&rep);

	/* a stop request cuts the pass short: nothing assembled from partial data */
	setup(&f, repos, &env, c);
	atomic_init(&stop, 0);
	env.stop = &stop;
	f.stop_after_list = &stop;
	reconcile_run(&env, &rep);
	CHECK(rep.stopped && f.n_listed == 1 && f.n_assembled == 0 && rep.groups_seen == 0);
	reconcile_report_free(&rep);
}

static void
test_tag_cap(const struct cfg *c)
{
	struct fake f;
	struct fake_repo repos[3];
	struct reconcile_env env;
	struct reconcile_report rep;
	const char **many = xcalloc(RECONCILE_MAX_TAGS + 1, sizeof(*many));
	size_t i;

	for (i = 0; i <= RECONCILE_MAX_TAGS; i++)
		many[i] = "x";
	many[0] = "1.0-amd64";
	setup(&f, repos, &env, c);
	repos[0].tags = many;
	repos[0].n = RECONCILE_MAX_TAGS + 1;
	env.only_host = "harbor.example.com";
	reconcile_run(&env, &rep);
	CHECK(rep.list_failed == 1 && rep.n_repos >= 1 && rep.repos[0].result == RC_LIST_FAILED);
	CHECK(strstr(rep.repos[0].error, "more than") != NULL);
	reconcile_report_free(&rep);
	free(many);
}

/* ---- groups already published: not read, except a rotating slice ---- */

static const char *pub_tags[] = { "1.0-amd64", "1.0-arm64", "1.0", "2.0-amd64", "2.0-arm64", "2.0",
    "3.0-amd64", "3.0-arm64", "4.0-amd64" };

static void
setup_present(struct fake *f, struct fake_repo *repos, struct reconcile_env *env, const struct cfg *c)
{
	setup(f, repos, env, c);
	repos[0] = (struct fake_repo){ "harbor.example.com", "library/app", pub_tags, 9, AM_OK };
	f->n_repos = 1;
	env->only_host = "harbor.example.com";
}

/* Versions assembled by one pass, "1.0,3.0". */
static void
assembled(const struct fake *f, char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < f->n_assembled && i < 32; i++) {
		(void)am_fmt(buf + off, len - off, "%s%s", off ? "," : "", f->assembled[i].version);
		off += strlen(buf + off);
	}
}

static void
test_present(const struct cfg *c)
{
	struct fake f;
	struct fake_repo repos[3];
	struct reconcile_env env;
	struct reconcile_report rep;
	struct rc_rotation *rot = rc_rotation_new();
	char got[256];
	json_t *j;

	/* verify_per_pass 0: the published 1.0 and 2.0 are not read; 3.0 is assembled */
	setup_present(&f, repos, &env, c);
	env.verify_per_pass = 0;
	reconcile_run(&env, &rep);
	assembled(&f, got, sizeof(got));
	CHECK_STR(got, "3.0");
	CHECK(rep.groups_seen == 4 && rep.complete == 3 && rep.present == 2 && rep.verified == 0);
	CHECK(rep.waiting == 1 && rep.published == 1);
	CHECK(rep.n_groups == 4 && rep.groups[0].result == RC_PRESENT && rep.groups[1].result == RC_PRESENT);
	CHECK(rep.n_groups == 4 && rep.groups[0].present && !rep.groups[2].present);
	CHECK_STR(rep.groups[0].target, "library/app:1.0");
	j = reconcile_report_json(&rep);
	CHECK(json_integer_value(json_object_get(json_object_get(j, "summary"), "present")) == 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(j, "groups"), 0), "result")),
	    "present");
	json_decref(j);
	reconcile_report_free(&rep);

	/* every group (the CLI, serve's first pass): as before */
	setup_present(&f, repos, &env, c);
	env.verify_per_pass = RC_VERIFY_ALL;
	reconcile_run(&env, &rep);
	assembled(&f, got, sizeof(got));
	CHECK_STR(got, "1.0,2.0,3.0");
	CHECK(rep.present == 0 && rep.verified == 2 && rep.published == 3);
	reconcile_report_free(&rep);

	/* one per pass, in turn: a stale 2.0 is read again by the second pass at the latest */
	setup_present(&f, repos, &env, c);
	env.verify_per_pass = 1;
	env.rotation = rot;
	reconcile_run(&env, &rep);
	assembled(&f, got, sizeof(got));
	CHECK_STR(got, "1.0,3.0");
	CHECK(rep.present == 1 && rep.verified == 1);
	reconcile_report_free(&rep);
	setup_present(&f, repos, &env, c);
	env.verify_per_pass = 1;
	env.rotation = rot;
	reconcile_run(&env, &rep);
	assembled(&f, got, sizeof(got));
	CHECK_STR(got, "2.0,3.0");
	reconcile_report_free(&rep);
	/* and round again: 1.0, before the place, is read at the end of the pass */
	setup_present(&f, repos, &env, c);
	env.verify_per_pass = 1;
	env.rotation = rot;
	reconcile_run(&env, &rep);
	assembled(&f, got, sizeof(got));
	CHECK_STR(got, "3.0,1.0");
	CHECK(rep.present == 1 && rep.verified == 1 && rep.published == 2);
	CHECK(rep.n_groups == 4 && rep.groups[0].result == RC_PUBLISHED && rep.groups[0].verify);
	CHECK(rep.n_groups == 4 && rep.groups[1].result == RC_PRESENT);
	reconcile_report_free(&rep);

	/* serve: present groups are not queued either */
	setup_present(&f, repos, &env, c);
	env.assemble = NULL;
	env.verify_per_pass = 0;
	reconcile_run(&env, &rep);
	CHECK(f.n_queued == 1 && strcmp(f.queued[0].version, "3.0") == 0 && rep.queued == 1 && rep.present == 2);
	reconcile_report_free(&rep);

	/* dry run reports the skip as such, never as current */
	setup_present(&f, repos, &env, c);
	env.dry_run = 1;
	env.verify_per_pass = 0;
	reconcile_run(&env, &rep);
	CHECK(rep.would_publish == 1 && rep.present == 2 && rep.unchanged == 0);
	reconcile_report_free(&rep);
	rc_rotation_free(rot);
	rc_rotation_free(NULL);
}

/* What a listing shows of a rule's other outputs: extra and copy tags present too, floating never. */
static void
test_present_outputs(void)
{
	static const char text[] =
	    "server = { listen = \"127.0.0.1:8080\"; plain_http = true; allow_unauthenticated = true; };\n"
	    "registries = ( { host = \"h.example\"; url = \"https://10.0.0.5:8443\"; } );\n"
	    "state_dir = \"/nonexistent/archmerge-state\";\n"
	    "rules = (\n"
	    "  { name = \"extra\"; repositories = [ \"a/*\" ]; source = \"{repo}:{version}-{arch}\";\n"
	    "    target = \"{repo}:{version}\"; architectures = [ \"amd64\", \"arm64\" ];\n"
	    "    extra_tags = [ \"{version}-multi\" ]; },\n"
	    "  { name = \"floating\"; repositories = [ \"b/*\" ]; source = \"{repo}:{version}-{arch}\";\n"
	    "    target = \"{repo}:{version}\"; architectures = [ \"amd64\", \"arm64\" ];\n"
	    "    extra_tags = [ \"latest\" ]; version_order = \"semver\"; },\n"
	    "  { name = \"apart\"; repositories = [ \"c/*\" ]; source = \"{repo}-{arch}:{version}\";\n"
	    "    target = \"{repo}:{version}\"; architectures = [ \"amd64\", \"arm64\" ];\n"
	    "    copy_tag = \"{version}-{arch}\"; }\n"
	    ");\n";
	const char *a_tags[] = { "1.0.0-amd64", "1.0.0-arm64", "1.0.0", "1.0.0-multi",
	    "2.0.0-amd64", "2.0.0-arm64", "2.0.0" };
	const char *b_tags[] = { "1.0.0-amd64", "1.0.0-arm64", "1.0.0", "latest" };
	const char *c_tags[] = { "1.0.0" };
	struct rc_listed listed;
	struct rc_matches m;
	struct rc_group *g = NULL;
	struct cfg *c = NULL;
	char path[128], err[2048] = "", key[128];
	size_t n = 0, i;
	FILE *f;

	(void)am_fmt(path, sizeof(path), "%s/outputs.conf", tmpdir);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF || fclose(f) != 0 ||
	    cfg_load(path, 0, &c, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "test configuration refused:\n%s\n", err);
		exit(2);
	}
	memset(&listed, 0, sizeof(listed));
	memset(&m, 0, sizeof(m));
#define LIST(repo, tags) \
	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) \
		if (reconcile_match_tag(c, repo, tags[i], &m) == 0) { \
			(void)am_fmt(key, sizeof(key), "%s:%s", repo, tags[i]); \
			rc_names_add(&listed.names, key); \
		}
	LIST("a/app", a_tags);
	LIST("b/app", b_tags);
	LIST("c/app-amd64", c_tags);
	LIST("c/app-arm64", c_tags);
#undef LIST
	reconcile_groups(c, "h.example", &m, &g, &n);
	reconcile_mark_present(c, &listed, g, n);
	CHECK(n == 4);
	if (n == 4) {
		CHECK(strcmp(g[0].g.repo, "a/app") == 0 && strcmp(g[0].g.version, "1.0.0") == 0 && g[0].present);
		CHECK(strcmp(g[1].g.version, "2.0.0") == 0 && !g[1].present);   /* its extra tag is missing */
		CHECK(strcmp(g[2].g.repo, "b/app") == 0 && !g[2].present);      /* floating: always read */
		/* the target repository is not listed (only the per-architecture ones are): read */
		CHECK(strcmp(g[3].g.repo, "c/app") == 0 && g[3].complete && !g[3].present);
		/* a limit that covers every present group reads them all */
		reconcile_pick_verify(NULL, "h.example", 5, g, n);
		CHECK(g[0].verify && !g[1].verify);
		reconcile_pick_verify(NULL, "h.example", 0, g, n);
		CHECK(!g[0].verify);
	}
	free(g);
	rc_matches_free(&m);
	rc_names_free(&listed.names);
	cfg_free(c);
	unlink(path);
}

/* ---- the remembered-repositories file ---- */

static char *
slurp(const char *path)
{
	char *s = NULL;
	char err[256];

	if (am_read_file(path, 1 << 20, &s, NULL, err, sizeof(err)) != AM_OK)
		return NULL;
	return s;
}

static void
test_repos(struct repos **keep)
{
	char state[128], path[160], err[256] = "";
	struct repos *r = NULL;
	char **list;
	size_t n;
	char *text;
	FILE *f;
	struct stat st;

	(void)am_fmt(state, sizeof(state), "%s/state", tmpdir);
	(void)am_fmt(path, sizeof(path), "%s/repositories", state);

	/* read-only on a missing directory: empty, nothing created */
	CHECK(repos_open(state, REPOS_READONLY, &r, err, sizeof(err)) == AM_OK);
	CHECK(repos_count(r) == 0 && stat(state, &st) != 0);
	CHECK(repos_note(r, "harbor.example.com", "library/x") == 1);   /* memory only */
	CHECK(stat(state, &st) != 0);
	repos_free(r);

	CHECK(repos_open(state, 0, &r, err, sizeof(err)) == AM_OK);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(repos_note(r, "harbor.example.com", "library/seen") == 1);
	CHECK(repos_note(r, "harbor.example.com", "library/seen") == 0);
	CHECK(repos_note(r, "other.example.com", "library/seen") == 1);
	CHECK(repos_note(r, "harbor.example.com", "Library/BAD") == 0);
	CHECK(repos_note(r, "bad host", "library/x") == 0);
	CHECK(repos_note(r, "harbor.example.com", "") == 0);
	CHECK(repos_note(NULL, "harbor.example.com", "library/x") == 0);
	CHECK(repos_count(r) == 2);
	repos_free(r);

	/* a torn last line, junk and a duplicate: skipped, the file rewritten clean */
	f = fopen(path, "a");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs("not a line\nharbor.example.com/library/seen\n\n# comment\nharbor.example.com/libr", f);
		fclose(f);
	}
	CHECK(repos_open(state, 0, &r, err, sizeof(err)) == AM_OK);
	CHECK(repos_count(r) == 2);
	text = slurp(path);
	CHECK(text != NULL && strstr(text, "not a line") == NULL && strstr(text, "/libr\n") == NULL);
	CHECK(text != NULL && strstr(text, "harbor.example.com/library/seen\nother.example.com/library/seen\n") != NULL);
	free(text);
	n = repos_list(r, "HARBOR.EXAMPLE.COM", &list);
	CHECK(n == 1 && strcmp(list[0], "library/seen") == 0);
	repos_list_free(list, n);
	n = repos_list(r, "harbor.example", &list);    /* a host prefix is another host */
	CHECK(n == 0);
	repos_list_free(list, n);
	CHECK(repos_list(NULL, "h", &list) == 0 && list == NULL);
	*keep = r;

	/* the cap, and the hash index over many names (read only: memory, no fsync per name) */
	{
		struct repos *big = NULL;
		char name[64];
		size_t i, fresh = 0, again = 0;

		CHECK(repos_open("/nonexistent/archmerge", REPOS_READONLY, &big, err, sizeof(err)) == AM_OK);
		for (i = 0; i <= REPOS_MAX; i++) {
			(void)am_fmt(name, sizeof(name), "team%zu/app-%zu", i % 97, i);
			fresh += (size_t)repos_note(big, "h.example", name);
		}
		for (i = 0; i < REPOS_MAX; i += 7) {
			(void)am_fmt(name, sizeof(name), "team%zu/app-%zu", i % 97, i);
			again += (size_t)repos_note(big, "h.example", name);
		}
		/* full: the new name replaced the one noted longest ago (app-0); notes keep the rest */
		CHECK(fresh == REPOS_MAX + 1 && again == 1 && repos_count(big) == REPOS_MAX);
		repos_free(big);
	}

	/* an unusable state_dir is an error */
	CHECK(repos_open("/proc/archmerge-no/such", 0, &r, err, sizeof(err)) == AM_EIO);
	CHECK(strstr(err, "state_dir") != NULL);
}

static void
run_tests(void)
{
	struct cfg *c;
	struct repos *remembered = NULL;
	char cmd[128];

	(void)am_fmt(tmpdir, sizeof(tmpdir), "/tmp/am-reconcile-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	test_link_next();
	test_link_resolve();
	c = load_cfg();
	test_repos_for_rule(c);
	test_groups_from_tags(c);
	test_repos(&remembered);
	test_pass(c, remembered);
	test_tag_cap(c);
	test_present(c);
	test_present_outputs();
	repos_free(remembered);
	cfg_free(c);
	(void)am_fmt(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

TEST_MAIN("reconcile")
