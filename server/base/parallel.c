/*
 * par_run: one thread per job but the first. The threads only wait on the
 * network, so a small stack does (glibc keeps it cached for the next run).
 */
#include "server/base/parallel.h"

#define PAR_STACK (256 * 1024)

static void *
par_job_main(void *ud)
{
	struct par_job *j = ud;

	j->run(j->arg);
	return NULL;
}

void
par_run(struct par_job *jobs, size_t n)
{
	pthread_attr_t attr;
	int have_attr = pthread_attr_init(&attr) == 0;
	size_t i;

	if (have_attr)
		(void)pthread_attr_setstacksize(&attr, PAR_STACK);
	for (i = 1; i < n; i++)
		jobs[i].started = pthread_create(&jobs[i].thread, have_attr ? &attr : NULL, par_job_main,
		    &jobs[i]) == 0;
	if (have_attr)
		pthread_attr_destroy(&attr);
	if (n > 0)
		jobs[0].run(jobs[0].arg);
	for (i = 1; i < n; i++) {
		if (jobs[i].started)
			pthread_join(jobs[i].thread, NULL);
		else
			jobs[i].run(jobs[i].arg);
	}
}
