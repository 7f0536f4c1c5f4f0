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

/*
 * The repositories whose artifacts the feed has read, at the update_time it
 * read them at, in memory only (a restart reads them once more). Harbor
 * moves a repository's update_time on every push and on every pull (with the
 * pull count), so a repository is read again when its update_time moves, not
 * on every pass until the next push moves the cursor.
 */
#define FEEDCURSOR_MAX_LOOKED 4096   /* repositories remembered per project; beyond: read again */
#define FEEDCURSOR_REPO_SLACK_MS 10000   /* a listing reads this far below the newest update it saw */

/* 1 when repo's artifacts were read at exactly update_ms. */
int feedcursor_looked(const struct feedcursor *c, const char *host, const char *project, const char *repo,
    long long update_ms);
/*
 * Note that repo's artifacts were read at update_ms (call once the project
 * went through; a project without a cursor is ignored).
 */
void feedcursor_look(struct feedcursor *c, const char *host, const char *project, const char *repo,
    long long update_ms);
/*
 * A listing of host/project went down to its end and its newest repository
 * was updated at newest_ms: later listings stop FEEDCURSOR_REPO_SLACK_MS below
 * it (the slack covers a row Harbor stamped before an earlier one committed).
 */
void feedcursor_listed(struct feedcursor *c, const char *host, const char *project, long long newest_ms);
/* Where a repository listing of host/project may stop: the newer of since and the listed mark. */
long long feedcursor_list_floor(const struct feedcursor *c, const char *host, const char *project,
    long long since);

/* Write the file if anything changed since the last save. */
enum am_err feedcursor_save(struct feedcursor *c, char *err, size_t errlen);

#endif
