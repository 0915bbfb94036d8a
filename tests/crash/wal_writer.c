/*
 * Crash test of wal/: the writer that scripts/crash-wal.sh kills with SIGKILL
 * at random moments, and the verifier it runs after every kill.
 *
 *   wal_crash_writer write <dir> <threads> <seed>
 *   wal_crash_writer verify <dir> < acked.txt
 *
 * `write` opens the log (fsync always, 256 KiB segments so they roll often),
 * then every thread appends records of 0-4096 bytes whose bytes follow from
 * (seed, thread, seq), and once wal_wait() has returned 0 prints
 * "<lsn> <hash>\n" with ONE write(2) to stdout, which the script opens with
 * O_APPEND: a kill can stop the process between two lines, never inside one,
 * so every line in the file is a record the library acknowledged.
 *
 * The process keeps a state, lsn -> hash of the payload, the way Parley's
 * store does: a record is applied to the state under the same lock as its
 * wal_append(), so the state always holds every LSN handed out (a state built
 * from acknowledged records only would miss LSNs that another thread had
 * appended but not yet seen acknowledged, and a snapshot of it would lose
 * them). About every 200 acknowledged records one thread writes a snapshot:
 * one record (lsn, hash) per entry of the state, at lsn = wal_last_lsn()
 * read before the state is copied, so the snapshot may also hold later
 * records, which replay must tolerate. Snapshots make the library trim
 * segments and old snapshots, so kills also land in the middle of a
 * snapshot, a rename or a trim.
 *
 * `verify` opens the log as a restart does (cutting a torn tail), rebuilds
 * the state from the callbacks and checks: LSNs from the log follow the
 * snapshot with no gap, a log record that the snapshot also holds has the
 * same hash, the state covers every LSN from 1 to the last, every recovered
 * record's bytes are exactly what some writer generated, and every line of
 * acked.txt is present with its hash.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wal.h"

#define REC_TYPE 1
#define SNAP_TYPE 2
#define PAYLOAD_MAX 4096
#define SNAPSHOT_EVERY 200
#define SEGMENT_BYTES (256u << 10)

/* ---- deterministic payloads ---------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* FNV-1a, never 0 (0 marks an empty slot of the state). */
static uint64_t hash_bytes(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h ? h : 1;
}

static const char *const words[] = {
    "alpha", "bravo",  "charlie", "delta",  "echo",    "foxtrot", "golf",   "hotel",
    "india", "juliet", "kilo",    "lima",   "mike",    "november", "oscar", "papa",
    "quebec", "romeo", "sierra",  "tango",  "uniform", "victor",  "whiskey", "xray",
    "yankee", "zulu",  "the",     "log",    "crash",   "durable", "record", "segment",
};

/*
 * The payload of (seed, thread, seq): a header naming the three, then words
 * and a few random bytes, cut to a length of 0-4096 drawn from the same
 * generator (short records hold only a prefix of the header). Returns the
 * length.
 */
static size_t make_payload(uint8_t *out, unsigned seed, unsigned thread, uint64_t seq)
{
    uint64_t s = ((uint64_t)seed << 40) ^ ((uint64_t)thread << 32) ^ seq;
    splitmix(&s);
    uint64_t r = splitmix(&s);
    /* Mostly short records, some long ones, some empty. */
    size_t len = (r & 3) == 0 ? (size_t)(r >> 8) % (PAYLOAD_MAX + 1) : (size_t)(r >> 8) % 300;
    char head[64];
    int n = snprintf(head, sizeof(head), "w %u %u %" PRIu64 "|", seed, thread, seq);
    size_t pos = 0;
    for (int i = 0; i < n && pos < len; i++)
        out[pos++] = (uint8_t)head[i];
    while (pos < len) {
        uint64_t x = splitmix(&s);
        if ((x & 15) == 0) {
            out[pos++] = (uint8_t)(x >> 8);
            continue;
        }
        const char *wd = words[(x >> 8) % (sizeof(words) / sizeof(words[0]))];
        for (size_t i = 0; wd[i] && pos < len; i++)
            out[pos++] = (uint8_t)wd[i];
        if (pos < len)
            out[pos++] = ' ';
    }
    return len;
}

/* True when `data` is exactly the payload its header names (or too short
 * to name one). */
static bool payload_genuine(const uint8_t *data, size_t len)
{
    char head[64];
    size_t n = len < sizeof(head) - 1 ? len : sizeof(head) - 1;
    memcpy(head, data, n);
    head[n] = '\0';
    unsigned seed, thread;
    uint64_t seq;
    if (memchr(head, '|', n) == NULL)
        return true;
    if (sscanf(head, "w %u %u %" SCNu64 "|", &seed, &thread, &seq) != 3)
        return false;
    uint8_t *want = malloc(PAYLOAD_MAX);
    if (want == NULL)
        abort();
    size_t wlen = make_payload(want, seed, thread, seq);
    bool ok = wlen == len && memcmp(want, data, len) == 0;
    free(want);
    return ok;
}

/* ---- the state: lsn -> hash ------------------------------------------------ */

typedef struct state {
    uint64_t *hash; /* index lsn; 0: absent */
    uint64_t cap;
    uint64_t max;   /* highest lsn set */
} state_t;

static void state_set(state_t *st, uint64_t lsn, uint64_t h)
{
    if (lsn >= st->cap) {
        uint64_t cap = st->cap ? st->cap : 4096;
        while (cap <= lsn)
            cap *= 2;
        uint64_t *p = realloc(st->hash, cap * sizeof(*p));
        if (p == NULL)
            abort();
        memset(p + st->cap, 0, (cap - st->cap) * sizeof(*p));
        st->hash = p;
        st->cap = cap;
    }
    st->hash[lsn] = h;
    if (lsn > st->max)
        st->max = lsn;
}

static uint64_t state_get(const state_t *st, uint64_t lsn)
{
    return lsn < st->cap ? st->hash[lsn] : 0;
}

/* ---- recovery callbacks (write and verify alike) ------------------------- */

typedef struct recovery {
    state_t st;
    uint64_t snap_lsn;
    uint64_t next_log_lsn; /* 0 until the first log record */
    char why[256];         /* the first problem found */
} recovery_t;

static int on_snapshot_begin(void *ctx, uint64_t lsn)
{
    recovery_t *r = ctx;
    free(r->st.hash);
    memset(&r->st, 0, sizeof(r->st));
    r->snap_lsn = lsn;
    return 0;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int on_snapshot_record(void *ctx, uint8_t type, const void *data, size_t len)
{
    recovery_t *r = ctx;
    if (type != SNAP_TYPE || len != 16) {
        snprintf(r->why, sizeof(r->why), "snapshot %" PRIu64 ": record of type %u, %zu bytes",
                 r->snap_lsn, type, len);
        return 1;
    }
    uint64_t lsn = get64(data), h = get64((const uint8_t *)data + 8);
    if (lsn == 0 || h == 0 || state_get(&r->st, lsn) != 0) {
        snprintf(r->why, sizeof(r->why), "snapshot %" PRIu64 ": bad or repeated lsn %" PRIu64,
                 r->snap_lsn, lsn);
        return 1;
    }
    state_set(&r->st, lsn, h);
    return 0;
}

static int on_record(void *ctx, uint64_t lsn, uint8_t type, const void *data, size_t len)
{
    recovery_t *r = ctx;
    uint64_t want = r->next_log_lsn ? r->next_log_lsn : r->snap_lsn + 1;
    if (lsn != want) {
        snprintf(r->why, sizeof(r->why), "log record %" PRIu64 " where %" PRIu64 " was due",
                 lsn, want);
        return 1;
    }
    r->next_log_lsn = lsn + 1;
    if (type != REC_TYPE || !payload_genuine(data, len)) {
        snprintf(r->why, sizeof(r->why),
                 "log record %" PRIu64 " (type %u, %zu bytes) is not what a writer wrote", lsn,
                 type, len);
        return 1;
    }
    uint64_t h = hash_bytes(data, len);
    uint64_t had = state_get(&r->st, lsn);
    if (had != 0 && had != h) {
        snprintf(r->why, sizeof(r->why),
                 "log record %" PRIu64 " has hash %016" PRIx64 ", the snapshot %016" PRIx64, lsn,
                 h, had);
        return 1;
    }
    state_set(&r->st, lsn, h);
    return 0;
}

static void log_to_stderr(void *ctx, int level, const char *message)
{
    (void)ctx;
    static const char *const names[] = {"error", "warning", "info"};
    fprintf(stderr, "wal %s: %s\n", names[level >= 0 && level <= 2 ? level : 0], message);
}

/* Opens the log as a restart does; returns 0, or 1 with the reason printed
 * to `out` (never stdout for `write`: that is the acknowledgement file). */
static int open_log(const char *dir, recovery_t *r, wal_t **w, wal_recovery_t *rep, FILE *out)
{
    /* WAL_CRASH_KEY=1: the same crash test on a sealed log (a fixed key). */
    static const uint8_t key[WAL_KEY_BYTES] = "crash test key, sealed log";
    const char *sealed = getenv("WAL_CRASH_KEY");
    wal_options_t opts = {
        .fsync = WAL_FSYNC_ALWAYS,
        .segment_bytes = SEGMENT_BYTES,
        .log = log_to_stderr,
        .key = sealed && strcmp(sealed, "1") == 0 ? key : NULL,
    };
    wal_replay_t replay = {
        .on_snapshot_begin = on_snapshot_begin,
        .on_snapshot_record = on_snapshot_record,
        .on_record = on_record,
        .ctx = r,
    };
    memset(r, 0, sizeof(*r));
    int rc = wal_open(dir, &opts, &replay, w, rep);
    if (rc != 0) {
        fprintf(out, "wal_open(%s) failed: %s%s%s (error in %s at %" PRIu64 ")\n", dir,
               wal_strerror(rc), r->why[0] ? ": " : "", r->why, rep->error_file,
               rep->error_offset);
        return 1;
    }
    /* The state must cover every LSN up to the last: nothing is ever
     * appended that is not applied, and a snapshot holds its whole state. */
    for (uint64_t lsn = 1; lsn <= rep->last_lsn; lsn++) {
        if (state_get(&r->st, lsn) == 0) {
            fprintf(out, "recovered state lacks lsn %" PRIu64 " (last lsn %" PRIu64
                   ", snapshot %" PRIu64 ")\n",
                   lsn, rep->last_lsn, rep->snapshot_lsn);
            wal_close(*w);
            return 1;
        }
    }
    if (r->st.max > rep->last_lsn) {
        fprintf(out, "recovered state holds lsn %" PRIu64 " beyond the last lsn %" PRIu64 "\n",
               r->st.max, rep->last_lsn);
        wal_close(*w);
        return 1;
    }
    return 0;
}

/* ---- write ----------------------------------------------------------------- */

typedef struct writer {
    wal_t *w;
    unsigned seed;
    pthread_mutex_t mu; /* guards st; held around wal_append like a store lock */
    state_t st;
    atomic_ulong acked;
    atomic_flag snapshotting;
} writer_t;

typedef struct thread_arg {
    writer_t *wr;
    unsigned index;
} thread_arg_t;

static void die(const char *what, int rc)
{
    fprintf(stderr, "wal_crash_writer: %s: %s\n", what, wal_strerror(rc));
    _exit(1);
}

static void take_snapshot(writer_t *wr)
{
    uint64_t lsn = wal_last_lsn(wr->w);
    pthread_mutex_lock(&wr->mu);
    uint64_t n = wr->st.max + 1;
    uint64_t *copy = malloc(n * sizeof(*copy));
    if (copy == NULL)
        abort();
    if (wr->st.hash != NULL)
        memcpy(copy, wr->st.hash, n * sizeof(*copy));
    else
        copy[0] = 0; /* n is 1: nothing applied yet */
    pthread_mutex_unlock(&wr->mu);

    wal_snapshot_t *s;
    int rc = wal_snapshot_begin(wr->w, lsn, &s);
    if (rc != 0)
        die("wal_snapshot_begin", rc);
    for (uint64_t i = 1; i < n; i++) {
        if (copy[i] == 0)
            continue;
        uint8_t rec[16];
        put64(rec, i);
        put64(rec + 8, copy[i]);
        rc = wal_snapshot_add(s, SNAP_TYPE, rec, sizeof(rec));
        if (rc != 0)
            die("wal_snapshot_add", rc);
    }
    free(copy);
    rc = wal_snapshot_commit(s);
    if (rc != 0)
        die("wal_snapshot_commit", rc);
}

static void *writer_thread(void *arg)
{
    thread_arg_t *ta = arg;
    writer_t *wr = ta->wr;
    uint8_t *buf = malloc(PAYLOAD_MAX);
    if (buf == NULL)
        abort();
    for (uint64_t seq = 0;; seq++) {
        size_t len = make_payload(buf, wr->seed, ta->index, seq);
        uint64_t h = hash_bytes(buf, len);
        uint64_t lsn;
        pthread_mutex_lock(&wr->mu);
        int rc = wal_append(wr->w, REC_TYPE, buf, len, &lsn);
        if (rc == 0)
            state_set(&wr->st, lsn, h);
        pthread_mutex_unlock(&wr->mu);
        if (rc != 0)
            die("wal_append", rc);
        rc = wal_wait(wr->w, lsn);
        if (rc != 0)
            die("wal_wait", rc);
        char line[64];
        int n = snprintf(line, sizeof(line), "%" PRIu64 " %016" PRIx64 "\n", lsn, h);
        if (write(STDOUT_FILENO, line, (size_t)n) != n) {
            fprintf(stderr, "wal_crash_writer: write to stdout: %s\n", strerror(errno));
            _exit(1);
        }
        if (atomic_fetch_add(&wr->acked, 1) % SNAPSHOT_EVERY == SNAPSHOT_EVERY - 1 &&
            !atomic_flag_test_and_set(&wr->snapshotting)) {
            take_snapshot(wr);
            atomic_flag_clear(&wr->snapshotting);
        }
    }
    return NULL;
}

static int cmd_write(const char *dir, unsigned threads, unsigned seed)
{
    static writer_t wr = {.snapshotting = ATOMIC_FLAG_INIT};
    recovery_t r;
    wal_recovery_t rep;
    if (open_log(dir, &r, &wr.w, &rep, stderr) != 0)
        return 1;
    fprintf(stderr, "write: seed %u, %u threads, recovered up to lsn %" PRIu64 " (snapshot %" PRIu64
            ")\n", seed, threads, rep.last_lsn, rep.snapshot_lsn);
    wr.seed = seed;
    wr.st = r.st;
    pthread_mutex_init(&wr.mu, NULL);
    pthread_t tids[64];
    thread_arg_t args[64];
    for (unsigned i = 0; i < threads; i++) {
        args[i] = (thread_arg_t){&wr, i};
        if (pthread_create(&tids[i], NULL, writer_thread, &args[i]) != 0) {
            fprintf(stderr, "wal_crash_writer: pthread_create failed\n");
            return 1;
        }
    }
    for (unsigned i = 0; i < threads; i++)
        pthread_join(tids[i], NULL); /* never: the threads run until killed */
    return 1;
}

/* ---- verify ---------------------------------------------------------------- */

static int cmd_verify(const char *dir)
{
    recovery_t r;
    wal_recovery_t rep;
    wal_t *w;
    if (open_log(dir, &r, &w, &rep, stdout) != 0) {
        free(r.st.hash);
        return 1;
    }
    int rc = wal_close(w);
    if (rc != 0) {
        printf("wal_close failed: %s\n", wal_strerror(rc));
        free(r.st.hash);
        return 1;
    }
    char line[256];
    uint64_t n = 0, lineno = 0;
    int status = 0;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        lineno++;
        uint64_t lsn, h;
        char nl;
        if (sscanf(line, "%" SCNu64 " %" SCNx64 "%c", &lsn, &h, &nl) != 3 || nl != '\n') {
            printf("acked line %" PRIu64 " is malformed: %s\n", lineno, line);
            status = 1;
            break;
        }
        uint64_t got = state_get(&r.st, lsn);
        if (got != h) {
            if (got == 0)
                printf("acknowledged lsn %" PRIu64 " (acked line %" PRIu64
                       ") is missing; last lsn %" PRIu64 ", snapshot %" PRIu64 "\n",
                       lsn, lineno, rep.last_lsn, rep.snapshot_lsn);
            else
                printf("acknowledged lsn %" PRIu64 " (acked line %" PRIu64 ") has hash %016" PRIx64
                       ", recovered %016" PRIx64 "\n",
                       lsn, lineno, h, got);
            status = 1;
            break;
        }
        n++;
    }
    if (status == 0)
        printf("verified %" PRIu64 " acknowledged records (last lsn %" PRIu64 ", snapshot %" PRIu64
               ")\n",
               n, rep.last_lsn, rep.snapshot_lsn);
    if (rep.bytes_dropped > 0)
        fprintf(stderr, "verify: cut %" PRIu64 " bytes of torn tail from %s\n", rep.bytes_dropped,
                rep.cut_file);
    free(r.st.hash);
    return status;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "write") == 0) {
        unsigned threads = (unsigned)strtoul(argv[3], NULL, 10);
        if (threads < 1 || threads > 64) {
            fprintf(stderr, "wal_crash_writer: threads must be 1-64\n");
            return 2;
        }
        return cmd_write(argv[2], threads, (unsigned)strtoul(argv[4], NULL, 10));
    }
    if (argc == 3 && strcmp(argv[1], "verify") == 0)
        return cmd_verify(argv[2]);
    fprintf(stderr, "usage: wal_crash_writer write <dir> <threads> <seed>\n"
                    "       wal_crash_writer verify <dir> < acked.txt\n");
    return 2;
}
