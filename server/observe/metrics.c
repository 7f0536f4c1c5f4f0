/*
 * Metrics registry and Prometheus text rendering. Families are fixed here;
 * each holds a bounded set of label combinations (series) under its own
 * mutex, so a hot-path increment is a lock, a short scan and an add.
 *
 * Text format rules followed (Prometheus exposition format 0.0.4): one
 * "# HELP" and "# TYPE" line per family before its samples, help text with
 * \\ and \n escaped, label values with \\, \" and \n escaped, histograms as
 * cumulative _bucket{le="..."} series ending in le="+Inf" (== _count), then
 * _sum and _count; counters end in _total.
 */
#include "server/observe/metrics.h"
#include "server/base/version.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/base/common.h"


#define SERIES_MAX  64     /* label combinations per family; more are dropped */
#define LABELS_LEN  256
#define GAUGES_MAX  32

enum kind { COUNTER, GAUGE, HISTOGRAM };

/* Registry latencies, seconds: 5 ms (loopback) to 30 s (the default timeout). */
static const double latency_bounds[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};
#define NBOUNDS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

struct series {
	char labels[LABELS_LEN];          /* rendered `a="x",b="y"`, "" for none */
	double value;
	unsigned long long buckets[NBOUNDS];   /* per bucket, not cumulative */
	double sum;
	unsigned long long count;
};

struct family {
	const char *name, *help;
	enum kind kind;
	pthread_mutex_t lock;
	struct series series[SERIES_MAX];
	size_t n;
};

#define FAMILY(n, h, k) { (n), (h), (k), PTHREAD_MUTEX_INITIALIZER, { { "", 0, { 0 }, 0, 0 } }, 0 }

static struct family f_webhooks = FAMILY("archmerge_webhooks_total",
    "Webhook requests answered, by outcome (queued, ignored, rejected, unavailable), ignore reason and HTTP status.",
    COUNTER);
static struct family f_assemblies = FAMILY("archmerge_assemblies_total",
    "Assemblies finished, by outcome (published, unchanged, waiting, refused, failed).", COUNTER);
static struct family f_requests = FAMILY("archmerge_registry_requests_total",
    "HTTP requests to registries (token fetches excluded), by method and status (error: no HTTP answer).",
    COUNTER);
static struct family f_latency = FAMILY("archmerge_registry_request_duration_seconds",
    "Duration of HTTP requests to registries, by method.", HISTOGRAM);
static struct family f_tokens = FAMILY("archmerge_registry_token_fetches_total",
    "Token service requests, by status (error: no HTTP answer).", COUNTER);
static struct family f_last_publish = FAMILY("archmerge_last_publish_timestamp_seconds",
    "Unix time of the last index pushed to a registry (0: none since start).", GAUGE);

static struct family f_signatures = FAMILY("archmerge_signatures_total",
    "Index signatures written (sign.key_file).", COUNTER);
static struct family f_unsigned = FAMILY("archmerge_unsigned_child_refusals_total",
    "Groups refused because a child carries no valid signature (require_signed_children).", COUNTER);

static struct family f_notify = FAMILY("archmerge_notify_deliveries_total",
    "Outbound notifications (notify), by outcome: delivered, failed (one attempt, retried), dropped "
    "(outbox full), expired (older than max_age_s).", COUNTER);
static struct family f_blocked = FAMILY("archmerge_policy_blocked_total",
    "Children the registry's project policy would not let be read yet (Harbor 412 PROJECTPOLICYVIOLATION), "
    "by policy (vulnerability, cosign, notation, other); their groups wait.", COUNTER);

static struct family f_refused = FAMILY("archmerge_http_refused_total",
    "Connections and requests refused before reaching a handler or by the webhook's checks, by reason "
    "(not_allowed, bad_request, unauthorized, ...).", COUNTER);

static struct family f_missed = FAMILY("archmerge_events_missed_total",
    "Pushes the change feed found that no event of that source announced within feed.grace_s, by source (webhook).",
    COUNTER);

static struct family f_reg_up = FAMILY("archmerge_registry_up",
    "1 when the last background check reached the registry (GET /v2/ answered), else 0.", GAUGE);
static struct family f_reg_creds = FAMILY("archmerge_registry_credentials_ok",
    "1 when the last background check had the configured credentials accepted, else 0.", GAUGE);

static struct family *const families[] = {
	&f_refused, &f_webhooks, &f_assemblies, &f_requests, &f_latency, &f_tokens, &f_last_publish,
	&f_signatures, &f_unsigned, &f_reg_up, &f_reg_creds, &f_notify, &f_missed, &f_blocked,
};

struct gauge {
	const char *name, *help;
	double (*fn)(void *ctx);
	void *ctx;
};

/* Held while callbacks run, so that unregister waits for a scrape in progress. */
static pthread_mutex_t gauges_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gauge gauges[GAUGES_MAX];
static size_t n_gauges;

static double
wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}

static double start_time;

/* Runs before main: the start time is the process's, whoever scrapes first. */
__attribute__((constructor)) static void
set_start_time(void)
{
	start_time = wall_seconds();
}

/* ---- labels ---- */

/* Append `key="value"` (value escaped) to a label set; -1 when it does not fit. */
static int
label_add(char *buf, size_t len, const char *key, const char *value)
{
	size_t off = strlen(buf);
	const char *p;

	if (am_fmt(buf + off, len - off, "%s%s=\"", off ? "," : "", key) != 0)
		return -1;
	off += strlen(buf + off);
	for (p = value; *p != '\0'; p++) {
		const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
		size_t n = esc ? 2 : 1;
		if (off + n + 2 > len)
			return -1;
		memcpy(buf + off, esc ? esc : p, n);
		off += n;
	}
	buf[off++] = '"';
	buf[off] = '\0';
	return 0;
}

/* Pairs of (key, value) ending with NULL; a NULL value leaves its label out. */
static int
labels_fmt(char *buf, size_t len, ...)
{
	const char *k, *v;
	va_list ap;
	int rc = 0;

	buf[0] = '\0';
	va_start(ap, len);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		if (v != NULL && rc == 0)
			rc = label_add(buf, len, k, v);
	}
	va_end(ap);
	return rc;
}

/* The series with these labels, created when new; NULL when the family is full. Under lock. */
static struct series *
series_get(struct family *f, const char *labels)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->series[i].labels, labels) == 0)
			return &f->series[i];
	if (f->n == SERIES_MAX)
		return NULL;
	memset(&f->series[f->n], 0, sizeof(f->series[f->n]));
	(void)am_fmt(f->series[f->n].labels, LABELS_LEN, "%s", labels);
	return &f->series[f->n++];
}

static void
family_add(struct family *f, const char *labels, double v)
{
	struct series *s;

	pthread_mutex_lock(&f->lock);
	if ((s = series_get(f, labels)) != NULL)
		s->value += v;
	pthread_mutex_unlock(&f->lock);
}

static void
family_set(struct family *f, const char *labels, double v)
{
	struct series *s;

	pthread_mutex_lock(&f->lock);
	if ((s = series_get(f, labels)) != NULL)
		s->value = v;
	pthread_mutex_unlock(&f->lock);
}

static void
family_observe(struct family *f, const char *labels, double v)
{
	struct series *s;
	size_t b;

	pthread_mutex_lock(&f->lock);
	if ((s = series_get(f, labels)) != NULL) {
		for (b = 0; b < NBOUNDS && v > latency_bounds[b]; b++)
			;
		if (b < NBOUNDS)
			s->buckets[b]++;
		s->sum += v;
		s->count++;
	}
	pthread_mutex_unlock(&f->lock);
}

/* ---- feeding ---- */

void
metrics_webhook(int status, const char *outcome, const char *reason)
{
	char labels[LABELS_LEN], st[16];

	(void)am_fmt(st, sizeof(st), "%d", status);
	if (labels_fmt(labels, sizeof(labels), "outcome", outcome ? outcome : "unknown",
	    "reason", reason, "status", st, (const char *)NULL) == 0)
		family_add(&f_webhooks, labels, 1);
}

void
metrics_refused(const char *reason)
{
	char labels[LABELS_LEN];

	if (labels_fmt(labels, sizeof(labels), "reason", reason, (const char *)NULL) == 0)
		family_add(&f_refused, labels, 1);
}

void
metrics_event_missed(const char *source)
{
	char labels[LABELS_LEN];

	if (labels_fmt(labels, sizeof(labels), "source", source, (const char *)NULL) == 0)
		family_add(&f_missed, labels, 1);
}

void
metrics_assembly(const char *outcome)
{
	char labels[LABELS_LEN];

	if (labels_fmt(labels, sizeof(labels), "outcome", outcome, (const char *)NULL) == 0)
		family_add(&f_assemblies, labels, 1);
	if (strcmp(outcome, "published") == 0)
		family_set(&f_last_publish, "", wall_seconds());
}

void
metrics_registry_check(const char *host, int up, int credentials_ok)
{
	char labels[LABELS_LEN];

	if (labels_fmt(labels, sizeof(labels), "registry", host, (const char *)NULL) != 0)
		return;
	family_set(&f_reg_up, labels, up ? 1 : 0);
	family_set(&f_reg_creds, labels, credentials_ok ? 1 : 0);
}

void
metrics_signing(unsigned made, int unsigned_child)
{
	if (made > 0)
		family_add(&f_signatures, "", made);
	if (unsigned_child)
		family_add(&f_unsigned, "", 1);
}

void
metrics_notify(const char *outcome)
{
	char labels[LABELS_LEN];

	if (labels_fmt(labels, sizeof(labels), "outcome", outcome, (const char *)NULL) == 0)
		family_add(&f_notify, labels, 1);
}

void
metrics_policy_blocked(const char *policy)
{
	char labels[LABELS_LEN];

	if (labels_fmt(labels, sizeof(labels), "policy", policy, (const char *)NULL) == 0)
		family_add(&f_blocked, labels, 1);
}

void
metrics_registry_exchange(int token, const char *method, long status, long long ms)
{
	char labels[LABELS_LEN], st[16];

	if (status > 0)
		(void)am_fmt(st, sizeof(st), "%ld", status);
	else
		(void)am_fmt(st, sizeof(st), "error");
	if (token) {
		if (labels_fmt(labels, sizeof(labels), "status", st, (const char *)NULL) == 0)
			family_add(&f_tokens, labels, 1);
		return;
	}
	if (labels_fmt(labels, sizeof(labels), "method", method, "status", st, (const char *)NULL) == 0)
		family_add(&f_requests, labels, 1);
	if (labels_fmt(labels, sizeof(labels), "method", method, (const char *)NULL) == 0)
		family_observe(&f_latency, labels, (double)ms / 1000.0);
}

static int
valid_name(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
		    (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return 0;
	}
	return i > 0;
}

int
metrics_gauge_register(const char *name, const char *help, double (*fn)(void *ctx), void *ctx)
{
	size_t i;
	int rc = -1;

	if (!valid_name(name) || fn == NULL)
		return -1;
	pthread_mutex_lock(&gauges_lock);
	for (i = 0; i < n_gauges; i++)
		if (strcmp(gauges[i].name, name) == 0)
			break;
	if (i < GAUGES_MAX) {
		gauges[i].name = name;
		gauges[i].help = help ? help : "";
		gauges[i].fn = fn;
		gauges[i].ctx = ctx;
		if (i == n_gauges)
			n_gauges++;
		rc = 0;
	}
	pthread_mutex_unlock(&gauges_lock);
	return rc;
}

void
metrics_gauge_unregister(const char *name, void *ctx)
{
	size_t i;

	pthread_mutex_lock(&gauges_lock);
	for (i = 0; i < n_gauges; i++) {
		if (strcmp(gauges[i].name, name) == 0 && gauges[i].ctx == ctx) {
			gauges[i] = gauges[--n_gauges];
			break;
		}
	}
	pthread_mutex_unlock(&gauges_lock);
}

void
metrics_reset(void)
{
	size_t i;

	for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		pthread_mutex_lock(&families[i]->lock);
		families[i]->n = 0;
		pthread_mutex_unlock(&families[i]->lock);
	}
	pthread_mutex_lock(&gauges_lock);
	n_gauges = 0;
	pthread_mutex_unlock(&gauges_lock);
}

/* ---- rendering ---- */

struct sb {
	char *s;
	size_t len, cap;
};

static void sb_add(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sb_add(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (b->len + (size_t)n + 1 > b->cap) {
		b->cap = (b->len + (size_t)n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Go's ParseFloat reads this back exactly enough; integers print without exponent. */
static void
fmt_value(char *buf, size_t len, double v)
{
	if (isnan(v))
		(void)am_fmt(buf, len, "NaN");
	else if (isinf(v))
		(void)am_fmt(buf, len, "%sInf", v > 0 ? "+" : "-");
	else if (fabs(v) < 9e15 && v == (double)(long long)v)
		(void)am_fmt(buf, len, "%lld", (long long)v);
	else
		(void)am_fmt(buf, len, "%.15g", v);
}

static void
header(struct sb *b, const char *name, const char *help, const char *type)
{
	const char *p;

	sb_add(b, "# HELP %s ", name);
	for (p = help; *p != '\0'; p++) {
		if (*p == '\\')
			sb_add(b, "\\\\");
		else if (*p == '\n')
			sb_add(b, "\\n");
		else
			sb_add(b, "%c", *p);
	}
	sb_add(b, "\n# TYPE %s %s\n", name, type);
}

static void
render_histogram(struct sb *b, const struct family *f, const struct series *s)
{
	char v[64];
	const char *sep = s->labels[0] ? "," : "";
	unsigned long long cum = 0;
	size_t i;

	for (i = 0; i < NBOUNDS; i++) {
		cum += s->buckets[i];
		fmt_value(v, sizeof(v), latency_bounds[i]);
		sb_add(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", f->name, s->labels, sep, v, cum);
	}
	sb_add(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels, sep, s->count);
	fmt_value(v, sizeof(v), s->sum);
	if (s->labels[0]) {
		sb_add(b, "%s_sum{%s} %s\n", f->name, s->labels, v);
		sb_add(b, "%s_count{%s} %llu\n", f->name, s->labels, s->count);
	} else {
		sb_add(b, "%s_sum %s\n%s_count %llu\n", f->name, v, f->name, s->count);
	}
}

static void
render_family(struct sb *b, struct family *f)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };
	char v[64];
	size_t i;

	pthread_mutex_lock(&f->lock);
	header(b, f->name, f->help, types[f->kind]);
	for (i = 0; i < f->n; i++) {
		const struct series *s = &f->series[i];
		if (f->kind == HISTOGRAM) {
			render_histogram(b, f, s);
			continue;
		}
		fmt_value(v, sizeof(v), s->value);
		if (s->labels[0])
			sb_add(b, "%s{%s} %s\n", f->name, s->labels, v);
		else
			sb_add(b, "%s %s\n", f->name, v);
	}
	pthread_mutex_unlock(&f->lock);
}

/* Series every scrape should show even before the first event (rate() needs a 0). */
static void
seed(void)
{
	static const char *const outcomes[] = { "published", "unchanged", "waiting", "refused", "failed" };
	static const char *const notify[] = { "delivered", "failed", "dropped", "expired" };
	static const char *const policies[] = { "vulnerability", "cosign", "notation", "other" };
	char labels[LABELS_LEN];
	size_t i;

	for (i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		if (labels_fmt(labels, sizeof(labels), "outcome", outcomes[i], (const char *)NULL) == 0)
			family_add(&f_assemblies, labels, 0);
	for (i = 0; i < sizeof(notify) / sizeof(notify[0]); i++)
		if (labels_fmt(labels, sizeof(labels), "outcome", notify[i], (const char *)NULL) == 0)
			family_add(&f_notify, labels, 0);
	family_add(&f_last_publish, "", 0);
	family_add(&f_signatures, "", 0);
	family_add(&f_unsigned, "", 0);
	if (labels_fmt(labels, sizeof(labels), "source", "webhook", (const char *)NULL) == 0)
		family_add(&f_missed, labels, 0);
	for (i = 0; i < sizeof(policies) / sizeof(policies[0]); i++)
		if (labels_fmt(labels, sizeof(labels), "policy", policies[i], (const char *)NULL) == 0)
			family_add(&f_blocked, labels, 0);
}

char *
metrics_render(void)
{
	struct sb b = { NULL, 0, 0 };
	char v[64], labels[LABELS_LEN];
	size_t i;

	seed();
	(void)labels_fmt(labels, sizeof(labels), "version", am_version(), (const char *)NULL);
	header(&b, "archmerge_build_info", "Build information; the value is always 1.", "gauge");
	sb_add(&b, "archmerge_build_info{%s} 1\n", labels);
	header(&b, "archmerge_start_time_seconds", "Unix time the process started.", "gauge");
	fmt_value(v, sizeof(v), start_time);
	sb_add(&b, "archmerge_start_time_seconds %s\n", v);
	for (i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		render_family(&b, families[i]);
	pthread_mutex_lock(&gauges_lock);
	for (i = 0; i < n_gauges; i++) {
		header(&b, gauges[i].name, gauges[i].help, "gauge");
		fmt_value(v, sizeof(v), gauges[i].fn(gauges[i].ctx));
		sb_add(&b, "%s %s\n", gauges[i].name, v);
	}
	pthread_mutex_unlock(&gauges_lock);
	return b.s;
}
