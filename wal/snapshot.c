/*
 * Snapshots: writing one beside the running log, and trimming what it makes
 * unnecessary.
 *
 * A snapshot file has the log's format (file header, frames) with its own
 * magic; records carry no LSN. Records are gathered into ~1 MiB frames, each
 * the next piece of one zstd stream, and the file ends with an end frame
 * holding the record count and the LSN, without which the file is not a
 * snapshot. Commit: wait until the log is durable up to the last LSN handed
 * out (the caller may have serialised state that includes records appended
 * after `lsn`; they must not be lost while the snapshot shows them), write
 * the end frame, fdatasync, rename <lsn>.tmp to <lsn>.snap, fsync the
 * directory (Redis: "Use RENAME to make sure the DB file is changed
 * atomically").
 *
 * Trimming keeps two generations: the new snapshot and the previous one,
 * with every segment that holds a record after the previous one. If the new
 * snapshot is ever found damaged, recovery falls back to the previous one and
 * replays the log from there. Older snapshots and segments wholly at or below
 * the previous snapshot's LSN are removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wal_internal.h"

struct wal_snapshot {
    wal_t *w;
    uint64_t lsn;
    int fd;
    char tmp_path[PATH_MAX + 32];
    char final_path[PATH_MAX + 32];
    ZSTD_CCtx *cctx;
    walf_seal_t seal;  /* h NULL: plain */
    uint64_t offset;   /* bytes of the file written */
    walf_buf_t raw;   /* records of the frame being gathered */
    walf_buf_t out;   /* frames ready to write */
    uint32_t raw_count;
    uint64_t count;
    int err;
};

int wal_snapshot_begin(wal_t *w, uint64_t lsn, wal_snapshot_t **out)
{
    if (w == NULL || out == NULL)
        return WAL_E_ARG;
    pthread_mutex_lock(&w->mu);
    bool busy = w->snapshot_running;
    bool bad_lsn = lsn > w->last_lsn || lsn < w->snap_lsn;
    int err = w->err;
    if (!busy && !bad_lsn && err == 0)
        w->snapshot_running = true;
    pthread_mutex_unlock(&w->mu);
    if (busy || bad_lsn)
        return WAL_E_ARG;
    if (err != 0)
        return WAL_E_FAILED;

    wal_snapshot_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    s->w = w;
    s->lsn = lsn;
    wal__path(s->tmp_path, sizeof(s->tmp_path), w->dir, "snapshots", lsn, ".tmp");
    wal__path(s->final_path, sizeof(s->final_path), w->dir, "snapshots", lsn, ".snap");
    unlink(s->tmp_path); /* never write through a stale link */
    s->fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        int e = -errno;
        wal__log(&w->opts, 0, "cannot create %s: %s", s->tmp_path, strerror(errno));
        pthread_mutex_lock(&w->mu);
        w->snapshot_running = false;
        pthread_mutex_unlock(&w->mu);
        free(s);
        return e;
    }
    if (w->opts.compression_level >= 0) {
        s->cctx = ZSTD_createCCtx();
        if (s->cctx == NULL)
            abort();
        ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel,
                               w->opts.compression_level ? w->opts.compression_level : 1);
    }
    uint8_t header[WALF_SEALED_HEADER];
    size_t header_len = wal__new_header(header, true, lsn, 0, w->opts.key);
    if (w->opts.key)
        s->err = wal__seal_open(&s->seal, w->opts.key, header, true);
    if (s->err == 0)
        s->err = wal__write_all(&wal__posix_io, s->fd, header, header_len);
    s->offset = header_len;
    *out = s;
    return 0;
}

/* Compresses the gathered records into a frame and writes it. */
static int flush_frame(wal_snapshot_t *s)
{
    if (s->raw_count == 0 || s->err != 0)
        return s->err;
    s->out.len = 0;
    s->err = wal__emit_sealed(&s->out, s->cctx, &s->seal, s->offset, s->raw.data, s->raw.len, 0,
                              s->raw_count, WALF_KIND_RECORDS);
    if (s->err == 0)
        s->err = wal__write_all(&wal__posix_io, s->fd, s->out.data, s->out.len);
    s->offset += s->out.len;
    s->raw.len = 0;
    s->raw_count = 0;
    return s->err;
}

int wal_snapshot_add(wal_snapshot_t *s, uint8_t type, const void *data, size_t len)
{
    if (s == NULL || type == 0 || (data == NULL && len > 0))
        return WAL_E_ARG;
    if (len > WAL_RECORD_MAX)
        return WAL_E_TOO_LARGE;
    if (s->err != 0)
        return s->err;
    if (s->raw_count > 0 && s->raw.len + WALF_RECORD_HEADER + len > WALF_FRAME_TARGET &&
        flush_frame(s) != 0)
        return s->err;
    wal__buf_add_record(&s->raw, type, data, len);
    s->raw_count++;
    s->count++;
    return 0;
}

static void release(wal_snapshot_t *s)
{
    if (s->fd >= 0)
        close(s->fd);
    ZSTD_freeCCtx(s->cctx);
    wal__seal_close(&s->seal);
    wal__buf_free(&s->seal.scratch);
    wal__buf_free(&s->raw);
    wal__buf_free(&s->out);
    pthread_mutex_lock(&s->w->mu);
    s->w->snapshot_running = false;
    pthread_mutex_unlock(&s->w->mu);
    free(s);
}

void wal_snapshot_abort(wal_snapshot_t *s)
{
    if (s == NULL)
        return;
    unlink(s->tmp_path);
    release(s);
}

int wal_snapshot_commit(wal_snapshot_t *s)
{
    if (s == NULL)
        return WAL_E_ARG;
    wal_t *w = s->w;
    int rc = flush_frame(s);
    if (rc == 0)
        rc = wal_sync(w);
    if (rc == 0) {
        uint8_t end[WALF_END_PAYLOAD];
        wal__put64(end, s->count);
        wal__put64(end + 8, s->lsn);
        s->out.len = 0;
        rc = wal__emit_sealed(&s->out, NULL, &s->seal, s->offset, end, sizeof(end), 0, 0,
                              WALF_KIND_SNAPSHOT_END);
        if (rc == 0)
            rc = wal__write_all(&wal__posix_io, s->fd, s->out.data, s->out.len);
    }
    if (rc == 0 && fdatasync(s->fd) != 0)
        rc = -errno;
    struct stat sb;
    bool have_stat = rc == 0 && fstat(s->fd, &sb) == 0;
    uint64_t bytes = have_stat ? (uint64_t)sb.st_size : 0;
    int64_t mtime =
        have_stat ? (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000 : 0;
    if (rc == 0 && rename(s->tmp_path, s->final_path) != 0)
        rc = -errno;
    if (rc == 0)
        rc = wal__sync_dir(w->snap_dir);
    if (rc != 0) {
        wal__log(&w->opts, 0, "snapshot %s failed: %s", s->final_path, wal_strerror(rc));
        unlink(s->tmp_path);
        release(s);
        return rc;
    }
    pthread_mutex_lock(&w->mu);
    if (s->lsn != w->snap_lsn) {
        w->prev_snap_lsn = w->snap_lsn;
        w->snap_lsn = s->lsn;
    }
    w->snap_bytes = bytes;
    w->snap_time_ms = mtime;
    pthread_mutex_unlock(&w->mu);
    wal__log(&w->opts, 2, "snapshot %s: %llu records", s->final_path,
             (unsigned long long)s->count);
    release(s);
    wal__trim(w);
    return 0;
}

uint64_t wal_snapshot_lsn(wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t v = w->snap_lsn;
    pthread_mutex_unlock(&w->mu);
    return v;
}

void wal__trim(wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    /* records above it must stay; a backup's hold keeps its snapshot and
     * the log after it (backup.c) */
    uint64_t keep_from = wal__hold_floor(w, w->prev_snap_lsn);
    uint64_t prev = keep_from;
    /* Segments are removable while the next one starts at or before
     * keep_from + 1; the active (last) segment always stays. */
    size_t removable = 0;
    while (removable + 1 < w->n_segments && w->segments[removable + 1].first_lsn <= keep_from + 1)
        removable++;
    uint64_t *doomed = malloc((removable + 1) * sizeof(*doomed));
    if (doomed == NULL)
        abort();
    for (size_t i = 0; i < removable; i++)
        doomed[i] = w->segments[i].first_lsn;
    memmove(w->segments, w->segments + removable,
            (w->n_segments - removable) * sizeof(*w->segments));
    w->n_segments -= removable;
    pthread_mutex_unlock(&w->mu);

    for (size_t i = 0; i < removable; i++) {
        char path[PATH_MAX + 32];
        wal__path(path, sizeof(path), w->dir, "wal", doomed[i], ".wal");
        if (unlink(path) != 0)
            wal__log(&w->opts, 1, "cannot remove %s: %s", path, strerror(errno));
    }
    free(doomed);
    if (removable > 0)
        wal__sync_dir(w->wal_dir);

    uint64_t *snaps;
    int n = wal__list(w->snap_dir, ".snap", &snaps);
    bool removed = false;
    for (int i = 0; i < n; i++) {
        if (prev == 0 || snaps[i] >= prev)
            continue;
        char path[PATH_MAX + 32];
        wal__path(path, sizeof(path), w->dir, "snapshots", snaps[i], ".snap");
        if (unlink(path) == 0)
            removed = true;
    }
    free(snaps);
    if (removed)
        wal__sync_dir(w->snap_dir);
}
