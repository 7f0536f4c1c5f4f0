/*
 * Copying a per-architecture manifest into the target repository, because an
 * index may only reference manifests of its own repository: every blob is
 * mounted across repositories (streamed copy when the registry declines),
 * then the manifest is PUT by digest, and optionally tagged.
 */
#ifndef AM_COPY_H
#define AM_COPY_H

#include <stddef.h>
#include "registry/assemble/api.h"

struct copy_stats {
	unsigned manifests;      /* manifests PUT into the target repository */
	unsigned mounted;        /* blobs mounted (201) */
	unsigned uploaded;       /* blobs copied through archmerge (mount answered 202) */
	unsigned tagged;         /* copy tags written */
};

/*
 * Make manifest digest of repository src exist in dst (HEAD first: nothing
 * is done when it is there already), then, when tag is not NULL, point
 * dst:tag at it unless it already does. media_type is the descriptor's (the
 * manifest body may omit it). body/len (borrowed, may be NULL) are the
 * manifest's bytes when the caller has them already, hashing to digest;
 * otherwise they are fetched. Counts what it did in st.
 */
enum am_err copy_manifest(const struct reg_api *api, const char *src, const char *dst,
    const char *digest, const char *media_type, const char *body, size_t len, const char *tag,
    struct copy_stats *st, char *err, size_t errlen);

#endif
