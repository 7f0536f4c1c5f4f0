/*
 * Registry client: the distribution API v2 over libcurl, for one registry.
 * Handles TLS (custom CA or system store), Basic auth and the Bearer token
 * flow with a per-scope token cache, and keeps connections alive.
 *
 * Thread safe: workers share one client per registry.
 */
#ifndef AM_REGISTRY_CLIENT_H
#define AM_REGISTRY_CLIENT_H

#include <stddef.h>
#include "server/base/common.h"

#define REG_MAX_MANIFEST (4u * 1024 * 1024)   /* registries refuse bigger */

struct reg_client;

/* What the hook in reg_client_opts hears after each exchange. */
struct reg_exchange {
	int token_fetch;          /* a token service GET, not a registry request */
	const char *method;
	long status;              /* 0: no HTTP answer */
	long long ms;
	long new_conns;           /* TCP connections this exchange opened */
};

struct reg_client_opts {
	const char *url;          /* "https://host[:port]", no trailing path */
	const char *ca_file;      /* NULL: system trust store */
	int insecure;             /* 1: skip TLS verification (only when asked) */
	const char *username;     /* NULL: anonymous */
	const char *password;     /* borrowed only during reg_client_new (copied) */
	long timeout_ms;          /* per request; 0: 30000 */
	long max_concurrent;      /* requests in flight at once, all threads together; 0: 4 */
	/* Called after every exchange from the thread that made it (the service
	 * feeds metrics with it); NULL: nobody listens. */
	void (*on_exchange)(void *ctx, const struct reg_exchange *e);
	void *hook_ctx;
};

struct reg_reply {
	long status;              /* HTTP status of the final answer */
	char media_type[128];     /* Content-Type, parameters stripped */
	char digest[80];          /* Docker-Content-Digest, "" when absent */
	long long length;         /* Content-Length, -1 when absent */
	long retry_after_ms;      /* from Retry-After on 429/503, else -1 */
	char *body;               /* GET: body, NUL terminated; caller frees via reg_reply_clear */
	size_t body_len;
	char location[1024];      /* Location header (upload sessions), "" when absent */
	/* A refusal's first errors[] entry, sanitized: "" when the body had none (HEAD never has one). */
	char error_code[48];
	char error_message[320];
};

struct reg_stats {
	unsigned long requests;   /* HTTP requests to the registry, token fetches excluded */
	unsigned long token_fetches;
	unsigned long connects;   /* new TCP connections opened */
};

struct reg_client *reg_client_new(const struct reg_client_opts *o, char *err, size_t errlen);
void reg_client_free(struct reg_client *c);   /* accepts NULL */

/* Zero a reply (call before first use) / free its body and zero it again. */
void reg_reply_init(struct reg_reply *r);
void reg_reply_clear(struct reg_reply *r);

/*
 * All verbs return AM_OK on 2xx, AM_ENOTFOUND on any 404, AM_EAUTH when the
 * credentials were rejected (401 even with a freshly fetched token),
 * AM_ETRANSIENT for network errors, timeouts, 5xx and 429, AM_EPOLICY when
 * a manifest read is refused by a project policy (412 PROJECTPOLICYVIOLATION,
 * or any 412 to a GET/HEAD, whose HEAD answer has no body), AM_EDENIED for
 * other 4xx. On failure err holds a line with the status and the registry's
 * own error code/message when it sent one. `out` may be NULL where noted.
 * repo and ref must already be validated by the caller.
 */

/* GET a manifest with an Accept list of all four manifest media types. */
enum am_err reg_manifest_get(struct reg_client *c, const char *repo, const char *ref,
    struct reg_reply *out, char *err, size_t errlen);

/* HEAD a manifest: fills status, media_type, digest, length. */
enum am_err reg_manifest_head(struct reg_client *c, const char *repo, const char *ref,
    struct reg_reply *out, char *err, size_t errlen);

/* PUT a manifest with Content-Type media_type; out (may be NULL) gets the digest header. */
enum am_err reg_manifest_put(struct reg_client *c, const char *repo, const char *ref,
    const char *media_type, const char *body, size_t len,
    struct reg_reply *out, char *err, size_t errlen);

/* GET a blob (redirects followed), refusing bodies larger than max bytes. */
enum am_err reg_blob_get(struct reg_client *c, const char *repo, const char *digest,
    size_t max, struct reg_reply *out, char *err, size_t errlen);

/*
 * GET /v2/<repo>/tags/list?n=<page_size> (no n when page_size <= 0) and every
 * further page its `Link: <...>; rel="next"` names (same registry only),
 * calling cb(ctx, tag) for each valid tag; entries that are not valid tags
 * are skipped. A page is at most 16 MiB; "tags": null is an empty page.
 * cb returns non-zero to stop early (the call then returns AM_OK).
 * AM_ENOTFOUND when the repository does not exist.
 */
enum am_err reg_tags_list(struct reg_client *c, const char *repo, int page_size,
    int (*cb)(void *ctx, const char *tag), void *ctx, char *err, size_t errlen);

/*
 * Cross-repository blob mount: POST /v2/<dst>/blobs/uploads/?mount=<digest>&from=<src>,
 * with one token covering push on dst and pull on src. *mounted = 1 on 201.
 * On 202 the registry opened an upload session instead; its Location goes to
 * location (pass it to reg_blob_copy).
 */
enum am_err reg_blob_mount(struct reg_client *c, const char *dst, const char *src,
    const char *digest, int *mounted, char *location, size_t loclen, char *err, size_t errlen);

/*
 * Copy a blob of size bytes from src to dst when it could not be mounted:
 * GET streamed to an unlinked temporary file (digest and size checked), then
 * one PUT of that file to the upload session location (NULL or "": a new
 * session is opened). Memory use does not grow with the blob.
 */
enum am_err reg_blob_copy(struct reg_client *c, const char *dst, const char *src,
    const char *digest, long long size, const char *location, char *err, size_t errlen);

/*
 * Upload a small blob held in memory (signature payloads and configs):
 * HEAD first (nothing is sent when it is there), else POST an upload
 * session and PUT the bytes with ?digest= in one request.
 */
enum am_err reg_blob_put(struct reg_client *c, const char *repo, const char *digest,
    const char *body, size_t len, char *err, size_t errlen);

/* GET /v2/: reachability and credentials check. */
enum am_err reg_ping(struct reg_client *c, char *err, size_t errlen);

void reg_client_stats(struct reg_client *c, struct reg_stats *out);

/* Abort transfers in progress and refuse new ones (shutdown); thread safe. */
void reg_client_cancel(struct reg_client *c);

#endif
