/*
 * The feed's status record: counters and a small ring of missed pushes,
 * behind one mutex.
 */
#include "server/observe/feedstat.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry/oci/names.h"
#include "server/base/common.h"

struct missed {
	char host[256], repo[NAME_MAX_REPO], tag[NAME_MAX_TAG], digest[80];
	long long push_ms;
};

struct feedstat {
	pthread_mutex_t mu;
	long interval_s, grace_s;
	unsigned long long passes, queued, missed;
	time_t last_pass;
	char last_error[512];
	struct missed recent[FEEDSTAT_MAX_MISSED];
	size_t n_recent, next;
};

static struct feedstat *global;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void
global_init(void)
{
	global = feedstat_new();
}

struct feedstat *
feedstat_global(void)
{
	pthread_once(&global_once, global_init);
	return global;
}

struct feedstat *
feedstat_new(void)
{
	struct feedstat *f = xcalloc(1, sizeof(*f));

	pthread_mutex_init(&f->mu, NULL);
	return f;
}

void
feedstat_free(struct feedstat *f)
{
	if (f == NULL)
		return;
	pthread_mutex_destroy(&f->mu);
	free(f);
}

void
feedstat_configure(struct feedstat *f, long interval_s, long grace_s)
{
	pthread_mutex_lock(&f->mu);
	f->interval_s = interval_s;
	f->grace_s = grace_s;
	pthread_mutex_unlock(&f->mu);
}

void
feedstat_pass(struct feedstat *f, const char *error, unsigned queued)
{
	pthread_mutex_lock(&f->mu);
	f->passes++;
	f->queued += queued;
	f->last_pass = time(NULL);
	(void)am_fmt(f->last_error, sizeof(f->last_error), "%s", error != NULL ? error : "");
	pthread_mutex_unlock(&f->mu);
}

void
feedstat_missed(struct feedstat *f, const char *host, const char *repo, const char *tag,
    const char *digest, long long push_ms)
{
	struct missed *m;

	pthread_mutex_lock(&f->mu);
	f->missed++;
	m = &f->recent[f->next];
	(void)am_fmt(m->host, sizeof(m->host), "%s", host);
	(void)am_fmt(m->repo, sizeof(m->repo), "%s", repo);
	(void)am_fmt(m->tag, sizeof(m->tag), "%s", tag);
	(void)am_fmt(m->digest, sizeof(m->digest), "%s", digest);
	m->push_ms = push_ms;
	f->next = (f->next + 1) % FEEDSTAT_MAX_MISSED;
	if (f->n_recent < FEEDSTAT_MAX_MISSED)
		f->n_recent++;
	pthread_mutex_unlock(&f->mu);
}

static json_t *
when(time_t t)
{
	char buf[32];
	struct tm tm;

	if (t == 0)
		return json_null();
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

json_t *
feedstat_json(struct feedstat *f)
{
	json_t *o, *recent = json_array();
	size_t i;

	pthread_mutex_lock(&f->mu);
	for (i = 0; i < f->n_recent; i++) {
		const struct missed *m = &f->recent[(f->next + FEEDSTAT_MAX_MISSED - 1 - i) % FEEDSTAT_MAX_MISSED];
		json_array_append_new(recent, json_pack("{s:s, s:s, s:s, s:s, s:o}", "registry", m->host,
		    "repository", m->repo, "tag", m->tag, "digest", m->digest,
		    "push_time", when((time_t)(m->push_ms / 1000))));
	}
	o = json_pack("{s:b, s:I, s:I, s:I, s:o, s:s?, s:I, s:I, s:o}",
	    "enabled", f->interval_s > 0, "interval_s", (json_int_t)f->interval_s,
	    "grace_s", (json_int_t)f->grace_s, "passes", (json_int_t)f->passes,
	    "last_pass", when(f->last_pass), "last_error", f->last_error[0] ? f->last_error : NULL,
	    "queued", (json_int_t)f->queued, "missed_webhooks", (json_int_t)f->missed,
	    "recent_missed", recent);
	if (f->missed > 0)
		json_object_set_new(o, "hint", json_string("pushes reach archmerge through the change feed but "
		    "not through webhooks: check Harbor's webhook delivery log (archmerge harbor-setup --check) "
		    "and, when archmerge has a private address, allow_private_network_access on Harbor's core "
		    "and jobservice"));
	pthread_mutex_unlock(&f->mu);
	return o;
}
