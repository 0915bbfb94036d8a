/*
 * libFuzzer harness: the backup archive reader (src/files/archive.c),
 * through backup_verify and, when an archive passes, backup_restore into a
 * scratch directory.
 *
 * The input is the archive before compression, cut into pieces at each
 * "\xffFRM" marker; each piece becomes its own zstd frame, as the writer
 * makes one per member (without markers: one frame for everything). So the
 * fuzzer works on tar headers, names, sizes and the manifest rather than on
 * zstd's checksums. A raw input starting "\x28\xb5\x2f\xfd" (zstd's magic)
 * is used as it is, for the decompression path.
 *
 * Beyond "no crash, no leak": a restore that succeeds leaves only the
 * target (no temporary directory), and nothing is ever written outside the
 * scratch directory (the harness checks that the scratch root holds only
 * the input file and the target).
 */
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "parley/backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    if (root[0])
        nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    if (root[0])
        return;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(root, sizeof(root), "%s/parley-fuzz-backup-XXXXXX", base);
    if (mkdtemp(root) == NULL)
        abort();
    atexit(cleanup);
}

/* Writes the pieces of `data` (split at the marker) as zstd frames. */
static void write_archive(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        abort();
    if (size >= 4 && memcmp(data, "\x28\xb5\x2f\xfd", 4) == 0) {
        fwrite(data, 1, size, f);
        fclose(f);
        return;
    }
    size_t cap = ZSTD_compressBound(size) + 64;
    uint8_t *out = malloc(cap);
    if (out == NULL)
        abort();
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        bool cut = i == size || (i + 4 <= size && memcmp(data + i, "\xff" "FRM", 4) == 0);
        if (!cut)
            continue;
        size_t n = ZSTD_compress(out, cap, data + start, i - start, 1);
        if (!ZSTD_isError(n))
            fwrite(out, 1, n, f);
        start = i + 4;
        i += 3;
    }
    free(out);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    char path[512], target[512];
    snprintf(path, sizeof(path), "%s/in.tar.zst", root);
    snprintf(target, sizeof(target), "%s/target", root);
    write_archive(path, data, size);
    char err[512];
    backup_summary_t sum;
    if (backup_verify(path, &sum, err, sizeof(err)) == 0) {
        int rc = backup_restore(path, target, false, &sum, err, sizeof(err));
        if (rc == 0) {
            struct stat st;
            if (stat(target, &st) != 0 || !S_ISDIR(st.st_mode))
                abort(); /* restored, but no target */
        }
    }
    /* Only the input and the target may be in the scratch root. */
    DIR *d = opendir(root);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "in.tar.zst") &&
            strcmp(e->d_name, "target"))
            abort(); /* a leftover temporary directory, or an escape */
    }
    if (d)
        closedir(d);
    nftw(target, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
