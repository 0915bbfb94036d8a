/*
 * Benchmark of wal/ (make bench-wal; figures in docs/benchmarks.md):
 *
 *   1. the raw rate of the disk: write(200 bytes) + fdatasync() in a loop on
 *      one appended file for about 2 s: what one durable write per request
 *      would reach;
 *   2. durable appends per second under fsync `always` with 1, 8 and 64
 *      threads, each looping wal_append(chat-like JSON) + wal_wait for about
 *      3 s, beside that raw rate (group commit: one write and one fdatasync
 *      carry every record that arrived meanwhile), with the latency from
 *      append to durable (p50, p99) and the records carried per fdatasync;
 *   3. the compression ratio on 100k chat-like JSON message records appended
 *      by 8 threads: raw JSON bytes / bytes of the segment files, with the
 *      library's default (one zstd stream per segment, flushed per batch),
 *      with compression off, and what compressing each record on its own
 *      (ZSTD_compress level 1) would give: the design note in wal/wal.c.
 *
 * Everything runs in one process in one directory on the project's disk
 * (build/bench-wal/ by default, argv[1] to choose), removed at the end, so
 * the raw rate and the log share the same disk, cache and moment. It prints
 * one table, with a column that says whether each goal of the issue is met
 * (64 appenders >= 10x the raw fsync rate; chat records shrink >= 3x); it
 * exits 0 either way: benchmarks report, tests verify.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "wal.h"

#define RAW_SECONDS 2.0
#define APPEND_SECONDS 3.0
#define COMPRESS_RECORDS 100000
#define COMPRESS_THREADS 8
#define REC_TYPE 1

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "wal_bench: %s: %s\n", what, wal_strerror(rc));
    exit(1);
}

static void die_errno(const char *what)
{
    fprintf(stderr, "wal_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- chat-like records ------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

/* About 300 words of everyday chat; drawn with a skew so that a few are
 * common and most are rare, as in real messages. */
static const char *const vocab[] = {
    "the", "I", "you", "it", "to", "a", "and", "is", "that", "we", "of", "in", "for", "on",
    "this", "be", "have", "not", "with", "just", "do", "so", "can", "but", "are", "was", "my",
    "what", "at", "if", "me", "will", "all", "they", "think", "about", "get", "know", "yeah",
    "like", "one", "there", "no", "ok", "up", "out", "it's", "from", "now", "would", "should",
    "time", "good", "an", "or", "I'm", "see", "how", "when", "then", "need", "go", "our",
    "today", "thanks", "tomorrow", "meeting", "deploy", "build", "release", "test", "tests",
    "fix", "bug", "branch", "merge", "review", "PR", "ticket", "issue", "server", "client",
    "database", "query", "index", "cache", "latency", "log", "logs", "error", "errors",
    "warning", "crash", "restart", "config", "setting", "flag", "feature", "rollout", "staging",
    "production", "prod", "dev", "local", "docker", "image", "container", "cluster", "node",
    "disk", "memory", "CPU", "network", "timeout", "retry", "queue", "worker", "job", "cron",
    "backup", "snapshot", "restore", "migration", "schema", "table", "column", "row", "field",
    "API", "endpoint", "request", "response", "header", "token", "auth", "login", "password",
    "user", "users", "team", "channel", "thread", "message", "reply", "ping", "call", "doc",
    "docs", "wiki", "spec", "design", "plan", "roadmap", "sprint", "standup", "demo", "slides",
    "customer", "support", "sales", "invoice", "contract", "budget", "week", "month", "Monday",
    "Tuesday", "Wednesday", "Thursday", "Friday", "morning", "afternoon", "evening", "lunch",
    "coffee", "break", "sorry", "late", "soon", "later", "again", "still", "already", "maybe",
    "probably", "sure", "great", "nice", "cool", "awesome", "weird", "strange", "broken",
    "working", "done", "ready", "blocked", "waiting", "looking", "checking", "trying", "running",
    "seems", "looks", "works", "fails", "failed", "passed", "green", "red", "flaky", "slow",
    "fast", "faster", "slower", "bigger", "smaller", "more", "less", "some", "any", "every",
    "each", "other", "another", "same", "different", "new", "old", "first", "last", "next",
    "before", "after", "because", "since", "until", "while", "where", "why", "which", "who",
    "could", "might", "must", "let's", "let", "me", "us", "them", "him", "her", "his", "their",
    "here", "over", "under", "into", "through", "around", "again", "also", "only", "very",
    "really", "quite", "pretty", "too", "much", "many", "few", "lot", "bit", "thing", "things",
    "stuff", "way", "idea", "question", "answer", "problem", "solution", "change", "changes",
    "update", "version", "number", "list", "file", "files", "folder", "link", "screenshot",
    "attached", "sent", "shared", "posted", "wrote", "read", "saw", "heard", "told", "asked",
    "said", "make", "made", "take", "took", "give", "gave", "put", "keep", "start", "stop",
    "open", "close", "move", "push", "pull", "ship", "land", "revert", "rebase", "squash",
    ":)", ":(", "lol", "+1", "?", "!", "...", "btw", "fyi", "afaik", "imo", "tbh", "thx", "np",
};
#define VOCAB_N (sizeof(vocab) / sizeof(vocab[0]))

typedef struct records {
    char **rec;
    size_t *len;
    size_t n;
    uint64_t raw_bytes;
} records_t;

static void gen_records(records_t *r, size_t n)
{
    r->rec = calloc(n, sizeof(*r->rec));
    r->len = calloc(n, sizeof(*r->len));
    if (r->rec == NULL || r->len == NULL)
        abort();
    r->n = n;
    r->raw_bytes = 0;
    uint64_t s = 20261121;
    uint64_t id = 11630412345678901234ull; /* snowflake-like: time bits + sequence */
    uint64_t ms = 0;
    for (size_t i = 0; i < n; i++) {
        ms += 1 + rng_next(&s) % 900;
        id += 1 + (rng_next(&s) % 4096) * 64;
        char content[1024];
        size_t cl = 0;
        int words = 8 + (int)(rng_next(&s) % 33);
        for (int k = 0; k < words; k++) {
            double u = rng_unit(&s);
            const char *wd = vocab[(size_t)((double)VOCAB_N * u * u * u)];
            cl += (size_t)snprintf(content + cl, sizeof(content) - cl, "%s%s", k ? " " : "", wd);
        }
        double u = rng_unit(&s);
        unsigned channel = 1 + (unsigned)(60.0 * u * u);
        u = rng_unit(&s);
        unsigned user = 1 + (unsigned)(800.0 * u * u);
        char reply[32] = "null", mentions[32] = "[]", attach[128] = "[]";
        uint64_t x = rng_next(&s);
        if (x % 10 == 0)
            snprintf(reply, sizeof(reply), "\"%020llu\"",
                     (unsigned long long)(id - 64 * (1 + (x >> 8) % 5000)));
        if ((x >> 20) % 8 == 0)
            snprintf(mentions, sizeof(mentions), "[\"u_%u\"]", 1 + (unsigned)((x >> 24) % 800));
        if ((x >> 36) % 25 == 0)
            snprintf(attach, sizeof(attach),
                     "[{\"id\":\"f_%llu\",\"name\":\"screenshot.png\",\"size\":%u}]",
                     (unsigned long long)(x >> 40), 20000 + (unsigned)((x >> 8) % 900000));
        uint64_t t = ms;
        char buf[2048];
        int len = snprintf(
            buf, sizeof(buf),
            "{\"v\":1,\"op\":\"message.put\",\"id\":\"%020llu\",\"channel_id\":\"ch_%u\","
            "\"user_id\":\"u_%u\",\"content\":\"%s\",\"created_at\":\"2026-11-21T%02u:%02u:%02u."
            "%03uZ\",\"reply_to\":%s,\"mentions\":%s,\"attachments\":%s}",
            (unsigned long long)id, channel, user, content,
            (unsigned)(20 + t / 3600000) % 24, (unsigned)(t / 60000 % 60),
            (unsigned)(t / 1000 % 60), (unsigned)(t % 1000), reply, mentions, attach);
        r->rec[i] = strdup(buf);
        if (r->rec[i] == NULL)
            abort();
        r->len[i] = (size_t)len;
        r->raw_bytes += (uint64_t)len;
    }
}

static void free_records(records_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->rec[i]);
    free(r->rec);
    free(r->len);
}

/* ---- directories ---------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT)
        fprintf(stderr, "wal_bench: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

static void remove_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void fresh_dir(const char *path)
{
    remove_tree(path);
    if (mkdir(path, 0700) != 0)
        die_errno(path);
}

/* Bytes of every file in <dir>/wal/ (the segments) as stored. */
static uint64_t segment_bytes(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/wal", dir);
    DIR *d = opendir(path);
    if (d == NULL)
        die_errno(path);
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char file[4500];
        struct stat sb;
        snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
        if (stat(file, &sb) == 0 && S_ISREG(sb.st_mode))
            total += (uint64_t)sb.st_size;
    }
    closedir(d);
    return total;
}

/* ---- 1. raw write + fdatasync ------------------------------------------- */

static double raw_rate(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/raw.dat", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        die_errno(path);
    char buf[200];
    memset(buf, 'r', sizeof(buf));
    uint64_t n = 0;
    double start = now_s(), t;
    do {
        if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
            die_errno("write");
        if (fdatasync(fd) != 0)
            die_errno("fdatasync");
        n++;
        t = now_s();
    } while (t - start < RAW_SECONDS);
    close(fd);
    unlink(path);
    return (double)n / (t - start);
}

/* ---- 2. durable appends ----------------------------------------------------- */

/* The log's writer does its I/O through these, to count and time it. */
static atomic_ulong sync_calls;
static atomic_ulong sync_ns, write_ns;

static ssize_t io_write(int fd, const void *buf, size_t len)
{
    uint64_t t0 = now_ns();
    ssize_t n = write(fd, buf, len);
    atomic_fetch_add(&write_ns, now_ns() - t0);
    return n;
}

static int io_fdatasync(int fd)
{
    uint64_t t0 = now_ns();
    int rc = fdatasync(fd);
    atomic_fetch_add(&sync_ns, now_ns() - t0);
    atomic_fetch_add(&sync_calls, 1);
    return rc;
}

static const wal_io_t counting_io = {io_write, io_fdatasync};

typedef struct appender {
    wal_t *w;
    const records_t *recs;
    size_t next;          /* this thread's next record (stride = threads) */
    size_t stride;
    atomic_bool *stop;
    uint64_t done;        /* appends made durable before stop */
    uint64_t *lat;        /* ns from append to durable, one per append */
    size_t n_lat, cap_lat;
    size_t limit;         /* stop after this many (0: until *stop) */
} appender_t;

static void *appender_main(void *arg)
{
    appender_t *a = arg;
    while (!atomic_load(a->stop) && (a->limit == 0 || a->done < a->limit)) {
        size_t i = a->next % a->recs->n;
        a->next += a->stride;
        uint64_t t0 = now_ns(), lsn;
        int rc = wal_append(a->w, REC_TYPE, a->recs->rec[i], a->recs->len[i], &lsn);
        if (rc != 0)
            die("wal_append", rc);
        rc = wal_wait(a->w, lsn);
        if (rc != 0)
            die("wal_wait", rc);
        uint64_t dt = now_ns() - t0;
        if (atomic_load(a->stop))
            break; /* finished after the window: not counted */
        if (a->n_lat == a->cap_lat) {
            a->cap_lat = a->cap_lat ? a->cap_lat * 2 : 4096;
            a->lat = realloc(a->lat, a->cap_lat * sizeof(*a->lat));
            if (a->lat == NULL)
                abort();
        }
        a->lat[a->n_lat++] = dt;
        a->done++;
    }
    return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

typedef struct run_result {
    double per_s;
    double p50_us, p99_us;
    double per_sync; /* records per fdatasync */
    double sync_us;  /* mean fdatasync inside the log */
    double io_share; /* share of the time the writer spent in write + fdatasync */
    uint64_t appends;
    double seconds;
} run_result_t;

/*
 * Runs `threads` appenders on a fresh log in <base>/<name>: for `seconds`
 * (limit 0) or until each has made `limit` appends durable.
 */
static run_result_t run_appenders(const char *base, const char *name, const records_t *recs,
                                  unsigned threads, double seconds, size_t limit,
                                  int compression_level, uint64_t *disk_bytes)
{
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", base, name) >= sizeof(dir))
        die("directory name", WAL_E_ARG);
    fresh_dir(dir);
    wal_options_t opts = {.fsync = WAL_FSYNC_ALWAYS,
                          .compression_level = compression_level,
                          .io = &counting_io};
    wal_t *w;
    int rc = wal_open(dir, &opts, NULL, &w, NULL);
    if (rc != 0)
        die("wal_open", rc);
    atomic_bool stop = false;
    appender_t *a = calloc(threads, sizeof(*a));
    pthread_t *tid = calloc(threads, sizeof(*tid));
    if (a == NULL || tid == NULL)
        abort();
    atomic_store(&sync_calls, 0);
    atomic_store(&sync_ns, 0);
    atomic_store(&write_ns, 0);
    double start = now_s();
    for (unsigned i = 0; i < threads; i++) {
        a[i] = (appender_t){.w = w, .recs = recs, .next = i, .stride = threads, .stop = &stop,
                            .limit = limit};
        if (pthread_create(&tid[i], NULL, appender_main, &a[i]) != 0)
            die_errno("pthread_create");
    }
    double end;
    if (limit == 0) {
        struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
        nanosleep(&ts, NULL);
        atomic_store(&stop, true);
    } else {
        for (unsigned i = 0; i < threads; i++)
            pthread_join(tid[i], NULL);
    }
    end = now_s();
    unsigned long syncs = atomic_load(&sync_calls);
    uint64_t in_sync = atomic_load(&sync_ns), in_io = in_sync + atomic_load(&write_ns);
    if (limit == 0)
        for (unsigned i = 0; i < threads; i++)
            pthread_join(tid[i], NULL);
    rc = wal_close(w);
    if (rc != 0)
        die("wal_close", rc);

    run_result_t r = {.seconds = end - start};
    size_t n_lat = 0;
    for (unsigned i = 0; i < threads; i++) {
        r.appends += a[i].done;
        n_lat += a[i].n_lat;
    }
    uint64_t *lat = malloc((n_lat ? n_lat : 1) * sizeof(*lat));
    if (lat == NULL)
        abort();
    size_t k = 0;
    for (unsigned i = 0; i < threads; i++) {
        memcpy(lat + k, a[i].lat, a[i].n_lat * sizeof(*lat));
        k += a[i].n_lat;
        free(a[i].lat);
    }
    qsort(lat, n_lat, sizeof(*lat), cmp_u64);
    if (n_lat > 0) {
        r.p50_us = (double)lat[n_lat / 2] / 1e3;
        r.p99_us = (double)lat[n_lat * 99 / 100] / 1e3;
    }
    free(lat);
    r.per_s = (double)r.appends / r.seconds;
    /* The writer also syncs when it creates a segment: one per open here. */
    r.per_sync = syncs > 1 ? (double)r.appends / (double)(syncs - 1) : 0;
    r.sync_us = syncs ? (double)in_sync / 1e3 / (double)syncs : 0;
    r.io_share = (double)in_io / 1e9 / r.seconds;
    if (disk_bytes)
        *disk_bytes = segment_bytes(dir);
    free(a);
    free(tid);
    remove_tree(dir);
    return r;
}

/* ---- 3. compression ------------------------------------------------------- */

/* Raw bytes / the sum of each record compressed alone (ZSTD_compress level 1). */
static double per_record_ratio(const records_t *r)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    if (c == NULL)
        abort();
    size_t cap = ZSTD_compressBound(4096);
    void *out = malloc(cap);
    if (out == NULL)
        abort();
    uint64_t total = 0;
    for (size_t i = 0; i < r->n; i++) {
        size_t n = ZSTD_compressCCtx(c, out, cap, r->rec[i], r->len[i], 1);
        if (ZSTD_isError(n)) {
            fprintf(stderr, "wal_bench: ZSTD_compress: %s\n", ZSTD_getErrorName(n));
            exit(1);
        }
        total += n;
    }
    free(out);
    ZSTD_freeCCtx(c);
    return (double)r->raw_bytes / (double)total;
}

/* ---- the table ------------------------------------------------------------ */

static void fmt_int(char *out, size_t size, double v)
{
    unsigned long long n = (unsigned long long)(v + 0.5);
    char digits[32];
    int len = snprintf(digits, sizeof(digits), "%llu", n);
    size_t o = 0;
    for (int i = 0; i < len && o + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

typedef struct cells {
    char what[64], value[32], x[16], p50[16], p99[16], per_sync[16], sync[16], io[16], goal[40];
} cells_t;

static void row(const cells_t *c)
{
    printf("| %-43s | %10s | %5s | %6s | %6s | %8s | %7s | %6s | %-24s |\n", c->what, c->value,
           c->x, c->p50, c->p99, c->per_sync, c->sync, c->io, c->goal);
}

static void run_row(const char *what, const run_result_t *r, double raw, const char *goal)
{
    cells_t c = {0};
    snprintf(c.what, sizeof(c.what), "%s", what);
    fmt_int(c.value, sizeof(c.value), r->per_s);
    snprintf(c.x, sizeof(c.x), "%.1f", r->per_s / raw);
    snprintf(c.p50, sizeof(c.p50), "%.0f", r->p50_us);
    snprintf(c.p99, sizeof(c.p99), "%.0f", r->p99_us);
    snprintf(c.per_sync, sizeof(c.per_sync), "%.1f", r->per_sync);
    snprintf(c.sync, sizeof(c.sync), "%.0f", r->sync_us);
    snprintf(c.io, sizeof(c.io), "%.0f%%", 100 * r->io_share);
    snprintf(c.goal, sizeof(c.goal), "%s", goal);
    row(&c);
}

static void ratio_row(const char *what, double ratio, const char *goal)
{
    cells_t c = {0};
    snprintf(c.what, sizeof(c.what), "%s", what);
    snprintf(c.value, sizeof(c.value), "x%.2f", ratio);
    snprintf(c.goal, sizeof(c.goal), "%s", goal);
    row(&c);
}

static const char dashes[] = "------------------------------------------------------------";

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "build/bench-wal";
    fresh_dir(base);
    records_t recs;
    gen_records(&recs, COMPRESS_RECORDS);

    double raw = raw_rate(base);
    static const unsigned counts[] = {1, 8, 64};
    run_result_t runs[3];
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof(name), "appenders-%u", counts[i]);
        runs[i] = run_appenders(base, name, &recs, counts[i], APPEND_SECONDS, 0, 0, NULL);
    }

    uint64_t on_bytes, off_bytes;
    size_t per_thread = COMPRESS_RECORDS / COMPRESS_THREADS;
    run_result_t on = run_appenders(base, "compress-on", &recs, COMPRESS_THREADS, 0, per_thread,
                                    0, &on_bytes);
    run_result_t off = run_appenders(base, "compress-off", &recs, COMPRESS_THREADS, 0,
                                     per_thread, -1, &off_bytes);
    uint64_t raw_bytes = 0;
    for (size_t i = 0; i < per_thread * COMPRESS_THREADS; i++)
        raw_bytes += recs.len[i];
    double ratio_on = (double)raw_bytes / (double)on_bytes;
    double ratio_off = (double)raw_bytes / (double)off_bytes;
    double ratio_rec = per_record_ratio(&recs);

    printf("wal_bench: %s, fsync always, %ld cores; chat-like JSON records of %.0f bytes on "
           "average\n\n",
           base, sysconf(_SC_NPROCESSORS_ONLN), (double)recs.raw_bytes / (double)recs.n);
    cells_t head = {"measurement", "per second", "x raw", "p50 us", "p99 us", "per sync",
                    "sync us", "I/O", "goal"};
    row(&head);
    printf("|%.45s|%.12s|%.7s|%.8s|%.8s|%.10s|%.9s|%.8s|%.26s|\n", dashes, dashes, dashes, dashes,
           dashes, dashes, dashes, dashes, dashes);
    cells_t rc = {0};
    snprintf(rc.what, sizeof(rc.what), "raw write(200 B) + fdatasync, one file");
    fmt_int(rc.value, sizeof(rc.value), raw);
    snprintf(rc.x, sizeof(rc.x), "1.0");
    snprintf(rc.sync, sizeof(rc.sync), "%.0f", 1e6 / raw); /* the mean write + fdatasync */
    snprintf(rc.per_sync, sizeof(rc.per_sync), "1");
    row(&rc);
    for (int i = 0; i < 3; i++) {
        char what[64], goal[40] = "";
        snprintf(what, sizeof(what), "durable appends, %u appender%s", counts[i],
                 counts[i] > 1 ? "s" : "");
        if (counts[i] == 64)
            snprintf(goal, sizeof(goal), "goal >= 10x raw: %s",
                     runs[i].per_s >= 10 * raw ? "met" : "NOT met");
        run_row(what, &runs[i], raw, goal);
    }
    char goal[40];
    snprintf(goal, sizeof(goal), "goal >= 3x: %s", ratio_on >= 3 ? "met" : "NOT met");
    ratio_row("compression: log, zstd 1 stream/segment", ratio_on, goal);
    ratio_row("compression: off (compression_level -1)", ratio_off, "");
    ratio_row("compression: each record alone (zstd 1)", ratio_rec, "");
    printf("\nCompression: %d records (%.1f MB of JSON) appended by %d threads, each waiting for\n"
           "every record (%.1f records per fdatasync with compression, %.1f without); ratio =\n"
           "JSON bytes / segment bytes on disk, headers included. p50/p99: append to durable.\n"
           "per sync: records per fdatasync. sync us: mean fdatasync inside the log. I/O: share\n"
           "of the time the log's writer spent in write + fdatasync.\n",
           COMPRESS_RECORDS, (double)raw_bytes / 1e6, COMPRESS_THREADS, on.per_sync,
           off.per_sync);

    free_records(&recs);
    remove_tree(base);
    return 0;
}
