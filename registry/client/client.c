/*
 * Registry client: distribution API v2 requests over libcurl for one registry,
 * shared by the worker threads. It owns the pool of curl handles (and so the
 * kept-alive connections), the Basic/Bearer dance and the per-scope token
 * cache; auth.c parses what the registry and its token service answer.
 *
 * curl_global_init() is the caller's job: main calls it once before any
 * thread starts and before reg_client_new(), because it is not thread safe.
 */
#include "registry/client/client.h"
#include "server/base/num.h"
#include "server/base/version.h"
#include "registry/client/auth.h"
#include "registry/oci/names.h"
#include "registry/client/pagelink.h"
#include "server/base/log.h"
#include "server/observe/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>


#define POOL_MAX            8            /* idle handles kept; each keeps its connections */
#define TOKENS_MAX          64           /* cached tokens per registry */
#define BASE_URL_MAX        512
#define URL_MAX             4096
#define PATH_LEN            1024
#define SCOPE_LEN           512          /* == sizeof(auth_challenge.scope) */
#define ERRBODY_MAX         (64 * 1024)  /* error bodies: enough for the errors[] list */
#define TOKEN_REPLY_MAX     (256 * 1024)
#define WWWAUTH_MAX         4096
#define DEFAULT_TIMEOUT_MS  30000L
#define CONNECT_TIMEOUT_MS  10000L       /* at most; never more than the total */
#define MAX_REDIRS          5L
#define RETRY_AFTER_MAX_S   86400L
#define LINK_MAX            2048         /* Link header of a tags/list page */
#define TAGS_PAGE_MAX       (16u * 1024 * 1024)   /* registries ignoring n= send every tag at once */
#define TAGS_MAX_PAGES      10000

static const char ACCEPT_MANIFESTS[] =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

struct token_entry {
	char scope[SCOPE_LEN];
	char *token;              /* secret: wiped when dropped; NULL = free slot */
	long long refresh_at;     /* am_now_ms() from which a new one is fetched */
};

struct reg_client {
	char *url;                /* scheme://host[:port], no trailing slash */
	char *ca_file;
	int insecure;
	char *username;           /* NULL: anonymous */
	char *password;           /* secret: wiped on free */
	long timeout_ms;

	/* Shared TLS sessions and DNS answers between the pooled handles. */
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

	/*
	 * Held across a token fetch: threads that all need a token at once (a
	 * cold start) wait for the first one instead of each fetching their own.
	 */
	pthread_mutex_t fetch_lock;

	/* Everything below is guarded by lock. */
	pthread_mutex_t lock;
	CURL *pool[POOL_MAX];
	int npool;
	int basic_mode;           /* the registry asked for Basic: send it up front */
	char realm[512];          /* "" until the first Bearer challenge */
	char service[256];
	struct token_entry tokens[TOKENS_MAX];
	struct reg_stats stats;

	atomic_int cancelled;     /* reg_client_cancel: abort transfers (shutdown) */
};

/* do_request copies challenge fields into these buffers whole. */
_Static_assert(sizeof(((struct reg_client *)0)->realm) == sizeof(((struct auth_challenge *)0)->realm),
    "realm buffers differ");
_Static_assert(sizeof(((struct reg_client *)0)->service) == sizeof(((struct auth_challenge *)0)->service),
    "service buffers differ");
_Static_assert(SCOPE_LEN == sizeof(((struct auth_challenge *)0)->scope), "scope buffers differ");

enum send_auth { SEND_NONE, SEND_BASIC, SEND_BEARER };

/* One HTTP exchange as the request side sees it. */
struct xfer {
	const char *method;       /* GET, HEAD, PUT */
	const char *url;
	const char *what;         /* "GET /v2/..." for logs and messages */
	const char *accept;       /* whole header line or NULL */
	const char *content_type; /* PUT only */
	const char *body;
	size_t body_len;
	int follow;               /* follow redirects (blobs) */
	int keep_body;            /* a 2xx body is wanted; beyond max aborts */
	size_t max;
	enum send_auth auth;
	const char *bearer;       /* SEND_BEARER: borrowed */
	int token_fetch;          /* counted apart from registry requests */
	FILE *upload;             /* PUT: body streamed from this file instead (blob copy) */
	long long upload_len;
};

/* What came back; header fields describe the last response (after redirects). */
struct resp {
	long status;
	char content_type[128];
	char digest[80];
	long long length;
	char retry_after[64];
	char www_auth[WWWAUTH_MAX];   /* every WWW-Authenticate, joined by ", " */
	size_t www_len;
	int www_overflow;
	char link[LINK_MAX];          /* every Link header, joined by ", " */
	int link_overflow;
	char *body;
	size_t body_len, body_cap;
	size_t max;
	int keep_body;
	int too_big;
	char location[1024];      /* Location (upload sessions); "" when absent or too long */
	FILE *sink;               /* 2xx body streamed here instead of memory (blob copy) */
	EVP_MD_CTX *sink_md;      /* sha256 of what went to sink */
	unsigned long long sunk;
};

/* ---- small helpers ---- */

static void
copy_bounded(char *dst, size_t dstlen, const char *src, size_t n)
{
	/* A value that does not fit is dropped whole rather than cut short. */
	if (n >= dstlen)
		n = 0;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int
header_is(const char *name, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(name, lit, n) == 0;
}

/* Registry text ends up in our messages and logs: keep it one printable line. */
static void
sanitize(char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char u = (unsigned char)*s;
		if (u < 0x20 || u == 0x7f)
			*s = '?';
	}
}

static int
is_http_url(const char *s)
{
	return strncasecmp(s, "https://", 8) == 0 || strncasecmp(s, "http://", 7) == 0;
}

/* ---- curl callbacks ---- */

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
	struct reg_client *c = ud;

	(void)h;
	(void)access;
	pthread_mutex_lock(&c->share_locks[data]);
}

static void
share_unlock(CURL *h, curl_lock_data data, void *ud)
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

static void
resp_init(struct resp *rs, size_t max, int keep_body)
{
	memset(rs, 0, sizeof(*rs));
	resp_reset_headers(rs);
	rs->max = max;
	rs->keep_body = keep_body;
}

static void
resp_free(struct resp *rs)
{
	free(rs->body);
	rs->body = NULL;
	rs->body_len = rs->body_cap = 0;
}

static int
is_2xx(long status)
{
	return status >= 200 && status < 300;
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
		copy_bounded(rs->content_type, sizeof(rs->content_type), v, n);
	} else if (header_is(buf, namelen, "docker-content-digest")) {
		copy_bounded(rs->digest, sizeof(rs->digest), v, n);
	} else if (header_is(buf, namelen, "content-length")) {
		if (am_parse_num(v, n, 0, LLONG_MAX, &ll) == 0)
			rs->length = ll;
		/* Refuse early instead of downloading a body we will throw away. */
		if (rs->keep_body && is_2xx(rs->status) && rs->length >= 0 &&
		    (unsigned long long)rs->length > rs->max) {
			rs->too_big = 1;
			return 0;
		}
	} else if (header_is(buf, namelen, "retry-after")) {
		copy_bounded(rs->retry_after, sizeof(rs->retry_after), v, n);
	} else if (header_is(buf, namelen, "www-authenticate")) {
		add_www_auth(rs, v, n);
	} else if (header_is(buf, namelen, "link")) {
		add_link(rs, v, n);
	} else if (header_is(buf, namelen, "location")) {
		copy_bounded(rs->location, sizeof(rs->location), v, n);
	}
	return len;
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct resp *rs = ud;
	size_t len = size * nmemb, cap, ncap;
	int ok = is_2xx(rs->status);

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

/*
 * Run one HTTP exchange. AM_OK means an HTTP status arrived (any status);
 * otherwise the transfer failed (network, TLS, timeout, body too big) and err
 * says why.
 */
static enum am_err
exchange(struct reg_client *c, const struct xfer *x, struct resp *rs, char *err, size_t errlen)
{
	CURL *h = pool_take(c);
	struct curl_slist *hdrs = NULL;
	char ebuf[CURL_ERROR_SIZE];
	CURLcode cc;
	long status = 0, nconn = 0;
	long long t0, ms;
	enum am_err rc = AM_OK;

	ebuf[0] = '\0';
	set_base_opts(c, h);
	curl_easy_setopt(h, CURLOPT_URL, x->url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, rs);
	if (strcmp(x->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(x->method, "PUT") == 0 && x->upload != NULL) {
		/* Blob upload from a file (curl's default read callback freads it). */
		rewind(x->upload);
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READDATA, x->upload);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->upload_len);
	} else if (strcmp(x->method, "POST") == 0) {
		/* Upload session / blob mount: the request has no body. */
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	} else if (strcmp(x->method, "PUT") == 0) {
		/* Body from memory: a rewind for an auth retry costs nothing. */
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body_len > 0 ? x->body : "");
		/* No 100-continue round trip for manifests over 1 MiB. */
		hdrs = curl_slist_append(hdrs, "Expect:");
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	if (x->follow) {
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(h, CURLOPT_MAXREDIRS, MAX_REDIRS);
	}
	if (x->accept != NULL)
		hdrs = curl_slist_append(hdrs, x->accept);
	if (x->content_type != NULL) {
		char line[160];
		if (am_fmt(line, sizeof(line), "Content-Type: %s", x->content_type) != 0) {
			rc = am_fail(err, errlen, AM_EINVAL, "%s: media type too long", x->what);
			goto done;
		}
		hdrs = curl_slist_append(hdrs, line);   /* copies */
	}
	if (hdrs != NULL)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	/*
	 * Credentials through curl's auth machinery, not a raw header: curl then
	 * withholds them from any other host, port or scheme a redirect leads to.
	 */
	if (x->auth == SEND_BASIC) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, c->username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, c->password);
	} else if (x->auth == SEND_BEARER) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, x->bearer);
	}

	t0 = am_now_ms();
	cc = curl_easy_perform(h);
	ms = am_now_ms() - t0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nconn);
	if (status != 0)
		rs->status = status;

	pthread_mutex_lock(&c->lock);
	if (x->token_fetch)
		c->stats.token_fetches++;
	else
		c->stats.requests++;
	c->stats.connects += (unsigned long)(nconn > 0 ? nconn : 0);
	pthread_mutex_unlock(&c->lock);
	metrics_registry_exchange(x->token_fetch, x->method, status, ms);

	log_kv(LOG_DEBUG, x->token_fetch ? "registry token" : "registry request",
	    LOG_S("method", x->method), LOG_S("path", x->what + strlen(x->method) + 1),
	    LOG_I("status", rs->status), LOG_I("ms", ms), LOG_I("new_conns", nconn),
	    LOG_S("auth", x->auth == SEND_BEARER ? "bearer" : x->auth == SEND_BASIC ? "basic" : "none"),
	    LOG_S("curl_error", cc != CURLE_OK ? curl_easy_strerror(cc) : NULL));

	if (rs->too_big) {
		rc = am_fail(err, errlen, AM_EINVAL, "%s: %ld: body larger than %zu bytes",
		    x->what, rs->status, rs->max);
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		rc = am_fail(err, errlen, AM_ETRANSIENT, "%s: timed out after %lld ms", x->what, ms);
	} else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
	    cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_TOO_MANY_REDIRECTS ||
	    cc == CURLE_URL_MALFORMAT) {
		/* Configuration faults: retrying will not fix them. */
		rc = am_fail(err, errlen, AM_EDENIED, "%s: %s: %s", x->what,
		    curl_easy_strerror(cc), ebuf);
	} else if (cc != CURLE_OK) {
		rc = am_fail(err, errlen, AM_ETRANSIENT, "%s: %s%s%s", x->what,
		    curl_easy_strerror(cc), ebuf[0] ? ": " : "", ebuf);
	} else if (rs->status == 0) {
		rc = am_fail(err, errlen, AM_ETRANSIENT, "%s: no HTTP status", x->what);
	}
done:
	curl_slist_free_all(hdrs);
	pool_put(c, h);
	return rc;
}

/* ---- replies ---- */

static long
retry_after_ms(const char *v)
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

/* " CODE: message" from the first entry of {"errors":[...]}, or "". */
static void
registry_error(const struct resp *rs, char *out, size_t outlen)
{
	json_t *root = NULL, *e;
	const char *code, *msg;

	out[0] = '\0';
	if (rs->body == NULL || rs->body_len == 0)
		return;
	root = json_loadb(rs->body, rs->body_len, 0, NULL);
	e = json_array_get(json_object_get(root, "errors"), 0);
	code = json_string_value(json_object_get(e, "code"));
	msg = json_string_value(json_object_get(e, "message"));
	if (code != NULL || msg != NULL) {
		/* Truncation of a registry's message is harmless; the code comes first. */
		(void)am_fmt(out, outlen, " %s%s%.200s", code ? code : "",
		    code && msg ? ": " : "", msg ? msg : "");
		sanitize(out);
	}
	json_decref(root);
}

static enum am_err
status_to_err(long status)
{
	if (is_2xx(status))
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
static void
describe_rejection(const struct reg_client *c, const char *scope, char *out, size_t outlen)
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

/* ---- tokens ---- */

static void
token_slot_clear(struct token_entry *t)
{
	am_secret_free(t->token);
	memset(t, 0, sizeof(*t));
}

/* Copy of a usable cached token for scope (caller wipes), its key in key. Under lock. */
static char *
token_find(struct reg_client *c, const char *scope, char *key, size_t keylen)
{
	char wider[SCOPE_LEN + 8];
	size_t n = strlen(scope);
	long long now = am_now_ms();
	int i, j;

	/* A pull,push token of a repository serves its pulls as well. */
	wider[0] = '\0';
	if (n >= 5 && strcmp(scope + n - 5, ":pull") == 0)
		(void)am_fmt(wider, sizeof(wider), "%s,push", scope);
	for (j = 0; j < 2; j++) {
		const char *want = j == 0 ? scope : wider;
		if (want[0] == '\0' && j == 1)
			break;
		for (i = 0; i < TOKENS_MAX; i++) {
			struct token_entry *t = &c->tokens[i];
			if (t->token != NULL && now < t->refresh_at && strcmp(t->scope, want) == 0) {
				copy_bounded(key, keylen, t->scope, strlen(t->scope));
				return xstrdup(t->token);
			}
		}
	}
	return NULL;
}

static void
token_store(struct reg_client *c, const char *scope, const char *token, long ttl_s, long long t0)
{
	long long life = (long long)ttl_s * 1000, margin;
	struct token_entry *slot = NULL;
	int i;

	/* Refresh when 30 s or 10 % of the lifetime is left, whichever is less. */
	margin = life / 10 < 30000 ? life / 10 : 30000;
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < TOKENS_MAX && slot == NULL; i++)
		if (c->tokens[i].token != NULL && strcmp(c->tokens[i].scope, scope) == 0)
			slot = &c->tokens[i];
	for (i = 0; i < TOKENS_MAX && slot == NULL; i++)
		if (c->tokens[i].token == NULL)
			slot = &c->tokens[i];
	if (slot == NULL) {
		/* Full: evict the one closest to (or past) its refresh time. */
		slot = &c->tokens[0];
		for (i = 1; i < TOKENS_MAX; i++)
			if (c->tokens[i].refresh_at < slot->refresh_at)
				slot = &c->tokens[i];
	}
	token_slot_clear(slot);
	copy_bounded(slot->scope, sizeof(slot->scope), scope, strlen(scope));
	slot->token = xstrdup(token);
	slot->refresh_at = t0 + life - margin;
	pthread_mutex_unlock(&c->lock);
}

/* Forget a token the registry refused, unless another thread already replaced it. */
static void
token_drop(struct reg_client *c, const char *key, const char *token)
{
	int i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < TOKENS_MAX; i++) {
		struct token_entry *t = &c->tokens[i];
		if (t->token != NULL && strcmp(t->scope, key) == 0 && strcmp(t->token, token) == 0)
			token_slot_clear(t);
	}
	pthread_mutex_unlock(&c->lock);
}

/* GET <realm>?service=..&scope=.. and cache the answer. *token: caller wipes. */
static enum am_err
fetch_token(struct reg_client *c, const char *realm, const char *service, const char *scope,
    char **token, char *err, size_t errlen)
{
	char url[URL_MAX], what[URL_MAX + 8], perr[256];
	char *esc_service = NULL, *esc_scope = NULL;
	const char *sp, *nsp;
	struct xfer x;
	struct resp rs;
	size_t off;
	char sep;
	long ttl = 0;
	long long t0 = am_now_ms();
	enum am_err rc;

	*token = NULL;
	resp_init(&rs, TOKEN_REPLY_MAX, 1);
	if (!is_http_url(realm)) {
		rc = am_fail(err, errlen, AM_EINVAL, "token realm \"%.200s\" is not an http(s) URL", realm);
		goto done;
	}
	/* Never send the password in clear text when the registry itself uses TLS. */
	if (c->username != NULL && strncasecmp(realm, "http://", 7) == 0 &&
	    strncasecmp(c->url, "https://", 8) == 0) {
		rc = am_fail(err, errlen, AM_EINVAL,
		    "token realm %.200s is plain http while the registry uses https: refusing to send credentials",
		    realm);
		goto done;
	}
	esc_service = curl_easy_escape(NULL, service, 0);
	esc_scope = curl_easy_escape(NULL, scope, 0);
	if (esc_service == NULL || esc_scope == NULL) {
		log_kv(LOG_ERROR, "registry", LOG_S("result", "failed"),
		    LOG_S("detail", "curl_easy_escape failed: out of memory"));
		abort();
	}
	sep = strchr(realm, '?') != NULL ? '&' : '?';
	if (am_fmt(url, sizeof(url), "%s", realm) != 0)
		goto too_long;
	off = strlen(url);
	if (service[0] != '\0') {
		if (am_fmt(url + off, sizeof(url) - off, "%cservice=%s", sep, esc_service) != 0)
			goto too_long;
		off += strlen(url + off);
		sep = '&';
	}
	/* Several scopes (a blob mount needs two) travel as repeated scope= parameters. */
	for (sp = esc_scope; scope[0] != '\0'; sp = nsp + 3) {
		nsp = strstr(sp, "%20");
		if (am_fmt(url + off, sizeof(url) - off, "%cscope=%.*s", sep,
		    (int)(nsp != NULL ? (size_t)(nsp - sp) : strlen(sp)), sp) != 0)
			goto too_long;
		off += strlen(url + off);
		sep = '&';
		if (nsp == NULL)
			break;
	}
	(void)am_fmt(what, sizeof(what), "GET %s", url);

	memset(&x, 0, sizeof(x));
	x.method = "GET";
	x.url = url;
	x.what = what;
	x.keep_body = 1;
	x.max = TOKEN_REPLY_MAX;
	x.auth = c->username != NULL ? SEND_BASIC : SEND_NONE;
	x.token_fetch = 1;
	if ((rc = exchange(c, &x, &rs, err, errlen)) != AM_OK)
		goto done;
	if (rs.status == 401 || rs.status == 403) {
		char who[300];
		describe_rejection(c, scope, who, sizeof(who));
		rc = am_fail(err, errlen, AM_EAUTH, "token service %.200s answered %ld: %s",
		    realm, rs.status, who);
		goto done;
	}
	if (!is_2xx(rs.status)) {
		rc = status_to_err(rs.status) == AM_ETRANSIENT ? AM_ETRANSIENT : AM_EDENIED;
		rc = am_fail(err, errlen, rc, "token service %.200s answered %ld for scope \"%s\"",
		    realm, rs.status, scope);
		goto done;
	}
	if ((rc = auth_parse_token_reply(rs.body ? rs.body : "", rs.body_len, token, &ttl,
	    perr, sizeof(perr))) != AM_OK) {
		rc = am_fail(err, errlen, rc, "token service %.200s: %s", realm, perr);
		goto done;
	}
	token_store(c, scope, *token, ttl, t0);
	rc = AM_OK;
	goto done;
too_long:
	rc = am_fail(err, errlen, AM_EINVAL, "token URL for realm %.200s is too long", realm);
done:
	curl_free(esc_service);
	curl_free(esc_scope);
	resp_free(&rs);
	return rc;
}

/*
 * A token for scope: the cached one if another thread fetched it meanwhile,
 * else a new one. key gets the cache key of what was returned.
 */
static enum am_err
token_get(struct reg_client *c, const char *realm, const char *service, const char *scope,
    char **token, char *key, size_t keylen, char *err, size_t errlen)
{
	enum am_err rc = AM_OK;

	pthread_mutex_lock(&c->fetch_lock);
	pthread_mutex_lock(&c->lock);
	*token = token_find(c, scope, key, keylen);
	pthread_mutex_unlock(&c->lock);
	if (*token == NULL) {
		rc = fetch_token(c, realm, service, scope, token, err, errlen);
		copy_bounded(key, keylen, scope, strlen(scope));
	}
	pthread_mutex_unlock(&c->fetch_lock);
	return rc;
}

/* ---- one registry request with authentication ---- */

struct req {
	const char *method;
	const char *repo;         /* NULL for /v2/ */
	char path[PATH_LEN];
	const char *accept;
	const char *content_type;
	const char *body;
	size_t body_len;
	int follow;
	int keep_body;
	size_t max;
	char *link;               /* when set: gets the Link header(s) of a 2xx answer */
	size_t link_len;
	const char *extra_scope;  /* a second repository to pull from (blob mount) */
	FILE *sink;               /* GET: 2xx body to this file (see struct resp) */
	EVP_MD_CTX *sink_md;
	FILE *upload;             /* PUT: body from this file */
	long long upload_len;
};

static int
is_push(const struct req *rq)
{
	return strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0;
}

/* The scope this request needs when no challenge said otherwise. */
static enum am_err
own_scope(const struct reg_client *c, const struct req *rq, char *scope, size_t len,
    char *err, size_t errlen)
{
	scope[0] = '\0';
	if (rq->repo == NULL)
		return AM_OK;     /* /v2/: any valid token will do */
	/* With credentials, ask for pull,push at once: one token per repository
	 * serves both the reads and the index PUT (token services grant the
	 * subset the account has, so a pull-only account still reads). */
	if (am_fmt(scope, len, "repository:%s:%s", rq->repo,
	    is_push(rq) || c->username != NULL ? "pull,push" : "pull") != 0)
		return am_fail(err, errlen, AM_EINVAL, "repository name too long for a token scope");
	/* One token for both sides of a mount: distribution and Harbor check pull on the source. */
	if (rq->extra_scope != NULL &&
	    am_fmt(scope + strlen(scope), len - strlen(scope), " repository:%s:pull", rq->extra_scope) != 0)
		return am_fail(err, errlen, AM_EINVAL, "repository names too long for a token scope");
	return AM_OK;
}

static void
fill_reply(struct reg_reply *out, struct resp *rs, int give_body)
{
	out->status = rs->status;
	copy_bounded(out->media_type, sizeof(out->media_type), rs->content_type,
	    strlen(rs->content_type));
	copy_bounded(out->digest, sizeof(out->digest), rs->digest, strlen(rs->digest));
	out->length = rs->length;
	out->retry_after_ms = (rs->status == 429 || rs->status == 503) ?
	    retry_after_ms(rs->retry_after) : -1;
	copy_bounded(out->location, sizeof(out->location), rs->location, strlen(rs->location));
	if (give_body) {
		/* Steal the body: the reply owns it from now on. */
		out->body = rs->body != NULL ? rs->body : xstrdup("");
		out->body_len = rs->body_len;
		rs->body = NULL;
		rs->body_len = rs->body_cap = 0;
	}
}

/* Authentication of one registry call, carried from the first try to the retry. */
struct auth_state {
	enum send_auth kind;
	char *token;              /* SEND_BEARER: secret, wiped by auth_state_clear */
	int fresh;                /* fetched during this call: a refusal is final */
	char realm[sizeof(((struct reg_client *)0)->realm)];
	char service[sizeof(((struct reg_client *)0)->service)];
	char scope[SCOPE_LEN];    /* what this request needs */
	char key[SCOPE_LEN];      /* cache key of token (may be a wider scope) */
};

static void
auth_state_clear(struct auth_state *st)
{
	am_secret_free(st->token);
	st->token = NULL;
}

/* Known registry: authenticate up front instead of collecting a 401 first. */
static enum am_err
auth_start(struct reg_client *c, struct auth_state *st, char *err, size_t errlen)
{
	int basic_mode;
	enum am_err rc = AM_OK;

	pthread_mutex_lock(&c->lock);
	basic_mode = c->basic_mode;
	memcpy(st->realm, c->realm, sizeof(st->realm));
	memcpy(st->service, c->service, sizeof(st->service));
	if (!basic_mode && st->realm[0] != '\0')
		st->token = token_find(c, st->scope, st->key, sizeof(st->key));
	pthread_mutex_unlock(&c->lock);

	if (basic_mode && c->username != NULL) {
		st->kind = SEND_BASIC;
	} else if (st->realm[0] != '\0') {
		if (st->token == NULL) {
			rc = token_get(c, st->realm, st->service, st->scope, &st->token, st->key,
			    sizeof(st->key), err, errlen);
			st->fresh = 1;
		}
		st->kind = SEND_BEARER;
	}
	return rc;
}

/*
 * The registry answered 401 to the first try: work out what it wants. Sets
 * *retry when st now holds something new worth one more try; returns an
 * error only when there is nothing to try.
 */
static enum am_err
auth_after_401(struct reg_client *c, const struct req *rq, const struct resp *rs,
    struct auth_state *st, const char *what, int *retry, char *err, size_t errlen)
{
	struct auth_challenge ch;
	char perr[256], nscope[SCOPE_LEN];
	int have_ch;

	*retry = 0;
	if (st->kind == SEND_BASIC)
		return AM_OK;             /* Basic credentials refused: final */
	perr[0] = '\0';
	have_ch = !rs->www_overflow &&
	    auth_parse_challenge(rs->www_auth, &ch, perr, sizeof(perr)) == AM_OK;
	if (rs->www_overflow)
		(void)am_fmt(perr, sizeof(perr), "WWW-Authenticate longer than %d bytes", WWWAUTH_MAX);

	if (have_ch && ch.scheme == AUTH_BASIC && st->kind == SEND_NONE) {
		if (c->username == NULL)
			return am_fail(err, errlen, AM_EAUTH,
			    "%s: 401: the registry wants Basic credentials and none are configured", what);
		pthread_mutex_lock(&c->lock);
		c->basic_mode = 1;
		pthread_mutex_unlock(&c->lock);
		st->kind = SEND_BASIC;
		*retry = 1;
		return AM_OK;
	}
	if (have_ch && ch.scheme == AUTH_BEARER) {
		/* Push rights are ours to ask for (see own_scope); anonymous reads take
		 * the scope the registry names. */
		if (is_push(rq) || c->username != NULL || ch.scope[0] == '\0')
			memcpy(nscope, st->scope, sizeof(nscope));
		else
			memcpy(nscope, ch.scope, sizeof(nscope));
		if (st->kind == SEND_BEARER && st->fresh && strcmp(ch.realm, st->realm) == 0 &&
		    strcmp(ch.service, st->service) == 0 && strcmp(nscope, st->key) == 0)
			return AM_OK;     /* a fresh token for exactly this was refused: final */
		memcpy(st->realm, ch.realm, sizeof(st->realm));
		memcpy(st->service, ch.service, sizeof(st->service));
		memcpy(st->scope, nscope, sizeof(st->scope));
		pthread_mutex_lock(&c->lock);
		memcpy(c->realm, st->realm, sizeof(c->realm));
		memcpy(c->service, st->service, sizeof(c->service));
		pthread_mutex_unlock(&c->lock);
	} else if (st->kind == SEND_NONE) {
		return am_fail(err, errlen, AM_EAUTH, "%s: 401 without a usable challenge: %s",
		    what, perr);
	} else if (st->fresh) {
		return AM_OK;             /* Harbor answers a useless token with Basic realm="harbor" */
	}
	/* A cached token was refused (revoked, expired early): forget it, one fresh try. */
	if (st->kind == SEND_BEARER) {
		token_drop(c, st->key, st->token);
		auth_state_clear(st);
	}
	st->kind = SEND_BEARER;
	st->fresh = 1;                    /* obtained after the refusal */
	*retry = 1;
	return token_get(c, st->realm, st->service, st->scope, &st->token, st->key,
	    sizeof(st->key), err, errlen);
}

/* The err line of a final non-2xx answer, in the registry's own words where it gave some. */
static enum am_err
fail_status(struct reg_client *c, const struct resp *rs, const struct auth_state *st,
    const char *what, char *err, size_t errlen)
{
	char regerr[300], who[300];
	enum am_err rc = status_to_err(rs->status);

	registry_error(rs, regerr, sizeof(regerr));
	if (rs->status == 401 && st->kind == SEND_BEARER) {
		describe_rejection(c, st->key, who, sizeof(who));
		return am_fail(err, errlen, rc, "%s: 401%s: %s", what, regerr, who);
	}
	if (rs->status == 401 && st->kind == SEND_BASIC)
		return am_fail(err, errlen, rc, "%s: 401%s: Basic credentials of user \"%.100s\" were rejected",
		    what, regerr, c->username ? c->username : "");
	return am_fail(err, errlen, rc, "%s: %ld%s", what, rs->status, regerr);
}

/*
 * Send rq, going through the auth dance once when the registry answers 401:
 * at most two requests to the registry and two token fetches per call.
 */
static enum am_err
do_request(struct reg_client *c, const struct req *rq, struct reg_reply *out,
    char *err, size_t errlen)
{
	struct auth_state st;
	struct resp rs;
	struct xfer x;
	char url[URL_MAX], what[PATH_LEN + 16];
	int attempt, retry;
	enum am_err rc;

	memset(&st, 0, sizeof(st));
	resp_init(&rs, rq->max, rq->keep_body);
	if (am_fmt(url, sizeof(url), "%s%s", c->url, rq->path) != 0 ||
	    am_fmt(what, sizeof(what), "%s %s", rq->method, rq->path) != 0) {
		rc = am_fail(err, errlen, AM_EINVAL, "%s %.200s...: URL too long", rq->method, rq->path);
		goto done;
	}
	if ((rc = own_scope(c, rq, st.scope, sizeof(st.scope), err, errlen)) != AM_OK)
		goto done;
	if ((rc = auth_start(c, &st, err, errlen)) != AM_OK)
		goto done;

	memset(&x, 0, sizeof(x));
	x.method = rq->method;
	x.url = url;
	x.what = what;
	x.accept = rq->accept;
	x.content_type = rq->content_type;
	x.body = rq->body;
	x.body_len = rq->body_len;
	x.follow = rq->follow;
	x.keep_body = rq->keep_body;
	x.max = rq->max;
	x.upload = rq->upload;
	x.upload_len = rq->upload_len;
	for (attempt = 0; attempt < 2; attempt++) {
		x.auth = st.kind;
		x.bearer = st.token;
		resp_free(&rs);
		resp_init(&rs, rq->max, rq->keep_body);
		if (rq->sink != NULL) {
			/* Each try starts the file afresh. */
			rewind(rq->sink);
			if (ftruncate(fileno(rq->sink), 0) != 0 ||
			    EVP_DigestInit_ex(rq->sink_md, EVP_sha256(), NULL) != 1) {
				rc = am_fail(err, errlen, AM_EIO, "%s: cannot reset the temporary file", what);
				goto done;
			}
			rs.sink = rq->sink;
			rs.sink_md = rq->sink_md;
		}
		if ((rc = exchange(c, &x, &rs, err, errlen)) != AM_OK)
			goto done;
		if (rs.status != 401 || attempt == 1)
			break;
		if ((rc = auth_after_401(c, rq, &rs, &st, what, &retry, err, errlen)) != AM_OK)
			goto done;
		if (!retry)
			break;
	}

	rc = status_to_err(rs.status);
	if (rc == AM_OK && rq->link != NULL) {
		if (rs.link_overflow || strlen(rs.link) >= rq->link_len) {
			rc = am_fail(err, errlen, AM_EINVAL, "%s: Link header longer than %zu bytes",
			    what, rq->link_len - 1);
			goto done;
		}
		memcpy(rq->link, rs.link, strlen(rs.link) + 1);
	}
	if (out != NULL)
		fill_reply(out, &rs, rc == AM_OK && rq->keep_body);
	if (rc != AM_OK) {
		if (rs.status == 401 && st.kind == SEND_BEARER)
			token_drop(c, st.key, st.token);   /* useless: do not offer it again */
		rc = fail_status(c, &rs, &st, what, err, errlen);
	}
done:
	auth_state_clear(&st);
	resp_free(&rs);
	return rc;
}

/* ---- public API ---- */

struct reg_client *
reg_client_new(const struct reg_client_opts *o, char *err, size_t errlen)
{
	struct reg_client *c = NULL;
	size_t n;
	int i;

	if (o == NULL || o->url == NULL || !is_http_url(o->url)) {
		am_fail(err, errlen, AM_EINVAL, "registry url must start with https:// or http://");
		return NULL;
	}
	n = strlen(o->url);
	while (n > 0 && o->url[n - 1] == '/')
		n--;
	if (n >= BASE_URL_MAX) {
		am_fail(err, errlen, AM_EINVAL, "registry url longer than %d bytes", BASE_URL_MAX - 1);
		return NULL;
	}
	if (o->timeout_ms < 0) {
		am_fail(err, errlen, AM_EINVAL, "registry timeout must not be negative");
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->url = xstrndup(o->url, n);
	c->ca_file = o->ca_file != NULL ? xstrdup(o->ca_file) : NULL;
	c->insecure = o->insecure != 0;
	c->username = o->username != NULL ? xstrdup(o->username) : NULL;
	c->password = xstrdup(o->password != NULL ? o->password : "");
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->fetch_lock, NULL);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	if ((c->share = curl_share_init()) == NULL) {
		log_kv(LOG_ERROR, "registry", LOG_S("result", "failed"),
		    LOG_S("detail", "curl_share_init failed: out of memory"));
		abort();
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);

	if (c->insecure)
		log_kv(LOG_WARN, "registry", LOG_S("url", c->url), LOG_S("detail", "TLS verification disabled"));
	if (c->username != NULL && strncasecmp(c->url, "http://", 7) == 0)
		log_kv(LOG_WARN, "registry", LOG_S("url", c->url),
		    LOG_S("detail", "credentials will travel unencrypted"));
	return c;
}

void
reg_client_free(struct reg_client *c)
{
	int i;

	if (c == NULL)
		return;
	/* Handles first: they still point at the share. */
	for (i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	curl_share_cleanup(c->share);
	for (i = 0; i < TOKENS_MAX; i++)
		token_slot_clear(&c->tokens[i]);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->fetch_lock);
	am_secret_free(c->password);
	free(c->username);
	free(c->ca_file);
	free(c->url);
	free(c);
}

void
reg_reply_init(struct reg_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->length = -1;
	r->retry_after_ms = -1;
}

void
reg_reply_clear(struct reg_reply *r)
{
	free(r->body);
	reg_reply_init(r);
}

static enum am_err
manifest_req(const char *method, const char *repo, const char *ref, struct req *rq,
    char *err, size_t errlen)
{
	memset(rq, 0, sizeof(*rq));
	rq->method = method;
	rq->repo = repo;
	if (am_fmt(rq->path, sizeof(rq->path), "/v2/%s/manifests/%s", repo, ref) != 0)
		return am_fail(err, errlen, AM_EINVAL, "%s: repository or reference too long", method);
	return AM_OK;
}

enum am_err
reg_manifest_get(struct reg_client *c, const char *repo, const char *ref,
    struct reg_reply *out, char *err, size_t errlen)
{
	struct req rq;
	enum am_err rc;

	if (out != NULL)
		reg_reply_clear(out);
	if ((rc = manifest_req("GET", repo, ref, &rq, err, errlen)) != AM_OK)
		return rc;
	rq.accept = ACCEPT_MANIFESTS;
	rq.keep_body = 1;
	rq.max = REG_MAX_MANIFEST;
	return do_request(c, &rq, out, err, errlen);
}

enum am_err
reg_manifest_head(struct reg_client *c, const char *repo, const char *ref,
    struct reg_reply *out, char *err, size_t errlen)
{
	struct req rq;
	enum am_err rc;

	if (out != NULL)
		reg_reply_clear(out);
	if ((rc = manifest_req("HEAD", repo, ref, &rq, err, errlen)) != AM_OK)
		return rc;
	rq.accept = ACCEPT_MANIFESTS;
	return do_request(c, &rq, out, err, errlen);
}

enum am_err
reg_manifest_put(struct reg_client *c, const char *repo, const char *ref,
    const char *media_type, const char *body, size_t len,
    struct reg_reply *out, char *err, size_t errlen)
{
	struct req rq;
	enum am_err rc;

	if (out != NULL)
		reg_reply_clear(out);
	if (len > REG_MAX_MANIFEST)
		return am_fail(err, errlen, AM_EINVAL, "PUT %s:%s: manifest larger than %u bytes",
		    repo, ref, REG_MAX_MANIFEST);
	if ((rc = manifest_req("PUT", repo, ref, &rq, err, errlen)) != AM_OK)
		return rc;
	rq.content_type = media_type;
	rq.body = body;
	rq.body_len = len;
	return do_request(c, &rq, out, err, errlen);
}

enum am_err
reg_blob_get(struct reg_client *c, const char *repo, const char *digest,
    size_t max, struct reg_reply *out, char *err, size_t errlen)
{
	struct req rq;

	if (out != NULL)
		reg_reply_clear(out);
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.repo = repo;
	if (am_fmt(rq.path, sizeof(rq.path), "/v2/%s/blobs/%s", repo, digest) != 0)
		return am_fail(err, errlen, AM_EINVAL, "GET blob: repository or digest too long");
	rq.follow = 1;            /* storage backends answer with a redirect (S3, GCS) */
	rq.keep_body = 1;
	rq.max = max;
	return do_request(c, &rq, out, err, errlen);
}

/* ---- blobs across repositories ---- */

/*
 * The path of an upload session's Location plus "digest=". An absolute URL
 * contributes only its path: the upload always goes to this registry's own
 * url, never to another host (the request carries our token), even when the
 * registry names itself differently (Harbor behind a proxy, an internal IP).
 */
static enum am_err
upload_path(struct reg_client *c, const char *loc, const char *digest, char *path, size_t len,
    char *err, size_t errlen)
{
	const char *p = loc;

	if (is_http_url(loc)) {
		p = strchr(strstr(loc, "://") + 3, '/');
		if (p == NULL)
			p = "";
		if (strncasecmp(loc, c->url, strlen(c->url)) != 0)
			log_kv(LOG_DEBUG, "registry upload", LOG_S("location", loc), LOG_S("url", c->url),
			    LOG_S("detail", "the location names another origin; using its path"));
	}
	if (strncmp(p, "/v2/", 4) != 0)
		return am_fail(err, errlen, AM_EDENIED, "upload location \"%.200s\" is not below /v2/", loc);
	if (am_fmt(path, len, "%s%cdigest=%s", p, strchr(p, '?') != NULL ? '&' : '?', digest) != 0)
		return am_fail(err, errlen, AM_EINVAL, "upload location longer than %zu bytes", len);
	return AM_OK;
}

enum am_err
reg_blob_mount(struct reg_client *c, const char *dst, const char *src, const char *digest,
    int *mounted, char *location, size_t loclen, char *err, size_t errlen)
{
	struct req rq;
	struct reg_reply r;
	enum am_err rc;

	*mounted = 0;
	if (loclen > 0)
		location[0] = '\0';
	memset(&rq, 0, sizeof(rq));
	reg_reply_init(&r);
	rq.method = "POST";
	rq.repo = dst;
	rq.extra_scope = src;
	if (am_fmt(rq.path, sizeof(rq.path), "/v2/%s/blobs/uploads/?mount=%s&from=%s", dst, digest, src) != 0)
		return am_fail(err, errlen, AM_EINVAL, "mount: repository names too long");
	if ((rc = do_request(c, &rq, &r, err, errlen)) != AM_OK)
		goto done;
	if (r.status == 201) {
		*mounted = 1;
	} else if (r.status == 202 && r.location[0] != '\0') {
		/* Not mounted: the registry opened an upload session instead. */
		if (am_fmt(location, loclen, "%s", r.location) != 0)
			rc = am_fail(err, errlen, AM_EINVAL, "mount %s: upload location too long", digest);
	} else {
		rc = am_fail(err, errlen, AM_EDENIED, "POST /v2/%s/blobs/uploads/ (mount %s from %s): "
		    "unexpected status %ld%s", dst, digest, src, r.status,
		    r.status == 202 ? " without Location" : "");
	}
done:
	reg_reply_clear(&r);
	return rc;
}

enum am_err
reg_blob_copy(struct reg_client *c, const char *dst, const char *src, const char *digest,
    long long size, const char *location, char *err, size_t errlen)
{
	struct req rq;
	struct reg_reply r;
	FILE *f = NULL;
	EVP_MD_CTX *md = NULL;
	unsigned char raw[EVP_MAX_MD_SIZE];
	unsigned int rawlen = 0, i;
	char got[80], loc[1024];
	enum am_err rc;

	reg_reply_init(&r);
	if (size < 0)
		return am_fail(err, errlen, AM_EINVAL, "copy %s: unknown size", digest);
	/* Layers can be gigabytes: through an unlinked temporary file, never memory. */
	if ((f = tmpfile()) == NULL)
		return am_fail(err, errlen, AM_EIO, "copy %s: no temporary file: %s", digest, strerror(errno));
	if ((md = EVP_MD_CTX_new()) == NULL) {
		log_kv(LOG_ERROR, "registry", LOG_S("result", "failed"),
		    LOG_S("detail", "EVP_MD_CTX_new failed: out of memory"));
		abort();
	}
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.repo = src;
	rq.follow = 1;
	rq.keep_body = 1;
	rq.max = (size_t)size;
	rq.sink = f;
	rq.sink_md = md;
	if (am_fmt(rq.path, sizeof(rq.path), "/v2/%s/blobs/%s", src, digest) != 0) {
		rc = am_fail(err, errlen, AM_EINVAL, "GET blob: repository or digest too long");
		goto done;
	}
	if ((rc = do_request(c, &rq, &r, err, errlen)) != AM_OK)
		goto done;
	if (fflush(f) != 0) {
		rc = am_fail(err, errlen, AM_EIO, "copy %s: temporary file: %s", digest, strerror(errno));
		goto done;
	}
	EVP_DigestFinal_ex(md, raw, &rawlen);
	(void)am_fmt(got, sizeof(got), "sha256:");
	for (i = 0; i < rawlen && 7 + 2 * i + 2 < sizeof(got); i++)
		(void)am_fmt(got + 7 + 2 * i, sizeof(got) - 7 - 2 * i, "%02x", raw[i]);
	if (strcmp(got, digest) != 0 || (long long)ftell(f) != size) {
		rc = am_fail(err, errlen, AM_EMISMATCH, "blob %s from %s: got %lld bytes hashing to %s",
		    digest, src, (long long)ftell(f), got);
		goto done;
	}

	if (location == NULL || location[0] == '\0') {
		memset(&rq, 0, sizeof(rq));
		rq.method = "POST";
		rq.repo = dst;
		(void)am_fmt(rq.path, sizeof(rq.path), "/v2/%s/blobs/uploads/", dst);
		reg_reply_clear(&r);
		if ((rc = do_request(c, &rq, &r, err, errlen)) != AM_OK)
			goto done;
		if (r.status != 202 || r.location[0] == '\0') {
			rc = am_fail(err, errlen, AM_EDENIED, "POST /v2/%s/blobs/uploads/: status %ld without "
			    "an upload location", dst, r.status);
			goto done;
		}
		(void)am_fmt(loc, sizeof(loc), "%s", r.location);
		location = loc;
	}
	memset(&rq, 0, sizeof(rq));
	rq.method = "PUT";
	rq.repo = dst;
	rq.content_type = "application/octet-stream";
	rq.upload = f;
	rq.upload_len = size;
	if ((rc = upload_path(c, location, digest, rq.path, sizeof(rq.path), err, errlen)) != AM_OK)
		goto done;
	reg_reply_clear(&r);
	if ((rc = do_request(c, &rq, &r, err, errlen)) != AM_OK)
		goto done;
	if (r.digest[0] != '\0' && strcmp(r.digest, digest) != 0)
		rc = am_fail(err, errlen, AM_EMISMATCH, "registry stored blob %s as %s", digest, r.digest);
done:
	reg_reply_clear(&r);
	EVP_MD_CTX_free(md);
	if (f != NULL)
		fclose(f);
	return rc;
}

enum am_err
reg_blob_put(struct reg_client *c, const char *repo, const char *digest,
    const char *body, size_t len, char *err, size_t errlen)
{
	struct req rq;
	struct reg_reply r;
	char loc[1024];
	enum am_err rc;

	reg_reply_init(&r);
	memset(&rq, 0, sizeof(rq));
	rq.method = "HEAD";
	rq.repo = repo;
	rq.max = ERRBODY_MAX;
	if (am_fmt(rq.path, sizeof(rq.path), "/v2/%s/blobs/%s", repo, digest) != 0)
		return am_fail(err, errlen, AM_EINVAL, "blob put: repository or digest too long");
	if ((rc = do_request(c, &rq, &r, err, errlen)) != AM_ENOTFOUND)
		goto done;
	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.repo = repo;
	(void)am_fmt(rq.path, sizeof(rq.path), "/v2/%s/blobs/uploads/", repo);
	reg_reply_clear(&r);
	if ((rc = do_request(c, &rq, &r, err, errlen)) != AM_OK)
		goto done;
	if (r.status != 202 || r.location[0] == '\0') {
		rc = am_fail(err, errlen, AM_EDENIED, "POST /v2/%s/blobs/uploads/: status %ld without "
		    "an upload location", repo, r.status);
		goto done;
	}
	(void)am_fmt(loc, sizeof(loc), "%s", r.location);
	memset(&rq, 0, sizeof(rq));
	rq.method = "PUT";
	rq.repo = repo;
	rq.content_type = "application/octet-stream";
	rq.body = body;
	rq.body_len = len;
	if ((rc = upload_path(c, loc, digest, rq.path, sizeof(rq.path), err, errlen)) != AM_OK)
		goto done;
	reg_reply_clear(&r);
	if ((rc = do_request(c, &rq, &r, err, errlen)) == AM_OK && r.digest[0] != '\0' &&
	    strcmp(r.digest, digest) != 0)
		rc = am_fail(err, errlen, AM_EMISMATCH, "registry stored blob %s as %s", digest, r.digest);
done:
	reg_reply_clear(&r);
	return rc;
}

enum am_err
reg_ping(struct reg_client *c, char *err, size_t errlen)
{
	struct req rq;

	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	(void)am_fmt(rq.path, sizeof(rq.path), "/v2/");
	rq.max = ERRBODY_MAX;     /* the body of /v2/ is "{}": read, not kept */
	return do_request(c, &rq, NULL, err, errlen);
}

void
reg_client_cancel(struct reg_client *c)
{
	atomic_store(&c->cancelled, 1);
}

void
reg_client_stats(struct reg_client *c, struct reg_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	pthread_mutex_unlock(&c->lock);
}

/* One tags/list page: {"name": ..., "tags": [...] or null}. *stopped when cb said so. */
static enum am_err
tags_page(const struct reg_reply *r, const char *what, int (*cb)(void *ctx, const char *tag),
    void *ctx, int *stopped, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *tags;
	size_t i, skipped = 0;
	enum am_err rc = AM_OK;

	*stopped = 0;
	root = json_loadb(r->body != NULL ? r->body : "", r->body_len, 0, &jerr);
	if (!json_is_object(root)) {
		rc = am_fail(err, errlen, AM_EINVAL, "%s: answer is not a JSON object", what);
		goto done;
	}
	tags = json_object_get(root, "tags");
	if (tags != NULL && !json_is_null(tags) && !json_is_array(tags)) {
		rc = am_fail(err, errlen, AM_EINVAL, "%s: \"tags\" is neither an array nor null", what);
		goto done;
	}
	for (i = 0; i < json_array_size(tags); i++) {
		const char *t = json_string_value(json_array_get(tags, i));
		/* Only tags that can name a manifest reach the caller (and its URLs). */
		if (t == NULL || !name_valid_tag(t)) {
			skipped++;
			continue;
		}
		if (cb(ctx, t) != 0) {
			*stopped = 1;
			break;
		}
	}
	if (skipped > 0)
		log_kv(LOG_WARN, "registry tags", LOG_S("what", what), LOG_I("skipped", skipped),
		    LOG_S("detail", "entries that are not valid tags"));
done:
	json_decref(root);
	return rc;
}

enum am_err
reg_tags_list(struct reg_client *c, const char *repo, int page_size,
    int (*cb)(void *ctx, const char *tag), void *ctx, char *err, size_t errlen)
{
	struct req rq;
	struct reg_reply r;
	char prefix[PATH_LEN], link[LINK_MAX], next[LINK_MAX], npath[PATH_LEN], what[PATH_LEN + 8];
	size_t plen;
	int pages, stopped = 0, found;
	enum am_err rc = AM_OK;

	reg_reply_init(&r);
	memset(&rq, 0, sizeof(rq));
	if (am_fmt(prefix, sizeof(prefix), "/v2/%s/tags/list", repo) != 0)
		return am_fail(err, errlen, AM_EINVAL, "tags/list: repository name too long");
	plen = strlen(prefix);
	rq.method = "GET";
	rq.repo = repo;
	rq.accept = "Accept: application/json";
	rq.keep_body = 1;
	rq.max = TAGS_PAGE_MAX;
	rq.link = link;
	rq.link_len = sizeof(link);
	if ((page_size > 0 ? am_fmt(rq.path, sizeof(rq.path), "%s?n=%d", prefix, page_size) :
	    am_fmt(rq.path, sizeof(rq.path), "%s", prefix)) != 0)
		return am_fail(err, errlen, AM_EINVAL, "tags/list: repository name too long");
	for (pages = 0; !stopped; pages++) {
		if (pages == TAGS_MAX_PAGES) {
			rc = am_fail(err, errlen, AM_EINVAL, "GET %s: more than %d pages", prefix,
			    TAGS_MAX_PAGES);
			goto done;
		}
		link[0] = '\0';
		if ((rc = do_request(c, &rq, &r, err, errlen)) != AM_OK)
			goto done;
		(void)am_fmt(what, sizeof(what), "GET %s", rq.path);
		if ((rc = tags_page(&r, what, cb, ctx, &stopped, err, errlen)) != AM_OK)
			goto done;
		reg_reply_clear(&r);
		if (stopped)
			break;
		if ((found = pagelink_next(link, next, sizeof(next))) < 0) {
			sanitize(link);
			rc = am_fail(err, errlen, AM_EINVAL, "%s: malformed Link header: %.200s", what, link);
			goto done;
		}
		if (found == 0)
			break;
		if ((rc = pagelink_resolve(c->url, rq.path, next, npath, sizeof(npath), err, errlen)) != AM_OK)
			goto done;
		/* The token covers this repository only; so does the next page. */
		if (strncmp(npath, prefix, plen) != 0 || (npath[plen] != '\0' && npath[plen] != '?')) {
			rc = am_fail(err, errlen, AM_EDENIED, "%s: next-page link %.200s leaves %s",
			    what, npath, prefix);
			goto done;
		}
		if (strcmp(npath, rq.path) == 0) {
			rc = am_fail(err, errlen, AM_EINVAL, "%s: next-page link points at the same page",
			    what);
			goto done;
		}
		memcpy(rq.path, npath, strlen(npath) + 1);
	}
done:
	reg_reply_clear(&r);
	return rc;
}
