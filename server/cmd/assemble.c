/* archmerge assemble: one group now, on this thread (--dry-run prints the index). */
#include "server/cmd/commands.h"

#include <stdio.h>
#include <string.h>

#include "config/claim.h"
#include "config/config.h"
#include "registry/oci/names.h"
#include "server/base/log.h"
#include "server/service/service.h"

/* The group of REPO VERSION: the registry (--registry, or the only one) and the first rule covering REPO. */
static int
group_of(const struct cfg *c, const struct args *a, struct group *g)
{
	const char *registry = args_opt(a, "--registry");
	struct claim cl;

	memset(g, 0, sizeof(*g));
	if (registry != NULL && cfg_registry_by_host(c, registry) == NULL) {
		fprintf(stderr, "archmerge: no registry with host %s in %s\n", registry, a->config);
		return -1;
	}
	if (registry == NULL && c->n_registries > 1) {
		fprintf(stderr, "archmerge: the configuration names several registries; pick one with --registry HOST\n");
		return -1;
	}
	(void)am_fmt(g->host, sizeof(g->host), "%s", registry ? registry : c->registries[0].host);
	/* The registry is picked: the claim on REPO:VERSION names the rule covering REPO. */
	(void)claim_tag(c, NULL, a->pos[0], a->pos[1], &cl);
	if (cl.cover == NULL) {
		fprintf(stderr, "archmerge: no rule covers repository %s\n", a->pos[0]);
		return -1;
	}
	(void)am_fmt(g->rule_name, sizeof(g->rule_name), "%s", cl.cover->name);
	(void)am_fmt(g->repo, sizeof(g->repo), "%s", a->pos[0]);
	(void)am_fmt(g->version, sizeof(g->version), "%s", a->pos[1]);
	return 0;
}

/* Exit code of an outcome; the outcome line on stderr. */
static int
report(const struct asm_result *res)
{
	size_t i;

	fprintf(stderr, "%s %s%s%s%s%s\n", res->target, asm_outcome_name(res->outcome),
	    res->digest[0] ? " " : "", res->digest, res->detail[0] ? ": " : "", res->detail);
	/* Children the registry's policy will not let be read yet: one line each, Harbor's words last. */
	for (i = 0; res->outcome == ASM_WAITING && i < res->n_blocked; i++) {
		const struct asm_block *b = &res->blocked[i];
		fprintf(stderr, "  blocked %s %s%s%s%s%s policy=%s: %s\n", b->arch, b->repo,
		    b->tag[0] ? ":" : "", b->tag, b->digest[0] ? " " : "", b->digest,
		    asm_policy_name(b->policy), b->message[0] ? b->message : "412 without a reason");
	}
	switch (res->outcome) {
	case ASM_PUBLISHED: case ASM_UNCHANGED: case ASM_DRY_RUN:
		return EXIT_OK;
	case ASM_WAITING:
		return EXIT_WAITING;
	default:
		return EXIT_FAIL;
	}
}

int
cmd_assemble(const struct args *a)
{
	struct cfg *c;
	struct service *svc = NULL;
	struct asm_result res;
	struct group g;
	char err[512];
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
	if (group_of(c, a, &g) != 0)
		goto done;
	if (service_new(c, 0, &svc, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "archmerge: %s\n", err);
		goto done;
	}
	service_assemble(svc, &g, a->dry_run, &res);
	if (a->dry_run && res.doc.body != NULL)
		printf("%s\n", res.doc.body);
	rc = report(&res);
	asm_result_clear(&res);
done:
	service_free(svc);
	cfg_free(c);
	return rc;
}
