/*
 * archmerge command line: serve, check-config, assemble. Parses arguments,
 * loads the configuration and hands over to the service and HTTP modules.
 */
#include <curl/curl.h>
#include <civetweb.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "server/base/version.h"
#include "registry/oci/names.h"
#include "server/http.h"
#include "server/base/log.h"
#include "server/cmd/commands.h"
#include "server/reconcile/reconciler.h"
#include "server/service/reload.h"
#include "server/service/service.h"


static const char usage_text[] =
"usage: archmerge <command> [options]\n"
"\n"
"Publishes multi-architecture images in Harbor: per-architecture tags pushed\n"
"separately (myapp:1.0-amd64, myapp:1.0-arm64) become one OCI index or Docker\n"
"manifest list (myapp:1.0) as soon as every required architecture is present.\n"
"\n"
"commands:\n"
"  serve -c FILE                  run the webhook service (HTTPS)\n"
"  check-config -c FILE           validate FILE; prints \"configuration OK\" or the errors\n"
"  assemble -c FILE REPO VERSION [--dry-run] [--registry HOST]\n"
"                                 assemble one group now; --dry-run prints the index\n"
"                                 JSON instead of pushing it\n"
"  reconcile -c FILE [--dry-run] [--json] [--registry HOST]\n"
"                                 publish every complete group found in the tag lists\n"
"  status -c FILE [--json]        ask the running service what it waits for, published, failed\n"
"  harbor-setup -c FILE --harbor-url URL --project NAME...   Harbor webhook policies + robot check\n"
"  version, --version             print the version\n"
"  help, --help                   print this text\n"
"\n"
"exit codes: 0 success, 1 failure (bad config, registry error, refused content,\n"
"            service unreachable, Harbor error, robot lacks pull/push),\n"
"            2 usage error, 3 (assemble) group still waiting for architectures\n";

static int
is_flag(const char *s)
{
	return strcmp(s, "--dry-run") == 0 || strcmp(s, "--json") == 0;
}

static int
parse_args(int argc, char **argv, struct args *a)
{
	const char *eq;
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < argc; i++) {
		const char *s = argv[i];
		if (strcmp(s, "-c") == 0 || strcmp(s, "--config") == 0) {
			if (++i >= argc)
				return -1;
			a->config = argv[i];
		} else if (strcmp(s, "--dry-run") == 0) {
			a->dry_run = 1;
		} else if (strcmp(s, "--json") == 0) {
			a->json = 1;
		} else if (strncmp(s, "--", 2) == 0 && s[2] != '\0' && !is_flag(s)) {
			if (a->n_opt == ARGS_MAX_OPT)
				return -1;
			eq = strchr(s, '=');
			if (eq != NULL) {
				/* --key=value: the key is kept with its "=value" tail; compare by prefix */
				a->opt[a->n_opt].key = s;
				a->opt[a->n_opt].val = eq + 1;
			} else {
				if (++i >= argc)
					return -1;
				a->opt[a->n_opt].key = s;
				a->opt[a->n_opt].val = argv[i];
			}
			a->n_opt++;
		} else if (s[0] == '-' && s[1] != '\0') {
			fprintf(stderr, "archmerge: unknown option %s\n", s);
			return -1;
		} else if (a->n_pos < ARGS_MAX_POS) {
			a->pos[a->n_pos++] = s;
		} else {
			return -1;
		}
	}
	return 0;
}

static int
key_is(const char *stored, const char *key)
{
	size_t n = strlen(key);
	return strncmp(stored, key, n) == 0 && (stored[n] == '\0' || stored[n] == '=');
}

const char *
args_opt_nth(const struct args *a, const char *key, int nth)
{
	int i;

	for (i = 0; i < a->n_opt; i++)
		if (key_is(a->opt[i].key, key) && nth-- == 0)
			return a->opt[i].val;
	return NULL;
}

const char *
args_opt(const struct args *a, const char *key)
{
	return args_opt_nth(a, key, 0);
}

struct cfg *
cmd_load_config(const char *path, int flags)
{
	static char err[8192];
	struct cfg *c = NULL;

	if (cfg_load(path, flags, &c, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	return c;
}

int
cmd_check(const struct args *a)
{
	struct cfg *c = cmd_load_config(a->config, CFG_CHECK_FILES);

	if (c == NULL)
		return EXIT_FAIL;
	printf("configuration OK\n");
	cfg_free(c);
	return EXIT_OK;
}

static void *
http_stop_thread(void *arg)
{
	http_stop(arg);
	return NULL;
}

/*
 * SIGTERM/SIGINT: stop accepting (in-flight webhooks finish and are
 * journaled), give running assemblies shutdown_timeout_ms, leave queued
 * work in the journal. CivetWeb needs up to 2 s to stop (its poll loop), so
 * it stops on a thread of its own meanwhile. Returns -1 when workers are stuck.
 */
static int
serve_shutdown(struct service *svc, struct http_server **http, int sig)
{
	const struct service_view *v = service_acquire(svc);
	long long t0 = am_now_ms();
	long timeout = v->cfg->shutdown_timeout_ms;
	pthread_t th;
	int threaded, rc = 0;

	service_release(svc, v);
	log_kv(LOG_INFO, "shutting down", LOG_I("signal", sig), LOG_I("timeout_ms", timeout),
	    LOG_S("detail", "no new webhooks, running assemblies get up to timeout_ms, queued work "
	    "stays in the journal"));
	service_stop_jobs(svc);
	threaded = pthread_create(&th, NULL, http_stop_thread, *http) == 0;
	if (!threaded)
		http_stop(*http);
	*http = NULL;
	if (service_shutdown(svc, timeout) != 0) {
		log_kv(LOG_ERROR, "shutdown", LOG_S("result", "stuck"),
		    LOG_S("detail", "workers still stuck in registry requests; exiting without cleanup"));
		rc = -1;
	}
	if (threaded)
		pthread_join(th, NULL);
	if (rc == 0)
		log_kv(LOG_INFO, "shutdown complete", LOG_I("ms", am_now_ms() - t0));
	return rc;
}

int
cmd_serve(const struct args *a)
{
	struct cfg *c = cmd_load_config(a->config, CFG_CHECK_FILES);
	struct service *svc = NULL;
	struct http_server *http = NULL;
	struct reconciler *rec = NULL;
	sigset_t stop;
	char err[512];
	int rc = EXIT_FAIL, sig = 0;

	if (c == NULL)
		return EXIT_FAIL;
	log_set_level(c->log_level);
	log_set_json(c->log_json);
	/* Block the stop signals before any thread starts, so they all inherit
	 * the mask and only sigwait() below receives them. */
	/* Webhook threads allocate briefly and concurrently; glibc would give each
	 * its own arena (8 per core) and keep their pages. Two arenas hold the
	 * resident size down with no measurable cost at these request rates. */
	mallopt(M_ARENA_MAX, 2);
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit then fails the journal write (503) instead of killing the service. */
	signal(SIGXFSZ, SIG_IGN);
	if (service_new(c, (size_t)c->workers, &svc, err, sizeof(err)) != AM_OK) {
		log_kv(LOG_ERROR, "startup", LOG_S("result", "failed"), LOG_S("detail", err));
		goto done;
	}
	if (service_open_journal(svc, err, sizeof(err)) != AM_OK) {
		log_kv(LOG_ERROR, "startup", LOG_S("result", "failed"), LOG_S("detail", err));
		goto done;
	}
	if ((rec = reconciler_new(c, svc, err, sizeof(err))) == NULL) {
		log_kv(LOG_ERROR, "startup", LOG_S("result", "failed"), LOG_S("detail", err));
		goto done;
	}
	if (http_start(c, svc, &http, err, sizeof(err)) != AM_OK) {
		log_kv(LOG_ERROR, "startup", LOG_S("result", "failed"), LOG_S("detail", err));
		goto done;
	}
	reconciler_start(rec);
	log_kv(LOG_INFO, "listening", LOG_S("address", c->listen), LOG_S("tls", c->plain_http ? "off" : "on"),
	    LOG_S("webhook_path", c->webhook_path), LOG_I("registries", c->n_registries),
	    LOG_I("rules", c->n_rules), LOG_I("workers", c->workers), LOG_S("version", am_version()));
	for (;;) {
		if (sigwait(&stop, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		reload_config(svc, c, a->config);
	}
	rc = EXIT_OK;
	if (serve_shutdown(svc, &http, sig) != 0)
		_exit(EXIT_OK);   /* workers stuck: their groups are in the journal; cleanup could hang */
done:
	http_stop(http);
	reconciler_free(rec);   /* after the shutdown: its requests were aborted with the others */
	if (rc != EXIT_OK && svc != NULL)
		(void)service_shutdown(svc, 0);   /* startup failed: replayed work stays journaled */
	service_free(svc);
	cfg_free(c);
	return rc;
}

int
cmd_assemble(const struct args *a)
{
	struct cfg *c;
	struct service *svc = NULL;
	struct asm_result res;
	struct group g;
	const char *registry = args_opt(a, "--registry");
	char err[512];
	size_t i;
	int rc = EXIT_FAIL;

	if (a->n_pos != 2) {
		fprintf(stderr, "usage: archmerge assemble -c FILE REPO VERSION [--dry-run] [--registry HOST]\n");
		return EXIT_USAGE;
	}
	if (!name_valid_repo(a->pos[0]) || !name_valid_tag(a->pos[1])) {
		fprintf(stderr, "archmerge: \"%s\" is not a repository name or \"%s\" not a valid tag\n",
		    a->pos[0], a->pos[1]);
		return EXIT_USAGE;
	}
	if ((c = cmd_load_config(a->config, CFG_CHECK_FILES)) == NULL)
		return EXIT_FAIL;
	log_set_level(c->log_level);
	log_set_json(c->log_json);
	memset(&g, 0, sizeof(g));
	if (registry != NULL && cfg_registry_by_host(c, registry) == NULL) {
		fprintf(stderr, "archmerge: no registry with host %s in %s\n", registry, a->config);
		goto done;
	}
	if (registry == NULL && c->n_registries > 1) {
		fprintf(stderr, "archmerge: the configuration names several registries; pick one with --registry HOST\n");
		goto done;
	}
	(void)am_fmt(g.host, sizeof(g.host), "%s", registry ? registry : c->registries[0].host);
	for (i = 0; i < c->n_rules; i++)
		if (rule_covers(&c->rules[i], a->pos[0]))
			break;
	if (i == c->n_rules) {
		fprintf(stderr, "archmerge: no rule covers repository %s\n", a->pos[0]);
		goto done;
	}
	(void)am_fmt(g.rule_name, sizeof(g.rule_name), "%s", c->rules[i].name);
	(void)am_fmt(g.repo, sizeof(g.repo), "%s", a->pos[0]);
	(void)am_fmt(g.version, sizeof(g.version), "%s", a->pos[1]);
	if (service_new(c, 0, &svc, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "archmerge: %s\n", err);
		goto done;
	}
	service_assemble(svc, &g, a->dry_run, &res);
	if (a->dry_run && res.doc.body != NULL)
		printf("%s\n", res.doc.body);
	switch (res.outcome) {
	case ASM_PUBLISHED: case ASM_UNCHANGED: case ASM_DRY_RUN:
		rc = EXIT_OK;
		break;
	case ASM_WAITING:
		rc = EXIT_WAITING;
		break;
	default:
		rc = EXIT_FAIL;
	}
	fprintf(stderr, "%s %s%s%s%s%s\n", res.target, asm_outcome_name(res.outcome),
	    res.digest[0] ? " " : "", res.digest, res.detail[0] ? ": " : "", res.detail);
	asm_result_clear(&res);
done:
	service_free(svc);
	cfg_free(c);
	return rc;
}

static const struct command {
	const char *name;
	int (*run)(const struct args *a);
	int needs_config;
	const char *usage;
} commands[] = {
	{ "serve", cmd_serve, 1, "archmerge serve -c FILE" },
	{ "check-config", cmd_check, 1, "archmerge check-config -c FILE" },
	{ "assemble", cmd_assemble, 1,
	    "archmerge assemble -c FILE REPO VERSION [--dry-run] [--registry HOST]" },
	{ "reconcile", cmd_reconcile, 1,
	    "archmerge reconcile -c FILE [--dry-run] [--json] [--registry HOST]" },
	{ "status", cmd_status, 1, "archmerge status -c FILE [--json]\n"
	    "  asks the running service (GET /status on server.status_listen, else on server.listen)\n"
	    "  exit codes: 0 shown, 1 service unreachable or refused, 2 usage" },
	{ "harbor-setup", cmd_harbor_setup, 1,
	    "archmerge harbor-setup -c FILE --harbor-url URL --project NAME [--project NAME...]\n"
	    "    --harbor-user USER --harbor-password-file FILE [--webhook-url URL]\n"
	    "    [--payload-format Default|CloudEvents] [--name POLICY] [--registry HOST]\n"
	    "    [--ca-file FILE] [--dry-run]\n"
	    "  creates or updates (by name, default \"archmerge\") the PUSH_ARTIFACT webhook policy of\n"
	    "  each project, then checks that the registry entry's robot may pull and push there\n"
	    "  exit codes: 0 all in place, 1 Harbor error or robot lacks pull/push, 2 usage" },
};

int
main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	struct args a;
	size_t i;
	int rc;

	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("archmerge %s\n", am_version());
		return EXIT_OK;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL) {
		fprintf(stderr, "archmerge: unknown command \"%s\" (try --help)\n", argv[1]);
		return EXIT_USAGE;
	}
	for (i = 2; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: %s\n", cmd->usage);
			return EXIT_OK;
		}
	}
	if (parse_args(argc - 2, argv + 2, &a) != 0 || (cmd->needs_config && a.config == NULL)) {
		fprintf(stderr, "usage: %s\n", cmd->usage);
		return EXIT_USAGE;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "archmerge: libcurl initialisation failed\n");
		return EXIT_FAIL;
	}
	mg_init_library(MG_FEATURES_TLS);
	rc = cmd->run(&a);
	mg_exit_library();
	curl_global_cleanup();
	return rc;
}
