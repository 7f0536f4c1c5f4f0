/*
 * Outbound notifications, at least once: the outcome of an assembly becomes
 * one delivery per configured endpoint that wants it, each a file in
 * <state_dir>/outbox/ (written and synced before it counts), and a sender
 * thread POSTs them in order, signed, retrying a failing endpoint with
 * capped exponential backoff. A delivery leaves the outbox when its
 * endpoint answers 2xx, when it is older than max_age_s, or when its
 * endpoint's max_pending newer ones push it out. Publication never waits on
 * a receiver: the assembly's worker only writes the file.
 *
 * File <state_dir>/outbox/<created ms>-<id>-<n>.json, written under a
 * .tmp- name and renamed: {"url", "secret_file", "ca_file", "timeout_ms",
 * "retry_initial_ms", "retry_max_ms", "max_age_s", "created_ms", "id",
 * "type", "body"}: what to send and how, so that a reload or a restart
 * changes nothing for what is already queued. The secret is read from
 * secret_file at each attempt, never stored here.
 */
#ifndef AM_OUTBOX_H
#define AM_OUTBOX_H

#include <stddef.h>
#include "config/config.h"
#include "registry/assemble/assemble.h"

struct outbox;

/*
 * Create <state_dir>/outbox/ when missing (mode 0700), load what it holds
 * and start the sender thread; registers archmerge_notify_pending.
 */
enum am_err outbox_open(const char *state_dir, struct outbox **out, char *err, size_t errlen);

/* Stop the sender (an attempt in flight is aborted within a second); the files stay. Accepts NULL. */
void outbox_free(struct outbox *o);

/*
 * One finished assembly of g under rule (the generation c in force, all
 * borrowed): queue its event for every endpoint of c->notify that wants it,
 * and remember when g was first seen waiting (since_first_webhook_ms). A
 * refusal with the same detail as the last one sent for g is not sent again.
 * run_ms: how long the run took. Thread safe; o NULL does nothing.
 */
void outbox_assembly(struct outbox *o, const struct cfg *c, const struct group *g,
    const struct asm_result *r, long long run_ms);

/* Deliveries not yet sent. */
size_t outbox_pending(struct outbox *o);

#endif
