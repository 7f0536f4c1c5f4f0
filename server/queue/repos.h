/*
 * Repositories seen in webhooks, per registry host, remembered in the state
 * directory (file "repositories", one "host/repository" per line) so that
 * reconcile lists them after a restart even when no rule names them
 * literally. Thread safe: webhook threads add, the reconcile pass reads.
 */
#ifndef AM_REPOS_H
#define AM_REPOS_H

#include <stddef.h>
#include "server/base/common.h"

#define REPOS_MAX 10000          /* remembered entries; a new one then replaces the one noted longest ago */
#define REPOS_FILE "repositories"

struct repos;

enum { REPOS_READONLY = 1 };     /* CLI: read the file, never create or write */

/*
 * Load <state_dir>/repositories. Invalid, duplicate or torn (unterminated)
 * lines are skipped with a warning, and the file is rewritten without them
 * unless REPOS_READONLY. A missing file is an empty set. When the file
 * cannot be written, entries are kept in memory only (warning logged).
 */
enum am_err repos_open(const char *state_dir, int flags, struct repos **out,
    char *err, size_t errlen);
void repos_free(struct repos *r);   /* accepts NULL */

/*
 * Remember host/repo (validated here); 1 when newly added, 0 known or not
 * valid. NULL r: 0. At REPOS_MAX entries the one noted longest ago is
 * forgotten for it (logged: "repositories forgotten", at most once a minute).
 */
int repos_note(struct repos *r, const char *host, const char *repo);

/* How many entries are remembered. */
size_t repos_count(struct repos *r);

/*
 * Snapshot of the repositories remembered for host (case-insensitive):
 * returns the count and *out, an array of strings; caller frees with
 * repos_list_free. NULL r: 0 and *out = NULL.
 */
size_t repos_list(struct repos *r, const char *host, char ***out);
void repos_list_free(char **list, size_t n);

#endif
