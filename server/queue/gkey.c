/*
 * Packed groups: the four names back to back, each with its NUL, in the
 * order host, rule, repository, version. Names are bounded by struct group,
 * so a key read back always fits it.
 */
#include "server/queue/gkey.h"

#include <stdlib.h>
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

/* ---- the map ---- */

void
gkey_map_init(struct gkey_map *m, size_t key_off)
{
	m->n_buckets = 64;
	m->n = 0;
	m->key_off = key_off;
	m->buckets = xcalloc(m->n_buckets, sizeof(*m->buckets));
}

void
gkey_map_release(struct gkey_map *m)
{
	free(m->buckets);
	m->buckets = NULL;
	m->n_buckets = m->n = 0;
}

struct gkey_link **
gkey_map_find(const struct gkey_map *m, const struct group *g, uint32_t h)
{
	struct gkey_link **pp = &m->buckets[h & (m->n_buckets - 1)];

	while (*pp != NULL && !((*pp)->hash == h && gkey_is((const char *)*pp + m->key_off, g)))
		pp = &(*pp)->next;
	return pp;
}

static void
grow(struct gkey_map *m)
{
	size_t n = m->n_buckets * 2, i;
	struct gkey_link **nb = xcalloc(n, sizeof(*nb)), *e, *next;

	for (i = 0; i < m->n_buckets; i++)
		for (e = m->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	free(m->buckets);
	m->buckets = nb;
	m->n_buckets = n;
}

void
gkey_map_add(struct gkey_map *m, struct gkey_link **at, struct gkey_link *l, uint32_t h)
{
	l->hash = h;
	l->next = NULL;
	*at = l;
	if (++m->n > m->n_buckets)
		grow(m);
}

void
gkey_map_unchain(struct gkey_map *m, struct gkey_link **at)
{
	*at = (*at)->next;
	m->n--;
}

void
gkey_map_remove(struct gkey_map *m, struct gkey_link *l)
{
	struct gkey_link **pp = &m->buckets[l->hash & (m->n_buckets - 1)];

	while (*pp != l)
		pp = &(*pp)->next;
	gkey_map_unchain(m, pp);
}
