/*
 * Reconcile inside `serve`: owns the remembered-repositories set (handed to
 * the service, which records every queued group's repository) and the
 * thread that runs a reconcile pass on start and every reconcile.interval_s,
 * queueing complete groups for the workers.
 */
#ifndef AM_RECONCILER_H
#define AM_RECONCILER_H

#include <stddef.h>
#include "config/config.h"
#include "server/service/service.h"

struct reconciler;

/* Open <state_dir>/repositories and attach it to svc (cfg, svc borrowed; must outlive it). */
struct reconciler *reconciler_new(const struct cfg *cfg, struct service *svc,
    char *err, size_t errlen);

/* Start the thread (on start when reconcile.on_start, then every interval_s; 0 = never). */
void reconciler_start(struct reconciler *r);

/*
 * Stop promptly (wakes the wait, cuts a running pass short between
 * requests), detach from the service and free. Call after the HTTP server
 * stopped and before the service is freed. Accepts NULL.
 */
void reconciler_free(struct reconciler *r);

#endif
