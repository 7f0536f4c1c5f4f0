/* The real registry behind struct reg_api: thin casts onto client.h and harbor_tags.h. */
#include "registry/assemble/api.h"

#include <string.h>

#include "registry/assemble/written.h"
#include "registry/harbor/tags.h"

static enum am_err
c_get(void *ctx, const char *repo, const char *ref, struct reg_reply *out, char *err, size_t errlen)
{
	return reg_manifest_get(ctx, repo, ref, out, err, errlen);
}

static enum am_err
c_head(void *ctx, const char *repo, const char *ref, struct reg_reply *out, char *err, size_t errlen)
{
	return reg_manifest_head(ctx, repo, ref, out, err, errlen);
}

static enum am_err
c_put(void *ctx, const char *repo, const char *ref, const char *media_type, const char *body,
    size_t len, struct reg_reply *out, char *err, size_t errlen)
{
	return reg_manifest_put(ctx, repo, ref, media_type, body, len, out, err, errlen);
}

static enum am_err
c_blob(void *ctx, const char *repo, const char *digest, size_t max, struct reg_reply *out,
    char *err, size_t errlen)
{
	return reg_blob_get(ctx, repo, digest, max, out, err, errlen);
}

/* Pages of REG_API_TAGS_PAGE tags: a repository of a few hundred versions in one request. */
#define REG_API_TAGS_PAGE 1000

static enum am_err
c_tags(void *ctx, const char *repo, int (*cb)(void *cbctx, const char *tag), void *cbctx,
    char *err, size_t errlen)
{
	return reg_tags_list(ctx, repo, REG_API_TAGS_PAGE, cb, cbctx, err, errlen);
}

static enum am_err
c_mount(void *ctx, const char *dst, const char *src, const char *digest, int *mounted,
    char *location, size_t loclen, char *err, size_t errlen)
{
	return reg_blob_mount(ctx, dst, src, digest, mounted, location, loclen, err, errlen);
}

static enum am_err
c_copy(void *ctx, const char *dst, const char *src, const char *digest, long long size,
    const char *location, char *err, size_t errlen)
{
	return reg_blob_copy(ctx, dst, src, digest, size, location, err, errlen);
}

static enum am_err
c_blob_put(void *ctx, const char *repo, const char *digest, const char *body, size_t len,
    char *err, size_t errlen)
{
	return reg_blob_put(ctx, repo, digest, body, len, err, errlen);
}

static enum am_err
h_tag_delete(void *h, const char *repo, const char *reference, const char *tag,
    char *err, size_t errlen)
{
	return harbor_delete_tag(h, repo, reference, tag, err, errlen);
}

void
reg_api_note_write(const struct reg_api *api, const char *repo, const char *tag,
    const char *digest)
{
	written_note(api->written, api->host, repo, tag, digest);
}

void
reg_api_set_harbor(struct reg_api *api, struct harbor *h)
{
	api->harbor = h;
	api->tag_delete = h != NULL ? h_tag_delete : NULL;
}

void
reg_api_from_client(struct reg_api *api, struct reg_client *c)
{
	memset(api, 0, sizeof(*api));
	api->ctx = c;
	api->blob_mount = c_mount;
	api->blob_copy = c_copy;
	api->manifest_get = c_get;
	api->manifest_head = c_head;
	api->manifest_put = c_put;
	api->blob_get = c_blob;
	api->tags_list = c_tags;
	api->blob_put = c_blob_put;
}
