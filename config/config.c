/*
 * Configuration loading. Each group of the file is described by a table
 * (key, type, required, bounds, where it lands); one walker applies the
 * tables, rejects unknown keys and collects "file:line: message" errors.
 */
#include "config/config.h"
#include "server/base/num.h"

#include <errno.h>
#include <libconfig.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/cidr.h"
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
};

#define NONE ((size_t)-1)

/* Accumulated errors, one per line. */
struct errs {
	const char *file;
	char *buf;
	size_t len, used;
	int count;
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

static const struct spec top_spec[] = {
	{ "server", K_GROUP, 1, 0, 0, NONE, "listener and webhook" },
	{ "registries", K_LIST, 1, 0, 0, NONE, "registries archmerge talks to" },
	{ "rules", K_LIST, 1, 0, 0, NONE, "naming rules" },
	{ "log_level", K_STR, 0, 0, 0, NONE, "debug | info | warn | error" },
	{ "log_format", K_STR, 0, 0, 0, NONE, "logfmt | json" },
	{ "state_dir", K_STR, 0, 0, 0, offsetof(struct cfg, state_dir), "directory" },
	{ "reconcile", K_GROUP, 0, 0, 0, NONE, "periodic catch-up from the registry" },
	{ "retry", K_GROUP, 0, 0, 0, NONE, "backoff of transient registry faults" },
	{ "feed", K_GROUP, 0, 0, 0, NONE, "Harbor change feed, an event source without webhooks" },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct spec reconcile_spec[] = {
	{ "interval_s", K_INT, 0, 0, 7 * 24 * 3600, offsetof(struct cfg, reconcile_interval_s), "" },
	{ "on_start", K_BOOL, 0, 0, 0, offsetof(struct cfg, reconcile_on_start), "" },
	{ "repositories", K_STRARRAY, 0, 0, 0, NONE, "" },
	{ "page_size", K_INT, 0, 1, 10000, offsetof(struct cfg, reconcile_page_size), "" },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct spec feed_spec[] = {
	{ "interval_s", K_INT, 0, 0, 3600, offsetof(struct cfg, feed_interval_s), "" },
	{ "grace_s", K_INT, 0, 0, 86400, offsetof(struct cfg, feed_grace_s), "" },
	{ "page_size", K_INT, 0, 1, 100, offsetof(struct cfg, feed_page_size), "" },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct spec retry_spec[] = {
	{ "initial_ms", K_INT, 0, 10, 3600000, offsetof(struct cfg, retry_initial_ms), "" },
	{ "max_ms", K_INT, 0, 10, 3600000, offsetof(struct cfg, retry_max_ms), "" },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct spec server_spec[] = {
	{ "listen", K_STR, 1, 0, 0, offsetof(struct cfg, listen), "host:port" },
	{ "tls", K_GROUP, 0, 0, 0, NONE, "certificate and key" },
	{ "plain_http", K_BOOL, 0, 0, 0, offsetof(struct cfg, plain_http), "serve HTTP without TLS" },
	{ "webhook_path", K_STR, 0, 0, 0, offsetof(struct cfg, webhook_path), "URL path" },
	{ "webhook_secret_file", K_STR, 0, 0, 0, offsetof(struct cfg, webhook_secret_file), "file" },
	{ "allow_unauthenticated", K_BOOL, 0, 0, 0, offsetof(struct cfg, allow_unauthenticated), "" },
	{ "workers", K_INT, 0, 1, 64, offsetof(struct cfg, workers), "assembly threads" },
	{ "max_body_bytes", K_INT, 0, 1024, 16 * 1024 * 1024, offsetof(struct cfg, max_body_bytes), "" },
	{ "request_timeout_ms", K_INT, 0, 100, 600000, offsetof(struct cfg, request_timeout_ms), "" },
	{ "max_connections", K_INT, 0, 1, 4096, offsetof(struct cfg, max_connections), "" },
	{ "max_connections_per_client", K_INT, 0, 0, 4096, offsetof(struct cfg, max_connections_per_client), "" },
	{ "max_header_bytes", K_INT, 0, 1024, 1048576, offsetof(struct cfg, max_header_bytes), "" },
	{ "shutdown_timeout_ms", K_INT, 0, 0, 600000, offsetof(struct cfg, shutdown_timeout_ms), "" },
	{ "status_secret_file", K_STR, 0, 0, 0, offsetof(struct cfg, status_secret_file), "file" },
	{ "status_listen", K_STR, 0, 0, 0, offsetof(struct cfg, status_listen), "host:port" },
	{ "allowed_clients", K_STRARRAY, 0, 0, 0, NONE, "CIDR ranges allowed to connect" },
	{ "header_timeout_ms", K_INT, 0, 100, 600000, offsetof(struct cfg, header_timeout_ms), "" },
	{ "keep_alive_timeout_ms", K_INT, 0, 100, 600000, offsetof(struct cfg, keep_alive_timeout_ms), "" },
	{ "replicas", K_INT, 0, 1, 1024, offsetof(struct cfg, replicas), "archmerge instances publishing the same targets" },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct spec tls_spec[] = {
	{ "certificate", K_STR, 1, 0, 0, offsetof(struct cfg, tls_certificate), "PEM chain" },
	{ "private_key", K_STR, 1, 0, 0, offsetof(struct cfg, tls_private_key), "PEM key" },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct spec registry_spec[] = {
	{ "host", K_STR, 1, 0, 0, offsetof(struct cfg_registry, host), "" },
	{ "url", K_STR, 1, 0, 0, offsetof(struct cfg_registry, url), "" },
	{ "ca_file", K_STR, 0, 0, 0, offsetof(struct cfg_registry, ca_file), "" },
	{ "insecure", K_BOOL, 0, 0, 0, offsetof(struct cfg_registry, insecure), "" },
	{ "username", K_STR, 0, 0, 0, offsetof(struct cfg_registry, username), "" },
	{ "password_file", K_STR, 0, 0, 0, offsetof(struct cfg_registry, password_file), "" },
	{ "timeout_ms", K_INT, 0, 100, 600000, offsetof(struct cfg_registry, timeout_ms), "" },
	{ "max_concurrent", K_INT, 0, 1, 256, offsetof(struct cfg_registry, max_concurrent), "" },
	{ "harbor_url", K_STR, 0, 0, 0, offsetof(struct cfg_registry, harbor_url), "Harbor REST API base" },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct spec rule_spec[] = {
	{ "name", K_STR, 1, 0, 0, NONE, "" },
	{ "repositories", K_STRARRAY, 1, 0, 0, NONE, "" },
	{ "source", K_STR, 1, 0, 0, NONE, "" },
	{ "target", K_STR, 1, 0, 0, NONE, "" },
	{ "architectures", K_STRARRAY, 1, 0, 0, NONE, "" },
	{ "format", K_STR, 0, 0, 0, NONE, "auto | oci | docker" },
	{ "platforms", K_GROUP, 0, 0, 0, NONE, "extra architecture tokens" },
	{ "optional", K_STRARRAY, 0, 0, 0, NONE, "architectures published when present" },
	{ "version_regex", K_STR, 0, 0, 0, NONE, "POSIX ERE the whole version must match" },
	{ "version_groups", K_STRARRAY, 0, 0, 0, NONE, "names of version_regex groups" },
	{ "copy_tag", K_STR, 0, 0, 0, NONE, "tag of children copied into the target repository" },
	{ "extra_tags", K_STRARRAY, 0, 0, 0, NONE, "more tags for the same index" },
	{ "keep_attestations", K_BOOL, 0, 0, 0, NONE, "keep buildx attestation manifests" },
	{ "annotations", K_STRARRAY, 0, 0, 0, NONE, "\"key=value\" index annotations" },
	{ "created_annotation", K_BOOL, 0, 0, 0, NONE, "org.opencontainers.image.created" },
	{ "inherit_annotations", K_BOOL, 0, 0, 0, NONE, "source/revision from the children" },
	{ "cleanup", K_BOOL, 0, 0, 0, NONE, "remove per-architecture tags after publishing" },
	{ "sign", K_GROUP, 0, 0, 0, NONE, "sign published indexes" },
	{ "require_signed_children", K_GROUP, 0, 0, 0, NONE, "children must be signed" },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct spec sign_spec[] = {
	{ "key_file", K_STR, 1, 0, 0, NONE, "ECDSA P-256 private key (PEM)" },
	{ NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct spec signed_children_spec[] = {
	{ "public_keys", K_STRARRAY, 1, 0, 0, NONE, "public keys (PEM files)" },
	{ NULL, 0, 0, 0, 0, 0, NULL },
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
		r->timeout_ms = 30000;
		r->max_concurrent = 4;
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

static int
lookup_bool(config_setting_t *g, const char *key, int dflt)
{
	int v;

	return config_setting_lookup_bool(g, key, &v) ? v : dflt;
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
	r->keep_attestations = lookup_bool(g, "keep_attestations", 1);
	r->created_annotation = lookup_bool(g, "created_annotation", 0);
	r->inherit_annotations = lookup_bool(g, "inherit_annotations", 0);
	r->cleanup = lookup_bool(g, "cleanup", 0);
	load_signing(e, g, r, where);
	if (r->format == INDEX_DOCKER &&
	    (r->n_annotations > 0 || r->created_annotation || r->inherit_annotations))
		add_err(e, line_of(config_setting_get_member(g, "format")),
		    "%s: index annotations need an OCI index; a Docker list (format = \"docker\") cannot "
		    "carry them", where);
	/* Whole-rule checks only make sense on a rule that loaded cleanly so far. */
	if (e->count == before && rule_finish(r, msg, sizeof(msg)) != AM_OK)
		add_err(e, line_of(finish_setting(g, msg)), "%s: %s", where, msg);
}

static void
load_rule(struct errs *e, config_setting_t *g, struct rule *r, const char *where)
{
	config_setting_t *s, *plats, *archs, *opt;
	const char *v;
	char msg[512];
	int i, len, before = e->count;
	enum index_format fmt = INDEX_AUTO;

	if (apply(e, g, where, rule_spec, NULL) != 0)
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
	if (config_setting_lookup_string(g, "format", &v) && index_format_parse(v, &fmt) != 0)
		add_err(e, line_of(config_setting_get_member(g, "format")),
		    "%s.format must be \"auto\", \"oci\" or \"docker\"", where);
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
	struct errs e = { path, err, errlen, 0, 0 };
	const char *lvl;

	if (errlen > 0)
		err[0] = '\0';
	c->path = xstrdup(path);
	c->workers = 4;
	c->max_body_bytes = 1024 * 1024;
	c->request_timeout_ms = 10000;
	c->log_level = LOG_INFO;
	c->max_connections = 64;
	c->max_connections_per_client = 16;
	c->max_header_bytes = 16384;
	c->header_timeout_ms = 2000;
	c->keep_alive_timeout_ms = 2000;
	c->replicas = 1;
	c->shutdown_timeout_ms = 10000;
	c->reconcile_interval_s = 300;
	c->reconcile_on_start = 1;
	c->reconcile_page_size = 100;
	c->feed_interval_s = 0;
	c->feed_grace_s = 60;
	c->feed_page_size = 50;
	c->retry_initial_ms = 500;
	c->retry_max_ms = 60000;
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
	if (config_lookup_string(&lc, "log_format", &lvl)) {
		if (strcmp(lvl, "json") == 0)
			c->log_json = 1;
		else if (strcmp(lvl, "logfmt") != 0)
			add_err(&e, line_of(config_lookup(&lc, "log_format")),
			    "log_format must be logfmt or json");
	}
	load_server(&e, config_setting_get_member(root, "server"), c, flags);
	if (c->webhook_path == NULL)
		c->webhook_path = xstrdup("/hooks/harbor");
	if (c->state_dir == NULL && config_lookup_string(&lc, "state_dir", &lvl))
		c->state_dir = xstrdup(lvl);   /* top-level keys are checked without a base struct */
	if (c->state_dir == NULL)
		c->state_dir = xstrdup("/var/lib/archmerge");
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
done:
	config_destroy(&lc);
	if (e.count > 0) {
		cfg_free(c);
		return AM_EINVAL;
	}
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
	free(c);
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
