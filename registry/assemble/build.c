/*
 * The decision's product: the index of the children resolve found present,
 * their attestations when the plan keeps them, and its annotations (derived
 * from the children, then the configured ones). No I/O.
 */
#include "registry/assemble/job.h"

#include <stdlib.h>
#include <string.h>

#include "server/base/rfc3339.h"

#define ASM_MAX_ANN (1 + FACT_COUNT + PLAN_MAX_ANNOTATIONS)

/* The value of fact f every present child agrees on (manifest annotation, else config label), or NULL. */
static const char *
agreed(const struct kid *kids, size_t n, enum oci_fact f)
{
	const char *v = NULL, *mine;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!kids[i].present)
			continue;
		mine = kids[i].ann.v[f][0] ? kids[i].ann.v[f] : kids[i].info.facts.v[f];
		if (mine[0] == '\0' || (v != NULL && strcmp(v, mine) != 0))
			return NULL;
		v = mine;
	}
	return v;
}

/*
 * The index annotations of this group: derived ones first, configured ones
 * replacing a derived one of the same key. Pointers borrow from kids and p.
 * created is the newest child's own "created", so unchanged children give
 * unchanged bytes and the index is not pushed again.
 */
static size_t
annotations(const struct plan *p, const struct kid *kids, size_t n, struct index_annotation *ann)
{
	const char *newest = NULL, *v;
	long long best_s = 0, s;
	long best_ns = 0, ns;
	size_t i, j, count = 0;

	if (p->created_annotation) {
		for (i = 0; i < n; i++) {
			if (!kids[i].present || rfc3339_parse(kids[i].info.created, &s, &ns) != 0)
				continue;
			if (newest == NULL || s > best_s || (s == best_s && ns > best_ns)) {
				newest = kids[i].info.created;
				best_s = s;
				best_ns = ns;
			}
		}
		if (newest != NULL)
			ann[count++] = (struct index_annotation){ ANN_CREATED, newest };
	}
	for (i = 0; p->inherit_annotations && i < FACT_COUNT; i++)
		if ((v = agreed(kids, n, (enum oci_fact)i)) != NULL)
			ann[count++] = (struct index_annotation){ oci_fact_key((enum oci_fact)i), v };
	for (i = 0; i < p->n_annotations; i++) {
		for (j = 0; j < count && strcmp(ann[j].key, p->annotations[i].key) != 0; j++)
			;
		ann[j] = (struct index_annotation){ p->annotations[i].key, p->annotations[i].value };
		if (j == count)
			count++;
	}
	return count;
}

/* The index of the present children (and their attestations) into out->doc. */
enum am_err
job_build(struct job *c, char *err, size_t errlen)
{
	const struct plan *p = c->p;
	struct descriptor *images = xcalloc(p->n_archs ? p->n_archs : 1, sizeof(*images));
	struct descriptor *atts = xcalloc(p->n_archs * ASM_MAX_ATTS + 1, sizeof(*atts));
	struct index_annotation ann[ASM_MAX_ANN];
	struct index_spec spec;
	size_t i, j;
	enum am_err rc;

	memset(&spec, 0, sizeof(spec));
	for (i = 0; i < p->n_archs; i++) {
		if (!c->kids[i].present)
			continue;
		images[spec.n_images++] = c->kids[i].image;
		for (j = 0; p->keep_attestations && j < c->kids[i].n_atts; j++)
			atts[spec.n_attestations++] = c->kids[i].atts[j];
	}
	spec.images = images;
	spec.attestations = atts;
	spec.annotations = ann;
	spec.n_annotations = annotations(p, c->kids, p->n_archs, ann);
	spec.format = p->format;
	rc = index_build_spec(&spec, &c->out->doc, err, errlen);
	free(images);
	free(atts);
	return rc;
}
