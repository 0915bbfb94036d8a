/*
 * Backup holds and cuts (wal/backup.c): a hold keeps its snapshot and the
 * segments after it through later snapshots' trims, and lets them go once
 * ended; the held LSN ends a frame and wal_segment_cut finds that frame's
 * end; a copy of the held files cut there recovers exactly up to the LSN.
 */
#include <errno.h>
#include <unistd.h>

#include "../test.h"
#include "wal.h"
#include "wal_testutil.h"

static void append_n(wal_t *w, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint8_t buf[200];
        tu_fill(buf, sizeof(buf), wal_last_lsn(w) + 1, false);
        uint64_t lsn;
        ASSERT_EQ(wal_append(w, 1, buf, sizeof(buf), &lsn), 0);
        ASSERT_EQ(wal_wait(w, lsn), 0);
    }
}

static void snap_now(wal_t *w)
{
    wal_snapshot_t *s;
    ASSERT_EQ(wal_snapshot_begin(w, wal_last_lsn(w), &s), 0);
    ASSERT_EQ(wal_snapshot_add(s, 2, "state", 5), 0);
    ASSERT_EQ(wal_snapshot_commit(s), 0);
}

TEST(wal_hold_keeps_its_snapshot_and_segments_until_ended)
{
    char dir[128], path[4200];
    tu_tmpdir(dir, sizeof(dir), "hold");
    wal_options_t o = tu_opts();
    o.segment_bytes = 4096;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    append_n(w, 40);
    snap_now(w);
    uint64_t held_snap = wal_snapshot_lsn(w);
    append_n(w, 40);
    wal_hold_t h;
    ASSERT_EQ(wal_hold_begin(w, &h), 0);
    ASSERT_EQ(h.snapshot_lsn, held_snap);
    ASSERT_EQ(h.lsn, wal_last_lsn(w));
    ASSERT_GT(h.n_segments, 1);
    /* Two more snapshots: unheld, the first snapshot and the segments
     * below the second would go. */
    append_n(w, 40);
    snap_now(w);
    append_n(w, 40);
    snap_now(w);
    tu_snap_path(path, sizeof(path), dir, held_snap, ".snap");
    ASSERT_TRUE(tu_exists(path));
    for (size_t i = 0; i < h.n_segments; i++) {
        tu_seg_path(path, sizeof(path), dir, h.segments[i]);
        ASSERT_TRUE(tu_exists(path));
        uint64_t end;
        ASSERT_EQ(wal_segment_cut(path, h.lsn, &end), 0);
        ASSERT_LE(end, (uint64_t)tu_size(path));
        ASSERT_GT(end, 32);
    }
    /* The last held segment goes on past the LSN; its cut is shorter. */
    tu_seg_path(path, sizeof(path), dir, h.segments[h.n_segments - 1]);
    uint64_t end_held, end_all;
    ASSERT_EQ(wal_segment_cut(path, h.lsn, &end_held), 0);
    ASSERT_EQ(wal_segment_cut(path, wal_last_lsn(w), &end_all), 0);
    ASSERT_LE(end_held, end_all);

    /* A copy of the held files, the last cut, recovers to exactly h.lsn. */
    char copy[128];
    tu_tmpdir(copy, sizeof(copy), "holdcopy");
    tu_tree_t t = {0};
    tu_tree_t c = {0};
    tu_tree_load(&t, dir);
    for (size_t i = 0; i < t.n; i++) {
        char name[64];
        bool keep = false;
        tu_snap_name(name, sizeof(name), held_snap);
        keep = strcmp(t.files[i].name, name) == 0;
        for (size_t j = 0; j < h.n_segments && !keep; j++) {
            tu_seg_name(name, sizeof(name), h.segments[j]);
            if (strcmp(t.files[i].name, name) == 0) {
                uint64_t e;
                char p[4200];
                tu_seg_path(p, sizeof(p), dir, h.segments[j]);
                ASSERT_EQ(wal_segment_cut(p, h.lsn, &e), 0);
                t.files[i].len = (size_t)e;
                keep = true;
            }
        }
        if (keep) {
            c.files = realloc(c.files, (c.n + 1) * sizeof(*c.files));
            c.files[c.n++] = t.files[i];
        }
    }
    tu_tree_store(&c, copy);
    free(c.files);
    tu_tree_free(&t);
    wal_recovery_t rep;
    ASSERT_EQ(wal_check(copy, &o, &rep), 0);
    ASSERT_EQ(rep.snapshot_lsn, held_snap);
    ASSERT_EQ(rep.last_lsn, h.lsn);
    tu_rmrf(copy);

    /* Ended: the next snapshot trims them. */
    uint64_t first = h.segments[0];
    wal_hold_end(&h);
    append_n(w, 40);
    snap_now(w);
    tu_snap_path(path, sizeof(path), dir, held_snap, ".snap");
    ASSERT_TRUE(!tu_exists(path));
    tu_seg_path(path, sizeof(path), dir, first);
    ASSERT_TRUE(!tu_exists(path));
    ASSERT_EQ(wal_close(w), 0);
    tu_rmrf(dir);
}

TEST(wal_segment_cut_refuses_a_damaged_segment_and_bad_arguments)
{
    char dir[128], path[4200];
    tu_tmpdir(dir, sizeof(dir), "cut");
    wal_options_t o = tu_opts();
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    append_n(w, 10);
    uint64_t last = wal_last_lsn(w);
    ASSERT_EQ(wal_close(w), 0);
    uint64_t segs[8];
    ASSERT_EQ(tu_list(dir, "wal", ".wal", segs, 8), 1);
    tu_seg_path(path, sizeof(path), dir, segs[0]);
    uint64_t end;
    ASSERT_EQ(wal_segment_cut(path, last, &end), 0);
    ASSERT_EQ(end, (uint64_t)tu_size(path));
    ASSERT_EQ(wal_segment_cut(path, 0, &end), 0);
    ASSERT_EQ(end, 32); /* the header alone */
    ASSERT_EQ(wal_segment_cut(NULL, 1, &end), WAL_E_ARG);
    ASSERT_EQ(wal_segment_cut("/nonexistent/x.wal", 1, &end), -ENOENT);
    tu_flip_bit(path, 40, 3); /* inside the first frame's header */
    ASSERT_EQ(wal_segment_cut(path, last, &end), WAL_E_CORRUPT);
    tu_rmrf(dir);
}
