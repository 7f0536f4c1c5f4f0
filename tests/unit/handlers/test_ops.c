/* /readyz decided from state alone: local checks fatal, registries reported only. */
#include "tests/unit/harness.h"

#include "handlers/ops.h"
#include "config/config.h"

static int
failing_has(json_t *body, const char *name)
{
	json_t *f = json_object_get(body, "failing");
	size_t i;

	for (i = 0; i < json_array_size(f); i++)
		if (strcmp(json_string_value(json_array_get(f, i)), name) == 0)
			return 1;
	return 0;
}

/* issue 23: who may read what, for the startup log and check-config. */
static void
test_exposure(void)
{
	struct cfg c;
	struct ops_exposure ex;
	char secret[] = "/etc/archmerge/status.secret", listen[] = "127.0.0.1:9090";

	memset(&c, 0, sizeof(c));
	ops_exposure(&c, &ex);           /* the default: repository-level data closed */
	CHECK_STR(ex.public_, "/healthz /readyz /metrics");
	CHECK_STR(ex.secret, "");
	CHECK_STR(ex.closed, "/status /ui");
	c.status_public = 1;
	ops_exposure(&c, &ex);
	CHECK_STR(ex.public_, "/healthz /readyz /metrics /status /ui");
	CHECK_STR(ex.closed, "");
	c.status_public = 0;
	c.status_listen = listen;        /* the operator chose that address */
	ops_exposure(&c, &ex);
	CHECK_STR(ex.public_, "/healthz /readyz /metrics /status /ui");
	c.status_secret_file = secret;
	ops_exposure(&c, &ex);
	CHECK_STR(ex.public_, "/healthz /readyz");
	CHECK_STR(ex.secret, "/metrics /status /ui");
	CHECK_STR(ex.closed, "");
}

static void
run_tests(void)
{
	struct ops_registry regs[1];
	struct ops_ready_in in;
	json_t *b, *a;
	int st;

	memset(regs, 0, sizeof(regs));
	(void)snprintf(regs[0].host, sizeof(regs[0].host), "harbor.example.com");
	(void)snprintf(regs[0].last_error, sizeof(regs[0].last_error), "timed out");
	memset(&in, 0, sizeof(in));
	in.config_path = "/etc/archmerge/archmerge.conf";
	in.state_dir = "/var/lib/archmerge";
	in.dir_checked_ms = 1000;
	in.dir_ok = 1;
	in.regs = regs;
	in.n_regs = 1;
	in.journal_known = 1;
	test_exposure();

	/* An unreachable registry does not fail readiness: it is reported, non-fatal. */
	b = ops_ready(&in, &st);
	CHECK(st == 200 && json_array_size(json_object_get(b, "failing")) == 0);
	CHECK(json_array_size(json_object_get(b, "checks")) == 5);
	json_decref(b);
	/* Not checked yet, a full state_dir, a failed append newer than the probe, shutdown: 503. */
	in.dir_checked_ms = 0;
	b = ops_ready(&in, &st);
	CHECK(st == 503 && failing_has(b, "state_dir"));
	json_decref(b);
	in.dir_checked_ms = 1000;
	in.journal_failing = 1;
	in.journal_last_fail_ms = 1500;
	b = ops_ready(&in, &st);
	CHECK(st == 503 && failing_has(b, "journal"));
	json_decref(b);
	in.journal_last_fail_ms = 500;   /* a good probe since: the disk takes blocks again */
	b = ops_ready(&in, &st);
	CHECK(st == 200);
	json_decref(b);
	in.journal_broken = 1;
	b = ops_ready(&in, &st);
	CHECK(st == 503 && failing_has(b, "journal"));
	json_decref(b);
	in.journal_broken = 0;
	in.stopping = 1;
	b = ops_ready(&in, &st);
	CHECK(st == 503 && failing_has(b, "shutdown"));
	json_decref(b);

	regs[0].reachable = 1;
	regs[0].checked = 0;
	a = ops_registries_json(regs, 1);
	CHECK(json_array_size(a) == 1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(a, 0), "checked")), "1970-01-01T00:00:00Z");
	CHECK(json_is_true(json_object_get(json_array_get(a, 0), "reachable")));
	CHECK(json_is_false(json_object_get(json_array_get(a, 0), "credentials_ok")));
	json_decref(a);

	/*
	 * An error text cut inside a UTF-8 character (the client's error buffer
	 * is full) or carrying a stray byte: the registry stays in the list, the
	 * text loses only the cut character, a stray byte becomes '?'.
	 */
	memset(regs[0].last_error, 'a', sizeof(regs[0].last_error));
	memcpy(regs[0].last_error + sizeof(regs[0].last_error) - 3, "\xc3", 1);
	regs[0].last_error[sizeof(regs[0].last_error) - 2] = '\0';   /* "aaa...a\xc3": cut in an "\xc3\xa9" */
	a = ops_registries_json(regs, 1);
	CHECK(json_array_size(a) == 1);
	CHECK(json_string_length(json_object_get(json_array_get(a, 0), "last_error")) ==
	    sizeof(regs[0].last_error) - 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(a, 0), "host")), "harbor.example.com");
	json_decref(a);
	(void)snprintf(regs[0].last_error, sizeof(regs[0].last_error), "caf\xc3\xa9 \xff \xe2\x82 \xed\xa0\x80 ok");
	a = ops_registries_json(regs, 1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(a, 0), "last_error")),
	    "caf\xc3\xa9 ? ?? ??? ok");
	json_decref(a);
	regs[0].reachable = 0;
	b = ops_ready(&in, &st);
	CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(b, "checks"), 4), "error")),
	    "caf\xc3\xa9 ? ?? ??? ok");
	json_decref(b);
}

TEST_MAIN("ops")
