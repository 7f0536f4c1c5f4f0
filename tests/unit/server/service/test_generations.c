/*
 * Configuration generations through the service's own API: a reload makes a
 * new generation current at once, with each secret read once at that moment;
 * a holder of the old one keeps it, whole, until it lets go; a reload whose
 * secret cannot be read keeps the running generation.
 */
#include "tests/unit/harness.h"

#include <stdio.h>
#include <stdlib.h>
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
	{
		char cmd[128];
		(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		CHECK(system(cmd) == 0);
	}
}

TEST_MAIN("generations")
