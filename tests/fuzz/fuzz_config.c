/*
 * Fuzz target: the configuration loader. The bytes are written to a
 * temporary file and loaded with cfg_load(path, 0) (no file checks), exactly
 * as check-config reads a file before it looks at referenced files.
 *
 * Properties: a refused file always says why, as "path:line: message"; an
 * accepted one satisfies what the rest of the program relies on without
 * checking again (a listener, at least one registry and rule, compiled
 * templates, architectures, a secret or an explicit opt-out).
 */
#include "tests/fuzz/fuzz.h"

#include <unistd.h>

#include "config/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[4096];
static int fd = -1;

static void
remove_file(void)
{
	if (fd >= 0)
		unlink(path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	/* run.sh points TMPDIR at its work directory, removed after the run. */
	(void)am_fmt(path, sizeof(path), "%s/am-fuzz-config-XXXXXX", dir ? dir : "/tmp");
	if ((fd = mkstemp(path)) < 0) {
		perror(path);
		exit(2);
	}
	atexit(remove_file);
	return 0;
}

static void
check_cfg(const struct cfg *c)
{
	size_t i;

	FUZZ_ASSERT(c->listen != NULL && strchr(c->listen, ':') != NULL);
	FUZZ_ASSERT(c->plain_http || (c->tls_certificate != NULL && c->tls_private_key != NULL));
	FUZZ_ASSERT(c->webhook_secret_file != NULL || c->allow_unauthenticated);
	FUZZ_ASSERT(c->webhook_path != NULL && c->webhook_path[0] == '/');
	FUZZ_ASSERT(c->workers >= 1 && c->max_body_bytes >= 1024 && c->max_header_bytes >= 1024);
	FUZZ_ASSERT(c->n_registries >= 1 && c->n_rules >= 1);
	for (i = 0; i < c->n_registries; i++) {
		const struct cfg_registry *r = &c->registries[i];
		FUZZ_ASSERT(r->host != NULL && r->url != NULL);
		FUZZ_ASSERT(strncmp(r->url, "https://", 8) == 0 || strncmp(r->url, "http://", 7) == 0);
		FUZZ_ASSERT((r->username == NULL) == (r->password_file == NULL));
		FUZZ_ASSERT(cfg_registry_by_host(c, r->host) == r);
	}
	for (i = 0; i < c->n_rules; i++) {
		const struct rule *r = &c->rules[i];
		FUZZ_ASSERT(r->name[0] != '\0' && r->n_repositories >= 1 && r->n_archs >= 1);
		FUZZ_ASSERT(r->source.has_arch && !r->target.has_arch);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg *c = NULL;
	char err[8192];

	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) {
		perror(path);
		exit(2);
	}
	if (cfg_load(path, 0, &c, err, sizeof(err)) == AM_OK) {
		check_cfg(c);
		cfg_free(c);
	} else {
		FUZZ_ASSERT(c == NULL);
		FUZZ_ASSERT(strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':');
	}
	return 0;
}
