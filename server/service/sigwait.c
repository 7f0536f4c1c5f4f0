/* The table behind sigwait.h: a small array, scanned linearly (few entries). */
#include "server/service/sigwait.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIGWAIT_MAX 256

struct entry {
	int used;
	unsigned long long stamp;    /* when noted: the smallest is forgotten first */
	struct group g;
	char repo[RULE_MAX_REPO];
	char tag[RULE_MAX_TAG];
	char digest[80];
};

struct sigwait {
	pthread_mutex_t mu;          /* guards everything below */
	struct entry table[SIGWAIT_MAX];
	unsigned long long clock;
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

static int
same_group(const struct group *a, const struct group *b)
{
	return strcmp(a->host, b->host) == 0 && strcmp(a->repo, b->repo) == 0 &&
	    strcmp(a->version, b->version) == 0 && strcmp(a->rule_name, b->rule_name) == 0;
}

void
sigwait_note(struct sigwait *w, const struct group *g, const char *repo, const char *tag,
    const char *digest)
{
	struct entry *t = w->table, *slot = NULL;
	size_t i;

	pthread_mutex_lock(&w->mu);
	/* The same entry again; else a free one; else the oldest. */
	for (i = 0; i < SIGWAIT_MAX && slot == NULL; i++)
		if (t[i].used && strcmp(t[i].digest, digest) == 0 && strcmp(t[i].tag, tag) == 0 &&
		    strcmp(t[i].repo, repo) == 0 && same_group(&t[i].g, g))
			slot = &t[i];
	for (i = 0; i < SIGWAIT_MAX && slot == NULL; i++)
		if (!t[i].used)
			slot = &t[i];
	if (slot == NULL) {
		slot = &t[0];
		for (i = 1; i < SIGWAIT_MAX; i++)
			if (t[i].stamp < slot->stamp)
				slot = &t[i];
	}
	slot->used = 1;
	slot->stamp = ++w->clock;
	slot->g = *g;
	(void)am_fmt(slot->repo, sizeof(slot->repo), "%s", repo);
	(void)am_fmt(slot->tag, sizeof(slot->tag), "%s", tag);
	(void)am_fmt(slot->digest, sizeof(slot->digest), "%s", digest);
	pthread_mutex_unlock(&w->mu);
}

/* Does entry e wait for the child tag/digest names? */
static int
matches(const struct entry *e, const char *tag, const char *digest)
{
	if (digest[0] != '\0' && (strcmp(e->digest, digest) == 0 || e->digest[0] == '\0'))
		return 1;
	return tag[0] != '\0' && strcmp(e->tag, tag) == 0;
}

size_t
sigwait_find(struct sigwait *w, const char *host, const char *repo, const char *tag,
    const char *digest, struct group *out, size_t max)
{
	const struct entry *t = w->table;
	size_t i, j, n = 0;

	pthread_mutex_lock(&w->mu);
	for (i = 0; i < SIGWAIT_MAX && n < max; i++) {
		if (!t[i].used || strcmp(t[i].repo, repo) != 0 || strcasecmp(t[i].g.host, host) != 0 ||
		    !matches(&t[i], tag, digest))
			continue;
		for (j = 0; j < n && !same_group(&out[j], &t[i].g); j++)
			;
		if (j == n)
			out[n++] = t[i].g;
	}
	pthread_mutex_unlock(&w->mu);
	return n;
}

void
sigwait_forget(struct sigwait *w, const struct group *g)
{
	size_t i;

	pthread_mutex_lock(&w->mu);
	for (i = 0; i < SIGWAIT_MAX; i++)
		if (w->table[i].used && same_group(&w->table[i].g, g))
			w->table[i].used = 0;
	pthread_mutex_unlock(&w->mu);
}

int
sigwait_waits(struct sigwait *w, const struct group *g)
{
	size_t i;
	int found = 0;

	pthread_mutex_lock(&w->mu);
	for (i = 0; i < SIGWAIT_MAX && !found; i++)
		found = w->table[i].used && same_group(&w->table[i].g, g);
	pthread_mutex_unlock(&w->mu);
	return found;
}
