/*
 * The operational endpoints: GET /healthz, /readyz, /metrics and /status.
 * Served on the main listener, or (/metrics and /status only) on the plain
 * HTTP status listener when server.status_listen is set; /metrics and
 * /status want server.status_secret_file's content as Authorization when set.
 */
#ifndef AM_ENDPOINTS_H
#define AM_ENDPOINTS_H

#include "config/config.h"
#include "server/service/service.h"

struct mg_context;
struct mg_connection;
struct endpoints;

/* Read the status secret and prepare; NULL on error (err says why). cfg and svc borrowed. */
struct endpoints *endpoints_new(const struct cfg *cfg, struct service *svc, char *err, size_t errlen);

/* Register the handlers and the gauges (queue depth, groups waiting) on a started context. */
void endpoints_register(struct endpoints *e, struct mg_context *ctx);

/* The port of server.status_listen; 0: none. */
int endpoints_status_port(const struct endpoints *e);

/* 1 when conn arrived on the status listener, where only these endpoints are served. */
int endpoints_on_status_port(const struct endpoints *e, const struct mg_connection *conn);

/* Answer 404 (for other paths on the status listener); returns the status. */
int endpoints_not_found(struct mg_connection *conn);

/* Unregister the gauges and free; call after the context stopped. Accepts NULL. */
void endpoints_free(struct endpoints *e);

#endif
