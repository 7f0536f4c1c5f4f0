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
	struct log_field f[5 + WEBHOOK_LOG_FIELDS] = {
		LOG_S("req", NULL), LOG_S("remote", remote), LOG_S("method", method),
		LOG_I("status", resp->status), LOG_I("ms", ms),
	};
	char id[24];
	size_t n;

	(void)am_fmt(id, sizeof(id), "%llu", atomic_fetch_add(&next_req, 1) + 1);
	f[0].str = id;
	n = 5 + webhook_log_fields(resp, f + 5);
	metrics_webhook(resp->status, resp->outcome, resp->reason);
	if (log_enabled(LOG_INFO))
		log_event(LOG_INFO, "webhook", f, n);
}

void
observe_assembly(const struct group *g, const char *rule, const struct asm_result *r,
    long long ms, enum log_level lvl, const struct observe_retry *rt)
{
	char id[24], group[GROUP_NAME_MAX];
	int plan = rt != NULL && rt->attempt > 0;

	(void)am_fmt(id, sizeof(id), "%llu", atomic_fetch_add(&next_job, 1) + 1);
	(void)group_name(g, group, sizeof(group));
	if (r->outcome != ASM_DRY_RUN)
		metrics_assembly(asm_outcome_name(r->outcome));
	if (r->outcome != ASM_DRY_RUN)
		metrics_signing(r->signatures_made, r->unsigned_child);
	status_record(status_global(), id, g, rule, r, ms);
	{
		struct log_field f[] = {
			LOG_S("job", id), LOG_S("group", group), LOG_S("rule", rule),
			LOG_S("target", r->target), LOG_S("result", asm_outcome_name(r->outcome)),
			LOG_S("digest", r->digest[0] ? r->digest : NULL), LOG_I("ms", ms),
			LOG_S("detail", r->detail[0] ? r->detail : NULL),
			LOG_I("attempt", plan ? rt->attempt : 0),
			LOG_S("retry", plan && rt->after_restart ? "after-restart" : NULL),
			LOG_I("retry_in_ms", plan ? rt->retry_in_ms : -1),
			LOG_I("retry_after_ms", plan ? rt->retry_after_ms : -1),
		};
		size_t n = sizeof(f) / sizeof(f[0]);

		if (!plan)
			n -= 4;                  /* attempt and the retry plan: only with a plan */
		else if (rt->after_restart || rt->retry_in_ms < 0)
			n -= 2;
		else if (rt->retry_after_ms < 0)
			n -= 1;
		if (log_enabled(lvl))
			log_event(lvl, "assembly", f, n);
	}
}
