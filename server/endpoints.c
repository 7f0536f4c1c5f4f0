/*
 * Operational endpoints as thin CivetWeb handlers: each checks path, method
 * and (for /metrics and /status) the status secret, asks one module for its
 * answer and writes it. No handler does network or disk I/O for its answer:
 * a background thread checks the registries and state_dir every few seconds
 * and readiness, /status and the gauges read what it stored.
 */
#include "server/endpoints.h"
#include "server/base/num.h"
#include "server/base/version.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <civetweb.h>
#include <jansson.h>

#include "handlers/ui.h"
#include "server/base/log.h"
#include "server/closing.h"
#include "server/observe/feedstat.h"
#include "server/observe/metrics.h"
#include "server/observe/status.h"
#include "server/queue/journal.h"
#include "handlers/ops.h"
#include "server/service/checks.h"


struct endpoints {
	const struct cfg *cfg;
	struct service *svc;
	int status_port;          /* port of server.status_listen; 0: none */
	struct status_rec *status;
	struct checks *checks;    /* background state_dir and registry checks */
	pthread_mutex_t lock;     /* guards ready_status */
	int ready_status;         /* last answered, for logging transitions */
};

static int
reply(struct mg_connection *conn, int status, const char *ctype, const char *extra,
    const char *body)
{
	size_t len = strlen(body);

	mg_printf(conn, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n%s\r\n", status, mg_get_response_code_text(conn, status),
	    ctype, len, extra ? extra : "");
	mg_write(conn, body, len);
	return status;
}

static int
reply_json(struct mg_connection *conn, int status, const char *extra, json_t *body)
{
	char *text = json_dumps(body, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	char *line = xmalloc(strlen(text) + 2);

	(void)am_fmt(line, strlen(text) + 2, "%s\n", text);
	status = reply(conn, status, "application/json", extra, line);
	free(line);
	free(text);
	json_decref(body);
	return status;
}

/*
 * A refusal: answered with "Connection: close", then closed through the
 * closing path (a small body dropped within CLOSING_BUDGET_MS, never read
 * for as long as the client keeps sending).
 */
static int
reply_error(struct mg_connection *conn, int status, const char *extra, const char *msg)
{
	char head[512];

	if (am_fmt(head, sizeof(head), "%sConnection: close\r\n", extra ? extra : "") != 0)
		head[0] = '\0';
	status = reply_json(conn, status, head, json_pack("{s:s}", "error", msg));
	closing_after_refusal(conn, am_now_ms() + CLOSING_BUDGET_MS);
	return status;
}

int
endpoints_not_found(struct mg_connection *conn)
{
	return reply_error(conn, 404, NULL, "not found");
}

int
endpoints_status_port(const struct endpoints *e)
{
	return e != NULL ? e->status_port : 0;
}

int
endpoints_on_status_port(const struct endpoints *e, const struct mg_connection *conn)
{
	return e != NULL && e->status_port != 0 &&
	    mg_get_request_info(conn)->server_port == e->status_port;
}

/*
 * Common checks: exact path, GET only, the status listener when the endpoint
 * lives there, the secret when protected. 0: go on; else the status written.
 */
/*
 * The status secret of the generation in force (a reload re-reads it); 0:
 * accepted. Without a secret, repository-level data (/status, /ui) is
 * answered on the main listener only when the operator made it public
 * (server.status_public): that port is reached by whatever Harbor reaches,
 * and every project admin can point a webhook anywhere.
 */
static int
check_status_secret(struct endpoints *e, struct mg_connection *conn, int repo_level)
{
	const struct service_view *v = service_acquire(e->svc);
	const char *auth = mg_get_header(conn, "Authorization"), *secret = v->status_secret;
	int st = 0;

	if (secret == NULL && repo_level && !v->cfg->status_public &&
	    !endpoints_on_status_port(e, conn)) {
		st = reply_error(conn, 403, NULL, "private: set server.status_secret_file, "
		    "server.status_listen or server.status_public = true");
		service_release(e->svc, v);
		return st;
	}

	/* A "Basic ..." secret gets a Basic challenge: browsers then ask for it (/ui). */
	if (secret != NULL &&
	    (auth == NULL || !am_secure_equal(auth, strlen(auth), secret, strlen(secret))))
		st = reply_error(conn, 401, strncmp(secret, "Basic ", 6) == 0 ?
		    "WWW-Authenticate: Basic realm=\"archmerge\", charset=\"UTF-8\"\r\n" :
		    "WWW-Authenticate: Bearer realm=\"archmerge\"\r\n",
		    "missing or wrong Authorization header");
	service_release(e->svc, v);
	return st;
}

/* protected_: 1 for /metrics, 2 for repository-level data (/status, /ui). */
static int
preflight(struct endpoints *e, struct mg_connection *conn, const char *path, int protected_)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);

	if (strcmp(ri->local_uri, path) != 0)
		return endpoints_not_found(conn);
	if (protected_ && e->status_port != 0 && !endpoints_on_status_port(e, conn))
		return endpoints_not_found(conn);   /* served on the status listener only */
	if (strcmp(ri->request_method, "GET") != 0)
		return reply_error(conn, 405, "Allow: GET\r\n", "only GET is accepted");
	if (ri->content_length > 0 || mg_get_header(conn, "Transfer-Encoding") != NULL)
		return reply_error(conn, 413, NULL, "this endpoint takes no request body");
	if (protected_)
		return check_status_secret(e, conn, protected_ == 2);
	return 0;
}

static void
log_request(struct mg_connection *conn, int status)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);

	log_kv(LOG_DEBUG, "http", LOG_S("remote", ri->remote_addr),
	    LOG_S("method", ri->request_method), LOG_S("path", ri->local_uri), LOG_I("status", status));
}

static int
on_healthz(struct mg_connection *conn, void *cbdata)
{
	int st = preflight(cbdata, conn, "/healthz", 0);

	if (st == 0)
		st = reply(conn, 200, "text/plain; charset=utf-8", NULL, "ok\n");
	log_request(conn, st);
	return st;
}

static int
on_metrics(struct mg_connection *conn, void *cbdata)
{
	int st = preflight(cbdata, conn, "/metrics", 1);
	char *text;

	if (st == 0) {
		text = metrics_render();
		st = reply(conn, 200, METRICS_CONTENT_TYPE, NULL, text);
		free(text);
	}
	log_request(conn, st);
	return st;
}

static json_t *registries_json(struct endpoints *e);

/* The /status document; /ui renders the same one. New reference. */
static json_t *
status_body(struct endpoints *e)
{
	json_t *body = status_json(e->status);

	json_object_set_new(body, "version", json_string(am_version()));
	json_object_set_new(body, "queue_depth", json_integer((json_int_t)service_queue_depth(e->svc)));
	json_object_set_new(body, "journal_pending",
	    json_integer((json_int_t)service_journal_pending(e->svc)));
	json_object_set_new(body, "registries", registries_json(e));
	json_object_set_new(body, "feed", feedstat_json(feedstat_global()));
	return body;
}

static int
on_status(struct mg_connection *conn, void *cbdata)
{
	struct endpoints *e = cbdata;
	int st = preflight(e, conn, "/status", 2);

	if (st == 0)
		st = reply_json(conn, 200, NULL, status_body(e));
	log_request(conn, st);
	return st;
}

static int
on_ui(struct mg_connection *conn, void *cbdata)
{
	struct endpoints *e = cbdata;
	int st = preflight(e, conn, "/ui", 2);
	json_t *body;
	char *page, csp[512], extra[600];

	if (st == 0) {
		body = status_body(e);
		page = ui_render(body, NULL, NULL);
		json_decref(body);
		if (ui_csp(csp, sizeof(csp)) != 0 || am_fmt(extra, sizeof(extra),
		    "Content-Security-Policy: %s\r\nX-Content-Type-Options: nosniff\r\n", csp) != 0)
			st = reply_error(conn, 500, NULL, "cannot build the page's security policy");
		else
			st = reply(conn, 200, "text/html; charset=utf-8", extra, page);
		free(page);
	}
	log_request(conn, st);
	return st;
}

/* ---- readiness ---- */

/* Readiness from state only: the checks' last results, the journal's stats, shutdown. */
static json_t *
ready_body(struct endpoints *e, int *status)
{
	struct checks_snap cs;
	struct journal_stats st;
	struct ops_ready_in in;
	json_t *body;

	checks_snapshot(e->checks, &cs);
	memset(&in, 0, sizeof(in));
	in.config_path = e->cfg->path;
	in.state_dir = e->cfg->state_dir;
	in.stopping = service_stopping(e->svc);
	in.dir_checked_ms = cs.dir_checked_ms;
	in.dir_ok = cs.dir_ok;
	in.dir_err = cs.dir_err;
	if (service_journal_stats(e->svc, &st) == 0) {
		in.journal_known = 1;
		in.journal_broken = st.broken;
		in.journal_failing = st.failing;
		in.journal_last_fail_ms = st.last_fail_ms;
	}
	in.regs = cs.regs;
	in.n_regs = cs.n_regs;
	body = ops_ready(&in, status);
	checks_snap_clear(&cs);
	return body;
}

static int
on_readyz(struct mg_connection *conn, void *cbdata)
{
	struct endpoints *e = cbdata;
	int st = preflight(e, conn, "/readyz", 0), code, was;
	json_t *body;

	if (st == 0) {
		body = ready_body(e, &code);
		pthread_mutex_lock(&e->lock);
		was = e->ready_status;
		e->ready_status = code;
		pthread_mutex_unlock(&e->lock);
		if (code != was)   /* transitions only: probes come every few seconds */
			log_kv(code == 200 ? LOG_INFO : LOG_WARN, "readiness", LOG_I("status", code),
			    LOG_S("failing", json_string_value(json_array_get(json_object_get(body,
			    "failing"), 0))));
		st = reply_json(conn, code, NULL, body);
	}
	log_request(conn, st);
	return st;
}

/* The registries array of /status (and /ui). New reference. */
static json_t *
registries_json(struct endpoints *e)
{
	struct checks_snap cs;
	json_t *a;

	checks_snapshot(e->checks, &cs);
	a = ops_registries_json(cs.regs, cs.n_regs);
	checks_snap_clear(&cs);
	return a;
}

/* ---- gauges ---- */

static double
gauge_queue_depth(void *ctx)
{
	return (double)service_queue_depth(ctx);
}

static double
gauge_waiting(void *ctx)
{
	return (double)status_waiting_count(ctx);
}

static double
gauge_oldest_waiting(void *ctx)
{
	return status_oldest_waiting_seconds(ctx, time(NULL));
}

/* ---- lifecycle ---- */

struct endpoints *
endpoints_new(const struct cfg *cfg, struct service *svc, char *err, size_t errlen)
{
	struct endpoints *e = xcalloc(1, sizeof(*e));
	const char *colon;
	long long port;

	(void)err;      /* nothing here can fail any more: secrets live in the generation */
	(void)errlen;
	e->cfg = cfg;
	e->svc = svc;
	e->status = service_status(svc);
	pthread_mutex_init(&e->lock, NULL);
	/* The first state_dir verdict before any request: at startup, not in a handler. */
	e->checks = checks_start(svc, cfg->state_dir);
	if (cfg->status_listen != NULL && (colon = strrchr(cfg->status_listen, ':')) != NULL &&
	    am_parse_numz(colon + 1, 1, 65535, &port) == 0)
		e->status_port = (int)port;   /* validated by the config already */
	return e;
}

void
endpoints_register(struct endpoints *e, struct mg_context *ctx)
{
	mg_set_request_handler(ctx, "/healthz", on_healthz, e);
	mg_set_request_handler(ctx, "/readyz", on_readyz, e);
	mg_set_request_handler(ctx, "/metrics", on_metrics, e);
	mg_set_request_handler(ctx, "/status", on_status, e);
	mg_set_request_handler(ctx, "/ui", on_ui, e);
	(void)metrics_gauge_register("archmerge_queue_depth",
	    "Assembly jobs queued or running.", gauge_queue_depth, e->svc);
	(void)metrics_gauge_register("archmerge_groups_waiting",
	    "Groups whose last assembly found an architecture missing.", gauge_waiting, e->status);
	(void)metrics_gauge_register("archmerge_oldest_waiting_group_age_seconds",
	    "Seconds since the longest-waiting group first lacked an architecture (0: none waits).",
	    gauge_oldest_waiting, e->status);
}

void
endpoints_free(struct endpoints *e)
{

	if (e == NULL)
		return;
	metrics_gauge_unregister("archmerge_queue_depth", e->svc);
	metrics_gauge_unregister("archmerge_groups_waiting", e->status);
	metrics_gauge_unregister("archmerge_oldest_waiting_group_age_seconds", e->status);
	checks_stop(e->checks);
	pthread_mutex_destroy(&e->lock);
	free(e);
}
