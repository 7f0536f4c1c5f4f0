/*
 * Harbor webhook payloads (Default and CloudEvents formats) parsed into a
 * plain struct. Pure: bytes in, event or a one-line reason out.
 */
#ifndef AM_EVENT_H
#define AM_EVENT_H

#include <stddef.h>
#include "server/base/common.h"
#include "registry/oci/names.h"

#define EVENT_MAX_RESOURCES 16

struct event_resource {
	char tag[NAME_MAX_TAG];        /* "" for a push by digest */
	char digest[80];               /* may be "" */
	char host[256];                /* host part of resource_url */
	int by_digest;                 /* pushed by digest: nothing to match */
};

struct event {
	int is_push;                   /* PUSH_ARTIFACT / harbor.artifact.pushed */
	int is_scan;                   /* SCANNING_COMPLETED / harbor.scan.completed: resources too */
	char type[64];                 /* as sent, for the "ignored" reason */
	char operator_[128];
	char repo[NAME_MAX_REPO];      /* repo_full_name */
	size_t n_resources;
	struct event_resource resources[EVENT_MAX_RESOURCES];
};

/*
 * Parse a payload. cloudevents selects the CloudEvents layout. Returns
 * AM_EINVAL with a reason naming the field for malformed JSON, missing or
 * invalid fields. A finished scan parses like a push (is_scan set);
 * events of other types parse with neither flag and no resources checked.
 */
enum am_err event_parse(const char *body, size_t len, int cloudevents, struct event *out,
    char *err, size_t errlen);

/* Shared with the notification parser: nesting deeper than the parser's
 * limit, and a valid "host[:port]". */
int event_too_deep(const char *s, size_t len);
int event_host_valid(const char *s, size_t len);

#endif
