/*
 * Blobs: GET into memory (config blobs), cross-repository mounts, and the
 * streamed copy through a temporary file when a mount is refused.
 */
#include "registry/client/internal.h"
#include "server/base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

enum am_err
reg_blob_get(struct reg_client *c, const char *repo, const char *digest,
    size_t max, struct reg_reply *out, char *err, size_t errlen)
{
	struct req rq;

	if (out != NULL)
		reg_reply_clear(out);
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.repo = repo;
	if (am_fmt(rq.path, sizeof(rq.path), "/v2/%s/blobs/%s", repo, digest) != 0)
		return am_fail(err, errlen, AM_EINVAL, "GET blob: repository or digest too long");
	rq.follow = 1;            /* storage backends answer with a redirect (S3, GCS) */
	rq.keep_body = 1;
	rq.max = max;
	return cl_do_request(c, &rq, out, err, errlen);
}

/* ---- blobs across repositories ---- */

/*
 * The path of an upload session's Location plus "digest=". An absolute URL
 * contributes only its path: the upload always goes to this registry's own
 * url, never to another host (the request carries our token), even when the
 * registry names itself differently (Harbor behind a proxy, an internal IP).
 */
static enum am_err
upload_path(struct reg_client *c, const char *loc, const char *digest, char *path, size_t len,
    char *err, size_t errlen)
{
	const char *p = loc;

	if (cl_is_http_url(loc)) {
		p = strchr(strstr(loc, "://") + 3, '/');
		if (p == NULL)
			p = "";
		if (strncasecmp(loc, c->url, strlen(c->url)) != 0)
			log_kv(LOG_DEBUG, "registry upload", LOG_S("location", loc), LOG_S("url", c->url),
			    LOG_S("detail", "the location names another origin; using its path"));
	}
	if (strncmp(p, "/v2/", 4) != 0)
		return am_fail(err, errlen, AM_EDENIED, "upload location \"%.200s\" is not below /v2/", loc);
	if (am_fmt(path, len, "%s%cdigest=%s", p, strchr(p, '?') != NULL ? '&' : '?', digest) != 0)
		return am_fail(err, errlen, AM_EINVAL, "upload location longer than %zu bytes", len);
	return AM_OK;
}

enum am_err
reg_blob_mount(struct reg_client *c, const char *dst, const char *src, const char *digest,
    int *mounted, char *location, size_t loclen, char *err, size_t errlen)
{
	struct req rq;
	struct reg_reply r;
	enum am_err rc;

	*mounted = 0;
	if (loclen > 0)
		location[0] = '\0';
	memset(&rq, 0, sizeof(rq));
	reg_reply_init(&r);
	rq.method = "POST";
	rq.repo = dst;
	rq.extra_scope = src;
	if (am_fmt(rq.path, sizeof(rq.path), "/v2/%s/blobs/uploads/?mount=%s&from=%s", dst, digest, src) != 0)
		return am_fail(err, errlen, AM_EINVAL, "mount: repository names too long");
	if ((rc = cl_do_request(c, &rq, &r, err, errlen)) != AM_OK)
		goto done;
	if (r.status == 201) {
		*mounted = 1;
	} else if (r.status == 202 && r.location[0] != '\0') {
		/* Not mounted: the registry opened an upload session instead. */
		if (am_fmt(location, loclen, "%s", r.location) != 0)
			rc = am_fail(err, errlen, AM_EINVAL, "mount %s: upload location too long", digest);
	} else {
		rc = am_fail(err, errlen, AM_EDENIED, "POST /v2/%s/blobs/uploads/ (mount %s from %s): "
		    "unexpected status %ld%s", dst, digest, src, r.status,
		    r.status == 202 ? " without Location" : "");
	}
done:
	reg_reply_clear(&r);
	return rc;
}

/* GET src's blob into f, checking digest and size on the way (md: sha256). */
static enum am_err
blob_download(struct reg_client *c, const char *src, const char *digest, long long size,
    FILE *f, EVP_MD_CTX *md, char *err, size_t errlen)
{
	struct req rq;
	struct reg_reply r;
	unsigned char raw[EVP_MAX_MD_SIZE];
	unsigned int rawlen = 0, i;
	char got[80];
	enum am_err rc;

	reg_reply_init(&r);
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.repo = src;
	rq.follow = 1;
	rq.keep_body = 1;
	rq.max = (size_t)size;
	rq.sink = f;
	rq.sink_md = md;
	if (am_fmt(rq.path, sizeof(rq.path), "/v2/%s/blobs/%s", src, digest) != 0)
		return am_fail(err, errlen, AM_EINVAL, "GET blob: repository or digest too long");
	if ((rc = cl_do_request(c, &rq, &r, err, errlen)) != AM_OK)
		goto done;
	if (fflush(f) != 0) {
		rc = am_fail(err, errlen, AM_EIO, "copy %s: temporary file: %s", digest, strerror(errno));
		goto done;
	}
	EVP_DigestFinal_ex(md, raw, &rawlen);
	(void)am_fmt(got, sizeof(got), "sha256:");
	for (i = 0; i < rawlen && 7 + 2 * i + 2 < sizeof(got); i++)
		(void)am_fmt(got + 7 + 2 * i, sizeof(got) - 7 - 2 * i, "%02x", raw[i]);
	if (strcmp(got, digest) != 0 || (long long)ftell(f) != size)
		rc = am_fail(err, errlen, AM_EMISMATCH, "blob %s from %s: got %lld bytes hashing to %s",
		    digest, src, (long long)ftell(f), got);
done:
	reg_reply_clear(&r);
	return rc;
}

/* POST /v2/<dst>/blobs/uploads/: a new upload session's Location into loc. */
static enum am_err
blob_session(struct reg_client *c, const char *dst, char *loc, size_t loclen, char *err, size_t errlen)
{
	struct req rq;
	struct reg_reply r;
	enum am_err rc;

	reg_reply_init(&r);
	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.repo = dst;
	(void)am_fmt(rq.path, sizeof(rq.path), "/v2/%s/blobs/uploads/", dst);
	if ((rc = cl_do_request(c, &rq, &r, err, errlen)) != AM_OK)
		goto done;
	if (r.status != 202 || r.location[0] == '\0')
		rc = am_fail(err, errlen, AM_EDENIED, "POST /v2/%s/blobs/uploads/: status %ld without "
		    "an upload location", dst, r.status);
	else
		(void)am_fmt(loc, loclen, "%s", r.location);
done:
	reg_reply_clear(&r);
	return rc;
}

/* PUT f (size bytes) to the upload session at location, completing it as digest. */
static enum am_err
blob_upload(struct reg_client *c, const char *dst, const char *digest, long long size, FILE *f,
    const char *location, char *err, size_t errlen)
{
	struct req rq;
	struct reg_reply r;
	enum am_err rc;

	reg_reply_init(&r);
	memset(&rq, 0, sizeof(rq));
	rq.method = "PUT";
	rq.repo = dst;
	rq.content_type = "application/octet-stream";
	rq.upload = f;
	rq.upload_len = size;
	if ((rc = upload_path(c, location, digest, rq.path, sizeof(rq.path), err, errlen)) != AM_OK ||
	    (rc = cl_do_request(c, &rq, &r, err, errlen)) != AM_OK)
		goto done;
	if (r.digest[0] != '\0' && strcmp(r.digest, digest) != 0)
		rc = am_fail(err, errlen, AM_EMISMATCH, "registry stored blob %s as %s", digest, r.digest);
done:
	reg_reply_clear(&r);
	return rc;
}

enum am_err
reg_blob_copy(struct reg_client *c, const char *dst, const char *src, const char *digest,
    long long size, const char *location, char *err, size_t errlen)
{
	FILE *f = NULL;
	EVP_MD_CTX *md = NULL;
	char loc[1024];
	enum am_err rc;

	if (size < 0)
		return am_fail(err, errlen, AM_EINVAL, "copy %s: unknown size", digest);
	/* Layers can be gigabytes: through an unlinked temporary file, never memory. */
	if ((f = tmpfile()) == NULL)
		return am_fail(err, errlen, AM_EIO, "copy %s: no temporary file: %s", digest, strerror(errno));
	if ((md = EVP_MD_CTX_new()) == NULL) {
		log_kv(LOG_ERROR, "registry", LOG_S("result", "failed"),
		    LOG_S("detail", "EVP_MD_CTX_new failed: out of memory"));
		abort();
	}
	if ((rc = blob_download(c, src, digest, size, f, md, err, errlen)) != AM_OK)
		goto done;
	if (location == NULL || location[0] == '\0') {
		if ((rc = blob_session(c, dst, loc, sizeof(loc), err, errlen)) != AM_OK)
			goto done;
		location = loc;
	}
	rc = blob_upload(c, dst, digest, size, f, location, err, errlen);
done:
	EVP_MD_CTX_free(md);
	fclose(f);
	return rc;
}

enum am_err
reg_blob_put(struct reg_client *c, const char *repo, const char *digest,
    const char *body, size_t len, char *err, size_t errlen)
{
	struct req rq;
	struct reg_reply r;
	char loc[1024];
	enum am_err rc;

	reg_reply_init(&r);
	memset(&rq, 0, sizeof(rq));
	rq.method = "HEAD";
	rq.repo = repo;
	rq.max = ERRBODY_MAX;
	if (am_fmt(rq.path, sizeof(rq.path), "/v2/%s/blobs/%s", repo, digest) != 0)
		return am_fail(err, errlen, AM_EINVAL, "blob put: repository or digest too long");
	if ((rc = cl_do_request(c, &rq, &r, err, errlen)) != AM_ENOTFOUND)
		goto done;
	if ((rc = blob_session(c, repo, loc, sizeof(loc), err, errlen)) != AM_OK)
		goto done;
	memset(&rq, 0, sizeof(rq));
	rq.method = "PUT";
	rq.repo = repo;
	rq.content_type = "application/octet-stream";
	rq.body = body;
	rq.body_len = len;
	if ((rc = upload_path(c, loc, digest, rq.path, sizeof(rq.path), err, errlen)) != AM_OK)
		goto done;
	reg_reply_clear(&r);
	if ((rc = cl_do_request(c, &rq, &r, err, errlen)) == AM_OK && r.digest[0] != '\0' &&
	    strcmp(r.digest, digest) != 0)
		rc = am_fail(err, errlen, AM_EMISMATCH, "registry stored blob %s as %s", digest, r.digest);
done:
	reg_reply_clear(&r);
	return rc;
}
