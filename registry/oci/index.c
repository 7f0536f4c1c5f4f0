/*
 * Index serialisation. The JSON is produced by Jansson with fixed flags so
 * the same children always give the same bytes, hence the same digest.
 */
#include "registry/oci/index.h"

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

/* Index annotations, in key order so that the same set always gives the same bytes. */
static int
ann_cmp(const void *a, const void *b)
{
	return strcmp(((const struct index_annotation *)a)->key,
	    ((const struct index_annotation *)b)->key);
}

static json_t *
descriptor_json(const struct descriptor *c, int with_annotations)
{
	json_t *d = json_object(), *ann = NULL;

	json_object_set_new(d, "mediaType", json_string(c->media_type));
	json_object_set_new(d, "digest", json_string(c->digest));
	json_object_set_new(d, "size", json_integer(c->size));
	if (with_annotations) {
		if (c->annotations[0] != '\0')
			ann = json_loads(c->annotations, 0, NULL);
		if (!json_is_object(ann)) {
			/* Not kept (too large): the two annotations that make it an attestation. */
			json_decref(ann);
			ann = json_pack("{s:s, s:s}", "vnd.docker.reference.digest", c->ref_digest,
			    "vnd.docker.reference.type", "attestation-manifest");
		}
		json_object_set_new(d, "annotations", ann);
	}
	if (c->has_platform)
		json_object_set_new(d, "platform", platform_json(&c->platform));
	return d;
}

/* Every child an image with a platform, no platform twice; *all_docker set. */
static enum am_err
check_children(const struct index_spec *spec, int *all_docker, char *err, size_t errlen)
{
	const struct descriptor *c = spec->images;
	size_t i, j;
	char plat[96];

	*all_docker = 1;
	if (spec->n_images == 0)
		return am_fail(err, errlen, AM_EINVAL, "an index needs at least one child");
	for (i = 0; i < spec->n_images; i++) {
		if (!mt_is_image(c[i].media_type) || !c[i].has_platform)
			return am_fail(err, errlen, AM_EINVAL,
			    "child %s is not an image manifest with a platform", c[i].digest);
		if (strcmp(c[i].media_type, MT_DOCKER_MANIFEST) != 0)
			*all_docker = 0;
		for (j = 0; j < i; j++) {
			if (platform_equal(&c[i].platform, &c[j].platform)) {
				platform_format(&c[i].platform, plat, sizeof(plat));
				return am_fail(err, errlen, AM_EINVAL,
				    "two children have the same platform %s (%s and %s)",
				    plat, c[j].digest, c[i].digest);
			}
		}
	}
	for (i = 0; i < spec->n_attestations; i++)
		if (!mt_is_image(spec->attestations[i].media_type))
			return am_fail(err, errlen, AM_EINVAL, "attestation %s is not a manifest",
			    spec->attestations[i].digest);
	return AM_OK;
}

/* The format spec asks for, auto resolved; refuses what the format cannot hold. */
static enum am_err
choose_format(const struct index_spec *spec, int all_docker, enum index_format *fmt,
    char *err, size_t errlen)
{
	*fmt = spec->format;
	if (*fmt == INDEX_DOCKER && spec->n_annotations > 0)
		return am_fail(err, errlen, AM_EINVAL,
		    "index annotations need an OCI index (a Docker list cannot carry them)");
	if (*fmt == INDEX_AUTO)
		*fmt = all_docker && spec->n_attestations == 0 && spec->n_annotations == 0 ?
		    INDEX_DOCKER : INDEX_OCI;
	if (*fmt == INDEX_DOCKER && !all_docker)
		return am_fail(err, errlen, AM_EINVAL,
		    "format docker was asked for but a child is an OCI manifest "
		    "(Docker lists may only hold Docker manifests; use format oci or auto)");
	return AM_OK;
}

/* Annotations sorted by key, so equal sets serialise to equal bytes. */
static json_t *
annotations_json(const struct index_spec *spec)
{
	struct index_annotation *sorted = xcalloc(spec->n_annotations, sizeof(*sorted));
	json_t *ann = json_object();
	size_t i;

	memcpy(sorted, spec->annotations, spec->n_annotations * sizeof(*sorted));
	qsort(sorted, spec->n_annotations, sizeof(*sorted), ann_cmp);
	for (i = 0; i < spec->n_annotations; i++)
		json_object_set_new(ann, sorted[i].key, json_string(sorted[i].value));
	free(sorted);
	return ann;
}

static json_t *
index_json(const struct index_spec *spec, enum index_format fmt, const char *media_type)
{
	json_t *root = json_object(), *list = json_array();
	size_t i;

	json_object_set_new(root, "schemaVersion", json_integer(2));
	json_object_set_new(root, "mediaType", json_string(media_type));
	for (i = 0; i < spec->n_images; i++)
		json_array_append_new(list, descriptor_json(&spec->images[i], 0));
	for (i = 0; fmt == INDEX_OCI && i < spec->n_attestations; i++)
		json_array_append_new(list, descriptor_json(&spec->attestations[i], 1));
	json_object_set_new(root, "manifests", list);
	if (spec->n_annotations > 0)
		json_object_set_new(root, "annotations", annotations_json(spec));
	return root;
}

enum am_err
index_build_spec(const struct index_spec *spec, struct index_doc *out, char *err, size_t errlen)
{
	enum index_format fmt;
	enum am_err rc;
	int all_docker;
	json_t *root;

	memset(out, 0, sizeof(*out));
	if ((rc = check_children(spec, &all_docker, err, errlen)) != AM_OK ||
	    (rc = choose_format(spec, all_docker, &fmt, err, errlen)) != AM_OK)
		return rc;
	(void)am_fmt(out->media_type, sizeof(out->media_type), "%s",
	    fmt == INDEX_DOCKER ? MT_DOCKER_LIST : MT_OCI_INDEX);
	root = index_json(spec, fmt, out->media_type);
	out->body = json_dumps(root, JSON_INDENT(3) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (out->body == NULL)
		return am_fail(err, errlen, AM_EINVAL, "could not serialise the index");
	out->len = strlen(out->body);
	if (out->len > 4u * 1024 * 1024) {
		index_doc_clear(out);
		return am_fail(err, errlen, AM_EINVAL, "index is larger than 4 MiB");
	}
	digest_sha256(out->body, out->len, out->digest, sizeof(out->digest));
	return AM_OK;
}

enum am_err
index_build(const struct descriptor *children, size_t n, enum index_format fmt,
    struct index_doc *out, char *err, size_t errlen)
{
	struct index_spec spec;

	memset(&spec, 0, sizeof(spec));
	spec.images = children;
	spec.n_images = n;
	spec.format = fmt;
	return index_build_spec(&spec, out, err, errlen);
}

void
index_doc_clear(struct index_doc *d)
{
	if (d == NULL)
		return;
	free(d->body);
	memset(d, 0, sizeof(*d));
}
