/*
 * Configuration loading. Each group of the file is described by a table
 * (key, type, required, bounds, where it lands, default); one walker applies
 * the tables, rejects unknown keys and collects "file:line: message" errors.
 * A setting's default lives in its row and nowhere else: defaults() writes
 * them all before the file's values are applied over them.
 */
#include "config/config.h"
#include "server/base/log.h"
#include "server/base/num.h"

#include <errno.h>
#include <libconfig.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/cidr.h"
#include "config/version.h"
#include "registry/oci/index.h"
#include "registry/sign/sign.h"

enum kind { K_STR, K_INT, K_BOOL, K_GROUP, K_LIST, K_STRARRAY };

struct spec {
	const char *key;
	enum kind kind;
	int required;
	long min, max;         /* K_INT bounds */
	size_t off;            /* offset in the target struct, or (size_t)-1 */
	const char *help;
	long dflt;             /* K_INT, K_BOOL: the value when the key is absent */
	const char *dflt_str;  /* K_STR: the same (NULL: none, the field stays NULL) */
};

#define NONE ((size_t)-1)

/* Accumulated errors, one per line. */
struct errs {
	const char *file;
	char *buf;
	size_t len, used;
	int count;
	struct errs *warn;     /* where add_warn() goes (NULL: warnings dropped) */
};

static void
add_err(struct errs *e, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
add_err(struct errs *e, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	e->count++;
	if (e->used + 2 >= e->len)
		return;
	if (e->used > 0)
		e->buf[e->used++] = '\n';
	n = snprintf(e->buf + e->used, e->len - e->used, "%s:%d: ", e->file, line);
	if (n < 0 || (size_t)n >= e->len - e->used) {
		e->used = e->len - 1;
		return;
	}
	e->used += (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(e->buf + e->used, e->len - e->used, fmt, ap);
	va_end(ap);
	e->used = (n < 0 || (size_t)n >= e->len - e->used) ? e->len - 1 : e->used + (size_t)n;
}

/* A problem that does not stop the load. */
#define add_warn(e, line, ...) do { if ((e)->warn != NULL) add_err((e)->warn, line, __VA_ARGS__); } while (0)

static int
line_of(const config_setting_t *s)
{
	int l = config_setting_source_line(s);
	return l > 0 ? l : 1;
}

static const char *
kind_name(enum kind k)
{
	switch (k) {
	case K_STR: return "a string";
	case K_INT: return "an integer";
	case K_BOOL: return "true or false";
	case K_GROUP: return "a group { ... }";
	case K_LIST: return "a list ( ... )";
	case K_STRARRAY: return "an array of strings [ ... ]";
	}
	return "?";
}

static int
kind_ok(const config_setting_t *s, enum kind k)
{
	int t = config_setting_type(s);

	switch (k) {
	case K_STR: return t == CONFIG_TYPE_STRING;
	case K_INT: return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
	case K_BOOL: return t == CONFIG_TYPE_BOOL;
	case K_GROUP: return t == CONFIG_TYPE_GROUP;
	case K_LIST: return t == CONFIG_TYPE_LIST;
	case K_STRARRAY: return t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST;
	}
	return 0;
}

/*
 * Apply a table to a group: unknown keys, wrong types, bounds, required keys.
 * Scalars are stored at base + off (char *, long, int). Returns the number of
 * errors added.
 */
static int
apply(struct errs *e, const config_setting_t *group, const char *where,
    const struct spec *tab, void *base)
{
	int before = e->count, i, n = config_setting_length(group);
	const struct spec *sp;

	for (i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		for (sp = tab; sp->key != NULL; sp++)
			if (name != NULL && strcmp(sp->key, name) == 0)
				break;
		if (sp->key == NULL) {
			add_err(e, line_of(s), "unknown key \"%s\" in %s", name ? name : "?",
			    where[0] ? where : "the top level");
			continue;
		}
		if (!kind_ok(s, sp->kind)) {
			add_err(e, line_of(s), "%s%s%s must be %s", where, where[0] ? "." : "", sp->key,
			    kind_name(sp->kind));
			continue;
		}
		if (sp->off == NONE || base == NULL)
			continue;
		switch (sp->kind) {
		case K_STR: {
			const char *v = config_setting_get_string(s);
			if (v[0] == '\0') {
				add_err(e, line_of(s), "%s.%s must not be empty", where, sp->key);
				break;
			}
			free(*(char **)((char *)base + sp->off));   /* the default, if any */
			*(char **)((char *)base + sp->off) = xstrdup(v);
			break;
		}
		case K_INT: {
			long long v = config_setting_get_int64(s);
			if (v < sp->min || v > sp->max) {
				add_err(e, line_of(s), "%s.%s must be between %ld and %ld", where,
				    sp->key, sp->min, sp->max);
				break;
			}
			*(long *)((char *)base + sp->off) = (long)v;
			break;
		}
		case K_BOOL:
			*(int *)((char *)base + sp->off) = config_setting_get_bool(s);
			break;
		default:
			break;
		}
	}
	for (sp = tab; sp->key != NULL; sp++)
		if (sp->required && config_setting_get_member(group, sp->key) == NULL)
			add_err(e, line_of(group), "%s%s%s is required", where, where[0] ? "." : "", sp->key);
	return e->count - before;
}

/* Write every default of a table into base, before apply() puts the file's values over them. */
static void
defaults(const struct spec *tab, void *base)
{
	const struct spec *sp;

	for (sp = tab; sp->key != NULL; sp++) {
		if (sp->off == NONE)
			continue;
		if (sp->kind == K_INT)
			*(long *)((char *)base + sp->off) = sp->dflt;
		else if (sp->kind == K_BOOL)
			*(int *)((char *)base + sp->off) = (int)sp->dflt;
		else if (sp->kind == K_STR && sp->dflt_str != NULL)
			*(char **)((char *)base + sp->off) = xstrdup(sp->dflt_str);
	}
}

/* The row of key in tab; NULL when none. */
static const struct spec *
row(const struct spec *tab, const char *key)
{
	for (; tab->key != NULL; tab++)
		if (strcmp(tab->key, key) == 0)
			return tab;
	return NULL;
}

/*
 * Rows: O_INT, O_BOOL and O_STR store the value at off of the group's struct
 * (NONE: loaded by code of its own) and carry its default (O_STR: NULL for
 * none); O_KEY is a group, a list or a key parsed further by code.
 */
#define O_INT(k, req, lo, hi, off, d, help) { k, K_INT, req, lo, hi, off, help, d, NULL }
#define O_BOOL(k, off, d, help)             { k, K_BOOL, 0, 0, 0, off, help, d, NULL }
#define O_STR(k, req, off, d, help)         { k, K_STR, req, 0, 0, off, help, 0, d }
#define O_KEY(k, kind, req, help)           { k, kind, req, 0, 0, NONE, help, 0, NULL }
#define O_END                               { NULL, 0, 0, 0, 0, 0, NULL, 0, NULL }

static const struct spec top_spec[] = {
	O_KEY("server", K_GROUP, 1, "listener and webhook"),
	O_KEY("registries", K_LIST, 1, "registries archmerge talks to"),
	O_KEY("rules", K_LIST, 1, "naming rules"),
	O_STR("log_level", 0, NONE, "info", "debug | info | warn | error"),
	O_STR("log_format", 0, NONE, "logfmt", "logfmt | json"),
	O_STR("state_dir", 0, offsetof(struct cfg, state_dir), "/var/lib/archmerge", "directory"),
	O_KEY("reconcile", K_GROUP, 0, "periodic catch-up from the registry"),
	O_KEY("retry", K_GROUP, 0, "backoff of transient registry faults"),
	O_KEY("notify", K_LIST, 0, "outbound notifications"),
	O_KEY("feed", K_GROUP, 0, "Harbor change feed, an event source without webhooks"),
	O_END,
};

static const struct spec reconcile_spec[] = {
	O_INT("interval_s", 0, 0, 7 * 24 * 3600, offsetof(struct cfg, reconcile_interval_s), 300, ""),
	O_BOOL("on_start", offsetof(struct cfg, reconcile_on_start), 1, ""),
	O_KEY("repositories", K_STRARRAY, 0, ""),
	O_INT("page_size", 0, 1, 10000, offsetof(struct cfg, reconcile_page_size), 100, ""),
	O_INT("verify_per_pass", 0, 0, 1000000, offsetof(struct cfg, reconcile_verify_per_pass), 100, ""),
	O_BOOL("verify_on_start", offsetof(struct cfg, reconcile_verify_on_start), 1, ""),
	O_END,
};

static const struct spec feed_spec[] = {
	O_INT("interval_s", 0, 0, 3600, offsetof(struct cfg, feed_interval_s), 0, ""),
	O_INT("grace_s", 0, 0, 86400, offsetof(struct cfg, feed_grace_s), 60, ""),
	O_INT("page_size", 0, 1, 100, offsetof(struct cfg, feed_page_size), 50, ""),
	O_END,
};

static const struct spec retry_spec[] = {
	O_INT("initial_ms", 0, 10, 3600000, offsetof(struct cfg, retry_initial_ms), 500, ""),
	O_INT("max_ms", 0, 10, 3600000, offsetof(struct cfg, retry_max_ms), 60000, ""),
	O_END,
};

static const struct spec server_spec[] = {
	O_STR("listen", 1, offsetof(struct cfg, listen), NULL, "host:port"),
	O_KEY("tls", K_GROUP, 0, "certificate and key"),
	O_BOOL("plain_http", offsetof(struct cfg, plain_http), 0, "serve HTTP without TLS"),
	O_STR("webhook_path", 0, offsetof(struct cfg, webhook_path), "/hooks/harbor", "URL path"),
	O_STR("webhook_secret_file", 0, offsetof(struct cfg, webhook_secret_file), NULL, "file"),
	O_BOOL("allow_unauthenticated", offsetof(struct cfg, allow_unauthenticated), 0, ""),
	O_INT("workers", 0, 1, 64, offsetof(struct cfg, workers), 4, "assembly threads"),
	O_INT("max_body_bytes", 0, 1024, 16 * 1024 * 1024, offsetof(struct cfg, max_body_bytes), 1024 * 1024, ""),
	O_INT("request_timeout_ms", 0, 100, 600000, offsetof(struct cfg, request_timeout_ms), 10000, ""),
	O_INT("max_connections", 0, 1, 4096, offsetof(struct cfg, max_connections), 64, ""),
	O_INT("max_connections_per_client", 0, 0, 4096, offsetof(struct cfg, max_connections_per_client), 16, ""),
	O_INT("max_header_bytes", 0, 1024, 1048576, offsetof(struct cfg, max_header_bytes), 16384, ""),
	O_INT("shutdown_timeout_ms", 0, 0, 600000, offsetof(struct cfg, shutdown_timeout_ms), 10000, ""),
	O_STR("status_secret_file", 0, offsetof(struct cfg, status_secret_file), NULL, "file"),
	O_STR("status_listen", 0, offsetof(struct cfg, status_listen), NULL, "host:port"),
	O_BOOL("status_public", offsetof(struct cfg, status_public), 0, ""),
	O_KEY("allowed_clients", K_STRARRAY, 0, "CIDR ranges allowed to connect"),
	O_INT("header_timeout_ms", 0, 100, 600000, offsetof(struct cfg, header_timeout_ms), 2000, ""),
	O_INT("keep_alive_timeout_ms", 0, 100, 600000, offsetof(struct cfg, keep_alive_timeout_ms), 2000, ""),
	O_INT("replicas", 0, 1, 1024, offsetof(struct cfg, replicas), 1, "archmerge instances publishing the same targets"),
	O_BOOL("single_writer", offsetof(struct cfg, single_writer), 0, "no other writer: skip the re-check"),
	O_END,
};

static const struct spec tls_spec[] = {
	O_STR("certificate", 1, offsetof(struct cfg, tls_certificate), NULL, "PEM chain"),
	O_STR("private_key", 1, offsetof(struct cfg, tls_private_key), NULL, "PEM key"),
	O_END,
};

static const struct spec registry_spec[] = {
	O_STR("host", 1, offsetof(struct cfg_registry, host), NULL, ""),
	O_STR("url", 1, offsetof(struct cfg_registry, url), NULL, ""),
	O_STR("ca_file", 0, offsetof(struct cfg_registry, ca_file), NULL, ""),
	O_BOOL("insecure", offsetof(struct cfg_registry, insecure), 0, ""),
	O_STR("username", 0, offsetof(struct cfg_registry, username), NULL, ""),
	O_STR("password_file", 0, offsetof(struct cfg_registry, password_file), NULL, ""),
	O_INT("timeout_ms", 0, 100, 600000, offsetof(struct cfg_registry, timeout_ms), 30000, ""),
	O_INT("max_concurrent", 0, 1, 256, offsetof(struct cfg_registry, max_concurrent), 4, ""),
	O_STR("harbor_url", 0, offsetof(struct cfg_registry, harbor_url), NULL, "Harbor REST API base"),
	O_STR("webhook_secret_file", 0, offsetof(struct cfg_registry, webhook_secret_file), NULL,
	    "this registry's own webhook secret"),
	O_END,
};

static const struct spec notify_spec[] = {
	O_STR("url", 1, offsetof(struct cfg_notify, url), NULL, "https:// or http://"),
	O_STR("secret_file", 1, offsetof(struct cfg_notify, secret_file), NULL, "HMAC key"),
	O_STR("ca_file", 0, offsetof(struct cfg_notify, ca_file), NULL, ""),
	O_KEY("events", K_STRARRAY, 0, "published | refused | blocked | unchanged"),
	O_INT("timeout_ms", 0, 100, 600000, offsetof(struct cfg_notify, timeout_ms), 5000, ""),
	O_INT("retry_initial_ms", 0, 10, 3600000, offsetof(struct cfg_notify, retry_initial_ms), 1000, ""),
	O_INT("retry_max_ms", 0, 10, 3600000, offsetof(struct cfg_notify, retry_max_ms), 300000, ""),
	O_INT("max_pending", 0, 1, 100000, offsetof(struct cfg_notify, max_pending), 1000, ""),
	O_INT("max_age_s", 0, 60, 30 * 24 * 3600, offsetof(struct cfg_notify, max_age_s), 86400, ""),
	O_END,
};

/* events when the key is absent */
#define NOTIFY_DEFAULT_EVENTS (NOTIFY_PUBLISHED | NOTIFY_REFUSED | NOTIFY_BLOCKED)

static const struct spec rule_spec[] = {
	O_STR("name", 1, NONE, NULL, ""),
	O_KEY("repositories", K_STRARRAY, 1, ""),
	O_STR("source", 1, NONE, NULL, ""),
	O_STR("target", 1, NONE, NULL, ""),
	O_KEY("architectures", K_STRARRAY, 1, ""),
	O_STR("format", 0, NONE, "auto", "auto | oci | docker"),
	O_KEY("platforms", K_GROUP, 0, "extra architecture tokens"),
	O_KEY("optional", K_STRARRAY, 0, "architectures published when present"),
	O_STR("version_regex", 0, NONE, NULL, "POSIX ERE the whole version must match"),
	O_KEY("version_groups", K_STRARRAY, 0, "names of version_regex groups"),
	O_STR("version_order", 0, NONE, "auto", "auto | semver | push: which version floating extra tags follow"),
	O_STR("copy_tag", 0, NONE, NULL, "tag of children copied into the target repository"),
	O_KEY("extra_tags", K_STRARRAY, 0, "more tags for the same index"),
	O_BOOL("keep_attestations", offsetof(struct rule, keep_attestations), 1, "keep buildx attestation manifests"),
	O_KEY("annotations", K_STRARRAY, 0, "\"key=value\" index annotations"),
	O_BOOL("created_annotation", offsetof(struct rule, created_annotation), 0, "org.opencontainers.image.created"),
	O_BOOL("inherit_annotations", offsetof(struct rule, inherit_annotations), 0, "source, revision, title, ... from the children"),
	O_BOOL("cleanup", offsetof(struct rule, cleanup), 0, "remove per-architecture tags after publishing"),
	O_KEY("sign", K_GROUP, 0, "sign published indexes"),
	O_KEY("require_signed_children", K_GROUP, 0, "children must be signed"),
	O_END,
};

static const struct spec sign_spec[] = {
	O_STR("key_file", 1, NONE, NULL, "ECDSA P-256 private key (PEM)"),
	O_END,
};

static const struct spec signed_children_spec[] = {
	O_KEY("public_keys", K_STRARRAY, 1, "public keys (PEM files)"),
	O_END,
};

static int
valid_listen(const char *s)
{
	const char *colon = strrchr(s, ':');
	long long port;

	if (colon == NULL || colon == s)
		return 0;
	return am_parse_numz(colon + 1, 1, 65535, &port) == 0;
}

/* Both host:port with one port (CivetWeb tells listeners apart by port only). */
static int
same_port(const char *a, const char *b)
{
	const char *pa = strrchr(a, ':'), *pb = b != NULL ? strrchr(b, ':') : NULL;

	return pa != NULL && pb != NULL && strcmp(pa, pb) == 0;
}

static void
check_file(struct errs *e, const config_setting_t *s, const char *path, int secret)
{
	char msg[512];
	char *v = NULL;

	if (s == NULL || path == NULL)
		return;
	if (secret) {
		if (am_read_secret(path, &v, msg, sizeof(msg)) != AM_OK)
			add_err(e, line_of(s), "%s", msg);
		am_secret_free(v);
	} else if (access(path, R_OK) != 0) {
		add_err(e, line_of(s), "%s: %s", path, strerror(errno));
	}
}

/* server.allowed_clients: every entry a valid CIDR; an empty list would lock everyone out. */
static char **str_array(config_setting_t *a, size_t *n);

static void
load_allowed_clients(struct errs *e, config_setting_t *srv, struct cfg *c)
{
	config_setting_t *list = config_setting_get_member(srv, "allowed_clients");
	char why[160];
	size_t k;

	if (list == NULL)
		return;
	c->allowed_clients = str_array(list, &c->n_allowed_clients);
	if (c->n_allowed_clients == 0)
		add_err(e, line_of(list), "server.allowed_clients is empty (nobody could connect); "
		    "leave it out to allow every client");
	for (k = 0; k < c->n_allowed_clients; k++) {
		struct cidr cd;
		if (cidr_parse(c->allowed_clients[k], &cd, why, sizeof(why)) != 0)
			add_err(e, line_of(list), "server.allowed_clients[%zu] \"%s\" %s", k,
			    c->allowed_clients[k], why);
	}
}

static void
load_server(struct errs *e, config_setting_t *srv, struct cfg *c, int flags)
{
	config_setting_t *tls;

	if (apply(e, srv, "server", server_spec, c) != 0)
		return;
	tls = config_setting_get_member(srv, "tls");
	if (tls != NULL && apply(e, tls, "server.tls", tls_spec, c) != 0)
		return;
	if (c->listen != NULL && !valid_listen(c->listen))
		add_err(e, line_of(config_setting_get_member(srv, "listen")),
		    "server.listen \"%s\" is not host:port", c->listen);
	if (c->status_listen != NULL && (!valid_listen(c->status_listen) || same_port(c->status_listen, c->listen)))
		add_err(e, line_of(config_setting_get_member(srv, "status_listen")),
		    "server.status_listen \"%s\" must be host:port with a port other than listen's",
		    c->status_listen);
	load_allowed_clients(e, srv, c);
	if (c->single_writer && c->replicas > 1)
		add_err(e, line_of(config_setting_get_member(srv, "single_writer")),
		    "server.single_writer = true contradicts server.replicas = %ld", c->replicas);
	if (tls == NULL && !c->plain_http)
		add_err(e, line_of(srv),
		    "server.tls is required (set server.plain_http = true to serve plain HTTP)");
	if (tls != NULL && c->plain_http)
		add_err(e, line_of(tls), "server.tls and server.plain_http = true exclude each other");
	if (c->webhook_secret_file == NULL && !c->allow_unauthenticated)
		add_err(e, line_of(srv), "server.webhook_secret_file is required "
		    "(or server.allow_unauthenticated = true)");
	if (c->webhook_path != NULL && c->webhook_path[0] != '/')
		add_err(e, line_of(config_setting_get_member(srv, "webhook_path")),
		    "server.webhook_path must start with /");
	if (flags & CFG_CHECK_FILES) {
		if (tls != NULL) {
			check_file(e, config_setting_get_member(tls, "certificate"), c->tls_certificate, 0);
			check_file(e, config_setting_get_member(tls, "private_key"), c->tls_private_key, 0);
		}
		check_file(e, config_setting_get_member(srv, "webhook_secret_file"),
		    c->webhook_secret_file, 1);
		check_file(e, config_setting_get_member(srv, "status_secret_file"),
		    c->status_secret_file, 1);
	}
}

static void
load_registries(struct errs *e, config_setting_t *list, struct cfg *c, int flags)
{
	int i, n = config_setting_length(list);
	char where[64];

	c->registries = xcalloc((size_t)(n ? n : 1), sizeof(*c->registries));
	c->n_registries = (size_t)n;
	if (n == 0)
		add_err(e, line_of(list), "registries must name at least one registry");
	for (i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
		struct cfg_registry *r = &c->registries[i];
		(void)am_fmt(where, sizeof(where), "registries[%d]", i);
		defaults(registry_spec, r);
		if (!config_setting_is_group(g)) {
			add_err(e, line_of(g), "%s must be a group { ... }", where);
			continue;
		}
		if (apply(e, g, where, registry_spec, r) != 0)
			continue;
		if (r->url != NULL && strncmp(r->url, "https://", 8) != 0 &&
		    strncmp(r->url, "http://", 7) != 0)
			add_err(e, line_of(config_setting_get_member(g, "url")),
			    "%s.url must start with https:// or http://", where);
		if (r->url != NULL && r->url[strlen(r->url) - 1] == '/')
			r->url[strlen(r->url) - 1] = '\0';
		if (r->harbor_url != NULL && strncmp(r->harbor_url, "https://", 8) != 0 &&
		    strncmp(r->harbor_url, "http://", 7) != 0)
			add_err(e, line_of(config_setting_get_member(g, "harbor_url")),
			    "%s.harbor_url must start with https:// or http://", where);
		if ((r->username == NULL) != (r->password_file == NULL))
			add_err(e, line_of(g), "%s: username and password_file go together", where);
		if (cfg_registry_by_host(c, r->host) != r)
			add_err(e, line_of(g), "%s: host \"%s\" is listed twice", where, r->host);
		if (flags & CFG_CHECK_FILES) {
			check_file(e, config_setting_get_member(g, "ca_file"), r->ca_file, 0);
			check_file(e, config_setting_get_member(g, "password_file"), r->password_file, 1);
			check_file(e, config_setting_get_member(g, "webhook_secret_file"),
			    r->webhook_secret_file, 1);
		}
	}
}

unsigned
cfg_notify_event(const char *name)
{
	static const struct { const char *name; unsigned bit; } ev[] = {
		{ "published", NOTIFY_PUBLISHED }, { "refused", NOTIFY_REFUSED },
		{ "blocked", NOTIFY_BLOCKED }, { "unchanged", NOTIFY_UNCHANGED },
	};
	size_t i;

	for (i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
		if (strcmp(ev[i].name, name) == 0)
			return ev[i].bit;
	return 0;
}

static int
http_url(const char *u)
{
	return strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0;
}

/* notify = ( { url; secret_file; events = [...]; ... } ): optional, each entry checked. */
static void
load_notify(struct errs *e, config_setting_t *list, struct cfg *c, int flags)
{
	int i, n = list != NULL ? config_setting_length(list) : 0;
	char where[64];

	c->notify = xcalloc((size_t)(n ? n : 1), sizeof(*c->notify));
	c->n_notify = (size_t)n;
	for (i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, (unsigned)i), *ev;
		struct cfg_notify *t = &c->notify[i];
		size_t k, m;
		char **names;

		(void)am_fmt(where, sizeof(where), "notify[%d]", i);
		defaults(notify_spec, t);
		t->events = NOTIFY_DEFAULT_EVENTS;
		if (!config_setting_is_group(g)) {
			add_err(e, line_of(g), "%s must be a group { ... }", where);
			continue;
		}
		if (apply(e, g, where, notify_spec, t) != 0)
			continue;
		if (!http_url(t->url) || strlen(t->url) < 10 || strpbrk(t->url, " \t\r\n") != NULL)
			add_err(e, line_of(config_setting_get_member(g, "url")),
			    "%s.url must be an https:// or http:// URL", where);
		if (t->retry_max_ms < t->retry_initial_ms)
			add_err(e, line_of(g), "%s.retry_max_ms must not be smaller than retry_initial_ms", where);
		if ((ev = config_setting_get_member(g, "events")) != NULL) {
			names = str_array(ev, &m);
			t->events = 0;
			for (k = 0; k < m; k++) {
				unsigned bit = cfg_notify_event(names[k]);
				if (bit == 0)
					add_err(e, line_of(ev), "%s.events: \"%s\" is not published, refused, "
					    "blocked or unchanged", where, names[k]);
				t->events |= bit;
				free(names[k]);
			}
			free(names);
			if (m == 0)
				add_err(e, line_of(ev), "%s.events is empty (leave the entry out instead)", where);
		}
		if (flags & CFG_CHECK_FILES) {
			check_file(e, config_setting_get_member(g, "ca_file"), t->ca_file, 0);
			check_file(e, config_setting_get_member(g, "secret_file"), t->secret_file, 1);
		}
	}
}

static char **
str_array(config_setting_t *a, size_t *n)
{
	int i, len = config_setting_length(a);
	char **out = xcalloc((size_t)(len ? len : 1), sizeof(char *));

	*n = 0;
	for (i = 0; i < len; i++) {
		const char *v = config_setting_get_string_elem(a, i);
		if (v != NULL)
			out[(*n)++] = xstrdup(v);
	}
	return out;
}

static int
token_known(const struct rule *r, size_t upto, const char *name)
{
	size_t i;

	for (i = 0; i < upto; i++)
		if (strcmp(r->archs[i].name, name) == 0)
			return 1;
	return 0;
}

/* Tokens of `key` (architectures or optional) appended to r->archs. */
static void
load_tokens(struct errs *e, config_setting_t *g, struct rule *r, const char *key, int optional,
    const char *where)
{
	config_setting_t *plats = config_setting_get_member(g, "platforms");
	config_setting_t *list = config_setting_get_member(g, key);
	const char *v;
	char msg[512];
	int i, len = list != NULL ? config_setting_length(list) : 0;

	for (i = 0; i < len; i++) {
		struct arch_token *t = &r->archs[r->n_archs];
		const char *plat = NULL;
		v = config_setting_get_string_elem(list, i);
		if (v == NULL || v[0] == '\0' || !name_valid_tag(v)) {
			add_err(e, line_of(list), "%s.%s[%d] must be a non-empty tag-safe string",
			    where, key, i);
			continue;
		}
		if (token_known(r, r->n_archs, v)) {
			add_err(e, line_of(list), "%s.%s lists \"%s\" twice%s", where, key, v,
			    optional ? " (or it is also in architectures)" : "");
			continue;
		}
		(void)am_fmt(t->name, sizeof(t->name), "%s", v);
		t->optional = optional;
		if (plats != NULL && config_setting_lookup_string(plats, v, &plat)) {
			if (platform_parse(plat, &t->platform, msg, sizeof(msg)) != AM_OK) {
				add_err(e, line_of(config_setting_get_member(plats, v)), "%s.platforms.%s: %s",
				    where, v, msg);
				continue;
			}
		} else if (!arch_builtin(v, &t->platform)) {
			add_err(e, line_of(list), "%s: unknown architecture \"%s\"; map it in "
			    "platforms = { %s = \"os[(os.version)]/arch[/variant]\"; }", where, v, v);
			continue;
		}
		r->n_archs++;
	}
}

/* A fixed-size list of strings of a rule into dst[n][width]. */
static void
load_strings(struct errs *e, config_setting_t *g, const char *key, char *dst, size_t width,
    size_t max, size_t *n, const char *where)
{
	config_setting_t *list = config_setting_get_member(g, key);
	const char *v;
	int i, len = list != NULL ? config_setting_length(list) : 0;

	*n = 0;
	if (list != NULL && (size_t)len > max) {
		add_err(e, line_of(list), "%s.%s holds more than %zu entries", where, key, max);
		return;
	}
	for (i = 0; i < len; i++) {
		v = config_setting_get_string_elem(list, i);
		if (v == NULL || v[0] == '\0' || am_fmt(dst + *n * width, width, "%s", v) != 0) {
			add_err(e, line_of(list), "%s.%s[%d] must be a non-empty string shorter than %zu bytes",
			    where, key, i, width);
			continue;
		}
		(*n)++;
	}
}

static int
annotation_key_ok(const char *k, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!name_is_tag_char(k[i]) && k[i] != '/')
			return 0;
	return 1;
}

/* annotations = [ "key=value", ... ]: libconfig names cannot hold dots, so strings. */
static void
load_annotations(struct errs *e, config_setting_t *g, struct rule *r, const char *where)
{
	config_setting_t *list = config_setting_get_member(g, "annotations");
	const char *v, *eq;
	size_t i, j, n = list != NULL ? (size_t)config_setting_length(list) : 0;

	if (n > RULE_MAX_ANNOTATIONS) {
		add_err(e, line_of(list), "%s.annotations holds more than %d entries", where,
		    RULE_MAX_ANNOTATIONS);
		return;
	}
	for (i = 0; i < n; i++) {
		struct rule_annotation *a = &r->annotations[r->n_annotations];
		v = config_setting_get_string_elem(list, (int)i);
		eq = v != NULL ? strchr(v, '=') : NULL;
		if (eq == NULL || !annotation_key_ok(v, (size_t)(eq - v)) ||
		    am_fmt(a->key, sizeof(a->key), "%.*s", (int)(eq - v), v) != 0 ||
		    am_fmt(a->value, sizeof(a->value), "%s", eq + 1) != 0) {
			add_err(e, line_of(list), "%s.annotations[%zu] must be \"key=value\" with a key of "
			    "[A-Za-z0-9._/-] (at most %zu bytes) and a value of at most %zu bytes", where, i,
			    sizeof(a->key) - 1, sizeof(a->value) - 1);
			continue;
		}
		for (j = 0; j < r->n_annotations && strcmp(r->annotations[j].key, a->key) != 0; j++)
			;
		if (j < r->n_annotations) {
			add_err(e, line_of(list), "%s.annotations sets \"%s\" twice", where, a->key);
			continue;
		}
		r->n_annotations++;
	}
}

/* The setting a rule_finish() message is about, for its file:line. */
static config_setting_t *
finish_setting(config_setting_t *g, const char *msg)
{
	static const struct { const char *prefix, *key; } map[] = {
		{ "version_regex", "version_regex" }, { "version_groups", "version_groups" },
		{ "extra tag", "extra_tags" }, { "copy_tag", "copy_tag" },
		{ "architectures", "architectures" }, { "architecture", "architectures" },
	};
	config_setting_t *s;
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(msg, map[i].prefix, strlen(map[i].prefix)) == 0 &&
		    (s = config_setting_get_member(g, map[i].key)) != NULL)
			return s;
	return config_setting_get_member(g, "source");
}

/*
 * sign = { key_file } and require_signed_children = { public_keys }: the
 * keys are read now, so a wrong path, a private key readable by others or a
 * key that is not P-256 stops the load with the line that names it.
 */
static void
load_signing(struct errs *e, config_setting_t *g, struct rule *r, const char *where)
{
	config_setting_t *s = config_setting_get_member(g, "sign");
	char sub[96], msg[640];
	const char *v;
	struct sig_key *k;
	size_t i;

	(void)am_fmt(sub, sizeof(sub), "%s.sign", where);
	if (s != NULL && apply(e, s, sub, sign_spec, NULL) == 0 &&
	    config_setting_lookup_string(s, "key_file", &v)) {
		if (am_fmt(r->sign_key_file, sizeof(r->sign_key_file), "%s", v) != 0)
			add_err(e, line_of(s), "%s.key_file is longer than %zu bytes", sub,
			    sizeof(r->sign_key_file) - 1);
		else if (sig_key_load_private(v, &k, msg, sizeof(msg)) != AM_OK)
			add_err(e, line_of(config_setting_get_member(s, "key_file")), "%s.key_file: %s", sub, msg);
		else
			sig_key_free(k);
	}
	s = config_setting_get_member(g, "require_signed_children");
	(void)am_fmt(sub, sizeof(sub), "%s.require_signed_children", where);
	if (s == NULL || apply(e, s, sub, signed_children_spec, NULL) != 0)
		return;
	r->require_signed = 1;
	load_strings(e, s, "public_keys", r->child_keys[0], sizeof(r->child_keys[0]), RULE_MAX_KEYS,
	    &r->n_child_keys, sub);
	if (r->n_child_keys == 0)
		add_err(e, line_of(s), "%s.public_keys must name at least one key", sub);
	for (i = 0; i < r->n_child_keys; i++) {
		if (sig_key_load_public(r->child_keys[i], &k, msg, sizeof(msg)) != AM_OK)
			add_err(e, line_of(config_setting_get_member(s, "public_keys")),
			    "%s.public_keys[%zu]: %s", sub, i, msg);
		else
			sig_key_free(k);
	}
}

/* The source-layout and publishing options of a rule, then the whole-rule checks. */
static void
load_rule_options(struct errs *e, config_setting_t *g, struct rule *r, const char *where, int before)
{
	const char *v;
	char msg[768];

	if (config_setting_lookup_string(g, "version_regex", &v) &&
	    am_fmt(r->version_regex, sizeof(r->version_regex), "%s", v) != 0)
		add_err(e, line_of(config_setting_get_member(g, "version_regex")),
		    "%s.version_regex is longer than %zu bytes", where, sizeof(r->version_regex) - 1);
	load_strings(e, g, "version_groups", r->version_groups[0], sizeof(r->version_groups[0]),
	    RULE_MAX_GROUPS, &r->n_version_groups, where);
	for (size_t i = 0; i < r->n_version_groups; i++) {
		const char *n = r->version_groups[i];
		if (strspn(n, "abcdefghijklmnopqrstuvwxyz_0123456789") != strlen(n) || (n[0] >= '0' && n[0] <= '9') ||
		    strcmp(n, "version") == 0 || strcmp(n, "repo") == 0 || strcmp(n, "arch") == 0)
			add_err(e, line_of(config_setting_get_member(g, "version_groups")),
			    "%s.version_groups: \"%s\" must be lower case [a-z0-9_], not start with a digit, "
			    "and not be version, repo or arch", where, n);
	}
	if (config_setting_lookup_string(g, "copy_tag", &v) &&
	    am_fmt(r->copy_tag_text, sizeof(r->copy_tag_text), "%s", v) != 0)
		add_err(e, line_of(config_setting_get_member(g, "copy_tag")),
		    "%s.copy_tag is longer than %zu bytes", where, sizeof(r->copy_tag_text) - 1);
	load_strings(e, g, "extra_tags", r->extra_tags[0], sizeof(r->extra_tags[0]), RULE_MAX_EXTRA_TAGS,
	    &r->n_extra_tags, where);
	load_annotations(e, g, r, where);
	load_signing(e, g, r, where);
	if (r->format == INDEX_DOCKER &&
	    (r->n_annotations > 0 || r->created_annotation || r->inherit_annotations))
		add_err(e, line_of(config_setting_get_member(g, "format")),
		    "%s: index annotations need an OCI index; a Docker list (format = \"docker\") cannot "
		    "carry them", where);
	if (!config_setting_lookup_string(g, "version_order", &v))
		v = row(rule_spec, "version_order")->dflt_str;
	if (version_order_parse(v, &r->version_order) != 0)
		add_err(e, line_of(config_setting_get_member(g, "version_order")),
		    "%s.version_order must be \"auto\", \"semver\" or \"push\"", where);
	/* Whole-rule checks only make sense on a rule that loaded cleanly so far. */
	if (e->count == before && rule_finish(r, msg, sizeof(msg)) != AM_OK)
		add_err(e, line_of(finish_setting(g, msg)), "%s: %s", where, msg);
	else if (e->count == before && version_order_unsaid(r, msg, sizeof(msg)))
		add_warn(e, line_of(config_setting_get_member(g, "extra_tags")), "%s: %s", where, msg);
}

static void
load_rule(struct errs *e, config_setting_t *g, struct rule *r, const char *where)
{
	config_setting_t *s, *plats, *archs, *opt;
	const char *v;
	char msg[512];
	int i, len, before = e->count;
	enum index_format fmt;

	defaults(rule_spec, r);
	if (apply(e, g, where, rule_spec, r) != 0)
		return;
	if (config_setting_lookup_string(g, "name", &v) &&
	    (v[0] == '\0' || am_fmt(r->name, sizeof(r->name), "%s", v) != 0))
		add_err(e, line_of(config_setting_get_member(g, "name")),
		    "%s.name must be a non-empty string shorter than %zu bytes", where, sizeof(r->name));
	s = config_setting_get_member(g, "repositories");
	r->repositories = str_array(s, &r->n_repositories);
	if (r->n_repositories == 0 || (int)r->n_repositories != config_setting_length(s))
		add_err(e, line_of(s), "%s.repositories must list at least one glob string", where);
	s = config_setting_get_member(g, "source");
	if (tmpl_compile(config_setting_get_string(s), 1, &r->source, msg, sizeof(msg)) != AM_OK)
		add_err(e, line_of(s), "%s.source: %s", where, msg);
	s = config_setting_get_member(g, "target");
	if (tmpl_compile(config_setting_get_string(s), 0, &r->target, msg, sizeof(msg)) != AM_OK)
		add_err(e, line_of(s), "%s.target: %s", where, msg);
	if (!config_setting_lookup_string(g, "format", &v))
		v = row(rule_spec, "format")->dflt_str;
	if (index_format_parse(v, &fmt) != 0)
		add_err(e, line_of(config_setting_get_member(g, "format")),
		    "%s.format must be \"auto\", \"oci\" or \"docker\"", where);
	else
		r->format = (int)fmt;

	plats = config_setting_get_member(g, "platforms");
	archs = config_setting_get_member(g, "architectures");
	opt = config_setting_get_member(g, "optional");
	len = config_setting_length(archs) + (opt != NULL ? config_setting_length(opt) : 0);
	r->archs = xcalloc((size_t)(len ? len : 1), sizeof(*r->archs));
	if (config_setting_length(archs) == 0)
		add_err(e, line_of(archs), "%s.architectures must list at least one architecture", where);
	/* Required first, then optional: that is also the order in the index. */
	load_tokens(e, g, r, "architectures", 0, where);
	load_tokens(e, g, r, "optional", 1, where);
	if (plats != NULL) {
		for (i = 0; i < config_setting_length(plats); i++) {
			s = config_setting_get_elem(plats, (unsigned)i);
			if (config_setting_type(s) != CONFIG_TYPE_STRING)
				add_err(e, line_of(s), "%s.platforms.%s must be a string \"os[(os.version)]/arch[/variant]\"",
				    where, config_setting_name(s));
		}
	}
	load_rule_options(e, g, r, where, before);
}

static void
load_rules(struct errs *e, config_setting_t *list, struct cfg *c)
{
	int i, n = config_setting_length(list);
	char where[64];

	c->rules = xcalloc((size_t)(n ? n : 1), sizeof(*c->rules));
	if (n == 0)
		add_err(e, line_of(list), "rules must hold at least one rule");
	for (i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
		(void)am_fmt(where, sizeof(where), "rules[%d]", i);
		c->n_rules++;
		if (!config_setting_is_group(g)) {
			add_err(e, line_of(g), "%s must be a group { ... }", where);
			continue;
		}
		load_rule(e, g, &c->rules[i], where);
		/*
		 * Cleanup leaves the published index as the only record of its
		 * children. With another writer (a second replica, a rolling update,
		 * `archmerge assemble` beside serve) one writer's older PUT can land
		 * after the other's cleanup, and no tag is left to notice it or put
		 * the newer index back: refused unless the instance is declared the
		 * only writer (single_writer, which refuses replicas above 1).
		 */
		if (c->rules[i].cleanup && !c->single_writer)
			add_err(e, line_of(config_setting_get_member(g, "cleanup")),
			    "%s.cleanup = true needs server.single_writer = true: with another writer an "
			    "older index can land after cleanup and stay for good", where);
		/* Queued work and the journal name their rule: names must be unique. */
		for (int k = 0; k < i; k++)
			if (c->rules[i].name[0] != '\0' && strcmp(c->rules[k].name, c->rules[i].name) == 0)
				add_err(e, line_of(config_setting_get_member(g, "name")),
				    "%s.name \"%s\" is already used by rules[%d]", where, c->rules[i].name, k);
	}
}

enum am_err
cfg_load(const char *path, int flags, struct cfg **out, char *err, size_t errlen)
{
	config_t lc;
	config_setting_t *root, *s;
	struct cfg *c = xcalloc(1, sizeof(*c));
	char wbuf[4096];
	struct errs w = { path, wbuf, sizeof(wbuf), 0, 0, NULL };
	struct errs e = { path, err, errlen, 0, 0, &w };
	const char *lvl;

	if (errlen > 0)
		err[0] = '\0';
	wbuf[0] = '\0';
	c->path = xstrdup(path);
	defaults(top_spec, c);
	defaults(server_spec, c);
	defaults(reconcile_spec, c);
	defaults(retry_spec, c);
	defaults(feed_spec, c);
	(void)log_level_parse(row(top_spec, "log_level")->dflt_str, &c->log_level);
	config_init(&lc);
	if (!config_read_file(&lc, path)) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			add_err(&e, 0, "cannot read the file: %s", strerror(errno));
		else
			add_err(&e, config_error_line(&lc), "%s", config_error_text(&lc));
		goto done;
	}
	root = config_root_setting(&lc);
	if (apply(&e, root, "", top_spec, c) != 0)   /* "": top-level keys print bare */
		goto done;
	if (config_lookup_string(&lc, "log_level", &lvl) && log_level_parse(lvl, &c->log_level) != 0)
		add_err(&e, line_of(config_lookup(&lc, "log_level")),
		    "log_level must be debug, info, warn or error");
	if (!config_lookup_string(&lc, "log_format", &lvl))
		lvl = row(top_spec, "log_format")->dflt_str;
	if (strcmp(lvl, "json") == 0)
		c->log_json = 1;
	else if (strcmp(lvl, "logfmt") != 0)
		add_err(&e, line_of(config_lookup(&lc, "log_format")), "log_format must be logfmt or json");
	load_server(&e, config_setting_get_member(root, "server"), c, flags);
	if ((s = config_setting_get_member(root, "reconcile")) != NULL &&
	    apply(&e, s, "reconcile", reconcile_spec, c) == 0 &&
	    (s = config_setting_get_member(s, "repositories")) != NULL) {
		c->reconcile_repositories = str_array(s, &c->n_reconcile_repositories);
		for (size_t k = 0; k < c->n_reconcile_repositories; k++)
			if (!name_valid_repo(c->reconcile_repositories[k]))
				add_err(&e, line_of(s), "reconcile.repositories: \"%s\" is not a repository name",
				    c->reconcile_repositories[k]);
	}
	if ((s = config_setting_get_member(root, "feed")) != NULL)
		(void)apply(&e, s, "feed", feed_spec, c);
	if ((s = config_setting_get_member(root, "retry")) != NULL)
		(void)apply(&e, s, "retry", retry_spec, c);
	if (c->retry_max_ms < c->retry_initial_ms)
		add_err(&e, line_of(config_setting_get_member(root, "retry")),
		    "retry.max_ms must not be smaller than retry.initial_ms");
	s = config_setting_get_member(root, "registries");
	load_registries(&e, s, c, flags);
	load_rules(&e, config_setting_get_member(root, "rules"), c);
	load_notify(&e, config_setting_get_member(root, "notify"), c, flags);
done:
	config_destroy(&lc);
	if (e.count > 0) {
		cfg_free(c);
		return AM_EINVAL;
	}
	if (w.count > 0)
		c->warnings = xstrdup(wbuf);
	*out = c;
	return AM_OK;
}

const struct cfg_registry *
cfg_registry_by_host(const struct cfg *c, const char *host)
{
	size_t i;

	for (i = 0; i < c->n_registries; i++)
		if (c->registries[i].host != NULL && strcasecmp(c->registries[i].host, host) == 0)
			return &c->registries[i];
	return NULL;
}

/* "https://reg.example:5000/x" -> compares "reg.example:5000" with name. */
static int
url_host_is(const char *url, const char *name)
{
	const char *h = url != NULL ? strstr(url, "://") : NULL;
	size_t n;

	if (h == NULL)
		return 0;
	h += 3;
	n = strcspn(h, "/");
	return n == strlen(name) && strncasecmp(h, name, n) == 0;
}

const struct cfg_registry *
cfg_registry_by_name(const struct cfg *c, const char *name)
{
	const struct cfg_registry *r = cfg_registry_by_host(c, name);
	size_t i;

	for (i = 0; r == NULL && i < c->n_registries; i++)
		if (url_host_is(c->registries[i].url, name))
			r = &c->registries[i];
	return r;
}

void
cfg_free(struct cfg *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	free(c->path);
	free(c->listen);
	free(c->tls_certificate);
	free(c->tls_private_key);
	free(c->webhook_path);
	free(c->webhook_secret_file);
	free(c->status_secret_file);
	free(c->status_listen);
	free(c->state_dir);
	free(c->warnings);
	for (i = 0; i < c->n_allowed_clients; i++)
		free(c->allowed_clients[i]);
	free(c->allowed_clients);
	for (i = 0; i < c->n_reconcile_repositories; i++)
		free(c->reconcile_repositories[i]);
	free(c->reconcile_repositories);
	for (i = 0; i < c->n_registries; i++) {
		free(c->registries[i].host);
		free(c->registries[i].url);
		free(c->registries[i].ca_file);
		free(c->registries[i].username);
		free(c->registries[i].password_file);
		free(c->registries[i].harbor_url);
		free(c->registries[i].webhook_secret_file);
	}
	free(c->registries);
	for (i = 0; i < c->n_rules; i++) {
		for (j = 0; j < c->rules[i].n_repositories; j++)
			free(c->rules[i].repositories[j]);
		free(c->rules[i].repositories);
		free(c->rules[i].archs);
		rule_clear(&c->rules[i]);
	}
	free(c->rules);
	for (i = 0; i < c->n_notify; i++) {
		free(c->notify[i].url);
		free(c->notify[i].secret_file);
		free(c->notify[i].ca_file);
	}
	free(c->notify);
	free(c);
}

void
cfg_log_warnings(const struct cfg *c)
{
	const char *s = c != NULL ? c->warnings : NULL;
	char line[1024];
	size_t n;

	while (s != NULL && *s != '\0') {
		n = strcspn(s, "\n");
		(void)am_fmt(line, sizeof(line), "%.*s", (int)n, s);
		log_kv(LOG_WARN, "config", LOG_S("detail", line));
		s += n + (s[n] == '\n');
	}
}

/* The groups cfg_setting_text knows, by the prefix of their paths. */
static const struct {
	const char *prefix;
	const struct spec *tab;
} groups[] = {
	{ "", top_spec }, { "server.", server_spec }, { "server.tls.", tls_spec },
	{ "reconcile.", reconcile_spec }, { "retry.", retry_spec }, { "feed.", feed_spec },
	{ "registries.", registry_spec }, { "rules.", rule_spec }, { "notify.", notify_spec },
};

/* Where a group's values live in c (the first registry, the first rule); NULL: none. */
static const void *
group_base(const struct cfg *c, const char *prefix)
{
	if (strcmp(prefix, "registries.") == 0)
		return c->n_registries > 0 ? (const void *)&c->registries[0] : NULL;
	if (strcmp(prefix, "rules.") == 0)
		return c->n_rules > 0 ? (const void *)&c->rules[0] : NULL;
	if (strcmp(prefix, "notify.") == 0)
		return c->n_notify > 0 ? (const void *)&c->notify[0] : NULL;
	return c;
}

/* Values kept in a shape of their own (NONE rows): c's value as the text of its default. */
static const char *
own_value(const struct cfg *c, const char *path)
{
	static const char *const levels[] = { "debug", "info", "warn", "error" };

	if (strcmp(path, "log_level") == 0)
		return (size_t)c->log_level < sizeof(levels) / sizeof(levels[0]) ? levels[c->log_level] : NULL;
	if (strcmp(path, "log_format") == 0)
		return c->log_json ? "json" : "logfmt";
	if (strcmp(path, "rules.format") == 0 && c->n_rules > 0)
		return index_format_name((enum index_format)c->rules[0].format);
	if (strcmp(path, "rules.version_order") == 0 && c->n_rules > 0)
		return c->rules[0].version_order == RULE_ORDER_PUSH ? "push" :
		    c->rules[0].version_order == RULE_ORDER_SEMVER ? "semver" : "auto";
	return NULL;
}

int
cfg_setting_text(const struct cfg *c, const char *path, char *out, size_t len)
{
	const struct spec *sp = NULL;
	const char *base = NULL, *str;
	size_t i, n;

	for (i = 0; sp == NULL && i < sizeof(groups) / sizeof(groups[0]); i++) {
		n = strlen(groups[i].prefix);
		if (strncmp(path, groups[i].prefix, n) != 0 || strchr(path + n, '.') != NULL)
			continue;
		sp = row(groups[i].tab, path + n);
		if (sp != NULL && c != NULL && sp->off != NONE &&
		    (base = group_base(c, groups[i].prefix)) == NULL)
			return -1;
	}
	if (sp == NULL)
		return -1;
	if (c != NULL && sp->off == NONE) {
		if ((str = own_value(c, path)) == NULL)
			return -1;
		return am_fmt(out, len, "\"%s\"", str);
	}
	switch (sp->kind) {
	case K_INT:
		return am_fmt(out, len, "%ld", base != NULL ? *(const long *)(base + sp->off) : sp->dflt);
	case K_BOOL:
		return am_fmt(out, len, "%s", (base != NULL ? *(const int *)(base + sp->off) :
		    sp->dflt) ? "true" : "false");
	case K_STR:
		str = base != NULL ? *(char *const *)(base + sp->off) : sp->dflt_str;
		return str != NULL ? am_fmt(out, len, "\"%s\"", str) : -1;
	default:
		return -1;
	}
}

const struct rule *
cfg_rule_by_name(const struct cfg *c, const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0')
		return NULL;
	for (i = 0; i < c->n_rules; i++)
		if (strcmp(c->rules[i].name, name) == 0)
			return &c->rules[i];
	return NULL;
}

int
cfg_recheck_sources(const struct cfg *c)
{
	return !c->single_writer;
}
