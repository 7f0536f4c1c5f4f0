/*
 * Service wiring: turns the configuration into registry clients and a queue,
 * and logs one line per assembly outcome.
 */
#include "service.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "observe.h"
#include "queue.h"
#include "repos.h"

struct service {
	const struct cfg *cfg;
	char *secret;
	struct reg_client **clients;     /* parallel to cfg->registries */
	struct queue *queue;
	struct repos *repos;             /* borrowed; NULL: nothing remembered */
};

static void
run_group(void *ctx, const struct group *g)
{
	struct asm_result res;

	service_assemble(ctx, g, 0, &res);
	asm_result_clear(&res);
}

enum am_err
service_new(const struct cfg *cfg, size_t workers, struct service **out, char *err, size_t errlen)
{
	struct service *s = xcalloc(1, sizeof(*s));
	struct reg_client_opts o;
	enum am_err rc = AM_OK;
	char *password = NULL;
	size_t i;

	s->cfg = cfg;
	if (cfg->webhook_secret_file != NULL &&
	    (rc = am_read_secret(cfg->webhook_secret_file, &s->secret, err, errlen)) != AM_OK)
		goto fail;
	s->clients = xcalloc(cfg->n_registries, sizeof(*s->clients));
	for (i = 0; i < cfg->n_registries; i++) {
		const struct cfg_registry *r = &cfg->registries[i];
		memset(&o, 0, sizeof(o));
		o.url = r->url;
		o.ca_file = r->ca_file;
		o.insecure = r->insecure;
		o.username = r->username;
		o.timeout_ms = r->timeout_ms;
		if (r->password_file != NULL &&
		    (rc = am_read_secret(r->password_file, &password, err, errlen)) != AM_OK)
			goto fail;
		o.password = password;
		s->clients[i] = reg_client_new(&o, err, errlen);
		am_secret_free(password);
		password = NULL;
		if (s->clients[i] == NULL) {
			rc = AM_EINVAL;
			goto fail;
		}
	}
	if (workers > 0)
		s->queue = queue_new(workers, run_group, s);
	*out = s;
	return AM_OK;
fail:
	service_free(s);
	return rc;
}

void
service_free(struct service *s)
{
	size_t i;

	if (s == NULL)
		return;
	queue_free(s->queue);
	if (s->clients != NULL)
		for (i = 0; i < s->cfg->n_registries; i++)
			reg_client_free(s->clients[i]);
	free(s->clients);
	am_secret_free(s->secret);
	free(s);
}

const char *
service_secret(const struct service *s)
{
	return s->secret;
}

int
service_enqueue(void *service, const struct group *g)
{
	struct service *s = service;
	repos_note(s->repos, g->host, g->repo);
	return queue_push(s->queue, g);
}

void
service_wait_idle(struct service *s)
{
	if (s->queue != NULL)
		queue_wait_idle(s->queue);
}

void
service_assemble(struct service *s, const struct group *g, int dry_run, struct asm_result *out)
{
	const struct cfg_registry *reg = cfg_registry_by_host(s->cfg, g->host);
	struct reg_api api;
	long long t0 = am_now_ms();

	if (reg == NULL || g->rule >= s->cfg->n_rules) {
		memset(out, 0, sizeof(*out));
		out->outcome = ASM_FAILED;
		out->err = AM_EINVAL;
		(void)am_fmt(out->detail, sizeof(out->detail), "registry %s or rule gone from config",
		    g->host);
		log_error("assembly group=%s/%s:%s result=failed detail=\"%s\"", g->host, g->repo,
		    g->version, out->detail);
		return;
	}
	reg_api_from_client(&api, s->clients[reg - s->cfg->registries]);
	assemble(&api, &s->cfg->rules[g->rule], g->repo, g->version, dry_run, out);
	observe_assembly(g, s->cfg->rules[g->rule].name, out, am_now_ms() - t0);
}

size_t
service_queue_depth(struct service *s)
{
	return s->queue != NULL ? queue_depth(s->queue) : 0;
}

struct reg_client *
service_client(struct service *s, const char *host)
{
	const struct cfg_registry *reg = cfg_registry_by_host(s->cfg, host);

	return reg != NULL ? s->clients[reg - s->cfg->registries] : NULL;
}

void
service_set_repos(struct service *s, struct repos *r)
{
	s->repos = r;
}
