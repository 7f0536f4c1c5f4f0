/*
 * The command line's words: -c FILE, --dry-run, --json, --check, --key value (or
 * --key=value, repeatable) and positional arguments, bounded in number.
 */
#include "server/cmd/commands.h"

#include <stdio.h>
#include <string.h>

static int
is_flag(const char *s)
{
	return strcmp(s, "--dry-run") == 0 || strcmp(s, "--json") == 0 || strcmp(s, "--check") == 0;
}

int
args_parse(int argc, char **argv, struct args *a)
{
	const char *eq;
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < argc; i++) {
		const char *s = argv[i];
		if (strcmp(s, "-c") == 0 || strcmp(s, "--config") == 0) {
			if (++i >= argc)
				return -1;
			a->config = argv[i];
		} else if (strcmp(s, "--dry-run") == 0) {
			a->dry_run = 1;
		} else if (strcmp(s, "--json") == 0) {
			a->json = 1;
		} else if (strcmp(s, "--check") == 0) {
			a->check = 1;
		} else if (strncmp(s, "--", 2) == 0 && s[2] != '\0' && !is_flag(s)) {
			if (a->n_opt == ARGS_MAX_OPT)
				return -1;
			eq = strchr(s, '=');
			if (eq != NULL) {
				/* --key=value: the key is kept with its "=value" tail; compare by prefix */
				a->opt[a->n_opt].key = s;
				a->opt[a->n_opt].val = eq + 1;
			} else {
				if (++i >= argc)
					return -1;
				a->opt[a->n_opt].key = s;
				a->opt[a->n_opt].val = argv[i];
			}
			a->n_opt++;
		} else if (s[0] == '-' && s[1] != '\0') {
			fprintf(stderr, "archmerge: unknown option %s\n", s);
			return -1;
		} else if (a->n_pos < ARGS_MAX_POS) {
			a->pos[a->n_pos++] = s;
		} else {
			return -1;
		}
	}
	return 0;
}

static int
key_is(const char *stored, const char *key)
{
	size_t n = strlen(key);
	return strncmp(stored, key, n) == 0 && (stored[n] == '\0' || stored[n] == '=');
}

const char *
args_opt_nth(const struct args *a, const char *key, int nth)
{
	int i;

	for (i = 0; i < a->n_opt; i++)
		if (key_is(a->opt[i].key, key) && nth-- == 0)
			return a->opt[i].val;
	return NULL;
}

const char *
args_opt(const struct args *a, const char *key)
{
	return args_opt_nth(a, key, 0);
}
