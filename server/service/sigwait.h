/*
 * Groups waiting for one of their children to change state, remembered by
 * that child (registry host, repository, tag and/or digest): a child without
 * a valid signature (require_signed_children), or one the registry's policy
 * will not let archmerge read yet (not scanned, vulnerable, unsigned). Its
 * signature push (sha256-<hex>.sig) or Harbor's SCANNING_COMPLETED for it
 * names every group to assemble again. Bounded (oldest forgotten first); one
 * table per service, which owns it (service_waiting reaches it for the
 * webhook).
 */
#ifndef AM_SIGWAIT_H
#define AM_SIGWAIT_H

#include <stddef.h>

#include "config/rule.h"

struct sigwait;

struct sigwait *sigwait_new(void);
void sigwait_free(struct sigwait *w);   /* accepts NULL */

/*
 * Remember that g waits for a child in repo, named by tag and/or digest
 * ("" when unknown: a refused tag hides its digest); all borrowed; thread safe.
 */
void sigwait_note(struct sigwait *w, const struct group *g, const char *repo, const char *tag,
    const char *digest);

/*
 * Every group (each once, up to max into out) waiting for a child of
 * host/repo that tag or digest names ("" matches nothing); an entry whose
 * digest is unknown answers to any digest of its repository. Returns how
 * many; the entries stay. Thread safe.
 */
size_t sigwait_find(struct sigwait *w, const char *host, const char *repo, const char *tag,
    const char *digest, struct group *out, size_t max);

/* g waits for nothing any more (its latest run was not held up by a child); thread safe. */
void sigwait_forget(struct sigwait *w, const struct group *g);

/* 1 when g waits for some child; thread safe. */
int sigwait_waits(struct sigwait *w, const struct group *g);

#endif
