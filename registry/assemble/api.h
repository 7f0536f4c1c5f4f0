/*
 * The narrow interface the assembly logic uses to talk to a registry: a few
 * verbs behind function pointers, so unit tests hand in a fake and the
 * service hands in the real libcurl client (and Harbor's REST API).
 */
#ifndef AM_REGISTRY_API_H
#define AM_REGISTRY_API_H

#include "registry/client/client.h"

struct cache;
struct written;

struct reg_api {
	void *ctx;
	/*
	 * Image configs already read, by config digest (struct image_info values);
	 * content addressed, so never stale. NULL: no cache, every config is read.
	 */
	struct cache *configs;
	/*
	 * Every manifest PUT under a tag is noted here (host as configured)
	 * before it is sent, so the webhook it causes is known as our own.
	 * NULL: nothing noted.
	 */
	struct written *written;
	const char *host;
	enum am_err (*manifest_get)(void *ctx, const char *repo, const char *ref,
	    struct reg_reply *out, char *err, size_t errlen);
	enum am_err (*manifest_head)(void *ctx, const char *repo, const char *ref,
	    struct reg_reply *out, char *err, size_t errlen);
	enum am_err (*manifest_put)(void *ctx, const char *repo, const char *ref,
	    const char *media_type, const char *body, size_t len,
	    struct reg_reply *out, char *err, size_t errlen);
	enum am_err (*blob_get)(void *ctx, const char *repo, const char *digest, size_t max,
	    struct reg_reply *out, char *err, size_t errlen);
	/*
	 * Every tag of repo, page after page, cb(cbctx, tag) for each (nonzero
	 * stops). Floating extra tags read it to find higher published versions.
	 * NULL: cannot list, floating tags move as the last one pushed.
	 */
	enum am_err (*tags_list)(void *ctx, const char *repo, int (*cb)(void *cbctx, const char *tag),
	    void *cbctx, char *err, size_t errlen);

	/*
	 * Children living in another repository are copied into the target one:
	 * see reg_blob_mount / reg_blob_copy. NULL: copying is not possible.
	 */
	enum am_err (*blob_mount)(void *ctx, const char *dst, const char *src, const char *digest,
	    int *mounted, char *location, size_t loclen, char *err, size_t errlen);
	enum am_err (*blob_copy)(void *ctx, const char *dst, const char *src, const char *digest,
	    long long size, const char *location, char *err, size_t errlen);

	/*
	 * Upload a small in-memory blob (signatures); NULL: signing impossible.
	 * The signed docker-reference names the registry by host (above; ""
	 * or NULL: the repository alone).
	 */
	enum am_err (*blob_put)(void *ctx, const char *repo, const char *digest, const char *body,
	    size_t len, char *err, size_t errlen);

	/*
	 * Harbor's REST tag removal (cleanup): remove tag from the artifact
	 * reference (a digest) of repo, keeping the artifact. AM_ENOTFOUND when
	 * the tag is not (or no longer) on that artifact. NULL: no Harbor API.
	 */
	void *harbor;
	enum am_err (*tag_delete)(void *harbor, const char *repo, const char *reference,
	    const char *tag, char *err, size_t errlen);
};

/* Note a PUT of digest under repo:tag in api->written (see above). */
void reg_api_note_write(const struct reg_api *api, const char *repo, const char *tag,
    const char *digest);

/* Fill api with the real client's verbs (c borrowed); no Harbor API yet. */
void reg_api_from_client(struct reg_api *api, struct reg_client *c);

struct harbor;
/* Add Harbor's tag removal (h borrowed; NULL leaves it off). */
void reg_api_set_harbor(struct reg_api *api, struct harbor *h);

#endif
