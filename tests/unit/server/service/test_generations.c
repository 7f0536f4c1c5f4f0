/*
 * Configuration generations through the service's own API: a reload makes a
 * new generation current at once, with each secret read once at that moment;
 * a holder of the old one keeps it, whole, until it lets go; a reload whose
 * secret cannot be read keeps the running generation. The last holder of an
 * old generation may be a request thread: the generation is then freed on
 * the service's own thread, never on the holder's.
 */
#include "tests/unit/harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "server/service/service.h"
#include "server/base/log.h"

static char dir[] = "/tmp/am-gen-XXXXXX";

static void
put(const char *name, const char *text, mode_t mode)
{
	char path[256];
	FILE *f;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	CHECK((f = fopen(path, "w")) != NULL && fputs(text, f) != EOF && fclose(f) == 0);
	CHECK(chmod(path, mode) == 0);
}

static struct cfg *
load(const char *rule)
{
	char text[2048], path[256], err[2048];
	struct cfg *c = NULL;

	(void)snprintf(text, sizeof(text),
	    "server = { listen = \"127.0.0.1:8080\"; plain_http = true; webhook_secret_file = \"%s/hook\"; };\n"
	    "registries = ( { host = \"r.example\"; url = \"http://127.0.0.1:9\"; username = \"robot\";\n"
	    "    password_file = \"%s/pw\"; } );\n"
	    "rules = ( { name = \"%s\"; repositories = [ \"library/*\" ]; source = \"{repo}:{version}-{arch}\";\n"
	    "    target = \"{repo}:{version}\"; architectures = [ \"amd64\" ]; } );\n", dir, dir, rule);
	put("a.conf", text, 0600);
	(void)snprintf(path, sizeof(path), "%s/a.conf", dir);
	if (cfg_load(path, 0, &c, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	return c;
}

/* What the free hook saw: the thread of each free, counted. */
struct frees {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n;
	pthread_t first;
};

static void
on_free(void *ctx)
{
	struct frees *f = ctx;

	pthread_mutex_lock(&f->mu);
	if (f->n++ == 0)
		f->first = pthread_self();
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* A webhook's thread: holds the generation of its start across a reload, then lets go. */
struct holder {
	struct service *s;
	const struct service_view *v;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int step;                /* 1: holding; 2: told to let go; 3: let go */
};

static void *
holder_main(void *arg)
{
	struct holder *h = arg;

	pthread_mutex_lock(&h->mu);
	h->v = service_acquire(h->s);
	h->step = 1;
	pthread_cond_broadcast(&h->cv);
	while (h->step != 2)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
	service_release(h->s, h->v);       /* the generation's last reference */
	pthread_mutex_lock(&h->mu);
	h->step = 3;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static void
holder_wait(struct holder *h, int step)
{
	pthread_mutex_lock(&h->mu);
	while (h->step != step)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

/*
 * SIGHUP while a webhook holds the generation: the webhook's release is the
 * last one, yet the generation (clients, configuration) is freed on another
 * thread, soon, while the service runs.
 */
static void
test_free_off_request_thread(void)
{
	struct frees f = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	struct holder h = { NULL, NULL, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct service *s = NULL;
	struct cfg *c1, *c2, *c3;
	struct timespec until;
	pthread_t th;
	char err[512];
	int freed;

	put("pw", "first", 0600);
	CHECK((c1 = load("one")) != NULL);
	CHECK((c2 = load("two")) != NULL);
	CHECK((c3 = load("three")) != NULL);
	CHECK(service_new(c1, 0, &s, err, sizeof(err)) == AM_OK);
	service_set_free_hook(s, on_free, &f);
	/* The startup generation stays pinned: the second one is the one that dies. */
	CHECK(service_reload(s, c2, err, sizeof(err)) == AM_OK);
	h.s = s;
	CHECK(pthread_create(&th, NULL, holder_main, &h) == 0);
	holder_wait(&h, 1);
	CHECK_STR(h.v->cfg->rules[0].name, "two");
	CHECK(service_reload(s, c3, err, sizeof(err)) == AM_OK);
	pthread_mutex_lock(&f.mu);
	CHECK(f.n == 0);                     /* still held by the request */
	pthread_mutex_unlock(&f.mu);
	pthread_mutex_lock(&h.mu);
	h.step = 2;
	pthread_cond_broadcast(&h.cv);
	pthread_mutex_unlock(&h.mu);
	holder_wait(&h, 3);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&f.mu);
	while (f.n == 0 && pthread_cond_timedwait(&f.cv, &f.mu, &until) == 0)
		;
	freed = f.n;
	CHECK(freed == 1);                   /* freed while the service runs, not at its end */
	CHECK(freed == 0 || !pthread_equal(f.first, th));
	CHECK(freed == 0 || !pthread_equal(f.first, pthread_self()));
	pthread_mutex_unlock(&f.mu);
	pthread_join(th, NULL);
	service_free(s);
	CHECK(f.n == 3);                     /* then the current and the startup one */
	cfg_free(c1);
}

static void
run_tests(void)
{
	struct service *s = NULL;
	const struct service_view *v1, *v2, *v3;
	struct cfg *c1, *c2, *c3;
	char err[512];

	CHECK(mkdtemp(dir) != NULL);
	log_set_level(LOG_ERROR);   /* the plain-HTTP credentials warning is expected here */
	put("hook", "Bearer one", 0600);
	put("pw", "first", 0600);
	CHECK((c1 = load("one")) != NULL);
	CHECK(service_new(c1, 0, &s, err, sizeof(err)) == AM_OK);
	v1 = service_acquire(s);
	CHECK_STR(v1->secret, "Bearer one");
	CHECK_STR(v1->passwords[0], "first");
	CHECK_STR(v1->cfg->rules[0].name, "one");

	/* Rotated secrets and a renamed rule: a new generation, read at the reload. */
	put("hook", "Bearer two", 0600);
	put("pw", "second", 0600);
	CHECK((c2 = load("two")) != NULL);
	CHECK(service_reload(s, c2, err, sizeof(err)) == AM_OK);
	v2 = service_acquire(s);
	CHECK(v2 != v1);
	CHECK_STR(v2->secret, "Bearer two");
	CHECK_STR(v2->passwords[0], "second");
	CHECK_STR(v2->cfg->rules[0].name, "two");
	/* The holder of the first still sees all of it, unchanged. */
	CHECK_STR(v1->secret, "Bearer one");
	CHECK_STR(v1->passwords[0], "first");
	CHECK_STR(v1->cfg->rules[0].name, "one");
	service_release(s, v1);

	/* A secret that cannot be read: the reload fails, the running generation stays. */
	put("pw", "third", 0644);
	CHECK((c3 = load("three")) != NULL);
	CHECK(service_reload(s, c3, err, sizeof(err)) != AM_OK);
	CHECK(strstr(err, "pw") != NULL);
	v3 = service_acquire(s);
	CHECK(v3 == v2);
	CHECK_STR(v3->cfg->rules[0].name, "two");
	service_release(s, v3);
	service_release(s, v2);
	cfg_free(c3);
	service_free(s);
	cfg_free(c1);   /* the first generation's configuration stays the caller's */
	test_free_off_request_thread();
	{
		char cmd[128];
		(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		CHECK(system(cmd) == 0);
	}
}

TEST_MAIN("generations")
