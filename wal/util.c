/*
 * Small pieces shared by the files of wal/: file headers and frames, the
 * growable buffer, reading files through mmap, naming and listing numbered files,
 * directory sync, logging, and the POSIX file layer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wal_internal.h"

const char *wal_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case WAL_E_CORRUPT:
        return "the log is corrupt";
    case WAL_E_VERSION:
        return "the log was written by a newer format version";
    case WAL_E_FAILED:
        return "an earlier write or sync of the log failed";
    case WAL_E_CLOSED:
        return "the log is closing";
    case WAL_E_TOO_LARGE:
        return "the record is too large";
    case WAL_E_GAP:
        return "records are missing between the snapshot and the log";
    case WAL_E_ARG:
        return "invalid argument";
    case WAL_E_CALLBACK:
        return "a replay callback failed";
    case WAL_E_NOSPACE:
        return "no space left for the log (writes resume when space returns)";
    case WAL_E_KEY:
        return "the log is sealed with another key, or sealed and no key was given, or plain "
               "and a key was given";
    default:
        return err < 0 && err > -1000 ? strerror(-err) : "unknown error";
    }
}

void wal__file_header(uint8_t *out, bool snapshot, uint64_t base_lsn)
{
    wal__file_header_flags(out, snapshot, base_lsn, 0);
}

void wal__file_header_flags(uint8_t *out, bool snapshot, uint64_t base_lsn, uint32_t flags)
{
    memset(out, 0, WALF_FILE_HEADER);
    memcpy(out, snapshot ? WALF_MAGIC_SNAPSHOT : WALF_MAGIC_SEGMENT, 8);
    wal__put32(out + 8, WAL_FORMAT_VERSION);
    wal__put32(out + 12, flags);
    wal__put64(out + 16, base_lsn);
    wal__put32(out + 28, wal__mask(wal__crc32c(0, out, 28)));
}

void wal__frame_fields(uint8_t *out, const walf_frame_t *f)
{
    memset(out, 0, WALF_FRAME_HEADER);
    wal__put32(out + 4, f->stored_len);
    wal__put64(out + 8, f->first_lsn);
    wal__put32(out + 16, f->count);
    wal__put32(out + 20, f->raw_len);
    out[24] = f->kind;
    out[25] = f->flags;
}

void wal__frame_crc(uint8_t *out)
{
    uint32_t stored = wal__get32(out + 4);
    wal__put32(out, wal__mask(wal__crc32c(0, out + 4, WALF_FRAME_HEADER - 4 + stored)));
}

void wal__frame_header(uint8_t *out, const walf_frame_t *f)
{
    wal__frame_fields(out, f);
    wal__frame_crc(out);
}

size_t wal__new_header(uint8_t *out, bool snapshot, uint64_t base_lsn, uint32_t flags,
                       const uint8_t *key)
{
    wal__file_header_flags(out, snapshot, base_lsn, key ? flags | WALF_FILE_SEALED : flags);
    if (key == NULL)
        return WALF_FILE_HEADER;
    wal__seal_block(out, key);
    return WALF_SEALED_HEADER;
}

void wal__buf_reserve(walf_buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (d == NULL)
        abort();
    b->data = d;
    b->cap = cap;
}

void wal__buf_free(walf_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void wal__buf_add_record(walf_buf_t *b, uint8_t type, const void *data, size_t len)
{
    wal__buf_reserve(b, WALF_RECORD_HEADER + len);
    uint8_t *p = b->data + b->len;
    wal__put32(p, (uint32_t)len);
    p[4] = type;
    p[5] = p[6] = p[7] = 0;
    if (len)
        memcpy(p + WALF_RECORD_HEADER, data, len);
    b->len += WALF_RECORD_HEADER + len;
}

int wal__emit_frame(walf_buf_t *out, ZSTD_CCtx *cctx, const uint8_t *raw, size_t raw_len,
                    uint64_t first_lsn, uint32_t count, uint8_t kind)
{
    size_t bound = cctx ? ZSTD_compressBound(raw_len) + 64 : raw_len;
    wal__buf_reserve(out, WALF_FRAME_HEADER + bound);
    size_t head = out->len;
    uint8_t *payload = out->data + head + WALF_FRAME_HEADER;
    size_t stored;
    if (cctx) {
        ZSTD_inBuffer in = {raw, raw_len, 0};
        ZSTD_outBuffer o = {payload, bound, 0};
        size_t remaining;
        do {
            remaining = ZSTD_compressStream2(cctx, &o, &in, ZSTD_e_flush);
            if (ZSTD_isError(remaining))
                return WAL_E_ARG;
        } while (remaining != 0);
        stored = o.pos;
    } else {
        memcpy(payload, raw, raw_len);
        stored = raw_len;
    }
    walf_frame_t f = {
        .stored_len = (uint32_t)stored,
        .first_lsn = first_lsn,
        .count = count,
        .raw_len = (uint32_t)raw_len,
        .kind = kind,
        .flags = cctx ? WALF_FLAG_ZSTD : 0,
    };
    wal__frame_header(out->data + head, &f);
    out->len = head + WALF_FRAME_HEADER + stored;
    return 0;
}

int wal__emit_sealed(walf_buf_t *out, ZSTD_CCtx *cctx, walf_seal_t *seal, uint64_t offset,
                     const uint8_t *raw, size_t raw_len, uint64_t first_lsn, uint32_t count,
                     uint8_t kind)
{
    if (seal == NULL || seal->h == NULL)
        return wal__emit_frame(out, cctx, raw, raw_len, first_lsn, count, kind);
    /* Compressed into the scratch buffer's frame, then sealed into out. */
    walf_buf_t *tmp = &seal->scratch;
    tmp->len = 0;
    int rc = wal__emit_frame(tmp, cctx, raw, raw_len, first_lsn, count, kind);
    if (rc != 0)
        return rc;
    uint32_t plain = wal__get32(tmp->data + 4);
    wal__buf_reserve(out, WALF_FRAME_HEADER + plain + WALF_TAG_BYTES);
    uint8_t *h = out->data + out->len;
    walf_frame_t f = {
        .stored_len = plain + WALF_TAG_BYTES,
        .first_lsn = first_lsn,
        .count = count,
        .raw_len = (uint32_t)raw_len,
        .kind = kind,
        .flags = (uint8_t)(tmp->data[25] | WALF_FLAG_SEALED),
    };
    wal__frame_fields(h, &f);
    rc = wal__seal_encrypt(seal, offset, h, tmp->data + WALF_FRAME_HEADER, plain,
                           h + WALF_FRAME_HEADER);
    if (rc != 0)
        return rc;
    wal__frame_crc(h);
    out->len += WALF_FRAME_HEADER + f.stored_len;
    return 0;
}

int wal__write_all(const wal_io_t *io, int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = io->write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static ssize_t posix_write(int fd, const void *buf, size_t len)
{
    return write(fd, buf, len);
}

static int posix_fdatasync(int fd)
{
    return fdatasync(fd);
}

const wal_io_t wal__posix_io = {posix_write, posix_fdatasync};

int wal__map_file(const char *path, walf_map_t *m)
{
    m->data = NULL;
    m->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = -errno;
            close(fd);
            return e;
        }
        madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
        m->data = p;
        m->len = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

void wal__unmap(walf_map_t *m)
{
    if (m->data)
        munmap((void *)m->data, m->len);
    m->data = NULL;
    m->len = 0;
}

int wal__sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* <dir>/<sub>/<n as 20 digits><suffix>: the name of a segment or snapshot. */
void wal__path(char *out, size_t size, const char *dir, const char *sub, uint64_t n,
               const char *suffix)
{
    snprintf(out, size, "%s/%s/%020llu%s", dir, sub, (unsigned long long)n, suffix);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int wal__list(const char *dir, const char *suffix, uint64_t **out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;
    size_t n = 0, cap = 0;
    uint64_t *list = NULL;
    size_t slen = strlen(suffix);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strlen(name) != 20 + slen || strcmp(name + 20, suffix) != 0)
            continue;
        uint64_t v = 0;
        bool digits = true;
        for (int i = 0; i < 20; i++) {
            if (name[i] < '0' || name[i] > '9') {
                digits = false;
                break;
            }
            v = v * 10 + (uint64_t)(name[i] - '0');
        }
        if (!digits)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *l = realloc(list, cap * sizeof(*l));
            if (l == NULL)
                abort();
            list = l;
        }
        list[n++] = v;
    }
    closedir(d);
    if (n > 1)
        qsort(list, n, sizeof(*list), cmp_u64);
    *out = list;
    return (int)n;
}

void wal__log(const wal_options_t *o, int level, const char *fmt, ...)
{
    if (o == NULL || o->log == NULL)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    o->log(o->log_ctx, level, msg);
}
