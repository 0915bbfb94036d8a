/*
 * The log: numbering, queueing, group commit, segments.
 *
 * DESIGN
 * wal_append() takes the mutex, hands out the next LSN, copies the record
 * into the `pending` buffer and signals the writer; it does no I/O, so
 * callers can hold their own locks around it (a store holds the lock that
 * serialises its writers across append and apply, so that LSN order and
 * apply order agree). One writer thread loops:
 * it swaps `pending` with its own `inflight` buffer (so appenders keep going
 * while it works), encodes them as one frame (up to 1 MiB of records; a
 * larger backlog becomes several frames, each handled in turn), compresses
 * it as the next piece of the segment's zstd stream, writes it with one
 * write(), calls fdatasync() once (policy `always`), then publishes the new
 * written/durable LSN and wakes every waiter. Everything that arrived while
 * it was busy forms the next batch: that is the group commit, LevelDB's
 * leader-writes-for-the-followers made into a thread. Because a frame is
 * synced before the next one is written, a crash can only tear the last
 * frame of the last segment; a bad frame followed by a good one is never
 * the trace of a crash, and recovery treats it as corruption.
 *
 * Why one zstd stream per segment, flushed per batch (measured by
 * scripts/bench/wal_bench.c, figures in docs/benchmarks.md): chat records
 * are small and alike; compressed one by one they barely shrink (x1.27),
 * while a stream that keeps its history across batches shrinks them x3.2
 * with batches of four records. ZSTD_e_flush makes every batch
 * decodable on its own terms once the earlier ones are, so a torn last batch
 * costs only itself. The price is that a segment can only be appended to by
 * the process that started it: every open starts a new segment.
 *
 * Failures: a failed sync, or a write that failed for any reason but space,
 * sets `err` for good. The batch's waiters and every later append get
 * WAL_E_FAILED; nothing retries a sync and then believes it (fsyncgate: the
 * kernel may have dropped the dirty pages).
 *
 * A full disk is different: write() says ENOSPC (or EDQUOT) before any of
 * the frame's bytes are part of a sync, so nothing was acknowledged that the
 * disk does not hold, and the frame can simply be written again. The writer
 * cuts the partial frame off (ftruncate to the segment's good end, which
 * needs no space), sets `stall`, fails the waiters with WAL_E_NOSPACE, and
 * retries the same encoded frame every space_retry_ms; appends are refused
 * with WAL_E_NOSPACE meanwhile, before the caller applies anything. Once the
 * frame is written the stall ends by itself. The records of the stalled
 * batch were handed out (and the store applied them) before the disk said
 * no: they stay queued and reach the log in order when space returns, so the
 * log never disagrees with the memory that serves reads; their callers were
 * told "not durable", which is not "undone" (see wal_wait). The same frame
 * bytes are rewritten, so the segment's zstd stream stays whole. Starting a
 * new segment for want of space keeps the old one (synced, still open) and
 * tries again after the next frame.
 *
 * Lock order: callers' locks → mu. No I/O under mu, except that wal_open
 * and wal_close run before and after the writer exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wal_internal.h"

#define QUEUE_LIMIT (64u << 20)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * A thread in wal_wait(). Each waiter sleeps on its own semaphore, and only
 * those whose record is done are woken, each with its result: with one
 * shared condition variable every finished batch would also wake the waiters
 * of the next batch only for them to sleep again, and every woken thread
 * would queue on the mutex to leave pthread_cond_wait(). A woken waiter
 * touches nothing shared. With 64 appenders on 2 cores this and the wake-up
 * chain below took the log from 6-8x to 15-18x the raw fsync rate
 * (docs/benchmarks.md).
 */
typedef struct walf_waiter {
    uint64_t lsn;
    bool durable;   /* wait for a sync, whatever the policy (wal_sync) */
    int result;
    sem_t sem;
    struct walf_waiter *next;  /* in w->waiters */
    struct walf_waiter *chain; /* the next waiter to wake, once this one is awake */
} walf_waiter_t;

static uint64_t done_lsn(const wal_t *w)
{
    return w->opts.fsync == WAL_FSYNC_ALWAYS ? w->durable_lsn : w->written_lsn;
}

/*
 * Wakes the waiters whose record is done, or all of them after a failure or
 * at the end of closing. The writer wakes only the first; each woken waiter
 * wakes the next (a chain), so the writer spends one wake-up per batch
 * instead of one per record and goes back to writing sooner: waking is work
 * the waiters, which have nothing else to do, can share. REQUIRES: mu held.
 */
static void wake_waiters(wal_t *w, bool all)
{
    walf_waiter_t *chain = NULL;
    walf_waiter_t **p = &w->waiters;
    while (*p != NULL) {
        walf_waiter_t *x = *p;
        uint64_t done = x->durable ? w->durable_lsn : done_lsn(w);
        if (all || w->err != 0 || w->stall != 0 || x->lsn <= done) {
            *p = x->next;
            x->result = x->lsn <= done                    ? 0
                        : w->err == 0 && w->stall != 0 ? WAL_E_NOSPACE
                                                        : WAL_E_FAILED;
            x->chain = chain;
            chain = x;
        } else {
            p = &x->next;
        }
    }
    if (chain != NULL)
        sem_post(&chain->sem); /* chain may be gone as soon as this returns */
}

/* Sleeps until the writer (or the waiter before in the chain) wakes us, then
 * wakes the next in the chain. Returns our result. */
static int sleep_until_woken(walf_waiter_t *me)
{
    while (sem_wait(&me->sem) != 0)
        ; /* EINTR */
    walf_waiter_t *next = me->chain;
    int result = me->result;
    sem_destroy(&me->sem);
    if (next != NULL)
        sem_post(&next->sem);
    return result;
}

/* Appends a segment to the list. REQUIRES: mu held (or no writer yet). */
static void segments_push(wal_t *w, uint64_t first_lsn, uint64_t bytes)
{
    if (w->n_segments == w->cap_segments) {
        w->cap_segments = w->cap_segments ? w->cap_segments * 2 : 16;
        walf_segment_t *s = realloc(w->segments, w->cap_segments * sizeof(*s));
        if (s == NULL)
            abort();
        w->segments = s;
    }
    w->segments[w->n_segments].first_lsn = first_lsn;
    w->segments[w->n_segments].bytes = bytes;
    w->n_segments++;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_space_error(int rc)
{
    return rc == -ENOSPC || rc == -EDQUOT;
}

/*
 * Creates segment <first_lsn>.wal with its header, synced along with the
 * directory entry, restarts the compression stream and makes it the segment
 * appends go to (the caller closes the one before, if any). A segment that
 * could not be made whole is removed. Writer thread (or open, before it
 * exists).
 */
static int open_segment(wal_t *w, uint64_t first_lsn)
{
    char path[PATH_MAX + 32];
    wal__path(path, sizeof(path), w->dir, "wal", first_lsn, ".wal");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = -errno;
        wal__log(&w->opts, 0, "cannot create %s: %s", path, strerror(errno));
        return e;
    }
    uint8_t header[WALF_SEALED_HEADER];
    size_t header_len =
        wal__new_header(header, false, first_lsn,
                        w->opts.fsync == WAL_FSYNC_ALWAYS ? 0 : WALF_FILE_UNSYNCED, w->opts.key);
    walf_seal_t seal = {0};
    int rc = w->opts.key ? wal__seal_open(&seal, w->opts.key, header, false) : 0;
    if (rc == 0)
        rc = wal__write_all(w->io, fd, header, header_len);
    if (rc == 0 && w->io->fdatasync(fd) != 0)
        rc = -errno;
    if (rc == 0)
        rc = wal__sync_dir(w->wal_dir);
    if (rc != 0) {
        if (!is_space_error(rc) || !w->roll_failed)
            wal__log(&w->opts, is_space_error(rc) ? 1 : 0, "cannot start segment %s: %s", path,
                     strerror(-rc));
        close(fd);
        unlink(path);
        wal__seal_close(&seal);
        return rc;
    }
    if (w->seg_fd >= 0)
        close(w->seg_fd);
    if (w->cctx)
        ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_only);
    wal__seal_close(&w->seal);
    w->seal.h = seal.h;
    memcpy(w->seal.aad, seal.aad, sizeof(seal.aad));
    w->seg_fd = fd;
    w->seg_end = header_len;
    pthread_mutex_lock(&w->mu);
    segments_push(w, first_lsn, header_len);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/*
 * Encodes into `out` one frame of the records of `inflight` that start at
 * byte `*pos`: as many as fit in WALF_FRAME_TARGET bytes, at least one.
 * Advances *pos and returns the number of records. Writer thread.
 */
static uint32_t build_frame(wal_t *w, size_t *pos, uint64_t first_lsn, uint32_t left, int *rc)
{
    w->out.len = 0;
    const uint8_t *p = w->inflight.data + *pos;
    size_t frame_len = 0;
    uint32_t n = 0;
    while (n < left) {
        size_t rec = WALF_RECORD_HEADER + wal__get32(p + frame_len);
        if (n > 0 && frame_len + rec > WALF_FRAME_TARGET)
            break;
        frame_len += rec;
        n++;
    }
    *rc = wal__emit_sealed(&w->out, w->cctx, &w->seal, w->seg_end, p, frame_len, first_lsn, n,
                           WALF_KIND_RECORDS);
    *pos += frame_len;
    return n;
}

/* *took_us (may be NULL) gets how long the sync took. */
static int sync_segment(wal_t *w, uint64_t *took_us)
{
    int64_t t0 = now_ns();
    if (w->io->fdatasync(w->seg_fd) != 0)
        return -errno;
    w->last_sync_ns = now_ns();
    if (took_us)
        *took_us = (uint64_t)(w->last_sync_ns - t0) / 1000;
    return 0;
}

/* Notes a sync of `took_us` that made the records after durable_lsn up to
 * `upto` durable (call before durable_lsn moves). REQUIRES: mu held. */
static void note_sync(wal_t *w, uint64_t took_us, uint64_t upto)
{
    uint64_t batch = upto > w->durable_lsn ? upto - w->durable_lsn : 0;
    wal__stats_note(&w->stats, now_ns() / 1000000000, took_us, batch);
}

/* Records a failure for good. REQUIRES: mu held. */
static void fail(wal_t *w, int rc, const char *what)
{
    if (w->err == 0) {
        w->err = rc;
        w->stall = 0;
        w->fault_since_ms = wall_ms();
        w->fault_what = strstr(what, "fdatasync") ? "fdatasync"
                        : strstr(what, "segment") ? "new segment"
                                                   : "write";
        wal__log(&w->opts, 0, "%s failed: %s; the log is read-only until restart", what,
                 rc < 0 && rc > -1000 ? strerror(-rc) : wal_strerror(rc));
    }
    wake_waiters(w, true);
    pthread_cond_broadcast(&w->space_cv);
}

/*
 * The write of the frame in `out` was refused for space (rc): cuts the
 * partial frame off and writes it again every space_retry_ms until it goes
 * through (0), the log closes (rc), or another error comes (that error).
 * Writer thread; takes mu.
 */
static int write_when_space(wal_t *w, int rc)
{
    uint64_t good_end = w->segments[w->n_segments - 1].bytes; /* only the writer moves it */
    pthread_mutex_lock(&w->mu);
    w->stall = rc;
    w->fault_since_ms = wall_ms();
    w->fault_what = "write";
    w->space_stalls++;
    wal__log(&w->opts, 0,
             "write of the log failed: %s; writes are refused until space returns (retried "
             "every %u ms)",
             strerror(-rc), w->opts.space_retry_ms);
    int64_t started = now_ns();
    while (is_space_error(rc)) {
        wake_waiters(w, true);
        pthread_cond_broadcast(&w->space_cv);
        if (w->closing)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (int64_t)w->opts.space_retry_ms * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        w->writer_idle = true;
        pthread_cond_timedwait(&w->work_cv, &w->mu, &ts);
        w->writer_idle = false;
        if (w->closing)
            break;
        pthread_mutex_unlock(&w->mu);
        rc = 0;
        if (ftruncate(w->seg_fd, (off_t)good_end) != 0 ||
            lseek(w->seg_fd, (off_t)good_end, SEEK_SET) < 0)
            rc = -errno;
        if (rc == 0)
            rc = wal__write_all(w->io, w->seg_fd, w->out.data, w->out.len);
        pthread_mutex_lock(&w->mu);
    }
    w->stall = 0;
    w->fault_since_ms = 0;
    if (is_space_error(rc) && w->err == 0) { /* closing without space */
        w->err = rc;
        w->fault_since_ms = wall_ms();
        wal__log(&w->opts, 0,
                 "the log closes without space: records after %llu were never written (none "
                 "was acknowledged)",
                 (unsigned long long)w->written_lsn);
    }
    if (rc == 0)
        wal__log(&w->opts, 2, "the log writes again after %.1f s without space",
                 (double)(now_ns() - started) / 1e9);
    pthread_mutex_unlock(&w->mu);
    if (is_space_error(rc) && ftruncate(w->seg_fd, (off_t)good_end) != 0)
        rc = -errno; /* closing: leave no partial frame (recovery would cut it anyway) */
    return rc;
}

/* A sync is due: the batch interval passed with unsynced data, or
 * wal_sync() asked for one that the written data can now satisfy. */
static bool batch_sync_due(const wal_t *w)
{
    if (w->written_lsn <= w->durable_lsn)
        return false;
    if (w->sync_request > w->durable_lsn && w->written_lsn >= w->sync_request)
        return true;
    return w->opts.fsync == WAL_FSYNC_BATCH &&
           now_ns() - w->last_sync_ns >= (int64_t)w->opts.batch_ms * 1000000;
}

static void *writer_main(void *arg)
{
    wal_t *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->pending.len == 0 && !w->closing && !batch_sync_due(w)) {
            if (w->opts.fsync == WAL_FSYNC_BATCH && w->written_lsn > w->durable_lsn &&
                w->err == 0) {
                int64_t due = w->last_sync_ns + (int64_t)w->opts.batch_ms * 1000000;
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t wait = due - now_ns();
                if (wait < 0)
                    wait = 0;
                ts.tv_sec += wait / 1000000000;
                ts.tv_nsec += wait % 1000000000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                w->writer_idle = true;
                pthread_cond_timedwait(&w->work_cv, &w->mu, &ts);
                w->writer_idle = false;
            } else {
                w->writer_idle = true;
                pthread_cond_wait(&w->work_cv, &w->mu);
                w->writer_idle = false;
            }
        }
        if (w->err != 0) {
            /* Nothing more is written; drop what is queued and wait to close. */
            w->pending.len = 0;
            w->pending_count = 0;
            if (w->closing)
                break;
            w->writer_idle = true;
            pthread_cond_wait(&w->work_cv, &w->mu);
            w->writer_idle = false;
            continue;
        }
        if (w->pending.len == 0) {
            if (batch_sync_due(w)) {
                uint64_t target = w->written_lsn, took;
                pthread_mutex_unlock(&w->mu);
                int rc = sync_segment(w, &took);
                pthread_mutex_lock(&w->mu);
                if (rc != 0) {
                    fail(w, rc, "fdatasync of the log");
                } else if (target > w->durable_lsn) {
                    note_sync(w, took, target);
                    w->durable_lsn = target;
                }
                wake_waiters(w, false);
                continue;
            }
            if (w->closing)
                break;
            continue;
        }

        walf_buf_t taken = w->pending;
        w->pending = w->inflight;
        w->pending.len = 0;
        w->inflight = taken;
        uint64_t first = w->pending_first;
        uint32_t count = w->pending_count;
        w->pending_count = 0;
        pthread_cond_broadcast(&w->space_cv);
        pthread_mutex_unlock(&w->mu);

        /* One frame at a time: each is written, synced and acknowledged
         * before the next is written, so only the last frame of a segment
         * can ever be torn by a crash. */
        size_t pos = 0;
        int rc = 0;
        while (count > 0 && rc == 0) {
            uint32_t n = build_frame(w, &pos, first, count, &rc);
            const char *what = "write of the log";
            if (rc == 0)
                rc = wal__write_all(w->io, w->seg_fd, w->out.data, w->out.len);
            if (is_space_error(rc))
                rc = write_when_space(w, rc);
            bool synced = false;
            uint64_t took = 0;
            if (rc == 0 && (w->opts.fsync == WAL_FSYNC_ALWAYS ||
                            (w->opts.fsync == WAL_FSYNC_BATCH &&
                             now_ns() - w->last_sync_ns >= (int64_t)w->opts.batch_ms * 1000000))) {
                what = "fdatasync of the log";
                rc = sync_segment(w, &took);
                synced = rc == 0;
            }
            uint64_t last = first + n - 1;
            pthread_mutex_lock(&w->mu);
            if (rc != 0) {
                fail(w, rc, what);
                break;
            }
            w->written_lsn = last;
            if (synced) {
                note_sync(w, took, last);
                w->durable_lsn = last;
            }
            w->segments[w->n_segments - 1].bytes += w->out.len;
            w->seg_end += w->out.len;
            bool roll = w->segments[w->n_segments - 1].bytes >= w->opts.segment_bytes;
            wake_waiters(w, false);
            pthread_mutex_unlock(&w->mu);
            first += n;
            count -= n;

            if (roll) {
                /* The old segment must be synced before the log moves on.
                 * No space for the new one: the old one (synced, still
                 * open) goes on, and the next frame tries again. */
                took = 0;
                rc = synced ? 0 : sync_segment(w, &took);
                const char *roll_what = "fdatasync of the log";
                if (rc == 0) {
                    roll_what = "rolling to a new segment";
                    rc = open_segment(w, last + 1);
                    w->roll_failed = is_space_error(rc);
                    if (w->roll_failed)
                        rc = 0;
                }
                pthread_mutex_lock(&w->mu);
                if (rc != 0) {
                    fail(w, rc, roll_what);
                    break;
                }
                if (last > w->durable_lsn) {
                    note_sync(w, took, last);
                    w->durable_lsn = last;
                }
                wake_waiters(w, false);
                pthread_mutex_unlock(&w->mu);
            }
        }
        if (rc == 0)
            pthread_mutex_lock(&w->mu);
    }
    /* Closing: make what was written durable whatever the policy. */
    if (w->err == 0 && w->written_lsn > w->durable_lsn) {
        uint64_t target = w->written_lsn, took;
        pthread_mutex_unlock(&w->mu);
        int rc = sync_segment(w, &took);
        pthread_mutex_lock(&w->mu);
        if (rc != 0) {
            fail(w, rc, "fdatasync of the log");
        } else {
            note_sync(w, took, target);
            w->durable_lsn = target;
        }
    }
    wake_waiters(w, true);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int make_dir(const char *path, bool *created)
{
    if (mkdir(path, 0700) == 0) {
        *created = true;
        return 0;
    }
    return errno == EEXIST ? 0 : -errno;
}

int wal_open(const char *dir, const wal_options_t *opts, const wal_replay_t *replay,
             wal_t **out, wal_recovery_t *report)
{
    wal_recovery_t scratch;
    if (report == NULL)
        report = &scratch;
    memset(report, 0, sizeof(*report));
    if (dir == NULL || out == NULL || strlen(dir) >= sizeof(((wal_t *)0)->dir))
        return WAL_E_ARG;

    wal_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        abort();
    if (opts)
        w->opts = *opts;
    if (w->opts.key) {
        memcpy(w->key, w->opts.key, WAL_KEY_BYTES);
        w->opts.key = w->key;
    }
    if (w->opts.batch_ms == 0)
        w->opts.batch_ms = 10;
    if (w->opts.segment_bytes == 0)
        w->opts.segment_bytes = 64ull << 20;
    if (w->opts.space_retry_ms == 0)
        w->opts.space_retry_ms = 1000;
    w->io = w->opts.io ? w->opts.io : &wal__posix_io;
    w->seg_fd = -1;
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    snprintf(w->wal_dir, sizeof(w->wal_dir), "%s/wal", dir);
    snprintf(w->snap_dir, sizeof(w->snap_dir), "%s/snapshots", dir);
    pthread_mutex_init(&w->mu, NULL);
    wal__stats_init(&w->stats);
    pthread_cond_init(&w->work_cv, NULL);
    pthread_cond_init(&w->space_cv, NULL);

    bool created = false;
    int rc = make_dir(w->wal_dir, &created);
    if (rc == 0)
        rc = make_dir(w->snap_dir, &created);
    if (rc == 0 && created)
        rc = wal__sync_dir(dir);
    if (rc != 0) {
        wal__log(&w->opts, 0, "cannot create the log directories in %s: %s", dir, strerror(-rc));
        goto fail;
    }

    walf_state_t st = {0};
    rc = wal__recover(dir, &w->opts, replay, true, report, &st);
    if (rc != 0) {
        free(st.segments);
        goto fail;
    }
    w->last_lsn = w->written_lsn = w->durable_lsn = st.last_lsn;
    w->snap_lsn = st.snap_lsn;
    w->prev_snap_lsn = st.prev_snap_lsn;
    if (w->snap_lsn) {
        char path[PATH_MAX + 32];
        struct stat sb;
        wal__path(path, sizeof(path), w->dir, "snapshots", w->snap_lsn, ".snap");
        if (stat(path, &sb) == 0) {
            w->snap_bytes = (uint64_t)sb.st_size;
            w->snap_time_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
        }
    }
    /* An empty last segment that starts where the new one would is replaced. */
    size_t keep = st.n_segments;
    if (keep > 0 && st.last_segment_empty && st.segments[keep - 1].first_lsn == st.last_lsn + 1)
        keep--;
    for (size_t i = 0; i < keep; i++)
        segments_push(w, st.segments[i].first_lsn, st.segments[i].bytes);
    free(st.segments);

    if (w->opts.compression_level >= 0) {
        w->cctx = ZSTD_createCCtx();
        if (w->cctx == NULL)
            abort();
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel,
                               w->opts.compression_level ? w->opts.compression_level : 1);
    }
    rc = open_segment(w, w->last_lsn + 1);
    if (rc != 0)
        goto fail;
    w->last_sync_ns = now_ns();
    if (pthread_create(&w->writer, NULL, writer_main, w) != 0) {
        rc = -EAGAIN;
        goto fail;
    }
    *out = w;
    return 0;

fail:
    if (w->seg_fd >= 0)
        close(w->seg_fd);
    wal__seal_close(&w->seal);
    wal__buf_free(&w->seal.scratch);
    ZSTD_freeCCtx(w->cctx);
    free(w->segments);
    free(w);
    return rc;
}

int wal_close(wal_t *w)
{
    if (w == NULL)
        return 0;
    pthread_mutex_lock(&w->mu);
    w->closing = true;
    pthread_cond_broadcast(&w->work_cv);
    pthread_cond_broadcast(&w->space_cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->writer, NULL);
    int rc = w->err ? WAL_E_FAILED : 0;
    if (w->seg_fd >= 0)
        close(w->seg_fd);
    wal__seal_close(&w->seal);
    wal__buf_free(&w->seal.scratch);
    ZSTD_freeCCtx(w->cctx);
    wal__buf_free(&w->pending);
    wal__buf_free(&w->inflight);
    wal__buf_free(&w->out);
    free(w->segments);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work_cv);
    pthread_cond_destroy(&w->space_cv);
    gnutls_memset(w->key, 0, sizeof(w->key));
    free(w);
    return rc;
}

int wal_append(wal_t *w, uint8_t type, const void *data, size_t len, uint64_t *lsn)
{
    if (w == NULL || lsn == NULL || type == 0 || (data == NULL && len > 0))
        return WAL_E_ARG;
    if (len > WAL_RECORD_MAX)
        return WAL_E_TOO_LARGE;
    pthread_mutex_lock(&w->mu);
    while (w->err == 0 && !w->closing && w->pending.len > 0 &&
           w->pending.len + WALF_RECORD_HEADER + len > QUEUE_LIMIT)
        pthread_cond_wait(&w->space_cv, &w->mu);
    int rc = 0;
    if (w->err != 0) {
        rc = WAL_E_FAILED;
    } else if (w->stall != 0) {
        rc = WAL_E_NOSPACE;
    } else if (w->closing) {
        rc = WAL_E_CLOSED;
    } else {
        *lsn = ++w->last_lsn;
        if (w->pending_count == 0)
            w->pending_first = *lsn;
        w->pending_count++;
        w->stats.appends++;
        w->stats.append_bytes += len;
        wal__buf_add_record(&w->pending, type, data, len);
        if (w->writer_idle)
            pthread_cond_signal(&w->work_cv);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int wal_wait(wal_t *w, uint64_t lsn)
{
    if (w == NULL)
        return WAL_E_ARG;
    pthread_mutex_lock(&w->mu);
    int rc;
    if (lsn > w->last_lsn) {
        rc = WAL_E_ARG;
    } else if (done_lsn(w) >= lsn) {
        rc = 0;
    } else if (w->err != 0) {
        rc = WAL_E_FAILED;
    } else if (w->stall != 0) {
        rc = WAL_E_NOSPACE;
    } else {
        walf_waiter_t me = {.lsn = lsn, .next = w->waiters};
        sem_init(&me.sem, 0, 0);
        w->waiters = &me;
        pthread_mutex_unlock(&w->mu);
        return sleep_until_woken(&me);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int wal_sync(wal_t *w)
{
    if (w == NULL)
        return WAL_E_ARG;
    pthread_mutex_lock(&w->mu);
    uint64_t target = w->last_lsn;
    int rc;
    if (w->durable_lsn >= target) {
        pthread_mutex_unlock(&w->mu);
        return 0;
    }
    if (w->err != 0 || w->stall != 0) {
        rc = w->err != 0 ? WAL_E_FAILED : WAL_E_NOSPACE;
        pthread_mutex_unlock(&w->mu);
        return rc;
    }
    if (target > w->sync_request)
        w->sync_request = target;
    if (w->writer_idle)
        pthread_cond_signal(&w->work_cv);
    walf_waiter_t me = {.lsn = target, .durable = true, .next = w->waiters};
    sem_init(&me.sem, 0, 0);
    w->waiters = &me;
    pthread_mutex_unlock(&w->mu);
    return sleep_until_woken(&me);
}

uint64_t wal_last_lsn(wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t v = w->last_lsn;
    pthread_mutex_unlock(&w->mu);
    return v;
}

uint64_t wal_durable_lsn(wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t v = w->durable_lsn;
    pthread_mutex_unlock(&w->mu);
    return v;
}

wal_state_t wal_get_state(wal_t *w, wal_fault_t *fault)
{
    pthread_mutex_lock(&w->mu);
    int e = w->err != 0 ? w->err : w->stall;
    wal_state_t st = w->err != 0 ? WAL_STATE_FAILED : w->stall != 0 ? WAL_STATE_NO_SPACE
                                                                     : WAL_STATE_OK;
    wal_fault_t f = {.error = e < 0 && e > -1000 ? -e : 0,
                     .what = st == WAL_STATE_OK || !w->fault_what ? "" : w->fault_what,
                     .since_ms = st == WAL_STATE_OK ? 0 : w->fault_since_ms,
                     .space_stalls = w->space_stalls};
    pthread_mutex_unlock(&w->mu);
    if (fault)
        *fault = f;
    return st;
}

const char *wal_state_name(wal_state_t state)
{
    switch (state) {
    case WAL_STATE_OK:
        return "ok";
    case WAL_STATE_NO_SPACE:
        return "no_space";
    default:
        return "read_only";
    }
}

void wal_disk_usage(wal_t *w, uint64_t *bytes, uint64_t *segments)
{
    pthread_mutex_lock(&w->mu);
    uint64_t total = 0;
    for (size_t i = 0; i < w->n_segments; i++)
        total += w->segments[i].bytes;
    *bytes = total;
    *segments = w->n_segments;
    pthread_mutex_unlock(&w->mu);
}

void wal_get_stats(wal_t *w, wal_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&w->mu);
    out->last_lsn = w->last_lsn;
    out->durable_lsn = w->durable_lsn;
    out->segments = w->n_segments;
    for (size_t i = 0; i < w->n_segments; i++)
        out->bytes += w->segments[i].bytes;
    if (w->n_segments) {
        out->segment_first_lsn = w->segments[w->n_segments - 1].first_lsn;
        out->segment_bytes = w->segments[w->n_segments - 1].bytes;
    }
    wal__stats_read(&w->stats, now_ns() / 1000000000, out);
    out->snapshot_lsn = w->snap_lsn;
    out->snapshot_bytes = w->snap_bytes;
    out->snapshot_time_ms = w->snap_time_ms;
    out->snapshot_running = w->snapshot_running;
    out->space_stalls = w->space_stalls;
    pthread_mutex_unlock(&w->mu);
}
