/*
 * Snapshots: what they hold, what trimming removes and keeps, recovery from
 * the newest snapshot plus the later log, falling back to an older snapshot
 * (or none) when the newest is damaged, leftover temporary files, aborts.
 *
 * The state of the tests is a tiny key-value store: log record `lsn` sets
 * key (lsn * 7) % 16 to lsn; a snapshot holds one record per key.
 */
#include <unistd.h>

#include "../../wal/wal_format.h"
#include "../test.h"
#include "wal.h"
#include "wal_testutil.h"

#define KEYS 16
#define PAD 150

typedef struct kv {
    uint64_t v[KEYS];
} kv_t;

static int key_of(uint64_t lsn)
{
    return (int)((lsn * 7) % KEYS);
}

/* The state after records 1..lsn. */
static kv_t state_at(uint64_t lsn)
{
    kv_t s = {{0}};
    for (uint64_t l = 1; l <= lsn; l++)
        s.v[key_of(l)] = l;
    return s;
}

/* A log record: key, value, and padding that does not compress (so a few
 * records fill a 4 KiB segment). */
static size_t log_record(uint8_t *buf, uint64_t lsn)
{
    int n = snprintf((char *)buf, 32, "k=%02d v=%08llu ", key_of(lsn), (unsigned long long)lsn);
    tu_fill(buf + n, PAD, lsn, false);
    return (size_t)n + PAD;
}

static void apply(kv_t *s, const void *data, size_t len)
{
    char text[32];
    ASSERT_GE(len, 16);
    memcpy(text, data, 16);
    text[16] = '\0';
    int k;
    unsigned long long v;
    ASSERT_EQ(sscanf(text, "k=%d v=%llu", &k, &v), 2);
    ASSERT_GE(k, 0);
    ASSERT_LT(k, KEYS);
    s->v[k] = v;
}

static void append_range(wal_t *w, uint64_t from, uint64_t to)
{
    for (uint64_t l = from; l <= to; l++) {
        uint8_t buf[64 + PAD];
        size_t len = log_record(buf, l);
        uint64_t lsn;
        ASSERT_EQ(wal_append(w, 1, buf, len, &lsn), 0);
        ASSERT_EQ(lsn, l);
        ASSERT_EQ(wal_wait(w, lsn), 0);
    }
}

/* Writes a snapshot of the state at `lsn` (one type-2 record per key). */
static void snapshot(wal_t *w, uint64_t lsn)
{
    kv_t s = state_at(lsn);
    wal_snapshot_t *snap;
    ASSERT_EQ(wal_snapshot_begin(w, lsn, &snap), 0);
    for (int k = 0; k < KEYS; k++) {
        char rec[32];
        int n = snprintf(rec, sizeof(rec), "k=%02d v=%08llu ", k, (unsigned long long)s.v[k]);
        ASSERT_EQ(wal_snapshot_add(snap, 2, rec, (size_t)n), 0);
    }
    ASSERT_EQ(wal_snapshot_commit(snap), 0);
    ASSERT_EQ(wal_snapshot_lsn(w), lsn);
}

/* The state recovery rebuilt: the snapshot, then the later records. */
static kv_t rebuilt(const tu_replay_t *r, uint64_t snap_lsn)
{
    kv_t s = {{0}};
    for (size_t i = 0; i < r->n_snap; i++) {
        ASSERT_EQ(r->snap[i].type, 2);
        apply(&s, r->snap[i].data, r->snap[i].len);
    }
    for (size_t i = 0; i < r->n; i++) {
        ASSERT_GT(r->recs[i].lsn, snap_lsn);
        ASSERT_EQ(r->recs[i].lsn, snap_lsn + 1 + i);
        ASSERT_EQ(r->recs[i].type, 1);
        uint8_t want[64 + PAD];
        size_t len = log_record(want, r->recs[i].lsn);
        ASSERT_EQ(r->recs[i].len, len);
        ASSERT_EQ(memcmp(r->recs[i].data, want, len), 0);
        apply(&s, r->recs[i].data, r->recs[i].len);
    }
    return s;
}

static void expect_state(const kv_t *got, uint64_t lsn)
{
    kv_t want = state_at(lsn);
    for (int k = 0; k < KEYS; k++)
        ASSERT_EQ(got->v[k], want.v[k]);
}

static wal_options_t snap_opts(void)
{
    wal_options_t o = tu_opts();
    o.segment_bytes = 4096;
    o.fsync = WAL_FSYNC_NONE;
    return o;
}

/* The segments a snapshot commit must leave, given those before it and the
 * previous snapshot's LSN: every segment but those wholly at or below it. */
static size_t expected_after_trim(const uint64_t *before, size_t n, uint64_t prev, uint64_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (i + 1 == n || before[i + 1] > prev + 1)
            out[m++] = before[i];
    return m;
}

static void expect_segments(const char *dir, const uint64_t *want, size_t n)
{
    uint64_t got[256];
    ASSERT_EQ(tu_list(dir, "wal", ".wal", got, 256), n);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(got[i], want[i]);
}

/* Snapshots at 100, 200 and 300 around records 1..350; checks the trimming
 * after each commit. */
static void build_three_snapshots(const char *dir)
{
    wal_options_t o = snap_opts();
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    uint64_t before[256], want[256], snaps[8];

    append_range(w, 1, 100);
    size_t n = tu_list(dir, "wal", ".wal", before, 256);
    ASSERT_GE(n, 4);
    ASSERT_LT(n, 256);
    snapshot(w, 100);
    expect_segments(dir, before, n); /* no previous snapshot: nothing goes */
    ASSERT_EQ(tu_list(dir, "snapshots", ".snap", snaps, 8), 1);
    ASSERT_EQ(snaps[0], 100);

    append_range(w, 101, 200);
    n = tu_list(dir, "wal", ".wal", before, 256);
    snapshot(w, 200);
    size_t m = expected_after_trim(before, n, 100, want);
    ASSERT_LT(m, n);
    expect_segments(dir, want, m);
    ASSERT_LE(want[0], 101); /* records after the previous snapshot stay */
    ASSERT_EQ(tu_list(dir, "snapshots", ".snap", snaps, 8), 2);
    ASSERT_EQ(snaps[0], 100);
    ASSERT_EQ(snaps[1], 200);

    append_range(w, 201, 300);
    n = tu_list(dir, "wal", ".wal", before, 256);
    snapshot(w, 300);
    m = expected_after_trim(before, n, 200, want);
    expect_segments(dir, want, m);
    ASSERT_LE(want[0], 201);
    ASSERT_GT(want[0], 100);
    ASSERT_EQ(tu_list(dir, "snapshots", ".snap", snaps, 8), 2); /* 100 is gone */
    ASSERT_EQ(snaps[0], 200);
    ASSERT_EQ(snaps[1], 300);

    append_range(w, 301, 350);
    uint64_t bytes, segs;
    wal_disk_usage(w, &bytes, &segs);
    ASSERT_EQ(segs, tu_list(dir, "wal", ".wal", before, 256));
    ASSERT_EQ(wal_close(w), 0);
}

TEST(wal_snapshot_trim_and_recover)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "snap");
    build_three_snapshots(dir);

    wal_options_t o = snap_opts();
    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_recovery_t rep;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    ASSERT_EQ(r.n_begins, 1);
    ASSERT_EQ(r.begins[0], 300);
    ASSERT_EQ(r.n_snap, KEYS);
    kv_t at300 = state_at(300);
    for (int k = 0; k < KEYS; k++) {
        char want[32];
        int len = snprintf(want, sizeof(want), "k=%02d v=%08llu ", k,
                           (unsigned long long)at300.v[k]);
        ASSERT_EQ(r.snap[k].len, len);
        ASSERT_EQ(memcmp(r.snap[k].data, want, (size_t)len), 0);
    }
    ASSERT_EQ(r.n, 50); /* only records after the snapshot */
    kv_t s = rebuilt(&r, 300);
    expect_state(&s, 350);
    ASSERT_EQ(rep.snapshot_lsn, 300);
    ASSERT_EQ(rep.snapshot_records, KEYS);
    ASSERT_EQ(rep.first_lsn, 301);
    ASSERT_EQ(rep.records_replayed, 50);
    ASSERT_EQ(rep.last_lsn, 350);
    ASSERT_EQ(wal_snapshot_lsn(w), 300);
    ASSERT_EQ(wal_last_lsn(w), 350);

    /* The log goes on; a fourth snapshot trims the second. */
    append_range(w, 351, 360);
    snapshot(w, 360);
    uint64_t snaps[8];
    ASSERT_EQ(tu_list(dir, "snapshots", ".snap", snaps, 8), 2);
    ASSERT_EQ(snaps[0], 300);
    ASSERT_EQ(snaps[1], 360);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);

    rp = tu_replay(&r);
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    ASSERT_EQ(r.begins[0], 360);
    ASSERT_EQ(r.n, 0);
    s = rebuilt(&r, 360);
    expect_state(&s, 360);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(dir);
}

/* The newest snapshot damaged (bit flips anywhere in it, or cut short):
 * recovery loads the previous one and replays the rest of the log. */
TEST(wal_snapshot_damaged_newest_falls_back)
{
    char src[64];
    tu_tmpdir(src, sizeof(src), "snapsrc");
    build_three_snapshots(src);
    tu_tree_t tree;
    tu_tree_load(&tree, src);
    tu_rmrf(src);
    char name[64];
    tu_snap_name(name, sizeof(name), 300);
    const tu_file_t *newest = tu_tree_get(&tree, name);
    ASSERT_NOT_NULL(newest);
    size_t len = newest->len;
    tu_frame_t fr[8];
    size_t nf = tu_frames(newest->data, len, fr, 8);
    ASSERT_GE(nf, 2);
    ASSERT_LE(nf, 8);
    ASSERT_EQ(fr[nf - 1].kind, WALF_KIND_SNAPSHOT_END);

    /* Header, frame header, payload, end frame; then two ways of cutting. */
    uint64_t spots[] = {3, 20, fr[0].offset + 2, fr[0].offset + 40, fr[nf - 1].offset + 10,
                        len - 1, 0, 0};
    for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
        char dir[64], path[512];
        tu_tmpdir(dir, sizeof(dir), "snapflip");
        tu_tree_store(&tree, dir);
        tu_snap_path(path, sizeof(path), dir, 300, ".snap");
        if (i == 6)
            tu_truncate(path, fr[nf - 1].offset); /* no end frame */
        else if (i == 7)
            tu_truncate(path, len - 3);
        else
            tu_flip_bit(path, spots[i], (int)(i % 8));

        wal_options_t o = snap_opts();
        wal_recovery_t rep;
        ASSERT_NE(wal_check(dir, &o, &rep), 0);
        ASSERT_STREQ(rep.error_file, path);

        tu_replay_t r = {0};
        wal_replay_t rp = tu_replay(&r);
        wal_t *w;
        ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
        ASSERT_EQ(r.n_begins, 1);
        ASSERT_EQ(r.begins[0], 200);
        ASSERT_EQ(rep.snapshot_lsn, 200);
        ASSERT_EQ(r.n, 150);
        kv_t s = rebuilt(&r, 200);
        expect_state(&s, 350);
        ASSERT_EQ(wal_snapshot_lsn(w), 200);
        ASSERT_EQ(wal_last_lsn(w), 350);
        /* Set aside, not loaded again. */
        ASSERT_TRUE(!tu_exists(path));
        char aside[600];
        snprintf(aside, sizeof(aside), "%s.damaged", path);
        ASSERT_TRUE(tu_exists(aside));
        ASSERT_EQ(wal_close(w), 0);
        tu_replay_free(&r);
        tu_rmrf(dir);
    }
    tu_tree_free(&tree);
}

/* The only snapshot damaged: recovery uses none and replays the whole log,
 * which no trimming has touched. */
TEST(wal_snapshot_damaged_only_one_falls_back_to_log)
{
    char dir[64], path[512];
    tu_tmpdir(dir, sizeof(dir), "snapone");
    wal_options_t o = snap_opts();
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    append_range(w, 1, 80);
    snapshot(w, 80);
    append_range(w, 81, 90);
    ASSERT_EQ(wal_close(w), 0);
    tu_snap_path(path, sizeof(path), dir, 80, ".snap");
    tu_flip_bit(path, (uint64_t)tu_size(path) / 2, 5);

    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_recovery_t rep;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    ASSERT_EQ(r.n_begins, 0);
    ASSERT_EQ(rep.snapshot_lsn, 0);
    ASSERT_EQ(r.n, 90);
    kv_t s = rebuilt(&r, 0);
    expect_state(&s, 90);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(dir);
}

TEST(wal_snapshot_tmp_abort_and_arguments)
{
    char dir[64], path[512];
    tu_tmpdir(dir, sizeof(dir), "snaptmp");
    wal_options_t o = snap_opts();
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    append_range(w, 1, 10);

    /* Beyond the last LSN handed out: refused. */
    wal_snapshot_t *s, *s2;
    ASSERT_EQ(wal_snapshot_begin(w, 11, &s), WAL_E_ARG);
    ASSERT_EQ(tu_count_entries(dir, "snapshots"), 0);

    /* An abort leaves nothing. */
    ASSERT_EQ(wal_snapshot_begin(w, 10, &s), 0);
    tu_snap_path(path, sizeof(path), dir, 10, ".tmp");
    ASSERT_TRUE(tu_exists(path));
    ASSERT_EQ(wal_snapshot_add(s, 3, "abandoned", 9), 0);
    /* One snapshot at a time. */
    ASSERT_EQ(wal_snapshot_begin(w, 10, &s2), WAL_E_ARG);
    wal_snapshot_abort(s);
    wal_snapshot_abort(NULL);
    ASSERT_EQ(tu_count_entries(dir, "snapshots"), 0);
    ASSERT_EQ(wal_snapshot_lsn(w), 0);

    /* A snapshot that the state had moved past: records appended between
     * begin and commit are durable before it is; an empty snapshot is fine. */
    ASSERT_EQ(wal_snapshot_begin(w, 10, &s), 0);
    append_range(w, 11, 12);
    ASSERT_EQ(wal_snapshot_commit(s), 0);
    ASSERT_EQ(wal_snapshot_commit(NULL), WAL_E_ARG);
    ASSERT_EQ(tu_count_entries(dir, "snapshots"), 1);
    ASSERT_EQ(wal_close(w), 0);

    /* A crash mid-snapshot leaves <lsn>.tmp: removed at open. */
    tu_snap_path(path, sizeof(path), dir, 12, ".tmp");
    tu_write(path, "half a snapshot", 15);
    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, NULL), 0);
    ASSERT_TRUE(!tu_exists(path));
    ASSERT_EQ(tu_count_entries(dir, "snapshots"), 1);
    ASSERT_EQ(r.n_begins, 1);
    ASSERT_EQ(r.begins[0], 10);
    ASSERT_EQ(r.n_snap, 0);
    ASSERT_EQ(r.n, 2);
    ASSERT_EQ(r.recs[0].lsn, 11);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(dir);
}

/* A snapshot of many frames (records past the 1 MiB frame target), with
 * compression on and off, comes back byte for byte. */
static void big_snapshot(int compression_level)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "snapbig");
    wal_options_t o = tu_opts();
    o.compression_level = compression_level;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    uint64_t lsn;
    ASSERT_EQ(wal_append(w, 1, "x", 1, &lsn), 0);
    wal_snapshot_t *s;
    ASSERT_EQ(wal_snapshot_begin(w, lsn, &s), 0);
    static const size_t lens[] = {0, 1, 700000, 700000, 5, (1u << 20) + 3, 4096, 3000000};
    enum { N = sizeof(lens) / sizeof(lens[0]) };
    uint8_t *buf = malloc(3000000);
    ASSERT_NOT_NULL(buf);
    for (size_t i = 0; i < N; i++) {
        tu_fill(buf, lens[i], i + 100, i % 2 == 0);
        ASSERT_EQ(wal_snapshot_add(s, (uint8_t)(i + 1), lens[i] ? buf : NULL, lens[i]), 0);
    }
    ASSERT_EQ(wal_snapshot_commit(s), 0);
    ASSERT_EQ(wal_close(w), 0);

    char path[512];
    tu_snap_path(path, sizeof(path), dir, 1, ".snap");
    size_t len;
    uint8_t *img = tu_read(path, &len);
    tu_frame_t fr[16];
    size_t nf = tu_frames(img, len, fr, 16);
    free(img);
    ASSERT_GE(nf, 4);
    ASSERT_LE(nf, 16);

    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_recovery_t rep;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    ASSERT_EQ(r.n_snap, N);
    ASSERT_EQ(rep.snapshot_records, N);
    for (size_t i = 0; i < N; i++) {
        tu_fill(buf, lens[i], i + 100, i % 2 == 0);
        ASSERT_EQ(r.snap[i].type, i + 1);
        ASSERT_EQ(r.snap[i].len, lens[i]);
        ASSERT_TRUE(lens[i] == 0 || memcmp(r.snap[i].data, buf, lens[i]) == 0);
    }
    ASSERT_EQ(r.n, 0);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    free(buf);
    tu_rmrf(dir);
}

TEST(wal_snapshot_many_frames_compressed)
{
    big_snapshot(0);
}

TEST(wal_snapshot_many_frames_uncompressed)
{
    big_snapshot(-1);
}

/* Segments wholly covered by the snapshot that recovery loads are skipped
 * unread (recover.c): damage there does not stop an open. */
TEST(wal_snapshot_covered_segments_are_not_read)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "snapcover");
    wal_options_t o = snap_opts();
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    append_range(w, 1, 100);
    snapshot(w, 100);
    append_range(w, 101, 110);
    ASSERT_EQ(wal_close(w), 0);
    uint64_t segs[256];
    size_t n = tu_list(dir, "wal", ".wal", segs, 256);
    ASSERT_GE(n, 4);
    ASSERT_LE(segs[1], 101);
    char path[512];
    tu_seg_path(path, sizeof(path), dir, segs[0]);
    tu_flip_bit(path, (uint64_t)tu_size(path) / 2, 3);

    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_recovery_t rep;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    ASSERT_EQ(rep.snapshot_lsn, 100);
    kv_t s = rebuilt(&r, 100);
    expect_state(&s, 110);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);

    /* Without the snapshot, the same damage is corruption. */
    tu_snap_path(path, sizeof(path), dir, 100, ".snap");
    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, &rep), WAL_E_CORRUPT);
    tu_rmrf(dir);
}

/* wal_snapshot_commit returns only when the log is durable up to the last
 * LSN handed out: the snapshot may show records appended after its LSN. */
static ssize_t plain_write(int fd, const void *buf, size_t len)
{
    return write(fd, buf, len);
}

static int slow_sync(int fd)
{
    usleep(30000);
    return fdatasync(fd);
}

static const wal_io_t slow_io = {plain_write, slow_sync};

TEST(wal_snapshot_commit_waits_for_the_log)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "snapwait");
    wal_options_t o = tu_opts();
    o.io = &slow_io;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    uint64_t lsn;
    for (int round = 0; round < 3; round++) {
        ASSERT_EQ(wal_append(w, 1, "before", 6, &lsn), 0);
        wal_snapshot_t *s;
        ASSERT_EQ(wal_snapshot_begin(w, lsn, &s), 0);
        ASSERT_EQ(wal_append(w, 1, "after the snapshot's lsn", 24, &lsn), 0);
        ASSERT_EQ(wal_snapshot_add(s, 1, "state", 5), 0);
        ASSERT_EQ(wal_snapshot_commit(s), 0); /* no wal_wait by the caller */
        ASSERT_GE(wal_durable_lsn(w), lsn);
    }
    ASSERT_EQ(wal_close(w), 0);
    tu_rmrf(dir);
}

/* A snapshot that passes the cheap check (checksums, end record) but fails
 * while being loaded (records that do not add up): on_snapshot_begin is
 * called again, for the older snapshot, or with 0 when none is left, and
 * the caller discards what it had loaded. */
static void write_bad_snapshot(const char *dir, uint64_t lsn)
{
    uint8_t img[1024], raw[128];
    wal__file_header(img, true, lsn);
    size_t off = WALF_FILE_HEADER;
    size_t rl = tu_raw_record(raw, 0, 3, "loaded first", 12);
    off += tu_raw_frame(img + off, 0, 1, raw, rl, WALF_KIND_RECORDS);
    rl = tu_raw_record(raw, 0, 3, "fine", 4);
    rl = tu_raw_record(raw, rl, 3, "overrun", 7);
    wal__put32(raw + rl - 7 - WALF_RECORD_HEADER, 50);
    off += tu_raw_frame(img + off, 0, 2, raw, rl, WALF_KIND_RECORDS);
    uint8_t end[WALF_END_PAYLOAD];
    wal__put64(end, 3);
    wal__put64(end + 8, lsn);
    off += tu_raw_frame(img + off, 0, 0, end, sizeof(end), WALF_KIND_SNAPSHOT_END);
    char path[512];
    tu_snap_path(path, sizeof(path), dir, lsn, ".snap");
    tu_write(path, img, off);
}

TEST(wal_snapshot_failing_while_loaded_starts_over)
{
    for (int older = 0; older < 2; older++) {
        char dir[64];
        tu_tmpdir(dir, sizeof(dir), "snapload");
        wal_options_t o = snap_opts();
        wal_t *w;
        ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
        append_range(w, 1, 30);
        if (older)
            snapshot(w, 20);
        ASSERT_EQ(wal_close(w), 0);
        write_bad_snapshot(dir, 30);
        char path[512];
        tu_snap_path(path, sizeof(path), dir, 30, ".snap");
        size_t len;
        uint8_t *img = tu_read(path, &len);
        ASSERT_EQ(wal_scan_image(img, len, true), WAL_E_CORRUPT);
        free(img);

        tu_replay_t r = {0};
        wal_replay_t rp = tu_replay(&r);
        wal_recovery_t rep;
        ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
        ASSERT_EQ(r.n_begins, 2);
        ASSERT_EQ(r.begins[0], 30);
        ASSERT_EQ(r.begins[1], older ? 20 : 0);
        ASSERT_EQ(rep.snapshot_lsn, older ? 20 : 0);
        ASSERT_EQ(r.n_snap, older ? KEYS : 0); /* nothing of the bad one */
        kv_t s = rebuilt(&r, older ? 20 : 0);
        expect_state(&s, 30);
        ASSERT_EQ(wal_close(w), 0);
        tu_replay_free(&r);
        tu_rmrf(dir);
    }
}
