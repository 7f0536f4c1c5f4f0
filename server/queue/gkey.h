/*
 * A group in as many bytes as its names take: "host\0rule\0repo\0version\0".
 * struct group reserves ~770 bytes for the longest names; the tables that
 * hold one entry per pending group (the journal's map, the queue) keep this
 * form instead, so 100,000 pending groups cost megabytes, not a hundred.
 */
#ifndef AM_GKEY_H
#define AM_GKEY_H

#include <stddef.h>
#include <stdint.h>
#include "config/group.h"

/* Bytes gkey_put writes for g (NULs included). */
size_t gkey_size(const struct group *g);

/* Write g into dst (gkey_size(g) bytes); returns that size. */
size_t gkey_put(char *dst, const struct group *g);

/* 1 when the key at k names g (same four fields, exact bytes). */
int gkey_is(const char *k, const struct group *g);

/* The group the key at k names, into *out; returns the key's size. */
size_t gkey_get(const char *k, struct group *out);

/*
 * A hash table of entries keyed by their gkey, chained through a link that
 * is the entry's first member (a struct gkey_link * is the entry's address).
 * The entries are the caller's: the map only chains them. Not locked.
 */
struct gkey_link {
	struct gkey_link *next;
	uint32_t hash;             /* group_hash() of the entry's group */
};

struct gkey_map {
	struct gkey_link **buckets;
	size_t n_buckets, n;
	size_t key_off;            /* from an entry's start to its gkey bytes */
};

/* An empty map of entries whose gkey is key_off bytes into each (offsetof). */
void gkey_map_init(struct gkey_map *m, size_t key_off);
/* Frees the buckets (not the entries); the map is empty afterwards, ready for init. */
void gkey_map_release(struct gkey_map *m);
/* Where g's entry is chained (*result NULL: not in the map; h = group_hash(g)). */
struct gkey_link **gkey_map_find(const struct gkey_map *m, const struct group *g, uint32_t h);
/* Chain l (hash h) at the place gkey_map_find returned for its group, then grow if due. */
void gkey_map_add(struct gkey_map *m, struct gkey_link **at, struct gkey_link *l, uint32_t h);
/* Unchain the entry at *at (from gkey_map_find) or l itself (gkey_map_remove). */
void gkey_map_unchain(struct gkey_map *m, struct gkey_link **at);
void gkey_map_remove(struct gkey_map *m, struct gkey_link *l);

#endif
