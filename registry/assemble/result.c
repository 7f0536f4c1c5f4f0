/*
 * What the caller of assemble() reads: the outcome's name, the detail line
 * the phases append to, and the architectures found, for the status page.
 */
#include "registry/assemble/job.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *
asm_outcome_name(enum asm_outcome o)
{
	switch (o) {
	case ASM_PUBLISHED: return "published";
	case ASM_UNCHANGED: return "unchanged";
	case ASM_WAITING: return "waiting";
	case ASM_REFUSED: return "refused";
	case ASM_FAILED: return "failed";
	case ASM_DRY_RUN: return "dry-run";
	}
	return "?";
}

const char *
asm_policy_name(enum asm_policy p)
{
	switch (p) {
	case ASM_POLICY_OTHER: return "other";
	case ASM_POLICY_VULNERABILITY: return "vulnerability";
	case ASM_POLICY_COSIGN: return "cosign";
	case ASM_POLICY_NOTATION: return "notation";
	}
	return "other";
}

/*
 * Harbor's words (src/server/middleware/vulnerable and contenttrust): "The
 * image is not signed by cosign." / "... by notation."; every refusal of the
 * vulnerability check speaks of "vulnerability scanning" or "vulnerabilities".
 */
enum asm_policy
asm_policy_of(const char *message)
{
	if (strstr(message, "signed by cosign") != NULL)
		return ASM_POLICY_COSIGN;
	if (strstr(message, "signed by notation") != NULL)
		return ASM_POLICY_NOTATION;
	if (strstr(message, "vulnerab") != NULL)
		return ASM_POLICY_VULNERABILITY;
	return ASM_POLICY_OTHER;
}

void
job_note_blocked(struct asm_result *out, const char *missing)
{
	size_t i;

	out->detail[0] = '\0';
	if (missing[0] != '\0')
		job_note(out, "missing %s", missing);
	for (i = 0; i < out->n_blocked; i++) {
		const struct asm_block *b = &out->blocked[i];
		job_note(out, "%s blocked by Harbor's %s policy: %s%s%s%s%s: %s", b->arch,
		    asm_policy_name(b->policy), b->repo, b->tag[0] ? ":" : "", b->tag,
		    b->digest[0] ? (b->tag[0] ? " @" : "@") : "", b->digest,
		    b->message[0] ? b->message : "412 without a reason (HEAD)");
	}
}

void
job_note(struct asm_result *out, const char *fmt, ...)
{
	size_t off = strlen(out->detail);
	va_list ap;
	int n;

	if (off > 0 && off + 2 < sizeof(out->detail)) {
		memcpy(out->detail + off, "; ", 3);
		off += 2;
	}
	va_start(ap, fmt);
	n = vsnprintf(out->detail + off, sizeof(out->detail) - off, fmt, ap);
	va_end(ap);
	(void)n;
}

/* What was found, for the status page: kept whatever the outcome. */
void
job_note_present(const struct job *c)
{
	struct asm_result *out = c->out;
	size_t i;

	out->n_present = 0;
	for (i = 0; i < c->p->n_archs && out->n_present < ASM_MAX_PRESENT; i++) {
		const struct kid *k = &c->kids[i];
		struct asm_present *p = &out->present[out->n_present];
		if (!k->present && k->tag_digest[0] == '\0')
			continue;   /* not found or not read */
		p->rejected = !k->present;
		(void)am_fmt(p->arch, sizeof(p->arch), "%s", c->p->archs[i].name);
		(void)am_fmt(p->source, sizeof(p->source), "%s%s%s", k->from_target ? "" : k->src_repo,
		    k->from_target ? "" : ":", k->from_target ? "" : k->src_tag);
		(void)am_fmt(p->digest, sizeof(p->digest), "%s", k->image.digest[0] ? k->image.digest :
		    k->tag_digest);
		p->platform[0] = '\0';
		if (k->image.has_platform)
			platform_format(&k->image.platform, p->platform, sizeof(p->platform));
		out->n_present++;
	}
}

void
asm_result_clear(struct asm_result *res)
{
	if (res != NULL)
		index_doc_clear(&res->doc);
}
