/*
 * The operational endpoints' decisions, free of CivetWeb: what /readyz
 * answers from the state it is handed, and the registries part of /status.
 * The HTTP front gathers the state and writes the answer.
 */
#ifndef AM_HANDLERS_OPS_H
#define AM_HANDLERS_OPS_H

#include <stddef.h>
#include <time.h>
#include <jansson.h>

struct cfg;

/*
 * Who may read which operational endpoint under a configuration, for the
 * startup log and check-config: each field a space-separated list of paths
 * ("" when none). public: anyone who reaches the port; secret: with the
 * status secret; closed: answered 403 until the operator chooses
 * (status_secret_file, status_listen or status_public).
 */
struct ops_exposure {
	char public_[64];
	char secret[64];
	char closed[64];
};
void ops_exposure(const struct cfg *c, struct ops_exposure *out);

/* The last background check of one registry. */
struct ops_registry {
	char host[256];
	int reachable, credentials_ok;
	char last_error[512];
	time_t checked;
};

/* What readiness is decided from (all borrowed). */
struct ops_ready_in {
	const char *config_path;
	const char *state_dir;
	int stopping;                    /* shutdown has begun */
	long long dir_checked_ms;        /* last state_dir probe; 0: none yet */
	int dir_ok;
	const char *dir_err;
	int journal_known;               /* the journal's stats below are filled */
	int journal_broken, journal_failing;
	long long journal_last_fail_ms;
	const struct ops_registry *regs;
	size_t n_regs;
};

/*
 * /readyz: 200 while this instance can accept and durably journal webhooks
 * (configuration, not shutting down, state_dir, journal appends); the
 * registries are reported as non-fatal checks. New reference; *status set.
 */
json_t *ops_ready(const struct ops_ready_in *in, int *status);

/* The "registries" array of /status and /ui. New reference. */
json_t *ops_registries_json(const struct ops_registry *regs, size_t n);

#endif
