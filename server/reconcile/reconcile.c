/*
 * A reconcile pass: repositories to list -> tag listings -> matches ->
 * groups -> assemble (CLI) or enqueue (serve). Listing and group derivation
 * are separate steps so that naming layouts where one group's tags live in
 * several repositories only need new "repositories for a rule" and "match a
 * tag" functions; groups are collapsed once per registry, after every
 * listing, for the same reason.
 */
#include "server/reconcile/reconcile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/claim.h"
#include "config/version.h"
#include "registry/client/client.h"
#include "registry/oci/names.h"
#include "server/base/log.h"

const char *
rc_result_name(enum rc_result r)
{
	switch (r) {
	case RC_PUBLISHED: return "published";
	case RC_UNCHANGED: return "unchanged";
	case RC_WOULD_PUBLISH: return "would-publish";
	case RC_QUEUED: return "queued";
	case RC_PRESENT: return "present";
	case RC_WAITING: return "waiting";
	case RC_REFUSED: return "refused";
	case RC_FAILED: return "failed";
	}
	return "?";
}

static const char *
list_result_name(enum rc_list_result r)
{
	switch (r) {
	case RC_LISTED: return "listed";
	case RC_ABSENT: return "absent";
	case RC_LIST_FAILED: return "failed";
	}
	return "?";
}

/* ---- the real registries, through the service ---- */

static enum am_err
svc_list(void *ctx, const char *host, const char *repo, int page_size, rc_tag_fn cb,
    void *cbctx, char *err, size_t errlen)
{
	return service_list_tags(ctx, host, repo, page_size, cb, cbctx, err, errlen);
}

static void
svc_assemble(void *ctx, const struct group *g, int dry_run, struct asm_result *out)
{
	service_assemble(ctx, g, dry_run, out);
}

void
reconcile_env_service(struct reconcile_env *env, const struct cfg *cfg, struct service *svc)
{
	memset(env, 0, sizeof(*env));
	env->cfg = cfg;
	env->list_tags = svc_list;
	env->assemble = svc_assemble;
	env->enqueue = service_enqueue;
	env->ctx = svc;
	env->verify_per_pass = RC_VERIFY_ALL;
}

/* ---- names ---- */

void
rc_names_add(struct rc_names *s, const char *name)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = xstrdup(name);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and drop duplicates: n log n, where thousands of remembered names meet several rules. */
static void
names_unique(struct rc_names *s)
{
	size_t i, j = 0;

	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof(*s->v), name_cmp);
	for (i = 1; i < s->n; i++) {
		if (strcmp(s->v[i], s->v[j]) == 0)
			free(s->v[i]);
		else
			s->v[++j] = s->v[i];
	}
	s->n = j + 1;
}

static void
names_truncate(struct rc_names *s, size_t n)
{
	while (s->n > n)
		free(s->v[--s->n]);
}

void
rc_names_free(struct rc_names *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

void
reconcile_repos_for_rule(const struct cfg *cfg, size_t rule, char *const *remembered,
    size_t n_remembered, struct rc_names *out)
{
	const struct rule *r = &cfg->rules[rule];
	struct rc_names groups = { NULL, 0, 0 };
	char (*src)[RULE_MAX_REPO] = xcalloc(r->n_archs + 1, sizeof(*src));
	size_t i, k, n;

	/* The names below are repositories indexes are published in; a wildcard
	 * glob needs names from elsewhere. */
	for (i = 0; i < r->n_repositories; i++)
		if (strpbrk(r->repositories[i], "*?[\\") == NULL && name_valid_repo(r->repositories[i]))
			rc_names_add(&groups, r->repositories[i]);
	for (i = 0; i < cfg->n_reconcile_repositories; i++)
		if (rule_covers(r, cfg->reconcile_repositories[i]))
			rc_names_add(&groups, cfg->reconcile_repositories[i]);
	for (i = 0; i < n_remembered; i++)
		if (rule_covers(r, remembered[i]))
			rc_names_add(&groups, remembered[i]);
	/* What is listed is where the per-architecture tags live: the same
	 * repository, or one per architecture ("{repo}-{arch}:{version}"). */
	for (i = 0; i < groups.n; i++) {
		n = rule_source_repos(r, groups.v[i], src, r->n_archs + 1);
		for (k = 0; k < n; k++)
			rc_names_add(out, src[k]);
	}
	rc_names_free(&groups);
	free(src);
	names_unique(out);
}

/* ---- matches and groups ---- */

int
reconcile_match_tag(const struct cfg *cfg, const char *repo, const char *tag,
    struct rc_matches *out)
{
	struct claim cl;
	struct rc_match *e;

	if (claim_tag(cfg, NULL, repo, tag, &cl) != CLAIM_SOURCE)
		return 0;
	if (out->n == out->cap) {
		out->cap = out->cap ? out->cap * 2 : 256;
		out->v = xrealloc(out->v, out->cap * sizeof(*out->v));
	}
	e = &out->v[out->n++];
	e->rule = (size_t)(cl.rule - cfg->rules);
	e->repo = xstrdup(cl.match.repo);
	e->version = xstrdup(cl.match.version);
	e->arch = cl.match.arch;
	return 1;
}

void
rc_matches_truncate(struct rc_matches *m, size_t n)
{
	while (m->n > n) {
		m->n--;
		free(m->v[m->n].repo);
		free(m->v[m->n].version);
	}
}

void
rc_matches_free(struct rc_matches *m)
{
	rc_matches_truncate(m, 0);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static int
match_cmp(const void *a, const void *b)
{
	const struct rc_match *x = a, *y = b;
	int c;

	if ((c = strcmp(x->repo, y->repo)) != 0)
		return c;
	if ((c = strcmp(x->version, y->version)) != 0)
		return c;
	if (x->rule != y->rule)
		return x->rule < y->rule ? -1 : 1;
	return x->arch < y->arch ? -1 : x->arch > y->arch;
}

static int
same_group(const struct rc_match *a, const struct rc_match *b)
{
	return a->rule == b->rule && strcmp(a->repo, b->repo) == 0 &&
	    strcmp(a->version, b->version) == 0;
}

void
reconcile_groups(const struct cfg *cfg, const char *host, struct rc_matches *m,
    struct rc_group **out, size_t *n)
{
	struct rc_group *groups = NULL, *g;
	unsigned char *present = NULL;
	size_t i = 0, j, k, cap = 0, off;
	const struct rule *r;

	*n = 0;
	if (m->n > 0)
		qsort(m->v, m->n, sizeof(*m->v), match_cmp);
	while (i < m->n) {
		r = &cfg->rules[m->v[i].rule];
		present = xcalloc(r->n_archs, 1);
		for (j = i; j < m->n && same_group(&m->v[i], &m->v[j]); j++)
			present[m->v[j].arch] = 1;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			groups = xrealloc(groups, cap * sizeof(*groups));
		}
		g = &groups[(*n)++];
		memset(g, 0, sizeof(*g));
		(void)am_fmt(g->g.host, sizeof(g->g.host), "%s", host);
		(void)am_fmt(g->g.rule_name, sizeof(g->g.rule_name), "%s", r->name);
		(void)am_fmt(g->rule, sizeof(g->rule), "%s", r->name);
		(void)am_fmt(g->g.repo, sizeof(g->g.repo), "%s", m->v[i].repo);
		(void)am_fmt(g->g.version, sizeof(g->g.version), "%s", m->v[i].version);
		g->complete = 1;
		for (k = 0, off = 0; k < r->n_archs; k++) {
			if (present[k])
				continue;
			g->complete = 0;
			(void)am_fmt(g->missing + off, sizeof(g->missing) - off, "%s%s", off ? "," : "",
			    r->archs[k].name);
			off += strlen(g->missing + off);
		}
		free(present);
		i = j;
	}
	*out = groups;
}

/* ---- what is published already ---- */

struct rc_rotation {
	struct group *last;          /* per registry: the last group read again */
	size_t n;
};

struct rc_rotation *
rc_rotation_new(void)
{
	return xcalloc(1, sizeof(struct rc_rotation));
}

void
rc_rotation_free(struct rc_rotation *r)
{
	if (r == NULL)
		return;
	free(r->last);
	free(r);
}

static struct group *
rotation_at(struct rc_rotation *r, const char *host)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->last[i].host, host) == 0)
			return &r->last[i];
	r->last = xrealloc(r->last, (r->n + 1) * sizeof(*r->last));
	memset(&r->last[r->n], 0, sizeof(r->last[r->n]));
	(void)am_fmt(r->last[r->n].host, sizeof(r->last[r->n].host), "%s", host);
	return &r->last[r->n++];
}

static int
listed_has(struct rc_listed *l, const char *repo, const char *tag)
{
	char key[NAME_MAX_REPO + NAME_MAX_TAG + 2];
	const char *k = key;

	if (am_fmt(key, sizeof(key), "%s:%s", repo, tag) != AM_OK || l->names.n == 0)
		return 0;
	if (!l->sorted) {
		names_unique(&l->names);
		l->sorted = 1;
	}
	return bsearch(&k, l->names.v, l->names.n, sizeof(*l->names.v), name_cmp) != NULL;
}

/* Does one of r's extra tags float (written by several versions)? */
static int
rule_floats(const struct rule *r)
{
	size_t i;

	for (i = 0; i < r->n_extra_tags; i++)
		if (version_tag_floats(r, i))
			return 1;
	return 0;
}

/* Every tag the group's publication writes where a listing can see it. */
static int
group_present(const struct rule *r, struct rc_listed *l, const struct rc_group *g)
{
	char repo[NAME_MAX_REPO], tag[NAME_MAX_TAG];
	size_t i;

	if (rule_floats(r) ||
	    tmpl_expand_repo(&r->target, g->g.repo, NULL, repo, sizeof(repo)) != 0 ||
	    tmpl_expand_tag(&r->target, g->g.version, NULL, tag, sizeof(tag)) != 0 ||
	    !listed_has(l, repo, tag))
		return 0;
	for (i = 0; i < r->n_extra_tags; i++)
		if (rule_extra_tag(r, i, g->g.version, tag, sizeof(tag)) == 0 && !listed_has(l, repo, tag))
			return 0;
	if (r->has_copy_tag)
		for (i = 0; i < r->n_archs; i++)
			if (rule_copy_tag(r, g->g.version, i, tag, sizeof(tag)) == 0 &&
			    !listed_has(l, repo, tag))
				return 0;
	return 1;
}

void
reconcile_mark_present(const struct cfg *cfg, struct rc_listed *listed,
    struct rc_group *groups, size_t n)
{
	const struct rule *r;
	size_t i;

	for (i = 0; i < n; i++) {
		groups[i].present = 0;
		if (!groups[i].complete || (r = cfg_rule_by_name(cfg, groups[i].g.rule_name)) == NULL)
			continue;
		groups[i].present = group_present(r, listed, &groups[i]);
	}
}

/* Order of groups for the rotation: repository, version, rule name. */
static int
group_cmp(const struct group *a, const struct group *b)
{
	int c;

	if ((c = strcmp(a->repo, b->repo)) != 0)
		return c;
	if ((c = strcmp(a->version, b->version)) != 0)
		return c;
	return strcmp(a->rule_name, b->rule_name);
}

/*
 * Which present groups a pass reads, taken as the groups go by (a registry's
 * groups may come one repository at a time): the first `limit` after the
 * rotation's place, then, when the pass has passed them all, the ones before
 * it that were held back (at most limit of them).
 */
struct picker {
	long limit;
	size_t taken;
	struct group *place;         /* the rotation's entry for the registry; NULL: none */
	struct group from;           /* where it stood when the pass began */
	struct rc_group *early;      /* present, at or before `from`, held back */
	size_t *early_at;            /* their index in report->groups, or SIZE_MAX */
	size_t n_early, cap_early;
};

static void
picker_init(struct picker *pk, struct rc_rotation *rot, const char *host, long limit)
{
	memset(pk, 0, sizeof(*pk));
	pk->limit = limit;
	pk->place = rot != NULL ? rotation_at(rot, host) : NULL;
	if (pk->place != NULL)
		pk->from = *pk->place;
}

static void
picker_moved(struct picker *pk, const struct group *g)
{
	pk->taken++;
	if (pk->place != NULL) {
		(void)am_fmt(pk->place->repo, sizeof(pk->place->repo), "%s", g->repo);
		(void)am_fmt(pk->place->version, sizeof(pk->place->version), "%s", g->version);
		(void)am_fmt(pk->place->rule_name, sizeof(pk->place->rule_name), "%s", g->rule_name);
	}
}

/* Decide g->verify; a present group not read now may be held back for the end of the pass. */
static void
picker_take(struct picker *pk, struct rc_group *g, size_t kept_at)
{
	int after = pk->from.repo[0] == '\0' || group_cmp(&g->g, &pk->from) > 0;

	g->verify = 0;
	if (!g->present)
		return;
	if (pk->limit == RC_VERIFY_ALL) {
		g->verify = 1;
		return;
	}
	if (pk->limit <= 0)
		return;
	if (after && pk->taken < (size_t)pk->limit) {
		g->verify = 1;
		picker_moved(pk, &g->g);
	} else if (!after && pk->n_early < (size_t)pk->limit) {
		if (pk->n_early == pk->cap_early) {
			pk->cap_early = pk->cap_early ? pk->cap_early * 2 : 16;
			pk->early = xrealloc(pk->early, pk->cap_early * sizeof(*pk->early));
			pk->early_at = xrealloc(pk->early_at, pk->cap_early * sizeof(*pk->early_at));
		}
		pk->early[pk->n_early] = *g;
		pk->early_at[pk->n_early++] = kept_at;
	}
}

static void
picker_free(struct picker *pk)
{
	free(pk->early);
	free(pk->early_at);
}

void
reconcile_pick_verify(struct rc_rotation *rot, const char *host, long limit,
    struct rc_group *groups, size_t n)
{
	struct picker pk;
	size_t i, k;

	picker_init(&pk, rot, host, limit);
	for (i = 0; i < n; i++)
		picker_take(&pk, &groups[i], i);
	for (k = 0; k < pk.n_early && pk.taken < (size_t)limit; k++) {
		groups[pk.early_at[k]].verify = 1;
		picker_moved(&pk, &groups[pk.early_at[k]].g);
	}
	picker_free(&pk);
}

/* ---- one pass ---- */

struct list_ctx {
	const struct cfg *cfg;
	const char *repo;
	struct rc_matches *m;
	struct rc_listed *listed;
	size_t tags;
	int overflow;
	atomic_int *stop;
	int stopped;
};

static int
on_tag(void *p, const char *tag)
{
	struct list_ctx *c = p;

	if (c->stop != NULL && atomic_load(c->stop)) {
		c->stopped = 1;
		return 1;
	}
	if (++c->tags > RECONCILE_MAX_TAGS) {
		c->overflow = 1;
		return 1;
	}
	if (reconcile_match_tag(c->cfg, c->repo, tag, c->m) == 0) {
		/* Not a source: maybe a target, an extra or a copy tag. */
		char key[NAME_MAX_REPO + NAME_MAX_TAG + 2];
		if (am_fmt(key, sizeof(key), "%s:%s", c->repo, tag) == AM_OK)
			rc_names_add(&c->listed->names, key);
	}
	return 0;
}

static int
stopping(const struct reconcile_env *env)
{
	return env->stop != NULL && atomic_load(env->stop);
}

static struct rc_repo *
add_repo(struct reconcile_report *rep, size_t *cap, const char *host, const char *repo)
{
	struct rc_repo *e;

	if (rep->n_repos == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		rep->repos = xrealloc(rep->repos, *cap * sizeof(*rep->repos));
	}
	e = &rep->repos[rep->n_repos++];
	memset(e, 0, sizeof(*e));
	(void)am_fmt(e->host, sizeof(e->host), "%s", host);
	(void)am_fmt(e->repo, sizeof(e->repo), "%s", repo);
	return e;
}

/* List one repository into m; a failed or cut-short listing adds nothing (half a list would lie). */
static void
list_repo(const struct reconcile_env *env, const char *host, const char *repo,
    struct rc_matches *m, struct rc_listed *listed, struct reconcile_report *rep, size_t *cap)
{
	struct list_ctx lc;
	struct rc_repo *e = add_repo(rep, cap, host, repo);
	size_t before = m->n, listed_before = listed->names.n;
	enum am_err rc;
	char err[512] = "";

	memset(&lc, 0, sizeof(lc));
	lc.cfg = env->cfg;
	lc.repo = repo;
	lc.m = m;
	lc.listed = listed;
	lc.stop = env->stop;
	rc = env->list_tags(env->ctx, host, repo, (int)env->cfg->reconcile_page_size, on_tag, &lc,
	    err, sizeof(err));
	if (rc == AM_OK && lc.overflow)
		rc = am_fail(err, sizeof(err), AM_EINVAL, "more than %d tags", RECONCILE_MAX_TAGS);
	e->tags = lc.tags;
	if (lc.stopped) {
		rep->stopped = 1;
		rc_matches_truncate(m, before);
		names_truncate(&listed->names, listed_before);
		e->result = RC_LIST_FAILED;
		(void)am_fmt(e->error, sizeof(e->error), "stopped (shutdown)");
		return;
	}
	if (rc == AM_ENOTFOUND) {
		e->result = RC_ABSENT;
		rep->absent++;
		rc_matches_truncate(m, before);
		names_truncate(&listed->names, listed_before);
		log_kv(LOG_INFO, "reconcile list", LOG_S("registry", host), LOG_S("repo", repo),
		    LOG_S("result", "absent"), LOG_S("detail", "repository does not exist"));
	} else if (rc != AM_OK) {
		e->result = RC_LIST_FAILED;
		rep->list_failed++;
		rc_matches_truncate(m, before);
		names_truncate(&listed->names, listed_before);
		(void)am_fmt(e->error, sizeof(e->error), "%s", err);
		log_kv(LOG_ERROR, "reconcile list", LOG_S("registry", host), LOG_S("repo", repo),
		    LOG_S("result", "failed"), LOG_S("error", am_strerror(rc)), LOG_S("detail", err));
	} else {
		e->result = RC_LISTED;
		rep->tags += lc.tags;
		log_kv(LOG_DEBUG, "reconcile list", LOG_S("registry", host), LOG_S("repo", repo),
		    LOG_S("result", "listed"), LOG_I("tags", lc.tags), LOG_I("matched", m->n - before));
	}
}

static void
count(struct reconcile_report *rep, enum rc_result r)
{
	switch (r) {
	case RC_PUBLISHED: rep->published++; break;
	case RC_UNCHANGED: rep->unchanged++; break;
	case RC_WOULD_PUBLISH: rep->would_publish++; break;
	case RC_QUEUED: rep->queued++; break;
	case RC_PRESENT: rep->present++; break;
	case RC_WAITING: rep->waiting++; break;
	case RC_REFUSED: rep->refused++; break;
	case RC_FAILED: rep->failed++; break;
	}
}

static enum rc_result
from_outcome(enum asm_outcome o)
{
	switch (o) {
	case ASM_PUBLISHED: return RC_PUBLISHED;
	case ASM_UNCHANGED: return RC_UNCHANGED;
	case ASM_DRY_RUN: return RC_WOULD_PUBLISH;
	case ASM_WAITING: return RC_WAITING;
	case ASM_REFUSED: return RC_REFUSED;
	case ASM_FAILED: return RC_FAILED;
	}
	return RC_FAILED;
}

/* Decide one group: waiting from the listing alone, else assemble or queue it. */
static void
process_group(const struct reconcile_env *env, struct rc_group *g)
{
	/* By name in the pass's own configuration: the one its listing was matched with. */
	const struct rule *r = cfg_rule_by_name(env->cfg, g->g.rule_name);
	struct asm_result res;
	char tag[NAME_MAX_TAG];

	if (r == NULL)
		return;

	if (tmpl_expand_tag(&r->target, g->g.version, NULL, tag, sizeof(tag)) == 0)
		(void)am_fmt(g->target, sizeof(g->target), "%s:%s", g->g.repo, tag);
	if (!g->complete) {
		/* Known from the tag list: no registry request needed to say so. */
		g->result = RC_WAITING;
		char name[GROUP_NAME_MAX], detail[sizeof(g->missing) + 16];
		(void)group_name(&g->g, name, sizeof(name));
		(void)am_fmt(detail, sizeof(detail), "missing %s", g->missing);
		log_kv(LOG_INFO, "reconcile", LOG_S("group", name), LOG_S("rule", r->name),
		    LOG_S("target", g->target), LOG_S("result", "waiting"), LOG_S("detail", detail));
		return;
	}
	if (g->present && !g->verify) {
		/* Published already (the listing shows every tag it writes): not read this pass. */
		g->result = RC_PRESENT;
		if (log_enabled(LOG_DEBUG)) {
			char name[GROUP_NAME_MAX];
			(void)group_name(&g->g, name, sizeof(name));
			log_kv(LOG_DEBUG, "reconcile", LOG_S("group", name), LOG_S("rule", r->name),
			    LOG_S("target", g->target), LOG_S("result", "present"));
		}
		return;
	}
	if (env->assemble == NULL) {
		/* The worker logs the assembly line for this group. */
		int fresh = env->enqueue(env->ctx, &g->g);   /* not inside log_debug: it may not run */
		g->result = RC_QUEUED;
		char name[GROUP_NAME_MAX];
		(void)group_name(&g->g, name, sizeof(name));
		log_kv(LOG_DEBUG, "reconcile", LOG_S("group", name), LOG_S("rule", r->name),
		    LOG_S("result", "queued"), LOG_I("new", fresh));
		return;
	}
	env->assemble(env->ctx, &g->g, env->dry_run, &res);
	g->result = from_outcome(res.outcome);
	if (res.target[0] != '\0')
		(void)am_fmt(g->target, sizeof(g->target), "%s", res.target);
	(void)am_fmt(g->digest, sizeof(g->digest), "%s", res.digest);
	(void)am_fmt(g->detail, sizeof(g->detail), "%s", res.detail);
	if (res.outcome == ASM_WAITING && strncmp(res.detail, "missing ", 8) == 0)
		(void)am_fmt(g->missing, sizeof(g->missing), "%s", res.detail + 8);
	asm_result_clear(&res);
}

static void
keep(struct reconcile_report *rep, size_t *cap, const struct rc_group *g)
{
	if (rep->n_groups == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		rep->groups = xrealloc(rep->groups, *cap * sizeof(*rep->groups));
	}
	rep->groups[rep->n_groups++] = *g;
}

/*
 * Do the rules find every group's tags in the group's own repository? Then a
 * repository's groups are decided right after its listing, and the workers
 * publish while the next repositories are listed.
 */
static int
same_repository_layout(const struct cfg *cfg)
{
	char src[2][RULE_MAX_REPO];
	size_t i;

	for (i = 0; i < cfg->n_rules; i++)
		if (rule_source_repos(&cfg->rules[i], "a/b", src, 2) != 1 || strcmp(src[0], "a/b") != 0)
			return 0;
	return 1;
}

/* Decide the groups of what m and listed hold, then empty both. */
static void
decide(const struct reconcile_env *env, const char *host, struct rc_matches *m, struct rc_listed *listed,
    struct picker *pk, struct reconcile_report *rep, size_t *group_cap)
{
	struct rc_group *groups = NULL;
	size_t n = 0, i;

	reconcile_groups(env->cfg, host, m, &groups, &n);
	reconcile_mark_present(env->cfg, listed, groups, n);
	for (i = 0; i < n; i++) {
		if (stopping(env)) {
			rep->stopped = 1;
			break;
		}
		rep->groups_seen++;
		rep->complete += (size_t)groups[i].complete;
		picker_take(pk, &groups[i], env->keep_groups ? rep->n_groups : SIZE_MAX);
		rep->verified += (size_t)groups[i].verify;
		process_group(env, &groups[i]);
		count(rep, groups[i].result);
		if (env->keep_groups)
			keep(rep, group_cap, &groups[i]);
	}
	free(groups);
	rc_matches_truncate(m, 0);
	names_truncate(&listed->names, 0);
	listed->sorted = 0;
}

/* The end of a registry's pass: the held-back groups the slice still has room for. */
static void
decide_early(const struct reconcile_env *env, struct picker *pk, struct reconcile_report *rep)
{
	size_t k;

	for (k = 0; k < pk->n_early && pk->taken < (size_t)pk->limit && !stopping(env); k++) {
		struct rc_group *g = &pk->early[k];
		g->verify = 1;
		picker_moved(pk, &g->g);
		rep->present--;
		rep->verified++;
		process_group(env, g);
		count(rep, g->result);
		if (pk->early_at[k] != SIZE_MAX)
			rep->groups[pk->early_at[k]] = *g;
	}
}

static void
run_registry(const struct reconcile_env *env, const struct cfg_registry *reg,
    struct reconcile_report *rep, size_t *repo_cap, size_t *group_cap)
{
	struct rc_names names;
	struct rc_matches m;
	struct rc_listed listed;
	struct picker pk;
	char **remembered = NULL;
	size_t n_remembered, i;
	int each = same_repository_layout(env->cfg);

	memset(&names, 0, sizeof(names));
	memset(&m, 0, sizeof(m));
	memset(&listed, 0, sizeof(listed));
	picker_init(&pk, env->rotation, reg->host, env->verify_per_pass);
	n_remembered = repos_list(env->remembered, reg->host, &remembered);
	for (i = 0; i < env->cfg->n_rules; i++)
		reconcile_repos_for_rule(env->cfg, i, remembered, n_remembered, &names);
	for (i = 0; i < names.n && !stopping(env) && !rep->stopped; i++) {
		list_repo(env, reg->host, names.v[i], &m, &listed, rep, repo_cap);
		if (each && !rep->stopped)
			decide(env, reg->host, &m, &listed, &pk, rep, group_cap);
	}
	if (stopping(env))
		rep->stopped = 1;
	if (!each && !rep->stopped)
		decide(env, reg->host, &m, &listed, &pk, rep, group_cap);
	if (!rep->stopped)
		decide_early(env, &pk, rep);
	picker_free(&pk);
	rc_matches_free(&m);
	rc_names_free(&listed.names);
	rc_names_free(&names);
	repos_list_free(remembered, n_remembered);
}

void
reconcile_run(const struct reconcile_env *env, struct reconcile_report *out)
{
	long long t0 = am_now_ms();
	size_t i, repo_cap = 0, group_cap = 0, registries = 0;
	int trouble;

	memset(out, 0, sizeof(*out));
	out->dry_run = env->dry_run;
	for (i = 0; i < env->cfg->n_registries && !out->stopped; i++) {
		const struct cfg_registry *reg = &env->cfg->registries[i];
		if (env->only_host != NULL && strcasecmp(env->only_host, reg->host) != 0)
			continue;
		registries++;
		run_registry(env, reg, out, &repo_cap, &group_cap);
	}
	out->ms = am_now_ms() - t0;
	trouble = out->failed > 0 || out->refused > 0 || out->list_failed > 0;
	log_kv(trouble ? LOG_WARN : LOG_INFO, "reconcile pass", LOG_I("registries", registries),
	    LOG_I("repositories", out->n_repos), LOG_I("absent", out->absent),
	    LOG_I("list_failed", out->list_failed), LOG_I("tags", out->tags),
	    LOG_I("groups", out->groups_seen), LOG_I("complete", out->complete),
	    LOG_I("published", out->published), LOG_I("unchanged", out->unchanged),
	    LOG_I("would_publish", out->would_publish), LOG_I("queued", out->queued),
	    LOG_I("waiting", out->waiting), LOG_I("refused", out->refused), LOG_I("failed", out->failed),
	    LOG_I("present", out->present), LOG_I("verified", out->verified),
	    LOG_S("dry_run", out->dry_run ? "1" : NULL), LOG_S("stopped", out->stopped ? "1" : NULL),
	    LOG_I("ms", out->ms));
}

void
reconcile_report_free(struct reconcile_report *r)
{
	if (r == NULL)
		return;
	free(r->repos);
	free(r->groups);
	memset(r, 0, sizeof(*r));
}

/* "a,b" -> ["a","b"] */
static json_t *
split_list(const char *s)
{
	json_t *a = json_array();
	const char *p = s, *comma;

	while (*p != '\0') {
		comma = strchr(p, ',');
		json_array_append_new(a, json_stringn(p, comma ? (size_t)(comma - p) : strlen(p)));
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return a;
}

json_t *
reconcile_report_json(const struct reconcile_report *r)
{
	json_t *root = json_object(), *repos = json_array(), *groups = json_array(), *o;
	size_t i;

	for (i = 0; i < r->n_repos; i++) {
		const struct rc_repo *e = &r->repos[i];
		o = json_pack("{s:s, s:s, s:s, s:I}", "registry", e->host, "repository", e->repo,
		    "result", list_result_name(e->result), "tags", (json_int_t)e->tags);
		if (e->error[0] != '\0')
			json_object_set_new(o, "error", json_string(e->error));
		json_array_append_new(repos, o);
	}
	for (i = 0; i < r->n_groups; i++) {
		const struct rc_group *g = &r->groups[i];
		o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "registry", g->g.host,
		    "repository", g->g.repo, "version", g->g.version, "target", g->target,
		    "rule", g->rule, "complete", g->complete,
		    "result", rc_result_name(g->result));
		json_array_append_new(groups, o);
		if (g->digest[0] != '\0')
			json_object_set_new(o, "digest", json_string(g->digest));
		if (g->missing[0] != '\0')
			json_object_set_new(o, "missing", split_list(g->missing));
		if (g->detail[0] != '\0')
			json_object_set_new(o, "detail", json_string(g->detail));
	}
	json_object_set_new(root, "dry_run", json_boolean(r->dry_run));
	json_object_set_new(root, "repositories", repos);
	json_object_set_new(root, "groups", groups);
	json_object_set_new(root, "summary", json_pack(
	    "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:I}",
	    "repositories", (json_int_t)r->n_repos, "absent", (json_int_t)r->absent,
	    "list_failed", (json_int_t)r->list_failed, "tags", (json_int_t)r->tags,
	    "groups", (json_int_t)r->groups_seen, "complete", (json_int_t)r->complete,
	    "present", (json_int_t)r->present, "verified", (json_int_t)r->verified,
	    "published", (json_int_t)r->published, "unchanged", (json_int_t)r->unchanged,
	    "would_publish", (json_int_t)r->would_publish, "queued", (json_int_t)r->queued,
	    "waiting", (json_int_t)r->waiting, "refused", (json_int_t)r->refused,
	    "failed", (json_int_t)r->failed, "stopped", r->stopped, "ms", (json_int_t)r->ms));
	return root;
}
