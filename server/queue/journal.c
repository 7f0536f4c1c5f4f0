/*
 * Journal implementation. One mutex guards the in-memory state: the map of
 * pending groups (what a compaction writes), the buffer of records not yet
 * written, and byte counters ("lsn") of what is buffered, written and synced.
 * One thread at a time holds the flushing role and does the I/O without the
 * mutex; appenders that arrive meanwhile wait and are covered by the next
 * write + fdatasync together (group commit).
 */
#include "server/queue/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/base/log.h"
#include "server/queue/gkey.h"

#define MAGIC           "AMJRNL1\n"
#define MAGIC_LEN       8
#define REC_HEAD        8                     /* u32 length + u32 crc */
#define PAYLOAD_MIN     (1 + 8 + 4 * 2)       /* type, seq, four empty strings */
#define PAYLOAD_MAX     1024                  /* > the sum of the group fields */
#define COMPACT_MIN     (1024 * 1024)         /* default: never compact below this size */
#define PATH_LEN        4096

struct buf {
	unsigned char *p;
	size_t len, cap;
};

/* A pending group: its latest record's sequence. The group is packed (gkey):
 * a journal of 100,000 pending groups is held in about 12 MB. */
struct entry {
	struct gkey_link link;      /* in j->map (first member) */
	uint32_t key_len;
	uint64_t seq;
	uint64_t done_upto;         /* a done set aside for a later record still being written */
	size_t rec_len;             /* size of its record in a compacted file */
	char key[];                 /* gkey of the group */
};

struct journal {
	char dir[PATH_LEN], path[PATH_LEN], tmp[PATH_LEN];
	int fd, lock_fd;

	pthread_mutex_t mu;
	pthread_cond_t cv;          /* a flush finished */
	struct gkey_map map;        /* the pending groups' entries (map.n of them) */
	size_t live_bytes;          /* sum of rec_len */
	uint64_t next_seq;

	struct buf pend;            /* records not written yet */
	struct buf spare;           /* the other buffer, swapped in while writing */
	uint64_t lsn_buffered, lsn_written, lsn_synced;
	int flushing;               /* someone holds the flushing role */
	unsigned fail_epoch;        /* bumped when a write fails: its waiters fail */
	int broken;                 /* fdatasync failed: refuse appends until restart */
	int recovered;              /* an append succeeded after failed ones (journal_recovered) */
	size_t file_size;
	size_t compact_min, next_compact_try;
	struct journal_stats st;
};

/* ---- crc32 (IEEE 802.3, as zlib) ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	uint32_t c;
	int i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t
crc32_of(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	while (n-- > 0)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* ---- little-endian fields ---- */

static void
put_u16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v & 0xff);
	p[1] = (unsigned char)((v >> 8) & 0xff);
}

static void
put_u32(unsigned char *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

static void
put_u64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ---- records ---- */

static size_t
put_str(unsigned char *p, const char *s)
{
	size_t n = strlen(s);

	put_u16(p, (unsigned)n);
	memcpy(p + 2, s, n);
	return n + 2;
}

/* Encode one record into out (REC_HEAD + PAYLOAD_MAX bytes); returns its size, 0 if too long. */
static size_t
enc_record(unsigned char *out, char type, uint64_t seq, const struct group *g)
{
	static const struct group none;
	unsigned char *p = out + REC_HEAD;
	size_t need;

	if (g == NULL)
		g = &none;
	need = 1 + 8 + 8 + strnlen(g->host, sizeof(g->host)) + strnlen(g->rule_name, sizeof(g->rule_name)) +
	    strnlen(g->repo, sizeof(g->repo)) + strnlen(g->version, sizeof(g->version));
	if (need > PAYLOAD_MAX || memchr(g->host, '\0', sizeof(g->host)) == NULL ||
	    memchr(g->rule_name, '\0', sizeof(g->rule_name)) == NULL ||
	    memchr(g->repo, '\0', sizeof(g->repo)) == NULL ||
	    memchr(g->version, '\0', sizeof(g->version)) == NULL)
		return 0;
	*p++ = (unsigned char)type;
	put_u64(p, seq);
	p += 8;
	p += put_str(p, g->host);
	p += put_str(p, g->rule_name);
	p += put_str(p, g->repo);
	p += put_str(p, g->version);
	put_u32(out, (uint32_t)need);
	put_u32(out + 4, crc32_of(out + REC_HEAD, need));
	return REC_HEAD + need;
}

static int
get_str(const unsigned char **p, const unsigned char *end, char *dst, size_t dstlen)
{
	size_t n;

	if (end - *p < 2)
		return -1;
	n = (size_t)(*p)[0] | (size_t)(*p)[1] << 8;
	*p += 2;
	if ((size_t)(end - *p) < n || n >= dstlen || memchr(*p, '\0', n) != NULL)
		return -1;
	memcpy(dst, *p, n);
	dst[n] = '\0';
	*p += n;
	return 0;
}

/*
 * Decode the record at p. Returns its total size, 0 when it is cut short by
 * the end of the data, -1 when it is not a valid record.
 */
static long
dec_record(const unsigned char *p, size_t avail, char *type, uint64_t *seq, struct group *g)
{
	const unsigned char *q, *end;
	uint32_t len;

	if (avail < REC_HEAD)
		return 0;
	len = get_u32(p);
	if (len < PAYLOAD_MIN || len > PAYLOAD_MAX)
		return -1;
	if (avail - REC_HEAD < len)
		return 0;
	if (crc32_of(p + REC_HEAD, len) != get_u32(p + 4))
		return -1;
	q = p + REC_HEAD;
	end = q + len;
	*type = (char)*q++;
	*seq = get_u64(q);
	q += 8;
	memset(g, 0, sizeof(*g));
	if (get_str(&q, end, g->host, sizeof(g->host)) != 0 ||
	    get_str(&q, end, g->rule_name, sizeof(g->rule_name)) != 0 ||
	    get_str(&q, end, g->repo, sizeof(g->repo)) != 0 ||
	    get_str(&q, end, g->version, sizeof(g->version)) != 0 || q != end)
		return -1;
	if (*type == 'S')
		return (long)(REC_HEAD + len);
	if ((*type != 'A' && *type != 'D') || g->host[0] == '\0' || g->rule_name[0] == '\0' ||
	    !name_valid_repo(g->repo) || !name_valid_tag(g->version))
		return -1;
	return (long)(REC_HEAD + len);
}

/* ---- buffers ---- */

static void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = b->cap ? b->cap : 4096;
		while (b->len + n > b->cap)
			b->cap *= 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* ---- the map of pending groups ---- */

static struct gkey_link **
map_slot(struct journal *j, const struct group *g, uint32_t h)
{
	return gkey_map_find(&j->map, g, h);
}

/* g has a record with seq: remember the latest. Returns the previous seq (0: new entry). */
static uint64_t
map_append(struct journal *j, const struct group *g, uint64_t seq, size_t rec_len)
{
	uint32_t h = group_hash(g);
	struct gkey_link **at = map_slot(j, g, h);
	struct entry *e = (struct entry *)*at;
	uint64_t prev;

	if (e != NULL) {
		prev = e->seq;
		if (e->seq < seq)
			e->seq = seq;
		return prev;
	}
	e = xcalloc(1, sizeof(*e) + gkey_size(g));
	e->seq = seq;
	e->rec_len = rec_len;
	e->key_len = (uint32_t)gkey_put(e->key, g);
	gkey_map_add(&j->map, at, &e->link, h);
	j->live_bytes += rec_len;
	return 0;
}

static void
map_remove(struct journal *j, struct gkey_link **at)
{
	struct entry *e = (struct entry *)*at;

	gkey_map_unchain(&j->map, at);
	j->live_bytes -= e->rec_len;
	free(e);
}

/*
 * An append of seq failed: undo its map change, so that the group is not
 * counted pending nor written into the next compaction (prev from map_append).
 * Returns 1 when the group turns out done: a run's completion for prev came
 * while seq was being written and was set aside for it (the caller records
 * the done); otherwise it would stay pending with nothing queued.
 */
static int
map_undo(struct journal *j, const struct group *g, uint64_t seq, uint64_t prev)
{
	struct gkey_link **pp = map_slot(j, g, group_hash(g));
	struct entry *e = (struct entry *)*pp;

	if (e == NULL || e->seq != seq)
		return 0;            /* a later append or a done owns the entry now */
	if (prev != 0 && e->done_upto < prev) {
		e->seq = prev;
		return 0;
	}
	map_remove(j, pp);
	return prev != 0;
}

/*
 * g is done up to seq: forget it unless a later record exists (then the done
 * is kept aside in case that record's append fails). Returns 1 when forgotten.
 */
static int
map_done(struct journal *j, const struct group *g, uint64_t seq)
{
	struct gkey_link **pp = map_slot(j, g, group_hash(g));
	struct entry *e = (struct entry *)*pp;

	if (e == NULL)
		return 0;
	if (e->seq > seq) {
		if (e->done_upto < seq)
			e->done_upto = seq;
		return 0;
	}
	map_remove(j, pp);
	return 1;
}

static void
map_clear(struct journal *j)
{
	struct gkey_link *e, *next;
	size_t i;

	for (i = 0; i < j->map.n_buckets; i++)
		for (e = j->map.buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	gkey_map_release(&j->map);
}

/* ---- files ---- */

static int
write_all(int fd, const unsigned char *p, size_t n, size_t at)
{
	ssize_t w;

	while (n > 0) {
		w = pwrite(fd, p, n, (off_t)at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		at += (size_t)w;
	}
	return 0;
}

/* Everything pending as a fresh file image: magic, sequence floor, one 'A' per group. */
static void
snapshot(struct journal *j, struct buf *out)
{
	unsigned char rec[REC_HEAD + PAYLOAD_MAX];
	struct group g;
	const struct gkey_link *l;
	const struct entry *e;
	size_t i, n;

	out->len = 0;
	buf_add(out, MAGIC, MAGIC_LEN);
	n = enc_record(rec, 'S', j->next_seq, NULL);
	buf_add(out, rec, n);
	for (i = 0; i < j->map.n_buckets; i++)
		for (l = j->map.buckets[i]; l != NULL; l = l->next) {
			e = (const struct entry *)l;
			memset(&g, 0, sizeof(g));
			(void)gkey_get(e->key, &g);
			if ((n = enc_record(rec, 'A', e->seq, &g)) > 0)
				buf_add(out, rec, n);
		}
}

/*
 * Write img to journal.tmp, sync it, rename it over the journal and sync the
 * directory. Returns the new file's descriptor, or -1 with err filled.
 */
static int
replace_file(struct journal *j, const struct buf *img, char *err, size_t errlen)
{
	int fd, dfd;
	const char *step = "create";

	fd = open(j->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	step = "write";
	if (write_all(fd, img->p, img->len, 0) != 0)
		goto fail;
	step = "fsync";
	if (fsync(fd) != 0)
		goto fail;
	step = "rename";
	if (rename(j->tmp, j->path) != 0)
		goto fail;
	/* From here the new file is the journal whatever happens: keep its descriptor. */
	if ((dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) != 0)
		log_kv(LOG_ERROR, "journal", LOG_S("dir", j->dir), LOG_S("file", j->path),
		    LOG_S("result", "dir-fsync-failed"), LOG_S("detail", strerror(errno)));
	if (dfd >= 0)
		close(dfd);
	return fd;
fail:
	(void)am_fail(err, errlen, AM_EIO, "cannot %s %s: %s", step, j->tmp, strerror(errno));
	if (fd >= 0) {
		close(fd);
		(void)unlink(j->tmp);
	}
	return -1;
}

/*
 * Rewrite the file from the map. Caller holds mu and the flushing role;
 * the mutex is released during the I/O. Records still buffered are written
 * again afterwards: replaying a record twice changes nothing.
 */
static enum am_err
compact_locked(struct journal *j, char *err, size_t errlen)
{
	struct buf img = { NULL, 0, 0 };
	uint64_t upto;
	int fd, old;

	snapshot(j, &img);
	upto = j->lsn_buffered;
	pthread_mutex_unlock(&j->mu);
	fd = replace_file(j, &img, err, errlen);
	pthread_mutex_lock(&j->mu);
	if (fd >= 0) {
		old = j->fd;
		j->fd = fd;
		j->file_size = img.len;
		/* Everything buffered up to the snapshot is in the new file. */
		if (j->lsn_written < upto)
			j->lsn_written = upto;
		if (j->lsn_synced < upto)
			j->lsn_synced = upto;
		j->st.compactions++;
		if (old >= 0)
			close(old);
	}
	free(img.p);
	return fd >= 0 ? AM_OK : AM_EIO;
}

static void
maybe_compact_locked(struct journal *j)
{
	size_t bound = 4 * (j->live_bytes + MAGIC_LEN + 64);
	char err[512];

	if (bound < j->compact_min)
		bound = j->compact_min;
	if (j->broken || j->file_size <= bound || j->file_size < j->next_compact_try)
		return;
	if (compact_locked(j, err, sizeof(err)) != AM_OK) {
		/* Keep appending to the old file; try again after it grew some more. */
		j->next_compact_try = j->file_size + j->compact_min;
		log_kv(LOG_WARN, "journal compaction", LOG_S("result", "failed"), LOG_S("detail", err),
		    LOG_S("note", "continuing with the current file"));
	}
}

/*
 * Write what is buffered (and fdatasync when sync). Called with mu held and
 * nobody flushing; returns with mu held. A failed write makes every waiter
 * of that moment fail (fail_epoch): some of them may have been fine, which
 * costs a retried webhook, never a lost one.
 */
static void
flush_locked(struct journal *j, int sync)
{
	struct buf b = j->pend;
	uint64_t target = j->lsn_buffered;
	size_t at = j->file_size;
	int fd = j->fd, need_sync = sync && j->lsn_synced < target, wrc = 0, src = 0, saved;

	j->flushing = 1;
	j->pend = j->spare;
	j->pend.len = 0;
	pthread_mutex_unlock(&j->mu);
	if (b.len > 0)
		wrc = write_all(fd, b.p, b.len, at);
	if (wrc == 0 && need_sync)
		src = fdatasync(fd);
	saved = errno;
	pthread_mutex_lock(&j->mu);
	if (wrc == 0 && src == 0) {
		j->file_size += b.len;
		j->lsn_written = target;
		if (need_sync) {
			j->lsn_synced = target;
			j->st.syncs++;
		}
	} else {
		j->st.write_errors++;
		j->fail_epoch++;
		j->lsn_written = j->lsn_synced = target;
		if (src != 0) {
			/* After a failed fsync the kernel may have dropped the pages: trust nothing. */
			j->broken = 1;
			log_kv(LOG_ERROR, "journal", LOG_S("file", j->path), LOG_S("result", "fdatasync-failed"),
			    LOG_S("detail", strerror(saved)),
			    LOG_S("note", "webhooks are answered 503 until archmerge is restarted"));
		} else if (ftruncate(fd, (off_t)at) != 0) {
			j->broken = 1;
			log_kv(LOG_ERROR, "journal", LOG_S("file", j->path), LOG_S("result", "write-failed"),
			    LOG_S("detail", strerror(saved)), LOG_S("truncate_error", strerror(errno)),
			    LOG_S("note", "the file cannot be cut back: webhooks are answered 503 until "
			    "archmerge is restarted"));
		} else {
			log_kv(LOG_ERROR, "journal", LOG_S("file", j->path), LOG_S("result", "write-failed"),
			    LOG_S("detail", strerror(saved)),
			    LOG_S("note", "the webhooks of this batch are answered 503"));
		}
	}
	b.len = 0;
	j->spare = b;
	if (!j->broken)
		maybe_compact_locked(j);
	j->flushing = 0;
	pthread_cond_broadcast(&j->cv);
}

/* ---- replay ---- */

static void
apply_record(struct journal *j, char type, uint64_t seq, const struct group *g, size_t len)
{
	if (seq >= j->next_seq)
		j->next_seq = seq + 1;
	if (type == 'A')
		map_append(j, g, seq, len);
	else if (type == 'D')
		(void)map_done(j, g, seq);
}

static size_t
resync(const unsigned char *data, size_t size, size_t from)
{
	struct group g;
	uint64_t seq;
	char type;

	for (; from + REC_HEAD <= size; from++)
		if (dec_record(data + from, size - from, &type, &seq, &g) > 0)
			return from;
	return size;
}

/* The whole file into *data (caller frees), *size bytes read. */
static enum am_err
read_all(struct journal *j, int fd, unsigned char **data, size_t *size, char *err, size_t errlen)
{
	struct stat sb;
	ssize_t r;

	*data = NULL;
	*size = 0;
	if (fstat(fd, &sb) != 0)
		return am_fail(err, errlen, AM_EIO, "cannot stat %s: %s", j->path, strerror(errno));
	*data = xmalloc((size_t)sb.st_size + 1);
	while (*size < (size_t)sb.st_size) {
		r = read(fd, *data + *size, (size_t)sb.st_size - *size);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return am_fail(err, errlen, AM_EIO, "cannot read %s: %s", j->path, strerror(errno));
		if (r == 0)
			break;
		*size += (size_t)r;
	}
	return AM_OK;
}

/* Every record after the magic applied in order; torn tails and corrupt runs skipped, logged. */
static void
apply_all(struct journal *j, const unsigned char *data, size_t size)
{
	struct group g;
	size_t off, next;
	uint64_t seq;
	long n;
	char type;

	for (off = MAGIC_LEN; off < size; ) {
		n = dec_record(data + off, size - off, &type, &seq, &g);
		if (n > 0) {
			apply_record(j, type, seq, &g, (size_t)n);
			off += (size_t)n;
			continue;
		}
		next = resync(data, size, off + 1);
		if (next == size) {
			log_kv(LOG_WARN, "journal", LOG_S("file", j->path), LOG_S("result", "torn-tail-ignored"),
			    LOG_I("offset", off), LOG_I("bytes", size - off));
			break;
		}
		log_kv(LOG_WARN, "journal", LOG_S("file", j->path), LOG_S("result", "corrupt-skipped"),
		    LOG_I("offset", off), LOG_I("bytes", next - off));
		off = next;
	}
}

static enum am_err
replay(struct journal *j, char *err, size_t errlen)
{
	unsigned char *data = NULL;
	size_t size = 0;
	enum am_err rc;
	int fd;

	if ((fd = open(j->path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return AM_OK;
		return am_fail(err, errlen, AM_EIO, "cannot open %s: %s", j->path, strerror(errno));
	}
	if ((rc = read_all(j, fd, &data, &size, err, errlen)) != AM_OK)
		goto done;
	/* A file cut short right after creation holds only the start of the magic. */
	if (memcmp(data, MAGIC, size < MAGIC_LEN ? size : MAGIC_LEN) != 0) {
		rc = am_fail(err, errlen, AM_EINVAL, "%s is not an archmerge journal "
		    "(move it away if this state_dir belongs to something else)", j->path);
		goto done;
	}
	if (size >= MAGIC_LEN)
		apply_all(j, data, size);
done:
	free(data);
	close(fd);
	return rc;
}

/* ---- public ---- */

static enum am_err
check_dir(const char *dir, char *err, size_t errlen)
{
	struct stat sb;

	/* The last component is created (as the remembered-repositories file does);
	 * a missing parent is a configuration mistake worth stopping for. */
	if (stat(dir, &sb) != 0 && (errno != ENOENT || mkdir(dir, 0700) != 0 || stat(dir, &sb) != 0))
		return am_fail(err, errlen, AM_EIO, "state_dir %s: %s (create it, writable by the "
		    "user archmerge runs as)", dir, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return am_fail(err, errlen, AM_EIO, "state_dir %s is not a directory", dir);
	if (access(dir, W_OK | X_OK) != 0)
		return am_fail(err, errlen, AM_EIO, "state_dir %s is not writable: %s", dir,
		    strerror(errno));
	return AM_OK;
}

enum am_err
journal_open(const char *dir, struct journal **out, char *err, size_t errlen)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	char lock_path[PATH_LEN];
	enum am_err rc;

	pthread_once(&crc_once, crc_init);
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	j->fd = j->lock_fd = -1;
	j->next_seq = 1;
	j->compact_min = COMPACT_MIN;
	gkey_map_init(&j->map, offsetof(struct entry, key));
	if (am_fmt(j->dir, sizeof(j->dir), "%s", dir) != 0 ||
	    am_fmt(j->path, sizeof(j->path), "%s/journal", dir) != 0 ||
	    am_fmt(j->tmp, sizeof(j->tmp), "%s/journal.tmp", dir) != 0 ||
	    am_fmt(lock_path, sizeof(lock_path), "%s/journal.lock", dir) != 0) {
		rc = am_fail(err, errlen, AM_EINVAL, "state_dir path is too long");
		goto fail;
	}
	if ((rc = check_dir(dir, err, errlen)) != AM_OK)
		goto fail;
	if ((j->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		rc = am_fail(err, errlen, AM_EIO, "cannot create %s: %s", lock_path, strerror(errno));
		goto fail;
	}
	if (flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		rc = am_fail(err, errlen, AM_EIO, "state_dir %s is in use by another archmerge "
		    "process (%s is locked)", dir, lock_path);
		goto fail;
	}
	if ((rc = replay(j, err, errlen)) != AM_OK)
		goto fail;
	/* Start from a clean file: drops done work, torn tails and corrupt records. */
	pthread_mutex_lock(&j->mu);
	rc = compact_locked(j, err, errlen);
	pthread_mutex_unlock(&j->mu);
	if (rc != AM_OK)
		goto fail;
	j->next_compact_try = 0;
	*out = j;
	return AM_OK;
fail:
	journal_free(j);
	return rc;
}

void
journal_free(struct journal *j)
{
	if (j == NULL)
		return;
	pthread_mutex_lock(&j->mu);
	while (j->flushing)
		pthread_cond_wait(&j->cv, &j->mu);
	if (j->fd >= 0 && !j->broken && j->pend.len > 0)
		flush_locked(j, 1);
	pthread_mutex_unlock(&j->mu);
	if (j->fd >= 0)
		close(j->fd);
	if (j->lock_fd >= 0)
		close(j->lock_fd);
	map_clear(j);
	free(j->pend.p);
	free(j->spare.p);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j);
}

size_t
journal_pending(struct journal *j, void (*fn)(void *ctx, const struct group *g), void *ctx)
{
	struct buf keys = { NULL, 0, 0 };
	struct group g;
	const struct gkey_link *l;
	const struct entry *e;
	size_t i, n = 0, off;

	/* Copy first (packed keys, not struct groups): fn may append or mark done. */
	pthread_mutex_lock(&j->mu);
	for (i = 0; i < j->map.n_buckets; i++)
		for (l = j->map.buckets[i]; l != NULL; l = l->next) {
			e = (const struct entry *)l;
			buf_add(&keys, e->key, e->key_len);
			n++;
		}
	pthread_mutex_unlock(&j->mu);
	for (i = 0, off = 0; i < n; i++) {
		off += gkey_get((const char *)keys.p + off, &g);
		fn(ctx, &g);
	}
	free(keys.p);
	return n;
}

enum am_err
journal_append(struct journal *j, const struct group *g, uint64_t *seq_out,
    char *err, size_t errlen)
{
	unsigned char rec[REC_HEAD + PAYLOAD_MAX];
	uint64_t seq, mine, prev;
	unsigned epoch;
	size_t n;
	enum am_err rc = AM_OK;

	pthread_mutex_lock(&j->mu);
	if (j->broken) {
		j->st.last_fail_ms = am_now_ms();
		rc = am_fail(err, errlen, AM_EIO, "the journal in %s failed earlier; restart archmerge",
		    j->dir);
		goto out;
	}
	seq = j->next_seq;
	if (g->rule_name[0] == '\0' || (n = enc_record(rec, 'A', seq, g)) == 0) {
		rc = am_fail(err, errlen, AM_EINVAL, "group %s/%s:%s cannot be journaled", g->host,
		    g->repo, g->version);
		goto out;
	}
	j->next_seq++;
	buf_add(&j->pend, rec, n);
	j->lsn_buffered += n;
	prev = map_append(j, g, seq, n);
	mine = j->lsn_buffered;
	epoch = j->fail_epoch;
	while (j->fail_epoch == epoch && j->lsn_synced < mine) {
		if (!j->flushing)
			flush_locked(j, 1);
		else
			pthread_cond_wait(&j->cv, &j->mu);
	}
	if (j->fail_epoch != epoch) {
		/* Done after all: its record goes with the next write (lost, a restart reruns it once). */
		if (map_undo(j, g, seq, prev) && (n = enc_record(rec, 'D', prev, g)) > 0) {
			buf_add(&j->pend, rec, n);
			j->lsn_buffered += n;
			j->st.dones++;
		}
		j->st.last_fail_ms = am_now_ms();
		j->st.failing = 1;
		rc = am_fail(err, errlen, AM_EIO, "cannot write the journal in %s (see the log)", j->dir);
		goto out;
	}
	j->st.appends++;
	j->st.last_ok_ms = am_now_ms();
	if (j->st.failing)
		j->recovered = 1;
	j->st.failing = 0;
	if (seq_out != NULL)
		*seq_out = seq;
out:
	pthread_mutex_unlock(&j->mu);
	return rc;
}

uint64_t
journal_latest(struct journal *j, const struct group *g)
{
	struct entry *e;
	uint64_t seq;

	pthread_mutex_lock(&j->mu);
	e = (struct entry *)*map_slot(j, g, group_hash(g));
	seq = e != NULL ? e->seq : 0;
	pthread_mutex_unlock(&j->mu);
	return seq;
}

void
journal_done(struct journal *j, const struct group *g, uint64_t seq)
{
	unsigned char rec[REC_HEAD + PAYLOAD_MAX];
	size_t n;

	pthread_mutex_lock(&j->mu);
	if (seq == 0 || (n = enc_record(rec, 'D', seq, g)) == 0 || !map_done(j, g, seq))
		goto out;
	buf_add(&j->pend, rec, n);
	j->lsn_buffered += n;
	j->st.dones++;
	/* Written now when the file is free; otherwise the next flush takes it along. */
	if (!j->flushing && !j->broken)
		flush_locked(j, 0);
out:
	pthread_mutex_unlock(&j->mu);
}

enum am_err
journal_compact(struct journal *j, char *err, size_t errlen)
{
	enum am_err rc;

	pthread_mutex_lock(&j->mu);
	while (j->flushing)
		pthread_cond_wait(&j->cv, &j->mu);
	j->flushing = 1;
	rc = compact_locked(j, err, errlen);
	j->flushing = 0;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

void
journal_set_compact_min(struct journal *j, size_t bytes)
{
	pthread_mutex_lock(&j->mu);
	j->compact_min = bytes;
	pthread_mutex_unlock(&j->mu);
}

int
journal_recovered(struct journal *j)
{
	int r;

	pthread_mutex_lock(&j->mu);
	r = j->recovered;
	j->recovered = 0;
	pthread_mutex_unlock(&j->mu);
	return r;
}

void
journal_get_stats(struct journal *j, struct journal_stats *out)
{
	pthread_mutex_lock(&j->mu);
	*out = j->st;
	out->pending = j->map.n;
	out->file_bytes = j->file_size;
	out->broken = j->broken;
	pthread_mutex_unlock(&j->mu);
}
