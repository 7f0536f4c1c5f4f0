/*
 * One HTTP exchange with a registry: the response capture (headers, capped
 * body or a file sink), the pool of curl handles that keeps connections
 * alive, the options every request carries, and the hook that reports each
 * exchange (the service wires it to metrics).
 */
#include "registry/client/internal.h"
#include "server/base/log.h"
#include "server/base/num.h"
#include "server/base/version.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/evp.h>

static int
header_is(const char *name, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(name, lit, n) == 0;
}

/* ---- curl callbacks ---- */

void
cl_share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
	struct reg_client *c = ud;

	(void)h;
	(void)access;
	pthread_mutex_lock(&c->share_locks[data]);
}

void
cl_share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	struct reg_client *c = ud;

	(void)h;
	pthread_mutex_unlock(&c->share_locks[data]);
}

static void
resp_reset_headers(struct resp *rs)
{
	rs->status = 0;
	rs->content_type[0] = '\0';
	rs->digest[0] = '\0';
	rs->length = -1;
	rs->retry_after[0] = '\0';
	rs->www_auth[0] = '\0';
	rs->www_len = 0;
	rs->www_overflow = 0;
	rs->link[0] = '\0';
	rs->link_overflow = 0;
	rs->body_len = 0;
}

void
cl_resp_init(struct resp *rs, size_t max, int keep_body)
{
	memset(rs, 0, sizeof(*rs));
	resp_reset_headers(rs);
	rs->max = max;
	rs->keep_body = keep_body;
}

void
cl_resp_free(struct resp *rs)
{
	free(rs->body);
	rs->body = NULL;
	rs->body_len = rs->body_cap = 0;
}

static void
add_www_auth(struct resp *rs, const char *v, size_t n)
{
	/* Several headers form one list (RFC 9110); auth.c then prefers Bearer. */
	size_t sep = rs->www_len > 0 ? 2 : 0;

	if (rs->www_overflow || rs->www_len + sep + n + 1 > sizeof(rs->www_auth)) {
		rs->www_overflow = 1;
		return;
	}
	if (sep) {
		memcpy(rs->www_auth + rs->www_len, ", ", 2);
		rs->www_len += 2;
	}
	memcpy(rs->www_auth + rs->www_len, v, n);
	rs->www_len += n;
	rs->www_auth[rs->www_len] = '\0';
}

static void
add_link(struct resp *rs, const char *v, size_t n)
{
	size_t used = strlen(rs->link), sep = used > 0 ? 2 : 0;

	/* Too long to keep whole: tags_list refuses it rather than miss a page. */
	if (rs->link_overflow || used + sep + n + 1 > sizeof(rs->link)) {
		rs->link_overflow = 1;
		return;
	}
	memcpy(rs->link + used, ", ", sep);
	memcpy(rs->link + used + sep, v, n);
	rs->link[used + sep + n] = '\0';
}

static size_t
on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct resp *rs = ud;
	size_t len = size * nitems, namelen, n;
	const char *colon, *v, *end = buf + len, *semi;
	long long ll;

	/* Every response (100, redirects, final) starts afresh. */
	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		resp_reset_headers(rs);
		v = memchr(buf, ' ', len);
		if (v != NULL && end - v >= 4) {
			if (am_parse_num(v + 1, 3, 100, 999, &ll) == 0)
				rs->status = (long)ll;
		}
		return len;
	}
	if ((colon = memchr(buf, ':', len)) == NULL)
		return len;
	namelen = (size_t)(colon - buf);
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	n = (size_t)(end - v);

	if (header_is(buf, namelen, "content-type")) {
		/* "application/json; charset=utf-8" -> "application/json" */
		if ((semi = memchr(v, ';', n)) != NULL)
			n = (size_t)(semi - v);
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		cl_copy_bounded(rs->content_type, sizeof(rs->content_type), v, n);
	} else if (header_is(buf, namelen, "docker-content-digest")) {
		cl_copy_bounded(rs->digest, sizeof(rs->digest), v, n);
	} else if (header_is(buf, namelen, "content-length")) {
		if (am_parse_num(v, n, 0, LLONG_MAX, &ll) == 0)
			rs->length = ll;
		/* Refuse early instead of downloading a body we will throw away. */
		if (rs->keep_body && cl_is_2xx(rs->status) && rs->length >= 0 &&
		    (unsigned long long)rs->length > rs->max) {
			rs->too_big = 1;
			return 0;
		}
	} else if (header_is(buf, namelen, "retry-after")) {
		cl_copy_bounded(rs->retry_after, sizeof(rs->retry_after), v, n);
	} else if (header_is(buf, namelen, "www-authenticate")) {
		add_www_auth(rs, v, n);
	} else if (header_is(buf, namelen, "link")) {
		add_link(rs, v, n);
	} else if (header_is(buf, namelen, "location")) {
		cl_copy_bounded(rs->location, sizeof(rs->location), v, n);
	}
	return len;
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct resp *rs = ud;
	size_t len = size * nmemb, cap, ncap;
	int ok = cl_is_2xx(rs->status);

	if (ok && rs->sink != NULL) {
		/* A blob on its way to another repository: disk, never memory. */
		if (len > rs->max - rs->sunk || fwrite(ptr, 1, len, rs->sink) != len) {
			rs->too_big = len > rs->max - rs->sunk;
			return 0;
		}
		EVP_DigestUpdate(rs->sink_md, ptr, len);
		rs->sunk += len;
		return len;
	}
	if (ok && !rs->keep_body)
		return len;                       /* e.g. the reply to a PUT: not needed */
	cap = ok ? rs->max : ERRBODY_MAX;
	if (len > cap - rs->body_len) {
		if (ok) {
			rs->too_big = 1;
			return 0;                 /* aborts the transfer */
		}
		len = cap - rs->body_len;         /* error text: the start is enough */
	}
	if (rs->body_len + len + 1 > rs->body_cap) {
		ncap = rs->body_cap ? rs->body_cap : 8192;
		while (ncap < rs->body_len + len + 1)
			ncap *= 2;
		if (ncap > cap + 1)
			ncap = cap + 1;
		rs->body = xrealloc(rs->body, ncap);
		rs->body_cap = ncap;
	}
	memcpy(rs->body + rs->body_len, ptr, len);
	rs->body_len += len;
	rs->body[rs->body_len] = '\0';
	return size * nmemb;
}

/* ---- handle pool ---- */

static CURL *
pool_take(struct reg_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->npool > 0)
		h = c->pool[--c->npool];
	pthread_mutex_unlock(&c->lock);
	if (h == NULL) {
		if ((h = curl_easy_init()) == NULL) {
			log_kv(LOG_ERROR, "registry", LOG_S("result", "failed"),
			    LOG_S("detail", "curl_easy_init failed: out of memory"));
			abort();          /* same policy as xmalloc */
		}
		/* Kept across curl_easy_reset, like the handle's connections. */
		curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	}
	return h;
}

static void
pool_put(struct reg_client *c, CURL *h)
{
	/* Drop per-request options now: no pointers to freed buffers stay behind. */
	curl_easy_reset(h);
	pthread_mutex_lock(&c->lock);
	if (c->npool < POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h != NULL)
		curl_easy_cleanup(h);
}

/* libcurl calls this at least once a second, also while a server is silent. */
static int
on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	const struct reg_client *c = ud;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&c->cancelled) ? 1 : 0;
}

static void
set_base_opts(struct reg_client *c, CURL *h)
{
	long connect_ms = c->timeout_ms < CONNECT_TIMEOUT_MS ? c->timeout_ms : CONNECT_TIMEOUT_MS;

	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);   /* worker threads: no SIGALRM */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
	if (c->ca_file != NULL) {
		/* Only this CA: Debian's libcurl also has a default CAPATH to switch off. */
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Never hand our credentials to a host a redirect points at (the default, said aloud). */
	curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, am_user_agent());
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
}

/* ---- one exchange ---- */

/* Method and body: what curl needs to send rq. */
static void
set_method(CURL *h, const struct req *rq, struct curl_slist **hdrs)
{
	if (strcmp(rq->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(rq->method, "PUT") == 0 && rq->upload != NULL) {
		/* Blob upload from a file (curl's default read callback freads it). */
		rewind(rq->upload);
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READDATA, rq->upload);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->upload_len);
		/* No 100-continue round trip: the registry reads the body or refuses it whole. */
		*hdrs = curl_slist_append(*hdrs, "Expect:");
	} else if (strcmp(rq->method, "POST") == 0) {
		/* Upload session / blob mount: the request has no body. */
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	} else if (strcmp(rq->method, "PUT") == 0) {
		/* Body from memory: a rewind for an auth retry costs nothing. */
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body_len > 0 ? rq->body : "");
		/* No 100-continue round trip for manifests over 1 MiB. */
		*hdrs = curl_slist_append(*hdrs, "Expect:");
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
}

/* Everything one try sets on a pooled handle. */
static enum am_err
set_request_opts(struct reg_client *c, CURL *h, const struct req *rq, const struct send *s,
    struct resp *rs, struct curl_slist **hdrs, char *ebuf, char *err, size_t errlen)
{
	set_base_opts(c, h);
	curl_easy_setopt(h, CURLOPT_URL, s->url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, rs);
	set_method(h, rq, hdrs);
	if (rq->follow) {
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(h, CURLOPT_MAXREDIRS, MAX_REDIRS);
	}
	if (rq->accept != NULL)
		*hdrs = curl_slist_append(*hdrs, rq->accept);
	if (rq->content_type != NULL) {
		char line[160];
		if (am_fmt(line, sizeof(line), "Content-Type: %s", rq->content_type) != 0)
			return am_fail(err, errlen, AM_EINVAL, "%s: media type too long", s->what);
		*hdrs = curl_slist_append(*hdrs, line);   /* copies */
	}
	if (*hdrs != NULL)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
	/*
	 * Credentials through curl's auth machinery, not a raw header: curl then
	 * withholds them from any other host, port or scheme a redirect leads to.
	 */
	if (s->auth == SEND_BASIC) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, c->username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, c->password);
	} else if (s->auth == SEND_BEARER) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, s->bearer);
	}
	return AM_OK;
}

/*
 * Where one exchange's time went, from libcurl (microseconds since the
 * transfer started; each includes the ones before it): name resolution,
 * TCP connect, TLS handshake (0 on a reused connection), request sent,
 * first response byte, done. Only for the debug log: it tells a reused
 * connection from a new one and the registry's answer time from ours.
 */
struct xfer_times {
	curl_off_t dns, connect, tls, sent, first_byte, total;
};

static void
xfer_times(CURL *h, struct xfer_times *t)
{
	memset(t, 0, sizeof(*t));
	curl_easy_getinfo(h, CURLINFO_NAMELOOKUP_TIME_T, &t->dns);
	curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &t->connect);
	curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &t->tls);
	curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &t->sent);
	curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME_T, &t->first_byte);
	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &t->total);
}

/* Count, report (hook) and log one finished exchange. */
static void
account(struct reg_client *c, const struct req *rq, const struct send *s, const struct resp *rs,
    long status, long nconn, long long ms, CURLcode cc, const struct xfer_times *t)
{
	pthread_mutex_lock(&c->lock);
	if (s->token_fetch)
		c->stats.token_fetches++;
	else
		c->stats.requests++;
	c->stats.connects += (unsigned long)(nconn > 0 ? nconn : 0);
	pthread_mutex_unlock(&c->lock);
	if (c->on_exchange != NULL) {
		struct reg_exchange ev = { s->token_fetch, rq->method, status, ms, nconn };
		c->on_exchange(c->hook_ctx, &ev);
	}
	log_kv(LOG_DEBUG, s->token_fetch ? "registry token" : "registry request",
	    LOG_S("method", rq->method), LOG_S("path", s->what + strlen(rq->method) + 1),
	    LOG_I("status", rs->status), LOG_I("ms", ms), LOG_I("new_conns", nconn),
	    LOG_S("auth", s->auth == SEND_BEARER ? "bearer" : s->auth == SEND_BASIC ? "basic" : "none"),
	    LOG_I("dns_us", t->dns), LOG_I("connect_us", t->connect), LOG_I("tls_us", t->tls),
	    LOG_I("sent_us", t->sent), LOG_I("first_byte_us", t->first_byte),
	    LOG_I("total_us", t->total),
	    LOG_S("curl_error", cc != CURLE_OK ? curl_easy_strerror(cc) : NULL));
}

/* The error of a transfer that brought no usable answer; AM_OK when it did. */
static enum am_err
transfer_error(const struct send *s, const struct resp *rs, CURLcode cc, const char *ebuf,
    long long ms, char *err, size_t errlen)
{
	if (rs->too_big)
		return am_fail(err, errlen, AM_EINVAL, "%s: %ld: body larger than %zu bytes",
		    s->what, rs->status, rs->max);
	if (cc == CURLE_OPERATION_TIMEDOUT)
		return am_fail(err, errlen, AM_ETRANSIENT, "%s: timed out after %lld ms", s->what, ms);
	if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
	    cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_TOO_MANY_REDIRECTS ||
	    cc == CURLE_URL_MALFORMAT)
		/* Configuration faults: retrying will not fix them. */
		return am_fail(err, errlen, AM_EDENIED, "%s: %s: %s", s->what,
		    curl_easy_strerror(cc), ebuf);
	if (cc != CURLE_OK)
		return am_fail(err, errlen, AM_ETRANSIENT, "%s: %s%s%s", s->what,
		    curl_easy_strerror(cc), ebuf[0] ? ": " : "", ebuf);
	if (rs->status == 0)
		return am_fail(err, errlen, AM_ETRANSIENT, "%s: no HTTP status", s->what);
	return AM_OK;
}

/* Wait for one of the registry's max_concurrent slots (shared by all workers). */
static void
slot_take(struct reg_client *c)
{
	pthread_mutex_lock(&c->slot_lock);
	while (c->inflight >= c->max_concurrent)
		pthread_cond_wait(&c->slot_free, &c->slot_lock);
	c->inflight++;
	pthread_mutex_unlock(&c->slot_lock);
}

static void
slot_give(struct reg_client *c)
{
	pthread_mutex_lock(&c->slot_lock);
	c->inflight--;
	pthread_cond_signal(&c->slot_free);
	pthread_mutex_unlock(&c->slot_lock);
}

enum am_err
cl_exchange(struct reg_client *c, const struct req *rq, const struct send *s, struct resp *rs,
    char *err, size_t errlen)
{
	CURL *h;
	struct curl_slist *hdrs = NULL;
	char ebuf[CURL_ERROR_SIZE];
	CURLcode cc;
	long status = 0, nconn = 0;
	long long t0, ms;
	struct xfer_times times;
	enum am_err rc;

	ebuf[0] = '\0';
	slot_take(c);
	h = pool_take(c);
	if ((rc = set_request_opts(c, h, rq, s, rs, &hdrs, ebuf, err, errlen)) != AM_OK)
		goto done;
	t0 = am_now_ms();
	cc = curl_easy_perform(h);
	ms = am_now_ms() - t0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nconn);
	if (status != 0)
		rs->status = status;
	xfer_times(h, &times);
	account(c, rq, s, rs, status, nconn, ms, cc, &times);
	rc = transfer_error(s, rs, cc, ebuf, ms, err, errlen);
done:
	curl_slist_free_all(hdrs);
	pool_put(c, h);
	slot_give(c);
	return rc;
}
