/*
 * `parley wal inspect|check|repair <data-dir>`: the operator's view of the
 * write-ahead log, built on the wal library's own reader so that what they
 * show is what recovery sees.
 *
 *   inspect  one line per record: file, frame offset, LSN, type, record size,
 *            and the stored/raw size of the frame that holds it (records are
 *            compressed per frame, so a record has no stored size of its own),
 *            and whether the checksum held. Read-only.
 *   check    verifies every snapshot and the whole log as recovery would;
 *            exit 0, or 1 with the file and offset of the damage. Read-only.
 *   repair   the explicit cut: takes the data-directory lock (so never while a
 *            server runs), recovers with repair on, which cuts the log at the
 *            last good record and removes later segments, and says how much
 *            was dropped.
 *
 * Each takes --encryption-key-file FILE for an encrypted data directory
 * (checked against its ENCRYPTION file first, as `serve` does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "parley/datadir.h"
#include "parley/store.h"
#include "parley/tools.h"
#include "wal.h"

static void print_message(void *ctx, int level, const char *message)
{
    (void)ctx;
    static const char *const tags[] = {"error", "warning", "info"};
    fprintf(stderr, "parley: %s: %s\n", tags[level >= 0 && level <= 2 ? level : 0], message);
}

static void print_record(void *ctx, const wal_inspect_record_t *r)
{
    unsigned long long *count = ctx;
    if (!r->checksum_ok) {
        printf("%s @%llu BAD frame (lsn %llu, stored %u, raw %u): checksum or structure "
               "check failed; the rest of this file is unreadable\n",
               r->file, (unsigned long long)r->offset, (unsigned long long)r->lsn,
               r->frame_stored, r->frame_raw);
        return;
    }
    (*count)++;
    /* json: the record's length as JSON (message records are binary). */
    char *json = store_record_json(r->type, r->data, r->raw_len);
    printf("%s @%llu lsn=%llu type=%u len=%u json=%zu frame_stored=%u frame_raw=%u "
           "checksum=ok\n",
           r->file, (unsigned long long)r->offset, (unsigned long long)r->lsn, r->type,
           r->raw_len, json ? strlen(json) : (size_t)0, r->frame_stored, r->frame_raw);
    free(json);
}

static void usage(void)
{
    fprintf(stderr, "usage: parley wal inspect|check|repair [--encryption-key-file FILE] "
                    "<data-dir>\n");
}

/* The data key from --encryption-key-file (NULL: none given). */
static const uint8_t *tool_key;

static int cmd_inspect(const char *dir)
{
    unsigned long long count = 0;
    int rc = wal_inspect_key(dir, tool_key, print_record, &count);
    if (rc != 0) {
        fprintf(stderr, "parley: cannot inspect %s: %s\n", dir, wal_strerror(rc));
        return 1;
    }
    printf("%llu records\n", count);
    return 0;
}

static void print_summary(const wal_recovery_t *r)
{
    if (r->snapshot_lsn)
        printf("snapshot at lsn %llu with %llu records\n", (unsigned long long)r->snapshot_lsn,
               (unsigned long long)r->snapshot_records);
    else
        printf("no snapshot\n");
    printf("log: %llu records after the snapshot in %llu segments; last lsn %llu\n",
           (unsigned long long)r->records_replayed, (unsigned long long)r->segments,
           (unsigned long long)r->last_lsn);
}

static int cmd_check(const char *dir)
{
    wal_options_t opts = {.log = print_message, .key = tool_key};
    wal_recovery_t rep;
    int rc = wal_check(dir, &opts, &rep);
    if (rc != 0) {
        if (rep.error_file[0])
            printf("damaged: %s at offset %llu: %s\n", rep.error_file,
                   (unsigned long long)rep.error_offset, wal_strerror(rc));
        else
            printf("damaged: %s\n", wal_strerror(rc));
        return 1;
    }
    print_summary(&rep);
    if (rep.cut_file[0])
        printf("torn tail: %s from offset %llu (%llu bytes of an unfinished write; the next "
               "start cuts them)\n",
               rep.cut_file, (unsigned long long)rep.cut_offset,
               (unsigned long long)rep.bytes_dropped);
    printf("ok\n");
    return 0;
}

static int cmd_repair(const char *dir)
{
    char err[512];
    int lock = datadir_lock(dir, err, sizeof(err));
    if (lock < 0) {
        fprintf(stderr, "parley: %s\n", err);
        return 1;
    }
    wal_options_t opts = {.repair = true, .log = print_message, .key = tool_key};
    wal_recovery_t rep;
    wal_t *w = NULL;
    int rc = wal_open(dir, &opts, NULL, &w, &rep);
    if (rc == 0)
        rc = wal_close(w);
    datadir_unlock(lock);
    if (rc != 0) {
        fprintf(stderr, "parley: repair failed: %s%s%s\n", wal_strerror(rc),
                rep.error_file[0] ? " at " : "", rep.error_file);
        return 1;
    }
    print_summary(&rep);
    if (rep.cut_file[0])
        printf("cut %s at offset %llu: %llu bytes dropped\n", rep.cut_file,
               (unsigned long long)rep.cut_offset, (unsigned long long)rep.bytes_dropped);
    else
        printf("nothing to repair\n");
    return 0;
}

int wal_command(int argc, char **argv)
{
    static uint8_t key[CRYPT_KEY_BYTES];
    bool have_key;
    if (crypt_key_option(&argc, argv, key, &have_key, "--encryption-key-file") != 0)
        return 2;
    tool_key = have_key ? key : NULL;
    if (argc != 2) {
        usage();
        return 2;
    }
    struct stat st;
    if (stat(argv[1], &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "parley: %s is not a data directory\n", argv[1]);
        return 1;
    }
    char err[512];
    if (crypt_dir_check(argv[1], tool_key, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "parley: %s\n", err);
        return 2;
    }
    if (strcmp(argv[0], "inspect") == 0)
        return cmd_inspect(argv[1]);
    if (strcmp(argv[0], "check") == 0)
        return cmd_check(argv[1]);
    if (strcmp(argv[0], "repair") == 0)
        return cmd_repair(argv[1]);
    usage();
    return 2;
}
