/*
 * One assembly run, phase by phase (job.h): resolve.c reads first, build.c
 * decides, publish.c writes last and only when every check passed, so a
 * fault part-way leaves the target as it was and the next run redoes the
 * rest; recheck.c asks whether the sources stood still under the PUT, and
 * the run assembles again when they did not. The registry as the run sees
 * it notes the longest Retry-After, for the caller's backoff.
 */
#include "registry/assemble/job.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ASM_MOVED_ATTEMPTS 3  /* assemblies in a row whose source tags moved under the PUT */

/* One assembly; returns 1 when a source tag moved under its PUT (recheck.c). */
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
		job_fail_with(out, PHASE_READ, rc, err);
	} else if (missing[0] != '\0' || out->n_blocked > 0) {
		out->outcome = ASM_WAITING;
		job_note_blocked(out, missing);
	} else if ((rc = job_build(&c, err, sizeof(err))) != AM_OK) {
		job_fail_with(out, PHASE_READ, rc, err);
	} else {
		(void)am_fmt(out->digest, sizeof(out->digest), "%s", out->doc.digest);
		if (absent[0] != '\0')
			job_note(out, "without optional %s", absent);
		job_publish(&c, &target, dry_run);
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
 * The run's view of the registry: the caller's verbs, each reply's
 * Retry-After noted in the run. The reads run on several threads at once;
 * the note is an atomic maximum of this run alone, so runs on other workers
 * never see it nor wait for each other.
 */
void
job_run_note(struct job_run *run, const struct reg_reply *r)
{
	long seen;

	if (r == NULL)
		return;
	seen = atomic_load(&run->retry_after_ms);
	while (r->retry_after_ms > seen &&
	    !atomic_compare_exchange_weak(&run->retry_after_ms, &seen, r->retry_after_ms))
		;   /* seen now holds the value another thread noted: compare again */
}

static enum am_err
n_get(void *ctx, const char *repo, const char *ref, struct reg_reply *out, char *err, size_t errlen)
{
	struct job_run *run = ctx;
	enum am_err rc = run->inner->manifest_get(run->inner->ctx, repo, ref, out, err, errlen);

	job_run_note(run, out);
	return rc;
}

static enum am_err
n_head(void *ctx, const char *repo, const char *ref, struct reg_reply *out, char *err, size_t errlen)
{
	struct job_run *run = ctx;
	enum am_err rc = run->inner->manifest_head(run->inner->ctx, repo, ref, out, err, errlen);

	job_run_note(run, out);
	return rc;
}

static enum am_err
n_put(void *ctx, const char *repo, const char *ref, const char *media_type, const char *body,
    size_t len, struct reg_reply *out, char *err, size_t errlen)
{
	struct job_run *run = ctx;
	enum am_err rc = run->inner->manifest_put(run->inner->ctx, repo, ref, media_type, body, len,
	    out, err, errlen);

	job_run_note(run, out);
	return rc;
}

static enum am_err
n_blob(void *ctx, const char *repo, const char *digest, size_t max, struct reg_reply *out,
    char *err, size_t errlen)
{
	struct job_run *run = ctx;
	enum am_err rc = run->inner->blob_get(run->inner->ctx, repo, digest, max, out, err, errlen);

	job_run_note(run, out);
	return rc;
}

static enum am_err
n_tags(void *ctx, const char *repo, int (*cb)(void *cbctx, const char *tag), void *cbctx,
    char *err, size_t errlen)
{
	struct job_run *run = ctx;
	return run->inner->tags_list(run->inner->ctx, repo, cb, cbctx, err, errlen);
}

static enum am_err
n_mount(void *ctx, const char *dst, const char *src, const char *digest, int *mounted,
    char *location, size_t loclen, char *err, size_t errlen)
{
	struct job_run *run = ctx;
	return run->inner->blob_mount(run->inner->ctx, dst, src, digest, mounted, location, loclen,
	    err, errlen);
}

static enum am_err
n_copy(void *ctx, const char *dst, const char *src, const char *digest, long long size,
    const char *location, char *err, size_t errlen)
{
	struct job_run *run = ctx;
	return run->inner->blob_copy(run->inner->ctx, dst, src, digest, size, location, err, errlen);
}

static enum am_err
n_blob_put(void *ctx, const char *repo, const char *digest, const char *body, size_t len,
    char *err, size_t errlen)
{
	struct job_run *run = ctx;
	return run->inner->blob_put(run->inner->ctx, repo, digest, body, len, err, errlen);
}

void
job_run_init(struct job_run *run, const struct reg_api *inner)
{
	run->inner = inner;
	run->api = *inner;   /* configs, written, host, harbor and tag_delete carry over as they are */
	run->api.ctx = run;
	run->api.manifest_get = n_get;
	run->api.manifest_head = n_head;
	run->api.manifest_put = n_put;
	run->api.blob_get = n_blob;
	run->api.tags_list = inner->tags_list != NULL ? n_tags : NULL;
	run->api.blob_mount = inner->blob_mount != NULL ? n_mount : NULL;
	run->api.blob_copy = inner->blob_copy != NULL ? n_copy : NULL;
	run->api.blob_put = inner->blob_put != NULL ? n_blob_put : NULL;
	atomic_init(&run->retry_after_ms, -1);
}

void
assemble(const struct reg_api *api, const struct plan *p, int dry_run, struct asm_result *out)
{
	struct job_run run;

	job_run_init(&run, api);
	assemble_converging(&run.api, p, dry_run, out);
	out->retry_after_ms = out->outcome == ASM_FAILED ? atomic_load(&run.retry_after_ms) : -1;
}

