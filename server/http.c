/*
 * CivetWeb glue. The request callback only moves bytes: it reads headers and
 * a capped body, calls webhook_handle() and writes what it returns.
 * Everything it needs comes through cbdata; nothing global.
 */
#include "server/http.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <civetweb.h>
#include <openssl/ssl.h>

#include "handlers/webhook.h"
#include "server/endpoints.h"
#include "server/base/log.h"
#include "server/closing.h"
#include "server/conncap.h"
#include "server/observe/observe.h"
#include "server/observe/status.h"
#include "config/cidr.h"

struct http_server {
	struct mg_context *ctx;
	struct webhook_env env;
	const struct cfg *cfg;
	struct endpoints *ep;         /* /healthz, /readyz, /metrics, /status */
	char ports[300];
	char timeout[32];
	char keepalive[32];
	char threads[16];
	char maxreq[16];
	char *acl;                    /* CivetWeb access_control_list from allowed_clients; NULL: none */
	struct conncap *plaincap;     /* the cap on status_listen (plain HTTP); NULL: none */
	int status_port;              /* its port */
};

/* A plain connection let through uncounted (full table): nothing to release. */
static char untracked_mark;

/*
 * Set while a handler sends its own error reply through mg_send_http_error():
 * on_http_error() then lets CivetWeb write it, because only CivetWeb's error
 * path marks the connection to be closed (no body drained, no keep-alive).
 */
static _Thread_local int handler_error;

static void
write_json(struct mg_connection *conn, int status, const char *body)
{
	size_t len = body ? strlen(body) : 0, hlen;
	char head[256], *out;

	/* One write for head and body: two small writes meet Nagle and delayed
	 * ACK on the client and cost ~40 ms per request. */
	if (am_fmt(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n\r\n",
	    status, mg_get_response_code_text(conn, status), len + 1) != 0)
		return;
	hlen = strlen(head);
	out = xmalloc(hlen + len + 1);
	memcpy(out, head, hlen);
	if (len > 0)
		memcpy(out + hlen, body, len);
	out[hlen + len] = '\n';
	mg_write(conn, out, hlen + len + 1);
	free(out);
}

/*
 * Read at most cap bytes; *too_large when the client sent more. A body that
 * is not complete by the deadline (a client trickling bytes), or that ends
 * before its Content-Length, sets *incomplete.
 */
static char *
read_body(struct mg_connection *conn, size_t cap, long long deadline, size_t *len,
    int *too_large, int *incomplete)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	char *buf;
	size_t used = 0;
	int n;

	*len = 0;
	*too_large = 0;
	*incomplete = 0;
	if (ri->content_length > 0 && (unsigned long long)ri->content_length > cap) {
		*too_large = 1;
		return NULL;
	}
	buf = xmalloc(cap + 1);
	/*
	 * One byte per call: mg_read() returns only once its whole length has
	 * arrived (or nothing came for request_timeout_ms), so a longer read
	 * would let a client that trickles bytes stay far past the deadline.
	 * The bytes mostly come from CivetWeb's or OpenSSL's buffer anyway.
	 */
	while ((n = mg_read(conn, buf + used, 1)) > 0) {
		if (++used > cap) {
			*too_large = 1;
			free(buf);
			return NULL;
		}
		if (am_now_ms() >= deadline)
			break;
	}
	if (n != 0 || (ri->content_length > 0 && used < (unsigned long long)ri->content_length)) {
		*incomplete = 1;
		free(buf);
		return NULL;
	}
	buf[used] = '\0';
	*len = used;
	return buf;
}

/*
 * Decide with the configuration in force now (SIGHUP may have replaced rules
 * and secret); precheck: only what the headers decide (method, secret).
 * Returns 1 when decided.
 */
static int
decide_current(struct service *svc, const struct webhook_env *base,
    const struct webhook_req *req, struct webhook_resp *resp, int precheck)
{
	const struct service_view *v = service_acquire(svc);
	struct webhook_env env = *base;
	int done = 1;

	env.cfg = v->cfg;
	env.secret = v->secret;
	env.reg_secrets = v->webhook_secrets;
	if (precheck)
		done = webhook_precheck(&env, req, resp);
	else
		webhook_handle(&env, req, resp);
	service_release(svc, v);
	return done;
}

/*
 * An error reply after which the connection is closed: CivetWeb 1.15 would
 * otherwise read and discard the rest of the body after the handler returns,
 * for as long as the client keeps sending (text/plain, via its error page).
 */
static void
send_error_close(struct mg_connection *conn, const struct webhook_resp *resp)
{
	handler_error = 1;
	mg_send_http_error(conn, resp->status, "%s", resp->body ? resp->body : "");
	handler_error = 0;
}

static int
on_webhook(struct mg_connection *conn, void *cbdata)
{
	struct http_server *h = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct webhook_req req;
	struct webhook_resp resp;
	long long t0 = am_now_ms();
	char *body = NULL;

	if (endpoints_on_status_port(h->ep, conn))
		return endpoints_not_found(conn);
	memset(&req, 0, sizeof(req));
	req.method = ri->request_method;
	req.authorization = mg_get_header(conn, "Authorization");
	req.content_type = mg_get_header(conn, "Content-Type");
	req.body = "";
	if (decide_current(h->env.ctx, &h->env, &req, &resp, 1)) {
		/* Wrong method or secret: refused from the headers, answered at once, then
		 * closed within CLOSING_BUDGET_MS of the headers however the body comes. */
		send_error_close(conn, &resp);
		closing_after_refusal(conn, t0 + CLOSING_BUDGET_MS);
	} else {
		body = read_body(conn, (size_t)h->cfg->max_body_bytes, t0 + h->cfg->request_timeout_ms,
		    &req.body_len, &req.body_too_large, &req.body_incomplete);
		req.body = body ? body : "";
		free(resp.body);
		(void)decide_current(h->env.ctx, &h->env, &req, &resp, 0);
		if (req.body_too_large || req.body_incomplete) {
			send_error_close(conn, &resp);
			closing_after_refusal(conn, am_now_ms() + CLOSING_BUDGET_MS);
		} else
			write_json(conn, resp.status, resp.body);
	}
	observe_webhook(ri->remote_addr, ri->request_method, &resp, am_now_ms() - t0);
	free(resp.body);
	free(body);
	return resp.status;
}

/* Fixed texts for the errors CivetWeb raises itself (never its message: it may quote the request). */
static const char *
fixed_error(int status, const char **reason)
{
	switch (status) {
	case 400: *reason = "bad_request"; return "malformed request";
	case 404: *reason = "not_found"; return "not found";
	case 405: *reason = "bad_method"; return "method not allowed";
	case 408: *reason = "timeout"; return "request not received in time";
	case 411: *reason = "bad_request"; return "length required";
	case 413: *reason = "too_large"; return "request too large";
	case 414: *reason = "too_large"; return "request line too long";
	case 431: *reason = "too_large"; return "request headers too large";
	case 501: *reason = "bad_request"; return "not implemented";
	case 505: *reason = "bad_request"; return "HTTP version not supported";
	default: *reason = "other"; return "request refused";
	}
}

/*
 * CivetWeb's http_error callback. Its own pages build the status line from
 * the request's version field, so a malformed request line came back in the
 * response headers (header injection). Here the reply is archmerge's,
 * entirely fixed text; 0 tells CivetWeb it was sent.
 */
static int
on_http_error(struct mg_connection *conn, int status, const char *msg)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *reason, *text = fixed_error(status, &reason);
	char body[128], out[512];

	(void)msg;
	if (handler_error)
		return 1;
	if (status < 100 || status > 599)
		status = 400;
	/* The body first: its Content-Length is measured, never counted by hand. */
	if (am_fmt(body, sizeof(body), "{\"status\":\"rejected\",\"error\":\"%s\"}\n", text) == 0 &&
	    am_fmt(out, sizeof(out), "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n%s", status,
	    mg_get_response_code_text(NULL, status), strlen(body), body) == 0)
		mg_write(conn, out, strlen(out));
	/* Then closed: CivetWeb must not read on (or keep the connection) for as
	 * long as the client sends. Unknown path or method: the request was whole, a small
	 * body is dropped within the budget first; the others are cut off at once. */
	if (status == 404 || status == 405)
		closing_after_refusal(conn, am_now_ms() + CLOSING_BUDGET_MS);
	else
		mg_disable_connection_keep_alive(conn);
	observe_refusal(reason, ri ? ri->remote_addr : NULL, status);
	return 0;
}

/*
 * CivetWeb's messages. Refusals at accept (allowed_clients) come only as
 * "<func>: <addr> is not allowed to connect": counted and throttled like
 * every refusal, since a flood of them must not flood the log.
 */
static int
on_log(const struct mg_connection *conn, const char *message)
{
	const char *tail = strstr(message, " is not allowed to connect");
	const char *start;
	char addr[64] = "";

	(void)conn;
	if (tail != NULL) {
		for (start = tail; start > message && start[-1] != ' '; start--)
			;
		if ((size_t)(tail - start) < sizeof(addr))
			(void)am_fmt(addr, sizeof(addr), "%.*s", (int)(tail - start), start);
		observe_refusal("not_allowed", addr, 0);
		return 1;
	}
	observe_http_message(message);
	return 1;
}

/*
 * CivetWeb's access_control_list from server.allowed_clients: deny all,
 * then allow each range. CivetWeb checks it in its accept loop, before a
 * worker thread or a TLS handshake is spent. Debian's CivetWeb 1.15 has no
 * IPv6 listener (MG_FEATURES_IPV6 off): IPv6 ranges cannot match there and
 * are left out (an IPv6 entry in the list would make CivetWeb refuse to start).
 */
static char *
acl_from_cfg(const struct cfg *cfg)
{
	size_t i, len = 16, off;
	struct cidr c;
	char one[80], why[8], *acl;
	int v6 = mg_check_feature(MG_FEATURES_IPV6) != 0;

	if (cfg->n_allowed_clients == 0)
		return NULL;
	len += cfg->n_allowed_clients * sizeof(one);
	acl = xmalloc(len);
	(void)am_fmt(acl, len, "-0.0.0.0/0");
	for (i = 0; i < cfg->n_allowed_clients; i++) {
		if (cidr_parse(cfg->allowed_clients[i], &c, why, sizeof(why)) != 0 || (c.v6 && !v6))
			continue;
		cidr_format(&c, one, sizeof(one));
		off = strlen(acl);
		if (c.v6)
			(void)am_fmt(acl + off, len - off, ",+[%.*s]%s", (int)strcspn(one, "/"), one,
			    strchr(one, '/'));
		else
			(void)am_fmt(acl + off, len - off, ",+%s", one);
	}
	return acl;
}

/* A TLS connection shut at its handshake: its address holds max_connections_per_client. */
static void
on_cap_refused(const char *addr)
{
	observe_refusal("too_many_connections", addr, 0);
}

/*
 * First request of a connection on status_listen: count its address (see
 * conncap.h for why here and not earlier). Over the cap the socket is shut
 * at once, nothing answered, like a TLS connection at its handshake.
 */
static int
on_begin_request(struct mg_connection *conn)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct http_server *h = ri->user_data;
	struct conncap_slot *slot;
	int fd;

	if (h->plaincap == NULL || ri->is_ssl || ri->server_port != h->status_port ||
	    mg_get_user_connection_data(conn) != NULL)
		return 0;   /* not capped here, or counted already (keep-alive) */
	if (conncap_take_text(h->plaincap, ri->remote_addr, &slot) == 0) {
		mg_set_user_connection_data(conn, slot != NULL ? (void *)slot : &untracked_mark);
		return 0;
	}
	mg_disable_connection_keep_alive(conn);
	if ((fd = closing_find_fd(ri->remote_addr, ri->remote_port, ri->server_port)) >= 0)
		(void)shutdown(fd, SHUT_RDWR);
	on_cap_refused(ri->remote_addr);
	return 503;   /* handled: CivetWeb writes nothing and closes */
}

/* Every connection's end: a counted plain connection gives its place back. */
static void
on_connection_close(const struct mg_connection *conn)
{
	void *d = mg_get_user_connection_data(conn);

	if (d != NULL && d != &untracked_mark)
		conncap_release(d);
}

/* Called by CivetWeb with its fresh SSL_CTX: load our certificate and key, set the cap. */
static int
on_init_ssl(void *ssl_ctx, void *user_data)
{
	struct http_server *h = user_data;
	SSL_CTX *ctx = ssl_ctx;

	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, h->cfg->tls_certificate) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, h->cfg->tls_private_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		log_kv(LOG_ERROR, "tls", LOG_S("certificate", h->cfg->tls_certificate),
		    LOG_S("private_key", h->cfg->tls_private_key),
		    LOG_S("detail", "cannot load them (PEM files that match)"));
		return -1;
	}
	if (h->cfg->max_connections_per_client > 0) {
		/* Only worker threads hold counted connections: that many addresses at most. */
		struct conncap *cc = conncap_new((unsigned)h->cfg->max_connections_per_client,
		    (size_t)h->cfg->max_connections + 8, on_cap_refused);
		if (conncap_attach(ctx, cc) != 0) {
			conncap_free(cc);
			log_kv(LOG_ERROR, "tls", LOG_S("detail", "cannot set up the per-client connection cap"));
			return -1;
		}
	}
	return 1;   /* set up here: CivetWeb must not load a certificate itself */
}

/* A webhook's group: noted for the status page (webhook to publish), then queued. */
static int
enqueue_noted(void *svc, const struct group *g)
{
	status_hint(service_status(svc), g);
	return service_enqueue(svc, g);
}

/* CivetWeb's options from the configuration (the strings live in h); NULL-terminated. */
static void
server_options(struct http_server *h, const struct cfg *cfg, const char **opts)
{
	int i = 0;

	(void)am_fmt(h->ports, sizeof(h->ports), "%s%s%s%s", cfg->listen, cfg->plain_http ? "" : "s",
	    cfg->status_listen ? "," : "", cfg->status_listen ? cfg->status_listen : "");
	/* CivetWeb's request timeout bounds the request line and headers (and the
	 * TLS handshake, and each silent gap in a body); the body as a whole has
	 * request_timeout_ms in read_body(). */
	(void)am_fmt(h->timeout, sizeof(h->timeout), "%ld", cfg->header_timeout_ms);
	(void)am_fmt(h->keepalive, sizeof(h->keepalive), "%ld", cfg->keep_alive_timeout_ms);
	h->acl = acl_from_cfg(cfg);
	(void)am_fmt(h->threads, sizeof(h->threads), "%ld", cfg->max_connections);
	(void)am_fmt(h->maxreq, sizeof(h->maxreq), "%ld", cfg->max_header_bytes);
	opts[i++] = "listening_ports";
	opts[i++] = h->ports;
	opts[i++] = "num_threads";
	opts[i++] = h->threads;
	opts[i++] = "request_timeout_ms";
	opts[i++] = h->timeout;
	opts[i++] = "max_request_size";
	opts[i++] = h->maxreq;
	opts[i++] = "tcp_nodelay";
	opts[i++] = "1";
	opts[i++] = "enable_keep_alive";
	opts[i++] = "yes";
	opts[i++] = "keep_alive_timeout_ms";
	opts[i++] = h->keepalive;   /* an idle keep-alive connection holds a thread too */
	if (h->acl != NULL) {
		opts[i++] = "access_control_list";
		opts[i++] = h->acl;
	}
	if (!cfg->plain_http) {
		opts[i++] = "ssl_protocol_version";
		opts[i++] = "4";   /* TLS 1.2 and later */
	}
	opts[i] = NULL;
}

/* What every webhook decision needs, wired to the service. */
static void
webhook_env_for(struct webhook_env *env, const struct cfg *cfg, struct service *svc)
{
	env->cfg = cfg;
	env->secret = service_secret(svc);
	env->enqueue = enqueue_noted;
	env->waiting = service_waiting;
	env->remember = service_remember;
	env->announce = service_announce;
	env->written = service_written(svc);
	env->ctx = svc;
}

enum am_err
http_start(const struct cfg *cfg, struct service *svc, struct http_server **out,
    char *err, size_t errlen)
{
	struct http_server *h = xcalloc(1, sizeof(*h));
	struct mg_callbacks cb;
	struct mg_init_data init;
	struct mg_error_data ed;
	char ebuf[256] = "";
	const char *opts[32];

	h->cfg = cfg;
	webhook_env_for(&h->env, cfg, svc);
	if ((h->ep = endpoints_new(cfg, svc, err, errlen)) == NULL) {
		free(h);
		return AM_EINVAL;
	}
	server_options(h, cfg, opts);
	memset(&cb, 0, sizeof(cb));
	cb.log_message = on_log;
	cb.http_error = on_http_error;
	if (!cfg->plain_http)
		cb.init_ssl = on_init_ssl;
	if (cfg->status_listen != NULL && cfg->max_connections_per_client > 0 &&
	    (h->status_port = endpoints_status_port(h->ep)) != 0) {
		h->plaincap = conncap_new((unsigned)cfg->max_connections_per_client,
		    (size_t)cfg->max_connections + 8, on_cap_refused);
		cb.begin_request = on_begin_request;
		cb.connection_close = on_connection_close;
	}
	memset(&init, 0, sizeof(init));
	init.callbacks = &cb;
	init.user_data = h;
	init.configuration_options = opts;
	memset(&ed, 0, sizeof(ed));
	ed.text = ebuf;
	ed.text_buffer_size = sizeof(ebuf);
	if ((h->ctx = mg_start2(&init, &ed)) == NULL) {
		endpoints_free(h->ep);
		conncap_free(h->plaincap);
		free(h->acl);
		free(h);
		return am_fail(err, errlen, AM_EIO, "cannot start the listener on %s: %s",
		    cfg->listen, ebuf[0] ? ebuf : "unknown error");
	}
	mg_set_request_handler(h->ctx, cfg->webhook_path, on_webhook, h);
	endpoints_register(h->ep, h->ctx);
	*out = h;
	return AM_OK;
}

void
http_stop(struct http_server *h)
{
	if (h == NULL)
		return;
	mg_stop(h->ctx);
	endpoints_free(h->ep);
	conncap_free(h->plaincap);   /* after mg_stop: no connection holds a slot any more */
	free(h->acl);
	free(h);
}
