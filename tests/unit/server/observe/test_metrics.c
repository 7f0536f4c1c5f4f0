/*
 * Unit tests: server/metrics.c -- the Prometheus text exposition format
 * (HELP/TYPE lines, label and help escaping, histogram buckets, +Inf, sums),
 * gauge callbacks and concurrent increments.
 */
#include "tests/unit/harness.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "server/observe/metrics.h"

static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
		p += n;
	}
	fprintf(stderr, "missing line: %s\n", line);
	return 0;
}

/* Offset of a whole line, or -1. */
static long
line_at(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return p - text;
		p += n;
	}
	return -1;
}

static double g_value;
static double
gauge_fn(void *ctx)
{
	return *(double *)ctx;
}

static void
test_counters_and_labels(void)
{
	char *t;

	metrics_reset();
	metrics_webhook(202, "queued", NULL);
	metrics_webhook(202, "queued", NULL);
	metrics_webhook(200, "ignored", "not_push");
	metrics_webhook(401, "rejected", NULL);
	metrics_webhook(400, "rejected", "a\"b\\c\nd");
	metrics_assembly("published");
	metrics_assembly("waiting");
	metrics_assembly("waiting");
	t = metrics_render();
	CHECK(has_line(t, "# HELP archmerge_webhooks_total Webhook requests answered, by outcome "
	    "(queued, ignored, rejected, unavailable), ignore reason and HTTP status."));
	CHECK(has_line(t, "# TYPE archmerge_webhooks_total counter"));
	CHECK(has_line(t, "archmerge_webhooks_total{outcome=\"queued\",status=\"202\"} 2"));
	CHECK(has_line(t, "archmerge_webhooks_total{outcome=\"ignored\",reason=\"not_push\",status=\"200\"} 1"));
	CHECK(has_line(t, "archmerge_webhooks_total{outcome=\"rejected\",status=\"401\"} 1"));
	/* label values escape backslash, double quote and newline */
	CHECK(has_line(t, "archmerge_webhooks_total{outcome=\"rejected\",reason=\"a\\\"b\\\\c\\nd\",status=\"400\"} 1"));
	CHECK(has_line(t, "archmerge_assemblies_total{outcome=\"published\"} 1"));
	CHECK(has_line(t, "archmerge_assemblies_total{outcome=\"waiting\"} 2"));
	/* outcomes never seen still show, at 0 */
	CHECK(has_line(t, "archmerge_assemblies_total{outcome=\"refused\"} 0"));
	CHECK(has_line(t, "archmerge_assemblies_total{outcome=\"failed\"} 0"));
	CHECK(has_line(t, "# TYPE archmerge_last_publish_timestamp_seconds gauge"));
	CHECK(line_at(t, "archmerge_last_publish_timestamp_seconds 0") < 0);   /* stamped */
	CHECK(has_line(t, "archmerge_build_info{version=\"" ARCHMERGE_VERSION "\"} 1"));
	/* HELP, then TYPE, then the samples of each family */
	CHECK(line_at(t, "# HELP archmerge_assemblies_total Assemblies finished, by outcome (published, "
	    "unchanged, waiting, refused, failed).") < line_at(t, "# TYPE archmerge_assemblies_total counter"));
	CHECK(line_at(t, "# TYPE archmerge_assemblies_total counter") <
	    line_at(t, "archmerge_assemblies_total{outcome=\"published\"} 1"));
	CHECK(t[strlen(t) - 1] == '\n');
	free(t);
}

static void
test_histogram(void)
{
	char *t;

	metrics_reset();
	metrics_registry_exchange(0, "GET", 200, 3);
	metrics_registry_exchange(0, "GET", 404, 7);
	metrics_registry_exchange(0, "PUT", 201, 120);
	metrics_registry_exchange(0, "HEAD", 0, 40000);   /* no answer, beyond the last bound */
	metrics_registry_exchange(1, "GET", 200, 15);
	metrics_registry_exchange(1, "GET", 0, 15);
	t = metrics_render();
	CHECK(has_line(t, "# TYPE archmerge_registry_request_duration_seconds histogram"));
	CHECK(has_line(t, "archmerge_registry_requests_total{method=\"GET\",status=\"200\"} 1"));
	CHECK(has_line(t, "archmerge_registry_requests_total{method=\"GET\",status=\"404\"} 1"));
	CHECK(has_line(t, "archmerge_registry_requests_total{method=\"HEAD\",status=\"error\"} 1"));
	CHECK(has_line(t, "archmerge_registry_token_fetches_total{status=\"200\"} 1"));
	CHECK(has_line(t, "archmerge_registry_token_fetches_total{status=\"error\"} 1"));
	/* cumulative buckets */
	CHECK(has_line(t, "archmerge_registry_request_duration_seconds_bucket{method=\"GET\",le=\"0.005\"} 1"));
	CHECK(has_line(t, "archmerge_registry_request_duration_seconds_bucket{method=\"GET\",le=\"0.01\"} 2"));
	CHECK(has_line(t, "archmerge_registry_request_duration_seconds_bucket{method=\"GET\",le=\"30\"} 2"));
	CHECK(has_line(t, "archmerge_registry_request_duration_seconds_bucket{method=\"GET\",le=\"+Inf\"} 2"));
	CHECK(has_line(t, "archmerge_registry_request_duration_seconds_sum{method=\"GET\"} 0.01"));
	CHECK(has_line(t, "archmerge_registry_request_duration_seconds_count{method=\"GET\"} 2"));
	CHECK(has_line(t, "archmerge_registry_request_duration_seconds_bucket{method=\"PUT\",le=\"0.1\"} 0"));
	CHECK(has_line(t, "archmerge_registry_request_duration_seconds_bucket{method=\"PUT\",le=\"0.25\"} 1"));
	CHECK(has_line(t, "archmerge_registry_request_duration_seconds_sum{method=\"PUT\"} 0.12"));
	CHECK(has_line(t, "archmerge_registry_request_duration_seconds_bucket{method=\"HEAD\",le=\"30\"} 0"));
	CHECK(has_line(t, "archmerge_registry_request_duration_seconds_bucket{method=\"HEAD\",le=\"+Inf\"} 1"));
	CHECK(has_line(t, "archmerge_registry_request_duration_seconds_sum{method=\"HEAD\"} 40"));
	/* token fetches are not registry requests */
	CHECK(line_at(t, "archmerge_registry_request_duration_seconds_count{method=\"GET\"} 3") < 0);
	free(t);
}

static void
test_gauges(void)
{
	double other = 1;
	char *t;

	metrics_reset();
	CHECK(metrics_gauge_register("9bad", "", gauge_fn, &g_value) == -1);
	CHECK(metrics_gauge_register("bad-name", "", gauge_fn, &g_value) == -1);
	CHECK(metrics_gauge_register("ok_gauge", "first line\nback\\slash", gauge_fn, &g_value) == 0);
	g_value = 7.5;
	t = metrics_render();
	CHECK(has_line(t, "# HELP ok_gauge first line\\nback\\\\slash"));
	CHECK(has_line(t, "# TYPE ok_gauge gauge"));
	CHECK(has_line(t, "ok_gauge 7.5"));
	free(t);
	g_value = NAN;
	t = metrics_render();
	CHECK(has_line(t, "ok_gauge NaN"));
	free(t);
	g_value = -INFINITY;
	t = metrics_render();
	CHECK(has_line(t, "ok_gauge -Inf"));
	free(t);
	g_value = 1767225600.123;
	t = metrics_render();
	CHECK(has_line(t, "ok_gauge 1767225600.123"));
	free(t);
	/* unregister with another owner's ctx keeps it; with the right one removes it */
	metrics_gauge_unregister("ok_gauge", &other);
	t = metrics_render();
	CHECK(strstr(t, "\nok_gauge ") != NULL);
	free(t);
	metrics_gauge_unregister("ok_gauge", &g_value);
	t = metrics_render();
	CHECK(strstr(t, "ok_gauge") == NULL);
	free(t);
}

static void
test_series_cap(void)
{
	char *t, *p;
	int i, n = 0;

	metrics_reset();
	for (i = 0; i < 200; i++)
		metrics_registry_exchange(1, "GET", 100 + i, 1);
	t = metrics_render();
	for (p = t; (p = strstr(p, "\narchmerge_registry_token_fetches_total{")) != NULL; p++)
		n++;
	CHECK(n == 64);   /* bounded: more label combinations are dropped */
	free(t);
}

static void *
hammer(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 20000; i++) {
		metrics_assembly("unchanged");
		metrics_registry_exchange(0, "HEAD", 200, 1);
	}
	return NULL;
}

static void
test_threads(void)
{
	pthread_t th[4];
	char *t;
	int i;

	metrics_reset();
	for (i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, hammer, NULL);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	t = metrics_render();
	CHECK(has_line(t, "archmerge_assemblies_total{outcome=\"unchanged\"} 80000"));
	CHECK(has_line(t, "archmerge_registry_request_duration_seconds_count{method=\"HEAD\"} 80000"));
	free(t);
}

/* The background registry check's gauges: one series per host, overwritten each round. */
static void
test_registry_check(void)
{
	char *t;

	metrics_reset();
	metrics_registry_check("harbor.example.com", 1, 0);
	metrics_registry_check("other.example.com", 0, 0);
	metrics_registry_check("harbor.example.com", 1, 1);
	t = metrics_render();
	CHECK(has_line(t, "# TYPE archmerge_registry_up gauge"));
	CHECK(has_line(t, "archmerge_registry_up{registry=\"harbor.example.com\"} 1"));
	CHECK(has_line(t, "archmerge_registry_credentials_ok{registry=\"harbor.example.com\"} 1"));
	CHECK(has_line(t, "archmerge_registry_up{registry=\"other.example.com\"} 0"));
	CHECK(has_line(t, "archmerge_registry_credentials_ok{registry=\"other.example.com\"} 0"));
	free(t);
}

static void
run_tests(void)
{
	test_registry_check();
	test_counters_and_labels();
	test_histogram();
	test_gauges();
	test_series_cap();
	test_threads();
}

TEST_MAIN("metrics")
