/*
 * Tag removal through Harbor's REST API, for cleanup after publishing. The
 * artifact is named by digest, so a tag that moved to new content in the
 * meantime is not on it any more and stays (Harbor answers 404).
 */
#include "registry/harbor/tags.h"

#include <string.h>

#include "registry/oci/names.h"

int
harbor_tag_path(const char *repo, const char *reference, const char *tag, char *out, size_t outlen)
{
	const char *slash = strchr(repo, '/');
	char project[NAME_MAX_REPO], rest[3 * 3 * NAME_MAX_REPO], ref[3 * 80], t[3 * NAME_MAX_TAG];

	if (slash == NULL || slash == repo || (size_t)(slash - repo) >= sizeof(project))
		return -1;
	memcpy(project, repo, (size_t)(slash - repo));
	project[slash - repo] = '\0';
	if (harbor_escape(slash + 1, 1, rest, sizeof(rest)) != 0 ||
	    harbor_escape(reference, 0, ref, sizeof(ref)) != 0 ||
	    harbor_escape(tag, 0, t, sizeof(t)) != 0)
		return -1;
	return am_fmt(out, outlen, "/projects/%s/repositories/%s/artifacts/%s/tags/%s",
	    project, rest, ref, t);
}

enum am_err
harbor_delete_tag(struct harbor *h, const char *repo, const char *reference,
    const char *tag, char *err, size_t errlen)
{
	char path[2048];
	long status = 0;
	enum am_err rc;

	if (!name_valid_repo(repo) || !name_valid_digest(reference) || !name_valid_tag(tag) ||
	    harbor_tag_path(repo, reference, tag, path, sizeof(path)) != 0)
		return am_fail(err, errlen, AM_EINVAL, "cannot remove %s:%s through Harbor: bad name",
		    repo, tag);
	if ((rc = harbor_call(h, "DELETE", path, NULL, NULL, &status, NULL, err, errlen)) != AM_OK)
		return rc;
	if (status >= 200 && status < 300)
		return AM_OK;
	/* harbor_call already put Harbor's own message into err. */
	if (status == 404)
		return AM_ENOTFOUND;
	if (status == 401 || status == 403)
		return AM_EAUTH;
	if (status == 429 || status >= 500)
		return AM_ETRANSIENT;
	return AM_EDENIED;
}
