/*
 * Unit tests: the journal (server/journal.c) on real files in a temporary
 * directory: append and replay, done records, torn and corrupt records,
 * compaction, reopening, locking, and concurrent appenders sharing fsyncs.
 */
#include "tests/unit/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/queue/journal.h"
#include "server/base/log.h"

static char dir[256], jpath[300];

static struct group
grp(const char *repo, const char *version)
{
	struct group g;

	memset(&g, 0, sizeof(g));
	(void)am_fmt(g.host, sizeof(g.host), "harbor.example.com");
	(void)am_fmt(g.rule_name, sizeof(g.rule_name), "per-arch tags");
	(void)am_fmt(g.repo, sizeof(g.repo), "%s", repo);
	(void)am_fmt(g.version, sizeof(g.version), "%s", version);
	return g;
}

/* Replayed groups, as "repo:version" lines in a fixed-size list. */
struct seen {
	size_t n;
	char names[64][300];
};

static void
collect(void *ctx, const struct group *g)
{
	struct seen *s = ctx;

	if (s->n < 64)
		(void)am_fmt(s->names[s->n], sizeof(s->names[0]), "%s:%s@%s@%s", g->repo, g->version,
		    g->rule_name, g->host);
	s->n++;
}

static int
seen_has(const struct seen *s, const char *repo_version)
{
	size_t i, n = strlen(repo_version);

	for (i = 0; i < s->n && i < 64; i++)
		if (strncmp(s->names[i], repo_version, n) == 0 && s->names[i][n] == '@')
			return 1;
	return 0;
}

static struct journal *
open_ok(void)
{
	struct journal *j = NULL;
	char err[512] = "";

	if (journal_open(dir, &j, err, sizeof(err)) != AM_OK) {
		fprintf(stderr, "journal_open: %s\n", err);
		CHECK(0);
		exit(1);
	}
	return j;
}

static void
replay_into(struct seen *s)
{
	struct journal *j = open_ok();

	memset(s, 0, sizeof(*s));
	CHECK(journal_pending(j, collect, s) == s->n);
	journal_free(j);
}

static void
fresh_dir(void)
{
	char cmd[400];

	if (dir[0] != '\0') {
		(void)am_fmt(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			perror(cmd);
	}
	(void)am_fmt(dir, sizeof(dir), "/tmp/am-journal-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	(void)am_fmt(jpath, sizeof(jpath), "%s/journal", dir);
}

static long
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void
append_ok(struct journal *j, const char *repo, const char *version, uint64_t *seq)
{
	struct group g = grp(repo, version);
	char err[256];

	CHECK(journal_append(j, &g, seq, err, sizeof(err)) == AM_OK);
}

static void
test_append_replay(void)
{
	struct journal *j;
	struct group g;
	struct seen s;
	uint64_t a, b, b2, c;

	fresh_dir();
	j = open_ok();
	append_ok(j, "library/a", "1.0", &a);
	append_ok(j, "library/b", "2.0", &b);
	append_ok(j, "library/b", "2.0", &b2);   /* the same group again */
	append_ok(j, "team/x/c", "3.0-rc1", &c);
	CHECK(a < b && b < b2 && b2 < c);
	g = grp("library/b", "2.0");
	CHECK(journal_latest(j, &g) == b2);
	g = grp("library/none", "1");
	CHECK(journal_latest(j, &g) == 0);
	journal_free(j);

	replay_into(&s);
	CHECK(s.n == 3);
	CHECK(seen_has(&s, "library/a:1.0"));
	CHECK(seen_has(&s, "library/b:2.0"));
	CHECK(seen_has(&s, "team/x/c:3.0-rc1"));
	CHECK(strstr(s.names[0], "@per-arch tags@harbor.example.com") != NULL);

	/* Sequences keep growing across a reopen. */
	j = open_ok();
	append_ok(j, "library/d", "1", &a);
	CHECK(a > c);
	journal_free(j);
}

static void
test_done_records(void)
{
	struct journal *j;
	struct group g;
	struct seen s;
	uint64_t a1, a2, b, c;

	fresh_dir();
	j = open_ok();
	append_ok(j, "library/a", "1.0", &a1);
	append_ok(j, "library/b", "1.0", &b);
	append_ok(j, "library/c", "1.0", &c);
	g = grp("library/b", "1.0");
	journal_done(j, &g, b);                  /* b finished */
	CHECK(journal_latest(j, &g) == 0);
	g = grp("library/a", "1.0");
	append_ok(j, "library/a", "1.0", &a2);   /* an event while a's first run went on */
	journal_done(j, &g, a1);                 /* that run started before a2: still pending */
	CHECK(journal_latest(j, &g) == a2);
	journal_free(j);

	replay_into(&s);
	CHECK(s.n == 2);
	CHECK(seen_has(&s, "library/a:1.0"));
	CHECK(seen_has(&s, "library/c:1.0"));
	CHECK(!seen_has(&s, "library/b:1.0"));

	/* Done without a reopen in between, then reopen: nothing left. */
	j = open_ok();
	g = grp("library/a", "1.0");
	journal_done(j, &g, journal_latest(j, &g));
	g = grp("library/c", "1.0");
	journal_done(j, &g, journal_latest(j, &g));
	journal_free(j);
	replay_into(&s);
	CHECK(s.n == 0);
}

/* Write raw bytes at the end of the journal file (a crash mid-write). */
static void
append_raw(const void *p, size_t n)
{
	int fd = open(jpath, O_WRONLY | O_APPEND);

	CHECK(fd >= 0);
	CHECK(write(fd, p, n) == (ssize_t)n);
	close(fd);
}

static void
test_torn_tail(void)
{
	struct journal *j;
	struct seen s;
	long size;
	int fd;

	fresh_dir();
	j = open_ok();
	append_ok(j, "library/a", "1", NULL);
	append_ok(j, "library/b", "1", NULL);
	journal_free(j);

	/* Cut the last record in half. */
	size = file_size(jpath);
	CHECK(truncate(jpath, size - 10) == 0);
	replay_into(&s);
	CHECK(s.n == 1);
	CHECK(seen_has(&s, "library/a:1"));

	/* A length header alone, and then a header whose body never came. */
	append_raw("\x30\x00", 2);
	replay_into(&s);
	CHECK(s.n == 1);
	append_raw("\x30\x00\x00\x00\x01\x02\x03\x04" "Aabc", 12);
	replay_into(&s);
	CHECK(s.n == 1);

	/* The rewritten file takes new appends normally. */
	j = open_ok();
	append_ok(j, "library/c", "1", NULL);
	journal_free(j);
	replay_into(&s);
	CHECK(s.n == 2 && seen_has(&s, "library/c:1"));

	/* A file cut short inside the magic (crash right after creation) is empty. */
	CHECK(truncate(jpath, 3) == 0);
	replay_into(&s);
	CHECK(s.n == 0);

	/* Something else entirely is refused, not overwritten. */
	fd = open(jpath, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && write(fd, "hello world, not a journal\n", 27) == 27);
	close(fd);
	{
		struct journal *bad = NULL;
		char err[512] = "";
		CHECK(journal_open(dir, &bad, err, sizeof(err)) == AM_EINVAL);
		CHECK(strstr(err, "not an archmerge journal") != NULL);
		CHECK(bad == NULL);
	}
	CHECK(unlink(jpath) == 0);
}

static void
test_corrupt_middle(void)
{
	struct journal *j;
	struct seen s;
	unsigned char buf[4096];
	long size, first_end;
	int fd;

	fresh_dir();
	j = open_ok();
	append_ok(j, "library/a", "1", NULL);
	journal_free(j);
	first_end = file_size(jpath);             /* magic + S record + a */
	j = open_ok();
	append_ok(j, "library/b", "1", NULL);
	append_ok(j, "library/c", "1", NULL);
	journal_free(j);
	/* After the reopen's rewrite: magic, S, a, then b and c appended. Flip a byte of b. */
	size = file_size(jpath);
	CHECK(size > first_end && size < (long)sizeof(buf));
	fd = open(jpath, O_RDWR);
	CHECK(fd >= 0 && pread(fd, buf, (size_t)size, 0) == size);
	buf[first_end + 20] ^= 0x5a;
	CHECK(pwrite(fd, buf, (size_t)size, 0) == size);
	close(fd);
	replay_into(&s);
	CHECK(s.n == 2);
	CHECK(seen_has(&s, "library/a:1"));
	CHECK(!seen_has(&s, "library/b:1"));
	CHECK(seen_has(&s, "library/c:1"));

	/* A corrupt length field: the scan finds the next record. */
	j = open_ok();
	append_ok(j, "library/d", "1", NULL);
	append_ok(j, "library/e", "1", NULL);
	journal_free(j);
	size = file_size(jpath);
	fd = open(jpath, O_RDWR);
	CHECK(fd >= 0 && pread(fd, buf, (size_t)size, 0) == size);
	/* d's record follows the rewritten prefix; find it by its repository. */
	{
		unsigned char *p = memmem(buf, (size_t)size, "library/d", 9);
		unsigned char *rec;
		CHECK(p != NULL);
		rec = p;
		while (rec > buf && !(rec[0] != 0 && rec[1] == 0 && rec[2] == 0 && rec[3] == 0 &&
		    rec[8] == 'A'))
			rec--;
		rec[2] = 0x7f;                    /* length now absurd */
	}
	CHECK(pwrite(fd, buf, (size_t)size, 0) == size);
	close(fd);
	replay_into(&s);
	CHECK(s.n == 3);
	CHECK(seen_has(&s, "library/a:1") && seen_has(&s, "library/c:1"));
	CHECK(!seen_has(&s, "library/d:1"));
	CHECK(seen_has(&s, "library/e:1"));
}

static void
test_compaction(void)
{
	struct journal *j;
	struct journal_stats st;
	struct group g;
	struct seen s;
	char version[32];
	uint64_t seq;
	long max_size = 0, size;
	int i;

	fresh_dir();
	j = open_ok();
	journal_set_compact_min(j, 4096);
	append_ok(j, "library/keep", "1", NULL);    /* stays pending throughout */
	append_ok(j, "library/keep", "2", NULL);
	for (i = 0; i < 2000; i++) {
		(void)am_fmt(version, sizeof(version), "v%d", i % 50);
		append_ok(j, "library/churn", version, &seq);
		g = grp("library/churn", version);
		if (i % 7 != 0)
			journal_done(j, &g, seq);
		size = file_size(jpath);
		if (size > max_size)
			max_size = size;
	}
	journal_get_stats(j, &st);
	CHECK(st.compactions > 0);
	CHECK(max_size < 5 * 4096);               /* bounded, whatever the traffic */
	CHECK(st.appends == 2002);
	/* Which churn versions are still pending: those whose last event was not done. */
	CHECK(st.pending >= 2);
	{
		size_t expect = 2;
		int v;
		for (v = 0; v < 50; v++) {
			int last = 1950 + v;          /* last i with i % 50 == v */
			if (last % 7 == 0)
				expect++;
		}
		CHECK(st.pending == expect);
	}
	/* An explicit compaction, then reopen: the same pending set. */
	CHECK(journal_compact(j, NULL, 0) == AM_OK);
	journal_free(j);
	replay_into(&s);
	CHECK(s.n == st.pending);
	CHECK(seen_has(&s, "library/keep:1") && seen_has(&s, "library/keep:2"));
	/* The last event of v3 was i = 1953 (a multiple of 7: not done); v0's was 1950 (done). */
	CHECK(seen_has(&s, "library/churn:v3") && !seen_has(&s, "library/churn:v0"));

	/* Reopen after compaction and keep going. */
	j = open_ok();
	append_ok(j, "library/after", "1", NULL);
	g = grp("library/keep", "1");
	journal_done(j, &g, journal_latest(j, &g));
	journal_free(j);
	replay_into(&s);
	CHECK(s.n == st.pending);                    /* +after, -keep:1 */
	CHECK(seen_has(&s, "library/after:1") && !seen_has(&s, "library/keep:1"));
}

static void
test_refusals(void)
{
	struct journal *j, *j2 = NULL;
	char err[512] = "", path[300];
	struct group g;
	int fd;

	fresh_dir();
	/* Missing directory: the last component is created, a missing parent is refused. */
	(void)am_fmt(path, sizeof(path), "%s/created", dir);
	CHECK(journal_open(path, &j2, err, sizeof(err)) == AM_OK);
	journal_free(j2);
	j2 = NULL;
	(void)am_fmt(path, sizeof(path), "%s/created/journal", dir);
	(void)unlink(path);
	(void)am_fmt(path, sizeof(path), "%s/created/journal.lock", dir);
	(void)unlink(path);
	(void)am_fmt(path, sizeof(path), "%s/created", dir);
	(void)rmdir(path);
	(void)am_fmt(path, sizeof(path), "%s/missing/dir", dir);
	CHECK(journal_open(path, &j2, err, sizeof(err)) == AM_EIO);
	CHECK(strstr(err, "state_dir") != NULL && strstr(err, "No such file") != NULL);
	/* A file where the directory should be. */
	(void)am_fmt(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	close(fd);
	CHECK(journal_open(path, &j2, err, sizeof(err)) == AM_EIO);
	CHECK(strstr(err, "not a directory") != NULL);
	/* Read-only directory (meaningless for root, who may write anyway). */
	if (geteuid() != 0) {
		(void)am_fmt(path, sizeof(path), "%s/ro", dir);
		CHECK(mkdir(path, 0500) == 0);
		CHECK(journal_open(path, &j2, err, sizeof(err)) == AM_EIO);
		CHECK(strstr(err, "not writable") != NULL);
	}
	/* Two processes (or two opens) on one state_dir. */
	j = open_ok();
	CHECK(journal_open(dir, &j2, err, sizeof(err)) == AM_EIO);
	CHECK(strstr(err, "in use") != NULL);
	CHECK(j2 == NULL);
	/* A group without a rule name cannot be journaled. */
	g = grp("library/a", "1");
	g.rule_name[0] = '\0';
	CHECK(journal_append(j, &g, NULL, err, sizeof(err)) == AM_EINVAL);
	journal_free(j);
	journal_free(NULL);
}

/* A write that fails (file size limit: EFBIG) fails its appender, and the journal goes on. */
static void
test_write_failure(void)
{
	struct journal_stats st;
	struct journal *j;
	struct rlimit old, lim;
	struct group g;
	struct seen s;
	char err[256] = "";
	long size;

	fresh_dir();
	j = open_ok();
	append_ok(j, "library/before", "1", NULL);
	size = file_size(jpath);
	signal(SIGXFSZ, SIG_IGN);
	CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = (rlim_t)size;
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	g = grp("library/failed", "1");
	CHECK(journal_append(j, &g, NULL, err, sizeof(err)) == AM_EIO);
	CHECK(strstr(err, "cannot write the journal") != NULL);
	/* The failed append is not pending: not counted, not in a compaction (issue 9.3). */
	journal_get_stats(j, &st);
	CHECK(st.pending == 1 && st.failing && st.last_fail_ms > 0 && !st.broken);
	g = grp("library/before", "1");            /* an existing entry keeps its own record */
	CHECK(journal_append(j, &g, NULL, err, sizeof(err)) == AM_EIO);
	CHECK(journal_latest(j, &g) != 0);
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	CHECK(file_size(jpath) == size);          /* nothing half-written stays behind */
	CHECK(journal_recovered(j) == 0);         /* still failing */
	append_ok(j, "library/after", "1", NULL);
	CHECK(journal_recovered(j) == 1);         /* once: the caller queues the pending groups again */
	CHECK(journal_recovered(j) == 0);
	journal_get_stats(j, &st);
	CHECK(st.write_errors == 2 && st.appends == 2 && st.pending == 2);
	CHECK(!st.failing);
	CHECK(journal_compact(j, err, sizeof(err)) == AM_OK);
	journal_free(j);
	replay_into(&s);
	CHECK(seen_has(&s, "library/before:1") && seen_has(&s, "library/after:1"));
	CHECK(!seen_has(&s, "library/failed:1"));
}

/*
 * Issue 22.5: a run's completion that lands while a later event's append is
 * being written (the journal's lock released for the I/O) is set aside for
 * that newer record; when that append then fails (disk full), the group must
 * not stay pending with nothing queued. SIGXFSZ's handler holds the failing
 * write open long enough for the run to finish inside that window.
 */
static struct journal *race_j;
static atomic_int race_in_write;

static void
slow_xfsz(int sig)
{
	struct timespec ts = { 0, 150 * 1000000L };

	(void)sig;
	atomic_store(&race_in_write, 1);
	(void)nanosleep(&ts, NULL);
}

static void *
race_append(void *arg)
{
	struct group g = grp("library/race", "1");
	char err[256];

	*(enum am_err *)arg = journal_append(race_j, &g, NULL, err, sizeof(err));
	return NULL;
}

static void
test_done_during_failed_append(void)
{
	struct journal_stats st;
	struct sigaction sa, old_sa;
	struct rlimit old, lim;
	struct group g = grp("library/race", "1");
	enum am_err arc = AM_OK;
	uint64_t s0;
	pthread_t th;
	struct seen s;
	long long t0;
	char err[256];

	fresh_dir();
	race_j = open_ok();
	append_ok(race_j, "library/race", "1", &s0);   /* accepted; its run starts, reads s0 */
	CHECK(journal_latest(race_j, &g) == s0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = slow_xfsz;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGXFSZ, &sa, &old_sa) == 0);
	CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = (rlim_t)file_size(jpath);        /* the disk is full */
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	atomic_store(&race_in_write, 0);
	CHECK(pthread_create(&th, NULL, race_append, &arc) == 0);   /* a new event for the group */
	t0 = am_now_ms();
	while (!atomic_load(&race_in_write) && am_now_ms() - t0 < 5000)
		usleep(1000);
	CHECK(atomic_load(&race_in_write));
	CHECK(journal_latest(race_j, &g) > s0);           /* the newer record, not written yet */
	journal_done(race_j, &g, s0);                     /* the run that read s0 finishes for good */
	pthread_join(th, NULL);
	CHECK(arc == AM_EIO);                             /* that event was refused (503) */
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	CHECK(sigaction(SIGXFSZ, &old_sa, NULL) == 0);
	/* Nothing is queued for the group: it must not count as pending. */
	journal_get_stats(race_j, &st);
	CHECK(st.pending == 0);
	CHECK(journal_latest(race_j, &g) == 0);
	/* Space is back: the next append writes the done record along; a restart replays nothing. */
	append_ok(race_j, "library/other", "1", NULL);
	CHECK(journal_recovered(race_j) == 1);
	CHECK(journal_compact(race_j, err, sizeof(err)) == AM_OK);
	journal_free(race_j);
	replay_into(&s);
	CHECK(!seen_has(&s, "library/race:1") && seen_has(&s, "library/other:1"));
}

#define THREADS 8
#define PER_THREAD 400

static void *
appender(void *arg)
{
	struct journal *j = arg;
	char repo[64], err[256];
	struct group g;
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		(void)am_fmt(repo, sizeof(repo), "library/t%lu", (unsigned long)(i % 97));
		g = grp(repo, "1");
		(void)am_fmt(g.version, sizeof(g.version), "v%d", i % 13);
		if (journal_append(j, &g, NULL, err, sizeof(err)) != AM_OK)
			fprintf(stderr, "append: %s\n", err);
	}
	return NULL;
}

static void
test_group_commit(void)
{
	pthread_t th[THREADS];
	struct journal_stats st;
	struct journal *j;
	struct seen s;
	long long t0, ms;
	int i;

	fresh_dir();
	j = open_ok();
	t0 = am_now_ms();
	for (i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, appender, j);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	ms = am_now_ms() - t0;
	journal_get_stats(j, &st);
	CHECK(st.appends == THREADS * PER_THREAD);
	CHECK(st.syncs >= 1 && st.syncs <= st.appends);
	CHECK(st.write_errors == 0);
	printf("journal: %d threads, %llu appends, %llu fdatasyncs (%.2f per append), %lld ms\n",
	    THREADS, st.appends, st.syncs, (double)st.syncs / (double)st.appends, ms);
	journal_free(j);
	replay_into(&s);
	CHECK(s.n == PER_THREAD);      /* (i % 97, i % 13) differ for every i < 1261 */
}

static void
run_tests(void)
{
	log_set_level(LOG_ERROR);     /* the torn/corrupt warnings are expected here */
	test_append_replay();
	test_done_records();
	test_torn_tail();
	test_corrupt_middle();
	test_compaction();
	test_refusals();
	test_write_failure();
	test_done_during_failed_append();
	test_group_commit();
	fresh_dir();                  /* removes the last one ... */
	if (rmdir(dir) != 0)          /* ... and this one */
		perror(dir);
}

TEST_MAIN("journal")
