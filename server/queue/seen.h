/*
 * Pushes the webhook announced: a bounded set of (registry, repository, tag,
 * digest), fed by every webhook that claims a source tag and read by the
 * change feed, which counts a push no webhook announced as missed and does
 * not queue again what a webhook already queued. Thread safe; the oldest
 * entries are forgotten beyond the capacity.
 */
#ifndef AM_SEEN_H
#define AM_SEEN_H

#include <stddef.h>

struct seen;

struct seen *seen_new(size_t cap);      /* cap: entries kept (at least 1) */
void seen_free(struct seen *s);         /* accepts NULL */

/* Note one announced push (all borrowed); s NULL: nothing. */
void seen_note(struct seen *s, const char *host, const char *repo, const char *tag,
    const char *digest);
/* 1 when that push was announced (and is still remembered). */
int seen_has(struct seen *s, const char *host, const char *repo, const char *tag,
    const char *digest);

#endif
