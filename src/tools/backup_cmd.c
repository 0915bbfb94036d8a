/*
 * `parley backup` and `parley restore` (docs/operations.md "Backups"):
 *
 *   parley backup --data-dir D --out FILE [--no-files]   offline, server stopped
 *   parley backup --url URL [--api-key K] --out FILE [--no-files]
 *                                                        online, through the API
 *   parley backup verify FILE
 *   parley restore FILE --data-dir NEW
 *
 * The offline backup takes the data-directory lock (so never beside a
 * running server: use GET /api/v1/admin/backup then), recovers the store as
 * a start would and writes the same archive the server streams
 * (src/files/backup.c). The online backup streams GET /api/v1/admin/backup
 * (an admin API key with `read`, from --api-key or PARLEY_API_KEY, which
 * keeps it out of the process list) through ulfius's client into a
 * temporary file beside FILE, verifies it like `backup verify`, and only
 * then renames it to FILE. Verify reads a whole archive and checks it against
 * its manifest without writing anything; restore verifies first, then
 * extracts into a temporary directory and renames it (src/files/archive.c),
 * with a progress line only when stderr is a terminal. Exit 0 on success, 1
 * when the archive or the directory is refused (one line naming why), 2 on
 * a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ulfius.h>
#include <unistd.h>

#include "parley/backup.h"
#include "parley/blobs.h"
#include "parley/datadir.h"
#include "parley/store.h"
#include "parley/tools.h"

static int usage(void)
{
    fprintf(stderr, "usage: parley backup --data-dir DIR [--encryption-key-file FILE] --out FILE "
                    "[--no-files]\n"
                    "       parley backup --url URL [--api-key KEY] --out FILE [--no-files]\n"
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

static int offline_backup(const char *dir, const uint8_t *data_key, const char *out,
                          bool include_files)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "parley: %s is not a data directory\n", dir);
        return 1;
    }
    char err[512];
    /* An encrypted directory's log is opened with its key (the archive
     * still holds the sealed files as they are). */
    if (crypt_dir_check(dir, data_key, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "parley: %s\n", err);
        return 2;
    }
    int lock = datadir_lock(dir, err, sizeof(err));
    if (lock < 0) {
        fprintf(stderr, "parley: %s (a running server backs up through GET "
                        "/api/v1/admin/backup)\n", err);
        return 1;
    }
    store_t *store = NULL;
    store_options_t so = {.fsync = WAL_FSYNC_ALWAYS, .encryption_key = data_key};
    blobs_t *blobs = NULL;
    backup_t *bk = NULL;
    int rc = 1;
    if (store_open(&store, dir, &so, err, sizeof(err)) != 0 ||
        (blobs = blobs_open(dir, err, sizeof(err))) == NULL) {
        fprintf(stderr, "parley: %s\n", err);
        goto out;
    }
    crypt_blobs_key(blobs, data_key);
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

typedef struct download {
    FILE *f;
    size_t head_len; /* the first bytes, for an error's message */
    char head[512];
} download_t;

static size_t write_body(void *contents, size_t size, size_t nmemb, void *user)
{
    download_t *d = user;
    size_t n = size * nmemb;
    if (d->head_len < sizeof(d->head) - 1) {
        size_t k = n < sizeof(d->head) - 1 - d->head_len ? n : sizeof(d->head) - 1 - d->head_len;
        memcpy(d->head + d->head_len, contents, k);
        d->head_len += k;
        d->head[d->head_len] = '\0';
    }
    return fwrite(contents, 1, n, d->f);
}

static int online_backup(const char *url, const char *key, const char *out, bool include_files)
{
    if (key == NULL || key[0] == '\0') {
        fprintf(stderr, "parley: --api-key (or PARLEY_API_KEY) is needed with --url\n");
        return 2;
    }
    if (access(out, F_OK) == 0) {
        fprintf(stderr, "parley: %s: exists (a backup never overwrites)\n", out);
        return 1;
    }
    char tmp[4200], full[4200];
    snprintf(tmp, sizeof(tmp), "%s.part", out);
    size_t ul = strlen(url);
    while (ul > 0 && url[ul - 1] == '/')
        ul--;
    snprintf(full, sizeof(full), "%.*s/api/v1/admin/backup?include_files=%s", (int)ul, url,
             include_files ? "true" : "false");
    download_t d = {.f = fopen(tmp, "wx")};
    if (d.f == NULL) {
        fprintf(stderr, "parley: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    struct _u_request req;
    struct _u_response resp;
    ulfius_init_request(&req);
    ulfius_init_response(&resp);
    ulfius_set_request_properties(&req, U_OPT_HTTP_VERB, "GET", U_OPT_HTTP_URL, full,
                                  U_OPT_HEADER_PARAMETER, "X-API-Key", key, U_OPT_NONE);
    int rc = ulfius_send_http_streaming_request(&req, &resp, write_body, &d);
    long status = resp.status;
    ulfius_clean_request(&req);
    ulfius_clean_response(&resp);
    bool written = fflush(d.f) == 0 && fsync(fileno(d.f)) == 0;
    fclose(d.f);
    if (rc != U_OK || status != 200 || !written) {
        fprintf(stderr, "parley: %s: %s%s\n", full,
                rc != U_OK ? "the request failed" : !written ? "cannot write " : "refused: ",
                rc != U_OK ? "" : !written ? tmp : d.head);
        unlink(tmp);
        return 1;
    }
    char err[512];
    backup_summary_t sum;
    if (backup_verify(tmp, &sum, err, sizeof(err)) != 0) {
        fprintf(stderr, "parley: the archive received is refused: %s\n", err);
        unlink(tmp);
        return 1;
    }
    if (rename(tmp, out) != 0) {
        fprintf(stderr, "parley: %s: %s\n", out, strerror(errno));
        unlink(tmp);
        return 1;
    }
    print_summary("backup", out, &sum);
    return 0;
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
    static uint8_t data_key[CRYPT_KEY_BYTES];
    bool have_data_key;
    if (crypt_key_option(&argc, argv, data_key, &have_data_key, "--encryption-key-file") != 0)
        return 2;
    const char *dir = NULL, *out = NULL, *url = NULL, *key = getenv("PARLEY_API_KEY");
    bool include_files = true;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            url = argv[++i];
        else if (strcmp(argv[i], "--api-key") == 0 && i + 1 < argc)
            key = argv[++i];
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--no-files") == 0)
            include_files = false;
        else
            return usage();
    }
    if (out == NULL || (dir == NULL) == (url == NULL))
        return usage();
    if (url != NULL && have_data_key)
        return usage(); /* the server reads its own directory */
    if (url != NULL)
        return online_backup(url, key, out, include_files);
    return offline_backup(dir, have_data_key ? data_key : NULL, out, include_files);
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
