/*
 * Service wiring: turns the configuration into registry clients and a queue,
 * journals what webhooks accept, retries transient registry faults with
 * backoff, and logs one line per assembly outcome. Configuration generations
 * (config + secret + clients) are reference counted so SIGHUP can replace
 * them while workers run; the last holder of an old generation hands it to
 * the service's reaper thread, so no request or worker thread ever frees
 * registry clients, Harbor sessions or a configuration.
 *
 * The service owns every piece of process state its threads share: the
 * generations, the queue, the journal, the status recorder, the
 * signature-wait table, the set of its own writes and the config cache.
 */
#include "server/service/service.h"
#include "server/service/decide.h"
#include "server/service/regopts.h"
#include "config/plan.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "registry/assemble/cache.h"
#include "registry/assemble/written.h"
#include "server/queue/seen.h"
#include "server/service/harbors.h"
#include "server/service/sigwait.h"
#include "server/queue/journal.h"
#include "server/base/log.h"
#include "server/observe/metrics.h"
#include "server/observe/observe.h"
#include "server/observe/status.h"
#include "server/queue/queue.h"
#include "server/queue/repos.h"
#include "server/outbox/outbox.h"

/* Image configs remembered (~1 KiB each): a waiting group's first architecture is
 * not read again when the last one arrives, nor on unchanged re-deliveries. */
#define SERVICE_CONFIG_CACHE 512

/* One configuration generation. */
struct snap {
	struct service_view view;        /* first: service_view pointers convert back */
	int refs;
	struct cfg *owned;               /* NULL for the borrowed startup configuration */
	char *secret;
	char *status_secret;
	char **passwords;                /* parallel to cfg->registries; read once per generation */
	char **webhook_secrets;          /* parallel too: registries' own webhook secrets (NULL: none) */
	struct reg_client **clients;     /* parallel to cfg->registries */
	struct harbor **harbors;         /* parallel too; NULL unless a rule cleans up */
	struct snap *next;               /* every live generation, for cancelling at shutdown */
};

struct service {
	const struct cfg *cfg;           /* the startup configuration (borrowed) */
	pthread_mutex_t mu;              /* guards cur, refs, the lists, stopping and reaping */
	struct snap *cur;
	struct snap *all;
	struct snap *first;              /* startup generation, pinned until service_free */
	struct cache *configs;           /* image configs by digest, shared by every generation */
	struct written *written;         /* what assemblies just wrote, for the webhook handler */
	struct status_rec *status;       /* what GET /status shows; fed by every assembly */
	struct sigwait *sigwait;         /* groups waiting for a child's signature */
	struct seen *seen;               /* pushes webhooks announced, for the change feed */
	struct queue *queue;
	struct repos *repos;             /* borrowed; NULL: nothing remembered */
	struct journal *journal;         /* NULL outside serve mode */
	struct outbox *outbox;           /* outbound notifications; NULL outside serve mode */
	int stopping;

	/* Generations nobody holds any more, freed by the reaper thread alone. */
	struct snap *dead;
	pthread_cond_t reap_cv;          /* signalled when dead grows or reaping ends */
	pthread_t reaper;
	int reap_quit;
	void (*on_free)(void *ctx);      /* tests: runs on the freeing thread */
	void *on_free_ctx;
};

static void
snap_free(struct snap *sn)
{
	size_t i;

	if (sn == NULL)
		return;
	if (sn->clients != NULL)
		for (i = 0; i < sn->view.cfg->n_registries; i++)
			reg_client_free(sn->clients[i]);
	free(sn->clients);
	if (sn->passwords != NULL)
		for (i = 0; i < sn->view.cfg->n_registries; i++)
			am_secret_free(sn->passwords[i]);
	free(sn->passwords);
	if (sn->webhook_secrets != NULL)
		for (i = 0; i < sn->view.cfg->n_registries; i++)
			am_secret_free(sn->webhook_secrets[i]);
	free(sn->webhook_secrets);
	harbors_free(sn->view.cfg, sn->harbors);
	am_secret_free(sn->secret);
	am_secret_free(sn->status_secret);
	cfg_free(sn->owned);
	free(sn);
}

/* The registry client's exchange hook: every exchange becomes a metrics sample. */
static void
on_registry_exchange(void *ctx, const struct reg_exchange *e)
{
	(void)ctx;
	metrics_registry_exchange(e->token_fetch, e->method, e->status, e->ms);
}

static enum am_err
snap_new(const struct cfg *cfg, struct snap **out, char *err, size_t errlen)
{
	struct snap *sn = xcalloc(1, sizeof(*sn));
	struct reg_client_opts o;
	enum am_err rc = AM_OK;
	size_t i;

	sn->view.cfg = cfg;
	sn->refs = 1;
	if (cfg->webhook_secret_file != NULL &&
	    (rc = am_read_secret(cfg->webhook_secret_file, &sn->secret, err, errlen)) != AM_OK)
		goto fail;
	sn->view.secret = sn->secret;
	if (cfg->status_secret_file != NULL &&
	    (rc = am_read_secret(cfg->status_secret_file, &sn->status_secret, err, errlen)) != AM_OK)
		goto fail;
	sn->view.status_secret = sn->status_secret;
	/* The one place password files are read: every consumer of this generation
	 * (clients, Harbor clients, registry checks) gets the same secret. */
	sn->passwords = xcalloc(cfg->n_registries ? cfg->n_registries : 1, sizeof(*sn->passwords));
	for (i = 0; i < cfg->n_registries; i++)
		if (cfg->registries[i].password_file != NULL &&
		    (rc = am_read_secret(cfg->registries[i].password_file, &sn->passwords[i],
		    err, errlen)) != AM_OK)
			goto fail;
	sn->view.passwords = (const char *const *)sn->passwords;
	sn->webhook_secrets = xcalloc(cfg->n_registries ? cfg->n_registries : 1,
	    sizeof(*sn->webhook_secrets));
	for (i = 0; i < cfg->n_registries; i++)
		if (cfg->registries[i].webhook_secret_file != NULL &&
		    (rc = am_read_secret(cfg->registries[i].webhook_secret_file,
		    &sn->webhook_secrets[i], err, errlen)) != AM_OK)
			goto fail;
	sn->view.webhook_secrets = (const char *const *)sn->webhook_secrets;
	sn->clients = xcalloc(cfg->n_registries ? cfg->n_registries : 1, sizeof(*sn->clients));
	sn->view.clients = sn->clients;
	for (i = 0; i < cfg->n_registries; i++) {
		const struct cfg_registry *r = &cfg->registries[i];
		regopts_client(r, sn->passwords[i], 0, &o);
		o.on_exchange = on_registry_exchange;
		sn->clients[i] = reg_client_new(&o, err, errlen);
		if (sn->clients[i] == NULL) {
			rc = AM_EINVAL;
			goto fail;
		}
	}
	if ((rc = harbors_new(cfg, sn->view.passwords, &sn->harbors, err, errlen)) != AM_OK)
		goto fail;
	*out = sn;
	return AM_OK;
fail:
	snap_free(sn);
	return rc;
}

static struct snap *
snap_acquire(struct service *s)
{
	struct snap *sn;

	pthread_mutex_lock(&s->mu);
	sn = s->cur;
	sn->refs++;
	pthread_mutex_unlock(&s->mu);
	return sn;
}

/*
 * Let go of a generation. The last holder may be a CivetWeb request thread
 * (a webhook that began before a SIGHUP): it only moves the generation to
 * the dead list; the reaper thread frees it.
 */
static void
snap_release(struct service *s, struct snap *sn)
{
	struct snap **pp;

	pthread_mutex_lock(&s->mu);
	if (--sn->refs == 0) {
		for (pp = &s->all; *pp != NULL; pp = &(*pp)->next)
			if (*pp == sn) {
				*pp = sn->next;
				break;
			}
		sn->next = s->dead;
		s->dead = sn;
		pthread_cond_signal(&s->reap_cv);
	}
	pthread_mutex_unlock(&s->mu);
}

/* The service's own thread: frees dead generations until service_free, then the rest. */
static void *
reaper_main(void *arg)
{
	struct service *s = arg;
	struct snap *list, *sn;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->dead == NULL && !s->reap_quit)
			pthread_cond_wait(&s->reap_cv, &s->mu);
		if (s->dead == NULL)
			break;
		list = s->dead;
		s->dead = NULL;
		pthread_mutex_unlock(&s->mu);
		while ((sn = list) != NULL) {
			list = sn->next;
			if (s->on_free != NULL)
				s->on_free(s->on_free_ctx);
			snap_free(sn);
		}
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

void
service_set_free_hook(struct service *s, void (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&s->mu);
	s->on_free = fn;
	s->on_free_ctx = ctx;
	pthread_mutex_unlock(&s->mu);
}

const struct service_view *
service_acquire(struct service *s)
{
	return &snap_acquire(s)->view;
}

void
service_release(struct service *s, const struct service_view *v)
{
	if (v != NULL)
		snap_release(s, (struct snap *)(void *)v);
}

/* The group's rule in the generation in force now: by name, never by index. */
static const struct rule *
find_rule(const struct cfg *c, const struct group *g)
{
	return cfg_rule_by_name(c, g->rule_name);
}

static void
assemble_in(struct service *s, struct snap *sn, const struct group *g, int dry_run,
    struct asm_result *out)
{
	const struct cfg *c = sn->view.cfg;
	const struct cfg_registry *reg = cfg_registry_by_host(c, g->host);
	const struct rule *r = find_rule(c, g);
	struct reg_api api;
	struct plan plan;

	if (reg == NULL || r == NULL) {
		memset(out, 0, sizeof(*out));
		out->outcome = ASM_FAILED;
		out->err = AM_EINVAL;
		out->retry_after_ms = -1;
		(void)am_fmt(out->detail, sizeof(out->detail), "%s %s gone from the configuration",
		    reg == NULL ? "registry" : "rule", reg == NULL ? g->host : g->rule_name);
		return;
	}
	reg_api_from_client(&api, sn->clients[reg - c->registries]);
	api.configs = s->configs;
	api.written = s->written;
	api.host = reg->host;
	if (sn->harbors != NULL)
		reg_api_set_harbor(&api, sn->harbors[reg - c->registries]);
	rule_plan(r, g->repo, g->version, &plan);
	plan.recheck_sources = cfg_recheck_sources(c);
	assemble(&api, &plan, dry_run, out);
	plan_clear(&plan);
}

/* How a run ended, for the log line: retry_ms < 0 means no retry follows. */
struct run_note {
	unsigned attempt;
	long retry_ms;
	int left_in_journal;             /* shutting down: the journal keeps the group */
};

static void
log_outcome(struct service *s, const struct cfg *c, const struct group *g, const struct asm_result *out,
    long long ms, const struct run_note *rn)
{
	const struct rule *r = find_rule(c, g);
	struct observe_retry rt = { 0, 0, -1, -1 };
	enum log_level lvl;

	switch (out->outcome) {
	case ASM_WAITING:
		/* Held up by the registry's policy: worth a look by whoever runs it. */
		lvl = out->n_blocked > 0 ? LOG_WARN : LOG_INFO;
		break;
	case ASM_PUBLISHED: case ASM_UNCHANGED: case ASM_DRY_RUN:
		lvl = LOG_INFO;
		break;
	case ASM_REFUSED:
		lvl = LOG_WARN;
		break;
	default:
		/* A fault that will be retried is a warning; one that ends the job is an error. */
		lvl = rn != NULL && (rn->retry_ms >= 0 || rn->left_in_journal) ? LOG_WARN : LOG_ERROR;
	}
	if (rn != NULL && (rn->left_in_journal || rn->retry_ms >= 0)) {
		rt.attempt = rn->attempt + 1;
		rt.after_restart = rn->left_in_journal;
		rt.retry_in_ms = rn->retry_ms;
		rt.retry_after_ms = out->retry_after_ms;
	}
	observe_assembly(s->status, g, r != NULL ? r->name : g->rule_name, out, ms, lvl, &rt);
}

/* What the group waits for now (a child's signature, the registry's leave to read a child), if anything. */
static void
note_waits(struct service *s, const struct group *g, const struct asm_result *res)
{
	size_t i;

	sigwait_forget(s->sigwait, g);
	if (res->unsigned_child)
		sigwait_note(s->sigwait, g, res->unsigned_repo, "", res->unsigned_digest);
	for (i = 0; res->outcome == ASM_WAITING && i < res->n_blocked; i++)
		sigwait_note(s->sigwait, g, res->blocked[i].repo, res->blocked[i].tag,
		    res->blocked[i].digest);
}

/* A worker's run of one group: assemble, then retry later or mark it done. */
static long
run_group(void *ctx, const struct group *g, unsigned attempt)
{
	struct service *s = ctx;
	/* Read before assembling: an event recorded after this point keeps the group pending. */
	uint64_t seq = s->journal != NULL ? journal_latest(s->journal, g) : 0;
	struct snap *sn = snap_acquire(s);
	struct run_note rn = { attempt, -1, 0 };
	static _Thread_local unsigned seed;
	struct run_decision d;
	struct asm_result res;
	long long t0 = am_now_ms();
	int stopping;

	assemble_in(s, sn, g, 0, &res);
	pthread_mutex_lock(&s->mu);
	stopping = s->stopping;
	pthread_mutex_unlock(&s->mu);
	if (seed == 0)
		seed = (unsigned)am_now_ms() ^ (unsigned)(size_t)&seed;
	run_decide(&res, attempt, stopping, s->journal != NULL, seq, sn->view.cfg->retry_initial_ms,
	    sn->view.cfg->retry_max_ms, &seed, &d);
	rn.retry_ms = d.retry_ms;
	rn.left_in_journal = d.left_in_journal;
	note_waits(s, g, &res);
	log_outcome(s, sn->view.cfg, g, &res, am_now_ms() - t0, &rn);
	outbox_assembly(s->outbox, sn->view.cfg, g, &res, am_now_ms() - t0);   /* before done: a crash re-runs */
	if (d.mark_done)
		journal_done(s->journal, g, seq);
	asm_result_clear(&res);
	snap_release(s, sn);
	return rn.left_in_journal ? 0 : rn.retry_ms;
}

enum am_err
service_new(const struct cfg *cfg, size_t workers, struct service **out, char *err, size_t errlen)
{
	struct service *s = xcalloc(1, sizeof(*s));
	enum am_err rc;

	s->cfg = cfg;
	if ((rc = snap_new(cfg, &s->cur, err, errlen)) != AM_OK) {
		free(s);
		return rc;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->reap_cv, NULL);
	if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
		snap_free(s->cur);
		pthread_cond_destroy(&s->reap_cv);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return am_fail(err, errlen, AM_EIO, "cannot start the service's reaper thread");
	}
	s->all = s->cur;
	s->first = s->cur;
	s->first->refs++;
	s->configs = cache_new(sizeof(struct image_info), SERVICE_CONFIG_CACHE);
	s->written = written_new(WRITTEN_DEFAULT_CAP);
	s->status = status_new();
	s->sigwait = sigwait_new();
	s->seen = seen_new(SERVICE_SEEN_CAP);
	if (workers > 0)
		s->queue = queue_new(workers, run_group, s);
	*out = s;
	return AM_OK;
}

void
service_free(struct service *s)
{
	struct snap *sn;

	if (s == NULL)
		return;
	queue_free(s->queue);
	if (s->journal != NULL) {
		metrics_gauge_unregister("archmerge_journal_bytes", s->journal);
		metrics_gauge_unregister("archmerge_journal_pending", s->journal);
		metrics_gauge_unregister("archmerge_journal_failing", s->journal);
	}
	journal_free(s->journal);
	outbox_free(s->outbox);
	pthread_mutex_lock(&s->mu);
	sn = s->cur;
	s->cur = NULL;
	pthread_mutex_unlock(&s->mu);
	if (sn != NULL)
		snap_release(s, sn);
	if (s->first != NULL)
		snap_release(s, s->first);
	/* The reaper frees what is dead (every generation by now), then ends. */
	pthread_mutex_lock(&s->mu);
	s->reap_quit = 1;
	pthread_cond_signal(&s->reap_cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->reaper, NULL);
	cache_free(s->configs);
	written_free(s->written);
	status_free(s->status);
	sigwait_free(s->sigwait);
	pthread_cond_destroy(&s->reap_cv);
	seen_free(s->seen);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void
replay_one(void *ctx, const struct group *g)
{
	struct service *s = ctx;

	(void)queue_push(s->queue, g);
}

static double
gauge_journal_bytes(void *ctx)
{
	struct journal_stats st;

	journal_get_stats(ctx, &st);
	return (double)st.file_bytes;
}

static double
gauge_journal_pending(void *ctx)
{
	struct journal_stats st;

	journal_get_stats(ctx, &st);
	return (double)st.pending;
}

static double
gauge_journal_failing(void *ctx)
{
	struct journal_stats st;

	journal_get_stats(ctx, &st);
	return st.failing || st.broken ? 1 : 0;
}

enum am_err
service_open_journal(struct service *s, char *err, size_t errlen)
{
	enum am_err rc;
	size_t n;

	if (s->queue == NULL)
		return am_fail(err, errlen, AM_EINVAL, "no workers to replay the journal with");
	if ((rc = journal_open(s->cfg->state_dir, &s->journal, err, errlen)) != AM_OK ||
	    (rc = outbox_open(s->cfg->state_dir, &s->outbox, err, errlen)) != AM_OK)
		return rc;
	(void)metrics_gauge_register("archmerge_journal_bytes",
	    "Size of the journal file of accepted events.", gauge_journal_bytes, s->journal);
	(void)metrics_gauge_register("archmerge_journal_pending",
	    "Accepted groups not yet done (kept in the journal).", gauge_journal_pending, s->journal);
	(void)metrics_gauge_register("archmerge_journal_failing",
	    "1 while journal appends fail (webhooks are answered 503), else 0.", gauge_journal_failing,
	    s->journal);
	n = journal_pending(s->journal, replay_one, s);
	log_kv(LOG_INFO, "journal", LOG_S("state_dir", s->cfg->state_dir), LOG_I("pending", n),
	    LOG_S("detail", n > 0 ? "queued again" : NULL));
	return AM_OK;
}

const char *
service_secret(const struct service *s)
{
	return s->cur->secret;
}

int
service_enqueue(void *service, const struct group *gin)
{
	struct service *s = service;
	struct group g = *gin;
	char err[512];
	int queued;

	if (s->journal != NULL && journal_append(s->journal, &g, NULL, err, sizeof(err)) != AM_OK) {
		char name[GROUP_NAME_MAX];
		(void)group_name(&g, name, sizeof(name));
		log_kv(LOG_ERROR, "journal append", LOG_S("result", "failed"), LOG_S("group", name),
		    LOG_S("detail", err));
		return -1;
	}
	repos_note(s->repos, g.host, g.repo);
	/* A group held up by a child: any event about it is worth a look now, backoff or not. */
	if (sigwait_waits(s->sigwait, &g))
		queued = queue_wake(s->queue, &g);
	else
		queued = queue_push(s->queue, &g);
	/* Appends work again: groups left pending while they failed run and are written done. */
	if (s->journal != NULL && journal_recovered(s->journal))
		log_kv(LOG_INFO, "journal", LOG_S("result", "recovered"),
		    LOG_I("queued_again", journal_pending(s->journal, replay_one, s)));
	return queued;
}

void
service_remember(void *service, const char *host, const char *repo)
{
	struct service *s = service;

	repos_note(s->repos, host, repo);
}

void
service_announce(void *service, const char *host, const char *repo, const char *tag,
    const char *digest)
{
	struct service *s = service;

	seen_note(s->seen, host, repo, tag, digest);
}

struct seen *
service_seen(struct service *s)
{
	return s->seen;
}

struct written *
service_written(struct service *s)
{
	return s->written;
}

struct status_rec *
service_status(struct service *s)
{
	return s->status;
}

size_t
service_waiting(void *service, const char *host, const char *repo, const char *tag,
    const char *digest, struct group *out, size_t max)
{
	struct service *s = service;

	return sigwait_find(s->sigwait, host, repo, tag, digest, out, max);
}

void
service_wait_idle(struct service *s)
{
	if (s->queue != NULL)
		queue_wait_idle(s->queue);
}

void
service_assemble(struct service *s, const struct group *g, int dry_run, struct asm_result *out)
{
	struct snap *sn = snap_acquire(s);
	long long t0 = am_now_ms();

	assemble_in(s, sn, g, dry_run, out);
	log_outcome(s, sn->view.cfg, g, out, am_now_ms() - t0, NULL);
	snap_release(s, sn);
}

enum am_err
service_reload(struct service *s, struct cfg *cfg, char *err, size_t errlen)
{
	struct snap *sn, *old;
	enum am_err rc;

	if ((rc = snap_new(cfg, &sn, err, errlen)) != AM_OK)
		return rc;
	sn->owned = cfg;
	pthread_mutex_lock(&s->mu);
	old = s->cur;
	sn->view.generation = old->view.generation + 1;
	s->cur = sn;
	sn->next = s->all;
	s->all = sn;
	pthread_mutex_unlock(&s->mu);
	snap_release(s, old);        /* handed to the reaper once the last holder lets go */
	return AM_OK;
}

void
service_stop_jobs(struct service *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_mutex_unlock(&s->mu);
	if (s->queue != NULL)
		(void)queue_stop(s->queue, 0);
}

int
service_shutdown(struct service *s, long timeout_ms)
{
	struct snap *sn;
	size_t i, left;

	service_stop_jobs(s);
	if (s->queue == NULL)
		return 0;
	if ((left = queue_stop(s->queue, timeout_ms)) == 0)
		return 0;
	log_kv(LOG_WARN, "shutdown", LOG_I("running", left), LOG_S("detail", "still running after "
	    "the shutdown timeout: aborting their registry requests (their groups stay in the journal)"));
	pthread_mutex_lock(&s->mu);
	for (sn = s->all; sn != NULL; sn = sn->next)
		for (i = 0; i < sn->view.cfg->n_registries; i++)
			reg_client_cancel(sn->clients[i]);
	pthread_mutex_unlock(&s->mu);
	/* libcurl looks at the abort flag at least once a second. */
	return queue_stop(s->queue, 3000) == 0 ? 0 : -1;
}

size_t
service_journal_pending(struct service *s)
{
	struct journal_stats st;

	if (s->journal == NULL)
		return 0;
	journal_get_stats(s->journal, &st);
	return st.pending;
}

size_t
service_queue_depth(struct service *s)
{
	return s->queue != NULL ? queue_depth(s->queue) : 0;
}

enum am_err
service_list_tags(struct service *s, const char *host, const char *repo, int page_size,
    int (*cb)(void *ctx, const char *tag), void *cbctx, char *err, size_t errlen)
{
	struct snap *sn = snap_acquire(s);
	const struct cfg_registry *reg = cfg_registry_by_host(sn->view.cfg, host);
	enum am_err rc;

	/* The current generation: a reload's new password reaches the next pass. */
	if (reg == NULL)
		rc = am_fail(err, errlen, AM_EINVAL, "registry %s is not in the configuration", host);
	else
		rc = reg_tags_list(sn->clients[reg - sn->view.cfg->registries], repo, page_size, cb,
		    cbctx, err, errlen);
	snap_release(s, sn);
	return rc;
}

int
service_stopping(struct service *s)
{
	int v;

	pthread_mutex_lock(&s->mu);
	v = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return v;
}

int
service_journal_stats(struct service *s, struct journal_stats *out)
{
	if (s->journal == NULL)
		return -1;
	journal_get_stats(s->journal, out);
	return 0;
}

void
service_set_repos(struct service *s, struct repos *r)
{
	s->repos = r;
}
