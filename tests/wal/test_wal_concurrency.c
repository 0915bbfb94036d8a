/*
 * Many threads appending and waiting at once: every LSN handed out exactly
 * once, each thread's records in its own order, all durable, the same after
 * reopening; and group commit (far fewer fdatasync calls than records).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "../test.h"
#include "wal.h"
#include "wal_testutil.h"

typedef struct worker {
    wal_t *w;
    int id;
    int count;
    bool wait_each;
    uint64_t *lsns; /* lsns[seq] */
    int failures;
} worker_t;

static void *work(void *arg)
{
    worker_t *k = arg;
    for (int seq = 0; seq < k->count; seq++) {
        char buf[64];
        int n = snprintf(buf, sizeof(buf), "thread %d seq %d", k->id, seq);
        uint64_t lsn;
        if (wal_append(k->w, (uint8_t)(k->id % 255 + 1), buf, (size_t)n, &lsn) != 0) {
            k->failures++;
            continue;
        }
        k->lsns[seq] = lsn;
        if ((k->wait_each || seq == k->count - 1) && wal_wait(k->w, lsn) != 0)
            k->failures++;
    }
    return NULL;
}

/* Runs `threads` workers of `per` records each; returns the total. */
static uint64_t run_workers(wal_t *w, int threads, int per, worker_t *ks)
{
    pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
    ASSERT_NOT_NULL(tid);
    for (int t = 0; t < threads; t++) {
        ks[t] = (worker_t){.w = w, .id = t, .count = per, .wait_each = t % 4 != 3};
        ks[t].lsns = calloc((size_t)per, sizeof(uint64_t));
        ASSERT_NOT_NULL(ks[t].lsns);
    }
    for (int t = 0; t < threads; t++)
        ASSERT_EQ(pthread_create(&tid[t], NULL, work, &ks[t]), 0);
    for (int t = 0; t < threads; t++)
        ASSERT_EQ(pthread_join(tid[t], NULL), 0);
    free(tid);
    for (int t = 0; t < threads; t++)
        ASSERT_EQ(ks[t].failures, 0);
    return (uint64_t)threads * (uint64_t)per;
}

static void concurrent(int threads, int per)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "threads");
    wal_options_t o = tu_opts();
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    worker_t *ks = calloc((size_t)threads, sizeof(*ks));
    ASSERT_NOT_NULL(ks);
    uint64_t n = run_workers(w, threads, per, ks);

    /* Every LSN 1..n handed out exactly once; each thread's in its order. */
    uint8_t *owner_seen = calloc(n + 1, 1);
    ASSERT_NOT_NULL(owner_seen);
    for (int t = 0; t < threads; t++) {
        for (int s = 0; s < per; s++) {
            uint64_t l = ks[t].lsns[s];
            ASSERT_GE(l, 1);
            ASSERT_LE(l, n);
            ASSERT_EQ(owner_seen[l], 0);
            owner_seen[l] = 1;
            if (s > 0)
                ASSERT_GT(l, ks[t].lsns[s - 1]);
        }
    }
    free(owner_seen);
    ASSERT_EQ(wal_last_lsn(w), n);
    /* Every thread waited for its last record; the waits cover all of them. */
    ASSERT_EQ(wal_wait(w, n), 0);
    ASSERT_EQ(wal_durable_lsn(w), n);
    ASSERT_EQ(wal_close(w), 0);

    /* After reopening: 1..n in order, each the payload its thread gave it. */
    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_recovery_t rep;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    ASSERT_EQ(r.n, n);
    ASSERT_EQ(rep.last_lsn, n);
    int *next_seq = calloc((size_t)threads, sizeof(int));
    ASSERT_NOT_NULL(next_seq);
    for (uint64_t i = 0; i < n; i++) {
        const tu_rec_t *x = &r.recs[i];
        ASSERT_EQ(x->lsn, i + 1);
        char text[64];
        ASSERT_LT(x->len, sizeof(text));
        memcpy(text, x->data, x->len);
        text[x->len] = '\0';
        int t, s;
        ASSERT_EQ(sscanf(text, "thread %d seq %d", &t, &s), 2);
        ASSERT_GE(t, 0);
        ASSERT_LT(t, threads);
        ASSERT_EQ(x->type, t % 255 + 1);
        ASSERT_EQ(s, next_seq[t]); /* the thread's own order */
        ASSERT_EQ(ks[t].lsns[s], x->lsn);
        next_seq[t]++;
    }
    for (int t = 0; t < threads; t++)
        ASSERT_EQ(next_seq[t], per);
    free(next_seq);
    ASSERT_EQ(wal_durable_lsn(w), n);
    ASSERT_EQ(wal_close(w), 0);
    for (int t = 0; t < threads; t++)
        free(ks[t].lsns);
    free(ks);
    tu_replay_free(&r);
    tu_rmrf(dir);
}

TEST(wal_concurrent_8_threads)
{
    concurrent(8, 300);
}

TEST(wal_concurrent_64_threads)
{
    concurrent(64, 300);
}

/* ---- group commit ---- */

static atomic_int syncs;

static ssize_t io_write(int fd, const void *buf, size_t len)
{
    return write(fd, buf, len);
}

/* A disk whose flush takes a millisecond: while it runs, other threads
 * queue records that the next batch carries. */
static int io_sync(int fd)
{
    atomic_fetch_add(&syncs, 1);
    usleep(1000);
    return fdatasync(fd);
}

static const wal_io_t slow_io = {io_write, io_sync};

TEST(wal_group_commit_shares_fdatasync)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "group");
    wal_options_t o = tu_opts();
    o.io = &slow_io;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    atomic_store(&syncs, 0);
    enum { THREADS = 64, PER = 50 };
    worker_t ks[THREADS];
    pthread_t tid[THREADS];
    for (int t = 0; t < THREADS; t++) {
        ks[t] = (worker_t){.w = w, .id = t, .count = PER, .wait_each = true};
        ks[t].lsns = calloc(PER, sizeof(uint64_t));
        ASSERT_NOT_NULL(ks[t].lsns);
    }
    for (int t = 0; t < THREADS; t++)
        ASSERT_EQ(pthread_create(&tid[t], NULL, work, &ks[t]), 0);
    for (int t = 0; t < THREADS; t++)
        ASSERT_EQ(pthread_join(tid[t], NULL), 0);
    int used = atomic_load(&syncs);
    for (int t = 0; t < THREADS; t++) {
        ASSERT_EQ(ks[t].failures, 0);
        free(ks[t].lsns);
    }
    ASSERT_EQ(wal_durable_lsn(w), THREADS * PER);
    fprintf(stderr, "  group commit: %d records, %d fdatasync calls\n", THREADS * PER, used);
    ASSERT_GT(used, 0);
    ASSERT_LT(used, THREADS * PER / 2);
    ASSERT_EQ(wal_close(w), 0);
    tu_rmrf(dir);
}
