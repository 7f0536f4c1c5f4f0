/*
 * archmerge command line: the usage text and the table of commands, each
 * in its own file (serve.c, check.c, assemble.c, reconcile.c, status.c,
 * harbor_setup.c; words in args.c).
 */
#include <curl/curl.h>
#include <civetweb.h>
#include <stdio.h>
#include <string.h>

#include "server/base/version.h"
#include "server/cmd/commands.h"

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
"  harbor-setup -c FILE --harbor-url URL --project NAME [--project NAME...]\n"
"               --harbor-user USER --harbor-password-file FILE [--webhook-url URL]\n"
"               [--payload-format Default|CloudEvents] [--name POLICY] [--registry HOST]\n"
"               [--ca-file FILE] [--dry-run] [--check]\n"
"                                 create/update Harbor's webhook policies, check the robot;\n"
"                                 --check: say why webhook deliveries fail, change nothing\n"
"  version, --version             print the version\n"
"  help, -h, --help               print this text; COMMAND --help (or -h): that command's usage\n"
"\n"
"  -c FILE and --config FILE are the same option; every command but version needs it.\n"
"\n"
"exit codes: 0 success, 1 failure (bad config, check-config warning, registry error,\n"
"            refused content, service unreachable, Harbor error, robot lacks pull/push),\n"
"            2 usage error, 3 (assemble) group still waiting for architectures\n";

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
	    "    [--ca-file FILE] [--dry-run] [--check]\n"
	    "  creates or updates (by name, default \"archmerge\") the PUSH_ARTIFACT webhook policy of\n"
	    "  each project, then checks that the registry entry's robot may pull and push there\n"
	    "  (and, with feed.interval_s set, list repositories and artifacts for the change feed)\n"
	    "  --check: change nothing; read the policy's recent deliveries (executions, tasks, logs)\n"
	    "  and say why they fail, and check the robot's list permissions\n"
	    "  exit codes: 0 all in place, 1 Harbor error, failed deliveries or robot lacks a\n"
	    "  permission, 2 usage" },
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
			printf("usage: %s\n  -c FILE, --config FILE: the configuration file; -h, --help: this text\n",
			    cmd->usage);
			return EXIT_OK;
		}
	}
	if (args_parse(argc - 2, argv + 2, &a) != 0 || (cmd->needs_config && a.config == NULL)) {
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
