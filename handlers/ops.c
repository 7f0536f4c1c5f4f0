#include "handlers/ops.h"

#include "server/base/common.h"

static void
check(json_t *checks, json_t *failing, const char *name, const char *error, const char *what,
    int fatal)
{
	json_t *c = json_pack("{s:s, s:b, s:b}", "name", name, "ok", error == NULL, "fatal", fatal);
	json_t *msg;

	if (what != NULL)
		json_object_set_new(c, "target", json_string(what));
	if (error != NULL) {
		if ((msg = json_string(error)) == NULL)
			msg = json_string("(message is not UTF-8)");
		json_object_set_new(c, "error", msg);
		if (fatal)
			json_array_append_new(failing, json_string(name));
	}
	json_array_append_new(checks, c);
}

/* The journal takes appends: not broken, and no failure newer than the last good state_dir probe. */
static const char *
journal_problem(const struct ops_ready_in *in)
{
	long long dir_ok_ms = in->dir_ok ? in->dir_checked_ms : 0;

	if (!in->journal_known)
		return NULL;
	if (in->journal_broken)
		return "the journal failed earlier (see the log); restart archmerge";
	if (in->journal_failing && in->journal_last_fail_ms >= dir_ok_ms)
		return "the last journal append failed (see the log)";
	return NULL;
}

json_t *
ops_ready(const struct ops_ready_in *in, int *status)
{
	json_t *checks = json_array(), *failing = json_array();
	char name[300];
	size_t i;

	check(checks, failing, "configuration", NULL, in->config_path, 1);
	check(checks, failing, "shutdown", in->stopping ? "shutting down" : NULL, NULL, 1);
	check(checks, failing, "state_dir", in->dir_checked_ms == 0 ? "not checked yet" :
	    in->dir_ok ? NULL : in->dir_err, in->state_dir, 1);
	check(checks, failing, "journal", journal_problem(in), in->state_dir, 1);
	for (i = 0; i < in->n_regs; i++) {
		const struct ops_registry *r = &in->regs[i];
		(void)am_fmt(name, sizeof(name), "registry %s", r->host);
		check(checks, failing, name, r->reachable && r->credentials_ok ? NULL : r->last_error,
		    NULL, 0);
	}
	*status = json_array_size(failing) == 0 ? 200 : 503;
	return json_pack("{s:s, s:o, s:o}", "status", *status == 200 ? "ready" : "not ready",
	    "failing", failing, "checks", checks);
}

json_t *
ops_registries_json(const struct ops_registry *regs, size_t n)
{
	json_t *a = json_array();
	char when[32];
	struct tm tm;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct ops_registry *r = &regs[i];
		gmtime_r(&r->checked, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_array_append_new(a, json_pack("{s:s, s:b, s:b, s:s, s:s}", "host", r->host,
		    "reachable", r->reachable, "credentials_ok", r->credentials_ok,
		    "last_error", r->last_error, "checked", when));
	}
	return a;
}
