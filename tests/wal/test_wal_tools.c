/*
 * The offline tools: wal_check (verifies, never changes anything) and
 * wal_inspect (one callback per record, one per damaged frame).
 */
#include <sys/stat.h>
#include <unistd.h>

#include "../../wal/wal_format.h"
#include "../test.h"
#include "wal.h"
#include "wal_testutil.h"

/* Runs wal_check on `dir` and fails the test if anything changed. */
static int check_unchanged(const char *dir, wal_recovery_t *rep)
{
    tu_tree_t before, after;
    tu_tree_load(&before, dir);
    wal_options_t o = tu_opts();
    int rc = wal_check(dir, &o, rep);
    tu_tree_load(&after, dir);
    ASSERT_TRUE(tu_tree_equal(&before, &after));
    tu_tree_free(&before);
    tu_tree_free(&after);
    return rc;
}

/* Records 1..6 in segment 1, snapshots at 3 and 6, records 7..9 in segment
 * 7. Both snapshots stay (3 is the previous one), and so do both segments
 * (segment 1 holds records after 3). */
static void build(const char *dir)
{
    wal_options_t o = tu_opts();
    ASSERT_EQ(tu_write_records(dir, &o, 6), 6);
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    wal_snapshot_t *s;
    ASSERT_EQ(wal_snapshot_begin(w, 3, &s), 0);
    ASSERT_EQ(wal_snapshot_add(s, 4, "state at 03", 11), 0);
    ASSERT_EQ(wal_snapshot_commit(s), 0);
    ASSERT_EQ(wal_snapshot_begin(w, 6, &s), 0);
    ASSERT_EQ(wal_snapshot_add(s, 4, "state at six", 12), 0);
    ASSERT_EQ(wal_snapshot_add(s, 5, "", 0), 0);
    ASSERT_EQ(wal_snapshot_commit(s), 0);
    for (uint64_t l = 7; l <= 9; l++) {
        char buf[256];
        size_t len = tu_record_payload(buf, l);
        uint64_t lsn;
        ASSERT_EQ(wal_append(w, 7, buf, len, &lsn), 0);
        ASSERT_EQ(wal_wait(w, lsn), 0);
    }
    ASSERT_EQ(wal_close(w), 0);
    uint64_t l[8];
    ASSERT_EQ(tu_list(dir, "snapshots", ".snap", l, 8), 2);
    ASSERT_EQ(l[0], 3);
    ASSERT_EQ(l[1], 6);
    ASSERT_EQ(tu_list(dir, "wal", ".wal", l, 8), 2);
    ASSERT_EQ(l[0], 1);
    ASSERT_EQ(l[1], 7);
}

TEST(wal_check_reports_without_changing_anything)
{
    char dir[64], path[512];
    tu_tmpdir(dir, sizeof(dir), "check");
    wal_recovery_t rep;
    /* An empty directory, and one that does not exist. */
    ASSERT_EQ(check_unchanged(dir, &rep), 0);
    ASSERT_EQ(rep.last_lsn, 0);
    ASSERT_EQ(wal_check("/tmp/parley-wal-does-not-exist", NULL, &rep), 0);

    build(dir);
    ASSERT_EQ(check_unchanged(dir, &rep), 0);
    ASSERT_EQ(rep.last_lsn, 9);
    ASSERT_EQ(rep.snapshot_lsn, 6);
    ASSERT_STREQ(rep.cut_file, "");
    ASSERT_STREQ(rep.error_file, "");
    ASSERT_EQ(wal_check(dir, NULL, NULL), 0);

    tu_tree_t clean;
    tu_tree_load(&clean, dir);

    /* A leftover temporary snapshot and a zero tail: still clean, and
     * neither is cleaned up by the check. */
    tu_snap_path(path, sizeof(path), dir, 8, ".tmp");
    tu_write(path, "partial", 7);
    tu_seg_path(path, sizeof(path), dir, 7);
    uint8_t zeros[100] = {0};
    tu_append(path, zeros, sizeof(zeros));
    ASSERT_EQ(check_unchanged(dir, &rep), 0);
    ASSERT_STREQ(rep.cut_file, "");
    tu_rmrf(dir);

    /* A torn tail: 0, reported, not cut. */
    tu_tmpdir(dir, sizeof(dir), "check");
    tu_tree_store(&clean, dir);
    tu_seg_path(path, sizeof(path), dir, 7);
    long long size = tu_size(path);
    tu_truncate(path, (uint64_t)size - 3);
    ASSERT_EQ(check_unchanged(dir, &rep), 0);
    ASSERT_STREQ(rep.cut_file, path);
    ASSERT_GT(rep.bytes_dropped, 0);
    ASSERT_EQ(rep.last_lsn, 8);
    ASSERT_EQ(tu_size(path), size - 3);
    tu_rmrf(dir);

    /* Corruption in the middle of the last segment: named. */
    tu_tmpdir(dir, sizeof(dir), "check");
    tu_tree_store(&clean, dir);
    tu_seg_path(path, sizeof(path), dir, 7);
    size_t len;
    uint8_t *img = tu_read(path, &len);
    tu_frame_t fr[8];
    ASSERT_EQ(tu_frames(img, len, fr, 8), 3);
    free(img);
    tu_flip_bit(path, fr[1].offset + 35, 2);
    ASSERT_EQ(check_unchanged(dir, &rep), WAL_E_CORRUPT);
    ASSERT_STREQ(rep.error_file, path);
    ASSERT_EQ(rep.error_offset, fr[1].offset);
    tu_rmrf(dir);

    /* A damaged snapshot, newest or older, is an error that names it, even
     * though recovery could do without it. */
    for (int which = 0; which < 2; which++) {
        tu_tmpdir(dir, sizeof(dir), "check");
        tu_tree_store(&clean, dir);
        tu_snap_path(path, sizeof(path), dir, which ? 6 : 3, ".snap");
        tu_flip_bit(path, (uint64_t)tu_size(path) - 20, 0);
        ASSERT_NE(check_unchanged(dir, &rep), 0);
        ASSERT_STREQ(rep.error_file, path);
        wal_t *w;
        wal_options_t o = tu_opts();
        ASSERT_EQ(wal_open(dir, &o, NULL, &w, &rep), 0);
        ASSERT_EQ(rep.snapshot_lsn, which ? 3 : 6);
        ASSERT_EQ(wal_close(w), 0);
        tu_rmrf(dir);
    }
    tu_tree_free(&clean);
}

/* ---- wal_inspect ---- */

typedef struct seen {
    wal_inspect_record_t recs[64];
    char files[64][64];
    int n;
} seen_t;

static void collect(void *ctx, const wal_inspect_record_t *rec)
{
    seen_t *s = ctx;
    if (s->n < 64) {
        s->recs[s->n] = *rec;
        snprintf(s->files[s->n], sizeof(s->files[0]), "%s", rec->file);
        s->recs[s->n].file = s->files[s->n];
    }
    s->n++;
}

TEST(wal_inspect_reports_every_record)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "inspect");
    build(dir);
    seen_t s = {0};
    ASSERT_EQ(wal_inspect(dir, collect, &s), 0);
    /* Snapshots first (1 + 2 records), then segments 1 and 7 (6 + 3). */
    ASSERT_EQ(s.n, 12);
    char name[64];
    tu_snap_name(name, sizeof(name), 3);
    ASSERT_STREQ(s.recs[0].file, name);
    ASSERT_EQ(s.recs[0].lsn, 0);
    ASSERT_EQ(s.recs[0].type, 4);
    ASSERT_EQ(s.recs[0].raw_len, 11);
    tu_snap_name(name, sizeof(name), 6);
    ASSERT_STREQ(s.recs[1].file, name);
    ASSERT_EQ(s.recs[1].raw_len, 12);
    ASSERT_EQ(s.recs[2].type, 5);
    ASSERT_EQ(s.recs[2].raw_len, 0);
    ASSERT_EQ(s.recs[1].offset, s.recs[2].offset); /* one frame */
    for (int i = 0; i < 12; i++)
        ASSERT_TRUE(s.recs[i].checksum_ok);

    for (int seg = 0; seg < 2; seg++) {
        uint64_t first = seg ? 7 : 1;
        char path[512];
        tu_seg_path(path, sizeof(path), dir, first);
        size_t len;
        uint8_t *img = tu_read(path, &len);
        tu_frame_t fr[8];
        size_t nf = tu_frames(img, len, fr, 8);
        free(img);
        ASSERT_EQ(nf, seg ? 3 : 6);
        tu_seg_name(name, sizeof(name), first);
        for (size_t k = 0; k < nf; k++) {
            const wal_inspect_record_t *r = &s.recs[3 + (seg ? 6 : 0) + k];
            char buf[256];
            ASSERT_STREQ(r->file, name);
            ASSERT_EQ(r->lsn, first + k);
            ASSERT_EQ(r->type, 7);
            ASSERT_EQ(r->raw_len, tu_record_payload(buf, first + k));
            ASSERT_EQ(r->offset, fr[k].offset);
            ASSERT_EQ(r->frame_stored, fr[k].stored_len);
            ASSERT_EQ(r->frame_raw, fr[k].raw_len);
        }
    }

    /* A damaged frame: the records before it, then one line with
     * checksum_ok false, and nothing more from that file. */
    char path[512];
    tu_seg_path(path, sizeof(path), dir, 1);
    size_t len;
    uint8_t *img = tu_read(path, &len);
    tu_frame_t fr[8];
    ASSERT_EQ(tu_frames(img, len, fr, 8), 6);
    free(img);
    tu_flip_bit(path, fr[2].end - 1, 6);
    memset(&s, 0, sizeof(s));
    ASSERT_EQ(wal_inspect(dir, collect, &s), 0);
    ASSERT_EQ(s.n, 3 + 2 + 1 + 3);
    ASSERT_TRUE(s.recs[4].checksum_ok);
    ASSERT_EQ(s.recs[4].lsn, 2);
    const wal_inspect_record_t *bad = &s.recs[5];
    ASSERT_TRUE(!bad->checksum_ok);
    ASSERT_EQ(bad->offset, fr[2].offset);
    ASSERT_EQ(bad->lsn, 3);
    ASSERT_EQ(bad->frame_stored, fr[2].stored_len);
    tu_seg_name(name, sizeof(name), 1);
    ASSERT_STREQ(bad->file, name);
    ASSERT_EQ(s.recs[6].lsn, 7); /* the next segment goes on */
    ASSERT_TRUE(s.recs[6].checksum_ok);
    tu_rmrf(dir);
}

/* A frame whose checksum holds but whose records do not add up: none of
 * its records is shown as good. */
TEST(wal_inspect_bad_records_frame)
{
    char dir[64], path[512];
    tu_tmpdir(dir, sizeof(dir), "inspect2");
    snprintf(path, sizeof(path), "%s/wal", dir);
    ASSERT_EQ(mkdir(path, 0700), 0);
    uint8_t img[512], raw[128];
    wal__file_header(img, false, 1);
    size_t off = WALF_FILE_HEADER;
    size_t rl = tu_raw_record(raw, 0, 5, "first", 5);
    off += tu_raw_frame(img + off, 1, 1, raw, rl, WALF_KIND_RECORDS);
    size_t bad_off = off;
    rl = tu_raw_record(raw, 0, 5, "second", 6);
    rl = tu_raw_record(raw, rl, 5, "third", 5);
    rl += 3; /* three bytes that belong to no record */
    off += tu_raw_frame(img + off, 2, 2, raw, rl, WALF_KIND_RECORDS);
    tu_seg_path(path, sizeof(path), dir, 1);
    tu_write(path, img, off);

    seen_t s = {0};
    ASSERT_EQ(wal_inspect(dir, collect, &s), 0);
    ASSERT_EQ(s.n, 2);
    ASSERT_TRUE(s.recs[0].checksum_ok);
    ASSERT_EQ(s.recs[0].lsn, 1);
    ASSERT_TRUE(!s.recs[1].checksum_ok);
    ASSERT_EQ(s.recs[1].offset, bad_off);
    tu_rmrf(dir);
}
