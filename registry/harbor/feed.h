/*
 * Harbor's change feed, the REST half: one page of a project's repositories
 * (newest update first) or of a repository's artifacts with their tags
 * (newest push first), fetched and parsed into plain structs. What to do
 * with them (the cursor, the decision) lives in server/reconcile/feed.c.
 * Field names follow Harbor's api/v2.0/swagger.yaml (Repository, Artifact, Tag).
 */
#ifndef AM_HARBOR_FEED_H
#define AM_HARBOR_FEED_H

#include <stddef.h>
#include <jansson.h>
#include "registry/harbor/harbor.h"
#include "registry/oci/names.h"

struct harbor_repo {
	char name[NAME_MAX_REPO];    /* whole path, "library/app" */
	long long update_ms;         /* update_time, ms since the epoch */
};

/* One tag of one artifact. */
struct harbor_tagged {
	char tag[NAME_MAX_TAG];
	char digest[80];
	long long push_ms;           /* the artifact's push_time, ms since the epoch */
};

/* RFC 3339 time as Harbor writes it ("2026-01-01T00:00:00.123Z", offsets too) -> ms; -1 when invalid. */
long long harbor_time_ms(const char *s);

/*
 * One page of GET /projects/{p}/repositories: at most max entries into out.
 * Returns how many entries the page held (also those beyond max), -1 when
 * it is not a list of repositories (err says why).
 */
int harbor_repos_parse(const json_t *page, struct harbor_repo *out, size_t max,
    char *err, size_t errlen);

/*
 * One page of GET .../artifacts?with_tag=true: every tag of every artifact,
 * at most max into *n. Returns how many artifacts the page held and sets
 * *oldest_ms to the smallest push_time among them (LLONG_MAX when none);
 * -1 when malformed (err says why).
 */
int harbor_artifacts_parse(const json_t *page, struct harbor_tagged *out, size_t max, size_t *n,
    long long *oldest_ms, char *err, size_t errlen);

/*
 * The GET calls (page from 1). *status is Harbor's answer; *reply the JSON
 * (caller decrefs) on 200. AM_OK when an answer came, whatever its status.
 */
enum am_err harbor_projects_page(struct harbor *h, int page, int page_size, long *status,
    json_t **reply, char *err, size_t errlen);
enum am_err harbor_repos_page(struct harbor *h, const char *project, int page, int page_size,
    long *status, json_t **reply, char *err, size_t errlen);
/* repo is the whole path ("library/team/app"); its project is the first component. */
enum am_err harbor_artifacts_page(struct harbor *h, const char *repo, int page, int page_size,
    long *status, json_t **reply, char *err, size_t errlen);

#endif
