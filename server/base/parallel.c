/*
 * par_run: jobs[0] on the caller, each other job on a parked helper thread.
 * Helpers are started on first need and kept for the process's life, so a
 * run hands its jobs to threads already waiting instead of starting new
 * ones: on the shared 2-core machine a thread start took 297 us from
 * pthread_create to the thread running, a parked thread's wake-up 34 us
 * (medians; bench/thread_wake.c, docs/performance.md "Spaced arrivals").
 *
 * The helpers are a process-wide cache of idle threads, like glibc's cache
 * of thread stacks: no caller's state lives in them between runs, so they
 * are kept here instead of being passed around. Beyond PAR_HELPERS_MAX a
 * job gets a thread of its own for the run, as before the cache.
 */
#include "server/base/parallel.h"

#include <stdlib.h>

#include "server/base/common.h"

#define PAR_STACK (256 * 1024)   /* the jobs only wait on the network */
#define PAR_HELPERS_MAX 64

/* One par_run call: how many of its jobs are still out on helpers. */
struct par_batch {
	size_t left;
	pthread_cond_t done;
};

struct helper {
	pthread_cond_t wake;
	struct par_job *job;        /* handed by par_run; NULL while parked */
	struct par_batch *batch;
	struct helper *next_idle;
};

static pthread_mutex_t par_mu = PTHREAD_MUTEX_INITIALIZER;
static struct helper *par_idle;      /* parked helpers */
static size_t par_helpers;           /* helpers started so far */

static void *
helper_main(void *ud)
{
	struct helper *h = ud;
	struct par_job *j;

	pthread_mutex_lock(&par_mu);
	for (;;) {
		while (h->job == NULL)
			pthread_cond_wait(&h->wake, &par_mu);
		j = h->job;
		pthread_mutex_unlock(&par_mu);
		j->run(j->arg);
		pthread_mutex_lock(&par_mu);
		h->job = NULL;
		if (--h->batch->left == 0)
			pthread_cond_signal(&h->batch->done);
		h->batch = NULL;
		h->next_idle = par_idle;
		par_idle = h;
	}
	return NULL;
}

/* A detached helper already holding job j; NULL when none can be started. Called with par_mu held. */
static struct helper *
helper_start(struct par_job *j, struct par_batch *b)
{
	pthread_attr_t attr;
	pthread_t t;
	struct helper *h;
	int ok;

	if (par_helpers >= PAR_HELPERS_MAX || pthread_attr_init(&attr) != 0)
		return NULL;
	(void)pthread_attr_setstacksize(&attr, PAR_STACK);
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	h = xcalloc(1, sizeof(*h));
	pthread_cond_init(&h->wake, NULL);
	h->job = j;
	h->batch = b;
	ok = pthread_create(&t, &attr, helper_main, h) == 0;
	pthread_attr_destroy(&attr);
	if (!ok) {
		pthread_cond_destroy(&h->wake);
		free(h);
		return NULL;
	}
	par_helpers++;
	return h;
}

static void *
par_job_main(void *ud)
{
	struct par_job *j = ud;

	j->run(j->arg);
	return NULL;
}

/* No helper to be had: a thread of its own for this run (joined), or inline later. */
static void
own_thread(struct par_job *j)
{
	pthread_attr_t attr;
	int have_attr = pthread_attr_init(&attr) == 0;

	if (have_attr)
		(void)pthread_attr_setstacksize(&attr, PAR_STACK);
	j->started = pthread_create(&j->thread, have_attr ? &attr : NULL, par_job_main, j) == 0 ? 2 : 0;
	if (have_attr)
		pthread_attr_destroy(&attr);
}

void
par_run(struct par_job *jobs, size_t n)
{
	struct par_batch b;
	struct helper *h;
	size_t i;

	if (n == 0)
		return;
	b.left = 0;
	pthread_cond_init(&b.done, NULL);
	for (i = 1; i < n; i++) {
		jobs[i].started = 0;
		pthread_mutex_lock(&par_mu);
		if ((h = par_idle) != NULL) {
			par_idle = h->next_idle;
			h->next_idle = NULL;
			h->job = &jobs[i];
			h->batch = &b;
			pthread_cond_signal(&h->wake);
		} else {
			h = helper_start(&jobs[i], &b);
		}
		if (h != NULL) {
			jobs[i].started = 1;
			b.left++;
		}
		pthread_mutex_unlock(&par_mu);
		if (h == NULL)
			own_thread(&jobs[i]);
	}
	jobs[0].run(jobs[0].arg);
	for (i = 1; i < n; i++) {
		if (jobs[i].started == 2)
			pthread_join(jobs[i].thread, NULL);
		else if (jobs[i].started == 0)
			jobs[i].run(jobs[i].arg);
	}
	pthread_mutex_lock(&par_mu);
	while (b.left > 0)
		pthread_cond_wait(&b.done, &par_mu);
	pthread_mutex_unlock(&par_mu);
	pthread_cond_destroy(&b.done);
}

size_t
par_helpers_started(void)
{
	size_t n;

	pthread_mutex_lock(&par_mu);
	n = par_helpers;
	pthread_mutex_unlock(&par_mu);
	return n;
}
