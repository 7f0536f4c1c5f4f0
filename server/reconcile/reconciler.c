/*
 * The serve-side reconcile thread. It sleeps on a condition variable with a
 * monotonic deadline, so shutdown wakes it at once instead of waiting out
 * the interval; a pass in progress sees the stop flag between requests.
 */
#include "server/reconcile/reconciler.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/base/log.h"
#include "server/reconcile/reconcile.h"
#include "server/queue/repos.h"

struct reconciler {
	const struct cfg *cfg;
	struct service *svc;
	struct repos *repos;
	struct reconcile_env env;
	struct rc_rotation *rotation;     /* which published groups were read again last */
	unsigned long generation;         /* the configuration generation of the last pass */
	int verify_all_owed;              /* verify_on_start: no pass has read every group yet */
	pthread_mutex_t mu;
	pthread_cond_t wake;
	atomic_int stop;
	int started;
	pthread_t thread;
};

struct reconciler *
reconciler_new(const struct cfg *cfg, struct service *svc, char *err, size_t errlen)
{
	struct reconciler *r = xcalloc(1, sizeof(*r));
	pthread_condattr_t ca;

	if (repos_open(cfg->state_dir, 0, &r->repos, err, errlen) != AM_OK) {
		free(r);
		return NULL;
	}
	r->cfg = cfg;
	r->svc = svc;
	reconcile_env_service(&r->env, cfg, svc);
	r->env.assemble = NULL;           /* queue: the workers serialise per group */
	r->env.remembered = r->repos;
	r->env.stop = &r->stop;
	r->rotation = rc_rotation_new();
	r->env.rotation = r->rotation;
	atomic_init(&r->stop, 0);
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* wall-clock jumps do not matter */
	pthread_cond_init(&r->wake, &ca);
	pthread_condattr_destroy(&ca);
	service_set_repos(svc, r->repos);
	return r;
}

/* Wait interval_s or until stopped; returns 0 when stopped. Called with mu held. */
static int
sleep_interval(struct reconciler *r)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += r->cfg->reconcile_interval_s;
	while (!atomic_load(&r->stop))
		if (pthread_cond_timedwait(&r->wake, &r->mu, &until) == ETIMEDOUT)
			break;
	return !atomic_load(&r->stop);
}

/*
 * One pass under the configuration generation in force now (a reload may
 * have reordered, added or removed rules since startup); held for the
 * whole pass so matching and naming use the same rules. The first pass of
 * the process, and the first after a reload, read every group when
 * verify_on_start says so: what changed while the service was down (a
 * re-pushed version) or what other rules make of a group shows in no tag
 * list. Such a pass is owed until one lists every repository: a registry
 * still starting (or down) when serve starts fails the listing, and a
 * regular pass afterwards would take what it lists for current.
 */
static void
run_pass(struct reconciler *r, struct reconcile_report *rep, int first)
{
	const struct service_view *v = service_acquire(r->svc);

	if (first || v->generation != r->generation)
		r->verify_all_owed = 1;
	r->generation = v->generation;
	r->env.cfg = v->cfg;
	r->env.verify_per_pass = r->verify_all_owed && v->cfg->reconcile_verify_on_start ? RC_VERIFY_ALL :
	    v->cfg->reconcile_verify_per_pass;
	reconcile_run(&r->env, rep);
	if (rep->list_failed == 0 && !rep->stopped)
		r->verify_all_owed = 0;
	r->env.cfg = r->cfg;
	service_release(r->svc, v);
}

static void *
loop(void *arg)
{
	struct reconciler *r = arg;
	struct reconcile_report rep;
	int first = 1, passes = 0;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		if (!(first && r->cfg->reconcile_on_start) &&
		    (r->cfg->reconcile_interval_s == 0 || !sleep_interval(r)))
			break;
		first = 0;
		if (atomic_load(&r->stop))
			break;
		pthread_mutex_unlock(&r->mu);
		run_pass(r, &rep, passes++ == 0);
		reconcile_report_free(&rep);
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

void
reconciler_start(struct reconciler *r)
{
	if (r == NULL || (!r->cfg->reconcile_on_start && r->cfg->reconcile_interval_s == 0))
		return;
	if (pthread_create(&r->thread, NULL, loop, r) != 0) {
		log_kv(LOG_ERROR, "reconcile", LOG_S("result", "failed"),
		    LOG_S("detail", "the reconcile thread could not be started"));
		abort();              /* like queue workers: no thread, no service */
	}
	r->started = 1;
	log_kv(LOG_INFO, "reconcile scheduled", LOG_I("on_start", r->cfg->reconcile_on_start),
	    LOG_I("interval_s", r->cfg->reconcile_interval_s), LOG_I("remembered", repos_count(r->repos)),
	    LOG_I("page_size", r->cfg->reconcile_page_size),
	    LOG_I("verify_per_pass", r->cfg->reconcile_verify_per_pass),
	    LOG_I("verify_on_start", r->cfg->reconcile_verify_on_start));
}

void
reconciler_free(struct reconciler *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	atomic_store(&r->stop, 1);
	pthread_cond_broadcast(&r->wake);
	pthread_mutex_unlock(&r->mu);
	if (r->started)
		pthread_join(r->thread, NULL);
	service_set_repos(r->svc, NULL);
	repos_free(r->repos);
	rc_rotation_free(r->rotation);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->wake);
	free(r);
}
