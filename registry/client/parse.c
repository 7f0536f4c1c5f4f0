/*
 * Pure helpers of the registry client: bounded copies, text clean-up, and the
 * readings of what a registry answered (Retry-After, its errors[] body, the
 * status mapping, the words for a rejection). No I/O.
 */
#include "registry/client/internal.h"
#include "server/base/num.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

/* ---- small helpers ---- */

int
cl_is_2xx(long status)
{
	return status >= 200 && status < 300;
}

void
cl_copy_bounded(char *dst, size_t dstlen, const char *src, size_t n)
{
	/* A value that does not fit is dropped whole rather than cut short. */
	if (n >= dstlen)
		n = 0;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Registry text ends up in our messages and logs: keep it one printable line. */
void
cl_sanitize(char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char u = (unsigned char)*s;
		if (u < 0x20 || u == 0x7f)
			*s = '?';
	}
}

int
cl_is_http_url(const char *s)
{
	return strncasecmp(s, "https://", 8) == 0 || strncasecmp(s, "http://", 7) == 0;
}

/* ---- replies ---- */

long
cl_retry_after_ms(const char *v)
{
	long long s;
	time_t t, now;

	if (v[0] == '\0')
		return -1;
	if (v[0] >= '0' && v[0] <= '9') {
		if (am_parse_numz(v, 0, LLONG_MAX, &s) != 0)
			return -1;
		if (s > RETRY_AFTER_MAX_S)
			s = RETRY_AFTER_MAX_S;
		return (long)(s * 1000);
	}
	if ((t = curl_getdate(v, NULL)) == -1)
		return -1;
	now = time(NULL);
	if (t <= now)
		return 0;
	if (t - now > RETRY_AFTER_MAX_S)
		return RETRY_AFTER_MAX_S * 1000;
	return (long)(t - now) * 1000;
}

/* The first entry of {"errors":[...]}: its code and message, each "" when absent, sanitized. */
void
cl_registry_error_parts(const struct resp *rs, char *code, size_t clen, char *msg, size_t mlen)
{
	json_t *root = NULL, *e;
	const char *c, *m;

	code[0] = '\0';
	msg[0] = '\0';
	if (rs->body == NULL || rs->body_len == 0)
		return;
	root = json_loadb(rs->body, rs->body_len, 0, NULL);
	e = json_array_get(json_object_get(root, "errors"), 0);
	c = json_string_value(json_object_get(e, "code"));
	m = json_string_value(json_object_get(e, "message"));
	/* Truncation of a registry's words is harmless: they are only shown. */
	if (c != NULL) {
		(void)am_fmt(code, clen, "%s", c);
		cl_sanitize(code);
	}
	if (m != NULL) {
		(void)am_fmt(msg, mlen, "%s", m);
		cl_sanitize(msg);
	}
	json_decref(root);
}

/* " CODE: message" from the first entry of {"errors":[...]}, or "". */
void
cl_registry_error(const struct resp *rs, char *out, size_t outlen)
{
	char code[64], msg[256];

	out[0] = '\0';
	cl_registry_error_parts(rs, code, sizeof(code), msg, sizeof(msg));
	if (code[0] != '\0' || msg[0] != '\0')
		(void)am_fmt(out, outlen, " %s%s%.200s", code, code[0] && msg[0] ? ": " : "", msg);
}

/*
 * The code of a refusal, knowing the method and the registry's error code:
 * Harbor answers a manifest read its project policy forbids (not scanned
 * yet, vulnerable, unsigned) with 412 PROJECTPOLICYVIOLATION; the same
 * answer to a HEAD carries no body, and nothing else refuses a read with 412.
 */
enum am_err
cl_reply_to_err(long status, const char *method, const char *code)
{
	if (status == 412 && (strcmp(code, "PROJECTPOLICYVIOLATION") == 0 ||
	    (code[0] == '\0' && (strcmp(method, "HEAD") == 0 || strcmp(method, "GET") == 0))))
		return AM_EPOLICY;
	return cl_status_to_err(status);
}

enum am_err
cl_status_to_err(long status)
{
	if (cl_is_2xx(status))
		return AM_OK;
	if (status == 404)
		return AM_ENOTFOUND;
	if (status == 401)
		return AM_EAUTH;
	if (status == 429 || (status >= 500 && status <= 599))
		return AM_ETRANSIENT;
	return AM_EDENIED;
}

/* "credentials of user "x" were rejected for scope "..."": never the secret itself. */
void
cl_describe_rejection(const struct reg_client *c, const char *scope, char *out, size_t outlen)
{
	char what[SCOPE_LEN + 16];

	if (scope[0] != '\0')
		(void)am_fmt(what, sizeof(what), "scope \"%s\"", scope);
	else
		(void)am_fmt(what, sizeof(what), "registry access");
	if (c->username != NULL)
		(void)am_fmt(out, outlen, "credentials of user \"%.100s\" were rejected for %s",
		    c->username, what);
	else
		(void)am_fmt(out, outlen, "anonymous access was rejected for %s (no credentials configured)",
		    what);
}
