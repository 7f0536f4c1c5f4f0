/*
 * The one mapping from a configured registry to the options of the clients
 * that talk to it: the pooled registry client, the access probe (readiness
 * checks, harbor-setup's robot check). Passwords are borrowed.
 */
#ifndef AM_SERVICE_REGOPTS_H
#define AM_SERVICE_REGOPTS_H

#include "config/config.h"
#include "registry/client/access.h"
#include "registry/client/client.h"

/* timeout_cap_ms > 0: at most that per request (background checks); 0: the registry's own. */
void regopts_client(const struct cfg_registry *r, const char *password, long timeout_cap_ms,
    struct reg_client_opts *o);
void regopts_access(const struct cfg_registry *r, const char *password, long timeout_cap_ms,
    struct reg_access_opts *o);

#endif
