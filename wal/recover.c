/*
 * Recovery: the newest valid snapshot, then every later log record, in
 * order, through the caller's callbacks; and the decisions about damage.
 *
 * Snapshots are tried newest first. Each is first checked cheaply (headers,
 * checksums, the end record, no decompression); only a snapshot that passes
 * is replayed. One that is damaged is set aside (renamed *.damaged, when
 * modifying) and the next older one is tried: the log is trimmed only up to
 * the previous snapshot (snapshot.c), so an older snapshot plus the log is
 * always complete.
 *
 * Segments wholly covered by the chosen snapshot are skipped unread. The
 * rest are replayed in LSN order; each must start exactly where the one
 * before it ended. What wal__scan() reports then decides:
 *   clean            go on (a zero-filled tail is cut from the last segment);
 *   torn, last file  the crash interrupted the last write: cut it off (the
 *                    records in it were never acknowledged) and log offset
 *                    and bytes dropped;
 *   torn elsewhere,  acknowledged records would be lost: stop with the file
 *   or corrupt       and offset, unless the operator asked to repair, which
 *                    cuts there and removes every later segment, saying how
 *                    much was dropped;
 *   newer version    stop: this build cannot read it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wal_internal.h"

typedef struct replay_ctx {
    const wal_replay_t *replay;
    uint64_t skip_through; /* records at or below this LSN are not delivered */
    uint64_t delivered;
    uint64_t first;
} replay_ctx_t;

static int deliver_snapshot_record(void *ctx, uint64_t off, const walf_frame_t *f, uint64_t lsn,
                                   uint8_t type, const uint8_t *data, uint32_t len)
{
    (void)off;
    (void)f;
    (void)lsn;
    replay_ctx_t *rc = ctx;
    rc->delivered++;
    if (rc->replay && rc->replay->on_snapshot_record)
        return rc->replay->on_snapshot_record(rc->replay->ctx, type, data, len);
    return 0;
}

static int deliver_record(void *ctx, uint64_t off, const walf_frame_t *f, uint64_t lsn,
                          uint8_t type, const uint8_t *data, uint32_t len)
{
    (void)off;
    (void)f;
    replay_ctx_t *rc = ctx;
    if (lsn <= rc->skip_through)
        return 0;
    if (rc->first == 0)
        rc->first = lsn;
    rc->delivered++;
    if (rc->replay && rc->replay->on_record)
        return rc->replay->on_record(rc->replay->ctx, lsn, type, data, len);
    return 0;
}

static void note_place(char *file, size_t size, uint64_t *offset_out, const char *path,
                       uint64_t offset)
{
    snprintf(file, size, "%s", path);
    *offset_out = offset;
}

/* Removes stale temporary snapshots left by a crash mid-snapshot. */
static void remove_tmp_snapshots(const char *snap_dir, const wal_options_t *o)
{
    DIR *d = opendir(snap_dir);
    if (d == NULL)
        return;
    struct dirent *e;
    char path[PATH_MAX + 300];
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0) {
            snprintf(path, sizeof(path), "%s/%s", snap_dir, e->d_name);
            if (unlink(path) == 0)
                wal__log(o, 2, "removed unfinished snapshot %s", path);
        }
    }
    closedir(d);
}

/*
 * Loads the newest valid snapshot. Sets *snap_lsn (0: none) and
 * *prev_snap_lsn. Returns 0 or an error.
 */
static int load_snapshot(const char *dir, const wal_options_t *o, const wal_replay_t *replay,
                         bool modify, ZSTD_DCtx *dctx, wal_recovery_t *rep, uint64_t *snap_lsn,
                         uint64_t *prev_snap_lsn)
{
    char snap_dir[PATH_MAX];
    snprintf(snap_dir, sizeof(snap_dir), "%s/snapshots", dir);
    *snap_lsn = *prev_snap_lsn = 0;
    uint64_t *lsns;
    int n = wal__list(snap_dir, ".snap", &lsns);
    if (n == -ENOENT)
        return 0;
    if (n < 0)
        return n;
    int rc = 0;
    bool begun = false; /* on_snapshot_begin was called for a snapshot */
    for (int i = n - 1; i >= 0; i--) {
        char path[PATH_MAX + 32];
        wal__path(path, sizeof(path), dir, "snapshots", lsns[i], ".snap");
        walf_map_t m;
        rc = wal__map_file(path, &m);
        if (rc != 0) {
            wal__log(o, 0, "cannot read %s: %s", path, strerror(-rc));
            break;
        }
        walf_scan_result_t res;
        walf_sink_t check = {.decode = false, .key = o->key};
        wal__scan(m.data, m.len, true, &check, dctx, &res);
        if (res.status == WALF_SCAN_VERSION) {
            wal__log(o, 0, "%s has format version %u; this build reads up to %u", path,
                     res.version, WAL_FORMAT_VERSION);
            note_place(rep->error_file, sizeof(rep->error_file), &rep->error_offset, path, 8);
            wal__unmap(&m);
            rc = WAL_E_VERSION;
            break;
        }
        if (res.status == WALF_SCAN_KEY) {
            wal__log(o, 0, "%s: %s", path, res.why);
            note_place(rep->error_file, sizeof(rep->error_file), &rep->error_offset, path,
                       res.bad_offset);
            wal__unmap(&m);
            rc = WAL_E_KEY;
            break;
        }
        bool good = res.status == WALF_SCAN_CLEAN && res.base_lsn == lsns[i];
        replay_ctx_t ctx = {.replay = replay};
        if (good) {
            begun = true;
            if (replay && replay->on_snapshot_begin &&
                replay->on_snapshot_begin(replay->ctx, lsns[i]) != 0) {
                wal__unmap(&m);
                rc = WAL_E_CALLBACK;
                break;
            }
            walf_sink_t load = {
                .decode = true, .record = deliver_snapshot_record, .ctx = &ctx, .key = o->key};
            rc = wal__scan(m.data, m.len, true, &load, dctx, &res);
            if (rc != 0) {
                wal__unmap(&m);
                break;
            }
            good = res.status == WALF_SCAN_CLEAN;
        }
        wal__unmap(&m);
        if (good) {
            *snap_lsn = lsns[i];
            *prev_snap_lsn = i > 0 ? lsns[i - 1] : 0;
            rep->snapshot_lsn = lsns[i];
            rep->snapshot_records = ctx.delivered;
            break;
        }
        wal__log(o, 1, "snapshot %s is damaged at offset %llu (%s); trying an older one", path,
                 (unsigned long long)res.bad_offset, res.why ? res.why : "?");
        if (modify) {
            char aside[PATH_MAX + 64];
            snprintf(aside, sizeof(aside), "%s.damaged", path);
            rename(path, aside);
        }
    }
    free(lsns);
    /* Records of a snapshot that failed part-way must be discarded even when
     * no older snapshot is left to start over with. */
    if (rc == 0 && begun && *snap_lsn == 0 && replay && replay->on_snapshot_begin &&
        replay->on_snapshot_begin(replay->ctx, 0) != 0)
        rc = WAL_E_CALLBACK;
    return rc;
}

/* Cuts a segment file at `at` bytes (removes it when no header remains). */
static int cut_file(const char *path, uint64_t at)
{
    if (at < WALF_FILE_HEADER)
        return unlink(path) == 0 ? 0 : -errno;
    if (truncate(path, (off_t)at) != 0)
        return -errno;
    FILE *f = fopen(path, "r+");
    if (f == NULL)
        return -errno;
    int rc = fdatasync(fileno(f)) == 0 ? 0 : -errno;
    fclose(f);
    return rc;
}

int wal__recover(const char *dir, const wal_options_t *o, const wal_replay_t *replay,
                 bool modify, wal_recovery_t *rep, walf_state_t *st)
{
    memset(st, 0, sizeof(*st));
    char wal_dir[PATH_MAX], snap_dir[PATH_MAX];
    snprintf(wal_dir, sizeof(wal_dir), "%s/wal", dir);
    snprintf(snap_dir, sizeof(snap_dir), "%s/snapshots", dir);
    if (modify)
        remove_tmp_snapshots(snap_dir, o);

    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (dctx == NULL)
        abort();
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 27);
    uint64_t *firsts = NULL;
    bool dir_changed = false;
    int rc = load_snapshot(dir, o, replay, modify, dctx, rep, &st->snap_lsn, &st->prev_snap_lsn);
    if (rc != 0)
        goto out;

    int n = wal__list(wal_dir, ".wal", &firsts);
    if (n == -ENOENT)
        n = 0;
    if (n < 0) {
        rc = n;
        goto out;
    }
    st->segments = calloc((size_t)n + 1, sizeof(*st->segments));
    if (st->segments == NULL)
        abort();

    uint64_t snap = st->snap_lsn;
    uint64_t next = snap + 1; /* the LSN the next record must have */
    int start = 0;
    /* Segments wholly covered by the snapshot are not needed to recover; a
     * check (modify false) reads them anyway, since they are the fallback
     * should the snapshot be lost. */
    while (modify && start + 1 < n && firsts[start + 1] <= snap + 1)
        start++;
    if (n > 0 && firsts[start] > snap + 1) {
        char path[PATH_MAX + 32];
        wal__path(path, sizeof(path), dir, "wal", firsts[start], ".wal");
        wal__log(o, 0, "records %llu to %llu are missing: the log starts at %s",
                 (unsigned long long)(snap + 1), (unsigned long long)(firsts[start] - 1), path);
        note_place(rep->error_file, sizeof(rep->error_file), &rep->error_offset, path, 0);
        rc = WAL_E_GAP;
        goto out;
    }
    for (int i = 0; i < start; i++) {
        char path[PATH_MAX + 32];
        wal__path(path, sizeof(path), dir, "wal", firsts[i], ".wal");
        struct stat sb;
        st->segments[st->n_segments].first_lsn = firsts[i];
        st->segments[st->n_segments].bytes = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        st->n_segments++;
    }
    if (n > 0)
        next = firsts[start];

    replay_ctx_t ctx = {.replay = replay, .skip_through = snap};
    for (int i = start; i < n; i++) {
        char path[PATH_MAX + 32];
        wal__path(path, sizeof(path), dir, "wal", firsts[i], ".wal");
        bool last = i == n - 1;
        if (firsts[i] != next) {
            wal__log(o, 0, "%s should start at record %llu", path, (unsigned long long)next);
            note_place(rep->error_file, sizeof(rep->error_file), &rep->error_offset, path, 0);
            rc = firsts[i] > next ? WAL_E_GAP : WAL_E_CORRUPT;
            goto out;
        }
        walf_map_t m;
        rc = wal__map_file(path, &m);
        if (rc != 0) {
            wal__log(o, 0, "cannot read %s: %s", path, strerror(-rc));
            goto out;
        }
        walf_scan_result_t res;
        walf_sink_t sink = {.decode = true, .record = deliver_record, .ctx = &ctx, .key = o->key};
        rc = wal__scan(m.data, m.len, false, &sink, dctx, &res);
        size_t file_len = m.len;
        wal__unmap(&m);
        rep->segments++;
        if (rc != 0)
            goto out;
        if (res.status == WALF_SCAN_VERSION) {
            wal__log(o, 0, "%s has format version %u; this build reads up to %u", path,
                     res.version, WAL_FORMAT_VERSION);
            note_place(rep->error_file, sizeof(rep->error_file), &rep->error_offset, path, 8);
            rc = WAL_E_VERSION;
            goto out;
        }
        if (res.status == WALF_SCAN_KEY) {
            wal__log(o, 0, "%s: %s", path, res.why);
            note_place(rep->error_file, sizeof(rep->error_file), &rep->error_offset, path,
                       res.bad_offset);
            rc = WAL_E_KEY;
            goto out;
        }
        if (res.header_ok && res.base_lsn != firsts[i]) {
            wal__log(o, 0, "%s: its header names record %llu", path,
                     (unsigned long long)res.base_lsn);
            note_place(rep->error_file, sizeof(rep->error_file), &rep->error_offset, path, 16);
            rc = WAL_E_CORRUPT;
            goto out;
        }
        uint64_t keep = file_len;
        if (res.status == WALF_SCAN_CLEAN && res.zero_tail > 0 && last) {
            keep = res.good_end; /* a zero-filled tail holds nothing */
            if (modify && cut_file(path, keep) != 0)
                wal__log(o, 1, "cannot cut the zero tail of %s", path);
        } else if (res.status == WALF_SCAN_TORN && last) {
            keep = res.good_end;
            rep->bytes_dropped += file_len - keep;
            note_place(rep->cut_file, sizeof(rep->cut_file), &rep->cut_offset, path, keep);
            wal__log(o, 1, "%s: torn tail at offset %llu (%s): %llu bytes dropped%s", path,
                     (unsigned long long)res.bad_offset, res.why,
                     (unsigned long long)(file_len - keep),
                     res.unsynced ? " (written under fsync policy batch or none: records after "
                                    "the last sync may be lost)"
                                  : "");
            if (modify) {
                rc = cut_file(path, keep);
                if (rc != 0)
                    goto out;
                dir_changed = keep < WALF_FILE_HEADER;
            }
        } else if (res.status != WALF_SCAN_CLEAN) {
            note_place(rep->error_file, sizeof(rep->error_file), &rep->error_offset, path,
                       res.bad_offset);
            if (!o->repair) {
                wal__log(o, 0,
                         "%s is corrupt at offset %llu (%s)%s; records after it would be lost. "
                         "Run `parley wal check` to see the damage and `parley wal repair` to "
                         "cut the log there",
                         path, (unsigned long long)res.bad_offset, res.why,
                         last ? ", and valid records follow" : "");
                rc = WAL_E_CORRUPT;
                goto out;
            }
            /* Repair: cut here and drop every later segment. */
            keep = res.good_end;
            uint64_t dropped = file_len - keep;
            for (int k = i + 1; k < n; k++) {
                char later[PATH_MAX + 32];
                wal__path(later, sizeof(later), dir, "wal", firsts[k], ".wal");
                struct stat sb;
                if (stat(later, &sb) == 0)
                    dropped += (uint64_t)sb.st_size;
                if (modify)
                    unlink(later);
            }
            rep->bytes_dropped += dropped;
            note_place(rep->cut_file, sizeof(rep->cut_file), &rep->cut_offset, path, keep);
            wal__log(o, 1, "repair: cut %s at offset %llu and removed %d later segments: %llu "
                     "bytes dropped; the log now ends at record %llu",
                     path, (unsigned long long)keep, n - 1 - i, (unsigned long long)dropped,
                     (unsigned long long)(res.next_lsn - 1));
            if (modify) {
                rc = cut_file(path, keep);
                if (rc != 0)
                    goto out;
                dir_changed = true;
            }
            n = i + 1;
            last = true;
        }
        next = res.header_ok ? res.next_lsn : next;
        if (keep >= WALF_FILE_HEADER) {
            st->segments[st->n_segments].first_lsn = firsts[i];
            st->segments[st->n_segments].bytes = keep;
            st->n_segments++;
            st->last_segment_empty = res.frames == 0;
        }
    }
    st->last_lsn = next - 1 > snap ? next - 1 : snap;
    rep->first_lsn = ctx.first;
    rep->records_replayed = ctx.delivered;
    rep->last_lsn = st->last_lsn;
    if (modify && dir_changed)
        wal__sync_dir(wal_dir);
    rc = 0;
out:
    free(firsts);
    ZSTD_freeDCtx(dctx);
    return rc;
}

int wal_check(const char *dir, const wal_options_t *opts, wal_recovery_t *report)
{
    wal_recovery_t scratch;
    if (report == NULL)
        report = &scratch;
    memset(report, 0, sizeof(*report));
    wal_options_t o = {0};
    if (opts) {
        o.log = opts->log;
        o.log_ctx = opts->log_ctx;
        o.key = opts->key;
    }
    walf_state_t st;
    int rc = wal__recover(dir, &o, NULL, false, report, &st);
    free(st.segments);
    if (rc != 0)
        return rc;

    /* Every snapshot, not only the one recovery would load. */
    char snap_dir[PATH_MAX];
    snprintf(snap_dir, sizeof(snap_dir), "%s/snapshots", dir);
    uint64_t *lsns;
    int n = wal__list(snap_dir, ".snap", &lsns);
    if (n < 0)
        return n == -ENOENT ? 0 : n;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (dctx == NULL)
        abort();
    for (int i = 0; i < n && rc == 0; i++) {
        char path[PATH_MAX + 32];
        wal__path(path, sizeof(path), dir, "snapshots", lsns[i], ".snap");
        walf_map_t m;
        rc = wal__map_file(path, &m);
        if (rc != 0)
            break;
        walf_scan_result_t res;
        walf_sink_t sink = {.decode = true, .key = o.key};
        wal__scan(m.data, m.len, true, &sink, dctx, &res);
        wal__unmap(&m);
        if (res.status != WALF_SCAN_CLEAN || res.base_lsn != lsns[i]) {
            note_place(report->error_file, sizeof(report->error_file), &report->error_offset,
                       path, res.bad_offset);
            wal__log(&o, 0, "snapshot %s is damaged at offset %llu (%s)", path,
                     (unsigned long long)res.bad_offset,
                     res.why ? res.why : "its header names another LSN");
            rc = res.status == WALF_SCAN_VERSION ? WAL_E_VERSION
                 : res.status == WALF_SCAN_KEY   ? WAL_E_KEY
                                                 : WAL_E_CORRUPT;
        }
    }
    ZSTD_freeDCtx(dctx);
    free(lsns);
    return rc;
}
