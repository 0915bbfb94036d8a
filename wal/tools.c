/*
 * wal_inspect: every record of every snapshot and segment, for `parley wal
 * inspect`. It reads the same way recovery does (wal__scan), so what it
 * shows is what recovery would see; a frame that fails its checks is shown
 * once, as a line with checksum_ok false, and ends its file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wal_internal.h"

typedef struct inspect_ctx {
    void (*fn)(void *ctx, const wal_inspect_record_t *rec);
    void *ctx;
    const char *file;
} inspect_ctx_t;

static int on_record(void *ctx, uint64_t frame_offset, const walf_frame_t *f, uint64_t lsn,
                     uint8_t type, const uint8_t *data, uint32_t len)
{
    inspect_ctx_t *ic = ctx;
    wal_inspect_record_t rec = {
        .file = ic->file,
        .offset = frame_offset,
        .lsn = lsn,
        .type = type,
        .raw_len = len,
        .data = data,
        .frame_stored = f->stored_len,
        .frame_raw = f->raw_len,
        .checksum_ok = true,
    };
    ic->fn(ic->ctx, &rec);
    return 0;
}

static int inspect_file(const char *path, const char *name, bool snapshot, inspect_ctx_t *ic,
                        ZSTD_DCtx *dctx)
{
    walf_map_t m;
    int rc = wal__map_file(path, &m);
    if (rc != 0)
        return rc;
    ic->file = name;
    walf_scan_result_t res;
    walf_sink_t sink = {.decode = true, .record = on_record, .ctx = ic};
    wal__scan(m.data, m.len, snapshot, &sink, dctx, &res);
    if (res.status != WALF_SCAN_CLEAN) {
        wal_inspect_record_t bad = {.file = name, .offset = res.bad_offset};
        if (res.header_ok && m.len >= res.bad_offset + WALF_FRAME_HEADER) {
            const uint8_t *h = m.data + res.bad_offset;
            bad.frame_stored = wal__get32(h + 4);
            bad.lsn = wal__get64(h + 8);
            bad.frame_raw = wal__get32(h + 20);
        }
        ic->fn(ic->ctx, &bad);
    }
    wal__unmap(&m);
    return 0;
}

static int inspect_dir(const char *dir, const char *sub, const char *suffix, bool snapshot,
                       inspect_ctx_t *ic, ZSTD_DCtx *dctx)
{
    char subdir[PATH_MAX];
    snprintf(subdir, sizeof(subdir), "%s/%s", dir, sub);
    uint64_t *list;
    int n = wal__list(subdir, suffix, &list);
    if (n == -ENOENT)
        return 0;
    if (n < 0)
        return n;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char path[PATH_MAX + 32], name[64];
        wal__path(path, sizeof(path), dir, sub, list[i], suffix);
        snprintf(name, sizeof(name), "%s/%020llu%s", sub, (unsigned long long)list[i], suffix);
        rc = inspect_file(path, name, snapshot, ic, dctx);
    }
    free(list);
    return rc;
}

int wal_inspect(const char *dir, void (*fn)(void *ctx, const wal_inspect_record_t *rec),
                void *ctx)
{
    if (dir == NULL || fn == NULL)
        return WAL_E_ARG;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (dctx == NULL)
        abort();
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 27);
    inspect_ctx_t ic = {.fn = fn, .ctx = ctx};
    int rc = inspect_dir(dir, "snapshots", ".snap", true, &ic, dctx);
    if (rc == 0)
        rc = inspect_dir(dir, "wal", ".wal", false, &ic, dctx);
    ZSTD_freeDCtx(dctx);
    return rc;
}
