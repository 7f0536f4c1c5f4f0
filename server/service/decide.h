/*
 * What follows one assembly run of a group, as a pure function so that the
 * backoff and the order "journal done only when nothing follows" can be
 * unit-tested without threads, a registry or a journal file.
 */
#ifndef AM_SERVICE_DECIDE_H
#define AM_SERVICE_DECIDE_H

#include <stdint.h>
#include "registry/assemble/assemble.h"

/* Looks again at a waiting group (short backoff) before leaving it to the next event. */
#define WAITING_RECHECKS 2

/*
 * A group whose children the registry's policy will not let be read yet
 * (Harbor scanning, vulnerable, unsigned) is looked at again for as long as
 * it stays so: from 5 s, doubling, at most once a minute. Its webhooks
 * (a scan completed, a signature pushed) cut the wait short.
 */
#define BLOCKED_RETRY_INITIAL_MS 5000
#define BLOCKED_RETRY_MAX_MS 60000

struct run_decision {
	long retry_ms;          /* >= 0: run the group again after this long; -1: no retry */
	int left_in_journal;    /* shutting down: the journal keeps the group for the next start */
	int mark_done;          /* journal_done(seq): the group needs nothing more */
};

/*
 * Exponential backoff with jitter: the step doubles from initial_ms per
 * attempt up to max_ms, the result is half to all of the step, never below
 * retry_after_ms (the registry's Retry-After, -1: none) unless that is above
 * max_ms: the policy's maximum bounds every wait. seed: rand_r state.
 */
long backoff_ms(long initial_ms, long max_ms, unsigned attempt, long retry_after_ms, unsigned *seed);

/*
 * After run `attempt` (0-based) of a group whose latest journal record was
 * seq (0: not journaled) ended with res: a transient failure is retried
 * (or, while stopping with a journal, left in it); a group still waiting is
 * looked at again WAITING_RECHECKS times, one blocked by the registry's
 * policy until it is not (BLOCKED_RETRY_*, or left in the journal while
 * stopping); anything else is done.
 */
void run_decide(const struct asm_result *res, unsigned attempt, int stopping, int journaled,
    uint64_t seq, long initial_ms, long max_ms, unsigned *seed, struct run_decision *out);

#endif
