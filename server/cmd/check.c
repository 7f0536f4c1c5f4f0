/* archmerge check-config, and the configuration loading every command shares. */
#include "server/cmd/commands.h"

#include <stdio.h>

#include "config/config.h"
#include "handlers/ops.h"

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

/* Which operational endpoints anyone can read (issue 23: the status surface is private by default). */
static void
print_exposure(const struct cfg *c)
{
	struct ops_exposure ex;

	ops_exposure(c, &ex);
	printf("endpoints on %s: public: %s; with the status secret: %s; closed: %s\n",
	    c->status_listen != NULL ? "listen (/status, /ui, /metrics on status_listen only)" : "listen",
	    ex.public_[0] ? ex.public_ : "-", ex.secret[0] ? ex.secret : "-",
	    ex.closed[0] ? ex.closed : "-");
	if (ex.closed[0])
		printf("  (%s: answered 403; set server.status_secret_file, server.status_listen or "
		    "server.status_public = true to open them)\n", ex.closed);
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
	print_exposure(c);
	cfg_free(c);
	return rc;
}
