/*
 * Process-wide metrics in the Prometheus text exposition format (0.0.4).
 * Counters and histograms are fed by one-line calls at the places where
 * things happen (HTTP front, assembly, registry client); gauges that other
 * modules own are read through callbacks at scrape time.
 *
 * Process-wide on purpose, like a Prometheus client's default registry: the
 * registry client and the service would otherwise have to thread a pointer
 * through every constructor. Every entry point is thread safe (one mutex per
 * metric family, held for a few instructions).
 */
#ifndef AM_METRICS_H
#define AM_METRICS_H

#include <stddef.h>

/* A webhook answered: status, outcome ("accepted", "ignored", "rejected"), reason (NULL: none). */
void metrics_webhook(int status, const char *outcome, const char *reason);

/* A connection or request refused (reason: short static code); every one is counted. */
void metrics_refused(const char *reason);

/* The change feed found a push no event of source ("webhook") announced in time. */
void metrics_event_missed(const char *source);

/* An assembly finished with outcome (asm_outcome_name); "published" also stamps the time. */
void metrics_assembly(const char *outcome);
/* Index signatures written by one assembly; a refusal for an unsigned child. */
void metrics_signing(unsigned made, int unsigned_child);
/* One child the registry's policy refused to let be read (policy: asm_policy_name()). */
void metrics_policy_blocked(const char *policy);

/* An outbound notification: delivered, failed (an attempt; retried), dropped (outbox full), expired. */
void metrics_notify(const char *outcome);

/*
 * One HTTP exchange with a registry finished: status 0 means no HTTP answer
 * (network, TLS, timeout). token=1 counts a token-service fetch instead of
 * a registry request.
 */
void metrics_registry_exchange(int token, const char *method, long status, long long ms);

/* The background registry check's last result for host (registry_up, registry_credentials_ok). */
void metrics_registry_check(const char *host, int up, int credentials_ok);

/*
 * A gauge owned by another module: fn(ctx) is called at scrape time, from an
 * HTTP thread, and must be thread safe. name must be a valid metric name
 * (both strings borrowed: use literals). Registering a name again replaces
 * the previous callback. Returns -1 when the table is full or name invalid.
 */
int metrics_gauge_register(const char *name, const char *help, double (*fn)(void *ctx), void *ctx);
/* Remove name if it is still registered with ctx; waits for a running scrape. */
void metrics_gauge_unregister(const char *name, void *ctx);

/* The whole exposition text (caller frees). */
char *metrics_render(void);

/* Content-Type of metrics_render()'s text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Tests: zero every counter and forget registered gauges. */
void metrics_reset(void);

#endif
