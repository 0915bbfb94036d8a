/*
 * libFuzzer harness: recovery of the write-ahead log. The input becomes
 * <tmp>/wal/00000000000000000001.wal (the only file), then wal_open() runs
 * with a replay that checks LSNs arrive strictly one after another from 1.
 *
 * Beyond "no crash, no leak": a log that wal_open accepted (as it is, or
 * with repair after WAL_E_CORRUPT) must stay accepted. One record is
 * appended and the log closed and opened again; the second open must
 * succeed and replay exactly the same records plus that one. That checks the
 * torn-tail cut and the repair cut leave a directory that recovers, and that
 * a new segment after them is found. Errors the API documents (WAL_E_CORRUPT,
 * WAL_E_VERSION, ...) on the first open are legitimate answers.
 *
 * The directory is made once per process with mkdtemp, on /dev/shm when it
 * exists (the library syncs files and directories on every open, which
 * tmpfs makes free), and its wal/ and snapshots/ are emptied before each
 * input.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_tmpdir.h"
#include "wal.h"

typedef struct seen {
    uint64_t *lsn; /* with hash: one entry per record delivered */
    uint64_t *hash;
    size_t n, cap;
} seen_t;

static uint64_t hash_record(uint8_t type, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ type;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h ^ len;
}

static int on_snapshot_begin(void *ctx, uint64_t lsn)
{
    (void)ctx;
    (void)lsn;
    abort(); /* there is no snapshot */
}

static int on_record(void *ctx, uint64_t lsn, uint8_t type, const void *data, size_t len)
{
    seen_t *s = ctx;
    uint64_t want = s->n ? s->lsn[s->n - 1] + 1 : 1;
    if (lsn != want || type == 0 || len > WAL_RECORD_MAX || (len > 0 && data == NULL))
        abort();
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->lsn = realloc(s->lsn, s->cap * sizeof(*s->lsn));
        s->hash = realloc(s->hash, s->cap * sizeof(*s->hash));
        if (s->lsn == NULL || s->hash == NULL)
            abort();
    }
    s->lsn[s->n] = lsn;
    s->hash[s->n] = hash_record(type, data, len);
    s->n++;
    return 0;
}

/* Opens the log; on success checks the report against what was seen. */
static int open_log(bool repair, seen_t *s, wal_t **w)
{
    free(s->lsn);
    free(s->hash);
    memset(s, 0, sizeof(*s));
    wal_options_t opts = {.fsync = WAL_FSYNC_ALWAYS, .repair = repair};
    wal_replay_t replay = {.on_snapshot_begin = on_snapshot_begin, .on_record = on_record,
                           .ctx = s};
    wal_recovery_t rep;
    int rc = wal_open(root, &opts, &replay, w, &rep);
    if (rc != 0)
        return rc;
    uint64_t last = s->n ? s->lsn[s->n - 1] : 0;
    if (rep.last_lsn != last || rep.records_replayed != s->n || wal_last_lsn(*w) != last ||
        rep.snapshot_lsn != 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!setup("fuzz-wal-recover"))
        return 0;
    empty_dir("wal");
    empty_dir("snapshots");
    char path[512];
    snprintf(path, sizeof(path), "%s/wal", root);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/wal/00000000000000000001.wal", root);
    if (!write_file(path, data, size))
        return 0;

    seen_t first = {0}, again = {0};
    wal_t *w;
    int rc = open_log(false, &first, &w);
    if (rc == WAL_E_CORRUPT)
        rc = open_log(true, &first, &w);
    if (rc == 0) {
        /* Accepted: one more record, then it must all come back. */
        static const char extra[] = "one more record";
        uint64_t lsn;
        if (wal_append(w, 9, extra, sizeof(extra), &lsn) != 0 || wal_wait(w, lsn) != 0 ||
            wal_close(w) != 0)
            abort();
        uint64_t want_lsn = first.n ? first.lsn[first.n - 1] + 1 : 1;
        if (lsn != want_lsn || open_log(false, &again, &w) != 0)
            abort();
        if (again.n != first.n + 1 || again.hash[first.n] != hash_record(9, extra, sizeof(extra)))
            abort();
        for (size_t i = 0; i < first.n; i++)
            if (again.lsn[i] != first.lsn[i] || again.hash[i] != first.hash[i])
                abort();
        if (wal_close(w) != 0)
            abort();
    }
    free(first.lsn);
    free(first.hash);
    free(again.lsn);
    free(again.hash);
    return 0;
}
