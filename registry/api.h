/*
 * The narrow interface the assembly logic uses to talk to a registry: four
 * verbs behind function pointers, so unit tests hand in a fake and the
 * service hands in the real libcurl client.
 */
#ifndef AM_REGISTRY_API_H
#define AM_REGISTRY_API_H

#include "client.h"

struct reg_api {
	void *ctx;
	enum am_err (*manifest_get)(void *ctx, const char *repo, const char *ref,
	    struct reg_reply *out, char *err, size_t errlen);
	enum am_err (*manifest_head)(void *ctx, const char *repo, const char *ref,
	    struct reg_reply *out, char *err, size_t errlen);
	enum am_err (*manifest_put)(void *ctx, const char *repo, const char *ref,
	    const char *media_type, const char *body, size_t len,
	    struct reg_reply *out, char *err, size_t errlen);
	enum am_err (*blob_get)(void *ctx, const char *repo, const char *digest, size_t max,
	    struct reg_reply *out, char *err, size_t errlen);
};

/* Fill api with the real client's verbs (c borrowed). */
void reg_api_from_client(struct reg_api *api, struct reg_client *c);

#endif
