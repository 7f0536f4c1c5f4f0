/*
 * Registry client: distribution API v2 requests over libcurl for one registry,
 * shared by the worker threads. This file: creating and freeing a client and
 * the manifest verbs. The rest lives beside it (internal.h says where):
 * exchange.c (one HTTP exchange, handle pool), token.c (Basic/Bearer flow and
 * token cache), request.c (a request with its auth dance), blob.c, taglist.c,
 * parse.c (pure readings of answers); auth.c parses challenges and token replies.
 *
 * curl_global_init() is the caller's job: main calls it once before any
 * thread starts and before reg_client_new(), because it is not thread safe.
 */
#include "registry/client/internal.h"
#include "server/base/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

static const char ACCEPT_MANIFESTS[] =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

/* ---- public API ---- */

struct reg_client *
reg_client_new(const struct reg_client_opts *o, char *err, size_t errlen)
{
	struct reg_client *c = NULL;
	size_t n;
	int i;

	if (o == NULL || o->url == NULL || !cl_is_http_url(o->url)) {
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
	c->on_exchange = o->on_exchange;
	c->max_concurrent = o->max_concurrent > 0 ? o->max_concurrent : DEFAULT_CONCURRENT;
	pthread_mutex_init(&c->slot_lock, NULL);
	pthread_cond_init(&c->slot_free, NULL);
	c->hook_ctx = o->hook_ctx;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->fetch_lock, NULL);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	if ((c->share = curl_share_init()) == NULL) {
		log_kv(LOG_ERROR, "registry", LOG_S("result", "failed"),
		    LOG_S("detail", "curl_share_init failed: out of memory"));
		abort();
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, cl_share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, cl_share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	/* One connection cache for all pooled handles: whichever handle a thread
	 * takes reuses any idle connection, instead of only its own. */
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);

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
		cl_token_slot_clear(&c->tokens[i]);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->fetch_lock);
	pthread_mutex_destroy(&c->slot_lock);
	pthread_cond_destroy(&c->slot_free);
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
	return cl_do_request(c, &rq, out, err, errlen);
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
	return cl_do_request(c, &rq, out, err, errlen);
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
	return cl_do_request(c, &rq, out, err, errlen);
}


enum am_err
reg_ping(struct reg_client *c, char *err, size_t errlen)
{
	struct req rq;

	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	(void)am_fmt(rq.path, sizeof(rq.path), "/v2/");
	rq.max = ERRBODY_MAX;     /* the body of /v2/ is "{}": read, not kept */
	return cl_do_request(c, &rq, NULL, err, errlen);
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
