/* Tests: the webhook's log fields rendered as the logfmt line observe_webhook writes. */
#ifndef AM_TEST_SUMMARY_H
#define AM_TEST_SUMMARY_H

#include "handlers/webhook.h"
#include "server/base/log.h"

static const char *
summary(const struct webhook_resp *r)
{
	static char line[2048];
	struct log_field f[WEBHOOK_LOG_FIELDS];
	size_t n = webhook_log_fields(r, f);

	log_render(line, sizeof(line), 0, LOG_INFO, "webhook", f, n);
	return line;
}

#endif
