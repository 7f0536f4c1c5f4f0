/*
 * Open-addressing hash table (linear probing) sized at twice the entry
 * bound, plus a ring of insertion order for eviction. One mutex: lookups
 * are a few hundred nanoseconds next to millisecond registry requests.
 */
#include "registry/assemble/cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/common.h"

struct slot {
	char key[CACHE_KEY_MAX];   /* "" = empty */
	size_t ring;               /* position in the ring */
};

struct cache {
	pthread_mutex_t lock;
	size_t value_size, max, nslots, count, next;   /* next: ring cursor */
	struct slot *slots;
	unsigned char *values;     /* nslots * value_size */
	size_t *ring;              /* slot index per insertion, max entries */
};

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a */

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

struct cache *
cache_new(size_t value_size, size_t max_entries)
{
	struct cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	c->value_size = value_size;
	c->max = max_entries ? max_entries : 1;
	c->nslots = c->max * 2;
	c->slots = xcalloc(c->nslots, sizeof(*c->slots));
	c->values = xcalloc(c->nslots, value_size);
	c->ring = xcalloc(c->max, sizeof(*c->ring));
	return c;
}

void
cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->slots);
	free(c->values);
	free(c->ring);
	free(c);
}

/* Slot holding key, or the empty slot where it would go. */
static size_t
find(const struct cache *c, const char *key)
{
	size_t i = (size_t)(hash(key) % c->nslots);

	while (c->slots[i].key[0] != '\0' && strcmp(c->slots[i].key, key) != 0)
		i = (i + 1) % c->nslots;
	return i;
}

/* Remove slot i and re-seat the probe chain after it (no tombstones). */
static void
erase(struct cache *c, size_t i)
{
	size_t j = i, k;

	c->slots[i].key[0] = '\0';
	for (;;) {
		j = (j + 1) % c->nslots;
		if (c->slots[j].key[0] == '\0')
			return;
		k = (size_t)(hash(c->slots[j].key) % c->nslots);
		/* Move j back to i when its home k is not cyclically in (i, j]. */
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			c->slots[i] = c->slots[j];
			memcpy(c->values + i * c->value_size, c->values + j * c->value_size, c->value_size);
			c->ring[c->slots[i].ring] = i;
			c->slots[j].key[0] = '\0';
			i = j;
		}
	}
}

int
cache_get(struct cache *c, const char *key, void *out)
{
	size_t i;
	int hit;

	if (c == NULL || strlen(key) >= CACHE_KEY_MAX || key[0] == '\0')
		return 0;
	pthread_mutex_lock(&c->lock);
	i = find(c, key);
	hit = c->slots[i].key[0] != '\0';
	if (hit)
		memcpy(out, c->values + i * c->value_size, c->value_size);
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void
cache_put(struct cache *c, const char *key, const void *value)
{
	size_t i;

	if (c == NULL || strlen(key) >= CACHE_KEY_MAX || key[0] == '\0')
		return;
	pthread_mutex_lock(&c->lock);
	i = find(c, key);
	if (c->slots[i].key[0] == '\0') {
		if (c->count == c->max) {
			/* Full: drop the oldest entry (the ring slot about to be reused). */
			erase(c, c->ring[c->next]);
			c->count--;
			i = find(c, key);
		}
		memcpy(c->slots[i].key, key, strlen(key) + 1);
		c->slots[i].ring = c->next;
		c->ring[c->next] = i;
		c->next = (c->next + 1) % c->max;
		c->count++;
	}
	memcpy(c->values + i * c->value_size, value, c->value_size);
	pthread_mutex_unlock(&c->lock);
}

size_t
cache_count(struct cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->count;
	pthread_mutex_unlock(&c->lock);
	return n;
}
