#include "config/group.h"

#include <string.h>

#include "server/base/common.h"

int
group_equal(const struct group *a, const struct group *b)
{
	return strcmp(a->version, b->version) == 0 && strcmp(a->repo, b->repo) == 0 &&
	    strcmp(a->rule_name, b->rule_name) == 0 && strcmp(a->host, b->host) == 0;
}

uint32_t
group_hash(const struct group *g)
{
	const char *parts[4] = { g->host, g->rule_name, g->repo, g->version };
	uint32_t h = 2166136261u;
	const char *s;
	int i;

	for (i = 0; i < 4; i++) {
		for (s = parts[i]; *s != '\0'; s++)
			h = (h ^ (unsigned char)*s) * 16777619u;
		h = (h ^ 0x1f) * 16777619u;     /* field separator */
	}
	return h;
}

const char *
group_name(const struct group *g, char *buf, size_t len)
{
	(void)am_fmt(buf, len, "%s/%s:%s", g->host, g->repo, g->version);
	return buf;
}
