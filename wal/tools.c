/*
 * wal_inspect: every record of every snapshot and segment, for `parley wal
 * inspect`. It reads the same way recovery does (wal__scan), so what it
 * shows is what recovery would see; a frame that fails its checks is shown
 * once, as a line with checksum_ok false, and ends its file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "wal_internal.h"

typedef struct inspect_ctx {
    void (*fn)(void *ctx, const wal_inspect_record_t *rec);
    void *ctx;
    const char *file;
    const uint8_t *key;
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
    walf_sink_t sink = {.decode = true, .record = on_record, .ctx = ic, .key = ic->key};
    wal__scan(m.data, m.len, snapshot, &sink, dctx, &res);
    if (res.status == WALF_SCAN_KEY) {
        wal__unmap(&m);
        return WAL_E_KEY;
    }
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
    return wal_inspect_key(dir, NULL, fn, ctx);
}

int wal_inspect_key(const char *dir, const uint8_t *key,
                    void (*fn)(void *ctx, const wal_inspect_record_t *rec), void *ctx)
{
    if (dir == NULL || fn == NULL)
        return WAL_E_ARG;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (dctx == NULL)
        abort();
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 27);
    inspect_ctx_t ic = {.fn = fn, .ctx = ctx, .key = key};
    int rc = inspect_dir(dir, "snapshots", ".snap", true, &ic, dctx);
    if (rc == 0)
        rc = inspect_dir(dir, "wal", ".wal", false, &ic, dctx);
    ZSTD_freeDCtx(dctx);
    return rc;
}

int wal_file_seal(const char *path, uint8_t id_out[8])
{
    walf_map_t m;
    int rc = wal__map_file(path, &m);
    if (rc != 0)
        return rc;
    rc = WAL_E_CORRUPT;
    if (m.len >= WALF_FILE_HEADER &&
        (memcmp(m.data, WALF_MAGIC_SEGMENT, 8) == 0 ||
         memcmp(m.data, WALF_MAGIC_SNAPSHOT, 8) == 0) &&
        wal__mask(wal__crc32c(0, m.data, 28)) == wal__get32(m.data + 28)) {
        rc = 0;
        if (wal__get32(m.data + 12) & WALF_FILE_SEALED) {
            rc = m.len >= WALF_SEALED_HEADER && wal__seal_block_ok(m.data) ? 1 : WAL_E_CORRUPT;
            if (rc == 1 && id_out)
                memcpy(id_out, m.data + WALF_FILE_HEADER + WALF_SALT_BYTES, WALF_FILE_KEY_ID);
        }
    }
    wal__unmap(&m);
    return rc;
}

/* ---- wal_reseal_file: the same frames under another key ---- */

typedef struct reseal_ctx {
    walf_buf_t out;
    walf_seal_t seal;
    uint64_t offset; /* where the next frame goes in the new file */
} reseal_ctx_t;

static int reseal_frame(void *ctx, uint64_t offset, const walf_frame_t *f, const uint8_t *payload,
                        uint32_t len)
{
    (void)offset;
    reseal_ctx_t *rc = ctx;
    size_t head = rc->out.len;
    uint32_t tag = rc->seal.h ? WALF_TAG_BYTES : 0;
    wal__buf_reserve(&rc->out, WALF_FRAME_HEADER + len + tag);
    uint8_t *h = rc->out.data + head;
    walf_frame_t nf = *f;
    nf.stored_len = len + tag;
    nf.flags = (uint8_t)((f->flags & WALF_FLAG_ZSTD) | (tag ? WALF_FLAG_SEALED : 0));
    wal__frame_fields(h, &nf);
    if (tag) {
        if (wal__seal_encrypt(&rc->seal, rc->offset, h, payload, len, h + WALF_FRAME_HEADER) != 0)
            return WAL_E_KEY;
    } else {
        memcpy(h + WALF_FRAME_HEADER, payload, len);
    }
    wal__frame_crc(h);
    rc->out.len = head + WALF_FRAME_HEADER + nf.stored_len;
    rc->offset += WALF_FRAME_HEADER + nf.stored_len;
    return 0;
}

int wal_reseal_file(const char *src, const char *dst, bool is_snapshot, const uint8_t *old_key,
                    const uint8_t *new_key)
{
    walf_map_t m;
    int rc = wal__map_file(src, &m);
    if (rc != 0)
        return rc;
    reseal_ctx_t ctx = {0};
    walf_scan_result_t res;
    uint8_t header[WALF_SEALED_HEADER];
    if (m.len >= WALF_FILE_HEADER) {
        uint32_t flags = wal__get32(m.data + 12) & ~WALF_FILE_SEALED;
        size_t hl = wal__new_header(header, is_snapshot, wal__get64(m.data + 16), flags, new_key);
        wal__buf_reserve(&ctx.out, hl);
        memcpy(ctx.out.data, header, hl);
        ctx.out.len = hl;
        ctx.offset = hl;
        if (new_key)
            rc = wal__seal_open(&ctx.seal, new_key, header, is_snapshot);
    }
    if (rc == 0) {
        ZSTD_DCtx *dctx = ZSTD_createDCtx();
        if (dctx == NULL)
            abort();
        walf_sink_t sink = {.decode = false, .opened = reseal_frame, .ctx = &ctx, .key = old_key};
        rc = wal__scan(m.data, m.len, is_snapshot, &sink, dctx, &res);
        ZSTD_freeDCtx(dctx);
        if (rc == 0 && res.status == WALF_SCAN_KEY)
            rc = WAL_E_KEY;
        else if (rc == 0 && res.status != WALF_SCAN_CLEAN &&
                 !(res.status == WALF_SCAN_TORN && !is_snapshot && res.header_ok))
            rc = res.status == WALF_SCAN_VERSION ? WAL_E_VERSION : WAL_E_CORRUPT;
    }
    wal__unmap(&m);
    wal__seal_close(&ctx.seal);
    wal__buf_free(&ctx.seal.scratch);
    if (rc == 0) {
        int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            rc = -errno;
        if (rc == 0) {
            rc = wal__write_all(&wal__posix_io, fd, ctx.out.data, ctx.out.len);
            if (rc == 0 && fsync(fd) != 0)
                rc = -errno;
            close(fd);
            if (rc != 0)
                unlink(dst);
        }
    }
    wal__buf_free(&ctx.out);
    return rc;
}
