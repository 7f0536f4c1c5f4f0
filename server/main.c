/*
 * archmerge command line: serve, check-config, assemble. Parses arguments,
 * loads the configuration and hands over to the service and HTTP modules.
 */
#include <curl/curl.h>
#include <civetweb.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../config/config.h"
#include "../registry/names.h"
#include "http.h"
#include "log.h"
#include "service.h"

#ifndef ARCHMERGE_VERSION
#define ARCHMERGE_VERSION "dev"
#endif

/* Exit codes (documented in README and --help). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_WAITING = 3 };

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
"  version, --version             print the version\n"
"  help, --help                   print this text\n"
"\n"
"exit codes: 0 success, 1 failure (bad config, registry error, refused content),\n"
"            2 usage error, 3 (assemble) group still waiting for architectures\n";

struct args {
	const char *config;
	const char *registry;
	const char *pos[4];
	int n_pos;
	int dry_run;
};

static int
parse_args(int argc, char **argv, struct args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
			if (++i >= argc)
				return -1;
			a->config = argv[i];
		} else if (strcmp(argv[i], "--registry") == 0) {
			if (++i >= argc)
				return -1;
			a->registry = argv[i];
		} else if (strcmp(argv[i], "--dry-run") == 0) {
			a->dry_run = 1;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "archmerge: unknown option %s\n", argv[i]);
			return -1;
		} else if (a->n_pos < 4) {
			a->pos[a->n_pos++] = argv[i];
		} else {
			return -1;
		}
	}
	return a->config != NULL ? 0 : -1;
}

static struct cfg *
load(const char *path, int flags)
{
	static char err[8192];
	struct cfg *c = NULL;

	if (cfg_load(path, flags, &c, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	return c;
}

static int
cmd_check(const struct args *a)
{
	struct cfg *c = load(a->config, CFG_CHECK_FILES);

	if (c == NULL)
		return EXIT_FAIL;
	printf("configuration OK\n");
	cfg_free(c);
	return EXIT_OK;
}

static int
cmd_serve(const struct args *a)
{
	struct cfg *c = load(a->config, CFG_CHECK_FILES);
	struct service *svc = NULL;
	struct http_server *http = NULL;
	sigset_t stop;
	char err[512];
	int rc = EXIT_FAIL, sig = 0;

	if (c == NULL)
		return EXIT_FAIL;
	log_set_level(c->log_level);
	/* Block the stop signals before any thread starts, so they all inherit
	 * the mask and only sigwait() below receives them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (service_new(c, (size_t)c->workers, &svc, err, sizeof(err)) != AM_OK) {
		log_error("startup failed: %s", err);
		goto done;
	}
	if (http_start(c, svc, &http, err, sizeof(err)) != AM_OK) {
		log_error("startup failed: %s", err);
		goto done;
	}
	log_info("listening address=%s%s webhook_path=%s registries=%zu rules=%zu workers=%ld version=%s",
	    c->listen, c->plain_http ? " tls=off" : " tls=on", c->webhook_path, c->n_registries,
	    c->n_rules, c->workers, ARCHMERGE_VERSION);
	while (sigwait(&stop, &sig) != 0)
		;
	log_info("shutting down signal=%d: finishing queued work", sig);
	rc = EXIT_OK;
done:
	http_stop(http);
	service_free(svc);
	cfg_free(c);
	return rc;
}

static int
cmd_assemble(const struct args *a)
{
	struct cfg *c;
	struct service *svc = NULL;
	struct asm_result res;
	struct group g;
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
	if ((c = load(a->config, CFG_CHECK_FILES)) == NULL)
		return EXIT_FAIL;
	log_set_level(c->log_level);
	memset(&g, 0, sizeof(g));
	if (a->registry != NULL && cfg_registry_by_host(c, a->registry) == NULL) {
		fprintf(stderr, "archmerge: no registry with host %s in %s\n", a->registry, a->config);
		goto done;
	}
	if (a->registry == NULL && c->n_registries > 1) {
		fprintf(stderr, "archmerge: the configuration names several registries; pick one with --registry HOST\n");
		goto done;
	}
	(void)am_fmt(g.host, sizeof(g.host), "%s", a->registry ? a->registry : c->registries[0].host);
	for (i = 0; i < c->n_rules; i++)
		if (rule_covers(&c->rules[i], a->pos[0]))
			break;
	if (i == c->n_rules) {
		fprintf(stderr, "archmerge: no rule covers repository %s\n", a->pos[0]);
		goto done;
	}
	g.rule = i;
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

int
main(int argc, char **argv)
{
	struct args a;
	const char *cmd;
	int rc;

	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("archmerge %s\n", ARCHMERGE_VERSION);
		return EXIT_OK;
	}
	if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "check-config") != 0 &&
	    strcmp(cmd, "assemble") != 0) {
		fprintf(stderr, "archmerge: unknown command \"%s\" (try --help)\n", cmd);
		return EXIT_USAGE;
	}
	if (parse_args(argc - 2, argv + 2, &a) != 0) {
		fprintf(stderr, "archmerge: %s needs -c FILE (try --help)\n", cmd);
		return EXIT_USAGE;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "archmerge: libcurl initialisation failed\n");
		return EXIT_FAIL;
	}
	mg_init_library(MG_FEATURES_TLS);
	if (strcmp(cmd, "check-config") == 0)
		rc = cmd_check(&a);
	else if (strcmp(cmd, "serve") == 0)
		rc = cmd_serve(&a);
	else
		rc = cmd_assemble(&a);
	mg_exit_library();
	curl_global_cleanup();
	return rc;
}
