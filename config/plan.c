#include "config/plan.h"
#include "config/version.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

_Static_assert(RULE_MAX_EXTRA_TAGS <= PLAN_MAX_EXTRA_TAGS, "plan holds every extra tag");
_Static_assert(RULE_MAX_ANNOTATIONS <= PLAN_MAX_ANNOTATIONS, "plan holds every annotation");

/* Would repo:tag overwrite one of the rule's own per-architecture tags? */
static int
source_shaped(const struct rule *r, const char *repo, const char *tag)
{
	struct rule_match m;

	return rule_match_source(r, repo, tag, &m);
}

/* Replace every {version} in t. */
static void
expand_version(const char *t, const char *version, char *buf, size_t len)
{
	const char *s = t, *hit;
	size_t off = 0;

	buf[0] = '\0';
	while ((hit = strstr(s, "{version}")) != NULL) {
		(void)am_fmt(buf + off, len - off, "%.*s%s", (int)(hit - s), s, version);
		off = strlen(buf);
		s = hit + 9;
	}
	(void)am_fmt(buf + off, len - off, "%s", s);
}

/* The first reason wins. */
static void refuse(struct plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
refuse(struct plan *p, const char *fmt, ...)
{
	va_list ap;

	if (p->refusal[0] != '\0')
		return;
	va_start(ap, fmt);
	(void)vsnprintf(p->refusal, sizeof(p->refusal), fmt, ap);
	va_end(ap);
}

static void
plan_target(const struct rule *r, struct plan *p)
{
	if (!rule_version_ok(r, p->version)) {
		refuse(p, "version %s %s", p->version, "does not match version_regex");
	} else if (tmpl_expand_tag(&r->target, p->version, NULL, p->target_tag,
	    sizeof(p->target_tag)) != 0) {
		p->target_tag[0] = '\0';
		refuse(p, "version %s %s", p->version, "gives an invalid target tag");
	} else if (source_shaped(r, p->repo, p->target_tag)) {
		char target[NAME_MAX_REPO + NAME_MAX_TAG + 2];
		(void)am_fmt(target, sizeof(target), "%s:%s", p->repo, p->target_tag);
		refuse(p, "target %s has the form of a per-architecture tag of this rule: publishing would "
		    "overwrite an image (constrain versions with version_regex)", target);
	}
}

static void
plan_archs(const struct rule *r, struct plan *p)
{
	size_t i;

	p->archs = xcalloc(r->n_archs ? r->n_archs : 1, sizeof(*p->archs));
	p->n_archs = r->n_archs;
	for (i = 0; i < r->n_archs; i++) {
		struct plan_arch *a = &p->archs[i];
		(void)am_fmt(a->name, sizeof(a->name), "%s", r->archs[i].name);
		a->platform = r->archs[i].platform;
		a->optional = r->archs[i].optional;
		if (rule_source_repo(r, p->repo, i, a->src_repo, sizeof(a->src_repo)) != 0 ||
		    tmpl_expand_tag(&r->source, p->version, a->name, a->src_tag, sizeof(a->src_tag)) != 0)
			refuse(p, "source repository or tag for %s is invalid", a->name);
		if (rule_copy_tag(r, p->version, i, a->copy_tag, sizeof(a->copy_tag)) != 0)
			a->copy_tag[0] = '\0';
	}
}

static void
plan_extra_tags(const struct rule *r, struct plan *p)
{
	size_t i;

	for (i = 0; i < r->n_extra_tags; i++) {
		struct plan_tag *t = &p->extra[p->n_extra++];
		if (rule_extra_tag(r, i, p->version, t->tag, sizeof(t->tag)) != 0) {
			t->tag[0] = '\0';
			(void)am_fmt(t->note, sizeof(t->note), "extra tag %s skipped: no valid tag for this version",
			    r->extra_tags[i]);
		} else if (p->target_tag[0] != '\0' && strcmp(t->tag, p->target_tag) == 0) {
			t->tag[0] = '\0';   /* the target itself: written anyway */
		} else if (source_shaped(r, p->repo, t->tag)) {
			(void)am_fmt(t->note, sizeof(t->note),
			    "extra tag %s skipped: it has the form of a per-architecture tag", t->tag);
			t->tag[0] = '\0';
		}
	}
}

static int
order_target_version(const void *rule, const char *repo, const char *tag, char *buf, size_t len)
{
	const struct rule *r = rule;

	return rule_target_version(r, repo, tag, buf, len) && version_orderable(r, buf);
}

static int
order_extra_tag(const void *rule, size_t i, const char *version, char *buf, size_t len)
{
	return rule_extra_tag(rule, i, version, buf, len);
}

static int
order_higher(const void *rule, const char *a, const char *b)
{
	int c;

	return version_cmp(rule, a, b, &c) == 0 && c > 0;
}

/*
 * Floating extra tags (no {version}): marked for the writes, with the
 * rule's order behind p->order. A version the order cannot place moves
 * them as the last one pushed under "auto" (no order said), never under
 * "semver".
 */
static void
plan_floating(const struct rule *r, struct plan *p)
{
	size_t i;
	int any = 0;

	if (version_by(r) == VERSION_BY_PUSH)
		return;
	if (!version_orderable(r, p->version) && r->version_order == RULE_ORDER_AUTO)
		return;
	for (i = 0; i < p->n_extra; i++) {
		struct plan_tag *t = &p->extra[i];
		if (t->tag[0] == '\0' || !version_tag_floats(r, i))
			continue;
		if (!version_orderable(r, p->version)) {
			(void)am_fmt(t->note, sizeof(t->note), "extra tag %s left alone: version %s is not a "
			    "semantic version (version_order = \"semver\")", t->tag, p->version);
			t->tag[0] = '\0';
			continue;
		}
		t->floating = 1;
		any = 1;
	}
	if (any) {
		p->order.rule = r;
		p->order.target_version = order_target_version;
		p->order.extra_tag = order_extra_tag;
		p->order.higher = order_higher;
	}
}

void
rule_plan(const struct rule *r, const char *repo, const char *version, struct plan *p)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	(void)am_fmt(p->repo, sizeof(p->repo), "%s", repo);
	(void)am_fmt(p->version, sizeof(p->version), "%s", version);
	p->format = (enum index_format)r->format;
	p->keep_attestations = r->keep_attestations;
	p->created_annotation = r->created_annotation;
	p->inherit_annotations = r->inherit_annotations;
	p->cleanup = r->cleanup;
	p->sign_key_file = r->sign_key_file;
	p->require_signed = r->require_signed;
	p->child_keys = (const char (*)[512])r->child_keys;
	p->n_child_keys = r->n_child_keys;
	plan_target(r, p);
	plan_archs(r, p);
	plan_extra_tags(r, p);
	plan_floating(r, p);
	for (i = 0; i < r->n_annotations; i++) {
		struct plan_annotation *a = &p->annotations[p->n_annotations++];
		(void)am_fmt(a->key, sizeof(a->key), "%s", r->annotations[i].key);
		expand_version(r->annotations[i].value, version, a->value, sizeof(a->value));
	}
}
