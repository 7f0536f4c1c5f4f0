#include "server/service/checks.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "registry/client/access.h"
#include "registry/client/client.h"
#include "server/base/log.h"
#include "server/observe/metrics.h"
#include "server/service/regopts.h"

#define CHECK_INTERVAL_MS 5000   /* between background check rounds */
#define CHECK_TIMEOUT_MS  3000   /* cap per registry request of a check: bounds shutdown */

struct checks {
	struct service *svc;
	/* Lock held only to copy results in or out, never across I/O. */
	pthread_mutex_t lock;
	pthread_cond_t cv;            /* wakes the thread to quit */
	pthread_t thread;
	int started, quit;
	struct ops_registry *regs;
	size_t n_regs;
	int dir_ok;
	char dir_err[512];
	long long dir_checked_ms;
};

/*
 * Writable means a block can be written and synced there: what a journal
 * append does. Creating an empty file still works on a full disk.
 */
static int
probe_state_dir(const char *dir, char *err, size_t errlen)
{
	char path[4096], block[4096];
	int fd, ok = 0;

	memset(block, 0, sizeof(block));
	if (am_fmt(path, sizeof(path), "%s/.readyz-XXXXXX", dir) != 0)
		return am_fmt(err, errlen, "path too long"), 0;
	if ((fd = mkstemp(path)) < 0) {
		(void)am_fmt(err, errlen, "%s: cannot create a file: %s", dir, strerror(errno));
		return 0;
	}
	if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block))
		(void)am_fmt(err, errlen, "%s: cannot write: %s", dir, errno ? strerror(errno) : "short write");
	else if (fdatasync(fd) != 0)
		(void)am_fmt(err, errlen, "%s: cannot sync: %s", dir, strerror(errno));
	else
		ok = 1;
	close(fd);
	unlink(path);
	return ok;
}

/*
 * /v2/ alone does not prove the credentials: a token service may hand an
 * anonymous token to wrong credentials (Harbor does when a scope is asked),
 * and a registry may let it through. Ask for a token and read its subject.
 */
static enum am_err
check_credentials(const struct cfg_registry *r, const char *password, char *err, size_t errlen)
{
	struct reg_access_opts o;
	struct reg_access acc;

	if (r->username == NULL)
		return AM_OK;
	regopts_access(r, password, CHECK_TIMEOUT_MS, &o);
	return reg_access_probe(&o, NULL, &acc, err, errlen);
}

/* One registry of the current generation, with its own short-timeout client. */
static void
check_registry(const struct cfg_registry *r, const char *password, struct ops_registry *out)
{
	struct reg_client_opts o;
	struct reg_client *c;
	enum am_err rc;
	char err[sizeof(out->last_error)] = "";

	memset(out, 0, sizeof(*out));
	(void)am_fmt(out->host, sizeof(out->host), "%s", r->host);
	regopts_client(r, password, CHECK_TIMEOUT_MS, &o);
	o.max_concurrent = 0;   /* its own client: one request at a time is all it makes */
	if ((c = reg_client_new(&o, err, sizeof(err))) == NULL)
		rc = AM_EINVAL;
	else
		rc = reg_ping(c, err, sizeof(err));
	reg_client_free(c);
	/* A 401 from /v2/ still means the registry answered. */
	out->reachable = rc == AM_OK || rc == AM_EAUTH;
	if (out->reachable && (rc = check_credentials(r, password, err, sizeof(err))) == AM_OK)
		out->credentials_ok = 1;
	if (rc == AM_EAUTH && err[0] == '\0')
		(void)am_fmt(err, sizeof(err), "credentials rejected");
	if (rc != AM_OK)
		(void)am_fmt(out->last_error, sizeof(out->last_error), "%s", err[0] ? err : am_strerror(rc));
	out->checked = time(NULL);
	metrics_registry_check(out->host, out->reachable, out->credentials_ok);
}

static void
store_dir(struct checks *k, int ok, const char *err)
{
	pthread_mutex_lock(&k->lock);
	k->dir_ok = ok;
	(void)am_fmt(k->dir_err, sizeof(k->dir_err), "%s", err);
	k->dir_checked_ms = am_now_ms();
	pthread_mutex_unlock(&k->lock);
}

/* One round on the current generation; results swapped in under the lock, no I/O under it. */
static void
checks_round(struct checks *k)
{
	const struct service_view *v = service_acquire(k->svc);
	size_t i, n = v->cfg->n_registries;
	struct ops_registry *rs = xcalloc(n ? n : 1, sizeof(*rs));
	char derr[512] = "";
	int dok;

	/* state_dir first: a hanging registry must not delay the local verdict. */
	dok = probe_state_dir(v->cfg->state_dir, derr, sizeof(derr));
	store_dir(k, dok, derr);
	for (i = 0; i < n; i++)
		check_registry(&v->cfg->registries[i], v->passwords[i], &rs[i]);
	service_release(k->svc, v);
	pthread_mutex_lock(&k->lock);
	free(k->regs);
	k->regs = rs;
	k->n_regs = n;
	pthread_mutex_unlock(&k->lock);
}

static void *
checks_main(void *arg)
{
	struct checks *k = arg;
	struct timespec ts;

	pthread_mutex_lock(&k->lock);
	while (!k->quit) {
		pthread_mutex_unlock(&k->lock);
		checks_round(k);
		pthread_mutex_lock(&k->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += CHECK_INTERVAL_MS / 1000;
		while (!k->quit && pthread_cond_timedwait(&k->cv, &k->lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

struct checks *
checks_start(struct service *svc, const char *state_dir)
{
	struct checks *k = xcalloc(1, sizeof(*k));

	k->svc = svc;
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cv, NULL);
	k->dir_ok = probe_state_dir(state_dir, k->dir_err, sizeof(k->dir_err));
	k->dir_checked_ms = am_now_ms();
	k->started = pthread_create(&k->thread, NULL, checks_main, k) == 0;
	if (!k->started)
		log_kv(LOG_ERROR, "readiness", LOG_S("result", "no-check-thread"),
		    LOG_S("note", "registry checks and the state_dir probe do not run"));
	return k;
}

void
checks_stop(struct checks *k)
{
	if (k == NULL)
		return;
	if (k->started) {
		pthread_mutex_lock(&k->lock);
		k->quit = 1;
		pthread_cond_broadcast(&k->cv);
		pthread_mutex_unlock(&k->lock);
		pthread_join(k->thread, NULL);
	}
	free(k->regs);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

void
checks_snapshot(struct checks *k, struct checks_snap *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&k->lock);
	out->dir_checked_ms = k->dir_checked_ms;
	out->dir_ok = k->dir_ok;
	(void)am_fmt(out->dir_err, sizeof(out->dir_err), "%s", k->dir_err);
	out->regs = xcalloc(k->n_regs ? k->n_regs : 1, sizeof(*out->regs));
	if (k->n_regs > 0)
		memcpy(out->regs, k->regs, k->n_regs * sizeof(*out->regs));
	out->n_regs = k->n_regs;
	pthread_mutex_unlock(&k->lock);
}

void
checks_snap_clear(struct checks_snap *s)
{
	free(s->regs);
	memset(s, 0, sizeof(*s));
}
