/*
 * Private to registry/assemble/: the state of one assembly and the verbs its
 * phase files share. Nothing outside this folder includes it (tests may).
 * The phases, in the order assemble.c runs them: resolve.c reads every
 * architecture's chain, build.c makes the index, publish.c compares and
 * writes, recheck.c asks after the PUT whether the sources stood still;
 * result.c fills what the caller reads.
 */
#ifndef AM_ASSEMBLE_JOB_H
#define AM_ASSEMBLE_JOB_H

#include <stdatomic.h>
#include <stddef.h>

#include "registry/assemble/assemble.h"
#include "registry/oci/manifest.h"

#define ASM_MAX_ATTS 4        /* attestations kept per image (buildx writes one) */

/* One architecture's contribution to the index. */
struct kid {
	int present;
	int from_target;                  /* taken from the published index: its tag was cleaned up */
	char src_repo[NAME_MAX_REPO];
	char src_tag[NAME_MAX_TAG];
	char tag_digest[80];              /* the artifact src_tag pointed at (what cleanup untags) */
	struct descriptor image;          /* platform read from the image config */
	struct descriptor atts[ASM_MAX_ATTS];
	size_t n_atts;
	struct image_info info;
	struct oci_facts ann;             /* the image manifest's own annotations */
	char *raw;                        /* the image manifest's bytes (owned), for a copy */
	size_t raw_len;
	struct asm_block block;           /* AM_EPOLICY: the read the registry refused */
};

/* One assembly: from the plan's reads to its last write. */
struct job {
	const struct reg_api *api;
	const struct plan *p;
	const char *repo;                 /* p->repo */
	const char *target_tag;           /* p->target_tag */
	struct kid *kids;                 /* p->n_archs of them, in the plan's order */
	struct manifest pub;              /* published index, read when a source tag is gone */
	int pub_state;                    /* 0 not read yet, 1 read, -1 absent or not an index */
	int moved;                        /* a source tag moved while this run read and wrote */
	/* floating.c: per floating extra tag, from the target repository's tag list */
	int listed;                       /* the list was read */
	char above[PLAN_MAX_EXTRA_TAGS][NAME_MAX_TAG];       /* the highest published version writing it */
	char above_tag[PLAN_MAX_EXTRA_TAGS][NAME_MAX_TAG];   /* ... and that version's target tag */
	int floated[PLAN_MAX_EXTRA_TAGS];                    /* this run let it move to its version */
	struct asm_result *out;
};

/* ---- assemble.c: the run ---- */

/*
 * One call of assemble(); its attempts share it. The phases talk to api:
 * the caller's verbs, noting in the run the longest Retry-After any reply
 * carried (for the caller's backoff). The reads run on several threads at
 * once, hence an atomic; nothing of it is shared with other runs.
 */
struct job_run {
	const struct reg_api *inner;      /* the caller's (borrowed) */
	struct reg_api api;               /* inner's verbs, noting; api.ctx is this run */
	atomic_long retry_after_ms;       /* -1: no reply carried one */
};

/* Set run up over inner (borrowed, outlives the run). Nothing to free. */
void job_run_init(struct job_run *run, const struct reg_api *inner);

/* Note r's Retry-After in run when it is the longest so far (any thread). */
void job_run_note(struct job_run *run, const struct reg_reply *r);

/* ---- resolve.c: the reads ---- */

/* One manifest HEAD (the target, read alongside the sources). */
struct head_job {
	const struct reg_api *api;
	const char *repo, *ref;
	struct reg_reply head;
	enum am_err rc;
	char err[768];
};

/* par_run job: j->head = HEAD j->repo:j->ref (j->rc, j->err). */
void job_head_run(void *j);

/*
 * Resolve every architecture of c->p into c->kids, target's HEAD alongside
 * (target set up by the caller). missing gets the required architectures
 * not pushed yet, absent the optional ones, comma-separated. AM_OK, or the
 * first fault in architecture order (err says which).
 */
enum am_err job_resolve(struct job *c, struct head_job *target, char *missing, size_t mlen,
    char *absent, size_t alen, char *err, size_t errlen);

/*
 * The index the target tag holds now, into c->pub (read once per run).
 * AM_OK: read; AM_ENOTFOUND: no target, or not an index; else a fault (err).
 * blk (NULL: none) is told when the registry's policy refuses the read.
 */
enum am_err job_read_published(struct job *c, struct asm_block *blk, char *err, size_t errlen);

/*
 * The waiting run's detail: "missing ..." first (reconcile reads it), then
 * each blocked child with the registry's words.
 */
void job_note_blocked(struct asm_result *out, const char *missing);

/* ---- build.c: the index ---- */

/* The index of the present children (and their attestations) into c->out->doc. */
enum am_err job_build(struct job *c, char *err, size_t errlen);

/* ---- publish.c: the writes ---- */

/*
 * Compare c->out->doc with the target (target: its HEAD, read alongside the
 * sources) and write what differs, the target tag last; then cleanup and
 * the index's signature. dry_run: compare only. Sets c->out's outcome;
 * c->moved when the sources moved under the PUT (recheck.c).
 */
void job_publish(struct job *c, const struct head_job *target, int dry_run);

/* ---- floating.c: tags several versions write ---- */

/*
 * May floating extra tag i (c->p->extra[i].floating) name this version? 0
 * when a higher version writing the same tag is published (its version in
 * above, "latest stays at 3.9.0"), else 1; -1 when the tag list failed
 * (*rc, err). The target repository's tags are listed once per run, and
 * only when asked.
 */
int job_floating_may_move(struct job *c, size_t i, char *above, size_t alen, enum am_err *rc,
    char *err, size_t errlen);

/*
 * After the target PUT: the floating tags this run moved, against a fresh
 * tag list. A higher version published meanwhile (another worker or
 * replica, whose own floating write may have come before this run's) gets
 * them back; else they are made to name this index. Faults are noted only:
 * the index is published.
 */
void job_floating_settle(struct job *c);

/* ---- recheck.c: after the PUT ---- */

/*
 * Does every source tag c read still name what it read (HEAD, a GET hashed
 * when the HEAD carries no digest)? 1 when one moved, or when a check failed
 * twice (unknown: assemble again); noted in the detail and logged. A tag
 * that is gone is not a move (0).
 */
int job_sources_moved(struct job *c);

/* ---- errmap.c: what an error code means, by where it came back ---- */

enum job_phase {
	PHASE_READ,       /* resolving the sources, building the index */
	PHASE_COMPARE,    /* a HEAD of the target, or of a tag before writing it */
	PHASE_PUT,        /* one manifest PUT */
	PHASE_WRITES,     /* the writes of a publish, taken together */
	PHASE_CHILD_SIG,  /* checking a child's signature (require_signed_children) */
	PHASE_SIGN,       /* signing the index now current */
};

/* What the run makes of code rc met in phase: its outcome and the code it reports. */
struct job_verdict {
	enum asm_outcome outcome;         /* ASM_REFUSED or ASM_FAILED */
	enum am_err err;
};
struct job_verdict job_errmap(enum job_phase phase, enum am_err rc);

/* out->outcome and out->err from job_errmap(phase, rc); the detail is the caller's. */
void job_fail(struct asm_result *out, enum job_phase phase, enum am_err rc);
/* The same, and the detail is err. */
void job_fail_with(struct asm_result *out, enum job_phase phase, enum am_err rc, const char *err);

/* ---- result.c: what the caller reads ---- */

/* Append "; text" to out->detail (truncation is harmless there). */
void job_note(struct asm_result *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The architectures found (and the one refused), for the status page: kept whatever the outcome. */
void job_note_present(const struct job *c);

#endif
