/*
 * Backups (src/files/backup.c writes them, src/files/archive.c reads them).
 *
 * An archive is a ustar tar, each member compressed as its own zstd frame
 * (with zstd's content checksum; the concatenation is an ordinary .tar.zst
 * that `tar --zstd -x` reads), holding, in this order:
 *   <name>                        the data directory's top-level files
 *                                 (secret.key...), LOCK excepted
 *   files/ab/cd/<sha256>          the blobs (include_files)
 *   snapshots/<lsn>.snap          the newest snapshot (when there is one)
 *   wal/<first-lsn>.wal           the segments after it, the last cut at the
 *                                 backup's LSN (a frame boundary)
 *   settings.json                 the effective settings (for reading; the
 *                                 log and snapshot carry them)
 *   manifest.json                 format, version, LSN, counts, and the size
 *                                 and SHA-256 of every other member
 * Files are copied as they are on disk: an encrypted data directory gives an
 * encrypted archive.
 *
 * Consistency: backup_begin fixes the LSN (durable, the end of a frame),
 * holds the snapshot and segments it needs against the snapshot cleaner
 * (wal_hold_begin) and pins the blobs (removals wait until backup_end), so
 * writes go on while the archive is written and none after the LSN is in it.
 * One backup at a time per process (BACKUP_E_BUSY).
 */
#ifndef PARLEY_BACKUP_H
#define PARLEY_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/blobs.h"
#include "parley/store.h"

#define BACKUP_E_BUSY (-3101)    /* another backup runs */
#define BACKUP_E_FORMAT (-3102)  /* an archive that is not one, damaged, or hostile */
#define BACKUP_E_TARGET (-3103)  /* the restore target is not empty */
#define BACKUP_E_SINK (-3104)    /* the sink refused the bytes (client gone) */

#define BACKUP_FORMAT_VERSION 1
#define BACKUP_MEMBER_MAX (64ull << 30)  /* largest member a reader accepts */
#define BACKUP_MANIFEST_MAX (64u << 20)  /* largest manifest a reader accepts */
#define BACKUP_MEMBERS_MAX 10000000u     /* members a reader accepts */
#define BACKUP_NAME_MAX 100              /* a member name (ustar's name field) */

typedef struct backup backup_t;

/* What an archive holds (filled by backup_run and by the readers). */
typedef struct backup_summary {
    uint64_t lsn, snapshot_lsn;
    uint64_t members, segments, blobs;
    uint64_t bytes;        /* compressed bytes written or read */
    uint64_t raw_bytes;    /* members' bytes */
    int64_t created_ms;
    bool include_files;
} backup_summary_t;

/* Bytes out of the writer; returns 0, or non-zero to stop it (BACKUP_E_SINK). */
typedef int (*backup_sink_fn)(void *ctx, const void *data, size_t len);

/*
 * Starts a backup of the open store `s` (its data directory `data_dir`,
 * blob store `b`): fixes the LSN, holds the log, pins the blobs. Returns 0
 * and *out (the caller's, ended by backup_end), BACKUP_E_BUSY, or a store
 * error (the log cannot sync). Thread-safe.
 */
int backup_begin(store_t *s, blobs_t *b, const char *data_dir, bool include_files,
                 backup_t **out);

/* The backup's LSN and creation time (ms), fixed by backup_begin. */
uint64_t backup_lsn(const backup_t *bk);
int64_t backup_created_ms(const backup_t *bk);

/* "parley-<UTC yyyymmddThhmmssZ>-<lsn>.tar.zst" into out (64 bytes suffice). */
void backup_file_name(const backup_t *bk, char *out, size_t size);

/*
 * Writes the whole archive through `sink`, in chunks of at most 128 KiB
 * (memory stays bounded whatever the data's size). Returns 0 with *sum
 * (may be NULL), BACKUP_E_SINK, or -errno (a file could not be read; its
 * path in err). Call once.
 */
int backup_run(backup_t *bk, backup_sink_fn sink, void *ctx, backup_summary_t *sum, char *err,
               size_t err_size);

/* Releases the hold and the pin (removals deferred meanwhile run now) and
 * frees bk. NULL is a no-op. */
void backup_end(backup_t *bk);

/* Runs backup bk into the file `path` (which must not exist): a temp name
 * beside it, fsync, rename, fsync of the directory. Returns as backup_run,
 * or -EEXIST, -ENOSPC. */
int backup_to_path(backup_t *bk, const char *path, backup_summary_t *sum, char *err,
                   size_t err_size);

/*
 * Reads the archive at `path` and checks every member against the manifest
 * (size and SHA-256), the member names (no path leaving the data
 * directory, regular files only, no duplicates), sizes and the end.
 * Returns 0 with *sum (may be NULL), or BACKUP_E_FORMAT / -errno with one
 * line in err naming the member at fault. Writes nothing.
 */
int backup_verify(const char *path, backup_summary_t *sum, char *err, size_t err_size);

/*
 * Restores the archive at `path` into `target`, which must not exist or be
 * an empty directory (else BACKUP_E_TARGET): verifies the whole archive
 * first (backup_verify), then extracts into a temporary directory beside
 * the target, checking every member again, syncs it and renames it to the
 * target. `progress`: a line on stderr as members are written. Returns 0,
 * BACKUP_E_TARGET, BACKUP_E_FORMAT or -errno, with one line in err.
 */
int backup_restore(const char *path, const char *target, bool progress, backup_summary_t *sum,
                   char *err, size_t err_size);

/* Whether `name` is a valid backup file name (parley-....tar.zst: letters,
 * digits, '-', '.', '_', no '/' or leading '.'), for the HTTP routes. */
bool backup_name_valid(const char *name);

#endif
