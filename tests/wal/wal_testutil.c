/* Helpers shared by the tests of wal/ (see wal_testutil.h). */
#include "wal_testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../wal/wal_format.h"
#include "../test.h"

void tu_tmpdir(char *dir, size_t size, const char *tag)
{
    int n = snprintf(dir, size, "/tmp/parley-wal-%s-XXXXXX", tag);
    if (n < 0 || (size_t)n >= size)
        TEST_FAIL_("directory name too long for %s", tag);
    if (mkdtemp(dir) == NULL)
        TEST_FAIL_("mkdtemp %s: %s", dir, strerror(errno));
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

void tu_rmrf(const char *path)
{
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        TEST_FAIL_("cannot remove %s: %s", path, strerror(errno));
}

void tu_seg_path(char *out, size_t size, const char *dir, uint64_t lsn)
{
    snprintf(out, size, "%s/wal/%020llu.wal", dir, (unsigned long long)lsn);
}

void tu_snap_path(char *out, size_t size, const char *dir, uint64_t lsn, const char *suffix)
{
    snprintf(out, size, "%s/snapshots/%020llu%s", dir, (unsigned long long)lsn, suffix);
}

void tu_seg_name(char *out, size_t size, uint64_t lsn)
{
    snprintf(out, size, "wal/%020llu.wal", (unsigned long long)lsn);
}

void tu_snap_name(char *out, size_t size, uint64_t lsn)
{
    snprintf(out, size, "snapshots/%020llu.snap", (unsigned long long)lsn);
}

uint8_t *tu_read(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        TEST_FAIL_("open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        TEST_FAIL_("stat %s: %s", path, strerror(errno));
    size_t n = (size_t)sb.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        abort();
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            TEST_FAIL_("read %s: %s", path, r < 0 ? strerror(errno) : "short");
        got += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
}

static void write_flags(const char *path, const void *data, size_t len, int flags)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0600);
    if (fd < 0)
        TEST_FAIL_("open %s: %s", path, strerror(errno));
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0)
            TEST_FAIL_("write %s: %s", path, strerror(errno));
        p += w;
        len -= (size_t)w;
    }
    close(fd);
}

void tu_write(const char *path, const void *data, size_t len)
{
    write_flags(path, data, len, O_TRUNC);
}

void tu_append(const char *path, const void *data, size_t len)
{
    write_flags(path, data, len, O_APPEND);
}

void tu_truncate(const char *path, uint64_t len)
{
    if (truncate(path, (off_t)len) != 0)
        TEST_FAIL_("truncate %s: %s", path, strerror(errno));
}

void tu_flip_bit(const char *path, uint64_t byte, int bit)
{
    size_t len;
    uint8_t *d = tu_read(path, &len);
    if (byte >= len)
        TEST_FAIL_("flip at %llu past the end of %s", (unsigned long long)byte, path);
    d[byte] ^= (uint8_t)(1u << bit);
    tu_write(path, d, len);
    free(d);
}

long long tu_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

bool tu_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t tu_list(const char *dir, const char *sub, const char *suffix, uint64_t *out, size_t max)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    size_t n = 0, slen = strlen(suffix);
    uint64_t *all = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != 20 + slen || strcmp(e->d_name + 20, suffix) != 0)
            continue;
        all = realloc(all, (n + 1) * sizeof(*all));
        if (all == NULL)
            abort();
        all[n++] = strtoull(e->d_name, NULL, 10);
    }
    closedir(d);
    if (n > 1)
        qsort(all, n, sizeof(*all), cmp_u64);
    for (size_t i = 0; i < n && i < max; i++)
        out[i] = all[i];
    free(all);
    return n;
}

size_t tu_count_entries(const char *dir, const char *sub)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* ---- trees ---- */

static void tree_add(tu_tree_t *t, const char *root, const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    t->files = realloc(t->files, (t->n + 1) * sizeof(*t->files));
    if (t->files == NULL)
        abort();
    tu_file_t *f = &t->files[t->n++];
    snprintf(f->name, sizeof(f->name), "%s", rel);
    f->data = tu_read(path, &f->len);
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const tu_file_t *)a)->name, ((const tu_file_t *)b)->name);
}

void tu_tree_load(tu_tree_t *t, const char *dir)
{
    memset(t, 0, sizeof(*t));
    DIR *d = opendir(dir);
    if (d == NULL)
        TEST_FAIL_("opendir %s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) != 0)
            TEST_FAIL_("stat %s: %s", path, strerror(errno));
        if (!S_ISDIR(sb.st_mode)) {
            tree_add(t, dir, e->d_name);
            continue;
        }
        DIR *sd = opendir(path);
        if (sd == NULL)
            TEST_FAIL_("opendir %s: %s", path, strerror(errno));
        struct dirent *se;
        while ((se = readdir(sd)) != NULL) {
            if (strcmp(se->d_name, ".") == 0 || strcmp(se->d_name, "..") == 0)
                continue;
            char rel[600];
            snprintf(rel, sizeof(rel), "%s/%s", e->d_name, se->d_name);
            tree_add(t, dir, rel);
        }
        closedir(sd);
    }
    closedir(d);
    if (t->n > 1)
        qsort(t->files, t->n, sizeof(*t->files), cmp_file);
}

void tu_tree_store(const tu_tree_t *t, const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/wal", dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        TEST_FAIL_("mkdir %s: %s", path, strerror(errno));
    snprintf(path, sizeof(path), "%s/snapshots", dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        TEST_FAIL_("mkdir %s: %s", path, strerror(errno));
    for (size_t i = 0; i < t->n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, t->files[i].name);
        tu_write(path, t->files[i].data, t->files[i].len);
    }
}

tu_file_t *tu_tree_get(const tu_tree_t *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->files[i].name, name) == 0)
            return &t->files[i];
    return NULL;
}

bool tu_tree_equal(const tu_tree_t *a, const tu_tree_t *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const tu_file_t *x = &a->files[i], *y = &b->files[i];
        if (strcmp(x->name, y->name) != 0 || x->len != y->len ||
            (x->len && memcmp(x->data, y->data, x->len) != 0))
            return false;
    }
    return true;
}

void tu_tree_free(tu_tree_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->files[i].data);
    free(t->files);
    memset(t, 0, sizeof(*t));
}

/* ---- frames ---- */

size_t tu_frames(const uint8_t *img, size_t len, tu_frame_t *out, size_t max)
{
    size_t n = 0;
    uint64_t off = WALF_FILE_HEADER;
    while (off + WALF_FRAME_HEADER <= len) {
        const uint8_t *h = img + off;
        bool zero = true;
        for (int i = 0; i < WALF_FRAME_HEADER; i++)
            zero = zero && h[i] == 0;
        uint32_t stored = wal__get32(h + 4);
        if (zero || off + WALF_FRAME_HEADER + stored > len)
            break;
        if (n < max) {
            tu_frame_t *f = &out[n];
            f->offset = off;
            f->end = off + WALF_FRAME_HEADER + stored;
            f->stored_len = stored;
            f->first_lsn = wal__get64(h + 8);
            f->count = wal__get32(h + 16);
            f->raw_len = wal__get32(h + 20);
            f->kind = h[24];
            f->flags = h[25];
        }
        n++;
        off += WALF_FRAME_HEADER + stored;
    }
    return n;
}

size_t tu_raw_record(uint8_t *raw, size_t pos, uint8_t type, const void *data, uint32_t len)
{
    wal__put32(raw + pos, len);
    raw[pos + 4] = type;
    raw[pos + 5] = raw[pos + 6] = raw[pos + 7] = 0;
    if (len)
        memcpy(raw + pos + WALF_RECORD_HEADER, data, len);
    return pos + WALF_RECORD_HEADER + len;
}

size_t tu_raw_frame(uint8_t *out, uint64_t first_lsn, uint32_t count, const uint8_t *raw,
                    size_t raw_len, uint8_t kind)
{
    memmove(out + WALF_FRAME_HEADER, raw, raw_len);
    walf_frame_t f = {
        .stored_len = (uint32_t)raw_len,
        .first_lsn = first_lsn,
        .count = count,
        .raw_len = (uint32_t)raw_len,
        .kind = kind,
        .flags = 0,
    };
    wal__frame_header(out, &f);
    return WALF_FRAME_HEADER + raw_len;
}

/* ---- replay ---- */

static void push(tu_rec_t **v, size_t *n, size_t *cap, uint64_t lsn, uint8_t type,
                 const void *data, size_t len)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *v = realloc(*v, *cap * sizeof(**v));
        if (*v == NULL)
            abort();
    }
    tu_rec_t *r = &(*v)[(*n)++];
    r->lsn = lsn;
    r->type = type;
    r->len = len;
    r->data = malloc(len ? len : 1);
    if (r->data == NULL)
        abort();
    if (len)
        memcpy(r->data, data, len);
}

static void free_recs(tu_rec_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].data);
    free(v);
}

static int on_begin(void *ctx, uint64_t lsn)
{
    tu_replay_t *r = ctx;
    if (r->n_begins < sizeof(r->begins) / sizeof(r->begins[0]))
        r->begins[r->n_begins] = lsn;
    r->n_begins++;
    /* The caller must discard what an earlier snapshot loaded. */
    free_recs(r->snap, r->n_snap);
    r->snap = NULL;
    r->n_snap = r->cap_snap = 0;
    return 0;
}

static int on_snap_record(void *ctx, uint8_t type, const void *data, size_t len)
{
    tu_replay_t *r = ctx;
    push(&r->snap, &r->n_snap, &r->cap_snap, 0, type, data, len);
    return 0;
}

static int on_record(void *ctx, uint64_t lsn, uint8_t type, const void *data, size_t len)
{
    tu_replay_t *r = ctx;
    if (r->n > 0 && lsn <= r->recs[r->n - 1].lsn)
        r->out_of_order = true;
    push(&r->recs, &r->n, &r->cap, lsn, type, data, len);
    return 0;
}

wal_replay_t tu_replay(tu_replay_t *r)
{
    wal_replay_t rp = {
        .on_snapshot_begin = on_begin,
        .on_snapshot_record = on_snap_record,
        .on_record = on_record,
        .ctx = r,
    };
    return rp;
}

void tu_replay_free(tu_replay_t *r)
{
    free_recs(r->recs, r->n);
    free_recs(r->snap, r->n_snap);
    memset(r, 0, sizeof(*r));
}

/* ---- options and data ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tu_deadline(void)
{
    return mono_ms() + TU_WAIT_SECONDS * 1000;
}

bool tu_expired(int64_t deadline)
{
    return mono_ms() > deadline;
}

static void log_stderr(void *ctx, int level, const char *message)
{
    (void)ctx;
    fprintf(stderr, "    [wal %d] %s\n", level, message);
}

wal_options_t tu_opts(void)
{
    wal_options_t o;
    memset(&o, 0, sizeof(o));
    if (getenv("WAL_TEST_LOG"))
        o.log = log_stderr;
    return o;
}

uint64_t tu_rand(uint64_t *state)
{
    /* xorshift64* */
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

void tu_fill(uint8_t *buf, size_t len, uint64_t seed, bool compressible)
{
    uint64_t st = seed * 0x9e3779b97f4a7c15ull + 1;
    if (!compressible) {
        size_t i = 0;
        for (; i + 8 <= len; i += 8) {
            uint64_t v = tu_rand(&st);
            memcpy(buf + i, &v, 8);
        }
        if (i < len) {
            uint64_t v = tu_rand(&st);
            memcpy(buf + i, &v, len - i);
        }
        return;
    }
    static const char *words[] = {"hello ", "channel ", "message ", "alice ", "bob ",
                                  "parley ", "the ", "of ", "and ", "42 "};
    size_t i = 0;
    while (i < len) {
        const char *w = words[tu_rand(&st) % 10];
        size_t wl = strlen(w);
        if (wl > len - i)
            wl = len - i;
        memcpy(buf + i, w, wl);
        i += wl;
    }
}

size_t tu_record_payload(char *buf, uint64_t lsn)
{
    /* 12 to about 120 bytes, different for neighbouring records. */
    int pad = (int)((lsn * 37) % 97);
    int n = snprintf(buf, 256, "record %llu %.*s", (unsigned long long)lsn, pad,
                     "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
                     "abcdefghijklmnopqrstuvwxyz");
    return (size_t)n;
}

uint64_t tu_write_records(const char *dir, const wal_options_t *opts, int n)
{
    wal_t *w;
    int rc = wal_open(dir, opts, NULL, &w, NULL);
    if (rc != 0)
        TEST_FAIL_("wal_open %s: %s", dir, wal_strerror(rc));
    uint64_t lsn = 0;
    for (int i = 0; i < n; i++) {
        char buf[256];
        size_t len = tu_record_payload(buf, wal_last_lsn(w) + 1);
        rc = wal_append(w, 7, buf, len, &lsn);
        if (rc == 0)
            rc = wal_wait(w, lsn);
        if (rc != 0)
            TEST_FAIL_("append %d: %s", i, wal_strerror(rc));
    }
    lsn = wal_last_lsn(w);
    rc = wal_close(w);
    if (rc != 0)
        TEST_FAIL_("wal_close: %s", wal_strerror(rc));
    return lsn;
}

void tu_expect_records(const tu_replay_t *r, uint64_t first, uint64_t last)
{
    uint64_t want = last >= first ? last - first + 1 : 0;
    if (r->n != want)
        TEST_FAIL_("replayed %zu records, expected %llu (%llu..%llu)", r->n,
                   (unsigned long long)want, (unsigned long long)first,
                   (unsigned long long)last);
    for (size_t i = 0; i < r->n; i++) {
        char buf[256];
        uint64_t lsn = first + i;
        size_t len = tu_record_payload(buf, lsn);
        const tu_rec_t *x = &r->recs[i];
        if (x->lsn != lsn || x->type != 7 || x->len != len || memcmp(x->data, buf, len) != 0)
            TEST_FAIL_("record %zu: lsn %llu type %u len %zu, expected lsn %llu", i,
                       (unsigned long long)x->lsn, x->type, x->len, (unsigned long long)lsn);
    }
}
