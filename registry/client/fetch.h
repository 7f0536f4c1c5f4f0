/*
 * The one small synchronous HTTP(S) helper over libcurl: the command-line
 * tools (archmerge status, the robot check of harbor-setup) and Harbor's REST
 * client (registry/harbor/harbor.c) are built on it. TLS verified against a
 * given CA file or the system store, optional Basic credentials or a whole
 * Authorization value, any method with an optional body and extra header
 * lines, capped body, the WWW-Authenticate header kept. A session keeps one
 * handle (and so its connection) across calls.
 */
#ifndef AM_FETCH_H
#define AM_FETCH_H

#include <stddef.h>
#include "server/base/common.h"

struct fetch_session;

struct fetch_opts {
	const char *url;
	const char *method;         /* NULL: GET */
	const char *body;           /* request body (NULL: none) and its length */
	size_t body_len;
	const char *const *headers; /* extra header lines, NULL terminated; may be NULL */
	struct fetch_session *session;  /* NULL: a fresh handle for this call */
	const char *ca_file;        /* NULL: system store */
	int insecure;               /* skip TLS verification entirely */
	int skip_hostname;          /* verify the chain against ca_file, not the name (own certificate) */
	const char *username;       /* Basic credentials; NULL: none */
	const char *password;
	const char *authorization;  /* whole Authorization value; NULL: none */
	long timeout_ms;            /* 0: 10000 */
	size_t max;                 /* body cap; 0: 1 MiB */
	int (*abort_cb)(void *ctx); /* polled about once a second: non-zero ends the call; may be NULL */
	void *abort_ctx;
};

struct fetch_reply {
	long status;
	char *body;                 /* NUL terminated; fetch_reply_clear frees */
	size_t body_len;
	char www_authenticate[2048];
};

/* AM_OK when an HTTP answer arrived (any status); else err says why. */
enum am_err fetch_get(const struct fetch_opts *o, struct fetch_reply *r, char *err, size_t errlen);
void fetch_reply_clear(struct fetch_reply *r);

/* A kept handle, calls through it serialised (thread safe). NULL on out of memory. */
struct fetch_session *fetch_session_new(void);
void fetch_session_free(struct fetch_session *s);   /* accepts NULL */

#endif
