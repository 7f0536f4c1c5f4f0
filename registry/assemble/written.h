/*
 * What archmerge itself just wrote: a small bounded set of (host, repo, tag,
 * digest) for every manifest PUT under a tag. A registry announces our own
 * writes as pushes like any other; the webhook handler asks this set to tell
 * them apart by what they are, not by which account pushed them. Keyed on
 * the tag too: a user pushing the same image under a source tag is still a
 * source push. Thread safe; the oldest entries drop out first.
 */
#ifndef AM_WRITTEN_H
#define AM_WRITTEN_H

#include <stddef.h>

#define WRITTEN_DEFAULT_CAP 1024

struct written;

struct written *written_new(size_t cap);
void written_free(struct written *w);                  /* accepts NULL */

/* Note a write (before the PUT: the event may come before the PUT returns). NULL w: no-op. */
void written_note(struct written *w, const char *host, const char *repo, const char *tag,
    const char *digest);

/* 1 when exactly this (host, repo, tag, digest) was noted and not yet dropped. NULL w: 0. */
int written_has(struct written *w, const char *host, const char *repo, const char *tag,
    const char *digest);

#endif
