/*
 * One-line logs on stderr, as logfmt (`ts level=.. event key=value ...`) or
 * as one JSON object per line (log_format = "json"). The level is checked
 * before any formatting. Thread safe (one write(2) per line); the level is an
 * atomic, so SIGHUP may change it while threads log.
 */
#ifndef AM_LOG_H
#define AM_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level lvl);   /* any thread, any time */
int log_level_parse(const char *s, enum log_level *out);
int log_enabled(enum log_level lvl);
/* JSON lines instead of logfmt (set once at startup, before threads start). */
void log_set_json(int on);

/*
 * One field of an event: a string (NULL: field left out) or an integer.
 * Every log line is an event name (a fixed word from the code) and typed
 * fields; there is no free-text entry point, so text from outside (registry
 * messages, tags, operators) only ever lands inside one escaped value.
 */
struct log_field {
	const char *key;             /* a fixed word from the code: [a-z0-9_] */
	int is_num;
	const char *str;
	long long num;
};
#define LOG_S(k, v) { (k), 0, (v), 0 }
#define LOG_I(k, v) { (k), 1, NULL, (long long)(v) }

/*
 * Write one line. logfmt: values are quoted when they hold a space, '=',
 * a quote, a backslash or a control character; inside quotes `"` and `\`
 * are escaped, newline, tab and CR as \n \t \r, other control bytes as
 * \xHH. A line longer than 4 KiB ends cleanly after the last field that fit
 * (a cut value keeps its closing quote) and gets truncated=1. JSON: numbers
 * are numbers, bytes that are not UTF-8 become '?'.
 */
void log_event(enum log_level lvl, const char *event, const struct log_field *f, size_t n);
#define log_kv(lvl, event, ...) do { \
	const struct log_field log_f_[] = { __VA_ARGS__ }; \
	if (log_enabled(lvl)) \
		log_event((lvl), (event), log_f_, sizeof(log_f_) / sizeof(log_f_[0])); \
} while (0)

/* Exposed for tests: render into buf (NUL terminated, no newline); returns the length. */
size_t log_render(char *buf, size_t len, int json, enum log_level lvl, const char *event,
    const struct log_field *f, size_t n);

#endif
