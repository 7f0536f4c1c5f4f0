/*
 * Unit tests: server/log.c rendering -- logfmt quoting and escaping, JSON
 * records with typed fields, free text split into event and fields.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <jansson.h>

#include "server/base/log.h"

static const char *
after_level(const char *line)
{
	const char *p = strstr(line, " level=");
	return p ? strchr(p + 1, ' ') + 1 : "";
}

static void
test_logfmt(void)
{
	const struct log_field f[] = {
		LOG_S("req", "17"), LOG_S("rule", "per arch"), LOG_I("status", 202), LOG_S("skip", NULL),
		LOG_S("detail", "say \"hi\"\\ now\nthen"), LOG_S("empty", ""), LOG_S("eq", "a=b"),
	};
	char line[512];

	log_render(line, sizeof(line), 0, LOG_INFO, "webhook", f, sizeof(f) / sizeof(f[0]), "outcome=queued");
	CHECK(strncmp(line + 24, " level=info ", 12) == 0);   /* after 2026-01-01T00:00:00.000Z */
	CHECK_STR(after_level(line), "webhook req=17 rule=\"per arch\" status=202 "
	    "detail=\"say \\\"hi\\\"\\\\ now\\nthen\" empty=\"\" eq=\"a=b\" outcome=queued");
	CHECK(strchr(line, '\n') == NULL);
	/* free text stays as written */
	log_render(line, sizeof(line), 0, LOG_WARN, NULL, NULL, 0, "http something odd");
	CHECK_STR(after_level(line), "http something odd");
	/* bounded: a long value is cut, never overflows */
	{
		char big[3000];
		const struct log_field g[] = { LOG_S("v", big) };
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		CHECK(log_render(line, sizeof(line), 0, LOG_INFO, "e", g, 1, NULL) == sizeof(line) - 1);
	}
}

static json_t *
render_json(enum log_level lvl, const char *event, const struct log_field *f, size_t n, const char *tail)
{
	char line[2048];
	json_t *j;

	log_render(line, sizeof(line), 1, lvl, event, f, n, tail);
	j = json_loads(line, 0, NULL);
	CHECK(j != NULL);
	return j;
}

static void
test_json(void)
{
	const struct log_field f[] = {
		LOG_S("job", "3"), LOG_I("ms", 41), LOG_S("skip", NULL), LOG_S("bytes", "caf\xc3\xa9 \xff"),
	};
	json_t *j;

	j = render_json(LOG_ERROR, "assembly", f, sizeof(f) / sizeof(f[0]),
	    "result=failed detail=\"PUT: 503 \\\"busy\\\"\"");
	CHECK_STR(json_string_value(json_object_get(j, "level")), "error");
	CHECK_STR(json_string_value(json_object_get(j, "event")), "assembly");
	CHECK(json_string_length(json_object_get(j, "ts")) == 24);
	CHECK_STR(json_string_value(json_object_get(j, "job")), "3");
	CHECK(json_is_integer(json_object_get(j, "ms")) && json_integer_value(json_object_get(j, "ms")) == 41);
	CHECK(json_object_get(j, "skip") == NULL);
	CHECK_STR(json_string_value(json_object_get(j, "bytes")), "caf?? ?");   /* not UTF-8: replaced */
	CHECK_STR(json_string_value(json_object_get(j, "result")), "failed");
	CHECK_STR(json_string_value(json_object_get(j, "detail")), "PUT: 503 \"busy\"");
	json_decref(j);

	/* free text in the `event key=value` shape becomes fields */
	j = render_json(LOG_INFO, NULL, NULL, 0, "listening address=127.0.0.1:8443 tls=on rule=\"a b\"");
	CHECK_STR(json_string_value(json_object_get(j, "event")), "listening");
	CHECK_STR(json_string_value(json_object_get(j, "address")), "127.0.0.1:8443");
	CHECK_STR(json_string_value(json_object_get(j, "rule")), "a b");
	CHECK(json_object_get(j, "msg") == NULL);
	json_decref(j);
	/* anything else stays a message */
	j = render_json(LOG_INFO, NULL, NULL, 0, "startup failed: cannot read x");
	CHECK_STR(json_string_value(json_object_get(j, "msg")), "startup failed: cannot read x");
	CHECK(json_object_get(j, "event") == NULL && json_object_get(j, "failed:") == NULL);
	json_decref(j);
	j = render_json(LOG_INFO, NULL, NULL, 0, "x key=\"unterminated");
	CHECK_STR(json_string_value(json_object_get(j, "msg")), "x key=\"unterminated");
	json_decref(j);
}

static void
run_tests(void)
{
	enum log_level l;

	test_logfmt();
	test_json();
	CHECK(log_level_parse("WARN", &l) == 0 && l == LOG_WARN);
	CHECK(log_level_parse("verbose", &l) == -1);
}

TEST_MAIN("log")
