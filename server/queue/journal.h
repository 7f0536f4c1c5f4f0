/*
 * The durable side of the queue: an append-only journal in state_dir. A
 * webhook is answered 202 only after its group's record is on disk (fsync,
 * shared by concurrent appenders); a group is marked done when an assembly
 * that started after its latest record finished for good. On start, the
 * groups not done are handed back for replay.
 *
 * File <state_dir>/journal: an 8-byte magic, then records
 *   u32 length | u32 crc32(payload) | payload
 * payload: u8 type ('A' append, 'D' done, 'S' sequence floor), u64 seq,
 * then host, rule name, repository, version as u16 length + bytes.
 * A torn or corrupt record is skipped with a warning. The file is rewritten
 * (compacted) at open and whenever it outgrows its live content.
 */
#ifndef AM_JOURNAL_H
#define AM_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include "config/rule.h"

struct journal;

struct journal_stats {
	unsigned long long appends;      /* records made durable for callers */
	unsigned long long syncs;        /* fdatasync calls for appends */
	unsigned long long dones;        /* done records written */
	unsigned long long compactions;
	unsigned long long write_errors;
	size_t pending;                  /* groups not done */
	size_t file_bytes;               /* current size of the journal file */
	long long last_ok_ms;            /* am_now_ms() of the last durable append; 0: none */
	long long last_fail_ms;          /* ... of the last failed append; 0: none */
	int failing;                     /* the last append failed */
	int broken;                      /* appends refused until restart */
};

/*
 * Open (or create) the journal in dir and replay it. Fails with a clear
 * message when dir is missing, not writable, already used by another
 * archmerge, or holds a file that is not a journal.
 */
enum am_err journal_open(const char *dir, struct journal **out, char *err, size_t errlen);

/* Write what is still buffered and close. Accepts NULL. */
void journal_free(struct journal *j);

/* Call fn for every group not done yet (replay); returns how many. */
size_t journal_pending(struct journal *j, void (*fn)(void *ctx, const struct group *g), void *ctx);

/*
 * Record an event for g. Returns only once the record is on disk; *seq
 * (may be NULL) gets its sequence number. Thread safe; concurrent callers
 * share one fdatasync. On failure nothing may be promised to the sender.
 */
enum am_err journal_append(struct journal *j, const struct group *g, uint64_t *seq,
    char *err, size_t errlen);

/* Sequence of the latest record of g, 0 when g has nothing pending. */
uint64_t journal_latest(struct journal *j, const struct group *g);

/*
 * g is done up to seq: a later record keeps it pending. Not synced: a lost
 * done record only repeats an assembly after a crash.
 */
void journal_done(struct journal *j, const struct group *g, uint64_t seq);

/* Rewrite the file with only the pending groups (normally automatic). */
enum am_err journal_compact(struct journal *j, char *err, size_t errlen);

/* Compact automatically once the file exceeds max(bytes, 4 x live content). */
void journal_set_compact_min(struct journal *j, size_t bytes);

/*
 * 1 once after an append succeeded following failed ones (the disk has room
 * again), else 0. A group whose events were refused while the disk was full
 * may then be pending with nothing queued for it; the caller queues every
 * pending group again (coalesced with what is queued), so that each is run
 * and written done.
 */
int journal_recovered(struct journal *j);

void journal_get_stats(struct journal *j, struct journal_stats *out);

#endif
