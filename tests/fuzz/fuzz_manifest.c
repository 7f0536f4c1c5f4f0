/*
 * Fuzz target: what registries return. The bytes go to manifest_parse()
 * (without a Content-Type and with one picked from the input size), to
 * config_parse_platform(), and the image children of a parsed index go to
 * index_build() in every format, as the assembler would use them.
 *
 * Properties: parsed descriptors carry valid digests; an index we build
 * parses back to the same children (digest, media type, size, platform) and
 * its digest is the sha256 of its exact bytes; a platform read from a config
 * survives the trip through an index unchanged.
 */
#include "tests/fuzz/fuzz.h"

#include "registry/oci/index.h"
#include "registry/oci/manifest.h"
#include "registry/oci/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = {
	"", MT_DOCKER_MANIFEST, MT_DOCKER_LIST, MT_OCI_MANIFEST, MT_OCI_INDEX, "text/plain",
};

static void
check_manifest(const struct manifest *m)
{
	size_t i;

	if (m->kind == MANIFEST_IMAGE) {
		FUZZ_ASSERT(mt_is_image(m->media_type));
		FUZZ_ASSERT(name_valid_digest(m->config.digest) && m->config.size >= 0);
		return;
	}
	FUZZ_ASSERT(mt_is_index(m->media_type));
	FUZZ_ASSERT(m->n_children <= MANIFEST_MAX_CHILDREN);
	for (i = 0; i < m->n_children; i++)
		FUZZ_ASSERT(name_valid_digest(m->children[i].digest) && m->children[i].size >= 0);
}

/* Build an index of the children in each format; whatever is built must parse back the same. */
static void
round_trip(const struct descriptor *kids, size_t n)
{
	static const enum index_format fmts[] = { INDEX_AUTO, INDEX_OCI, INDEX_DOCKER };
	struct index_doc doc;
	struct manifest back;
	char err[512], digest[80];
	size_t f, i;

	for (f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
		if (index_build(kids, n, fmts[f], &doc, err, sizeof(err)) != AM_OK) {
			FUZZ_ASSERT(err[0] != '\0' && doc.body == NULL);
			continue;
		}
		FUZZ_ASSERT(doc.body != NULL && strlen(doc.body) == doc.len);
		digest_sha256(doc.body, doc.len, digest, sizeof(digest));
		FUZZ_ASSERT(strcmp(digest, doc.digest) == 0 && name_valid_digest(doc.digest));
		FUZZ_ASSERT(manifest_parse(doc.body, doc.len, doc.media_type, &back, err,
		    sizeof(err)) == AM_OK);
		FUZZ_ASSERT(back.kind == MANIFEST_INDEX && back.n_children == n);
		for (i = 0; i < n; i++) {
			const struct descriptor *a = &kids[i], *b = &back.children[i];
			FUZZ_ASSERT(strcmp(a->digest, b->digest) == 0);
			FUZZ_ASSERT(strcmp(a->media_type, b->media_type) == 0);
			FUZZ_ASSERT(a->size == b->size && b->has_platform);
			FUZZ_ASSERT(platform_equal(&a->platform, &b->platform));
			FUZZ_ASSERT(strcmp(a->platform.os_features, b->platform.os_features) == 0);
		}
		manifest_free(&back);
		index_doc_clear(&doc);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = fuzz_bytes(data, size), err[512];
	const char *ct = content_types[size % (sizeof(content_types) / sizeof(content_types[0]))];
	struct descriptor kids[MANIFEST_MAX_CHILDREN], one;
	struct manifest m;
	size_t i, n;

	if (manifest_parse(body, size, NULL, &m, err, sizeof(err)) == AM_OK) {
		check_manifest(&m);
		if (m.kind == MANIFEST_INDEX) {
			/* The assembler's choice: image children with a platform, no attestations. */
			for (i = 0, n = 0; i < m.n_children; i++)
				if (!m.children[i].attestation && m.children[i].has_platform &&
				    mt_is_image(m.children[i].media_type))
					kids[n++] = m.children[i];
			if (n > 0)
				round_trip(kids, n);
		}
		manifest_free(&m);
	} else {
		FUZZ_ASSERT(err[0] != '\0' && m.children == NULL);
	}
	if (manifest_parse(body, size, ct, &m, err, sizeof(err)) == AM_OK) {
		check_manifest(&m);
		manifest_free(&m);
	}

	memset(&one, 0, sizeof(one));
	if (config_parse_platform(body, size, &one.platform, err, sizeof(err)) == AM_OK) {
		(void)am_fmt(one.media_type, sizeof(one.media_type), "%s", MT_OCI_MANIFEST);
		digest_sha256(body, size, one.digest, sizeof(one.digest));
		one.size = (long long)size;
		one.has_platform = 1;
		round_trip(&one, 1);
	}
	free(body);
	return 0;
}
