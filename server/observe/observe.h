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

/*
 * An assembly finished (all borrowed); rule is the rule's name, lvl the log
 * level the caller chose (a retried fault is a warning), tail extra logfmt
 * fields such as the retry plan (may be NULL).
 */
void observe_assembly(const struct group *g, const char *rule, const struct asm_result *r,
    long long ms, enum log_level lvl, const char *tail);

#endif
