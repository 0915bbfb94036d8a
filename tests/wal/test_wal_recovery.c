/*
 * Recovery's decisions about damage: a log cut at every byte offset, single
 * bit flips in the last frame, an earlier frame, a non-last segment and file
 * headers, zero-filled tails, segment rolls, missing segments, and a frame
 * whose checksum holds but whose records do not add up.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "../../wal/wal_format.h"
#include "../test.h"
#include "wal.h"
#include "wal_testutil.h"

/* A log of `n` records, one frame each, in segment 1 of a new directory;
 * returns the directory's tree and the frames of that segment. */
static void make_log(tu_tree_t *tree, tu_frame_t *fr, size_t n, int compression_level)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "src");
    wal_options_t o = tu_opts();
    o.compression_level = compression_level;
    ASSERT_EQ(tu_write_records(dir, &o, (int)n), n);
    tu_tree_load(tree, dir);
    tu_rmrf(dir);
    char name[64];
    tu_seg_name(name, sizeof(name), 1);
    const tu_file_t *seg = tu_tree_get(tree, name);
    ASSERT_NOT_NULL(seg);
    ASSERT_EQ(tu_frames(seg->data, seg->len, fr, n + 1), n);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(fr[i].count, 1);
        ASSERT_EQ(fr[i].first_lsn, i + 1);
    }
    ASSERT_EQ(fr[n - 1].end, seg->len);
}

/* A fresh directory holding `tree`. */
static void store_copy(const tu_tree_t *tree, char *dir, size_t size)
{
    tu_tmpdir(dir, size, "copy");
    tu_tree_store(tree, dir);
}

static bool is_fresh_header(const char *path, uint64_t lsn)
{
    size_t len;
    uint8_t *d = tu_read(path, &len);
    uint8_t want[WALF_FILE_HEADER];
    wal__file_header(want, false, lsn);
    bool same = len == WALF_FILE_HEADER && memcmp(d, want, len) == 0;
    free(d);
    return same;
}

/* Appends record lsn (tu_record_payload) and checks its number. */
static void append_next(wal_t *w, uint64_t want_lsn)
{
    char buf[256];
    size_t len = tu_record_payload(buf, want_lsn);
    uint64_t lsn = 0;
    ASSERT_EQ(wal_append(w, 7, buf, len, &lsn), 0);
    ASSERT_EQ(lsn, want_lsn);
    ASSERT_EQ(wal_wait(w, lsn), 0);
}

/* ---- truncation at every offset ---- */

static void truncation_sweep(int compression_level)
{
    enum { N = 6 };
    tu_tree_t tree;
    tu_frame_t fr[N + 1];
    make_log(&tree, fr, N, compression_level);
    char name[64];
    tu_seg_name(name, sizeof(name), 1);
    tu_file_t *seg = tu_tree_get(&tree, name);
    size_t full = seg->len;
    ASSERT_LT(full, 4096); /* keeps the sweep small */
    uint8_t *orig = malloc(full);
    ASSERT_NOT_NULL(orig);
    memcpy(orig, seg->data, full);
    wal_options_t o = tu_opts();
    o.compression_level = compression_level;

    for (size_t off = 0; off <= full; off++) {
        size_t k = 0; /* frames wholly before off */
        while (k < N && fr[k].end <= off)
            k++;
        uint64_t good_end = off < WALF_FILE_HEADER ? 0 : k ? fr[k - 1].end : WALF_FILE_HEADER;
        bool cut = off < WALF_FILE_HEADER || off != good_end;

        seg->len = off;
        char dir[64], path[512];
        store_copy(&tree, dir, sizeof(dir));
        tu_seg_path(path, sizeof(path), dir, 1);
        tu_replay_t r = {0};
        wal_replay_t rp = tu_replay(&r);
        wal_recovery_t rep;
        wal_t *w;
        int rc = wal_open(dir, &o, &rp, &w, &rep);
        if (rc != 0)
            TEST_FAIL_("offset %zu: wal_open: %s", off, wal_strerror(rc));
        tu_expect_records(&r, 1, k);
        ASSERT_EQ(rep.last_lsn, k);
        ASSERT_EQ(rep.records_replayed, k);
        if (rep.bytes_dropped != off - good_end)
            TEST_FAIL_("offset %zu: %llu bytes dropped, expected %llu", off,
                       (unsigned long long)rep.bytes_dropped,
                       (unsigned long long)(off - good_end));
        if (cut) {
            ASSERT_STREQ(rep.cut_file, path);
            ASSERT_EQ(rep.cut_offset, good_end);
        } else {
            ASSERT_STREQ(rep.cut_file, "");
        }
        ASSERT_STREQ(rep.error_file, "");
        if (k == 0) {
            /* Cut to its header, or removed for a cut header: either way
             * segment 1 is now the new, empty active segment. */
            ASSERT_TRUE(is_fresh_header(path, 1));
        } else {
            size_t got_len;
            uint8_t *got = tu_read(path, &got_len);
            ASSERT_EQ(got_len, fr[k - 1].end);
            ASSERT_EQ(memcmp(got, orig, got_len), 0);
            free(got);
            char next[512];
            tu_seg_path(next, sizeof(next), dir, k + 1);
            ASSERT_TRUE(is_fresh_header(next, k + 1));
        }
        ASSERT_EQ(wal_last_lsn(w), k);
        append_next(w, k + 1);
        ASSERT_EQ(wal_close(w), 0);
        tu_replay_free(&r);

        rp = tu_replay(&r);
        ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
        tu_expect_records(&r, 1, k + 1);
        ASSERT_EQ(rep.bytes_dropped, 0);
        ASSERT_EQ(wal_close(w), 0);
        tu_replay_free(&r);
        tu_rmrf(dir);
    }
    seg->len = full;
    free(orig);
    tu_tree_free(&tree);
}

TEST(wal_truncation_at_every_offset_compressed)
{
    truncation_sweep(0);
}

TEST(wal_truncation_at_every_offset_uncompressed)
{
    truncation_sweep(-1);
}

/* ---- bit flips ---- */

/* Flips bit `bit` of byte `at` of file `name` in a copy of `tree`. */
static void flip_copy(const tu_tree_t *tree, const char *name, uint64_t at, int bit, char *dir,
                      size_t size)
{
    store_copy(tree, dir, size);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    tu_flip_bit(path, at, bit);
}

/* Every bit of the last frame: a torn tail. wal_check reports it and
 * changes nothing; wal_open cuts it and keeps the rest. */
TEST(wal_bit_flip_in_last_frame_is_torn_tail)
{
    enum { N = 6 };
    tu_tree_t tree;
    tu_frame_t fr[N + 1];
    make_log(&tree, fr, N, 0);
    char name[64];
    tu_seg_name(name, sizeof(name), 1);
    const tu_frame_t *last = &fr[N - 1];
    wal_options_t o = tu_opts();

    char dir[64], path[512];
    store_copy(&tree, dir, sizeof(dir));
    tu_seg_path(path, sizeof(path), dir, 1);
    for (uint64_t at = last->offset; at < last->end; at++) {
        for (int bit = 0; bit < 8; bit++) {
            tu_flip_bit(path, at, bit);
            tu_tree_t before, after;
            tu_tree_load(&before, dir);
            wal_recovery_t rep;
            int rc = wal_check(dir, &o, &rep);
            if (rc != 0)
                TEST_FAIL_("byte %llu bit %d: wal_check: %s", (unsigned long long)at, bit,
                           wal_strerror(rc));
            ASSERT_STREQ(rep.cut_file, path);
            ASSERT_EQ(rep.cut_offset, last->offset);
            ASSERT_EQ(rep.bytes_dropped, last->end - last->offset);
            ASSERT_EQ(rep.last_lsn, N - 1);
            tu_tree_load(&after, dir);
            ASSERT_TRUE(tu_tree_equal(&before, &after));
            tu_tree_free(&before);
            tu_tree_free(&after);
            tu_flip_bit(path, at, bit); /* back */
        }
    }
    tu_rmrf(dir);

    for (uint64_t at = last->offset; at < last->end; at++) {
        flip_copy(&tree, name, at, (int)(at % 8), dir, sizeof(dir));
        tu_seg_path(path, sizeof(path), dir, 1);
        tu_replay_t r = {0};
        wal_replay_t rp = tu_replay(&r);
        wal_recovery_t rep;
        wal_t *w;
        ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
        tu_expect_records(&r, 1, N - 1);
        ASSERT_EQ(rep.bytes_dropped, last->end - last->offset);
        ASSERT_STREQ(rep.cut_file, path);
        ASSERT_EQ(tu_size(path), last->offset);
        append_next(w, N);
        ASSERT_EQ(wal_close(w), 0);
        tu_replay_free(&r);
        tu_rmrf(dir);
    }
    tu_tree_free(&tree);
}

/* Every bit of an earlier frame of the last segment, with valid frames after
 * it: corruption, named by file and offset; nothing changes. */
TEST(wal_bit_flip_in_earlier_frame_is_corrupt)
{
    enum { N = 6, BAD = 2 };
    tu_tree_t tree;
    tu_frame_t fr[N + 1];
    make_log(&tree, fr, N, 0);
    char name[64];
    tu_seg_name(name, sizeof(name), 1);
    const tu_frame_t *bad = &fr[BAD];
    wal_options_t o = tu_opts();

    char dir[64], path[512];
    store_copy(&tree, dir, sizeof(dir));
    tu_seg_path(path, sizeof(path), dir, 1);
    for (uint64_t at = bad->offset; at < bad->end; at++) {
        for (int bit = 0; bit < 8; bit++) {
            tu_flip_bit(path, at, bit);
            wal_recovery_t rep;
            int rc = wal_check(dir, &o, &rep);
            if (rc != WAL_E_CORRUPT)
                TEST_FAIL_("byte %llu bit %d: wal_check gave %d", (unsigned long long)at, bit,
                           rc);
            ASSERT_STREQ(rep.error_file, path);
            ASSERT_EQ(rep.error_offset, bad->offset);
            tu_flip_bit(path, at, bit);
        }
    }
    tu_rmrf(dir);

    for (uint64_t at = bad->offset; at < bad->end; at++) {
        flip_copy(&tree, name, at, (int)(at % 8), dir, sizeof(dir));
        tu_seg_path(path, sizeof(path), dir, 1);
        tu_tree_t before, after;
        tu_tree_load(&before, dir);
        tu_replay_t r = {0};
        wal_replay_t rp = tu_replay(&r);
        wal_recovery_t rep;
        wal_t *w = NULL;
        ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), WAL_E_CORRUPT);
        ASSERT_NULL(w);
        ASSERT_STREQ(rep.error_file, path);
        ASSERT_EQ(rep.error_offset, bad->offset);
        tu_tree_load(&after, dir);
        ASSERT_TRUE(tu_tree_equal(&before, &after));
        tu_tree_free(&before);
        tu_tree_free(&after);
        tu_replay_free(&r);

        /* Repair cuts at the bad frame. */
        if (at % 5 == 0 || at == bad->offset) {
            wal_options_t ro = o;
            ro.repair = true;
            rp = tu_replay(&r);
            ASSERT_EQ(wal_open(dir, &ro, &rp, &w, &rep), 0);
            tu_expect_records(&r, 1, BAD);
            ASSERT_EQ(rep.last_lsn, BAD);
            ASSERT_EQ(rep.bytes_dropped, fr[N - 1].end - bad->offset);
            ASSERT_STREQ(rep.cut_file, path);
            ASSERT_EQ(rep.cut_offset, bad->offset);
            ASSERT_EQ(tu_size(path), bad->offset);
            append_next(w, BAD + 1);
            ASSERT_EQ(wal_close(w), 0);
            tu_replay_free(&r);
            /* Repaired: an ordinary open now works and sees the new record. */
            rp = tu_replay(&r);
            ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
            tu_expect_records(&r, 1, BAD + 1);
            ASSERT_EQ(wal_close(w), 0);
            tu_replay_free(&r);
        }
        tu_rmrf(dir);
    }
    tu_tree_free(&tree);
}

/* Two segments: 1 (records 1-3) and 4 (records 4-6). */
static void make_two_segments(tu_tree_t *tree, tu_frame_t *fr1, tu_frame_t *fr4)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "src2");
    wal_options_t o = tu_opts();
    ASSERT_EQ(tu_write_records(dir, &o, 3), 3);
    ASSERT_EQ(tu_write_records(dir, &o, 3), 6);
    tu_tree_load(tree, dir);
    tu_rmrf(dir);
    char name[64];
    tu_seg_name(name, sizeof(name), 1);
    tu_file_t *s1 = tu_tree_get(tree, name);
    tu_seg_name(name, sizeof(name), 4);
    tu_file_t *s4 = tu_tree_get(tree, name);
    ASSERT_NOT_NULL(s1);
    ASSERT_NOT_NULL(s4);
    ASSERT_EQ(tu_frames(s1->data, s1->len, fr1, 3), 3);
    ASSERT_EQ(tu_frames(s4->data, s4->len, fr4, 3), 3);
}

/* Damage in a segment that is not the last is corruption, even where it
 * would be a torn tail in the last one. */
TEST(wal_bit_flip_in_non_last_segment_is_corrupt)
{
    tu_tree_t tree;
    tu_frame_t fr1[3], fr4[3];
    make_two_segments(&tree, fr1, fr4);
    char name1[64], name4[64];
    tu_seg_name(name1, sizeof(name1), 1);
    tu_seg_name(name4, sizeof(name4), 4);
    wal_options_t o = tu_opts();
    long long len1 = (long long)tu_tree_get(&tree, name1)->len;
    long long len4 = (long long)tu_tree_get(&tree, name4)->len;

    /* Its last frame, and its file header. */
    uint64_t spots[] = {fr1[2].offset, fr1[2].offset + 4, fr1[2].offset + 20, fr1[2].end - 1,
                        0, 8, 16, 31};
    for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
        char dir[64], path[512];
        flip_copy(&tree, name1, spots[i], (int)(i % 8), dir, sizeof(dir));
        tu_seg_path(path, sizeof(path), dir, 1);
        uint64_t want_off = spots[i] < WALF_FILE_HEADER ? 0 : fr1[2].offset;
        wal_recovery_t rep;
        ASSERT_EQ(wal_check(dir, &o, &rep), WAL_E_CORRUPT);
        ASSERT_STREQ(rep.error_file, path);
        ASSERT_EQ(rep.error_offset, want_off);
        tu_tree_t before, after;
        tu_tree_load(&before, dir);
        wal_t *w;
        ASSERT_EQ(wal_open(dir, &o, NULL, &w, &rep), WAL_E_CORRUPT);
        ASSERT_STREQ(rep.error_file, path);
        ASSERT_EQ(rep.error_offset, want_off);
        tu_tree_load(&after, dir);
        ASSERT_TRUE(tu_tree_equal(&before, &after));
        tu_tree_free(&before);
        tu_tree_free(&after);

        /* Repair: cut segment 1 there, remove segment 4. */
        wal_options_t ro = o;
        ro.repair = true;
        tu_replay_t r = {0};
        wal_replay_t rp = tu_replay(&r);
        ASSERT_EQ(wal_open(dir, &ro, &rp, &w, &rep), 0);
        uint64_t kept = spots[i] < WALF_FILE_HEADER ? 0 : 2;
        tu_expect_records(&r, 1, kept);
        ASSERT_EQ(rep.bytes_dropped, (uint64_t)(len1 - (long long)want_off + len4));
        char p4[512];
        tu_seg_path(p4, sizeof(p4), dir, 4);
        ASSERT_TRUE(!tu_exists(p4));
        if (kept > 0)
            ASSERT_EQ(tu_size(path), want_off);
        append_next(w, kept + 1);
        ASSERT_EQ(wal_close(w), 0);
        tu_replay_free(&r);
        tu_rmrf(dir);
    }
    tu_tree_free(&tree);
}

/* A bad file header: corruption when valid frames follow it; a torn tail
 * when it is the last segment and holds nothing else. */
TEST(wal_bit_flip_in_file_header)
{
    tu_tree_t tree;
    tu_frame_t fr1[3], fr4[3];
    make_two_segments(&tree, fr1, fr4);
    char name4[64];
    tu_seg_name(name4, sizeof(name4), 4);
    wal_options_t o = tu_opts();

    char dir[64], path[512];
    store_copy(&tree, dir, sizeof(dir));
    tu_seg_path(path, sizeof(path), dir, 4);
    for (uint64_t at = 0; at < WALF_FILE_HEADER; at++) {
        for (int bit = 0; bit < 8; bit++) {
            tu_flip_bit(path, at, bit);
            wal_recovery_t rep;
            ASSERT_EQ(wal_check(dir, &o, &rep), WAL_E_CORRUPT);
            ASSERT_STREQ(rep.error_file, path);
            ASSERT_EQ(rep.error_offset, 0);
            tu_flip_bit(path, at, bit);
        }
    }
    wal_recovery_t rep;
    ASSERT_EQ(wal_check(dir, &o, &rep), 0);
    tu_rmrf(dir);

    /* Segment 4 holding only its header (opened, nothing appended). */
    tu_file_t *s4 = tu_tree_get(&tree, name4);
    size_t full4 = s4->len;
    s4->len = WALF_FILE_HEADER;
    store_copy(&tree, dir, sizeof(dir));
    s4->len = full4;
    tu_seg_path(path, sizeof(path), dir, 4);
    for (uint64_t at = 0; at < WALF_FILE_HEADER; at++) {
        for (int bit = 0; bit < 8; bit += 3) {
            tu_flip_bit(path, at, bit);
            ASSERT_EQ(wal_check(dir, &o, &rep), 0);
            ASSERT_STREQ(rep.cut_file, path);
            ASSERT_EQ(rep.bytes_dropped, WALF_FILE_HEADER);
            ASSERT_EQ(rep.last_lsn, 3);
            tu_flip_bit(path, at, bit);
        }
    }
    tu_flip_bit(path, 9, 1); /* the version field */
    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    tu_expect_records(&r, 1, 3);
    ASSERT_STREQ(rep.cut_file, path);
    ASSERT_EQ(rep.bytes_dropped, WALF_FILE_HEADER);
    ASSERT_TRUE(is_fresh_header(path, 4)); /* removed, then started anew */
    append_next(w, 4);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(dir);
    tu_tree_free(&tree);
}

/* ---- zero-filled tails ---- */

TEST(wal_zero_filled_tail_is_cut)
{
    enum { N = 10 };
    tu_tree_t tree;
    tu_frame_t fr[N + 1];
    make_log(&tree, fr, N, 0);
    wal_options_t o = tu_opts();
    size_t zlen = 64 << 10;
    uint8_t *zeros = calloc(1, zlen);
    ASSERT_NOT_NULL(zeros);
    size_t tails[] = {1, 17, 31, 32, 33, 4096, 64 << 10};
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        char dir[64], path[512];
        store_copy(&tree, dir, sizeof(dir));
        tu_seg_path(path, sizeof(path), dir, 1);
        tu_append(path, zeros, tails[i]);
        wal_recovery_t rep;
        ASSERT_EQ(wal_check(dir, &o, &rep), 0);
        ASSERT_STREQ(rep.cut_file, "");
        ASSERT_EQ(tu_size(path), (long long)(fr[N - 1].end + tails[i]));
        tu_replay_t r = {0};
        wal_replay_t rp = tu_replay(&r);
        wal_t *w;
        ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
        tu_expect_records(&r, 1, N);
        ASSERT_STREQ(rep.error_file, "");
        ASSERT_EQ(tu_size(path), fr[N - 1].end); /* the zeros are gone */
        append_next(w, N + 1);
        ASSERT_EQ(wal_close(w), 0);
        tu_replay_free(&r);
        tu_rmrf(dir);
    }

    /* A frame whose header reached the disk but whose payload did not (a
     * preallocated tail): a torn frame, cut. */
    char dir[64], path[512];
    store_copy(&tree, dir, sizeof(dir));
    tu_seg_path(path, sizeof(path), dir, 1);
    size_t len;
    uint8_t *img = tu_read(path, &len);
    memset(img + fr[N - 1].offset + WALF_FRAME_HEADER, 0, fr[N - 1].stored_len);
    tu_write(path, img, len);
    tu_append(path, zeros, zlen);
    free(img);
    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_recovery_t rep;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    tu_expect_records(&r, 1, N - 1);
    ASSERT_EQ(rep.bytes_dropped, len + zlen - fr[N - 1].offset);
    ASSERT_EQ(tu_size(path), fr[N - 1].offset);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(dir);

    /* Zeros, then something that is not a frame, then nothing valid: torn. */
    store_copy(&tree, dir, sizeof(dir));
    tu_seg_path(path, sizeof(path), dir, 1);
    tu_append(path, zeros, 100);
    tu_append(path, "junk", 4);
    rp = tu_replay(&r);
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    tu_expect_records(&r, 1, N);
    ASSERT_EQ(rep.bytes_dropped, 104);
    ASSERT_EQ(tu_size(path), fr[N - 1].end);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(dir);
    free(zeros);
    tu_tree_free(&tree);
}

/* ---- segments ---- */

/* Checks the segments of `dir`: names are their first LSN, each one starts
 * where the one before ended. Returns the count; firsts[] gets the names. */
static size_t check_segments(const char *dir, uint64_t *firsts, size_t max, uint64_t last)
{
    size_t n = tu_list(dir, "wal", ".wal", firsts, max);
    ASSERT_LE(n, max);
    uint64_t next = firsts[0];
    for (size_t i = 0; i < n; i++) {
        char path[512];
        tu_seg_path(path, sizeof(path), dir, firsts[i]);
        size_t len;
        uint8_t *img = tu_read(path, &len);
        ASSERT_GE(len, WALF_FILE_HEADER);
        ASSERT_EQ(memcmp(img, WALF_MAGIC_SEGMENT, 8), 0);
        ASSERT_EQ(wal__get64(img + 16), firsts[i]);
        ASSERT_EQ(firsts[i], next);
        tu_frame_t fr[512];
        size_t nf = tu_frames(img, len, fr, 512);
        ASSERT_LE(nf, 512);
        uint64_t end = WALF_FILE_HEADER;
        for (size_t f = 0; f < nf; f++) {
            ASSERT_EQ(fr[f].first_lsn, next);
            next += fr[f].count;
            end = fr[f].end;
        }
        ASSERT_EQ(end, len);
        free(img);
    }
    ASSERT_EQ(next, last + 1);
    return n;
}

TEST(wal_segment_roll_gap_and_torn_middle)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "roll");
    wal_options_t o = tu_opts();
    o.segment_bytes = 4096;
    o.fsync = WAL_FSYNC_NONE;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    enum { N = 600 };
    for (uint64_t lsn = 1; lsn <= N; lsn++) {
        char buf[256];
        size_t len = tu_record_payload(buf, lsn);
        uint64_t got;
        ASSERT_EQ(wal_append(w, 7, buf, len, &got), 0);
        ASSERT_EQ(got, lsn);
        if (lsn % 3 == 0)
            ASSERT_EQ(wal_wait(w, lsn), 0);
    }
    ASSERT_EQ(wal_wait(w, N), 0);
    uint64_t firsts[256];
    size_t n = tu_list(dir, "wal", ".wal", firsts, 256);
    uint64_t bytes, segs;
    wal_disk_usage(w, &bytes, &segs);
    ASSERT_EQ(segs, n);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        char path[512];
        tu_seg_path(path, sizeof(path), dir, firsts[i]);
        total += (uint64_t)tu_size(path);
        /* A segment rolls only once it has passed segment_bytes. */
        if (i + 1 < n)
            ASSERT_GE(tu_size(path), 4096);
    }
    ASSERT_EQ(bytes, total);
    ASSERT_EQ(wal_close(w), 0);

    n = check_segments(dir, firsts, 256, N);
    ASSERT_GE(n, 4);
    ASSERT_EQ(firsts[0], 1);

    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_recovery_t rep;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    tu_expect_records(&r, 1, N);
    ASSERT_EQ(rep.segments, n);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);

    tu_tree_t tree;
    tu_tree_load(&tree, dir);
    tu_rmrf(dir);

    /* A missing middle segment: a gap, named by the segment after it. */
    char copy[64], path[512];
    store_copy(&tree, copy, sizeof(copy));
    n = tu_list(copy, "wal", ".wal", firsts, 256);
    tu_seg_path(path, sizeof(path), copy, firsts[2]);
    ASSERT_EQ(unlink(path), 0);
    tu_seg_path(path, sizeof(path), copy, firsts[3]);
    ASSERT_EQ(wal_check(copy, &o, &rep), WAL_E_GAP);
    ASSERT_STREQ(rep.error_file, path);
    tu_tree_t before, after;
    tu_tree_load(&before, copy);
    ASSERT_EQ(wal_open(copy, &o, NULL, &w, &rep), WAL_E_GAP);
    ASSERT_STREQ(rep.error_file, path);
    tu_tree_load(&after, copy);
    ASSERT_TRUE(tu_tree_equal(&before, &after));
    tu_tree_free(&before);
    tu_tree_free(&after);
    tu_rmrf(copy);

    /* A missing first segment: a gap too (no snapshot covers it). */
    store_copy(&tree, copy, sizeof(copy));
    tu_seg_path(path, sizeof(path), copy, 1);
    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(wal_open(copy, &o, NULL, &w, &rep), WAL_E_GAP);
    tu_rmrf(copy);

    /* A torn tail of a segment that is not the last: corrupt. */
    store_copy(&tree, copy, sizeof(copy));
    tu_seg_path(path, sizeof(path), copy, firsts[1]);
    size_t len;
    uint8_t *img = tu_read(path, &len);
    tu_frame_t fr[512];
    size_t nf = tu_frames(img, len, fr, 512);
    free(img);
    ASSERT_GE(nf, 1);
    ASSERT_LE(nf, 512);
    tu_truncate(path, fr[nf - 1].end - 5);
    ASSERT_EQ(wal_check(copy, &o, &rep), WAL_E_CORRUPT);
    ASSERT_STREQ(rep.error_file, path);
    ASSERT_EQ(rep.error_offset, fr[nf - 1].offset);
    ASSERT_EQ(wal_open(copy, &o, NULL, &w, &rep), WAL_E_CORRUPT);
    ASSERT_STREQ(rep.error_file, path);
    ASSERT_EQ(tu_size(path), (long long)(fr[nf - 1].end - 5)); /* not cut */
    /* Cut at a frame boundary instead, the next segment starts too late. */
    tu_truncate(path, fr[nf - 1].offset);
    ASSERT_EQ(wal_open(copy, &o, NULL, &w, &rep), WAL_E_GAP);
    /* Repair drops everything after the damage. */
    tu_rmrf(copy);
    store_copy(&tree, copy, sizeof(copy));
    tu_seg_path(path, sizeof(path), copy, firsts[1]);
    tu_truncate(path, fr[nf - 1].end - 5);
    o.repair = true;
    rp = tu_replay(&r);
    ASSERT_EQ(wal_open(copy, &o, &rp, &w, &rep), 0);
    tu_expect_records(&r, 1, fr[nf - 1].first_lsn - 1);
    ASSERT_EQ(tu_list(copy, "wal", ".wal", firsts, 256), 3); /* 1, the cut one, the new one */
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(copy);
    tu_tree_free(&tree);
}

/* ---- a frame whose checksum holds but whose records are wrong ---- */

/* Segment 1: frame A (record 1), then frame B claiming records 2 and 3
 * whose second record header overruns the payload; checksums valid. No
 * record of B may reach the callbacks: B is rejected as a whole. */
static size_t craft_bad_records(uint8_t *img)
{
    wal__file_header(img, false, 1);
    size_t off = WALF_FILE_HEADER;
    uint8_t raw[256];
    size_t rl = tu_raw_record(raw, 0, 5, "first", 5);
    off += tu_raw_frame(img + off, 1, 1, raw, rl, WALF_KIND_RECORDS);
    rl = tu_raw_record(raw, 0, 5, "second", 6);
    rl = tu_raw_record(raw, rl, 5, "third", 5);
    wal__put32(raw + rl - 5 - WALF_RECORD_HEADER, 100); /* "third" claims 100 bytes */
    off += tu_raw_frame(img + off, 2, 2, raw, rl, WALF_KIND_RECORDS);
    return off;
}

TEST(wal_records_of_a_bad_frame_are_never_delivered)
{
    char dir[64], path[512];
    tu_tmpdir(dir, sizeof(dir), "badrec");
    snprintf(path, sizeof(path), "%s/wal", dir);
    ASSERT_EQ(mkdir(path, 0700), 0);
    tu_seg_path(path, sizeof(path), dir, 1);
    uint8_t img[1024];
    size_t len = craft_bad_records(img);
    tu_write(path, img, len);
    uint64_t bad_off = WALF_FILE_HEADER + WALF_FRAME_HEADER + WALF_RECORD_HEADER + 5;

    wal_options_t o = tu_opts();
    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_recovery_t rep;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), WAL_E_CORRUPT);
    ASSERT_EQ(rep.error_offset, bad_off);
    ASSERT_EQ(r.n, 1);
    tu_replay_free(&r);

    o.repair = true;
    rp = tu_replay(&r);
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    ASSERT_EQ(r.n, 1); /* record 2 was never given to the caller... */
    ASSERT_EQ(r.recs[0].lsn, 1);
    ASSERT_EQ(rep.last_lsn, 1);
    uint64_t lsn;
    ASSERT_EQ(wal_append(w, 9, "new two", 7, &lsn), 0);
    ASSERT_EQ(lsn, 2); /* ...because LSN 2 now names another record */
    ASSERT_EQ(wal_wait(w, lsn), 0);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);

    o.repair = false;
    rp = tu_replay(&r);
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    ASSERT_EQ(r.n, 2);
    ASSERT_EQ(r.recs[1].type, 9);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(dir);
}

/* A segment whose (valid) header names another first LSN than its file
 * name: corruption at the header's LSN field, with or without frames. */
TEST(wal_segment_header_names_another_lsn)
{
    tu_tree_t tree;
    tu_frame_t fr1[3], fr4[3];
    make_two_segments(&tree, fr1, fr4);
    char name4[64];
    tu_seg_name(name4, sizeof(name4), 4);
    tu_file_t *s4 = tu_tree_get(&tree, name4);
    size_t full = s4->len;
    wal__file_header(s4->data, false, 5);
    wal_options_t o = tu_opts();
    for (int only_header = 0; only_header < 2; only_header++) {
        s4->len = only_header ? WALF_FILE_HEADER : full;
        char dir[64], path[512];
        store_copy(&tree, dir, sizeof(dir));
        tu_seg_path(path, sizeof(path), dir, 4);
        wal_recovery_t rep;
        ASSERT_EQ(wal_check(dir, &o, &rep), WAL_E_CORRUPT);
        ASSERT_STREQ(rep.error_file, path);
        ASSERT_EQ(rep.error_offset, 16);
        wal_t *w;
        ASSERT_EQ(wal_open(dir, &o, NULL, &w, &rep), WAL_E_CORRUPT);
        ASSERT_STREQ(rep.error_file, path);
        ASSERT_EQ(rep.error_offset, 16);
        tu_rmrf(dir);
    }
    s4->len = full;
    tu_tree_free(&tree);
}

/* Under the fsync policies batch and none, frames are not each synced
 * before the next is written, so a crash may keep a later frame and lose an
 * earlier one: the segment says so in its header, and there a bad frame
 * followed by valid ones in the last segment is a torn tail, not corruption.
 * Under `always` the header says nothing and the same damage is corrupt. */
TEST(wal_unsynced_segment_bad_middle_frame_is_torn)
{
    enum { N = 6, BAD = 2 };
    static const enum wal_fsync policies[] = {WAL_FSYNC_ALWAYS, WAL_FSYNC_BATCH,
                                              WAL_FSYNC_NONE};
    for (size_t p = 0; p < 3; p++) {
        char src[64];
        tu_tmpdir(src, sizeof(src), "unsynced");
        wal_options_t o = tu_opts();
        o.fsync = policies[p];
        o.batch_ms = 60000;
        ASSERT_EQ(tu_write_records(src, &o, N), N);
        tu_tree_t tree;
        tu_tree_load(&tree, src);
        tu_rmrf(src);
        char name[64];
        tu_seg_name(name, sizeof(name), 1);
        const tu_file_t *seg = tu_tree_get(&tree, name);
        ASSERT_NOT_NULL(seg);
        bool unsynced = policies[p] != WAL_FSYNC_ALWAYS;
        ASSERT_EQ(wal__get32(seg->data + 12), unsynced ? WALF_FILE_UNSYNCED : 0);
        tu_frame_t fr[N + 1];
        ASSERT_EQ(tu_frames(seg->data, seg->len, fr, N + 1), N);
        size_t len = seg->len;

        char dir[64], path[512];
        flip_copy(&tree, name, fr[BAD].offset + 40, 1, dir, sizeof(dir));
        tu_seg_path(path, sizeof(path), dir, 1);
        wal_recovery_t rep;
        tu_replay_t r = {0};
        wal_replay_t rp = tu_replay(&r);
        wal_t *w;
        if (!unsynced) {
            ASSERT_EQ(wal_check(dir, &o, &rep), WAL_E_CORRUPT);
            ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), WAL_E_CORRUPT);
            ASSERT_EQ(rep.error_offset, fr[BAD].offset);
        } else {
            ASSERT_EQ(wal_check(dir, &o, &rep), 0);
            ASSERT_STREQ(rep.cut_file, path);
            ASSERT_EQ(tu_size(path), len);
            ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
            tu_expect_records(&r, 1, BAD);
            ASSERT_STREQ(rep.cut_file, path);
            ASSERT_EQ(rep.cut_offset, fr[BAD].offset);
            ASSERT_EQ(rep.bytes_dropped, len - fr[BAD].offset);
            ASSERT_EQ(tu_size(path), fr[BAD].offset);
            append_next(w, BAD + 1);
            ASSERT_EQ(wal_close(w), 0);
        }
        tu_replay_free(&r);
        tu_rmrf(dir);
        tu_tree_free(&tree);
    }

    /* In a segment that is not the last, the same damage stays corrupt. */
    char dir[64], path[512];
    tu_tmpdir(dir, sizeof(dir), "unsynced2");
    wal_options_t o = tu_opts();
    o.fsync = WAL_FSYNC_NONE;
    ASSERT_EQ(tu_write_records(dir, &o, N), N);
    ASSERT_EQ(tu_write_records(dir, &o, 1), N + 1);
    tu_seg_path(path, sizeof(path), dir, 1);
    size_t len;
    uint8_t *img = tu_read(path, &len);
    tu_frame_t fr[N + 1];
    ASSERT_EQ(tu_frames(img, len, fr, N + 1), N);
    free(img);
    tu_flip_bit(path, fr[BAD].offset + 40, 1);
    wal_recovery_t rep;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, &rep), WAL_E_CORRUPT);
    ASSERT_STREQ(rep.error_file, path);
    ASSERT_EQ(rep.error_offset, fr[BAD].offset);
    tu_rmrf(dir);
}
