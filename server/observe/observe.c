/*
 * Reporting of webhooks and assemblies. Ids are per-process monotonic
 * counters (req=N for webhooks, job=N for assemblies): cheap, unique within
 * one run, and with the timestamp enough to find a line again.
 */
#include "server/observe/observe.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "server/base/common.h"
#include "server/base/log.h"
#include "server/observe/metrics.h"
#include "server/observe/ratelimit.h"
#include "server/observe/status.h"

static atomic_ullong next_req, next_job;

/*
 * Refusals are what a flood is made of: at most REFUSAL_BURST lines per
 * REFUSAL_INTERVAL_MS, then one summary (about 6 lines per 10 s, some
 * 15 KB a minute, whatever the request rate).
 */
#define REFUSAL_INTERVAL_MS 10000
#define REFUSAL_BURST 5

static pthread_once_t throttle_once = PTHREAD_ONCE_INIT;
static struct ratelimit *throttle;

static void
throttle_init(void)
{
	throttle = ratelimit_new(REFUSAL_INTERVAL_MS, REFUSAL_BURST);
}

static void
log_summary(const char *tail)
{
	log_kv(LOG_WARN, "refusals_suppressed", LOG_I("burst", REFUSAL_BURST), LOG_S("summary", tail));
}

/* 1: log this refusal on its own line. Logs a pending summary first. */
static int
throttle_pass(const char *reason, const char *remote)
{
	char summary[768];
	int has_summary = 0, pass;

	pthread_once(&throttle_once, throttle_init);
	pass = ratelimit_hit(throttle, reason, remote ? remote : "-", am_now_ms(), summary,
	    sizeof(summary), &has_summary);
	if (has_summary)
		log_summary(summary);
	return pass;
}

void
observe_refusals_flush(void)
{
	char summary[768];

	pthread_once(&throttle_once, throttle_init);
	if (ratelimit_flush(throttle, am_now_ms(), summary, sizeof(summary)))
		log_summary(summary);
}

void
observe_http_message(const char *message)
{
	if (throttle_pass("http_message", "-"))
		log_kv(LOG_WARN, "http", LOG_S("message", message));
}

void
observe_refusal(const char *reason, const char *remote, int status)
{
	metrics_refused(reason);
	if (throttle_pass(reason, remote))
		log_kv(LOG_WARN, "refused", LOG_S("reason", reason), LOG_S("remote", remote),
		    LOG_I("status", status));
}

void
observe_webhook(const char *remote, const char *method, const struct webhook_resp *resp,
    long long ms)
{
	struct log_field f[5 + WEBHOOK_LOG_FIELDS] = {
		LOG_S("req", NULL), LOG_S("remote", remote), LOG_S("method", method),
		LOG_I("status", resp->status), LOG_I("ms", ms),
	};
	char id[24];
	int rejected = resp->outcome != NULL && strcmp(resp->outcome, "rejected") == 0;
	size_t n;

	(void)am_fmt(id, sizeof(id), "%llu", atomic_fetch_add(&next_req, 1) + 1);
	f[0].str = id;
	n = 5 + webhook_log_fields(resp, f + 5);
	metrics_webhook(resp->status, resp->outcome, resp->reason);
	if (rejected) {
		metrics_refused(resp->status == 401 ? "unauthorized" : "invalid_webhook");
		if (!throttle_pass(resp->status == 401 ? "unauthorized" : "invalid_webhook", remote))
			return;
	} else {
		observe_refusals_flush();
	}
	if (log_enabled(LOG_INFO))
		log_event(LOG_INFO, "webhook", f, n);
}

/* One line per child the registry's policy refused, with its own words. */
static void
log_blocked(const char *id, const char *group, const struct asm_block *b, enum log_level lvl)
{
	char source[NAME_MAX_REPO + NAME_MAX_TAG + 2];

	if (!log_enabled(lvl))
		return;
	(void)am_fmt(source, sizeof(source), "%s%s%s", b->repo, b->tag[0] ? ":" : "", b->tag);
	log_kv(lvl, "assembly blocked by registry policy", LOG_S("job", id), LOG_S("group", group),
	    LOG_S("arch", b->arch), LOG_S("policy", asm_policy_name(b->policy)), LOG_S("source", source),
	    LOG_S("digest", b->digest[0] ? b->digest : NULL),
	    LOG_S("message", b->message[0] ? b->message : NULL));
}

void
observe_assembly(struct status_rec *st, const struct group *g, const char *rule,
    const struct asm_result *r, long long ms, enum log_level lvl, const struct observe_retry *rt)
{
	char id[24], group[GROUP_NAME_MAX];
	int plan = rt != NULL && rt->attempt > 0;
	size_t i;

	(void)am_fmt(id, sizeof(id), "%llu", atomic_fetch_add(&next_job, 1) + 1);
	(void)group_name(g, group, sizeof(group));
	if (r->outcome != ASM_DRY_RUN)
		metrics_assembly(asm_outcome_name(r->outcome));
	if (r->outcome != ASM_DRY_RUN)
		metrics_signing(r->signatures_made, r->unsigned_child);
	for (i = 0; r->outcome == ASM_WAITING && i < r->n_blocked; i++)
		metrics_policy_blocked(asm_policy_name(r->blocked[i].policy));
	status_record(st, id, g, rule, r, ms);
	for (i = 0; r->outcome == ASM_WAITING && i < r->n_blocked; i++)
		log_blocked(id, group, &r->blocked[i], lvl);
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
