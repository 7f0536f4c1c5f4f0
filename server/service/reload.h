/*
 * SIGHUP: the configuration file is read again. Rules, registries, secrets,
 * log level and retry settings apply to new work at once; listener, TLS and
 * other server settings need a restart, which is logged.
 */
#ifndef AM_RELOAD_H
#define AM_RELOAD_H

#include "config/config.h"
#include "server/service/service.h"

/*
 * Load path and make it the service's configuration. A file with errors
 * keeps the running configuration and logs every "file:line: message".
 * boot is the configuration the listener was started with.
 */
void reload_config(struct service *svc, const struct cfg *boot, const char *path);

#endif
