/*
 * `parley rekey --data-dir D --old-key F --new-key G` and
 * `parley encrypt --data-dir D --key F`: offline, under the data
 * directory's lock, every log segment, snapshot and blob re-written under
 * the new key (from the old key, or from plain).
 *
 * Crash safety, by resumption: the command first writes ENCRYPTION.next
 * naming the new key (fsynced), then re-writes the files one at a time, each
 * to a temp name, fsynced, renamed over the old one, directory fsynced; it
 * skips a file whose header already names the new key. Last it renames
 * ENCRYPTION.next over ENCRYPTION. Every file is therefore at every moment
 * wholly under one of the two keys, and it says which (a sealed file's seal
 * block and a blob's header carry a key id). A kill -9 at any point leaves:
 * before ENCRYPTION.next, a directory the old key opens (nothing changed);
 * after the final rename, one the new key opens; in between, a directory
 * that `serve` refuses to start ("half way through: run the same command
 * again") and that the same command, run again with the same keys, finishes.
 * We chose "re-run to finish" over a server that opens mixed directories
 * with two keys: the server keeps one key, and a half-done rekey cannot
 * stay half done by accident.
 *
 * Before anything is written the log and snapshots are checked with the old
 * key (a damaged log is refused: re-sealing would launder the damage). The
 * torn tail of the last segment, if any, is left out of its re-sealed copy
 * (recovery would cut it anyway). Damaged snapshots (.damaged) are left as they
 * are (under the old key); remove them by hand if they are not needed.
 *
 * PARLEY_TEST_REKEY_STOP_AFTER=N (tests only) makes the command SIGKILL
 * itself after re-writing N files (0: right after ENCRYPTION.next), to
 * prove the above. Copies half written when a run is killed (*.rekey in
 * wal/ and snapshots/, files/tmp/ for blobs) are removed by the next run.
 */
#include <dirent.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parley/blobs.h"
#include "parley/datadir.h"
#include "parley/hex.h"
#include "parley/tools.h"
#include "wal.h"

typedef struct job {
    const char *dir;
    const uint8_t *old_key; /* NULL: from plain */
    const uint8_t *new_key;
    uint8_t old_id[WAL_KEY_ID_BYTES], new_id[WAL_KEY_ID_BYTES];
    blobs_t *blobs;
    unsigned long done, skipped;
    long stop_after; /* -1: never */
} job_t;

static void rewritten(job_t *j)
{
    j->done++;
    if (j->stop_after >= 0 && (long)j->done >= j->stop_after)
        raise(SIGKILL);
}

static int log_file(job_t *j, const char *sub, const char *name, bool snapshot)
{
    char path[4400], tmp[4500];
    snprintf(path, sizeof(path), "%s/%s/%s", j->dir, sub, name);
    snprintf(tmp, sizeof(tmp), "%s.rekey", path);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size < 32)
        return 0; /* a header torn by a crash: recovery removes it */
    uint8_t id[8];
    int seal = wal_file_seal(path, id);
    if (seal < 0) {
        fprintf(stderr, "parley: %s: not a readable log file (%s)\n", path, wal_strerror(seal));
        return -1;
    }
    if (seal == 1 && memcmp(id, j->new_id, 8) == 0) {
        j->skipped++;
        return 0;
    }
    bool from_old = j->old_key ? seal == 1 && memcmp(id, j->old_id, 8) == 0 : seal == 0;
    if (!from_old) {
        fprintf(stderr, "parley: %s is %s, neither under the old nor the new key\n", path,
                seal ? "sealed with another key" : "plain");
        return -1;
    }
    unlink(tmp);
    int rc = wal_reseal_file(path, tmp, snapshot, j->old_key, j->new_key);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    char parent[4400];
    snprintf(parent, sizeof(parent), "%s/%s", j->dir, sub);
    if (rc == 0)
        rc = crypt_sync_dir(parent);
    if (rc != 0) {
        unlink(tmp);
        fprintf(stderr, "parley: cannot re-seal %s: %s\n", path, wal_strerror(rc));
        return -1;
    }
    rewritten(j);
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int log_files(job_t *j, const char *sub, const char *suffix, bool snapshot)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", j->dir, sub);
    DIR *d = opendir(path);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (ends_with(e->d_name, ".rekey")) { /* a copy left by a killed run */
            char stale[4500];
            snprintf(stale, sizeof(stale), "%s/%s", path, e->d_name);
            unlink(stale);
        } else if (ends_with(e->d_name, suffix) && strlen(e->d_name) == 20 + strlen(suffix)) {
            rc = log_file(j, sub, e->d_name, snapshot);
        }
    }
    closedir(d);
    return rc;
}

static int blob_file(void *ctx, const char *sha)
{
    job_t *j = ctx;
    int rc = blobs_reseal(j->blobs, sha, j->old_key, j->old_key ? j->old_id : NULL);
    if (rc == 1) {
        j->skipped++;
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "parley: cannot re-seal blob %s: %s\n", sha,
                rc == BLOB_E_DAMAGED ? "it does not open with the old key or is damaged"
                                     : strerror(-rc));
        return -1;
    }
    rewritten(j);
    return 0;
}

static void message(void *ctx, int level, const char *text)
{
    (void)ctx;
    if (level <= 1)
        fprintf(stderr, "parley: %s\n", text);
}

/* The whole job under the lock; returns the exit code. */
static int run(job_t *j)
{
    char have[33], next[33], old_hex[33], new_hex[33];
    hex_encode(j->new_id, WAL_KEY_ID_BYTES, new_hex);
    if (j->old_key)
        hex_encode(j->old_id, WAL_KEY_ID_BYTES, old_hex);
    int m = crypt_mark_read(j->dir, "", have);
    int nx = crypt_mark_read(j->dir, ".next", next);
    if (m < 0 || nx < 0) {
        fprintf(stderr, "parley: %s: ENCRYPTION or ENCRYPTION.next is malformed\n", j->dir);
        return 1;
    }
    if (nx == 1 && strcmp(next, new_hex) != 0) {
        fprintf(stderr,
                "parley: %s is half way through a change to another key (key id %s); finish "
                "that one first\n",
                j->dir, next);
        return 2;
    }
    if (nx == 0) {
        if (m == 1 && strcmp(have, new_hex) == 0) {
            printf("%s is already under the new key\n", j->dir);
            return 0;
        }
        if (j->old_key && (m == 0 || strcmp(have, old_hex) != 0)) {
            fprintf(stderr, "parley: %s\n",
                    m == 0 ? "the data directory is not encrypted (use parley encrypt)"
                           : "the old key is not the data directory's key");
            return 2;
        }
        if (!j->old_key && m == 1) {
            fprintf(stderr, "parley: %s is already encrypted (use parley rekey)\n", j->dir);
            return 2;
        }
        /* A damaged log is refused before anything changes. */
        wal_options_t o = {.log = message, .key = j->old_key};
        wal_recovery_t rep;
        int rc = wal_check(j->dir, &o, &rep);
        if (rc != 0) {
            fprintf(stderr, "parley: the log does not check out (%s%s%s): repair it first\n",
                    wal_strerror(rc), rep.error_file[0] ? " at " : "", rep.error_file);
            return 1;
        }
        rc = crypt_mark_write(j->dir, ".next", j->new_key);
        if (rc != 0) {
            fprintf(stderr, "parley: cannot write ENCRYPTION.next: %s\n", strerror(-rc));
            return 1;
        }
        if (j->stop_after == 0)
            raise(SIGKILL);
    }
    if (log_files(j, "wal", ".wal", false) != 0 ||
        log_files(j, "snapshots", ".snap", true) != 0)
        return 1;
    char err[512];
    j->blobs = blobs_open(j->dir, err, sizeof(err));
    if (j->blobs == NULL) {
        fprintf(stderr, "parley: %s\n", err);
        return 1;
    }
    crypt_blobs_key(j->blobs, j->new_key);
    int rc = blobs_each(j->blobs, blob_file, j);
    blobs_close(j->blobs);
    if (rc != 0)
        return 1;
    char from[4200], to[4200];
    snprintf(from, sizeof(from), "%s/ENCRYPTION.next", j->dir);
    snprintf(to, sizeof(to), "%s/ENCRYPTION", j->dir);
    if (rename(from, to) != 0 || crypt_sync_dir(j->dir) != 0) {
        fprintf(stderr, "parley: cannot switch ENCRYPTION: %s\n", strerror(errno));
        return 1;
    }
    printf("%lu files re-sealed, %lu already under the new key; %s now opens with key id %s\n",
           j->done, j->skipped, j->dir, new_hex);
    return 0;
}

static int start(const char *dir, const uint8_t *old_key, const uint8_t *new_key)
{
    job_t j = {.dir = dir, .old_key = old_key, .new_key = new_key, .stop_after = -1};
    const char *stop = getenv("PARLEY_TEST_REKEY_STOP_AFTER");
    if (stop && *stop)
        j.stop_after = strtol(stop, NULL, 10);
    wal_key_id(new_key, j.new_id);
    if (old_key) {
        wal_key_id(old_key, j.old_id);
        if (memcmp(j.old_id, j.new_id, sizeof(j.old_id)) == 0) {
            fprintf(stderr, "parley: the old and the new key are the same\n");
            return 2;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "parley: %s is not a data directory\n", dir);
        return 2;
    }
    char err[512];
    int lock = datadir_lock(dir, err, sizeof(err));
    if (lock < 0) {
        fprintf(stderr, "parley: %s\n", err);
        return 1;
    }
    int rc = run(&j);
    datadir_unlock(lock);
    return rc;
}

/* Parses `--flag FILE` pairs into keys; the data dir into *dir. */
static int parse(int argc, char **argv, const char *usage, const char **dir, const char *f1,
                 uint8_t *k1, const char *f2, uint8_t *k2)
{
    bool h1 = false, h2 = f2 == NULL;
    *dir = NULL;
    for (int i = 0; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "%s", usage);
            return 2;
        }
        char err[512];
        if (strcmp(argv[i], "--data-dir") == 0) {
            *dir = argv[++i];
        } else if (strcmp(argv[i], f1) == 0 || (f2 && strcmp(argv[i], f2) == 0)) {
            bool first = strcmp(argv[i], f1) == 0;
            if (crypt_key_load(argv[++i], first ? k1 : k2, err, sizeof(err)) != 0) {
                fprintf(stderr, "parley: %s\n", err);
                return 2;
            }
            *(first ? &h1 : &h2) = true;
        } else {
            fprintf(stderr, "%s", usage);
            return 2;
        }
    }
    if (*dir == NULL || !h1 || !h2) {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    return 0;
}

int rekey_command(int argc, char **argv)
{
    uint8_t old_key[CRYPT_KEY_BYTES], new_key[CRYPT_KEY_BYTES];
    const char *dir;
    int rc = parse(argc, argv, "usage: parley rekey --data-dir DIR --old-key FILE --new-key FILE\n",
                   &dir, "--old-key", old_key, "--new-key", new_key);
    if (rc == 0)
        rc = start(dir, old_key, new_key);
    gnutls_memset(old_key, 0, sizeof(old_key));
    gnutls_memset(new_key, 0, sizeof(new_key));
    return rc;
}

int encrypt_command(int argc, char **argv)
{
    uint8_t key[CRYPT_KEY_BYTES];
    const char *dir;
    int rc = parse(argc, argv, "usage: parley encrypt --data-dir DIR --key FILE\n", &dir, "--key",
                   key, NULL, NULL);
    if (rc == 0)
        rc = start(dir, NULL, key);
    gnutls_memset(key, 0, sizeof(key));
    return rc;
}
