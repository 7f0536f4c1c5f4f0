/*
 * The running service: configuration, one registry client per registry,
 * the work queue and the assembly callback that workers run. In serve mode
 * the journal makes accepted events durable, and transient registry faults
 * are retried with backoff until the group is done.
 */
#ifndef AM_SERVICE_H
#define AM_SERVICE_H

#include "config/config.h"
#include "registry/assemble/assemble.h"

struct service;

/* Build clients and read secrets (cfg borrowed, must outlive the service). */
enum am_err service_new(const struct cfg *cfg, size_t workers, struct service **out,
    char *err, size_t errlen);
void service_free(struct service *s);   /* finishes queued work first unless shut down; accepts NULL */

/*
 * Serve mode: open the journal in cfg->state_dir (refusing a missing or
 * unwritable directory) and queue every group it still holds.
 */
enum am_err service_open_journal(struct service *s, char *err, size_t errlen);

/* Webhook secret of the configuration the service started with (NULL when none). */
const char *service_secret(const struct service *s);

/*
 * Record (journal, fsync) and queue a group; thread safe. 1 queued, 0
 * coalesced, -1 when the event could not be recorded (answer 503).
 */
int service_enqueue(void *service, const struct group *g);

/* Remember host/repo for reconcile (webhook_env.remember); thread safe. */
void service_remember(void *service, const char *host, const char *repo);

/*
 * A webhook claimed repo:tag@digest as a source (webhook_env.announce); the
 * change feed reads the set (service_seen, borrowed). Thread safe.
 */
#define SERVICE_SEEN_CAP 4096
void service_announce(void *service, const char *host, const char *repo, const char *tag,
    const char *digest);
struct seen;
struct seen *service_seen(struct service *s);

/*
 * The memories the service's workers fill and the HTTP front reads, each
 * owned by the service (borrowed, live as long as s): what its assemblies
 * just wrote, and the status recorder behind GET /status.
 */
struct written;
struct written *service_written(struct service *s);
struct status_rec;
struct status_rec *service_status(struct service *s);

/*
 * The groups waiting for a child of host/repo named by tag or digest (its
 * signature, or the registry's leave to read it): up to max into out,
 * returns how many (webhook_env.waiting, service as ctx); thread safe.
 */
size_t service_waiting(void *service, const char *host, const char *repo, const char *tag,
    const char *digest, struct group *out, size_t max);

/* Wait until the queue is empty and idle. */
void service_wait_idle(struct service *s);

/* Assemble one group now, on the calling thread; logs the outcome. */
void service_assemble(struct service *s, const struct group *g, int dry_run,
    struct asm_result *out);

/* Remember the repository of every queued group in r (borrowed, outlives s; NULL: none). */
struct repos;
void service_set_repos(struct service *s, struct repos *r);

/* Accepted groups the journal still holds (0 without a journal). */
size_t service_journal_pending(struct service *s);
/* Jobs queued or running (0 without workers). */
size_t service_queue_depth(struct service *s);

/* reg_tags_list on host's client of the current generation (reconcile: reloads reach it). */
enum am_err service_list_tags(struct service *s, const char *host, const char *repo, int page_size,
    int (*cb)(void *ctx, const char *tag), void *cbctx, char *err, size_t errlen);

/* 1 once a shutdown began (service_stop_jobs). */
int service_stopping(struct service *s);

/* The journal's counters; -1 without a journal. */
struct journal_stats;
int service_journal_stats(struct service *s, struct journal_stats *out);


/*
 * The configuration in force for new work, reference counted: a reload
 * replaces it while earlier holders keep theirs until they release it.
 */
struct service_view {
	const struct cfg *cfg;
	const char *secret;        /* whole expected Authorization value; NULL: none */
	const char *status_secret; /* the same for /metrics, /status, /ui (status_secret_file); NULL: none */
	const char *const *passwords;     /* per registry (NULL: anonymous), read at this generation */
	const char *const *webhook_secrets;  /* per registry: its own webhook secret (NULL: server's) */
	struct reg_client *const *clients;   /* per registry, with those passwords */
	unsigned long generation;  /* 0 at start, one more with each reload */
};
const struct service_view *service_acquire(struct service *s);
/*
 * Let go of v. Any thread may call it: a generation nobody holds any more is
 * freed later on the service's own reaper thread, never on the caller's.
 */
void service_release(struct service *s, const struct service_view *v);

/* Tests: fn(ctx) runs on the thread that frees a generation, just before it does. */
void service_set_free_hook(struct service *s, void (*fn)(void *ctx), void *ctx);

/*
 * Make cfg (ownership passes on success) the configuration for new work:
 * rules, registries and secrets. On failure (a secret unreadable) the
 * running one stays and err says why.
 */
enum am_err service_reload(struct service *s, struct cfg *cfg, char *err, size_t errlen);

/* First step of a shutdown: start no more queued jobs (the journal keeps them). */
void service_stop_jobs(struct service *s);

/*
 * Shutdown: stop taking jobs (queued ones stay in the journal), give running
 * assemblies timeout_ms, then abort their registry requests. Returns 0 when
 * every worker has stopped, -1 when some are still stuck.
 */
int service_shutdown(struct service *s, long timeout_ms);

#endif
