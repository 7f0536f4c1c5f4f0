/*
 * Cross-repository copy of one manifest. Blobs first (the registry refuses a
 * manifest whose blobs it does not have in that repository), manifest last,
 * the exact bytes so that the digest stays the same.
 */
#include "registry/assemble/copy.h"

#include <string.h>

#include "registry/oci/manifest.h"

/* Config and layers into dst: a mount, or a streamed copy when the registry declines. */
static enum am_err
copy_blob(const struct reg_api *api, const char *src, const char *dst, const struct descriptor *b,
    struct copy_stats *st, char *err, size_t errlen)
{
	char location[1024];
	int mounted = 0;
	enum am_err rc;

	if (b->foreign)
		return AM_OK;   /* lives outside the registry (Windows base layers): nothing to copy */
	if ((rc = api->blob_mount(api->ctx, dst, src, b->digest, &mounted, location, sizeof(location),
	    err, errlen)) != AM_OK)
		return rc;
	if (mounted) {
		st->mounted++;
		return AM_OK;
	}
	if ((rc = api->blob_copy(api->ctx, dst, src, b->digest, b->size, location, err, errlen)) != AM_OK)
		return rc;
	st->uploaded++;
	return AM_OK;
}

/* GET ref of repo, check the bytes hash to digest. */
static enum am_err
get_exact(const struct reg_api *api, const char *repo, const char *digest, struct reg_reply *r,
    char *err, size_t errlen)
{
	char got[80];
	enum am_err rc;

	if ((rc = api->manifest_get(api->ctx, repo, digest, r, err, errlen)) != AM_OK)
		return rc;
	digest_sha256(r->body, r->body_len, got, sizeof(got));
	if (strcmp(got, digest) != 0)
		return am_fail(err, errlen, AM_EMISMATCH, "%s@%s: body hashes to %s", repo, digest, got);
	return AM_OK;
}

/* body parsed into *m (once), naming repo@digest in the error. */
static enum am_err
parse_once(const struct reg_reply *body, const char *repo, const char *digest, struct manifest *m,
    char *err, size_t errlen)
{
	char perr[256];
	enum am_err rc;

	if (m->media_type[0] != '\0')
		return AM_OK;
	rc = manifest_parse(body->body, body->body_len, body->media_type, m, perr, sizeof(perr));
	return rc == AM_OK ? AM_OK : am_fail(err, errlen, rc, "%s@%s: %s", repo, digest, perr);
}

/* The manifest, its config and layers into dst by digest, unless dst has it already. */
static enum am_err
copy_by_digest(const struct reg_api *api, const char *src, const char *dst, const char *digest,
    struct reg_reply *body, struct manifest *m, struct copy_stats *st, char *err, size_t errlen)
{
	struct reg_reply head, put;
	enum am_err rc;
	size_t i;

	reg_reply_init(&head);
	reg_reply_init(&put);
	rc = api->manifest_head(api->ctx, dst, digest, &head, err, errlen);
	if (rc != AM_ENOTFOUND)
		goto done;
	if ((body->body == NULL && (rc = get_exact(api, src, digest, body, err, errlen)) != AM_OK) ||
	    (rc = parse_once(body, src, digest, m, err, errlen)) != AM_OK)
		goto done;
	if (m->kind != MANIFEST_IMAGE) {
		rc = am_fail(err, errlen, AM_EINVAL, "%s@%s: only image manifests are copied", src, digest);
		goto done;
	}
	if ((rc = copy_blob(api, src, dst, &m->config, st, err, errlen)) != AM_OK)
		goto done;
	for (i = 0; i < m->n_layers; i++)
		if ((rc = copy_blob(api, src, dst, &m->layers[i], st, err, errlen)) != AM_OK)
			goto done;
	if ((rc = api->manifest_put(api->ctx, dst, digest, m->media_type, body->body, body->body_len,
	    &put, err, errlen)) == AM_OK)
		st->manifests++;
done:
	reg_reply_clear(&head);
	reg_reply_clear(&put);
	return rc;
}

/* dst:tag made to point at digest (already in dst), unless it does. */
static enum am_err
copy_tag(const struct reg_api *api, const char *dst, const char *digest, const char *tag,
    struct reg_reply *body, struct manifest *m, struct copy_stats *st, char *err, size_t errlen)
{
	struct reg_reply head, put;
	enum am_err rc;

	reg_reply_init(&head);
	reg_reply_init(&put);
	rc = api->manifest_head(api->ctx, dst, tag, &head, err, errlen);
	if ((rc == AM_OK && strcmp(head.digest, digest) == 0) || (rc != AM_OK && rc != AM_ENOTFOUND))
		goto done;
	if ((body->body == NULL && (rc = get_exact(api, dst, digest, body, err, errlen)) != AM_OK) ||
	    (rc = parse_once(body, dst, digest, m, err, errlen)) != AM_OK)
		goto done;
	reg_api_note_write(api, dst, tag, digest);
	if ((rc = api->manifest_put(api->ctx, dst, tag, m->media_type, body->body, body->body_len, &put,
	    err, errlen)) == AM_OK)
		st->tagged++;
done:
	reg_reply_clear(&head);
	reg_reply_clear(&put);
	return rc;
}

enum am_err
copy_manifest(const struct reg_api *api, const char *src, const char *dst,
    const char *digest, const char *media_type, const char *have, size_t have_len, const char *tag,
    struct copy_stats *st, char *err, size_t errlen)
{
	struct reg_reply body;
	struct manifest m;
	enum am_err rc;

	if (api->blob_mount == NULL || api->blob_copy == NULL)
		return am_fail(err, errlen, AM_EINVAL, "this registry interface cannot copy between repositories");
	memset(&m, 0, sizeof(m));
	reg_reply_init(&body);
	if (have != NULL) {
		/* Already read (and digest-checked) by the caller: no second GET. */
		body.body = xstrndup(have, have_len);
		body.body_len = have_len;
	}
	if (media_type != NULL)
		(void)am_fmt(body.media_type, sizeof(body.media_type), "%s", media_type);
	rc = copy_by_digest(api, src, dst, digest, &body, &m, st, err, errlen);
	if (rc == AM_OK && tag != NULL)
		rc = copy_tag(api, dst, digest, tag, &body, &m, st, err, errlen);
	manifest_free(&m);
	reg_reply_clear(&body);
	return rc;
}
