/*
 * Template compilation and matching for naming rules: where per-architecture
 * images live ({arch} in the tag or in the repository name), which versions
 * count (version_regex), and which tags archmerge itself writes (target,
 * copy and extra tags). Everything that ends up in a URL is validated here.
 */
#include "config/rule.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "registry/oci/names.h"

/* ---- templates ---- */

static int
is_repo_literal_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
	    c == '-' || c == '/';
}

static enum tmpl_var
var_of(const char *name, size_t n)
{
	if (n == 4 && strncmp(name, "repo", 4) == 0)
		return TV_REPO;
	if (n == 7 && strncmp(name, "version", 7) == 0)
		return TV_VERSION;
	if (n == 4 && strncmp(name, "arch", 4) == 0)
		return TV_ARCH;
	return TV_NONE;
}

static const char *
var_name(enum tmpl_var v)
{
	return v == TV_REPO ? "{repo}" : v == TV_VERSION ? "{version}" : v == TV_ARCH ? "{arch}" : "";
}

/*
 * Split [from, to) into literals and at most two placeholders. is_repo picks
 * the literal alphabet (repository names or tags).
 */
static enum am_err
part_compile(const char *text, const char *from, const char *to, int is_repo,
    struct tmpl_part *p, char *err, size_t errlen)
{
	char *lits[3] = { p->pre, p->mid, p->suf };
	size_t nvars = 0, litlen = 0;
	const char *s, *close;
	enum tmpl_var v;

	memset(p, 0, sizeof(*p));
	for (s = from; s < to; s++) {
		if (*s == '{') {
			close = memchr(s, '}', (size_t)(to - s));
			if (close == NULL)
				return am_fail(err, errlen, AM_EINVAL, "template \"%s\": unclosed \"{\"", text);
			v = var_of(s + 1, (size_t)(close - s - 1));
			if (v == TV_NONE)
				return am_fail(err, errlen, AM_EINVAL,
				    "template \"%s\": unknown placeholder \"%.*s\" (only {repo}, {version} and {arch})",
				    text, (int)(close - s + 1), s);
			if (nvars == 2)
				return am_fail(err, errlen, AM_EINVAL,
				    "template \"%s\": at most two placeholders on each side of \":\"", text);
			if (nvars == 1 && litlen == 0)
				return am_fail(err, errlen, AM_EINVAL,
				    "template \"%s\" is ambiguous: %s and %s need a separator between them",
				    text, var_name(p->v1), var_name(v));
			if (nvars == 0)
				p->v1 = v;
			else
				p->v2 = v;
			nvars++;
			litlen = 0;
			s = close;
			continue;
		}
		if (*s == '}' || !(is_repo ? is_repo_literal_char(*s) : name_is_tag_char(*s)))
			return am_fail(err, errlen, AM_EINVAL,
			    "template \"%s\": only placeholders and %s are allowed %s",
			    text, is_repo ? "repository name characters [a-z0-9._/-]" :
			    "tag characters [A-Za-z0-9_.-]", is_repo ? "before \":\"" : "after \":\"");
		if (litlen + 1 >= sizeof(p->pre))
			return am_fail(err, errlen, AM_EINVAL, "template \"%.60s...\": literal text too long", text);
		lits[nvars][litlen++] = *s;
		lits[nvars][litlen] = '\0';
	}
	/* One placeholder: what followed it is the suffix, not a middle. */
	if (nvars == 1) {
		memcpy(p->suf, p->mid, sizeof(p->suf));
		p->mid[0] = '\0';
	}
	return AM_OK;
}

static int
part_count(const struct tmpl_part *p, enum tmpl_var v)
{
	return (p->v1 == v) + (p->v2 == v);
}

enum am_err
tmpl_compile(const char *text, int need_arch, struct tmpl *out, char *err, size_t errlen)
{
	const char *colon;
	enum am_err rc;
	int arch_repo, arch_tag;

	memset(out, 0, sizeof(*out));
	if (am_fmt(out->text, sizeof(out->text), "%s", text) != 0)
		return am_fail(err, errlen, AM_EINVAL, "template \"%.40s...\" is too long", text);
	colon = strchr(text, ':');
	if (colon == NULL)
		return am_fail(err, errlen, AM_EINVAL,
		    "template \"%s\" needs a repository part and a tag part, e.g. \"{repo}:{version}-{arch}\"",
		    text);
	if ((rc = part_compile(text, text, colon, 1, &out->repo, err, errlen)) != AM_OK ||
	    (rc = part_compile(text, colon + 1, text + strlen(text), 0, &out->tag, err, errlen)) != AM_OK)
		return rc;
	if (part_count(&out->repo, TV_REPO) != 1 || part_count(&out->repo, TV_VERSION) != 0)
		return am_fail(err, errlen, AM_EINVAL,
		    "template \"%s\" must contain {repo} exactly once before \":\" (and no {version} there)",
		    text);
	if (part_count(&out->tag, TV_VERSION) != 1 || part_count(&out->tag, TV_REPO) != 0)
		return am_fail(err, errlen, AM_EINVAL,
		    "template \"%s\" must contain {version} exactly once in its tag (and no {repo} there)",
		    text);
	arch_repo = part_count(&out->repo, TV_ARCH);
	arch_tag = part_count(&out->tag, TV_ARCH);
	if (arch_repo + arch_tag > 1)
		return am_fail(err, errlen, AM_EINVAL, "template \"%s\" contains {arch} more than once", text);
	if (need_arch && arch_repo + arch_tag == 0)
		return am_fail(err, errlen, AM_EINVAL, "source template \"%s\" must contain {arch}", text);
	if (!need_arch && arch_repo + arch_tag != 0)
		return am_fail(err, errlen, AM_EINVAL, "target template \"%s\" must not contain {arch}", text);
	if (!need_arch && (out->repo.pre[0] != '\0' || out->repo.suf[0] != '\0'))
		return am_fail(err, errlen, AM_EINVAL,
		    "target template \"%s\" must start with \"{repo}:\" (the index is published in {repo})",
		    text);
	out->has_arch = arch_repo + arch_tag == 1;
	out->arch_in_repo = arch_repo == 1;
	return AM_OK;
}

/* Expand a part: value for its non-arch placeholder, arch for {arch}. */
static int
part_expand(const struct tmpl_part *p, const char *value, const char *arch, char *buf, size_t len)
{
	const char *a = p->v1 == TV_ARCH ? arch : value;
	const char *b = p->v2 == TV_ARCH ? arch : value;

	if (a == NULL || (p->v2 != TV_NONE && b == NULL))
		return -1;
	if (p->v2 == TV_NONE)
		return am_fmt(buf, len, "%s%s%s", p->pre, a, p->suf);
	return am_fmt(buf, len, "%s%s%s%s%s", p->pre, a, p->mid, b, p->suf);
}

/*
 * Does s match part p with {arch} = arch (NULL when p has no {arch})? The
 * value of the remaining placeholder goes to out; it must not be empty.
 */
static int
part_match(const struct tmpl_part *p, const char *s, const char *arch, char *out, size_t outlen)
{
	char pre[RULE_MAX_TAG + 160], suf[RULE_MAX_TAG + 160];
	size_t slen = strlen(s), plen, sflen, n;

	if (p->v1 == TV_ARCH) {
		if (arch == NULL || am_fmt(pre, sizeof(pre), "%s%s%s", p->pre, arch, p->mid) != 0)
			return 0;
		(void)am_fmt(suf, sizeof(suf), "%s", p->suf);
	} else if (p->v2 == TV_ARCH) {
		if (arch == NULL || am_fmt(suf, sizeof(suf), "%s%s%s", p->mid, arch, p->suf) != 0)
			return 0;
		(void)am_fmt(pre, sizeof(pre), "%s", p->pre);
	} else {
		(void)am_fmt(pre, sizeof(pre), "%s", p->pre);
		(void)am_fmt(suf, sizeof(suf), "%s", p->suf);
	}
	plen = strlen(pre);
	sflen = strlen(suf);
	if (slen <= plen + sflen || strncmp(s, pre, plen) != 0 || strcmp(s + slen - sflen, suf) != 0)
		return 0;
	n = slen - plen - sflen;
	if (n >= outlen)
		return 0;
	memcpy(out, s + plen, n);
	out[n] = '\0';
	return 1;
}

int
tmpl_expand_tag(const struct tmpl *t, const char *version, const char *arch,
    char *buf, size_t len)
{
	if (part_expand(&t->tag, version, arch, buf, len) != 0 || !name_valid_tag(buf))
		return -1;
	return 0;
}

int
tmpl_expand_repo(const struct tmpl *t, const char *repo, const char *arch,
    char *buf, size_t len)
{
	if (part_expand(&t->repo, repo, arch, buf, len) != 0 || !name_valid_repo(buf))
		return -1;
	return 0;
}

/* ---- architecture tokens ---- */

/* Common names in the wild; the platform published always comes from the image config. */
static const struct {
	const char *name, *os, *arch, *variant, *os_version;
} builtin[] = {
	{ "amd64", "linux", "amd64", "", NULL },
	{ "x86_64", "linux", "amd64", "", NULL },
	{ "amd64v2", "linux", "amd64", "v2", NULL },
	{ "amd64v3", "linux", "amd64", "v3", NULL },
	{ "amd64v4", "linux", "amd64", "v4", NULL },
	{ "arm64", "linux", "arm64", "", NULL },
	{ "arm64v8", "linux", "arm64", "", NULL },
	{ "aarch64", "linux", "arm64", "", NULL },
	{ "armv7", "linux", "arm", "v7", NULL },
	{ "arm32v7", "linux", "arm", "v7", NULL },
	{ "armhf", "linux", "arm", "v7", NULL },
	{ "armv6", "linux", "arm", "v6", NULL },
	{ "arm32v6", "linux", "arm", "v6", NULL },
	{ "armel", "linux", "arm", "v6", NULL },
	{ "armv5", "linux", "arm", "v5", NULL },
	{ "arm32v5", "linux", "arm", "v5", NULL },
	{ "ppc64le", "linux", "ppc64le", "", NULL },
	{ "s390x", "linux", "s390x", "", NULL },
	{ "riscv64", "linux", "riscv64", "", NULL },
	{ "mips64le", "linux", "mips64le", "", NULL },
	{ "386", "linux", "386", "", NULL },
	{ "i386", "linux", "386", "", NULL },
	/* Windows Server releases side by side: same windows/amd64, told apart by os.version. */
	{ "ltsc2019", "windows", "amd64", "", "10.0.17763" },
	{ "ltsc2022", "windows", "amd64", "", "10.0.20348" },
	{ "ltsc2025", "windows", "amd64", "", "10.0.26100" },
	{ "windows-amd64", "windows", "amd64", "", "" },
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
			if (builtin[i].os_version != NULL)
				(void)am_fmt(out->os_version, sizeof(out->os_version), "%s",
				    builtin[i].os_version);
			return 1;
		}
	}
	return 0;
}

/* ---- matching ---- */

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

/* Full match of version_regex; pm (may be NULL) gets RULE_MAX_GROUPS + 1 entries. */
static int
version_match(const struct rule *r, const char *version, regmatch_t *pm)
{
	regmatch_t local[RULE_MAX_GROUPS + 1];
	regmatch_t *m = pm != NULL ? pm : local;

	if (!r->has_version_re) {
		if (pm != NULL)
			memset(pm, -1, sizeof(*pm) * (RULE_MAX_GROUPS + 1));
		return 1;
	}
	if (regexec(&r->version_re, version, RULE_MAX_GROUPS + 1, m, 0) != 0)
		return 0;
	/* The whole version, anchored or not in the pattern. */
	return m[0].rm_so == 0 && (size_t)m[0].rm_eo == strlen(version);
}

int
rule_version_ok(const struct rule *r, const char *version)
{
	return version_match(r, version, NULL);
}

int
rule_version_match(const struct rule *r, const char *version, regmatch_t *pm)
{
	return version_match(r, version, pm);
}

int
rule_match_source(const struct rule *r, const char *repo, const char *tag,
    struct rule_match *m)
{
	char grp[RULE_MAX_REPO], ver[RULE_MAX_TAG];
	size_t i, found = 0;

	/* Only names that can exist match (the fuzzer found an over-long tag matching). */
	if (!name_valid_repo(repo) || !name_valid_tag(tag))
		return 0;
	for (i = 0; i < r->n_archs; i++) {
		const char *arch = r->archs[i].name;

		if (!part_match(&r->source.repo, repo, r->source.arch_in_repo ? arch : NULL,
		    grp, sizeof(grp)) ||
		    !part_match(&r->source.tag, tag, r->source.arch_in_repo ? NULL : arch,
		    ver, sizeof(ver)))
			continue;
		if (!name_valid_repo(grp) || !name_valid_tag(ver) || !rule_covers(r, grp) ||
		    !version_match(r, ver, NULL))
			continue;
		if (found++ > 0)
			return 0;   /* two architectures fit: refuse to guess */
		(void)am_fmt(m->repo, sizeof(m->repo), "%s", grp);
		(void)am_fmt(m->version, sizeof(m->version), "%s", ver);
		m->arch = i;
	}
	return found == 1;
}

enum rule_output
rule_match_target(const struct rule *r, const char *repo, const char *tag)
{
	char ver[RULE_MAX_TAG];
	size_t i;

	if (!rule_covers(r, repo))
		return RULE_OUT_NONE;
	if (part_match(&r->target.tag, tag, NULL, ver, sizeof(ver)) && version_match(r, ver, NULL))
		return RULE_OUT_TARGET;
	for (i = 0; r->has_copy_tag && i < r->n_archs; i++)
		if (part_match(&r->copy_tag, tag, r->archs[i].name, ver, sizeof(ver)) &&
		    version_match(r, ver, NULL))
			return RULE_OUT_COPY;
	for (i = 0; i < r->n_extra_tags; i++)
		if (strchr(r->extra_tags[i], '{') == NULL && strcmp(r->extra_tags[i], tag) == 0)
			return RULE_OUT_EXTRA;
	return RULE_OUT_NONE;
}

int
rule_target_version(const struct rule *r, const char *repo, const char *tag, char *buf, size_t len)
{
	char ver[RULE_MAX_TAG], back[RULE_MAX_TAG];
	struct rule_match m;
	size_t i;

	if (!name_valid_tag(tag) || !part_match(&r->target.tag, tag, NULL, ver, sizeof(ver)) ||
	    !name_valid_tag(ver) || !version_match(r, ver, NULL))
		return 0;
	/* The expansion must give the tag back, and no other output may have its shape. */
	if (tmpl_expand_tag(&r->target, ver, NULL, back, sizeof(back)) != 0 || strcmp(back, tag) != 0 ||
	    rule_match_source(r, repo, tag, &m))
		return 0;
	for (i = 0; r->has_copy_tag && i < r->n_archs; i++)
		if (part_match(&r->copy_tag, tag, r->archs[i].name, back, sizeof(back)))
			return 0;
	return am_fmt(buf, len, "%s", ver) == 0;
}

int
rule_group_of(const struct rule *r, const char *repo, const char *tag, struct group *g)
{
	struct rule_match m;

	if (!rule_match_source(r, repo, tag, &m))
		return 0;
	(void)am_fmt(g->repo, sizeof(g->repo), "%s", m.repo);
	(void)am_fmt(g->version, sizeof(g->version), "%s", m.version);
	return 1;
}

int
rule_source_repo(const struct rule *r, const char *repo, size_t arch, char *buf, size_t len)
{
	if (arch >= r->n_archs)
		return -1;
	return tmpl_expand_repo(&r->source, repo, r->archs[arch].name, buf, len);
}

size_t
rule_source_repos(const struct rule *r, const char *repo, char (*out)[RULE_MAX_REPO], size_t max)
{
	char name[RULE_MAX_REPO];
	size_t i, j, n = 0;

	for (i = 0; i < r->n_archs && n < max; i++) {
		if (rule_source_repo(r, repo, i, name, sizeof(name)) != 0)
			continue;
		for (j = 0; j < n && strcmp(out[j], name) != 0; j++)
			;
		if (j == n)
			(void)am_fmt(out[n++], RULE_MAX_REPO, "%s", name);
	}
	return n;
}

/* ---- whole-rule checks ---- */

/*
 * Two tokens a, b are confusable around separator sep when one tag reads
 * both ways: with {arch} after its neighbour, sep+b is a proper suffix of
 * sep+a ("_64" of "_x86_64"); with {arch} before it, b+sep a proper prefix
 * of a+sep. *extra gets the text the neighbour's value would absorb.
 */
static int
confusable(const char *a, const char *b, const char *sep, int after, char *extra, size_t elen)
{
	char x[128], y[128];
	size_t xl, yl;

	if ((after ? am_fmt(x, sizeof(x), "%s%s", sep, a) : am_fmt(x, sizeof(x), "%s%s", a, sep)) != 0 ||
	    (after ? am_fmt(y, sizeof(y), "%s%s", sep, b) : am_fmt(y, sizeof(y), "%s%s", b, sep)) != 0)
		return 0;
	xl = strlen(x);
	yl = strlen(y);
	if (yl >= xl)
		return 0;
	if (after ? strcmp(x + xl - yl, y) != 0 : strncmp(x, y, yl) != 0)
		return 0;
	(void)am_fmt(extra, elen, "%.*s", (int)(xl - yl), after ? x : x + yl);
	return 1;
}

static enum am_err
check_ambiguity(const struct rule *r, char *err, size_t errlen)
{
	const struct tmpl_part *p = r->source.arch_in_repo ? &r->source.repo : &r->source.tag;
	int after = p->v2 == TV_ARCH;
	const char *sample = r->source.arch_in_repo ? "library/app" : "1.0";
	char extra[128], one[RULE_MAX_REPO], other[RULE_MAX_REPO], alt[RULE_MAX_REPO];
	size_t i, j;

	if (p->v2 == TV_NONE)
		return AM_OK;   /* {arch} alone in its part cannot happen; nothing to confuse */
	for (i = 0; i < r->n_archs; i++) {
		for (j = 0; j < r->n_archs; j++) {
			if (i == j || !confusable(r->archs[i].name, r->archs[j].name, p->mid, after,
			    extra, sizeof(extra)))
				continue;
			if (after)
				(void)am_fmt(alt, sizeof(alt), "%s%s", sample, extra);
			else
				(void)am_fmt(alt, sizeof(alt), "%s%s", extra, sample);
			(void)part_expand(p, sample, r->archs[i].name, one, sizeof(one));
			(void)part_expand(p, alt, r->archs[j].name, other, sizeof(other));
			return am_fail(err, errlen, AM_EINVAL,
			    "source \"%s\" is ambiguous: \"%s\" reads as %s \"%s\" with architecture %s and as "
			    "%s \"%s\" with architecture %s; rename a token (platforms = { ... }) or use "
			    "another separator than \"%s\"", r->source.text, one,
			    r->source.arch_in_repo ? "repo" : "version", sample, r->archs[i].name,
			    r->source.arch_in_repo ? "repo" : "version", alt, r->archs[j].name, p->mid);
		}
	}
	return AM_OK;
}

static int
group_index(const struct rule *r, const char *name, size_t n)
{
	size_t i;

	if (n == 1 && name[0] >= '1' && name[0] <= '9')
		return name[0] - '0';
	for (i = 0; i < r->n_version_groups; i++)
		if (strlen(r->version_groups[i]) == n && strncmp(r->version_groups[i], name, n) == 0)
			return (int)i + 1;
	return -1;
}

/*
 * Walk an extra-tag template. With pm == NULL only checks it; otherwise
 * expands it for version into buf. Returns 0, or -1 (err says why when given).
 */
static int
extra_walk(const struct rule *r, const char *t, const char *version, const regmatch_t *pm,
    char *buf, size_t len, char *err, size_t errlen)
{
	size_t off = 0, n;
	const char *s, *close;
	int g;

	if (buf != NULL && len > 0)
		buf[0] = '\0';
	if (t[0] == '\0' || t[0] == '.' || t[0] == '-') {
		am_fail(err, errlen, AM_EINVAL, "extra tag \"%s\" must not be empty or start with '.' or '-'", t);
		return -1;
	}
	for (s = t; *s != '\0'; s++) {
		const char *piece = s;
		size_t plen = 1;
		if (*s == '{') {
			if ((close = strchr(s, '}')) == NULL) {
				am_fail(err, errlen, AM_EINVAL, "extra tag \"%s\": unclosed \"{\"", t);
				return -1;
			}
			n = (size_t)(close - s - 1);
			if (n == 7 && strncmp(s + 1, "version", 7) == 0) {
				piece = version;
				plen = version != NULL ? strlen(version) : 0;
			} else if ((g = group_index(r, s + 1, n)) > 0) {
				if (!r->has_version_re || (size_t)g > r->version_re.re_nsub) {
					am_fail(err, errlen, AM_EINVAL,
					    "extra tag \"%s\": {%.*s} needs version_regex with at least %d group%s",
					    t, (int)n, s + 1, g, g == 1 ? "" : "s");
					return -1;
				}
				if (pm != NULL && pm[g].rm_so < 0)
					return -1;   /* optional group absent in this version */
				piece = pm != NULL ? version + pm[g].rm_so : "";
				plen = pm != NULL ? (size_t)(pm[g].rm_eo - pm[g].rm_so) : 0;
			} else {
				am_fail(err, errlen, AM_EINVAL,
				    "extra tag \"%s\": unknown placeholder {%.*s} (use {version}, {1}..{9} or a "
				    "name from version_groups)", t, (int)n, s + 1);
				return -1;
			}
			s = close;
		} else if (!name_is_tag_char(*s)) {
			am_fail(err, errlen, AM_EINVAL,
			    "extra tag \"%s\": only tag characters [A-Za-z0-9_.-] and placeholders are allowed", t);
			return -1;
		}
		if (buf != NULL) {
			if (off + plen >= len)
				return -1;
			memcpy(buf + off, piece, plen);
			off += plen;
			buf[off] = '\0';
		}
	}
	return buf == NULL || name_valid_tag(buf) ? 0 : -1;
}

int
rule_extra_tag(const struct rule *r, size_t i, const char *version, char *buf, size_t len)
{
	regmatch_t pm[RULE_MAX_GROUPS + 1];

	if (i >= r->n_extra_tags || !version_match(r, version, pm))
		return -1;
	return extra_walk(r, r->extra_tags[i], version, pm, buf, len, NULL, 0);
}

int
rule_copy_tag(const struct rule *r, const char *version, size_t arch, char *buf, size_t len)
{
	if (!r->has_copy_tag || arch >= r->n_archs ||
	    part_expand(&r->copy_tag, version, r->archs[arch].name, buf, len) != 0 ||
	    !name_valid_tag(buf))
		return -1;
	return 0;
}

static enum am_err
check_copy_tag(struct rule *r, char *err, size_t errlen)
{
	char text[160];
	enum am_err rc;

	if (r->copy_tag_text[0] == '\0')
		return AM_OK;
	if (r->source.repo.v2 == TV_NONE && r->source.repo.pre[0] == '\0' && r->source.repo.suf[0] == '\0')
		return am_fail(err, errlen, AM_EINVAL,
		    "copy_tag only applies when the per-architecture images live in another repository "
		    "(an {arch} in the source's repository part, e.g. \"{repo}-{arch}:{version}\")");
	/* Compile it as the tag side of a template: same grammar, same adjacency rule. */
	(void)am_fmt(text, sizeof(text), "%s", r->copy_tag_text);
	if ((rc = part_compile(text, text, text + strlen(text), 0, &r->copy_tag, err, errlen)) != AM_OK)
		return rc;
	if (part_count(&r->copy_tag, TV_VERSION) != 1 || part_count(&r->copy_tag, TV_ARCH) != 1)
		return am_fail(err, errlen, AM_EINVAL,
		    "copy_tag \"%s\" must contain {version} and {arch} once each", text);
	r->has_copy_tag = 1;
	return AM_OK;
}

enum am_err
rule_finish(struct rule *r, char *err, size_t errlen)
{
	char buf[RULE_MAX_REPO], msg[256], plat[96];
	size_t i, j;
	int rc;

	if (r->version_regex[0] != '\0' && !r->has_version_re) {
		if ((rc = regcomp(&r->version_re, r->version_regex, REG_EXTENDED)) != 0) {
			regerror(rc, &r->version_re, msg, sizeof(msg));
			return am_fail(err, errlen, AM_EINVAL, "version_regex \"%s\": %s", r->version_regex, msg);
		}
		r->has_version_re = 1;
	}
	if (r->n_version_groups > 0 && !r->has_version_re)
		return am_fail(err, errlen, AM_EINVAL, "version_groups needs version_regex");
	if (r->has_version_re && r->n_version_groups > r->version_re.re_nsub)
		return am_fail(err, errlen, AM_EINVAL,
		    "version_groups names %zu groups but version_regex has %zu", r->n_version_groups,
		    (size_t)r->version_re.re_nsub);
	for (i = 0; i < r->n_archs; i++) {
		if (r->source.arch_in_repo &&
		    tmpl_expand_repo(&r->source, "library/app", r->archs[i].name, buf, sizeof(buf)) != 0)
			return am_fail(err, errlen, AM_EINVAL,
			    "architecture \"%s\" cannot be part of a repository name (source \"%s\"): "
			    "repository names are lower case [a-z0-9._-]", r->archs[i].name, r->source.text);
		for (j = 0; j < i; j++) {
			if (platform_equal(&r->archs[i].platform, &r->archs[j].platform)) {
				platform_format(&r->archs[i].platform, plat, sizeof(plat));
				return am_fail(err, errlen, AM_EINVAL,
				    "architectures \"%s\" and \"%s\" both stand for %s", r->archs[j].name,
				    r->archs[i].name, plat);
			}
		}
	}
	if ((rc = check_ambiguity(r, err, errlen)) != AM_OK)
		return (enum am_err)rc;
	if ((rc = check_copy_tag(r, err, errlen)) != AM_OK)
		return (enum am_err)rc;
	for (i = 0; i < r->n_extra_tags; i++) {
		if (extra_walk(r, r->extra_tags[i], NULL, NULL, NULL, 0, err, errlen) != 0)
			return AM_EINVAL;
		for (j = 0; j < i; j++)
			if (strcmp(r->extra_tags[i], r->extra_tags[j]) == 0)
				return am_fail(err, errlen, AM_EINVAL, "extra tag \"%s\" is listed twice",
				    r->extra_tags[i]);
	}
	return AM_OK;
}

void
rule_clear(struct rule *r)
{
	if (r != NULL && r->has_version_re) {
		regfree(&r->version_re);
		r->has_version_re = 0;
	}
}
