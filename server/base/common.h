/*
 * Shared vocabulary of every archmerge module: the error convention, the
 * out-of-memory policy and bounded string helpers.
 *
 * Error convention: functions return an am_err (AM_OK == 0) and, where they
 * take one, fill a caller-supplied `char *err, size_t errlen` buffer with a
 * one-line human explanation. The buffer is left untouched on success.
 */
#ifndef AM_COMMON_H
#define AM_COMMON_H

#include <stdarg.h>
#include <stddef.h>

enum am_err {
	AM_OK = 0,
	AM_ENOTFOUND,   /* the thing asked for does not exist (any 404) */
	AM_EINVAL,      /* bad input: payload, config, manifest, name */
	AM_EAUTH,       /* credentials rejected by the registry */
	AM_EDENIED,     /* permanent refusal: 403, 412, 413, 400 ... */
	AM_ETRANSIENT,  /* worth retrying: network, timeout, 5xx, 429 */
	AM_EMISMATCH,   /* content contradicts what we expected (arch, digest) */
	AM_EIO,         /* local I/O */
	AM_EPOLICY,     /* a read refused by the registry's project policy (Harbor's 412
	                   PROJECTPOLICYVIOLATION: unscanned, vulnerable, unsigned): not yet */
};

/* Short stable name of an error code, for logs ("transient", "auth", ...). */
const char *am_strerror(enum am_err e);

/* Allocation never fails: on exhaustion these log and abort. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/*
 * snprintf into a fixed buffer; returns 0, or -1 when the result did not fit
 * (the buffer then holds a truncated, terminated string).
 */
int am_fmt(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Fill err (may be NULL) and return code: `return am_fail(err, len, AM_EINVAL, "...")`. */
enum am_err am_fail(char *err, size_t errlen, enum am_err code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Constant-time comparison of two byte strings of possibly different lengths. */
int am_secure_equal(const char *a, size_t alen, const char *b, size_t blen);

/* Read a whole small file (at most max bytes) into a NUL-terminated buffer (caller frees). */
enum am_err am_read_file(const char *path, size_t max, char **out, size_t *outlen,
    char *err, size_t errlen);

/*
 * Read a secret file: refuses files readable by group or others, strips one
 * trailing newline. Caller wipes and frees with am_secret_free().
 */
enum am_err am_read_secret(const char *path, char **out, char *err, size_t errlen);
void am_secret_free(char *s);

/* Monotonic clock in milliseconds. */
long long am_now_ms(void);

/* Wall clock (Unix time) in milliseconds: for times written down or sent. */
long long am_wall_ms(void);

#endif
