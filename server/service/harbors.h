/*
 * Harbor REST clients for cleanup (tag removal), one per configured
 * registry, made only when some rule has cleanup = true.
 */
#ifndef AM_HARBORS_H
#define AM_HARBORS_H

#include "config/config.h"
#include "registry/harbor/harbor.h"

/*
 * *out = NULL when no rule cleans up; else an array parallel to
 * cfg->registries (harbor_url, else url; same credentials and CA file).
 */
enum am_err harbors_new(const struct cfg *cfg, const char *const *passwords, struct harbor ***out, char *err, size_t errlen);
void harbors_free(const struct cfg *cfg, struct harbor **h);   /* accepts NULL */

#endif
