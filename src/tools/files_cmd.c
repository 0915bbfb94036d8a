/*
 * `parley files check <data-dir>`: the uploaded files against their records.
 * Every blob's SHA-256 must match its name (blobs_check re-hashes them all),
 * nothing but blobs may sit in the blob tree, and every live file record must
 * find its blob. It takes the data-directory lock (so never while a server
 * runs) and recovers the store exactly as a start would, then changes
 * nothing. Exit 0 when everything holds, 1 with one line per problem.
 * An encrypted directory needs --encryption-key-file: each blob is then
 * decrypted (every chunk's tag checked) before it is hashed.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "parley/blobs.h"
#include "parley/datadir.h"
#include "parley/files.h"
#include "parley/store.h"
#include "parley/tools.h"

typedef struct check_ctx {
    blobs_t *blobs;
    uint64_t problems;
    uint64_t referenced;
} check_ctx_t;

static void blob_problem(void *ctx, const char *path, const char *problem)
{
    check_ctx_t *cc = ctx;
    cc->problems++;
    printf("damaged: %s: %s\n", path, problem);
}

static void check_reference(void *ctx, const char *sha256, uint64_t refs)
{
    check_ctx_t *cc = ctx;
    cc->referenced++;
    if (!blobs_exists(cc->blobs, sha256)) {
        cc->problems++;
        printf("missing: blob %s, named by %llu file%s\n", sha256, (unsigned long long)refs,
               refs == 1 ? "" : "s");
    }
}

int files_command(int argc, char **argv)
{
    static uint8_t key[CRYPT_KEY_BYTES];
    bool have_key;
    if (crypt_key_option(&argc, argv, key, &have_key, "--encryption-key-file") != 0)
        return 2;
    if (argc != 2 || strcmp(argv[0], "check") != 0) {
        fprintf(stderr, "usage: parley files check [--encryption-key-file FILE] <data-dir>\n");
        return 2;
    }
    const char *dir = argv[1];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "parley: %s is not a data directory\n", dir);
        return 1;
    }
    char err[512];
    if (crypt_dir_check(dir, have_key ? key : NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "parley: %s\n", err);
        return 2;
    }
    int lock = datadir_lock(dir, err, sizeof(err));
    if (lock < 0) {
        fprintf(stderr, "parley: %s\n", err);
        return 1;
    }
    store_t *store = NULL;
    store_options_t so = {.fsync = WAL_FSYNC_ALWAYS, .encryption_key = have_key ? key : NULL};
    blobs_t *blobs = NULL;
    int rc = 1;
    if (store_open(&store, dir, &so, err, sizeof(err)) != 0 ||
        (blobs = blobs_open(dir, err, sizeof(err))) == NULL) {
        fprintf(stderr, "parley: %s\n", err);
        goto out;
    }
    crypt_blobs_key(blobs, have_key ? key : NULL);
    check_ctx_t cc = {.blobs = blobs};
    uint64_t n_blobs = 0;
    blobs_check(blobs, blob_problem, &cc, &n_blobs);
    store_blob_each(store, check_reference, &cc);
    printf("%llu blobs, %llu named by files, %llu problems\n", (unsigned long long)n_blobs,
           (unsigned long long)cc.referenced, (unsigned long long)cc.problems);
    rc = cc.problems ? 1 : 0;
    if (rc == 0)
        printf("ok\n");
out:
    blobs_close(blobs);
    if (store)
        store_close(store);
    datadir_unlock(lock);
    return rc;
}
