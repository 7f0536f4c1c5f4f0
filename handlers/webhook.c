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
#include "handlers/notify.h"

#include "registry/sign/sign.h"
#include "registry/assemble/written.h"

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
	char why[256];
	size_t i;

	/* Parser messages may quote raw input: keep the reason one printable ASCII
	 * line (truncation could also split a UTF-8 sequence, which json_pack
	 * refuses). The log line escapes whatever is left. */
	(void)am_fmt(why, sizeof(why), "%s", reason);
	for (i = 0; why[i] != '\0'; i++)
		if ((unsigned char)why[i] < 0x20 || (unsigned char)why[i] >= 0x7f)
			why[i] = '?';
	reply(resp, status, json_pack("{s:s, s:s}", "status", "rejected", "error", why));
	resp->outcome = "rejected";
	(void)am_fmt(resp->why, sizeof(resp->why), "%s", why);
}

/* Short stable names of the ignore reasons, for metrics labels. */
static const char *
reason_code(const char *why)
{
	static const struct { const char *prefix, *code; } codes[] = {
		{ "not a push event", "not_push" },
		{ "pushed by digest", "by_digest" },
		{ "unknown registry host", "unknown_host" },
		{ "archmerge's own write", "own_push" },
		{ "no rule matches the tag: it is a target", "target_tag" },
		{ "no rule matches the tag", "no_rule" },
		{ "signature tag", "signature" },
		{ "blob push", "blob" },
		{ "invalid event", "invalid" },
	};
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strncmp(why, codes[i].prefix, strlen(codes[i].prefix)) == 0)
			return codes[i].code;
	return "other";
}

static void
ignore(struct webhook_resp *resp, const char *why)
{
	reply(resp, 200, json_pack("{s:s, s:s}", "status", "ignored", "reason", why));
	resp->outcome = "ignored";
	resp->reason = reason_code(why);
	(void)am_fmt(resp->why, sizeof(resp->why), "%s", why);
}

size_t
webhook_log_fields(const struct webhook_resp *r, struct log_field *f)
{
	size_t n = 0;

#define WH_S(k, v) do { f[n].key = (k); f[n].is_num = 0; f[n].str = (v)[0] ? (v) : NULL; \
	f[n].num = 0; n++; } while (0)
	f[n].key = "outcome"; f[n].is_num = 0; f[n].str = r->outcome; f[n].num = 0; n++;
	WH_S("reason", r->why);
	WH_S("type", r->type);
	WH_S("repo", r->repo);
	WH_S("tag", r->tag);
	WH_S("group", r->group);
	f[n].key = "coalesced"; f[n].is_num = 0; f[n].str = r->coalesced ? "1" : NULL; f[n].num = 0;
	n++;
#undef WH_S
	return n;
}

/* "application/json; charset=utf-8" -> compares the part before ';'. */
static int
media_is(const char *ct, const char *want)
{
	size_t n = strcspn(ct, "; \t");
	return n == strlen(want) && strncasecmp(ct, want, n) == 0;
}

/*
 * A pushed signature tag (sha256-<hex>.sig) re-triggers the group that was
 * refused for want of that image's signature. 1 when tag is a signature
 * tag: *why is then NULL (g filled) or why it is ignored.
 */
static int
signature_hint(const struct webhook_env *env, const char *host, const char *repo, const char *tag,
    struct group *g, const char **why)
{
	char digest[80];

	if (sig_digest_of_tag(tag, digest, sizeof(digest)) != 0)
		return 0;
	*why = env->sig_hint != NULL && env->sig_hint(env->ctx, host, repo, digest, g) ? NULL :
	    "signature tag of an image no group waits for";
	return 1;
}

/* Does any rule cover repo (as its target repository)? */
static int
covered(const struct cfg *c, const char *repo)
{
	size_t i;

	for (i = 0; i < c->n_rules; i++)
		if (rule_covers(&c->rules[i], repo))
			return 1;
	return 0;
}

static void
remember(const struct webhook_env *env, const char *host, const char *repo)
{
	if (env->remember != NULL)
		env->remember(env->ctx, host, repo);
}

/*
 * Why an event resource needs nothing, or NULL when it matched a rule.
 * archmerge's own writes are told by what they are, never by who pushed:
 * the digest it just wrote under that very tag, or a tag that is one of a
 * rule's outputs. A source tag is processed whoever pushed it (a shared
 * account for CI and archmerge is common).
 */
static const char *
match_resource(const struct webhook_env *env, const struct event *ev,
    const struct event_resource *res, struct group *g)
{
	const struct cfg *c = env->cfg;
	const struct cfg_registry *reg;
	struct rule_match m;
	const char *why;
	size_t i;

	if (res->by_digest)
		return "pushed by digest (no tag)";
	reg = cfg_registry_by_name(c, res->host);
	if (reg == NULL)
		return "unknown registry host";
	if (written_take(env->written, reg->host, ev->repo, res->tag, res->digest)) {
		if (covered(c, ev->repo))
			remember(env, reg->host, ev->repo);
		return "archmerge's own write (the digest it just pushed under this tag)";
	}
	if (signature_hint(env, reg->host, ev->repo, res->tag, g, &why))
		return why;
	for (i = 0; i < c->n_rules; i++) {
		if (rule_match_source(&c->rules[i], ev->repo, res->tag, &m)) {
			memset(g, 0, sizeof(*g));
			(void)am_fmt(g->host, sizeof(g->host), "%s", reg->host);
			(void)am_fmt(g->rule_name, sizeof(g->rule_name), "%s", c->rules[i].name);
			(void)am_fmt(g->repo, sizeof(g->repo), "%s", m.repo);
			(void)am_fmt(g->version, sizeof(g->version), "%s", m.version);
			remember(env, reg->host, m.repo);
			return NULL;
		}
	}
	for (i = 0; i < c->n_rules; i++) {
		if (rule_match_target(&c->rules[i], ev->repo, res->tag)) {
			remember(env, reg->host, ev->repo);
			return "no rule matches the tag: it is a target, extra or copy tag of a rule "
			    "(archmerge's own output)";
		}
	}
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

/* One event of an envelope: its answer item; *queued set when it was queued,
 * -1 when it could not be recorded. */
static int
envelope_event(const struct webhook_env *env, const struct notify_event *n, json_t *items,
    int *queued, const char **why)
{
	static struct event ev_zero;
	struct event ev = ev_zero;
	struct group g;
	char name[NAME_MAX_REPO + NAME_MAX_TAG + 300];
	const char *r = n->ignored;
	int q;

	if (r == NULL) {
		(void)am_fmt(ev.repo, sizeof(ev.repo), "%s", n->repo);
		(void)am_fmt(ev.operator_, sizeof(ev.operator_), "%s", n->actor);
		ev.is_push = 1;
		ev.n_resources = 1;
		(void)am_fmt(ev.resources[0].tag, sizeof(ev.resources[0].tag), "%s", n->tag);
		(void)am_fmt(ev.resources[0].digest, sizeof(ev.resources[0].digest), "%s", n->digest);
		(void)am_fmt(ev.resources[0].host, sizeof(ev.resources[0].host), "%s", n->host);
		r = match_resource(env, &ev, &ev.resources[0], &g);
	}
	if (r != NULL) {
		if (*why == NULL)
			*why = r;
		json_array_append_new(items, n->detail[0] ? json_pack("{s:s, s:s, s:s}", "status",
		    "ignored", "reason", r, "error", n->detail) : json_pack("{s:s, s:s}", "status",
		    "ignored", "reason", r));
		return 0;
	}
	if ((q = env->enqueue(env->ctx, &g)) < 0)
		return -1;
	*queued += 1;
	(void)am_fmt(name, sizeof(name), "%s/%s:%s", g.host, g.repo, g.version);
	json_array_append_new(items, json_pack("{s:s, s:s}", "status", q ? "queued" : "coalesced",
	    "group", name));
	return 0;
}

/*
 * distribution's envelope: every event is decided on its own. One status
 * for the whole: 503 when any could not be recorded (the registry resends
 * the envelope; repeats are harmless), else 202 when any was queued, else
 * 200. The body lists each event's outcome in order.
 */
static void
envelope_handle(const struct webhook_env *env, const struct webhook_req *req,
    struct webhook_resp *resp)
{
	struct notify_envelope *nv = malloc(sizeof(*nv));
	json_t *items = json_array();
	const char *why = NULL;
	char err[256];
	int queued = 0;
	size_t i;

	if (nv == NULL || notify_parse(req->body, req->body_len, nv, err, sizeof(err)) != AM_OK) {
		json_decref(items);
		reject(resp, nv == NULL ? 503 : 400, nv == NULL ? "out of memory" : err);
		free(nv);
		return;
	}
	for (i = 0; i < nv->n; i++) {
		if (envelope_event(env, &nv->ev[i], items, &queued, &why) < 0) {
			json_decref(items);
			reply(resp, 503, json_pack("{s:s, s:s}", "status", "unavailable", "error",
			    "the event could not be recorded durably; send it again later"));
			resp->outcome = "unavailable";
			(void)am_fmt(resp->why, sizeof(resp->why), "journal write failed");
			(void)am_fmt(resp->repo, sizeof(resp->repo), "%s", nv->ev[i].repo);
			free(nv);
			return;
		}
	}
	(void)am_fmt(resp->type, sizeof(resp->type), "notification");
	if (nv->n > 0)
		(void)am_fmt(resp->repo, sizeof(resp->repo), "%s", nv->ev[0].repo);
	if (queued > 0) {
		reply(resp, 202, json_pack("{s:s, s:o}", "status", "queued", "events", items));
		resp->outcome = "queued";
		(void)am_fmt(resp->group, sizeof(resp->group), "%d of %zu events queued", queued, nv->n);
	} else {
		reply(resp, 200, json_pack("{s:s, s:s, s:o}", "status", "ignored", "reason", why,
		    "events", items));
		resp->outcome = "ignored";
		resp->reason = reason_code(why);
		(void)am_fmt(resp->why, sizeof(resp->why), "%s", why);
	}
	free(nv);
}

/*
 * Method, authentication, size and media type: 2 distribution's notification
 * envelope, 1 CloudEvents, 0 Default, -1 rejected (resp filled).
 */
static int
check_request(const struct webhook_env *env, const struct webhook_req *req,
    struct webhook_resp *resp)
{
	const char *ct = req->content_type;

	if (webhook_precheck(env, req, resp))
		return -1;
	if (req->body_too_large) {
		reject(resp, 413, "payload too large");
		return -1;
	}
	if (req->body_incomplete) {
		reject(resp, 408, "request body incomplete (too slow, or the connection closed)");
		return -1;
	}
	if (ct != NULL && media_is(ct, NOTIFY_MEDIA_TYPE))
		return 2;
	if (ct == NULL || (!media_is(ct, "application/json") &&
	    !media_is(ct, "application/cloudevents+json"))) {
		reject(resp, 415, "Content-Type must be application/json, application/cloudevents+json"
		    " or " NOTIFY_MEDIA_TYPE);
		return -1;
	}
	return media_is(ct, "application/cloudevents+json");
}

/* Match and queue every resource of a push event, then answer. */
static void
queue_resources(const struct webhook_env *env, const struct event *ev, struct webhook_resp *resp)
{
	struct group g;
	json_t *groups = json_array();
	const char *why = NULL;
	char name[sizeof(resp->group)];
	int queued = 0, r_enq;
	size_t i;

	for (i = 0; i < ev->n_resources; i++) {
		const char *r = match_resource(env, ev, &ev->resources[i], &g);
		if (r != NULL) {
			why = r;
			continue;
		}
		if ((r_enq = env->enqueue(env->ctx, &g)) < 0) {
			/* Not on disk: no 202. Harbor sends the event again; duplicates are harmless. */
			json_decref(groups);
			reply(resp, 503, json_pack("{s:s, s:s}", "status", "unavailable", "error",
			    "the event could not be recorded durably; send it again later"));
			resp->outcome = "unavailable";
			(void)am_fmt(resp->why, sizeof(resp->why), "journal write failed");
			return;
		}
		queued += r_enq;
		(void)group_name(&g, name, sizeof(name));
		json_array_append_new(groups, json_string(name));
	}
	if (json_array_size(groups) == 0) {
		json_decref(groups);
		ignore(resp, why);
		return;
	}
	(void)am_fmt(resp->group, sizeof(resp->group), "%s", json_string_value(json_array_get(groups, 0)));
	resp->coalesced = !queued;
	reply(resp, 202, json_pack("{s:s, s:o}", "status", "queued", "groups", groups));
	resp->outcome = "queued";
}

void
webhook_handle(const struct webhook_env *env, const struct webhook_req *req,
    struct webhook_resp *resp)
{
	struct event ev;
	char err[256];
	int cloudevents;

	memset(resp, 0, sizeof(*resp));
	if ((cloudevents = check_request(env, req, resp)) < 0)
		return;
	if (cloudevents == 2) {
		envelope_handle(env, req, resp);
		return;
	}
	if (event_parse(req->body, req->body_len, cloudevents, &ev, err, sizeof(err)) != AM_OK) {
		reject(resp, 400, err);
		return;
	}
	if (!ev.is_push) {
		(void)am_fmt(resp->type, sizeof(resp->type), "%s", ev.type);
		ignore(resp, "not a push event");
		return;
	}
	(void)am_fmt(resp->repo, sizeof(resp->repo), "%s", ev.repo);
	(void)am_fmt(resp->tag, sizeof(resp->tag), "%s",
	    ev.resources[0].by_digest ? ev.resources[0].digest : ev.resources[0].tag);
	queue_resources(env, &ev, resp);
}
