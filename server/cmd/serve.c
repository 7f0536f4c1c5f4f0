/*
 * archmerge serve: the service, its journal, the reconcile thread and the
 * HTTPS listener, until SIGTERM/SIGINT (bounded shutdown); SIGHUP reloads.
 */
#include "server/cmd/commands.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "config/config.h"
#include "handlers/ops.h"
#include "server/base/log.h"
#include "server/base/version.h"
#include "server/http.h"
#include "server/reconcile/feed.h"
#include "server/reconcile/reconciler.h"
#include "server/service/reload.h"
#include "server/service/service.h"

static void *
http_stop_thread(void *arg)
{
	http_stop(arg);
	return NULL;
}

/*
 * SIGTERM/SIGINT: stop accepting (in-flight webhooks finish and are
 * journaled), give running assemblies shutdown_timeout_ms, leave queued
 * work in the journal. CivetWeb needs up to 2 s to stop (its poll loop), so
 * it stops on a thread of its own meanwhile. Returns -1 when workers are stuck.
 */
static int
serve_shutdown(struct service *svc, struct http_server **http, int sig)
{
	const struct service_view *v = service_acquire(svc);
	long long t0 = am_now_ms();
	long timeout = v->cfg->shutdown_timeout_ms;
	pthread_t th;
	int threaded, rc = 0;

	service_release(svc, v);
	log_kv(LOG_INFO, "shutting down", LOG_I("signal", sig), LOG_I("timeout_ms", timeout),
	    LOG_S("detail", "no new webhooks, running assemblies get up to timeout_ms, queued work "
	    "stays in the journal"));
	service_stop_jobs(svc);
	threaded = pthread_create(&th, NULL, http_stop_thread, *http) == 0;
	if (!threaded)
		http_stop(*http);
	*http = NULL;
	if (service_shutdown(svc, timeout) != 0) {
		log_kv(LOG_ERROR, "shutdown", LOG_S("result", "stuck"),
		    LOG_S("detail", "workers still stuck in registry requests; exiting without cleanup"));
		rc = -1;
	}
	if (threaded)
		pthread_join(th, NULL);
	if (rc == 0)
		log_kv(LOG_INFO, "shutdown complete", LOG_I("ms", am_now_ms() - t0));
	return rc;
}

/*
 * The stop signals blocked before any thread starts, so that they all
 * inherit the mask and only sigwait() receives them; SIGPIPE ignored, and
 * SIGXFSZ too (a file size limit then fails the journal write with 503
 * instead of killing the service).
 */
static void
serve_signals(sigset_t *stop)
{
	sigemptyset(stop);
	sigaddset(stop, SIGTERM);
	sigaddset(stop, SIGINT);
	sigaddset(stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
}

/* Service, journal, reconciler, change feed and listener, in that order; 0 or -1 (logged). */
static int
serve_start(struct cfg *c, struct service **svc, struct reconciler **rec, struct feed **feed,
    struct http_server **http)
{
	struct ops_exposure ex;
	char err[512];

	if (service_new(c, (size_t)c->workers, svc, err, sizeof(err)) != AM_OK ||
	    service_open_journal(*svc, err, sizeof(err)) != AM_OK ||
	    (*rec = reconciler_new(c, *svc, err, sizeof(err))) == NULL ||
	    (*feed = feed_new(c, *svc, err, sizeof(err))) == NULL ||
	    http_start(c, *svc, http, err, sizeof(err)) != AM_OK) {
		log_kv(LOG_ERROR, "startup", LOG_S("result", "failed"), LOG_S("detail", err));
		return -1;
	}
	reconciler_start(*rec);
	feed_start(*feed);
	log_kv(LOG_INFO, "listening", LOG_S("address", c->listen), LOG_S("tls", c->plain_http ? "off" : "on"),
	    LOG_S("webhook_path", c->webhook_path), LOG_I("registries", c->n_registries),
	    LOG_I("rules", c->n_rules), LOG_I("workers", c->workers), LOG_S("version", am_version()));
	ops_exposure(c, &ex);
	log_kv(LOG_INFO, "endpoints", LOG_S("public", ex.public_), LOG_S("with_secret", ex.secret),
	    LOG_S("closed", ex.closed), LOG_S("status_listen", c->status_listen));
	return 0;
}

int
cmd_serve(const struct args *a)
{
	struct cfg *c = cmd_load_config(a->config, CFG_CHECK_FILES);
	struct service *svc = NULL;
	struct http_server *http = NULL;
	struct reconciler *rec = NULL;
	struct feed *feed = NULL;
	sigset_t stop;
	int rc = EXIT_FAIL, sig = 0;

	if (c == NULL)
		return EXIT_FAIL;
	log_set_level(c->log_level);
	log_set_json(c->log_json);
	cfg_log_warnings(c);
	/* Webhook threads allocate briefly and concurrently; glibc would give each
	 * its own arena (8 per core) and keep their pages. Two arenas hold the
	 * resident size down with no measurable cost at these request rates. */
	mallopt(M_ARENA_MAX, 2);
	serve_signals(&stop);
	if (serve_start(c, &svc, &rec, &feed, &http) != 0)
		goto done;
	for (;;) {
		if (sigwait(&stop, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		reload_config(svc, c, a->config);
	}
	rc = EXIT_OK;
	if (serve_shutdown(svc, &http, sig) != 0)
		_exit(EXIT_OK);   /* workers stuck: their groups are in the journal; cleanup could hang */
done:
	http_stop(http);
	reconciler_free(rec);   /* after the shutdown: its requests were aborted with the others */
	feed_free(feed);
	if (rc != EXIT_OK && svc != NULL)
		(void)service_shutdown(svc, 0);   /* startup failed: replayed work stays journaled */
	service_free(svc);
	cfg_free(c);
	return rc;
}
