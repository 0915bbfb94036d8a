/*
 * Records of every size and type come back byte for byte after reopening,
 * with compression on and off; the argument checks of append and wait; the
 * three fsync policies.
 */
#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

#include "../test.h"
#include "wal.h"
#include "wal_testutil.h"

/* The schedule of the round trip: record i (LSN i + 1) has this type, length
 * and content. */
static const size_t sizes[] = {0,    1,    7,           8,           255,       4095,
                               4096, 100000, (1u << 20) + 1, WAL_RECORD_MAX};
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))
#define N_SMALL 300 /* records of every type 1..255 and lengths 0..~600 */
#define N_RECORDS (N_SMALL + 2 * N_SIZES)

typedef struct rec_spec {
    uint8_t type;
    size_t len;
    bool compressible;
} rec_spec_t;

static rec_spec_t spec(size_t i)
{
    rec_spec_t s;
    if (i < N_SMALL) {
        s.type = (uint8_t)(i % 255 + 1);
        s.len = (i * 131) % 601;
        s.compressible = i % 3 != 0;
    } else {
        size_t k = i - N_SMALL;
        s.type = (uint8_t)(k % 2 ? 255 : 1);
        s.len = sizes[k / 2];
        s.compressible = k % 2 == 0; /* each size once compressible, once not */
    }
    return s;
}

static uint8_t *bytes_of(size_t i, rec_spec_t s)
{
    uint8_t *b = malloc(s.len ? s.len : 1);
    ASSERT_NOT_NULL(b);
    tu_fill(b, s.len, i + 1, s.compressible);
    return b;
}

typedef struct checker {
    size_t seen;
    bool bad;
} checker_t;

static int check_record(void *ctx, uint64_t lsn, uint8_t type, const void *data, size_t len)
{
    checker_t *c = ctx;
    size_t i = c->seen++;
    rec_spec_t s = spec(i % N_RECORDS);
    if (lsn != i + 1 || type != s.type || len != s.len) {
        fprintf(stderr, "  record %zu: lsn %llu type %u len %zu; expected type %u len %zu\n", i,
                (unsigned long long)lsn, type, len, s.type, s.len);
        c->bad = true;
        return 1;
    }
    uint8_t *want = bytes_of(i % N_RECORDS, s);
    bool same = len == 0 || memcmp(want, data, len) == 0;
    free(want);
    if (!same) {
        fprintf(stderr, "  record %zu: content differs\n", i);
        c->bad = true;
        return 1;
    }
    return 0;
}

/* Appends the whole schedule, waiting now and then so it spans many batches. */
static void append_schedule(wal_t *w, uint64_t base)
{
    uint64_t lsn = 0;
    for (size_t i = 0; i < N_RECORDS; i++) {
        rec_spec_t s = spec(i);
        uint8_t *b = bytes_of(i, s);
        ASSERT_EQ(wal_append(w, s.type, s.len ? b : NULL, s.len, &lsn), 0);
        free(b);
        ASSERT_EQ(lsn, base + i + 1);
        if (i % 17 == 0 || i >= N_SMALL)
            ASSERT_EQ(wal_wait(w, lsn), 0);
    }
    ASSERT_EQ(wal_wait(w, lsn), 0);
    ASSERT_EQ(wal_durable_lsn(w), lsn);
}

static void round_trip(int compression_level)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "roundtrip");
    wal_options_t o = tu_opts();
    o.compression_level = compression_level;

    /* Every type appears. */
    bool types[256] = {false};
    for (size_t i = 0; i < N_RECORDS; i++)
        types[spec(i).type] = true;
    for (int t = 1; t < 256; t++)
        ASSERT_TRUE(types[t]);

    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    append_schedule(w, 0);
    ASSERT_EQ(wal_close(w), 0);

    /* Reopen: every record, then the schedule again in a second segment. */
    checker_t c = {0};
    wal_replay_t rp = {.on_record = check_record, .ctx = &c};
    wal_recovery_t rep;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    ASSERT_TRUE(!c.bad);
    ASSERT_EQ(c.seen, N_RECORDS);
    ASSERT_EQ(rep.last_lsn, N_RECORDS);
    ASSERT_EQ(rep.records_replayed, N_RECORDS);
    ASSERT_EQ(rep.first_lsn, 1);
    ASSERT_EQ(rep.bytes_dropped, 0);
    ASSERT_STREQ(rep.cut_file, "");
    ASSERT_EQ(wal_last_lsn(w), N_RECORDS);
    append_schedule(w, N_RECORDS);
    ASSERT_EQ(wal_close(w), 0);

    c = (checker_t){0};
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    ASSERT_TRUE(!c.bad);
    ASSERT_EQ(c.seen, 2 * N_RECORDS);
    ASSERT_EQ(rep.segments, 2); /* one per session that wrote */
    ASSERT_EQ(wal_close(w), 0);
    tu_rmrf(dir);
}

TEST(wal_round_trip_all_sizes_and_types_compressed)
{
    round_trip(0);
}

TEST(wal_round_trip_all_sizes_and_types_uncompressed)
{
    round_trip(-1);
}

TEST(wal_append_and_wait_reject_bad_arguments)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "args");
    wal_options_t o = tu_opts();
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    uint64_t lsn = 0;
    ASSERT_EQ(wal_append(w, 1, "a", 1, &lsn), 0);
    ASSERT_EQ(lsn, 1);

    size_t big = (size_t)WAL_RECORD_MAX + 1;
    uint8_t *b = calloc(1, big);
    ASSERT_NOT_NULL(b);
    uint64_t untouched = 12345;
    ASSERT_EQ(wal_append(w, 1, b, big, &untouched), WAL_E_TOO_LARGE);
    ASSERT_EQ(untouched, 12345);
    ASSERT_EQ(wal_append(w, 0, "a", 1, &untouched), WAL_E_ARG);
    ASSERT_EQ(wal_append(w, 1, NULL, 1, &untouched), WAL_E_ARG);
    ASSERT_EQ(wal_append(w, 1, "a", 1, NULL), WAL_E_ARG);
    ASSERT_EQ(untouched, 12345);
    /* No LSN was used up by the refusals. */
    ASSERT_EQ(wal_last_lsn(w), 1);
    ASSERT_EQ(wal_wait(w, 2), WAL_E_ARG);
    ASSERT_EQ(wal_wait(w, 1000), WAL_E_ARG);
    ASSERT_EQ(wal_wait(w, 1), 0);
    ASSERT_EQ(wal_append(w, 2, b, WAL_RECORD_MAX, &lsn), 0); /* exactly the maximum fits */
    ASSERT_EQ(lsn, 2);
    ASSERT_EQ(wal_append(w, 3, NULL, 0, &lsn), 0);
    ASSERT_EQ(lsn, 3);
    ASSERT_EQ(wal_wait(w, 3), 0);

    /* Snapshots check the same way. */
    wal_snapshot_t *s;
    ASSERT_EQ(wal_snapshot_begin(w, 4, &s), WAL_E_ARG);
    ASSERT_EQ(wal_snapshot_begin(w, 3, &s), 0);
    ASSERT_EQ(wal_snapshot_add(s, 0, "x", 1), WAL_E_ARG);
    ASSERT_EQ(wal_snapshot_add(s, 1, b, big), WAL_E_TOO_LARGE);
    wal_snapshot_abort(s);
    free(b);
    ASSERT_EQ(wal_close(w), 0);

    ASSERT_EQ(wal_open(NULL, &o, NULL, &w, NULL), WAL_E_ARG);
    ASSERT_EQ(wal_open(dir, &o, NULL, NULL, NULL), WAL_E_ARG);
    ASSERT_EQ(wal_close(NULL), 0);
    ASSERT_EQ(wal_inspect(NULL, NULL, NULL), WAL_E_ARG);
    ASSERT_GT(strlen(wal_strerror(WAL_E_CORRUPT)), 0);
    ASSERT_GT(strlen(wal_strerror(-ENOSPC)), 0);
    ASSERT_GT(strlen(wal_strerror(-123456)), 0);
    tu_rmrf(dir);
}

/* ---- fsync policies ---- */

static atomic_int syncs;

static ssize_t io_write(int fd, const void *buf, size_t len)
{
    return write(fd, buf, len);
}

static int io_sync(int fd)
{
    atomic_fetch_add(&syncs, 1);
    return fdatasync(fd);
}

static const wal_io_t counting_io = {io_write, io_sync};

/* BATCH: wal_wait does not wait for a sync; one comes within batch_ms. */
TEST(wal_fsync_batch_syncs_later)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "batch");
    wal_options_t o = tu_opts();
    o.fsync = WAL_FSYNC_BATCH;
    o.batch_ms = 60000; /* no timed sync during this phase */
    o.io = &counting_io;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    int after_open = atomic_load(&syncs);
    uint64_t lsn = 0;
    for (int i = 0; i < 50; i++) {
        ASSERT_EQ(wal_append(w, 1, "batched", 7, &lsn), 0);
        ASSERT_EQ(wal_wait(w, lsn), 0);
    }
    ASSERT_EQ(atomic_load(&syncs), after_open); /* written, not synced */
    ASSERT_EQ(wal_durable_lsn(w), 0);
    ASSERT_EQ(wal_close(w), 0); /* close syncs whatever the policy */
    ASSERT_EQ(atomic_load(&syncs), after_open + 1);

    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    o.batch_ms = 20;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, NULL), 0);
    ASSERT_EQ(r.n, 50);
    /* With 20 ms batches, the durable LSN catches up by itself. */
    for (int i = 0; i < 20; i++) {
        ASSERT_EQ(wal_append(w, 1, "batched", 7, &lsn), 0);
        ASSERT_EQ(wal_wait(w, lsn), 0);
    }
    int64_t deadline = tu_deadline();
    while (wal_durable_lsn(w) < lsn && !tu_expired(deadline))
        usleep(2000);
    ASSERT_EQ(wal_durable_lsn(w), lsn);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(dir);
}

/* NONE: nothing is synced until close, and the data is back after it. */
TEST(wal_fsync_none_data_back_after_close)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "nosync");
    wal_options_t o = tu_opts();
    o.fsync = WAL_FSYNC_NONE;
    o.io = &counting_io;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    int after_open = atomic_load(&syncs);
    uint64_t lsn = 0;
    for (int i = 0; i < 100; i++) {
        char buf[256];
        size_t len = tu_record_payload(buf, (uint64_t)i + 1);
        ASSERT_EQ(wal_append(w, 7, buf, len, &lsn), 0);
        if (i % 10 == 9)
            ASSERT_EQ(wal_wait(w, lsn), 0);
    }
    ASSERT_EQ(atomic_load(&syncs), after_open);
    ASSERT_EQ(wal_durable_lsn(w), 0);
    ASSERT_EQ(wal_close(w), 0);
    ASSERT_EQ(atomic_load(&syncs), after_open + 1);

    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, NULL), 0);
    tu_expect_records(&r, 1, 100);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(dir);
}

/* ALWAYS: every wal_wait that returned means a sync covered the record. */
TEST(wal_fsync_always_durable_on_wait)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "always");
    wal_options_t o = tu_opts();
    o.io = &counting_io;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    uint64_t lsn = 0;
    for (int i = 0; i < 20; i++) {
        int before = atomic_load(&syncs);
        ASSERT_EQ(wal_append(w, 1, "x", 1, &lsn), 0);
        ASSERT_EQ(wal_wait(w, lsn), 0);
        ASSERT_GE(wal_durable_lsn(w), lsn);
        ASSERT_GT(atomic_load(&syncs), before);
    }
    ASSERT_EQ(wal_close(w), 0);
    tu_rmrf(dir);
}
