/*
 * Private to registry/client/: the client's state and the pieces its files
 * share. Nothing outside this folder includes it.
 */
#ifndef AM_REGISTRY_CLIENT_INTERNAL_H
#define AM_REGISTRY_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "registry/client/client.h"
#include "registry/client/auth.h"


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
#define DEFAULT_CONCURRENT  4L
#define CONNECT_TIMEOUT_MS  10000L       /* at most; never more than the total */
#define MAX_REDIRS          5L
#define RETRY_AFTER_MAX_S   86400L
#define LINK_MAX            2048         /* Link header of a tags/list page */
#define TAGS_PAGE_MAX       (16u * 1024 * 1024)   /* registries ignoring n= send every tag at once */
#define TAGS_MAX_PAGES      10000


struct token_entry {
	char scope[SCOPE_LEN];
	char *token;              /* secret: wiped when dropped; NULL = free slot */
	long long refresh_at;     /* am_now_ms() from which a new one is fetched */
	long long fetched_at;     /* am_now_ms() when its fetch began */
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

	void (*on_exchange)(void *ctx, const struct reg_exchange *e);
	void *hook_ctx;

	/* At most max_concurrent exchanges in flight (slot_lock/slot_free guard inflight). */
	long max_concurrent;
	long inflight;
	pthread_mutex_t slot_lock;
	pthread_cond_t slot_free;

	atomic_int cancelled;     /* reg_client_cancel: abort transfers (shutdown) */
};

/* cl_do_request copies challenge fields into these buffers whole. */
_Static_assert(sizeof(((struct reg_client *)0)->realm) == sizeof(((struct auth_challenge *)0)->realm),
    "realm buffers differ");
_Static_assert(sizeof(((struct reg_client *)0)->service) == sizeof(((struct auth_challenge *)0)->service),
    "service buffers differ");
_Static_assert(SCOPE_LEN == sizeof(((struct auth_challenge *)0)->scope), "scope buffers differ");

enum send_auth { SEND_NONE, SEND_BASIC, SEND_BEARER };

/* How one try of a request goes out: where, named how, with which credentials. */
struct send {
	const char *url;
	const char *what;         /* "GET /v2/..." for logs and messages */
	enum send_auth auth;
	const char *bearer;       /* SEND_BEARER: borrowed */
	int token_fetch;          /* counted apart from registry requests */
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

/* ---- one registry request with authentication ---- */

/* One registry request: what to send and how to take the answer. */
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

struct auth_state {
	enum send_auth kind;
	char *token;              /* SEND_BEARER: secret, wiped by cl_auth_state_clear */
	int fresh;                /* fetched during this call: a refusal is final */
	char realm[sizeof(((struct reg_client *)0)->realm)];
	char service[sizeof(((struct reg_client *)0)->service)];
	char scope[SCOPE_LEN];    /* what this request needs */
	char key[SCOPE_LEN];      /* cache key of token (may be a wider scope) */
};


/* parse.c */
void cl_copy_bounded(char *dst, size_t dstlen, const char *src, size_t n);
void cl_sanitize(char *s);
int cl_is_http_url(const char *s);
int cl_is_2xx(long status);
long cl_retry_after_ms(const char *v);
void cl_registry_error(const struct resp *rs, char *out, size_t outlen);
void cl_registry_error_parts(const struct resp *rs, char *code, size_t clen, char *msg, size_t mlen);
enum am_err cl_status_to_err(long status);
enum am_err cl_reply_to_err(long status, const char *method, const char *code);
void cl_describe_rejection(const struct reg_client *c, const char *scope, char *out, size_t outlen);

/* exchange.c */
void cl_share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud);
void cl_share_unlock(CURL *h, curl_lock_data data, void *ud);
void cl_resp_init(struct resp *rs, size_t max, int keep_body);
void cl_resp_free(struct resp *rs);
/*
 * Run one HTTP exchange. AM_OK means an HTTP status arrived (any status);
 * otherwise the transfer failed (network, TLS, timeout, body too big) and err
 * says why.
 */
enum am_err cl_exchange(struct reg_client *c, const struct req *rq, const struct send *s,
    struct resp *rs, char *err, size_t errlen);

/* token.c */
void cl_token_slot_clear(struct token_entry *t);
char *cl_token_find(struct reg_client *c, const char *scope, long long not_before, char *key,
    size_t keylen);
void cl_token_drop(struct reg_client *c, const char *key, const char *token);
enum am_err cl_token_get(struct reg_client *c, const char *realm, const char *service,
    const char *scope, long long not_before, char **token, char *key, size_t keylen,
    char *err, size_t errlen);
int cl_is_push(const struct req *rq);
enum am_err cl_own_scope(const struct reg_client *c, const struct req *rq, char *scope, size_t len,
    char *err, size_t errlen);
void cl_auth_state_clear(struct auth_state *st);
enum am_err cl_auth_start(struct reg_client *c, struct auth_state *st, char *err, size_t errlen);
enum am_err cl_auth_after_401(struct reg_client *c, const struct req *rq, const struct resp *rs,
    struct auth_state *st, const char *what, int *retry, char *err, size_t errlen);

/* request.c: send rq, through the auth dance once on a 401 (at most two tries). */
enum am_err cl_do_request(struct reg_client *c, const struct req *rq, struct reg_reply *out,
    char *err, size_t errlen);

#endif
