/*
 * Reporting of webhooks and assemblies. Ids are per-process monotonic
 * counters (req=N for webhooks, job=N for assemblies): cheap, unique within
 * one run, and with the timestamp enough to find a line again.
 */
#include "server/observe/observe.h"

#include <stdatomic.h>
#include <string.h>

#include "server/base/common.h"
#include "server/base/log.h"
#include "server/observe/metrics.h"
#include "server/observe/status.h"

static atomic_ullong next_req, next_job;

void
observe_webhook(const char *remote, const char *method, const struct webhook_resp *resp,
    long long ms)
{
	char id[24];

	(void)am_fmt(id, sizeof(id), "%llu", atomic_fetch_add(&next_req, 1) + 1);
	metrics_webhook(resp->status, resp->outcome, resp->reason);
	log_kv(LOG_INFO, "webhook", resp->summary, LOG_S("req", id), LOG_S("remote", remote),
	    LOG_S("method", method), LOG_I("status", resp->status), LOG_I("ms", ms));
}

void
observe_assembly(const struct group *g, const char *rule, const struct asm_result *r,
    long long ms, enum log_level lvl, const char *tail)
{
	char id[24], group[sizeof(g->host) + sizeof(g->repo) + sizeof(g->version) + 4];

	(void)am_fmt(id, sizeof(id), "%llu", atomic_fetch_add(&next_job, 1) + 1);
	(void)am_fmt(group, sizeof(group), "%s/%s:%s", g->host, g->repo, g->version);
	if (r->outcome != ASM_DRY_RUN)
		metrics_assembly(asm_outcome_name(r->outcome));
	if (r->outcome != ASM_DRY_RUN)
		metrics_signing(r->signatures_made, r->unsigned_child);
	status_record(status_global(), id, g, rule, r, ms);
	log_kv(lvl, "assembly", tail, LOG_S("job", id), LOG_S("group", group), LOG_S("rule", rule),
	    LOG_S("target", r->target), LOG_S("result", asm_outcome_name(r->outcome)),
	    LOG_S("digest", r->digest[0] ? r->digest : NULL), LOG_I("ms", ms),
	    LOG_S("detail", r->detail[0] ? r->detail : NULL));
}
