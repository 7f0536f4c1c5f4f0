/*
 * Implementation of the shared vocabulary in common.h: errors, allocation
 * that aborts on exhaustion, bounded formatting and small file helpers.
 */
#include "server/base/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

const char *
am_strerror(enum am_err e)
{
	switch (e) {
	case AM_OK: return "ok";
	case AM_ENOTFOUND: return "not-found";
	case AM_EINVAL: return "invalid";
	case AM_EAUTH: return "auth";
	case AM_EDENIED: return "denied";
	case AM_ETRANSIENT: return "transient";
	case AM_EMISMATCH: return "mismatch";
	case AM_EIO: return "io";
	case AM_EPOLICY: return "policy";
	}
	return "unknown";
}

static void
oom(size_t n)
{
	/* The honest policy for a service of this size: say why, then stop. */
	fprintf(stderr, "archmerge: out of memory allocating %zu bytes\n", n);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom(n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		oom(n * size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		oom(n);
	return q;
}

char *
xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

int
am_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

enum am_err
am_fail(char *err, size_t errlen, enum am_err code, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

int
am_secure_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = (unsigned char)(alen != blen);
	size_t i;

	/* Walk the expected length whatever the input, so timing says nothing. */
	for (i = 0; i < blen; i++)
		diff |= (unsigned char)(b[i] ^ (i < alen ? a[i] : 0));
	return diff == 0;
}

enum am_err
am_read_file(const char *path, size_t max, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	FILE *f;
	char *buf = NULL;
	size_t len = 0, n;
	enum am_err rc = AM_OK;

	if ((f = fopen(path, "rb")) == NULL)
		return am_fail(err, errlen, AM_EIO, "%s: %s", path, strerror(errno));
	buf = xmalloc(max + 1);
	while ((n = fread(buf + len, 1, max + 1 - len, f)) > 0) {
		len += n;
		if (len > max) {
			rc = am_fail(err, errlen, AM_EINVAL, "%s: larger than %zu bytes", path, max);
			goto fail;
		}
	}
	if (ferror(f)) {
		rc = am_fail(err, errlen, AM_EIO, "%s: read error", path);
		goto fail;
	}
	fclose(f);
	buf[len] = '\0';
	*out = buf;
	if (outlen != NULL)
		*outlen = len;
	return AM_OK;
fail:
	fclose(f);
	free(buf);
	return rc;
}

enum am_err
am_read_secret(const char *path, char **out, char *err, size_t errlen)
{
	struct stat st;
	char *s;
	size_t len;
	enum am_err rc;

	if (stat(path, &st) != 0)
		return am_fail(err, errlen, AM_EIO, "%s: %s", path, strerror(errno));
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return am_fail(err, errlen, AM_EINVAL,
		    "%s: secret file is accessible by group or others (mode %03o); run chmod 600 %s",
		    path, (unsigned)(st.st_mode & 0777), path);
	if ((rc = am_read_file(path, 4096, &s, &len, err, errlen)) != AM_OK)
		return rc;
	if (len > 0 && s[len - 1] == '\n')
		s[--len] = '\0';
	if (len > 0 && s[len - 1] == '\r')
		s[--len] = '\0';
	if (len == 0) {
		am_secret_free(s);
		return am_fail(err, errlen, AM_EINVAL, "%s: secret file is empty", path);
	}
	*out = s;
	return AM_OK;
}

void
am_secret_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

long long
am_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
am_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
