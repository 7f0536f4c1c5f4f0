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
#include "config/claim.h"
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

/* The typed fields of an "ignored" answer. */
static void
ignored(struct webhook_resp *resp, enum claim_reason why)
{
	resp->outcome = "ignored";
	resp->reason = claim_reason_label(why);
	(void)am_fmt(resp->why, sizeof(resp->why), "%s", claim_reason_text(why));
}

static void
ignore(struct webhook_resp *resp, enum claim_reason why)
{
	reply(resp, 200, json_pack("{s:s, s:s}", "status", "ignored", "reason", claim_reason_text(why)));
	ignored(resp, why);
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

/* The groups one event names: a claimed source's, or those waiting for a child. */
#define WEBHOOK_WAKE_MAX 8
struct claimed {
	size_t n;
	struct group g[WEBHOOK_WAKE_MAX];
};

/*
 * A pushed signature tag (sha256-<hex>.sig) re-triggers every group waiting
 * for that image: refused for want of its signature, or refused reading it
 * by the registry's signature policy. 1 when tag is a signature tag: *why
 * is then CLAIM_R_NONE (cl filled) or CLAIM_R_SIGNATURE.
 */
static int
signature_hint(const struct webhook_env *env, const char *host, const char *repo, const char *tag,
    struct claimed *cl, enum claim_reason *why)
{
	char digest[80];

	if (sig_digest_of_tag(tag, digest, sizeof(digest)) != 0)
		return 0;
	cl->n = env->waiting != NULL ?
	    env->waiting(env->ctx, host, repo, "", digest, cl->g, WEBHOOK_WAKE_MAX) : 0;
	*why = cl->n > 0 ? CLAIM_R_NONE : CLAIM_R_SIGNATURE;
	return 1;
}

/*
 * Harbor finished scanning repo:tag@digest: every group the registry's
 * vulnerability policy kept from reading it is looked at again.
 */
static enum claim_reason
scan_woken(const struct webhook_env *env, const char *host, const char *repo, const char *tag,
    const char *digest, struct claimed *cl)
{
	const struct cfg_registry *reg = cfg_registry_by_name(env->cfg, host);

	cl->n = 0;
	if (reg == NULL)
		return CLAIM_R_UNKNOWN_HOST;
	if (env->waiting != NULL)
		cl->n = env->waiting(env->ctx, reg->host, repo, tag, digest, cl->g, WEBHOOK_WAKE_MAX);
	return cl->n > 0 ? CLAIM_R_NONE : CLAIM_R_SCAN;
}

static void
remember(const struct webhook_env *env, const char *host, const char *repo)
{
	if (env->remember != NULL)
		env->remember(env->ctx, host, repo);
}

/*
 * Why one pushed manifest (a Harbor resource or an envelope's event) needs
 * nothing, or CLAIM_R_NONE with cl filled: the group of the rule claiming
 * it as a source, or the groups waiting for the image a signature signs.
 * archmerge's own writes are told by what they are, never by who pushed:
 * the digest it just wrote under that very tag, or a tag that is one of a
 * rule's outputs. A source tag is processed whoever pushed it (a shared
 * account for CI and archmerge is common).
 */
static enum claim_reason
decide(const struct webhook_env *env, const char *host, const char *repo, const char *tag,
    const char *digest, struct claimed *out)
{
	struct claim cl;
	struct group *g = &out->g[0];
	enum claim_reason why;

	out->n = 0;
	(void)claim_tag(env->cfg, host, repo, tag, &cl);
	if (cl.registry == NULL)   /* by digest, or an unknown host */
		return cl.reason;
	if (written_take(env->written, cl.registry->host, repo, tag, digest)) {
		if (cl.cover != NULL)
			remember(env, cl.registry->host, repo);
		return CLAIM_R_OWN_WRITE;
	}
	if (signature_hint(env, cl.registry->host, repo, tag, out, &why))
		return why;
	if (cl.kind == CLAIM_OUTPUT)
		remember(env, cl.registry->host, repo);
	if (cl.kind != CLAIM_SOURCE)
		return cl.reason;
	if (env->announce != NULL)
		env->announce(env->ctx, cl.registry->host, repo, tag, digest);
	memset(g, 0, sizeof(*g));
	(void)am_fmt(g->host, sizeof(g->host), "%s", cl.registry->host);
	(void)am_fmt(g->rule_name, sizeof(g->rule_name), "%s", cl.rule->name);
	(void)am_fmt(g->repo, sizeof(g->repo), "%s", cl.match.repo);
	(void)am_fmt(g->version, sizeof(g->version), "%s", cl.match.version);
	out->n = 1;
	remember(env, cl.registry->host, cl.match.repo);
	return CLAIM_R_NONE;
}

const char *
webhook_secret_for(const struct webhook_env *env, const char *host)
{
	const struct cfg_registry *reg = cfg_registry_by_name(env->cfg, host);
	const char *own = NULL;

	if (reg != NULL && env->reg_secrets != NULL)
		own = env->reg_secrets[reg - env->cfg->registries];
	return own != NULL ? own : env->secret;
}

static int
carries(const char *auth, const char *secret)
{
	return auth != NULL && am_secure_equal(auth, strlen(auth), secret, strlen(secret));
}

/*
 * From the headers: the request carries the global secret or one registry's
 * own (or none is required). Which registries it may name is decided per
 * event, once the body is parsed (secret_allows).
 */
static int
secret_known(const struct webhook_env *env, const char *auth)
{
	int ok = env->secret == NULL || carries(auth, env->secret);
	size_t i;

	for (i = 0; !ok && env->reg_secrets != NULL && i < env->cfg->n_registries; i++)
		ok = env->reg_secrets[i] != NULL && carries(auth, env->reg_secrets[i]);
	return ok;
}

/*
 * An event naming host is taken only with the secret of that registry: the
 * host is chosen by the sender (Harbor's resource_url, distribution's
 * request.host), the secret tells who the sender is. An unknown host passes
 * here and is ignored as such later.
 */
static int
secret_allows(const struct webhook_env *env, const char *auth, const char *host)
{
	const char *want;

	if (cfg_registry_by_name(env->cfg, host) == NULL)
		return 1;
	want = webhook_secret_for(env, host);
	return want == NULL || carries(auth, want);
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
	if (!secret_known(env, req->authorization)) {
		reject(resp, 401, "missing or wrong Authorization header");
		return 1;
	}
	return 0;
}

/* One event of an envelope, decided as it came: its answer item; *queued
 * counts it when queued, -1 when it could not be recorded. */
static int
envelope_event(const struct webhook_env *env, const char *auth, const struct notify_event *n,
    json_t *items, int *queued, enum claim_reason *why)
{
	struct claimed *cl = xmalloc(sizeof(*cl));
	char name[NAME_MAX_REPO + NAME_MAX_TAG + 300];
	enum claim_reason r = n->ignored;
	int q, rc = 0;
	size_t i;

	cl->n = 0;
	if (r == CLAIM_R_NONE && !secret_allows(env, auth, n->host))
		r = CLAIM_R_WRONG_SECRET;
	if (r == CLAIM_R_NONE)
		r = decide(env, n->host, n->repo, n->tag, n->digest, cl);
	if (r != CLAIM_R_NONE) {
		if (*why == CLAIM_R_NONE)
			*why = r;
		json_array_append_new(items, n->detail[0] ? json_pack("{s:s, s:s, s:s}", "status",
		    "ignored", "reason", claim_reason_text(r), "error", n->detail) :
		    json_pack("{s:s, s:s}", "status", "ignored", "reason", claim_reason_text(r)));
		goto done;
	}
	for (i = 0; i < cl->n; i++) {
		if ((q = env->enqueue(env->ctx, &cl->g[i])) < 0) {
			rc = -1;
			goto done;
		}
		*queued += 1;
		(void)am_fmt(name, sizeof(name), "%s/%s:%s", cl->g[i].host, cl->g[i].repo, cl->g[i].version);
		json_array_append_new(items, json_pack("{s:s, s:s}", "status", q ? "queued" : "coalesced",
		    "group", name));
	}
done:
	free(cl);
	return rc;
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
	struct notify_envelope *nv = xmalloc(sizeof(*nv));   /* 64 events: too big for a stack */
	json_t *items = json_array();
	enum claim_reason why = CLAIM_R_NONE;
	char err[256];
	int queued = 0;
	size_t i;

	if (notify_parse(req->body, req->body_len, nv, err, sizeof(err)) != AM_OK) {
		json_decref(items);
		reject(resp, 400, err);
		free(nv);
		return;
	}
	for (i = 0; i < nv->n; i++) {
		if (envelope_event(env, req->authorization, &nv->ev[i], items, &queued, &why) < 0) {
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
		reply(resp, 200, json_pack("{s:s, s:s, s:o}", "status", "ignored", "reason",
		    claim_reason_text(why), "events", items));
		ignored(resp, why);
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

/*
 * Match and queue every resource of a push event (or, for a finished scan,
 * wake the groups waiting for it), then answer.
 */
static void
queue_resources(const struct webhook_env *env, const char *auth, const struct event *ev,
    struct webhook_resp *resp)
{
	struct claimed *cl = xmalloc(sizeof(*cl));
	json_t *groups = json_array();
	enum claim_reason why = CLAIM_R_NONE;
	char name[sizeof(resp->group)];
	int queued = 0, r_enq;
	size_t i, j;

	for (i = 0; i < ev->n_resources; i++) {
		const struct event_resource *res = &ev->resources[i];
		enum claim_reason r = !secret_allows(env, auth, res->host) ? CLAIM_R_WRONG_SECRET :
		    ev->is_scan ?
		    scan_woken(env, res->host, ev->repo, res->tag, res->digest, cl) :
		    decide(env, res->host, ev->repo, res->by_digest ? "" : res->tag, res->digest, cl);
		if (r != CLAIM_R_NONE) {
			why = r;
			continue;
		}
		for (j = 0; j < cl->n; j++) {
			if ((r_enq = env->enqueue(env->ctx, &cl->g[j])) < 0) {
				/* Not on disk: no 202. Harbor sends the event again; duplicates are harmless. */
				json_decref(groups);
				free(cl);
				reply(resp, 503, json_pack("{s:s, s:s}", "status", "unavailable", "error",
				    "the event could not be recorded durably; send it again later"));
				resp->outcome = "unavailable";
				(void)am_fmt(resp->why, sizeof(resp->why), "journal write failed");
				return;
			}
			queued += r_enq;
			(void)group_name(&cl->g[j], name, sizeof(name));
			json_array_append_new(groups, json_string(name));
		}
	}
	free(cl);
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
	if (!ev.is_push && !ev.is_scan) {
		(void)am_fmt(resp->type, sizeof(resp->type), "%s", ev.type);
		ignore(resp, CLAIM_R_NOT_PUSH);
		return;
	}
	if (ev.is_scan)
		(void)am_fmt(resp->type, sizeof(resp->type), "%s", ev.type);
	(void)am_fmt(resp->repo, sizeof(resp->repo), "%s", ev.repo);
	(void)am_fmt(resp->tag, sizeof(resp->tag), "%s",
	    ev.resources[0].by_digest ? ev.resources[0].digest : ev.resources[0].tag);
	queue_resources(env, req->authorization, &ev, resp);
}
