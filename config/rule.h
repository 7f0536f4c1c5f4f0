/*
 * Naming rules: which per-architecture tags belong together and what the
 * combined tag is called. A template such as "{repo}:{version}-{arch}" or
 * "{repo}-{arch}:{version}" is compiled once; matching a pushed repository
 * and tag against it yields the group (repo, version) and the architecture.
 */
#ifndef AM_RULE_H
#define AM_RULE_H

#include <regex.h>
#include <stddef.h>
#include "server/base/common.h"
#include "registry/oci/names.h"
#include "registry/oci/platform.h"
#include "config/group.h"

#define RULE_MAX_REPO NAME_MAX_REPO
#define RULE_MAX_TAG NAME_MAX_TAG
#define RULE_MAX_EXTRA_TAGS 16
#define RULE_MAX_ANNOTATIONS 16
#define RULE_MAX_KEYS 8            /* require_signed_children.public_keys */
#define RULE_MAX_GROUPS 9          /* version_regex groups usable as {1}..{9} */

enum tmpl_var { TV_NONE, TV_REPO, TV_VERSION, TV_ARCH };

/* version_order: how floating extra tags decide which version is higher (config/version.h). */
enum rule_order { RULE_ORDER_AUTO, RULE_ORDER_SEMVER, RULE_ORDER_PUSH };

/*
 * One side of the ':' of a template: literal pre, a placeholder, literal
 * mid, an optional second placeholder, literal suf. Two placeholders always
 * have a non-empty literal between them.
 */
struct tmpl_part {
	char pre[64];
	char mid[64];
	char suf[64];
	enum tmpl_var v1, v2;        /* v2 == TV_NONE: one placeholder, mid unused */
};

/* A compiled "<repository part>:<tag part>" template. */
struct tmpl {
	char text[256];              /* as written */
	struct tmpl_part repo;       /* holds {repo} once, maybe {arch} */
	struct tmpl_part tag;        /* holds {version} once, maybe {arch} */
	int has_arch;                /* {arch} appears (in one of the parts) */
	int arch_in_repo;            /* ... in the repository part */
};

/*
 * Compile a template. The repository part holds {repo} exactly once and the
 * tag part {version} exactly once; a source (need_arch) holds {arch} once in
 * either part, a target none, and a target's repository part is exactly
 * "{repo}". Two placeholders next to each other are ambiguous and refused.
 */
enum am_err tmpl_compile(const char *text, int need_arch, struct tmpl *out,
    char *err, size_t errlen);

/* Expand the tag part (version and arch substituted); -1 if invalid/too long. */
int tmpl_expand_tag(const struct tmpl *t, const char *version, const char *arch,
    char *buf, size_t len);

/* Expand the repository part ({repo} and arch substituted); -1 if invalid/too long. */
int tmpl_expand_repo(const struct tmpl *t, const char *repo, const char *arch,
    char *buf, size_t len);

/* A built-in or rule-defined architecture token and the platform it means. */
struct arch_token {
	char name[32];
	struct platform platform;
	int optional;                /* from `optional`: published when present */
};

/*
 * Look up the built-in token table (amd64, arm64, armv7, armhf, arm64v8,
 * x86_64, amd64v3, ... see README).
 */
int arch_builtin(const char *name, struct platform *out);

struct rule_annotation {
	char key[128];
	char value[256];             /* may hold {version} */
};

struct rule {
	char name[128];
	char **repositories;         /* globs on {repo}, the target repository */
	size_t n_repositories;
	struct tmpl source;
	struct tmpl target;
	struct arch_token *archs;    /* in publishing order: required first, then optional */
	size_t n_archs;
	int format;                  /* enum index_format */

	/* Source layouts and publishing options. All zero = the plain behaviour. */
	int has_version_re;
	regex_t version_re;          /* POSIX ERE; the whole version must match */
	char version_regex[256];
	char version_groups[RULE_MAX_GROUPS][32];   /* optional names of groups 1..n */
	size_t n_version_groups;
	int version_order;           /* enum rule_order; zeroed structs are "auto" */
	int has_copy_tag;            /* tag children copied into the target repository */
	char copy_tag_text[128];
	struct tmpl_part copy_tag;   /* {version} and {arch} */
	char extra_tags[RULE_MAX_EXTRA_TAGS][128];   /* templates, checked at load */
	size_t n_extra_tags;
	int keep_attestations;       /* config default 1; zeroed structs keep none */
	struct rule_annotation annotations[RULE_MAX_ANNOTATIONS];
	size_t n_annotations;
	int created_annotation;      /* org.opencontainers.image.created from the newest child */
	int inherit_annotations;     /* the OCI image facts from the children when they agree */
	int cleanup;                 /* remove per-architecture tags after publishing */
	char sign_key_file[512];     /* sign.key_file: sign published indexes; "" off */
	int require_signed;          /* require_signed_children given */
	char child_keys[RULE_MAX_KEYS][512];   /* its public_keys (PEM files) */
	size_t n_child_keys;
};

struct rule_match {
	char repo[RULE_MAX_REPO];    /* {repo}: the group's (target) repository */
	char version[RULE_MAX_TAG];
	size_t arch;                 /* index into rule->archs */
};

/* Does the repository ({repo}, the target) fall under the rule's globs? */
int rule_covers(const struct rule *r, const char *repo);

/*
 * Match a pushed repo:tag against the rule's source template. Returns 1 and
 * fills m on a match, 0 otherwise. A tag matching two architectures is no
 * match; a version that fails version_regex is no match.
 */
int rule_match_source(const struct rule *r, const char *repo, const char *tag,
    struct rule_match *m);

/* Which of a rule's outputs a tag is; RULE_OUT_NONE (0) when none. */
enum rule_output { RULE_OUT_NONE, RULE_OUT_TARGET, RULE_OUT_COPY, RULE_OUT_EXTRA };

/*
 * Is repo:tag one of the rule's outputs (target tag, copy tag, literal extra
 * tag), and which? Used to explain why such a push is ignored.
 */
enum rule_output rule_match_target(const struct rule *r, const char *repo, const char *tag);

/*
 * For reconcile: map a listed (repo, tag) to its group. Fills g->repo and
 * g->version only (host and rule are the caller's); 1 on a match.
 */
int rule_group_of(const struct rule *r, const char *repo, const char *tag, struct group *g);

/*
 * Where architecture `arch` of group repo keeps its per-architecture tag:
 * repo itself unless the source template has {arch} (or literals) in its
 * repository part ("{repo}-{arch}" gives "library/app-amd64"). -1 if invalid.
 */
int rule_source_repo(const struct rule *r, const char *repo, size_t arch,
    char *buf, size_t len);

/*
 * For reconcile: the distinct repositories whose tags feed group repo, at
 * most max of them, in architecture order. Returns how many were written.
 */
size_t rule_source_repos(const struct rule *r, const char *repo,
    char (*out)[RULE_MAX_REPO], size_t max);

/*
 * Checks that need the whole rule (tokens, version_regex, options):
 * ambiguous sources, duplicate platforms, extra-tag and copy-tag templates.
 * Compiles version_regex when version_regex[0] is set. err holds the first
 * problem. Call after the templates and tokens are filled in.
 */
enum am_err rule_finish(struct rule *r, char *err, size_t errlen);

/* Free what rule_finish allocated (the compiled regex); the rest is the owner's. */
void rule_clear(struct rule *r);

/* Does version satisfy version_regex (always 1 without one)? */
int rule_version_ok(const struct rule *r, const char *version);

/*
 * Full match of version_regex (always 1 without one); pm gets
 * RULE_MAX_GROUPS + 1 entries (all -1 without a regex).
 */
int rule_version_match(const struct rule *r, const char *version, regmatch_t *pm);

/*
 * Is tag of repository repo the target tag of one of the rule's versions
 * (and not also shaped like a per-architecture or copy tag)? 1 and the
 * version in buf, else 0. Reading a tag list, this tells the published
 * versions.
 */
int rule_target_version(const struct rule *r, const char *repo, const char *tag, char *buf, size_t len);

/* Expand extra tag i for version; -1 when it yields no valid tag (then skipped). */
int rule_extra_tag(const struct rule *r, size_t i, const char *version, char *buf, size_t len);

/* The copy tag of architecture arch for version; -1 without copy_tag or when invalid. */
int rule_copy_tag(const struct rule *r, const char *version, size_t arch, char *buf, size_t len);

#endif
