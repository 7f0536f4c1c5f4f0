/*
 * Building the combined index: children in the rule's order, OCI index or
 * Docker manifest list, serialised once and digested over the exact bytes
 * that will be pushed.
 */
#ifndef AM_INDEX_H
#define AM_INDEX_H

#include <stddef.h>
#include "server/base/common.h"
#include "registry/oci/manifest.h"

enum index_format { INDEX_AUTO, INDEX_OCI, INDEX_DOCKER };

int index_format_parse(const char *s, enum index_format *out);
const char *index_format_name(enum index_format f);

struct index_doc {
	char *body;              /* exact bytes to push, NUL terminated; owned */
	size_t len;
	char media_type[96];
	char digest[80];
};

/*
 * children: image manifests with has_platform set (their platform goes into
 * the index). auto picks a Docker list only when every child is a Docker
 * manifest. A Docker list refuses OCI children; duplicate platforms are an
 * error.
 */
enum am_err index_build(const struct descriptor *children, size_t n, enum index_format fmt,
    struct index_doc *out, char *err, size_t errlen);

/* One index-level annotation (borrowed strings). */
struct index_annotation {
	const char *key;
	const char *value;
};

/* Everything an index may hold; index_build() is the images-only case. */
struct index_spec {
	const struct descriptor *images;        /* with platforms, in publishing order */
	size_t n_images;
	const struct descriptor *attestations;  /* after the images, with their annotations */
	size_t n_attestations;
	const struct index_annotation *annotations;   /* written sorted by key */
	size_t n_annotations;
	enum index_format format;
};

/*
 * Build an index from spec. auto becomes OCI when anything but Docker image
 * manifests would be listed or annotations are given. A Docker list never
 * carries annotations: attestations are left out of it, and index
 * annotations with format docker are an error.
 */
enum am_err index_build_spec(const struct index_spec *spec, struct index_doc *out,
    char *err, size_t errlen);
void index_doc_clear(struct index_doc *d);

#endif
