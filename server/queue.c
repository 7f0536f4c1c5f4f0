/*
 * Queue implementation: a FIFO of pending groups plus a list of running
 * ones, under one mutex. Sizes here are hundreds to a few thousand groups,
 * so lookups are linear scans over compact arrays.
 */
#include "queue.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	struct group g;
	int rerun;        /* running slots: an event arrived meanwhile */
};

struct queue {
	pthread_mutex_t mu;
	pthread_cond_t work;   /* pending became non-empty, or stopping */
	pthread_cond_t idle;   /* something finished */
	struct slot *pending;
	size_t n_pending, cap_pending;
	struct slot *running;  /* one per worker */
	int *busy;
	size_t n_workers;
	pthread_t *threads;
	int stopping;
	queue_run_fn run;
	void *ctx;
};

static int
same_group(const struct group *a, const struct group *b)
{
	return a->rule == b->rule && strcmp(a->version, b->version) == 0 &&
	    strcmp(a->repo, b->repo) == 0 && strcmp(a->host, b->host) == 0;
}

static int
is_running(struct queue *q, const struct group *g)
{
	size_t i;

	for (i = 0; i < q->n_workers; i++)
		if (q->busy[i] && same_group(&q->running[i].g, g))
			return 1;
	return 0;
}

/* Take the first pending group that is not already running. */
static int
take(struct queue *q, struct group *out)
{
	size_t i;

	for (i = 0; i < q->n_pending; i++) {
		if (is_running(q, &q->pending[i].g))
			continue;
		*out = q->pending[i].g;
		memmove(&q->pending[i], &q->pending[i + 1], (q->n_pending - i - 1) * sizeof(struct slot));
		q->n_pending--;
		return 1;
	}
	return 0;
}

static void *
worker(void *arg)
{
	struct queue *q = arg;
	size_t me;
	struct group g;

	pthread_mutex_lock(&q->mu);
	for (me = 0; me < q->n_workers; me++)
		if (pthread_equal(q->threads[me], pthread_self()))
			break;
	for (;;) {
		while (!take(q, &g)) {
			if (q->stopping && q->n_pending == 0)
				goto out;
			pthread_cond_wait(&q->work, &q->mu);
		}
		q->running[me].g = g;
		q->running[me].rerun = 0;
		q->busy[me] = 1;
		do {
			q->running[me].rerun = 0;
			pthread_mutex_unlock(&q->mu);
			q->run(q->ctx, &g);
			pthread_mutex_lock(&q->mu);
		} while (q->running[me].rerun);
		q->busy[me] = 0;
		pthread_cond_broadcast(&q->idle);
		/* A group skipped while this one ran may now be takeable. */
		pthread_cond_broadcast(&q->work);
	}
out:
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

struct queue *
queue_new(size_t workers, queue_run_fn run, void *ctx)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	size_t i;

	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->idle, NULL);
	q->n_workers = workers ? workers : 1;
	q->running = xcalloc(q->n_workers, sizeof(*q->running));
	q->busy = xcalloc(q->n_workers, sizeof(*q->busy));
	q->threads = xcalloc(q->n_workers, sizeof(*q->threads));
	q->run = run;
	q->ctx = ctx;
	/* Hold the lock so workers see every thread id before looking theirs up. */
	pthread_mutex_lock(&q->mu);
	for (i = 0; i < q->n_workers; i++)
		if (pthread_create(&q->threads[i], NULL, worker, q) != 0)
			abort();
	pthread_mutex_unlock(&q->mu);
	return q;
}

int
queue_push(struct queue *q, const struct group *g)
{
	size_t i;
	int queued = 0;

	pthread_mutex_lock(&q->mu);
	for (i = 0; i < q->n_workers; i++) {
		if (q->busy[i] && same_group(&q->running[i].g, g)) {
			/* Re-run after the current pass: it may have read old content. */
			q->running[i].rerun = 1;
			goto out;
		}
	}
	for (i = 0; i < q->n_pending; i++)
		if (same_group(&q->pending[i].g, g))
			goto out;
	if (q->n_pending == q->cap_pending) {
		q->cap_pending = q->cap_pending ? q->cap_pending * 2 : 64;
		q->pending = xrealloc(q->pending, q->cap_pending * sizeof(*q->pending));
	}
	q->pending[q->n_pending].g = *g;
	q->pending[q->n_pending].rerun = 0;
	q->n_pending++;
	queued = 1;
	pthread_cond_signal(&q->work);
out:
	pthread_mutex_unlock(&q->mu);
	return queued;
}

static size_t
busy_count(struct queue *q)
{
	size_t i, n = 0;

	for (i = 0; i < q->n_workers; i++)
		n += (size_t)q->busy[i];
	return n;
}

size_t
queue_depth(struct queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->mu);
	n = q->n_pending + busy_count(q);
	pthread_mutex_unlock(&q->mu);
	return n;
}

void
queue_wait_idle(struct queue *q)
{
	pthread_mutex_lock(&q->mu);
	while (q->n_pending > 0 || busy_count(q) > 0)
		pthread_cond_wait(&q->idle, &q->mu);
	pthread_mutex_unlock(&q->mu);
}

void
queue_free(struct queue *q)
{
	size_t i;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->stopping = 1;
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->mu);
	for (i = 0; i < q->n_workers; i++)
		pthread_join(q->threads[i], NULL);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->idle);
	free(q->pending);
	free(q->running);
	free(q->busy);
	free(q->threads);
	free(q);
}
