/*
 * A bounded, thread-safe map from short string keys to fixed-size values,
 * for facts that never change once known: what a manifest digest resolves
 * to (its platform, its image child). Content addressed, so never stale;
 * the oldest entries are dropped when full.
 */
#ifndef AM_CACHE_H
#define AM_CACHE_H

#include <stddef.h>

#define CACHE_KEY_MAX 192

struct cache;

/* value_size: bytes copied in and out per entry; max_entries > 0. */
struct cache *cache_new(size_t value_size, size_t max_entries);
void cache_free(struct cache *c);   /* accepts NULL */

/* Copy the value of key into out; 1 on a hit, 0 on a miss (c may be NULL: a miss). */
int cache_get(struct cache *c, const char *key, void *out);

/* Insert or replace (c may be NULL: nothing). Keys longer than CACHE_KEY_MAX-1 are not cached. */
void cache_put(struct cache *c, const char *key, const void *value);

size_t cache_count(struct cache *c);

#endif
