/*
 * What archmerge itself just wrote: a small bounded set of (host, repo, tag,
 * digest) for every manifest PUT under a tag. A registry announces our own
 * writes as pushes like any other; the webhook handler asks this set to tell
 * them apart by what they are, not by which account pushed them. Keyed on
 * the tag too: a user pushing the same image under a source tag is still a
 * source push. An entry is taken by the first event that matches it: a tag
 * moved away and back to a digest archmerge once wrote is a push like any
 * other. Thread safe; bounded in number (the oldest entries drop out first)
 * and in time (a note whose event never came, e.g. the PUT failed, expires).
 */
#ifndef AM_WRITTEN_H
#define AM_WRITTEN_H

#include <stddef.h>

#define WRITTEN_DEFAULT_CAP 1024
#define WRITTEN_DEFAULT_TTL_MS (10L * 60 * 1000)   /* a registry's webhook may be queued a while */

struct written;

struct written *written_new(size_t cap);                 /* WRITTEN_DEFAULT_TTL_MS */
struct written *written_new_ttl(size_t cap, long ttl_ms);
void written_free(struct written *w);                  /* accepts NULL */

/* Note a write (before the PUT: the event may come before the PUT returns). NULL w: no-op. */
void written_note(struct written *w, const char *host, const char *repo, const char *tag,
    const char *digest);

/*
 * 1 when exactly this (host, repo, tag, digest) was noted, not yet taken and
 * not expired; the entry is then consumed (one write, one event). NULL w: 0.
 */
int written_take(struct written *w, const char *host, const char *repo, const char *tag,
    const char *digest);

#endif
