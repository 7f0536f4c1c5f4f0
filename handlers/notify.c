/*
 * distribution's notification envelope. Field names follow distribution's
 * notifications.Event: action, target.{mediaType,digest,repository,tag,url},
 * request.host, actor.name. Every string that later reaches a URL, a log
 * line or a comparison is validated here.
 */
#include "handlers/notify.h"

#include <string.h>
#include <jansson.h>
#include "handlers/event.h"

/* The manifest media types a registry accepts; anything else is a blob. */
static const char *const manifest_types[] = {
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	NULL,
};

/* A string member; "\x7f" (rejected by every validator) for one holding NUL. */
static const char *
member_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return NULL;
	return strlen(json_string_value(v)) == json_string_length(v) ? json_string_value(v) : "\x7f";
}

static int
is_manifest(const char *media_type, const char *url)
{
	size_t i;

	for (i = 0; media_type != NULL && manifest_types[i] != NULL; i++)
		if (strcmp(media_type, manifest_types[i]) == 0)
			return 1;
	/* Older registries leave mediaType empty for schema1; the URL still says. */
	return url != NULL && strstr(url, "/manifests/") != NULL;
}

static void
invalid(struct notify_event *e, size_t i, const char *what)
{
	e->ignored = CLAIM_R_INVALID;
	(void)am_fmt(e->detail, sizeof(e->detail), "events[%zu]: %s", i, what);
}

/* request.host, or the host of target.url when the request part is absent. */
static int
take_host(struct notify_event *e, json_t *req, const char *url)
{
	const char *h = json_is_object(req) ? member_str(req, "host") : NULL;
	size_t n;

	if (h == NULL && url != NULL) {
		const char *p = strstr(url, "://");
		h = p != NULL ? p + 3 : NULL;
	}
	if (h == NULL)
		return 0;
	n = strcspn(h, "/");
	if (n >= sizeof(e->host) || !event_host_valid(h, n))
		return 0;
	memcpy(e->host, h, n);
	e->host[n] = '\0';
	return 1;
}

static void
parse_one(json_t *j, size_t i, struct notify_event *e)
{
	json_t *target, *actor;
	const char *action, *mt, *url, *repo, *tag, *digest, *name;

	memset(e, 0, sizeof(*e));
	if (!json_is_object(j)) {
		invalid(e, i, "not an object");
		return;
	}
	action = member_str(j, "action");
	if (action == NULL || action[0] == '\0' || strlen(action) >= sizeof(e->action) ||
	    action[strspn(action, "abcdefghijklmnopqrstuvwxyz")] != '\0') {
		invalid(e, i, "action is missing or not a lowercase word");
		return;
	}
	(void)am_fmt(e->action, sizeof(e->action), "%s", action);
	if (strcmp(action, "push") != 0) {
		e->ignored = CLAIM_R_NOT_PUSH;
		return;
	}
	target = json_object_get(j, "target");
	if (!json_is_object(target)) {
		invalid(e, i, "target is missing");
		return;
	}
	mt = member_str(target, "mediaType");
	url = member_str(target, "url");
	if (!is_manifest(mt, url)) {
		e->ignored = CLAIM_R_BLOB;
		return;
	}
	repo = member_str(target, "repository");
	if (repo == NULL || !name_valid_repo(repo)) {
		invalid(e, i, "target.repository is missing or not a valid repository name");
		return;
	}
	(void)am_fmt(e->repo, sizeof(e->repo), "%s", repo);
	digest = member_str(target, "digest");
	if (digest != NULL && digest[0] != '\0') {
		if (!name_valid_digest(digest)) {
			invalid(e, i, "target.digest is not a sha256 digest");
			return;
		}
		(void)am_fmt(e->digest, sizeof(e->digest), "%s", digest);
	}
	if (!take_host(e, json_object_get(j, "request"), url)) {
		invalid(e, i, "request.host is missing or not a valid host[:port]");
		return;
	}
	actor = json_object_get(j, "actor");
	name = json_is_object(actor) ? member_str(actor, "name") : NULL;
	if (name != NULL && am_fmt(e->actor, sizeof(e->actor), "%s", name) != 0) {
		invalid(e, i, "actor.name is too long");
		return;
	}
	tag = member_str(target, "tag");
	if (tag == NULL || tag[0] == '\0') {
		e->ignored = CLAIM_R_BY_DIGEST;
		return;
	}
	if (!name_valid_tag(tag)) {
		invalid(e, i, "target.tag is not a valid tag");
		return;
	}
	(void)am_fmt(e->tag, sizeof(e->tag), "%s", tag);
}

enum am_err
notify_parse(const char *body, size_t len, struct notify_envelope *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *events;
	enum am_err rc = AM_OK;
	size_t i;

	out->n = 0;
	if (event_too_deep(body, len))
		return am_fail(err, errlen, AM_EINVAL, "envelope nests too deeply");
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (root == NULL)
		return am_fail(err, errlen, AM_EINVAL, "envelope is not valid JSON (line %d: %s)",
		    jerr.line, jerr.text);
	events = json_is_object(root) ? json_object_get(root, "events") : NULL;
	if (!json_is_array(events)) {
		rc = am_fail(err, errlen, AM_EINVAL, "envelope has no \"events\" array");
		goto done;
	}
	if (json_array_size(events) == 0 || json_array_size(events) > NOTIFY_MAX_EVENTS) {
		rc = am_fail(err, errlen, AM_EINVAL, "envelope must hold 1 to %d events",
		    NOTIFY_MAX_EVENTS);
		goto done;
	}
	out->n = json_array_size(events);
	for (i = 0; i < out->n; i++)
		parse_one(json_array_get(events, i), i, &out->ev[i]);
done:
	json_decref(root);
	return rc;
}
