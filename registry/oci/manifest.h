/*
 * Parsing what the registry returns: image manifests, indexes/lists and image
 * config blobs. Pure functions over bytes, so they are unit tested and fuzzed.
 */
#ifndef AM_MANIFEST_H
#define AM_MANIFEST_H

#include <stddef.h>
#include "server/base/common.h"
#include "registry/oci/platform.h"

#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"

#define MANIFEST_MAX_CHILDREN 256
#define MANIFEST_MAX_LAYERS 1024
#define CONFIG_MAX_BYTES (1024 * 1024)

#define ANN_SOURCE   "org.opencontainers.image.source"
#define ANN_REVISION "org.opencontainers.image.revision"
#define ANN_CREATED  "org.opencontainers.image.created"

/*
 * The org.opencontainers.image.* facts an index inherits from its children
 * (an image manifest's annotations, else its config's labels). Source and
 * revision come first: the order annotations are written in.
 */
enum oci_fact {
	FACT_SOURCE, FACT_REVISION, FACT_TITLE, FACT_DESCRIPTION, FACT_LICENSES, FACT_URL,
	FACT_DOCUMENTATION, FACT_VENDOR, FACT_AUTHORS, FACT_COUNT
};
#define FACT_MAX 512
struct oci_facts {
	char v[FACT_COUNT][FACT_MAX];  /* "" when absent, not a string or too long */
};

/* "org.opencontainers.image.<name>" of a fact. */
const char *oci_fact_key(enum oci_fact f);

struct descriptor {
	char media_type[96];
	char digest[80];
	long long size;
	int has_platform;
	struct platform platform;     /* normalised */
	int attestation;              /* vnd.docker.reference.type=attestation-manifest */
	char ref_digest[80];          /* vnd.docker.reference.digest, "" when absent */
	char annotations[1024];       /* the descriptor's annotations as compact JSON; "" when
	                                 absent or larger than this */
	int foreign;                  /* layer not stored in the registry (urls, foreign or
	                                 non-distributable media type): never copied */
};

enum manifest_kind { MANIFEST_IMAGE, MANIFEST_INDEX };

struct manifest {
	enum manifest_kind kind;
	char media_type[96];
	struct descriptor config;     /* MANIFEST_IMAGE */
	struct descriptor *children;  /* MANIFEST_INDEX, owned */
	size_t n_children;
	struct descriptor *layers;    /* MANIFEST_IMAGE, owned; NULL when none */
	size_t n_layers;
	struct oci_facts facts;       /* MANIFEST_IMAGE: from its annotations */
};

/* What archmerge reads from an image config blob. */
struct image_info {
	struct platform platform;     /* normalised */
	char created[64];             /* "created" (RFC 3339), "" when absent or too long */
	struct oci_facts facts;       /* from config.Labels */
};

/* Is this one of the two image manifest types / the two index types? */
int mt_is_image(const char *mt);
int mt_is_index(const char *mt);

/*
 * Parse a manifest. content_type (may be NULL or "") is the registry's
 * Content-Type; the body's own mediaType wins when present and they must not
 * contradict each other. Schema 1 and unknown types are AM_EINVAL.
 */
enum am_err manifest_parse(const char *body, size_t len, const char *content_type,
    struct manifest *out, char *err, size_t errlen);
void manifest_free(struct manifest *m);   /* frees the contents, not m */

/* Read os/architecture/variant/os.version/os.features from an image config blob, normalised. */
enum am_err config_parse_platform(const char *body, size_t len, struct platform *out,
    char *err, size_t errlen);

/* Platform plus the fields index annotations are derived from. */
enum am_err config_parse_info(const char *body, size_t len, struct image_info *out,
    char *err, size_t errlen);

/* "sha256:<hex>" of the bytes; out must hold 72 bytes. */
void digest_sha256(const void *data, size_t len, char *out, size_t outlen);

#endif
