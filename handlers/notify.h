/*
 * distribution's notification envelope
 * (application/vnd.docker.distribution.events.v1+json, {"events": [...]}),
 * as sent by the CNCF registry, Harbor's own registry and GitLab's, parsed
 * into one plain record per event. Pure: bytes in, records or a reason out.
 */
#ifndef AM_NOTIFY_H
#define AM_NOTIFY_H

#include <stddef.h>
#include "server/base/common.h"
#include "registry/oci/names.h"
#include "config/claim.h"

#define NOTIFY_MEDIA_TYPE "application/vnd.docker.distribution.events.v1+json"
#define NOTIFY_MAX_EVENTS 64

struct notify_event {
	/* CLAIM_R_NONE: a manifest push with a tag, to be decided. Else why it
	 * needs nothing, e.g. CLAIM_R_BLOB or CLAIM_R_NOT_PUSH (a pull). */
	enum claim_reason ignored;
	char action[16];               /* as sent, validated, for the log */
	char repo[NAME_MAX_REPO];      /* target.repository */
	char tag[NAME_MAX_TAG];        /* target.tag */
	char digest[80];               /* target.digest */
	char host[256];                /* request.host: the name the pusher used */
	char actor[128];               /* actor.name: the authenticated pusher */
	char detail[160];              /* an invalid event: what is wrong with it */
};

struct notify_envelope {
	size_t n;
	struct notify_event ev[NOTIFY_MAX_EVENTS];
};

/*
 * Parse an envelope. AM_EINVAL with a reason for what makes the whole
 * envelope unusable (not JSON, no "events" array, too many events). An
 * event with a bad field does not fail the envelope: it comes back ignored
 * ("invalid event") with the field named in detail, so that one bad event
 * cannot block the registry's queue (distribution resends a refused
 * envelope forever).
 */
enum am_err notify_parse(const char *body, size_t len, struct notify_envelope *out,
    char *err, size_t errlen);

#endif
