/*
 * What a registry lets the configured account do on one repository, asked
 * the way a client would: the token service's answer to a pull,push scope
 * (Harbor grants per project, so the repository need not exist). Used by
 * harbor-setup to check the robot account before any webhook arrives.
 */
#ifndef AM_REGISTRY_ACCESS_H
#define AM_REGISTRY_ACCESS_H

#include <stddef.h>
#include "server/base/common.h"

struct reg_access_opts {
	const char *url;          /* registry API base, "https://host[:port]" */
	const char *ca_file;      /* NULL: system store */
	int insecure;
	const char *username;     /* NULL: anonymous */
	const char *password;
	long timeout_ms;
};

struct reg_access {
	int pull, push;           /* granted on the repository */
	int verified;             /* 0: the registry uses Basic auth, actions could not be read */
	int anonymous;            /* the token service answered as for an anonymous user */
};

/*
 * AM_OK when an answer was obtained (see out); AM_EAUTH when credentials were
 * refused, including an anonymous token in exchange for credentials. repo
 * NULL asks for a token without scope: a check of the credentials only.
 */
enum am_err reg_access_probe(const struct reg_access_opts *o, const char *repo,
    struct reg_access *out, char *err, size_t errlen);

/*
 * Pure: read the actions a registry JWT grants on repository repo (claims are
 * read, the signature is not checked: the registry does that). anonymous is
 * set when the subject is empty. -1 when jwt is not a readable token.
 */
int reg_token_grants(const char *jwt, const char *repo, int *pull, int *push, int *anonymous);

#endif
