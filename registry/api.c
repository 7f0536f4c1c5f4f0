/* The real registry behind struct reg_api: thin casts onto client.h. */
#include "api.h"

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

void
reg_api_from_client(struct reg_api *api, struct reg_client *c)
{
	api->ctx = c;
	api->manifest_get = c_get;
	api->manifest_head = c_head;
	api->manifest_put = c_put;
	api->blob_get = c_blob;
}
