/*
 * Unit tests: the work queue (server/queue.c). Per-group serialisation and
 * coalescing under many concurrent pushers, delayed retries that do not hold
 * a worker, and stopping with or without a bound.
 */
#include "tests/unit/harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "server/queue/queue.h"

#define GROUPS 40

static struct group
grp(int i)
{
	struct group g;

	memset(&g, 0, sizeof(g));
	(void)am_fmt(g.host, sizeof(g.host), "h");
	(void)am_fmt(g.rule_name, sizeof(g.rule_name), "r");
	(void)am_fmt(g.repo, sizeof(g.repo), "library/app%d", i);
	(void)am_fmt(g.version, sizeof(g.version), "1.0");
	return g;
}

static int
group_no(const struct group *g)
{
	return atoi(g->repo + strlen("library/app"));
}

/* ---- serialisation and coalescing at scale ---- */

static atomic_long tick;
static atomic_int inside[GROUPS], max_inside[GROUPS];
static atomic_long last_push[GROUPS], last_start[GROUPS];
static atomic_long runs;

static long
run_counting(void *ctx, const struct group *g, unsigned attempt)
{
	int k = group_no(g), now;

	(void)ctx;
	(void)attempt;
	atomic_store(&last_start[k], atomic_fetch_add(&tick, 1) + 1);
	now = atomic_fetch_add(&inside[k], 1) + 1;
	if (now > atomic_load(&max_inside[k]))
		atomic_store(&max_inside[k], now);
	usleep(200 + (unsigned)(rand() % 300));
	atomic_fetch_sub(&inside[k], 1);
	atomic_fetch_add(&runs, 1);
	return -1;
}

struct pusher {
	struct queue *q;
	int seed;
	int pushes;
};

static void *
push_many(void *arg)
{
	struct pusher *p = arg;
	struct group g;
	int i, k;

	for (i = 0; i < p->pushes; i++) {
		k = (p->seed * 7919 + i * 31) % GROUPS;
		g = grp(k);
		/* Stamp before pushing: some run must start after this point. */
		atomic_store(&last_push[k], atomic_fetch_add(&tick, 1) + 1);
		(void)queue_push(p->q, &g);
		if (i % 16 == 0)
			usleep(100);
	}
	return NULL;
}

static void
test_serialised_and_coalesced(void)
{
	struct queue *q = queue_new(6, run_counting, NULL);
	struct pusher p[8];
	pthread_t th[8];
	int i, ok_serial = 1, ok_latest = 1;

	for (i = 0; i < 8; i++) {
		p[i].q = q;
		p[i].seed = i + 1;
		p[i].pushes = 1500;
		pthread_create(&th[i], NULL, push_many, &p[i]);
	}
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	queue_wait_idle(q);
	CHECK(queue_depth(q) == 0);
	for (i = 0; i < GROUPS; i++) {
		if (atomic_load(&max_inside[i]) > 1)
			ok_serial = 0;
		/* Every group ran once more after its last event arrived. */
		if (atomic_load(&last_push[i]) != 0 && atomic_load(&last_start[i]) < atomic_load(&last_push[i]))
			ok_latest = 0;
	}
	CHECK(ok_serial);
	CHECK(ok_latest);
	CHECK(atomic_load(&runs) < 8 * 1500);     /* coalesced */
	printf("queue: %d pushes for %d groups -> %ld runs\n", 8 * 1500, GROUPS, atomic_load(&runs));
	queue_free(q);
}

/* ---- delayed retries ---- */

static atomic_int flaky_runs, other_runs;
static unsigned seen_attempts[8];
static long long flaky_at[8];

static long
run_flaky(void *ctx, const struct group *g, unsigned attempt)
{
	int n;

	(void)ctx;
	if (group_no(g) != 0) {
		atomic_fetch_add(&other_runs, 1);
		return -1;
	}
	n = atomic_fetch_add(&flaky_runs, 1);
	if (n < 8) {
		seen_attempts[n] = attempt;
		flaky_at[n] = am_now_ms();
	}
	return attempt < 2 ? 150 : -1;      /* fails twice, then works */
}

static void
test_delayed_retry(void)
{
	struct queue *q = queue_new(1, run_flaky, NULL);
	struct group g0 = grp(0), g1 = grp(1);
	long long t0;

	CHECK(queue_push(q, &g0) == 1);
	t0 = am_now_ms();
	while (atomic_load(&flaky_runs) < 1 && am_now_ms() - t0 < 5000)
		usleep(1000);
	usleep(20000);
	/* g0 now waits 150 ms for its retry; the only worker is free for g1. */
	CHECK(queue_push(q, &g1) == 1);
	while (atomic_load(&other_runs) < 1 && am_now_ms() - t0 < 5000)
		usleep(1000);
	CHECK(atomic_load(&other_runs) == 1);
	CHECK(atomic_load(&flaky_runs) == 1);
	/* A new event for g0 during its backoff coalesces, runs now and counts from attempt 0 again. */
	CHECK(queue_push(q, &g0) == 0);
	queue_wait_idle(q);
	CHECK(atomic_load(&flaky_runs) == 4);
	CHECK(seen_attempts[0] == 0 && seen_attempts[1] == 0 && seen_attempts[2] == 1 && seen_attempts[3] == 2);
	CHECK(flaky_at[1] - flaky_at[0] < 145);
	CHECK(flaky_at[2] - flaky_at[1] >= 145 && flaky_at[3] - flaky_at[2] >= 145);
	queue_free(q);
}

/* ---- a parked retry does not hold back the next push ---- */

static atomic_int parked_runs;
static unsigned parked_attempts[4];
static long long parked_at[4];

static long
run_parked(void *ctx, const struct group *g, unsigned attempt)
{
	int n = atomic_fetch_add(&parked_runs, 1);

	(void)ctx;
	(void)g;
	if (n < 4) {
		parked_attempts[n] = attempt;
		parked_at[n] = am_now_ms();
	}
	return n == 0 ? 3600L * 1000 : -1;   /* the first run is told to come back in an hour */
}

static void
test_push_brings_parked_retry_forward(void)
{
	struct queue *q = queue_new(2, run_parked, NULL);
	struct group g = grp(3);
	long long t0 = am_now_ms();

	CHECK(queue_push(q, &g) == 1);
	while (atomic_load(&parked_runs) < 1 && am_now_ms() - t0 < 5000)
		usleep(1000);
	usleep(20000);
	CHECK(queue_depth(q) == 1);            /* parked for an hour */
	CHECK(queue_push(q, &g) == 0);         /* coalesced into the parked slot ... */
	while (atomic_load(&parked_runs) < 2 && am_now_ms() - t0 < 5000)
		usleep(1000);
	CHECK(atomic_load(&parked_runs) == 2);  /* ... and run now, not in an hour */
	CHECK(parked_attempts[1] == 0);         /* a fresh event: the attempts start again */
	CHECK(parked_at[1] - parked_at[0] < 2000);
	queue_wait_idle(q);
	CHECK(queue_depth(q) == 0);
	queue_free(q);
}

/* ---- waking a group out of its backoff ---- */

static atomic_int blocked_runs;
static long long blocked_at[4];

/* Blocked twice with a long backoff (a child not readable yet), then done. */
static long
run_blocked(void *ctx, const struct group *g, unsigned attempt)
{
	int n = atomic_fetch_add(&blocked_runs, 1);

	(void)ctx;
	(void)g;
	(void)attempt;
	if (n < 4)
		blocked_at[n] = am_now_ms();
	return n < 2 ? 60000 : -1;
}

static void
test_wake(void)
{
	struct queue *q = queue_new(1, run_blocked, NULL);
	struct group g0 = grp(0);
	long long t0 = am_now_ms();

	CHECK(queue_push(q, &g0) == 1);
	while (atomic_load(&blocked_runs) < 1 && am_now_ms() - t0 < 5000)
		usleep(1000);
	usleep(20000);
	/* A wake (the child was scanned) cuts the minute's wait short. */
	CHECK(atomic_load(&blocked_runs) == 1);
	CHECK(queue_wake(q, &g0) == 0);
	while (atomic_load(&blocked_runs) < 2 && am_now_ms() - t0 < 5000)
		usleep(1000);
	CHECK(atomic_load(&blocked_runs) == 2);
	CHECK(blocked_at[1] - blocked_at[0] < 5000);
	/* Waiting again: a second wake runs it at once, and it is done. */
	usleep(20000);
	CHECK(queue_wake(q, &g0) == 0);
	queue_wait_idle(q);
	CHECK(atomic_load(&blocked_runs) == 3);
	CHECK(am_now_ms() - t0 < 5000);
	/* A group nobody queued: a wake queues it like a push. */
	CHECK(queue_wake(q, &g0) == 1);
	queue_wait_idle(q);
	CHECK(atomic_load(&blocked_runs) == 4);
	queue_free(q);
}

/* ---- stopping ---- */

static atomic_int release_gate, stop_runs;

static long
run_gated(void *ctx, const struct group *g, unsigned attempt)
{
	(void)ctx;
	(void)g;
	(void)attempt;
	atomic_fetch_add(&stop_runs, 1);
	while (!atomic_load(&release_gate))
		usleep(1000);
	return -1;
}

static void
test_stop(void)
{
	struct queue *q = queue_new(1, run_gated, NULL);
	struct group g;
	long long t0 = am_now_ms();
	int i;

	for (i = 0; i < 5; i++) {
		g = grp(i);
		(void)queue_push(q, &g);
	}
	while (atomic_load(&stop_runs) < 1 && am_now_ms() - t0 < 5000)
		usleep(1000);
	/* One job hangs: the bounded stop gives up after its timeout. */
	t0 = am_now_ms();
	CHECK(queue_stop(q, 100) == 1);
	CHECK(am_now_ms() - t0 >= 95 && am_now_ms() - t0 < 3000);
	atomic_store(&release_gate, 1);
	CHECK(queue_stop(q, 5000) == 0);
	CHECK(queue_depth(q) == 4);           /* left for the journal, not run */
	queue_free(q);
	CHECK(atomic_load(&stop_runs) == 1);
}

/* ---- identity by rule name ---- */

static atomic_int named_runs;

static long
run_slow(void *ctx, const struct group *g, unsigned attempt)
{
	(void)ctx;
	(void)g;
	(void)attempt;
	atomic_fetch_add(&named_runs, 1);
	usleep(50000);
	return -1;
}

static void
test_rule_name_identity(void)
{
	struct queue *q = queue_new(1, run_slow, NULL);
	struct group a = grp(1), b = grp(2), c;

	CHECK(queue_push(q, &a) == 1);       /* starts running */
	usleep(10000);
	CHECK(queue_push(q, &b) == 1);
	c = b;
	CHECK(queue_push(q, &c) == 0);       /* same rule name: the same group */
	c = b;
	(void)am_fmt(c.rule_name, sizeof(c.rule_name), "other rule");
	CHECK(queue_push(q, &c) == 1);       /* another rule: another group */
	queue_wait_idle(q);
	CHECK(atomic_load(&named_runs) == 3);
	queue_free(q);
	queue_free(NULL);
}

/* ---- many pending groups: coalescing and arrival order through the hash index ---- */

#define MANY 20000
static atomic_int many_gate, many_runs;
static int many_order[MANY + 8];

static long
run_many(void *ctx, const struct group *g, unsigned attempt)
{
	int k = atomic_fetch_add(&many_runs, 1);

	(void)ctx;
	(void)attempt;
	while (!atomic_load(&many_gate))
		usleep(1000);
	if (k < MANY + 8)
		many_order[k] = group_no(g);
	return -1;
}

static void
test_many_pending(void)
{
	struct queue *q = queue_new(1, run_many, NULL);
	struct group g;
	long long t0 = am_now_ms();
	int i, fresh = 0, again = 0, ordered = 1;

	for (i = 0; i < MANY; i++) {
		g = grp(i);
		fresh += queue_push(q, &g);
	}
	while (atomic_load(&many_runs) < 1 && am_now_ms() - t0 < 5000)
		usleep(1000);
	/* group 0 runs (held at the gate); the rest wait, each once however often pushed */
	for (i = 0; i < MANY; i++) {
		g = grp(i);
		again += queue_push(q, &g);
	}
	CHECK(fresh == MANY && again == 0);
	CHECK(queue_depth(q) == MANY);
	atomic_store(&many_gate, 1);
	queue_wait_idle(q);
	/* group 0 twice in a row (pushed while it ran), then every other once, in arrival order */
	CHECK(atomic_load(&many_runs) == MANY + 1);
	for (i = 1; i < MANY; i++)
		ordered &= many_order[i + 1] == i;
	CHECK(ordered && many_order[0] == 0 && many_order[1] == 0);
	queue_free(q);
}

static void
run_tests(void)
{
	srand(42);
	test_serialised_and_coalesced();
	test_delayed_retry();
	test_push_brings_parked_retry_forward();
	test_wake();
	test_stop();
	test_rule_name_identity();
	test_many_pending();
}

TEST_MAIN("queue")
