/*
 * Writing a backup archive while the server serves (include/parley/backup.h).
 *
 * DESIGN
 * Consistency without stopping writers: backup_begin takes a hold on the log
 * (wal_hold_begin: the LSN is the durable end of a frame; the newest
 * snapshot and the segments after it stay on disk while held, whatever
 * snapshots come meanwhile) and pins the blob store (a removal during the
 * backup keeps the blob and is decided again at backup_end), so every blob
 * a record up to the LSN names is still there when the blob tree is walked.
 * The blobs written are every blob on disk at the walk: a few uploaded after
 * the LSN may come along, unreferenced in the restored directory (harmless,
 * as after a crash between a blob's placement and its record).
 *
 * Files are copied byte for byte, so an encrypted data directory gives an
 * encrypted archive; the last segment is cut by wal_segment_cut at the frame
 * that ends the LSN, without decoding a record.
 *
 * Format: ustar members, each compressed as its own zstd frame with zstd's
 * checksum (ZSTD_compressStream2, ZSTD_e_end at each member's end), so a
 * damaged archive is refused at the member it hits; the manifest, last,
 * gives every member's size and SHA-256 (GnuTLS). Memory: one 128 KiB read
 * buffer and zstd's stream state, whatever the data's size.
 *
 * One backup at a time per process (an atomic flag): a second answers
 * BACKUP_E_BUSY (HTTP 409), so a backup's cost to the server is bounded.
 */
#include "parley/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "parley/clock.h"
#include "parley/file_life.h"
#include "parley/hex.h"
#include "parley/settings.h"
#include "parley/xalloc.h"
#include "backup_internal.h"
#include "wal.h"

#define CHUNK (128u * 1024)
#define ZSTD_LEVEL 1
#define TAR_SIZE_MAX 077777777777ull /* 11 octal digits: 8 GiB - 1 */

static atomic_bool busy;

struct backup {
    store_t *s;
    blobs_t *b;
    char dir[4096];
    bool include_files;
    wal_hold_t hold;
    int64_t created_ms;
    /* while running */
    backup_sink_fn sink;
    void *sink_ctx;
    ZSTD_CCtx *cctx;
    uint8_t *in;  /* CHUNK */
    uint8_t *out; /* ZSTD_CStreamOutSize() */
    size_t out_cap;
    json_t *members;
    backup_summary_t sum;
    char *err;
    size_t err_size;
};

int backup_begin(store_t *s, blobs_t *b, const char *data_dir, bool include_files,
                 backup_t **out)
{
    bool expected = false;
    if (!atomic_compare_exchange_strong(&busy, &expected, true))
        return BACKUP_E_BUSY;
    backup_t *bk = xcalloc(1, sizeof(*bk));
    bk->s = s;
    bk->b = b;
    snprintf(bk->dir, sizeof(bk->dir), "%s", data_dir);
    bk->include_files = include_files;
    /* Pin before the LSN is fixed: a blob removed after it stays. */
    blobs_pin(b);
    int rc = store_backup_hold(s, &bk->hold);
    if (rc != 0) {
        bk->hold.w = NULL;
        backup_end(bk);
        return rc;
    }
    bk->created_ms = clock_wall_ms();
    *out = bk;
    return 0;
}

uint64_t backup_lsn(const backup_t *bk)
{
    return bk->hold.lsn;
}

int64_t backup_created_ms(const backup_t *bk)
{
    return bk->created_ms;
}

/* ms as UTC: 20261203T161500Z (compact) or 2026-12-03T16:15:00Z. */
static void utc_stamp(int64_t ms, bool compact, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    if (compact)
        strftime(out, size, "%Y%m%dT%H%M%SZ", &tm);
    else
        strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void backup_file_name(const backup_t *bk, char *out, size_t size)
{
    char stamp[32];
    utc_stamp(bk->created_ms, true, stamp, sizeof(stamp));
    snprintf(out, size, "parley-%s-%llu.tar.zst", stamp, (unsigned long long)bk->hold.lsn);
}

void backup_end(backup_t *bk)
{
    if (bk == NULL)
        return;
    if (bk->hold.w != NULL)
        wal_hold_end(&bk->hold);
    char(*deferred)[BLOB_SHA256_HEX_LEN + 1];
    size_t n = blobs_unpin(bk->b, &deferred);
    for (size_t i = 0; i < n; i++)
        file_life_recheck(bk->s, bk->b, deferred[i]);
    free(deferred);
    ZSTD_freeCCtx(bk->cctx);
    free(bk->in);
    free(bk->out);
    json_decref(bk->members);
    free(bk);
    atomic_store(&busy, false);
}

/* ---- the stream: tar blocks through zstd to the sink ---- */

static int fail(backup_t *bk, int rc, const char *what, const char *detail)
{
    if (bk->err != NULL && bk->err_size > 0 && bk->err[0] == '\0')
        snprintf(bk->err, bk->err_size, "%s: %s", what,
                 rc == BACKUP_E_SINK ? "the receiver stopped" : detail ? detail : strerror(-rc));
    return rc;
}

/* Compresses `len` bytes (end: close the member's zstd frame). */
static int emit(backup_t *bk, const void *data, size_t len, bool end)
{
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer o = {bk->out, bk->out_cap, 0};
        size_t left = ZSTD_compressStream2(bk->cctx, &o, &in, end ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(left))
            return -EIO;
        if (o.pos > 0) {
            if (bk->sink(bk->sink_ctx, bk->out, o.pos) != 0)
                return BACKUP_E_SINK;
            bk->sum.bytes += o.pos;
        }
        if (end ? left == 0 : in.pos == in.size)
            return 0;
    }
}

/* v in octal, zero-padded to width - 1 digits and a NUL (v fits: sizes are
 * below 8 GiB * 8). */
static void octal(char *field, size_t width, uint64_t v)
{
    field[width - 1] = '\0';
    for (size_t i = width - 1; i-- > 0; v >>= 3)
        field[i] = (char)('0' + (v & 7));
}

/* A ustar header for a regular file. */
static void tar_header(uint8_t block[512], const char *name, uint64_t size, int64_t mtime_s)
{
    memset(block, 0, 512);
    char *h = (char *)block;
    snprintf(h, 100, "%s", name);
    octal(h + 100, 8, 0600);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, size);
    octal(h + 136, 12, (uint64_t)(mtime_s > 0 ? mtime_s : 0));
    memset(h + 148, ' ', 8);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += block[i];
    snprintf(h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/* One member from `fd` (exactly `size` bytes) or from `mem` (fd < 0). */
static int member(backup_t *bk, const char *name, int fd, const void *mem, uint64_t size)
{
    if (size > TAR_SIZE_MAX)
        return fail(bk, -EFBIG, name, "over 8 GiB, more than a ustar size holds");
    uint8_t block[512];
    tar_header(block, name, size, bk->created_ms / 1000);
    int rc = emit(bk, block, sizeof(block), false);
    gnutls_hash_hd_t h;
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
        return fail(bk, -ENOMEM, name, "SHA-256 unavailable");
    uint64_t done = 0;
    while (rc == 0 && done < size) {
        size_t want = size - done < CHUNK ? (size_t)(size - done) : CHUNK;
        const uint8_t *p;
        if (fd >= 0) {
            ssize_t n = pread(fd, bk->in, want, (off_t)done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                rc = n < 0 ? -errno : -EIO;
                fail(bk, rc, name, n == 0 ? "the file is shorter than it was" : NULL);
                break;
            }
            want = (size_t)n;
            p = bk->in;
        } else {
            p = (const uint8_t *)mem + done;
        }
        gnutls_hash(h, p, want);
        rc = emit(bk, p, want, false);
        done += want;
    }
    uint8_t digest[32];
    gnutls_hash_deinit(h, digest);
    if (rc != 0)
        return fail(bk, rc, name, NULL);
    memset(block, 0, sizeof(block));
    size_t pad = (size_t)((512 - size % 512) % 512);
    rc = emit(bk, block, pad, true);
    if (rc != 0)
        return fail(bk, rc, name, NULL);
    char hex[65];
    hex_encode(digest, sizeof(digest), hex);
    json_array_append_new(bk->members, json_pack("{s:s, s:I, s:s}", "name", name, "size",
                                                 (json_int_t)size, "sha256", hex));
    bk->sum.members++;
    bk->sum.raw_bytes += size;
    return 0;
}

/* A member copied from a file of the data directory; `size` UINT64_MAX: all of it. */
static int file_member(backup_t *bk, const char *name, const char *path, uint64_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return fail(bk, -errno, path, NULL);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(bk, -EINVAL, path, "not a regular file");
    }
    if (size == UINT64_MAX || size > (uint64_t)st.st_size)
        size = size == UINT64_MAX ? (uint64_t)st.st_size : size;
    int rc = member(bk, name, fd, NULL, size);
    close(fd);
    return rc;
}

bool backup__hex_name(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static int sorted_names(const char *path, char ***out)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return errno == ENOENT ? 0 : -errno;
    size_t n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap)
            v = xrealloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));
        v[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) /* insertion sort: small directories */
        for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            char *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *out = v;
    return (int)n;
}

static void free_names(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Every blob under files/ab/cd/, by its name. */
static int blob_members(backup_t *bk)
{
    char path[4400], name[BACKUP_NAME_MAX];
    snprintf(path, sizeof(path), "%s/files", bk->dir);
    char **ab;
    int nab = sorted_names(path, &ab);
    int rc = nab < 0 ? fail(bk, nab, path, NULL) : 0;
    for (int i = 0; rc == 0 && i < nab; i++) {
        if (!backup__hex_name(ab[i], 2))
            continue;
        snprintf(path, sizeof(path), "%s/files/%s", bk->dir, ab[i]);
        char **cd;
        int ncd = sorted_names(path, &cd);
        for (int j = 0; rc == 0 && j < ncd; j++) {
            if (!backup__hex_name(cd[j], 2))
                continue;
            snprintf(path, sizeof(path), "%s/files/%s/%s", bk->dir, ab[i], cd[j]);
            char **blobs;
            int nb = sorted_names(path, &blobs);
            for (int k = 0; rc == 0 && k < nb; k++) {
                const char *sha = blobs[k];
                if (!backup__hex_name(sha, 64) || strncmp(sha, ab[i], 2) != 0 ||
                    strncmp(sha + 2, cd[j], 2) != 0)
                    continue;
                int fd;
                uint64_t size;
                if (blobs_open_read(bk->b, sha, &fd, &size) != 0)
                    continue; /* unreferenced and gone (pinned blobs stay) */
                snprintf(name, sizeof(name), "files/%s/%s/%s", ab[i], cd[j], sha);
                rc = member(bk, name, fd, NULL, size);
                close(fd);
                bk->sum.blobs++;
            }
            if (nb > 0)
                free_names(blobs, nb);
        }
        if (ncd > 0)
            free_names(cd, ncd);
    }
    if (nab > 0)
        free_names(ab, nab);
    return rc;
}

/* The data directory's own top-level files (secret.key...). */
bool backup__top_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 64 || n[0] == '.' || strcmp(n, "LOCK") == 0 ||
        strcmp(n, "manifest.json") == 0 || strcmp(n, "settings.json") == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    if (len > 4 && strcmp(n + len - 4, ".tmp") == 0)
        return false;
    return true;
}

static int top_members(backup_t *bk)
{
    char **v;
    int n = sorted_names(bk->dir, &v);
    if (n < 0)
        return fail(bk, n, bk->dir, NULL);
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        char path[4400];
        snprintf(path, sizeof(path), "%s/%s", bk->dir, v[i]);
        struct stat st;
        if (!backup__top_name_ok(v[i]) || lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        rc = file_member(bk, v[i], path, UINT64_MAX);
    }
    if (n > 0)
        free_names(v, n);
    return rc;
}

static int log_members(backup_t *bk)
{
    char path[4400], name[BACKUP_NAME_MAX];
    const wal_hold_t *h = &bk->hold;
    int rc = 0;
    if (h->snapshot_lsn > 0) {
        snprintf(name, sizeof(name), "snapshots/%020llu.snap", (unsigned long long)h->snapshot_lsn);
        snprintf(path, sizeof(path), "%s/%s", bk->dir, name);
        rc = file_member(bk, name, path, UINT64_MAX);
    }
    for (size_t i = 0; rc == 0 && i < h->n_segments; i++) {
        snprintf(name, sizeof(name), "wal/%020llu.wal", (unsigned long long)h->segments[i]);
        snprintf(path, sizeof(path), "%s/%s", bk->dir, name);
        uint64_t end;
        int cut = wal_segment_cut(path, h->lsn, &end);
        if (cut != 0)
            return fail(bk, -EIO, path, wal_strerror(cut));
        rc = file_member(bk, name, path, end);
        bk->sum.segments++;
    }
    return rc;
}

int backup_run(backup_t *bk, backup_sink_fn sink, void *ctx, backup_summary_t *sum, char *err,
               size_t err_size)
{
    bk->sink = sink;
    bk->sink_ctx = ctx;
    bk->err = err;
    bk->err_size = err_size;
    if (err != NULL && err_size > 0)
        err[0] = '\0';
    bk->cctx = ZSTD_createCCtx();
    if (bk->cctx == NULL)
        abort(); /* out of memory: the allocation policy */
    ZSTD_CCtx_setParameter(bk->cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL);
    ZSTD_CCtx_setParameter(bk->cctx, ZSTD_c_checksumFlag, 1);
    bk->in = xmalloc(CHUNK);
    bk->out_cap = ZSTD_CStreamOutSize();
    bk->out = xmalloc(bk->out_cap);
    bk->members = json_array();
    bk->sum.lsn = bk->hold.lsn;
    bk->sum.snapshot_lsn = bk->hold.snapshot_lsn;
    bk->sum.created_ms = bk->created_ms;
    bk->sum.include_files = bk->include_files;

    /* The blobs first: they are the bulk, and the held log is read after
     * them whatever came meanwhile. */
    int rc = top_members(bk);
    if (rc == 0 && bk->include_files)
        rc = blob_members(bk);
    if (rc == 0)
        rc = log_members(bk);
    /* The readable copy of the settings only for a plain directory: in an
     * encrypted one (its ENCRYPTION mark) they stay in the sealed log and
     * snapshot like every other record. */
    char mark[4200];
    snprintf(mark, sizeof(mark), "%s/ENCRYPTION", bk->dir);
    if (rc == 0 && access(mark, F_OK) != 0) {
        store_settings_t st;
        store_settings_get(bk->s, &st);
        json_t *sj = store_settings_json(&st);
        char *text = json_dumps(sj, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(sj);
        rc = member(bk, "settings.json", -1, text, strlen(text));
        free(text);
    }
    if (rc == 0) {
        store_stats_t ss;
        store_get_stats(bk->s, &ss);
        char created[40];
        utc_stamp(bk->created_ms, false, created, sizeof(created));
        json_t *m = json_pack(
            "{s:s, s:i, s:I, s:I, s:s, s:b, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:O}",
            "format", "parley-backup", "version", BACKUP_FORMAT_VERSION, "lsn",
            (json_int_t)bk->hold.lsn, "snapshot_lsn", (json_int_t)bk->hold.snapshot_lsn,
            "created_at", created, "include_files", bk->include_files, "counts", "members",
            (json_int_t)bk->sum.members, "segments", (json_int_t)bk->sum.segments, "blobs",
            (json_int_t)bk->sum.blobs, "users", (json_int_t)ss.users, "channels",
            (json_int_t)ss.channels, "messages", (json_int_t)ss.messages, "files",
            (json_int_t)ss.live_files, "members", bk->members);
        char *text = json_dumps(m, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        json_decref(m);
        rc = member(bk, "manifest.json", -1, text, strlen(text));
        free(text);
    }
    if (rc == 0) {
        uint8_t zero[1024] = {0};
        rc = emit(bk, zero, sizeof(zero), true);
        if (rc != 0)
            fail(bk, rc, "the archive's end", NULL);
    }
    if (rc == 0 && sum != NULL)
        *sum = bk->sum;
    return rc;
}

/* ---- into a file ---- */

typedef struct file_sink {
    int fd;
    int err; /* the errno of a failed write */
} file_sink_t;

static int write_fd(void *ctx, const void *data, size_t len)
{
    file_sink_t *fs = ctx;
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fs->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fs->err = errno;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int backup_to_path(backup_t *bk, const char *path, backup_summary_t *sum, char *err,
                   size_t err_size)
{
    char tmp[4400], dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    const char *base = slash ? strrchr(path, '/') + 1 : path;
    if (snprintf(tmp, sizeof(tmp), "%.4095s/.%.255s.tmp", dir, base) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    if (access(path, F_OK) == 0) {
        snprintf(err, err_size, "%s: exists (a backup never overwrites)", path);
        return -EEXIST;
    }
    file_sink_t fs = {.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)};
    if (fs.fd < 0) {
        int rc = -errno;
        snprintf(err, err_size, "%s: %s", tmp, strerror(errno));
        return rc;
    }
    int rc = backup_run(bk, write_fd, &fs, sum, err, err_size);
    if (rc == BACKUP_E_SINK)
        snprintf(err, err_size, "%s: cannot write: %s", tmp, strerror(fs.err ? fs.err : EIO));
    if (rc == BACKUP_E_SINK && fs.err == ENOSPC)
        rc = -ENOSPC;
    if (rc == 0 && fsync(fs.fd) != 0) {
        rc = -errno;
        snprintf(err, err_size, "%s: fsync: %s", tmp, strerror(errno));
    }
    close(fs.fd);
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
    }
    if (rc == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    } else {
        unlink(tmp);
    }
    return rc;
}

bool backup_name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len < 16 || len > 128 || strncmp(name, "parley-", 7) != 0 ||
        strcmp(name + len - 8, ".tar.zst") != 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return strstr(name, "..") == NULL;
}
