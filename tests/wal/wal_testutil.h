/*
 * Helpers shared by the tests of wal/: temporary directories, whole files
 * and whole directory trees in memory (so one log can be damaged in many
 * ways, each on a fresh copy), frame boundaries of a file image, and a
 * replay that keeps everything recovery hands it.
 *
 * Every helper fails the running test (exit 1 in the forked child) on a
 * system error, so tests need not check their set-up.
 */
#ifndef WAL_TESTUTIL_H
#define WAL_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wal.h"

/* ---- files and directories ---- */

/* Creates /tmp/parley-wal-<tag>-XXXXXX into dir (at least 64 bytes). */
void tu_tmpdir(char *dir, size_t size, const char *tag);
/* Removes a directory tree (or a file); a missing path is fine. */
void tu_rmrf(const char *path);

/* <dir>/wal/<lsn>.wal and <dir>/snapshots/<lsn><suffix>. */
void tu_seg_path(char *out, size_t size, const char *dir, uint64_t lsn);
void tu_snap_path(char *out, size_t size, const char *dir, uint64_t lsn, const char *suffix);

/* The whole file (malloc'd, caller frees; never NULL even when empty). */
uint8_t *tu_read(const char *path, size_t *len);
void tu_write(const char *path, const void *data, size_t len);
void tu_append(const char *path, const void *data, size_t len);
void tu_truncate(const char *path, uint64_t len);
void tu_flip_bit(const char *path, uint64_t byte, int bit);
/* Size of a file, -1 when it does not exist. */
long long tu_size(const char *path);
bool tu_exists(const char *path);

/* Numbers of <dir>/<sub>/<20 digits><suffix>, ascending, into out[max];
 * returns how many there are. */
size_t tu_list(const char *dir, const char *sub, const char *suffix, uint64_t *out, size_t max);
/* How many entries <dir>/<sub> holds (any name). */
size_t tu_count_entries(const char *dir, const char *sub);

/* ---- a directory tree in memory ---- */

typedef struct tu_file {
    char name[160]; /* relative: "wal/000...1.wal" */
    uint8_t *data;
    size_t len;
} tu_file_t;

typedef struct tu_tree {
    tu_file_t *files; /* sorted by name */
    size_t n;
} tu_tree_t;

/* Loads every file of <dir> and its subdirectories (one level deep). */
void tu_tree_load(tu_tree_t *t, const char *dir);
/* Writes the tree into <dir> (which exists), creating wal/ and snapshots/. */
void tu_tree_store(const tu_tree_t *t, const char *dir);
/* The file named `name`, NULL when absent. */
tu_file_t *tu_tree_get(const tu_tree_t *t, const char *name);
bool tu_tree_equal(const tu_tree_t *a, const tu_tree_t *b);
void tu_tree_free(tu_tree_t *t);
/* "wal/<20 digits>.wal" and "snapshots/<20 digits>.snap". */
void tu_seg_name(char *out, size_t size, uint64_t lsn);
void tu_snap_name(char *out, size_t size, uint64_t lsn);

/* ---- frames of a file image ---- */

typedef struct tu_frame {
    uint64_t offset; /* of the frame header */
    uint64_t end;    /* just past its payload */
    uint64_t first_lsn;
    uint32_t count;
    uint32_t stored_len;
    uint32_t raw_len;
    uint8_t kind;
    uint8_t flags;
} tu_frame_t;

/* Walks the frames of a well-formed image (stops at a zero or cut header);
 * returns how many there are (only the first `max` are stored). */
size_t tu_frames(const uint8_t *img, size_t len, tu_frame_t *out, size_t max);

/* Crafting files by hand: one record (8-byte header + data) written at
 * raw + pos, returning the new end; an uncompressed frame (header + raw)
 * written at out, returning its size. */
size_t tu_raw_record(uint8_t *raw, size_t pos, uint8_t type, const void *data, uint32_t len);
size_t tu_raw_frame(uint8_t *out, uint64_t first_lsn, uint32_t count, const uint8_t *raw,
                    size_t raw_len, uint8_t kind);

/* ---- a replay that keeps everything ---- */

typedef struct tu_rec {
    uint64_t lsn; /* 0 for snapshot records */
    uint8_t type;
    size_t len;
    uint8_t *data;
} tu_rec_t;

typedef struct tu_replay {
    tu_rec_t *recs; /* on_record, in call order */
    size_t n, cap;
    tu_rec_t *snap; /* on_snapshot_record since the last on_snapshot_begin */
    size_t n_snap, cap_snap;
    uint64_t begins[16]; /* every on_snapshot_begin, in call order */
    size_t n_begins;
    bool out_of_order; /* on_record saw an LSN not above the one before */
} tu_replay_t;

/* Callbacks that fill `r` (which must start zeroed). */
wal_replay_t tu_replay(tu_replay_t *r);
/* Frees what `r` holds and zeroes it. */
void tu_replay_free(tu_replay_t *r);

/* ---- waiting ---- */

/* How long a test waits for a condition before it fails: generous, as the
 * machines are two shared cores and the sanitizer builds are slow (and
 * below the harness's 20-second limit, so the failure says what it was). */
#define TU_WAIT_SECONDS 15

/* A deadline TU_WAIT_SECONDS from now on the monotonic clock, and whether it
 * has passed. A test polls its condition until it holds or the deadline
 * passes; it never sleeps a guessed time, nor asserts a duration. */
int64_t tu_deadline(void);
bool tu_expired(int64_t deadline);

/* ---- options and data ---- */

/* Default options with messages on stderr when WAL_TEST_LOG is set. */
wal_options_t tu_opts(void);

/* Deterministic bytes: random-looking, or text-like (compressible). */
void tu_fill(uint8_t *buf, size_t len, uint64_t seed, bool compressible);

/* A small deterministic generator. */
uint64_t tu_rand(uint64_t *state);

/* Opens `dir`, appends `n` records (type 7, "record <lsn> ..." of varied
 * length) each followed by wal_wait (so each is a frame of its own), closes.
 * Returns the last LSN. */
uint64_t tu_write_records(const char *dir, const wal_options_t *opts, int n);
/* The payload tu_write_records gives record `lsn` (into buf[256]). */
size_t tu_record_payload(char *buf, uint64_t lsn);

/* Checks that r->recs are exactly lsn first..last with tu_record_payload. */
void tu_expect_records(const tu_replay_t *r, uint64_t first, uint64_t last);

#endif
