/*
 * One-line logs on stderr, as logfmt (`ts level=.. event key=value ...`) or
 * as one JSON object per line (log_format = "json"). The level is checked
 * before any formatting. Thread safe (one write(2) per line).
 */
#ifndef AM_LOG_H
#define AM_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level lvl);
int log_level_parse(const char *s, enum log_level *out);
int log_enabled(enum log_level lvl);
/* JSON lines instead of logfmt (set once at startup, before threads start). */
void log_set_json(int on);

/*
 * Free text, written as `event key=value ...` by convention. In JSON mode the
 * text is split into "event" and its key=value pairs when it has that shape,
 * else it becomes "msg".
 */
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One field of a structured event: a string (NULL: field left out) or an integer. */
struct log_field {
	const char *key;
	int is_num;
	const char *str;
	long long num;
};
#define LOG_S(k, v) { (k), 0, (v), 0 }
#define LOG_I(k, v) { (k), 1, NULL, (long long)(v) }

/*
 * A structured event: fields are typed (numbers stay numbers in JSON); tail
 * (may be NULL) is an already formatted logfmt fragment `k=v k="v v"` that is
 * appended as is, or parsed into fields in JSON mode. Strings are quoted and
 * escaped as needed, so values may hold anything.
 */
void log_event(enum log_level lvl, const char *event, const struct log_field *f, size_t n,
    const char *tail);
#define log_kv(lvl, event, tail, ...) do { \
	const struct log_field log_f_[] = { __VA_ARGS__ }; \
	if (log_enabled(lvl)) \
		log_event((lvl), (event), log_f_, sizeof(log_f_) / sizeof(log_f_[0]), (tail)); \
} while (0)

/* Exposed for tests: render into buf (NUL terminated, no newline); returns the length. */
size_t log_render(char *buf, size_t len, int json, enum log_level lvl, const char *event,
    const struct log_field *f, size_t n, const char *tail);

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_enabled(LOG_INFO))  log_msg(LOG_INFO,  __VA_ARGS__); } while (0)
#define log_warn(...)  do { if (log_enabled(LOG_WARN))  log_msg(LOG_WARN,  __VA_ARGS__); } while (0)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
