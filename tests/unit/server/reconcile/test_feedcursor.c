/* The change feed's cursor: survives a reopen, never moves back, remembers the pushes at its time. */
#include "tests/unit/harness.h"
#include "server/reconcile/feedcursor.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

TEST_MAIN("feedcursor")
static void
run_tests(void)
{
	char dir[] = "/tmp/am-feedcursor-XXXXXX", path[256], err[512];
	struct feedcursor *c = NULL;
	int known = -1;

	CHECK(mkdtemp(dir) != NULL);
	(void)snprintf(path, sizeof(path), "%s/" FEEDCURSOR_FILE, dir);

	/* no file: empty */
	CHECK(feedcursor_open(dir, &c, err, sizeof(err)) == AM_OK);
	CHECK(feedcursor_get(c, "h", "library", &known) == 0 && known == 0);
	CHECK(feedcursor_save(c, err, sizeof(err)) == AM_OK);          /* nothing changed: no file */
	CHECK(access(path, F_OK) != 0);

	feedcursor_advance(c, "h", "library", 1000, "library/a:1-amd64@sha256:aa");
	feedcursor_advance(c, "h", "library", 2000, "library/a:1-arm64@sha256:bb");
	feedcursor_advance(c, "h", "library", 2000, "library/b:1-amd64@sha256:cc");
	feedcursor_advance(c, "h", "library", 1500, "library/c:1-amd64@sha256:dd");  /* older: ignored */
	feedcursor_advance(c, "h", "other", 500, NULL);
	CHECK(feedcursor_get(c, "h", "library", &known) == 2000 && known == 1);
	CHECK(feedcursor_get(c, "H", "library", &known) == 2000 && known == 1);     /* hosts: any case */
	CHECK(feedcursor_at(c, "h", "library", "library/a:1-arm64@sha256:bb"));
	CHECK(feedcursor_at(c, "h", "library", "library/b:1-amd64@sha256:cc"));
	CHECK(!feedcursor_at(c, "h", "library", "library/a:1-amd64@sha256:aa"));  /* an earlier time */
	CHECK(!feedcursor_at(c, "h", "library", "library/c:1-amd64@sha256:dd"));
	CHECK(feedcursor_save(c, err, sizeof(err)) == AM_OK);
	feedcursor_free(c);

	/* a restart reads the same cursor */
	c = NULL;
	CHECK(feedcursor_open(dir, &c, err, sizeof(err)) == AM_OK);
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK(feedcursor_get(c, "h", "library", &known) == 2000 && known == 1);
		CHECK(feedcursor_get(c, "h", "other", &known) == 500 && known == 1);
		CHECK(feedcursor_get(c, "h2", "library", &known) == 0 && known == 0);
		CHECK(feedcursor_at(c, "h", "library", "library/b:1-amd64@sha256:cc"));
		/* moving on forgets the pushes of the old time */
		feedcursor_advance(c, "h", "library", 3000, "library/b:2-amd64@sha256:ee");
		CHECK(!feedcursor_at(c, "h", "library", "library/b:1-amd64@sha256:cc"));
		CHECK(feedcursor_save(c, err, sizeof(err)) == AM_OK);
		feedcursor_free(c);
	}
	CHECK(access(path, F_OK) == 0);
	(void)snprintf(err, sizeof(err), "%s.tmp", path);
	CHECK(access(err, F_OK) != 0);                                 /* renamed, nothing left over */

	/*
	 * The repositories read at their update_time: read again only when it
	 * moves; a whole listing's newest update raises where the next one stops.
	 */
	c = NULL;
	CHECK(feedcursor_open(dir, &c, err, sizeof(err)) == AM_OK && c != NULL);
	if (c != NULL) {
		long long since = feedcursor_get(c, "h", "library", &known);
		CHECK(since == 3000 && known == 1);
		CHECK(feedcursor_list_floor(c, "h", "library", since) == 3000);     /* nothing listed yet */
		feedcursor_look(c, "h", "library", "library/a", 50000);
		feedcursor_look(c, "h", "nocursor", "library/a", 50000);           /* no cursor: ignored */
		CHECK(feedcursor_looked(c, "h", "library", "library/a", 50000));
		CHECK(feedcursor_looked(c, "H", "library", "library/a", 50000));
		CHECK(!feedcursor_looked(c, "h", "library", "library/a", 50001));  /* pulled or pushed since */
		CHECK(!feedcursor_looked(c, "h", "library", "library/b", 50000));
		CHECK(!feedcursor_looked(c, "h", "nocursor", "library/a", 50000));
		feedcursor_listed(c, "h", "library", 50000);
		CHECK(feedcursor_list_floor(c, "h", "library", since) == 50000 - FEEDCURSOR_REPO_SLACK_MS);
		CHECK(feedcursor_list_floor(c, "h", "library", 60000) == 60000);   /* a newer cursor wins */
		feedcursor_listed(c, "h", "library", 40000);                        /* never backwards */
		CHECK(feedcursor_list_floor(c, "h", "library", since) == 50000 - FEEDCURSOR_REPO_SLACK_MS);
		feedcursor_look(c, "h", "library", "library/a", 70000);
		CHECK(feedcursor_looked(c, "h", "library", "library/a", 70000));
		CHECK(!feedcursor_looked(c, "h", "library", "library/a", 50000));
		feedcursor_look(c, "h", "library", "library/b", 52000);
		/* far below the newest listing: no listing reads down there any more, forgotten */
		feedcursor_listed(c, "h", "library", 70000);
		CHECK(feedcursor_looked(c, "h", "library", "library/a", 70000));
		CHECK(!feedcursor_looked(c, "h", "library", "library/b", 52000));
		/* memory only: saved and reopened, the cursor is the same and nothing is looked */
		CHECK(feedcursor_save(c, err, sizeof(err)) == AM_OK);
		feedcursor_free(c);
		c = NULL;
		CHECK(feedcursor_open(dir, &c, err, sizeof(err)) == AM_OK && c != NULL);
		CHECK(c != NULL && feedcursor_get(c, "h", "library", &known) == 3000 && known == 1);
		CHECK(c != NULL && !feedcursor_looked(c, "h", "library", "library/a", 70000));
		CHECK(c != NULL && feedcursor_get(c, "h", "nocursor", &known) == 0 && known == 0);
		feedcursor_free(c);
	}

	/* a damaged file is refused, not silently reset (the feed would re-read from nothing) */
	write_text(path, "{\"version\":2}");
	c = NULL;
	CHECK(feedcursor_open(dir, &c, err, sizeof(err)) == AM_EINVAL && c == NULL);
	write_text(path, "{\"version\":1,\"cursors\":[{\"registry\":\"h\",\"project\":\"p\",\"push_ms\":-4}]}");
	CHECK(feedcursor_open(dir, &c, err, sizeof(err)) == AM_EINVAL && c == NULL);
	write_text(path, "not json");
	CHECK(feedcursor_open(dir, &c, err, sizeof(err)) == AM_EINVAL && c == NULL);

	unlink(path);
	rmdir(dir);
}
