/*
 * Image signatures in the layout cosign writes and the containers tools
 * (skopeo, podman) read: a simple-signing payload naming an image digest,
 * signed with ECDSA P-256 over SHA-256, stored as one layer of an OCI
 * manifest tagged sha256-<hex>.sig in the image's repository, the signature
 * in base64 in the layer's dev.cosignproject.cosign/signature annotation.
 *
 * Everything read from a registry goes through the parsers here, which
 * treat it as hostile: bounded sizes, exact types, no partial results.
 */
#ifndef AM_SIGN_H
#define AM_SIGN_H

#include <stddef.h>
#include "server/base/common.h"

#define SIG_MT_PAYLOAD  "application/vnd.dev.cosign.simplesigning.v1+json"
#define SIG_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define SIG_MT_CONFIG   "application/vnd.oci.image.config.v1+json"
#define SIG_ANN_SIG     "dev.cosignproject.cosign/signature"
#define SIG_TYPE        "cosign container image signature"
#define SIG_MAX_LAYERS  64            /* signatures kept on one image */
#define SIG_MAX_PAYLOAD (64 * 1024)   /* cosign's payloads are a few hundred bytes */
#define SIG_B64_MAX     256           /* base64 of a DER ECDSA P-256 signature is <= 96 */

/* The fields of a simple-signing payload that matter here. */
struct sig_payload {
	char reference[512];   /* critical.identity.docker-reference */
	char digest[80];       /* critical.image.docker-manifest-digest */
};

/* Build the payload for image digest under reference (caller frees *out). */
enum am_err sig_payload_build(const char *reference, const char *digest, char **out, size_t *len,
    char *err, size_t errlen);

/* Parse a payload: critical.type must be cosign's, digest sha256:<64 hex>. */
enum am_err sig_payload_parse(const char *body, size_t len, struct sig_payload *out,
    char *err, size_t errlen);

/* One layer of a signature manifest, kept whole so that re-building keeps it as it was. */
struct sig_layer {
	char media_type[128];
	char digest[80];
	long long size;
	char signature[SIG_B64_MAX];   /* "" when the layer has none (or not a payload layer) */
	char *annotations;             /* the layer's annotations object as JSON (owned), or NULL */
};

struct sig_manifest {
	struct sig_layer layers[SIG_MAX_LAYERS];
	size_t n_layers;
	size_t n_skipped;              /* layers left out: unusable, or the oldest beyond the cap */
};

/*
 * Parse a signature manifest (an OCI/Docker image manifest); sig_manifest_clear
 * frees. Layers that do not parse are skipped, and past SIG_MAX_LAYERS the
 * oldest go (both counted in n_skipped); AM_EINVAL only when the document
 * itself is no manifest.
 */
enum am_err sig_manifest_parse(const char *body, size_t len, struct sig_manifest *out,
    char *err, size_t errlen);
void sig_manifest_clear(struct sig_manifest *m);

/*
 * Append a payload layer (digest, size of the payload blob) carrying
 * signature (base64) to m. When m is full its oldest layer goes first.
 */
enum am_err sig_manifest_append(struct sig_manifest *m, const char *digest, long long size,
    const char *signature, char *err, size_t errlen);

/*
 * The config blob (rootfs.diff_ids = the layer digests, as cosign writes it)
 * and the manifest referencing it; both owned by the caller.
 */
enum am_err sig_manifest_build(const struct sig_manifest *m, char **config, size_t *config_len,
    char **manifest, size_t *manifest_len, char *err, size_t errlen);

/* "sha256:<hex>" -> "sha256-<hex>.sig"; -1 when digest is not sha256:<64 hex>. */
int sig_tag_of(const char *digest, char *tag, size_t len);
/* The inverse: "sha256-<hex>.sig" -> "sha256:<hex>"; -1 when tag is no signature tag. */
int sig_digest_of_tag(const char *tag, char *digest, size_t len);

/* ---- keys and the signature itself (OpenSSL EVP) ---- */

struct sig_key;   /* an EC P-256 key, private or public only */

/* Private key PEM, a secret: refused when readable by group or others. */
enum am_err sig_key_load_private(const char *path, struct sig_key **out, char *err, size_t errlen);
/* Public key PEM (SubjectPublicKeyInfo). */
enum am_err sig_key_load_public(const char *path, struct sig_key **out, char *err, size_t errlen);
/* From PEM text (tests, fuzzing). */
enum am_err sig_key_from_pem(const char *pem, size_t len, int private_, struct sig_key **out,
    char *err, size_t errlen);
void sig_key_free(struct sig_key *k);

/* ECDSA-SHA256 over data, DER, base64 into b64. */
enum am_err sig_sign(const struct sig_key *k, const void *data, size_t len, char *b64, size_t b64len,
    char *err, size_t errlen);
/* 1 when b64 is a valid signature of data by k, else 0 (bad base64 included). */
int sig_verify(const struct sig_key *k, const void *data, size_t len, const char *b64);

/* Does reference ("host/repo[:tag|@digest]", host optional) name repository repo? */
int sig_reference_names(const char *reference, const char *repo);

#endif
