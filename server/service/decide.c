#include "server/service/decide.h"

#include <stdlib.h>

long
backoff_ms(long initial_ms, long max_ms, unsigned attempt, long retry_after_ms, unsigned *seed)
{
	long long step = initial_ms;
	unsigned i;

	for (i = 0; i < attempt && step < max_ms; i++)
		step *= 2;
	if (step > max_ms)
		step = max_ms;
	step = step / 2 + (long long)(rand_r(seed) % (int)(step / 2 + 1));
	/* The registry's Retry-After (up to 24 h) lengthens the wait up to max_ms, never beyond. */
	if (retry_after_ms > step)
		step = retry_after_ms < max_ms ? retry_after_ms : max_ms;
	return (long)step;
}

void
run_decide(const struct asm_result *res, unsigned attempt, int stopping, int journaled,
    uint64_t seq, long initial_ms, long max_ms, unsigned *seed, struct run_decision *out)
{
	out->retry_ms = -1;
	out->left_in_journal = 0;
	if (res->outcome == ASM_FAILED && res->err == AM_ETRANSIENT) {
		if (stopping && journaled)
			out->left_in_journal = 1;
		else
			out->retry_ms = backoff_ms(initial_ms, max_ms, attempt, res->retry_after_ms, seed);
	} else if (res->outcome == ASM_WAITING && res->n_blocked > 0) {
		/* Not yet readable: neither a fault nor done; the journal keeps it pending. */
		if (stopping && journaled)
			out->left_in_journal = 1;
		else if (!stopping)
			out->retry_ms = backoff_ms(BLOCKED_RETRY_INITIAL_MS, BLOCKED_RETRY_MAX_MS, attempt,
			    -1, seed);
	} else if (res->outcome == ASM_WAITING && attempt < WAITING_RECHECKS && !stopping) {
		/* distribution sends a manifest push's notification before it links
		 * the tag: the very tag of the hint may be missing for a moment. */
		out->retry_ms = backoff_ms(initial_ms, max_ms, attempt, -1, seed);
	}
	out->mark_done = out->retry_ms < 0 && !out->left_in_journal && seq > 0;
}
