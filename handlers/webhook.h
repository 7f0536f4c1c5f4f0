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
#include "server/base/log.h"

struct written;

struct webhook_env {
	const struct cfg *cfg;
	const char *secret;        /* whole expected Authorization value; NULL: none required */
	/* Returns 1 when queued, 0 when coalesced, -1 when it could not be recorded (503). */
	int (*enqueue)(void *ctx, const struct group *g);
	void *ctx;
	/*
	 * The groups waiting for a child of repo (its signature, or the
	 * registry's leave to read it) that tag or digest names: up to max into
	 * g, returns how many. Asked when a signature tag sha256-<hex>.sig is
	 * pushed (digest: its image) and when Harbor finished scanning an image.
	 * NULL: such events are ignored.
	 */
	size_t (*waiting)(void *ctx, const char *host, const char *repo, const char *tag,
	    const char *digest, struct group *g, size_t max);
	/*
	 * Remember host/repo for reconcile (may be NULL): called for every
	 * resource that matches a rule as source or as one of its outputs,
	 * whatever the answer.
	 */
	void (*remember)(void *ctx, const char *host, const char *repo);
	/* What archmerge just wrote (may be NULL): such a push is its own. */
	struct written *written;
	/*
	 * A source tag was claimed (may be NULL): the change feed then knows a
	 * webhook announced host/repo:tag@digest.
	 */
	void (*announce)(void *ctx, const char *host, const char *repo, const char *tag,
	    const char *digest);
	/*
	 * Per registry (parallel to cfg->registries; NULL, or a NULL entry: the
	 * registry has none): a registry's own webhook secret. A request must
	 * carry secret or one of these; an event naming a registry with its own
	 * secret is then taken only when it carried that one.
	 */
	const char *const *reg_secrets;
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
	/* For the log line and metrics: typed fields, "" when not applicable. */
	const char *outcome;        /* "queued", "ignored", "rejected" or "unavailable" (static) */
	const char *reason;         /* ignored: short stable reason code (static), else NULL */
	char why[256];              /* ignored, rejected, unavailable: the human reason */
	char type[64];              /* not a push: the event type as sent */
	char repo[NAME_MAX_REPO];
	char tag[NAME_MAX_TAG + 80];  /* the first resource's tag, or its digest */
	char group[256 + NAME_MAX_REPO + NAME_MAX_TAG + 4];  /* queued: the first group */
	int coalesced;              /* queued: every group was already queued */
};

/* The response's log fields (at most WEBHOOK_LOG_FIELDS) into f; returns how many. */
#define WEBHOOK_LOG_FIELDS 7
size_t webhook_log_fields(const struct webhook_resp *resp, struct log_field *f);

/*
 * The secret an event naming registry host must have come with (its own, or
 * env->secret); NULL when none is required. Borrowed from env.
 */
const char *webhook_secret_for(const struct webhook_env *env, const char *host);

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
