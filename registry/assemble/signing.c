/*
 * The signing steps of assembly. Both read the image's signature manifest
 * (tag sha256-<hex>.sig) and check each payload layer from the bytes up:
 * blob digest, payload digest and repository, then the ECDSA signature.
 */
#include "registry/assemble/signing.h"

#include <stdlib.h>
#include <string.h>

#include "registry/oci/manifest.h"
#include "registry/sign/sign.h"

/* The signatures stored for digest in repo; an empty list when there are none. */
static enum am_err
read_sigs(const struct reg_api *api, const char *repo, const char *digest, struct sig_manifest *m,
    char *err, size_t errlen)
{
	struct reg_reply r;
	char tag[96], perr[256];
	enum am_err rc;

	memset(m, 0, sizeof(*m));
	if (sig_tag_of(digest, tag, sizeof(tag)) != 0)
		return am_fail(err, errlen, AM_EINVAL, "%s is not a sha256 digest", digest);
	reg_reply_init(&r);
	rc = api->manifest_get(api->ctx, repo, tag, &r, err, errlen);
	if (rc == AM_ENOTFOUND)
		rc = AM_OK;
	else if (rc == AM_OK && sig_manifest_parse(r.body, r.body_len, m, perr, sizeof(perr)) != AM_OK)
		rc = am_fail(err, errlen, AM_EINVAL, "%s:%s: %s", repo, tag, perr);
	reg_reply_clear(&r);
	return rc;
}

/*
 * Is layer l a signature of digest in repo by key k? 1 yes, 0 no (why in
 * why), -1 registry fault (err).
 */
static int
layer_signs(const struct reg_api *api, const char *repo, const char *digest, const struct sig_layer *l,
    const struct sig_key *k, char *why, size_t whylen, char *err, size_t errlen)
{
	struct reg_reply r;
	struct sig_payload p;
	char got[80];
	int ok = 0;
	enum am_err rc;

	if (strcmp(l->media_type, SIG_MT_PAYLOAD) != 0 || l->signature[0] == '\0')
		return 0;
	reg_reply_init(&r);
	rc = api->blob_get(api->ctx, repo, l->digest, SIG_MAX_PAYLOAD, &r, err, errlen);
	if (rc != AM_OK) {
		reg_reply_clear(&r);
		if (rc == AM_ENOTFOUND || rc == AM_EINVAL) {
			(void)am_fmt(why, whylen, "payload %s unreadable", l->digest);
			return 0;
		}
		return -1;
	}
	digest_sha256(r.body, r.body_len, got, sizeof(got));
	if (strcmp(got, l->digest) != 0)
		(void)am_fmt(why, whylen, "payload %s hashes to %s", l->digest, got);
	else if (sig_payload_parse(r.body, r.body_len, &p, why, whylen) != AM_OK)
		;
	else if (strcmp(p.digest, digest) != 0)
		(void)am_fmt(why, whylen, "payload names %s", p.digest);
	else if (!sig_reference_names(p.reference, repo))
		(void)am_fmt(why, whylen, "payload names repository %.200s", p.reference);
	else if (!(ok = sig_verify(k, r.body, r.body_len, l->signature)))
		(void)am_fmt(why, whylen, "signature does not verify with the key");
	reg_reply_clear(&r);
	return ok;
}

/* Write payload, config and manifest: the new signature appended to m. */
static enum am_err
write_sig(const struct reg_api *api, const struct sig_key *k, const char *repo, const char *digest,
    struct sig_manifest *m, char *err, size_t errlen)
{
	char *payload = NULL, *config = NULL, *man = NULL, ref[768], b64[SIG_B64_MAX], pdig[80], cdig[80], mdig[80];
	char tag[96];
	size_t plen = 0, clen = 0, mlen = 0;
	struct reg_reply put;
	enum am_err rc;

	reg_reply_init(&put);
	(void)sig_tag_of(digest, tag, sizeof(tag));
	(void)am_fmt(ref, sizeof(ref), "%s%s%s", api->host != NULL ? api->host : "",
	    api->host != NULL && api->host[0] ? "/" : "", repo);
	if ((rc = sig_payload_build(ref, digest, &payload, &plen, err, errlen)) != AM_OK ||
	    (rc = sig_sign(k, payload, plen, b64, sizeof(b64), err, errlen)) != AM_OK)
		goto done;
	digest_sha256(payload, plen, pdig, sizeof(pdig));
	if ((rc = sig_manifest_append(m, pdig, (long long)plen, b64, err, errlen)) != AM_OK ||
	    (rc = sig_manifest_build(m, &config, &clen, &man, &mlen, err, errlen)) != AM_OK)
		goto done;
	digest_sha256(config, clen, cdig, sizeof(cdig));
	if ((rc = api->blob_put(api->ctx, repo, pdig, payload, plen, err, errlen)) != AM_OK ||
	    (rc = api->blob_put(api->ctx, repo, cdig, config, clen, err, errlen)) != AM_OK)
		goto done;
	digest_sha256(man, mlen, mdig, sizeof(mdig));
	reg_api_note_write(api, repo, tag, mdig);   /* its webhook is archmerge's own write */
	rc = api->manifest_put(api->ctx, repo, tag, SIG_MT_MANIFEST, man, mlen, &put, err, errlen);
	if (rc == AM_EINVAL)
		rc = AM_EDENIED;
	if (rc == AM_EDENIED && put.status == 412) {
		/* Harbor's immutability rules refuse any PUT to an existing immutable tag,
		 * even one adding a signature: retrying cannot help, the rule must change. */
		char why[512];
		(void)am_fmt(why, sizeof(why), "%s", err);
		rc = am_fail(err, errlen, AM_EDENIED, "%s:%s is immutable: "
		    "a tag immutability rule refuses every write to an existing signature tag, "
		    "so the signature cannot be added (exclude sha256-*.sig tags from the rule); "
		    "the index stays published unsigned (%s)", repo, tag, why);
	}
done:
	reg_reply_clear(&put);
	free(payload);
	free(config);
	free(man);
	return rc;
}

enum am_err
asm_sign_index(const struct reg_api *api, const char *key_file, const char *repo,
    const char *digest, int *made, char *err, size_t errlen)
{
	struct sig_manifest m;
	struct sig_key *k = NULL;
	char why[256];
	size_t i;
	int s = 0;
	enum am_err rc;

	*made = 0;
	memset(&m, 0, sizeof(m));
	if (key_file[0] == '\0')
		return AM_OK;
	if (api->blob_put == NULL)
		return am_fail(err, errlen, AM_EINVAL, "signing: this registry connection cannot upload blobs");
	if ((rc = sig_key_load_private(key_file, &k, err, errlen)) != AM_OK)
		return rc;
	if ((rc = read_sigs(api, repo, digest, &m, err, errlen)) != AM_OK)
		goto done;
	/* Idempotent: a valid signature by this key on this digest is enough. */
	for (i = 0; i < m.n_layers && s == 0; i++)
		s = layer_signs(api, repo, digest, &m.layers[i], k, why, sizeof(why), err, errlen);
	if (s < 0) {
		rc = AM_ETRANSIENT;
		goto done;
	}
	if (s == 0 && (rc = write_sig(api, k, repo, digest, &m, err, errlen)) == AM_OK)
		*made = 1;
done:
	sig_manifest_clear(&m);
	sig_key_free(k);
	return rc;
}

enum am_err
asm_child_signed(const struct reg_api *api, const char (*keys)[512], size_t n, const char *repo,
    const char *digest, char *err, size_t errlen)
{
	struct sig_manifest m;
	struct sig_key *k;
	char why[256] = "";
	size_t i, j;
	int s = 0;
	enum am_err rc;

	if ((rc = read_sigs(api, repo, digest, &m, err, errlen)) != AM_OK)
		return rc;
	for (j = 0; j < n && s == 0; j++) {
		if ((rc = sig_key_load_public(keys[j], &k, err, errlen)) != AM_OK)
			break;
		for (i = 0; i < m.n_layers && s == 0; i++)
			s = layer_signs(api, repo, digest, &m.layers[i], k, why, sizeof(why), err, errlen);
		sig_key_free(k);
	}
	if (rc == AM_OK && s < 0)
		rc = AM_ETRANSIENT;
	else if (rc == AM_OK && s == 0)
		rc = am_fail(err, errlen, AM_EMISMATCH, "%s@%s carries no valid signature by a key of "
		    "require_signed_children (%zu signatures there%s%s)", repo, digest, m.n_layers,
		    why[0] ? "; last: " : "", why);
	sig_manifest_clear(&m);
	return rc;
}
