/*
 * The work queue between webhooks and assembly: a fixed pool of worker
 * threads, per-group serialisation (one group never assembles twice at once)
 * and coalescing (a group already waiting is not queued twice; a group that
 * is running when a new event arrives runs once more afterwards).
 */
#ifndef AM_QUEUE_H
#define AM_QUEUE_H

#include <stddef.h>
#include "../config/rule.h"

struct queue;

typedef void (*queue_run_fn)(void *ctx, const struct group *g);

/* Start `workers` threads calling run(ctx, group) for each job. */
struct queue *queue_new(size_t workers, queue_run_fn run, void *ctx);

/* Queue a group; returns 1 when newly queued, 0 when coalesced with pending work. */
int queue_push(struct queue *q, const struct group *g);

/* Jobs queued or running. */
size_t queue_depth(struct queue *q);

/* Block until nothing is queued or running. */
void queue_wait_idle(struct queue *q);

/* Finish queued work, stop the threads, free. Accepts NULL. */
void queue_free(struct queue *q);

#endif
