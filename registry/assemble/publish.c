/*
 * The writes of an assembly, after the decision: compare the built index
 * with the target, then children copied into the target repository (when
 * they live elsewhere), extra tags, and the target tag as the very last
 * write, so that a fault part-way leaves the target as it was and the next
 * run redoes the rest. Cleanup of per-architecture tags and the index's
 * signature follow a publish; unsigned children refuse it.
 */
#include "registry/assemble/job.h"

#include <string.h>

#include "registry/assemble/copy.h"
#include "registry/assemble/signing.h"
#include "server/base/log.h"

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
		/* Unreadable under the registry's policy (an unsigned index): written again. */
		if (rc != AM_OK && rc != AM_ENOTFOUND && rc != AM_EPOLICY) {
			rc = job_errmap(PHASE_COMPARE, rc).err;
			goto done;
		}
	}
	reg_api_note_write(c->api, c->repo, tag, doc->digest);
	if ((rc = c->api->manifest_put(c->api->ctx, c->repo, tag, doc->media_type, doc->body, doc->len,
	    &put, err, errlen)) != AM_OK) {
		rc = job_errmap(PHASE_PUT, rc).err;
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

/*
 * A floating extra tag (written by several versions) moves here only when
 * no higher version writing it is published; 1 when it may, 0 when it
 * stays (noted), -1 on a fault (rc, err). only_missing: HEAD first, so an
 * existing tag costs no tag list.
 */
static int
floating_may_move(struct job *c, size_t i, int only_missing, enum am_err *rc, char *err, size_t errlen)
{
	const char *tag = c->p->extra[i].tag;
	char above[NAME_MAX_TAG];
	struct reg_reply head;
	int may;

	*rc = AM_OK;
	if (only_missing) {
		reg_reply_init(&head);
		*rc = c->api->manifest_head(c->api->ctx, c->repo, tag, &head, err, errlen);
		reg_reply_clear(&head);
		if (*rc == AM_OK)
			return 0;          /* it exists: left as it is, like every extra tag */
		if (*rc != AM_ENOTFOUND) {
			*rc = job_errmap(PHASE_COMPARE, *rc).err;
			return -1;
		}
		*rc = AM_OK;
	}
	if ((may = job_floating_may_move(c, i, above, sizeof(above), rc, err, errlen)) < 0) {
		*rc = job_errmap(PHASE_COMPARE, *rc).err;
		return -1;
	}
	if (may == 0)
		job_note(c->out, "%s stays at %s", tag, above);
	return may;
}

/* Extra tags: all of them after a change, only missing ones when the target was current. */
static enum am_err
push_extra_tags(struct job *c, int only_missing, char *err, size_t errlen)
{
	char done_list[256] = "";
	size_t i, off = 0;
	int pushed, may;
	enum push_when when;
	enum am_err rc;

	for (i = 0; i < c->p->n_extra; i++) {
		const char *tag = c->p->extra[i].tag;
		if (tag[0] == '\0') {
			if (c->p->extra[i].note[0] != '\0')
				job_note(c->out, "%s", c->p->extra[i].note);
			continue;
		}
		when = only_missing ? PUSH_IF_MISSING : PUSH_IF_DIFFERENT;
		if (c->p->extra[i].floating) {
			if ((may = floating_may_move(c, i, only_missing, &rc, err, errlen)) < 0)
				return rc;
			if (may == 0)
				continue;
			if (only_missing)
				when = PUSH_ALWAYS;   /* just found missing */
		}
		if ((rc = push_tag(c, tag, when, &pushed, err, errlen)) != AM_OK)
			return rc;
		c->out->extra_at_index |= 1u << i;
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

/*
 * require_signed_children: every child signed by a trusted key, else refuse
 * naming it. Runs before every write, the unchanged path's included. The
 * signature lives where the child was pushed: the rule's source repository,
 * also for a child taken back from the published index (its payload names
 * that repository, so a copy beside the index would not verify).
 */
static int
children_signed(struct job *c)
{
	char err[768];
	size_t i;
	enum am_err rc;

	for (i = 0; c->p->require_signed && i < c->p->n_archs; i++) {
		const struct kid *k = &c->kids[i];
		const char *sig_repo = k->from_target ? c->p->archs[i].src_repo : k->src_repo;
		if (!k->present)
			continue;
		if ((rc = asm_child_signed(c->api, c->p->child_keys, c->p->n_child_keys, sig_repo,
		    k->image.digest, err, sizeof(err))) == AM_OK)
			continue;
		job_fail(c->out, PHASE_CHILD_SIG, rc);
		c->out->unsigned_child = c->out->outcome == ASM_REFUSED;
		(void)am_fmt(c->out->unsigned_repo, sizeof(c->out->unsigned_repo), "%s", sig_repo);
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
		job_fail(c->out, PHASE_SIGN, rc);
		job_note(c->out, "index published but not signed: %s", err);
		return;
	}
	if (made) {
		c->out->signatures_made++;
		job_note(c->out, "signed %s", c->out->doc.digest);
	}
}

/*
 * The target already holds this index: only missing extra tags, then
 * cleanup and the signature. These write too, so the publish path's checks
 * run first: an index anyone could have pushed (it is deterministic), or one
 * published before require_signed_children was turned on, never gets
 * archmerge's signature over unsigned children.
 */
static void
keep_unchanged(struct job *c, int dry_run)
{
	char err[768];
	enum am_err rc;

	if (!children_signed(c))
		return;   /* refused, naming the unsigned child (a dry run says so too) */
	c->out->outcome = ASM_UNCHANGED;
	if (dry_run)
		return;
	/* Extra tags added to the configuration later still appear; existing ones stay. */
	if ((rc = push_extra_tags(c, 1, err, sizeof(err))) != AM_OK) {
		job_fail(c->out, PHASE_COMPARE, rc);
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
		job_fail(c->out, PHASE_WRITES, rc);
		job_note(c->out, "%s", err);
		return;
	}
	c->out->outcome = ASM_PUBLISHED;
	job_floating_settle(c);
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

/*
 * The index about to replace the target drops platforms the target has:
 * only a rule that no longer lists them does that (an architecture it
 * still lists is kept from the published index, or the group waits), and
 * it happens once. Said in the detail and the log; a failed read of the
 * target only costs the message.
 */
static void
note_dropped(struct job *c)
{
	char err[512], plat[96], src[512] = "";
	size_t i, j, off = 0;
	int kept;

	if (job_read_published(c, NULL, err, sizeof(err)) != AM_OK)
		return;
	for (i = 0; i < c->pub.n_children; i++) {
		const struct descriptor *d = &c->pub.children[i];
		if (d->attestation || !d->has_platform || !mt_is_image(d->media_type))
			continue;
		for (j = 0, kept = 0; j < c->p->n_archs && !kept; j++)
			kept = c->kids[j].present && platform_equal(&c->kids[j].image.platform, &d->platform);
		if (kept)
			continue;
		platform_format(&d->platform, plat, sizeof(plat));
		(void)am_fmt(src + off, sizeof(src) - off, "%s%s", off ? "," : "", plat);
		off = strlen(src);
	}
	if (off == 0)
		return;
	job_note(c->out, "index drops %s: the rule no longer lists it", src);
	log_kv(LOG_WARN, "assembly index shrinks", LOG_S("target", c->out->target), LOG_S("dropped", src),
	    LOG_S("note", "the rule no longer lists these platforms"));
}

/* Compare the built index with the target (its HEAD, read alongside the sources) and write what differs. */
void
job_publish(struct job *c, const struct head_job *target, int dry_run)
{
	enum am_err rc = target->rc;

	if (rc == AM_OK && strcmp(target->head.digest, c->out->doc.digest) != 0)
		note_dropped(c);

	if (rc == AM_OK && strcmp(target->head.digest, c->out->doc.digest) == 0)
		keep_unchanged(c, dry_run);
	else if (rc == AM_EPOLICY) {
		/*
		 * The target exists but the registry's policy will not let it be
		 * read: an index of ours whose signature never made it (signature
		 * required). The same PUT is harmless; the signature follows it
		 * when sign is configured.
		 */
		job_note(c->out, "target unreadable under the registry's policy (%s): %s", target->err,
		    dry_run ? "would be written again" : "written again");
		if (c->p->sign_key_file == NULL || c->p->sign_key_file[0] == '\0')
			job_note(c->out, "configure sign so that the index can be pulled");
		if (!children_signed(c))
			;
		else if (dry_run)
			c->out->outcome = ASM_DRY_RUN;
		else
			publish(c);
	} else if (rc != AM_OK && rc != AM_ENOTFOUND)
		job_fail_with(c->out, PHASE_COMPARE, rc, target->err);
	else if (!children_signed(c))
		;   /* refused, naming the unsigned child */
	else if (dry_run) {
		/* The target was just read: it is missing or differs, so its PUT needs no second HEAD. */
		c->out->outcome = ASM_DRY_RUN;
		job_note(c->out, "%s", rc == AM_ENOTFOUND ? "target does not exist yet" : "target differs");
	} else
		publish(c);
}
