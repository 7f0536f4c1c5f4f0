/*
 * One small synchronous HTTP GET over libcurl, for the command-line tools
 * (archmerge status, the robot check of harbor-setup): TLS verified against
 * a given CA file or the system store, optional Basic credentials or a whole
 * Authorization value, capped body, the WWW-Authenticate header kept.
 */
#ifndef AM_FETCH_H
#define AM_FETCH_H

#include <stddef.h>
#include "server/base/common.h"

struct fetch_opts {
	const char *url;
	const char *ca_file;        /* NULL: system store */
	int insecure;               /* skip TLS verification entirely */
	int skip_hostname;          /* verify the chain against ca_file, not the name (own certificate) */
	const char *username;       /* Basic credentials; NULL: none */
	const char *password;
	const char *authorization;  /* whole Authorization value; NULL: none */
	long timeout_ms;            /* 0: 10000 */
	size_t max;                 /* body cap; 0: 1 MiB */
};

struct fetch_reply {
	long status;
	char *body;                 /* NUL terminated; fetch_reply_clear frees */
	size_t body_len;
	char www_authenticate[2048];
};

/* AM_OK when an HTTP answer arrived (any status); else err says why. */
enum am_err fetch_get(const struct fetch_opts *o, struct fetch_reply *r, char *err, size_t errlen);
void fetch_reply_clear(struct fetch_reply *r);

#endif
