/*
 * Unit tests: server/status.c -- the status recorder: waiting groups enter
 * and leave, publications and failures are kept newest first, every table
 * stays bounded, and the JSON view carries what /status promises.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <time.h>
#include <jansson.h>

#include "server/observe/status.h"

static struct group
grp(const char *repo, const char *version)
{
	struct group g;

	memset(&g, 0, sizeof(g));
	(void)am_fmt(g.host, sizeof(g.host), "harbor.example.com");
	(void)am_fmt(g.repo, sizeof(g.repo), "%s", repo);
	(void)am_fmt(g.version, sizeof(g.version), "%s", version);
	return g;
}

static void
note(struct status_rec *s, const char *repo, const char *version, enum asm_outcome o,
    const char *digest, const char *detail)
{
	struct group g = grp(repo, version);
	struct asm_result r;

	memset(&r, 0, sizeof(r));
	r.outcome = o;
	(void)am_fmt(r.target, sizeof(r.target), "%s:%s", repo, version);
	(void)am_fmt(r.digest, sizeof(r.digest), "%s", digest ? digest : "");
	(void)am_fmt(r.detail, sizeof(r.detail), "%s", detail ? detail : "");
	status_record(s, "7", &g, "per-arch", &r, 12);
}

static const char *
s_at(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "(none)";
}

/* A group held up by the registry's policy: /status names the child, the policy and Harbor's words. */
static void
test_blocked(void)
{
	struct status_rec *s = status_new();
	struct group g = grp("library/app", "1.0");
	struct asm_result r;
	json_t *root, *w, *b;

	memset(&r, 0, sizeof(r));
	r.outcome = ASM_WAITING;
	(void)am_fmt(r.target, sizeof(r.target), "library/app:1.0");
	(void)am_fmt(r.detail, sizeof(r.detail), "missing amd64; arm64 blocked by Harbor's cosign policy: "
	    "library/app:1.0-arm64: The image is not signed by cosign.");
	r.n_blocked = 1;
	r.blocked[0].policy = ASM_POLICY_COSIGN;
	(void)am_fmt(r.blocked[0].arch, sizeof(r.blocked[0].arch), "arm64");
	(void)am_fmt(r.blocked[0].repo, sizeof(r.blocked[0].repo), "library/app");
	(void)am_fmt(r.blocked[0].tag, sizeof(r.blocked[0].tag), "1.0-arm64");
	(void)am_fmt(r.blocked[0].message, sizeof(r.blocked[0].message), "The image is not signed by cosign.");
	status_record(s, "1", &g, "per-arch", &r, 5);
	root = status_json(s);
	w = json_array_get(json_object_get(root, "waiting"), 0);
	CHECK(json_array_size(json_object_get(w, "missing")) == 1);
	CHECK_STR(json_string_value(json_array_get(json_object_get(w, "missing"), 0)), "amd64");
	b = json_array_get(json_object_get(w, "blocked"), 0);
	CHECK_STR(s_at(b, "arch"), "arm64");
	CHECK_STR(s_at(b, "policy"), "cosign");
	CHECK_STR(s_at(b, "tag"), "1.0-arm64");
	CHECK_STR(s_at(b, "digest"), "");
	CHECK_STR(s_at(b, "message"), "The image is not signed by cosign.");
	json_decref(root);
	/* Published: no longer waiting, nothing blocked anywhere. */
	r.outcome = ASM_PUBLISHED;
	r.n_blocked = 0;
	status_record(s, "2", &g, "per-arch", &r, 5);
	root = status_json(s);
	CHECK(json_array_size(json_object_get(root, "waiting")) == 0);
	json_decref(root);
	status_free(s);
}

static void
test_lifecycle(void)
{
	struct status_rec *s = status_new();
	json_t *j, *w, *p, *f;

	note(s, "library/a", "1.0", ASM_WAITING, NULL, "missing arm64,riscv64");
	note(s, "library/a", "1.0", ASM_WAITING, NULL, "missing arm64");
	note(s, "library/b", "2.0", ASM_WAITING, NULL, "missing amd64");
	note(s, "library/c", "3.0", ASM_PUBLISHED, "sha256:cc", NULL);
	note(s, "library/d", "4.0", ASM_REFUSED, NULL, "image config says linux/amd64 but the tag says arm64");
	note(s, "library/a", "1.0", ASM_FAILED, NULL, "PUT /v2/library/a/manifests/1.0: 503 UNAVAILABLE");
	note(s, "library/e", "5.0", ASM_DRY_RUN, "sha256:ee", NULL);
	CHECK(status_waiting_count(s) == 2);

	j = status_json(s);
	w = json_object_get(j, "waiting");
	CHECK(json_array_size(w) == 2);
	/* a failure does not take a group off the waiting list; arrival order is kept */
	CHECK_STR(s_at(json_array_get(w, 0), "group"), "harbor.example.com/library/a:1.0");
	CHECK_STR(s_at(json_array_get(w, 0), "detail"), "missing arm64");
	CHECK(json_array_size(json_object_get(json_array_get(w, 0), "missing")) == 1);
	CHECK(json_integer_value(json_object_get(json_array_get(w, 0), "checks")) == 2);
	CHECK_STR(s_at(json_array_get(w, 0), "rule"), "per-arch");
	CHECK_STR(s_at(json_array_get(w, 0), "target"), "library/a:1.0");
	CHECK(json_is_string(json_object_get(json_array_get(w, 0), "since")));
	CHECK_STR(json_string_value(json_array_get(json_object_get(json_array_get(w, 1), "missing"), 0)),
	    "amd64");
	p = json_object_get(j, "published");
	CHECK(json_array_size(p) == 1);
	CHECK_STR(s_at(json_array_get(p, 0), "digest"), "sha256:cc");
	CHECK_STR(s_at(json_array_get(p, 0), "job"), "7");
	CHECK(json_integer_value(json_object_get(json_array_get(p, 0), "ms")) == 12);
	f = json_object_get(j, "failures");
	CHECK(json_array_size(f) == 2);
	/* newest first */
	CHECK_STR(s_at(json_array_get(f, 0), "outcome"), "failed");
	CHECK_STR(s_at(json_array_get(f, 0), "error"), "PUT /v2/library/a/manifests/1.0: 503 UNAVAILABLE");
	CHECK_STR(s_at(json_array_get(f, 1), "outcome"), "refused");
	CHECK(json_integer_value(json_object_get(json_object_get(j, "counts"), "waiting")) == 3);
	CHECK(json_integer_value(json_object_get(json_object_get(j, "counts"), "published")) == 1);
	json_decref(j);

	/* published, unchanged and refused take a group off the list */
	note(s, "library/a", "1.0", ASM_PUBLISHED, "sha256:aa", NULL);
	note(s, "library/b", "2.0", ASM_UNCHANGED, "sha256:bb", NULL);
	CHECK(status_waiting_count(s) == 0);
	note(s, "library/b", "2.0", ASM_WAITING, NULL, "missing amd64");
	note(s, "library/b", "2.0", ASM_REFUSED, NULL, "bad");
	CHECK(status_waiting_count(s) == 0);
	j = status_json(s);
	CHECK_STR(s_at(json_array_get(json_object_get(j, "published"), 0), "digest"), "sha256:aa");
	json_decref(j);
	status_free(s);
}

/* The age alerting reads: the group waiting longest, measured from its first wait. */
static void
test_oldest_waiting(void)
{
	struct status_rec *s = status_new();
	time_t now = time(NULL);
	double age;

	CHECK(status_oldest_waiting_seconds(s, now + 100) == 0);
	note(s, "library/a", "1.0", ASM_WAITING, NULL, "missing arm64");
	age = status_oldest_waiting_seconds(s, now + 100);
	CHECK(age >= 98 && age <= 100);
	/* a later group and another check of the first leave the oldest age alone */
	note(s, "library/b", "2.0", ASM_WAITING, NULL, "missing amd64");
	note(s, "library/a", "1.0", ASM_WAITING, NULL, "missing arm64");
	CHECK(status_oldest_waiting_seconds(s, now + 100) == age);
	/* a clock that went back reads 0, never a negative age */
	CHECK(status_oldest_waiting_seconds(s, now - 1000) == 0);
	/* once published it no longer counts; the other one still waits */
	note(s, "library/a", "1.0", ASM_PUBLISHED, "sha256:aa", NULL);
	CHECK(status_oldest_waiting_seconds(s, now + 100) >= 98);
	note(s, "library/b", "2.0", ASM_REFUSED, NULL, "bad");
	CHECK(status_oldest_waiting_seconds(s, now + 100) == 0);
	status_free(s);
}

static void
test_bounds(void)
{
	struct status_rec *s = status_new();
	char repo[64], digest[80];
	json_t *j, *p;
	int i;

	for (i = 0; i < STATUS_MAX_RECENT + 10; i++) {
		(void)am_fmt(repo, sizeof(repo), "library/r%d", i);
		(void)am_fmt(digest, sizeof(digest), "sha256:%d", i);
		note(s, repo, "1", ASM_PUBLISHED, digest, NULL);
	}
	for (i = 0; i < STATUS_MAX_WAITING + 40; i++) {
		(void)am_fmt(repo, sizeof(repo), "library/w%d", i);
		note(s, repo, "1", ASM_WAITING, NULL, "missing arm64");
	}
	CHECK(status_waiting_count(s) == STATUS_MAX_WAITING);
	j = status_json(s);
	/* a group left out of the full list is counted, not dropped silently */
	CHECK(json_integer_value(json_object_get(j, "waiting_forgotten")) == 40);
	CHECK(json_array_size(json_object_get(j, "waiting")) == STATUS_MAX_WAITING);
	CHECK_STR(s_at(json_array_get(json_object_get(j, "waiting"), STATUS_MAX_WAITING - 1), "group"),
	    "harbor.example.com/library/w255:1");
	p = json_object_get(j, "published");
	CHECK(json_array_size(p) == STATUS_MAX_RECENT);
	(void)am_fmt(digest, sizeof(digest), "sha256:%d", STATUS_MAX_RECENT + 9);
	CHECK_STR(s_at(json_array_get(p, 0), "digest"), digest);
	(void)am_fmt(digest, sizeof(digest), "sha256:%d", 10);
	CHECK_STR(s_at(json_array_get(p, STATUS_MAX_RECENT - 1), "digest"), digest);
	json_decref(j);
	/* strings that are not UTF-8 still give valid JSON */
	note(s, "library/x", "1", ASM_FAILED, NULL, "registry said \xff\xfe");
	j = status_json(s);
	CHECK_STR(s_at(json_array_get(json_object_get(j, "failures"), 0), "error"), "registry said ??");
	json_decref(j);
	status_free(s);
	status_free(NULL);
}

/* What the status page needs: present architectures, children, webhook to publish. */
static void
test_present_children_and_hint(void)
{
	struct status_rec *s = status_new();
	struct group g = grp("library/p", "1.0");
	struct asm_result r;
	json_t *j, *w, *p, *c;
	int i;

	memset(&r, 0, sizeof(r));
	r.outcome = ASM_WAITING;
	(void)am_fmt(r.target, sizeof(r.target), "library/p:1.0");
	(void)am_fmt(r.detail, sizeof(r.detail), "missing arm64");
	r.n_present = 1;
	(void)am_fmt(r.present[0].arch, sizeof(r.present[0].arch), "amd64");
	(void)am_fmt(r.present[0].source, sizeof(r.present[0].source), "library/p:1.0-amd64");
	(void)am_fmt(r.present[0].digest, sizeof(r.present[0].digest), "sha256:a1");
	(void)am_fmt(r.present[0].platform, sizeof(r.present[0].platform), "linux/amd64");
	for (i = 0; i < 3; i++)   /* replaced each time, never leaked (ASan run) */
		status_record(s, "1", &g, "per-arch", &r, 5);
	j = status_json(s);
	w = json_array_get(json_object_get(j, "waiting"), 0);
	c = json_array_get(json_object_get(w, "present"), 0);
	CHECK_STR(s_at(c, "arch"), "amd64");
	CHECK_STR(s_at(c, "platform"), "linux/amd64");
	CHECK_STR(s_at(c, "digest"), "sha256:a1");
	CHECK_STR(s_at(c, "source"), "library/p:1.0-amd64");
	CHECK(json_integer_value(json_object_get(j, "uptime_seconds")) >= 0);
	CHECK(json_is_string(json_object_get(j, "started")));
	json_decref(j);

	status_hint(s, &g);
	r.outcome = ASM_PUBLISHED;
	r.n_present = 2;
	r.present[1] = r.present[0];
	(void)am_fmt(r.present[1].arch, sizeof(r.present[1].arch), "arm64");
	r.tags_pushed = 2;
	status_record(s, "2", &g, "per-arch", &r, 5);
	j = status_json(s);
	CHECK(json_array_size(json_object_get(j, "waiting")) == 0);
	p = json_array_get(json_object_get(j, "published"), 0);
	CHECK(json_array_size(json_object_get(p, "children")) == 2);
	CHECK(json_integer_value(json_object_get(p, "tags_pushed")) == 2);
	CHECK(json_integer_value(json_object_get(p, "webhook_to_publish_ms")) >= 0);
	json_decref(j);
	/* A second publication without a webhook in between reports no such time. */
	status_record(s, "3", &g, "per-arch", &r, 5);
	j = status_json(s);
	p = json_array_get(json_object_get(j, "published"), 0);
	CHECK(json_object_get(p, "webhook_to_publish_ms") == NULL);
	json_decref(j);
	status_free(s);
}

static void
run_tests(void)
{
	test_lifecycle();
	test_blocked();
	test_bounds();
	test_oldest_waiting();
	test_present_children_and_hint();
}

TEST_MAIN("status")
