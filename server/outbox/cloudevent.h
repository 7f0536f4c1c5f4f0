/*
 * What an outbound notification says: one assembly's outcome as a
 * CloudEvents 1.0 document in structured mode (the index, its children, the
 * tags, the rule), and the HMAC-SHA256 signature a receiver checks it with.
 * Pure functions over plain structs, no I/O.
 */
#ifndef AM_CLOUDEVENT_H
#define AM_CLOUDEVENT_H

#include <stddef.h>
#include "registry/assemble/assemble.h"

#define CE_CONTENT_TYPE "application/cloudevents+json; charset=utf-8"
#define CE_SIGNATURE_HEADER "X-Archmerge-Signature"
#define CE_SIGNATURE_MAX 80     /* "sha256=" + 64 hex + NUL */

/* The event an outcome makes: its config bit (NOTIFY_*) and name, 0/NULL when none. */
unsigned cloudevent_kind(const struct asm_result *r);
const char *cloudevent_kind_name(unsigned kind);

struct ce_input {
	unsigned kind;                 /* NOTIFY_* */
	const char *id;                /* unique per event; every retry carries it */
	const char *time;              /* RFC 3339, UTC */
	const char *registry;          /* the group's registry host */
	const char *version;
	const char *rule;
	const struct asm_result *res;  /* target "repo:tag", digest, media type, children */
	const char *const *tags;       /* the extra tags the rule gives the index; may be NULL */
	size_t n_tags;
	long long since_first_ms;      /* from the first webhook of the group; -1 unknown */
};

/* The event as compact JSON (caller frees). */
char *cloudevent_build(const struct ce_input *in);

/* "sha256=<hex of HMAC-SHA256(key, body)>" into out (CE_SIGNATURE_MAX bytes). */
void cloudevent_sign(const char *key, size_t key_len, const char *body, size_t len, char *out);

/* A fresh event id (random, UUID form) into out (37 bytes). */
void cloudevent_new_id(char *out, size_t len);

/* Now as RFC 3339 UTC with milliseconds into out (32 bytes). */
void cloudevent_now(char *out, size_t len);

#endif
