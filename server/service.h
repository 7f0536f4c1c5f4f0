/*
 * The running service: configuration, one registry client per registry,
 * the work queue and the assembly callback that workers run.
 */
#ifndef AM_SERVICE_H
#define AM_SERVICE_H

#include "../config/config.h"
#include "../registry/assemble.h"

struct service;

/* Build clients and read secrets (cfg borrowed, must outlive the service). */
enum am_err service_new(const struct cfg *cfg, size_t workers, struct service **out,
    char *err, size_t errlen);
void service_free(struct service *s);   /* finishes queued work first; accepts NULL */

/* Webhook secret (NULL when unauthenticated is allowed). */
const char *service_secret(const struct service *s);

/* Queue a group (thread safe); 1 queued, 0 coalesced. */
int service_enqueue(void *service, const struct group *g);

/* Wait until the queue is empty and idle. */
void service_wait_idle(struct service *s);

/* Assemble one group now, on the calling thread; logs the outcome. */
void service_assemble(struct service *s, const struct group *g, int dry_run,
    struct asm_result *out);

/* Remember the repository of every queued group in r (borrowed, outlives s; NULL: none). */
struct repos;
void service_set_repos(struct service *s, struct repos *r);

/* Jobs queued or running (0 without workers). */
size_t service_queue_depth(struct service *s);

/* The registry client of a configured registry host (borrowed), or NULL. */
struct reg_client *service_client(struct service *s, const char *host);

#endif
