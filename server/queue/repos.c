/*
 * The remembered-repositories set: an in-memory array with a hash index
 * under a mutex, backed by an append-only text file. Every queued group
 * asks, so a known name costs one hash probe; a new one one write(2) +
 * fdatasync. Full (REPOS_MAX), a new name takes the place of the one noted
 * longest ago, which is logged and counted: the repository of a fresh push
 * is the one the reconcile pass must be able to find. The file is then
 * rewritten, noted longest ago first (a few hundred KB and one fsync per new
 * repository beyond the bound), so a restart forgets the same names; a file
 * with more than REPOS_MAX names (written by hand) keeps its last ones.
 */
#include "server/queue/repos.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "registry/oci/names.h"
#include "server/base/log.h"

#define HOST_MAX 256
#define LINE_MAX_LEN (HOST_MAX + NAME_MAX_REPO + 2)
#define FILE_MAX ((size_t)REPOS_MAX * LINE_MAX_LEN + 4096)
#define SLOTS 32768               /* power of two, over 3 x REPOS_MAX: short probe runs */
_Static_assert(SLOTS > 2 * REPOS_MAX && (SLOTS & (SLOTS - 1)) == 0, "hash table too small");

static const char header[] =
    "# archmerge: repositories seen in webhooks (registry host/repository), one per line\n";

struct repos {
	pthread_mutex_t lock;
	char **items;             /* "host/repo" */
	unsigned long *noted;     /* parallel to items: tick of the last note */
	unsigned long tick;
	size_t n, cap;
	unsigned *slots;          /* open addressing: index + 1 into items, 0 = empty */
	int fd;                   /* append handle; -1 when read-only */
	char *path;
	unsigned long forgotten;  /* names given up for newer ones (the set was full) */
	time_t forgot_logged;
};

/* Registry hosts as the config names them: name or [v6], optional :port. */
static int
valid_host(const char *h, size_t n)
{
	size_t i;

	if (n == 0 || n >= HOST_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
			return 0;
	}
	return 1;
}

/* "host/repo" validated; host ends at the first '/' (hosts never hold one). */
static int
valid_entry(const char *s)
{
	const char *slash = strchr(s, '/');

	return slash != NULL && valid_host(s, (size_t)(slash - s)) && name_valid_repo(slash + 1);
}

/* FNV-1a: the slot where entry is, or the empty one where it would go. */
static size_t
slot_of(const struct repos *r, const char *entry)
{
	unsigned long h = 2166136261ul;
	const unsigned char *p;
	size_t i;

	for (p = (const unsigned char *)entry; *p != '\0'; p++)
		h = (h ^ *p) * 16777619ul;
	for (i = h & (SLOTS - 1); r->slots[i] != 0; i = (i + 1) & (SLOTS - 1))
		if (strcmp(r->items[r->slots[i] - 1], entry) == 0)
			break;
	return i;
}

/* Index + 1 of entry in items, 0 when absent. */
static size_t
find(const struct repos *r, const char *entry)
{
	return r->slots[slot_of(r, entry)];
}

/* Open addressing has no cheap delete: after a replacement, index everything again. */
static void
reindex(struct repos *r)
{
	size_t i;

	memset(r->slots, 0, SLOTS * sizeof(*r->slots));
	for (i = 0; i < r->n; i++)
		r->slots[slot_of(r, r->items[i])] = (unsigned)i + 1;
}

/*
 * entry must be new. Below REPOS_MAX it is appended (so the table never
 * fills); at it, it replaces the entry noted longest ago, whose name goes to
 * gone (when not NULL) for the caller's log line.
 */
static void
add(struct repos *r, const char *entry, char *gone, size_t gonelen)
{
	size_t i, oldest = 0;

	if (r->n < REPOS_MAX) {
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 64;
			r->items = xrealloc(r->items, r->cap * sizeof(*r->items));
			r->noted = xrealloc(r->noted, r->cap * sizeof(*r->noted));
		}
		r->slots[slot_of(r, entry)] = (unsigned)r->n + 1;
		r->noted[r->n] = ++r->tick;
		r->items[r->n++] = xstrdup(entry);
		return;
	}
	for (i = 1; i < r->n; i++)
		if (r->noted[i] < r->noted[oldest])
			oldest = i;
	if (gone != NULL)
		(void)am_fmt(gone, gonelen, "%s", r->items[oldest]);
	free(r->items[oldest]);
	r->items[oldest] = xstrdup(entry);
	r->noted[oldest] = ++r->tick;
	r->forgotten++;
	reindex(r);
}

/* Parse the file body; returns how many lines were dropped (invalid, duplicate, torn, over the cap). */
static size_t
parse(struct repos *r, char *buf, size_t len)
{
	char *line = buf, *nl, *end = buf + len;
	size_t dropped = 0;

	while (line < end) {
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL) {
			dropped++;            /* torn last line: a crash mid-append */
			break;
		}
		*nl = '\0';
		if (nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		if (line[0] != '#' && line[0] != '\0') {
			if (!valid_entry(line) || find(r, line)) {
				dropped++;
			} else {
				dropped += r->n >= REPOS_MAX; /* the file's oldest name gives way */
				add(r, line, NULL, 0);
			}
		}
		line = nl + 1;
	}
	return dropped;
}

static enum am_err
write_all(int fd, const char *s, size_t n, const char *path, char *err, size_t errlen)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, s, n)) < 0) {
			if (errno == EINTR)
				continue;
			return am_fail(err, errlen, AM_EIO, "%s: %s", path, strerror(errno));
		}
		s += w;
		n -= (size_t)w;
	}
	return AM_OK;
}

struct by_noted {
	unsigned long noted;
	const char *item;
};

static int
cmp_noted(const void *a, const void *b)
{
	unsigned long x = ((const struct by_noted *)a)->noted, y = ((const struct by_noted *)b)->noted;

	return x < y ? -1 : x > y;
}

/*
 * Replace the file with the clean set, noted longest ago first (reading
 * keeps the last REPOS_MAX lines): a temporary file, fsync, rename.
 */
static enum am_err
rewrite(struct repos *r, char *err, size_t errlen)
{
	struct by_noted *order = xcalloc(r->n ? r->n : 1, sizeof(*order));
	char tmp[4096], *text;
	size_t i, n, len, off;
	int fd;
	enum am_err rc;

	for (i = 0; i < r->n; i++) {
		order[i].noted = r->noted[i];
		order[i].item = r->items[i];
	}
	qsort(order, r->n, sizeof(*order), cmp_noted);

	if (am_fmt(tmp, sizeof(tmp), "%s.tmp", r->path) != 0) {
		rc = am_fail(err, errlen, AM_EINVAL, "%s: path too long", r->path);
		goto out;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		rc = am_fail(err, errlen, AM_EIO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	/* One buffer, one write: at the bound this runs for every new repository. */
	len = strlen(header);
	for (i = 0; i < r->n; i++)
		len += strlen(order[i].item) + 1;
	text = xmalloc(len);
	off = strlen(header);
	memcpy(text, header, off);
	for (i = 0; i < r->n; i++) {
		n = strlen(order[i].item);
		memcpy(text + off, order[i].item, n);
		text[off + n] = '\n';
		off += n + 1;
	}
	rc = write_all(fd, text, len, tmp, err, errlen);
	free(text);
	if (rc == AM_OK && fsync(fd) != 0)
		rc = am_fail(err, errlen, AM_EIO, "%s: fsync: %s", tmp, strerror(errno));
	close(fd);
	if (rc == AM_OK && rename(tmp, r->path) != 0)
		rc = am_fail(err, errlen, AM_EIO, "%s: rename: %s", r->path, strerror(errno));
	if (rc != AM_OK)
		(void)unlink(tmp);
out:
	free(order);
	return rc;
}

/* The append handle on the file now at path (after a rewrite renamed a new one there). */
static enum am_err
reopen(struct repos *r, char *err, size_t errlen)
{
	int fd = open(r->path, O_WRONLY | O_APPEND | O_CLOEXEC);

	if (fd < 0)
		return am_fail(err, errlen, AM_EIO, "%s: %s", r->path, strerror(errno));
	if (r->fd >= 0)
		close(r->fd);
	r->fd = fd;
	return AM_OK;
}

enum am_err
repos_open(const char *state_dir, int flags, struct repos **out, char *err, size_t errlen)
{
	struct repos *r = xcalloc(1, sizeof(*r));
	struct stat st;
	char *buf = NULL;
	size_t len = 0, dropped = 0;
	int exists;
	enum am_err rc = AM_OK;

	pthread_mutex_init(&r->lock, NULL);
	r->fd = -1;
	r->slots = xcalloc(SLOTS, sizeof(*r->slots));
	r->path = xmalloc(strlen(state_dir) + sizeof(REPOS_FILE) + 1);
	memcpy(r->path, state_dir, strlen(state_dir));
	r->path[strlen(state_dir)] = '/';
	memcpy(r->path + strlen(state_dir) + 1, REPOS_FILE, sizeof(REPOS_FILE));

	if (!(flags & REPOS_READONLY) && mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
		rc = am_fail(err, errlen, AM_EIO, "state_dir %s: %s", state_dir, strerror(errno));
		goto fail;
	}
	exists = stat(r->path, &st) == 0;
	if (!exists && errno != ENOENT) {
		rc = am_fail(err, errlen, AM_EIO, "%s: %s", r->path, strerror(errno));
		goto fail;
	}
	if (exists) {
		if ((rc = am_read_file(r->path, FILE_MAX, &buf, &len, err, errlen)) != AM_OK)
			goto fail;
		dropped = parse(r, buf, len);
		r->forgotten = 0;         /* names the file itself had replaced: counted as skipped */
		free(buf);
		if (dropped > 0)
			log_kv(LOG_WARN, "repositories", LOG_S("file", r->path), LOG_I("skipped", dropped),
			    LOG_S("detail", "invalid, duplicate or unterminated lines, or more than the "
			    "maximum of entries"), LOG_I("max", REPOS_MAX));
	}
	if (flags & REPOS_READONLY)
		goto done;
	if ((!exists || dropped > 0) && (rc = rewrite(r, err, errlen)) != AM_OK)
		goto fail;
	if ((rc = reopen(r, err, errlen)) != AM_OK)
		goto fail;
done:
	*out = r;
	return AM_OK;
fail:
	repos_free(r);
	return rc;
}

void
repos_free(struct repos *r)
{
	size_t i;

	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	for (i = 0; i < r->n; i++)
		free(r->items[i]);
	free(r->items);
	free(r->noted);
	free(r->slots);
	free(r->path);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int
repos_note(struct repos *r, const char *host, const char *repo)
{
	char entry[LINE_MAX_LEN], line[LINE_MAX_LEN + 1], err[512] = "", gone[LINE_MAX_LEN] = "";
	unsigned long forgotten = 0;
	int added = 0, log_gone = 0;
	time_t now = time(NULL);
	size_t k;

	if (r == NULL || am_fmt(entry, sizeof(entry), "%s/%s", host, repo) != 0 ||
	    !valid_entry(entry))
		return 0;
	pthread_mutex_lock(&r->lock);
	if ((k = find(r, entry)) != 0) {
		r->noted[k - 1] = ++r->tick;
		goto out;
	}
	add(r, entry, gone, sizeof(gone));
	added = 1;
	if (gone[0] != '\0') {
		forgotten = r->forgotten;
		/* The first time, then at most once a minute: a flood of new names is one line a minute. */
		log_gone = forgotten == 1 || now - r->forgot_logged >= 60;
		if (log_gone)
			r->forgot_logged = now;
	}
	if (r->fd < 0)
		goto out;
	if (gone[0] != '\0') {
		/* The file says what memory says: the forgotten name leaves it too. The append
		 * handle follows the renamed file. */
		if (rewrite(r, err, sizeof(err)) != AM_OK || reopen(r, err, sizeof(err)) != AM_OK)
			log_kv(LOG_WARN, "repositories remember", LOG_S("registry", host), LOG_S("repo", repo),
			    LOG_S("result", "failed"), LOG_S("detail", err));
		goto out;
	}
	/* One write: O_APPEND keeps the line whole; a crash leaves at most a torn tail. */
	(void)am_fmt(line, sizeof(line), "%s\n", entry);
	if (write_all(r->fd, line, strlen(line), r->path, err, sizeof(err)) != AM_OK ||
	    fdatasync(r->fd) != 0)
		log_kv(LOG_WARN, "repositories remember", LOG_S("registry", host), LOG_S("repo", repo),
		    LOG_S("result", "failed"), LOG_S("detail", err[0] ? err : strerror(errno)));
out:
	pthread_mutex_unlock(&r->lock);
	if (log_gone)
		log_kv(LOG_WARN, "repositories forgotten", LOG_S("file", r->path), LOG_S("repo", gone),
		    LOG_S("for", entry), LOG_I("forgotten", forgotten), LOG_I("max", REPOS_MAX),
		    LOG_S("detail", "the set is full: the repository noted longest ago gives way; the "
		    "reconcile pass no longer lists it unless a rule or reconcile.repositories names it"));
	return added;
}

size_t
repos_count(struct repos *r)
{
	size_t n;

	if (r == NULL)
		return 0;
	pthread_mutex_lock(&r->lock);
	n = r->n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

size_t
repos_list(struct repos *r, const char *host, char ***out)
{
	size_t i, n = 0, hl = strlen(host);
	char **list;

	*out = NULL;
	if (r == NULL)
		return 0;
	pthread_mutex_lock(&r->lock);
	list = xcalloc(r->n ? r->n : 1, sizeof(*list));
	for (i = 0; i < r->n; i++)
		if (strncasecmp(r->items[i], host, hl) == 0 && r->items[i][hl] == '/')
			list[n++] = xstrdup(r->items[i] + hl + 1);
	pthread_mutex_unlock(&r->lock);
	*out = list;
	return n;
}

void
repos_list_free(char **list, size_t n)
{
	size_t i;

	for (i = 0; list != NULL && i < n; i++)
		free(list[i]);
	free(list);
}
