/*
 * The order of a rule's versions. Floating extra tags ("latest",
 * "{major}.{minor}") move to a version only when no higher one is
 * published; this file says what "higher" means. Pure: strings in, a
 * comparison out.
 */
#include "config/version.h"

#include <string.h>

int
version_order_parse(const char *text, int *out)
{
	if (strcmp(text, "auto") == 0)
		*out = RULE_ORDER_AUTO;
	else if (strcmp(text, "semver") == 0)
		*out = RULE_ORDER_SEMVER;
	else if (strcmp(text, "push") == 0)
		*out = RULE_ORDER_PUSH;
	else
		return -1;
	return 0;
}

enum version_by
version_by(const struct rule *r)
{
	if (r->version_order == RULE_ORDER_PUSH)
		return VERSION_BY_PUSH;
	if (r->version_order == RULE_ORDER_AUTO && r->has_version_re && r->version_re.re_nsub > 0)
		return VERSION_BY_GROUPS;
	return VERSION_BY_SEMVER;
}

static int
is_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return n > 0;
}

/* Two digit strings as numbers of any length: leading zeros do not count. */
static int
num_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c;

	while (an > 1 && *a == '0')
		a++, an--;
	while (bn > 1 && *b == '0')
		b++, bn--;
	if (an != bn)
		return an < bn ? -1 : 1;
	c = memcmp(a, b, an);
	return c < 0 ? -1 : c > 0;
}

/* Bytes, then length: "alpha" < "alpha1" < "beta". */
static int
text_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	if (c != 0)
		return c < 0 ? -1 : 1;
	return an == bn ? 0 : an < bn ? -1 : 1;
}

/* A numeric identifier sorts below an alphanumeric one (semver rule 11.4.3, also for groups). */
static int
ident_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int da = is_digits(a, an), db = is_digits(b, bn);

	if (da && db)
		return num_cmp(a, an, b, bn);
	if (da != db)
		return da ? -1 : 1;
	return text_cmp(a, an, b, bn);
}

/* A semantic version split: its three numbers and the pre-release text (after '-'). */
struct semver {
	const char *num[3];
	size_t len[3];
	const char *pre;                  /* NULL: a release */
};

/* A numeric part: digits, no leading zero unless it is "0". */
static int
numeric_ok(const char *s, size_t n)
{
	return is_digits(s, n) && (n == 1 || s[0] != '0');
}

static int
semver_parse(const char *s, struct semver *v)
{
	const char *p, *id;
	size_t i, n;

	if (s[0] == 'v')
		s++;
	for (i = 0; i < 3; i++) {
		n = strspn(s, "0123456789");
		if (!numeric_ok(s, n))
			return -1;
		v->num[i] = s;
		v->len[i] = n;
		s += n;
		if (i < 2 && *s++ != '.')
			return -1;
	}
	v->pre = NULL;
	if (*s == '\0')
		return 0;
	if (*s != '-')
		return -1;
	v->pre = ++s;
	/* Dot-separated identifiers of [0-9A-Za-z-], none empty, numbers without leading zeros. */
	for (id = s; ; id = p + 1) {
		p = id + strspn(id, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-");
		n = (size_t)(p - id);
		if (n == 0 || (is_digits(id, n) && !numeric_ok(id, n)))
			return -1;
		if (*p == '\0')
			return 0;
		if (*p != '.')
			return -1;
	}
}

/* Pre-release precedence: identifier by identifier, fewer identifiers lower when all equal. */
static int
pre_cmp(const char *a, const char *b)
{
	size_t an, bn;
	int c;

	for (;;) {
		an = strcspn(a, ".");
		bn = strcspn(b, ".");
		if ((c = ident_cmp(a, an, b, bn)) != 0)
			return c;
		a += an;
		b += bn;
		if (*a == '\0' || *b == '\0')
			return *a == *b ? 0 : *a == '\0' ? -1 : 1;
		a++;
		b++;
	}
}

int
version_semver_cmp(const char *a, const char *b, int *cmp)
{
	struct semver va, vb;
	size_t i;
	int c = 0;

	if (semver_parse(a, &va) != 0 || semver_parse(b, &vb) != 0)
		return -1;
	for (i = 0; c == 0 && i < 3; i++)
		c = num_cmp(va.num[i], va.len[i], vb.num[i], vb.len[i]);
	/* A pre-release is lower than its release. */
	if (c == 0 && (va.pre != NULL || vb.pre != NULL))
		c = va.pre == NULL ? 1 : vb.pre == NULL ? -1 : pre_cmp(va.pre, vb.pre);
	*cmp = c;
	return 0;
}

/*
 * A group's text in runs of digits and of other bytes, run by run: digits
 * as numbers and below other text, other text by its bytes ("b3" < "b12",
 * "12" < "bookworm" < "bullseye").
 */
static int
natural_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i = 0, j = 0, ri, rj;
	int c, da, db;

	while (i < an && j < bn) {
		da = a[i] >= '0' && a[i] <= '9';
		db = b[j] >= '0' && b[j] <= '9';
		for (ri = i; ri < an && (a[ri] >= '0' && a[ri] <= '9') == da; ri++)
			;
		for (rj = j; rj < bn && (b[rj] >= '0' && b[rj] <= '9') == db; rj++)
			;
		if (da != db)
			return da ? -1 : 1;
		c = da ? num_cmp(a + i, ri - i, b + j, rj - j) : text_cmp(a + i, ri - i, b + j, rj - j);
		if (c != 0)
			return c;
		i = ri;
		j = rj;
	}
	return i < an ? 1 : j < bn ? -1 : 0;
}

/*
 * version_regex's groups in order, each as numbers where it holds digits
 * (natural_cmp); a group that took no part in the match is below one that did.
 */
static int
groups_cmp(const struct rule *r, const char *a, const char *b, int *cmp)
{
	regmatch_t ma[RULE_MAX_GROUPS + 1], mb[RULE_MAX_GROUPS + 1];
	size_t g, n = r->version_re.re_nsub < RULE_MAX_GROUPS ? r->version_re.re_nsub : RULE_MAX_GROUPS;
	int c = 0;

	if (!rule_version_match(r, a, ma) || !rule_version_match(r, b, mb))
		return -1;
	for (g = 1; c == 0 && g <= n; g++) {
		int ina = ma[g].rm_so >= 0, inb = mb[g].rm_so >= 0;
		if (!ina || !inb)
			c = ina - inb;
		else
			c = natural_cmp(a + ma[g].rm_so, (size_t)(ma[g].rm_eo - ma[g].rm_so),
			    b + mb[g].rm_so, (size_t)(mb[g].rm_eo - mb[g].rm_so));
	}
	*cmp = c;
	return 0;
}

int
version_cmp(const struct rule *r, const char *a, const char *b, int *cmp)
{
	switch (version_by(r)) {
	case VERSION_BY_GROUPS:
		return groups_cmp(r, a, b, cmp);
	case VERSION_BY_SEMVER:
		return version_semver_cmp(a, b, cmp);
	case VERSION_BY_PUSH:
		break;
	}
	return -1;
}

int
version_orderable(const struct rule *r, const char *version)
{
	int c;

	return version_cmp(r, version, version, &c) == 0;
}

int
version_tag_floats(const struct rule *r, size_t i)
{
	return i < r->n_extra_tags && strstr(r->extra_tags[i], "{version}") == NULL;
}

int
version_order_unsaid(const struct rule *r, char *buf, size_t len)
{
	size_t i;

	if (r->version_order != RULE_ORDER_AUTO || version_by(r) == VERSION_BY_GROUPS)
		return 0;
	for (i = 0; i < r->n_extra_tags; i++)
		if (version_tag_floats(r, i))
			break;
	if (i == r->n_extra_tags)
		return 0;
	(void)am_fmt(buf, len, "extra tag \"%s\" is written by every version, but the rule does not "
	    "say how versions are ordered: semantic versions move it only upwards, any other version "
	    "moves it as the last one pushed; set version_regex with groups, version_order = \"semver\" "
	    "or version_order = \"push\"", r->extra_tags[i]);
	return 1;
}
