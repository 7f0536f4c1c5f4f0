/*
 * Naming rules: which per-architecture tags belong together and what the
 * combined tag is called. A template such as "{repo}:{version}-{arch}" is
 * compiled once; matching a pushed repository and tag against it yields the
 * group (repo, version) and the architecture token.
 */
#ifndef AM_RULE_H
#define AM_RULE_H

#include <stddef.h>
#include "../server/common.h"
#include "../registry/names.h"
#include "../registry/platform.h"

#define RULE_MAX_REPO NAME_MAX_REPO
#define RULE_MAX_TAG NAME_MAX_TAG


/* A compiled "{repo}:{tag-part}" template. */
struct tmpl {
	char text[256];      /* as written */
	char tag_pre[64];    /* tag part: literal before the first placeholder */
	char tag_mid[64];    /* literal between the two placeholders ("" when one) */
	char tag_suf[64];    /* literal after the last placeholder */
	int arch_first;      /* tag part has {arch} before {version} */
	int has_arch;        /* template mentions {arch} in its tag part */
};

/*
 * Compile a template. Issue-2 scope: the repository part must be exactly
 * "{repo}"; the tag part holds {version} once and {arch} at most once, with a
 * non-empty separator between them.
 */
enum am_err tmpl_compile(const char *text, int need_arch, struct tmpl *out,
    char *err, size_t errlen);

/* Expand a template into a tag (version and arch substituted); -1 if invalid/too long. */
int tmpl_expand_tag(const struct tmpl *t, const char *version, const char *arch,
    char *buf, size_t len);

/* A built-in or rule-defined architecture token and the platform it means. */
struct arch_token {
	char name[32];
	struct platform platform;
};

/* Look up the built-in token table (amd64, arm64, armv7, armv6, ppc64le, s390x, riscv64, 386). */
int arch_builtin(const char *name, struct platform *out);

struct rule {
	char name[128];
	char **repositories;         /* globs on the full repository path */
	size_t n_repositories;
	struct tmpl source;
	struct tmpl target;
	struct arch_token *archs;    /* in publishing order */
	size_t n_archs;
	int format;                  /* enum index_format */
};

struct rule_match {
	char repo[RULE_MAX_REPO];
	char version[RULE_MAX_TAG];
	size_t arch;                 /* index into rule->archs */
};

/* One unit of work: a version of a repository under a rule, on a registry. */
struct group {
	char host[256];              /* registry host as named in the config */
	size_t rule;                 /* index into the configuration's rules */
	char repo[RULE_MAX_REPO];
	char version[RULE_MAX_TAG];
	char rule_name[128];         /* the rule's name: identifies it across reloads */
};

/* Does the repository fall under the rule's repository globs? */
int rule_covers(const struct rule *r, const char *repo);

/*
 * Match a pushed repo:tag against the rule's source template. Returns 1 and
 * fills m on a match, 0 otherwise. A tag matching two architectures is no match.
 */
int rule_match_source(const struct rule *r, const char *repo, const char *tag,
    struct rule_match *m);

/* Is repo:tag one of the rule's targets (archmerge's own output)? */
int rule_match_target(const struct rule *r, const char *repo, const char *tag);

#endif
