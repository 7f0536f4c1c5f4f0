/*
 * Queue implementation: pending groups in arrival order (a doubly linked
 * list, each with the time it is due) with a hash index for coalescing, plus
 * one running slot per worker, under one mutex. A pending group is held
 * packed (gkey, ~100 bytes), so a replay of 100,000 journaled groups costs
 * about 10 MB here and constant time per push; a take walks past the
 * delayed retries ahead of the first due group. Timed waits use the
 * monotonic clock.
 */
#include "server/queue/queue.h"

#include <pthread.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/base/log.h"
#include "server/queue/gkey.h"

struct slot {
	struct gkey_link link;     /* in q->map (first member) */
	struct slot *prev, *next;  /* arrival order */
	long long due;     /* am_now_ms() from which it may run */
	unsigned attempt;  /* retries so far */
	char key[];        /* gkey of the group */
};

struct running {
	struct group g;
	unsigned attempt;
	int rerun;         /* an event arrived meanwhile */
	int woken;         /* queue_wake meanwhile, a retry is due at once */
};

struct queue {
	pthread_mutex_t mu;
	pthread_cond_t work;   /* pending changed, or stopping */
	pthread_cond_t idle;   /* something finished */
	struct slot *head, *tail;
	struct gkey_map map;   /* the pending slots by group */
	size_t n_pending;
	struct running *running;  /* one per worker */
	int *busy;
	size_t n_workers;
	pthread_t *threads;
	int stopping;          /* queue_stop: leave pending work alone */
	int draining;          /* queue_free without stop: finish what is due */
	queue_run_fn run;
	void *ctx;
};

static int
is_running(struct queue *q, const char *key)
{
	size_t i;

	for (i = 0; i < q->n_workers; i++)
		if (q->busy[i] && gkey_is(key, &q->running[i].g))
			return 1;
	return 0;
}

/* g's pending slot, or NULL. */
static struct slot *
find(struct queue *q, const struct group *g)
{
	return (struct slot *)*gkey_map_find(&q->map, g, group_hash(g));
}

/* Out of the list and the index, and freed. */
static void
unlink_slot(struct queue *q, struct slot *e)
{
	gkey_map_remove(&q->map, &e->link);
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		q->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		q->tail = e->prev;
	q->n_pending--;
	free(e);
}

/*
 * Take the first pending group that is due and not already running. When
 * none is, *wake gets the earliest due time of a delayed one (0: none).
 */
static int
take(struct queue *q, struct group *g, unsigned *attempt, long long *wake)
{
	long long now = am_now_ms();
	struct slot *e;

	*wake = 0;
	for (e = q->head; e != NULL; e = e->next) {
		if (e->due > now) {
			if (*wake == 0 || e->due < *wake)
				*wake = e->due;
			continue;
		}
		if (is_running(q, e->key))
			continue;
		memset(g, 0, sizeof(*g));
		(void)gkey_get(e->key, g);
		*attempt = e->attempt;
		unlink_slot(q, e);
		return 1;
	}
	return 0;
}

static void
wait_until_ms(pthread_cond_t *cv, pthread_mutex_t *mu, long long when)
{
	struct timespec ts;
	long long now = am_now_ms(), left = when - now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (left < 0)
		left = 0;
	ts.tv_sec += (time_t)(left / 1000);
	ts.tv_nsec += (long)(left % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	(void)pthread_cond_timedwait(cv, mu, &ts);
}

/*
 * Add a pending slot, or coalesce with the one already there: a new event
 * brings a parked retry forward to its own due time and starts the attempt
 * count again (what it announces is new content, not the fault retried).
 * Called with mu held.
 */
static int
add_pending(struct queue *q, const struct group *g, long long due, unsigned attempt)
{
	uint32_t h = group_hash(g);
	struct gkey_link **at = gkey_map_find(&q->map, g, h);
	struct slot *e = (struct slot *)*at;

	if (e != NULL) {
		e->attempt = attempt;
		if (due < e->due) {
			e->due = due;
			pthread_cond_signal(&q->work);   /* a worker may sleep until the old due time */
		}
		return 0;
	}
	e = xcalloc(1, sizeof(*e) + gkey_size(g));
	(void)gkey_put(e->key, g);
	e->due = due;
	e->attempt = attempt;
	gkey_map_add(&q->map, at, &e->link, h);
	e->prev = q->tail;
	if (q->tail != NULL)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	q->n_pending++;
	pthread_cond_signal(&q->work);
	return 1;
}

static void *
worker(void *arg)
{
	struct queue *q = arg;
	struct running job;
	long long wake;
	long delay;
	size_t me;

	pthread_mutex_lock(&q->mu);
	for (me = 0; me < q->n_workers; me++)
		if (pthread_equal(q->threads[me], pthread_self()))
			break;
	for (;;) {
		for (;;) {
			if (q->stopping)
				goto out;
			if (take(q, &job.g, &job.attempt, &wake))
				break;
			/* Draining: what is left is delayed, or runs on another worker after its pass. */
			if (q->draining)
				goto out;
			if (wake != 0)
				wait_until_ms(&q->work, &q->mu, wake);
			else
				pthread_cond_wait(&q->work, &q->mu);
		}
		job.rerun = job.woken = 0;
		q->running[me] = job;
		q->busy[me] = 1;
		for (;;) {
			q->running[me].rerun = 0;
			q->running[me].woken = 0;
			pthread_mutex_unlock(&q->mu);
			delay = q->run(q->ctx, &job.g, job.attempt);
			pthread_mutex_lock(&q->mu);
			if (delay >= 0) {
				/* Retry later; an event that came meanwhile waits with it. */
				if (!q->stopping && !q->draining)
					(void)add_pending(q, &job.g, am_now_ms() +
					    (q->running[me].woken ? 0 : delay), job.attempt + 1);
				break;
			}
			job.attempt = 0;
			if (!q->running[me].rerun || q->stopping)
				break;
		}
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
	pthread_condattr_t ca;
	size_t i;

	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->work, &ca);
	pthread_cond_init(&q->idle, &ca);
	pthread_condattr_destroy(&ca);
	q->n_workers = workers ? workers : 1;
	gkey_map_init(&q->map, offsetof(struct slot, key));
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
queue_push_after(struct queue *q, const struct group *g, long delay_ms)
{
	size_t i;
	int queued = 0;

	pthread_mutex_lock(&q->mu);
	for (i = 0; i < q->n_workers; i++) {
		if (q->busy[i] && group_equal(&q->running[i].g, g)) {
			/* Re-run after the current pass: it may have read old content. */
			q->running[i].rerun = 1;
			goto out;
		}
	}
	queued = add_pending(q, g, am_now_ms() + (delay_ms > 0 ? delay_ms : 0), 0);
out:
	pthread_mutex_unlock(&q->mu);
	return queued;
}

int
queue_push(struct queue *q, const struct group *g)
{
	return queue_push_after(q, g, 0);
}

int
queue_wake(struct queue *q, const struct group *g)
{
	struct slot *e;
	size_t i;
	int queued = 0;

	pthread_mutex_lock(&q->mu);
	for (i = 0; i < q->n_workers; i++) {
		if (q->busy[i] && group_equal(&q->running[i].g, g)) {
			q->running[i].rerun = 1;
			q->running[i].woken = 1;
			goto out;
		}
	}
	if ((e = find(q, g)) != NULL) {
		e->due = am_now_ms();   /* the retry's attempt count stays */
		pthread_cond_signal(&q->work);
		goto out;
	}
	queued = add_pending(q, g, am_now_ms(), 0);
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
	while ((q->n_pending > 0 && !q->stopping) || busy_count(q) > 0)
		pthread_cond_wait(&q->idle, &q->mu);
	pthread_mutex_unlock(&q->mu);
}

size_t
queue_stop(struct queue *q, long timeout_ms)
{
	long long deadline = am_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	size_t n;

	pthread_mutex_lock(&q->mu);
	q->stopping = 1;
	pthread_cond_broadcast(&q->work);
	pthread_cond_broadcast(&q->idle);
	while ((n = busy_count(q)) > 0 && am_now_ms() < deadline)
		wait_until_ms(&q->idle, &q->mu, deadline);
	pthread_mutex_unlock(&q->mu);
	return n;
}

void
queue_free(struct queue *q)
{
	size_t i, dropped;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->draining = 1;
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->mu);
	for (i = 0; i < q->n_workers; i++)
		pthread_join(q->threads[i], NULL);
	dropped = q->n_pending;
	if (dropped > 0 && !q->stopping)
		log_kv(LOG_WARN, "queue stopped", LOG_I("dropped_retries", dropped),
		    LOG_S("detail", "delayed retries not run"));
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->idle);
	while (q->head != NULL)
		unlink_slot(q, q->head);
	gkey_map_release(&q->map);
	free(q->running);
	free(q->busy);
	free(q->threads);
	free(q);
}
