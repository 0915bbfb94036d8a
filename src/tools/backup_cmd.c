/*
 * `parley backup` and `parley restore` (docs/operations.md "Backups"):
 *
 *   parley backup --data-dir D --out FILE [--no-files]   offline, server stopped
 *   parley backup verify FILE
 *   parley restore FILE --data-dir NEW
 *
 * The offline backup takes the data-directory lock (so never beside a
 * running server: use GET /api/v1/admin/backup then), recovers the store as
 * a start would and writes the same archive the server streams
 * (src/files/backup.c). Verify reads a whole archive and checks it against
 * its manifest without writing anything; restore verifies first, then
 * extracts into a temporary directory and renames it (src/files/archive.c),
 * with a progress line only when stderr is a terminal. Exit 0 on success, 1
 * when the archive or the directory is refused (one line naming why), 2 on
 * a usage error.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parley/backup.h"
#include "parley/blobs.h"
#include "parley/datadir.h"
#include "parley/store.h"
#include "parley/tools.h"

static int usage(void)
{
    fprintf(stderr, "usage: parley backup --data-dir DIR --out FILE [--no-files]\n"
                    "       parley backup verify FILE\n"
                    "       parley restore FILE --data-dir NEW\n");
    return 2;
}

static void print_summary(const char *what, const char *path, const backup_summary_t *s)
{
    printf("%s: %s: lsn %llu, snapshot %llu, %llu members (%llu segments, %llu blobs), "
           "%llu bytes\n",
           what, path, (unsigned long long)s->lsn, (unsigned long long)s->snapshot_lsn,
           (unsigned long long)s->members, (unsigned long long)s->segments,
           (unsigned long long)s->blobs, (unsigned long long)s->bytes);
}

static int offline_backup(const char *dir, const char *out, bool include_files)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "parley: %s is not a data directory\n", dir);
        return 1;
    }
    char err[512];
    int lock = datadir_lock(dir, err, sizeof(err));
    if (lock < 0) {
        fprintf(stderr, "parley: %s (a running server backs up through GET "
                        "/api/v1/admin/backup)\n", err);
        return 1;
    }
    store_t *store = NULL;
    store_options_t so = {.fsync = WAL_FSYNC_ALWAYS};
    blobs_t *blobs = NULL;
    backup_t *bk = NULL;
    int rc = 1;
    if (store_open(&store, dir, &so, err, sizeof(err)) != 0 ||
        (blobs = blobs_open(dir, err, sizeof(err))) == NULL) {
        fprintf(stderr, "parley: %s\n", err);
        goto out;
    }
    if (backup_begin(store, blobs, dir, include_files, &bk) != 0) {
        fprintf(stderr, "parley: %s: the log cannot be synced\n", dir);
        goto out;
    }
    backup_summary_t sum;
    if (backup_to_path(bk, out, &sum, err, sizeof(err)) != 0) {
        fprintf(stderr, "parley: %s\n", err);
        goto out;
    }
    print_summary("backup", out, &sum);
    rc = 0;
out:
    backup_end(bk);
    blobs_close(blobs);
    if (store)
        store_close(store);
    datadir_unlock(lock);
    return rc;
}

int backup_command(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[0], "verify") == 0) {
        char err[512];
        backup_summary_t sum;
        if (backup_verify(argv[1], &sum, err, sizeof(err)) != 0) {
            fprintf(stderr, "parley: refused: %s\n", err);
            return 1;
        }
        print_summary("verified", argv[1], &sum);
        return 0;
    }
    const char *dir = NULL, *out = NULL;
    bool include_files = true;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--no-files") == 0)
            include_files = false;
        else
            return usage();
    }
    if (dir == NULL || out == NULL)
        return usage();
    return offline_backup(dir, out, include_files);
}

int restore_command(int argc, char **argv)
{
    const char *file = NULL, *dir = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (argv[i][0] != '-' && file == NULL)
            file = argv[i];
        else
            return usage();
    }
    if (file == NULL || dir == NULL)
        return usage();
    char err[512];
    backup_summary_t sum;
    if (backup_restore(file, dir, isatty(STDERR_FILENO) == 1, &sum, err, sizeof(err)) != 0) {
        fprintf(stderr, "parley: refused: %s\n", err);
        return 1;
    }
    print_summary("restored", dir, &sum);
    return 0;
}
