/* The table behind sigwait.h: a small ring, scanned linearly (few entries). */
#include "server/service/sigwait.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIGWAIT_MAX 256

struct entry {
	struct group g;
	char repo[RULE_MAX_REPO];
	char digest[80];
};

struct sigwait {
	pthread_mutex_t mu;          /* guards everything below */
	struct entry table[SIGWAIT_MAX];
	size_t next, used;
};

struct sigwait *
sigwait_new(void)
{
	struct sigwait *w = xcalloc(1, sizeof(*w));

	pthread_mutex_init(&w->mu, NULL);
	return w;
}

void
sigwait_free(struct sigwait *w)
{
	if (w == NULL)
		return;
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void
sigwait_note(struct sigwait *w, const struct group *g, const char *repo, const char *digest)
{
	struct entry *t = w->table;
	size_t i;

	pthread_mutex_lock(&w->mu);
	for (i = 0; i < w->used; i++)
		if (strcmp(t[i].digest, digest) == 0 && strcmp(t[i].repo, repo) == 0 &&
		    strcmp(t[i].g.host, g->host) == 0 && strcmp(t[i].g.repo, g->repo) == 0 &&
		    strcmp(t[i].g.version, g->version) == 0)
			break;
	if (i == w->used) {
		i = w->next;
		w->next = (w->next + 1) % SIGWAIT_MAX;
		if (w->used < SIGWAIT_MAX)
			w->used++;
	}
	t[i].g = *g;
	(void)am_fmt(t[i].repo, sizeof(t[i].repo), "%s", repo);
	(void)am_fmt(t[i].digest, sizeof(t[i].digest), "%s", digest);
	pthread_mutex_unlock(&w->mu);
}

int
sigwait_find(struct sigwait *w, const char *host, const char *repo, const char *digest,
    struct group *out)
{
	const struct entry *t = w->table;
	size_t i;
	int found = 0;

	pthread_mutex_lock(&w->mu);
	for (i = 0; i < w->used && !found; i++)
		if (strcmp(t[i].digest, digest) == 0 && strcmp(t[i].repo, repo) == 0 &&
		    strcasecmp(t[i].g.host, host) == 0) {
			*out = t[i].g;
			found = 1;
		}
	pthread_mutex_unlock(&w->mu);
	return found;
}
