/*
 * Unit tests: server/service/sigwait.c, the groups waiting for a child's
 * signature or for the registry's leave to read it. Every waiting group is
 * found (not only the first), a refused tag whose digest is unknown answers
 * to any digest of its repository, and a group that waits no more is forgotten.
 */
#include "tests/unit/harness.h"

#include "server/service/sigwait.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static struct group
grp(const char *version)
{
	struct group g;

	memset(&g, 0, sizeof(g));
	(void)am_fmt(g.host, sizeof(g.host), "harbor.example.com");
	(void)am_fmt(g.rule_name, sizeof(g.rule_name), "per-arch");
	(void)am_fmt(g.repo, sizeof(g.repo), "library/app");
	(void)am_fmt(g.version, sizeof(g.version), "%s", version);
	return g;
}

static void
run_tests(void)
{
	struct sigwait *w = sigwait_new();
	struct group a = grp("1.0"), b = grp("2.0"), c = grp("3.0"), out[8];
	size_t n, i;

	/* Two groups wait for the same child (a shared per-arch image). */
	sigwait_note(w, &a, "library/app", "", D1);
	sigwait_note(w, &b, "library/app", "", D1);
	sigwait_note(w, &a, "library/app", "", D1);   /* again: one entry */
	n = sigwait_find(w, "HARBOR.example.com", "library/app", "", D1, out, 8);
	CHECK(n == 2);
	CHECK(n == 2 && strcmp(out[0].version, "1.0") == 0 && strcmp(out[1].version, "2.0") == 0);
	CHECK(sigwait_find(w, "harbor.example.com", "library/app", "", D2, out, 8) == 0);
	CHECK(sigwait_find(w, "harbor.example.com", "library/other", "", D1, out, 8) == 0);
	CHECK(sigwait_find(w, "harbor.example.com", "library/app", "", D1, out, 1) == 1);

	/* Blocked by a tag whose digest is unknown: its tag, or any digest of the repository. */
	sigwait_note(w, &c, "library/app", "3.0-arm64", "");
	n = sigwait_find(w, "harbor.example.com", "library/app", "3.0-arm64", "", out, 8);
	CHECK(n == 1 && strcmp(out[0].version, "3.0") == 0);
	n = sigwait_find(w, "harbor.example.com", "library/app", "", D2, out, 8);
	CHECK(n == 1 && strcmp(out[0].version, "3.0") == 0);
	n = sigwait_find(w, "harbor.example.com", "library/app", "x", D1, out, 8);
	CHECK(n == 3);
	CHECK(sigwait_waits(w, &c) && sigwait_waits(w, &a));

	/* Forgotten once it waits no more; the others stay. */
	sigwait_forget(w, &a);
	CHECK(!sigwait_waits(w, &a) && sigwait_waits(w, &b));
	n = sigwait_find(w, "harbor.example.com", "library/app", "", D1, out, 8);
	CHECK(n == 2);
	for (i = 0; i < n; i++)
		CHECK(strcmp(out[i].version, "1.0") != 0);

	/* Bounded: many more entries than fit forget the oldest, never fail. */
	for (i = 0; i < 1000; i++) {
		struct group g = grp("9");
		(void)am_fmt(g.version, sizeof(g.version), "v%zu", i);
		sigwait_note(w, &g, "library/app", "", D2);
	}
	CHECK(!sigwait_waits(w, &b));
	n = sigwait_find(w, "harbor.example.com", "library/app", "", D2, out, 8);
	CHECK(n == 8);
	sigwait_free(w);
	sigwait_free(NULL);
}

TEST_MAIN("sigwait")
