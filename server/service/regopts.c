#include "server/service/regopts.h"

#include <string.h>

static long
capped(long timeout_ms, long cap_ms)
{
	return cap_ms > 0 && timeout_ms > cap_ms ? cap_ms : timeout_ms;
}

void
regopts_client(const struct cfg_registry *r, const char *password, long timeout_cap_ms,
    struct reg_client_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->url = r->url;
	o->ca_file = r->ca_file;
	o->insecure = r->insecure;
	o->username = r->username;
	o->password = password;
	o->timeout_ms = capped(r->timeout_ms, timeout_cap_ms);
	o->max_concurrent = r->max_concurrent;
}

void
regopts_access(const struct cfg_registry *r, const char *password, long timeout_cap_ms,
    struct reg_access_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->url = r->url;
	o->ca_file = r->ca_file;
	o->insecure = r->insecure;
	o->username = r->username;
	o->password = password;
	o->timeout_ms = capped(r->timeout_ms, timeout_cap_ms);
}
