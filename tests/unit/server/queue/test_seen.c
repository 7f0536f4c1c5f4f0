/* The set of pushes webhooks announced: exact keys, bounded, oldest forgotten first. */
#include "tests/unit/harness.h"
#include "server/queue/seen.h"

#define D "sha256:aa"

TEST_MAIN("seen")
static void
run_tests(void)
{
	struct seen *s = seen_new(2);

	CHECK(!seen_has(s, "h", "library/a", "1-amd64", D));
	seen_note(s, "h", "library/a", "1-amd64", D);
	CHECK(seen_has(s, "h", "library/a", "1-amd64", D));
	CHECK(seen_has(s, "H", "library/a", "1-amd64", D));       /* host: any case */
	CHECK(!seen_has(s, "h", "library/a", "1-amd64", "sha256:bb"));   /* another digest */
	CHECK(!seen_has(s, "h", "library/a", "1-arm64", D));
	seen_note(s, "h", "library/a", "1-amd64", D);               /* again: no second slot */
	seen_note(s, "h", "library/b", "1-amd64", D);
	CHECK(seen_has(s, "h", "library/a", "1-amd64", D));
	seen_note(s, "h", "library/c", "1-amd64", D);               /* full: the oldest goes */
	CHECK(!seen_has(s, "h", "library/a", "1-amd64", D));
	CHECK(seen_has(s, "h", "library/c", "1-amd64", D));
	seen_note(NULL, "h", "r", "t", D);
	CHECK(!seen_has(NULL, "h", "r", "t", D));
	seen_free(s);
	seen_free(NULL);
}
