/*
 * The outbox: a directory of pending deliveries, an in-memory list in file
 * name order (oldest first), and one sender thread. Endpoints back off as a
 * whole (keyed by URL): while one fails, its later deliveries wait behind
 * the first, so a receiver sees them in order and is not hammered.
 */
#include "server/outbox/outbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "config/plan.h"
#include "registry/client/fetch.h"
#include "server/base/common.h"
#include "server/base/log.h"
#include "server/observe/metrics.h"
#include "server/outbox/cloudevent.h"

#define OUTBOX_FILE_MAX (4 * 1024 * 1024)   /* a record bigger than this is not ours */
#define FIRST_SEEN_MAX 256                  /* waiting groups remembered for since_first_webhook_ms */

struct delivery {
	char name[96];                /* file name in the outbox directory; "" when not on disk */
	char *url, *secret_file, *ca_file;
	long timeout_ms, retry_initial_ms, retry_max_ms, max_age_s;
	long long created_ms;         /* wall clock */
	char id[40];
	char *body;
	int sending;                  /* the sender holds it: not dropped meanwhile */
	struct delivery *next;
};

/* A receiver's backoff, by URL. */
struct endpoint {
	char *url;
	unsigned failures;
	long long next_ms;            /* am_now_ms() before which nothing goes to it */
	struct endpoint *next;
};

struct first_seen {
	struct group g;
	long long at_ms;              /* 0: free slot */
};

/* The last refusal sent for a group: the same one again is not news. */
struct refusal {
	struct group g;
	uint32_t hash;                /* of the detail; 0: free slot */
};

struct outbox {
	char *dir;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int started;                  /* thread runs */
	atomic_int quit;
	struct delivery *head;        /* oldest first */
	size_t n;
	unsigned seq;                 /* for unique file names */
	struct endpoint *eps;
	struct first_seen seen[FIRST_SEEN_MAX];
	struct refusal refused[FIRST_SEEN_MAX];
	unsigned refused_next;        /* ring cursor */
};

static void
delivery_free(struct delivery *d)
{
	if (d == NULL)
		return;
	free(d->url);
	free(d->secret_file);
	free(d->ca_file);
	free(d->body);
	free(d);
}

/* ---- files ---- */

static enum am_err
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	int rc;

	if (fd < 0)
		return AM_EIO;
	rc = fsync(fd);
	close(fd);
	return rc == 0 ? AM_OK : AM_EIO;
}

/* Write d's record under d->name: a .tmp- file, synced, renamed, the directory synced. */
static enum am_err
delivery_write(const struct outbox *o, const struct delivery *d, char *err, size_t errlen)
{
	char tmp[4096], path[4096];
	json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:s}", "url", d->url,
	    "secret_file", d->secret_file, "timeout_ms", (json_int_t)d->timeout_ms,
	    "retry_initial_ms", (json_int_t)d->retry_initial_ms, "retry_max_ms", (json_int_t)d->retry_max_ms,
	    "max_age_s", (json_int_t)d->max_age_s, "created_ms", (json_int_t)d->created_ms, "id", d->id,
	    "body", d->body);
	char *text;
	size_t len, off = 0;
	ssize_t w;
	int fd = -1;
	enum am_err rc = AM_OK;

	if (d->ca_file != NULL)
		json_object_set_new(j, "ca_file", json_string(d->ca_file));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text == NULL)
		abort();   /* only on out of memory */
	len = strlen(text);
	if (am_fmt(tmp, sizeof(tmp), "%s/.tmp-%s", o->dir, d->name) != 0 ||
	    am_fmt(path, sizeof(path), "%s/%s", o->dir, d->name) != 0) {
		rc = am_fail(err, errlen, AM_EIO, "outbox path too long");
		goto done;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		rc = am_fail(err, errlen, AM_EIO, "%s: %s", tmp, strerror(errno));
		goto done;
	}
	while (off < len) {
		if ((w = write(fd, text + off, len - off)) < 0) {
			if (errno == EINTR)
				continue;
			rc = am_fail(err, errlen, AM_EIO, "%s: %s", tmp, strerror(errno));
			goto done;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		rc = am_fail(err, errlen, AM_EIO, "%s: %s", tmp, strerror(errno));
		goto done;
	}
	fd = -1;
	if (rename(tmp, path) != 0 || sync_dir(o->dir) != AM_OK)
		rc = am_fail(err, errlen, AM_EIO, "%s: %s", path, strerror(errno));
done:
	if (fd >= 0)
		close(fd);
	if (rc != AM_OK)
		(void)unlink(tmp);
	free(text);
	return rc;
}

static void
delivery_unlink(const struct outbox *o, const struct delivery *d)
{
	char path[4096];

	if (d->name[0] != '\0' && am_fmt(path, sizeof(path), "%s/%s", o->dir, d->name) == 0)
		(void)unlink(path);
}

static char *
opt_dup(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v != NULL ? xstrdup(v) : NULL;
}

/* A record file back into a delivery; NULL when it is not one (left alone, logged). */
static struct delivery *
delivery_read(const struct outbox *o, const char *name)
{
	char path[4096], err[256];
	struct delivery *d = NULL;
	json_t *j = NULL;
	char *text = NULL;
	size_t len;

	if (am_fmt(path, sizeof(path), "%s/%s", o->dir, name) != 0 ||
	    am_read_file(path, OUTBOX_FILE_MAX, &text, &len, err, sizeof(err)) != AM_OK)
		goto bad;
	j = json_loadb(text, len, 0, NULL);
	if (!json_is_string(json_object_get(j, "url")) || !json_is_string(json_object_get(j, "body")) ||
	    !json_is_string(json_object_get(j, "secret_file")) || !json_is_string(json_object_get(j, "id")) ||
	    strlen(name) >= sizeof(d->name))
		goto bad;
	d = xcalloc(1, sizeof(*d));
	(void)am_fmt(d->name, sizeof(d->name), "%s", name);
	d->url = opt_dup(j, "url");
	d->secret_file = opt_dup(j, "secret_file");
	d->ca_file = opt_dup(j, "ca_file");
	d->body = opt_dup(j, "body");
	(void)am_fmt(d->id, sizeof(d->id), "%s", json_string_value(json_object_get(j, "id")));
	d->timeout_ms = (long)json_integer_value(json_object_get(j, "timeout_ms"));
	d->retry_initial_ms = (long)json_integer_value(json_object_get(j, "retry_initial_ms"));
	d->retry_max_ms = (long)json_integer_value(json_object_get(j, "retry_max_ms"));
	d->max_age_s = (long)json_integer_value(json_object_get(j, "max_age_s"));
	d->created_ms = (long long)json_integer_value(json_object_get(j, "created_ms"));
	if (d->retry_initial_ms <= 0)
		d->retry_initial_ms = 1000;
	if (d->retry_max_ms < d->retry_initial_ms)
		d->retry_max_ms = d->retry_initial_ms;
	json_decref(j);
	free(text);
	return d;
bad:
	log_kv(LOG_WARN, "notify", LOG_S("result", "unreadable"), LOG_S("file", path),
	    LOG_S("detail", "not an outbox record; left in place"));
	json_decref(j);
	free(text);
	return NULL;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp((*(struct delivery *const *)a)->name, (*(struct delivery *const *)b)->name);
}

/* Every record of the directory into the list, oldest first; .tmp- leftovers removed. */
static void
load(struct outbox *o)
{
	DIR *dh = opendir(o->dir);
	struct dirent *de;
	struct delivery **all = NULL, *d;
	size_t n = 0, cap = 0, i;
	char path[4096];

	if (dh == NULL)
		return;
	while ((de = readdir(dh)) != NULL) {
		size_t l = strlen(de->d_name);
		if (strncmp(de->d_name, ".tmp-", 5) == 0) {
			if (am_fmt(path, sizeof(path), "%s/%s", o->dir, de->d_name) == 0)
				(void)unlink(path);   /* a write a crash interrupted: never promised */
			continue;
		}
		if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		if ((d = delivery_read(o, de->d_name)) == NULL)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			all = xrealloc(all, cap * sizeof(*all));
		}
		all[n++] = d;
	}
	closedir(dh);
	if (n > 0)
		qsort(all, n, sizeof(*all), by_name);
	for (i = n; i-- > 0;) {
		all[i]->next = o->head;
		o->head = all[i];
	}
	o->n = n;
	free(all);
}

/* ---- the list (o->mu held) ---- */

static void
unlink_node(struct outbox *o, struct delivery *d)
{
	struct delivery **pp;

	for (pp = &o->head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			o->n--;
			return;
		}
}

/* Remove d for good: file, list, memory; counted under outcome. */
static void
drop(struct outbox *o, struct delivery *d, const char *outcome)
{
	delivery_unlink(o, d);
	unlink_node(o, d);
	metrics_notify(outcome);
	delivery_free(d);
}

static struct endpoint *
endpoint(struct outbox *o, const char *url)
{
	struct endpoint *e;

	for (e = o->eps; e != NULL; e = e->next)
		if (strcmp(e->url, url) == 0)
			return e;
	e = xcalloc(1, sizeof(*e));
	e->url = xstrdup(url);
	e->next = o->eps;
	o->eps = e;
	return e;
}

/* Beyond max_pending for d's URL, the oldest one not being sent is dropped. */
static void
bound(struct outbox *o, const char *url, long max_pending)
{
	struct delivery *d, *oldest;
	long n;

	for (;;) {
		n = 0;
		oldest = NULL;
		for (d = o->head; d != NULL; d = d->next)
			if (strcmp(d->url, url) == 0) {
				n++;
				if (oldest == NULL && !d->sending)
					oldest = d;
			}
		if (n <= max_pending || oldest == NULL)
			return;
		log_kv(LOG_WARN, "notify", LOG_S("result", "dropped"), LOG_S("url", url), LOG_S("id", oldest->id),
		    LOG_I("max_pending", max_pending), LOG_S("detail", "outbox full for this url: oldest dropped"));
		drop(o, oldest, "dropped");
	}
}

/* ---- first seen ---- */

static long long
first_seen_take(struct outbox *o, const struct group *g, int keep)
{
	struct first_seen *free_slot = NULL, *oldest = &o->seen[0];
	long long now = am_now_ms(), at;
	size_t i;

	for (i = 0; i < FIRST_SEEN_MAX; i++) {
		struct first_seen *f = &o->seen[i];
		if (f->at_ms != 0 && group_equal(&f->g, g)) {
			at = f->at_ms;
			if (!keep)
				f->at_ms = 0;
			return now - at;
		}
		if (f->at_ms == 0 && free_slot == NULL)
			free_slot = f;
		if (f->at_ms != 0 && f->at_ms < oldest->at_ms)
			oldest = f;
	}
	if (keep) {
		struct first_seen *f = free_slot != NULL ? free_slot : oldest;
		f->g = *g;
		f->at_ms = now;
	}
	return -1;
}

/*
 * 1 when r repeats the refusal or the policy block last sent for g (a
 * webhook, a retry or reconcile re-ran a group whose state did not change);
 * notes a new one. A publication forgets g's, so that the next is news again.
 */
static int
repeated_news(struct outbox *o, const struct group *g, const struct asm_result *r, unsigned kind)
{
	int news = kind == NOTIFY_REFUSED || kind == NOTIFY_BLOCKED;
	uint32_t h = 2166136261u;
	const char *p;
	size_t i;

	for (p = r->detail; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h = (h ^ kind) * 16777619u;
	h |= 1;
	for (i = 0; i < FIRST_SEEN_MAX; i++) {
		struct refusal *f = &o->refused[i];
		if (f->hash == 0 || !group_equal(&f->g, g))
			continue;
		if (r->outcome == ASM_PUBLISHED || r->outcome == ASM_UNCHANGED) {
			f->hash = 0;   /* published since: a refusal or block later is news again */
			return 0;
		}
		if (!news)
			return 0;
		if (f->hash == h)
			return 1;
		f->hash = h;
		return 0;
	}
	if (news) {
		struct refusal *f = &o->refused[o->refused_next++ % FIRST_SEEN_MAX];
		f->g = *g;
		f->hash = h;
	}
	return 0;
}

/* ---- queueing ---- */

/* The rule's extra tags that name the index after the run (into names, borrowed from plan). */
static size_t
extra_tags(const struct cfg *c, const struct group *g, const struct asm_result *res, struct plan *plan,
    const char **names)
{
	const struct rule *r = cfg_rule_by_name(c, g->rule_name);
	size_t i, n = 0;

	memset(plan, 0, sizeof(*plan));
	if (r == NULL)
		return 0;
	rule_plan(r, g->repo, g->version, plan);
	for (i = 0; i < plan->n_extra; i++)
		if (plan->extra[i].tag[0] != '\0' && (res->extra_at_index & (1u << i)) != 0)
			names[n++] = plan->extra[i].tag;
	return n;
}

void
outbox_assembly(struct outbox *o, const struct cfg *c, const struct group *g,
    const struct asm_result *r, long long run_ms)
{
	unsigned kind = cloudevent_kind(r);
	const char *names[PLAN_MAX_EXTRA_TAGS];
	char id[40], now[32], err[512];
	struct ce_input in;
	struct plan plan;
	long long since, created;
	char *body = NULL;
	size_t i, wanted = 0;

	if (o == NULL || r->outcome == ASM_DRY_RUN)
		return;
	pthread_mutex_lock(&o->mu);
	since = first_seen_take(o, g, r->outcome == ASM_WAITING || r->outcome == ASM_FAILED);
	if (repeated_news(o, g, r, kind))
		kind = 0;
	pthread_mutex_unlock(&o->mu);
	for (i = 0; i < c->n_notify; i++)
		if (c->notify[i].events & kind)
			wanted++;
	if (kind == 0 || wanted == 0)
		return;
	cloudevent_new_id(id, sizeof(id));
	cloudevent_now(now, sizeof(now));
	memset(&in, 0, sizeof(in));
	in.kind = kind;
	in.id = id;
	in.time = now;
	in.registry = g->host;
	in.version = g->version;
	in.rule = g->rule_name;
	in.res = r;
	in.tags = names;
	in.n_tags = extra_tags(c, g, r, &plan, names);
	in.since_first_ms = since >= 0 ? since : run_ms;
	body = cloudevent_build(&in);
	plan_clear(&plan);
	created = am_wall_ms();
	for (i = 0; i < c->n_notify; i++) {
		const struct cfg_notify *t = &c->notify[i];
		struct delivery *d, **pp;
		if (!(t->events & kind))
			continue;
		d = xcalloc(1, sizeof(*d));
		d->url = xstrdup(t->url);
		d->secret_file = xstrdup(t->secret_file);
		d->ca_file = t->ca_file != NULL ? xstrdup(t->ca_file) : NULL;
		d->timeout_ms = t->timeout_ms;
		d->retry_initial_ms = t->retry_initial_ms;
		d->retry_max_ms = t->retry_max_ms;
		d->max_age_s = t->max_age_s;
		d->created_ms = created;
		(void)am_fmt(d->id, sizeof(d->id), "%s", id);
		d->body = xstrdup(body);
		pthread_mutex_lock(&o->mu);
		(void)am_fmt(d->name, sizeof(d->name), "%013lld-%08u-%s-%zu.json", created, o->seq++, id, i);
		pthread_mutex_unlock(&o->mu);
		/* Written outside the lock: the sender goes on meanwhile. */
		if (delivery_write(o, d, err, sizeof(err)) != AM_OK) {
			log_kv(LOG_ERROR, "notify", LOG_S("result", "not journaled"), LOG_S("url", d->url),
			    LOG_S("id", id), LOG_S("detail", err));
			d->name[0] = '\0';   /* still sent from memory, but a restart loses it */
		}
		pthread_mutex_lock(&o->mu);
		for (pp = &o->head; *pp != NULL; pp = &(*pp)->next)
			;
		*pp = d;
		o->n++;
		bound(o, t->url, t->max_pending);
		pthread_cond_signal(&o->cv);
		pthread_mutex_unlock(&o->mu);
		log_kv(LOG_INFO, "notify", LOG_S("result", "queued"), LOG_S("type", cloudevent_kind_name(kind)),
		    LOG_S("target", r->target), LOG_S("url", t->url), LOG_S("id", id));
	}
	free(body);
}

/* ---- sending ---- */

static int
should_abort(void *ctx)
{
	struct outbox *o = ctx;

	return atomic_load(&o->quit);
}

/* One attempt: 0 when the receiver answered 2xx; else err says why. */
static int
deliver(struct outbox *o, const struct delivery *d, char *err, size_t errlen)
{
	char sig[CE_SIGNATURE_MAX], sighdr[CE_SIGNATURE_MAX + 40], *key = NULL;
	const char *hdrs[3];
	struct fetch_opts fo;
	struct fetch_reply rep;
	int rc = -1;

	if (am_read_secret(d->secret_file, &key, err, errlen) != AM_OK)
		return -1;
	cloudevent_sign(key, strlen(key), d->body, strlen(d->body), sig);
	am_secret_free(key);
	(void)am_fmt(sighdr, sizeof(sighdr), "%s: %s", CE_SIGNATURE_HEADER, sig);
	hdrs[0] = "Content-Type: " CE_CONTENT_TYPE;
	hdrs[1] = sighdr;
	hdrs[2] = NULL;
	memset(&fo, 0, sizeof(fo));
	fo.url = d->url;
	fo.method = "POST";
	fo.body = d->body;
	fo.body_len = strlen(d->body);
	fo.headers = hdrs;
	fo.ca_file = d->ca_file;
	fo.timeout_ms = d->timeout_ms;
	fo.max = 64 * 1024;
	fo.abort_cb = should_abort;
	fo.abort_ctx = o;
	if (fetch_get(&fo, &rep, err, errlen) != AM_OK)
		return -1;
	if (rep.status >= 200 && rep.status < 300)
		rc = 0;
	else
		(void)am_fmt(err, errlen, "POST %s answered %ld", d->url, rep.status);
	fetch_reply_clear(&rep);
	return rc;
}

/* The next delivery due now (o->mu held): the oldest one whose endpoint is not backing off. */
static struct delivery *
next_due(struct outbox *o, long long now, long long *wake)
{
	struct delivery *d, *nx;
	long long wall = am_wall_ms();

	*wake = now + 1000;
	for (d = o->head; d != NULL; d = nx) {
		struct endpoint *e;
		nx = d->next;
		if (d->max_age_s > 0 && wall - d->created_ms > (long long)d->max_age_s * 1000) {
			log_kv(LOG_WARN, "notify", LOG_S("result", "expired"), LOG_S("url", d->url),
			    LOG_S("id", d->id), LOG_I("max_age_s", d->max_age_s));
			drop(o, d, "expired");
			continue;
		}
		e = endpoint(o, d->url);
		if (e->next_ms <= now)
			return d;
		if (e->next_ms < *wake)
			*wake = e->next_ms;
	}
	return NULL;
}

static long
backoff(const struct delivery *d, unsigned failures)
{
	long long step = d->retry_initial_ms;
	unsigned i;

	for (i = 1; i < failures && step < d->retry_max_ms; i++)
		step *= 2;
	return (long)(step > d->retry_max_ms ? d->retry_max_ms : step);
}

static void *
sender_main(void *arg)
{
	struct outbox *o = arg;
	struct delivery *d;
	struct endpoint *e;
	long long now, wake, t0;
	struct timespec ts;
	char err[512];
	int rc;

	pthread_mutex_lock(&o->mu);
	while (!atomic_load(&o->quit)) {
		now = am_now_ms();
		if ((d = next_due(o, now, &wake)) == NULL) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (wake - now) / 1000;
			ts.tv_nsec += (long)((wake - now) % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&o->cv, &o->mu, &ts);
			continue;
		}
		d->sending = 1;
		pthread_mutex_unlock(&o->mu);
		t0 = am_now_ms();
		rc = deliver(o, d, err, sizeof(err));
		pthread_mutex_lock(&o->mu);
		d->sending = 0;
		e = endpoint(o, d->url);
		if (rc == 0) {
			e->failures = 0;
			e->next_ms = 0;
			log_kv(LOG_INFO, "notify", LOG_S("result", "delivered"), LOG_S("url", d->url),
			    LOG_S("id", d->id), LOG_I("ms", am_now_ms() - t0));
			drop(o, d, "delivered");
		} else if (!atomic_load(&o->quit)) {
			e->failures++;
			e->next_ms = am_now_ms() + backoff(d, e->failures);
			metrics_notify("failed");
			log_kv(LOG_WARN, "notify", LOG_S("result", "failed"), LOG_S("url", d->url),
			    LOG_S("id", d->id), LOG_I("attempt", e->failures),
			    LOG_I("retry_in_ms", e->next_ms - am_now_ms()), LOG_S("detail", err));
		}
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

/* ---- lifetime ---- */

static double
gauge_pending(void *ctx)
{
	return (double)outbox_pending(ctx);
}

size_t
outbox_pending(struct outbox *o)
{
	size_t n;

	pthread_mutex_lock(&o->mu);
	n = o->n;
	pthread_mutex_unlock(&o->mu);
	return n;
}

enum am_err
outbox_open(const char *state_dir, struct outbox **out, char *err, size_t errlen)
{
	struct outbox *o = xcalloc(1, sizeof(*o));
	pthread_condattr_t ca;
	char dir[4096];

	if (am_fmt(dir, sizeof(dir), "%s/outbox", state_dir) != 0) {
		free(o);
		return am_fail(err, errlen, AM_EINVAL, "state_dir too long for the outbox");
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		free(o);
		return am_fail(err, errlen, AM_EIO, "%s: %s", dir, strerror(errno));
	}
	o->dir = xstrdup(dir);
	pthread_mutex_init(&o->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cv, &ca);
	pthread_condattr_destroy(&ca);
	load(o);
	o->started = 1;
	if (pthread_create(&o->thread, NULL, sender_main, o) != 0) {
		o->started = 0;
		outbox_free(o);
		return am_fail(err, errlen, AM_EIO, "cannot start the notification sender");
	}
	(void)metrics_gauge_register("archmerge_notify_pending",
	    "Outbound notifications waiting in the outbox (state_dir/outbox).", gauge_pending, o);
	if (o->n > 0)
		log_kv(LOG_INFO, "notify", LOG_S("result", "outbox"), LOG_S("dir", o->dir), LOG_I("pending", o->n),
		    LOG_S("detail", "sent again"));
	*out = o;
	return AM_OK;
}

void
outbox_free(struct outbox *o)
{
	struct delivery *d;
	struct endpoint *e;

	if (o == NULL)
		return;
	metrics_gauge_unregister("archmerge_notify_pending", o);
	if (o->started) {
		pthread_mutex_lock(&o->mu);
		atomic_store(&o->quit, 1);
		pthread_cond_signal(&o->cv);
		pthread_mutex_unlock(&o->mu);
		pthread_join(o->thread, NULL);
	}
	while ((d = o->head) != NULL) {
		o->head = d->next;
		delivery_free(d);
	}
	while ((e = o->eps) != NULL) {
		o->eps = e->next;
		free(e->url);
		free(e);
	}
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o->dir);
	free(o);
}
