/* The signature manifest: parse what is there, append, build it again. */
#include "registry/sign/sign.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "registry/oci/manifest.h"

void
sig_manifest_clear(struct sig_manifest *m)
{
	size_t i;

	for (i = 0; i < m->n_layers; i++)
		free(m->layers[i].annotations);
	memset(m, 0, sizeof(*m));
}

/* Make room for one more layer: the oldest goes (counted as skipped). */
static void
drop_oldest(struct sig_manifest *m)
{
	free(m->layers[0].annotations);
	memmove(&m->layers[0], &m->layers[1], (m->n_layers - 1) * sizeof(m->layers[0]));
	m->n_layers--;
	m->n_skipped++;
}

static enum am_err
parse_layer(const json_t *l, size_t i, struct sig_layer *out, char *err, size_t errlen)
{
	const char *mt = json_string_value(json_object_get(l, "mediaType"));
	const char *dig = json_string_value(json_object_get(l, "digest"));
	const json_t *size = json_object_get(l, "size"), *ann = json_object_get(l, "annotations");
	const char *sig = json_string_value(json_object_get(ann, SIG_ANN_SIG));

	if (mt == NULL || dig == NULL || !json_is_integer(size) || json_integer_value(size) < 0 ||
	    (ann != NULL && !json_is_object(ann)))
		return am_fail(err, errlen, AM_EINVAL, "signature manifest layer %zu lacks mediaType, "
		    "digest or size", i);
	if (am_fmt(out->media_type, sizeof(out->media_type), "%s", mt) != 0 ||
	    am_fmt(out->digest, sizeof(out->digest), "%s", dig) != 0)
		return am_fail(err, errlen, AM_EINVAL, "signature manifest layer %zu: field too long", i);
	if (sig != NULL && am_fmt(out->signature, sizeof(out->signature), "%s", sig) != 0)
		return am_fail(err, errlen, AM_EINVAL, "signature manifest layer %zu: signature longer "
		    "than %d bytes", i, SIG_B64_MAX - 1);
	out->size = (long long)json_integer_value(size);
	if (ann != NULL)
		out->annotations = json_dumps(ann, JSON_COMPACT | JSON_SORT_KEYS);
	return AM_OK;
}

enum am_err
sig_manifest_parse(const char *body, size_t len, struct sig_manifest *out, char *err, size_t errlen)
{
	json_t *doc, *layers;
	json_error_t je;
	enum am_err rc = AM_OK;
	size_t i;

	memset(out, 0, sizeof(*out));
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL)
		return am_fail(err, errlen, AM_EINVAL, "signature manifest is not JSON: %s", je.text);
	layers = json_object_get(doc, "layers");
	if (!json_is_object(doc) || json_integer_value(json_object_get(doc, "schemaVersion")) != 2 ||
	    !json_is_array(layers)) {
		rc = am_fail(err, errlen, AM_EINVAL, "signature manifest is no schemaVersion 2 image manifest "
		    "with layers");
		goto done;
	}
	/*
	 * A layer that does not parse can carry no signature anyone checks: it is
	 * skipped (and left out when the manifest is built again), so one bad
	 * layer never makes the image unsignable. Past SIG_MAX_LAYERS usable
	 * layers the oldest go, the same way sig_manifest_append makes room.
	 */
	for (i = 0; i < json_array_size(layers); i++) {
		struct sig_layer l;
		memset(&l, 0, sizeof(l));
		if (parse_layer(json_array_get(layers, i), i, &l, err, errlen) != AM_OK) {
			free(l.annotations);
			out->n_skipped++;
			continue;
		}
		if (out->n_layers == SIG_MAX_LAYERS)
			drop_oldest(out);
		out->layers[out->n_layers++] = l;
	}
	if (errlen > 0)
		err[0] = '\0';
done:
	json_decref(doc);
	if (rc != AM_OK)
		sig_manifest_clear(out);
	return rc;
}

enum am_err
sig_manifest_append(struct sig_manifest *m, const char *digest, long long size,
    const char *signature, char *err, size_t errlen)
{
	struct sig_layer *l;
	json_t *ann;

	(void)err;
	(void)errlen;
	if (m->n_layers >= SIG_MAX_LAYERS)
		drop_oldest(m);   /* a full manifest would otherwise block every new signature */
	l = &m->layers[m->n_layers];
	memset(l, 0, sizeof(*l));
	if (am_fmt(l->signature, sizeof(l->signature), "%s", signature) != 0 ||
	    am_fmt(l->digest, sizeof(l->digest), "%s", digest) != 0)
		return am_fail(err, errlen, AM_EINVAL, "signature or digest too long");
	(void)am_fmt(l->media_type, sizeof(l->media_type), "%s", SIG_MT_PAYLOAD);
	l->size = size;
	ann = json_pack("{s:s}", SIG_ANN_SIG, signature);
	l->annotations = json_dumps(ann, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(ann);
	m->n_layers++;
	return AM_OK;
}

static json_t *
layer_json(const struct sig_layer *l)
{
	json_t *o = json_pack("{s:s,s:I,s:s}", "mediaType", l->media_type, "size", (json_int_t)l->size,
	    "digest", l->digest);
	json_t *ann = l->annotations != NULL ? json_loads(l->annotations, 0, NULL) : NULL;

	if (o != NULL && ann != NULL)
		json_object_set_new(o, "annotations", ann);
	else
		json_decref(ann);
	return o;
}

enum am_err
sig_manifest_build(const struct sig_manifest *m, char **config, size_t *config_len,
    char **manifest, size_t *manifest_len, char *err, size_t errlen)
{
	json_t *diff = json_array(), *layers = json_array(), *cfg, *man;
	char cdig[80];
	size_t i;

	*config = *manifest = NULL;
	for (i = 0; i < m->n_layers; i++) {
		json_array_append_new(diff, json_string(m->layers[i].digest));
		json_array_append_new(layers, layer_json(&m->layers[i]));
	}
	/* cosign's config: an empty image whose rootfs lists the payload layers. */
	cfg = json_pack("{s:s,s:s,s:[{s:s}],s:s,s:{s:s,s:o},s:{}}", "architecture", "", "created",
	    "0001-01-01T00:00:00Z", "history", "created", "0001-01-01T00:00:00Z", "os", "", "rootfs",
	    "type", "layers", "diff_ids", diff, "config");
	*config = cfg != NULL ? json_dumps(cfg, JSON_COMPACT) : NULL;
	json_decref(cfg);
	if (*config == NULL) {
		json_decref(layers);
		return am_fail(err, errlen, AM_EINVAL, "signature config: cannot serialise");
	}
	*config_len = strlen(*config);
	digest_sha256(*config, *config_len, cdig, sizeof(cdig));
	man = json_pack("{s:i,s:s,s:{s:s,s:I,s:s},s:o}", "schemaVersion", 2, "mediaType", SIG_MT_MANIFEST,
	    "config", "mediaType", SIG_MT_CONFIG, "size", (json_int_t)*config_len, "digest", cdig,
	    "layers", layers);
	*manifest = man != NULL ? json_dumps(man, JSON_COMPACT) : NULL;
	json_decref(man);
	if (*manifest == NULL) {
		free(*config);
		*config = NULL;
		return am_fail(err, errlen, AM_EINVAL, "signature manifest: cannot serialise");
	}
	*manifest_len = strlen(*manifest);
	return AM_OK;
}
