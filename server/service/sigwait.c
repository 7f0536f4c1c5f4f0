/* The table behind sigwait.h: a small ring, scanned linearly (few entries). */
#include "server/service/sigwait.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#define SIGWAIT_MAX 256

struct entry {
	struct group g;
	char repo[RULE_MAX_REPO];
	char digest[80];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct entry table[SIGWAIT_MAX];
static size_t next, used;

void
sigwait_note(const struct group *g, const char *repo, const char *digest)
{
	size_t i;

	pthread_mutex_lock(&mu);
	for (i = 0; i < used; i++)
		if (strcmp(table[i].digest, digest) == 0 && strcmp(table[i].repo, repo) == 0 &&
		    strcmp(table[i].g.host, g->host) == 0 && strcmp(table[i].g.repo, g->repo) == 0 &&
		    strcmp(table[i].g.version, g->version) == 0)
			break;
	if (i == used) {
		i = next;
		next = (next + 1) % SIGWAIT_MAX;
		if (used < SIGWAIT_MAX)
			used++;
	}
	table[i].g = *g;
	(void)am_fmt(table[i].repo, sizeof(table[i].repo), "%s", repo);
	(void)am_fmt(table[i].digest, sizeof(table[i].digest), "%s", digest);
	pthread_mutex_unlock(&mu);
}

int
sigwait_find(void *ctx, const char *host, const char *repo, const char *digest, struct group *out)
{
	size_t i;
	int found = 0;

	(void)ctx;
	pthread_mutex_lock(&mu);
	for (i = 0; i < used && !found; i++)
		if (strcmp(table[i].digest, digest) == 0 && strcmp(table[i].repo, repo) == 0 &&
		    strcasecmp(table[i].g.host, host) == 0) {
			*out = table[i].g;
			found = 1;
		}
	pthread_mutex_unlock(&mu);
	return found;
}
