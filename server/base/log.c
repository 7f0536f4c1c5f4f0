/*
 * Log lines on stderr: an RFC 3339 UTC timestamp, the level, the event and
 * its key=value fields, either as logfmt or as one JSON object per line
 * (built with Jansson). Free-text lines written as `event key=value ...` are
 * split into fields in JSON mode, so every caller gets structured output.
 */
#include "server/base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "server/base/common.h"

#define LINE_MAX_BYTES 4096           /* logfmt: longer lines are cut */
#define JSON_MAX_BYTES (64 * 1024)    /* JSON: longer records lose their fields */

static volatile int min_level = LOG_INFO;
static volatile int json_mode;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
log_set_level(enum log_level lvl)
{
	min_level = lvl;
}

void
log_set_json(int on)
{
	json_mode = on;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	int i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int
log_enabled(enum log_level lvl)
{
	return (int)lvl >= min_level;
}

static void
timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t off;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	off = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	(void)am_fmt(buf + off, len - off, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* ---- logfmt ---- */

struct out {
	char *buf;
	size_t len, used;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->used + 1 >= o->len)
		return;
	if (n > o->len - 1 - o->used)
		n = o->len - 1 - o->used;
	memcpy(o->buf + o->used, s, n);
	o->used += n;
	o->buf[o->used] = '\0';
}

static void
puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static int
needs_quotes(const char *v)
{
	const unsigned char *p;

	if (v[0] == '\0')
		return 1;
	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f)
			return 1;
	return 0;
}

static void
put_value(struct out *o, const char *v)
{
	const unsigned char *p;
	char esc[8];

	if (!needs_quotes(v)) {
		puts_(o, v);
		return;
	}
	put(o, "\"", 1);
	for (p = (const unsigned char *)v; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			put(o, esc, 2);
		} else if (*p == '\n') {
			put(o, "\\n", 2);
		} else if (*p == '\t') {
			put(o, "\\t", 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			(void)am_fmt(esc, sizeof(esc), "\\x%02x", *p);
			puts_(o, esc);
		} else {
			put(o, (const char *)p, 1);
		}
	}
	put(o, "\"", 1);
}

static size_t
render_logfmt(char *buf, size_t len, enum log_level lvl, const char *event,
    const struct log_field *f, size_t n, const char *tail)
{
	struct out o = { buf, len, 0 };
	char ts[40], num[32];
	size_t i;

	buf[0] = '\0';
	timestamp(ts, sizeof(ts));
	puts_(&o, ts);
	puts_(&o, " level=");
	puts_(&o, level_names[lvl]);
	if (event != NULL) {
		puts_(&o, " ");
		puts_(&o, event);
	}
	for (i = 0; i < n; i++) {
		if (!f[i].is_num && f[i].str == NULL)
			continue;
		puts_(&o, " ");
		puts_(&o, f[i].key);
		puts_(&o, "=");
		if (f[i].is_num) {
			(void)am_fmt(num, sizeof(num), "%lld", f[i].num);
			puts_(&o, num);
		} else {
			put_value(&o, f[i].str);
		}
	}
	if (tail != NULL && tail[0] != '\0') {
		puts_(&o, " ");
		puts_(&o, tail);
	}
	return o.used;
}

/* ---- JSON ---- */

/* A JSON string even from bytes that are not UTF-8 (those become '?'). */
static json_t *
jstr(const char *s, size_t n)
{
	json_t *v = json_stringn(s, n);
	char *copy;
	size_t i;

	if (v != NULL)
		return v;
	copy = xstrndup(s, n);
	for (i = 0; copy[i] != '\0'; i++)
		if ((unsigned char)copy[i] >= 0x80 || (unsigned char)copy[i] < 0x20)
			copy[i] = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

static int
key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '_' || c == '-' || c == '.';
}

/* Parse `k=v k="quoted \" v" ...` into obj; -1 when s does not have that shape. */
static int
parse_pairs(const char *s, json_t *obj)
{
	char key[64], *val = xmalloc(strlen(s) + 1);
	size_t k, v;
	int rc = 0;

	while (*s != '\0') {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		for (k = 0; key_char(*s) && k + 1 < sizeof(key); s++)
			key[k++] = *s;
		key[k] = '\0';
		if (k == 0 || *s++ != '=') {
			rc = -1;
			break;
		}
		v = 0;
		if (*s == '"') {
			for (s++; *s != '\0' && *s != '"'; s++) {
				if (*s == '\\' && s[1] != '\0') {
					s++;
					val[v++] = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
				} else {
					val[v++] = *s;
				}
			}
			if (*s++ != '"') {
				rc = -1;
				break;
			}
		} else {
			while (*s != '\0' && *s != ' ')
				val[v++] = *s++;
		}
		json_object_set_new(obj, key, jstr(val, v));
	}
	free(val);
	return rc;
}

static char *
render_json(enum log_level lvl, const char *event, const struct log_field *f, size_t n,
    const char *tail)
{
	json_t *o = json_object(), *fields = json_object();
	char ts[40], *s;
	const char *sp;
	size_t i;

	timestamp(ts, sizeof(ts));
	json_object_set_new(o, "ts", json_string(ts));
	json_object_set_new(o, "level", json_string(level_names[lvl]));
	if (event != NULL) {
		json_object_set_new(o, "event", jstr(event, strlen(event)));
		if (tail != NULL && tail[0] != '\0' && parse_pairs(tail, fields) != 0) {
			json_object_clear(fields);
			json_object_set_new(o, "detail", jstr(tail, strlen(tail)));
		}
	} else if (tail != NULL) {
		/* Free text: "event k=v ..." when it has that shape, else a plain message. */
		for (sp = tail; key_char(*sp); sp++)
			;
		if (sp != tail && (*sp == '\0' || *sp == ' ') && parse_pairs(sp, fields) == 0) {
			json_object_set_new(o, "event", jstr(tail, (size_t)(sp - tail)));
		} else {
			json_object_clear(fields);
			json_object_set_new(o, "msg", jstr(tail, strlen(tail)));
		}
	}
	json_object_update_missing(o, fields);
	for (i = 0; i < n; i++) {
		if (f[i].is_num)
			json_object_set_new(o, f[i].key, json_integer(f[i].num));
		else if (f[i].str != NULL)
			json_object_set_new(o, f[i].key, jstr(f[i].str, strlen(f[i].str)));
	}
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s != NULL && strlen(s) > JSON_MAX_BYTES) {
		free(s);
		json_object_clear(o);
		json_object_set_new(o, "ts", json_string(ts));
		json_object_set_new(o, "level", json_string(level_names[lvl]));
		json_object_set_new(o, "msg", json_string("log record too long, fields dropped"));
		if (event != NULL)
			json_object_set_new(o, "event", jstr(event, strlen(event)));
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	}
	json_decref(fields);
	json_decref(o);
	return s;
}

size_t
log_render(char *buf, size_t len, int json, enum log_level lvl, const char *event,
    const struct log_field *f, size_t n, const char *tail)
{
	char *s;
	size_t l;

	if (len == 0)
		return 0;
	if (!json)
		return render_logfmt(buf, len, lvl, event, f, n, tail);
	s = render_json(lvl, event, f, n, tail);
	l = s != NULL ? strlen(s) : 0;
	if (l >= len)
		l = len - 1;
	if (s != NULL)
		memcpy(buf, s, l);
	buf[l] = '\0';
	free(s);
	return l;
}

static void
write_line(char *line, size_t len)
{
	line[len++] = '\n';
	/* One write per line keeps lines whole across threads. */
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

void
log_event(enum log_level lvl, const char *event, const struct log_field *f, size_t n,
    const char *tail)
{
	char line[LINE_MAX_BYTES + 1];
	char *s;

	if (!json_mode) {
		write_line(line, render_logfmt(line, sizeof(line) - 1, lvl, event, f, n, tail));
		return;
	}
	if ((s = render_json(lvl, event, f, n, tail)) == NULL)
		return;
	s = xrealloc(s, strlen(s) + 2);
	write_line(s, strlen(s));
	free(s);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	char text[LINE_MAX_BYTES];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);   /* truncated text is still one line */
	va_end(ap);
	log_event(lvl, NULL, NULL, 0, text);
}
