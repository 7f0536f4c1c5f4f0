/*
 * The status recorder: a bounded, in-memory picture of what the service did
 * lately, fed by one call per assembly and read by GET /status. Groups that
 * wait (and what they lack), recent publications and recent failures.
 * Thread safe (one mutex); memory is fixed at creation.
 */
#ifndef AM_STATUS_H
#define AM_STATUS_H

#include <stddef.h>
#include <time.h>
#include <jansson.h>

#include "config/rule.h"
#include "registry/assemble/assemble.h"

#define STATUS_MAX_WAITING 256   /* oldest-checked waiting groups are forgotten beyond this (counted, logged) */
#define STATUS_MAX_RECENT  50    /* publications and failures kept, each */

struct status_rec;

struct status_rec *status_new(void);
void status_free(struct status_rec *s);   /* accepts NULL */

/*
 * Note one finished assembly (all borrowed). waiting: the group enters or
 * stays in the waiting list; published/unchanged/refused: it leaves it;
 * published: a publication entry; refused/failed: a failure entry with the
 * detail (the registry's message). Dry runs are not recorded.
 */
void status_record(struct status_rec *s, const char *job, const struct group *g,
    const char *rule, const struct asm_result *r, long long ms);

/* A webhook asked for group g now: a later publication reports the time since (borrowed). */
void status_hint(struct status_rec *s, const struct group *g);

size_t status_waiting_count(struct status_rec *s);

/* Seconds since the longest-waiting group first waited, at now; 0 when none waits. */
double status_oldest_waiting_seconds(struct status_rec *s, time_t now);

/*
 * {"waiting":[{group, rule, target, missing[], present[], detail, since, last_check, checks}],
 *  "published":[{time, group, rule, target, digest, children[], tags_pushed, detail,
 *                webhook_to_publish_ms (when a webhook asked), job, ms}],   newest first
 *  "failures":[{time, group, rule, target, outcome, error, present[], job}],  newest first
 *  "waiting_forgotten": n (times the full list gave up its longest-unchecked group),
 *  "counts":{outcome: n}, "started", "uptime_seconds"} -- new reference.
 * present[] and children[]: {arch, source ("repo:tag", "" when taken from the
 * published index), digest, platform (read from the image config)}.
 */
json_t *status_json(struct status_rec *s);

#endif
