/*
 * Which rule claims a pushed tag: the one answer the webhook (Harbor payloads
 * and distribution envelopes), the reconcile pass and the assemble command
 * share. A tag is a rule's source (a per-architecture tag feeding a group),
 * one of archmerge's own outputs, or nobody's, with a reason from one table.
 */
#ifndef AM_CLAIM_H
#define AM_CLAIM_H

#include "config/config.h"
#include "config/rule.h"

enum claim_kind {
	CLAIM_NONE,                  /* no rule wants it: reason says why */
	CLAIM_SOURCE,                /* a rule's per-architecture tag: rule, match */
	CLAIM_OUTPUT                 /* a rule's target, copy or extra tag: rule, output */
};

/*
 * Why a pushed manifest needs nothing. claim_tag() decides the first four
 * (and CLAIM_R_OUTPUT); the payload parsers and the webhook decide the rest
 * before asking, so that every ignore reason has its text and metric label
 * in one table.
 */
enum claim_reason {
	CLAIM_R_NONE = 0,            /* nothing against it: claimed as a source, or not decided yet */
	CLAIM_R_BY_DIGEST,           /* pushed without a tag */
	CLAIM_R_UNKNOWN_HOST,        /* the registry named is not configured */
	CLAIM_R_OUTPUT,              /* archmerge's own target, copy or extra tag */
	CLAIM_R_NO_RULE,             /* neither a source nor an output of any rule */
	CLAIM_R_NOT_PUSH,            /* the event is not a push */
	CLAIM_R_BLOB,                /* a blob, not a manifest, was pushed */
	CLAIM_R_INVALID,             /* an event of an envelope is malformed */
	CLAIM_R_OWN_WRITE,           /* the digest archmerge itself just wrote under the tag */
	CLAIM_R_SIGNATURE,           /* a signature tag no group waits for */
	CLAIM_R_SCAN,                /* a finished scan of an image no group waits for */
	CLAIM_R_WRONG_SECRET,        /* the registry named has its own webhook secret, not the one sent */
	CLAIM_R_COUNT
};

struct claim {
	enum claim_kind kind;
	enum claim_reason reason;    /* CLAIM_R_NONE for SOURCE, CLAIM_R_OUTPUT for OUTPUT */
	const struct cfg_registry *registry;   /* borrowed; NULL when unknown or not asked */
	const struct rule *rule;     /* SOURCE, OUTPUT: the first rule claiming it (borrowed) */
	const char *token;           /* SOURCE: its architecture token (borrowed from rule) */
	struct rule_match match;     /* SOURCE: group repository, version, token index */
	enum rule_output output;     /* OUTPUT: which output */
	/* The first rule whose repositories cover repo as written, whatever the
	 * tag (NULL: none): what reconcile remembers and assemble picks. */
	const struct rule *cover;
};

/*
 * Decide repo:tag pushed to registry (a configured host or alias; NULL when
 * the caller already picked the registry). tag NULL or "" is a push by
 * digest. A source claim wins over an output claim of an earlier rule; among
 * sources (or outputs) the first rule in the file wins. Pure: reads c only.
 * Returns out->kind.
 */
enum claim_kind claim_tag(const struct cfg *c, const char *registry, const char *repo,
    const char *tag, struct claim *out);

/* A reason's human text ("no rule matches the tag") and its metric label
 * ("no_rule"); both static, NULL for CLAIM_R_NONE or an unknown value. */
const char *claim_reason_text(enum claim_reason r);
const char *claim_reason_label(enum claim_reason r);

#endif
