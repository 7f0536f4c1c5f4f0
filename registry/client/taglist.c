/*
 * tags/list with pagination: every page its Link header names, same
 * repository only, invalid tags skipped.
 */
#include "registry/client/internal.h"
#include "registry/client/pagelink.h"
#include "registry/oci/names.h"
#include "server/base/log.h"

#include <string.h>

#include <jansson.h>

static enum am_err
tags_page(const struct reg_reply *r, const char *what, int (*cb)(void *ctx, const char *tag),
    void *ctx, int *stopped, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *tags;
	size_t i, skipped = 0;
	enum am_err rc = AM_OK;

	*stopped = 0;
	root = json_loadb(r->body != NULL ? r->body : "", r->body_len, 0, &jerr);
	if (!json_is_object(root)) {
		rc = am_fail(err, errlen, AM_EINVAL, "%s: answer is not a JSON object", what);
		goto done;
	}
	tags = json_object_get(root, "tags");
	if (tags != NULL && !json_is_null(tags) && !json_is_array(tags)) {
		rc = am_fail(err, errlen, AM_EINVAL, "%s: \"tags\" is neither an array nor null", what);
		goto done;
	}
	for (i = 0; i < json_array_size(tags); i++) {
		const char *t = json_string_value(json_array_get(tags, i));
		/* Only tags that can name a manifest reach the caller (and its URLs). */
		if (t == NULL || !name_valid_tag(t)) {
			skipped++;
			continue;
		}
		if (cb(ctx, t) != 0) {
			*stopped = 1;
			break;
		}
	}
	if (skipped > 0)
		log_kv(LOG_WARN, "registry tags", LOG_S("what", what), LOG_I("skipped", skipped),
		    LOG_S("detail", "entries that are not valid tags"));
done:
	json_decref(root);
	return rc;
}

/*
 * The next page's path from the Link header of the page at path (replaced in
 * place); *found = 0 on the last page. The token covers this repository
 * only, so the next page must stay below prefix.
 */
static enum am_err
next_page(const struct reg_client *c, char *link, const char *prefix, const char *what,
    char *path, size_t pathlen, int *found, char *err, size_t errlen)
{
	char next[LINK_MAX], npath[PATH_LEN];
	size_t plen = strlen(prefix);
	enum am_err rc;

	if ((*found = pagelink_next(link, next, sizeof(next))) < 0) {
		cl_sanitize(link);
		return am_fail(err, errlen, AM_EINVAL, "%s: malformed Link header: %.200s", what, link);
	}
	if (*found == 0)
		return AM_OK;
	if ((rc = pagelink_resolve(c->url, path, next, npath, sizeof(npath), err, errlen)) != AM_OK)
		return rc;
	if (strncmp(npath, prefix, plen) != 0 || (npath[plen] != '\0' && npath[plen] != '?'))
		return am_fail(err, errlen, AM_EDENIED, "%s: next-page link %.200s leaves %s",
		    what, npath, prefix);
	if (strcmp(npath, path) == 0)
		return am_fail(err, errlen, AM_EINVAL, "%s: next-page link points at the same page", what);
	if (strlen(npath) >= pathlen)
		return am_fail(err, errlen, AM_EINVAL, "%s: next-page link too long", what);
	memcpy(path, npath, strlen(npath) + 1);
	return AM_OK;
}

enum am_err
reg_tags_list(struct reg_client *c, const char *repo, int page_size,
    int (*cb)(void *ctx, const char *tag), void *ctx, char *err, size_t errlen)
{
	struct req rq;
	struct reg_reply r;
	char prefix[PATH_LEN], link[LINK_MAX], what[PATH_LEN + 8];
	int pages, stopped = 0, found;
	enum am_err rc = AM_OK;

	reg_reply_init(&r);
	memset(&rq, 0, sizeof(rq));
	if (am_fmt(prefix, sizeof(prefix), "/v2/%s/tags/list", repo) != 0)
		return am_fail(err, errlen, AM_EINVAL, "tags/list: repository name too long");
	rq.method = "GET";
	rq.repo = repo;
	rq.accept = "Accept: application/json";
	rq.keep_body = 1;
	rq.max = TAGS_PAGE_MAX;
	rq.link = link;
	rq.link_len = sizeof(link);
	if ((page_size > 0 ? am_fmt(rq.path, sizeof(rq.path), "%s?n=%d", prefix, page_size) :
	    am_fmt(rq.path, sizeof(rq.path), "%s", prefix)) != 0)
		return am_fail(err, errlen, AM_EINVAL, "tags/list: repository name too long");
	for (pages = 0; !stopped; pages++) {
		if (pages == TAGS_MAX_PAGES) {
			rc = am_fail(err, errlen, AM_EINVAL, "GET %s: more than %d pages", prefix,
			    TAGS_MAX_PAGES);
			goto done;
		}
		link[0] = '\0';
		if ((rc = cl_do_request(c, &rq, &r, err, errlen)) != AM_OK)
			goto done;
		(void)am_fmt(what, sizeof(what), "GET %s", rq.path);
		if ((rc = tags_page(&r, what, cb, ctx, &stopped, err, errlen)) != AM_OK)
			goto done;
		reg_reply_clear(&r);
		if (stopped)
			break;
		if ((rc = next_page(c, link, prefix, what, rq.path, sizeof(rq.path), &found, err,
		    errlen)) != AM_OK || !found)
			goto done;
	}
done:
	reg_reply_clear(&r);
	return rc;
}
