/*
 * Cleanup's Harbor clients: the registry's own credentials, read from its
 * password file here and wiped once the client holds its copy.
 */
#include "server/service/harbors.h"

#include <stdlib.h>
#include <string.h>

static int
wants_harbor(const struct cfg *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_rules; i++)
		if (cfg->rules[i].cleanup)
			return 1;
	return 0;
}

enum am_err
harbors_new(const struct cfg *cfg, const char *const *passwords, struct harbor ***out, char *err, size_t errlen)
{
	struct harbor **h = NULL;
	struct harbor_opts ho;
	enum am_err rc = AM_OK;
	size_t i;

	*out = NULL;
	if (!wants_harbor(cfg))
		return AM_OK;
	h = xcalloc(cfg->n_registries ? cfg->n_registries : 1, sizeof(*h));
	for (i = 0; i < cfg->n_registries; i++) {
		const struct cfg_registry *r = &cfg->registries[i];
		memset(&ho, 0, sizeof(ho));
		ho.url = r->harbor_url != NULL ? r->harbor_url : r->url;
		ho.ca_file = r->ca_file;
		ho.insecure = r->insecure;
		ho.username = r->username;
		ho.password = passwords[i];
		ho.timeout_ms = r->timeout_ms;
		h[i] = harbor_new(&ho, err, errlen);
		if (h[i] == NULL) {
			rc = AM_EINVAL;
			goto fail;
		}
	}
	*out = h;
	return AM_OK;
fail:
	harbors_free(cfg, h);
	return rc;
}

void
harbors_free(const struct cfg *cfg, struct harbor **h)
{
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < cfg->n_registries; i++)
		harbor_free(h[i]);
	free(h);
}
