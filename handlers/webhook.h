/*
 * The webhook decision, free of HTTP plumbing: a request (method, headers,
 * body) goes in, a status and JSON body come out, and matched groups are
 * handed to the enqueue callback.
 */
#ifndef AM_WEBHOOK_H
#define AM_WEBHOOK_H

#include <stddef.h>
#include "config/config.h"
#include "handlers/event.h"

struct webhook_env {
	const struct cfg *cfg;
	const char *secret;        /* whole expected Authorization value; NULL: none required */
	/* Returns 1 when queued, 0 when coalesced, -1 when it could not be recorded (503). */
	int (*enqueue)(void *ctx, const struct group *g);
	void *ctx;
};

struct webhook_req {
	const char *method;
	const char *authorization;  /* NULL when absent */
	const char *content_type;   /* NULL when absent */
	const char *body;
	size_t body_len;
	int body_too_large;         /* the server stopped reading at the cap */
	int body_incomplete;        /* timed out or closed before the whole body came */
};

struct webhook_resp {
	int status;
	char *body;                 /* JSON, caller frees */
	char summary[512];          /* for the log line: outcome and what matched */
	const char *outcome;        /* "accepted", "ignored" or "rejected" (static) */
	const char *reason;         /* ignored: short stable reason code (static), else NULL */
};

/*
 * The checks that need only the request line and headers (method, secret):
 * 1 with resp filled when the request is refused, so that the HTTP front can
 * answer before reading any body byte. webhook_handle() runs them too.
 */
int webhook_precheck(const struct webhook_env *env, const struct webhook_req *req,
    struct webhook_resp *resp);

void webhook_handle(const struct webhook_env *env, const struct webhook_req *req,
    struct webhook_resp *resp);

#endif
