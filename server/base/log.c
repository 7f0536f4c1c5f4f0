/*
 * Log lines on stderr: an RFC 3339 UTC timestamp, the level, the event and
 * its typed key=value fields, either as logfmt or as one JSON object per line
 * (built with Jansson). Values are escaped here and nowhere else.
 */
#include "server/base/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "server/base/common.h"

#define LINE_MAX_BYTES 4096           /* logfmt: longer lines end with truncated=1 */
#define JSON_MAX_BYTES (64 * 1024)    /* JSON: longer records lose their fields */
#define TRUNC_MARK " truncated=1"

/* Written on SIGHUP (reload) while every thread reads it. */
static atomic_int min_level = LOG_INFO;
static atomic_int json_mode;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
log_set_level(enum log_level lvl)
{
	atomic_store_explicit(&min_level, (int)lvl, memory_order_relaxed);
}

void
log_set_json(int on)
{
	atomic_store_explicit(&json_mode, on, memory_order_relaxed);
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
	return (int)lvl >= atomic_load_explicit(&min_level, memory_order_relaxed);
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

/* A bounded output; `end` is where writing must stop (room kept for the truncation mark). */
struct out {
	char *buf;
	size_t end, used;
	int cut;
};

/* All of s or nothing: pieces (an escape, a field) are never split. */
static int
put(struct out *o, const char *s, size_t n)
{
	if (o->cut || n > o->end - o->used) {
		o->cut = 1;
		return -1;
	}
	memcpy(o->buf + o->used, s, n);
	o->used += n;
	o->buf[o->used] = '\0';
	return 0;
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

/* The escape of one byte inside quotes; returns its length. */
static size_t
escape_byte(unsigned char c, char esc[8])
{
	switch (c) {
	case '"': case '\\':
		esc[0] = '\\';
		esc[1] = (char)c;
		return 2;
	case '\n': memcpy(esc, "\\n", 2); return 2;
	case '\t': memcpy(esc, "\\t", 2); return 2;
	case '\r': memcpy(esc, "\\r", 2); return 2;
	default:
		break;
	}
	if (c < 0x20 || c == 0x7f) {
		(void)am_fmt(esc, 8, "\\x%02x", c);
		return 4;
	}
	esc[0] = (char)c;
	return 1;
}

/*
 * key=value. A quoted value that does not fit is cut at an escape boundary
 * and still closed (the line stays parseable); an unquoted one that does
 * not fit is left out with its key.
 */
static void
put_field(struct out *o, const char *key, const char *v)
{
	const unsigned char *p;
	size_t start = o->used, n;
	char esc[8];

	if (put(o, " ", 1) != 0 || put(o, key, strlen(key)) != 0 || put(o, "=", 1) != 0)
		goto undo;
	if (!needs_quotes(v)) {
		if (put(o, v, strlen(v)) != 0)
			goto undo;
		return;
	}
	if (o->end - o->used < 8)
		goto undo;
	o->end--;                     /* room for the closing quote, whatever happens */
	(void)put(o, "\"", 1);
	for (p = (const unsigned char *)v; *p != '\0' && !o->cut; p++) {
		n = escape_byte(*p, esc);
		(void)put(o, esc, n);
	}
	o->end++;
	o->buf[o->used++] = '"';
	o->buf[o->used] = '\0';
	return;
undo:
	o->used = start;
	o->buf[start] = '\0';
	o->cut = 1;
}

static size_t
render_logfmt(char *buf, size_t len, enum log_level lvl, const char *event,
    const struct log_field *f, size_t n)
{
	struct out o = { buf, 0, 0, 0 };
	char ts[40], num[32];
	size_t i;

	buf[0] = '\0';
	if (len < sizeof(TRUNC_MARK) + 64)
		return 0;
	o.end = len - sizeof(TRUNC_MARK);   /* NUL and the mark always fit */
	timestamp(ts, sizeof(ts));
	(void)put(&o, ts, strlen(ts));
	(void)put(&o, " level=", 7);
	(void)put(&o, level_names[lvl], strlen(level_names[lvl]));
	if (event != NULL) {
		(void)put(&o, " ", 1);
		(void)put(&o, event, strlen(event));
	}
	for (i = 0; i < n && !o.cut; i++) {
		if (f[i].is_num) {
			(void)am_fmt(num, sizeof(num), "%lld", f[i].num);
			put_field(&o, f[i].key, num);
		} else if (f[i].str != NULL) {
			put_field(&o, f[i].key, f[i].str);
		}
	}
	if (o.cut) {
		memcpy(buf + o.used, TRUNC_MARK, sizeof(TRUNC_MARK));
		o.used += sizeof(TRUNC_MARK) - 1;
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

static json_t *
json_record(const char *ts, enum log_level lvl, const char *event)
{
	json_t *o = json_object();

	json_object_set_new(o, "ts", json_string(ts));
	json_object_set_new(o, "level", json_string(level_names[lvl]));
	if (event != NULL)
		json_object_set_new(o, "event", jstr(event, strlen(event)));
	return o;
}

static char *
render_json(enum log_level lvl, const char *event, const struct log_field *f, size_t n)
{
	json_t *o;
	char ts[40], *s;
	size_t i;

	timestamp(ts, sizeof(ts));
	o = json_record(ts, lvl, event);
	for (i = 0; i < n; i++) {
		if (f[i].is_num)
			json_object_set_new(o, f[i].key, json_integer(f[i].num));
		else if (f[i].str != NULL)
			json_object_set_new(o, f[i].key, jstr(f[i].str, strlen(f[i].str)));
	}
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s != NULL && strlen(s) > JSON_MAX_BYTES) {
		free(s);
		json_decref(o);
		o = json_record(ts, lvl, event);
		json_object_set_new(o, "msg", json_string("log record too long, fields dropped"));
		json_object_set_new(o, "truncated", json_integer(1));
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	}
	json_decref(o);
	return s;
}

size_t
log_render(char *buf, size_t len, int json, enum log_level lvl, const char *event,
    const struct log_field *f, size_t n)
{
	char *s;
	size_t l;

	if (len == 0)
		return 0;
	if (!json)
		return render_logfmt(buf, len, lvl, event, f, n);
	s = render_json(lvl, event, f, n);
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
log_event(enum log_level lvl, const char *event, const struct log_field *f, size_t n)
{
	char line[LINE_MAX_BYTES + 1];
	char *s;

	if (!atomic_load_explicit(&json_mode, memory_order_relaxed)) {
		write_line(line, render_logfmt(line, sizeof(line) - 1, lvl, event, f, n));
		return;
	}
	if ((s = render_json(lvl, event, f, n)) == NULL)
		return;
	s = xrealloc(s, strlen(s) + 2);
	write_line(s, strlen(s));
	free(s);
}
