/*
 * Operational endpoints as thin CivetWeb handlers: each checks path, method
 * and (for /metrics and /status) the status secret, asks one module for its
 * answer and writes it. Readiness is cached for a few seconds so that
 * probes do not turn into a stream of registry requests.
 */
#include "server/endpoints.h"
#include "server/base/num.h"
#include "server/base/version.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <civetweb.h>
#include <jansson.h>

#include "handlers/ui.h"
#include "registry/client/access.h"
#include "registry/client/client.h"
#include "server/base/log.h"
#include "server/observe/metrics.h"
#include "server/observe/status.h"


#define READY_CACHE_MS 5000

struct endpoints {
	const struct cfg *cfg;
	struct service *svc;
	char *secret;             /* whole Authorization value for /metrics and /status; NULL: open */
	int status_port;          /* port of server.status_listen; 0: none */
	struct status_rec *status;
	char **passwords;         /* per registry (NULL: anonymous), for the credentials check */

	pthread_mutex_t ready_lock;   /* held while checking: concurrent probes share one check */
	long long ready_at;           /* am_now_ms() of the cached answer; 0: none yet */
	int ready_status;
	char *ready_body;
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
static int
preflight(struct endpoints *e, struct mg_connection *conn, const char *path, int protected_)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *auth;

	if (strcmp(ri->local_uri, path) != 0)
		return endpoints_not_found(conn);
	if (protected_ && e->status_port != 0 && !endpoints_on_status_port(e, conn))
		return endpoints_not_found(conn);   /* served on the status listener only */
	if (strcmp(ri->request_method, "GET") != 0)
		return reply_error(conn, 405, "Allow: GET\r\n", "only GET is accepted");
	if (protected_ && e->secret != NULL) {
		auth = mg_get_header(conn, "Authorization");
		/* A "Basic ..." secret gets a Basic challenge: browsers then ask for it (/ui). */
		if (auth == NULL || !am_secure_equal(auth, strlen(auth), e->secret, strlen(e->secret)))
			return reply_error(conn, 401, strncmp(e->secret, "Basic ", 6) == 0 ?
			    "WWW-Authenticate: Basic realm=\"archmerge\", charset=\"UTF-8\"\r\n" :
			    "WWW-Authenticate: Bearer realm=\"archmerge\"\r\n",
			    "missing or wrong Authorization header");
	}
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

/* The /status document; /ui renders the same one. New reference. */
static json_t *
status_body(struct endpoints *e)
{
	json_t *body = status_json(e->status);

	json_object_set_new(body, "version", json_string(am_version()));
	json_object_set_new(body, "queue_depth", json_integer((json_int_t)service_queue_depth(e->svc)));
	json_object_set_new(body, "journal_pending",
	    json_integer((json_int_t)service_journal_pending(e->svc)));
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

/* ---- readiness ---- */

static void
check(json_t *checks, json_t *failing, const char *name, const char *error, const char *what)
{
	json_t *c = json_pack("{s:s, s:b}", "name", name, "ok", error == NULL);

	if (what != NULL)
		json_object_set_new(c, "target", json_string(what));
	json_t *msg;

	if (error != NULL) {
		if ((msg = json_string(error)) == NULL)
			msg = json_string("(message is not UTF-8)");
		json_object_set_new(c, "error", msg);
		json_array_append_new(failing, json_string(name));
	}
	json_array_append_new(checks, c);
}

/* Writable means a file can be created there: what the journal will do. */
static void
check_state_dir(const struct cfg *cfg, char *err, size_t errlen, int *ok)
{
	char path[4096];
	int fd;

	*ok = 0;
	if (am_fmt(path, sizeof(path), "%s/.readyz-XXXXXX", cfg->state_dir) != 0) {
		(void)am_fmt(err, errlen, "path too long");
		return;
	}
	if ((fd = mkstemp(path)) < 0) {
		(void)am_fmt(err, errlen, "%s: cannot create a file: %s", cfg->state_dir, strerror(errno));
		return;
	}
	close(fd);
	unlink(path);
	*ok = 1;
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
	memset(&o, 0, sizeof(o));
	o.url = r->url;
	o.ca_file = r->ca_file;
	o.insecure = r->insecure;
	o.username = r->username;
	o.password = password;
	o.timeout_ms = r->timeout_ms;
	return reg_access_probe(&o, NULL, &acc, err, errlen);
}

static void
ready_compute(struct endpoints *e)
{
	json_t *checks = json_array(), *failing = json_array(), *body;
	char err[1024], name[300];
	size_t i;
	int ok, was;

	check(checks, failing, "configuration", NULL, e->cfg->path);
	check_state_dir(e->cfg, err, sizeof(err), &ok);
	check(checks, failing, "state_dir", ok ? NULL : err, e->cfg->state_dir);
	for (i = 0; i < e->cfg->n_registries; i++) {
		const struct cfg_registry *r = &e->cfg->registries[i];
		struct reg_client *c = service_client(e->svc, r->host);
		enum am_err rc = AM_EINVAL;
		err[0] = '\0';
		if (c != NULL)
			rc = reg_ping(c, err, sizeof(err));
		if (rc == AM_OK)
			rc = check_credentials(r, e->passwords[i], err, sizeof(err));
		if (rc == AM_EAUTH && err[0] == '\0')
			(void)am_fmt(err, sizeof(err), "credentials rejected");
		(void)am_fmt(name, sizeof(name), "registry %s", r->host);
		check(checks, failing, name, rc == AM_OK ? NULL : err[0] ? err : am_strerror(rc), r->url);
	}
	was = e->ready_status;
	e->ready_status = json_array_size(failing) == 0 ? 200 : 503;
	if (e->ready_status != was)   /* transitions only: probes come every few seconds */
		log_kv(e->ready_status == 200 ? LOG_INFO : LOG_WARN, "readiness",
		    LOG_I("status", e->ready_status),
		    LOG_S("failing", json_string_value(json_array_get(failing, 0))));
	body = json_pack("{s:s, s:o, s:o}", "status", e->ready_status == 200 ? "ready" : "not ready",
	    "failing", failing, "checks", checks);
	free(e->ready_body);
	e->ready_body = json_dumps(body, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(body);
	e->ready_at = am_now_ms();
}

static int
on_readyz(struct mg_connection *conn, void *cbdata)
{
	struct endpoints *e = cbdata;
	int st = preflight(e, conn, "/readyz", 0);
	json_t *body;

	if (st == 0) {
		pthread_mutex_lock(&e->ready_lock);
		if (e->ready_at == 0 || am_now_ms() - e->ready_at >= READY_CACHE_MS)
			ready_compute(e);
		st = e->ready_status;
		body = json_loads(e->ready_body, 0, NULL);
		pthread_mutex_unlock(&e->ready_lock);
		st = reply_json(conn, st, NULL, body);
	}
	log_request(conn, st);
	return st;
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
	size_t i;

	e->cfg = cfg;
	e->svc = svc;
	e->status = status_global();
	pthread_mutex_init(&e->ready_lock, NULL);
	if (cfg->status_secret_file != NULL &&
	    am_read_secret(cfg->status_secret_file, &e->secret, err, errlen) != AM_OK) {
		endpoints_free(e);
		return NULL;
	}
	e->passwords = xcalloc(cfg->n_registries, sizeof(*e->passwords));
	for (i = 0; i < cfg->n_registries; i++) {
		if (cfg->registries[i].password_file != NULL &&
		    am_read_secret(cfg->registries[i].password_file, &e->passwords[i], err, errlen) != AM_OK) {
			endpoints_free(e);
			return NULL;
		}
	}
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
}

void
endpoints_free(struct endpoints *e)
{
	size_t i;

	if (e == NULL)
		return;
	metrics_gauge_unregister("archmerge_queue_depth", e->svc);
	metrics_gauge_unregister("archmerge_groups_waiting", e->status);
	am_secret_free(e->secret);
	for (i = 0; e->passwords != NULL && i < e->cfg->n_registries; i++)
		am_secret_free(e->passwords[i]);
	free(e->passwords);
	free(e->ready_body);
	pthread_mutex_destroy(&e->ready_lock);
	free(e);
}
