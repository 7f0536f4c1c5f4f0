/*
 * Pure helpers of the registry authentication flow: parsing a
 * WWW-Authenticate challenge and a token service reply. No I/O, so they are
 * unit tested and fuzzed directly.
 */
#ifndef AM_REGISTRY_AUTH_H
#define AM_REGISTRY_AUTH_H

#include <stddef.h>
#include "server/base/common.h"

enum auth_scheme { AUTH_NONE, AUTH_BASIC, AUTH_BEARER };

struct auth_challenge {
	enum auth_scheme scheme;
	char realm[512];
	char service[256];
	char scope[512];     /* may be empty */
};

/* Parse one WWW-Authenticate header value (quoted strings, commas inside quotes). */
enum am_err auth_parse_challenge(const char *hdr, struct auth_challenge *out,
    char *err, size_t errlen);

/*
 * Parse a token service reply: "token" (or "access_token" when token is
 * absent/empty) and "expires_in" (60 s when absent). *token is caller freed.
 */
enum am_err auth_parse_token_reply(const char *body, size_t len, char **token,
    long *expires_in, char *err, size_t errlen);

#endif
