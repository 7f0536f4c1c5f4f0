/*
 * After the target PUT, with other writers (replicas) publishing the same
 * target: does every source tag still name what resolve read? One HEAD per
 * source, all at once; a moved source makes the run assemble again.
 */
#include "registry/assemble/job.h"

#include <stdlib.h>
#include <string.h>

#include "server/base/log.h"
#include "server/base/parallel.h"

/* Did this source tag move (or go away) since resolve read it? Logs and notes it when so. */
static int
source_moved(struct job *c, const struct head_job *j)
{
	const struct kid *k = &c->kids[j->kid];
	char src[NAME_MAX_REPO + NAME_MAX_TAG + 2];

	if (!(j->rc == AM_ENOTFOUND || (j->rc == AM_OK && strcmp(j->head.digest, k->tag_digest) != 0)))
		return 0;
	job_note(c->out, "%s:%s moved while assembling (was %s)", k->src_repo, k->src_tag, k->tag_digest);
	(void)am_fmt(src, sizeof(src), "%s:%s", k->src_repo, k->src_tag);
	log_kv(LOG_WARN, "assembly source moved", LOG_S("source", src), LOG_S("read", k->tag_digest),
	    LOG_S("now", j->rc == AM_OK ? j->head.digest : "absent"), LOG_S("target", c->out->target),
	    LOG_S("note", "assembling again"));
	return 1;
}

/*
 * After the target PUT: does every source tag still name what resolve read
 * (HEAD, digest only)? Another replica may have published a newer index
 * meanwhile, and ours just put the older one back. Returns 1 when one moved
 * or went away; a HEAD that fails otherwise proves nothing and counts as not moved.
 */
int
job_sources_moved(struct job *c)
{
	struct head_job *heads = xcalloc(c->p->n_archs + 1, sizeof(*heads));
	struct par_job *par = xcalloc(c->p->n_archs + 1, sizeof(*par));
	size_t i, n = 0;
	int moved = 0;

	/* Independent HEADs: all at once. */
	for (i = 0; i < c->p->n_archs; i++) {
		const struct kid *k = &c->kids[i];
		if (!k->present || k->from_target || k->tag_digest[0] == '\0')
			continue;
		heads[n].api = c->api;
		heads[n].repo = k->src_repo;
		heads[n].ref = k->src_tag;
		reg_reply_init(&heads[n].head);
		par[n].run = job_head_run;
		par[n].arg = &heads[n];
		heads[n].kid = i;
		n++;
	}
	par_run(par, n);
	for (i = 0; i < n; i++) {
		if (!moved)
			moved = source_moved(c, &heads[i]);
		reg_reply_clear(&heads[i].head);
	}
	free(heads);
	free(par);
	return moved;
}
