/*
 * fetch_get: a fresh curl handle per call (the tools make a handful of
 * requests) or the kept handle of a session (Harbor's REST client), with
 * credentials through curl's auth options so a redirect to another host
 * never carries them.
 */
#include "registry/client/fetch.h"
#include "server/base/version.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include <openssl/crypto.h>


struct sink {
	struct fetch_reply *r;
	size_t max;
	int too_big;
};

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n = size * nmemb;

	if (s->r->body_len + n > s->max) {
		s->too_big = 1;
		return 0;
	}
	s->r->body = xrealloc(s->r->body, s->r->body_len + n + 1);
	memcpy(s->r->body + s->r->body_len, ptr, n);
	s->r->body_len += n;
	s->r->body[s->r->body_len] = '\0';
	return n;
}

static size_t
on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct fetch_reply *r = ud;
	size_t n = size * nitems, k = strlen("WWW-Authenticate:");

	if (n > k && strncasecmp(buf, "WWW-Authenticate:", k) == 0 && r->www_authenticate[0] == '\0') {
		const char *v = buf + k;
		size_t len = n - k;
		while (len > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			len--;
		}
		while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
			len--;
		if (len < sizeof(r->www_authenticate)) {
			memcpy(r->www_authenticate, v, len);
			r->www_authenticate[len] = '\0';
		}
	}
	return n;
}

struct fetch_session {
	pthread_mutex_t lock;
	CURL *h;
};

struct fetch_session *
fetch_session_new(void)
{
	struct fetch_session *s = xcalloc(1, sizeof(*s));

	if ((s->h = curl_easy_init()) == NULL) {
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void
fetch_session_free(struct fetch_session *s)
{
	if (s == NULL)
		return;
	curl_easy_cleanup(s->h);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* libcurl's progress poll: the caller's abort_cb decides. */
static int
on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	const struct fetch_opts *o = ud;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return o->abort_cb(o->abort_ctx) ? 1 : 0;
}

/* Method, body, TLS and credentials of one call. */
static void
set_opts(CURL *h, const struct fetch_opts *o, char *ebuf)
{
	const char *method = o->method != NULL ? o->method : "GET";

	curl_easy_setopt(h, CURLOPT_URL, o->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, o->insecure || o->skip_hostname ? 0L : 2L);
	if (o->ca_file != NULL) {
		curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 10000L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, am_user_agent());
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	if (strcmp(method, "GET") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (o->body != NULL) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, o->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
	}
	if (o->abort_cb != NULL) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)o);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	} else {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
	}
	if (o->username != NULL) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, o->username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, o->password ? o->password : "");
	}
}

/* Header lines: the caller's, then Authorization (a secret: wiped by the caller via *line). */
static struct curl_slist *
make_headers(const struct fetch_opts *o, char **line)
{
	struct curl_slist *hdrs = NULL;
	size_t i;

	*line = NULL;
	for (i = 0; o->headers != NULL && o->headers[i] != NULL; i++)
		hdrs = curl_slist_append(hdrs, o->headers[i]);
	if (o->body != NULL)
		hdrs = curl_slist_append(hdrs, "Expect:");   /* no 100-continue round trip */
	if (o->authorization != NULL) {
		size_t len = strlen(o->authorization) + sizeof("Authorization: ");
		*line = xmalloc(len);
		(void)am_fmt(*line, len, "Authorization: %s", o->authorization);
		hdrs = curl_slist_append(hdrs, *line);
	}
	return hdrs;
}

enum am_err
fetch_get(const struct fetch_opts *o, struct fetch_reply *r, char *err, size_t errlen)
{
	struct sink sink = { r, o->max ? o->max : 1024 * 1024, 0 };
	struct curl_slist *hdrs;
	char ebuf[CURL_ERROR_SIZE] = "", *line = NULL;
	enum am_err rc = AM_OK;
	CURLcode cc;
	CURL *h;

	memset(r, 0, sizeof(*r));
	if (o->session != NULL) {
		pthread_mutex_lock(&o->session->lock);
		h = o->session->h;
		curl_easy_reset(h);
	} else if ((h = curl_easy_init()) == NULL) {
		return am_fail(err, errlen, AM_EIO, "libcurl could not create a handle");
	}
	set_opts(h, o, ebuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	if ((hdrs = make_headers(o, &line)) != NULL)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	} else {
		rc = am_fail(err, errlen, sink.too_big ? AM_EINVAL : AM_ETRANSIENT, "%s %s: %s%s%s",
		    o->method != NULL ? o->method : "GET", o->url,
		    sink.too_big ? "answer too large" : curl_easy_strerror(cc),
		    ebuf[0] && !sink.too_big ? ": " : "", sink.too_big ? "" : ebuf);
		fetch_reply_clear(r);
	}
	if (o->session != NULL) {
		/* Drop pointers to this call's buffers before the handle is shared again. */
		curl_easy_reset(h);
		pthread_mutex_unlock(&o->session->lock);
	} else {
		curl_easy_cleanup(h);
	}
	if (line != NULL) {
		OPENSSL_cleanse(line, strlen(line));
		free(line);
	}
	curl_slist_free_all(hdrs);
	return rc;
}

void
fetch_reply_clear(struct fetch_reply *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}
