/*
 * After the target PUT, with other writers (replicas) publishing the same
 * target: does every source tag still name what resolve read? One check per
 * source, all at once; a moved source makes the run assemble again, and so
 * does a source whose state stays unknown (a failed HEAD proves nothing).
 */
#include "registry/assemble/job.h"

#include <stdlib.h>
#include <string.h>

#include "server/base/log.h"
#include "server/base/parallel.h"

/* What one source tag names now. */
enum src_state {
	SRC_SAME,        /* the digest resolve read */
	SRC_MOVED,       /* another digest */
	SRC_ABSENT,      /* no such tag (cleanup, or a person): nothing newer to publish */
	SRC_UNKNOWN,     /* the registry did not say, twice */
};

/* One source tag's check. */
struct src_check {
	const struct reg_api *api;
	const struct kid *k;
	enum src_state state;
	char now[80];            /* the digest it names now, when known */
	char err[512];
};

/*
 * The digest src's tag names now: HEAD, once more when the HEAD fails (a
 * 429 or 5xx under a burst), and a GET hashed when the reply carries no
 * Docker-Content-Digest (some registries omit it on HEAD).
 */
static enum am_err
src_digest(struct src_check *s)
{
	struct reg_reply r;
	enum am_err rc;
	int attempt;

	reg_reply_init(&r);
	for (attempt = 0; attempt < 2; attempt++) {
		rc = s->api->manifest_head(s->api->ctx, s->k->src_repo, s->k->src_tag, &r, s->err,
		    sizeof(s->err));
		if (rc == AM_OK && r.digest[0] == '\0') {
			reg_reply_clear(&r);
			rc = s->api->manifest_get(s->api->ctx, s->k->src_repo, s->k->src_tag, &r, s->err,
			    sizeof(s->err));
			if (rc == AM_OK)
				digest_sha256(r.body, r.body_len, r.digest, sizeof(r.digest));
		}
		if (rc == AM_OK || rc == AM_ENOTFOUND)
			break;
		reg_reply_clear(&r);
	}
	if (rc == AM_OK)
		(void)am_fmt(s->now, sizeof(s->now), "%s", r.digest);
	reg_reply_clear(&r);
	return rc;
}

static void
src_check_run(void *arg)
{
	struct src_check *s = arg;
	enum am_err rc = src_digest(s);

	if (rc == AM_ENOTFOUND)
		s->state = SRC_ABSENT;
	else if (rc != AM_OK)
		s->state = SRC_UNKNOWN;
	else
		s->state = strcmp(s->now, s->k->tag_digest) == 0 ? SRC_SAME : SRC_MOVED;
}

/* Does this source make the run assemble again? Logs and notes it when so. */
static int
source_moved(struct job *c, const struct src_check *s)
{
	const struct kid *k = s->k;
	char src[NAME_MAX_REPO + NAME_MAX_TAG + 2];

	(void)am_fmt(src, sizeof(src), "%s:%s", k->src_repo, k->src_tag);
	switch (s->state) {
	case SRC_SAME:
		return 0;
	case SRC_ABSENT:
		/*
		 * Gone is not moved: the tag names nothing newer than what was read,
		 * and assembling again would only take the children back from the
		 * index just written (its own, possibly older one) and call it current.
		 */
		log_kv(LOG_INFO, "assembly source gone", LOG_S("source", src), LOG_S("read", k->tag_digest),
		    LOG_S("target", c->out->target), LOG_S("note", "not a move: the index stands"));
		return 0;
	case SRC_MOVED:
		job_note(c->out, "%s moved while assembling (was %s)", src, k->tag_digest);
		log_kv(LOG_WARN, "assembly source moved", LOG_S("source", src), LOG_S("read", k->tag_digest),
		    LOG_S("now", s->now), LOG_S("target", c->out->target), LOG_S("note", "assembling again"));
		return 1;
	case SRC_UNKNOWN:
		break;
	}
	job_note(c->out, "%s could not be re-checked after the PUT: %s", src, s->err);
	log_kv(LOG_WARN, "assembly source unknown", LOG_S("source", src), LOG_S("read", k->tag_digest),
	    LOG_S("error", s->err), LOG_S("target", c->out->target), LOG_S("note", "assembling again"));
	return 1;
}

/*
 * After the target PUT: does every source tag still name what resolve read?
 * Another replica may have published a newer index meanwhile, and ours just
 * put the older one back. Returns 1 when one moved, or when its state could
 * not be learnt (two failed HEADs); a tag that is gone is not a move.
 */
int
job_sources_moved(struct job *c)
{
	struct src_check *checks = xcalloc(c->p->n_archs + 1, sizeof(*checks));
	struct par_job *par = xcalloc(c->p->n_archs + 1, sizeof(*par));
	size_t i, n = 0;
	int moved = 0;

	/* Independent checks: all at once. */
	for (i = 0; i < c->p->n_archs; i++) {
		const struct kid *k = &c->kids[i];
		if (!k->present || k->from_target || k->tag_digest[0] == '\0')
			continue;
		checks[n].api = c->api;
		checks[n].k = k;
		par[n].run = src_check_run;
		par[n].arg = &checks[n];
		n++;
	}
	par_run(par, n);
	for (i = 0; i < n && !moved; i++)
		moved = source_moved(c, &checks[i]);
	free(checks);
	free(par);
	return moved;
}
