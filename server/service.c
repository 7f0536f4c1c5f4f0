/*
 * Service wiring: turns the configuration into registry clients and a queue,
 * and logs one line per assembly outcome.
 */
#include "service.h"

#include <stdlib.h>
#include <string.h>

#include "harbors.h"
#include "log.h"
#include "queue.h"

struct service {
	const struct cfg *cfg;
	char *secret;
	struct reg_client **clients;     /* parallel to cfg->registries */
	struct harbor **harbors;         /* parallel too; NULL unless a rule cleans up */
	struct queue *queue;
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
	if ((rc = harbors_new(cfg, &s->harbors, err, errlen)) != AM_OK)
		goto fail;
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
	harbors_free(s->cfg, s->harbors);
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
	enum log_level lvl;

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
	if (s->harbors != NULL)
		reg_api_set_harbor(&api, s->harbors[reg - s->cfg->registries]);
	assemble(&api, &s->cfg->rules[g->rule], g->repo, g->version, dry_run, out);
	switch (out->outcome) {
	case ASM_PUBLISHED: case ASM_UNCHANGED: case ASM_DRY_RUN: case ASM_WAITING:
		lvl = LOG_INFO;
		break;
	case ASM_REFUSED:
		lvl = LOG_WARN;
		break;
	default:
		lvl = LOG_ERROR;
	}
	if (log_enabled(lvl))
		log_msg(lvl, "assembly group=%s/%s:%s rule=\"%s\" target=%s result=%s%s%s ms=%lld%s%s%s",
		    g->host, g->repo, g->version, s->cfg->rules[g->rule].name, out->target,
		    asm_outcome_name(out->outcome), out->digest[0] ? " digest=" : "", out->digest,
		    am_now_ms() - t0, out->detail[0] ? " detail=\"" : "", out->detail,
		    out->detail[0] ? "\"" : "");
}
