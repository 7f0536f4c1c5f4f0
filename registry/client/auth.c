/*
 * Pure parsers of the registry authentication flow: the WWW-Authenticate
 * challenge of a 401 and the JSON reply of a token service. client.c does the
 * I/O around them; the unit tests and fuzzers call them directly, so every
 * read stays inside the NUL-terminated input whatever it holds.
 */
#include "registry/client/auth.h"

#include <math.h>
#include <string.h>

#include <jansson.h>

#define TOKEN_MAX        (64 * 1024)     /* a JWT of a few KiB is normal; more is abuse */
#define TOKEN_REPLY_MAX  (1024 * 1024)
#define EXPIRES_DEFAULT  60L             /* docker token spec: default when absent */
#define EXPIRES_MAX      (24L * 3600)    /* longer claims are capped: see below */

static int
is_ws(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* RFC 9110 tchar, plus '/' so that a token68 (base64) scans as one token. */
static int
is_tchar(char ch)
{
	if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
		return 1;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~/", ch) != NULL;
}

static int
is_ctl(char ch)
{
	unsigned char u = (unsigned char)ch;

	return (u < 0x20 && ch != '\t') || u == 0x7f;
}

/* ASCII case-insensitive match of s[0..n) against a lower-case literal. */
static int
name_is(const char *s, size_t n, const char *lit)
{
	size_t i;

	if (strlen(lit) != n)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (ch != lit[i])
			return 0;
	}
	return 1;
}

static enum auth_scheme
scheme_of(const char *s, size_t n)
{
	if (name_is(s, n, "bearer"))
		return AUTH_BEARER;
	if (name_is(s, n, "basic"))
		return AUTH_BASIC;
	return AUTH_NONE;   /* some other scheme: parsed past, never chosen */
}

/*
 * Read a parameter value (quoted string or bare run) at *pp into dst, which
 * may be NULL for a parameter nobody wants. A value that does not fit is an
 * error: a silently shortened realm or scope would send credentials to the
 * wrong place or ask for the wrong rights.
 */
static enum am_err
parse_value(const char **pp, char *dst, size_t dstlen, const char *what,
    char *err, size_t errlen)
{
	const char *p = *pp;
	size_t n = 0;
	enum am_err rc = AM_OK;

	if (*p == '"') {
		p++;
		for (;;) {
			char ch = *p;
			if (ch == '\0') {
				rc = am_fail(err, errlen, AM_EINVAL, "challenge: unterminated quoted string");
				goto done;
			}
			if (ch == '"') {
				p++;
				break;
			}
			if (ch == '\\') {
				p++;
				ch = *p;
				if (ch == '\0') {
					rc = am_fail(err, errlen, AM_EINVAL,
					    "challenge: backslash at end of input");
					goto done;
				}
			}
			if (is_ctl(ch)) {
				rc = am_fail(err, errlen, AM_EINVAL,
				    "challenge: control character in quoted string");
				goto done;
			}
			if (dst != NULL) {
				if (n + 1 >= dstlen) {
					rc = am_fail(err, errlen, AM_EINVAL,
					    "challenge: %s longer than %zu bytes", what, dstlen - 1);
					goto done;
				}
				dst[n++] = ch;
			}
			p++;
		}
	} else {
		/* Bare value: lenient beyond the token grammar (realm=https://h/x). */
		while (*p != '\0' && *p != ',' && *p != '"' && !is_ws(*p)) {
			if (is_ctl(*p)) {
				rc = am_fail(err, errlen, AM_EINVAL, "challenge: control character in value");
				goto done;
			}
			if (dst != NULL) {
				if (n + 1 >= dstlen) {
					rc = am_fail(err, errlen, AM_EINVAL,
					    "challenge: %s longer than %zu bytes", what, dstlen - 1);
					goto done;
				}
				dst[n++] = *p;
			}
			p++;
		}
	}
	if (dst != NULL)
		dst[n] = '\0';
	*pp = p;
done:
	return rc;
}

/*
 * Parse the auth-params of one challenge whose scheme ends at *pp. Stops at
 * the end of input or where the next challenge's scheme begins (a token not
 * followed by '='), leaving *pp there.
 */
static enum am_err
parse_params(const char **pp, struct auth_challenge *ch, char *err, size_t errlen)
{
	const char *p = *pp, *item, *name, *q;
	size_t namelen;
	int after_scheme = 1;   /* a token68 may only follow the scheme directly */
	enum am_err rc = AM_OK;

	for (;;) {
		while (is_ws(*p) || *p == ',') {
			if (*p == ',')
				after_scheme = 0;
			p++;
		}
		if (*p == '\0')
			break;
		item = name = p;
		while (is_tchar(*p))
			p++;
		namelen = (size_t)(p - name);
		if (namelen == 0) {
			rc = am_fail(err, errlen, AM_EINVAL,
			    "challenge: unexpected character 0x%02x", (unsigned char)*p);
			goto done;
		}
		q = p;
		while (is_ws(*q))
			q++;
		if (*q != '=') {
			if (after_scheme && (*q == '\0' || *q == ',')) {
				p = q;            /* token68 without padding: ignored */
				after_scheme = 0;
				continue;
			}
			p = item;                 /* next challenge's scheme */
			break;
		}
		q++;
		while (is_ws(*q))
			q++;
		if (*q == '=' || *q == ',' || *q == '\0') {
			while (*q == '=')         /* token68 with padding, or empty value */
				q++;
			p = q;
			after_scheme = 0;
			continue;
		}
		p = q;
		after_scheme = 0;
		if (ch->scheme != AUTH_NONE && name_is(name, namelen, "realm"))
			rc = parse_value(&p, ch->realm, sizeof(ch->realm), "realm", err, errlen);
		else if (ch->scheme == AUTH_BEARER && name_is(name, namelen, "service"))
			rc = parse_value(&p, ch->service, sizeof(ch->service), "service", err, errlen);
		else if (ch->scheme == AUTH_BEARER && name_is(name, namelen, "scope"))
			rc = parse_value(&p, ch->scope, sizeof(ch->scope), "scope", err, errlen);
		else
			rc = parse_value(&p, NULL, 0, "value", err, errlen);
		if (rc != AM_OK)
			goto done;
		/* After a value only a separator may come (or a missing comma before a scheme). */
		if (*p != '\0' && *p != ',' && !is_ws(*p)) {
			rc = am_fail(err, errlen, AM_EINVAL,
			    "challenge: unexpected character 0x%02x after value", (unsigned char)*p);
			goto done;
		}
	}
	*pp = p;
done:
	return rc;
}

enum am_err
auth_parse_challenge(const char *hdr, struct auth_challenge *out,
    char *err, size_t errlen)
{
	struct auth_challenge cur, best;
	const char *p = hdr, *scheme;
	enum am_err rc = AM_OK;

	memset(out, 0, sizeof(*out));
	memset(&best, 0, sizeof(best));
	if (hdr == NULL) {
		rc = am_fail(err, errlen, AM_EINVAL, "challenge: missing");
		goto done;
	}
	/* One header may carry several challenges; Bearer wins over Basic. */
	for (;;) {
		while (is_ws(*p) || *p == ',')
			p++;
		if (*p == '\0')
			break;
		scheme = p;
		while (is_tchar(*p))
			p++;
		if (p == scheme) {
			rc = am_fail(err, errlen, AM_EINVAL,
			    "challenge: unexpected character 0x%02x", (unsigned char)*p);
			goto done;
		}
		memset(&cur, 0, sizeof(cur));
		cur.scheme = scheme_of(scheme, (size_t)(p - scheme));
		if ((rc = parse_params(&p, &cur, err, errlen)) != AM_OK)
			goto done;
		if (cur.scheme == AUTH_BEARER && cur.realm[0] == '\0') {
			rc = am_fail(err, errlen, AM_EINVAL, "challenge: Bearer without realm");
			goto done;
		}
		if (cur.scheme == AUTH_BEARER && best.scheme != AUTH_BEARER)
			best = cur;
		else if (cur.scheme == AUTH_BASIC && best.scheme == AUTH_NONE)
			best = cur;
	}
	if (best.scheme == AUTH_NONE) {
		rc = am_fail(err, errlen, AM_EINVAL, "challenge: no Basic or Bearer challenge");
		goto done;
	}
	*out = best;
done:
	return rc;
}

/* A token goes into an HTTP header: visible ASCII only, so no header injection. */
static int
token_chars_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char u = (unsigned char)s[i];
		if (u < 0x21 || u > 0x7e)
			return 0;
	}
	return 1;
}

enum am_err
auth_parse_token_reply(const char *body, size_t len, char **token,
    long *expires_in, char *err, size_t errlen)
{
	json_t *root = NULL, *v;
	json_error_t jerr;
	const char *tok = NULL;
	size_t toklen = 0;
	double real;
	long exp = EXPIRES_DEFAULT;
	enum am_err rc = AM_OK;

	*token = NULL;
	*expires_in = 0;
	if (body == NULL || len > TOKEN_REPLY_MAX) {
		rc = am_fail(err, errlen, AM_EINVAL, "token reply: missing or larger than %d bytes",
		    TOKEN_REPLY_MAX);
		goto done;
	}
	/* Without JSON_ALLOW_NUL Jansson refuses \u0000, so strlen agrees with the length. */
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		rc = am_fail(err, errlen, AM_EINVAL, "token reply: not a JSON object%s%s",
		    root == NULL ? ": " : "", root == NULL ? jerr.text : "");
		goto done;
	}
	/* Harbor sends "token" plus an empty "access_token"; OAuth2 servers the reverse. */
	v = json_object_get(root, "token");
	if (v != NULL && !json_is_null(v) && !json_is_string(v)) {
		rc = am_fail(err, errlen, AM_EINVAL, "token reply: \"token\" is not a string");
		goto done;
	}
	if (v != NULL && json_is_string(v) && json_string_length(v) > 0) {
		tok = json_string_value(v);
		toklen = json_string_length(v);
	} else {
		v = json_object_get(root, "access_token");
		if (v != NULL && !json_is_null(v) && !json_is_string(v)) {
			rc = am_fail(err, errlen, AM_EINVAL,
			    "token reply: \"access_token\" is not a string");
			goto done;
		}
		if (v != NULL && json_is_string(v) && json_string_length(v) > 0) {
			tok = json_string_value(v);
			toklen = json_string_length(v);
		}
	}
	if (tok == NULL) {
		rc = am_fail(err, errlen, AM_EINVAL, "token reply: no token");
		goto done;
	}
	if (toklen > TOKEN_MAX || !token_chars_ok(tok, toklen)) {
		rc = am_fail(err, errlen, AM_EINVAL,
		    "token reply: token longer than %d bytes or not printable ASCII", TOKEN_MAX);
		goto done;
	}
	v = json_object_get(root, "expires_in");
	if (v == NULL || json_is_null(v)) {
		exp = EXPIRES_DEFAULT;
	} else if (json_is_integer(v) || json_is_real(v)) {
		real = json_number_value(v);
		if (!isfinite(real) || real < 0) {
			rc = am_fail(err, errlen, AM_EINVAL, "token reply: bad expires_in");
			goto done;
		}
		/*
		 * 0 reads as "not said". A very long lifetime is capped: the cache
		 * then refreshes daily, and a token revoked early only costs one
		 * 401 round trip anyway.
		 */
		if (real == 0)
			exp = EXPIRES_DEFAULT;
		else if (real > (double)EXPIRES_MAX)
			exp = EXPIRES_MAX;
		else
			exp = (long)real;
		if (exp < 1)
			exp = 1;
	} else {
		rc = am_fail(err, errlen, AM_EINVAL, "token reply: expires_in is not a number");
		goto done;
	}
	*token = xstrndup(tok, toklen);
	*expires_in = exp;
done:
	json_decref(root);
	return rc;
}
