/*
 * Harbor's REST API (/api/v2.0), the few calls archmerge makes: webhook
 * policies (harbor-setup) and tag removal (cleanup). Basic auth, JSON bodies
 * through Jansson, TLS verified like the registry client.
 */
#ifndef AM_HARBOR_H
#define AM_HARBOR_H

#include <stddef.h>
#include <jansson.h>
#include "server/base/common.h"

struct harbor;

struct harbor_opts {
	const char *url;        /* "https://harbor.example.com" (API lives under /api/v2.0) */
	const char *ca_file;    /* NULL: system store */
	int insecure;
	const char *username;   /* NULL: anonymous */
	const char *password;   /* copied */
	long timeout_ms;        /* 0: 30000 */
};

struct harbor *harbor_new(const struct harbor_opts *o, char *err, size_t errlen);
void harbor_free(struct harbor *h);   /* accepts NULL */

/*
 * One call: method, path below /api/v2.0 (already URL-encoded by the caller,
 * see harbor_escape), optional JSON body (borrowed). *status gets the HTTP
 * status; *reply (may be NULL) the parsed JSON answer or NULL (caller
 * decrefs). Extra header lines (may be NULL) e.g. "X-Is-Resource-Name: true".
 * Returns AM_OK when an HTTP answer arrived, whatever its status; AM_ETRANSIENT
 * for network faults; err then says why. For non-2xx statuses err holds
 * Harbor's error message.
 */
enum am_err harbor_call(struct harbor *h, const char *method, const char *path,
    json_t *body, const char *const *headers, long *status, json_t **reply,
    char *err, size_t errlen);

/*
 * GET a plain-text resource below /api/v2.0 (a task's log), the project
 * named by name (X-Is-Resource-Name: true): *text (caller frees) on 2xx, else NULL and err holds Harbor's message. Same return
 * convention as harbor_call.
 */
enum am_err harbor_get_text(struct harbor *h, const char *path, long *status, char **text,
    char *err, size_t errlen);

/*
 * URL-encode one path segment into out; twice=1 encodes the result again
 * (Harbor wants repository names containing '/' encoded twice: a/b -> a%252Fb).
 * Returns -1 when out is too small.
 */
int harbor_escape(const char *in, int twice, char *out, size_t outlen);

#endif
