/*
 * Cleanup's one Harbor call: remove a tag from an artifact through the REST
 * API (DELETE .../artifacts/{digest}/tags/{tag}), never the artifact itself.
 */
#ifndef AM_HARBOR_TAGS_H
#define AM_HARBOR_TAGS_H

#include <stddef.h>
#include "server/base/common.h"
#include "registry/harbor/harbor.h"

/*
 * Remove tag from the artifact reference (a digest) of repository repo
 * ("project/name[/more]"). AM_OK on 200, AM_ENOTFOUND when Harbor answers
 * 404 (tag gone, or now on another artifact: left alone), AM_EAUTH on
 * 401/403, AM_ETRANSIENT on 5xx/429/network, AM_EDENIED otherwise.
 */
enum am_err harbor_delete_tag(struct harbor *h, const char *repo, const char *reference,
    const char *tag, char *err, size_t errlen);

/*
 * The API path for it (below /api/v2.0): project plain, the rest of the
 * repository URL-encoded twice (a/b -> a%252Fb). -1 when repo has no project
 * part or the path does not fit.
 */
int harbor_tag_path(const char *repo, const char *reference, const char *tag,
    char *out, size_t outlen);

#endif
