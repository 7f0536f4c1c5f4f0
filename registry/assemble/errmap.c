/*
 * The one reading of an error code for the assembly. The same code means
 * different things depending on where it came back: AM_EINVAL from a
 * source's manifest is content the rule refuses, from a HEAD it is an
 * exchange the client could not make sense of (worth retrying), from a PUT
 * a request the registry will never take. Every phase asks here.
 */
#include "registry/assemble/job.h"


struct job_verdict
job_errmap(enum job_phase phase, enum am_err rc)
{
	struct job_verdict v = { ASM_FAILED, rc };

	/*
	 * A read the registry's policy refuses is "not yet": resolve.c makes the
	 * group wait for such a source; anywhere else (a copy's read, the
	 * target's) the run is tried again later.
	 */
	if (rc == AM_EPOLICY) {
		if (phase == PHASE_READ)
			v.outcome = ASM_WAITING;
		else
			v.err = AM_ETRANSIENT;
		return v;
	}
	switch (phase) {
	case PHASE_READ:
		break;   /* as the reads said: content faults are EINVAL or EMISMATCH */
	case PHASE_COMPARE:
		if (rc == AM_EINVAL)
			v.err = AM_ETRANSIENT;
		break;
	case PHASE_PUT:
		if (rc == AM_EINVAL)
			v.err = AM_EDENIED;
		break;
	case PHASE_CHILD_SIG:
		if (rc == AM_EINVAL)
			v.err = AM_EMISMATCH;   /* a signature that does not parse signs nothing */
		break;
	case PHASE_WRITES:
		return v;   /* what was written is correct on its own: a failure, never a refusal */
	case PHASE_SIGN:
		if (rc == AM_EINVAL || rc == AM_ENOTFOUND)
			v.err = AM_ETRANSIENT;   /* the index stands: the group runs again to sign it */
		return v;
	}
	/* Content contradicting the rule refuses; registry and network faults fail. */
	if (v.err == AM_EMISMATCH || v.err == AM_EINVAL)
		v.outcome = ASM_REFUSED;
	return v;
}

void
job_fail(struct asm_result *out, enum job_phase phase, enum am_err rc)
{
	struct job_verdict v = job_errmap(phase, rc);

	out->outcome = v.outcome;
	out->err = v.err;
}

void
job_fail_with(struct asm_result *out, enum job_phase phase, enum am_err rc, const char *err)
{
	job_fail(out, phase, rc);
	(void)am_fmt(out->detail, sizeof(out->detail), "%s", err);
}
