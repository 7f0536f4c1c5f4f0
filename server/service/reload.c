/*
 * Configuration reload. The new file goes through the same validation as at
 * startup; only when it passes, and its secrets can be read, does it replace
 * the running configuration (service_reload swaps a reference-counted
 * generation, so assemblies already running finish with the old one).
 */
#include "server/service/reload.h"

#include <stdlib.h>
#include <string.h>

#include "server/base/log.h"

static int
differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

/* Settings the running listener and journal were built from: log the ones that changed. */
static void
warn_restart_needed(const struct cfg *boot, const struct cfg *c)
{
	const struct { const char *key; int changed; } keys[] = {
		{ "server.listen", differs(boot->listen, c->listen) },
		{ "server.tls.certificate", differs(boot->tls_certificate, c->tls_certificate) },
		{ "server.tls.private_key", differs(boot->tls_private_key, c->tls_private_key) },
		{ "server.plain_http", boot->plain_http != c->plain_http },
		{ "server.webhook_path", differs(boot->webhook_path, c->webhook_path) },
		{ "server.workers", boot->workers != c->workers },
		{ "server.max_body_bytes", boot->max_body_bytes != c->max_body_bytes },
		{ "server.request_timeout_ms", boot->request_timeout_ms != c->request_timeout_ms },
		{ "server.max_connections", boot->max_connections != c->max_connections },
		{ "server.max_header_bytes", boot->max_header_bytes != c->max_header_bytes },
		{ "state_dir", differs(boot->state_dir, c->state_dir) },
	};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].changed)
			log_kv(LOG_WARN, "reload", LOG_S("key", keys[i].key), LOG_S("result", "restart-needed"),
			    LOG_S("detail", "changed: it takes effect after a restart of archmerge"));
}

void
reload_config(struct service *svc, const struct cfg *boot, const char *path)
{
	static char err[8192];       /* only the signal-handling thread reloads */
	struct cfg *c = NULL;
	char *nl;

	if (cfg_load(path, CFG_CHECK_FILES, &c, err, sizeof(err)) != AM_OK) {
		/* One log line: the errors, "file:line: message" each, joined. */
		while ((nl = strchr(err, '\n')) != NULL)
			*nl = ';';
		log_kv(LOG_ERROR, "reload", LOG_S("file", path), LOG_S("result", "failed"),
		    LOG_S("detail", err), LOG_S("note", "keeping the running configuration"));
		return;
	}
	if (service_reload(svc, c, err, sizeof(err)) != AM_OK) {
		log_kv(LOG_ERROR, "reload", LOG_S("file", path), LOG_S("result", "failed"),
		    LOG_S("detail", err), LOG_S("note", "keeping the running configuration"));
		cfg_free(c);
		return;
	}
	warn_restart_needed(boot, c);
	log_set_level(c->log_level);
	cfg_log_warnings(c);
	log_kv(LOG_INFO, "reload", LOG_S("file", path), LOG_S("result", "ok"), LOG_I("rules", c->n_rules),
	    LOG_I("registries", c->n_registries));
}
