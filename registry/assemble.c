/*
 * The assembly job. Reads only, then decides; the one write (the index PUT)
 * happens last and only when every check passed, so a fault part-way leaves
 * the registry as it was.
 */
#include "assemble.h"

#include <stdlib.h>
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

/* Fetch an image manifest's config blob and read its platform. */
static enum am_err
image_platform(const struct reg_api *api, const char *repo, const struct manifest *m,
    struct platform *out, char *err, size_t errlen)
{
	struct reg_reply r;
	enum am_err rc;
	char digest[80];

	reg_reply_init(&r);
	rc = api->blob_get(api->ctx, repo, m->config.digest, CONFIG_MAX_BYTES, &r, err, errlen);
	if (rc == AM_ENOTFOUND)
		rc = am_fail(err, errlen, AM_EINVAL, "config blob %s is missing", m->config.digest);
	if (rc != AM_OK)
		goto done;
	digest_sha256(r.body, r.body_len, digest, sizeof(digest));
	if (strcmp(digest, m->config.digest) != 0) {
		rc = am_fail(err, errlen, AM_EMISMATCH, "config blob %s has digest %s",
		    m->config.digest, digest);
		goto done;
	}
	rc = config_parse_platform(r.body, r.body_len, out, err, errlen);
done:
	reg_reply_clear(&r);
	return rc;
}

/* GET a manifest, check its digest, parse it. */
static enum am_err
fetch_manifest(const struct reg_api *api, const char *repo, const char *ref,
    struct manifest *m, char *digest, size_t dlen, size_t *size, char *err, size_t errlen)
{
	struct reg_reply r;
	enum am_err rc;
	char perr[256];

	reg_reply_init(&r);
	if ((rc = api->manifest_get(api->ctx, repo, ref, &r, err, errlen)) != AM_OK)
		goto done;
	digest_sha256(r.body, r.body_len, digest, dlen);
	if (r.digest[0] != '\0' && strcmp(r.digest, digest) != 0) {
		rc = am_fail(err, errlen, AM_EMISMATCH,
		    "%s:%s: registry says digest %s but the body hashes to %s", repo, ref, r.digest, digest);
		goto done;
	}
	if (ref[0] == 's' && strncmp(ref, "sha256:", 7) == 0 && strcmp(ref, digest) != 0) {
		rc = am_fail(err, errlen, AM_EMISMATCH, "%s@%s: body hashes to %s", repo, ref, digest);
		goto done;
	}
	*size = r.body_len;
	if ((rc = manifest_parse(r.body, r.body_len, r.media_type, m, perr, sizeof(perr))) != AM_OK)
		rc = am_fail(err, errlen, rc, "%s:%s: %s", repo, ref, perr);
done:
	reg_reply_clear(&r);
	return rc;
}

/*
 * Resolve one architecture: the tag's image (or, for an index, its child of
 * the expected platform), with the platform read from the image config.
 * AM_ENOTFOUND: not pushed yet. AM_EMISMATCH/AM_EINVAL: refuse.
 */
static enum am_err
resolve_arch(const struct reg_api *api, const char *repo, const char *tag,
    const struct arch_token *want, struct descriptor *out, char *err, size_t errlen)
{
	struct manifest m, child;
	enum am_err rc;
	size_t size = 0, i, found = 0, pick = 0;
	char digest[80], child_ref[80], have[96], expect[96];

	memset(&child, 0, sizeof(child));
	memset(out, 0, sizeof(*out));
	platform_format(&want->platform, expect, sizeof(expect));
	if ((rc = fetch_manifest(api, repo, tag, &m, digest, sizeof(digest), &size, err, errlen)) != AM_OK)
		return rc;
	if (m.kind == MANIFEST_INDEX) {
		/* buildx output: pick the image child of the expected platform. */
		for (i = 0; i < m.n_children; i++) {
			const struct descriptor *d = &m.children[i];
			if (d->attestation || !d->has_platform || !mt_is_image(d->media_type))
				continue;
			if (platform_satisfies(&d->platform, &want->platform)) {
				found++;
				pick = i;
			}
		}
		if (found != 1) {
			rc = am_fail(err, errlen, AM_EMISMATCH,
			    "%s:%s is an index with %s image child for %s", repo, tag,
			    found == 0 ? "no" : "more than one", expect);
			goto done;
		}
		(void)am_fmt(child_ref, sizeof(child_ref), "%s", m.children[pick].digest);
		if ((rc = fetch_manifest(api, repo, child_ref, &child, digest, sizeof(digest), &size,
		    err, errlen)) != AM_OK)
			goto done;
		if (child.kind != MANIFEST_IMAGE) {
			rc = am_fail(err, errlen, AM_EINVAL, "%s@%s: child of an index is not an image",
			    repo, digest);
			goto done;
		}
		manifest_free(&m);
		m = child;
		memset(&child, 0, sizeof(child));
	}
	(void)am_fmt(out->media_type, sizeof(out->media_type), "%s", m.media_type);
	(void)am_fmt(out->digest, sizeof(out->digest), "%s", digest);
	out->size = (long long)size;
	if ((rc = image_platform(api, repo, &m, &out->platform, err, errlen)) != AM_OK)
		goto done;
	out->has_platform = 1;
	if (!platform_satisfies(&out->platform, &want->platform)) {
		platform_format(&out->platform, have, sizeof(have));
		rc = am_fail(err, errlen, AM_EMISMATCH,
		    "%s:%s: image config says %s but the tag says %s (%s)", repo, tag, have,
		    want->name, expect);
	}
done:
	manifest_free(&m);
	manifest_free(&child);
	return rc;
}

static void
classify_failure(struct asm_result *out, enum am_err rc)
{
	out->err = rc;
	/* Content problems are refusals; registry/network problems are failures. */
	out->outcome = (rc == AM_EMISMATCH || rc == AM_EINVAL) ? ASM_REFUSED : ASM_FAILED;
}

static void
assemble_from(const struct reg_api *api, const struct rule *r, const char *repo,
    const char *version, int dry_run, struct asm_result *out)
{
	struct descriptor *kids = xcalloc(r->n_archs, sizeof(*kids));
	struct reg_reply head, put;
	char tag[NAME_MAX_TAG], target_tag[NAME_MAX_TAG], err[768];
	char missing[512] = "";
	size_t i, off = 0;
	enum am_err rc;

	memset(out, 0, sizeof(*out));
	reg_reply_init(&head);
	reg_reply_init(&put);
	if (tmpl_expand_tag(&r->target, version, NULL, target_tag, sizeof(target_tag)) != 0) {
		out->outcome = ASM_REFUSED;
		out->err = AM_EINVAL;
		(void)am_fmt(out->detail, sizeof(out->detail), "target tag for version %s is invalid",
		    version);
		goto done;
	}
	(void)am_fmt(out->target, sizeof(out->target), "%s:%s", repo, target_tag);

	for (i = 0; i < r->n_archs; i++) {
		if (tmpl_expand_tag(&r->source, version, r->archs[i].name, tag, sizeof(tag)) != 0) {
			out->outcome = ASM_REFUSED;
			out->err = AM_EINVAL;
			(void)am_fmt(out->detail, sizeof(out->detail), "source tag for %s is invalid",
			    r->archs[i].name);
			goto done;
		}
		rc = resolve_arch(api, repo, tag, &r->archs[i], &kids[i], err, sizeof(err));
		if (rc == AM_ENOTFOUND) {
			(void)am_fmt(missing + off, sizeof(missing) - off, "%s%s", off ? "," : "",
			    r->archs[i].name);
			off += strlen(missing + off);
			continue;
		}
		if (rc != AM_OK) {
			classify_failure(out, rc);
			(void)am_fmt(out->detail, sizeof(out->detail), "%s", err);
			goto done;
		}
	}
	if (off > 0) {
		out->outcome = ASM_WAITING;
		(void)am_fmt(out->detail, sizeof(out->detail), "missing %s", missing);
		goto done;
	}
	rc = index_build(kids, r->n_archs, (enum index_format)r->format, &out->doc, err, sizeof(err));
	if (rc != AM_OK) {
		classify_failure(out, rc);
		(void)am_fmt(out->detail, sizeof(out->detail), "%s", err);
		goto done;
	}
	(void)am_fmt(out->digest, sizeof(out->digest), "%s", out->doc.digest);

	rc = api->manifest_head(api->ctx, repo, target_tag, &head, err, sizeof(err));
	if (rc == AM_OK && strcmp(head.digest, out->doc.digest) == 0) {
		out->outcome = ASM_UNCHANGED;
		goto done;
	}
	if (rc != AM_OK && rc != AM_ENOTFOUND) {
		classify_failure(out, rc == AM_EINVAL ? AM_ETRANSIENT : rc);
		(void)am_fmt(out->detail, sizeof(out->detail), "%s", err);
		goto done;
	}
	if (dry_run) {
		out->outcome = ASM_DRY_RUN;
		(void)am_fmt(out->detail, sizeof(out->detail), "%s",
		    rc == AM_ENOTFOUND ? "target does not exist yet" : "target differs");
		goto done;
	}
	rc = api->manifest_put(api->ctx, repo, target_tag, out->doc.media_type, out->doc.body,
	    out->doc.len, &put, err, sizeof(err));
	if (rc != AM_OK) {
		classify_failure(out, rc == AM_EINVAL ? AM_EDENIED : rc);
		out->outcome = ASM_FAILED;
		(void)am_fmt(out->detail, sizeof(out->detail), "%s", err);
		goto done;
	}
	if (put.digest[0] != '\0' && strcmp(put.digest, out->doc.digest) != 0) {
		out->outcome = ASM_FAILED;
		out->err = AM_EMISMATCH;
		(void)am_fmt(out->detail, sizeof(out->detail),
		    "registry stored the index as %s, expected %s", put.digest, out->doc.digest);
		goto done;
	}
	out->outcome = ASM_PUBLISHED;
done:
	reg_reply_clear(&head);
	reg_reply_clear(&put);
	free(kids);
}

/*
 * The registry as assemble() sees it: the caller's api, noting the longest
 * Retry-After any reply carried, for the caller's backoff.
 */
struct noting {
	const struct reg_api *inner;
	long retry_after_ms;
};

static void
note(struct noting *n, const struct reg_reply *r)
{
	if (r != NULL && r->retry_after_ms > n->retry_after_ms)
		n->retry_after_ms = r->retry_after_ms;
}

static enum am_err
n_get(void *ctx, const char *repo, const char *ref, struct reg_reply *out, char *err, size_t errlen)
{
	struct noting *n = ctx;
	enum am_err rc = n->inner->manifest_get(n->inner->ctx, repo, ref, out, err, errlen);

	note(n, out);
	return rc;
}

static enum am_err
n_head(void *ctx, const char *repo, const char *ref, struct reg_reply *out, char *err, size_t errlen)
{
	struct noting *n = ctx;
	enum am_err rc = n->inner->manifest_head(n->inner->ctx, repo, ref, out, err, errlen);

	note(n, out);
	return rc;
}

static enum am_err
n_put(void *ctx, const char *repo, const char *ref, const char *media_type, const char *body,
    size_t len, struct reg_reply *out, char *err, size_t errlen)
{
	struct noting *n = ctx;
	enum am_err rc = n->inner->manifest_put(n->inner->ctx, repo, ref, media_type, body, len, out,
	    err, errlen);

	note(n, out);
	return rc;
}

static enum am_err
n_blob(void *ctx, const char *repo, const char *digest, size_t max, struct reg_reply *out,
    char *err, size_t errlen)
{
	struct noting *n = ctx;
	enum am_err rc = n->inner->blob_get(n->inner->ctx, repo, digest, max, out, err, errlen);

	note(n, out);
	return rc;
}

void
assemble(const struct reg_api *api, const struct rule *r, const char *repo,
    const char *version, int dry_run, struct asm_result *out)
{
	struct noting n = { api, -1 };
	struct reg_api noted = { &n, n_get, n_head, n_put, n_blob };

	assemble_from(&noted, r, repo, version, dry_run, out);
	out->retry_after_ms = out->outcome == ASM_FAILED ? n.retry_after_ms : -1;
}

void
asm_result_clear(struct asm_result *res)
{
	if (res != NULL)
		index_doc_clear(&res->doc);
}
