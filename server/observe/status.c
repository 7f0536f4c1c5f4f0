/*
 * Status recorder: three fixed tables under one mutex. Waiting groups are
 * keyed by "host/repo:version"; publications and failures are rings. The
 * JSON view is built under the lock (a few hundred entries at most).
 */
#include "server/observe/status.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/base/common.h"
#include "server/base/log.h"

#define GROUP_LEN (256 + RULE_MAX_REPO + RULE_MAX_TAG + 4)

struct entry {
	char group[GROUP_LEN];
	char rule[128];
	char target[NAME_MAX_REPO + NAME_MAX_TAG + 2];
	char outcome[16];
	char digest[80];
	char detail[1024];
	char job[32];
	long long ms;
	time_t first, last;       /* waiting: since / last check; rings: when */
	unsigned long checks;
	json_t *present;          /* [{arch, source, digest, platform}] found; owned, may be NULL */
	json_t *blocked;          /* [{arch, policy, repo, tag, digest, message}]; owned, may be NULL */
	unsigned tags_pushed;
	long long hint_to_done_ms;   /* published: last webhook to publish; -1 unknown */
};

/* Last webhook per group, to tell how long publishing took from it. */
struct hint {
	char group[GROUP_LEN];
	long long at_ms;          /* am_now_ms(); 0: free slot */
};

struct ring {
	struct entry e[STATUS_MAX_RECENT];
	size_t next, n;
};

struct status_rec {
	pthread_mutex_t lock;
	struct entry waiting[STATUS_MAX_WAITING];
	size_t n_waiting;
	struct ring published, failures;
	unsigned long counts[6];  /* by enum asm_outcome */
	struct hint hints[STATUS_MAX_WAITING];
	unsigned long forgotten;  /* waiting entries given up for a newer one (the table was full) */
	time_t forgot_logged;     /* when the last "forgotten" line was written */
	time_t started;
	unsigned long signatures; /* index signatures written */
	unsigned long unsigned_refusals;   /* refused: a child without valid signature */
};

struct status_rec *
status_new(void)
{
	struct status_rec *s = xcalloc(1, sizeof(*s));

	pthread_mutex_init(&s->lock, NULL);
	s->started = time(NULL);
	return s;
}

void
status_free(struct status_rec *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n_waiting; i++) {
		json_decref(s->waiting[i].present);
		json_decref(s->waiting[i].blocked);
	}
	for (i = 0; i < STATUS_MAX_RECENT; i++) {
		json_decref(s->published.e[i].present);
		json_decref(s->failures.e[i].present);
		json_decref(s->published.e[i].blocked);
		json_decref(s->failures.e[i].blocked);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Strings from registries may not be UTF-8: Jansson refuses those, so clean them. */
static json_t *
text(const char *s)
{
	json_t *v = json_string(s);
	char *copy;
	size_t i;

	if (v != NULL)
		return v;
	copy = xstrdup(s);
	for (i = 0; copy[i] != '\0'; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

static json_t *
present_json(const struct asm_result *r)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < r->n_present && i < ASM_MAX_PRESENT; i++) {
		json_t *o = json_pack("{s:o, s:o, s:o, s:o}",
		    "arch", text(r->present[i].arch), "source", text(r->present[i].source),
		    "digest", text(r->present[i].digest), "platform", text(r->present[i].platform));
		if (r->present[i].rejected)
			json_object_set_new(o, "rejected", json_true());
		json_array_append_new(a, o);
	}
	return a;
}

/* The children the registry's policy would not let be read, with its words. */
static json_t *
blocked_json(const struct asm_result *r)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < r->n_blocked && i < ASM_MAX_BLOCKED; i++) {
		const struct asm_block *b = &r->blocked[i];
		json_array_append_new(a, json_pack("{s:o, s:s, s:o, s:o, s:o, s:o}",
		    "arch", text(b->arch), "policy", asm_policy_name(b->policy), "repo", text(b->repo),
		    "tag", text(b->tag), "digest", text(b->digest), "message", text(b->message)));
	}
	return a;
}

/* Forget what an entry owns before it is reused. */
static void
entry_reset(struct entry *e)
{
	json_decref(e->blocked);
	json_decref(e->present);
	memset(e, 0, sizeof(*e));
	e->hint_to_done_ms = -1;
}

static void
fill(struct entry *e, const char *key, const char *job, const char *rule,
    const struct asm_result *r, long long ms, time_t now)
{
	(void)am_fmt(e->group, sizeof(e->group), "%s", key);
	(void)am_fmt(e->rule, sizeof(e->rule), "%s", rule ? rule : "");
	(void)am_fmt(e->target, sizeof(e->target), "%s", r->target);
	(void)am_fmt(e->outcome, sizeof(e->outcome), "%s", asm_outcome_name(r->outcome));
	(void)am_fmt(e->digest, sizeof(e->digest), "%s", r->digest);
	(void)am_fmt(e->detail, sizeof(e->detail), "%s", r->detail);
	(void)am_fmt(e->job, sizeof(e->job), "%s", job ? job : "");
	e->ms = ms;
	e->last = now;
	json_decref(e->present);
	e->present = present_json(r);
	json_decref(e->blocked);
	e->blocked = r->n_blocked > 0 ? blocked_json(r) : NULL;   /* only a waiting run has any */
	e->tags_pushed = r->tags_pushed;
}

static void
ring_push(struct ring *rg, const char *key, const char *job, const char *rule,
    const struct asm_result *r, long long ms, time_t now)
{
	struct entry *e = &rg->e[rg->next];

	entry_reset(e);
	fill(e, key, job, rule, r, ms, now);
	e->first = now;
	rg->next = (rg->next + 1) % STATUS_MAX_RECENT;
	if (rg->n < STATUS_MAX_RECENT)
		rg->n++;
}

static struct entry *
waiting_find(struct status_rec *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->n_waiting; i++)
		if (strcmp(s->waiting[i].group, key) == 0)
			return &s->waiting[i];
	return NULL;
}

/*
 * Full: the group checked longest ago gives way. It still waits in the
 * registry (the next push of its missing architecture, or the reconcile
 * pass, publishes it); only this picture loses it, which the count and a
 * log line (the first, then at most one a minute) say. *gone gets its name.
 */
static struct entry *
waiting_forget(struct status_rec *s, time_t now, char *gone, size_t gonelen)
{
	size_t i, oldest = 0;

	for (i = 1; i < s->n_waiting; i++)
		if (s->waiting[i].last < s->waiting[oldest].last)
			oldest = i;
	s->forgotten++;
	gone[0] = '\0';
	if (s->forgotten == 1 || now - s->forgot_logged >= 60) {
		(void)am_fmt(gone, gonelen, "%s", s->waiting[oldest].group);
		s->forgot_logged = now;
	}
	return &s->waiting[oldest];
}

static void
waiting_note(struct status_rec *s, const char *key, const char *job, const char *rule,
    const struct asm_result *r, long long ms, time_t now, char *gone, size_t gonelen)
{
	struct entry *e = waiting_find(s, key);

	if (e == NULL) {
		if (s->n_waiting == STATUS_MAX_WAITING) {
			e = waiting_forget(s, now, gone, gonelen);
			entry_reset(e);
		} else {
			/* Slots past the end own nothing (a drop moved their pointers down). */
			e = &s->waiting[s->n_waiting++];
			e->present = NULL;
			e->blocked = NULL;
			entry_reset(e);
		}
		e->first = now;
	}
	fill(e, key, job, rule, r, ms, now);
	e->checks++;
}

static void
waiting_drop(struct status_rec *s, const char *key)
{
	struct entry *e = waiting_find(s, key);

	if (e == NULL)
		return;
	json_decref(e->present);
	json_decref(e->blocked);
	/* Keep the table ordered by arrival: shift the rest down. */
	memmove(e, e + 1, (size_t)(&s->waiting[s->n_waiting] - (e + 1)) * sizeof(*e));
	s->n_waiting--;
	s->waiting[s->n_waiting].present = NULL;
	s->waiting[s->n_waiting].blocked = NULL;
}

static struct hint *
hint_slot(struct status_rec *s, const char *key, int create)
{
	struct hint *h, *victim = &s->hints[0];
	size_t i;

	for (i = 0; i < STATUS_MAX_WAITING; i++) {
		h = &s->hints[i];
		if (h->at_ms != 0 && strcmp(h->group, key) == 0)
			return h;
		if (h->at_ms < victim->at_ms)
			victim = h;       /* a free slot (0) or the oldest hint */
	}
	if (!create)
		return NULL;
	(void)am_fmt(victim->group, sizeof(victim->group), "%s", key);
	return victim;
}

void
status_hint(struct status_rec *s, const struct group *g)
{
	char key[GROUP_LEN];

	(void)group_name(g, key, sizeof(key));
	pthread_mutex_lock(&s->lock);
	hint_slot(s, key, 1)->at_ms = am_now_ms();
	pthread_mutex_unlock(&s->lock);
}

/* A publication takes the group's last webhook: the time it waited for. */
static void
hint_take(struct status_rec *s, const char *key, struct entry *e)
{
	struct hint *h = hint_slot(s, key, 0);

	if (h == NULL)
		return;
	e->hint_to_done_ms = am_now_ms() - h->at_ms;
	h->at_ms = 0;
}

void
status_record(struct status_rec *s, const char *job, const struct group *g,
    const char *rule, const struct asm_result *r, long long ms)
{
	char key[GROUP_LEN], gone[GROUP_LEN] = "";
	unsigned long forgotten = 0;
	time_t now = time(NULL);

	if (r->outcome == ASM_DRY_RUN)
		return;
	(void)group_name(g, key, sizeof(key));
	pthread_mutex_lock(&s->lock);
	if ((size_t)r->outcome < sizeof(s->counts) / sizeof(s->counts[0]))
		s->counts[r->outcome]++;
	s->signatures += r->signatures_made;
	s->unsigned_refusals += r->unsigned_child ? 1 : 0;
	switch (r->outcome) {
	case ASM_WAITING:
		waiting_note(s, key, job, rule, r, ms, now, gone, sizeof(gone));
		forgotten = s->forgotten;
		break;
	case ASM_PUBLISHED:
		waiting_drop(s, key);
		ring_push(&s->published, key, job, rule, r, ms, now);
		hint_take(s, key, &s->published.e[(s->published.next + STATUS_MAX_RECENT - 1) %
		    STATUS_MAX_RECENT]);
		break;
	case ASM_UNCHANGED:
		waiting_drop(s, key);
		break;
	case ASM_REFUSED:
		waiting_drop(s, key);
		ring_push(&s->failures, key, job, rule, r, ms, now);
		break;
	case ASM_FAILED:
		/* A registry fault says nothing about what is present: a waiting group stays. */
		ring_push(&s->failures, key, job, rule, r, ms, now);
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&s->lock);
	if (gone[0] != '\0')
		log_kv(LOG_WARN, "status waiting forgotten", LOG_S("group", gone), LOG_S("for", key),
		    LOG_I("forgotten", forgotten), LOG_I("max", STATUS_MAX_WAITING),
		    LOG_S("detail", "the list of waiting groups is full: the one checked longest ago "
		    "is no longer shown (it still waits; a push or the reconcile pass publishes it)"));
}

size_t
status_waiting_count(struct status_rec *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->n_waiting;
	pthread_mutex_unlock(&s->lock);
	return n;
}

double
status_oldest_waiting_seconds(struct status_rec *s, time_t now)
{
	time_t first = 0;
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->n_waiting; i++)
		if (first == 0 || s->waiting[i].first < first)
			first = s->waiting[i].first;
	pthread_mutex_unlock(&s->lock);
	return first == 0 || now <= first ? 0 : (double)(now - first);
}

static json_t *
when(time_t t)
{
	char buf[32];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

/* Borrowed array -> a copy for the caller (or [] when none was kept). */
static json_t *
present_copy(const struct entry *e)
{
	return e->present != NULL ? json_deep_copy(e->present) : json_array();
}

/* "missing amd64,arm64[; ...]" -> ["amd64","arm64"]; anything else -> []. */
static json_t *
missing_list(const char *detail)
{
	json_t *a = json_array();
	const char *p, *end;

	if (strncmp(detail, "missing ", 8) != 0)
		return a;
	for (p = detail + 8; *p != '\0' && *p != ';'; p = *end && *end != ';' ? end + 1 : end) {
		end = p + strcspn(p, ",; ");
		if (end > p)
			json_array_append_new(a, json_stringn(p, (size_t)(end - p)));
		while (*end == ' ')
			end++;
	}
	return a;
}

static json_t *
ring_json(const struct ring *rg, int failures)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < rg->n; i++) {
		const struct entry *e = &rg->e[(rg->next + STATUS_MAX_RECENT - 1 - i) % STATUS_MAX_RECENT];
		json_t *o = json_object();
		json_object_set_new(o, "time", when(e->last));
		json_object_set_new(o, "group", text(e->group));
		json_object_set_new(o, "rule", text(e->rule));
		json_object_set_new(o, "target", text(e->target));
		if (failures) {
			json_object_set_new(o, "outcome", json_string(e->outcome));
			json_object_set_new(o, "error", text(e->detail));
			json_object_set_new(o, "present", present_copy(e));
		} else {
			json_object_set_new(o, "digest", text(e->digest));
			json_object_set_new(o, "children", present_copy(e));
			json_object_set_new(o, "tags_pushed", json_integer(e->tags_pushed));
			json_object_set_new(o, "detail", text(e->detail));
			if (e->hint_to_done_ms >= 0)
				json_object_set_new(o, "webhook_to_publish_ms", json_integer(e->hint_to_done_ms));
		}
		json_object_set_new(o, "job", text(e->job));
		json_object_set_new(o, "ms", json_integer(e->ms));
		json_array_append_new(a, o);
	}
	return a;
}

json_t *
status_json(struct status_rec *s)
{
	static const char *const names[] = { "published", "unchanged", "waiting", "refused", "failed" };
	json_t *root = json_object(), *w = json_array(), *counts = json_object();
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->n_waiting; i++) {
		const struct entry *e = &s->waiting[i];
		json_t *o = json_object();
		json_object_set_new(o, "group", text(e->group));
		json_object_set_new(o, "rule", text(e->rule));
		json_object_set_new(o, "target", text(e->target));
		json_object_set_new(o, "missing", missing_list(e->detail));
		json_object_set_new(o, "blocked", e->blocked != NULL ? json_deep_copy(e->blocked) :
		    json_array());
		json_object_set_new(o, "present", present_copy(e));
		json_object_set_new(o, "detail", text(e->detail));
		json_object_set_new(o, "since", when(e->first));
		json_object_set_new(o, "last_check", when(e->last));
		json_object_set_new(o, "checks", json_integer((json_int_t)e->checks));
		json_object_set_new(o, "job", text(e->job));
		json_array_append_new(w, o);
	}
	json_object_set_new(root, "waiting", w);
	json_object_set_new(root, "waiting_forgotten", json_integer((json_int_t)s->forgotten));
	json_object_set_new(root, "published", ring_json(&s->published, 0));
	json_object_set_new(root, "failures", ring_json(&s->failures, 1));
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		json_object_set_new(counts, names[i], json_integer((json_int_t)s->counts[i]));
	json_object_set_new(counts, "signatures", json_integer((json_int_t)s->signatures));
	json_object_set_new(counts, "unsigned_child_refusals", json_integer((json_int_t)s->unsigned_refusals));
	json_object_set_new(root, "counts", counts);
	json_object_set_new(root, "started", when(s->started));
	json_object_set_new(root, "uptime_seconds", json_integer((json_int_t)(time(NULL) - s->started)));
	pthread_mutex_unlock(&s->lock);
	return root;
}
