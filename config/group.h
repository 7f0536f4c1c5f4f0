/*
 * A group: one unit of work, a version of a repository under a rule, on a
 * registry. Its identity is (host, rule name, repository, version): the rule
 * by name, because rule indexes change with every reload that reorders them.
 * One equality, one hash and one name formatter for the queue, the journal,
 * reconcile and the logs.
 */
#ifndef AM_CONFIG_GROUP_H
#define AM_CONFIG_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "registry/oci/names.h"

/* "host/repo:version" of a group, with its NUL. */
#define GROUP_NAME_MAX (256 + NAME_MAX_REPO + NAME_MAX_TAG + 4)

struct group {
	char host[256];              /* registry host as named in the config */
	char repo[NAME_MAX_REPO];
	char version[NAME_MAX_TAG];
	char rule_name[128];         /* the rule, by name: indexes change with reloads */
};

/* Same group: host, rule name, repository and version all equal (exact bytes). */
int group_equal(const struct group *a, const struct group *b);

/* FNV-1a over the four identity fields (separated), for hash maps; equal groups hash equal. */
uint32_t group_hash(const struct group *g);

/* "host/repo:version" into buf (GROUP_NAME_MAX is enough); returns buf. */
const char *group_name(const struct group *g, char *buf, size_t len);

#endif
