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
#include "server/base/log.h"

/*
 * The signatures stored for digest in repo; an empty list when there are
 * none, or when what is stored there is no signature manifest at all (it
 * holds nothing that verifies, and signing writes a good one over it
 * instead of being blocked by it for ever). Unusable layers are skipped by
 * the parser.
 */
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
	else if (rc == AM_OK && sig_manifest_parse(r.body, r.body_len, m, perr, sizeof(perr)) != AM_OK) {
		log_kv(LOG_WARN, "signature manifest unusable", LOG_S("repo", repo), LOG_S("tag", tag),
		    LOG_S("error", perr), LOG_S("note", "read as holding no signature"));
		memset(m, 0, sizeof(*m));
		m->n_skipped = 1;
	}
	reg_reply_clear(&r);
	return rc;
}

/*
 * Read layer l's payload once and check it up to its signature: blob
 * digest, payload digest and repository. 1: usable, body in r (caller
 * clears); 0: not a signature of digest in repo (why); -1: registry fault (err).
 */
static int
payload_read(const struct reg_api *api, const char *repo, const char *digest, const struct sig_layer *l,
    struct reg_reply *r, char *why, size_t whylen, char *err, size_t errlen)
{
	struct sig_payload p;
	char got[80];
	enum am_err rc;

	if (strcmp(l->media_type, SIG_MT_PAYLOAD) != 0 || l->signature[0] == '\0')
		return 0;
	rc = api->blob_get(api->ctx, repo, l->digest, SIG_MAX_PAYLOAD, r, err, errlen);
	if (rc != AM_OK) {
		if (rc == AM_ENOTFOUND || rc == AM_EINVAL) {
			(void)am_fmt(why, whylen, "payload %s unreadable", l->digest);
			return 0;
		}
		return -1;
	}
	digest_sha256(r->body, r->body_len, got, sizeof(got));
	if (strcmp(got, l->digest) != 0)
		(void)am_fmt(why, whylen, "payload %s hashes to %s", l->digest, got);
	else if (sig_payload_parse(r->body, r->body_len, &p, why, whylen) != AM_OK)
		;
	else if (strcmp(p.digest, digest) != 0)
		(void)am_fmt(why, whylen, "payload names %s", p.digest);
	else if (!sig_reference_names(p.reference, repo))
		(void)am_fmt(why, whylen, "payload names repository %.200s", p.reference);
	else
		return 1;
	return 0;
}

/*
 * Is one layer of m a signature of digest in repo by one of the n keys?
 * Each payload is fetched once, whatever the number of keys. 1 yes, 0 no
 * (why has the last reason), -1 registry fault (err).
 */
static int
signed_by_any(const struct reg_api *api, const char *repo, const char *digest,
    const struct sig_manifest *m, struct sig_key *const *keys, size_t n, char *why, size_t whylen,
    char *err, size_t errlen)
{
	struct reg_reply r;
	size_t i, j;
	int s = 0, usable;

	for (i = 0; i < m->n_layers && s == 0; i++) {
		reg_reply_init(&r);
		usable = payload_read(api, repo, digest, &m->layers[i], &r, why, whylen, err, errlen);
		if (usable < 0)
			s = -1;
		for (j = 0; usable > 0 && j < n && s == 0; j++)
			s = sig_verify(keys[j], r.body, r.body_len, m->layers[i].signature);
		if (usable > 0 && s == 0)
			(void)am_fmt(why, whylen, "signature does not verify with the key%s", n > 1 ? "s" : "");
		reg_reply_clear(&r);
	}
	return s;
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
	s = signed_by_any(api, repo, digest, &m, &k, 1, why, sizeof(why), err, errlen);
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
	struct sig_key **k = xcalloc(n ? n : 1, sizeof(*k));
	char why[256] = "";
	size_t j;
	int s = 0;
	enum am_err rc = AM_OK;

	memset(&m, 0, sizeof(m));
	for (j = 0; j < n && rc == AM_OK; j++)
		rc = sig_key_load_public(keys[j], &k[j], err, errlen);
	if (rc != AM_OK || (rc = read_sigs(api, repo, digest, &m, err, errlen)) != AM_OK)
		goto done;
	s = signed_by_any(api, repo, digest, &m, k, n, why, sizeof(why), err, errlen);
	if (s < 0)
		rc = AM_ETRANSIENT;
	else if (s == 0)
		rc = am_fail(err, errlen, AM_EMISMATCH, "%s@%s carries no valid signature by a key of "
		    "require_signed_children (%zu signatures there%s%s)", repo, digest, m.n_layers,
		    why[0] ? "; last: " : "", why);
done:
	for (j = 0; j < n; j++)
		sig_key_free(k[j]);
	free(k);
	sig_manifest_clear(&m);
	return rc;
}
