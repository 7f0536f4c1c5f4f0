/*
 * What the Harbor change feed did lately, for GET /status and /ui: passes,
 * the last error, groups it queued, and pushes no webhook announced (the
 * sign that Harbor's deliveries do not arrive). Thread safe; fixed memory.
 */
#ifndef AM_FEEDSTAT_H
#define AM_FEEDSTAT_H

#include <jansson.h>

#define FEEDSTAT_MAX_MISSED 20   /* recent missed pushes kept */

struct feedstat;

struct feedstat *feedstat_new(void);
void feedstat_free(struct feedstat *f);          /* accepts NULL */
/* The process-wide one the feed feeds and /status reads (never freed). */
struct feedstat *feedstat_global(void);

/* The feed runs every interval_s (0: the feed is off) with grace_s. */
void feedstat_configure(struct feedstat *f, long interval_s, long grace_s);
/* One pass ended: error NULL when it went through, else why not (borrowed). */
void feedstat_pass(struct feedstat *f, const char *error, unsigned queued);
/* A push no webhook announced within the grace period (all borrowed). */
void feedstat_missed(struct feedstat *f, const char *host, const char *repo, const char *tag,
    const char *digest, long long push_ms);

/*
 * {"enabled", "interval_s", "grace_s", "passes", "last_pass", "last_error",
 *  "queued", "missed_webhooks", "recent_missed":[{registry, repository, tag,
 *  digest, push_time}] newest first, "hint" (when any was missed)} -- new reference.
 */
json_t *feedstat_json(struct feedstat *f);

#endif
