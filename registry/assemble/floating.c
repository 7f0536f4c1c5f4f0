/*
 * Floating extra tags ("latest", "{major}.{minor}"): several versions write
 * them, and one may only name a version when no higher version writing the
 * same tag is published. The registry is the truth: one tag list of the
 * target repository, read through the plan's order (config/plan.c), tells
 * which versions are published, across restarts and replicas. A second
 * list after the target PUT settles a race with a higher version published
 * at the same moment.
 */
#include "registry/assemble/job.h"

#include <string.h>

/* One tag of the target repository: a published version raises every floating tag it writes. */
static int
on_tag(void *ctx, const char *tag)
{
	struct job *c = ctx;
	const struct plan *p = c->p;
	char version[NAME_MAX_TAG], mine[NAME_MAX_TAG];
	size_t i;

	if (!p->order.target_version(p->order.rule, p->repo, tag, version, sizeof(version)))
		return 0;
	for (i = 0; i < p->n_extra; i++) {
		char *top = c->above[i];
		if (!p->extra[i].floating ||
		    p->order.extra_tag(p->order.rule, i, version, mine, sizeof(mine)) != 0 ||
		    strcmp(mine, p->extra[i].tag) != 0 ||
		    !p->order.higher(p->order.rule, version, top[0] != '\0' ? top : p->version))
			continue;
		(void)am_fmt(top, NAME_MAX_TAG, "%s", version);
		(void)am_fmt(c->above_tag[i], NAME_MAX_TAG, "%s", tag);
	}
	return 0;
}

/* Read the target repository's tags into c->above / c->above_tag. */
static enum am_err
list_published(struct job *c, char *err, size_t errlen)
{
	enum am_err rc;

	memset(c->above, 0, sizeof(c->above));
	memset(c->above_tag, 0, sizeof(c->above_tag));
	rc = c->api->tags_list(c->api->ctx, c->repo, on_tag, c, err, errlen);
	if (rc == AM_ENOTFOUND)
		rc = AM_OK;          /* a repository without tags publishes no version */
	c->listed = rc == AM_OK;
	return rc;
}

int
job_floating_may_move(struct job *c, size_t i, char *above, size_t alen, enum am_err *rc,
    char *err, size_t errlen)
{
	*rc = AM_OK;
	above[0] = '\0';
	if (!c->p->extra[i].floating || c->p->order.rule == NULL)
		return 1;
	if (c->api->tags_list == NULL) {
		job_note(c->out, "%s moved without a version check: no tag list", c->p->extra[i].tag);
		return 1;
	}
	if (!c->listed && (*rc = list_published(c, err, errlen)) != AM_OK)
		return -1;
	if (c->above[i][0] == '\0') {
		c->floated[i] = 1;
		return 1;
	}
	(void)am_fmt(above, alen, "%s", c->above[i]);
	return 0;
}

/* PUT body under tag (noted as our own write first). */
static enum am_err
put_tag(struct job *c, const char *tag, const char *media_type, const char *body, size_t len,
    const char *digest, char *err, size_t errlen)
{
	struct reg_reply put;
	enum am_err rc;

	reg_reply_init(&put);
	reg_api_note_write(c->api, c->repo, tag, digest);
	rc = c->api->manifest_put(c->api->ctx, c->repo, tag, media_type, body, len, &put, err, errlen);
	reg_reply_clear(&put);
	return rc;
}

/* Floating tag i names this run's index, unless it already does. */
static enum am_err
keep_mine(struct job *c, size_t i, char *err, size_t errlen)
{
	const struct index_doc *doc = &c->out->doc;
	const char *tag = c->p->extra[i].tag;
	struct reg_reply head;
	enum am_err rc;

	reg_reply_init(&head);
	rc = c->api->manifest_head(c->api->ctx, c->repo, tag, &head, err, errlen);
	if (rc == AM_OK && strcmp(head.digest, doc->digest) == 0)
		goto done;
	if (rc != AM_OK && rc != AM_ENOTFOUND)
		goto done;
	if ((rc = put_tag(c, tag, doc->media_type, doc->body, doc->len, doc->digest, err, errlen)) == AM_OK)
		job_note(c->out, "%s written again: another run had moved it", tag);
done:
	reg_reply_clear(&head);
	return rc;
}

/* Floating tag i names the index of the higher version published meanwhile. */
static enum am_err
hand_over(struct job *c, size_t i, char *err, size_t errlen)
{
	const char *tag = c->p->extra[i].tag;
	char digest[80];
	struct reg_reply got;
	enum am_err rc;

	reg_reply_init(&got);
	if ((rc = c->api->manifest_get(c->api->ctx, c->repo, c->above_tag[i], &got, err, errlen)) != AM_OK)
		goto done;
	/* The same bytes under the floating tag: the same digest, whatever the reply's header said. */
	digest_sha256(got.body != NULL ? got.body : "", got.body_len, digest, sizeof(digest));
	if ((rc = put_tag(c, tag, got.media_type, got.body != NULL ? got.body : "", got.body_len, digest, err,
	    errlen)) == AM_OK) {
		c->out->extra_at_index &= ~(1u << i);
		job_note(c->out, "%s moved on to %s, published meanwhile", tag, c->above[i]);
	}
done:
	reg_reply_clear(&got);
	return rc;
}

void
job_floating_settle(struct job *c)
{
	char err[512];
	size_t i;
	int any = 0;
	enum am_err rc;

	for (i = 0; i < c->p->n_extra; i++)
		any |= c->floated[i];
	if (!any)
		return;
	if ((rc = list_published(c, err, sizeof(err))) != AM_OK) {
		job_note(c->out, "floating tags not checked again: %s", err);
		return;
	}
	for (i = 0; i < c->p->n_extra; i++) {
		if (!c->floated[i])
			continue;
		rc = c->above[i][0] == '\0' ? keep_mine(c, i, err, sizeof(err)) : hand_over(c, i, err, sizeof(err));
		if (rc != AM_OK)
			job_note(c->out, "%s not checked again: %s", c->p->extra[i].tag, err);
	}
}
