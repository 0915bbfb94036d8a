/*
 * The scratch data directory of the log's fuzz harnesses (fuzz_wal_recover,
 * fuzz_snapshot_load): made once per process with mkdtemp, on /dev/shm when
 * it exists (the library syncs files and directories on every open, which
 * tmpfs makes free); its wal/ and snapshots/ are emptied before each input
 * and the whole removed at exit. Static functions: each harness is one
 * translation unit.
 */
#ifndef PARLEY_FUZZ_TMPDIR_H
#define PARLEY_FUZZ_TMPDIR_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char root[256];

/* Removes the files of <root>/<sub>. */
static void empty_dir(const char *sub)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, sub);
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char file[1024];
        snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
        unlink(file);
    }
    closedir(d);
}

static void cleanup(void)
{
    char path[512];
    empty_dir("wal");
    empty_dir("snapshots");
    snprintf(path, sizeof(path), "%s/wal", root);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/snapshots", root);
    rmdir(path);
    rmdir(root);
}

/* Makes root (<base>/<name>-XXXXXX) on the first call; false if it cannot. */
static bool setup(const char *name)
{
    if (root[0])
        return true;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(root, sizeof(root), "%s/%s-XXXXXX", base ? base : "/tmp", name);
    if (mkdtemp(root) == NULL) {
        root[0] = '\0';
        return false;
    }
    atexit(cleanup);
    return true;
}

/* Writes size bytes of data to path; false if it cannot. */
static bool write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return false;
    bool ok = size == 0 || fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

#endif
