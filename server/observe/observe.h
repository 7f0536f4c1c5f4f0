/*
 * What the service says about each webhook and each assembly, in one call
 * per event: the log line (with a request or job id), the metrics and the
 * status recorder. Keeps the HTTP front and the service free of reporting
 * details.
 */
#ifndef AM_OBSERVE_H
#define AM_OBSERVE_H

#include "config/rule.h"
#include "handlers/webhook.h"
#include "registry/assemble/assemble.h"

/* A webhook was answered (all borrowed). */
void observe_webhook(const char *remote, const char *method, const struct webhook_resp *resp,
    long long ms);

/* What follows a failed run: attempt 0 means no retry plan is logged. */
struct observe_retry {
	unsigned attempt;            /* 1-based number of the run that just ended */
	int after_restart;           /* shutting down: the journal keeps the group */
	long retry_in_ms;            /* -1: none */
	long retry_after_ms;         /* the registry's Retry-After, -1: none */
};

/*
 * A connection or request refused before any handler decided (not allowed,
 * malformed, ...): counted in archmerge_http_refused_total, logged at a
 * bounded rate (a few per interval, then one summary line by reason and
 * address). Rejected webhooks (observe_webhook) share the same throttle.
 */
void observe_refusal(const char *reason, const char *remote, int status);
/* A message from CivetWeb (TLS handshake failures and the like), logged at the same bounded rate. */
void observe_http_message(const char *message);
/* Log the summary of a finished interval, if refusals were suppressed. */
void observe_refusals_flush(void);

/*
 * An assembly finished (all borrowed): logged, counted and noted in st (the
 * service's status recorder). rule is the rule's name, lvl the log level the
 * caller chose (a retried fault is a warning), retry the retry plan (may be
 * NULL).
 */
struct status_rec;
void observe_assembly(struct status_rec *st, const struct group *g, const char *rule,
    const struct asm_result *r, long long ms, enum log_level lvl, const struct observe_retry *retry);

#endif
