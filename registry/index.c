/*
 * Index serialisation. The JSON is produced by Jansson with fixed flags so
 * the same children always give the same bytes, hence the same digest.
 */
#include "index.h"

#include <stdlib.h>
#include <string.h>
#include <jansson.h>

int
index_format_parse(const char *s, enum index_format *out)
{
	if (strcmp(s, "auto") == 0)
		*out = INDEX_AUTO;
	else if (strcmp(s, "oci") == 0)
		*out = INDEX_OCI;
	else if (strcmp(s, "docker") == 0)
		*out = INDEX_DOCKER;
	else
		return -1;
	return 0;
}

const char *
index_format_name(enum index_format f)
{
	return f == INDEX_OCI ? "oci" : f == INDEX_DOCKER ? "docker" : "auto";
}

static json_t *
platform_json(const struct platform *p)
{
	json_t *o = json_object(), *feat;
	char buf[sizeof(p->os_features)], *tok, *save = NULL;

	json_object_set_new(o, "architecture", json_string(p->arch));
	json_object_set_new(o, "os", json_string(p->os));
	if (p->os_version[0] != '\0')
		json_object_set_new(o, "os.version", json_string(p->os_version));
	if (p->os_features[0] != '\0') {
		feat = json_array();
		(void)am_fmt(buf, sizeof(buf), "%s", p->os_features);
		for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
			json_array_append_new(feat, json_string(tok));
		json_object_set_new(o, "os.features", feat);
	}
	if (p->variant[0] != '\0')
		json_object_set_new(o, "variant", json_string(p->variant));
	return o;
}

enum am_err
index_build(const struct descriptor *children, size_t n, enum index_format fmt,
    struct index_doc *out, char *err, size_t errlen)
{
	json_t *root = NULL, *list, *d;
	enum am_err rc = AM_OK;
	int all_docker = 1;
	size_t i, j;
	char plat[96];

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return am_fail(err, errlen, AM_EINVAL, "an index needs at least one child");
	for (i = 0; i < n; i++) {
		if (!mt_is_image(children[i].media_type) || !children[i].has_platform)
			return am_fail(err, errlen, AM_EINVAL,
			    "child %s is not an image manifest with a platform", children[i].digest);
		if (strcmp(children[i].media_type, MT_DOCKER_MANIFEST) != 0)
			all_docker = 0;
		for (j = 0; j < i; j++) {
			if (platform_equal(&children[i].platform, &children[j].platform)) {
				platform_format(&children[i].platform, plat, sizeof(plat));
				return am_fail(err, errlen, AM_EINVAL,
				    "two children have the same platform %s (%s and %s)",
				    plat, children[j].digest, children[i].digest);
			}
		}
	}
	if (fmt == INDEX_AUTO)
		fmt = all_docker ? INDEX_DOCKER : INDEX_OCI;
	if (fmt == INDEX_DOCKER && !all_docker)
		return am_fail(err, errlen, AM_EINVAL,
		    "format docker was asked for but a child is an OCI manifest "
		    "(Docker lists may only hold Docker manifests; use format oci or auto)");
	(void)am_fmt(out->media_type, sizeof(out->media_type), "%s",
	    fmt == INDEX_DOCKER ? MT_DOCKER_LIST : MT_OCI_INDEX);

	root = json_object();
	json_object_set_new(root, "schemaVersion", json_integer(2));
	json_object_set_new(root, "mediaType", json_string(out->media_type));
	list = json_array();
	for (i = 0; i < n; i++) {
		d = json_object();
		json_object_set_new(d, "mediaType", json_string(children[i].media_type));
		json_object_set_new(d, "digest", json_string(children[i].digest));
		json_object_set_new(d, "size", json_integer(children[i].size));
		json_object_set_new(d, "platform", platform_json(&children[i].platform));
		json_array_append_new(list, d);
	}
	json_object_set_new(root, "manifests", list);

	out->body = json_dumps(root, JSON_INDENT(3) | JSON_PRESERVE_ORDER);
	if (out->body == NULL) {
		rc = am_fail(err, errlen, AM_EINVAL, "could not serialise the index");
		goto done;
	}
	out->len = strlen(out->body);
	if (out->len > 4u * 1024 * 1024) {
		rc = am_fail(err, errlen, AM_EINVAL, "index is larger than 4 MiB");
		index_doc_clear(out);
		goto done;
	}
	digest_sha256(out->body, out->len, out->digest, sizeof(out->digest));
done:
	json_decref(root);
	return rc;
}

void
index_doc_clear(struct index_doc *d)
{
	if (d == NULL)
		return;
	free(d->body);
	memset(d, 0, sizeof(*d));
}
