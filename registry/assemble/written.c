/*
 * The recent-writes set: a ring of (key, time noted), scanned linearly (a
 * webhook checks a few keys). An entry answers for one event, then it is gone;
 * one whose event never came (the PUT failed) expires after its time to live.
 */
#include "registry/assemble/written.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/common.h"

struct entry {
	char *key;            /* "host/repo:tag@digest"; NULL: free */
	long long at;         /* am_now_ms() when noted */
};

struct written {
	pthread_mutex_t mu;
	struct entry *e;
	size_t cap, next;
	long ttl_ms;
};

struct written *
written_new_ttl(size_t cap, long ttl_ms)
{
	struct written *w = xcalloc(1, sizeof(*w));

	w->cap = cap > 0 ? cap : WRITTEN_DEFAULT_CAP;
	w->e = xcalloc(w->cap, sizeof(*w->e));
	w->ttl_ms = ttl_ms > 0 ? ttl_ms : WRITTEN_DEFAULT_TTL_MS;
	pthread_mutex_init(&w->mu, NULL);
	return w;
}

struct written *
written_new(size_t cap)
{
	return written_new_ttl(cap, WRITTEN_DEFAULT_TTL_MS);
}

void
written_free(struct written *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->cap; i++)
		free(w->e[i].key);
	free(w->e);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* "host/repo:tag@digest"; -1 when it does not fit (then nothing is noted or found). */
static int
key_of(char *buf, size_t len, const char *host, const char *repo, const char *tag,
    const char *digest)
{
	if (host == NULL || repo == NULL || tag == NULL || digest == NULL || digest[0] == '\0')
		return -1;
	return am_fmt(buf, len, "%s/%s:%s@%s", host, repo, tag, digest);
}

void
written_note(struct written *w, const char *host, const char *repo, const char *tag,
    const char *digest)
{
	char key[1024];

	if (w == NULL || key_of(key, sizeof(key), host, repo, tag, digest) != 0)
		return;
	pthread_mutex_lock(&w->mu);
	free(w->e[w->next].key);
	w->e[w->next].key = xstrdup(key);
	w->e[w->next].at = am_now_ms();
	w->next = (w->next + 1) % w->cap;
	pthread_mutex_unlock(&w->mu);
}

int
written_take(struct written *w, const char *host, const char *repo, const char *tag,
    const char *digest)
{
	char key[1024];
	long long now;
	size_t i;
	int found = 0;

	if (w == NULL || key_of(key, sizeof(key), host, repo, tag, digest) != 0)
		return 0;
	now = am_now_ms();
	pthread_mutex_lock(&w->mu);
	for (i = 0; i < w->cap && !found; i++) {
		struct entry *e = &w->e[i];
		if (e->key == NULL)
			continue;
		if (now - e->at > w->ttl_ms) {
			free(e->key);        /* expired: the event it waited for is not coming */
			e->key = NULL;
			continue;
		}
		if (strcmp(e->key, key) == 0) {
			free(e->key);        /* one write, one event */
			e->key = NULL;
			found = 1;
		}
	}
	pthread_mutex_unlock(&w->mu);
	return found;
}
