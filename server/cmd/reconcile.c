/*
 * `archmerge reconcile -c FILE [--dry-run] [--json] [--registry HOST]`: one
 * reconcile pass from the command line, assembling each complete group on
 * the spot, then a report on stdout (text, or JSON with --json).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "server/cmd/commands.h"
#include "server/base/log.h"
#include "server/reconcile/reconcile.h"
#include "server/queue/repos.h"
#include "server/service/service.h"

static const char usage[] =
    "usage: archmerge reconcile -c FILE [--dry-run] [--json] [--registry HOST]\n";

/*
 * This file is linked into the unit tests too (like every server file but
 * main.c), so it uses nothing defined in main.c: options and config loading are
 * done here.
 */
static const char *
opt_value(const struct args *a, const char *key)
{
	size_t n = strlen(key);
	int i;

	for (i = 0; i < a->n_opt; i++)
		if (strncmp(a->opt[i].key, key, n) == 0 &&
		    (a->opt[i].key[n] == '\0' || a->opt[i].key[n] == '='))
			return a->opt[i].val;
	return NULL;
}

/* Words for the text report; the JSON keeps rc_result_name(). */
static const char *
result_text(enum rc_result r)
{
	return r == RC_UNCHANGED ? "current" : rc_result_name(r);
}

static void
print_text(FILE *f, const struct reconcile_report *r)
{
	size_t i;

	for (i = 0; i < r->n_repos; i++) {
		const struct rc_repo *e = &r->repos[i];
		if (e->result == RC_LIST_FAILED)
			fprintf(f, "%-14s %s/%s: %s\n", "list-failed", e->host, e->repo, e->error);
		else if (e->result == RC_ABSENT)
			fprintf(f, "%-14s %s/%s: repository does not exist\n", "absent", e->host, e->repo);
	}
	for (i = 0; i < r->n_groups; i++) {
		const struct rc_group *g = &r->groups[i];
		const char *what = g->result == RC_WAITING ? "missing " : "";
		const char *text = g->result == RC_WAITING ? g->missing :
		    (g->result == RC_REFUSED || g->result == RC_FAILED) ? g->detail : g->digest;
		fprintf(f, "%-14s %s/%s %s%s\n", result_text(g->result), g->g.host,
		    g->target[0] ? g->target : g->g.repo, what, text);
	}
	fprintf(f, "%s%zu repositories listed (%zu absent, %zu failed), %zu tags; %zu groups: "
	    "%zu complete (%zu published, %zu already current, %zu would publish, %zu refused, "
	    "%zu failed), %zu waiting\n",
	    r->dry_run ? "dry run: " : "", r->n_repos - r->absent - r->list_failed, r->absent,
	    r->list_failed, r->tags, r->groups_seen, r->complete, r->published, r->unchanged,
	    r->would_publish, r->refused, r->failed, r->waiting);
}

int
cmd_reconcile(const struct args *a)
{
	struct cfg *c;
	struct service *svc = NULL;
	struct repos *repos = NULL;
	struct reconcile_env env;
	struct reconcile_report rep;
	const char *registry = opt_value(a, "--registry");
	json_t *j;
	char err[512], cerr[8192];
	int rc = EXIT_FAIL;

	memset(&rep, 0, sizeof(rep));
	if (a->n_pos != 0 || (a->n_opt > 0 && (a->n_opt > 1 || registry == NULL))) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (cfg_load(a->config, CFG_CHECK_FILES, &c, cerr, sizeof(cerr)) != AM_OK) {
		fprintf(stderr, "%s\n", cerr);
		return EXIT_FAIL;
	}
	log_set_level(c->log_level);
	if (registry != NULL && cfg_registry_by_host(c, registry) == NULL) {
		fprintf(stderr, "archmerge: no registry with host %s in %s\n", registry, a->config);
		goto done;
	}
	/* Read only: a CLI run must not create or rewrite the service's state. */
	if (repos_open(c->state_dir, REPOS_READONLY, &repos, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "archmerge: %s\n", err);
		goto done;
	}
	if (service_new(c, 0, &svc, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "archmerge: %s\n", err);
		goto done;
	}
	reconcile_env_service(&env, c, svc);
	env.enqueue = NULL;
	env.remembered = repos;
	env.only_host = registry;
	env.dry_run = a->dry_run;
	env.keep_groups = 1;
	reconcile_run(&env, &rep);
	if (a->json) {
		j = reconcile_report_json(&rep);
		if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0)
			fputc('\n', stdout);
		json_decref(j);
	} else {
		print_text(stdout, &rep);
	}
	/* Waiting groups are a state of the registry, not a fault of this run. */
	rc = (rep.failed > 0 || rep.refused > 0 || rep.list_failed > 0) ? EXIT_FAIL : EXIT_OK;
done:
	reconcile_report_free(&rep);
	service_free(svc);
	repos_free(repos);
	cfg_free(c);
	return rc;
}
