/*
 * Template compilation and matching for naming rules, plus the distribution
 * name grammar used to validate everything that ends up in a URL.
 */
#include "rule.h"

#include <fnmatch.h>
#include <string.h>

#include "../registry/names.h"

/* Copy [from, to) into dst; -1 when it does not fit or holds a brace. */
static int
literal(char *dst, size_t len, const char *from, const char *to)
{
	size_t n = (size_t)(to - from), i;

	if (n >= len)
		return -1;
	for (i = 0; i < n; i++)
		if (from[i] == '{' || from[i] == '}' || from[i] == ':' || !name_is_tag_char(from[i]))
			return -1;
	memcpy(dst, from, n);
	dst[n] = '\0';
	return 0;
}

enum am_err
tmpl_compile(const char *text, int need_arch, struct tmpl *out, char *err, size_t errlen)
{
	const char *tag, *v, *a, *first, *second, *end;
	size_t flen, slen;

	memset(out, 0, sizeof(*out));
	if (am_fmt(out->text, sizeof(out->text), "%s", text) != 0)
		return am_fail(err, errlen, AM_EINVAL, "template \"%.40s...\" is too long", text);
	if (strncmp(text, "{repo}:", 7) != 0)
		return am_fail(err, errlen, AM_EINVAL,
		    "template \"%s\" must start with \"{repo}:\"", text);
	tag = text + 7;
	v = strstr(tag, "{version}");
	a = strstr(tag, "{arch}");
	if (v == NULL || strstr(v + 1, "{version}") != NULL)
		return am_fail(err, errlen, AM_EINVAL,
		    "template \"%s\" must contain {version} exactly once in its tag", text);
	if (a != NULL && strstr(a + 1, "{arch}") != NULL)
		return am_fail(err, errlen, AM_EINVAL,
		    "template \"%s\" contains {arch} more than once", text);
	if (need_arch && a == NULL)
		return am_fail(err, errlen, AM_EINVAL,
		    "source template \"%s\" must contain {arch}", text);
	if (!need_arch && a != NULL)
		return am_fail(err, errlen, AM_EINVAL,
		    "target template \"%s\" must not contain {arch}", text);
	out->has_arch = a != NULL;
	out->arch_first = a != NULL && a < v;
	first = out->arch_first ? a : v;
	flen = out->arch_first ? 6 : 9;
	second = a == NULL ? NULL : (out->arch_first ? v : a);
	slen = out->arch_first ? 9 : 6;
	end = tag + strlen(tag);
	if (literal(out->tag_pre, sizeof(out->tag_pre), tag, first) != 0)
		goto bad_literal;
	if (second != NULL) {
		if (literal(out->tag_mid, sizeof(out->tag_mid), first + flen, second) != 0)
			goto bad_literal;
		if (out->tag_mid[0] == '\0')
			return am_fail(err, errlen, AM_EINVAL,
			    "template \"%s\" is ambiguous: {version} and {arch} need a separator", text);
		if (literal(out->tag_suf, sizeof(out->tag_suf), second + slen, end) != 0)
			goto bad_literal;
	} else if (literal(out->tag_suf, sizeof(out->tag_suf), first + flen, end) != 0) {
		goto bad_literal;
	}
	return AM_OK;
bad_literal:
	return am_fail(err, errlen, AM_EINVAL,
	    "template \"%s\": only {repo}, {version}, {arch} and tag characters [A-Za-z0-9_.-] are allowed",
	    text);
}

int
tmpl_expand_tag(const struct tmpl *t, const char *version, const char *arch,
    char *buf, size_t len)
{
	int rc;

	if (!t->has_arch)
		rc = am_fmt(buf, len, "%s%s%s", t->tag_pre, version, t->tag_suf);
	else if (t->arch_first)
		rc = am_fmt(buf, len, "%s%s%s%s%s", t->tag_pre, arch, t->tag_mid, version, t->tag_suf);
	else
		rc = am_fmt(buf, len, "%s%s%s%s%s", t->tag_pre, version, t->tag_mid, arch, t->tag_suf);
	if (rc != 0 || !name_valid_tag(buf))
		return -1;
	return 0;
}

static const struct {
	const char *name, *os, *arch, *variant;
} builtin[] = {
	{ "amd64", "linux", "amd64", "" },
	{ "arm64", "linux", "arm64", "" },
	{ "armv7", "linux", "arm", "v7" },
	{ "armv6", "linux", "arm", "v6" },
	{ "ppc64le", "linux", "ppc64le", "" },
	{ "s390x", "linux", "s390x", "" },
	{ "riscv64", "linux", "riscv64", "" },
	{ "386", "linux", "386", "" },
};

int
arch_builtin(const char *name, struct platform *out)
{
	size_t i;

	for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
		if (strcmp(builtin[i].name, name) == 0) {
			memset(out, 0, sizeof(*out));
			(void)am_fmt(out->os, sizeof(out->os), "%s", builtin[i].os);
			(void)am_fmt(out->arch, sizeof(out->arch), "%s", builtin[i].arch);
			(void)am_fmt(out->variant, sizeof(out->variant), "%s", builtin[i].variant);
			return 1;
		}
	}
	return 0;
}

int
rule_covers(const struct rule *r, const char *repo)
{
	size_t i;

	/* A star crosses slashes on purpose: "library/<star>" covers nested paths too. */
	for (i = 0; i < r->n_repositories; i++)
		if (fnmatch(r->repositories[i], repo, 0) == 0)
			return 1;
	return 0;
}

/* Does s start with pre and end with suf, leaving a non-empty middle? */
static int
strip(const char *s, size_t slen, const char *pre, const char *suf, const char **mid, size_t *midlen)
{
	size_t plen = strlen(pre), sflen = strlen(suf);

	if (slen <= plen + sflen || strncmp(s, pre, plen) != 0 ||
	    strcmp(s + slen - sflen, suf) != 0)
		return 0;
	*mid = s + plen;
	*midlen = slen - plen - sflen;
	return 1;
}

int
rule_match_source(const struct rule *r, const char *repo, const char *tag,
    struct rule_match *m)
{
	const char *mid, *ver;
	size_t midlen, verlen, i, found = 0;
	char expect[RULE_MAX_TAG + 64];

	/* Only names that can exist match: the tag round-trips through the template. */
	if (!name_valid_repo(repo) || !name_valid_tag(tag) || !rule_covers(r, repo))
		return 0;
	if (!strip(tag, strlen(tag), r->source.tag_pre, r->source.tag_suf, &mid, &midlen))
		return 0;
	for (i = 0; i < r->n_archs; i++) {
		const char *arch = r->archs[i].name;

		/* middle = version MID arch, or arch MID version */
		if (am_fmt(expect, sizeof(expect), "%s%s",
		    r->source.arch_first ? arch : r->source.tag_mid,
		    r->source.arch_first ? r->source.tag_mid : arch) != 0)
			continue;
		if (midlen <= strlen(expect))
			continue;
		if (r->source.arch_first) {
			if (strncmp(mid, expect, strlen(expect)) != 0)
				continue;
			ver = mid + strlen(expect);
			verlen = midlen - strlen(expect);
		} else {
			if (strncmp(mid + midlen - strlen(expect), expect, strlen(expect)) != 0)
				continue;
			ver = mid;
			verlen = midlen - strlen(expect);
		}

		if (verlen == 0 || verlen >= sizeof(m->version))
			continue;
		if (found++ > 0)
			return 0;   /* two architectures fit: refuse to guess */
		memcpy(m->version, ver, verlen);
		m->version[verlen] = '\0';
		m->arch = i;
	}
	if (found != 1 || !name_valid_tag(m->version))
		return 0;
	(void)am_fmt(m->repo, sizeof(m->repo), "%s", repo);
	return 1;
}

int
rule_match_target(const struct rule *r, const char *repo, const char *tag)
{
	const char *mid;
	size_t midlen;

	return rule_covers(r, repo) &&
	    strip(tag, strlen(tag), r->target.tag_pre, r->target.tag_suf, &mid, &midlen);
}
