#include "handlers/ops.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "server/base/common.h"

/* Length of the valid UTF-8 sequence at s (Jansson's rules: no overlong form, no surrogate, at most
 * U+10FFFF); 0 when none starts there, -1 when s ends inside one that was valid so far. */
static int
utf8_seq(const unsigned char *s)
{
	unsigned c = s[0], need, min, cp, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1, min = 0x80, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		need = 2, min = 0x800, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 3, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	for (i = 1; i <= need; i++) {
		if (s[i] == '\0')
			return -1;
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return (int)need + 1;
}

/*
 * A JSON string from a message that may have been cut inside a character (a
 * full error buffer) or carry bytes that are not UTF-8 (a registry's reply):
 * the cut character is dropped, every other stray byte becomes '?'. Never
 * NULL, so the entry holding it never goes missing. New reference.
 */
static json_t *
text_json(const char *msg)
{
	const unsigned char *s = (const unsigned char *)msg;
	size_t len = strlen(msg), i = 0, o = 0;
	char *out = xmalloc(len + 1);
	json_t *j;
	int n;

	while (i < len) {
		n = utf8_seq(s + i);
		if (n < 0)
			break;   /* cut at the end */
		if (n == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, (size_t)n);
		o += (size_t)n;
		i += (size_t)n;
	}
	j = json_stringn(out, o);
	free(out);
	return j != NULL ? j : json_string("");
}

static void
check(json_t *checks, json_t *failing, const char *name, const char *error, const char *what,
    int fatal)
{
	json_t *c = json_pack("{s:s, s:b, s:b}", "name", name, "ok", error == NULL, "fatal", fatal);

	if (what != NULL)
		json_object_set_new(c, "target", json_string(what));
	if (error != NULL) {
		json_object_set_new(c, "error", text_json(error));
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
		json_array_append_new(a, json_pack("{s:o, s:b, s:b, s:o, s:s}", "host", text_json(r->host),
		    "reachable", r->reachable, "credentials_ok", r->credentials_ok,
		    "last_error", text_json(r->last_error), "checked", when));
	}
	return a;
}

/* Append path to a space-separated list (the lists are fixed and short). */
static void
add_path(char *list, size_t len, const char *path)
{
	size_t off = strlen(list);

	(void)am_fmt(list + off, len - off, "%s%s", off > 0 ? " " : "", path);
}

void
ops_exposure(const struct cfg *c, struct ops_exposure *out)
{
	char *repo_level;

	memset(out, 0, sizeof(*out));
	add_path(out->public_, sizeof(out->public_), "/healthz /readyz");
	/* /metrics carries no repository names: open unless a secret is set. */
	add_path(c->status_secret_file != NULL ? out->secret : out->public_,
	    c->status_secret_file != NULL ? sizeof(out->secret) : sizeof(out->public_), "/metrics");
	/* /status and /ui name repositories, digests and registry errors. */
	if (c->status_secret_file != NULL)
		repo_level = out->secret;
	else if (c->status_listen != NULL || c->status_public)
		repo_level = out->public_;
	else
		repo_level = out->closed;
	add_path(repo_level, sizeof(out->public_), "/status /ui");
}
