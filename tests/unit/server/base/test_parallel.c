/* Unit tests: server/base/parallel.c, independent jobs at once. */
#include "tests/unit/harness.h"

#include <pthread.h>
#include <time.h>

#include "server/base/parallel.h"

#define N_JOBS 6

struct rec {
	int runs;                    /* how often this job ran */
	pthread_t on;                /* the thread it ran on */
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
}

TEST_MAIN("parallel")
