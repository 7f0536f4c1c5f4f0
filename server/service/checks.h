/*
 * The background checks readiness and /status report: state_dir takes a
 * synced block, each registry of the current generation answers /v2/ and
 * accepts the credentials. One thread, every few seconds, bounded
 * timeouts; readers copy the last results and never wait on a registry.
 */
#ifndef AM_SERVICE_CHECKS_H
#define AM_SERVICE_CHECKS_H

#include <stddef.h>
#include "handlers/ops.h"
#include "server/service/service.h"

struct checks;

/* Probe state_dir once now (a verdict before the first request), then start the thread. */
struct checks *checks_start(struct service *svc, const char *state_dir);
void checks_stop(struct checks *k);      /* joins the thread; accepts NULL */

/* A copy of the last results. */
struct checks_snap {
	long long dir_checked_ms;
	int dir_ok;
	char dir_err[512];
	struct ops_registry *regs;   /* owned: checks_snap_clear frees */
	size_t n_regs;
};
void checks_snapshot(struct checks *k, struct checks_snap *out);
void checks_snap_clear(struct checks_snap *s);

#endif
