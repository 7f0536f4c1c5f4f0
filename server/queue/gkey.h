/*
 * A group in as many bytes as its names take: "host\0rule\0repo\0version\0".
 * struct group reserves ~770 bytes for the longest names; the tables that
 * hold one entry per pending group (the journal's map, the queue) keep this
 * form instead, so 100,000 pending groups cost megabytes, not a hundred.
 */
#ifndef AM_GKEY_H
#define AM_GKEY_H

#include <stddef.h>
#include "config/group.h"

/* Bytes gkey_put writes for g (NULs included). */
size_t gkey_size(const struct group *g);

/* Write g into dst (gkey_size(g) bytes); returns that size. */
size_t gkey_put(char *dst, const struct group *g);

/* 1 when the key at k names g (same four fields, exact bytes). */
int gkey_is(const char *k, const struct group *g);

/* The group the key at k names, into *out; returns the key's size. */
size_t gkey_get(const char *k, struct group *out);

#endif
