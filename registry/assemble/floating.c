/*
 * Floating extra tags ("latest", "{major}.{minor}"): several versions write
 * them, and one may only name a version when no higher version writing the
 * same tag is published. The registry is the truth: one tag list of the
 * target repository, read through the plan's order (config/plan.c), tells
 * which versions are published, across restarts and replicas.
 */
#include "registry/assemble/job.h"

#include <string.h>

struct listing {
	struct job *c;
};

/* One tag of the target repository: a published version raises every floating tag it writes. */
static int
on_tag(void *ctx, const char *tag)
{
	struct listing *l = ctx;
	const struct plan *p = l->c->p;
	char version[NAME_MAX_TAG], mine[NAME_MAX_TAG];
	size_t i;

	if (!p->order.target_version(p->order.rule, p->repo, tag, version, sizeof(version)))
		return 0;
	for (i = 0; i < p->n_extra; i++) {
		char *top = l->c->above[i];
		if (!p->extra[i].floating ||
		    p->order.extra_tag(p->order.rule, i, version, mine, sizeof(mine)) != 0 ||
		    strcmp(mine, p->extra[i].tag) != 0 ||
		    !p->order.higher(p->order.rule, version, top[0] != '\0' ? top : p->version))
			continue;
		(void)am_fmt(top, NAME_MAX_TAG, "%s", version);
	}
	return 0;
}

int
job_floating_may_move(struct job *c, size_t i, char *above, size_t alen, enum am_err *rc,
    char *err, size_t errlen)
{
	struct listing l = { c };

	*rc = AM_OK;
	above[0] = '\0';
	if (!c->p->extra[i].floating || c->p->order.rule == NULL)
		return 1;
	if (c->api->tags_list == NULL) {
		job_note(c->out, "%s moved without a version check: no tag list", c->p->extra[i].tag);
		return 1;
	}
	if (!c->listed) {
		memset(c->above, 0, sizeof(c->above));
		*rc = c->api->tags_list(c->api->ctx, c->repo, on_tag, &l, err, errlen);
		if (*rc == AM_ENOTFOUND)
			*rc = AM_OK;      /* a repository without tags publishes no version */
		if (*rc != AM_OK)
			return -1;
		c->listed = 1;
	}
	if (c->above[i][0] == '\0')
		return 1;
	(void)am_fmt(above, alen, "%s", c->above[i]);
	return 0;
}
