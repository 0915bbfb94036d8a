/* The log's figures: the latency histogram and its window (pure functions
 * of wal/stats.c, with the second given), and the live log noting its own
 * syncs, batches and snapshot size. */
#include <errno.h>
#include <unistd.h>

#include "../test.h"
#include "wal.h"
#include "wal_internal.h"
#include "wal_testutil.h"

TEST(wal_stats_buckets_are_ordered_and_floors_bound_their_values)
{
    unsigned prev = 0;
    for (uint64_t us = 0; us < 5000000; us += us < 100 ? 1 : us / 37) {
        unsigned b = wal__stats_bucket(us);
        ASSERT_GE(b, prev);
        ASSERT_LE(wal__stats_bucket_floor(b), us);
        /* the next bucket starts above the value: within a quarter octave */
        if (b + 1 < WALF_STAT_BUCKETS)
            ASSERT_GT(wal__stats_bucket_floor(b + 1), us);
        prev = b;
    }
    ASSERT_EQ(wal__stats_bucket(0), 0);
    ASSERT_EQ(wal__stats_bucket(3), 3);
    ASSERT_EQ(wal__stats_bucket_floor(wal__stats_bucket(1000)), 896);
    ASSERT_EQ(wal__stats_bucket(UINT64_MAX), WALF_STAT_BUCKETS - 1);
}

TEST(wal_stats_percentiles_batches_and_the_window)
{
    walf_stats_t st;
    wal__stats_init(&st);
    wal_stats_t out = {0};
    wal__stats_read(&st, 1000, &out);
    ASSERT_EQ(out.syncs, 0);
    ASSERT_EQ(out.fsync_p50_us, 0);
    ASSERT_EQ(out.fsync_p99_us, 0);
    ASSERT_EQ(out.batch_max, 0);

    /* 98 syncs of 100 us and 2 of 10,000 us at second 1000: p50 is the
     * 100 us bucket, p99 the 10 ms one. */
    for (int i = 0; i < 98; i++)
        wal__stats_note(&st, 1000, 100, 2);
    wal__stats_note(&st, 1000, 10000, 30);
    wal__stats_note(&st, 1000, 10000, 4);
    wal__stats_read(&st, 1000, &out);
    ASSERT_EQ(out.syncs, 100);
    ASSERT_EQ(out.syncs_total, 100);
    ASSERT_EQ(out.fsync_p50_us, wal__stats_bucket_floor(wal__stats_bucket(100)));
    ASSERT_EQ(out.fsync_p99_us, wal__stats_bucket_floor(wal__stats_bucket(10000)));
    ASSERT_EQ(out.fsync_max_us, 10000);
    ASSERT_EQ(out.batch_max, 30);
    ASSERT_EQ((long)(out.batch_mean * 100 + 0.5), 98 * 2 + 30 + 4); /* 2.30 */

    /* 59 seconds later the slot still counts; at 60 it has left the window. */
    wal__stats_note(&st, 1059, 50, 1);
    wal__stats_read(&st, 1059, &out);
    ASSERT_EQ(out.syncs, 101);
    wal__stats_read(&st, 1060, &out);
    ASSERT_EQ(out.syncs, 1);
    ASSERT_EQ(out.fsync_p50_us, wal__stats_bucket_floor(wal__stats_bucket(50)));
    ASSERT_EQ(out.fsync_max_us, 50);
    ASSERT_EQ(out.syncs_total, 101);
    /* A second coming round again reuses its slot from zero. */
    wal__stats_note(&st, 1060, 7, 1);
    wal__stats_read(&st, 1060, &out);
    ASSERT_EQ(out.syncs, 2);
    ASSERT_EQ(out.batch_max, 1);
    ASSERT_LE(out.fsync_p50_us, out.fsync_p99_us);
    ASSERT_LE(out.fsync_p99_us, out.fsync_max_us);
}

TEST(wal_stats_cumulative_histograms_keep_every_sync)
{
    walf_stats_t st;
    wal__stats_init(&st);
    /* on a bound counts in that bucket; over the last bound in the overflow */
    wal__stats_note(&st, 10, 100, 1);     /* le 100 us, le 1 */
    wal__stats_note(&st, 10, 101, 3);     /* le 250 us, le 4 */
    wal__stats_note(&st, 10, 2000000, 5000); /* over 1 s, over 1024 */
    /* long after the window, still counted */
    wal__stats_note(&st, 500, 1000, 2);   /* le 1 ms, le 2 */
    wal_stats_t out = {0};
    wal__stats_read(&st, 500, &out);
    ASSERT_EQ(out.syncs, 1);
    ASSERT_EQ(out.syncs_total, 4);
    ASSERT_EQ(out.fsync_hist[0], 1);
    ASSERT_EQ(out.fsync_hist[1], 1);
    ASSERT_EQ(out.fsync_hist[3], 1);
    ASSERT_EQ(out.fsync_hist[WAL_FSYNC_BUCKETS], 1);
    ASSERT_EQ(out.fsync_sum_us, 100 + 101 + 2000000 + 1000);
    ASSERT_EQ(out.batch_hist[0], 1);
    ASSERT_EQ(out.batch_hist[1], 1);
    ASSERT_EQ(out.batch_hist[2], 1);
    ASSERT_EQ(out.batch_hist[WAL_BATCH_BUCKETS], 1);
    ASSERT_EQ(out.batch_sum, 1 + 3 + 5000 + 2);
    uint64_t n = 0;
    for (unsigned b = 0; b <= WAL_FSYNC_BUCKETS; b++)
        n += out.fsync_hist[b];
    ASSERT_EQ(n, out.syncs_total);
    for (unsigned b = 1; b < WAL_FSYNC_BUCKETS; b++)
        ASSERT_LT(wal_fsync_bounds_us[b - 1], wal_fsync_bounds_us[b]);
}

static int slow_fdatasync(int fd)
{
    usleep(3000); /* at least 3 ms: the latency noted cannot be less */
    return fdatasync(fd);
}

TEST(wal_stats_of_a_live_log)
{
    char dir[96];
    tu_tmpdir(dir, sizeof(dir), "stats");
    static const wal_io_t io = {.write = write, .fdatasync = slow_fdatasync};
    wal_options_t o = {.fsync = WAL_FSYNC_ALWAYS, .io = &io};
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    wal_stats_t st;
    wal_get_stats(w, &st);
    ASSERT_EQ(st.syncs, 0);
    ASSERT_EQ(st.segments, 1);
    ASSERT_EQ(st.segment_first_lsn, 1);
    ASSERT_EQ(st.snapshot_lsn, 0);
    uint64_t lsn = 0;
    for (int i = 0; i < 20; i++) {
        ASSERT_EQ(wal_append(w, 7, "abc", 3, &lsn), 0);
        ASSERT_EQ(wal_wait(w, lsn), 0);
    }
    wal_get_stats(w, &st);
    ASSERT_GE(st.syncs, 1);
    ASSERT_LE(st.syncs, 20);
    ASSERT_EQ(st.last_lsn, 20);
    ASSERT_EQ(st.durable_lsn, 20);
    ASSERT_GE(st.batch_max, 1);
    ASSERT_TRUE(st.batch_mean >= 1.0);
    ASSERT_GE(st.fsync_p50_us, 2560); /* the floor of 3,000 us's bucket */
    ASSERT_LE(st.fsync_p50_us, st.fsync_p99_us);
    ASSERT_LE(st.fsync_p99_us, st.fsync_max_us);
    ASSERT_GT(st.bytes, 0);
    ASSERT_EQ(st.bytes, st.segment_bytes);
    ASSERT_EQ(st.appends_total, 20);
    ASSERT_EQ(st.append_bytes_total, 60);
    for (unsigned b = 0; b < 5; b++) /* each sync took 3 ms or more: none up to 2.5 ms */
        ASSERT_EQ(st.fsync_hist[b], 0);
    ASSERT_GE(st.fsync_sum_us, 3000 * st.syncs_total);

    wal_snapshot_t *snap;
    ASSERT_EQ(wal_snapshot_begin(w, lsn, &snap), 0);
    wal_get_stats(w, &st);
    ASSERT_TRUE(st.snapshot_running);
    ASSERT_EQ(wal_snapshot_add(snap, 9, "state", 5), 0);
    ASSERT_EQ(wal_snapshot_commit(snap), 0);
    wal_get_stats(w, &st);
    ASSERT_TRUE(!st.snapshot_running);
    ASSERT_EQ(st.snapshot_lsn, 20);
    char path[256];
    tu_snap_path(path, sizeof(path), dir, 20, ".snap");
    ASSERT_EQ(st.snapshot_bytes, (uint64_t)tu_size(path));
    ASSERT_GT(st.snapshot_time_ms, 1700000000000LL);
    int64_t written_at = st.snapshot_time_ms;
    ASSERT_EQ(wal_close(w), 0);

    /* Reopened: the snapshot's size is read from its file. */
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    wal_get_stats(w, &st);
    ASSERT_EQ(st.snapshot_lsn, 20);
    ASSERT_EQ(st.snapshot_bytes, (uint64_t)tu_size(path));
    ASSERT_EQ(st.snapshot_time_ms, written_at);
    ASSERT_EQ(st.syncs_total, 0);
    ASSERT_EQ(wal_close(w), 0);
    tu_rmrf(dir);
}
