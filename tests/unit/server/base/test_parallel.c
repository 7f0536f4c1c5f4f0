/* Unit tests: server/base/parallel.c, independent jobs at once. */
#include "tests/unit/harness.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "server/base/parallel.h"

#define N_JOBS 6

struct rec {
	int runs;                    /* how often this job ran */
	pthread_t on;                /* the thread it ran on */
	long tid;                    /* the kernel's id of that thread (never reused this soon) */
	int saw_all;                 /* every job was under way while this one ran */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t arrived = PTHREAD_COND_INITIALIZER;
static int under_way, expected;

/* Counts itself in, then waits (bounded) until every job is under way at once. */
static void
meet(void *ud)
{
	struct rec *r = ud;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&lock);
	r->runs++;
	r->on = pthread_self();
	r->tid = (long)syscall(SYS_gettid);
	under_way++;
	pthread_cond_broadcast(&arrived);
	while (under_way < expected)
		if (pthread_cond_timedwait(&arrived, &lock, &until) != 0)
			break;
	r->saw_all = under_way >= expected;
	pthread_mutex_unlock(&lock);
}

static void
count(void *ud)
{
	struct rec *r = ud;

	r->runs++;
	r->on = pthread_self();
}

/* Runs n meeting jobs; each must be under way with all the others. */
static int
meet_run(struct par_job *jobs, struct rec *recs, size_t n)
{
	size_t i;
	int ok = 1;

	memset(jobs, 0, n * sizeof(*jobs));
	memset(recs, 0, n * sizeof(*recs));
	under_way = 0;
	expected = (int)n;
	for (i = 0; i < n; i++) {
		jobs[i].run = meet;
		jobs[i].arg = &recs[i];
	}
	par_run(jobs, n);
	for (i = 0; i < n; i++)
		ok &= recs[i].runs == 1 && recs[i].saw_all;
	return ok;
}

/* A second run's helper jobs land on threads of the first run (kept, parked), none started anew. */
static void
helpers_are_kept(void)
{
	struct par_job jobs[N_JOBS];
	struct rec first[N_JOBS], again[N_JOBS];
	size_t i, j, started;
	int all_reused = 1;

	CHECK(meet_run(jobs, first, N_JOBS));
	started = par_helpers_started();
	CHECK(started >= N_JOBS - 1);
	CHECK(meet_run(jobs, again, N_JOBS));
	for (i = 1; i < N_JOBS; i++) {
		int seen = 0;
		for (j = 1; j < N_JOBS; j++)
			seen |= again[i].tid == first[j].tid;
		all_reused &= seen;
	}
	CHECK(all_reused);
	CHECK(par_helpers_started() == started);
}

struct caller {
	pthread_t t;
	int ok;
};

static void
count_locked(void *ud)
{
	int *n = ud;

	pthread_mutex_lock(&lock);
	(*n)++;
	pthread_mutex_unlock(&lock);
}

/* Many callers at once (the workers), each waiting only for its own jobs. */
static void *
caller_main(void *ud)
{
	struct caller *c = ud;
	struct par_job jobs[4];
	int runs[4], round, i;

	c->ok = 1;
	for (round = 0; round < 200; round++) {
		memset(jobs, 0, sizeof(jobs));
		memset(runs, 0, sizeof(runs));
		for (i = 0; i < 4; i++) {
			jobs[i].run = count_locked;
			jobs[i].arg = &runs[i];
		}
		par_run(jobs, 4);
		pthread_mutex_lock(&lock);
		for (i = 0; i < 4; i++)
			c->ok &= runs[i] == 1;
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

static void
callers_at_once(void)
{
	struct caller cs[4];
	int i, ok = 1;

	for (i = 0; i < 4; i++)
		pthread_create(&cs[i].t, NULL, caller_main, &cs[i]);
	for (i = 0; i < 4; i++) {
		pthread_join(cs[i].t, NULL);
		ok &= cs[i].ok;
	}
	CHECK(ok);
	CHECK(par_helpers_started() <= 64);
}

static void
run_tests(void)
{
	struct par_job jobs[N_JOBS];
	struct rec recs[N_JOBS];
	size_t i;
	int all_once = 1, all_met = 1, others_off_caller = 1;

	/* No jobs: nothing runs, nothing breaks. */
	par_run(NULL, 0);
	CHECK(1);

	/* One job: on the calling thread, no thread started. */
	memset(jobs, 0, sizeof(jobs));
	memset(recs, 0, sizeof(recs));
	jobs[0].run = count;
	jobs[0].arg = &recs[0];
	par_run(jobs, 1);
	CHECK(recs[0].runs == 1);
	CHECK(pthread_equal(recs[0].on, pthread_self()));

	/*
	 * Several: each runs exactly once, jobs[0] on the caller, the others on
	 * threads of their own, all under way at the same time (each waits
	 * until all have arrived; a serial runner would time out there).
	 */
	memset(jobs, 0, sizeof(jobs));
	memset(recs, 0, sizeof(recs));
	under_way = 0;
	expected = N_JOBS;
	for (i = 0; i < N_JOBS; i++) {
		jobs[i].run = meet;
		jobs[i].arg = &recs[i];
	}
	par_run(jobs, N_JOBS);
	for (i = 0; i < N_JOBS; i++) {
		all_once &= recs[i].runs == 1;
		all_met &= recs[i].saw_all;
		if (i > 0 && pthread_equal(recs[i].on, pthread_self()))
			others_off_caller = 0;
	}
	CHECK(all_once);
	CHECK(all_met);
	CHECK(pthread_equal(recs[0].on, pthread_self()));
	CHECK(others_off_caller);

	helpers_are_kept();
	callers_at_once();
}

TEST_MAIN("parallel")
