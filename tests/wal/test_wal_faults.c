/*
 * Failures injected through wal_options_t.io: a write that fails (EIO) or
 * an fdatasync that fails (EIO) makes the log refuse everything from then on
 * (sticky, read-only), never retries a sync, and loses nothing that a
 * successful wal_wait vouched for. A write refused for space (ENOSPC, also
 * part-way through a frame) only stalls the log: appends are refused with
 * WAL_E_NOSPACE, the frame is retried, and the log takes writes again by
 * itself once space returns, with nothing torn or lost.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "wal.h"
#include "wal_testutil.h"

static atomic_int writes, syncs;
static atomic_int fail_write_at, fail_sync_at; /* 1-based call number; 0: never */
static atomic_int syncs_after_failure;
static atomic_bool sync_failed;

static ssize_t faulty_write(int fd, const void *buf, size_t len)
{
    int n = atomic_fetch_add(&writes, 1) + 1;
    int at = atomic_load(&fail_write_at);
    if (at != 0 && n >= at) {
        errno = EIO;
        return -1;
    }
    return write(fd, buf, len);
}

/* A disk that fills up and empties: while `disk_full`, every other write
 * writes half of what it is given (a partial frame on disk) and the next
 * says ENOSPC; with `header_full`, only segment headers are refused. */
static atomic_bool disk_full, header_full;
static atomic_int space_refusals;

static ssize_t full_write(int fd, const void *buf, size_t len)
{
    int n = atomic_fetch_add(&writes, 1) + 1;
    if ((atomic_load(&disk_full) && n % 2 == 0) ||
        (atomic_load(&header_full) && len == 32 /* WALF_FILE_HEADER */)) {
        atomic_fetch_add(&space_refusals, 1);
        errno = ENOSPC;
        return -1;
    }
    if (atomic_load(&disk_full) && len > 1)
        len /= 2;
    return write(fd, buf, len);
}

static int faulty_sync(int fd)
{
    int n = atomic_fetch_add(&syncs, 1) + 1;
    if (atomic_load(&sync_failed))
        atomic_fetch_add(&syncs_after_failure, 1);
    int at = atomic_load(&fail_sync_at);
    if (at != 0 && n == at) {
        atomic_store(&sync_failed, true);
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static const wal_io_t faulty_io = {faulty_write, faulty_sync};
static const wal_io_t full_io = {full_write, faulty_sync};

static void reset_faults(void)
{
    atomic_store(&writes, 0);
    atomic_store(&syncs, 0);
    atomic_store(&fail_write_at, 0);
    atomic_store(&fail_sync_at, 0);
    atomic_store(&syncs_after_failure, 0);
    atomic_store(&sync_failed, false);
    atomic_store(&disk_full, false);
    atomic_store(&header_full, false);
    atomic_store(&space_refusals, 0);
}

/* Appends records 1..n each followed by wal_wait; *acked gets how many
 * waits returned 0 (they come first), and the first failure is returned. */
static int append_until_failure(wal_t *w, int n, uint64_t *acked)
{
    *acked = 0;
    for (int i = 1; i <= n; i++) {
        char buf[256];
        size_t len = tu_record_payload(buf, (uint64_t)i);
        uint64_t lsn;
        int rc = wal_append(w, 7, buf, len, &lsn);
        if (rc != 0)
            return rc;
        ASSERT_EQ(lsn, i);
        rc = wal_wait(w, lsn);
        if (rc != 0)
            return rc;
        *acked = lsn;
    }
    return 0;
}

/* Everything the log refuses once it has failed. */
static void expect_sticky(wal_t *w, uint64_t failed_lsn)
{
    uint64_t lsn;
    ASSERT_EQ(wal_append(w, 1, "later", 5, &lsn), WAL_E_FAILED);
    ASSERT_EQ(wal_append(w, 1, "later", 5, &lsn), WAL_E_FAILED);
    ASSERT_EQ(wal_wait(w, failed_lsn), WAL_E_FAILED);
    wal_snapshot_t *s;
    ASSERT_EQ(wal_snapshot_begin(w, failed_lsn - 1, &s), WAL_E_FAILED);
}

/* After reopening without faults: every acknowledged record is there. */
static void expect_recovered(const char *dir, uint64_t acked)
{
    wal_options_t o = tu_opts();
    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_recovery_t rep;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    ASSERT_GE(r.n, acked);
    tu_expect_records(&r, 1, r.n); /* in order, intact, no holes */
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
}

TEST(wal_write_failure_is_sticky)
{
    for (int at = 2; at <= 6; at++) {
        char dir[64];
        tu_tmpdir(dir, sizeof(dir), "wfail");
        reset_faults();
        wal_options_t o = tu_opts();
        o.io = &faulty_io;
        wal_t *w;
        ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
        ASSERT_EQ(atomic_load(&writes), 1); /* the segment header */
        atomic_store(&fail_write_at, at);   /* the (at - 1)th record's write */
        uint64_t acked;
        ASSERT_EQ(append_until_failure(w, 10, &acked), WAL_E_FAILED);
        ASSERT_EQ(acked, at - 2);
        ASSERT_EQ(wal_durable_lsn(w), acked);
        expect_sticky(w, acked + 1);
        ASSERT_EQ(wal_last_lsn(w), acked + 1);
        wal_fault_t f;
        ASSERT_EQ(wal_get_state(w, &f), WAL_STATE_FAILED);
        ASSERT_EQ(f.error, EIO);
        ASSERT_STREQ(f.what, "write");
        ASSERT_EQ(wal_close(w), WAL_E_FAILED);
        ASSERT_EQ(atomic_load(&writes), at); /* nothing written after the failure */
        expect_recovered(dir, acked);
        tu_rmrf(dir);
    }
}

/* Many records in flight when the write fails: every waiter of the batch
 * gets the error. A writer stalled inside write() lets the batch fill up. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static atomic_bool writer_waiting;

static ssize_t gated_write(int fd, const void *buf, size_t len)
{
    int n = atomic_fetch_add(&writes, 1) + 1;
    if (n == 2) { /* the first batch after open: hold it, then succeed */
        atomic_store(&writer_waiting, true);
        pthread_mutex_lock(&gate_mu);
        while (!gate_open)
            pthread_cond_wait(&gate_cv, &gate_mu);
        pthread_mutex_unlock(&gate_mu);
    } else if (n >= 3) { /* the second batch: fails */
        errno = EIO;
        return -1;
    }
    return write(fd, buf, len);
}

static const wal_io_t gated_io = {gated_write, faulty_sync};

TEST(wal_write_failure_fails_the_whole_batch)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "wbatch");
    reset_faults();
    wal_options_t o = tu_opts();
    o.io = &gated_io;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    uint64_t lsn;
    ASSERT_EQ(wal_append(w, 1, "first", 5, &lsn), 0);
    int64_t deadline = tu_deadline();
    while (!atomic_load(&writer_waiting)) {
        if (tu_expired(deadline))
            TEST_FAIL_("the writer did not reach write() of record 1");
        usleep(1000);
    }
    /* The writer is inside write() of record 1; these wait for the next batch. */
    for (int i = 0; i < 20; i++)
        ASSERT_EQ(wal_append(w, 1, "batched", 7, &lsn), 0);
    ASSERT_EQ(lsn, 21);
    pthread_mutex_lock(&gate_mu);
    gate_open = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    ASSERT_EQ(wal_wait(w, 1), 0);
    for (uint64_t l = 2; l <= 21; l++)
        ASSERT_EQ(wal_wait(w, l), WAL_E_FAILED);
    ASSERT_EQ(atomic_load(&writes), 3); /* one failed write, not retried */
    expect_sticky(w, 2);
    ASSERT_EQ(wal_close(w), WAL_E_FAILED);
    ASSERT_EQ(atomic_load(&writes), 3);
    o.io = NULL;
    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, NULL), 0);
    ASSERT_EQ(r.n, 1);
    ASSERT_EQ(r.recs[0].len, 5);
    ASSERT_EQ(memcmp(r.recs[0].data, "first", 5), 0);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(dir);
}

TEST(wal_fdatasync_failure_is_sticky_and_never_retried)
{
    for (int at = 2; at <= 5; at++) {
        char dir[64];
        tu_tmpdir(dir, sizeof(dir), "sfail");
        reset_faults();
        wal_options_t o = tu_opts();
        o.io = &faulty_io;
        wal_t *w;
        ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
        ASSERT_EQ(atomic_load(&syncs), 1); /* the segment header */
        atomic_store(&fail_sync_at, at);
        uint64_t acked;
        ASSERT_EQ(append_until_failure(w, 10, &acked), WAL_E_FAILED);
        ASSERT_EQ(acked, at - 2);
        ASSERT_EQ(wal_durable_lsn(w), acked);
        expect_sticky(w, acked + 1);
        wal_fault_t f;
        ASSERT_EQ(wal_get_state(w, &f), WAL_STATE_FAILED);
        ASSERT_EQ(f.error, EIO);
        ASSERT_STREQ(f.what, "fdatasync");
        ASSERT_GT(f.since_ms, 0);
        ASSERT_STREQ(wal_state_name(WAL_STATE_FAILED), "read_only");
        ASSERT_EQ(wal_close(w), WAL_E_FAILED);
        ASSERT_EQ(atomic_load(&syncs), at); /* none after the failure... */
        ASSERT_EQ(atomic_load(&syncs_after_failure), 0);
        expect_recovered(dir, acked); /* ...and what was acknowledged stays */
        tu_rmrf(dir);
    }
}

/* Under the batch policy the failing sync is the timed one. */
TEST(wal_fdatasync_failure_batch_policy)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "sbatch");
    reset_faults();
    wal_options_t o = tu_opts();
    o.io = &faulty_io;
    o.fsync = WAL_FSYNC_BATCH;
    o.batch_ms = 5;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    atomic_store(&fail_sync_at, 2);
    /* A timed sync (due 5 ms after the first write) fails; from then on,
     * everything is refused. */
    uint64_t lsn;
    int rc = 0;
    int64_t deadline = tu_deadline();
    while (rc == 0 && !tu_expired(deadline)) {
        rc = wal_append(w, 1, "more", 4, &lsn);
        if (rc == 0)
            rc = wal_wait(w, lsn);
        if (rc == 0)
            usleep(1000);
    }
    ASSERT_EQ(rc, WAL_E_FAILED);
    ASSERT_TRUE(atomic_load(&sync_failed));
    ASSERT_EQ(wal_append(w, 1, "later", 5, &lsn), WAL_E_FAILED);
    ASSERT_EQ(wal_close(w), WAL_E_FAILED);
    ASSERT_EQ(atomic_load(&syncs_after_failure), 0);
    tu_rmrf(dir);
}

/* A failure while rolling to a new segment (its header cannot be written):
 * records already acknowledged survive, the half-made segment is dropped at
 * the next open. */
TEST(wal_failure_while_rolling_segments)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "rollfail");
    reset_faults();
    wal_options_t o = tu_opts();
    o.io = &faulty_io;
    o.segment_bytes = 200;
    o.compression_level = -1;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    /* Writes: 1 the header, 2 record 1 (32 + 190 bytes: past 200, so the
     * log rolls), 3 the new segment's header: fails. */
    atomic_store(&fail_write_at, 3);
    char big[150];
    memset(big, 'r', sizeof(big));
    uint64_t lsn;
    ASSERT_EQ(wal_append(w, 1, big, sizeof(big), &lsn), 0);
    ASSERT_EQ(wal_wait(w, lsn), 0); /* written and synced before the roll */
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++) {
        rc = wal_append(w, 1, big, sizeof(big), &lsn);
        if (rc == 0)
            rc = wal_wait(w, lsn);
    }
    ASSERT_EQ(rc, WAL_E_FAILED);
    ASSERT_EQ(atomic_load(&writes), 3);
    ASSERT_EQ(wal_close(w), WAL_E_FAILED);

    o.io = NULL;
    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_recovery_t rep;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    ASSERT_EQ(r.n, 1);
    ASSERT_EQ(rep.last_lsn, 1);
    ASSERT_EQ(wal_append(w, 1, "after", 5, &lsn), 0);
    ASSERT_EQ(lsn, 2);
    ASSERT_EQ(wal_wait(w, lsn), 0);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(dir);
}

/* The segment that wal_open starts cannot be written: wal_open fails and
 * leaves a directory that opens cleanly later. */
TEST(wal_open_fails_when_its_segment_cannot_be_written)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "openfail");
    ASSERT_EQ(tu_write_records(dir, NULL, 3), 3);
    reset_faults();
    atomic_store(&fail_write_at, 1);
    wal_options_t o = tu_opts();
    o.io = &faulty_io;
    wal_t *w = NULL;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), -EIO);
    ASSERT_NULL(w);
    reset_faults();
    atomic_store(&fail_sync_at, 1);
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), -EIO);
    expect_recovered(dir, 3);
    tu_rmrf(dir);
}

/* A snapshot begun before the log failed cannot be committed after it (the
 * records it may show were never made durable), and leaves no file. */
TEST(wal_snapshot_commit_after_failure_fails)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "snapfail");
    reset_faults();
    wal_options_t o = tu_opts();
    o.io = &faulty_io;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    uint64_t acked;
    ASSERT_EQ(append_until_failure(w, 2, &acked), 0);
    wal_snapshot_t *s;
    ASSERT_EQ(wal_snapshot_begin(w, 2, &s), 0);
    ASSERT_EQ(wal_snapshot_add(s, 1, "state", 5), 0);
    atomic_store(&fail_sync_at, atomic_load(&syncs) + 1);
    uint64_t lsn;
    ASSERT_EQ(wal_append(w, 7, "more", 4, &lsn), 0);
    ASSERT_EQ(wal_snapshot_commit(s), WAL_E_FAILED);
    ASSERT_EQ(tu_count_entries(dir, "snapshots"), 0);
    ASSERT_EQ(wal_snapshot_lsn(w), 0);
    ASSERT_EQ(wal_close(w), WAL_E_FAILED);
    tu_rmrf(dir);
}

/* A fresh directory and a log opened on it with `io` and *o (whose io is set). */
static wal_t *open_faulty(char *dir, size_t size, const char *tag, wal_options_t *o,
                          const wal_io_t *io)
{
    tu_tmpdir(dir, size, tag);
    reset_faults();
    o->io = io;
    wal_t *w = NULL;
    ASSERT_EQ(wal_open(dir, o, NULL, &w, NULL), 0);
    return w;
}

/* Reopens without faults: the records are exactly 1..last, nothing was cut;
 * then removes the directory. */
static void reopen_expect(const char *dir, wal_options_t o, uint64_t last)
{
    o.io = NULL;
    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_recovery_t rep;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    tu_expect_records(&r, 1, last);
    ASSERT_EQ(rep.bytes_dropped, 0); /* no partial frame was left behind */
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(dir);
}

/* Polls the log's state until it is `want` (fails the test at the deadline). */
static void wait_state(wal_t *w, wal_state_t want)
{
    int64_t deadline = tu_deadline();
    while (wal_get_state(w, NULL) != want) {
        if (tu_expired(deadline))
            TEST_FAIL_("the log did not reach state %s", wal_state_name(want));
        usleep(1000);
    }
}

static uint64_t append_one(wal_t *w, uint64_t expect_lsn)
{
    char buf[256];
    size_t len = tu_record_payload(buf, expect_lsn);
    uint64_t lsn = 0;
    ASSERT_EQ(wal_append(w, 7, buf, len, &lsn), 0);
    ASSERT_EQ(lsn, expect_lsn);
    return lsn;
}

/* The disk fills up under a write (part of the frame lands, then ENOSPC):
 * the waiter hears WAL_E_NOSPACE, appends are refused before anything is
 * queued, no sync is tried on the partial frame, and once space returns
 * the same records are written without a restart; the log reopens whole. */
TEST(wal_no_space_stalls_then_resumes_by_itself)
{
    /* Plain and sealed (the retried frame is the same sealed bytes at the
     * same offset, so its nonce protects the same plaintext). */
    static const uint8_t key[WAL_KEY_BYTES] = "no space key";
    for (int variant = 0; variant < 4; variant++) {
        int compress = variant & 1;
        char dir[64];
        wal_options_t o = tu_opts();
        o.space_retry_ms = 2;
        o.compression_level = compress ? 3 : -1;
        o.key = variant & 2 ? key : NULL;
        wal_t *w = open_faulty(dir, sizeof(dir), "nospace", &o, &full_io);
        ASSERT_EQ(wal_wait(w, append_one(w, 1)), 0);
        ASSERT_EQ(wal_get_state(w, NULL), WAL_STATE_OK);

        atomic_store(&disk_full, true);
        uint64_t l2 = append_one(w, 2);
        ASSERT_EQ(wal_wait(w, l2), WAL_E_NOSPACE);
        wal_fault_t f;
        ASSERT_EQ(wal_get_state(w, &f), WAL_STATE_NO_SPACE);
        ASSERT_EQ(f.error, ENOSPC);
        ASSERT_STREQ(f.what, "write");
        ASSERT_GT(f.since_ms, 0);
        uint64_t lsn = 0;
        ASSERT_EQ(wal_append(w, 7, "refused", 7, &lsn), WAL_E_NOSPACE);
        ASSERT_EQ(wal_last_lsn(w), 2); /* refused: no LSN handed out */
        ASSERT_EQ(wal_sync(w), WAL_E_NOSPACE);
        ASSERT_EQ(wal_durable_lsn(w), 1);
        int64_t deadline = tu_deadline();
        while (atomic_load(&space_refusals) < 3) { /* it keeps retrying */
            if (tu_expired(deadline))
                TEST_FAIL_("the stalled write was not retried");
            usleep(1000);
        }
        ASSERT_EQ(atomic_load(&syncs), 2); /* the header and record 1: none since */

        atomic_store(&disk_full, false);
        wait_state(w, WAL_STATE_OK);
        ASSERT_EQ(wal_get_state(w, &f), WAL_STATE_OK);
        ASSERT_EQ(f.error, 0);
        ASSERT_STREQ(f.what, "");
        ASSERT_EQ(f.since_ms, 0);
        ASSERT_EQ(wal_wait(w, l2), 0); /* the stalled record made it */
        ASSERT_EQ(wal_wait(w, append_one(w, 3)), 0);
        wal_stats_t st;
        wal_get_stats(w, &st);
        ASSERT_EQ(st.space_stalls, 1);
        ASSERT_EQ(wal_close(w), 0);
        reopen_expect(dir, o, 3);
    }
}

/* Closing while the disk is still full: the stalled records were never
 * acknowledged and are gone; what was acknowledged opens cleanly. */
TEST(wal_close_while_out_of_space)
{
    char dir[64];
    wal_options_t o = tu_opts();
    o.space_retry_ms = 2;
    wal_t *w = open_faulty(dir, sizeof(dir), "nospaceclose", &o, &full_io);
    ASSERT_EQ(wal_wait(w, append_one(w, 1)), 0);
    ASSERT_EQ(wal_wait(w, append_one(w, 2)), 0);
    atomic_store(&disk_full, true);
    ASSERT_EQ(wal_wait(w, append_one(w, 3)), WAL_E_NOSPACE);
    ASSERT_EQ(wal_close(w), WAL_E_FAILED);
    reopen_expect(dir, o, 2); /* the stalled frame was cut before the close */
}

/* No space for a new segment's header: the log goes on in the old segment
 * (nothing refused), removes the half-made file, and rolls once it can. */
TEST(wal_no_space_for_a_new_segment_keeps_the_old_one)
{
    char dir[64];
    wal_options_t o = tu_opts();
    o.segment_bytes = 300;
    o.compression_level = -1;
    wal_t *w = open_faulty(dir, sizeof(dir), "nospaceroll", &o, &full_io);
    atomic_store(&header_full, true);
    uint64_t lsn = 0;
    for (uint64_t i = 1; i <= 8; i++)
        ASSERT_EQ(wal_wait(w, lsn = append_one(w, i)), 0);
    /* The writer tries the roll after it has woken the waiters: wait until
     * a try is over and its half-made file removed (the count seen then). */
    int64_t until = tu_deadline();
    int refusals = atomic_load(&space_refusals);
    size_t entries = tu_count_entries(dir, "wal");
    while ((refusals < 2 || entries != 1) && !tu_expired(until)) {
        usleep(1000);
        refusals = atomic_load(&space_refusals);
        entries = tu_count_entries(dir, "wal");
    }
    ASSERT_GE(refusals, 2);
    ASSERT_EQ(entries, 1);
    ASSERT_EQ(wal_get_state(w, NULL), WAL_STATE_OK);
    atomic_store(&header_full, false);
    for (uint64_t i = 9; i <= 12; i++)
        ASSERT_EQ(wal_wait(w, lsn = append_one(w, i)), 0);
    ASSERT_GE(tu_count_entries(dir, "wal"), 2);
    ASSERT_EQ(wal_close(w), 0);
    reopen_expect(dir, o, 12);
}
