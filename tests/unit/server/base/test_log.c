/*
 * Unit tests: server/base/log.c rendering -- logfmt quoting and escaping,
 * JSON records with typed fields, and the forging test: hostile values in
 * every field come back, through an independent logfmt parser, as the same
 * values on one line.
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

/* ---- a small logfmt parser, written from the format, not from log.c ---- */

#define PMAX 32
struct parsed {
	size_t n;
	char key[PMAX][64];
	char val[PMAX][4096];
	int bad;
};

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* key=value, key="quoted", bare words (value ""). Escapes: \" \\ \n \t \r \xHH. */
static void
logfmt_parse(const char *s, struct parsed *p)
{
	size_t k, v;

	memset(p, 0, sizeof(*p));
	while (*s != '\0' && p->n < PMAX) {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		for (k = 0; *s != '\0' && *s != ' ' && *s != '=' && *s != '"' && k + 1 < 64; s++)
			p->key[p->n][k++] = *s;
		v = 0;
		if (*s == '=') {
			s++;
			if (*s == '"') {
				for (s++; *s != '\0' && *s != '"' && v + 1 < 4096; s++) {
					if (*s != '\\') {
						if ((unsigned char)*s < 0x20)
							p->bad = 1;     /* a raw control byte in a line */
						p->val[p->n][v++] = *s;
						continue;
					}
					s++;
					switch (*s) {
					case 'n': p->val[p->n][v++] = '\n'; break;
					case 't': p->val[p->n][v++] = '\t'; break;
					case 'r': p->val[p->n][v++] = '\r'; break;
					case '"': case '\\': p->val[p->n][v++] = *s; break;
					case 'x':
						if (hexval(s[1]) < 0 || hexval(s[2]) < 0) {
							p->bad = 1;
							return;
						}
						p->val[p->n][v++] = (char)(hexval(s[1]) * 16 + hexval(s[2]));
						s += 2;
						break;
					default:
						p->bad = 1;
						return;
					}
				}
				if (*s != '"') {
					p->bad = 1;
					return;
				}
				s++;
			} else {
				while (*s != '\0' && *s != ' ') {
					if (*s == '"' || *s == '=')
						p->bad = 1;
					p->val[p->n][v++] = *s++;
				}
			}
		} else if (*s == '"') {
			p->bad = 1;
			return;
		}
		p->n++;
	}
}

static const char *
pget(const struct parsed *p, const char *key, int *count)
{
	const char *found = NULL;
	size_t i;

	*count = 0;
	for (i = 0; i < p->n; i++)
		if (strcmp(p->key[i], key) == 0) {
			(*count)++;
			found = p->val[i];
		}
	return found;
}

static void
test_logfmt(void)
{
	const struct log_field f[] = {
		LOG_S("req", "17"), LOG_S("rule", "per arch"), LOG_I("status", 202), LOG_S("skip", NULL),
		LOG_S("detail", "say \"hi\"\\ now\nthen"), LOG_S("empty", ""), LOG_S("eq", "a=b"),
		LOG_S("outcome", "queued"),
	};
	char line[512];

	log_render(line, sizeof(line), 0, LOG_INFO, "webhook", f, sizeof(f) / sizeof(f[0]));
	CHECK(strncmp(line + 24, " level=info ", 12) == 0);   /* after 2026-01-01T00:00:00.000Z */
	CHECK_STR(after_level(line), "webhook req=17 rule=\"per arch\" status=202 "
	    "detail=\"say \\\"hi\\\"\\\\ now\\nthen\" empty=\"\" eq=\"a=b\" outcome=queued");
	CHECK(strchr(line, '\n') == NULL);
	/* bounded: a long value is cut, still closed and parseable, and the line says so */
	{
		char big[3000];
		const struct log_field g[] = { LOG_S("v", big), LOG_S("after", "x") };
		struct parsed p;
		int c;
		size_t len;

		memset(big, '"', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		len = log_render(line, sizeof(line), 0, LOG_INFO, "e", g, 2);
		CHECK(len < sizeof(line) && len == strlen(line));
		logfmt_parse(line, &p);
		CHECK(!p.bad);
		CHECK(pget(&p, "truncated", &c) != NULL && c == 1);
		CHECK(pget(&p, "after", &c) == NULL);
		CHECK(pget(&p, "v", &c) != NULL && strspn(pget(&p, "v", &c), "\"") == strlen(pget(&p, "v", &c)));
	}
}

/*
 * The forging test: a registry message that tries to end the quoted value
 * and add fields of its own, newlines, control bytes, backslashes at the
 * end, '=' and spaces, in every field. Each value must come back as given,
 * the fields stay exactly the ones the code wrote, all on one line.
 */
static void
test_hostile_round_trip(void)
{
	static const char *const hostile[] = {
		"denied\" result=published digest=sha256:forged note=\"x",
		"line one\nlevel=info assembly result=published",
		"cr\rlf\n tab\t bell\x07 esc\x1b[31m del\x7f",
		"ends in a backslash \\",
		"\\\" quote after backslash",
		"key=value",
		"\"",
		"",
		" leading space",
		"unicode caf\xc3\xa9 ok",
	};
	const char *keys[] = { "group", "rule", "target", "result", "digest", "detail", "operator" };
	size_t h, k, nk = sizeof(keys) / sizeof(keys[0]);
	char line[4200];
	struct parsed p;
	int c;

	for (h = 0; h < sizeof(hostile) / sizeof(hostile[0]); h++) {
		struct log_field f[8];
		for (k = 0; k < nk; k++) {
			f[k].key = keys[k];
			f[k].is_num = 0;
			f[k].str = hostile[h];
			f[k].num = 0;
		}
		f[nk].key = "ms";
		f[nk].is_num = 1;
		f[nk].str = NULL;
		f[nk].num = -42;
		log_render(line, sizeof(line), 0, LOG_WARN, "assembly", f, nk + 1);
		CHECK(strchr(line, '\n') == NULL && strchr(line, '\r') == NULL);
		logfmt_parse(line, &p);
		CHECK(!p.bad);
		/* ts, level, the event word, the fields, nothing else */
		CHECK(p.n == 3 + nk + 1);
		CHECK(pget(&p, "level", &c) != NULL && c == 1 && strcmp(pget(&p, "level", &c), "warn") == 0);
		CHECK(pget(&p, "assembly", &c) != NULL && c == 1);
		for (k = 0; k < nk; k++) {
			const char *v = pget(&p, keys[k], &c);
			CHECK(v != NULL && c == 1 && strcmp(v, hostile[h]) == 0);
			if (v == NULL || strcmp(v, hostile[h]) != 0)
				fprintf(stderr, "  hostile %zu key %s: line %s\n", h, keys[k], line);
		}
		CHECK(pget(&p, "ms", &c) != NULL && strcmp(pget(&p, "ms", &c), "-42") == 0);
		CHECK(pget(&p, "note", &c) == NULL);

		/* JSON: one line, the same values (all valid UTF-8 here), numbers as numbers */
		{
			json_t *j;
			log_render(line, sizeof(line), 1, LOG_WARN, "assembly", f, nk + 1);
			CHECK(strchr(line, '\n') == NULL);
			j = json_loads(line, 0, NULL);
			CHECK(j != NULL);
			for (k = 0; j != NULL && k < nk; k++)
				CHECK_STR(json_string_value(json_object_get(j, keys[k])), hostile[h]);
			CHECK(j != NULL && json_is_integer(json_object_get(j, "ms")));
			CHECK(j != NULL && json_object_get(j, "note") == NULL);
			json_decref(j);
		}
	}
}

static json_t *
render_json(enum log_level lvl, const char *event, const struct log_field *f, size_t n)
{
	char line[2048];
	json_t *j;

	log_render(line, sizeof(line), 1, lvl, event, f, n);
	j = json_loads(line, 0, NULL);
	CHECK(j != NULL);
	return j;
}

static void
test_json(void)
{
	const struct log_field f[] = {
		LOG_S("job", "3"), LOG_I("ms", 41), LOG_S("skip", NULL), LOG_S("bytes", "caf\xc3\xa9 \xff"),
		LOG_S("result", "failed"), LOG_S("detail", "PUT: 503 \"busy\""), LOG_I("pending", 0),
	};
	json_t *j;

	j = render_json(LOG_ERROR, "assembly", f, sizeof(f) / sizeof(f[0]));
	CHECK_STR(json_string_value(json_object_get(j, "level")), "error");
	CHECK_STR(json_string_value(json_object_get(j, "event")), "assembly");
	CHECK(json_string_length(json_object_get(j, "ts")) == 24);
	CHECK_STR(json_string_value(json_object_get(j, "job")), "3");
	CHECK(json_is_integer(json_object_get(j, "ms")) && json_integer_value(json_object_get(j, "ms")) == 41);
	/* issue 16: "pending":0, not "pending":"0" */
	CHECK(json_is_integer(json_object_get(j, "pending")) &&
	    json_integer_value(json_object_get(j, "pending")) == 0);
	CHECK(json_object_get(j, "skip") == NULL);
	CHECK_STR(json_string_value(json_object_get(j, "bytes")), "caf?? ?");   /* not UTF-8: replaced */
	CHECK_STR(json_string_value(json_object_get(j, "result")), "failed");
	CHECK_STR(json_string_value(json_object_get(j, "detail")), "PUT: 503 \"busy\"");
	json_decref(j);
}

static void
run_tests(void)
{
	enum log_level l;

	test_logfmt();
	test_hostile_round_trip();
	test_json();
	CHECK(log_level_parse("WARN", &l) == 0 && l == LOG_WARN);
	CHECK(log_level_parse("verbose", &l) == -1);
	log_set_level(LOG_WARN);
	CHECK(!log_enabled(LOG_INFO) && log_enabled(LOG_ERROR));
	log_set_level(LOG_INFO);
}

TEST_MAIN("log")
