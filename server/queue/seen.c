/*
 * The announced-push set: a ring of keys "host/repo:tag@digest". A linear
 * scan is enough at the sizes involved (a few thousand keys, a lookup per
 * new push the feed finds).
 */
#include "server/queue/seen.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/common.h"

struct seen {
	pthread_mutex_t mu;
	char **keys;
	size_t cap, next;
};

struct seen *
seen_new(size_t cap)
{
	struct seen *s = xcalloc(1, sizeof(*s));

	s->cap = cap > 0 ? cap : 1;
	s->keys = xcalloc(s->cap, sizeof(*s->keys));
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void
seen_free(struct seen *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->cap; i++)
		free(s->keys[i]);
	free(s->keys);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* The key (caller frees). Host names compare case-insensitively elsewhere; lower it here. */
static char *
key_of(const char *host, const char *repo, const char *tag, const char *digest)
{
	size_t n = strlen(host) + strlen(repo) + strlen(tag) + strlen(digest) + 4, i;
	char *k = xmalloc(n);

	(void)am_fmt(k, n, "%s/%s:%s@%s", host, repo, tag, digest);
	for (i = 0; host[i] != '\0'; i++)
		if (k[i] >= 'A' && k[i] <= 'Z')
			k[i] = (char)(k[i] - 'A' + 'a');
	return k;
}

static int
find(const struct seen *s, const char *k)
{
	size_t i;

	for (i = 0; i < s->cap; i++)
		if (s->keys[i] != NULL && strcmp(s->keys[i], k) == 0)
			return 1;
	return 0;
}

void
seen_note(struct seen *s, const char *host, const char *repo, const char *tag,
    const char *digest)
{
	char *k;

	if (s == NULL || host == NULL || repo == NULL || tag == NULL || digest == NULL)
		return;
	k = key_of(host, repo, tag, digest);
	pthread_mutex_lock(&s->mu);
	if (find(s, k)) {
		free(k);
	} else {
		free(s->keys[s->next]);
		s->keys[s->next] = k;
		s->next = (s->next + 1) % s->cap;
	}
	pthread_mutex_unlock(&s->mu);
}

int
seen_has(struct seen *s, const char *host, const char *repo, const char *tag,
    const char *digest)
{
	char *k;
	int r;

	if (s == NULL)
		return 0;
	k = key_of(host, repo, tag, digest);
	pthread_mutex_lock(&s->mu);
	r = find(s, k);
	pthread_mutex_unlock(&s->mu);
	free(k);
	return r;
}
