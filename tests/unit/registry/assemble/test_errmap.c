/*
 * Unit tests: registry/assemble/errmap.c, the one reading of an error code
 * by the phase it came back in. The reference below is what the six sites
 * of the assembly each wrote out for themselves before (transcribed), so
 * the table proves the move changed no outcome.
 */
#include "tests/unit/harness.h"

#include "registry/assemble/job.h"

static struct job_verdict
classify(enum am_err rc)
{
	struct job_verdict v = { (rc == AM_EMISMATCH || rc == AM_EINVAL) ? ASM_REFUSED : ASM_FAILED, rc };

	return v;
}

static struct job_verdict
reference(enum job_phase ph, enum am_err rc)
{
	struct job_verdict v = { ASM_FAILED, rc };

	switch (ph) {
	case PHASE_READ:        /* the reads and the build: outcome by the code */
		return classify(rc);
	case PHASE_COMPARE:     /* target HEAD, extra tags when unchanged, push_tag's HEAD */
		return classify(rc == AM_EINVAL ? AM_ETRANSIENT : rc);
	case PHASE_PUT:         /* push_tag's PUT (the code only) */
		return classify(rc == AM_EINVAL ? AM_EDENIED : rc);
	case PHASE_WRITES:      /* the writes of a publish: always failed, code as is */
		return v;
	case PHASE_CHILD_SIG:   /* children_signed */
		return classify(rc == AM_EINVAL ? AM_EMISMATCH : rc);
	case PHASE_SIGN:        /* sign_current: always failed */
		v.err = rc == AM_EINVAL || rc == AM_ENOTFOUND ? AM_ETRANSIENT : rc;
		return v;
	}
	return v;
}

static void
run_tests(void)
{
	int ph, rc, same = 1;
	struct asm_result out;
	struct job_verdict v;

	for (ph = PHASE_READ; ph <= PHASE_SIGN; ph++)
		for (rc = AM_ENOTFOUND; rc <= AM_EIO; rc++) {
			struct job_verdict want = reference((enum job_phase)ph, (enum am_err)rc);
			v = job_errmap((enum job_phase)ph, (enum am_err)rc);
			if (v.outcome != want.outcome || v.err != want.err) {
				same = 0;
				fprintf(stderr, "phase %d code %s: %s/%s, expected %s/%s\n", ph,
				    am_strerror((enum am_err)rc), asm_outcome_name(v.outcome),
				    am_strerror(v.err), asm_outcome_name(want.outcome), am_strerror(want.err));
			}
		}
	CHECK(same);
	/* A policy refusal: the reads wait, anywhere else the run is tried again. */
	v = job_errmap(PHASE_READ, AM_EPOLICY);
	CHECK(v.outcome == ASM_WAITING && v.err == AM_EPOLICY);
	for (ph = PHASE_COMPARE; ph <= PHASE_SIGN; ph++) {
		v = job_errmap((enum job_phase)ph, AM_EPOLICY);
		CHECK(v.outcome == ASM_FAILED && v.err == AM_ETRANSIENT);
	}

	/* The reading of AM_EINVAL, phase by phase, spelled out. */
	v = job_errmap(PHASE_READ, AM_EINVAL);
	CHECK(v.outcome == ASM_REFUSED && v.err == AM_EINVAL);          /* a manifest that does not parse */
	v = job_errmap(PHASE_COMPARE, AM_EINVAL);
	CHECK(v.outcome == ASM_FAILED && v.err == AM_ETRANSIENT);       /* a reply not understood: retry */
	v = job_errmap(PHASE_PUT, AM_EINVAL);
	CHECK(v.outcome == ASM_FAILED && v.err == AM_EDENIED);          /* never taken, do not retry */
	v = job_errmap(PHASE_WRITES, AM_EINVAL);
	CHECK(v.outcome == ASM_FAILED && v.err == AM_EINVAL);
	v = job_errmap(PHASE_CHILD_SIG, AM_EINVAL);
	CHECK(v.outcome == ASM_REFUSED && v.err == AM_EMISMATCH);       /* a broken signature signs nothing */
	v = job_errmap(PHASE_SIGN, AM_EINVAL);
	CHECK(v.outcome == ASM_FAILED && v.err == AM_ETRANSIENT);
	v = job_errmap(PHASE_SIGN, AM_ENOTFOUND);
	CHECK(v.outcome == ASM_FAILED && v.err == AM_ETRANSIENT);
	/* A mismatch refuses while reading, fails among the writes. */
	CHECK(job_errmap(PHASE_READ, AM_EMISMATCH).outcome == ASM_REFUSED);
	CHECK(job_errmap(PHASE_WRITES, AM_EMISMATCH).outcome == ASM_FAILED);
	CHECK(job_errmap(PHASE_READ, AM_ETRANSIENT).outcome == ASM_FAILED);

	memset(&out, 0, sizeof(out));
	job_fail_with(&out, PHASE_COMPARE, AM_EINVAL, "HEAD x:1: token reply: no token");
	CHECK(out.outcome == ASM_FAILED && out.err == AM_ETRANSIENT);
	CHECK_STR(out.detail, "HEAD x:1: token reply: no token");
	job_fail(&out, PHASE_CHILD_SIG, AM_EINVAL);
	CHECK(out.outcome == ASM_REFUSED && out.err == AM_EMISMATCH);
	CHECK_STR(out.detail, "HEAD x:1: token reply: no token");       /* detail is the caller's */
}

TEST_MAIN("errmap")
