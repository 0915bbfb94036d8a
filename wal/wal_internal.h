/* Declarations shared by the files of wal/ (not part of the public API). */
#ifndef WAL_INTERNAL_H
#define WAL_INTERNAL_H

#include <stdarg.h>
#include <zstd.h>

#include "wal.h"
#include "wal_format.h"

/* A growable byte buffer (util.c); allocation failure aborts. */
typedef struct walf_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} walf_buf_t;

/* ---- seal.c: AES-256-GCM over frames ---- */

typedef struct walf_seal {
    void *h; /* gnutls_aead_cipher_hd_t; NULL: the file is plain */
    uint8_t aad[WALF_SEALED_HEADER];
    walf_buf_t scratch; /* the writer's compressed payload before sealing */
} walf_seal_t;

/* Fills the seal block (header + 32) of a new file: fresh salt, key id. */
void wal__seal_block(uint8_t *header, const uint8_t key[WAL_KEY_BYTES]);
bool wal__seal_block_ok(const uint8_t *header);
bool wal__seal_key_matches(const uint8_t *header, const uint8_t key[WAL_KEY_BYTES]);
/* The file's cipher from its 64 header bytes. 0 or WAL_E_KEY. */
int wal__seal_open(walf_seal_t *s, const uint8_t key[WAL_KEY_BYTES], const uint8_t *header,
                   bool snapshot);
void wal__seal_close(walf_seal_t *s);
/* out gets len + WALF_TAG_BYTES bytes. */
int wal__seal_encrypt(const walf_seal_t *s, uint64_t offset, const uint8_t *frame_header,
                      const uint8_t *plain, size_t len, uint8_t *out);
/* out gets len - WALF_TAG_BYTES bytes; false when the tag does not hold. */
bool wal__seal_decrypt(const walf_seal_t *s, uint64_t offset, const uint8_t *frame_header,
                       const uint8_t *sealed, size_t len, uint8_t *out);

/* ---- scan.c: reading one file image ---- */

typedef enum {
    WALF_SCAN_CLEAN,   /* every frame good up to the end (or a zero tail) */
    WALF_SCAN_TORN,    /* a bad frame with nothing valid after it */
    WALF_SCAN_CORRUPT, /* a bad frame followed by a valid one, or a structural error */
    WALF_SCAN_VERSION, /* a newer format version */
    WALF_SCAN_KEY,     /* sealed without the key / with another key, or plain under a key */
} walf_scan_status_t;

typedef struct walf_scan_result {
    walf_scan_status_t status;
    bool header_ok;
    uint64_t base_lsn;
    uint64_t good_end;    /* offset just past the last good frame */
    uint64_t bad_offset;  /* where the first problem is (TORN/CORRUPT) */
    uint64_t next_lsn;    /* segments: the LSN after the last good record */
    uint64_t frames;
    uint64_t records;
    uint64_t zero_tail;   /* bytes of zeros after good_end (a clean end) */
    bool has_end;         /* snapshots: the end frame was seen */
    uint32_t version;
    bool unsynced;        /* the file header has WALF_FILE_UNSYNCED */
    bool sealed;          /* the file header has WALF_FILE_SEALED */
    uint32_t header_len;  /* 32, or 64 for a sealed file */
    const char *why;      /* a static description of the problem */
} walf_scan_result_t;

typedef struct walf_sink {
    /* Decompress and parse records (else checksums and structure only). */
    bool decode;
    /* One record of the frame `f` at `frame_offset`; non-zero stops the
     * scan with WAL_E_CALLBACK. */
    int (*record)(void *ctx, uint64_t frame_offset, const walf_frame_t *f, uint64_t lsn,
                  uint8_t type, const uint8_t *data, uint32_t len);
    /* One frame, good or bad (for inspection); may be NULL. */
    void (*frame)(void *ctx, uint64_t offset, const walf_frame_t *f, bool ok);
    void *ctx;
    /* The master key (NULL: plain files only); sealed frames are opened with
     * it (records frames only when decoding; end frames always). */
    const uint8_t *key;
    /* When set, called with the opened payload (as compressed, no longer
     * sealed) of each frame whose CRC and tag hold, before its records are
     * parsed: wal_reseal_file. Non-zero stops the scan with that value. */
    int (*opened)(void *ctx, uint64_t offset, const walf_frame_t *f, const uint8_t *payload,
                  uint32_t len);
    /* A sealed segment may be walked without its key: frame headers (which
     * are not encrypted) and checksums only; needs decode false, key and
     * opened NULL (wal_segment_cut: a backup copies sealed bytes as they are). */
    bool frames_only;
} walf_sink_t;

/*
 * Scans a whole file image. Returns 0 with the outcome in *res, or
 * WAL_E_CALLBACK when a callback stopped it. `dctx` is reset and reused.
 */
int wal__scan(const uint8_t *img, size_t len, bool snapshot, const walf_sink_t *sink,
              ZSTD_DCtx *dctx, walf_scan_result_t *res);

/* ---- util.c ---- */

/* A file read into memory (mmap); len 0 and data NULL for an empty file. */
typedef struct walf_map {
    const uint8_t *data;
    size_t len;
} walf_map_t;

int wal__map_file(const char *path, walf_map_t *m);
void wal__unmap(walf_map_t *m);

/* fsync of a directory, so a created, renamed or removed name is durable. */
int wal__sync_dir(const char *path);

/* Lists <dir> entries named <20 digits><suffix>, sorted by number. *out is
 * malloc'd (caller frees); returns the count or a negative errno. */
int wal__list(const char *dir, const char *suffix, uint64_t **out);

void wal__log(const wal_options_t *o, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void wal__buf_reserve(walf_buf_t *b, size_t extra);
void wal__buf_free(walf_buf_t *b);

/* Appends one record (header + data) to a raw payload buffer. */
void wal__buf_add_record(walf_buf_t *b, uint8_t type, const void *data, size_t len);

/*
 * Turns raw payload bytes into one frame appended to `out`: compressed as
 * the next piece of `cctx`'s stream (or stored raw when cctx is NULL),
 * header filled in. Returns 0 or WAL_E_* on a compression failure.
 */
int wal__emit_frame(walf_buf_t *out, ZSTD_CCtx *cctx, const uint8_t *raw, size_t raw_len,
                    uint64_t first_lsn, uint32_t count, uint8_t kind);
/* The same, sealed with `seal` (NULL or plain: wal__emit_frame) for a frame
 * that will sit at byte `offset` of its file. */
int wal__emit_sealed(walf_buf_t *out, ZSTD_CCtx *cctx, walf_seal_t *seal, uint64_t offset,
                     const uint8_t *raw, size_t raw_len, uint64_t first_lsn, uint32_t count,
                     uint8_t kind);
/* Encodes a new file's header (and, with a key, its seal block) into
 * out[WALF_SEALED_HEADER]; returns the header's length. */
size_t wal__new_header(uint8_t *out, bool snapshot, uint64_t base_lsn, uint32_t flags,
                       const uint8_t *key);

/* Writes all of buf with `io` (retrying short writes). */
int wal__write_all(const wal_io_t *io, int fd, const void *buf, size_t len);

extern const wal_io_t wal__posix_io;

#endif

/* ---- stats.c: the sync figures of the last WAL_STATS_WINDOW seconds ---- */

#define WALF_STAT_BUCKETS 128 /* 4 per power of two of microseconds: up to ~2^33 us */

typedef struct walf_stat_slot {
    int64_t second;      /* which second this slot holds; -1: none */
    uint64_t syncs;
    uint64_t batch_sum, batch_max;
    uint64_t max_us;
    uint32_t hist[WALF_STAT_BUCKETS];
} walf_stat_slot_t;

typedef struct walf_stats {
    walf_stat_slot_t slot[WAL_STATS_WINDOW];
    uint64_t total;
    uint64_t fsync_hist[WAL_FSYNC_BUCKETS + 1]; /* since init (wal.h) */
    uint64_t fsync_sum_us;
    uint64_t batch_hist[WAL_BATCH_BUCKETS + 1];
    uint64_t batch_sum;
    uint64_t appends, append_bytes; /* records appended since open, their payload bytes */
} walf_stats_t;

void wal__stats_init(walf_stats_t *st);
/* Notes one sync of `latency_us` that made `batch` records durable, at
 * second `now_s` (a monotonic clock). */
void wal__stats_note(walf_stats_t *st, int64_t now_s, uint64_t latency_us, uint64_t batch);
/* The window's figures as of second now_s (the fsync and batch fields of
 * *out; the others are left alone). */
void wal__stats_read(const walf_stats_t *st, int64_t now_s, wal_stats_t *out);
/* The histogram bucket of a latency, and the lower edge of a bucket. */
unsigned wal__stats_bucket(uint64_t us);
uint64_t wal__stats_bucket_floor(unsigned bucket);

/* ---- the log object (wal.c), shared with recover.c and snapshot.c ---- */

#include <limits.h>
#include <pthread.h>

#define WALF_HOLDS_MAX 16 /* backups holding the log at once */

typedef struct walf_segment {
    uint64_t first_lsn;
    uint64_t bytes;
} walf_segment_t;

/* What recovery leaves for the writer. */
typedef struct walf_state {
    uint64_t last_lsn;
    uint64_t snap_lsn;       /* newest valid snapshot (0: none) */
    uint64_t prev_snap_lsn;  /* the one before it (0: none) */
    walf_segment_t *segments; /* ascending; malloc'd */
    size_t n_segments;
    bool last_segment_empty;  /* the last segment holds no frame */
} walf_state_t;

/*
 * Recovery of <dir>: snapshots, then segments, as wal_open describes. With
 * `modify` false nothing on disk changes (wal_check). Fills *st (caller frees
 * st->segments) and *rep.
 */
int wal__recover(const char *dir, const wal_options_t *o, const wal_replay_t *replay,
                 bool modify, wal_recovery_t *rep, walf_state_t *st);

void wal__path(char *out, size_t size, const char *dir, const char *sub, uint64_t n,
               const char *suffix);

struct wal {
    char dir[PATH_MAX - 64];
    char wal_dir[PATH_MAX];
    char snap_dir[PATH_MAX];
    wal_options_t opts;
    uint8_t key[WAL_KEY_BYTES]; /* opts.key points here when set */
    const wal_io_t *io;

    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* the writer waits for records */
    pthread_cond_t space_cv; /* appenders wait for room in the queue */
    pthread_t writer;

    /* guarded by mu */
    walf_buf_t pending;      /* encoded records not yet taken by the writer */
    uint32_t pending_count;
    uint64_t pending_first;
    uint64_t last_lsn;       /* handed out */
    uint64_t written_lsn;    /* written to the file */
    uint64_t durable_lsn;    /* synced */
    int err;                 /* sticky: the first write/sync failure (-errno) */
    int stall;               /* -ENOSPC/-EDQUOT while a write waits for space; else 0 */
    int64_t fault_since_ms;  /* wall clock when err or stall began */
    const char *fault_what;  /* static: which operation failed */
    uint64_t space_stalls;   /* writes refused for space since open */
    bool closing;
    bool writer_idle;        /* the writer sleeps on work_cv */
    uint64_t sync_request;   /* wal_sync(): sync through this LSN whatever the policy */
    struct walf_waiter *waiters; /* threads in wal_wait, each with its own condvar */
    walf_segment_t *segments; /* on disk, ascending; the last is the active one */
    size_t n_segments;
    size_t cap_segments;
    uint64_t snap_lsn;
    uint64_t prev_snap_lsn;
    uint64_t snap_bytes;      /* size of snap_lsn's file */
    int64_t snap_time_ms;     /* its modification time */
    bool snapshot_running;
    walf_stats_t stats;       /* the writer's syncs */
    uint64_t hold_snap[WALF_HOLDS_MAX]; /* snapshot LSNs held by backups (backup.c) */
    unsigned n_holds;

    /* writer thread only */
    walf_buf_t inflight;
    walf_buf_t out;
    ZSTD_CCtx *cctx;         /* NULL when compression is off */
    walf_seal_t seal;        /* the active segment's cipher (h NULL: plain) */
    uint64_t seg_end;        /* bytes of the active segment written */
    int seg_fd;
    int64_t last_sync_ns;
    bool roll_failed;        /* the last attempt to start a segment had no space */
};

/* The lowest of keep_from and the snapshot LSNs held by backups: records
 * above it must stay (backup.c). REQUIRES: mu held. */
uint64_t wal__hold_floor(wal_t *w, uint64_t keep_from);

/* Removes the files that the previous snapshot makes unnecessary (snapshot.c). */
void wal__trim(wal_t *w);
