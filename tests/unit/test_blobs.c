/*
 * Content-addressed blobs: round trips of awkward sizes in odd chunks
 * (hash checked against gnutls_hash_fast, bytes read back), deduplication,
 * concurrent uploads of the same bytes (link and no-link paths), the size
 * limit, start-up cleaning of temp files, MIME detection from bytes (also
 * from 8 threads at once), blobs_check on clean, corrupted and littered
 * stores, hash validation against path tricks, and removal.
 *
 * Each test's data directory is made by ut_tmpdir, which removes it when an
 * ASSERT fails; a passing test removes it itself (the harness ends it with
 * _exit).
 * Under AddressSanitizer the tests that load libmagic end with an explicit
 * leak check: the harness ends children with _exit, which skips LSan's own.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "testutil.h"
#include "parley/blobs.h"

/* ---- fixtures ------------------------------------------------------------ */

static char g_dir[64];

/* A fresh data directory (testutil removes it if the test fails). */
static const char *data_dir(void)
{
    ut_tmpdir(g_dir, sizeof(g_dir), "blobs");
    return g_dir;
}

static blobs_t *open_blobs(const char *dir)
{
    char err[256] = "";
    blobs_t *b = blobs_open(dir, err, sizeof(err));
    if (b == NULL)
        TEST_FAIL_("blobs_open: %s", err);
    return b;
}

/* Deterministic bytes (xorshift), different per seed. */
static unsigned char *make_bytes(size_t n, uint64_t seed)
{
    unsigned char *p = malloc(n > 0 ? n : 1);
    ASSERT_NOT_NULL(p);
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
    return p;
}

static void sha_hex(const void *p, size_t n, char out[65])
{
    unsigned char d[32];
    ASSERT_EQ(gnutls_hash_fast(GNUTLS_DIG_SHA256, p, n, d), 0);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Uploads `n` bytes in chunks of odd sizes; returns finish's result. */
static int upload(blobs_t *b, const unsigned char *p, size_t n, blob_info_t *info)
{
    static const size_t chunks[] = {1, 7, 4093, 65537, 16411, 3, 131071};
    blob_writer_t *w;
    int rc = blob_writer_new(b, BLOB_NO_LIMIT, &w);
    if (rc != 0)
        return rc;
    size_t off = 0;
    for (unsigned i = 0; off < n; i++) {
        size_t c = chunks[i % (sizeof(chunks) / sizeof(chunks[0]))];
        if (c > n - off)
            c = n - off;
        rc = blob_writer_write(w, p + off, c);
        if (rc != 0) {
            blob_writer_abort(w);
            return rc;
        }
        off += c;
    }
    return blob_writer_finish(w, info);
}

static unsigned char *read_blob(blobs_t *b, const char *sha, uint64_t *size)
{
    int fd;
    ASSERT_EQ(blobs_open_read(b, sha, &fd, size), 0);
    unsigned char *p = malloc(*size > 0 ? *size : 1);
    ASSERT_NOT_NULL(p);
    size_t got = 0;
    while (got < *size) {
        ssize_t r = read(fd, p + got, *size - got);
        ASSERT_GT(r, 0);
        got += (size_t)r;
    }
    close(fd);
    return p;
}

/* <data dir>/<rel>, in a static buffer (one at a time). */
static const char *in_dir(const char *rel)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", g_dir, rel);
    return path;
}

/* Entries in a directory under the data dir (not . and ..); -1 if absent. */
static int count_entries(const char *rel)
{
    return tu_exists(in_dir(rel)) ? (int)tu_count_entries(g_dir, rel) : -1;
}


/* ---- round trips --------------------------------------------------------- */

TEST(blobs_round_trip_sizes)
{
    const char *dir = data_dir();
    blobs_t *b = open_blobs(dir);
    static const size_t sizes[] = {0, 1, 16383, 16384, 16385, 1 << 20, 20 << 20};
    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        unsigned char *p = make_bytes(n, i + 1);
        char want[65];
        sha_hex(p, n, want);
        blob_info_t info;
        ASSERT_EQ(upload(b, p, n, &info), 0);
        ASSERT_STREQ(info.sha256, want);
        ASSERT_EQ(info.size, n);
        ASSERT_TRUE(!info.deduplicated);
        ASSERT_TRUE(blobs_exists(b, want));

        char path[512], expect[512];
        ASSERT_EQ(blobs_path(b, want, path, sizeof(path)), 0);
        snprintf(expect, sizeof(expect), "%s/files/%.2s/%.2s/%s", dir, want, want + 2, want);
        ASSERT_STREQ(path, expect);
        struct stat st;
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_size, (off_t)n);

        uint64_t size;
        unsigned char *back = read_blob(b, want, &size);
        ASSERT_EQ(size, n);
        ASSERT_TRUE(n == 0 || memcmp(back, p, n) == 0);
        free(back);
        free(p);
        ASSERT_EQ(count_entries("files/tmp"), 0);
    }
    blobs_close(b);
    ut_leak_check();
    ut_rmrf(g_dir);
}

TEST(blobs_directories_are_private)
{
    const char *dir = data_dir();
    blobs_t *b = open_blobs(dir);
    unsigned char x = 'x';
    blob_info_t info;
    ASSERT_EQ(upload(b, &x, 1, &info), 0);
    char path[512];
    struct stat st;
    static const char *const rels[] = {"files", "files/tmp"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, rels[i]);
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_mode & 0777, 0700);
    }
    snprintf(path, sizeof(path), "%s/files/%.2s/%.2s", dir, info.sha256, info.sha256 + 2);
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0700);
    ASSERT_EQ(blobs_path(b, info.sha256, path, sizeof(path)), 0);
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    blobs_close(b);
    ut_rmrf(g_dir);
}

TEST(blobs_type_comes_from_bytes_and_empty_is_reported_as_libmagic_says)
{
    const char *dir = data_dir();
    blobs_t *b = open_blobs(dir);
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                        0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                        0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0,
                                        0x1f, 0x15, 0xc4, 0x89};
    blob_info_t info;
    ASSERT_EQ(upload(b, png, sizeof(png), &info), 0);
    ASSERT_STREQ(info.mime, "image/png");
    ASSERT_EQ(upload(b, NULL, 0, &info), 0);
    ASSERT_STREQ(info.mime, "application/x-empty");
    /* A script past the head: only the first 16 KiB decide (still text). */
    size_t n = 40000;
    unsigned char *p = malloc(n);
    ASSERT_NOT_NULL(p);
    memset(p, 'a', n);
    for (size_t i = 79; i < n; i += 80)
        p[i] = '\n';
    memset(p + 20000, 0, 100);
    ASSERT_EQ(upload(b, p, n, &info), 0);
    ASSERT_STREQ(info.mime, "text/plain");
    free(p);
    blobs_close(b);
    ut_leak_check();
    ut_rmrf(g_dir);
}

/* ---- deduplication ------------------------------------------------------- */

TEST(blobs_same_bytes_stored_once)
{
    data_dir();
    blobs_t *b = open_blobs(g_dir);
    unsigned char *p = make_bytes(100000, 7);
    blob_info_t a, c;
    ASSERT_EQ(upload(b, p, 100000, &a), 0);
    ASSERT_EQ(upload(b, p, 100000, &c), 0);
    ASSERT_TRUE(!a.deduplicated);
    ASSERT_TRUE(c.deduplicated);
    ASSERT_STREQ(a.sha256, c.sha256);
    ASSERT_EQ(c.size, 100000);
    char leaf[16];
    snprintf(leaf, sizeof(leaf), "files/%.2s/%.2s", a.sha256, a.sha256 + 2);
    ASSERT_EQ(count_entries(leaf), 1);
    ASSERT_EQ(count_entries("files/tmp"), 0);
    free(p);
    blobs_close(b);
    ut_rmrf(g_dir);
}

TEST(blobs_damaged_blob_is_replaced_not_deduplicated)
{
    data_dir();
    blobs_t *b = open_blobs(g_dir);
    unsigned char *p = make_bytes(5000, 3);
    char sha[65];
    sha_hex(p, 5000, sha);
    blob_info_t info;
    ASSERT_EQ(upload(b, p, 5000, &info), 0);
    char rel[128];
    snprintf(rel, sizeof(rel), "files/%.2s/%.2s/%s", sha, sha + 2, sha);
    tu_write(in_dir(rel), p, 100); /* torn: a prefix */
    ASSERT_EQ(upload(b, p, 5000, &info), 0);
    ASSERT_TRUE(!info.deduplicated);
    uint64_t size;
    unsigned char *back = read_blob(b, sha, &size);
    ASSERT_EQ(size, 5000);
    ASSERT_EQ(memcmp(back, p, 5000), 0);
    ASSERT_EQ(blobs_check(b, NULL, NULL, NULL), 0);
    free(back);
    free(p);
    blobs_close(b);
    ut_rmrf(g_dir);
}

#define RACERS 8

struct racer {
    blobs_t *b;
    const unsigned char *p;
    size_t n;
    pthread_barrier_t *barrier;
    blob_info_t info;
    int rc;
};

static void *race_upload(void *arg)
{
    struct racer *r = arg;
    blob_writer_t *w;
    r->rc = blob_writer_new(r->b, BLOB_NO_LIMIT, &w);
    if (r->rc != 0)
        return NULL;
    for (size_t off = 0; off < r->n && r->rc == 0; off += 10007)
        r->rc = blob_writer_write(w, r->p + off, r->n - off < 10007 ? r->n - off : 10007);
    /* All finish at once, to collide on the link. */
    pthread_barrier_wait(r->barrier);
    if (r->rc != 0) {
        blob_writer_abort(w);
        return NULL;
    }
    r->rc = blob_writer_finish(w, &r->info);
    return NULL;
}

/* Returns how many racers reported deduplicated == false. */
static int race(blobs_t *b, uint64_t seed)
{
    size_t n = 1 << 20;
    unsigned char *p = make_bytes(n, seed);
    char want[65];
    sha_hex(p, n, want);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, RACERS);
    struct racer r[RACERS];
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++) {
        r[i] = (struct racer){.b = b, .p = p, .n = n, .barrier = &barrier};
        ASSERT_EQ(pthread_create(&t[i], NULL, race_upload, &r[i]), 0);
    }
    int fresh = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(t[i], NULL);
        ASSERT_EQ(r[i].rc, 0);
        ASSERT_STREQ(r[i].info.sha256, want);
        ASSERT_EQ(r[i].info.size, n);
        fresh += !r[i].info.deduplicated;
    }
    pthread_barrier_destroy(&barrier);
    char leaf[16];
    snprintf(leaf, sizeof(leaf), "files/%.2s/%.2s", want, want + 2);
    ASSERT_EQ(count_entries(leaf), 1);
    ASSERT_EQ(count_entries("files/tmp"), 0);
    uint64_t size;
    unsigned char *back = read_blob(b, want, &size);
    ASSERT_EQ(size, n);
    ASSERT_EQ(memcmp(back, p, n), 0);
    free(back);
    free(p);
    return fresh;
}

TEST(blobs_concurrent_same_bytes_one_blob_one_creator)
{
    data_dir();
    blobs_t *b = open_blobs(g_dir);
    /* link(2) creates the name for exactly one of them: the others get
     * EEXIST, so exactly one reports a new blob. */
    for (uint64_t round = 0; round < 4; round++)
        ASSERT_EQ(race(b, 100 + round), 1);
    ASSERT_EQ(blobs_check(b, NULL, NULL, NULL), 0);
    blobs_close(b);
    ut_leak_check(); /* the racers' thread-local magic_t were freed at exit */
    ut_rmrf(g_dir);
}

TEST(blobs_concurrent_same_bytes_without_hard_links)
{
    data_dir();
    blobs_t *b = open_blobs(g_dir);
    blobs__test_disable_links(b, true);
    /* Without link(2) the fallback is stat, then rename over: racers that all
     * see "absent" each rename (atomically replacing identical bytes), so
     * several may report a new blob. One blob, correct bytes, >= 1 creator. */
    for (uint64_t round = 0; round < 4; round++)
        ASSERT_GE(race(b, 200 + round), 1);
    unsigned char *p = make_bytes(1 << 20, 200);
    blob_info_t info;
    ASSERT_EQ(upload(b, p, 1 << 20, &info), 0);
    ASSERT_TRUE(info.deduplicated);
    free(p);
    ASSERT_EQ(blobs_check(b, NULL, NULL, NULL), 0);
    blobs_close(b);
    ut_rmrf(g_dir);
}

/* ---- limits and clean-up ------------------------------------------------- */

TEST(blobs_size_limit_checked_while_streaming)
{
    data_dir();
    blobs_t *b = open_blobs(g_dir);
    unsigned char *p = make_bytes(2000, 9);
    blob_writer_t *w;
    ASSERT_EQ(blob_writer_new(b, 1000, &w), 0);
    ASSERT_EQ(count_entries("files/tmp"), 1);
    ASSERT_EQ(blob_writer_write(w, p, 600), 0);
    ASSERT_EQ(blob_writer_write(w, p + 600, 401), BLOB_E_TOO_LARGE);
    ASSERT_EQ(blob_writer_write(w, p + 600, 1), BLOB_E_FAILED); /* sticky */
    /* Nothing of the refused chunk reached the disk. */
    struct dirent *e;
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%s/files/tmp", g_dir);
    DIR *d = opendir(tmp);
    ASSERT_NOT_NULL(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        struct stat st;
        ASSERT_EQ(fstatat(dirfd(d), e->d_name, &st, 0), 0);
        ASSERT_EQ(st.st_size, 600);
    }
    closedir(d);
    blob_writer_abort(w);
    ASSERT_EQ(count_entries("files/tmp"), 0);

    /* Exactly max_bytes is fine. */
    blob_info_t info;
    ASSERT_EQ(blob_writer_new(b, 1000, &w), 0);
    ASSERT_EQ(blob_writer_write(w, p, 999), 0);
    ASSERT_EQ(blob_writer_write(w, p + 999, 1), 0);
    ASSERT_EQ(blob_writer_finish(w, &info), 0);
    ASSERT_EQ(info.size, 1000);

    /* finish after a refusal fails with the refusal and cleans up. */
    ASSERT_EQ(blob_writer_new(b, 10, &w), 0);
    ASSERT_EQ(blob_writer_write(w, p, 11), BLOB_E_TOO_LARGE);
    ASSERT_EQ(blob_writer_finish(w, &info), BLOB_E_TOO_LARGE);
    ASSERT_EQ(count_entries("files/tmp"), 0);
    blob_writer_abort(NULL);
    free(p);
    blobs_close(b);
    ut_leak_check();
    ut_rmrf(g_dir);
}

TEST(blobs_open_removes_leftover_temp_files)
{
    data_dir();
    blobs_t *b = open_blobs(g_dir);
    ASSERT_EQ(blobs_stale_removed(b), 0);
    /* A process dies in the middle of two uploads. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        blob_writer_t *w1, *w2;
        if (blob_writer_new(b, BLOB_NO_LIMIT, &w1) != 0 ||
            blob_writer_new(b, BLOB_NO_LIMIT, &w2) != 0 ||
            blob_writer_write(w1, "half an upload", 14) != 0)
            _exit(1);
        _exit(0);
    }
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    tu_write(in_dir("files/tmp/odd name"), "y", 1);
    ASSERT_EQ(count_entries("files/tmp"), 3);
    blobs_close(b);

    b = open_blobs(g_dir);
    ASSERT_EQ(blobs_stale_removed(b), 3);
    ASSERT_EQ(count_entries("files/tmp"), 0);
    blobs_close(b);
    ut_rmrf(g_dir);
}

TEST(blobs_open_fails_cleanly)
{
    char err[256] = "";
    ASSERT_NULL(blobs_open("/nonexistent/parley/data", err, sizeof(err)));
    ASSERT_CONTAINS(err, "/nonexistent/parley/data");
    data_dir();
    tu_write(in_dir("files"), "not a directory", 15);
    ASSERT_NULL(blobs_open(g_dir, err, sizeof(err)));
    ASSERT_CONTAINS(err, "files");
    blobs_close(NULL);
    ut_rmrf(g_dir);
}

/* ---- MIME detection ------------------------------------------------------ */

static const unsigned char png_head[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                         0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                         0, 0, 0, 16, 0, 0, 0, 16, 8, 2, 0, 0, 0,
                                         0x90, 0x91, 0x68, 0x36};
static const unsigned char jpeg_head[] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F',
                                          0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xff, 0xdb, 0, 0x43, 0};
static const char sh_head[] = "#!/bin/sh\nset -e\necho hello\nexit 0\n";
static const char pdf_head[] =
    "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    "2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";
static const char text_head[] =
    "Meeting notes\n\nThe upload path streams to disk and hashes as it goes.\n";

static unsigned char elf_head[4096];
static size_t elf_len;

static void load_elf(void)
{
    int fd = open("/bin/true", O_RDONLY);
    ASSERT_GE(fd, 0);
    ssize_t n = read(fd, elf_head, sizeof(elf_head));
    ASSERT_GT(n, 64);
    elf_len = (size_t)n;
    close(fd);
}

static bool is_elf_type(const char *t)
{
    return strcmp(t, "application/x-executable") == 0 ||
           strcmp(t, "application/x-pie-executable") == 0 ||
           strcmp(t, "application/x-sharedlib") == 0;
}

/* Checks every sample once; returns the number of wrong answers. */
static int check_samples(void)
{
    char t[BLOB_MIME_MAX];
    int wrong = 0;
    wrong += blobs_detect_mime(png_head, sizeof(png_head), t, sizeof(t)) != 0 ||
             strcmp(t, "image/png") != 0;
    wrong += blobs_detect_mime(jpeg_head, sizeof(jpeg_head), t, sizeof(t)) != 0 ||
             strcmp(t, "image/jpeg") != 0;
    wrong += blobs_detect_mime(sh_head, strlen(sh_head), t, sizeof(t)) != 0 ||
             strcmp(t, "text/x-shellscript") != 0;
    wrong += blobs_detect_mime(elf_head, elf_len, t, sizeof(t)) != 0 || !is_elf_type(t);
    wrong += blobs_detect_mime(pdf_head, strlen(pdf_head), t, sizeof(t)) != 0 ||
             strcmp(t, "application/pdf") != 0;
    wrong += blobs_detect_mime(text_head, strlen(text_head), t, sizeof(t)) != 0 ||
             strcmp(t, "text/plain") != 0;
    wrong += blobs_detect_mime("", 0, t, sizeof(t)) != 0 ||
             strcmp(t, "application/x-empty") != 0;
    return wrong;
}

TEST(blobs_detect_mime_from_bytes)
{
    load_elf();
    char t[BLOB_MIME_MAX];
    ASSERT_EQ(blobs_detect_mime(png_head, sizeof(png_head), t, sizeof(t)), 0);
    ASSERT_STREQ(t, "image/png");
    ASSERT_EQ(blobs_detect_mime(jpeg_head, sizeof(jpeg_head), t, sizeof(t)), 0);
    ASSERT_STREQ(t, "image/jpeg");
    ASSERT_EQ(blobs_detect_mime(sh_head, strlen(sh_head), t, sizeof(t)), 0);
    ASSERT_STREQ(t, "text/x-shellscript");
    ASSERT_EQ(blobs_detect_mime(elf_head, elf_len, t, sizeof(t)), 0);
    if (!is_elf_type(t))
        TEST_FAIL_("ELF detected as %s", t);
    ASSERT_EQ(blobs_detect_mime(pdf_head, strlen(pdf_head), t, sizeof(t)), 0);
    ASSERT_STREQ(t, "application/pdf");
    ASSERT_EQ(blobs_detect_mime(text_head, strlen(text_head), t, sizeof(t)), 0);
    ASSERT_STREQ(t, "text/plain");
    /* Zero bytes: libmagic's own answer, reported as is. */
    ASSERT_EQ(blobs_detect_mime("", 0, t, sizeof(t)), 0);
    ASSERT_STREQ(t, "application/x-empty");
    ASSERT_EQ(blobs_detect_mime(NULL, 0, t, sizeof(t)), 0);
    ASSERT_STREQ(t, "application/x-empty");
    /* A buffer too small for the answer. */
    char small[4];
    ASSERT_EQ(blobs_detect_mime(png_head, sizeof(png_head), small, sizeof(small)), -ERANGE);
    ASSERT_STREQ(small, "");
    ASSERT_EQ(check_samples(), 0);
    blobs_thread_cleanup();
    blobs_thread_cleanup(); /* twice is harmless */
    ut_leak_check();
}

static void *mime_thread(void *arg)
{
    int *wrong = arg;
    for (int i = 0; i < 25; i++)
        *wrong += check_samples();
    return NULL; /* the thread-local magic_t is freed by the key destructor */
}

TEST(blobs_detect_mime_from_eight_threads)
{
    load_elf();
    pthread_t t[8];
    int wrong[8] = {0};
    for (int i = 0; i < 8; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, mime_thread, &wrong[i]), 0);
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ASSERT_EQ(wrong[i], 0);
    }
    ut_leak_check();
}

/* ---- verification -------------------------------------------------------- */

struct problems {
    int n;
    char paths[16][256];
    char what[16][256];
};

static void collect(void *ctx, const char *path, const char *problem)
{
    struct problems *p = ctx;
    if (p->n < 16) {
        snprintf(p->paths[p->n], sizeof(p->paths[0]), "%s", path);
        snprintf(p->what[p->n], sizeof(p->what[0]), "%s", problem);
    }
    p->n++;
}

static int find_problem(const struct problems *p, const char *path_part, const char *what_part)
{
    for (int i = 0; i < p->n && i < 16; i++)
        if (strstr(p->paths[i], path_part) && strstr(p->what[i], what_part))
            return 1;
    return 0;
}

TEST(blobs_check_reports_corruption_and_strays)
{
    data_dir();
    blobs_t *b = open_blobs(g_dir);
    blob_info_t info[3];
    for (int i = 0; i < 3; i++) {
        unsigned char *p = make_bytes(30000 + (size_t)i, 50 + (uint64_t)i);
        ASSERT_EQ(upload(b, p, 30000 + (size_t)i, &info[i]), 0);
        free(p);
    }
    /* A live upload's temp file is not a problem. */
    blob_writer_t *w;
    ASSERT_EQ(blob_writer_new(b, BLOB_NO_LIMIT, &w), 0);
    ASSERT_EQ(blob_writer_write(w, "abc", 3), 0);

    struct problems pr = {0};
    uint64_t n = 0;
    ASSERT_EQ(blobs_check(b, collect, &pr, &n), 0);
    ASSERT_EQ(pr.n, 0);
    ASSERT_EQ(n, 3);

    /* Flip one byte of a blob. */
    char path[512];
    ASSERT_EQ(blobs_path(b, info[0].sha256, path, sizeof(path)), 0);
    int fd = open(path, O_RDWR);
    ASSERT_GE(fd, 0);
    unsigned char c;
    ASSERT_EQ(pread(fd, &c, 1, 12345), 1);
    c ^= 0x01;
    ASSERT_EQ(pwrite(fd, &c, 1, 12345), 1);
    close(fd);
    pr.n = 0;
    ASSERT_EQ(blobs_check(b, collect, &pr, &n), 1);
    ASSERT_TRUE(find_problem(&pr, info[0].sha256, "hash mismatch"));
    ASSERT_EQ(n, 3);

    /* Strays: a junk file in a leaf, a blob in the wrong directory, a file
     * in files/, an uppercase directory, a symlink named like a blob. */
    char rel[256];
    const char *s1 = info[1].sha256, *s2 = info[2].sha256;
    snprintf(rel, sizeof(rel), "files/%.2s/%.2s/junk.txt", s1, s1 + 2);
    tu_write(in_dir(rel), "j", 1);
    char other[3] = {s1[2] == 'f' ? '0' : 'f', s1[3], 0}; /* a leaf that is not s1's */
    snprintf(rel, sizeof(rel), "%s/files/%.2s/%s", g_dir, s1, other);
    ASSERT_EQ(mkdir(rel, 0700), 0);
    snprintf(rel, sizeof(rel), "files/%.2s/%s/%s", s1, other, s1);
    tu_write(in_dir(rel), "wrong place", 11);
    tu_write(in_dir("files/README"), "r", 1);
    snprintf(rel, sizeof(rel), "%s/files/AB", g_dir);
    ASSERT_EQ(mkdir(rel, 0700), 0);
    char target[512], link_path[512], name[65];
    ASSERT_EQ(blobs_path(b, s2, target, sizeof(target)), 0);
    snprintf(name, sizeof(name), "%.4s%060d", s2, 0);
    snprintf(link_path, sizeof(link_path), "%s/files/%.2s/%.2s/%s", g_dir, s2, s2 + 2, name);
    ASSERT_EQ(symlink(target, link_path), 0);

    pr.n = 0;
    ASSERT_EQ(blobs_check(b, collect, &pr, &n), 6);
    ASSERT_EQ(pr.n, 6);
    ASSERT_TRUE(find_problem(&pr, info[0].sha256, "hash mismatch"));
    ASSERT_TRUE(find_problem(&pr, "junk.txt", "not a lowercase SHA-256"));
    ASSERT_TRUE(find_problem(&pr, other, "wrong directory"));
    ASSERT_TRUE(find_problem(&pr, "files/README", "stray"));
    ASSERT_TRUE(find_problem(&pr, "files/AB", "stray"));
    ASSERT_TRUE(find_problem(&pr, name, "not a regular file"));
    ASSERT_EQ(n, 3);
    ASSERT_EQ(blobs_check(b, NULL, NULL, NULL), 6);

    blob_writer_abort(w);
    blobs_close(b);
    ut_rmrf(g_dir);
}

/* ---- hashes as names ----------------------------------------------------- */

TEST(blobs_refuse_bad_hashes)
{
    data_dir();
    blobs_t *b = open_blobs(g_dir);
    static const char *const bad[] = {
        "../..",
        "../../../../../../../../../../../../../../../../../../etc/passwd",
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
        "g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "e3/0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "",
    };
    char path[512];
    int fd;
    uint64_t size;
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT_EQ(blobs_path(b, bad[i], path, sizeof(path)), BLOB_E_BAD_HASH);
        ASSERT_EQ(blobs_open_read(b, bad[i], &fd, &size), BLOB_E_BAD_HASH);
        ASSERT_EQ(blobs_remove(b, bad[i]), BLOB_E_BAD_HASH);
        ASSERT_TRUE(!blobs_exists(b, bad[i]));
    }
    ASSERT_EQ(blobs_path(b, NULL, path, sizeof(path)), BLOB_E_BAD_HASH);
    ASSERT_TRUE(!blobs_exists(b, NULL));
    const char *ok = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    ASSERT_EQ(blobs_path(b, ok, path, sizeof(path)), 0);
    ASSERT_EQ(blobs_path(b, ok, path, 20), -ENAMETOOLONG);
    ASSERT_EQ(blobs_open_read(b, ok, &fd, &size), -ENOENT);
    blobs_close(b);
    ut_rmrf(g_dir);
}

TEST(blobs_remove_then_gone)
{
    data_dir();
    blobs_t *b = open_blobs(g_dir);
    blob_info_t info;
    ASSERT_EQ(upload(b, (const unsigned char *)"hello", 5, &info), 0);
    ASSERT_TRUE(blobs_exists(b, info.sha256));
    ASSERT_EQ(blobs_remove(b, info.sha256), 0);
    ASSERT_TRUE(!blobs_exists(b, info.sha256));
    int fd;
    uint64_t size;
    ASSERT_EQ(blobs_open_read(b, info.sha256, &fd, &size), -ENOENT);
    ASSERT_EQ(blobs_remove(b, info.sha256), 0); /* ENOENT is fine */
    /* A hash whose directories were never made. */
    ASSERT_EQ(blobs_remove(b, "0000000000000000000000000000000000000000000000000000000000000000"),
              0);
    /* Uploading again stores it afresh. */
    ASSERT_EQ(upload(b, (const unsigned char *)"hello", 5, &info), 0);
    ASSERT_TRUE(!info.deduplicated);
    ASSERT_EQ(blobs_check(b, NULL, NULL, NULL), 0);
    blobs_close(b);
    ut_rmrf(g_dir);
}
