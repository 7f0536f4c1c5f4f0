/*
 * Unit tests: the outbound event (server/outbox/cloudevent.c: fields,
 * signature against RFC 4231's HMAC-SHA256 vector) and the outbox on real
 * files in a temporary directory: which outcomes make deliveries, the
 * per-URL bound, reloading after a restart, leftovers of a torn write.
 * The only receiver is 127.0.0.1:1, which refuses at once.
 */
#include "tests/unit/harness.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "server/outbox/cloudevent.h"
#include "server/outbox/outbox.h"
#include "server/base/log.h"
#include "server/observe/metrics.h"

static struct asm_result
result(enum asm_outcome o, const char *target)
{
	struct asm_result r;

	memset(&r, 0, sizeof(r));
	r.outcome = o;
	r.retry_after_ms = -1;
	(void)am_fmt(r.target, sizeof(r.target), "%s", target);
	(void)am_fmt(r.digest, sizeof(r.digest), "sha256:%064d", 7);
	(void)am_fmt(r.doc.media_type, sizeof(r.doc.media_type), "%s", MT_OCI_INDEX);
	(void)am_fmt(r.present[0].arch, sizeof(r.present[0].arch), "amd64");
	(void)am_fmt(r.present[0].source, sizeof(r.present[0].source), "library/app:3.8.5-amd64");
	(void)am_fmt(r.present[0].digest, sizeof(r.present[0].digest), "sha256:%064d", 1);
	(void)am_fmt(r.present[0].platform, sizeof(r.present[0].platform), "linux/amd64");
	(void)am_fmt(r.present[1].arch, sizeof(r.present[1].arch), "arm64");
	(void)am_fmt(r.present[1].source, sizeof(r.present[1].source), "%s", "");
	(void)am_fmt(r.present[1].digest, sizeof(r.present[1].digest), "sha256:%064d", 2);
	(void)am_fmt(r.present[1].platform, sizeof(r.present[1].platform), "linux/arm64/v8");
	r.n_present = 2;
	return r;
}

static void
test_sign(void)
{
	char sig[CE_SIGNATURE_MAX];

	/* RFC 4231, test case 2 */
	cloudevent_sign("Jefe", 4, "what do ya want for nothing?", 28, sig);
	CHECK_STR(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void
test_build(void)
{
	struct asm_result r = result(ASM_PUBLISHED, "library/app:3.8.5");
	const char *tags[] = { "3.8", "latest" };
	struct ce_input in = { NOTIFY_PUBLISHED, "id-1", "2026-12-07T06:00:00.000Z", "harbor.example.com",
	    "3.8.5", "per-arch tags", &r, tags, 2, 1234 };
	char *body = cloudevent_build(&in), id[40], now[32];
	json_t *ev = json_loads(body, 0, NULL), *data = json_object_get(ev, "data"), *kid;

	CHECK_STR(json_string_value(json_object_get(ev, "specversion")), "1.0");
	CHECK_STR(json_string_value(json_object_get(ev, "id")), "id-1");
	CHECK_STR(json_string_value(json_object_get(ev, "type")), "io.archmerge.index.published");
	CHECK_STR(json_string_value(json_object_get(ev, "source")), "//harbor.example.com/library/app");
	CHECK_STR(json_string_value(json_object_get(ev, "subject")), "3.8.5");
	CHECK_STR(json_string_value(json_object_get(ev, "datacontenttype")), "application/json");
	CHECK_STR(json_string_value(json_object_get(data, "repository")), "library/app");
	CHECK_STR(json_string_value(json_object_get(data, "tag")), "3.8.5");
	CHECK_STR(json_string_value(json_object_get(data, "digest")), r.digest);
	CHECK_STR(json_string_value(json_object_get(data, "media_type")), MT_OCI_INDEX);
	CHECK_STR(json_string_value(json_object_get(data, "rule")), "per-arch tags");
	CHECK(json_integer_value(json_object_get(data, "since_first_webhook_ms")) == 1234);
	CHECK(json_array_size(json_object_get(data, "tags")) == 2);
	CHECK_STR(json_string_value(json_array_get(json_object_get(data, "tags"), 1)), "latest");
	kid = json_array_get(json_object_get(data, "children"), 0);
	CHECK_STR(json_string_value(json_object_get(kid, "platform")), "linux/amd64");
	CHECK_STR(json_string_value(json_object_get(kid, "source_repository")), "library/app");
	CHECK_STR(json_string_value(json_object_get(kid, "source_tag")), "3.8.5-amd64");
	kid = json_array_get(json_object_get(data, "children"), 1);
	CHECK_STR(json_string_value(json_object_get(kid, "source_tag")), "");   /* from the target */
	CHECK(json_object_get(kid, "rejected") == NULL);
	json_decref(ev);
	free(body);
	/* Ids are fresh and UUID shaped; time is UTC with milliseconds. */
	cloudevent_new_id(id, sizeof(id));
	CHECK(strlen(id) == 36 && id[14] == '4' && id[8] == '-');
	cloudevent_now(now, sizeof(now));
	CHECK(strlen(now) == 24 && now[23] == 'Z' && now[10] == 'T');
	{
		static struct asm_result k;   /* static: large */

		k.outcome = ASM_WAITING;
		k.n_blocked = 0;
		CHECK(cloudevent_kind(&k) == 0);         /* an architecture not pushed yet: no event */
		k.n_blocked = 1;
		CHECK(cloudevent_kind(&k) == NOTIFY_BLOCKED);   /* a child Harbor's policy holds back */
		k.outcome = ASM_REFUSED;
		CHECK(cloudevent_kind(&k) == NOTIFY_REFUSED);
	}
}

static char dir[64], sub[96];

static size_t
files(const char *prefix)
{
	DIR *d = opendir(sub);
	struct dirent *de;
	size_t n = 0;

	while (d != NULL && (de = readdir(d)) != NULL)
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	if (d != NULL)
		closedir(d);
	return n;
}

static void
rm_records(void)
{
	DIR *d = opendir(sub);
	struct dirent *de;
	char path[256];

	while (d != NULL && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && am_fmt(path, sizeof(path), "%s/%s", sub, de->d_name) == 0)
			CHECK(unlink(path) == 0);
	if (d != NULL)
		closedir(d);
}

/* The body of the one record file in sub (caller frees json). */
static json_t *
only_body(void)
{
	DIR *d = opendir(sub);
	struct dirent *de;
	char path[256];
	json_t *rec = NULL, *body = NULL;

	while (d != NULL && (de = readdir(d)) != NULL)
		if (de->d_name[0] == '1' && am_fmt(path, sizeof(path), "%s/%s", sub, de->d_name) == 0)
			rec = json_load_file(path, 0, NULL);
	if (d != NULL)
		closedir(d);
	if (rec != NULL)
		body = json_loads(json_string_value(json_object_get(rec, "body")), 0, NULL);
	json_decref(rec);
	return body;
}

static void
test_outbox(void)
{
	struct cfg c;
	struct cfg_notify t;
	struct group g;
	struct asm_result r;
	struct outbox *o = NULL;
	char err[512], path[256];
	json_t *body;
	char *m;
	FILE *f;

	(void)am_fmt(dir, sizeof(dir), "/tmp/am-outbox-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	(void)am_fmt(sub, sizeof(sub), "%s/outbox", dir);
	memset(&c, 0, sizeof(c));
	memset(&t, 0, sizeof(t));
	t.url = "http://127.0.0.1:1/hook";
	t.secret_file = "/nonexistent/secret";   /* every attempt fails before connecting anyway */
	t.events = NOTIFY_PUBLISHED;
	t.timeout_ms = 1000;
	t.retry_initial_ms = 60000;   /* one attempt, then quiet for the test's length */
	t.retry_max_ms = 60000;
	t.max_pending = 2;
	t.max_age_s = 3600;
	c.notify = &t;
	c.n_notify = 1;
	memset(&g, 0, sizeof(g));
	(void)am_fmt(g.host, sizeof(g.host), "harbor.example.com");
	(void)am_fmt(g.repo, sizeof(g.repo), "library/app");
	(void)am_fmt(g.version, sizeof(g.version), "3.8.5");
	(void)am_fmt(g.rule_name, sizeof(g.rule_name), "gone");   /* no such rule: no extra tags */

	CHECK(outbox_open(dir, &o, err, sizeof(err)) == AM_OK);
	if (o == NULL)
		return;
	outbox_assembly(NULL, &c, &g, &r, 0);   /* no outbox (not serving): nothing */
	/* Refused is not wanted here; waiting remembers the first sighting. */
	r = result(ASM_REFUSED, "library/app:3.8.5");
	outbox_assembly(o, &c, &g, &r, 5);
	r = result(ASM_WAITING, "library/app:3.8.5");
	outbox_assembly(o, &c, &g, &r, 5);
	CHECK(outbox_pending(o) == 0 && files("1") == 0);
	usleep(20000);
	r = result(ASM_PUBLISHED, "library/app:3.8.5");
	outbox_assembly(o, &c, &g, &r, 5);
	CHECK(outbox_pending(o) == 1 && files("1") == 1);
	body = only_body();
	CHECK(body != NULL);
	/* measured from the waiting run, not the 5 ms of this one */
	CHECK(json_integer_value(json_object_get(json_object_get(body, "data"), "since_first_webhook_ms")) >= 20);
	CHECK(json_array_size(json_object_get(json_object_get(body, "data"), "tags")) == 0);
	json_decref(body);
	/* Two more for the same URL: the bound keeps 2, the oldest one not in flight goes. */
	outbox_assembly(o, &c, &g, &r, 5);
	outbox_assembly(o, &c, &g, &r, 5);
	CHECK(outbox_pending(o) == 2 && files("1") == 2);
	m = metrics_render();
	CHECK(strstr(m, "archmerge_notify_deliveries_total{outcome=\"dropped\"} 1") != NULL);
	CHECK(strstr(m, "archmerge_notify_pending 2") != NULL);
	free(m);
	outbox_free(o);
	o = NULL;
	CHECK(files("1") == 2);   /* kept for the next start */

	/* A torn write's leftover is removed; a foreign file is left alone. */
	(void)am_fmt(path, sizeof(path), "%s/.tmp-1-x.json", sub);
	f = fopen(path, "w");
	CHECK(f != NULL && fputs("{\"url\":", f) >= 0 && fclose(f) == 0);
	(void)am_fmt(path, sizeof(path), "%s/2-foreign.json", sub);
	f = fopen(path, "w");
	CHECK(f != NULL && fputs("[]", f) >= 0 && fclose(f) == 0);
	CHECK(outbox_open(dir, &o, err, sizeof(err)) == AM_OK);
	CHECK(o != NULL && outbox_pending(o) == 2);
	CHECK(files(".tmp-") == 0 && files("2-") == 1);
	/* The same refusal again is not news; another one is, and so is one after a publication. */
	t.events = NOTIFY_REFUSED;
	t.max_pending = 10;
	r = result(ASM_REFUSED, "library/app:3.8.5");
	(void)am_fmt(r.detail, sizeof(r.detail), "arm64 is an amd64 image");
	outbox_assembly(o, &c, &g, &r, 1);
	outbox_assembly(o, &c, &g, &r, 1);
	CHECK(outbox_pending(o) == 3);
	(void)am_fmt(r.detail, sizeof(r.detail), "arm64 is a Helm chart");
	outbox_assembly(o, &c, &g, &r, 1);
	CHECK(outbox_pending(o) == 4);
	r.outcome = ASM_FAILED;              /* a registry fault in between changes nothing */
	outbox_assembly(o, &c, &g, &r, 1);
	r.outcome = ASM_REFUSED;
	outbox_assembly(o, &c, &g, &r, 1);
	CHECK(outbox_pending(o) == 4);
	r.outcome = ASM_PUBLISHED;           /* not wanted by this endpoint, but resets */
	outbox_assembly(o, &c, &g, &r, 1);
	r.outcome = ASM_REFUSED;
	outbox_assembly(o, &c, &g, &r, 1);
	CHECK(outbox_pending(o) == 5);
	/* A child held back by Harbor's policy: one "blocked" event, not one per backoff retry. */
	t.events = NOTIFY_BLOCKED;
	r.outcome = ASM_WAITING;
	r.n_blocked = 1;
	(void)am_fmt(r.detail, sizeof(r.detail), "missing arm64 (blocked by the cosign policy)");
	outbox_assembly(o, &c, &g, &r, 1);
	outbox_assembly(o, &c, &g, &r, 1);
	outbox_assembly(o, &c, &g, &r, 1);
	CHECK(outbox_pending(o) == 6);
	r.n_blocked = 0;                     /* an architecture simply missing: no event */
	outbox_assembly(o, &c, &g, &r, 1);
	CHECK(outbox_pending(o) == 6);
	outbox_free(o);
	CHECK(unlink(path) == 0);
	rm_records();
	CHECK(rmdir(sub) == 0 && rmdir(dir) == 0);
}

static void
run_tests(void)
{
	log_set_level(LOG_ERROR);
	test_sign();
	test_build();
	test_outbox();
}

TEST_MAIN("outbox")
