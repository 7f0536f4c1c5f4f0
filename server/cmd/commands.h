/*
 * The subcommands of the archmerge executable. main.c parses the command
 * line into struct args and dispatches through a table; each command lives
 * in its own function (several in their own file).
 */
#ifndef AM_COMMANDS_H
#define AM_COMMANDS_H

/* Exit codes (documented in README, --help and archmerge.8). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_WAITING = 3 };

#define ARGS_MAX_POS 8
#define ARGS_MAX_OPT 32

struct args {
	const char *config;          /* -c / --config */
	int dry_run;                 /* --dry-run */
	int json;                    /* --json */
	int check;                   /* --check (harbor-setup: report, change nothing) */
	const char *pos[ARGS_MAX_POS];
	int n_pos;
	struct { const char *key, *val; } opt[ARGS_MAX_OPT];   /* --key value, in order */
	int n_opt;
};

/* Parse argv (the words after the command); -1 on a usage error. */
int args_parse(int argc, char **argv, struct args *a);

/* First value of --key, or NULL. */
const char *args_opt(const struct args *a, const char *key);
/* i-th value of a repeatable --key (0-based), or NULL. */
const char *args_opt_nth(const struct args *a, const char *key, int i);

/* Load the configuration, printing errors; NULL on failure. flags: CFG_* */
struct cfg *cmd_load_config(const char *path, int flags);

int cmd_check(const struct args *a);
int cmd_serve(const struct args *a);
int cmd_assemble(const struct args *a);
int cmd_reconcile(const struct args *a);   /* server/cmd_reconcile.c */
int cmd_status(const struct args *a);          /* cmd_status.c */
int cmd_harbor_setup(const struct args *a);    /* cmd_harbor_setup.c */

#endif
