/*
 * archmerge harbor-setup: puts archmerge's webhook policy into each Harbor
 * project through Harbor's REST API (create, or update in place: one policy
 * per name and project, so re-running never duplicates), then checks that
 * the robot account of the matching registry entry may pull and push there.
 *
 * The robot check asks the registry's token service for a pull,push token
 * on "<project>/archmerge-access-check" with the robot's credentials and
 * reads what the token grants: exactly what the service will need, and
 * Harbor grants per project, so the repository need not exist. With the
 * change feed on (or --check), the robot must also list repositories and
 * artifacts through Harbor's REST API: the two list calls are tried.
 *
 * --check changes nothing: it reads the policy's recent deliveries
 * (executions, their tasks and the failed tasks' logs) and says why they
 * fail, e.g. Harbor refusing private addresses ("blocked non-public host").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>

#include "config/config.h"
#include "registry/client/access.h"
#include "registry/harbor/feed.h"
#include "registry/harbor/harbor.h"
#include "server/cmd/commands.h"
#include "server/service/regopts.h"

#define POLICY_PAGE 100
#define POLICY_PAGES_MAX 50
#define CHECK_EXECUTIONS 10      /* recent deliveries read by --check */
#define CHECK_FAILED_LOGS 3      /* failed deliveries whose task logs are shown */
#define CHECK_LOG_LINES 4        /* last lines shown of each log */
#define BLOCKED_TEXT "blocked non-public host"

struct setup {
	const char *name;           /* policy name */
	const char *address;        /* webhook URL */
	const char *auth_header;    /* webhook secret ("" when none) */
	const char *payload_format;
	int dry_run;
};

static const char *const resource_name_hdr[] = { "X-Is-Resource-Name: true", NULL };

static json_t *
desired_policy(const struct setup *s)
{
	/* enabled is sent explicitly: a policy created without it is disabled. */
	/* SCANNING_COMPLETED: a group kept waiting by "Prevent vulnerable images" is looked at again. */
	return json_pack("{s:s, s:s, s:b, s:[s, s], s:[{s:s, s:s, s:s, s:b, s:s}]}",
	    "name", s->name,
	    "description", "archmerge: publishes multi-architecture indexes (managed by archmerge harbor-setup)",
	    "enabled", 1,
	    "event_types", "PUSH_ARTIFACT", "SCANNING_COMPLETED",
	    "targets", "type", "http", "address", s->address, "auth_header", s->auth_header,
	    "skip_cert_verify", 0, "payload_format", s->payload_format);
}

static int
str_is(const json_t *o, const char *key, const char *want)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v != NULL && strcmp(v, want) == 0;
}

/* Does the policy's event_types list name type? A policy missing one of ours is updated. */
static int
has_event(const json_t *ev, const char *type)
{
	size_t i;

	for (i = 0; i < json_array_size(ev); i++)
		if (json_is_string(json_array_get(ev, i)) &&
		    strcmp(json_string_value(json_array_get(ev, i)), type) == 0)
			return 1;
	return 0;
}

/* Names of the fields where an existing policy differs from ours ("" when none). */
static void
policy_diff(const json_t *have, const struct setup *s, char *out, size_t outlen)
{
	const json_t *ev = json_object_get(have, "event_types");
	const json_t *targets = json_object_get(have, "targets");
	const json_t *t = json_array_get(targets, 0);
	size_t off = 0;

	out[0] = '\0';
#define DIFF(name) do { \
		(void)am_fmt(out + off, outlen - off, "%s%s", off ? ", " : "", name); \
		off += strlen(out + off); \
	} while (0)
	if (!json_is_true(json_object_get(have, "enabled")))
		DIFF("enabled");
	if (!has_event(ev, "PUSH_ARTIFACT") || !has_event(ev, "SCANNING_COMPLETED"))
		DIFF("event_types");
	if (json_array_size(targets) != 1) {
		DIFF("targets");
		return;
	}
	if (!str_is(t, "type", "http"))
		DIFF("type");
	if (!str_is(t, "address", s->address))
		DIFF("address");
	if (!str_is(t, "auth_header", s->auth_header))
		DIFF("auth_header");
	if (!json_is_false(json_object_get(t, "skip_cert_verify")))
		DIFF("skip_cert_verify");
	if (!str_is(t, "payload_format", s->payload_format))
		DIFF("payload_format");
#undef DIFF
}

/* Harbor's answer as one line; 401 gets a hint about which credentials. */
static void
report_http(const char *project, long status, const char *err)
{
	if (status == 401)
		fprintf(stderr, "project %s: Harbor rejected the admin credentials (401): check "
		    "--harbor-user and --harbor-password-file\n", project);
	else if (status == 403)
		fprintf(stderr, "project %s: the Harbor user may not manage this project's webhooks (403)\n",
		    project);
	else if (status == 404)
		fprintf(stderr, "project %s: not found in Harbor (404): %s\n", project, err);
	else
		fprintf(stderr, "project %s: %s\n", project, err);
}

/* The policy named s->name in the project (new reference) or NULL; -1 on error. */
static int
find_policy(struct harbor *h, const char *project, const char *esc, const struct setup *s,
    json_t **found)
{
	char path[1024], err[1024];
	json_t *list = NULL, *p;
	long status;
	size_t i;
	int page;

	*found = NULL;
	for (page = 1; page <= POLICY_PAGES_MAX; page++) {
		(void)am_fmt(path, sizeof(path), "/projects/%s/webhook/policies?page=%d&page_size=%d",
		    esc, page, POLICY_PAGE);
		if (harbor_call(h, "GET", path, NULL, resource_name_hdr, &status, &list,
		    err, sizeof(err)) != AM_OK) {
			fprintf(stderr, "project %s: %s\n", project, err);
			return -1;
		}
		if (status != 200 || !json_is_array(list)) {
			report_http(project, status, status == 200 ? "the policy list is not a JSON array" : err);
			json_decref(list);
			return -1;
		}
		json_array_foreach(list, i, p) {
			if (str_is(p, "name", s->name)) {
				*found = json_incref(p);
				json_decref(list);
				return 0;
			}
		}
		i = json_array_size(list);
		json_decref(list);
		list = NULL;
		if (i < POLICY_PAGE)
			break;
	}
	return 0;
}

/* Create or update the policy of one project; 0 when it is in place (or would be). */
static int
ensure_policy(struct harbor *h, const char *project, const struct setup *s)
{
	char esc[600], path[1024], err[1024], diff[256];
	json_t *have = NULL, *want = desired_policy(s);
	long status, id;
	int rc = -1;

	if (harbor_escape(project, 0, esc, sizeof(esc)) != 0) {
		fprintf(stderr, "project %s: name too long\n", project);
		goto done;
	}
	if (find_policy(h, project, esc, s, &have) != 0)
		goto done;
	if (have == NULL) {
		if (s->dry_run) {
			printf("project %s: would create webhook policy \"%s\" -> %s (%s)\n", project, s->name,
			    s->address, s->payload_format);
			rc = 0;
			goto done;
		}
		(void)am_fmt(path, sizeof(path), "/projects/%s/webhook/policies", esc);
		if (harbor_call(h, "POST", path, want, resource_name_hdr, &status, NULL, err,
		    sizeof(err)) != AM_OK || status != 201) {
			report_http(project, status, err);
			goto done;
		}
		printf("project %s: created webhook policy \"%s\" -> %s (%s)\n", project, s->name,
		    s->address, s->payload_format);
		rc = 0;
		goto done;
	}
	policy_diff(have, s, diff, sizeof(diff));
	id = (long)json_integer_value(json_object_get(have, "id"));
	if (diff[0] == '\0') {
		printf("project %s: webhook policy \"%s\" (id %ld) already up to date\n", project, s->name, id);
		rc = 0;
		goto done;
	}
	if (s->dry_run) {
		printf("project %s: would update webhook policy \"%s\" (id %ld): %s\n", project, s->name,
		    id, diff);
		rc = 0;
		goto done;
	}
	(void)am_fmt(path, sizeof(path), "/projects/%s/webhook/policies/%ld", esc, id);
	if (harbor_call(h, "PUT", path, want, resource_name_hdr, &status, NULL, err,
	    sizeof(err)) != AM_OK || status != 200) {
		report_http(project, status, err);
		goto done;
	}
	printf("project %s: updated webhook policy \"%s\" (id %ld): %s\n", project, s->name, id, diff);
	rc = 0;
done:
	json_decref(have);
	json_decref(want);
	return rc;
}

/* Robot of registry r may pull and push in project: 0 yes, -1 no (message printed). */
static int
check_robot(const struct cfg_registry *r, const char *project)
{
	struct reg_access_opts o;
	struct reg_access acc;
	char repo[600], err[1024], *password = NULL;
	int rc = -1;

	if (r->username == NULL) {
		fprintf(stderr, "project %s: registry %s has no username/password_file: archmerge "
		    "could not push\n", project, r->host);
		return -1;
	}
	if (am_read_secret(r->password_file, &password, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "project %s: %s\n", project, err);
		return -1;
	}
	(void)am_fmt(repo, sizeof(repo), "%s/archmerge-access-check", project);
	regopts_access(r, password, 0, &o);
	if (reg_access_probe(&o, repo, &acc, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "project %s: robot check failed: %s\n", project, err);
	} else if (!acc.verified) {
		printf("project %s: robot %s: credentials accepted; the registry does not say what "
		    "they allow (Basic auth), pull and push not verified\n", project, r->username);
		rc = 0;
	} else if (!acc.pull || !acc.push) {
		fprintf(stderr, "project %s: robot %s may not %s in this project: give it pull and push "
		    "on repositories\n", project, r->username,
		    !acc.pull && !acc.push ? "pull or push" : !acc.push ? "push" : "pull");
	} else {
		printf("project %s: robot %s can pull and push\n", project, r->username);
		rc = 0;
	}
	am_secret_free(password);
	return rc;
}

/* Robot of registry r may list repositories and artifacts in project (the change feed): 0 yes, -1 no. */
static int
check_robot_lists(const struct cfg_registry *r, const struct args *a, const char *project)
{
	struct harbor_opts ho;
	struct harbor *h = NULL;
	struct harbor_repo repo;
	json_t *reply = NULL;
	char err[1024], *password = NULL;
	const char *what = "repositories";
	long status = 0;
	int rc = -1;

	if (r->username == NULL || am_read_secret(r->password_file, &password, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "project %s: registry %s has no readable credentials for the list check\n",
		    project, r->host);
		return -1;
	}
	memset(&ho, 0, sizeof(ho));
	ho.url = r->harbor_url != NULL ? r->harbor_url : args_opt(a, "--harbor-url");
	ho.ca_file = args_opt(a, "--ca-file") ? args_opt(a, "--ca-file") : r->ca_file;
	ho.insecure = r->insecure;
	ho.username = r->username;
	ho.password = password;
	ho.timeout_ms = r->timeout_ms;
	if ((h = harbor_new(&ho, err, sizeof(err))) == NULL ||
	    harbor_repos_page(h, project, 1, 1, &status, &reply, err, sizeof(err)) != AM_OK)
		goto report;
	if (status == 200 && harbor_repos_parse(reply, &repo, 1, err, sizeof(err)) > 0) {
		what = "artifacts";
		json_decref(reply);
		reply = NULL;
		if (harbor_artifacts_page(h, repo.name, 1, 1, &status, &reply, err, sizeof(err)) != AM_OK)
			goto report;
		if (status == 404)       /* deleted meanwhile: the permission is not what failed */
			status = 200;
	}
report:
	if (h == NULL || status == 0)
		fprintf(stderr, "project %s: robot %s: the list check failed: %s\n", project, r->username, err);
	else if (status == 401)
		fprintf(stderr, "project %s: robot %s: Harbor rejected its credentials (401) on the REST API\n",
		    project, r->username);
	else if (status == 403)
		fprintf(stderr, "project %s: robot %s may not list %s (403): give it the list repository and "
		    "list artifact permissions (the change feed needs them)\n", project, r->username, what);
	else if (status != 200)
		fprintf(stderr, "project %s: robot %s: listing %s: %s\n", project, r->username, what, err);
	else {
		printf("project %s: robot %s can list repositories and artifacts\n", project, r->username);
		rc = 0;
	}
	json_decref(reply);
	harbor_free(h);
	am_secret_free(password);
	return rc;
}

/* The last n non-empty lines of text, each printed with a prefix. */
static void
print_tail(const char *text, int n)
{
	const char *starts[CHECK_LOG_LINES];
	const char *p = text;
	int count = 0, i;

	while (*p != '\0') {
		size_t len = strcspn(p, "\n");
		if (len > 0) {
			starts[count % CHECK_LOG_LINES] = p;
			count++;
		}
		p += len + (p[len] == '\n');
	}
	for (i = count > n ? count - n : 0; i < count; i++) {
		const char *l = starts[i % CHECK_LOG_LINES];
		printf("    | %.*s\n", (int)strcspn(l, "\n"), l);
	}
}

/* The logs of one failed delivery's failed tasks; *blocked = 1 when Harbor refused the address. */
static void
show_failed_delivery(struct harbor *h, const char *base, const json_t *ex, int *blocked)
{
	char path[1200], err[1024], *log = NULL;
	const json_t *t;
	json_t *tasks = NULL;
	json_int_t eid = json_integer_value(json_object_get(ex, "id"));
	const char *msg = json_string_value(json_object_get(ex, "status_message"));
	long status;
	size_t i;

	printf("  delivery %lld: %s, started %s%s%s\n", (long long)eid,
	    json_string_value(json_object_get(ex, "status")) ? json_string_value(json_object_get(ex, "status")) : "?",
	    json_string_value(json_object_get(ex, "start_time")) ? json_string_value(json_object_get(ex, "start_time")) : "?",
	    msg && msg[0] ? ": " : "", msg && msg[0] ? msg : "");
	if (msg != NULL && strstr(msg, BLOCKED_TEXT) != NULL)
		*blocked = 1;
	(void)am_fmt(path, sizeof(path), "%s/executions/%lld/tasks", base, (long long)eid);
	if (harbor_call(h, "GET", path, NULL, resource_name_hdr, &status, &tasks, err, sizeof(err)) != AM_OK ||
	    status != 200) {
		printf("    (its tasks could not be read: %s)\n", err);
		json_decref(tasks);
		return;
	}
	json_array_foreach(tasks, i, t) {
		const char *ts = json_string_value(json_object_get(t, "status"));
		json_int_t tid = json_integer_value(json_object_get(t, "id"));
		if (ts != NULL && strcmp(ts, "Success") == 0)
			continue;
		(void)am_fmt(path, sizeof(path), "%s/executions/%lld/tasks/%lld/log", base, (long long)eid,
		    (long long)tid);
		if (harbor_get_text(h, path, &status, &log, err, sizeof(err)) != AM_OK || log == NULL) {
			printf("    task %lld: its log could not be read: %s\n", (long long)tid, err);
			continue;
		}
		printf("    task %lld (%s), log ends:\n", (long long)tid, ts ? ts : "?");
		print_tail(log, CHECK_LOG_LINES);
		if (strstr(log, BLOCKED_TEXT) != NULL)
			*blocked = 1;
		free(log);
		log = NULL;
	}
	json_decref(tasks);
}

/* --check: the recent deliveries of the policy in one project; 0 when none failed. */
static int
check_deliveries(struct harbor *h, const char *project, const struct setup *s)
{
	char esc[600], base[800], path[1024], err[1024];
	json_t *have = NULL, *list = NULL;
	const json_t *ex;
	long status, id;
	size_t i, failed = 0, shown = 0;
	int blocked = 0, rc = -1;

	if (harbor_escape(project, 0, esc, sizeof(esc)) != 0 || find_policy(h, project, esc, s, &have) != 0)
		return -1;
	if (have == NULL) {
		fprintf(stderr, "project %s: no webhook policy \"%s\": run harbor-setup without --check to "
		    "create it, or run archmerge on the change feed alone (feed.interval_s)\n", project, s->name);
		return -1;
	}
	id = (long)json_integer_value(json_object_get(have, "id"));
	(void)am_fmt(base, sizeof(base), "/projects/%s/webhook/policies/%ld", esc, id);
	(void)am_fmt(path, sizeof(path), "%s/executions?page=1&page_size=%d&sort=-start_time", base,
	    CHECK_EXECUTIONS);
	if (harbor_call(h, "GET", path, NULL, resource_name_hdr, &status, &list, err, sizeof(err)) != AM_OK ||
	    status != 200 || !json_is_array(list)) {
		report_http(project, status, status == 200 ? "the execution list is not a JSON array" : err);
		goto done;
	}
	json_array_foreach(list, i, ex) {
		const char *st = json_string_value(json_object_get(ex, "status"));
		if (st == NULL || strcmp(st, "Success") == 0 || strcmp(st, "Running") == 0 ||
		    strcmp(st, "Pending") == 0 || strcmp(st, "Scheduled") == 0)
			continue;
		failed++;
	}
	if (json_array_size(list) == 0) {
		printf("project %s: webhook policy \"%s\" (id %ld): no deliveries yet\n", project, s->name, id);
		rc = 0;
		goto done;
	}
	if (failed == 0) {
		printf("project %s: webhook policy \"%s\" (id %ld): the last %zu deliveries succeeded\n", project,
		    s->name, id, json_array_size(list));
		rc = 0;
		goto done;
	}
	printf("project %s: webhook policy \"%s\" (id %ld): %zu of the last %zu deliveries failed\n", project,
	    s->name, id, failed, json_array_size(list));
	json_array_foreach(list, i, ex) {
		const char *st = json_string_value(json_object_get(ex, "status"));
		if (st == NULL || strcmp(st, "Success") == 0 || strcmp(st, "Running") == 0 ||
		    strcmp(st, "Pending") == 0 || strcmp(st, "Scheduled") == 0 || shown == CHECK_FAILED_LOGS)
			continue;
		show_failed_delivery(h, base, ex, &blocked);
		shown++;
	}
	if (blocked)
		printf("project %s: Harbor refuses to deliver webhooks to a private, loopback or cluster-internal "
		    "address (\"" BLOCKED_TEXT "\"): set allow_private_network_access on Harbor's core and "
		    "jobservice, or give archmerge an address Harbor accepts; meanwhile archmerge's change feed "
		    "(feed.interval_s) publishes without webhooks\n", project);
	else
		printf("project %s: see why in the task logs above; check that Harbor reaches %s and that the "
		    "policy's auth_header is archmerge's webhook secret\n", project, s->address);
done:
	json_decref(list);
	json_decref(have);
	return rc;
}

/* The registry entry for the robot check: --registry, else Harbor's host, else the only one. */
static const struct cfg_registry *
pick_registry(const struct cfg *c, const char *want, const char *harbor_url)
{
	const char *host = strstr(harbor_url, "://");
	char authority[300];
	size_t i;

	if (want != NULL)
		return cfg_registry_by_host(c, want);
	host = host ? host + 3 : harbor_url;
	(void)am_fmt(authority, sizeof(authority), "%.*s", (int)strcspn(host, "/"), host);
	for (i = 0; i < c->n_registries; i++)
		if (strcasecmp(c->registries[i].host, authority) == 0)
			return &c->registries[i];
	return c->n_registries == 1 ? &c->registries[0] : NULL;
}

static int
host_is(const char *host, size_t hlen, const char *want)
{
	return hlen == strlen(want) && strncmp(host, want, hlen) == 0;
}

/* <scheme>://<listen host>:<port><webhook_path>; -1 when listen binds every address. */
static int
derive_address(const struct cfg *c, char *out, size_t outlen)
{
	const char *colon = strrchr(c->listen, ':');
	size_t hlen = colon ? (size_t)(colon - c->listen) : 0;

	if (colon == NULL || hlen == 0 || host_is(c->listen, hlen, "0.0.0.0") ||
	    host_is(c->listen, hlen, "::") || host_is(c->listen, hlen, "[::]") ||
	    host_is(c->listen, hlen, "*"))
		return -1;
	return am_fmt(out, outlen, "%s://%s%s", c->plain_http ? "http" : "https", c->listen,
	    c->webhook_path);
}

/* The options that need no configuration; EXIT_OK or EXIT_USAGE (said on stderr). */
static int
check_usage(const struct args *a, const char **fmt)
{
	const char *addr = args_opt(a, "--webhook-url");

	if (args_opt(a, "--harbor-url") == NULL || args_opt(a, "--project") == NULL ||
	    args_opt(a, "--harbor-user") == NULL || args_opt(a, "--harbor-password-file") == NULL ||
	    a->n_pos != 0) {
		fprintf(stderr, "archmerge harbor-setup: --harbor-url, --project, --harbor-user and "
		    "--harbor-password-file are required (see --help)\n");
		return EXIT_USAGE;
	}
	*fmt = args_opt(a, "--payload-format") ? args_opt(a, "--payload-format") : "Default";
	if (strcmp(*fmt, "Default") != 0 && strcmp(*fmt, "CloudEvents") != 0) {
		fprintf(stderr, "archmerge harbor-setup: --payload-format must be Default or CloudEvents\n");
		return EXIT_USAGE;
	}
	if (addr != NULL && strncmp(addr, "https://", 8) != 0 && strncmp(addr, "http://", 7) != 0) {
		fprintf(stderr, "archmerge harbor-setup: --webhook-url must start with https:// or http://\n");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* Harbor's REST client with the admin credentials of the command line; NULL (said) on failure. */
static struct harbor *
harbor_for(const struct args *a, const struct cfg_registry *reg)
{
	struct harbor_opts ho;
	struct harbor *h;
	char err[1024], *password = NULL;

	if (am_read_secret(args_opt(a, "--harbor-password-file"), &password, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "archmerge: %s\n", err);
		return NULL;
	}
	memset(&ho, 0, sizeof(ho));
	ho.url = args_opt(a, "--harbor-url");
	ho.ca_file = args_opt(a, "--ca-file") ? args_opt(a, "--ca-file") : reg->ca_file;
	ho.insecure = 0;
	ho.username = args_opt(a, "--harbor-user");
	ho.password = password;
	ho.timeout_ms = reg->timeout_ms;
	if ((h = harbor_new(&ho, err, sizeof(err))) == NULL)
		fprintf(stderr, "archmerge: %s\n", err);
	am_secret_free(password);
	return h;
}

/*
 * The policy and the robot check of every --project (--check: the recent
 * deliveries and the list permissions instead); how many failed. feed: the
 * configuration runs the change feed, whose list calls need permissions too.
 */
static int
setup_projects(const struct args *a, struct harbor *h, const struct cfg_registry *reg,
    const struct setup *s, int feed)
{
	const char *project;
	int failed = 0, i;

	for (i = 0; (project = args_opt_nth(a, "--project", i)) != NULL; i++) {
		if (a->check) {
			failed += check_deliveries(h, project, s) != 0;
			failed += check_robot_lists(reg, a, project) != 0;
			continue;
		}
		if (ensure_policy(h, project, s) != 0)
			failed++;
		if (check_robot(reg, project) != 0)
			failed++;
		if (feed && check_robot_lists(reg, a, project) != 0)
			failed++;
	}
	return failed;
}

int
cmd_harbor_setup(const struct args *a)
{
	const char *url = args_opt(a, "--harbor-url"), *addr = args_opt(a, "--webhook-url"), *fmt;
	const struct cfg_registry *reg;
	struct harbor *h = NULL;
	struct setup s;
	struct cfg *c = NULL;
	char address[1024], err[1024], *secret = NULL;
	int rc;

	if ((rc = check_usage(a, &fmt)) != EXIT_OK)
		return rc;
	rc = EXIT_FAIL;
	if ((c = cmd_load_config(a->config, CFG_CHECK_FILES)) == NULL)
		return EXIT_FAIL;
	if (addr == NULL) {
		if (derive_address(c, address, sizeof(address)) != 0 && a->check) {
			(void)am_fmt(address, sizeof(address), "archmerge's webhook URL");
		} else if (derive_address(c, address, sizeof(address)) != 0) {
			fprintf(stderr, "archmerge harbor-setup: server.listen \"%s\" binds every address: "
			    "say how Harbor reaches archmerge with --webhook-url URL\n", c->listen);
			rc = EXIT_USAGE;
			goto done;
		}
		addr = address;
	}
	if ((reg = pick_registry(c, args_opt(a, "--registry"), url)) == NULL) {
		fprintf(stderr, "archmerge harbor-setup: no registry entry matches %s; pick one with "
		    "--registry HOST\n", url);
		rc = EXIT_USAGE;
		goto done;
	}
	if (c->webhook_secret_file != NULL &&
	    am_read_secret(c->webhook_secret_file, &secret, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "archmerge: %s\n", err);
		goto done;
	}
	if ((h = harbor_for(a, reg)) == NULL)
		goto done;
	memset(&s, 0, sizeof(s));
	s.name = args_opt(a, "--name") ? args_opt(a, "--name") : "archmerge";
	s.address = addr;
	s.auth_header = secret ? secret : "";
	s.payload_format = fmt;
	s.dry_run = a->dry_run;
	rc = setup_projects(a, h, reg, &s, c->feed_interval_s > 0 && reg->harbor_url != NULL) ?
	    EXIT_FAIL : EXIT_OK;
	if (a->dry_run && !a->check)
		printf("dry run: nothing was changed in Harbor\n");
done:
	harbor_free(h);
	am_secret_free(secret);
	cfg_free(c);
	return rc;
}
