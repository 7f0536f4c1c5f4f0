/*
 * The reads of an assembly: every architecture's chain (its tag's manifest,
 * for an index the child of the expected platform, then the image config)
 * at once, with the target's HEAD alongside; a tag cleaned up after an
 * earlier publish is taken back from the published index.
 */
#include "registry/assemble/job.h"

#include <stdlib.h>
#include <string.h>

#include "registry/assemble/cache.h"
#include "server/base/log.h"
#include "server/base/parallel.h"

/* Fetch an image manifest's config blob and read platform, created and labels. */
static enum am_err
image_info(const struct reg_api *api, const char *repo, const struct manifest *m,
    struct image_info *out, char *err, size_t errlen)
{
	struct reg_reply r;
	enum am_err rc;
	char digest[80];

	if (cache_get(api->configs, m->config.digest, out))
		return AM_OK;   /* read (and checked) before: a digest names one content */
	reg_reply_init(&r);
	rc = api->blob_get(api->ctx, repo, m->config.digest, CONFIG_MAX_BYTES, &r, err, errlen);
	if (rc == AM_ENOTFOUND)
		rc = am_fail(err, errlen, AM_EINVAL, "config blob %s is missing", m->config.digest);
	if (rc != AM_OK)
		goto done;
	digest_sha256(r.body, r.body_len, digest, sizeof(digest));
	if (strcmp(digest, m->config.digest) != 0) {
		rc = am_fail(err, errlen, AM_EMISMATCH, "config blob %s has digest %s",
		    m->config.digest, digest);
		goto done;
	}
	if ((rc = config_parse_info(r.body, r.body_len, out, err, errlen)) == AM_OK)
		cache_put(api->configs, m->config.digest, out);
done:
	reg_reply_clear(&r);
	return rc;
}

/* The read of repo:ref the registry's policy refused (r: its answer) into blk. */
static void
note_block(struct asm_block *blk, const char *repo, const char *ref, const struct reg_reply *r)
{
	int by_digest = strncmp(ref, "sha256:", 7) == 0;

	memset(blk, 0, sizeof(*blk));
	(void)am_fmt(blk->repo, sizeof(blk->repo), "%s", repo);
	(void)am_fmt(by_digest ? blk->digest : blk->tag, by_digest ? sizeof(blk->digest) :
	    sizeof(blk->tag), "%s", ref);
	(void)am_fmt(blk->message, sizeof(blk->message), "%s", r->error_message);
	blk->policy = asm_policy_of(r->error_message);
}

/*
 * GET a manifest, check its digest, parse it; raw (may be NULL) gets the
 * bytes (caller frees). AM_EPOLICY: blk (may be NULL) says what was refused.
 */
static enum am_err
fetch_manifest(const struct reg_api *api, const char *repo, const char *ref,
    struct manifest *m, char *digest, size_t dlen, size_t *size, char **raw, struct asm_block *blk,
    char *err, size_t errlen)
{
	struct reg_reply r;
	enum am_err rc;
	char perr[256];

	memset(m, 0, sizeof(*m));
	reg_reply_init(&r);
	if ((rc = api->manifest_get(api->ctx, repo, ref, &r, err, errlen)) != AM_OK) {
		if (rc == AM_EPOLICY && blk != NULL)
			note_block(blk, repo, ref, &r);
		goto done;
	}
	digest_sha256(r.body, r.body_len, digest, dlen);
	if (r.digest[0] != '\0' && strcmp(r.digest, digest) != 0) {
		rc = am_fail(err, errlen, AM_EMISMATCH,
		    "%s:%s: registry says digest %s but the body hashes to %s", repo, ref, r.digest, digest);
		goto done;
	}
	if (ref[0] == 's' && strncmp(ref, "sha256:", 7) == 0 && strcmp(ref, digest) != 0) {
		rc = am_fail(err, errlen, AM_EMISMATCH, "%s@%s: body hashes to %s", repo, ref, digest);
		goto done;
	}
	*size = r.body_len;
	if ((rc = manifest_parse(r.body, r.body_len, r.media_type, m, perr, sizeof(perr))) != AM_OK) {
		rc = am_fail(err, errlen, rc, "%s:%s: %s", repo, ref, perr);
		goto done;
	}
	if (raw != NULL) {
		*raw = r.body;
		r.body = NULL;
	}
done:
	reg_reply_clear(&r);
	return rc;
}

/* Config media types of container images; anything else (Helm, artifacts) is not one. */
static int
is_image_config(const char *mt)
{
	return strcmp(mt, "application/vnd.oci.image.config.v1+json") == 0 ||
	    strcmp(mt, "application/vnd.docker.container.image.v1+json") == 0;
}

/*
 * The config of the image behind repo:ref (manifest digest). A refusal
 * names the tag, the digest and the cause, the way the platform mismatch
 * does: a Helm chart or an artifact is "not a container image".
 */
static enum am_err
image_content(const struct reg_api *api, const char *repo, const char *ref,
    const struct manifest *m, const char *digest, struct image_info *info, char *err, size_t errlen)
{
	char why[512];
	enum am_err rc;

	if (!is_image_config(m->config.media_type))
		return am_fail(err, errlen, AM_EINVAL,
		    "%s:%s (%s) is not a container image: config media type %s", repo, ref, digest,
		    m->config.media_type[0] ? m->config.media_type : "(none)");
	rc = image_info(api, repo, m, info, why, sizeof(why));
	if (rc == AM_EINVAL || rc == AM_EMISMATCH)
		return am_fail(err, errlen, rc, "%s:%s (%s) is not a container image: config %s", repo,
		    ref, digest, why);
	if (rc != AM_OK)
		(void)am_fmt(err, errlen, "%s", why);
	return rc;
}

/* The image part of a kid from image manifest m; its platform must satisfy want. */
static enum am_err
take_image(const struct reg_api *api, const char *repo, const char *ref, const struct manifest *m,
    const char *digest, size_t size, const struct plan_arch *want, struct kid *k,
    char *err, size_t errlen)
{
	char have[96], expect[96];
	enum am_err rc;

	(void)am_fmt(k->image.media_type, sizeof(k->image.media_type), "%s", m->media_type);
	(void)am_fmt(k->image.digest, sizeof(k->image.digest), "%s", digest);
	k->image.size = (long long)size;
	k->ann = m->facts;
	if ((rc = image_content(api, repo, ref, m, digest, &k->info, err, errlen)) != AM_OK)
		return rc;
	k->image.platform = k->info.platform;
	k->image.has_platform = 1;
	if (!platform_satisfies(&k->image.platform, &want->platform)) {
		platform_format(&k->image.platform, have, sizeof(have));
		platform_format(&want->platform, expect, sizeof(expect));
		return am_fail(err, errlen, AM_EMISMATCH,
		    "%s:%s: image config says %s but the tag says %s (%s)", repo, ref, have,
		    want->name, expect);
	}
	return AM_OK;
}

/* Attestations of index m that point at image digest, kept in their order. */
static void
take_attestations(const struct manifest *m, const char *digest, struct kid *k)
{
	size_t i;

	k->n_atts = 0;
	for (i = 0; i < m->n_children && k->n_atts < ASM_MAX_ATTS; i++) {
		const struct descriptor *d = &m->children[i];
		if (d->attestation && strcmp(d->ref_digest, digest) == 0 && mt_is_image(d->media_type))
			k->atts[k->n_atts++] = *d;
	}
}

/*
 * Resolve one architecture from its per-architecture tag: the tag's image
 * (or, for an index, its child of the expected platform and that child's
 * attestations), with the platform read from the image config.
 * AM_ENOTFOUND: not pushed yet. AM_EMISMATCH/AM_EINVAL: refuse.
 */
static enum am_err
resolve_arch(const struct reg_api *api, const char *repo, const char *tag,
    const struct plan_arch *want, struct kid *k, char *err, size_t errlen)
{
	struct manifest m, child;
	enum am_err rc;
	size_t size = 0, i, found = 0, pick = 0;
	char digest[80], child_ref[80], expect[96];

	memset(&child, 0, sizeof(child));
	platform_format(&want->platform, expect, sizeof(expect));
	if ((rc = fetch_manifest(api, repo, tag, &m, digest, sizeof(digest), &size, &k->raw, &k->block,
	    err, errlen)) != AM_OK)
		return rc;
	(void)am_fmt(k->tag_digest, sizeof(k->tag_digest), "%s", digest);
	if (m.kind == MANIFEST_INDEX) {
		/* buildx output: pick the image child of the expected platform. */
		for (i = 0; i < m.n_children; i++) {
			const struct descriptor *d = &m.children[i];
			if (d->attestation || !d->has_platform || !mt_is_image(d->media_type))
				continue;
			if (platform_satisfies(&d->platform, &want->platform)) {
				found++;
				pick = i;
			}
		}
		if (found != 1) {
			rc = am_fail(err, errlen, AM_EMISMATCH,
			    "%s:%s is an index with %s image child for %s", repo, tag,
			    found == 0 ? "no" : "more than one", expect);
			goto done;
		}
		(void)am_fmt(child_ref, sizeof(child_ref), "%s", m.children[pick].digest);
		take_attestations(&m, child_ref, k);
		free(k->raw);   /* the index's bytes: the child's are the ones to keep */
		k->raw = NULL;
		if ((rc = fetch_manifest(api, repo, child_ref, &child, digest, sizeof(digest), &size,
		    &k->raw, &k->block, err, errlen)) != AM_OK) {
			if (rc == AM_EPOLICY)   /* the child by digest: the tag it came from names it */
				(void)am_fmt(k->block.tag, sizeof(k->block.tag), "%s", tag);
			goto done;
		}
		if (child.kind != MANIFEST_IMAGE) {
			rc = am_fail(err, errlen, AM_EINVAL, "%s@%s: child of an index is not an image",
			    repo, digest);
			goto done;
		}
		rc = take_image(api, repo, tag, &child, digest, size, want, k, err, errlen);
		k->raw_len = size;
	} else {
		k->raw_len = size;
		rc = take_image(api, repo, tag, &m, digest, size, want, k, err, errlen);
	}
done:
	manifest_free(&m);
	manifest_free(&child);
	return rc;
}

enum am_err
job_read_published(struct job *c, struct asm_block *blk, char *err, size_t errlen)
{
	size_t size = 0;
	char digest[80];
	enum am_err rc;

	if (c->pub_state == 0) {
		rc = fetch_manifest(c->api, c->repo, c->target_tag, &c->pub, digest, sizeof(digest), &size,
		    NULL, blk, err, errlen);
		if (rc != AM_OK && rc != AM_ENOTFOUND)
			return rc;
		c->pub_state = rc == AM_OK && c->pub.kind == MANIFEST_INDEX ? 1 : -1;
	}
	return c->pub_state > 0 ? AM_OK : AM_ENOTFOUND;
}

/*
 * A per-architecture tag that is gone was removed by archmerge's cleanup
 * after publishing, or (an optional architecture) by someone else: the
 * published index still holds that architecture's child, which is re-read
 * and re-checked from the target repository, so the index never loses it
 * by accident. AM_ENOTFOUND when there is none.
 */
static enum am_err
from_published(struct job *c, const struct plan_arch *want, struct kid *k,
    char *err, size_t errlen)
{
	struct manifest m;
	enum am_err rc;
	size_t size = 0, i, found = 0, pick = 0;
	char digest[80];

	if ((rc = job_read_published(c, &k->block, err, errlen)) != AM_OK)
		return rc;
	for (i = 0; i < c->pub.n_children; i++) {
		const struct descriptor *d = &c->pub.children[i];
		if (!d->attestation && d->has_platform && mt_is_image(d->media_type) &&
		    platform_satisfies(&d->platform, &want->platform)) {
			found++;
			pick = i;
		}
	}
	if (found != 1)
		return AM_ENOTFOUND;
	if ((rc = fetch_manifest(c->api, c->repo, c->pub.children[pick].digest, &m, digest, sizeof(digest),
	    &size, NULL, &k->block, err, errlen)) != AM_OK)
		return rc;
	if (m.kind != MANIFEST_IMAGE)
		rc = am_fail(err, errlen, AM_EINVAL, "%s@%s: child of the published index is not an image",
		    c->repo, digest);
	else
		rc = take_image(c->api, c->repo, c->target_tag, &m, digest, size, want, k, err, errlen);
	manifest_free(&m);
	if (rc != AM_OK)
		return rc;
	take_attestations(&c->pub, digest, k);
	k->from_target = 1;
	(void)am_fmt(k->src_repo, sizeof(k->src_repo), "%s", c->repo);
	k->src_tag[0] = '\0';
	return AM_OK;
}

/* One architecture's chain (manifest, then its config blob). */
struct arch_job {
	const struct reg_api *api;
	const struct plan_arch *want;
	struct kid *k;
	enum am_err rc;
	char err[768];
};

static void
arch_job_run(void *ud)
{
	struct arch_job *j = ud;

	j->rc = resolve_arch(j->api, j->k->src_repo, j->k->src_tag, j->want, j->k, j->err,
	    sizeof(j->err));
}

void
job_head_run(void *ud)
{
	struct head_job *j = ud;

	j->rc = j->api->manifest_head(j->api->ctx, j->repo, j->ref, &j->head, j->err, sizeof(j->err));
}

/*
 * The chains are independent reads and run at once (server/base/parallel.h):
 * the assembly waits for the slowest instead of the sum; the registry client
 * bounds how many requests one registry sees at a time.
 */
enum am_err
job_resolve(struct job *c, struct head_job *target, char *missing, size_t mlen, char *absent,
    size_t alen, char *err, size_t errlen)
{
	const struct plan *p = c->p;
	struct arch_job *jobs = xcalloc(p->n_archs ? p->n_archs : 1, sizeof(*jobs));
	struct par_job *par = xcalloc(p->n_archs + 1, sizeof(*par));
	size_t i, moff = 0, aoff = 0;
	enum am_err rc = AM_OK;

	for (i = 0; i < p->n_archs; i++) {
		struct kid *k = &c->kids[i];
		(void)am_fmt(k->src_repo, sizeof(k->src_repo), "%s", p->archs[i].src_repo);
		(void)am_fmt(k->src_tag, sizeof(k->src_tag), "%s", p->archs[i].src_tag);
		jobs[i].api = c->api;
		jobs[i].want = &p->archs[i];
		jobs[i].k = k;
		par[i].run = arch_job_run;
		par[i].arg = &jobs[i];
	}
	/* The target's HEAD does not depend on the reads: it runs alongside them. */
	par[p->n_archs].run = job_head_run;
	par[p->n_archs].arg = target;
	par_run(par, p->n_archs + 1);
	free(par);
	/* In architecture order, as a serial run would have met them. */
	for (i = 0; i < p->n_archs; i++) {
		struct kid *k = &c->kids[i];
		const struct plan_arch *a = &p->archs[i];
		rc = jobs[i].rc;
		if (rc == AM_ENOTFOUND && (p->cleanup || a->optional)) {
			/*
			 * Reads the published index once for all: serial, after the
			 * chains. A required architecture without cleanup waits instead
			 * (waiting never shrinks the index).
			 */
			free(k->raw);
			memset(k, 0, sizeof(*k));
			rc = from_published(c, a, k, jobs[i].err, sizeof(jobs[i].err));
			if (rc == AM_OK && !p->cleanup) {
				job_note(c->out, "%s kept from the published index (%s:%s is gone)", a->name,
				    a->src_repo, a->src_tag);
				log_kv(LOG_INFO, "assembly kept published child", LOG_S("arch", a->name),
				    LOG_S("digest", k->image.digest), LOG_S("target", c->out->target),
				    LOG_S("note", "its source tag is gone; the index keeps the platform"));
			}
		}
		if (rc == AM_ENOTFOUND) {
			if (a->optional) {
				(void)am_fmt(absent + aoff, alen - aoff, "%s%s", aoff ? "," : "", a->name);
				aoff += strlen(absent + aoff);
			} else {
				(void)am_fmt(missing + moff, mlen - moff, "%s%s", moff ? "," : "", a->name);
				moff += strlen(missing + moff);
			}
			rc = AM_OK;
			continue;
		}
		if (rc == AM_EPOLICY) {
			/* Not yet readable (scan pending, vulnerable, unsigned): the group waits for it. */
			if (c->out->n_blocked < ASM_MAX_BLOCKED) {
				struct asm_block *b = &c->out->blocked[c->out->n_blocked++];
				*b = k->block;
				(void)am_fmt(b->arch, sizeof(b->arch), "%s", a->name);
			}
			rc = AM_OK;
			continue;
		}
		if (rc != AM_OK) {
			(void)am_fmt(err, errlen, "%s", jobs[i].err);
			break;
		}
		k->present = 1;
	}
	free(jobs);
	return rc;
}
