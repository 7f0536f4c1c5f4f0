/*
 * The assembly job. Reads first, then decides; writes come last and only
 * when every check passed: children copied into the target repository (when
 * they live elsewhere), extra tags, and the target tag as the very last
 * write, so that a fault part-way leaves the target as it was and the next
 * run redoes the rest. Cleanup of per-architecture tags follows a publish.
 */
#include "registry/assemble/job.h"
#include "registry/assemble/cache.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/assemble/copy.h"
#include "registry/assemble/signing.h"
#include "server/base/log.h"
#include "server/base/parallel.h"

#define ASM_MOVED_ATTEMPTS 3  /* assemblies in a row whose source tags moved under the PUT */

/* ---- writing ---- */

enum push_when { PUSH_IF_DIFFERENT, PUSH_IF_MISSING, PUSH_ALWAYS };

/* PUT the index under tag: unless it is current / exists already (HEAD), or unconditionally. */
static enum am_err
push_tag(struct job *c, const char *tag, enum push_when when, int *pushed, char *err, size_t errlen)
{
	struct reg_reply head, put;
	const struct index_doc *doc = &c->out->doc;
	enum am_err rc = AM_OK;

	*pushed = 0;
	reg_reply_init(&head);
	reg_reply_init(&put);
	if (when != PUSH_ALWAYS) {
		rc = c->api->manifest_head(c->api->ctx, c->repo, tag, &head, err, errlen);
		if (rc == AM_OK && (when == PUSH_IF_MISSING || strcmp(head.digest, doc->digest) == 0))
			goto done;
		if (rc != AM_OK && rc != AM_ENOTFOUND) {
			rc = rc == AM_EINVAL ? AM_ETRANSIENT : rc;
			goto done;
		}
	}
	reg_api_note_write(c->api, c->repo, tag, doc->digest);
	if ((rc = c->api->manifest_put(c->api->ctx, c->repo, tag, doc->media_type, doc->body, doc->len,
	    &put, err, errlen)) != AM_OK) {
		rc = rc == AM_EINVAL ? AM_EDENIED : rc;
		goto done;
	}
	if (put.digest[0] != '\0' && strcmp(put.digest, doc->digest) != 0) {
		rc = am_fail(err, errlen, AM_EMISMATCH, "registry stored %s:%s as %s, expected %s",
		    c->repo, tag, put.digest, doc->digest);
		goto done;
	}
	*pushed = 1;
done:
	reg_reply_clear(&head);
	reg_reply_clear(&put);
	return rc;
}

/* Extra tags: all of them after a change, only missing ones when the target was current. */
static enum am_err
push_extra_tags(struct job *c, int only_missing, char *err, size_t errlen)
{
	char done_list[256] = "";
	size_t i, off = 0;
	int pushed;
	enum am_err rc;

	for (i = 0; i < c->p->n_extra; i++) {
		const char *tag = c->p->extra[i].tag;
		if (tag[0] == '\0') {
			if (c->p->extra[i].note[0] != '\0')
				job_note(c->out, "%s", c->p->extra[i].note);
			continue;
		}
		if ((rc = push_tag(c, tag, only_missing ? PUSH_IF_MISSING : PUSH_IF_DIFFERENT, &pushed,
		    err, errlen)) != AM_OK)
			return rc;
		if (pushed) {
			c->out->tags_pushed++;
			(void)am_fmt(done_list + off, sizeof(done_list) - off, "%s%s", off ? "," : "", tag);
			off = strlen(done_list);
		}
	}
	if (off > 0)
		job_note(c->out, "extra tags %s", done_list);
	return AM_OK;
}

/* Children that live in another repository go into the target repository first. */
static enum am_err
copy_children(struct job *c, char *err, size_t errlen)
{
	struct copy_stats st;
	int with_atts = strcmp(c->out->doc.media_type, MT_OCI_INDEX) == 0;
	size_t i, j;
	enum am_err rc = AM_OK;

	memset(&st, 0, sizeof(st));
	for (i = 0; i < c->p->n_archs; i++) {
		const struct kid *k = &c->kids[i];
		const char *tag = c->p->archs[i].copy_tag;
		if (!k->present || strcmp(k->src_repo, c->repo) == 0)
			continue;
		if ((rc = copy_manifest(c->api, k->src_repo, c->repo, k->image.digest, k->image.media_type,
		    k->raw, k->raw_len, tag[0] != '\0' ? tag : NULL,
		    &st, err, errlen)) != AM_OK)
			break;
		for (j = 0; with_atts && c->p->keep_attestations && j < k->n_atts; j++)
			if ((rc = copy_manifest(c->api, k->src_repo, c->repo, k->atts[j].digest,
			    k->atts[j].media_type, NULL, 0, NULL, &st, err, errlen)) != AM_OK)
				break;
		if (rc != AM_OK)
			break;
	}
	c->out->manifests_copied += st.manifests;
	c->out->blobs_mounted += st.mounted;
	c->out->blobs_uploaded += st.uploaded;
	c->out->tags_pushed += st.tagged;
	if (st.manifests > 0 || st.tagged > 0)
		job_note(c->out, "copied %u manifests into %s (%u blobs mounted, %u uploaded, %u copy tags)",
		    st.manifests, c->repo, st.mounted, st.uploaded, st.tagged);
	return rc;
}

/*
 * Remove the per-architecture tags the index was built from, through
 * Harbor's tag removal (never artifact deletion). Only tags that are
 * resolved children of the index that is now current; a failure leaves the
 * outcome as it is and is reported in the detail.
 */
static void
cleanup(struct job *c)
{
	char err[512], first[512] = "";
	size_t i;
	unsigned removed = 0;
	enum am_err rc;

	if (!c->p->cleanup)
		return;
	if (c->api->tag_delete == NULL) {
		c->out->cleanup_failed = 1;
		job_note(c->out, "cleanup skipped: no Harbor API configured");
		return;
	}
	for (i = 0; i < c->p->n_archs; i++) {
		const struct kid *k = &c->kids[i];
		if (!k->present || k->from_target || k->src_tag[0] == '\0')
			continue;
		/* Never the group's own output, whatever the templates say. */
		if (strcmp(k->src_repo, c->repo) == 0 && strcmp(k->src_tag, c->target_tag) == 0)
			continue;
		rc = c->api->tag_delete(c->api->harbor, k->src_repo, k->tag_digest, k->src_tag, err, sizeof(err));
		if (rc == AM_OK)
			removed++;
		else if (rc != AM_ENOTFOUND && first[0] == '\0')
			(void)am_fmt(first, sizeof(first), "%s:%s: %s", k->src_repo, k->src_tag, err);
	}
	c->out->tags_removed += removed;
	if (removed > 0)
		job_note(c->out, "cleanup removed %u tags", removed);
	if (first[0] != '\0') {
		c->out->cleanup_failed = 1;
		job_note(c->out, "cleanup failed: %s", first);
	}
}

/* ---- signatures (registry/assemble/signing.c) ---- */

/* require_signed_children: every child signed by a trusted key, else refuse naming it. */
static int
children_signed(struct job *c)
{
	char err[768];
	size_t i;
	enum am_err rc;

	for (i = 0; c->p->require_signed && i < c->p->n_archs; i++) {
		const struct kid *k = &c->kids[i];
		if (!k->present)
			continue;
		if ((rc = asm_child_signed(c->api, c->p->child_keys, c->p->n_child_keys, k->src_repo,
		    k->image.digest, err, sizeof(err))) == AM_OK)
			continue;
		job_classify(c->out, rc == AM_EINVAL ? AM_EMISMATCH : rc);
		c->out->unsigned_child = c->out->outcome == ASM_REFUSED;
		(void)am_fmt(c->out->unsigned_repo, sizeof(c->out->unsigned_repo), "%s", k->src_repo);
		(void)am_fmt(c->out->unsigned_digest, sizeof(c->out->unsigned_digest), "%s", k->image.digest);
		(void)am_fmt(c->out->detail, sizeof(c->out->detail), "%s child %s:%s is not signed: %s",
		    c->p->archs[i].name, k->src_repo, k->src_tag[0] ? k->src_tag : k->image.digest, err);
		return 0;
	}
	return 1;
}

/* sign.key_file: the index now current carries this key's signature; a fault retries the group. */
static void
sign_current(struct job *c)
{
	char err[768];
	int made = 0;
	enum am_err rc;

	if (c->p->sign_key_file == NULL || c->p->sign_key_file[0] == '\0')
		return;
	rc = asm_sign_index(c->api, c->p->sign_key_file, c->repo, c->out->doc.digest, &made, err,
	    sizeof(err));
	if (rc != AM_OK) {
		c->out->outcome = ASM_FAILED;
		c->out->err = rc == AM_EINVAL || rc == AM_ENOTFOUND ? AM_ETRANSIENT : rc;
		job_note(c->out, "index published but not signed: %s", err);
		return;
	}
	if (made) {
		c->out->signatures_made++;
		job_note(c->out, "signed %s", c->out->doc.digest);
	}
}

/* ---- the job ---- */

/* The target already holds this index: only missing extra tags, then cleanup. */
static void
keep_unchanged(struct job *c, int dry_run)
{
	char err[768];
	enum am_err rc;

	c->out->outcome = ASM_UNCHANGED;
	if (dry_run)
		return;
	/* Extra tags added to the configuration later still appear; existing ones stay. */
	if ((rc = push_extra_tags(c, 1, err, sizeof(err))) != AM_OK) {
		job_classify(c->out, rc == AM_EINVAL ? AM_ETRANSIENT : rc);
		job_note(c->out, "%s", err);
		return;
	}
	cleanup(c);
	sign_current(c);
}

/* Every write, the target tag last: copied children, extra tags, the target; then cleanup. */
static void
publish(struct job *c)
{
	char err[768];
	enum am_err rc;
	int pushed;

	if ((rc = copy_children(c, err, sizeof(err))) != AM_OK ||
	    (rc = push_extra_tags(c, 0, err, sizeof(err))) != AM_OK ||
	    (rc = push_tag(c, c->target_tag, PUSH_ALWAYS, &pushed, err, sizeof(err))) != AM_OK) {
		/*
		 * Whatever was written is complete and correct on its own (copied
		 * children, extra tags); the target is untouched, the next run redoes it.
		 */
		c->out->outcome = ASM_FAILED;
		c->out->err = rc;
		job_note(c->out, "%s", err);
		return;
	}
	c->out->outcome = ASM_PUBLISHED;
	/*
	 * A single instance needs no re-check: a source pushed while it read
	 * brings a webhook that runs the group again after this run (the queue's
	 * rerun). Other replicas' webhooks never reach this one.
	 */
	if (c->p->recheck_sources && job_sources_moved(c)) {
		c->moved = 1;         /* assemble again: no cleanup or signature for a stale index */
		return;
	}
	cleanup(c);
	sign_current(c);
}

/* Compare the built index with the target (its HEAD, read alongside the sources) and write what differs. */
static void
publish_if_new(struct job *c, const struct head_job *target, int dry_run)
{
	enum am_err rc = target->rc;

	if (rc == AM_OK && strcmp(target->head.digest, c->out->doc.digest) == 0)
		keep_unchanged(c, dry_run);
	else if (rc != AM_OK && rc != AM_ENOTFOUND)
		job_fail_with(c->out, rc == AM_EINVAL ? AM_ETRANSIENT : rc, target->err);
	else if (!children_signed(c))
		;   /* refused, naming the unsigned child */
	else if (dry_run) {
		/* The target was just read: it is missing or differs, so its PUT needs no second HEAD. */
		c->out->outcome = ASM_DRY_RUN;
		job_note(c->out, "%s", rc == AM_ENOTFOUND ? "target does not exist yet" : "target differs");
	} else
		publish(c);
}

/* One assembly; returns 1 when a source tag moved under its PUT (publish()). */
static int
assemble_from(const struct reg_api *api, const struct plan *p, int dry_run, struct asm_result *out)
{
	struct job c;
	struct head_job target;
	char err[768], missing[512] = "", absent[512] = "";
	size_t i;
	enum am_err rc;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	c.api = api;
	c.p = p;
	c.repo = p->repo;
	c.target_tag = p->target_tag;
	c.out = out;
	c.kids = xcalloc(p->n_archs ? p->n_archs : 1, sizeof(*c.kids));
	memset(&target, 0, sizeof(target));
	target.api = api;
	target.repo = p->repo;
	target.ref = p->target_tag;
	reg_reply_init(&target.head);
	if (p->target_tag[0] != '\0')
		(void)am_fmt(out->target, sizeof(out->target), "%s:%s", p->repo, p->target_tag);
	if (p->refusal[0] != '\0') {
		out->outcome = ASM_REFUSED;
		out->err = AM_EINVAL;
		(void)am_fmt(out->detail, sizeof(out->detail), "%s", p->refusal);
	} else if ((rc = job_resolve(&c, &target, missing, sizeof(missing), absent, sizeof(absent), err,
	    sizeof(err))) != AM_OK) {
		job_fail_with(out, rc, err);
	} else if (missing[0] != '\0') {
		out->outcome = ASM_WAITING;
		(void)am_fmt(out->detail, sizeof(out->detail), "missing %s", missing);
	} else if ((rc = job_build(&c, err, sizeof(err))) != AM_OK) {
		job_fail_with(out, rc, err);
	} else {
		(void)am_fmt(out->digest, sizeof(out->digest), "%s", out->doc.digest);
		if (absent[0] != '\0')
			job_note(out, "without optional %s", absent);
		publish_if_new(&c, &target, dry_run);
	}
	reg_reply_clear(&target.head);
	job_note_present(&c);
	manifest_free(&c.pub);
	for (i = 0; i < p->n_archs; i++)
		free(c.kids[i].raw);
	free(c.kids);
	return c.moved;
}

/*
 * Assemble until the index published matches source tags that did not move
 * under it, at most ASM_MOVED_ATTEMPTS times; then a transient failure, so
 * the queue's retry and backoff run the group again.
 */
static void
assemble_converging(const struct reg_api *api, const struct plan *p, int dry_run,
    struct asm_result *out)
{
	int attempt;

	for (attempt = 1; ; attempt++) {
		if (!assemble_from(api, p, dry_run, out))
			return;
		if (attempt == ASM_MOVED_ATTEMPTS)
			break;
		asm_result_clear(out);
	}
	out->outcome = ASM_FAILED;
	out->err = AM_ETRANSIENT;
	job_note(out, "source tags kept moving: %d assemblies in a row published an index already "
	    "outdated; retrying later", ASM_MOVED_ATTEMPTS);
}

/*
 * The registry as assemble() sees it: the caller's api, noting the longest
 * Retry-After any reply carried, for the caller's backoff.
 */
struct noting {
	const struct reg_api *inner;
	long retry_after_ms;
};

/* resolve_all calls the api from several threads at once. */
static pthread_mutex_t note_lock = PTHREAD_MUTEX_INITIALIZER;

static void
note_retry(struct noting *n, const struct reg_reply *r)
{
	pthread_mutex_lock(&note_lock);
	if (r != NULL && r->retry_after_ms > n->retry_after_ms)
		n->retry_after_ms = r->retry_after_ms;
	pthread_mutex_unlock(&note_lock);
}

static enum am_err
n_get(void *ctx, const char *repo, const char *ref, struct reg_reply *out, char *err, size_t errlen)
{
	struct noting *n = ctx;
	enum am_err rc = n->inner->manifest_get(n->inner->ctx, repo, ref, out, err, errlen);

	note_retry(n, out);
	return rc;
}

static enum am_err
n_head(void *ctx, const char *repo, const char *ref, struct reg_reply *out, char *err, size_t errlen)
{
	struct noting *n = ctx;
	enum am_err rc = n->inner->manifest_head(n->inner->ctx, repo, ref, out, err, errlen);

	note_retry(n, out);
	return rc;
}

static enum am_err
n_put(void *ctx, const char *repo, const char *ref, const char *media_type, const char *body,
    size_t len, struct reg_reply *out, char *err, size_t errlen)
{
	struct noting *n = ctx;
	enum am_err rc = n->inner->manifest_put(n->inner->ctx, repo, ref, media_type, body, len, out,
	    err, errlen);

	note_retry(n, out);
	return rc;
}

static enum am_err
n_blob(void *ctx, const char *repo, const char *digest, size_t max, struct reg_reply *out,
    char *err, size_t errlen)
{
	struct noting *n = ctx;
	enum am_err rc = n->inner->blob_get(n->inner->ctx, repo, digest, max, out, err, errlen);

	note_retry(n, out);
	return rc;
}

static enum am_err
n_mount(void *ctx, const char *dst, const char *src, const char *digest, int *mounted,
    char *location, size_t loclen, char *err, size_t errlen)
{
	struct noting *n = ctx;
	return n->inner->blob_mount(n->inner->ctx, dst, src, digest, mounted, location, loclen,
	    err, errlen);
}

static enum am_err
n_copy(void *ctx, const char *dst, const char *src, const char *digest, long long size,
    const char *location, char *err, size_t errlen)
{
	struct noting *n = ctx;
	return n->inner->blob_copy(n->inner->ctx, dst, src, digest, size, location, err, errlen);
}

static enum am_err
n_blob_put(void *ctx, const char *repo, const char *digest, const char *body, size_t len,
    char *err, size_t errlen)
{
	struct noting *n = ctx;
	return n->inner->blob_put(n->inner->ctx, repo, digest, body, len, err, errlen);
}

void
assemble(const struct reg_api *api, const struct plan *p, int dry_run, struct asm_result *out)
{
	struct noting n = { api, -1 };
	struct reg_api noted = *api;   /* harbor and tag_delete carry over as they are */

	noted.ctx = &n;
	noted.manifest_get = n_get;
	noted.manifest_head = n_head;
	noted.manifest_put = n_put;
	noted.blob_get = n_blob;
	noted.blob_mount = api->blob_mount != NULL ? n_mount : NULL;
	noted.blob_copy = api->blob_copy != NULL ? n_copy : NULL;
	noted.blob_put = api->blob_put != NULL ? n_blob_put : NULL;

	assemble_converging(&noted, p, dry_run, out);
	out->retry_after_ms = out->outcome == ASM_FAILED ? n.retry_after_ms : -1;
}

