/*
 * Reading backup archives: `parley backup verify` and `parley restore`
 * (include/parley/backup.h).
 *
 * DESIGN
 * The reader trusts nothing in the file. It decompresses in 128 KiB pieces
 * (bounded memory whatever the archive claims), parses each ustar header
 * itself (checksum, magic, a regular file only: no links, devices or
 * directories; no prefix field; a NUL inside the name field; an octal size
 * below BACKUP_MEMBER_MAX) and accepts only the names a backup writes:
 * snapshots/<20 digits>.snap, wal/<20 digits>.wal, files/ab/cd/<sha256>
 * (matching its directories), a top-level data-directory file, settings.json
 * and manifest.json. So "../x", "/etc/x", symlinks and huge sizes are refused
 * before a byte is written. Each member must end its own zstd frame (as the
 * writer makes them), so zstd's checksum and the SHA-256 of the manifest
 * both name the member that is damaged; the manifest must come last, list
 * exactly the members seen, with their sizes and digests, and be followed
 * only by the tar end and the end of the file (a truncated archive is
 * refused naming where it stops).
 *
 * Restore reads the archive twice: once to verify everything (nothing is
 * written), once to extract into a temporary directory beside the target,
 * checking each member's digest again against the verified manifest; then
 * fsyncs, renames the directory to the target and fsyncs its parent. A
 * failure removes the temporary directory; the target is untouched.
 */
#include "parley/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <gnutls/crypto.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "parley/hex.h"
#include "parley/xalloc.h"
#include "backup_internal.h"

#define CHUNK (128u * 1024)

typedef struct reader {
    int fd;
    ZSTD_DCtx *d;
    uint8_t *zin;
    size_t zin_cap;
    ZSTD_inBuffer in;
    bool in_eof;
    uint8_t *out;
    size_t out_len, out_pos;
    bool frame_open; /* a zstd frame has begun and not ended */
    char where[160]; /* the member being read, for errors */
    uint64_t read_bytes;
    char *err;
    size_t err_size;
} reader_t;

static int bad(reader_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(reader_t *r, const char *fmt, ...)
{
    if (r->err && r->err_size && r->err[0] == '\0') {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(r->err, r->err_size, "%s: %s", r->where, msg);
    }
    return BACKUP_E_FORMAT;
}

/* Decompresses more into r->out. Returns 1 with bytes, 2 when a zstd frame
 * ended without more bytes, 0 at the clean end of the input (between
 * frames), or an error. Never crosses from one frame into the next in one
 * call (zstd stops at a frame's end), so end_frame can tell where a
 * member's frame ends. */
static int refill(reader_t *r)
{
    for (;;) {
        if (r->in.pos == r->in.size && !r->in_eof) {
            ssize_t n = read(r->fd, r->zin, r->zin_cap);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return bad(r, "read: %s", strerror(errno));
            if (n == 0)
                r->in_eof = true;
            r->in = (ZSTD_inBuffer){r->zin, (size_t)n, 0};
            r->read_bytes += (uint64_t)n;
        }
        bool exhausted = r->in.pos == r->in.size && r->in_eof;
        if (exhausted && !r->frame_open)
            return 0;
        /* Even with the input exhausted, zstd may hold output to flush. */
        ZSTD_outBuffer o = {r->out, CHUNK, 0};
        size_t ret = ZSTD_decompressStream(r->d, &o, &r->in);
        if (ZSTD_isError(ret))
            return bad(r, "damaged data (%s)", ZSTD_getErrorName(ret));
        r->frame_open = ret != 0;
        if (o.pos > 0) {
            r->out_len = o.pos;
            r->out_pos = 0;
            return 1;
        }
        if (!r->frame_open)
            return 2;
        if (exhausted)
            return bad(r, "%s", "the archive is truncated here");
    }
}

/* Up to `want` decompressed bytes; *got 0 only at the clean end. */
static int pull(reader_t *r, size_t want, const uint8_t **p, size_t *got)
{
    while (r->out_pos == r->out_len) {
        int rc = refill(r);
        if (rc <= 0) {
            *got = 0;
            return rc;
        }
    }
    size_t n = r->out_len - r->out_pos;
    if (n > want)
        n = want;
    *p = r->out + r->out_pos;
    r->out_pos += n;
    *got = n;
    return 0;
}

static int read_exact(reader_t *r, uint8_t *dst, size_t len)
{
    while (len > 0) {
        const uint8_t *p;
        size_t got;
        int rc = pull(r, len, &p, &got);
        if (rc != 0)
            return rc;
        if (got == 0)
            return bad(r, "%s", "the archive is truncated here");
        memcpy(dst, p, got);
        dst += got;
        len -= got;
    }
    return 0;
}

/* The member's zstd frame must end here (the writer ends one per member),
 * so its checksum is checked before the next member is read. */
static int end_frame(reader_t *r)
{
    for (;;) {
        if (r->out_pos < r->out_len)
            return bad(r, "%s", "data after the member's end");
        if (!r->frame_open)
            return 0;
        int rc = refill(r);
        if (rc < 0)
            return rc;
        if (rc != 1)
            return 0;
    }
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* The names a backup writes, and nothing else. */
static bool name_ok(const char *n)
{
    size_t len = strlen(n);
    if (strcmp(n, "manifest.json") == 0 || strcmp(n, "settings.json") == 0)
        return true;
    if (len == 35 && strncmp(n, "snapshots/", 10) == 0 && digits(n + 10, 20) &&
        strcmp(n + 30, ".snap") == 0)
        return true;
    if (len == 28 && strncmp(n, "wal/", 4) == 0 && digits(n + 4, 20) &&
        strcmp(n + 24, ".wal") == 0)
        return true;
    if (len == 76 && strncmp(n, "files/", 6) == 0 && n[8] == '/' && n[11] == '/' &&
        backup__hex_name(n + 12, 64) && strncmp(n + 6, n + 12, 2) == 0 &&
        strncmp(n + 9, n + 14, 2) == 0)
        return true;
    return strchr(n, '/') == NULL && backup__top_name_ok(n);
}

/* Parses a ustar header block: 0 with name and size, or an error. */
static int parse_header(reader_t *r, const uint8_t *b, char name[BACKUP_NAME_MAX + 1],
                        uint64_t *size)
{
    const char *h = (const char *)b;
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += (i >= 148 && i < 156) ? ' ' : b[i];
    char ck[9];
    memcpy(ck, h + 148, 8);
    ck[8] = '\0';
    char *end;
    unsigned long stored = strtoul(ck, &end, 8);
    if (end == ck || stored != sum)
        return bad(r, "%s", "a tar header with a bad checksum");
    if (memcmp(h + 257, "ustar\0", 6) != 0 || memcmp(h + 263, "00", 2) != 0)
        return bad(r, "%s", "not a ustar header");
    if (memchr(h, '\0', 100) == NULL)
        return bad(r, "%s", "a member name without its end");
    for (int i = 345; i < 500; i++)
        if (b[i] != 0)
            return bad(r, "%s", "a member name with a prefix (refused)");
    snprintf(name, BACKUP_NAME_MAX + 1, "%.100s", h);
    snprintf(r->where, sizeof(r->where), "member %.100s", name);
    if (h[156] != '0' && h[156] != '\0')
        return bad(r, "%s", "not a regular file (links and devices are refused)");
    if (!name_ok(name))
        return bad(r, "%s", "a name a backup never holds (refused)");
    uint64_t v = 0;
    int i = 124;
    while (i < 136 && h[i] == ' ')
        i++;
    int start = i;
    for (; i < 136 && h[i] >= '0' && h[i] <= '7'; i++) {
        if (v > (BACKUP_MEMBER_MAX >> 3))
            return bad(r, "%s", "a size over the limit");
        v = v * 8 + (uint64_t)(h[i] - '0');
    }
    if (i == start || (i < 136 && h[i] != '\0' && h[i] != ' '))
        return bad(r, "%s", "a malformed size");
    if (v > BACKUP_MEMBER_MAX)
        return bad(r, "%s", "a size over the limit");
    *size = v;
    return 0;
}

/* What a pass does with each member. */
typedef struct member_ops {
    int (*begin)(void *ctx, const char *name, uint64_t size);
    int (*data)(void *ctx, const uint8_t *p, size_t len);
    int (*end)(void *ctx, const char *name, uint64_t size, const char *sha256);
    void *ctx;
} member_ops_t;

typedef struct pass {
    json_t *seen;     /* name -> {size, sha256} */
    json_t *manifest; /* parsed, once read */
} pass_t;

static int check_manifest(reader_t *r, pass_t *ps, const char *text, size_t len)
{
    snprintf(r->where, sizeof(r->where), "member manifest.json");
    json_error_t je;
    json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (m == NULL || !json_is_object(m)) {
        json_decref(m);
        return bad(r, "%s", "not a JSON object");
    }
    ps->manifest = m;
    json_t *fmt = json_object_get(m, "format"), *ver = json_object_get(m, "version"),
           *lsn = json_object_get(m, "lsn"), *members = json_object_get(m, "members");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "parley-backup") != 0)
        return bad(r, "%s", "not a Parley backup");
    if (!json_is_integer(ver) || json_integer_value(ver) < 1)
        return bad(r, "%s", "no format version");
    if (json_integer_value(ver) > BACKUP_FORMAT_VERSION)
        return bad(r, "%s", "written by a newer version of the format");
    if (!json_is_integer(lsn) || json_integer_value(lsn) < 0 || !json_is_array(members))
        return bad(r, "%s", "no lsn or members");
    if (json_array_size(members) != json_object_size(ps->seen))
        return bad(r, "%s", "the member list does not match the archive");
    size_t i;
    json_t *e;
    json_array_foreach(members, i, e) {
        json_t *n = json_object_get(e, "name"), *sz = json_object_get(e, "size"),
               *sha = json_object_get(e, "sha256");
        if (!json_is_string(n) || !json_is_integer(sz) || !json_is_string(sha))
            return bad(r, "%s", "a malformed member entry");
        snprintf(r->where, sizeof(r->where), "member %.100s", json_string_value(n));
        json_t *got = json_object_get(ps->seen, json_string_value(n));
        if (got == NULL)
            return bad(r, "%s", "listed in the manifest but missing");
        if (json_integer_value(json_object_get(got, "size")) != json_integer_value(sz))
            return bad(r, "%s", "size differs from the manifest (truncated?)");
        if (strcmp(json_string_value(json_object_get(got, "sha256")), json_string_value(sha)))
            return bad(r, "%s", "SHA-256 differs from the manifest (damaged)");
    }
    return 0;
}

/* Reads the whole archive once. */
static int read_archive(const char *path, const member_ops_t *ops, pass_t *ps,
                        backup_summary_t *sum, char *err, size_t err_size)
{
    reader_t r = {.err = err, .err_size = err_size};
    if (err && err_size)
        err[0] = '\0';
    snprintf(r.where, sizeof(r.where), "%s", path);
    r.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r.fd < 0) {
        int e = -errno;
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return e;
    }
    r.d = ZSTD_createDCtx();
    if (r.d == NULL)
        abort(); /* out of memory: the allocation policy */
    ZSTD_DCtx_setParameter(r.d, ZSTD_d_windowLogMax, 27);
    r.zin_cap = ZSTD_DStreamInSize();
    r.zin = xmalloc(r.zin_cap);
    r.out = xmalloc(CHUNK);
    ps->seen = json_object();
    gnutls_hash_hd_t h = NULL;
    char *manifest = NULL;
    bool manifest_read = false;
    int rc = 0;
    uint8_t block[512];
    snprintf(r.where, sizeof(r.where), "the first member's header");
    for (;;) {
        rc = read_exact(&r, block, sizeof(block));
        if (rc != 0)
            break;
        bool zero = true;
        for (int i = 0; i < 512 && zero; i++)
            zero = block[i] == 0;
        if (zero) {
            snprintf(r.where, sizeof(r.where), "the archive's end");
            rc = read_exact(&r, block, sizeof(block));
            for (int i = 0; rc == 0 && i < 512; i++)
                if (block[i] != 0)
                    rc = bad(&r, "%s", "a damaged end");
            if (rc == 0)
                rc = end_frame(&r);
            const uint8_t *p;
            size_t got = 0;
            if (rc == 0 && (rc = pull(&r, 1, &p, &got)) == 0 && got != 0)
                rc = bad(&r, "%s", "data after the end");
            if (rc == 0 && !manifest_read)
                rc = bad(&r, "%s", "no manifest.json");
            break;
        }
        if (manifest_read) {
            rc = bad(&r, "%s", "a member after manifest.json");
            break;
        }
        char name[BACKUP_NAME_MAX + 1];
        uint64_t size = 0;
        if ((rc = parse_header(&r, block, name, &size)) != 0)
            break;
        if (json_object_get(ps->seen, name) != NULL) {
            rc = bad(&r, "%s", "a second member of the same name");
            break;
        }
        if (json_object_size(ps->seen) >= BACKUP_MEMBERS_MAX) {
            rc = bad(&r, "%s", "too many members");
            break;
        }
        bool is_manifest = strcmp(name, "manifest.json") == 0;
        if (is_manifest && size > BACKUP_MANIFEST_MAX) {
            rc = bad(&r, "%s", "a manifest over the limit");
            break;
        }
        /* A size the file chooses (up to BACKUP_MANIFEST_MAX): a
         * try-allocation. */
        if (is_manifest && (manifest = malloc((size_t)size + 1)) == NULL) {
            rc = bad(&r, "%s", "no memory for the manifest");
            break;
        }
        if (ops && ops->begin && !is_manifest && (rc = ops->begin(ops->ctx, name, size)) != 0)
            break;
        if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
            abort();
        uint64_t done = 0;
        while (rc == 0 && done < size) {
            const uint8_t *p = NULL;
            size_t got = 0;
            size_t want = size - done < CHUNK ? (size_t)(size - done) : CHUNK;
            rc = pull(&r, want, &p, &got);
            if (rc == 0 && got == 0)
                rc = bad(&r, "%s", "the archive is truncated here");
            if (rc != 0)
                break;
            gnutls_hash(h, p, got);
            if (is_manifest)
                memcpy(manifest + done, p, got);
            else if (ops && ops->data)
                rc = ops->data(ops->ctx, p, got);
            done += got;
        }
        uint8_t digest[32];
        gnutls_hash_deinit(h, digest);
        h = NULL;
        size_t pad = (size_t)((512 - size % 512) % 512);
        if (rc == 0)
            rc = read_exact(&r, block, pad);
        if (rc == 0)
            rc = end_frame(&r);
        if (rc != 0)
            break;
        char hex[65];
        hex_encode(digest, sizeof(digest), hex);
        if (is_manifest) {
            rc = check_manifest(&r, ps, manifest, (size_t)size);
            if (rc != 0)
                break;
            manifest_read = true;
            if (sum)
                sum->members++;
            snprintf(r.where, sizeof(r.where), "after manifest.json");
        } else {
            json_object_set_new(ps->seen, name,
                                json_pack("{s:I, s:s}", "size", (json_int_t)size, "sha256", hex));
            if (ops && ops->end && (rc = ops->end(ops->ctx, name, size, hex)) != 0)
                break;
            if (sum) {
                sum->members++;
                sum->raw_bytes += size;
                sum->segments += strncmp(name, "wal/", 4) == 0;
                sum->blobs += strncmp(name, "files/", 6) == 0;
            }
            snprintf(r.where, sizeof(r.where), "the header after member %.100s", name);
        }
    }
    if (rc == 0 && sum) {
        json_t *m = ps->manifest;
        sum->lsn = (uint64_t)json_integer_value(json_object_get(m, "lsn"));
        sum->snapshot_lsn = (uint64_t)json_integer_value(json_object_get(m, "snapshot_lsn"));
        sum->include_files = json_is_true(json_object_get(m, "include_files"));
        sum->bytes = r.read_bytes;
    }
    free(manifest);
    free(r.zin);
    free(r.out);
    ZSTD_freeDCtx(r.d);
    close(r.fd);
    return rc;
}

static void pass_clear(pass_t *ps)
{
    json_decref(ps->seen);
    json_decref(ps->manifest);
    memset(ps, 0, sizeof(*ps));
}

int backup_verify(const char *path, backup_summary_t *sum, char *err, size_t err_size)
{
    pass_t ps = {0};
    backup_summary_t s = {0};
    int rc = read_archive(path, NULL, &ps, &s, err, err_size);
    pass_clear(&ps);
    if (rc == 0 && sum)
        *sum = s;
    return rc;
}

/* ---- restore ---- */

typedef struct extract {
    char root[4096];
    json_t *verified; /* pass one's name -> {size, sha256} */
    int fd;
    bool progress;
    uint64_t members, total, bytes;
    char *err;
    size_t err_size;
} extract_t;

static int sync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Makes the directories of `name` below the root (names are validated:
 * at most three levels, no "." or ".."). */
static int make_parents(extract_t *x, const char *name)
{
    char path[4400];
    for (const char *s = strchr(name, '/'); s != NULL; s = strchr(s + 1, '/')) {
        snprintf(path, sizeof(path), "%s/%.*s", x->root, (int)(s - name), name);
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -errno;
    }
    return 0;
}

static int x_begin(void *ctx, const char *name, uint64_t size)
{
    extract_t *x = ctx;
    (void)size;
    x->fd = -1;
    if (strcmp(name, "settings.json") == 0)
        return 0; /* for reading only: the log and snapshot hold the settings */
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", x->root, name);
    int rc = make_parents(x, name);
    if (rc == 0) {
        x->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (x->fd < 0)
            rc = -errno;
    }
    if (rc != 0)
        snprintf(x->err, x->err_size, "%s: %s", path, strerror(-rc));
    return rc;
}

static int x_data(void *ctx, const uint8_t *p, size_t len)
{
    extract_t *x = ctx;
    while (x->fd >= 0 && len > 0) {
        ssize_t n = write(x->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int rc = -errno;
            snprintf(x->err, x->err_size, "%s: write: %s", x->root, strerror(errno));
            return rc;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int x_end(void *ctx, const char *name, uint64_t size, const char *sha256)
{
    extract_t *x = ctx;
    json_t *v = json_object_get(x->verified, name);
    const char *want = json_string_value(json_object_get(v, "sha256"));
    if (v == NULL || want == NULL || strcmp(want, sha256) != 0 ||
        json_integer_value(json_object_get(v, "size")) != (json_int_t)size) {
        snprintf(x->err, x->err_size, "member %s: changed since it was verified", name);
        return BACKUP_E_FORMAT;
    }
    int rc = 0;
    if (x->fd >= 0) {
        if (fsync(x->fd) != 0)
            rc = -errno;
        close(x->fd);
        x->fd = -1;
        if (rc != 0) {
            snprintf(x->err, x->err_size, "member %s: fsync: %s", name, strerror(-rc));
            return rc;
        }
    }
    x->members++;
    x->bytes += size;
    if (x->progress)
        fprintf(stderr, "\rrestoring: %llu/%llu members, %llu MiB",
                (unsigned long long)x->members, (unsigned long long)x->total,
                (unsigned long long)(x->bytes >> 20));
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* fsyncs every directory of the restored tree, deepest first. */
static int sync_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? sync_path(path) : 0;
}

static bool empty_dir(const char *path, bool *exists)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        *exists = errno != ENOENT;
        return errno == ENOENT;
    }
    *exists = true;
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

int backup_restore(const char *path, const char *target, bool progress, backup_summary_t *sum,
                   char *err, size_t err_size)
{
    bool exists;
    if (!empty_dir(target, &exists)) {
        snprintf(err, err_size, "%s: not an empty directory (a restore never overwrites)",
                 target);
        return BACKUP_E_TARGET;
    }
    pass_t ps = {0};
    backup_summary_t s = {0};
    int rc = read_archive(path, NULL, &ps, &s, err, err_size);
    if (rc != 0) {
        pass_clear(&ps);
        return rc;
    }
    extract_t x = {.verified = ps.seen, .fd = -1, .progress = progress,
                   .total = s.members ? s.members - 1 : 0, /* the manifest is not written */
                   .err = err, .err_size = err_size};
    size_t tlen = strlen(target);
    while (tlen > 1 && target[tlen - 1] == '/')
        tlen--;
    snprintf(x.root, sizeof(x.root), "%.*s.restore-XXXXXX", (int)tlen, target);
    if (mkdtemp(x.root) == NULL) {
        rc = -errno;
        snprintf(err, err_size, "%s: %s", x.root, strerror(errno));
        pass_clear(&ps);
        return rc;
    }
    member_ops_t ops = {x_begin, x_data, x_end, &x};
    pass_t ps2 = {0};
    rc = read_archive(path, &ops, &ps2, NULL, err, err_size);
    if (x.fd >= 0)
        close(x.fd);
    if (progress)
        fprintf(stderr, "\n");
    if (rc == 0 && nftw(x.root, sync_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        rc = -EIO;
        snprintf(err, err_size, "%s: fsync failed", x.root);
    }
    if (rc == 0 && exists && rmdir(target) != 0) {
        rc = -errno;
        snprintf(err, err_size, "%s: %s", target, strerror(errno));
    }
    if (rc == 0 && rename(x.root, target) != 0) {
        rc = -errno;
        snprintf(err, err_size, "%s: %s", target, strerror(errno));
    }
    if (rc == 0) {
        char parent[4096];
        snprintf(parent, sizeof(parent), "%.*s", (int)tlen, target);
        char *slash = strrchr(parent, '/');
        if (slash == parent)
            slash[1] = '\0';
        else if (slash)
            *slash = '\0';
        else
            snprintf(parent, sizeof(parent), ".");
        sync_path(parent);
    } else {
        nftw(x.root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    pass_clear(&ps);
    pass_clear(&ps2);
    if (rc == 0 && sum)
        *sum = s;
    return rc;
}
