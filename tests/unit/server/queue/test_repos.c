/*
 * The remembered repositories at their bound: a new name replaces the one
 * noted longest ago, in memory and in the file (a restart forgets the same
 * one), and reading a file with more than REPOS_MAX names keeps the newest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/harness.h"
#include "server/queue/repos.h"

static int
listed(struct repos *r, const char *repo)
{
	char **list;
	size_t n = repos_list(r, "h.example", &list), i;
	int found = 0;

	for (i = 0; i < n; i++)
		found |= strcmp(list[i], repo) == 0;
	repos_list_free(list, n);
	return found;
}

static size_t
lines_in(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	int c;

	if (f == NULL)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

TEST_MAIN("repos")
static void
run_tests(void)
{
	char dir[] = "/tmp/am-repos-XXXXXX", path[128], err[256] = "", name[64];
	struct repos *r = NULL;
	FILE *f;
	size_t i;

	CHECK(mkdtemp(dir) != NULL);
	(void)am_fmt(path, sizeof(path), "%s/%s", dir, REPOS_FILE);

	/* a file holding the bound and five more (an older process replaced names):
	 * the five oldest lines give way, the file is rewritten without them */
	f = fopen(path, "w");
	CHECK(f != NULL);
	for (i = 0; f != NULL && i < REPOS_MAX + 5; i++)
		fprintf(f, "h.example/library/fill-%zu\n", i);
	if (f != NULL)
		fclose(f);
	CHECK(repos_open(dir, 0, &r, err, sizeof(err)) == AM_OK);
	CHECK(repos_count(r) == REPOS_MAX);
	CHECK(!listed(r, "library/fill-4") && listed(r, "library/fill-5"));
	CHECK(listed(r, "library/fill-10004"));
	CHECK(lines_in(path) == REPOS_MAX + 1);     /* the header and the names */

	/* full: a note keeps fill-5 young; a new name replaces the one noted longest ago */
	CHECK(repos_note(r, "h.example", "library/fill-5") == 0);
	CHECK(repos_note(r, "h.example", "library/beyond") == 1);
	CHECK(repos_count(r) == REPOS_MAX);
	CHECK(listed(r, "library/beyond") && listed(r, "library/fill-5") && !listed(r, "library/fill-6"));
	CHECK(repos_note(r, "h.example", "library/beyond") == 0);
	repos_free(r);

	/* the file says the same: a restart keeps beyond and fill-5, forgets fill-6 */
	CHECK(lines_in(path) == REPOS_MAX + 1);
	CHECK(repos_open(dir, 0, &r, err, sizeof(err)) == AM_OK);
	CHECK(repos_count(r) == REPOS_MAX);
	CHECK(listed(r, "library/beyond") && listed(r, "library/fill-5") && !listed(r, "library/fill-6"));
	for (i = 0; i < 3; i++) {
		(void)am_fmt(name, sizeof(name), "library/new-%zu", i);
		CHECK(repos_note(r, "h.example", name) == 1);
	}
	CHECK(repos_count(r) == REPOS_MAX && lines_in(path) == REPOS_MAX + 1);
	repos_free(r);
	CHECK(repos_open(dir, REPOS_READONLY, &r, err, sizeof(err)) == AM_OK);
	CHECK(listed(r, "library/new-2") && listed(r, "library/beyond") && !listed(r, "library/fill-9"));
	CHECK(listed(r, "library/fill-10"));
	repos_free(r);

	(void)unlink(path);
	(void)am_fmt(path, sizeof(path), "%s/%s.tmp", dir, REPOS_FILE);
	(void)unlink(path);
	(void)rmdir(dir);
}
