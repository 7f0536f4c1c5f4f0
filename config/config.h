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
	char *webhook_secret_file;  /* this registry's own webhook secret (replaces server's for its events); NULL: server's */
};

/* What a notify endpoint is told about (cfg_notify.events). */
enum {
	NOTIFY_PUBLISHED = 1,  /* an index was pushed */
	NOTIFY_REFUSED = 2,    /* the content contradicts the rule */
	NOTIFY_BLOCKED = 4,    /* the registry's policy refused the write */
	NOTIFY_UNCHANGED = 8,  /* a re-delivery found the index already published */
};

/* One outbound notification endpoint (notify = ( { ... } )). */
struct cfg_notify {
	char *url;             /* https:// or http:// */
	char *secret_file;     /* HMAC-SHA256 key (mode 0600) */
	char *ca_file;         /* NULL: system store */
	unsigned events;       /* NOTIFY_* bits */
	long timeout_ms;       /* one delivery attempt */
	long retry_initial_ms; /* first wait after a failed attempt, doubling */
	long retry_max_ms;
	long max_pending;      /* deliveries kept for this url; the oldest is dropped beyond */
	long max_age_s;        /* a delivery older than this is dropped */
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
	long max_connections_per_client; /* connections one address may hold (TLS, status_listen); 0: no cap */
	long max_header_bytes;     /* request line + headers */
	long header_timeout_ms;    /* whole request line + headers must arrive within this */
	long keep_alive_timeout_ms; /* an idle keep-alive connection is closed after this */
	char **allowed_clients;    /* CIDR texts; NULL (n = 0): every client may connect */
	size_t n_allowed_clients;
	long shutdown_timeout_ms;  /* SIGTERM: time allowed to finish in-flight work */
	long replicas;             /* archmerge instances publishing to the same registries (informative; > 1 excludes single_writer) */
	int single_writer;         /* declared the only writer of its targets: no source re-check after a PUT (default 0: re-check) */
	char *status_secret_file;  /* protects /status and /metrics; NULL: open */
	char *status_listen;       /* "host:port", plain HTTP for /status, /metrics, probes; NULL: none */
	int status_public;         /* /status and /ui answer anyone on listen without a secret */
	char *state_dir;           /* journal and remembered repositories */
	enum log_level log_level;
	int log_json;              /* log_format = "json" */
	long reconcile_interval_s; /* 0: no periodic pass */
	int reconcile_on_start;
	long reconcile_page_size;  /* n= of tags/list requests */
	long reconcile_verify_per_pass;   /* published groups read again per pass and registry */
	int reconcile_verify_on_start;    /* serve's first pass reads every group */
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
	/* Problems that do not stop the load, one "file:line: message" per
	 * line (NULL: none): check-config reports them and fails, serve logs them. */
	char *warnings;
	struct cfg_notify *notify;   /* NULL (n = 0): none */
	size_t n_notify;
};

enum {
	CFG_CHECK_FILES = 1,   /* also check that referenced files exist and secrets are private */
};

/*
 * Load and validate. On failure err holds every problem found, one
 * "file:line: message" per line.
 */
enum am_err cfg_load(const char *path, int flags, struct cfg **out, char *err, size_t errlen);

/* Log each of c's warnings (LOG_WARN, event "config"); nothing when there are none. */
void cfg_log_warnings(const struct cfg *c);

/*
 * A scalar setting as the configuration reference writes it (4, true,
 * "info"): c's value, or the default its table row gives when c is NULL.
 * path is the key under its group: "log_level", "retry.max_ms",
 * "server.workers", "server.tls.certificate", "registries.timeout_ms" (the
 * first registry), "rules.cleanup" (the first rule). 0, or -1 for no such
 * setting, no default, or out too small.
 */
int cfg_setting_text(const struct cfg *c, const char *path, char *out, size_t len);
void cfg_free(struct cfg *c);   /* accepts NULL */

/* The registry whose host matches (case-insensitive), or NULL. */
const struct cfg_registry *cfg_registry_by_host(const struct cfg *c, const char *host);
/* By host, else by the host[:port] of url: distribution's notifications name
 * the registry as its clients reached it (request.host). */
const struct cfg_registry *cfg_registry_by_name(const struct cfg *c, const char *name);
/* "published" -> NOTIFY_PUBLISHED, ...; 0 for an unknown name. */
unsigned cfg_notify_event(const char *name);

/* The rule called name in this configuration; NULL when it has none (gone after a reload). */
const struct rule *cfg_rule_by_name(const struct cfg *c, const char *name);
/*
 * 1 when an assembly that PUTs a target must HEAD its sources again afterwards:
 * always, unless server.single_writer = true declares no other writer (a
 * rolling update or a hand-run `archmerge assemble` is a second one).
 */
int cfg_recheck_sources(const struct cfg *c);

#endif
