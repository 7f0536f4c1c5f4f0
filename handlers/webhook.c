/*
 * Webhook decisions. Order of checks: method, authentication, size, media
 * type, payload; only then rule matching. Nothing here touches the registry:
 * matched groups are queued and the answer goes back at once.
 */
#include "handlers/webhook.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>

static void
reply(struct webhook_resp *resp, int status, json_t *body)
{
	resp->status = status;
	resp->body = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(body);
}

static void
reject(struct webhook_resp *resp, int status, const char *reason)
{
	char why[256], quoted[256];
	size_t i;

	/* Parser messages may quote raw input: keep the reason one printable ASCII
	 * line (truncation could also split a UTF-8 sequence, which json_pack
	 * refuses), and keep double quotes out of the logfmt summary. */
	(void)am_fmt(why, sizeof(why), "%s", reason);
	for (i = 0; why[i] != '\0'; i++) {
		if ((unsigned char)why[i] < 0x20 || (unsigned char)why[i] >= 0x7f)
			why[i] = '?';
		quoted[i] = why[i] == '"' ? '\'' : why[i];
	}
	quoted[i] = '\0';
	reply(resp, status, json_pack("{s:s, s:s}", "status", "rejected", "error", why));
	resp->outcome = "rejected";
	(void)am_fmt(resp->summary, sizeof(resp->summary), "outcome=rejected reason=\"%s\"", quoted);
}

/* Short stable names of the ignore reasons, for metrics labels. */
static const char *
reason_code(const char *why)
{
	static const struct { const char *prefix, *code; } codes[] = {
		{ "not a push event", "not_push" },
		{ "pushed by digest", "by_digest" },
		{ "unknown registry host", "unknown_host" },
		{ "archmerge's own push", "own_push" },
		{ "no rule matches the tag (it has the form of a target tag)", "target_tag" },
		{ "no rule matches the tag", "no_rule" },
	};
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strncmp(why, codes[i].prefix, strlen(codes[i].prefix)) == 0)
			return codes[i].code;
	return "other";
}

static void
ignore(struct webhook_resp *resp, const char *why, const char *what)
{
	reply(resp, 200, json_pack("{s:s, s:s}", "status", "ignored", "reason", why));
	resp->outcome = "ignored";
	resp->reason = reason_code(why);
	(void)am_fmt(resp->summary, sizeof(resp->summary), "outcome=ignored reason=\"%s\"%s%s",
	    why, what[0] ? " " : "", what);
}

/* "application/json; charset=utf-8" -> compares the part before ';'. */
static int
media_is(const char *ct, const char *want)
{
	size_t n = strcspn(ct, "; \t");
	return n == strlen(want) && strncasecmp(ct, want, n) == 0;
}

/* Why an event resource needs nothing, or NULL when it matched a rule. */
static const char *
match_resource(const struct webhook_env *env, const struct event *ev,
    const struct event_resource *res, struct group *g)
{
	const struct cfg *c = env->cfg;
	const struct cfg_registry *reg;
	struct rule_match m;
	size_t i;

	if (res->by_digest)
		return "pushed by digest (no tag)";
	reg = cfg_registry_by_host(c, res->host);
	if (reg == NULL)
		return "unknown registry host";
	if (reg->username != NULL && strcmp(ev->operator_, reg->username) == 0)
		return "archmerge's own push (operator is its robot account)";
	for (i = 0; i < c->n_rules; i++) {
		if (rule_match_source(&c->rules[i], ev->repo, res->tag, &m)) {
			memset(g, 0, sizeof(*g));
			(void)am_fmt(g->host, sizeof(g->host), "%s", reg->host);
			g->rule = i;
			(void)am_fmt(g->rule_name, sizeof(g->rule_name), "%s", c->rules[i].name);
			(void)am_fmt(g->repo, sizeof(g->repo), "%s", m.repo);
			(void)am_fmt(g->version, sizeof(g->version), "%s", m.version);
			return NULL;
		}
	}
	for (i = 0; i < c->n_rules; i++)
		if (rule_match_target(&c->rules[i], ev->repo, res->tag))
			return "no rule matches the tag (it has the form of a target tag)";
	return "no rule matches the tag";
}

int
webhook_precheck(const struct webhook_env *env, const struct webhook_req *req,
    struct webhook_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	if (strcmp(req->method, "POST") != 0) {
		reject(resp, 405, "only POST is accepted");
		return 1;
	}
	if (env->secret != NULL && (req->authorization == NULL ||
	    !am_secure_equal(req->authorization, strlen(req->authorization),
	    env->secret, strlen(env->secret)))) {
		reject(resp, 401, "missing or wrong Authorization header");
		return 1;
	}
	return 0;
}

void
webhook_handle(const struct webhook_env *env, const struct webhook_req *req,
    struct webhook_resp *resp)
{
	struct event ev;
	struct group g;
	json_t *groups;
	const char *why = NULL, *ct = req->content_type;
	char err[256], what[384] = "", name[NAME_MAX_REPO + NAME_MAX_TAG + 300];
	int cloudevents, queued = 0, r_enq;
	size_t i;

	if (webhook_precheck(env, req, resp))
		return;
	if (req->body_too_large) {
		reject(resp, 413, "payload too large");
		return;
	}
	if (req->body_incomplete) {
		reject(resp, 408, "request body incomplete (too slow, or the connection closed)");
		return;
	}
	if (ct == NULL || (!media_is(ct, "application/json") &&
	    !media_is(ct, "application/cloudevents+json"))) {
		reject(resp, 415, "Content-Type must be application/json or application/cloudevents+json");
		return;
	}
	cloudevents = media_is(ct, "application/cloudevents+json");
	if (event_parse(req->body, req->body_len, cloudevents, &ev, err, sizeof(err)) != AM_OK) {
		reject(resp, 400, err);
		return;
	}
	if (!ev.is_push) {
		(void)am_fmt(what, sizeof(what), "type=%s", ev.type);
		ignore(resp, "not a push event", what);
		return;
	}
	groups = json_array();
	for (i = 0; i < ev.n_resources; i++) {
		const char *r = match_resource(env, &ev, &ev.resources[i], &g);
		if (r != NULL) {
			why = r;
			continue;
		}
		if ((r_enq = env->enqueue(env->ctx, &g)) < 0) {
			/* Not on disk: no 202. Harbor sends the event again; duplicates are harmless. */
			json_decref(groups);
			reply(resp, 503, json_pack("{s:s, s:s}", "status", "unavailable", "error",
			    "the event could not be recorded durably; send it again later"));
			(void)am_fmt(resp->summary, sizeof(resp->summary),
			    "outcome=unavailable reason=\"journal write failed\" repo=%s", ev.repo);
			return;
		}
		queued += r_enq;
		(void)am_fmt(name, sizeof(name), "%s/%s:%s", g.host, g.repo, g.version);
		json_array_append_new(groups, json_string(name));
	}
	(void)am_fmt(what, sizeof(what), "repo=%s tag=%s", ev.repo,
	    ev.resources[0].by_digest ? ev.resources[0].digest : ev.resources[0].tag);
	if (json_array_size(groups) == 0) {
		json_decref(groups);
		ignore(resp, why, what);
		return;
	}
	(void)am_fmt(resp->summary, sizeof(resp->summary), "outcome=queued %s group=%s%s", what,
	    json_string_value(json_array_get(groups, 0)), queued ? "" : " coalesced=1");
	reply(resp, 202, json_pack("{s:s, s:o}", "status", "queued", "groups", groups));
	resp->outcome = "accepted";
}
