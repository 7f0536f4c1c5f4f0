/*
 * Reconcile: the registry is the source of truth. A pass lists the tags of
 * every repository the rules cover, derives the groups (repo, version) those
 * tags form, and assembles each complete one (CLI) or queues it for the
 * workers (serve). Webhooks Harbor dropped, tags added in its UI and time
 * the service was down all end up published this way.
 */
#ifndef AM_RECONCILE_H
#define AM_RECONCILE_H

#include <stdatomic.h>
#include <stddef.h>
#include <jansson.h>

#include "config/config.h"
#include "registry/assemble/assemble.h"
#include "server/queue/repos.h"
#include "server/service/service.h"

#define RECONCILE_MAX_TAGS 100000     /* per repository and pass; more is a listing failure */

/* What a pass did with one group. */
enum rc_result {
	RC_PUBLISHED,       /* index pushed */
	RC_UNCHANGED,       /* target already current */
	RC_WOULD_PUBLISH,   /* --dry-run: target missing or stale */
	RC_QUEUED,          /* serve: handed to the workers, which log the outcome */
	RC_PRESENT,         /* target listed, not read this pass (see verify_per_pass) */
	RC_WAITING,         /* an architecture's tag is not in the registry */
	RC_REFUSED,         /* content contradicts the rule; nothing published */
	RC_FAILED,          /* registry or network fault */
};

const char *rc_result_name(enum rc_result r);

struct rc_group {
	struct group g;
	char rule[128];              /* the rule's name */
	int complete;                /* every architecture's source tag was listed */
	int present;                 /* complete, and its target tag (and the other tags it
	                                writes in listed repositories) was listed */
	int verify;                  /* present, but read again this pass */
	enum rc_result result;
	char target[NAME_MAX_REPO + NAME_MAX_TAG + 2];   /* repo:tag */
	char digest[80];
	char missing[512];           /* "arm64,armv7" when not complete */
	char detail[1024];
};

enum rc_list_result { RC_LISTED, RC_ABSENT, RC_LIST_FAILED };

struct rc_repo {
	char host[256];
	char repo[NAME_MAX_REPO];
	enum rc_list_result result;
	size_t tags;
	char error[512];
};

struct reconcile_report {
	struct rc_repo *repos;       /* every repository listed, in order */
	size_t n_repos;
	struct rc_group *groups;     /* only when env->keep_groups */
	size_t n_groups;
	size_t tags, groups_seen, complete, waiting;
	size_t present, verified;    /* present groups skipped, present groups read again */
	size_t published, unchanged, would_publish, queued, refused, failed;
	size_t absent, list_failed;
	int dry_run;
	int stopped;                 /* the pass was cut short by env->stop */
	long long ms;
};

typedef int (*rc_tag_fn)(void *ctx, const char *tag);

#define RC_VERIFY_ALL (-1L)          /* verify_per_pass: read every complete group */

/*
 * Where the verification of published groups stands, per registry, from
 * one pass to the next: the last group read again. Owned by the caller of
 * reconcile_run (the serve thread keeps one for its life).
 */
struct rc_rotation;
struct rc_rotation *rc_rotation_new(void);
void rc_rotation_free(struct rc_rotation *r);   /* accepts NULL */

/* Everything a pass needs, as callbacks so unit tests run it on a fake registry. */
struct reconcile_env {
	const struct cfg *cfg;
	/* List a repository's tags (every page); AM_ENOTFOUND when it does not exist. */
	enum am_err (*list_tags)(void *ctx, const char *host, const char *repo, int page_size,
	    rc_tag_fn cb, void *cbctx, char *err, size_t errlen);
	/* CLI: assemble a complete group now. When NULL, enqueue is used. */
	void (*assemble)(void *ctx, const struct group *g, int dry_run, struct asm_result *out);
	/* serve: queue a complete group (per-group serialisation, coalescing). */
	int (*enqueue)(void *ctx, const struct group *g);
	void *ctx;
	struct repos *remembered;    /* repositories seen in webhooks; may be NULL */
	const char *only_host;       /* NULL: every registry of the config */
	int dry_run;
	int keep_groups;             /* fill report->groups (CLI report) */
	/*
	 * Complete groups whose target is listed are not read, except floating
	 * ones and at most this many per registry (RC_VERIFY_ALL: every one),
	 * taken in turn after rotation's position (NULL: from the first).
	 */
	long verify_per_pass;
	struct rc_rotation *rotation;
	atomic_int *stop;            /* non-zero: finish early (shutdown); may be NULL */
};

/* env for the real registries behind svc: list_tags, assemble and enqueue set, ctx = svc. */
void reconcile_env_service(struct reconcile_env *env, const struct cfg *cfg, struct service *svc);

/* A set of names (reconcile_repos_for_rule leaves it sorted, without duplicates). */
struct rc_names {
	char **v;
	size_t n, cap;
};
void rc_names_add(struct rc_names *s, const char *name);   /* appends a copy */
void rc_names_free(struct rc_names *s);

/*
 * Which repositories to list for rule `rule`: its repository globs that
 * hold no wildcard, the configured reconcile.repositories and the
 * remembered ones it covers, added to out (which ends sorted, unique).
 */
void reconcile_repos_for_rule(const struct cfg *cfg, size_t rule, char *const *remembered,
    size_t n_remembered, struct rc_names *out);   /* out: sorted, unique */

/* One per-architecture tag found in a listing. */
struct rc_match {
	size_t rule;
	char *repo;                  /* the group's repository */
	char *version;
	size_t arch;
};

struct rc_matches {
	struct rc_match *v;
	size_t n, cap;
};

/*
 * Match one listed tag of repo against the rules (claim_tag(): the same
 * decision as for webhooks); appends to out and returns 1 on a source claim.
 */
int reconcile_match_tag(const struct cfg *cfg, const char *repo, const char *tag,
    struct rc_matches *out);
void rc_matches_truncate(struct rc_matches *m, size_t n);   /* drop entries from n on */
void rc_matches_free(struct rc_matches *m);

/*
 * Which groups the matches yield: one per (rule, repo, version), sorted by
 * repo then version, with `complete` and `missing` filled, host set. Caller
 * frees *out.
 */
void reconcile_groups(const struct cfg *cfg, const char *host, struct rc_matches *m,
    struct rc_group **out, size_t *n);

/* Every listed tag of a registry, as "repo:tag", sorted once all are in. */
struct rc_listed {
	struct rc_names names;
	int sorted;
};

/*
 * Fill `present` of the complete groups: their target tag, non-floating
 * extra tags and copy tags are all in listed. A rule with a floating extra
 * tag never has present groups (issue 22: those are always re-checked).
 */
void reconcile_mark_present(const struct cfg *cfg, struct rc_listed *listed,
    struct rc_group *groups, size_t n);

/*
 * Set `verify` on at most limit present groups (every one with
 * RC_VERIFY_ALL): the ones after rot's place for host, then from the first
 * again; moves the place to the last one taken. groups are in
 * reconcile_groups()'s order. rot may be NULL (from the first). A pass
 * decides the same way as its groups go by.
 */
void reconcile_pick_verify(struct rc_rotation *rot, const char *host, long limit,
    struct rc_group *groups, size_t n);

/* One pass over every registry (or env->only_host). Logs one line per group and a summary. */
void reconcile_run(const struct reconcile_env *env, struct reconcile_report *out);
void reconcile_report_free(struct reconcile_report *r);

/* The report as JSON (new reference). */
json_t *reconcile_report_json(const struct reconcile_report *r);

#endif
