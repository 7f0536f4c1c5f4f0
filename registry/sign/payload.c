/* The simple-signing payload and the signature tag names. */
#include "registry/sign/sign.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int
is_sha256(const char *d)
{
	return strncmp(d, "sha256:", 7) == 0 && strlen(d) == 71 &&
	    strspn(d + 7, "0123456789abcdef") == 64;
}

enum am_err
sig_payload_build(const char *reference, const char *digest, char **out, size_t *len,
    char *err, size_t errlen)
{
	json_t *doc;
	char *s;

	if (!is_sha256(digest))
		return am_fail(err, errlen, AM_EINVAL, "payload: digest %.80s is not sha256:<hex>", digest);
	doc = json_pack("{s:{s:{s:s},s:{s:s},s:s},s:n}", "critical", "identity", "docker-reference",
	    reference, "image", "docker-manifest-digest", digest, "type", SIG_TYPE, "optional");
	if (doc == NULL)
		return am_fail(err, errlen, AM_EINVAL, "payload: reference is not valid UTF-8");
	/* Sorted and compact, as cosign writes it: the bytes are what is signed. */
	s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (s == NULL)
		return am_fail(err, errlen, AM_EINVAL, "payload: cannot serialise");
	*out = s;
	*len = strlen(s);
	return AM_OK;
}

/* A string member of obj, bounded; NULL when absent or not a string. */
static const char *
str_member(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

enum am_err
sig_payload_parse(const char *body, size_t len, struct sig_payload *out, char *err, size_t errlen)
{
	json_t *doc, *crit;
	json_error_t je;
	const char *ref, *dig, *type;
	enum am_err rc = AM_OK;

	memset(out, 0, sizeof(*out));
	if (len > SIG_MAX_PAYLOAD)
		return am_fail(err, errlen, AM_EINVAL, "payload larger than %d bytes", SIG_MAX_PAYLOAD);
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL)
		return am_fail(err, errlen, AM_EINVAL, "payload is not JSON: %s", je.text);
	crit = json_object_get(doc, "critical");
	ref = str_member(json_object_get(crit, "identity"), "docker-reference");
	dig = str_member(json_object_get(crit, "image"), "docker-manifest-digest");
	type = str_member(crit, "type");
	if (!json_is_object(doc) || !json_is_object(crit) || ref == NULL || dig == NULL || type == NULL)
		rc = am_fail(err, errlen, AM_EINVAL, "payload lacks critical.identity.docker-reference, "
		    "critical.image.docker-manifest-digest or critical.type");
	else if (strcmp(type, SIG_TYPE) != 0)
		rc = am_fail(err, errlen, AM_EINVAL, "payload type \"%.80s\" is not \"%s\"", type, SIG_TYPE);
	else if (!is_sha256(dig))
		rc = am_fail(err, errlen, AM_EINVAL, "payload digest \"%.80s\" is not sha256:<hex>", dig);
	else if (am_fmt(out->reference, sizeof(out->reference), "%s", ref) != 0)
		rc = am_fail(err, errlen, AM_EINVAL, "payload docker-reference longer than %zu bytes",
		    sizeof(out->reference) - 1);
	else
		(void)am_fmt(out->digest, sizeof(out->digest), "%s", dig);
	json_decref(doc);
	if (rc != AM_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

int
sig_tag_of(const char *digest, char *tag, size_t len)
{
	if (!is_sha256(digest))
		return -1;
	return am_fmt(tag, len, "sha256-%s.sig", digest + 7);
}

int
sig_digest_of_tag(const char *tag, char *digest, size_t len)
{
	if (strncmp(tag, "sha256-", 7) != 0 || strlen(tag) != 7 + 64 + 4 ||
	    strspn(tag + 7, "0123456789abcdef") != 64 || strcmp(tag + 71, ".sig") != 0)
		return -1;
	return am_fmt(digest, len, "sha256:%.64s", tag + 7);
}

int
sig_reference_names(const char *reference, const char *repo)
{
	const char *p = reference, *slash = strchr(reference, '/');
	size_t n;

	/* A first component with '.' or ':' or "localhost" is a registry host. */
	if (slash != NULL && (memchr(p, '.', (size_t)(slash - p)) != NULL ||
	    memchr(p, ':', (size_t)(slash - p)) != NULL || strncmp(p, "localhost/", 10) == 0))
		p = slash + 1;
	n = strcspn(p, "@");
	if (memchr(p, ':', n) != NULL && strrchr(p, '/') < (const char *)memchr(p, ':', n))
		n = (size_t)((const char *)memchr(p, ':', n) - p);
	return strlen(repo) == n && strncmp(p, repo, n) == 0;
}
