/*
 * libFuzzer harness: the snapshot loader of recovery (wal/recover.c,
 * load_snapshot, through wal_open). The input becomes the only snapshot,
 * <tmp>/snapshots/<lsn>.snap, named by the LSN its header claims (bytes
 * 16-23; 1 when shorter), next to an empty log; wal_open runs with a replay
 * that keeps a hash of each snapshot record. (fuzz_wal_scan covers the
 * frame scanner alone; this covers the choice and delivery around it.)
 *
 * Beyond "no crash, no leak": when the snapshot is loaded, the report
 * counts the records delivered and the log continues at its LSN + 1; after
 * one record is appended and the log closed, a second open loads the same
 * snapshot records and replays that one record. A damaged snapshot is
 * skipped (the log then opens empty) or refused with a documented error.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    uint64_t begun;   /* LSN of on_snapshot_begin (0: none) */
    uint64_t hash;    /* over every snapshot record, in order */
    size_t snap_n;
    size_t log_n;
    uint64_t last_log_lsn;
} seen_t;

static void mix(uint64_t *h, uint8_t type, const void *data, size_t len)
{
    const uint8_t *p = data;
    *h ^= type;
    *h *= 0x100000001b3ull;
    for (size_t i = 0; i < len; i++) {
        *h ^= p[i];
        *h *= 0x100000001b3ull;
    }
    *h ^= len;
}

static int on_begin(void *ctx, uint64_t lsn)
{
    seen_t *s = ctx;
    s->begun = lsn;
    s->hash = 0xcbf29ce484222325ull;
    s->snap_n = 0;
    return 0;
}

static int on_snap_record(void *ctx, uint8_t type, const void *data, size_t len)
{
    seen_t *s = ctx;
    if (s->begun == 0 || len > WAL_RECORD_MAX || (len > 0 && data == NULL))
        abort();
    mix(&s->hash, type, data, len);
    s->snap_n++;
    return 0;
}

static int on_record(void *ctx, uint64_t lsn, uint8_t type, const void *data, size_t len)
{
    seen_t *s = ctx;
    (void)type;
    (void)data;
    (void)len;
    s->log_n++;
    s->last_log_lsn = lsn;
    return 0;
}

static int open_log(seen_t *s, wal_t **w, wal_recovery_t *rep)
{
    memset(s, 0, sizeof(*s));
    wal_options_t opts = {.fsync = WAL_FSYNC_ALWAYS};
    wal_replay_t replay = {.on_snapshot_begin = on_begin, .on_snapshot_record = on_snap_record,
                           .on_record = on_record, .ctx = s};
    return wal_open(root, &opts, &replay, w, rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!setup("fuzz-snapshot"))
        return 0;
    empty_dir("wal");
    empty_dir("snapshots");
    uint64_t lsn = 0;
    if (size >= 24)
        for (int i = 23; i >= 16; i--)
            lsn = lsn << 8 | data[i];
    if (lsn == 0 || lsn > (uint64_t)1 << 50)
        lsn = 1;
    char path[512];
    snprintf(path, sizeof(path), "%s/wal", root);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/snapshots", root);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/snapshots/%020llu.snap", root, (unsigned long long)lsn);
    if (!write_file(path, data, size))
        return 0;

    seen_t first, again;
    wal_t *w;
    wal_recovery_t rep, rep2;
    if (open_log(&first, &w, &rep) != 0)
        return 0; /* refused: a documented error */
    uint64_t want = rep.snapshot_lsn;
    if (want != 0 && (want != lsn || first.begun != lsn || rep.snapshot_records != first.snap_n ||
                      first.log_n != 0 || wal_last_lsn(w) != lsn))
        abort();
    static const char extra[] = "after the snapshot";
    uint64_t at;
    if (wal_append(w, 9, extra, sizeof(extra), &at) != 0 || wal_wait(w, at) != 0 ||
        wal_close(w) != 0)
        abort();
    if (at != (want ? want + 1 : 1))
        abort();
    if (open_log(&again, &w, &rep2) != 0)
        abort(); /* what was accepted once must stay accepted */
    if (want != 0 && (rep2.snapshot_lsn != want || again.snap_n != first.snap_n ||
                      again.hash != first.hash))
        abort();
    if (again.log_n != 1 || again.last_log_lsn != at || wal_close(w) != 0)
        abort();
    return 0;
}
