/*
 * What a job handed to another thread waits before it runs: a thread started
 * for it (pthread_create, 256 KiB stack, as par_run did per job) against a
 * thread already parked on a condition variable (par_run's helpers), each
 * after IDLE_US of nothing (an idle service between pushes). Not part of
 * `make bench`; docs/performance.md quotes it.
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -o thread_wake bench/thread_wake.c -lpthread
 *   ./thread_wake 0; ./thread_wake 250000; ./thread_wake 1000000
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 20

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER, done = PTHREAD_COND_INITIALIZER;
static int handed, finished;
static long long ran_at;

static long long
now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *
started(void *ud)
{
	(void)ud;
	ran_at = now_ns();
	return NULL;
}

static void *
parked(void *ud)
{
	(void)ud;
	pthread_mutex_lock(&mu);
	for (;;) {
		while (!handed)
			pthread_cond_wait(&wake, &mu);
		handed = 0;
		ran_at = now_ns();
		finished = 1;
		pthread_cond_signal(&done);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	long idle_us = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
	long long start_ns = 0, park_ns = 0, t0;
	pthread_attr_t attr;
	pthread_t helper, t;
	int i;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_create(&helper, NULL, parked, NULL);
	for (i = 0; i < ROUNDS; i++) {
		usleep((useconds_t)idle_us);
		t0 = now_ns();
		pthread_create(&t, &attr, started, NULL);
		pthread_join(t, NULL);
		start_ns += ran_at - t0;
		usleep((useconds_t)idle_us);
		t0 = now_ns();
		pthread_mutex_lock(&mu);
		handed = 1;
		finished = 0;
		pthread_cond_signal(&wake);
		while (!finished)
			pthread_cond_wait(&done, &mu);
		pthread_mutex_unlock(&mu);
		park_ns += ran_at - t0;
	}
	printf("idle %ld us: thread start -> running %lld us, parked thread wake -> running %lld us (mean of %d)\n",
	    idle_us, start_ns / ROUNDS / 1000, park_ns / ROUNDS / 1000, ROUNDS);
	return 0;
}
