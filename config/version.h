/*
 * Which of two versions of a rule is higher, for the tags several versions
 * write (floating tags such as "latest" or "{major}.{minor}"): numerically by
 * version_regex's groups in order, else by semantic-version precedence, or
 * no order at all (version_order = "push": the last write wins).
 */
#ifndef AM_CONFIG_VERSION_H
#define AM_CONFIG_VERSION_H

#include <stddef.h>
#include "config/rule.h"

/* How a rule's versions are ordered, from version_order and version_regex. */
enum version_by {
	VERSION_BY_PUSH,             /* no order: the last write wins */
	VERSION_BY_GROUPS,           /* version_regex's groups, numbers as numbers */
	VERSION_BY_SEMVER            /* semantic-version precedence */
};

/* "auto", "semver" or "push" into *out (enum rule_order); -1 for anything else. */
int version_order_parse(const char *text, int *out);

/* The order r uses: groups when version_regex has any (auto), else semver; push when said. */
enum version_by version_by(const struct rule *r);

/*
 * Semantic-version precedence (semver.org 2.0, optional leading "v", no
 * build metadata since tags cannot hold "+"). 0 and *cmp < 0, 0, > 0 as a is
 * lower, equal, higher than b; -1 when either is not a semantic version.
 */
int version_semver_cmp(const char *a, const char *b, int *cmp);

/* Can version be ordered under r's order (VERSION_BY_PUSH: never)? */
int version_orderable(const struct rule *r, const char *version);

/* a against b under r's order, as version_semver_cmp; -1 when either cannot be ordered. */
int version_cmp(const struct rule *r, const char *a, const char *b, int *cmp);

/* Is extra tag i floating: written by several versions ({version} absent from its template)? */
int version_tag_floats(const struct rule *r, size_t i);

/*
 * A rule with a floating extra tag that does not say how its versions are
 * ordered (version_order "auto" and no version_regex group): 1 and the
 * explanation in buf (check-config reports it, serve logs it); 0 when fine.
 */
int version_order_unsaid(const struct rule *r, char *buf, size_t len);

#endif
