/*
 * Harbor REST client: small and synchronous, built on the client layer's
 * fetch helper. One kept fetch session per client, so calls reuse a
 * connection; the session serialises them.
 */
#include "registry/harbor/harbor.h"
#include "registry/client/fetch.h"

#include <stdlib.h>
#include <string.h>

#define HARBOR_REPLY_MAX (4u * 1024 * 1024)
#define HARBOR_HEADERS_MAX 8

struct harbor {
	struct fetch_session *session;
	char *url, *ca_file, *username, *password;
	int insecure;
	long timeout_ms;
};

struct harbor *
harbor_new(const struct harbor_opts *o, char *err, size_t errlen)
{
	struct harbor *h;

	if (o->url == NULL || (strncmp(o->url, "https://", 8) != 0 && strncmp(o->url, "http://", 7) != 0)) {
		am_fail(err, errlen, AM_EINVAL, "Harbor URL must start with https:// or http://");
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	h->url = xstrdup(o->url);
	if (h->url[0] != '\0' && h->url[strlen(h->url) - 1] == '/')
		h->url[strlen(h->url) - 1] = '\0';
	h->ca_file = o->ca_file ? xstrdup(o->ca_file) : NULL;
	h->username = o->username ? xstrdup(o->username) : NULL;
	h->password = o->password ? xstrdup(o->password) : NULL;
	h->insecure = o->insecure;
	h->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
	if ((h->session = fetch_session_new()) == NULL) {
		harbor_free(h);
		am_fail(err, errlen, AM_EIO, "libcurl could not create a handle");
		return NULL;
	}
	return h;
}

void
harbor_free(struct harbor *h)
{
	if (h == NULL)
		return;
	fetch_session_free(h->session);
	free(h->url);
	free(h->ca_file);
	free(h->username);
	am_secret_free(h->password);
	free(h);
}

int
harbor_escape(const char *in, int twice, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	char tmp[1024];
	const char *src = in;
	size_t o, i;
	int pass;

	for (pass = 0; pass < (twice ? 2 : 1); pass++) {
		char *dst = pass == 0 && twice ? tmp : out;
		size_t cap = pass == 0 && twice ? sizeof(tmp) : outlen;
		for (i = 0, o = 0; src[i] != '\0'; i++) {
			unsigned char c = (unsigned char)src[i];
			int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
			if (o + (plain ? 1 : 3) >= cap)
				return -1;
			if (plain) {
				dst[o++] = (char)c;
			} else {
				dst[o++] = '%';
				dst[o++] = hex[c >> 4];
				dst[o++] = hex[c & 15];
			}
		}
		dst[o] = '\0';
		src = dst;
	}
	return 0;
}

/* Harbor errors: {"errors":[{"code":"...","message":"..."}]} */
static void
harbor_error(const json_t *reply, long status, const char *method, const char *path,
    char *err, size_t errlen)
{
	json_t *e = json_array_get(json_object_get(reply, "errors"), 0);
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));

	am_fail(err, errlen, AM_EDENIED, "%s /api/v2.0%s: %ld%s%s%s%s", method, path, status,
	    code ? " " : "", code ? code : "", msg ? ": " : "", msg ? msg : "");
}

/* The fetch options of one Harbor API call: h's session, TLS and credentials. */
static void
harbor_fetch_opts(const struct harbor *h, struct fetch_opts *fo, const char *url, const char *const *lines)
{
	fo->url = url;
	fo->headers = lines;
	fo->session = h->session;
	fo->ca_file = h->ca_file;
	fo->insecure = h->insecure;
	fo->username = h->username;
	fo->password = h->password;
	fo->timeout_ms = h->timeout_ms;
	fo->max = HARBOR_REPLY_MAX;
}

enum am_err
harbor_call(struct harbor *h, const char *method, const char *path,
    json_t *body, const char *const *headers, long *status, json_t **reply,
    char *err, size_t errlen)
{
	const char *lines[HARBOR_HEADERS_MAX + 3];
	struct fetch_opts fo;
	struct fetch_reply r;
	char url[2048], *payload = NULL;
	enum am_err rc;
	json_t *parsed = NULL;
	size_t i, n = 0;

	*status = 0;
	if (reply != NULL)
		*reply = NULL;
	if (am_fmt(url, sizeof(url), "%s/api/v2.0%s", h->url, path) != 0)
		return am_fail(err, errlen, AM_EINVAL, "Harbor API path too long");
	lines[n++] = "Accept: application/json";
	for (i = 0; headers != NULL && headers[i] != NULL; i++) {
		if (i == HARBOR_HEADERS_MAX)
			return am_fail(err, errlen, AM_EINVAL, "more than %d extra header lines",
			    HARBOR_HEADERS_MAX);
		lines[n++] = headers[i];
	}
	memset(&fo, 0, sizeof(fo));
	if (body != NULL) {
		payload = json_dumps(body, JSON_COMPACT);
		lines[n++] = "Content-Type: application/json";
		fo.body = payload;
		fo.body_len = strlen(payload);
	}
	lines[n] = NULL;
	harbor_fetch_opts(h, &fo, url, lines);
	fo.method = method;
	if ((rc = fetch_get(&fo, &r, err, errlen)) != AM_OK)
		goto done;
	*status = r.status;
	if (r.body_len > 0)
		parsed = json_loadb(r.body, r.body_len, 0, NULL);
	if (*status < 200 || *status > 299)
		harbor_error(parsed, *status, method, path, err, errlen);
	if (reply != NULL) {
		*reply = parsed;
		parsed = NULL;
	}
	fetch_reply_clear(&r);
done:
	json_decref(parsed);
	free(payload);
	return rc;
}

enum am_err
harbor_get_text(struct harbor *h, const char *path, long *status, char **text,
    char *err, size_t errlen)
{
	static const char *const lines[] = { "Accept: text/plain, application/json",
	    "X-Is-Resource-Name: true", NULL };
	struct fetch_opts fo;
	struct fetch_reply r;
	char url[2048];
	enum am_err rc;

	*status = 0;
	*text = NULL;
	if (am_fmt(url, sizeof(url), "%s/api/v2.0%s", h->url, path) != 0)
		return am_fail(err, errlen, AM_EINVAL, "Harbor API path too long");
	memset(&fo, 0, sizeof(fo));
	harbor_fetch_opts(h, &fo, url, lines);
	if ((rc = fetch_get(&fo, &r, err, errlen)) != AM_OK)
		return rc;
	*status = r.status;
	if (r.status < 200 || r.status > 299) {
		json_t *parsed = r.body_len > 0 ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
		harbor_error(parsed, r.status, "GET", path, err, errlen);
		json_decref(parsed);
	} else {
		*text = xstrndup(r.body != NULL ? r.body : "", r.body_len);
	}
	fetch_reply_clear(&r);
	return AM_OK;
}
