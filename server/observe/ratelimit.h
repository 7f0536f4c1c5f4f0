/*
 * Log throttle for refusals (wrong secret, not allowed, malformed request):
 * the first `burst` refusals of each interval are logged one by one, the
 * rest only counted; the next call after the interval ends hands back one
 * summary line with counts by reason and address. Thread safe. Metrics are
 * not the throttle's business: callers count every refusal there.
 */
#ifndef AM_RATELIMIT_H
#define AM_RATELIMIT_H

#include <stddef.h>

struct ratelimit;

struct ratelimit *ratelimit_new(long interval_ms, int burst);
void ratelimit_free(struct ratelimit *rl);   /* accepts NULL */

/*
 * One refusal (reason: short static code; addr: client address text).
 * Returns 1 when the caller should log it on its own line, 0 when it was
 * only counted. When an interval with suppressed refusals has ended, summary
 * receives plain text for one log field ("N suppressed in MS ms: reason addr n, ...,
 * other n"; the log module escapes it)
 * and *has_summary is set; the caller logs it.
 */
int ratelimit_hit(struct ratelimit *rl, const char *reason, const char *addr, long long now_ms,
    char *summary, size_t len, int *has_summary);

/* Only hand back a pending summary (for callers that see time pass without refusals). */
int ratelimit_flush(struct ratelimit *rl, long long now_ms, char *summary, size_t len);

#endif
