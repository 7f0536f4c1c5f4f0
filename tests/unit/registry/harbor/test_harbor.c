/* Unit tests of the Harbor REST helpers that need no server. */
#include "tests/unit/harness.h"
#include "registry/harbor/harbor.h"

TEST_MAIN("harbor")
static void
run_tests(void)
{
	char out[64];

	CHECK(harbor_escape("library", 0, out, sizeof(out)) == 0);
	CHECK_STR(out, "library");
	CHECK(harbor_escape("team/app", 0, out, sizeof(out)) == 0);
	CHECK_STR(out, "team%2Fapp");
	CHECK(harbor_escape("team/app", 1, out, sizeof(out)) == 0);
	CHECK_STR(out, "team%252Fapp");
	CHECK(harbor_escape("robot$x+y", 0, out, sizeof(out)) == 0);
	CHECK_STR(out, "robot%24x%2By");
	CHECK(harbor_escape("a/b/c/d/e/f/g/h", 1, out, 8) == -1);
	{
		struct harbor_opts o = { "ftp://x", NULL, 0, NULL, NULL, 0 };
		char err[128];
		CHECK(harbor_new(&o, err, sizeof(err)) == NULL);
		o.url = "https://127.0.0.1:1/";
		struct harbor *h = harbor_new(&o, err, sizeof(err));
		long status = 0;
		CHECK(h != NULL);
		CHECK(harbor_call(h, "GET", "/ping", NULL, NULL, &status, NULL, err, sizeof(err)) == AM_ETRANSIENT);
		harbor_free(h);
	}
}
