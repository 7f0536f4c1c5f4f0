/*
 * Manifest, index and config parsing with Jansson. Every field is checked
 * for type and size before it is copied into the fixed-size descriptors.
 */
#include "registry/oci/manifest.h"

#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "registry/oci/names.h"

int
mt_is_image(const char *mt)
{
	return strcmp(mt, MT_DOCKER_MANIFEST) == 0 || strcmp(mt, MT_OCI_MANIFEST) == 0;
}

int
mt_is_index(const char *mt)
{
	return strcmp(mt, MT_DOCKER_LIST) == 0 || strcmp(mt, MT_OCI_INDEX) == 0;
}

static enum am_err
copy_str(json_t *obj, const char *key, int required, char *dst, size_t len,
    char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	dst[0] = '\0';
	if (v == NULL || json_is_null(v)) {
		if (required)
			return am_fail(err, errlen, AM_EINVAL, "missing \"%s\"", key);
		return AM_OK;
	}
	if (!json_is_string(v))
		return am_fail(err, errlen, AM_EINVAL, "\"%s\" is not a string", key);
	if (json_string_length(v) >= len || strlen(json_string_value(v)) != json_string_length(v))
		return am_fail(err, errlen, AM_EINVAL, "\"%s\" is too long or holds NUL", key);
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return AM_OK;
}

/* An optional informational string: copied when present and short enough, else "". */
static void
opt_str(json_t *obj, const char *key, char *dst, size_t len)
{
	json_t *v = json_object_get(obj, key);

	dst[0] = '\0';
	if (json_is_string(v) && json_string_length(v) < len &&
	    strlen(json_string_value(v)) == json_string_length(v))
		memcpy(dst, json_string_value(v), json_string_length(v) + 1);
}

static const char *const fact_keys[FACT_COUNT] = {
	[FACT_SOURCE] = ANN_SOURCE,
	[FACT_REVISION] = ANN_REVISION,
	[FACT_TITLE] = "org.opencontainers.image.title",
	[FACT_DESCRIPTION] = "org.opencontainers.image.description",
	[FACT_LICENSES] = "org.opencontainers.image.licenses",
	[FACT_URL] = "org.opencontainers.image.url",
	[FACT_DOCUMENTATION] = "org.opencontainers.image.documentation",
	[FACT_VENDOR] = "org.opencontainers.image.vendor",
	[FACT_AUTHORS] = "org.opencontainers.image.authors",
};

const char *
oci_fact_key(enum oci_fact f)
{
	return f < FACT_COUNT ? fact_keys[f] : "";
}

/* Every fact found in obj (annotations or labels; may be NULL). */
static void
read_facts(json_t *obj, struct oci_facts *out)
{
	size_t i;

	for (i = 0; i < FACT_COUNT; i++)
		opt_str(obj, fact_keys[i], out->v[i], sizeof(out->v[i]));
}

static enum am_err
parse_platform(json_t *p, struct platform *out, char *err, size_t errlen)
{
	enum am_err rc;
	json_t *feat;
	size_t i, off = 0;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(p))
		return am_fail(err, errlen, AM_EINVAL, "platform is not an object");
	if ((rc = copy_str(p, "os", 1, out->os, sizeof(out->os), err, errlen)) != AM_OK ||
	    (rc = copy_str(p, "architecture", 1, out->arch, sizeof(out->arch), err, errlen)) != AM_OK ||
	    (rc = copy_str(p, "variant", 0, out->variant, sizeof(out->variant), err, errlen)) != AM_OK ||
	    (rc = copy_str(p, "os.version", 0, out->os_version, sizeof(out->os_version), err, errlen)) != AM_OK)
		return rc;
	feat = json_object_get(p, "os.features");
	if (feat != NULL && !json_is_null(feat)) {
		if (!json_is_array(feat))
			return am_fail(err, errlen, AM_EINVAL, "\"os.features\" is not an array");
		for (i = 0; i < json_array_size(feat); i++) {
			const char *f = json_string_value(json_array_get(feat, i));
			if (f != NULL && f[0] == '\0')
				continue;   /* names nothing, and could not survive the comma list */
			if (f == NULL || strchr(f, ',') != NULL ||
			    am_fmt(out->os_features + off, sizeof(out->os_features) - off, "%s%s",
			    off ? "," : "", f) != 0)
				return am_fail(err, errlen, AM_EINVAL, "bad \"os.features\"");
			off += strlen(out->os_features + off);
		}
	}
	platform_normalize(out);
	return AM_OK;
}

static enum am_err
parse_descriptor(json_t *d, struct descriptor *out, char *err, size_t errlen)
{
	enum am_err rc;
	json_t *size, *ann, *p;
	const char *type, *ref;
	char *text;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(d))
		return am_fail(err, errlen, AM_EINVAL, "descriptor is not an object");
	if ((rc = copy_str(d, "mediaType", 1, out->media_type, sizeof(out->media_type), err, errlen)) != AM_OK ||
	    (rc = copy_str(d, "digest", 1, out->digest, sizeof(out->digest), err, errlen)) != AM_OK)
		return rc;
	if (!name_valid_digest(out->digest))
		return am_fail(err, errlen, AM_EINVAL, "descriptor digest is not a sha256 digest");
	size = json_object_get(d, "size");
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return am_fail(err, errlen, AM_EINVAL, "descriptor size is missing or negative");
	out->size = json_integer_value(size);
	p = json_object_get(d, "platform");
	if (p != NULL) {
		if ((rc = parse_platform(p, &out->platform, err, errlen)) != AM_OK)
			return rc;
		out->has_platform = 1;
	}
	ann = json_object_get(d, "annotations");
	if (json_is_object(ann)) {
		type = json_string_value(json_object_get(ann, "vnd.docker.reference.type"));
		ref = json_string_value(json_object_get(ann, "vnd.docker.reference.digest"));
		out->attestation = type != NULL && strcmp(type, "attestation-manifest") == 0;
		if (ref != NULL && name_valid_digest(ref))
			(void)am_fmt(out->ref_digest, sizeof(out->ref_digest), "%s", ref);
		/* Kept verbatim (same order) so that a copied descriptor carries them unchanged. */
		if ((text = json_dumps(ann, JSON_COMPACT | JSON_PRESERVE_ORDER)) != NULL) {
			if (strlen(text) < sizeof(out->annotations))
				memcpy(out->annotations, text, strlen(text) + 1);
			free(text);
		}
	}
	out->foreign = json_object_get(d, "urls") != NULL ||
	    strstr(out->media_type, "foreign") != NULL || strstr(out->media_type, "nondistributable") != NULL;
	return AM_OK;
}

enum am_err
manifest_parse(const char *body, size_t len, const char *content_type,
    struct manifest *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = NULL, *list, *schema;
	enum am_err rc = AM_OK;
	char mt[96] = "";
	size_t i;

	memset(out, 0, sizeof(*out));
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		rc = am_fail(err, errlen, AM_EINVAL, "manifest is not a JSON object");
		goto fail;
	}
	schema = json_object_get(root, "schemaVersion");
	if (!json_is_integer(schema) || json_integer_value(schema) != 2) {
		rc = am_fail(err, errlen, AM_EINVAL, "manifest schemaVersion is not 2");
		goto fail;
	}
	if ((rc = copy_str(root, "mediaType", 0, mt, sizeof(mt), err, errlen)) != AM_OK)
		goto fail;
	if (mt[0] == '\0' && content_type != NULL)
		(void)am_fmt(mt, sizeof(mt), "%s", content_type);
	else if (mt[0] != '\0' && content_type != NULL && content_type[0] != '\0' &&
	    strcmp(mt, content_type) != 0) {
		rc = am_fail(err, errlen, AM_EINVAL,
		    "manifest mediaType %s contradicts Content-Type %s", mt, content_type);
		goto fail;
	}
	(void)am_fmt(out->media_type, sizeof(out->media_type), "%s", mt);
	if (mt_is_image(mt)) {
		out->kind = MANIFEST_IMAGE;
		if ((rc = parse_descriptor(json_object_get(root, "config"), &out->config,
		    err, errlen)) != AM_OK)
			goto fail;
		list = json_object_get(root, "layers");
		if (list != NULL && !json_is_null(list) &&
		    (!json_is_array(list) || json_array_size(list) > MANIFEST_MAX_LAYERS)) {
			rc = am_fail(err, errlen, AM_EINVAL, "image \"layers\" is not an array or too long");
			goto fail;
		}
		out->n_layers = json_array_size(list);
		if (out->n_layers > 0)
			out->layers = xcalloc(out->n_layers, sizeof(*out->layers));
		for (i = 0; i < out->n_layers; i++)
			if ((rc = parse_descriptor(json_array_get(list, i), &out->layers[i],
			    err, errlen)) != AM_OK)
				goto fail;
		read_facts(json_object_get(root, "annotations"), &out->facts);
	} else if (mt_is_index(mt)) {
		out->kind = MANIFEST_INDEX;
		list = json_object_get(root, "manifests");
		if (!json_is_array(list) || json_array_size(list) > MANIFEST_MAX_CHILDREN) {
			rc = am_fail(err, errlen, AM_EINVAL, "index \"manifests\" is missing or too long");
			goto fail;
		}
		out->n_children = json_array_size(list);
		out->children = xcalloc(out->n_children ? out->n_children : 1, sizeof(*out->children));
		for (i = 0; i < out->n_children; i++)
			if ((rc = parse_descriptor(json_array_get(list, i), &out->children[i],
			    err, errlen)) != AM_OK)
				goto fail;
	} else {
		rc = am_fail(err, errlen, AM_EINVAL, "unsupported manifest type \"%s\"",
		    mt[0] ? mt : "(none)");
		goto fail;
	}
	json_decref(root);
	return AM_OK;
fail:
	json_decref(root);
	manifest_free(out);
	return rc;
}

void
manifest_free(struct manifest *m)
{
	if (m == NULL)
		return;
	free(m->children);
	m->children = NULL;
	m->n_children = 0;
	free(m->layers);
	m->layers = NULL;
	m->n_layers = 0;
}

enum am_err
config_parse_platform(const char *body, size_t len, struct platform *out,
    char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	enum am_err rc;

	root = json_loadb(body, len, 0, &jerr);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return am_fail(err, errlen, AM_EINVAL, "image config is not a JSON object");
	}
	rc = parse_platform(root, out, err, errlen);
	json_decref(root);
	return rc;
}

enum am_err
config_parse_info(const char *body, size_t len, struct image_info *out,
    char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *labels;
	enum am_err rc;

	memset(out, 0, sizeof(*out));
	root = json_loadb(body, len, 0, &jerr);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return am_fail(err, errlen, AM_EINVAL, "image config is not a JSON object");
	}
	rc = parse_platform(root, &out->platform, err, errlen);
	if (rc == AM_OK) {
		opt_str(root, "created", out->created, sizeof(out->created));
		labels = json_object_get(json_object_get(root, "config"), "Labels");
		read_facts(labels, &out->facts);
	}
	json_decref(root);
	return rc;
}

void
digest_sha256(const void *data, size_t len, char *out, size_t outlen)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	static const char hex[] = "0123456789abcdef";
	size_t i;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	if (outlen < 7 + 64 + 1) {
		if (outlen)
			out[0] = '\0';
		return;
	}
	memcpy(out, "sha256:", 7);
	for (i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[7 + 2 * i + 1] = hex[md[i] & 15];
	}
	out[7 + 64] = '\0';
}
