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

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <civetweb.h>
#include <jansson.h>

#include "handlers/ui.h"
#include "registry/client/access.h"
#include "registry/client/client.h"
#include "server/base/log.h"
#include "server/observe/metrics.h"
#include "server/observe/status.h"
#include "server/queue/journal.h"
#include "server/service/regopts.h"


#define CHECK_INTERVAL_MS 5000   /* between background check rounds */
#define CHECK_TIMEOUT_MS  3000   /* cap per registry request of a check: bounds shutdown */

/* The last background check of one registry. */
struct reg_state {
	char host[256];
	int reachable, credentials_ok;
	char last_error[512];
	time_t checked;
};

struct endpoints {
	const struct cfg *cfg;
	struct service *svc;
	int status_port;          /* port of server.status_listen; 0: none */
	struct status_rec *status;

	/* Kept current by the check thread; lock held only to copy, never across I/O. */
	pthread_mutex_t lock;
	pthread_cond_t cv;            /* wakes the check thread to quit */
	pthread_t thread;
	int started, quit;
	struct reg_state *regs;
	size_t n_regs;
	int dir_ok;
	char dir_err[512];
	long long dir_checked_ms;     /* am_now_ms() of the last state_dir probe; 0: none */
	int ready_status;             /* last answered, for logging transitions */
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

static int
reply_error(struct mg_connection *conn, int status, const char *extra, const char *msg)
{
	return reply_json(conn, status, extra, json_pack("{s:s}", "error", msg));
}

int
endpoints_not_found(struct mg_connection *conn)
{
	return reply_error(conn, 404, NULL, "not found");
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
/* The status secret of the generation in force (a reload re-reads it); 0: accepted. */
static int
check_status_secret(struct endpoints *e, struct mg_connection *conn)
{
	const struct service_view *v = service_acquire(e->svc);
	const char *auth = mg_get_header(conn, "Authorization"), *secret = v->status_secret;
	int st = 0;

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
	if (protected_)
		return check_status_secret(e, conn);
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
	return body;
}

static int
on_status(struct mg_connection *conn, void *cbdata)
{
	struct endpoints *e = cbdata;
	int st = preflight(e, conn, "/status", 1);

	if (st == 0)
		st = reply_json(conn, 200, NULL, status_body(e));
	log_request(conn, st);
	return st;
}

static int
on_ui(struct mg_connection *conn, void *cbdata)
{
	struct endpoints *e = cbdata;
	int st = preflight(e, conn, "/ui", 1);
	json_t *body;
	char *page;

	if (st == 0) {
		body = status_body(e);
		page = ui_render(body, NULL, NULL);
		json_decref(body);
		st = reply(conn, 200, "text/html; charset=utf-8",
		    "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; "
		    "script-src 'unsafe-inline'; img-src 'self'\r\nX-Content-Type-Options: nosniff\r\n",
		    page);
		free(page);
	}
	log_request(conn, st);
	return st;
}

/* ---- readiness and registry checks ---- */

/*
 * Writable means a block can be written and synced there: what a journal
 * append does. Creating an empty file still works on a full disk.
 */
static int
probe_state_dir(const char *dir, char *err, size_t errlen)
{
	char path[4096], block[4096];
	int fd, ok = 0;

	memset(block, 0, sizeof(block));
	if (am_fmt(path, sizeof(path), "%s/.readyz-XXXXXX", dir) != 0)
		return am_fmt(err, errlen, "path too long"), 0;
	if ((fd = mkstemp(path)) < 0) {
		(void)am_fmt(err, errlen, "%s: cannot create a file: %s", dir, strerror(errno));
		return 0;
	}
	if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block))
		(void)am_fmt(err, errlen, "%s: cannot write: %s", dir, errno ? strerror(errno) : "short write");
	else if (fdatasync(fd) != 0)
		(void)am_fmt(err, errlen, "%s: cannot sync: %s", dir, strerror(errno));
	else
		ok = 1;
	close(fd);
	unlink(path);
	return ok;
}

/*
 * /v2/ alone does not prove the credentials: a token service may hand an
 * anonymous token to wrong credentials (Harbor does when a scope is asked),
 * and a registry may let it through. Ask for a token and read its subject.
 */
static enum am_err
check_credentials(const struct cfg_registry *r, const char *password, char *err, size_t errlen)
{
	struct reg_access_opts o;
	struct reg_access acc;

	if (r->username == NULL)
		return AM_OK;
	regopts_access(r, password, CHECK_TIMEOUT_MS, &o);
	return reg_access_probe(&o, NULL, &acc, err, errlen);
}

/* One registry of the current generation, with its own short-timeout client. */
static void
check_registry(const struct cfg_registry *r, const char *password, struct reg_state *out)
{
	struct reg_client_opts o;
	struct reg_client *c;
	enum am_err rc;
	char err[sizeof(out->last_error)] = "";

	memset(out, 0, sizeof(*out));
	(void)am_fmt(out->host, sizeof(out->host), "%s", r->host);
	regopts_client(r, password, CHECK_TIMEOUT_MS, &o);
	o.max_concurrent = 0;   /* its own client: one request at a time is all it makes */
	if ((c = reg_client_new(&o, err, sizeof(err))) == NULL)
		rc = AM_EINVAL;
	else
		rc = reg_ping(c, err, sizeof(err));
	reg_client_free(c);
	/* A 401 from /v2/ still means the registry answered. */
	out->reachable = rc == AM_OK || rc == AM_EAUTH;
	if (out->reachable && (rc = check_credentials(r, password, err, sizeof(err))) == AM_OK)
		out->credentials_ok = 1;
	if (rc == AM_EAUTH && err[0] == '\0')
		(void)am_fmt(err, sizeof(err), "credentials rejected");
	if (rc != AM_OK)
		(void)am_fmt(out->last_error, sizeof(out->last_error), "%s", err[0] ? err : am_strerror(rc));
	out->checked = time(NULL);
	metrics_registry_check(out->host, out->reachable, out->credentials_ok);
}

static void
store_dir(struct endpoints *e, int ok, const char *err)
{
	pthread_mutex_lock(&e->lock);
	e->dir_ok = ok;
	(void)am_fmt(e->dir_err, sizeof(e->dir_err), "%s", err);
	e->dir_checked_ms = am_now_ms();
	pthread_mutex_unlock(&e->lock);
}

/* One round on the current generation; results swapped in under the lock, no I/O under it. */
static void
checks_round(struct endpoints *e)
{
	const struct service_view *v = service_acquire(e->svc);
	size_t i, n = v->cfg->n_registries;
	struct reg_state *rs = xcalloc(n ? n : 1, sizeof(*rs));
	char derr[512] = "";
	int dok;

	/* state_dir first: a hanging registry must not delay the local verdict. */
	dok = probe_state_dir(v->cfg->state_dir, derr, sizeof(derr));
	store_dir(e, dok, derr);
	for (i = 0; i < n; i++)
		check_registry(&v->cfg->registries[i], v->passwords[i], &rs[i]);
	service_release(e->svc, v);
	pthread_mutex_lock(&e->lock);
	free(e->regs);
	e->regs = rs;
	e->n_regs = n;
	pthread_mutex_unlock(&e->lock);
}

static void *
checks_main(void *arg)
{
	struct endpoints *e = arg;
	struct timespec ts;

	pthread_mutex_lock(&e->lock);
	while (!e->quit) {
		pthread_mutex_unlock(&e->lock);
		checks_round(e);
		pthread_mutex_lock(&e->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += CHECK_INTERVAL_MS / 1000;
		while (!e->quit && pthread_cond_timedwait(&e->cv, &e->lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

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

/* The journal takes appends: not broken, and no failure newer than the last success or dir probe. */
static const char *
journal_problem(struct endpoints *e, long long dir_ok_ms)
{
	struct journal_stats st;

	if (service_journal_stats(e->svc, &st) != 0)
		return NULL;
	if (st.broken)
		return "the journal failed earlier (see the log); restart archmerge";
	if (st.failing && st.last_fail_ms >= dir_ok_ms)
		return "the last journal append failed (see the log)";
	return NULL;
}

/* Readiness from state only: what this instance can do locally, registries as non-fatal checks. */
static json_t *
ready_body(struct endpoints *e, int *status)
{
	json_t *checks = json_array(), *failing = json_array();
	char name[300];
	const char *jp;
	size_t i;

	check(checks, failing, "configuration", NULL, e->cfg->path, 1);
	check(checks, failing, "shutdown", service_stopping(e->svc) ? "shutting down" : NULL, NULL, 1);
	pthread_mutex_lock(&e->lock);
	check(checks, failing, "state_dir", e->dir_checked_ms == 0 ? "not checked yet" :
	    e->dir_ok ? NULL : e->dir_err, e->cfg->state_dir, 1);
	jp = journal_problem(e, e->dir_ok ? e->dir_checked_ms : 0);
	check(checks, failing, "journal", jp, e->cfg->state_dir, 1);
	for (i = 0; i < e->n_regs; i++) {
		const struct reg_state *r = &e->regs[i];
		(void)am_fmt(name, sizeof(name), "registry %s", r->host);
		check(checks, failing, name, r->reachable && r->credentials_ok ? NULL : r->last_error,
		    NULL, 0);
	}
	pthread_mutex_unlock(&e->lock);
	*status = json_array_size(failing) == 0 ? 200 : 503;
	return json_pack("{s:s, s:o, s:o}", "status", *status == 200 ? "ready" : "not ready",
	    "failing", failing, "checks", checks);
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
	json_t *a = json_array();
	char when[32];
	struct tm tm;
	size_t i;

	pthread_mutex_lock(&e->lock);
	for (i = 0; i < e->n_regs; i++) {
		const struct reg_state *r = &e->regs[i];
		gmtime_r(&r->checked, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_array_append_new(a, json_pack("{s:s, s:b, s:b, s:s, s:s}", "host", r->host,
		    "reachable", r->reachable, "credentials_ok", r->credentials_ok,
		    "last_error", r->last_error, "checked", when));
	}
	pthread_mutex_unlock(&e->lock);
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
	e->status = status_global();
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cv, NULL);
	/* The first state_dir verdict before any request: at startup, not in a handler. */
	e->dir_ok = probe_state_dir(cfg->state_dir, e->dir_err, sizeof(e->dir_err));
	e->dir_checked_ms = am_now_ms();
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
	e->started = pthread_create(&e->thread, NULL, checks_main, e) == 0;
	if (!e->started)
		log_kv(LOG_ERROR, "readiness", LOG_S("result", "no-check-thread"),
		    LOG_S("note", "registry checks and the state_dir probe do not run"));
}

void
endpoints_free(struct endpoints *e)
{

	if (e == NULL)
		return;
	metrics_gauge_unregister("archmerge_queue_depth", e->svc);
	metrics_gauge_unregister("archmerge_groups_waiting", e->status);
	if (e->started) {
		pthread_mutex_lock(&e->lock);
		e->quit = 1;
		pthread_cond_broadcast(&e->cv);
		pthread_mutex_unlock(&e->lock);
		pthread_join(e->thread, NULL);
	}
	free(e->regs);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->lock);
	free(e);
}
