/*
 * Groups refused because a child carries no valid signature, remembered by
 * that child (registry host, repository, digest): when the child's
 * signature tag (sha256-<hex>.sig) is pushed, its webhook names the group
 * to assemble again. Bounded (oldest forgotten first); one table per
 * service, which owns it (service_sig_hint reaches it for the webhook).
 */
#ifndef AM_SIGWAIT_H
#define AM_SIGWAIT_H

#include "config/rule.h"

struct sigwait;

struct sigwait *sigwait_new(void);
void sigwait_free(struct sigwait *w);   /* accepts NULL */

/* Remember that g waits for the signature of repo@digest (all borrowed); thread safe. */
void sigwait_note(struct sigwait *w, const struct group *g, const char *repo, const char *digest);
/* 1 and *out filled when a group waits for this child's signature (the entry stays); thread safe. */
int sigwait_find(struct sigwait *w, const char *host, const char *repo, const char *digest,
    struct group *out);

#endif
