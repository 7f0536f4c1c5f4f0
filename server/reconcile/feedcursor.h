/*
 * Where the Harbor change feed stopped reading, per (registry, project): the
 * newest push_time handled and which pushes at exactly that time were
 * handled (several artifacts can share a timestamp). Kept in
 * <state_dir>/feed-cursor as JSON, replaced by write, fsync and rename, so
 * a crash leaves the old or the new cursor, never a torn one. The feed
 * saves it only after the groups it covers are in the journal.
 */
#ifndef AM_FEEDCURSOR_H
#define AM_FEEDCURSOR_H

#include <stddef.h>
#include "server/base/common.h"

#define FEEDCURSOR_FILE "feed-cursor"
#define FEEDCURSOR_MAX_AT 1024   /* pushes remembered at the cursor's time, per project */

struct feedcursor;

/* Load <state_dir>/feed-cursor; a missing file is an empty cursor. */
enum am_err feedcursor_open(const char *state_dir, struct feedcursor **out, char *err, size_t errlen);
void feedcursor_free(struct feedcursor *c);   /* accepts NULL */

/* The time (ms since the epoch) for host/project; 0 when none is known (*known = 0). */
long long feedcursor_get(const struct feedcursor *c, const char *host, const char *project, int *known);
/* 1 when key ("repo:tag@digest") was handled at exactly the cursor's time. */
int feedcursor_at(const struct feedcursor *c, const char *host, const char *project, const char *key);

/*
 * Move host/project to ms (never backwards: an older ms is ignored) and
 * note key as handled at ms; at the same ms keys accumulate. In memory
 * until feedcursor_save.
 */
void feedcursor_advance(struct feedcursor *c, const char *host, const char *project, long long ms,
    const char *key);

/* Write the file if anything changed since the last save. */
enum am_err feedcursor_save(struct feedcursor *c, char *err, size_t errlen);

#endif
