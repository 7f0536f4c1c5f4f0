/*
 * Unit tests: configuration loading (config/config.c). Each case starts from
 * a valid 21-line file and replaces single lines, so every expected
 * "file:line: message" names a line known in advance. Files are written to a
 * mkdtemp() directory and removed at the end.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "registry/oci/index.h"

#define NLINES 21

static const char *const base_lines[NLINES] = {
	/*  1 */ "server = {",
	/*  2 */ "  listen = \"127.0.0.1:8080\";",
	/*  3 */ "  plain_http = true;",
	/*  4 */ "  allow_unauthenticated = true;",
	/*  5 */ "  workers = 4;",
	/*  6 */ "};",
	/*  7 */ "registries = (",
	/*  8 */ "  { host = \"harbor.example.com\";",
	/*  9 */ "    url = \"https://harbor.example.com/\";",
	/* 10 */ "  }",
	/* 11 */ ");",
	/* 12 */ "rules = (",
	/* 13 */ "  { name = \"per-arch\";",
	/* 14 */ "    repositories = [ \"library/*\" ];",
	/* 15 */ "    source = \"{repo}:{version}-{arch}\";",
	/* 16 */ "    target = \"{repo}:{version}\";",
	/* 17 */ "    architectures = [ \"amd64\", \"arm64\" ];",
	/* 18 */ "    format = \"auto\";",
	/* 19 */ "  }",
	/* 20 */ ");",
	/* 21 */ "# end",
};

struct conf {
	const char *l[NLINES];
};

#define SET(c, n, text) ((c)->l[(n) - 1] = (text))

static char g_dir[64];
static char g_path[128];     /* the configuration file under test */

static void
conf_init(struct conf *c)
{
	memcpy(c->l, base_lines, sizeof(c->l));
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0 || chmod(path, mode) != 0) {
		perror(path);
		exit(2);
	}
}

static enum am_err
load_conf(const struct conf *c, int flags, struct cfg **out, char *err, size_t errlen)
{
	char text[4096];
	size_t used = 0, i;

	for (i = 0; i < NLINES; i++) {
		if (am_fmt(text + used, sizeof(text) - used, "%s\n", c->l[i]) != 0) {
			fprintf(stderr, "test configuration too long\n");
			exit(2);
		}
		used += strlen(text + used);
	}
	write_file(g_path, text, 0644);
	return cfg_load(g_path, flags, out, err, errlen);
}

/* Does err hold a line "<g_path>:<line>: ...needle..."? */
static int
has_err(const char *err, int line, const char *needle)
{
	char prefix[192];
	const char *p = err;

	(void)am_fmt(prefix, sizeof(prefix), "%s:%d: ", g_path, line);
	while (*p != '\0') {
		size_t n = strcspn(p, "\n");
		if (strncmp(p, prefix, strlen(prefix)) == 0) {
			const char *hit = strstr(p, needle);
			if (hit != NULL && (size_t)(hit - p) < n)
				return 1;
		}
		p += n;
		if (*p == '\n')
			p++;
	}
	return 0;
}

/* Every line of err has the "file:line: " shape; returns how many lines. */
static int
err_lines(const char *err)
{
	const char *p = err;
	int n = 0;

	while (*p != '\0') {
		size_t len = strcspn(p, "\n");
		char *end;
		long line;

		if (strncmp(p, g_path, strlen(g_path)) != 0 || p[strlen(g_path)] != ':')
			return -1;
		line = strtol(p + strlen(g_path) + 1, &end, 10);
		if (line < 1 || line > NLINES + 1 || end[0] != ':' || end[1] != ' ')
			return -1;
		n++;
		p += len;
		if (*p == '\n')
			p++;
	}
	return n;
}

/* The configuration must be refused with (at least) this error. */
static void
expect_err(const char *what, const struct conf *c, int flags, int line, const char *needle)
{
	struct cfg *cfg = NULL;
	char err[4096] = "";
	int before = t_failed;

	CHECK(load_conf(c, flags, &cfg, err, sizeof(err)) == AM_EINVAL);
	CHECK(cfg == NULL);
	CHECK(has_err(err, line, needle));
	CHECK(err_lines(err) >= 1);
	if (t_failed != before)
		fprintf(stderr, "  case \"%s\": expected line %d with \"%s\", got:\n%s\n",
		    what, line, needle, err);
	cfg_free(cfg);
}

/* The configuration must be refused with exactly this one error. */
static void
expect_only(const char *what, const struct conf *c, int line, const char *msg)
{
	struct cfg *cfg = NULL;
	char err[4096] = "", want[512];
	int before = t_failed;

	(void)am_fmt(want, sizeof(want), "%s:%d: %s", g_path, line, msg);
	CHECK(load_conf(c, 0, &cfg, err, sizeof(err)) == AM_EINVAL);
	CHECK(cfg == NULL);
	CHECK_STR(err, want);
	if (t_failed != before)
		fprintf(stderr, "  case \"%s\"\n", what);
	cfg_free(cfg);
}

static struct cfg *
expect_ok(const char *what, const struct conf *c, int flags)
{
	struct cfg *cfg = NULL;
	char err[4096] = "";
	int before = t_failed;

	CHECK(load_conf(c, flags, &cfg, err, sizeof(err)) == AM_OK);
	CHECK(cfg != NULL);
	CHECK_STR(err, "");
	if (t_failed != before)
		fprintf(stderr, "  case \"%s\": refused:\n%s\n", what, err);
	return cfg;
}

static void
test_example(void)
{
	struct cfg *c = NULL;
	char err[4096] = "", buf[64];
	const char *example = "deploy/archmerge.conf.example";
	const struct rule *r;

	CHECK(cfg_load(example, 0, &c, err, sizeof(err)) == AM_OK);
	if (c == NULL) {
		fprintf(stderr, "%s refused:\n%s\n", example, err);
		return;
	}
	CHECK_STR(c->path, example);
	CHECK_STR(c->listen, "0.0.0.0:8443");
	CHECK_STR(c->tls_certificate, "/etc/archmerge/tls/server.crt");
	CHECK_STR(c->tls_private_key, "/etc/archmerge/tls/server.key");
	CHECK(c->plain_http == 0);
	CHECK_STR(c->webhook_path, "/hooks/harbor");
	CHECK_STR(c->webhook_secret_file, "/etc/archmerge/webhook-secret");
	CHECK(c->allow_unauthenticated == 0);
	/* defaults */
	CHECK(c->status_public == 0);    /* issue 23: /status and /ui private unless chosen */
	CHECK(c->workers == 4);
	CHECK(c->max_body_bytes == 1024 * 1024);
	CHECK(c->request_timeout_ms == 10000);
	CHECK(c->log_level == LOG_INFO);

	CHECK(c->n_registries == 1);
	CHECK_STR(c->registries[0].host, "harbor.example.com");
	CHECK_STR(c->registries[0].url, "https://harbor.example.com");
	CHECK_STR(c->registries[0].ca_file, "/etc/archmerge/harbor-ca.crt");
	CHECK_STR(c->registries[0].username, "robot$library+archmerge");
	CHECK_STR(c->registries[0].password_file, "/etc/archmerge/robot-secret");
	CHECK(c->registries[0].insecure == 0);
	CHECK(c->registries[0].timeout_ms == 30000);
	CHECK(cfg_registry_by_host(c, "harbor.example.com") == &c->registries[0]);
	CHECK(cfg_registry_by_host(c, "Harbor.Example.COM") == &c->registries[0]);
	CHECK(cfg_registry_by_host(c, "110.1.20.3") == NULL);

	CHECK(c->n_rules == 1);
	r = &c->rules[0];
	CHECK_STR(r->name, "per-arch tags");
	CHECK(r->n_repositories == 1);
	CHECK_STR(r->repositories[0], "library/*");
	CHECK_STR(r->source.text, "{repo}:{version}-{arch}");
	CHECK_STR(r->target.text, "{repo}:{version}");
	CHECK(r->n_archs == 2);
	CHECK_STR(r->archs[0].name, "amd64");
	platform_format(&r->archs[0].platform, buf, sizeof(buf));
	CHECK_STR(buf, "linux/amd64");
	CHECK_STR(r->archs[1].name, "arm64");
	platform_format(&r->archs[1].platform, buf, sizeof(buf));
	CHECK_STR(buf, "linux/arm64");
	CHECK(r->format == INDEX_AUTO);
	cfg_free(c);
	cfg_free(NULL);

	/* With file checks the example's absolute paths do not exist here. */
	c = NULL;
	CHECK(cfg_load(example, CFG_CHECK_FILES, &c, err, sizeof(err)) == AM_EINVAL);
	CHECK(c == NULL);
	CHECK(strstr(err, "deploy/archmerge.conf.example:6: /etc/archmerge/tls/server.crt") != NULL);
	CHECK(strstr(err, "/etc/archmerge/harbor-ca.crt") != NULL);
}

static void
test_base(void)
{
	struct conf c;
	struct cfg *cfg;

	conf_init(&c);
	cfg = expect_ok("base", &c, 0);
	if (cfg != NULL) {
		CHECK(cfg->plain_http == 1);
		CHECK(cfg->allow_unauthenticated == 1);
		CHECK(cfg->webhook_secret_file == NULL);
		CHECK(cfg->registries[0].webhook_secret_file == NULL);   /* the server's secret covers it */
		CHECK(cfg->tls_certificate == NULL);
		CHECK_STR(cfg->webhook_path, "/hooks/harbor");
		/* A trailing slash on the URL is dropped. */
		CHECK_STR(cfg->registries[0].url, "https://harbor.example.com");
		CHECK(cfg->registries[0].username == NULL);
		CHECK(cfg->registries[0].ca_file == NULL);
	}
	cfg_free(cfg);

	/* Bounds are inclusive. */
	SET(&c, 5, "  workers = 64; max_body_bytes = 1024; request_timeout_ms = 600000;");
	cfg = expect_ok("bounds", &c, 0);
	CHECK(cfg == NULL || cfg->workers == 64);
	cfg_free(cfg);
	/* log_level lives at the top level, not in server. */
	SET(&c, 5, "  workers = 64;");
	SET(&c, 21, "log_level = \"debug\";");
	cfg = expect_ok("log_level", &c, 0);
	CHECK(cfg == NULL || cfg->log_level == LOG_DEBUG);
	cfg_free(cfg);
}

static void
test_unknown_keys(void)
{
	struct conf c;

	conf_init(&c);
	SET(&c, 21, "bogus = 1;");
	expect_only("unknown top-level key", &c, 21, "unknown key \"bogus\" in the top level");

	/* Top-level keys are named bare, not as "the top level.server". */
	conf_init(&c);
	SET(&c, 1, "# no server");
	SET(&c, 2, "#");
	SET(&c, 3, "#");
	SET(&c, 4, "#");
	SET(&c, 5, "#");
	SET(&c, 6, "#");
	expect_only("missing server", &c, 1, "server is required");
	SET(&c, 3, "server = 8080;");
	expect_only("server not a group", &c, 3, "server must be a group { ... }");

	conf_init(&c);
	SET(&c, 5, "  bogus = 4;");
	expect_only("unknown key in server", &c, 5, "unknown key \"bogus\" in server");

	conf_init(&c);
	SET(&c, 5, "  tls = { certificate = \"/c\"; private_key = \"/k\"; key = \"/k\"; };");
	SET(&c, 3, "  # no plain_http");
	expect_err("unknown key in server.tls", &c, 0, 5, "unknown key \"key\" in server.tls");

	conf_init(&c);
	SET(&c, 10, "    bogus = 1; }");
	expect_only("unknown key in a registry", &c, 10, "unknown key \"bogus\" in registries[0]");

	conf_init(&c);
	SET(&c, 19, "    bogus = 1; }");
	expect_only("unknown key in a rule", &c, 19, "unknown key \"bogus\" in rules[0]");

	/* A misspelled key is unknown, and the real one is then missing. */
	conf_init(&c);
	SET(&c, 17, "    architecture = [ \"amd64\", \"arm64\" ];");
	expect_err("misspelled architectures", &c, 0, 17, "unknown key \"architecture\" in rules[0]");
	expect_err("misspelled architectures", &c, 0, 13, "rules[0].architectures is required");

	conf_init(&c);
	SET(&c, 9, "    URL = \"https://harbor.example.com\";");
	expect_err("misspelled url", &c, 0, 9, "unknown key \"URL\" in registries[0]");
	expect_err("misspelled url", &c, 0, 8, "registries[0].url is required");
}

static void
test_values(void)
{
	struct conf c;

	conf_init(&c);
	SET(&c, 5, "  workers = \"4\";");
	expect_only("workers as a string", &c, 5, "server.workers must be an integer");
	SET(&c, 5, "  workers = 0;");
	expect_only("workers = 0", &c, 5, "server.workers must be between 1 and 64");
	SET(&c, 5, "  workers = 65;");
	expect_only("workers = 65", &c, 5, "server.workers must be between 1 and 64");
	conf_init(&c);
	SET(&c, 3, "  plain_http = 1;");
	expect_only("plain_http = 1", &c, 3, "server.plain_http must be true or false");

	conf_init(&c);
	SET(&c, 2, "  listen = \"8080\";");
	expect_only("listen without host", &c, 2, "server.listen \"8080\" is not host:port");
	SET(&c, 2, "  listen = \"0.0.0.0:99999\";");
	expect_only("port out of range", &c, 2, "server.listen \"0.0.0.0:99999\" is not host:port");
	SET(&c, 2, "  listen = \"0.0.0.0:http\";");
	expect_only("port not a number", &c, 2, "server.listen \"0.0.0.0:http\" is not host:port");
	SET(&c, 2, "  listen = \"0.0.0.0:\";");
	expect_only("no port", &c, 2, "server.listen \"0.0.0.0:\" is not host:port");
	SET(&c, 2, "  listen = \"\";");
	expect_only("empty listen", &c, 2, "server.listen must not be empty");

	conf_init(&c);
	SET(&c, 3, "  # no plain_http, no tls");
	expect_only("no tls, no plain_http", &c, 1,
	    "server.tls is required (set server.plain_http = true to serve plain HTTP)");
	SET(&c, 3, "  plain_http = false;");
	expect_only("no tls, plain_http = false", &c, 1,
	    "server.tls is required (set server.plain_http = true to serve plain HTTP)");

	conf_init(&c);
	SET(&c, 5, "  tls = { certificate = \"/c\"; private_key = \"/k\"; };");
	expect_only("tls and plain_http", &c, 5,
	    "server.tls and server.plain_http = true exclude each other");
	SET(&c, 3, "  # tls only");
	{
		struct cfg *cfg = expect_ok("tls only", &c, 0);
		CHECK(cfg == NULL || (cfg->tls_certificate != NULL && strcmp(cfg->tls_certificate, "/c") == 0));
		cfg_free(cfg);
	}
	SET(&c, 5, "  tls = { certificate = \"/c\"; };");
	expect_only("tls without key", &c, 5, "server.tls.private_key is required");

	conf_init(&c);
	SET(&c, 4, "  # no secret");
	expect_only("no secret, authentication required", &c, 1,
	    "server.webhook_secret_file is required (or server.allow_unauthenticated = true)");
	SET(&c, 4, "  allow_unauthenticated = false;");
	expect_only("no secret, allow_unauthenticated = false", &c, 1,
	    "server.webhook_secret_file is required (or server.allow_unauthenticated = true)");
	SET(&c, 4, "  webhook_secret_file = \"/nonexistent/secret\";");
	{
		/* Without CFG_CHECK_FILES the file is not looked at. */
		struct cfg *cfg = expect_ok("secret file, no file checks", &c, 0);
		CHECK(cfg == NULL || strcmp(cfg->webhook_secret_file, "/nonexistent/secret") == 0);
		cfg_free(cfg);
	}

	conf_init(&c);
	SET(&c, 5, "  webhook_path = \"hooks\";");
	expect_only("relative webhook_path", &c, 5, "server.webhook_path must start with /");

	conf_init(&c);
	SET(&c, 9, "    url = \"harbor.example.com\";");
	expect_only("url without scheme", &c, 9, "registries[0].url must start with https:// or http://");
	SET(&c, 9, "    url = \"https://harbor.example.com\"; username = \"robot$x\";");
	expect_only("username without password_file", &c, 8,
	    "registries[0]: username and password_file go together");

	conf_init(&c);
	SET(&c, 8, "  { host = \"harbor.example.com\"; url = \"https://a\"; },");
	SET(&c, 9, "  { host = \"HARBOR.example.com\";");
	SET(&c, 10, "    url = \"https://b\"; }");
	expect_only("duplicate registry host", &c, 9,
	    "registries[1]: host \"HARBOR.example.com\" is listed twice");
}

static void
test_rules(void)
{
	struct conf c;
	struct cfg *cfg;
	char buf[64];

	conf_init(&c);
	SET(&c, 17, "    architectures = [ \"amd64\", \"sparc\" ];");
	expect_only("unknown architecture token", &c, 17,
	    "rules[0]: unknown architecture \"sparc\"; map it in platforms = { sparc = \"os[(os.version)]/arch[/variant]\"; }");

	/* cleanup without a declared single writer: refused (issue 22 §3); with it, accepted. */
	conf_init(&c);
	SET(&c, 5, "  workers = 4; replicas = 2;");
	SET(&c, 18, "    cleanup = true;");
	expect_only("cleanup with replicas", &c, 18,
	    "rules[0].cleanup = true needs server.single_writer = true: with another writer an older "
	    "index can land after cleanup and stay for good");
	SET(&c, 5, "  workers = 4;");
	expect_only("cleanup by default", &c, 18,
	    "rules[0].cleanup = true needs server.single_writer = true: with another writer an older "
	    "index can land after cleanup and stay for good");
	SET(&c, 5, "  workers = 4; single_writer = true;");
	cfg_free(expect_ok("cleanup with a single writer", &c, 0));
	SET(&c, 5, "  workers = 4; replicas = 2;");
	SET(&c, 18, "    cleanup = false;");
	cfg_free(expect_ok("replicas without cleanup", &c, 0));
	conf_init(&c);

	/* armhf is built in (linux/arm/v7); a mapping may still name it. */
	SET(&c, 17, "    architectures = [ \"amd64\", \"armhf\" ];");
	SET(&c, 18, "    platforms = { armhf = \"linux/arm/v7\"; };");
	cfg = expect_ok("platforms mapping", &c, 0);
	if (cfg != NULL) {
		CHECK(cfg->rules[0].n_archs == 2);
		CHECK_STR(cfg->rules[0].archs[1].name, "armhf");
		platform_format(&cfg->rules[0].archs[1].platform, buf, sizeof(buf));
		CHECK_STR(buf, "linux/arm/v7");
		CHECK(cfg->rules[0].format == INDEX_AUTO);   /* format omitted */
	}
	cfg_free(cfg);

	/* A mapping may also override a built-in token. */
	SET(&c, 17, "    architectures = [ \"amd64\", \"arm64\" ];");
	SET(&c, 18, "    platforms = { arm64 = \"linux/arm64/v8\"; };");
	cfg = expect_ok("platforms override", &c, 0);
	if (cfg != NULL) {
		platform_format(&cfg->rules[0].archs[1].platform, buf, sizeof(buf));
		CHECK_STR(buf, "linux/arm64");   /* normalised: arm64/v8 is arm64 */
	}
	cfg_free(cfg);

	SET(&c, 17, "    architectures = [ \"amd64\", \"armhf\" ];");
	SET(&c, 18, "    platforms = { armhf = \"linux\"; };");
	expect_err("bad platform string", &c, 0, 18, "rules[0].platforms.armhf");
	SET(&c, 18, "    platforms = { armhf = 7; };");
	expect_err("platform not a string", &c, 0, 18, "rules[0].platforms.armhf must be a string");

	/* Issue 9.6: Windows releases side by side, told apart by os.version. */
	SET(&c, 17, "    architectures = [ \"ltsc2019\", \"ltsc2022\", \"win11\" ];");
	SET(&c, 18, "    platforms = { win11 = \"windows(10.0.22631)/amd64\"; };");
	cfg = expect_ok("two windows/amd64 tokens, different os.version", &c, 0);
	if (cfg != NULL) {
		platform_format(&cfg->rules[0].archs[0].platform, buf, sizeof(buf));
		CHECK_STR(buf, "windows(10.0.17763)/amd64");
		platform_format(&cfg->rules[0].archs[2].platform, buf, sizeof(buf));
		CHECK_STR(buf, "windows(10.0.22631)/amd64");
	}
	cfg_free(cfg);
	/* The whole platform equal, os.version included: still a duplicate. */
	SET(&c, 18, "    platforms = { win11 = \"windows(10.0.17763)/amd64\"; };");
	expect_err("same os.version twice", &c, 0, 17, "both stand for windows(10.0.17763)/amd64");
	SET(&c, 18, "    platforms = { win11 = \"windows(/amd64\"; };");
	expect_err("bad os.version syntax", &c, 0, 18, "rules[0].platforms.win11");

	conf_init(&c);
	SET(&c, 17, "    architectures = [ \"amd64\", \"amd64\" ];");
	expect_only("duplicate architecture", &c, 17, "rules[0].architectures lists \"amd64\" twice");
	SET(&c, 17, "    architectures = [ ];");
	expect_only("no architecture", &c, 17, "rules[0].architectures must list at least one architecture");

	conf_init(&c);
	SET(&c, 18, "    format = \"zip\";");
	expect_only("bad format", &c, 18, "rules[0].format must be \"auto\", \"oci\" or \"docker\"");
	SET(&c, 18, "    format = \"oci\";");
	cfg = expect_ok("format oci", &c, 0);
	CHECK(cfg == NULL || cfg->rules[0].format == INDEX_OCI);
	cfg_free(cfg);
	SET(&c, 18, "    format = \"docker\";");
	cfg = expect_ok("format docker", &c, 0);
	CHECK(cfg == NULL || cfg->rules[0].format == INDEX_DOCKER);
	cfg_free(cfg);

	conf_init(&c);
	SET(&c, 15, "    source = \"{repo}:{version}{arch}\";");
	expect_err("ambiguous source", &c, 0, 15, "rules[0].source: ");
	expect_err("ambiguous source", &c, 0, 15, "ambiguous");
	SET(&c, 15, "    source = \"{repo}:{version}\";");
	expect_err("source without {arch}", &c, 0, 15, "rules[0].source: ");
	conf_init(&c);
	SET(&c, 16, "    target = \"{repo}:{version}-{arch}\";");
	expect_err("target with {arch}", &c, 0, 16, "rules[0].target: ");

	conf_init(&c);
	SET(&c, 14, "    repositories = [ ];");
	expect_only("no repositories", &c, 14, "rules[0].repositories must list at least one glob string");
	SET(&c, 14, "    repositories = \"library/*\";");
	expect_only("repositories as a string", &c, 14,
	    "rules[0].repositories must be an array of strings [ ... ]");

	/* Rule names identify queued and journaled work: unique. */
	conf_init(&c);
	SET(&c, 19, "  }, { name = \"per-arch\"; repositories = [ \"team/*\" ]; "
	    "source = \"{repo}:{version}_{arch}\"; target = \"{repo}:{version}\"; "
	    "architectures = [ \"amd64\" ]; }");
	expect_only("duplicate rule name", &c, 19,
	    "rules[1].name \"per-arch\" is already used by rules[0]");
	SET(&c, 19, "  }, { name = \"per-arch-2\"; repositories = [ \"team/*\" ]; "
	    "source = \"{repo}:{version}_{arch}\"; target = \"{repo}:{version}\"; "
	    "architectures = [ \"amd64\" ]; }");
	cfg = expect_ok("two rules", &c, 0);
	CHECK(cfg == NULL || cfg->n_rules == 2);
	cfg_free(cfg);
}

static void
test_syntax_and_many(void)
{
	struct conf c;
	struct cfg *cfg = NULL;
	char err[4096] = "";

	conf_init(&c);
	SET(&c, 5, "  workers = = 4;");
	expect_err("syntax error", &c, 0, 5, "syntax error");

	/*
	 * A missing "=". (Not before a string value: libconfig 1.5 leaks the
	 * string token it discards on that error, which LeakSanitizer reports.)
	 */
	conf_init(&c);
	SET(&c, 5, "  workers 4;");
	expect_err("missing =", &c, 0, 5, "syntax error");
	conf_init(&c);
	SET(&c, 11, ");}");
	expect_err("stray brace", &c, 0, 11, "syntax error");

	/* A missing file is "file:0: ..." with the system's reason. */
	{
		char missing[160];
		(void)am_fmt(missing, sizeof(missing), "%s/none.conf", g_dir);
		CHECK(cfg_load(missing, 0, &cfg, err, sizeof(err)) == AM_EINVAL);
		CHECK(cfg == NULL);
		CHECK(strncmp(err, missing, strlen(missing)) == 0 && strstr(err, ":0: cannot read") != NULL);
	}

	/* Errors in server, a registry and a rule: all reported, one per line, in file order. */
	conf_init(&c);
	SET(&c, 5, "  bogus = 4;");
	SET(&c, 10, "    bogus = 1; }");
	SET(&c, 15, "    source = \"{repo}:{version}{arch}\";");
	SET(&c, 18, "    format = \"zip\";");
	CHECK(load_conf(&c, 0, &cfg, err, sizeof(err)) == AM_EINVAL);
	CHECK(cfg == NULL);
	CHECK(err_lines(err) == 4);
	CHECK(has_err(err, 5, "unknown key \"bogus\" in server"));
	CHECK(has_err(err, 10, "unknown key \"bogus\" in registries[0]"));
	CHECK(has_err(err, 15, "ambiguous"));
	CHECK(has_err(err, 18, "rules[0].format"));
	CHECK(strchr(err, '\n') != NULL && err[strlen(err) - 1] != '\n');

	/* A small buffer truncates the report but stays terminated. */
	{
		char small[40];
		memset(small, 'x', sizeof(small));
		CHECK(load_conf(&c, 0, &cfg, small, sizeof(small)) == AM_EINVAL);
		CHECK(memchr(small, '\0', sizeof(small)) != NULL);
		CHECK(strncmp(small, g_path, strlen(g_path) < 39 ? strlen(g_path) : 39) == 0);
	}
}

static void
test_files(void)
{
	struct conf c;
	struct cfg *cfg;
	char secret[160], secret_line[256], ca[160], ca_line[320], pw[160], reg_line[400];

	(void)am_fmt(secret, sizeof(secret), "%s/webhook-secret", g_dir);
	(void)am_fmt(secret_line, sizeof(secret_line), "  webhook_secret_file = \"%s\";", secret);
	(void)am_fmt(ca, sizeof(ca), "%s/missing-ca.crt", g_dir);
	(void)am_fmt(ca_line, sizeof(ca_line), "    ca_file = \"%s\"; }", ca);
	(void)am_fmt(pw, sizeof(pw), "%s/robot-secret", g_dir);
	(void)am_fmt(reg_line, sizeof(reg_line),
	    "    username = \"robot$library+archmerge\"; password_file = \"%s\"; }", pw);

	conf_init(&c);
	SET(&c, 4, secret_line);

	/* Group/world readable secret: refused, with the fix in the message. */
	write_file(secret, "Bearer s3cret\n", 0644);
	expect_err("secret 0644", &c, CFG_CHECK_FILES, 4, "chmod 600");
	expect_err("secret 0644", &c, CFG_CHECK_FILES, 4, secret);
	write_file(secret, "Bearer s3cret\n", 0640);
	expect_err("secret 0640", &c, CFG_CHECK_FILES, 4, "chmod 600");
	/* Without file checks the mode does not matter. */
	cfg = expect_ok("secret 0640, no checks", &c, 0);
	cfg_free(cfg);

	write_file(secret, "Bearer s3cret\n", 0600);
	cfg = expect_ok("secret 0600", &c, CFG_CHECK_FILES);
	CHECK(cfg == NULL || strcmp(cfg->webhook_secret_file, secret) == 0);
	cfg_free(cfg);
	write_file(secret, "Bearer s3cret\n", 0400);
	cfg = expect_ok("secret 0400", &c, CFG_CHECK_FILES);
	cfg_free(cfg);

	write_file(secret, "\n", 0600);
	expect_err("empty secret", &c, CFG_CHECK_FILES, 4, "empty");
	write_file(secret, "Bearer s3cret\n", 0600);

	CHECK(unlink(secret) == 0);
	expect_err("missing secret file", &c, CFG_CHECK_FILES, 4, "No such file");
	write_file(secret, "Bearer s3cret\n", 0600);

	/* A missing CA file, reported on its own line. */
	SET(&c, 10, ca_line);
	cfg = expect_ok("missing ca_file, no checks", &c, 0);
	cfg_free(cfg);
	expect_err("missing ca_file", &c, CFG_CHECK_FILES, 10, ca);
	expect_err("missing ca_file", &c, CFG_CHECK_FILES, 10, "No such file");
	write_file(ca, "-----BEGIN CERTIFICATE-----\n", 0644);
	cfg = expect_ok("present ca_file", &c, CFG_CHECK_FILES);
	CHECK(cfg == NULL || strcmp(cfg->registries[0].ca_file, ca) == 0);
	cfg_free(cfg);
	CHECK(unlink(ca) == 0);

	/* The registry password is a secret too. */
	SET(&c, 10, reg_line);
	write_file(pw, "robot-password\n", 0604);
	expect_err("password_file 0604", &c, CFG_CHECK_FILES, 10, "chmod 600");
	write_file(pw, "robot-password\n", 0600);
	cfg = expect_ok("password_file 0600", &c, CFG_CHECK_FILES);
	CHECK(cfg == NULL || strcmp(cfg->registries[0].username, "robot$library+archmerge") == 0);
	cfg_free(cfg);

	/* TLS files are checked for presence. */
	SET(&c, 3, "  tls = { certificate = \"/nonexistent/server.crt\"; private_key = \"/nonexistent/server.key\"; };");
	expect_err("missing tls certificate", &c, CFG_CHECK_FILES, 3, "/nonexistent/server.crt");
	expect_err("missing tls key", &c, CFG_CHECK_FILES, 3, "/nonexistent/server.key");

	CHECK(unlink(secret) == 0);
	CHECK(unlink(pw) == 0);
}

/* state_dir is read (it used to be checked and dropped), and defaults. */
static void
test_state_dir(void)
{
	struct conf c;
	struct cfg *cfg;

	conf_init(&c);
	cfg = expect_ok("no state_dir", &c, 0);
	CHECK(cfg == NULL || strcmp(cfg->state_dir, "/var/lib/archmerge") == 0);
	cfg_free(cfg);
	SET(&c, 21, "state_dir = \"/srv/archmerge/state\";");
	cfg = expect_ok("state_dir", &c, 0);
	CHECK(cfg == NULL || strcmp(cfg->state_dir, "/srv/archmerge/state") == 0);
	cfg_free(cfg);
	SET(&c, 21, "state_dir = \"\";");
	expect_only("empty state_dir", &c, 21, ".state_dir must not be empty");
}

/*
 * Two writers are the common case (a rolling update, `archmerge assemble` by
 * hand beside serve): the source re-check after a PUT is on unless
 * server.single_writer = true says otherwise. replicas = 1 is no such claim.
 */
static void
test_single_writer(void)
{
	struct conf c;
	struct cfg *cfg;

	conf_init(&c);
	cfg = expect_ok("default", &c, 0);
	CHECK(cfg == NULL || (cfg->single_writer == 0 && cfg_recheck_sources(cfg)));
	cfg_free(cfg);
	SET(&c, 5, "  workers = 4; replicas = 1;");
	cfg = expect_ok("replicas = 1", &c, 0);
	CHECK(cfg == NULL || cfg_recheck_sources(cfg));
	cfg_free(cfg);
	SET(&c, 5, "  workers = 4; replicas = 2;");
	cfg = expect_ok("replicas = 2", &c, 0);
	CHECK(cfg == NULL || cfg_recheck_sources(cfg));
	cfg_free(cfg);
	SET(&c, 5, "  workers = 4; single_writer = true;");
	cfg = expect_ok("single_writer", &c, 0);
	CHECK(cfg == NULL || (cfg->single_writer == 1 && !cfg_recheck_sources(cfg)));
	cfg_free(cfg);
	SET(&c, 5, "  workers = 4; single_writer = false;");
	cfg = expect_ok("single_writer = false", &c, 0);
	CHECK(cfg == NULL || cfg_recheck_sources(cfg));
	cfg_free(cfg);
	SET(&c, 5, "  single_writer = true; replicas = 2;");
	expect_only("single_writer with replicas", &c, 5,
	    "server.single_writer = true contradicts server.replicas = 2");
	SET(&c, 5, "  single_writer = 1;");
	expect_only("single_writer as a number", &c, 5, "server.single_writer must be true or false");
}

TEST_MAIN("config")
/* sign = { key_file } and require_signed_children = { public_keys }: keys read at load. */
static void
test_signing(void)
{
	struct conf c;
	struct cfg *cfg;
	char key[128], pub[128], cmd[512], sign_line[256], keys_line[256];

	(void)am_fmt(key, sizeof(key), "%s/sign.key", g_dir);
	(void)am_fmt(pub, sizeof(pub), "%s/ci.pub", g_dir);
	(void)am_fmt(cmd, sizeof(cmd), "openssl ecparam -genkey -name prime256v1 -noout -out %s 2>/dev/null && "
	    "openssl ec -in %s -pubout -out %s 2>/dev/null", key, key, pub);
	CHECK(system(cmd) == 0);
	(void)am_fmt(sign_line, sizeof(sign_line), "    format = \"auto\"; sign = { key_file = \"%s\"; };", key);
	(void)am_fmt(keys_line, sizeof(keys_line),
	    "    require_signed_children = { public_keys = [ \"%s\" ]; };", pub);
	conf_init(&c);
	SET(&c, 18, sign_line);
	chmod(key, 0644);
	expect_err("sign key 0644", &c, 0, 18, "chmod 600");
	chmod(key, 0600);
	SET(&c, 19, keys_line);
	SET(&c, 20, "  }\n);");
	SET(&c, 21, "");
	cfg = expect_ok("sign and require_signed_children", &c, 0);
	if (cfg != NULL) {
		CHECK_STR(cfg->rules[0].sign_key_file, key);
		CHECK(cfg->rules[0].require_signed && cfg->rules[0].n_child_keys == 1);
		CHECK_STR(cfg->rules[0].child_keys[0], pub);
		cfg_free(cfg);
	}
	/* A private key where a public one belongs, a missing file, an unknown key, an empty list. */
	(void)am_fmt(keys_line, sizeof(keys_line),
	    "    require_signed_children = { public_keys = [ \"%s\" ]; };", key);
	expect_err("private key as public", &c, 0, 19, "public_keys[0]");
	SET(&c, 19, "    require_signed_children = { public_keys = [ \"/nonexistent.pub\" ]; };");
	expect_err("missing public key", &c, 0, 19, "/nonexistent.pub");
	SET(&c, 19, "    require_signed_children = { keys = [ \"x\" ]; };");
	expect_err("unknown key", &c, 0, 19, "unknown key \"keys\"");
	SET(&c, 19, "    require_signed_children = { public_keys = [ ]; };");
	expect_err("empty list", &c, 0, 19, "at least one key");
	SET(&c, 18, "    sign = { };");
	SET(&c, 19, "");
	expect_err("sign without key_file", &c, 0, 18, "key_file is required");
	CHECK(unlink(key) == 0);
	CHECK(unlink(pub) == 0);
}

/*
 * Every default docs/configuration.md writes as a literal (`4`, `true`,
 * `"info"`) is the one its table row holds, and the one a configuration that
 * leaves the key out gets. Run from the top of the tree (make unit).
 */
/* notify = ( { url; secret_file; events; ... } ): defaults, events, URL and secret checks. */
static void
test_notify(void)
{
	struct conf c;
	struct cfg *cfg;
	char secret[160], line[400], err[4096];

	conf_init(&c);
	cfg = expect_ok("no notify", &c, 0);
	CHECK(cfg != NULL && cfg->n_notify == 0);
	cfg_free(cfg);
	SET(&c, 21, "notify = ( { url = \"https://hooks.example/x\"; secret_file = \"/s\"; } );");
	cfg = expect_ok("notify defaults", &c, 0);
	CHECK(cfg != NULL && cfg->n_notify == 1);
	if (cfg != NULL && cfg->n_notify == 1) {
		CHECK_STR(cfg->notify[0].url, "https://hooks.example/x");
		CHECK(cfg->notify[0].events == (NOTIFY_PUBLISHED | NOTIFY_REFUSED | NOTIFY_BLOCKED));
		CHECK(cfg->notify[0].timeout_ms == 5000 && cfg->notify[0].max_pending == 1000);
		CHECK(cfg->notify[0].retry_initial_ms == 1000 && cfg->notify[0].retry_max_ms == 300000);
		CHECK(cfg->notify[0].ca_file == NULL && cfg->notify[0].max_age_s == 86400);
	}
	cfg_free(cfg);
	SET(&c, 21, "notify = ( { url = \"http://127.0.0.1:9/\"; secret_file = \"/s\"; "
	    "events = [ \"published\", \"unchanged\" ]; max_pending = 5; } );");
	cfg = expect_ok("notify events", &c, 0);
	CHECK(cfg != NULL && cfg->notify[0].events == (NOTIFY_PUBLISHED | NOTIFY_UNCHANGED));
	CHECK(cfg != NULL && cfg->notify[0].max_pending == 5);
	cfg_free(cfg);
	SET(&c, 21, "notify = ( { url = \"https://h.example/\"; secret_file = \"/s\"; events = [ \"pushed\" ]; } );");
	expect_err("unknown event", &c, 0, 21, "notify[0].events: \"pushed\" is not published, refused");
	SET(&c, 21, "notify = ( { url = \"https://h.example/\"; secret_file = \"/s\"; events = [ ]; } );");
	expect_err("no events", &c, 0, 21, "notify[0].events is empty");
	SET(&c, 21, "notify = ( { url = \"ftp://h.example/\"; secret_file = \"/s\"; } );");
	expect_err("ftp url", &c, 0, 21, "notify[0].url must be an https:// or http:// URL");
	SET(&c, 21, "notify = ( { url = \"https://h.example/\"; } );");
	expect_err("no secret", &c, 0, 21, "notify[0].secret_file is required");
	SET(&c, 21, "notify = ( { url = \"https://h.example/\"; secret_file = \"/s\"; retries = 3; } );");
	expect_err("unknown key", &c, 0, 21, "unknown key \"retries\" in notify[0]");
	SET(&c, 21, "notify = ( { url = \"https://h.example/\"; secret_file = \"/s\"; retry_initial_ms = 5000; "
	    "retry_max_ms = 1000; } );");
	expect_err("backoff upside down", &c, 0, 21, "notify[0].retry_max_ms must not be smaller");
	/* The secret file is checked like the others: private, or refused with the fix. */
	(void)am_fmt(secret, sizeof(secret), "%s/notify-secret", g_dir);
	(void)am_fmt(line, sizeof(line), "notify = ( { url = \"https://h.example/\"; secret_file = \"%s\"; } );",
	    secret);
	SET(&c, 21, line);
	write_file(secret, "k3y\n", 0644);
	expect_err("notify secret 0644", &c, CFG_CHECK_FILES, 21, "chmod 600");
	write_file(secret, "k3y\n", 0600);
	cfg = NULL;
	CHECK(load_conf(&c, CFG_CHECK_FILES, &cfg, err, sizeof(err)) == AM_OK);
	cfg_free(cfg);
	CHECK(unlink(secret) == 0);
	CHECK(cfg_notify_event("blocked") == NOTIFY_BLOCKED && cfg_notify_event("Published") == 0);
}

static void
test_documented_defaults(void)
{
	/* Set by the smallest valid file, so not at their defaults there. */
	static const char *const set_here[] = { "server.plain_http", "server.allow_unauthenticated" };
	struct conf c;
	struct cfg *cfg = NULL;
	char err[4096], line[2048], prefix[32] = "", path[128], dflt[256], want[256], got[256];
	FILE *f = fopen("docs/configuration.md", "r");
	int checked = 0, skip;
	size_t i;

	CHECK(f != NULL);
	if (f == NULL)
		return;
	conf_init(&c);
	SET(&c, 5, "");            /* workers */
	SET(&c, 18, "");           /* format */
	SET(&c, 21, "notify = ( { url = \"https://hooks.example/x\"; secret_file = \"/s\"; } );");
	CHECK(load_conf(&c, 0, &cfg, err, sizeof(err)) == AM_OK);
	while (cfg != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *key, *kend, *cell, *cend;
		if (strncmp(line, "### ", 4) == 0) {
			/* "### Top level", "### `server`", "### `registries` entries" ... */
			key = strchr(line, '`');
			kend = key != NULL ? strchr(key + 1, '`') : NULL;
			if (key == NULL || kend == NULL)
				(void)am_fmt(prefix, sizeof(prefix), "%s", "");
			else
				(void)am_fmt(prefix, sizeof(prefix), "%.*s.", (int)(kend - key - 1), key + 1);
			continue;
		}
		if (strncmp(line, "| `", 3) != 0)
			continue;
		key = line + 3;
		kend = strchr(key, '`');
		/* The third cell: the default. */
		cell = kend != NULL ? strchr(kend, '|') : NULL;
		cell = cell != NULL ? strchr(cell + 1, '|') : NULL;
		cend = cell != NULL ? strchr(cell + 1, '|') : NULL;
		if (kend == NULL || cend == NULL)
			continue;
		(void)am_fmt(dflt, sizeof(dflt), "%.*s", (int)(cend - cell - 1), cell + 1);
		/* Only a single literal in backticks: "required", "-", "see below" are words. */
		if (sscanf(dflt, " `%255[^`]` ", want) != 1 || strchr(strchr(dflt, '`') + 1, '`') !=
		    strrchr(dflt, '`') || strcmp(want, "[]") == 0)
			continue;
		(void)am_fmt(path, sizeof(path), "%s%.*s", prefix, (int)(kend - key), key);
		CHECK(cfg_setting_text(NULL, path, got, sizeof(got)) == 0);
		if (strcmp(got, want) != 0)
			fprintf(stderr, "%s: the table says %s, the documentation %s\n", path, got, want);
		CHECK_STR(got, want);
		for (i = 0, skip = 0; i < sizeof(set_here) / sizeof(set_here[0]); i++)
			skip |= strcmp(path, set_here[i]) == 0;
		if (!skip) {
			CHECK(cfg_setting_text(cfg, path, got, sizeof(got)) == 0);
			if (strcmp(got, want) != 0)
				fprintf(stderr, "%s: loaded %s, documented default %s\n", path, got, want);
			CHECK_STR(got, want);
		}
		checked++;
	}
	fclose(f);
	CHECK(checked >= 29);      /* the reference's 29 literal defaults were all found */
	/* Settings the table does not know, or without a default, say so. */
	CHECK(cfg_setting_text(NULL, "server.nope", got, sizeof(got)) == -1);
	CHECK(cfg_setting_text(NULL, "server.listen", got, sizeof(got)) == -1);
	CHECK(cfg_setting_text(NULL, "workers", got, sizeof(got)) == -1);
	CHECK(cfg_setting_text(cfg, "server.listen", got, sizeof(got)) == 0);
	CHECK_STR(got, "\"127.0.0.1:8080\"");
	cfg_free(cfg);
}

/* version_order, and the warning of a rule whose floating extra tags have no order said. */
static void
test_version_order(void)
{
	struct conf c;
	struct cfg *cfg;
	char want[256];

	conf_init(&c);
	SET(&c, 18, "    version_order = \"newest\";");
	expect_only("unknown version_order", &c, 18,
	    "rules[0].version_order must be \"auto\", \"semver\" or \"push\"");

	/* Today's files: "latest" without version_regex loads, with a warning naming the line. */
	SET(&c, 18, "    extra_tags = [ \"latest\" ];");
	cfg = expect_ok("floating tag, no order said", &c, 0);
	if (cfg != NULL) {
		CHECK(cfg->rules[0].version_order == RULE_ORDER_AUTO);
		(void)am_fmt(want, sizeof(want), "%s:18: rules[0]: extra tag \"latest\" is written by every "
		    "version", g_path);
		CHECK(cfg->warnings != NULL && strncmp(cfg->warnings, want, strlen(want)) == 0);
		CHECK(cfg->warnings != NULL && strchr(cfg->warnings, '\n') == NULL);
	}
	cfg_free(cfg);

	SET(&c, 18, "    extra_tags = [ \"latest\" ]; version_order = \"push\";");
	cfg = expect_ok("push said", &c, 0);
	CHECK(cfg != NULL && cfg->warnings == NULL && cfg->rules[0].version_order == RULE_ORDER_PUSH);
	cfg_free(cfg);
	SET(&c, 18, "    extra_tags = [ \"latest\" ]; version_order = \"semver\";");
	cfg = expect_ok("semver said", &c, 0);
	CHECK(cfg != NULL && cfg->warnings == NULL && cfg->rules[0].version_order == RULE_ORDER_SEMVER);
	cfg_free(cfg);
	SET(&c, 18, "    extra_tags = [ \"latest\", \"{1}.{2}\" ]; version_regex = \"([0-9]+)\\\\.([0-9]+)\\\\.[0-9]+\";");
	cfg = expect_ok("version_regex groups", &c, 0);
	CHECK(cfg != NULL && cfg->warnings == NULL);
	cfg_free(cfg);
	SET(&c, 18, "    extra_tags = [ \"{version}-all\" ];");
	cfg = expect_ok("no floating tag", &c, 0);
	CHECK(cfg != NULL && cfg->warnings == NULL);
	cfg_free(cfg);
}

static void
run_tests(void)
{
	(void)am_fmt(g_dir, sizeof(g_dir), "/tmp/am-config-XXXXXX");
	if (mkdtemp(g_dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	(void)am_fmt(g_path, sizeof(g_path), "%s/archmerge.conf", g_dir);

	test_example();
	test_base();
	test_unknown_keys();
	test_values();
	test_rules();
	test_syntax_and_many();
	test_files();
	test_state_dir();
	test_signing();
	test_version_order();
	test_notify();
	test_documented_defaults();
	test_single_writer();

	CHECK(unlink(g_path) == 0);
	CHECK(rmdir(g_dir) == 0);
}
