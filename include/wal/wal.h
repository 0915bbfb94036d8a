/*
 * wal: a write-ahead log and snapshot-file library.
 *
 * It stores opaque records — a type byte (1-255) and up to WAL_RECORD_MAX
 * bytes — numbered by a log sequence number (LSN) that starts at 1 and grows
 * by one per record. It knows nothing of what the records mean. The byte
 * format is docs/wal-format.md.
 *
 * Layout inside a directory <dir>:
 *   <dir>/wal/<first-lsn, 20 digits>.wal         log segments
 *   <dir>/snapshots/<lsn, 20 digits>.snap         snapshots (state as of lsn)
 *
 * Life cycle:
 *   wal_open()      recovers (newest valid snapshot, then every later record,
 *                   through the callbacks) and starts a new segment for appends;
 *   wal_append()    numbers a record and queues it (fast; no I/O);
 *   wal_wait()      blocks until that record is durable (group commit);
 *   wal_snapshot_*  writes a snapshot beside the running log and trims it;
 *   wal_close()     flushes, syncs and closes.
 *
 * Errors: functions return 0 or a negative value: -errno for system errors,
 * WAL_E* for the library's own. A failed sync, and a write that failed for
 * any reason but a full disk, is sticky: every later append and wait returns
 * WAL_E_FAILED until the log is reopened (a sync is never retried: the
 * kernel may have dropped the pages it could not write). A write refused
 * for want of space (ENOSPC, EDQUOT) is not: the log cuts the partial frame
 * off, refuses appends and fails waits with WAL_E_NOSPACE, retries the same
 * frame every space_retry_ms, and takes appends again by itself once it is
 * written (see wal_get_state).
 *
 * Threads: wal_append, wal_wait, wal_last_lsn, wal_durable_lsn and the
 * snapshot functions may be called from any thread at once. One writer
 * thread inside the library does all writes and syncs of the log.
 */
#ifndef WAL_H
#define WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WAL_RECORD_MAX (16u << 20) /* largest record payload */
#define WAL_FORMAT_VERSION 1       /* written; files of a higher version are refused */

/* Errors of the library (below -1000, so never an errno). */
#define WAL_E_CORRUPT (-1001)   /* a checksum or structure check failed */
#define WAL_E_VERSION (-1002)   /* written by a newer format version */
#define WAL_E_FAILED (-1003)    /* an earlier write or sync failed (sticky) */
#define WAL_E_CLOSED (-1004)    /* the log is closing */
#define WAL_E_TOO_LARGE (-1005) /* a record over WAL_RECORD_MAX */
#define WAL_E_GAP (-1006)       /* records missing between snapshot and log */
#define WAL_E_ARG (-1007)       /* a bad argument (type 0, NULL pointer...) */
#define WAL_E_CALLBACK (-1008)  /* a replay callback returned non-zero */
#define WAL_E_NOSPACE (-1009)   /* the disk is full: refused for now, retried by the log */
#define WAL_E_KEY (-1010)       /* sealed with another key, sealed without a key given, or
                                   plain while a key is given */

#define WAL_KEY_BYTES 32    /* an AES-256 master key */
#define WAL_KEY_ID_BYTES 16 /* what names a key without revealing it */

/* The id of a master key: HKDF-SHA256(key, no salt, "parley key id v1"),
 * 16 bytes. Sealed files carry its first 8 bytes; a data directory's key
 * check file can carry all 16. */
void wal_key_id(const uint8_t key[WAL_KEY_BYTES], uint8_t out[WAL_KEY_ID_BYTES]);

/* A short English description of an error code (never NULL). */
const char *wal_strerror(int err);

enum wal_fsync {
    WAL_FSYNC_ALWAYS, /* wal_wait returns after fdatasync (the default) */
    WAL_FSYNC_BATCH,  /* after write(); fdatasync at most every batch_ms */
    WAL_FSYNC_NONE,   /* after write(); the OS syncs when it likes */
};

/*
 * The file operations the log's writer uses, so tests can inject failures.
 * Each behaves like the POSIX call of the same name.
 */
typedef struct wal_io {
    ssize_t (*write)(int fd, const void *buf, size_t len);
    int (*fdatasync)(int fd);
} wal_io_t;

/* A message from the library: level 0 error, 1 warning, 2 info. */
typedef void (*wal_log_fn)(void *ctx, int level, const char *message);

typedef struct wal_options {
    enum wal_fsync fsync;
    unsigned batch_ms;         /* WAL_FSYNC_BATCH interval; 0 means 10 */
    uint64_t segment_bytes;    /* roll to a new segment past this; 0 means 64 MiB */
    int compression_level;     /* zstd level; 0 means 1; negative disables compression */
    bool repair;               /* cut the log at the first bad record instead of failing */
    wal_log_fn log;            /* may be NULL */
    void *log_ctx;
    const wal_io_t *io;        /* NULL: the POSIX calls */
    unsigned space_retry_ms;   /* how often a write refused for space is retried; 0 means 1000 */
    /* WAL_KEY_BYTES of master key: every file written is sealed (AES-256-GCM,
     * docs/wal-format.md) and every file read must be sealed with it. NULL:
     * plain files, and a sealed file is refused (WAL_E_KEY). Copied at open. */
    const uint8_t *key;
} wal_options_t;

/* What recovery found, filled by wal_open and wal_check. */
typedef struct wal_recovery {
    uint64_t snapshot_lsn;       /* 0 when no snapshot was loaded */
    uint64_t snapshot_records;
    uint64_t first_lsn;          /* first log record replayed (0: none) */
    uint64_t last_lsn;           /* last LSN recovered (snapshot or log) */
    uint64_t records_replayed;   /* log records given to on_record */
    uint64_t segments;
    uint64_t bytes_dropped;      /* cut from a torn tail (or by repair) */
    char cut_file[4200];         /* where a cut happened, "" when none */
    uint64_t cut_offset;
    char error_file[4200];       /* where corruption was found, "" when none */
    uint64_t error_offset;
} wal_recovery_t;

/*
 * Callbacks of recovery. Each returns 0 to go on; anything else stops
 * recovery with WAL_E_CALLBACK. `data` is valid only during the call.
 *   on_snapshot_begin  a snapshot at `lsn` is about to be loaded (may be NULL)
 *   on_snapshot_record one record of that snapshot
 *   on_record          one log record with lsn > the snapshot's lsn, in order
 * When a snapshot turns out bad part-way, the library logs it and starts over
 * with an older one: on_snapshot_begin is called again, and the caller must
 * discard what it loaded. When none is left it is called with lsn 0, which
 * means: discard, recovery goes on from the log alone.
 */
typedef struct wal_replay {
    int (*on_snapshot_begin)(void *ctx, uint64_t lsn);
    int (*on_snapshot_record)(void *ctx, uint8_t type, const void *data, size_t len);
    int (*on_record)(void *ctx, uint64_t lsn, uint8_t type, const void *data, size_t len);
    void *ctx;
} wal_replay_t;

typedef struct wal wal_t;

/*
 * Opens the log in `dir` (creating <dir>/wal and <dir>/snapshots), recovers
 * through `replay` (may be NULL), and starts the writer on a new segment.
 * The caller must hold the directory (Parley's data-directory lock).
 *
 * A torn or zero-filled tail of the last segment is cut off and logged.
 * Corruption anywhere else — or a bad record followed by a valid one, even in
 * the last segment — fails with WAL_E_CORRUPT (file and offset in *report)
 * unless opts->repair, which cuts the log at the last good record and drops
 * every later segment. A file of a newer format fails with WAL_E_VERSION.
 *
 * Returns 0 and sets *out, or an error; *report (may be NULL) says what
 * happened either way.
 */
int wal_open(const char *dir, const wal_options_t *opts, const wal_replay_t *replay,
             wal_t **out, wal_recovery_t *report);

/*
 * Flushes what is queued, syncs it (whatever the policy), stops the writer
 * and frees the log. Returns the sticky error if there was one. NULL is a
 * no-op.
 */
int wal_close(wal_t *w);

/*
 * Numbers a record and queues it for the writer; copies `data`. Returns 0
 * and sets *lsn, WAL_E_TOO_LARGE, WAL_E_ARG (type 0), WAL_E_CLOSED,
 * WAL_E_NOSPACE (the log waits for space: nothing queued, no LSN used), or
 * WAL_E_FAILED (read-only). Blocks only when the queue is full (the writer is behind by
 * more than 64 MiB).
 */
int wal_append(wal_t *w, uint8_t type, const void *data, size_t len, uint64_t *lsn);

/*
 * Blocks until record `lsn` is durable under the fsync policy (synced for
 * ALWAYS; written for BATCH and NONE). Returns 0, WAL_E_FAILED when the
 * write or sync that carried it failed, or WAL_E_NOSPACE while the log waits
 * for space: the record is not durable yet, but stays queued and is written
 * when space returns (a later wal_wait of it can return 0), so a caller that
 * answers "failed" must treat the outcome as unknown, not as undone.
 */
int wal_wait(wal_t *w, uint64_t lsn);

/*
 * Blocks until every record handed out so far is synced to disk, whatever
 * the fsync policy. Returns 0, WAL_E_FAILED, or WAL_E_NOSPACE (at once while
 * the log waits for space; so wal_snapshot_commit fails then too).
 */
int wal_sync(wal_t *w);

/* The last LSN handed out by wal_append (or recovered). */
uint64_t wal_last_lsn(wal_t *w);

/* The last LSN that is synced to disk. */
uint64_t wal_durable_lsn(wal_t *w);

/* What the log can do now. */
typedef enum wal_state {
    WAL_STATE_OK,       /* takes appends */
    WAL_STATE_NO_SPACE, /* a write was refused for space: appends refused, retried */
    WAL_STATE_FAILED,   /* a sync or write failed: read-only until reopened */
} wal_state_t;

/* Why the log is not OK. */
typedef struct wal_fault {
    int error;        /* the errno of the failure (EIO, ENOSPC...); 0 when OK */
    const char *what; /* static: "write", "fdatasync", "new segment"; "" when OK */
    int64_t since_ms; /* wall clock when it began (ms since the epoch); 0 when OK */
    uint64_t space_stalls; /* writes refused for space since open (whatever the state) */
} wal_fault_t;

/* The log's state, and in *fault (may be NULL) why. Thread-safe and cheap
 * (the mutex only). */
wal_state_t wal_get_state(wal_t *w, wal_fault_t *fault);

/* "ok", "no_space", "read_only". */
const char *wal_state_name(wal_state_t state);

/* Bytes of log on disk (all segments), and the number of segments. */
void wal_disk_usage(wal_t *w, uint64_t *bytes, uint64_t *segments);

/* ---- figures --------------------------------------------------------------- */

/*
 * What the log has been doing, for monitoring. The latencies and batch
 * sizes cover the syncs of the last WAL_STATS_WINDOW seconds: the writer
 * notes each fdatasync of the log (its duration and how many records it
 * made durable: the group-commit batch) in a per-second slot of a fixed
 * histogram, under the mutex it takes anyway after a sync. Percentiles are
 * the lower edge of their histogram bucket (4 buckets per power of two,
 * so within 19% below the true value); p50 <= p99 <= max always.
 */
#define WAL_STATS_WINDOW 60

/*
 * Beside the window, cumulative histograms since open, for Prometheus-style
 * histograms (a rate over any range, quantiles across servers): fdatasync
 * latencies in WAL_FSYNC_BUCKETS fixed buckets whose upper bounds are
 * wal_fsync_bounds_us, and group-commit batch sizes (records per sync) in
 * WAL_BATCH_BUCKETS buckets bounded by wal_batch_bounds; the last slot of
 * each counts what is over the last bound. Per bucket, not cumulative.
 */
#define WAL_FSYNC_BUCKETS 12
#define WAL_BATCH_BUCKETS 11
extern const uint64_t wal_fsync_bounds_us[WAL_FSYNC_BUCKETS];
extern const uint64_t wal_batch_bounds[WAL_BATCH_BUCKETS];

typedef struct wal_stats {
    uint64_t last_lsn, durable_lsn;
    uint64_t segments, bytes;       /* every segment on disk */
    uint64_t segment_first_lsn;     /* the segment appends go to */
    uint64_t segment_bytes;         /* its size */
    uint64_t syncs_total;           /* fdatasyncs of the log since open */
    uint64_t syncs;                 /* in the window */
    uint64_t fsync_p50_us, fsync_p99_us, fsync_max_us; /* 0 when no sync */
    double batch_mean;              /* records per sync in the window */
    uint64_t batch_max;
    uint64_t fsync_hist[WAL_FSYNC_BUCKETS + 1]; /* since open, per bucket */
    uint64_t fsync_sum_us;                      /* since open */
    uint64_t batch_hist[WAL_BATCH_BUCKETS + 1]; /* since open, per bucket */
    uint64_t batch_sum;                         /* records synced since open */
    uint64_t appends_total;                     /* records appended since open */
    uint64_t append_bytes_total;                /* their payload bytes (before compression) */
    uint64_t snapshot_lsn;          /* newest committed snapshot (0: none) */
    uint64_t snapshot_bytes;        /* its file's size (0 if it could not be read) */
    int64_t snapshot_time_ms;       /* its file's modification time (ms since the epoch) */
    bool snapshot_running;
    uint64_t space_stalls;          /* writes refused for space since open (each retried) */
} wal_stats_t;

/* Fills *out; thread-safe, O(window x buckets). */
void wal_get_stats(wal_t *w, wal_stats_t *out);

/* ---- snapshots ---------------------------------------------------------- */

typedef struct wal_snapshot wal_snapshot_t;

/*
 * Starts a snapshot of the state as of `lsn` (normally wal_last_lsn() read
 * before the state is serialised; the state may already include later
 * records, which replay must tolerate). Writes <dir>/snapshots/<lsn>.tmp.
 */
int wal_snapshot_begin(wal_t *w, uint64_t lsn, wal_snapshot_t **out);

/* Adds one record (type 1-255) to the snapshot; copies `data`. */
int wal_snapshot_add(wal_snapshot_t *s, uint8_t type, const void *data, size_t len);

/*
 * Finishes the snapshot: waits until the log is synced up to the last LSN
 * handed out, whatever the fsync policy (so the snapshot holds nothing that
 * could be lost), writes the
 * end record, syncs, renames to <lsn>.snap, syncs the directory. Then removes
 * snapshots older than the previous one, and the log segments wholly covered
 * by the previous one, so that the previous snapshot and the log after it
 * stay a complete fallback. Frees `s` in every case.
 */
int wal_snapshot_commit(wal_snapshot_t *s);

/* Abandons a snapshot and removes its temporary file. NULL is a no-op. */
void wal_snapshot_abort(wal_snapshot_t *s);

/* The LSN of the newest committed snapshot (0: none). */
uint64_t wal_snapshot_lsn(wal_t *w);

/* ---- backups ------------------------------------------------------------ */

/*
 * A consistent cut of the log for a backup: the newest snapshot and the
 * segments after it up to `lsn`, which is durable and ends a frame. While
 * the hold lasts, wal__trim keeps that snapshot and those segments on disk
 * (new snapshots and appends go on). Owned by the caller of wal_hold_begin.
 */
typedef struct wal_hold {
    wal_t *w;
    uint64_t snapshot_lsn; /* 0: no snapshot, the log from LSN 1 */
    uint64_t lsn;          /* the last record of the cut */
    uint64_t *segments;    /* first LSNs (file names) of the segments needed, ascending */
    size_t n_segments;
} wal_hold_t;

/*
 * Syncs the log (wal_sync), then fills *out and registers the hold. Returns
 * 0, an error of wal_sync (WAL_E_NOSPACE, WAL_E_FAILED), or WAL_E_ARG (more
 * than 16 holds at once). Thread-safe.
 */
int wal_hold_begin(wal_t *w, wal_hold_t *out);

/* Releases a hold and frees its list; a zeroed hold is a no-op. */
void wal_hold_end(wal_hold_t *h);

/*
 * Where the frames of the segment file `path` holding records up to `lsn`
 * end (*end: a byte offset; the file header alone when none is <= lsn).
 * Frame headers and checksums are checked, payloads not decoded, so a
 * sealed log is cut as well as a plain one. Works on a segment that is
 * being appended to. Returns 0, -errno, WAL_E_CORRUPT (a bad frame before
 * lsn), WAL_E_VERSION, or WAL_E_ARG (a frame holds both lsn and lsn + 1).
 */
int wal_segment_cut(const char *path, uint64_t lsn, uint64_t *end);

/* ---- offline tools (the directory must not be open for writing) --------- */

/* One record as seen by wal_inspect. */
typedef struct wal_inspect_record {
    const char *file;     /* segment or snapshot file name */
    uint64_t offset;      /* offset of the frame that holds it */
    uint64_t lsn;         /* 0 for snapshot records */
    uint8_t type;
    uint32_t raw_len;     /* the record's length */
    const void *data;     /* its raw_len bytes (valid during the call) */
    uint32_t frame_stored; /* the whole frame's stored (compressed) length */
    uint32_t frame_raw;    /* the whole frame's raw length */
    bool checksum_ok;
} wal_inspect_record_t;

/*
 * Walks every snapshot and segment in `dir` and calls `fn` once per record;
 * a frame whose checksum fails is reported once with checksum_ok false and
 * ends that file. Returns 0 or an error.
 */
int wal_inspect(const char *dir, void (*fn)(void *ctx, const wal_inspect_record_t *rec),
                void *ctx);
/* The same, reading sealed files with `key` (NULL: plain files only). */
int wal_inspect_key(const char *dir, const uint8_t *key,
                    void (*fn)(void *ctx, const wal_inspect_record_t *rec), void *ctx);

/* What seals one file: 0 plain, 1 sealed, with the 8-byte key id in
 * id_out (may be NULL); a negative error when it cannot be read or is not
 * a log file. */
int wal_file_seal(const char *path, uint8_t id_out[8]);

/*
 * Writes `dst` (created, 0600, fsynced; it must not exist) with the frames
 * of segment or snapshot `src` opened with `old_key` (NULL: plain) sealed
 * with `new_key` (NULL: plain) under a fresh salt. The records, LSNs and
 * zstd stream are unchanged. `src` must scan clean (a torn tail is left
 * out). Returns 0, WAL_E_KEY, WAL_E_CORRUPT or -errno.
 */
int wal_reseal_file(const char *src, const char *dst, bool is_snapshot, const uint8_t *old_key,
                    const uint8_t *new_key);

/*
 * Verifies every snapshot and the whole log without changing anything, as
 * recovery would (a torn tail of the last segment is reported in *report,
 * not an error; a damaged snapshot is an error even though recovery could
 * fall back to an older one). Messages go to opts->log (opts may be NULL).
 * Returns 0, or the error with the place in *report.
 */
int wal_check(const char *dir, const wal_options_t *opts, wal_recovery_t *report);

/*
 * Scans one file image (a segment or snapshot) from memory, as recovery
 * does; used by the fuzz harness. Returns 0, WAL_E_CORRUPT, WAL_E_VERSION or
 * WAL_E_KEY (the image is sealed).
 */
int wal_scan_image(const void *data, size_t len, bool is_snapshot);
/* The same with a key (NULL: as wal_scan_image); also WAL_E_KEY. */
int wal_scan_image_key(const void *data, size_t len, bool is_snapshot, const uint8_t *key);

#endif
