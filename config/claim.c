/*
 * The claim on a pushed tag, in one walk over the rules, and the one table
 * of ignore reasons (text for answers and logs, label for metrics).
 */
#include "config/claim.h"

#include <string.h>

static const struct {
	const char *text, *label;
} reasons[CLAIM_R_COUNT] = {
	[CLAIM_R_NONE] = { NULL, NULL },
	[CLAIM_R_BY_DIGEST] = { "pushed by digest (no tag)", "by_digest" },
	[CLAIM_R_UNKNOWN_HOST] = { "unknown registry host", "unknown_host" },
	[CLAIM_R_OUTPUT] = { "no rule matches the tag: it is a target, extra or copy tag of a rule "
	    "(archmerge's own output)", "target_tag" },
	[CLAIM_R_NO_RULE] = { "no rule matches the tag", "no_rule" },
	[CLAIM_R_NOT_PUSH] = { "not a push event", "not_push" },
	[CLAIM_R_BLOB] = { "blob push", "blob" },
	[CLAIM_R_INVALID] = { "invalid event", "invalid" },
	[CLAIM_R_OWN_WRITE] = { "archmerge's own write (the digest it just pushed under this tag)",
	    "own_push" },
	[CLAIM_R_SIGNATURE] = { "signature tag of an image no group waits for", "signature" },
	[CLAIM_R_SCAN] = { "scan of an image no group waits for", "scan" },
	[CLAIM_R_WRONG_SECRET] = { "the Authorization header is not the webhook secret of the registry named",
	    "wrong_secret" },
};

const char *
claim_reason_text(enum claim_reason r)
{
	return (unsigned)r < CLAIM_R_COUNT ? reasons[r].text : NULL;
}

const char *
claim_reason_label(enum claim_reason r)
{
	return (unsigned)r < CLAIM_R_COUNT ? reasons[r].label : NULL;
}

static enum claim_kind
none(struct claim *out, enum claim_reason why)
{
	out->kind = CLAIM_NONE;
	out->reason = why;
	return CLAIM_NONE;
}

enum claim_kind
claim_tag(const struct cfg *c, const char *registry, const char *repo, const char *tag,
    struct claim *out)
{
	const struct rule *source = NULL, *output = NULL;
	struct rule_match m;
	enum rule_output o = RULE_OUT_NONE, oi;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (tag == NULL || tag[0] == '\0')
		return none(out, CLAIM_R_BY_DIGEST);
	if (registry != NULL && (out->registry = cfg_registry_by_name(c, registry)) == NULL)
		return none(out, CLAIM_R_UNKNOWN_HOST);
	/* One walk: a rule is asked for what is still open, in file order. */
	for (i = 0; i < c->n_rules; i++) {
		const struct rule *r = &c->rules[i];

		if (out->cover == NULL && rule_covers(r, repo))
			out->cover = r;
		if (source == NULL && rule_match_source(r, repo, tag, &m)) {
			source = r;
			out->match = m;
		} else if (source == NULL && output == NULL &&
		    (oi = rule_match_target(r, repo, tag)) != RULE_OUT_NONE) {
			output = r;
			o = oi;
		}
		if (source != NULL && out->cover != NULL)
			break;
	}
	if (source != NULL) {
		out->kind = CLAIM_SOURCE;
		out->rule = source;
		out->token = source->archs[out->match.arch].name;
		return CLAIM_SOURCE;
	}
	if (output != NULL) {
		out->kind = CLAIM_OUTPUT;
		out->reason = CLAIM_R_OUTPUT;
		out->rule = output;
		out->output = o;
		return CLAIM_OUTPUT;
	}
	return none(out, CLAIM_R_NO_RULE);
}
