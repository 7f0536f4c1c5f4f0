/*
 * From a rule to the plan of one assembly run (registry/assemble/plan.h):
 * every template expanded and every check that needs only the rule, the
 * repository and the version done here, once.
 */
#ifndef AM_CONFIG_PLAN_H
#define AM_CONFIG_PLAN_H

#include "config/rule.h"
#include "registry/assemble/plan.h"

/*
 * Fill *p (plan_clear frees it) for group (repo, version) of rule r. A group
 * that can never be published (version refused by version_regex, a target
 * or source tag that would be invalid, a target shaped like one of the
 * rule's per-architecture tags) gets p->refusal set.
 */
void rule_plan(const struct rule *r, const char *repo, const char *version, struct plan *p);

#endif
