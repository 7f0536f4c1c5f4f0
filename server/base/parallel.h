/*
 * Independent blocking calls at once: the caller waits for the slowest of
 * them instead of their sum. Meant for jobs that mostly wait on the network
 * (the assembly's registry reads); a small stack each.
 */
#ifndef AM_PARALLEL_H
#define AM_PARALLEL_H

#include <pthread.h>
#include <stddef.h>

/* One job: the caller sets run and arg; thread and started are par_run's (its bookkeeping). */
struct par_job {
	void (*run)(void *arg);
	void *arg;
	pthread_t thread;
	int started;
};

/*
 * Run jobs[0..n) and return when every one has returned. jobs[0] runs on
 * the calling thread, the others each on a parked helper thread (started on
 * first need, then kept: up to 64 for the process) or, beyond those, on a
 * thread of their own for this run; a job no thread can be had for runs on
 * the calling thread afterwards, so every job runs exactly once whatever
 * the system allows. Any thread may call it, many at once.
 */
void par_run(struct par_job *jobs, size_t n);

/* Helper threads started so far in this process (they are kept; for tests and curiosity). */
size_t par_helpers_started(void);

#endif
