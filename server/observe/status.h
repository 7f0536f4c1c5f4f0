/*
 * The status recorder: a bounded, in-memory picture of what the service did
 * lately, fed by one call per assembly and read by GET /status. Groups that
 * wait (and what they lack), recent publications and recent failures.
 * Thread safe (one mutex); memory is fixed at creation.
 */
#ifndef AM_STATUS_H
#define AM_STATUS_H

#include <stddef.h>
#include <jansson.h>

#include "config/rule.h"
#include "registry/assemble/assemble.h"

#define STATUS_MAX_WAITING 256   /* oldest-checked waiting groups are forgotten beyond this */
#define STATUS_MAX_RECENT  50    /* publications and failures kept, each */

struct status_rec;

struct status_rec *status_new(void);
void status_free(struct status_rec *s);   /* accepts NULL */

/* The process-wide recorder the service feeds and the HTTP front reads (never freed). */
struct status_rec *status_global(void);

/*
 * Note one finished assembly (all borrowed). waiting: the group enters or
 * stays in the waiting list; published/unchanged/refused: it leaves it;
 * published: a publication entry; refused/failed: a failure entry with the
 * detail (the registry's message). Dry runs are not recorded.
 */
void status_record(struct status_rec *s, const char *job, const struct group *g,
    const char *rule, const struct asm_result *r, long long ms);

size_t status_waiting_count(struct status_rec *s);

/*
 * {"waiting":[{group, rule, target, missing[], detail, since, last_check, checks}],
 *  "published":[{time, group, rule, target, digest, job, ms}],      newest first
 *  "failures":[{time, group, rule, target, outcome, error, job}],  newest first
 *  "counts":{outcome: n}} -- new reference.
 */
json_t *status_json(struct status_rec *s);

#endif
