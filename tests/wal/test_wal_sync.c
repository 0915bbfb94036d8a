/*
 * wal_sync and what rests on it: a forced sync under the policies that do
 * not sync each write, snapshots that never show records the log could
 * lose, and wal_check reading even the segments a snapshot covers.
 */
#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

#include "../test.h"
#include "../../wal/wal_format.h"
#include "wal_testutil.h"

static atomic_int syncs;

static ssize_t plain_write(int fd, const void *buf, size_t len)
{
    return write(fd, buf, len);
}

static int counting_fdatasync(int fd)
{
    atomic_fetch_add(&syncs, 1);
    return fdatasync(fd);
}

static const wal_io_t counting_io = {plain_write, counting_fdatasync};

TEST(wal_sync_forces_a_sync_under_policy_none)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "syncnone");
    wal_options_t o = tu_opts();
    o.fsync = WAL_FSYNC_NONE;
    o.io = &counting_io;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    int before = atomic_load(&syncs);
    uint64_t lsn = 0;
    for (int i = 0; i < 20; i++)
        ASSERT_EQ(wal_append(w, 1, "x", 1, &lsn), 0);
    ASSERT_EQ(wal_wait(w, lsn), 0);
    ASSERT_EQ(atomic_load(&syncs), before); /* none: written, not synced */
    ASSERT_LT(wal_durable_lsn(w), lsn);
    ASSERT_EQ(wal_sync(w), 0);
    ASSERT_EQ(wal_durable_lsn(w), lsn);
    ASSERT_GT(atomic_load(&syncs), before);
    ASSERT_EQ(wal_sync(w), 0); /* nothing new: no further sync needed */
    ASSERT_EQ(wal_close(w), 0);
    tu_rmrf(dir);
}

TEST(wal_snapshot_commit_syncs_the_log_under_policy_batch)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "syncsnap");
    wal_options_t o = tu_opts();
    o.fsync = WAL_FSYNC_BATCH;
    o.batch_ms = 60000; /* the timer alone would not sync during the test */
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    uint64_t lsn = 0;
    for (int i = 0; i < 50; i++)
        ASSERT_EQ(wal_append(w, 1, "abc", 3, &lsn), 0);
    ASSERT_EQ(wal_wait(w, lsn), 0);
    wal_snapshot_t *s;
    ASSERT_EQ(wal_snapshot_begin(w, lsn, &s), 0);
    ASSERT_EQ(wal_snapshot_add(s, 2, "state", 5), 0);
    ASSERT_EQ(wal_snapshot_commit(s), 0);
    ASSERT_EQ(wal_durable_lsn(w), lsn);
    ASSERT_EQ(wal_close(w), 0);
    tu_rmrf(dir);
}

TEST(wal_check_reads_segments_the_snapshot_covers)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "checkcover");
    wal_options_t o = tu_opts();
    o.segment_bytes = 4096;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    uint64_t lsn = 0;
    char rec[200];
    memset(rec, 'r', sizeof(rec));
    for (int i = 0; i < 200; i++) {
        tu_fill((uint8_t *)rec, sizeof(rec), (uint64_t)i, false);
        ASSERT_EQ(wal_append(w, 1, rec, sizeof(rec), &lsn), 0);
        ASSERT_EQ(wal_wait(w, lsn), 0);
    }
    wal_snapshot_t *s;
    ASSERT_EQ(wal_snapshot_begin(w, lsn, &s), 0);
    ASSERT_EQ(wal_snapshot_add(s, 2, "state", 5), 0);
    ASSERT_EQ(wal_snapshot_commit(s), 0);
    ASSERT_EQ(wal_close(w), 0);

    uint64_t segs[256];
    size_t n = tu_list(dir, "wal", ".wal", segs, 256);
    ASSERT_GE(n, 3);
    char path[512];
    tu_seg_path(path, sizeof(path), dir, segs[0]);
    tu_flip_bit(path, (uint64_t)tu_size(path) / 2, 1);
    wal_recovery_t rep;
    ASSERT_EQ(wal_check(dir, NULL, &rep), WAL_E_CORRUPT);
    ASSERT_STREQ(rep.error_file, path);
    /* Recovery itself does not need that segment and succeeds. */
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, &rep), 0);
    ASSERT_EQ(rep.snapshot_lsn, lsn);
    ASSERT_EQ(wal_close(w), 0);
    tu_rmrf(dir);
}

TEST(wal_format_version_zero_is_corruption_not_a_newer_version)
{
    uint8_t img[WALF_FILE_HEADER];
    wal__file_header(img, false, 1);
    wal__put32(img + 8, 0);
    wal__put32(img + 28, wal__mask(wal__crc32c(0, img, 28)));
    ASSERT_EQ(wal_scan_image(img, sizeof(img), false), WAL_E_CORRUPT);
    wal__put32(img + 8, 2);
    wal__put32(img + 28, wal__mask(wal__crc32c(0, img, 28)));
    ASSERT_EQ(wal_scan_image(img, sizeof(img), false), WAL_E_VERSION);
}
