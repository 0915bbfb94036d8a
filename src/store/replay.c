/*
 * Recovery applies the records on a second thread. The log's scan
 * (checksums, zstd) and the records' decode + apply each take about half of
 * a restart; run one after the other on one core they made a restart with a
 * million messages take ~1.3-2 s, overlapped on two cores about half of
 * that (docs/benchmarks.md, P4).
 *
 * The scan's callbacks copy each record into the batch being filled; a full
 * batch (256 KiB) is handed to the applier thread, which applies its records
 * in order with store_apply(), exactly as recovery did inline. There is one
 * producer and one consumer and batches are handed over in sequence, so the
 * order of records is the log's. At most two batches are in flight (one
 * being applied, one waiting), which bounds the memory and lets the scan run
 * at most one batch ahead.
 *
 * Failures: the first record that does not apply stops the applier (later
 * ones are skipped, as recovery stops there); the producer sees it at its
 * next hand-over and returns it to the log's scan, which stops, and
 * store_open fails naming the record. Before the tables are cleared (a
 * snapshot begins) and when the scan is done, the producer drains: it waits
 * until every record handed over is applied.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "parley/xalloc.h"

#define BATCH_BYTES (256u << 10)
#define RECORD_HEADER (1 + 8 + 4) /* type, lsn, length */

typedef struct batch {
    uint8_t *data;
    size_t len, cap;
} batch_t;

struct replayer {
    store_t *s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch_t filling;  /* the producer's, no lock */
    batch_t waiting;  /* handed over, not yet taken (mu) */
    bool has_waiting; /* (mu) */
    bool applying;    /* the applier holds a batch (mu) */
    bool stop;        /* (mu) */
    bool failed;      /* (mu) */
    uint64_t bad_lsn; /* the record that failed (mu) */
    uint8_t bad_type;
};

static void batch_add(batch_t *b, uint64_t lsn, uint8_t type, const void *data, size_t len)
{
    if (b->len + RECORD_HEADER + len > b->cap) {
        size_t cap = b->cap ? b->cap : BATCH_BYTES + 4096;
        while (cap < b->len + RECORD_HEADER + len)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    uint8_t *p = b->data + b->len;
    uint32_t n = (uint32_t)len;
    p[0] = type;
    memcpy(p + 1, &lsn, 8);
    memcpy(p + 9, &n, 4);
    memcpy(p + RECORD_HEADER, data, len);
    b->len += RECORD_HEADER + len;
}

/* Applies the records of b; false at the first that does not apply. */
static bool apply_batch(replayer_t *r, const batch_t *b)
{
    for (size_t at = 0; at < b->len;) {
        const uint8_t *p = b->data + at;
        uint64_t lsn;
        uint32_t n;
        memcpy(&lsn, p + 1, 8);
        memcpy(&n, p + 9, 4);
        if (store_apply(r->s, p[0], p + RECORD_HEADER, n) != 0) {
            pthread_mutex_lock(&r->mu);
            r->failed = true;
            r->bad_lsn = lsn;
            r->bad_type = p[0];
            pthread_mutex_unlock(&r->mu);
            return false;
        }
        at += RECORD_HEADER + n;
    }
    return true;
}

static void *applier_main(void *arg)
{
    replayer_t *r = arg;
    pthread_setname_np(pthread_self(), "parley-replay");
    batch_t mine = {0};
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->has_waiting && !r->stop)
            pthread_cond_wait(&r->cv, &r->mu);
        if (!r->has_waiting)
            break; /* stopping, nothing left */
        batch_t taken = r->waiting;
        r->waiting = mine; /* the emptied buffer goes back for reuse */
        r->waiting.len = 0;
        r->has_waiting = false;
        r->applying = true;
        bool skip = r->failed;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        if (!skip)
            apply_batch(r, &taken);
        mine = taken;
        pthread_mutex_lock(&r->mu);
        r->applying = false;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    free(mine.data);
    return NULL;
}

replayer_t *store__replayer_start(store_t *s)
{
    replayer_t *r = xcalloc(1, sizeof(*r));
    r->s = s;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, applier_main, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return NULL;
    }
    return r;
}

/* Hands the filling batch over once the previous one was taken. False when
 * a record failed. */
static bool hand_over(replayer_t *r)
{
    pthread_mutex_lock(&r->mu);
    while (r->has_waiting && !r->failed)
        pthread_cond_wait(&r->cv, &r->mu);
    bool ok = !r->failed;
    if (ok && r->filling.len > 0) {
        batch_t empty = r->waiting; /* the buffer the applier gave back */
        r->waiting = r->filling;
        r->filling = empty;
        r->filling.len = 0;
        r->has_waiting = true;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

int store__replayer_add(replayer_t *r, uint64_t lsn, uint8_t type, const void *data, size_t len)
{
    batch_add(&r->filling, lsn, type, data, len);
    if (r->filling.len >= BATCH_BYTES && !hand_over(r))
        return 1;
    return 0;
}

int store__replayer_drain(replayer_t *r)
{
    if (!hand_over(r))
        return 1;
    pthread_mutex_lock(&r->mu);
    while ((r->has_waiting || r->applying) && !r->failed)
        pthread_cond_wait(&r->cv, &r->mu);
    while (r->applying) /* a failed batch: wait until the applier lets go */
        pthread_cond_wait(&r->cv, &r->mu);
    bool ok = !r->failed;
    pthread_mutex_unlock(&r->mu);
    return ok ? 0 : 1;
}

bool store__replayer_stop(replayer_t *r, uint64_t *bad_lsn, uint8_t *bad_type)
{
    store__replayer_drain(r);
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    r->has_waiting = false; /* after a failure nothing more is applied */
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    bool failed = r->failed;
    *bad_lsn = r->bad_lsn;
    *bad_type = r->bad_type;
    free(r->filling.data);
    free(r->waiting.data);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return !failed;
}
