/*
 * The change feed's thread and pass. A pass runs under one configuration
 * generation; per project it reads repositories down to the cursor (or to
 * the newest update the last whole listing saw, less a slack), then the
 * artifacts of those it has not read at their update_time down to the
 * cursor, decides each tag with claim_tag() and queues (journals) the
 * claimed groups; the cursor moves only when a
 * project went through, so a failed pass is read again next time (at least
 * once). Pushes no webhook announced are checked once their grace is over.
 */
#include "server/reconcile/feed.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/claim.h"
#include "registry/harbor/feed.h"
#include "server/base/common.h"
#include "server/base/log.h"
#include "server/observe/feedstat.h"
#include "server/observe/metrics.h"
#include "server/queue/seen.h"
#include "server/reconcile/feedcursor.h"
#include "server/reconcile/reconcile.h"

#define FEED_MAX_PAGES 100          /* per listing and pass; the rest waits for the next pass */
#define FEED_MAX_TAGS_PAGE 4096     /* tags kept from one page of artifacts */
#define FEED_MAX_PENDING 4096       /* pushes waiting for their grace to end */
#define FEED_HANDLED_CAP 8192       /* pushes this process already queued, not queued again */

/* A push the feed queued itself: did a webhook announce it in time? */
struct pending {
	char host[256], repo[NAME_MAX_REPO], tag[NAME_MAX_TAG], digest[80];
	long long push_ms;
};

struct feed {
	const struct cfg *cfg;
	struct service *svc;
	struct feedcursor *cursor;
	struct seen *handled;            /* pushes the feed queued in this process */
	long long start_ms;              /* wall clock at start: older pushes are history */
	const struct cfg *gen;           /* the generation the clients were made for */
	struct harbor **clients;         /* per registry of gen; NULL without harbor_url */
	size_t n_clients;
	struct pending *pending;
	size_t n_pending;
	struct harbor_tagged *tags;      /* one page of artifacts' tags, reused by every call */
	char last_error[512];
	pthread_mutex_t mu;
	pthread_cond_t wake;
	atomic_int stop;
	int started;
	pthread_t thread;
};

/* What one project's pass found: groups to queue, and what the cursor notes once they are. */
struct handled {
	long long ms;
	struct rc_names keys;            /* handled at exactly ms */
	struct group *groups;            /* each once: one assembly for the tags of one pass */
	char (*first_tag)[NAME_MAX_TAG]; /* the tag that claimed each group, for the log */
	size_t n_groups;
	struct harbor_tagged *claimed;   /* the source pushes behind them, noted once queued */
	char (*claimed_repo)[NAME_MAX_REPO];
	size_t n_claimed;
	unsigned queued;
};

static int
feed_wanted(const struct cfg *c)
{
	size_t i;

	if (c->feed_interval_s == 0)
		return 0;
	for (i = 0; i < c->n_registries; i++)
		if (c->registries[i].harbor_url != NULL)
			return 1;
	return 0;
}

struct feed *
feed_new(const struct cfg *cfg, struct service *svc, char *err, size_t errlen)
{
	struct feed *f = xcalloc(1, sizeof(*f));
	pthread_condattr_t ca;

	if (feed_wanted(cfg) && feedcursor_open(cfg->state_dir, &f->cursor, err, errlen) != AM_OK) {
		free(f);
		return NULL;
	}
	f->cfg = cfg;
	f->svc = svc;
	f->handled = seen_new(FEED_HANDLED_CAP);
	f->tags = xcalloc(FEED_MAX_TAGS_PAGE, sizeof(*f->tags));
	f->start_ms = am_wall_ms();
	atomic_init(&f->stop, 0);
	pthread_mutex_init(&f->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->wake, &ca);
	pthread_condattr_destroy(&ca);
	feedstat_configure(feedstat_global(), feed_wanted(cfg) ? cfg->feed_interval_s : 0,
	    cfg->feed_grace_s);
	return f;
}

static void
clients_free(struct feed *f)
{
	size_t i;

	for (i = 0; i < f->n_clients; i++)
		harbor_free(f->clients[i]);
	free(f->clients);
	f->clients = NULL;
	f->n_clients = 0;
	f->gen = NULL;
}

/* Harbor clients for the generation v (made again after a reload). */
static void
clients_for(struct feed *f, const struct service_view *v)
{
	struct harbor_opts ho;
	char err[512];
	size_t i;

	if (f->gen == v->cfg)
		return;
	clients_free(f);
	f->gen = v->cfg;
	f->n_clients = v->cfg->n_registries;
	f->clients = xcalloc(f->n_clients ? f->n_clients : 1, sizeof(*f->clients));
	for (i = 0; i < f->n_clients; i++) {
		const struct cfg_registry *r = &v->cfg->registries[i];
		if (r->harbor_url == NULL)
			continue;
		memset(&ho, 0, sizeof(ho));
		ho.url = r->harbor_url;
		ho.ca_file = r->ca_file;
		ho.insecure = r->insecure;
		ho.username = r->username;
		ho.password = v->passwords[i];
		ho.timeout_ms = r->timeout_ms;
		if ((f->clients[i] = harbor_new(&ho, err, sizeof(err))) == NULL)
			log_kv(LOG_ERROR, "feed", LOG_S("registry", r->host), LOG_S("result", "failed"),
			    LOG_S("detail", err));
	}
}

static void
names_add_unique(struct rc_names *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i], name) == 0)
			return;
	rc_names_add(s, name);
}

/* The projects the rules cover; *all = 1 when some glob's project part holds a wildcard. */
static void
projects_of(const struct cfg *c, struct rc_names *out, int *all)
{
	char project[NAME_MAX_REPO];
	size_t i, k, n, w;

	*all = 0;
	for (i = 0; i < c->n_rules; i++) {
		for (k = 0; k < c->rules[i].n_repositories; k++) {
			const char *g = c->rules[i].repositories[k];
			n = strcspn(g, "/");
			w = strcspn(g, "*?[\\");
			if (w < n) {
				*all = 1;
				continue;
			}
			if (g[n] != '/')
				continue;
			(void)am_fmt(project, sizeof(project), "%.*s", (int)n, g);
			names_add_unique(out, project);
		}
	}
	for (i = 0; i < c->n_reconcile_repositories; i++) {
		n = strcspn(c->reconcile_repositories[i], "/");
		(void)am_fmt(project, sizeof(project), "%.*s", (int)n, c->reconcile_repositories[i]);
		names_add_unique(out, project);
	}
}

/* Every project's name (GET /projects), for rules whose project is a glob. */
static enum am_err
list_projects(struct harbor *h, int page_size, struct rc_names *out, char *err, size_t errlen)
{
	json_t *reply, *p;
	enum am_err rc;
	long status;
	size_t i, n;
	int page;

	for (page = 1; page <= FEED_MAX_PAGES; page++) {
		if ((rc = harbor_projects_page(h, page, page_size, &status, &reply, err, errlen)) != AM_OK)
			return rc;
		if (status != 200)
			return AM_EDENIED;
		json_array_foreach(reply, i, p)
			if (json_is_string(json_object_get(p, "name")))
				names_add_unique(out, json_string_value(json_object_get(p, "name")));
		n = json_array_size(reply);
		json_decref(reply);
		if (n < (size_t)page_size)
			break;
	}
	return AM_OK;
}

/* Why a list call failed, said the way an operator acts on it. */
static void
say_status(long status, const char *what, const char *detail, char *err, size_t errlen)
{
	if (status == 401)
		(void)am_fail(err, errlen, AM_EAUTH, "%s: Harbor rejected the registry's credentials (401)", what);
	else if (status == 403)
		(void)am_fail(err, errlen, AM_EDENIED, "%s: the robot may not list it (403): give it the "
		    "list repository and list artifact permissions", what);
	else
		(void)am_fail(err, errlen, AM_EDENIED, "%s: %s", what, detail);
}

static void
pending_add(struct feed *f, const char *host, const char *repo, const struct harbor_tagged *t)
{
	struct pending *p;

	if (f->n_pending == FEED_MAX_PENDING) {
		memmove(f->pending, f->pending + 1, (FEED_MAX_PENDING - 1) * sizeof(*f->pending));
		f->n_pending--;
	}
	if (f->pending == NULL)
		f->pending = xcalloc(FEED_MAX_PENDING, sizeof(*f->pending));
	p = &f->pending[f->n_pending++];
	(void)am_fmt(p->host, sizeof(p->host), "%s", host);
	(void)am_fmt(p->repo, sizeof(p->repo), "%s", repo);
	(void)am_fmt(p->tag, sizeof(p->tag), "%s", t->tag);
	(void)am_fmt(p->digest, sizeof(p->digest), "%s", t->digest);
	p->push_ms = t->push_ms;
}

/*
 * One tag the feed found: the same decision as a webhook's; a claimed
 * source joins the pass's groups unless a webhook (or this feed, earlier)
 * already queued that very push.
 */
static void
handle_tag(struct feed *f, const struct service_view *v, const char *host, const char *repo,
    const struct harbor_tagged *t, struct handled *done)
{
	struct claim cl;
	struct group g;
	size_t i;

	if (claim_tag(v->cfg, host, repo, t->tag, &cl) != CLAIM_SOURCE)
		return;
	if (seen_has(service_seen(f->svc), host, repo, t->tag, t->digest) ||
	    seen_has(f->handled, host, repo, t->tag, t->digest))
		return;
	memset(&g, 0, sizeof(g));
	(void)am_fmt(g.host, sizeof(g.host), "%s", cl.registry->host);
	(void)am_fmt(g.rule_name, sizeof(g.rule_name), "%s", cl.rule->name);
	(void)am_fmt(g.repo, sizeof(g.repo), "%s", cl.match.repo);
	(void)am_fmt(g.version, sizeof(g.version), "%s", cl.match.version);
	done->claimed = xrealloc(done->claimed, (done->n_claimed + 1) * sizeof(*done->claimed));
	done->claimed_repo = xrealloc(done->claimed_repo, (done->n_claimed + 1) * sizeof(*done->claimed_repo));
	done->claimed[done->n_claimed] = *t;
	(void)am_fmt(done->claimed_repo[done->n_claimed], sizeof(done->claimed_repo[0]), "%s", repo);
	done->n_claimed++;
	for (i = 0; i < done->n_groups; i++)
		if (group_equal(&done->groups[i], &g))
			return;
	done->groups = xrealloc(done->groups, (done->n_groups + 1) * sizeof(*done->groups));
	done->first_tag = xrealloc(done->first_tag, (done->n_groups + 1) * sizeof(*done->first_tag));
	done->groups[done->n_groups] = g;
	(void)am_fmt(done->first_tag[done->n_groups], sizeof(done->first_tag[0]), "%s", t->tag);
	done->n_groups++;
}

/*
 * Journal and queue the pass's groups: -1 when one could not be journaled.
 * Then its pushes are handled: not queued again by this process, and
 * watched for a webhook until their grace is over.
 */
static int
queue_groups(struct feed *f, const char *host, struct handled *done)
{
	char name[GROUP_NAME_MAX];
	size_t i;
	int q;

	for (i = 0; i < done->n_groups; i++) {
		if ((q = service_enqueue(f->svc, &done->groups[i])) < 0)
			return -1;
		done->queued++;
		(void)group_name(&done->groups[i], name, sizeof(name));
		log_kv(LOG_INFO, "feed", LOG_S("result", q ? "queued" : "coalesced"), LOG_S("group", name),
		    LOG_S("tag", done->first_tag[i]));
	}
	for (i = 0; i < done->n_claimed; i++) {
		const struct harbor_tagged *t = &done->claimed[i];
		seen_note(f->handled, host, done->claimed_repo[i], t->tag, t->digest);
		if (t->push_ms >= f->start_ms)   /* older pushes happened while archmerge was not listening */
			pending_add(f, host, done->claimed_repo[i], t);
	}
	return 0;
}

static void
note_handled(struct handled *done, const char *repo, const struct harbor_tagged *t)
{
	char key[NAME_MAX_REPO + NAME_MAX_TAG + 90];

	if (t->push_ms < done->ms)
		return;
	if (t->push_ms > done->ms) {
		rc_names_free(&done->keys);
		done->ms = t->push_ms;
	}
	(void)am_fmt(key, sizeof(key), "%s:%s@%s", repo, t->tag, t->digest);
	rc_names_add(&done->keys, key);
}

/* The tagged artifacts of repo pushed at or after since. */
static enum am_err
feed_repo(struct feed *f, const struct service_view *v, struct harbor *h, const char *host,
    const char *project, const char *repo, long long since, struct handled *done,
    char *err, size_t errlen)
{
	struct harbor_tagged *tags = f->tags;
	char key[NAME_MAX_REPO + NAME_MAX_TAG + 90];
	long long oldest;
	json_t *reply = NULL;
	enum am_err rc = AM_OK;
	long status;
	size_t n, i;
	int page, count, psize = (int)v->cfg->feed_page_size;

	for (page = 1; page <= FEED_MAX_PAGES && !atomic_load(&f->stop); page++) {
		if ((rc = harbor_artifacts_page(h, repo, page, psize, &status, &reply, err, errlen)) != AM_OK)
			break;
		if (status == 404)       /* deleted since it was listed */
			break;
		if (status != 200) {
			say_status(status, repo, err, err, errlen);
			rc = AM_EDENIED;
			break;
		}
		count = harbor_artifacts_parse(reply, tags, FEED_MAX_TAGS_PAGE, &n, &oldest, err, errlen);
		json_decref(reply);
		reply = NULL;
		if (count < 0) {
			rc = AM_EINVAL;
			break;
		}
		for (i = 0; i < n; i++) {
			if (tags[i].push_ms < since)
				continue;
			(void)am_fmt(key, sizeof(key), "%s:%s@%s", repo, tags[i].tag, tags[i].digest);
			if (tags[i].push_ms == since && feedcursor_at(f->cursor, host, project, key))
				continue;
			handle_tag(f, v, host, repo, &tags[i], done);
			note_handled(done, repo, &tags[i]);
		}
		if (count < psize || oldest < since)
			break;
	}
	json_decref(reply);
	return rc;
}

/*
 * One project: its repositories updated since the cursor (or, when that is
 * older, since a little below the newest update a whole listing saw) that
 * the feed has not read at that very update_time, then their artifacts.
 */
static enum am_err
feed_project(struct feed *f, const struct service_view *v, struct harbor *h, const char *host,
    const char *project, unsigned *queued, char *err, size_t errlen)
{
	struct harbor_repo *repos = xcalloc((size_t)v->cfg->feed_page_size, sizeof(*repos));
	struct rc_names changed = { NULL, 0, 0 };
	long long *changed_ms = NULL, newest = 0;
	struct handled done;
	json_t *reply = NULL;
	enum am_err rc = AM_OK;
	long long since, stop_ms;
	long status;
	int known, page, count, i, psize = (int)v->cfg->feed_page_size, end = 0;
	size_t k;

	since = feedcursor_get(f->cursor, host, project, &known);
	if (!known) {   /* first look at this project: what came before is reconcile's */
		since = f->start_ms;
		feedcursor_advance(f->cursor, host, project, since, NULL);
	}
	stop_ms = feedcursor_list_floor(f->cursor, host, project, since);
	memset(&done, 0, sizeof(done));
	done.ms = since;
	for (page = 1; page <= FEED_MAX_PAGES && !end && !atomic_load(&f->stop); page++) {
		if ((rc = harbor_repos_page(h, project, page, psize, &status, &reply, err, errlen)) != AM_OK)
			goto out;
		if (status != 200) {
			say_status(status, project, err, err, errlen);
			rc = AM_EDENIED;
			goto out;
		}
		count = harbor_repos_parse(reply, repos, (size_t)psize, err, errlen);
		json_decref(reply);
		reply = NULL;
		if (count < 0) {
			rc = AM_EINVAL;
			goto out;
		}
		for (i = 0; i < count && i < psize; i++) {
			if (repos[i].update_ms > newest)
				newest = repos[i].update_ms;
			if (repos[i].update_ms < stop_ms) {
				end = 1;
				break;
			}
			if (feedcursor_looked(f->cursor, host, project, repos[i].name, repos[i].update_ms))
				continue;
			changed_ms = xrealloc(changed_ms, (changed.n + 1) * sizeof(*changed_ms));
			changed_ms[changed.n] = repos[i].update_ms;
			rc_names_add(&changed, repos[i].name);
		}
		if (count < psize)
			end = 1;
	}
	for (k = 0; k < changed.n && !atomic_load(&f->stop); k++)
		if ((rc = feed_repo(f, v, h, host, project, changed.v[k], since, &done, err, errlen)) != AM_OK)
			goto out;
	if (atomic_load(&f->stop))
		goto out;
	if (queue_groups(f, host, &done) != 0) {
		rc = am_fail(err, errlen, AM_EIO, "a group could not be journaled");
		goto out;
	}
	/* Went through: every group found is journaled, the cursor may move. */
	for (k = 0; k < done.keys.n; k++)
		feedcursor_advance(f->cursor, host, project, done.ms, done.keys.v[k]);
	for (k = 0; k < changed.n; k++)
		feedcursor_look(f->cursor, host, project, changed.v[k], changed_ms[k]);
	if (end)        /* down to the floor: the next listing may stop below this one's newest */
		feedcursor_listed(f->cursor, host, project, newest);
	*queued += done.queued;
out:
	json_decref(reply);
	rc_names_free(&changed);
	free(changed_ms);
	rc_names_free(&done.keys);
	free(done.groups);
	free(done.first_tag);
	free(done.claimed);
	free(done.claimed_repo);
	free(repos);
	return rc;
}

/* Pushes the feed queued whose grace is over: announced by a webhook, or missed. */
static void
check_pending(struct feed *f, long grace_s)
{
	long long now = am_wall_ms();
	size_t i, j = 0, missed = 0;
	const struct pending *first = NULL;
	char example[NAME_MAX_REPO + NAME_MAX_TAG + 2] = "";

	for (i = 0; i < f->n_pending; i++) {
		struct pending *p = &f->pending[i];
		if (seen_has(service_seen(f->svc), p->host, p->repo, p->tag, p->digest))
			continue;                       /* the webhook came, late */
		if (now < p->push_ms + grace_s * 1000) {
			f->pending[j++] = *p;           /* still within its grace */
			continue;
		}
		metrics_event_missed("webhook");
		feedstat_missed(feedstat_global(), p->host, p->repo, p->tag, p->digest, p->push_ms);
		if (first == NULL) {
			first = p;
			(void)am_fmt(example, sizeof(example), "%s:%s", p->repo, p->tag);
		}
		missed++;
	}
	f->n_pending = j;
	if (missed > 0)
		log_kv(LOG_WARN, "webhooks missing", LOG_I("missed", missed), LOG_S("example", example),
		    LOG_I("grace_s", grace_s), LOG_S("detail", "the change feed found pushes no webhook "
		    "announced: check Harbor's webhook delivery log (archmerge harbor-setup --check) and, "
		    "when archmerge has a private address, allow_private_network_access on Harbor's "
		    "core and jobservice"));
}

/* One pass over every registry with a harbor_url; returns the first error (NULL: none). */
static void
run_pass(struct feed *f)
{
	const struct service_view *v = service_acquire(f->svc);
	struct rc_names projects = { NULL, 0, 0 };
	char err[1024] = "", perr[1024];
	unsigned queued = 0;
	size_t i, k;
	int all;

	clients_for(f, v);
	for (i = 0; i < v->cfg->n_registries && !atomic_load(&f->stop); i++) {
		const char *host = v->cfg->registries[i].host;
		if (f->clients[i] == NULL)
			continue;
		rc_names_free(&projects);
		projects_of(v->cfg, &projects, &all);
		if (all && list_projects(f->clients[i], (int)v->cfg->feed_page_size, &projects, perr,
		    sizeof(perr)) != AM_OK && err[0] == '\0')
			(void)am_fmt(err, sizeof(err), "%s: listing projects: %s", host, perr);
		for (k = 0; k < projects.n; k++) {
			if (feed_project(f, v, f->clients[i], host, projects.v[k], &queued, perr,
			    sizeof(perr)) != AM_OK && err[0] == '\0' && !atomic_load(&f->stop))
				(void)am_fmt(err, sizeof(err), "%s: project %s: %s", host, projects.v[k], perr);
		}
	}
	if (feedcursor_save(f->cursor, perr, sizeof(perr)) != AM_OK && err[0] == '\0')
		(void)am_fmt(err, sizeof(err), "saving the cursor: %s", perr);
	check_pending(f, v->cfg->feed_grace_s);
	if (err[0] != '\0' && strcmp(err, f->last_error) != 0)   /* once per distinct fault */
		log_kv(LOG_WARN, "feed", LOG_S("result", "failed"), LOG_S("detail", err));
	else if (err[0] == '\0' && f->last_error[0] != '\0')
		log_kv(LOG_INFO, "feed", LOG_S("result", "recovered"));
	(void)am_fmt(f->last_error, sizeof(f->last_error), "%s", err);
	feedstat_pass(feedstat_global(), err[0] ? err : NULL, queued);
	rc_names_free(&projects);
	service_release(f->svc, v);
}

static int
sleep_interval(struct feed *f)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += f->cfg->feed_interval_s;
	while (!atomic_load(&f->stop))
		if (pthread_cond_timedwait(&f->wake, &f->mu, &until) == ETIMEDOUT)
			break;
	return !atomic_load(&f->stop);
}

static void *
loop(void *arg)
{
	struct feed *f = arg;

	pthread_mutex_lock(&f->mu);
	while (!atomic_load(&f->stop)) {
		pthread_mutex_unlock(&f->mu);
		run_pass(f);
		pthread_mutex_lock(&f->mu);
		if (!sleep_interval(f))
			break;
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

void
feed_start(struct feed *f)
{
	if (f == NULL || !feed_wanted(f->cfg))
		return;
	if (pthread_create(&f->thread, NULL, loop, f) != 0) {
		log_kv(LOG_ERROR, "feed", LOG_S("result", "failed"),
		    LOG_S("detail", "the change feed thread could not be started"));
		abort();
	}
	f->started = 1;
	log_kv(LOG_INFO, "feed scheduled", LOG_I("interval_s", f->cfg->feed_interval_s),
	    LOG_I("grace_s", f->cfg->feed_grace_s), LOG_I("page_size", f->cfg->feed_page_size));
}

void
feed_free(struct feed *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->mu);
	atomic_store(&f->stop, 1);
	pthread_cond_broadcast(&f->wake);
	pthread_mutex_unlock(&f->mu);
	if (f->started)
		pthread_join(f->thread, NULL);
	clients_free(f);
	feedcursor_free(f->cursor);
	seen_free(f->handled);
	free(f->tags);
	free(f->pending);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->wake);
	free(f);
}
