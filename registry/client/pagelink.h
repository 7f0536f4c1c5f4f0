/*
 * Pagination links of the distribution API: `Link: <url>; rel="next"` on
 * tags/list (and _catalog) answers. Parses the header and resolves the
 * target against the registry's base URL, refusing any other host.
 */
#ifndef AM_REGISTRY_PAGELINK_H
#define AM_REGISTRY_PAGELINK_H

#include <stddef.h>
#include "server/base/common.h"

/*
 * The target of the rel="next" entry of a Link header value (several
 * comma-separated entries allowed). Returns 1 and fills url, 0 when there is
 * no next entry, -1 when the header is malformed or url too small.
 */
int pagelink_next(const char *header, char *url, size_t urllen);

/*
 * Resolve a link target against the registry base URL ("https://host[:port]")
 * and the path of the request it came with ("/v2/x/tags/list?n=10"): an
 * absolute URL on the same scheme, host and port, a scheme-relative
 * "//host/...", an absolute path, a query ("?last=x") or a relative path.
 * Fills path with "/..." (query kept). AM_EDENIED for another origin,
 * AM_EINVAL for anything unusable (spaces, control bytes, too long).
 */
enum am_err pagelink_resolve(const char *base_url, const char *cur_path, const char *link,
    char *path, size_t pathlen, char *err, size_t errlen);

#endif
