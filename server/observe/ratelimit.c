/*
 * A fixed window per interval. The summary keeps at most SLOTS distinct
 * (reason, address) pairs with their counts; further pairs go to one
 * "other" count, so a flood from many addresses costs a bounded table and
 * a bounded line.
 */
#include "server/observe/ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/common.h"

#define SLOTS 8

struct slot {
	char reason[24];
	char addr[48];
	unsigned long long n;
};

struct ratelimit {
	pthread_mutex_t lock;
	long interval_ms;
	int burst;
	long long window_start;
	int logged;                      /* individually logged in this window */
	unsigned long long suppressed;   /* counted only */
	unsigned long long other;        /* suppressed that found no slot */
	struct slot slots[SLOTS];
	size_t n_slots;
};

struct ratelimit *
ratelimit_new(long interval_ms, int burst)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));

	pthread_mutex_init(&rl->lock, NULL);
	rl->interval_ms = interval_ms;
	rl->burst = burst;
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

static void
count(struct ratelimit *rl, const char *reason, const char *addr)
{
	size_t i;

	rl->suppressed++;
	for (i = 0; i < rl->n_slots; i++)
		if (strcmp(rl->slots[i].reason, reason) == 0 && strcmp(rl->slots[i].addr, addr) == 0) {
			rl->slots[i].n++;
			return;
		}
	if (rl->n_slots == SLOTS) {
		rl->other++;
		return;
	}
	(void)am_fmt(rl->slots[i].reason, sizeof(rl->slots[i].reason), "%s", reason);
	(void)am_fmt(rl->slots[i].addr, sizeof(rl->slots[i].addr), "%s", addr);
	rl->slots[i].n = 1;
	rl->n_slots++;
}

/* Under lock: when the window is over, render its summary (if any) and start a new one. */
static int
roll(struct ratelimit *rl, long long now_ms, char *summary, size_t len)
{
	size_t i, off;
	int have = 0;

	if (now_ms - rl->window_start < rl->interval_ms)
		return 0;
	if (rl->suppressed > 0 && len > 0) {
		(void)am_fmt(summary, len, "%llu suppressed in %ld ms: ", rl->suppressed, rl->interval_ms);
		for (i = 0; i < rl->n_slots; i++) {
			off = strlen(summary);
			(void)am_fmt(summary + off, len - off, "%s%s %s %llu", i ? ", " : "",
			    rl->slots[i].reason, rl->slots[i].addr, rl->slots[i].n);
		}
		off = strlen(summary);
		if (rl->other > 0)
			(void)am_fmt(summary + off, len - off, ", other %llu", rl->other);
		have = 1;
	}
	rl->window_start = now_ms;
	rl->logged = 0;
	rl->suppressed = rl->other = 0;
	rl->n_slots = 0;
	return have;
}

int
ratelimit_hit(struct ratelimit *rl, const char *reason, const char *addr, long long now_ms,
    char *summary, size_t len, int *has_summary)
{
	int log_it;

	pthread_mutex_lock(&rl->lock);
	*has_summary = roll(rl, now_ms, summary, len);
	log_it = rl->logged < rl->burst;
	if (log_it)
		rl->logged++;
	else
		count(rl, reason, addr);
	pthread_mutex_unlock(&rl->lock);
	return log_it;
}

int
ratelimit_flush(struct ratelimit *rl, long long now_ms, char *summary, size_t len)
{
	int have;

	pthread_mutex_lock(&rl->lock);
	have = rl->suppressed > 0 ? roll(rl, now_ms, summary, len) : 0;
	pthread_mutex_unlock(&rl->lock);
	return have;
}
