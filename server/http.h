/*
 * The HTTP(S) front: CivetWeb started with the configured listener and TLS
 * settings, routing the webhook path to the webhook handler.
 */
#ifndef AM_HTTP_H
#define AM_HTTP_H

#include "config/config.h"
#include "server/service/service.h"

struct http_server;

enum am_err http_start(const struct cfg *cfg, struct service *svc, struct http_server **out,
    char *err, size_t errlen);
void http_stop(struct http_server *h);   /* accepts NULL */

#endif
