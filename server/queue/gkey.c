/*
 * Packed groups: the four names back to back, each with its NUL, in the
 * order host, rule, repository, version. Names are bounded by struct group,
 * so a key read back always fits it.
 */
#include "server/queue/gkey.h"

#include <string.h>

#include "server/base/common.h"

size_t
gkey_size(const struct group *g)
{
	return strlen(g->host) + strlen(g->rule_name) + strlen(g->repo) + strlen(g->version) + 4;
}

static char *
put_one(char *dst, const char *s)
{
	size_t n = strlen(s) + 1;

	memcpy(dst, s, n);
	return dst + n;
}

size_t
gkey_put(char *dst, const struct group *g)
{
	char *p = dst;

	p = put_one(p, g->host);
	p = put_one(p, g->rule_name);
	p = put_one(p, g->repo);
	p = put_one(p, g->version);
	return (size_t)(p - dst);
}

int
gkey_is(const char *k, const struct group *g)
{
	const char *parts[4] = { g->host, g->rule_name, g->repo, g->version };
	int i;

	for (i = 0; i < 4; i++) {
		if (strcmp(k, parts[i]) != 0)
			return 0;
		k += strlen(k) + 1;
	}
	return 1;
}

static const char *
get_one(const char *k, char *dst, size_t len)
{
	size_t n = strlen(k);

	/* Written from a struct group of the same layout: it fits. */
	(void)am_fmt(dst, len, "%s", k);
	return k + n + 1;
}

size_t
gkey_get(const char *k, struct group *out)
{
	const char *p = k;

	p = get_one(p, out->host, sizeof(out->host));
	p = get_one(p, out->rule_name, sizeof(out->rule_name));
	p = get_one(p, out->repo, sizeof(out->repo));
	p = get_one(p, out->version, sizeof(out->version));
	return (size_t)(p - k);
}
