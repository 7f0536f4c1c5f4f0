/*
 * Payload parsing. Every string that later reaches a URL or a log line is
 * validated here against the distribution grammar.
 */
#include "handlers/event.h"

#include <string.h>
#include <jansson.h>

#define MAX_JSON_DEPTH 32

/* Reject deep nesting before Jansson recurses into it. */
static int
too_deep(const char *s, size_t len)
{
	int depth = 0, in_str = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > MAX_JSON_DEPTH)
				return 1;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return 0;
}

/* Host part of resource_url: a host name, IPv4/[IPv6] address, optional port. */
static int
host_valid(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || (s[i] != '\0' && strchr(".-_:[]", s[i]) != NULL)))
			return 0;
	return len > 0;
}

/*
 * A string member, or NULL when absent or not a string. The parser lets
 * \u0000 through (JSON_ALLOW_NUL) so that the reason can name the field: a
 * string holding NUL comes back as "\x7f", which no validator here accepts,
 * instead of a C string silently cut at the NUL.
 */
static const char *
get_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return NULL;
	return strlen(json_string_value(v)) == json_string_length(v) ? json_string_value(v) : "\x7f";
}

static enum am_err
parse_resource(json_t *r, size_t i, struct event_resource *out, char *err, size_t errlen)
{
	const char *tag, *digest, *url, *slash;
	size_t hostlen;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(r))
		return am_fail(err, errlen, AM_EINVAL, "resources[%zu] is not an object", i);
	tag = get_str(r, "tag");
	digest = get_str(r, "digest");
	url = get_str(r, "resource_url");
	if (url == NULL || url[0] == '\0')
		return am_fail(err, errlen, AM_EINVAL, "resources[%zu].resource_url is missing", i);
	slash = strchr(url, '/');
	hostlen = slash ? (size_t)(slash - url) : strlen(url);
	if (hostlen >= sizeof(out->host) || !host_valid(url, hostlen))
		return am_fail(err, errlen, AM_EINVAL, "resources[%zu].resource_url has no valid host", i);
	memcpy(out->host, url, hostlen);
	if (digest != NULL && digest[0] != '\0') {
		if (!name_valid_digest(digest))
			return am_fail(err, errlen, AM_EINVAL, "resources[%zu].digest is not a sha256 digest", i);
		(void)am_fmt(out->digest, sizeof(out->digest), "%s", digest);
	}
	if (tag == NULL || tag[0] == '\0' || strncmp(tag, "sha256:", 7) == 0) {
		/* Pushed by digest: the "tag" repeats the digest, or is absent. */
		if (tag != NULL && tag[0] != '\0' && !name_valid_digest(tag))
			return am_fail(err, errlen, AM_EINVAL, "resources[%zu].tag is not a valid tag or digest", i);
		out->by_digest = 1;
		if (out->digest[0] == '\0' && tag != NULL && tag[0] != '\0')
			(void)am_fmt(out->digest, sizeof(out->digest), "%s", tag);
		return AM_OK;
	}
	if (!name_valid_tag(tag))
		return am_fail(err, errlen, AM_EINVAL, "resources[%zu].tag is not a valid tag", i);
	(void)am_fmt(out->tag, sizeof(out->tag), "%s", tag);
	return AM_OK;
}

static enum am_err parse_body(json_t *root, int cloudevents, struct event *out, char *err,
    size_t errlen);

enum am_err
event_parse(const char *body, size_t len, int cloudevents, struct event *out,
    char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = NULL;
	const char *type;
	enum am_err rc = AM_OK;

	memset(out, 0, sizeof(*out));
	if (too_deep(body, len))
		return am_fail(err, errlen, AM_EINVAL, "payload nests deeper than %d levels", MAX_JSON_DEPTH);
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (root == NULL) {
		rc = am_fail(err, errlen, AM_EINVAL, "payload is not valid JSON (line %d: %s)",
		    jerr.line, jerr.text);
		goto done;
	}
	if (!json_is_object(root)) {
		rc = am_fail(err, errlen, AM_EINVAL, "payload is not a JSON object");
		goto done;
	}
	type = get_str(root, "type");
	if (type == NULL || type[0] == '\0') {
		rc = am_fail(err, errlen, AM_EINVAL, "payload has no \"type\"");
		goto done;
	}
	/* The type of any event reaches the log line, pushes or not. */
	if (type[strspn(type, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789._-")] != '\0') {
		rc = am_fail(err, errlen, AM_EINVAL, "\"type\" has characters outside [A-Za-z0-9._-]");
		goto done;
	}
	if (am_fmt(out->type, sizeof(out->type), "%s", type) != 0) {
		rc = am_fail(err, errlen, AM_EINVAL, "\"type\" is too long");
		goto done;
	}
	out->is_push = cloudevents ? strcmp(type, "harbor.artifact.pushed") == 0
	    : strcmp(type, "PUSH_ARTIFACT") == 0;
	if (cloudevents && strcmp(type, "PUSH_ARTIFACT") == 0) {
		rc = am_fail(err, errlen, AM_EINVAL,
		    "Default-format payload sent as application/cloudevents+json");
		goto done;
	}
	if (!cloudevents && json_object_get(root, "specversion") != NULL) {
		rc = am_fail(err, errlen, AM_EINVAL,
		    "CloudEvents payload sent as application/json (use application/cloudevents+json)");
		goto done;
	}
	out->is_scan = cloudevents ? strcmp(type, "harbor.scan.completed") == 0
	    : strcmp(type, "SCANNING_COMPLETED") == 0;
	if (!out->is_push && !out->is_scan)
		goto done;   /* other events are valid and simply not ours */
	if (out->is_scan) {
		char why[256];
		/* A scan report we cannot read only wakes nobody: not worth a 400 Harbor retries. */
		if (parse_body(root, cloudevents, out, why, sizeof(why)) != AM_OK) {
			out->is_scan = 0;
			out->n_resources = 0;
			out->repo[0] = '\0';
		}
		goto done;
	}
	rc = parse_body(root, cloudevents, out, err, errlen);
done:
	json_decref(root);
	return rc;
}

/* The operator, repository and resources of a push (or a scan) event. */
static enum am_err
parse_body(json_t *root, int cloudevents, struct event *out, char *err, size_t errlen)
{
	json_t *data, *repo, *res;
	const char *op, *full;
	enum am_err rc = AM_OK;
	size_t i;

	op = get_str(root, "operator");
	if (op != NULL)
		(void)am_fmt(out->operator_, sizeof(out->operator_), "%s", op);
	data = json_object_get(root, cloudevents ? "data" : "event_data");
	if (!json_is_object(data)) {
		rc = am_fail(err, errlen, AM_EINVAL, "payload has no \"%s\" object",
		    cloudevents ? "data" : "event_data");
		goto done;
	}
	repo = json_object_get(data, "repository");
	full = json_is_object(repo) ? get_str(repo, "repo_full_name") : NULL;
	if (full == NULL) {
		rc = am_fail(err, errlen, AM_EINVAL, "repository.repo_full_name is missing");
		goto done;
	}
	if (!name_valid_repo(full)) {
		rc = am_fail(err, errlen, AM_EINVAL, "repository.repo_full_name is not a valid repository name");
		goto done;
	}
	(void)am_fmt(out->repo, sizeof(out->repo), "%s", full);
	res = json_object_get(data, "resources");
	if (!json_is_array(res) || json_array_size(res) == 0) {
		rc = am_fail(err, errlen, AM_EINVAL, "resources is missing or empty");
		goto done;
	}
	if (json_array_size(res) > EVENT_MAX_RESOURCES) {
		rc = am_fail(err, errlen, AM_EINVAL, "more than %d resources", EVENT_MAX_RESOURCES);
		goto done;
	}
	out->n_resources = json_array_size(res);
	for (i = 0; i < out->n_resources; i++)
		if ((rc = parse_resource(json_array_get(res, i), i, &out->resources[i],
		    err, errlen)) != AM_OK)
			goto done;
done:
	return rc;
}

/* For the notification envelope parser (handlers/notify.c): same limits. */
int
event_too_deep(const char *s, size_t len)
{
	return too_deep(s, len);
}

int
event_host_valid(const char *s, size_t len)
{
	return host_valid(s, len);
}
