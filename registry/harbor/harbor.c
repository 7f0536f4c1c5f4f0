/*
 * Harbor REST client: small and synchronous. One libcurl handle per client,
 * guarded by a mutex, so connections are reused across calls.
 */
#include "registry/harbor/harbor.h"
#include "server/base/version.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>


#define HARBOR_REPLY_MAX (4u * 1024 * 1024)

struct harbor {
	pthread_mutex_t lock;
	CURL *h;
	char *url, *ca_file, *username, *password;
	int insecure;
	long timeout_ms;
};

struct buf {
	char *data;
	size_t len;
	int too_big;
};

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;

	if (b->len + n > HARBOR_REPLY_MAX) {
		b->too_big = 1;
		return 0;
	}
	b->data = xrealloc(b->data, b->len + n + 1);
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

struct harbor *
harbor_new(const struct harbor_opts *o, char *err, size_t errlen)
{
	struct harbor *h;

	if (o->url == NULL || (strncmp(o->url, "https://", 8) != 0 && strncmp(o->url, "http://", 7) != 0)) {
		am_fail(err, errlen, AM_EINVAL, "Harbor URL must start with https:// or http://");
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	h->url = xstrdup(o->url);
	if (h->url[0] != '\0' && h->url[strlen(h->url) - 1] == '/')
		h->url[strlen(h->url) - 1] = '\0';
	h->ca_file = o->ca_file ? xstrdup(o->ca_file) : NULL;
	h->username = o->username ? xstrdup(o->username) : NULL;
	h->password = o->password ? xstrdup(o->password) : NULL;
	h->insecure = o->insecure;
	h->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
	if ((h->h = curl_easy_init()) == NULL) {
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
	if (h->h != NULL)
		curl_easy_cleanup(h->h);
	free(h->url);
	free(h->ca_file);
	free(h->username);
	am_secret_free(h->password);
	pthread_mutex_destroy(&h->lock);
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

enum am_err
harbor_call(struct harbor *h, const char *method, const char *path,
    json_t *body, const char *const *headers, long *status, json_t **reply,
    char *err, size_t errlen)
{
	struct curl_slist *hdrs = NULL;
	struct buf b = { NULL, 0, 0 };
	char url[2048], *payload = NULL;
	enum am_err rc = AM_OK;
	CURLcode cc;
	json_t *parsed = NULL;
	size_t i;

	*status = 0;
	if (reply != NULL)
		*reply = NULL;
	if (am_fmt(url, sizeof(url), "%s/api/v2.0%s", h->url, path) != 0)
		return am_fail(err, errlen, AM_EINVAL, "Harbor API path too long");
	pthread_mutex_lock(&h->lock);
	curl_easy_reset(h->h);
	curl_easy_setopt(h->h, CURLOPT_URL, url);
	curl_easy_setopt(h->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h->h, CURLOPT_SSL_VERIFYPEER, h->insecure ? 0L : 1L);
	curl_easy_setopt(h->h, CURLOPT_SSL_VERIFYHOST, h->insecure ? 0L : 2L);
	if (h->ca_file != NULL) {
		curl_easy_setopt(h->h, CURLOPT_CAINFO, h->ca_file);
		curl_easy_setopt(h->h, CURLOPT_CAPATH, NULL);
	}
	curl_easy_setopt(h->h, CURLOPT_TIMEOUT_MS, h->timeout_ms);
	curl_easy_setopt(h->h, CURLOPT_USERAGENT, am_user_agent());
	curl_easy_setopt(h->h, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h->h, CURLOPT_NOBODY, 1L);
	if (h->username != NULL) {
		curl_easy_setopt(h->h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h->h, CURLOPT_USERNAME, h->username);
		curl_easy_setopt(h->h, CURLOPT_PASSWORD, h->password ? h->password : "");
	}
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	for (i = 0; headers != NULL && headers[i] != NULL; i++)
		hdrs = curl_slist_append(hdrs, headers[i]);
	if (body != NULL) {
		payload = json_dumps(body, JSON_COMPACT);
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h->h, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(h->h, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
	}
	curl_easy_setopt(h->h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->h, CURLOPT_WRITEDATA, &b);
	cc = curl_easy_perform(h->h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h->h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_setopt(h->h, CURLOPT_HTTPHEADER, NULL);
	pthread_mutex_unlock(&h->lock);
	if (cc != CURLE_OK) {
		rc = am_fail(err, errlen, b.too_big ? AM_EINVAL : AM_ETRANSIENT, "%s %s: %s", method, url,
		    b.too_big ? "answer too large" : curl_easy_strerror(cc));
		goto done;
	}
	if (b.len > 0)
		parsed = json_loadb(b.data, b.len, 0, NULL);
	if (*status < 200 || *status > 299)
		harbor_error(parsed, *status, method, path, err, errlen);
	if (reply != NULL) {
		*reply = parsed;
		parsed = NULL;
	}
done:
	json_decref(parsed);
	curl_slist_free_all(hdrs);
	free(payload);
	free(b.data);
	return rc;
}
