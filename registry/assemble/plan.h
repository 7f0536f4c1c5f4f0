/*
 * What one assembly run reads and writes, fixed once the rule, the
 * repository and the version are known: the per-architecture sources, the
 * target tag, extra and copy tags, annotations and publishing options. The
 * configuration layer computes it (config/rule.c: rule_plan); the assembly
 * only consumes it, so registry/ never needs to know what a rule is.
 */
#ifndef AM_PLAN_H
#define AM_PLAN_H

#include <stddef.h>
#include "registry/oci/index.h"
#include "registry/oci/names.h"
#include "registry/oci/platform.h"

#define PLAN_MAX_EXTRA_TAGS 16
#define PLAN_MAX_ANNOTATIONS 16

/* One architecture: where its image is and what it must be. */
struct plan_arch {
	char name[32];                   /* the token, for messages */
	struct platform platform;        /* what the image config must say */
	int optional;                    /* published without it when absent */
	char src_repo[NAME_MAX_REPO];
	char src_tag[NAME_MAX_TAG];
	char copy_tag[NAME_MAX_TAG];     /* tag of the child copied into the target repository; "" none */
};

/* An extra tag: written when tag[0] is set, else skipped, saying why in note (may be ""). */
struct plan_tag {
	char tag[NAME_MAX_TAG];
	char note[192];
	int floating;                    /* several versions write it: only the highest published may (order) */
};

/*
 * What the writes need to know of the rule's versions to keep a floating
 * tag from moving back: the configuration's knowledge behind three verbs
 * (config/plan.c), so that reading one tag list of the target repository
 * tells which higher versions are published. rule NULL: no order, the last
 * write wins.
 */
struct plan_order {
	const void *rule;                /* borrowed: the configuration outlives the run */
	/* 1 and the version in buf when tag of repo is a published target of the rule, else 0. */
	int (*target_version)(const void *rule, const char *repo, const char *tag, char *buf, size_t len);
	/* Extra tag i expanded for version: 0, or -1 when that version has none. */
	int (*extra_tag)(const void *rule, size_t i, const char *version, char *buf, size_t len);
	/* 1 when version a is higher than b. */
	int (*higher)(const void *rule, const char *a, const char *b);
};

struct plan_annotation {
	char key[128];
	char value[512];                 /* {version} already expanded */
};

struct plan {
	char repo[NAME_MAX_REPO];        /* the target repository */
	char version[NAME_MAX_TAG];
	char target_tag[NAME_MAX_TAG];
	char refusal[512];               /* set: nothing can be published for this group, why */
	struct plan_arch *archs;         /* owned; required first, then optional */
	size_t n_archs;
	struct plan_tag extra[PLAN_MAX_EXTRA_TAGS];   /* extra[i] is the rule's extra tag i */
	size_t n_extra;
	struct plan_order order;         /* for the floating extra tags */
	struct plan_annotation annotations[PLAN_MAX_ANNOTATIONS];
	size_t n_annotations;
	enum index_format format;
	int keep_attestations;           /* buildx attestations stay beside their images */
	int created_annotation;          /* org.opencontainers.image.created from the newest child */
	int inherit_annotations;         /* the OCI image facts (oci_fact) from the children when they agree */
	int cleanup;                     /* remove per-architecture tags after publishing */
	int recheck_sources;             /* other writers (replicas) publish the same target: HEAD the sources after the PUT */
	/* Signatures (borrowed from the configuration, which outlives the run). */
	const char *sign_key_file;       /* sign the current index with this key; NULL or "" off */
	int require_signed;              /* every child signed by one of child_keys */
	const char (*child_keys)[512];   /* PEM public key files */
	size_t n_child_keys;
};

/* Free what a plan owns (accepts a zeroed plan). */
void plan_clear(struct plan *p);

#endif
