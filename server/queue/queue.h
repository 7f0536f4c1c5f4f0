/*
 * The work queue between webhooks and assembly: a fixed pool of worker
 * threads, per-group serialisation (one group never assembles twice at once)
 * and coalescing (a group already waiting is not queued twice; a group that
 * is running when a new event arrives runs once more afterwards). A job may
 * ask to run again after a delay (retry with backoff); it then waits in the
 * queue without holding a worker.
 */
#ifndef AM_QUEUE_H
#define AM_QUEUE_H

#include <stddef.h>
#include "config/rule.h"

struct queue;

/*
 * One run of a group. attempt counts the retries before this run (0 for a
 * fresh event). Returns a negative value when the group is finished, or the
 * delay in ms after which it must run again.
 */
typedef long (*queue_run_fn)(void *ctx, const struct group *g, unsigned attempt);

/* Start `workers` threads calling run(ctx, group, attempt) for each job. */
struct queue *queue_new(size_t workers, queue_run_fn run, void *ctx);

/*
 * Queue a group; returns 1 when newly queued, 0 when coalesced with pending
 * work. A group waiting for a retry is brought forward to now and its
 * attempt count starts again: a push never waits behind a parked backoff
 * (how long a backoff may be is retry.max_ms, Retry-After included).
 */
int queue_push(struct queue *q, const struct group *g);

/*
 * Queue a group to run now, cutting short a delayed retry it waits in (its
 * attempt count stays): what it waited for has happened (a child scanned or
 * signed). Running: it runs again at once after this pass. Same return.
 */
int queue_wake(struct queue *q, const struct group *g);

/* Queue a group to run no earlier than delay_ms from now; same coalescing
 * (a pending group due sooner keeps its due time). */
int queue_push_after(struct queue *q, const struct group *g, long delay_ms);

/* Jobs queued (due or delayed) or running. */
size_t queue_depth(struct queue *q);

/* Block until nothing is queued or running (delayed retries included). */
void queue_wait_idle(struct queue *q);

/*
 * Stop taking jobs: queued ones are left alone (the journal keeps them).
 * Waits up to timeout_ms for running jobs; returns how many still run.
 * May be called again to wait longer.
 */
size_t queue_stop(struct queue *q, long timeout_ms);

/*
 * Without a queue_stop before: run the jobs that are due, drop delayed
 * retries. Then stop the threads (waiting for running jobs) and free.
 * Accepts NULL.
 */
void queue_free(struct queue *q);

#endif
