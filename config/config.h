/*
 * The configuration file (libconfig syntax): loaded and validated in one
 * pass driven by a table of every setting; unknown keys and bad values are
 * reported as "file:line: message".
 */
#ifndef AM_CONFIG_H
#define AM_CONFIG_H

#include <stddef.h>
#include "server/base/common.h"
#include "server/base/log.h"
#include "config/rule.h"

struct cfg_registry {
	char *host;            /* host part of Harbor's resource_url */
	char *url;             /* where the registry API is reached */
	char *ca_file;         /* NULL: system store */
	int insecure;
	char *username;        /* NULL: anonymous */
	char *password_file;
	long timeout_ms;
	long max_concurrent;   /* requests in flight to this registry, all workers together */
	char *harbor_url;      /* Harbor REST API base for cleanup and the change feed; NULL: same as url (cleanup), no feed */
};

struct cfg {
	char *path;
	char *listen;              /* "host:port" */
	char *tls_certificate;     /* NULL with plain_http */
	char *tls_private_key;
	int plain_http;
	char *webhook_path;
	char *webhook_secret_file; /* NULL only with allow_unauthenticated */
	int allow_unauthenticated;
	long workers;
	long max_body_bytes;
	long request_timeout_ms;
	long max_connections;      /* concurrent HTTP connections (CivetWeb threads) */
	long max_connections_per_client; /* TLS connections one address may hold; 0: no cap */
	long max_header_bytes;     /* request line + headers */
	long header_timeout_ms;    /* whole request line + headers must arrive within this */
	long keep_alive_timeout_ms; /* an idle keep-alive connection is closed after this */
	char **allowed_clients;    /* CIDR texts; NULL (n = 0): every client may connect */
	size_t n_allowed_clients;
	long shutdown_timeout_ms;  /* SIGTERM: time allowed to finish in-flight work */
	long replicas;             /* archmerge instances publishing to the same registries; > 1: re-check sources after a PUT */
	char *status_secret_file;  /* protects /status and /metrics; NULL: open */
	char *status_listen;       /* "host:port", plain HTTP for /status, /metrics, probes; NULL: none */
	char *state_dir;           /* journal and remembered repositories */
	enum log_level log_level;
	int log_json;              /* log_format = "json" */
	long reconcile_interval_s; /* 0: no periodic pass */
	int reconcile_on_start;
	long reconcile_page_size;  /* n= of tags/list requests */
	char **reconcile_repositories;   /* extra repositories to list, besides rule names */
	size_t n_reconcile_repositories;
	long feed_interval_s;      /* Harbor change feed poll, registries with harbor_url; 0: off */
	long feed_grace_s;         /* a push the feed saw and no webhook announced within this is missed */
	long feed_page_size;       /* page_size of the feed's REST list calls */
	long retry_initial_ms;     /* first backoff of a transient registry fault */
	long retry_max_ms;         /* backoff cap */
	struct cfg_registry *registries;
	size_t n_registries;
	struct rule *rules;
	size_t n_rules;
};

enum {
	CFG_CHECK_FILES = 1,   /* also check that referenced files exist and secrets are private */
};

/*
 * Load and validate. On failure err holds every problem found, one
 * "file:line: message" per line.
 */
enum am_err cfg_load(const char *path, int flags, struct cfg **out, char *err, size_t errlen);
void cfg_free(struct cfg *c);   /* accepts NULL */

/* The registry whose host matches (case-insensitive), or NULL. */
const struct cfg_registry *cfg_registry_by_host(const struct cfg *c, const char *host);
/* By host, else by the host[:port] of url: distribution's notifications name
 * the registry as its clients reached it (request.host). */
const struct cfg_registry *cfg_registry_by_name(const struct cfg *c, const char *name);
/* The rule called name in this configuration; NULL when it has none (gone after a reload). */
const struct rule *cfg_rule_by_name(const struct cfg *c, const char *name);

#endif
