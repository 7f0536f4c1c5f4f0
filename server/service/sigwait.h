/*
 * Groups refused because a child carries no valid signature, remembered by
 * that child (registry host, repository, digest): when the child's
 * signature tag (sha256-<hex>.sig) is pushed, its webhook names the group
 * to assemble again. Bounded (oldest forgotten first); process-wide.
 */
#ifndef AM_SIGWAIT_H
#define AM_SIGWAIT_H

#include "config/rule.h"

void sigwait_note(const struct group *g, const char *repo, const char *digest);
/* 1 and *out filled when a group waits for this child's signature (the entry stays). */
int sigwait_find(void *ctx, const char *host, const char *repo, const char *digest, struct group *out);

#endif
