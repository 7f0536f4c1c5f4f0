/*
 * Assembly of one group: read every architecture's source image, check its
 * platform against the rule, build the index and publish it when it is new.
 */
#ifndef AM_ASSEMBLE_H
#define AM_ASSEMBLE_H

#include "registry/assemble/api.h"
#include "registry/assemble/plan.h"
#include "registry/oci/index.h"

enum asm_outcome {
	ASM_PUBLISHED,   /* index pushed */
	ASM_UNCHANGED,   /* target already had this exact index */
	ASM_WAITING,     /* some architecture is not pushed yet, or not readable yet (blocked) */
	ASM_REFUSED,     /* content contradicts the rule: nothing published */
	ASM_FAILED,      /* registry or network fault */
	ASM_DRY_RUN,     /* index built, not pushed */
};

const char *asm_outcome_name(enum asm_outcome o);

/* Which project policy of Harbor refused a read (from Harbor's own message). */
enum asm_policy {
	ASM_POLICY_OTHER,           /* a 412 policy refusal without words we know (a HEAD has none) */
	ASM_POLICY_VULNERABILITY,   /* "Prevent vulnerable images from running": unscanned, scanning, vulnerable */
	ASM_POLICY_COSIGN,          /* "Cosign" signature required */
	ASM_POLICY_NOTATION,        /* "Notation" signature required */
};
#define ASM_POLICIES 4

/* "vulnerability", "cosign", "notation", "other": stable, for logs, metrics and /status. */
const char *asm_policy_name(enum asm_policy p);
/* The policy Harbor's refusal message speaks of. */
enum asm_policy asm_policy_of(const char *message);

/*
 * A child the registry refuses to let archmerge read yet: the group waits
 * for it like for a missing architecture, and is looked at again.
 */
#define ASM_MAX_BLOCKED 8
struct asm_block {
	enum asm_policy policy;
	char arch[32];              /* the rule's architecture name */
	char repo[NAME_MAX_REPO];
	char tag[NAME_MAX_TAG];     /* the tag read ("" when the refused read was by digest) */
	char digest[80];            /* the manifest refused; "" when a refused tag hides it */
	char message[320];          /* the registry's own words ("" when none came) */
};

/* One architecture found present (for status pages): what was read, from where. */
#define ASM_MAX_PRESENT 16
struct asm_present {
	char arch[32];              /* the rule's architecture name */
	char source[NAME_MAX_REPO + NAME_MAX_TAG + 2];  /* repo:tag read; "" when taken from the target */
	char digest[80];            /* image manifest */
	char platform[96];          /* read from the image config, "os/arch[/variant]"; "" unknown */
	int rejected;               /* read but refused: the tag that caused a refusal */
};

struct asm_result {
	enum asm_outcome outcome;
	enum am_err err;            /* for ASM_FAILED / ASM_REFUSED */
	char target[NAME_MAX_REPO + NAME_MAX_TAG + 2];  /* repo:tag */
	char digest[80];            /* index digest when built */
	char detail[1024];          /* what is missing, why refused or failed; what else was done */
	struct index_doc doc;       /* the built index (owned; asm_result_clear frees) */
	long retry_after_ms;        /* ASM_FAILED: the registry's Retry-After (429/503), else -1 */
	/* What this run wrote besides the target tag (for logs and metrics). */
	unsigned manifests_copied;  /* children PUT into the target repository */
	unsigned blobs_mounted;     /* cross-repository mounts (201) */
	unsigned blobs_uploaded;    /* streamed copies (mount answered 202) */
	unsigned tags_pushed;       /* extra tags and copy tags written */
	unsigned extra_at_index;    /* bit i: the plan's extra tag i names this index after the run
	                               (written now or already in place; a floating tag left at a
	                               higher version, or handed over to one, has its bit clear) */
	unsigned tags_removed;      /* per-architecture tags removed by cleanup */
	int cleanup_failed;         /* cleanup left tags behind (detail says why) */
	/* Architectures resolved before the run ended (first ASM_MAX_PRESENT), rule order,
	   and the one whose content was refused (rejected set). */
	struct asm_present present[ASM_MAX_PRESENT];
	size_t n_present;
	unsigned signatures_made;   /* index signatures written (sign.key_file) */
	int unsigned_child;         /* ASM_REFUSED by require_signed_children: */
	char unsigned_repo[NAME_MAX_REPO];   /* ... the child's repository */
	char unsigned_digest[80];            /* ... and digest (its .sig push re-triggers) */
	/* ASM_WAITING because the registry's policy refused reading these (rule order). */
	struct asm_block blocked[ASM_MAX_BLOCKED];
	size_t n_blocked;
};

/*
 * Assemble the group plan p describes (config/plan.h makes it from a
 * rule). dry_run builds and compares but never pushes. Never publishes
 * unless every required architecture is present and matches its expected
 * platform. Writes happen last, in this
 * order: children copied into the target repository (when they live
 * elsewhere), extra tags, the target tag; then cleanup.
 */
void assemble(const struct reg_api *api, const struct plan *p, int dry_run, struct asm_result *out);
void asm_result_clear(struct asm_result *res);

#endif
