/* The service's decision after a run: backoff bounds and when the journal may say done. */
#include "tests/unit/harness.h"

#include "server/service/decide.h"

static struct asm_result
result(enum asm_outcome o, enum am_err e, long retry_after)
{
	struct asm_result r;

	memset(&r, 0, sizeof(r));
	r.outcome = o;
	r.err = e;
	r.retry_after_ms = retry_after;
	return r;
}

static void
test_backoff(void)
{
	unsigned seed = 7, a;
	long v;
	int i;

	for (a = 0; a < 12; a++) {
		long step = 500L << (a < 8 ? a : 8);
		if (step > 60000)
			step = 60000;
		for (i = 0; i < 200; i++) {
			v = backoff_ms(500, 60000, a, -1, &seed);
			CHECK(v >= step / 2 && v <= step);
		}
	}
	/* Retry-After is a floor up to max_ms; above it (accepted up to 24 h) max_ms bounds the wait. */
	CHECK(backoff_ms(500, 60000, 0, 30000, &seed) == 30000);
	CHECK(backoff_ms(500, 60000, 0, 90000, &seed) == 60000);
	CHECK(backoff_ms(500, 60000, 0, 24L * 3600 * 1000, &seed) == 60000);
	CHECK(backoff_ms(500, 60000, 3, 100, &seed) >= 2000);
}

static void
test_decisions(void)
{
	struct run_decision d;
	struct asm_result r;
	unsigned seed = 1;

	/* A transient fault is retried and the journal keeps the group. */
	r = result(ASM_FAILED, AM_ETRANSIENT, -1);
	run_decide(&r, 0, 0, 1, 42, 500, 60000, &seed, &d);
	CHECK(d.retry_ms >= 250 && d.retry_ms <= 500 && !d.left_in_journal && !d.mark_done);
	/* ... unless shutting down: left in the journal for the next start, never marked done. */
	run_decide(&r, 3, 1, 1, 42, 500, 60000, &seed, &d);
	CHECK(d.retry_ms < 0 && d.left_in_journal && !d.mark_done);
	/* Without a journal (assemble, reconcile --once) there is nothing to keep it: retried. */
	run_decide(&r, 0, 1, 0, 0, 500, 60000, &seed, &d);
	CHECK(d.retry_ms >= 0 && !d.left_in_journal && !d.mark_done);
	/* A permanent fault, a refusal, a publication: done (when journaled). */
	r = result(ASM_FAILED, AM_EDENIED, -1);
	run_decide(&r, 0, 0, 1, 42, 500, 60000, &seed, &d);
	CHECK(d.retry_ms < 0 && d.mark_done);
	r = result(ASM_REFUSED, AM_EMISMATCH, -1);
	run_decide(&r, 0, 0, 1, 42, 500, 60000, &seed, &d);
	CHECK(d.retry_ms < 0 && d.mark_done);
	r = result(ASM_PUBLISHED, AM_OK, -1);
	run_decide(&r, 0, 0, 1, 42, 500, 60000, &seed, &d);
	CHECK(d.retry_ms < 0 && d.mark_done);
	run_decide(&r, 0, 0, 1, 0, 500, 60000, &seed, &d);     /* not journaled: nothing to mark */
	CHECK(!d.mark_done);
	/* Waiting: looked at again WAITING_RECHECKS times, then left to the next event. */
	r = result(ASM_WAITING, AM_OK, -1);
	run_decide(&r, 0, 0, 1, 42, 500, 60000, &seed, &d);
	CHECK(d.retry_ms >= 0 && !d.mark_done);
	run_decide(&r, WAITING_RECHECKS - 1, 0, 1, 42, 500, 60000, &seed, &d);
	CHECK(d.retry_ms >= 0 && !d.mark_done);
	run_decide(&r, WAITING_RECHECKS, 0, 1, 42, 500, 60000, &seed, &d);
	CHECK(d.retry_ms < 0 && d.mark_done);
	run_decide(&r, 0, 1, 1, 42, 500, 60000, &seed, &d);    /* stopping: no recheck */
	CHECK(d.retry_ms < 0 && d.mark_done);
	/* A 429 with Retry-After: the wait honours it. */
	r = result(ASM_FAILED, AM_ETRANSIENT, 5000);
	run_decide(&r, 0, 0, 1, 42, 500, 60000, &seed, &d);
	CHECK(d.retry_ms == 5000);
	/* An hour's Retry-After parks the group for retry.max_ms at most. */
	r = result(ASM_FAILED, AM_ETRANSIENT, 3600L * 1000);
	run_decide(&r, 0, 0, 1, 42, 500, 60000, &seed, &d);
	CHECK(d.retry_ms == 60000 && !d.mark_done);
}

/* Blocked by the registry's policy: looked at again for as long as it lasts, never in a hot loop. */
static void
test_blocked(void)
{
	struct run_decision d;
	struct asm_result r;
	unsigned seed = 7, a;

	r = result(ASM_WAITING, AM_OK, -1);
	r.n_blocked = 1;
	run_decide(&r, 0, 0, 1, 42, 100, 1000, &seed, &d);
	CHECK(d.retry_ms >= BLOCKED_RETRY_INITIAL_MS / 2 && d.retry_ms <= BLOCKED_RETRY_INITIAL_MS);
	CHECK(!d.mark_done && !d.left_in_journal);
	/* Long after WAITING_RECHECKS: still looked at, at most once a minute, at least every 30 s. */
	for (a = WAITING_RECHECKS; a < 200; a += 13) {
		run_decide(&r, a, 0, 1, 42, 100, 1000, &seed, &d);
		CHECK(d.retry_ms >= 0 && d.retry_ms <= BLOCKED_RETRY_MAX_MS && !d.mark_done);
		if (a >= 5)
			CHECK(d.retry_ms >= BLOCKED_RETRY_MAX_MS / 2);
	}
	/* Stopping: the journal keeps it for the next start, not done. */
	run_decide(&r, 4, 1, 1, 42, 100, 1000, &seed, &d);
	CHECK(d.retry_ms < 0 && d.left_in_journal && !d.mark_done);
}

TEST_MAIN("decide")

static void
run_tests(void)
{
	test_backoff();
	test_decisions();
	test_blocked();
}
