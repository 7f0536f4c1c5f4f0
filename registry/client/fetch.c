/*
 * fetch_get: a fresh curl handle per call (the tools make a handful of
 * requests), credentials through curl's auth options so a redirect to
 * another host never carries them.
 */
#include "registry/client/fetch.h"
#include "server/base/version.h"

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

enum am_err
fetch_get(const struct fetch_opts *o, struct fetch_reply *r, char *err, size_t errlen)
{
	struct sink sink = { r, o->max ? o->max : 1024 * 1024, 0 };
	struct curl_slist *hdrs = NULL;
	char ebuf[CURL_ERROR_SIZE] = "", *line = NULL;
	enum am_err rc = AM_OK;
	CURLcode cc;
	CURL *h;

	memset(r, 0, sizeof(*r));
	if ((h = curl_easy_init()) == NULL)
		return am_fail(err, errlen, AM_EIO, "libcurl could not create a handle");
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
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	if (o->username != NULL) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, o->username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, o->password ? o->password : "");
	}
	if (o->authorization != NULL) {
		size_t len = strlen(o->authorization) + sizeof("Authorization: ");
		line = xmalloc(len);
		(void)am_fmt(line, len, "Authorization: %s", o->authorization);
		hdrs = curl_slist_append(hdrs, line);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	}
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	} else {
		rc = am_fail(err, errlen, AM_ETRANSIENT, "GET %s: %s%s%s", o->url,
		    sink.too_big ? "answer too large" : curl_easy_strerror(cc),
		    ebuf[0] && !sink.too_big ? ": " : "", sink.too_big ? "" : ebuf);
		fetch_reply_clear(r);
	}
	if (line != NULL) {
		OPENSSL_cleanse(line, strlen(line));
		free(line);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return rc;
}

void
fetch_reply_clear(struct fetch_reply *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}
