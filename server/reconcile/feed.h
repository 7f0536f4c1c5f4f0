/*
 * The Harbor change feed inside `serve`: an event source that needs no
 * webhook. Every feed.interval_s it asks the REST API of each registry with
 * a harbor_url for the repositories of the projects the rules cover that
 * changed since its cursor (newest update first), then for their tagged
 * artifacts pushed since (newest push first). Each source tag goes through
 * claim_tag(), the journal and the queue like a webhook's; the cursor
 * (<state_dir>/feed-cursor) advances only after that. A push no webhook
 * announced within feed.grace_s is counted as missed
 * (archmerge_events_missed_total{source="webhook"}, /status "feed").
 */
#ifndef AM_FEED_H
#define AM_FEED_H

#include <stddef.h>
#include "config/config.h"
#include "server/service/service.h"

struct feed;

/*
 * Load the cursor from cfg->state_dir (cfg, svc borrowed; must outlive the
 * feed). NULL with err on failure. When the feed is off (feed.interval_s 0
 * or no registry has a harbor_url) it is created but never runs.
 */
struct feed *feed_new(const struct cfg *cfg, struct service *svc, char *err, size_t errlen);

/* Start the thread: a pass on start, then every feed.interval_s. */
void feed_start(struct feed *f);

/* Stop promptly (wakes the wait; a pass stops between requests) and free. Accepts NULL. */
void feed_free(struct feed *f);

#endif
