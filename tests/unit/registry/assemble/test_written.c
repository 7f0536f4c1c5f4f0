/*
 * Unit tests: the set of archmerge's own recent writes (registry/assemble/written.c).
 * An entry answers for one event only and for a bounded time: a tag moved away
 * and back to a digest archmerge once wrote is a push like any other.
 */
#include "tests/unit/harness.h"

#include <unistd.h>

#include "registry/assemble/written.h"

static const char *const D1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
static const char *const D2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/* Issue 22.5: the event of an own write is recognised once, then the entry is gone. */
static void
test_taken_once(void)
{
	struct written *w = written_new(8);

	written_note(w, "h", "library/app", "1.0", D1);
	CHECK(!written_take(w, "h", "library/app", "1.0", D2));      /* another digest */
	CHECK(!written_take(w, "h", "library/app", "1.1", D1));      /* another tag */
	CHECK(!written_take(w, "other", "library/app", "1.0", D1));  /* another registry */
	CHECK(written_take(w, "h", "library/app", "1.0", D1));       /* archmerge's own push */
	/* The tag moves to D2 (a user), then back to D1 (a user again): both are pushes. */
	CHECK(!written_take(w, "h", "library/app", "1.0", D2));
	CHECK(!written_take(w, "h", "library/app", "1.0", D1));
	/* Two PUTs of the same bytes (two runs, two replicas): two events to recognise. */
	written_note(w, "h", "library/app", "1.0", D1);
	written_note(w, "h", "library/app", "1.0", D1);
	CHECK(written_take(w, "h", "library/app", "1.0", D1));
	CHECK(written_take(w, "h", "library/app", "1.0", D1));
	CHECK(!written_take(w, "h", "library/app", "1.0", D1));
	/* NULL set, missing parts: nothing noted, nothing found. */
	written_note(NULL, "h", "r", "t", D1);
	CHECK(!written_take(NULL, "h", "r", "t", D1));
	written_note(w, "h", "r", "t", "");
	CHECK(!written_take(w, "h", "r", "t", ""));
	written_free(w);
	written_free(NULL);
}

/* Bounded in number: the oldest entries drop out first. */
static void
test_bounded(void)
{
	struct written *w = written_new(4);

	written_note(w, "h", "r", "0", D1);
	written_note(w, "h", "r", "1", D1);
	written_note(w, "h", "r", "2", D1);
	written_note(w, "h", "r", "3", D1);
	written_note(w, "h", "r", "4", D1);       /* pushes "0" out */
	CHECK(!written_take(w, "h", "r", "0", D1));
	CHECK(written_take(w, "h", "r", "1", D1));
	CHECK(written_take(w, "h", "r", "4", D1));
	written_free(w);
}

/* Bounded in time: a note whose event never came (a PUT that failed) expires. */
static void
test_expires(void)
{
	struct written *w = written_new_ttl(8, 50);

	written_note(w, "h", "r", "1.0", D1);
	written_note(w, "h", "r", "1.1", D1);
	CHECK(written_take(w, "h", "r", "1.0", D1));
	usleep(80 * 1000);
	CHECK(!written_take(w, "h", "r", "1.1", D1));
	written_note(w, "h", "r", "1.1", D1);     /* a fresh note counts again */
	CHECK(written_take(w, "h", "r", "1.1", D1));
	written_free(w);
}

static void
run_tests(void)
{
	test_taken_once();
	test_bounded();
	test_expires();
}

TEST_MAIN("written")
