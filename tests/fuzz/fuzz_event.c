/*
 * Fuzz target: Harbor webhook payloads. The bytes go to event_parse() in both
 * layouts (Default and CloudEvents) and through webhook_handle() with a small
 * fixed configuration, as the HTTP front would hand them over.
 *
 * The same bytes go to notify_parse() and through webhook_handle() as
 * distribution's notification envelope.
 *
 * Properties: whatever event_parse (or notify_parse) accepts passes the distribution grammar;
 * every answer is a JSON object with a known status; the log summary is one
 * printable line; every queued group is well formed.
 */
#include "tests/fuzz/fuzz.h"

#include <unistd.h>
#include <jansson.h>

#include "handlers/event.h"
#include "handlers/notify.h"
#include "handlers/webhook.h"

#define SECRET "Bearer fuzz-secret"

static const char conf_text[] =
    "server = { listen = \"127.0.0.1:8080\"; plain_http = true; allow_unauthenticated = true; };\n"
    "registries = (\n"
    "  { host = \"harbor.example.com\"; url = \"https://127.0.0.1:5000\";\n"
    "    username = \"robot$library+archmerge\"; password_file = \"/nonexistent\"; },\n"
    "  { host = \"harbor.example.com:8443\"; url = \"https://127.0.0.1:5001\"; }\n"
    ");\n"
    "rules = (\n"
    "  { name = \"version first\"; repositories = [ \"library/*\" ];\n"
    "    source = \"{repo}:{version}-{arch}\"; target = \"{repo}:{version}\";\n"
    "    architectures = [ \"amd64\", \"arm64\", \"armv7\" ]; },\n"
    "  { name = \"arch first\"; repositories = [ \"team/*\", \"x\" ];\n"
    "    source = \"{repo}:{arch}-{version}\"; target = \"{repo}:v{version}\";\n"
    "    architectures = [ \"amd64\", \"arm64\", \"riscv64\" ]; }\n"
    ");\n";

static struct cfg *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[4096], err[2048] = "";
	const char *dir = getenv("TMPDIR");
	int fd;

	(void)argc;
	(void)argv;
	(void)am_fmt(path, sizeof(path), "%s/am-fuzz-event-XXXXXX", dir ? dir : "/tmp");
	if ((fd = mkstemp(path)) < 0 || write(fd, conf_text, sizeof(conf_text) - 1) !=
	    (ssize_t)(sizeof(conf_text) - 1) || close(fd) != 0) {
		perror(path);
		exit(2);
	}
	if (cfg_load(path, 0, &cfg, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "fuzz configuration refused:\n%s\n", err);
		exit(2);
	}
	unlink(path);
	return 0;
}

static void
check_event(const struct event *ev)
{
	size_t i;

	FUZZ_ASSERT(ev->type[0] != '\0' && fuzz_log_safe(ev->type));
	if (!ev->is_push)
		return;
	FUZZ_ASSERT(name_valid_repo(ev->repo));
	FUZZ_ASSERT(ev->n_resources >= 1 && ev->n_resources <= EVENT_MAX_RESOURCES);
	for (i = 0; i < ev->n_resources; i++) {
		const struct event_resource *r = &ev->resources[i];
		FUZZ_ASSERT(r->host[0] != '\0' && fuzz_log_safe(r->host) && strchr(r->host, '/') == NULL);
		FUZZ_ASSERT(r->digest[0] == '\0' || name_valid_digest(r->digest));
		if (r->by_digest)
			FUZZ_ASSERT(r->tag[0] == '\0');
		else
			FUZZ_ASSERT(name_valid_tag(r->tag));
	}
}

static void
check_envelope(const char *body, size_t size)
{
	static struct notify_envelope nv;
	char err[256];
	size_t i;

	if (notify_parse(body, size, &nv, err, sizeof(err)) != AM_OK) {
		FUZZ_ASSERT(err[0] != '\0');
		return;
	}
	FUZZ_ASSERT(nv.n >= 1 && nv.n <= NOTIFY_MAX_EVENTS);
	for (i = 0; i < nv.n; i++) {
		const struct notify_event *e = &nv.ev[i];
		FUZZ_ASSERT(fuzz_log_safe(e->detail));
		if (e->ignored != CLAIM_R_NONE)
			continue;
		FUZZ_ASSERT(name_valid_repo(e->repo) && name_valid_tag(e->tag));
		FUZZ_ASSERT(e->host[0] != '\0' && fuzz_log_safe(e->host) && strchr(e->host, '/') == NULL);
		FUZZ_ASSERT(e->digest[0] == '\0' || name_valid_digest(e->digest));
	}
}

/* The fake queue checks every group it is handed; 1 = queued. */
static int
check_group(void *ctx, const struct group *g)
{
	const struct rule *r = cfg_rule_by_name(cfg, g->rule_name);
	char tag[RULE_MAX_TAG];

	(void)ctx;
	FUZZ_ASSERT(cfg_registry_by_host(cfg, g->host) != NULL);
	FUZZ_ASSERT(r != NULL);
	FUZZ_ASSERT(name_valid_repo(g->repo) && rule_covers(r, g->repo));
	FUZZ_ASSERT(name_valid_tag(g->version));
	/* The target tag is derived from the version later: it is valid or refused, never malformed. */
	if (tmpl_expand_tag(&r->target, g->version, NULL, tag, sizeof(tag)) == 0)
		FUZZ_ASSERT(name_valid_tag(tag));
	return 1;
}

static void
check_handle(const char *body, size_t len, const char *ct)
{
	struct webhook_env env = { cfg, SECRET, check_group, NULL, NULL, NULL, NULL, NULL, NULL };
	struct log_field f[WEBHOOK_LOG_FIELDS];
	char line[4096];
	size_t i, n;
	struct webhook_req req;
	struct webhook_resp resp;
	json_t *j;
	const char *status;

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.authorization = SECRET;
	req.content_type = ct;
	req.body = body;
	req.body_len = len;
	webhook_handle(&env, &req, &resp);
	FUZZ_ASSERT(resp.status == 200 || resp.status == 202 || resp.status == 400);
	FUZZ_ASSERT(resp.body != NULL);
	j = json_loads(resp.body, 0, NULL);
	FUZZ_ASSERT(json_is_object(j));
	status = json_string_value(json_object_get(j, "status"));
	FUZZ_ASSERT(status != NULL);
	FUZZ_ASSERT(strcmp(status, resp.status == 400 ? "rejected" :
	    resp.status == 202 ? "queued" : "ignored") == 0);
	/* The log line of the answer: one line, no raw control byte, whatever came in. */
	n = webhook_log_fields(&resp, f);
	FUZZ_ASSERT(n > 0 && f[0].str != NULL);
	log_render(line, sizeof(line), 0, LOG_INFO, "webhook", f, n);
	for (i = 0; line[i] != '\0'; i++)
		FUZZ_ASSERT((unsigned char)line[i] >= 0x20 && (unsigned char)line[i] != 0x7f);
	json_decref(j);
	free(resp.body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = fuzz_bytes(data, size), err[256];
	struct event ev;
	int layout;

	for (layout = 0; layout < 2; layout++) {
		if (event_parse(body, size, layout, &ev, err, sizeof(err)) == AM_OK)
			check_event(&ev);
		else
			FUZZ_ASSERT(err[0] != '\0');
	}
	check_envelope(body, size);
	/* webhook_handle hands the body on as a C string the HTTP front terminated. */
	free(body);
	body = fuzz_cstr(data, size);
	check_handle(body, size, "application/json");
	check_handle(body, size, "application/cloudevents+json");
	check_handle(body, size, NOTIFY_MEDIA_TYPE);
	free(body);
	return 0;
}
