/* archmerge check-config, and the configuration loading every command shares. */
#include "server/cmd/commands.h"

#include <stdio.h>

#include "config/config.h"

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
	int rc = EXIT_OK;

	if (c == NULL)
		return EXIT_FAIL;
	if (c->warnings != NULL) {
		/* serve loads it (and logs these), but the file does not say what it should. */
		fprintf(stderr, "%s\n", c->warnings);
		printf("configuration loads, with the warnings above\n");
		rc = EXIT_FAIL;
	} else {
		printf("configuration OK\n");
	}
	cfg_free(c);
	return rc;
}
