/* The recent-writes set: a ring of keys, scanned linearly (a webhook checks a few keys). */
#include "registry/assemble/written.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/common.h"

struct written {
	pthread_mutex_t mu;
	char **keys;
	size_t cap, next;
};

struct written *
written_new(size_t cap)
{
	struct written *w = xcalloc(1, sizeof(*w));

	w->cap = cap > 0 ? cap : WRITTEN_DEFAULT_CAP;
	w->keys = xcalloc(w->cap, sizeof(*w->keys));
	pthread_mutex_init(&w->mu, NULL);
	return w;
}

void
written_free(struct written *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->cap; i++)
		free(w->keys[i]);
	free(w->keys);
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
	free(w->keys[w->next]);
	w->keys[w->next] = xstrdup(key);
	w->next = (w->next + 1) % w->cap;
	pthread_mutex_unlock(&w->mu);
}

int
written_has(struct written *w, const char *host, const char *repo, const char *tag,
    const char *digest)
{
	char key[1024];
	size_t i;
	int found = 0;

	if (w == NULL || key_of(key, sizeof(key), host, repo, tag, digest) != 0)
		return 0;
	pthread_mutex_lock(&w->mu);
	for (i = 0; i < w->cap && !found; i++)
		found = w->keys[i] != NULL && strcmp(w->keys[i], key) == 0;
	pthread_mutex_unlock(&w->mu);
	return found;
}
