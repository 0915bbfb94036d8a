/* Helpers shared by the unit tests (testutil.h). */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"

#ifdef UT_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* ---- files and directories ---- */

/* The directories this test made and has not removed yet, removed at exit
 * by the process that made them (not by a child it forked). */
#define MAX_DIRS 16
static char dirs[MAX_DIRS][64];
static pid_t dirs_pid;

static int rm_quietly(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Not tu_rmrf: a test may not fail (exit) again while it exits. */
static void rm_dirs_at_exit(void)
{
    if (getpid() != dirs_pid)
        return;
    for (int i = 0; i < MAX_DIRS; i++)
        if (dirs[i][0] != '\0')
            nftw(dirs[i], rm_quietly, 16, FTW_DEPTH | FTW_PHYS);
}

void ut_tmpdir(char *dir, size_t size, const char *tag)
{
    snprintf(dir, size, "/tmp/parley-%s-XXXXXX", tag);
    if (mkdtemp(dir) == NULL)
        TEST_FAIL_("mkdtemp %s: %s", dir, strerror(errno));
    if (dirs_pid != getpid()) { /* the first in this test's process */
        memset(dirs, 0, sizeof(dirs));
        dirs_pid = getpid();
        atexit(rm_dirs_at_exit);
    }
    for (int i = 0; i < MAX_DIRS; i++)
        if (dirs[i][0] == '\0') {
            snprintf(dirs[i], sizeof(dirs[i]), "%s", dir);
            return;
        }
}

void ut_rmrf(const char *path)
{
    tu_rmrf(path);
    for (int i = 0; i < MAX_DIRS; i++)
        if (strcmp(dirs[i], path) == 0)
            dirs[i][0] = '\0';
}

/* ---- a store in a directory ---- */

store_t *ut_store_open_mode(const char *dir, enum wal_fsync fsync)
{
    store_t *s;
    char err[256];
    store_options_t o = {.fsync = fsync};
    if (store_open(&s, dir, &o, err, sizeof(err)) != 0)
        TEST_FAIL_("store_open %s: %s", dir, err);
    return s;
}

store_t *ut_store_open(const char *dir)
{
    return ut_store_open_mode(dir, WAL_FSYNC_ALWAYS);
}

store_t *ut_store_reopen(store_t *s, const char *dir)
{
    ASSERT_EQ(store_close(s), 0);
    return ut_store_open(dir);
}

/* Removes the files of <dir>/snapshots, all or the last by name (the names
 * are zero-padded LSNs, so the last is the newest). */
static void rm_snapshots(const char *dir, bool newest_only)
{
    char sub[512];
    snprintf(sub, sizeof(sub), "%s/snapshots", dir);
    struct dirent **names;
    int n = scandir(sub, &names, NULL, alphasort);
    if (n < 0)
        TEST_FAIL_("scandir %s: %s", sub, strerror(errno));
    int removed = 0;
    for (int i = n - 1; i >= 0; i--) {
        const char *name = names[i]->d_name;
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
            (!newest_only || removed == 0)) {
            char path[1024];
            snprintf(path, sizeof(path), "%s/%s", sub, name);
            if (unlink(path) != 0)
                TEST_FAIL_("unlink %s: %s", path, strerror(errno));
            removed++;
        }
        free(names[i]);
    }
    free(names);
    if (newest_only && removed == 0)
        TEST_FAIL_("no snapshot in %s", sub);
}

void ut_rm_snapshots(const char *dir)
{
    rm_snapshots(dir, false);
}

void ut_rm_newest_snapshot(const char *dir)
{
    rm_snapshots(dir, true);
}

/* ---- memory ---- */

void ut_leak_check(void)
{
#ifdef UT_ASAN
    if (__lsan_do_recoverable_leak_check() != 0)
        TEST_FAIL_("memory leaked (the report is above)");
#endif
}

extern const char parley_openapi_json[];
extern const char parley_openapi_json_end[];

json_t *ut_openapi_doc(void)
{
    json_error_t jerr;
    json_t *doc = json_loadb(parley_openapi_json,
                             (size_t)(parley_openapi_json_end - parley_openapi_json), 0, &jerr);
    if (doc == NULL)
        TEST_FAIL_("docs/openapi.json: %s", jerr.text);
    return doc;
}

json_t *ut_openapi_operation(json_t *doc, const http_route_t *r, json_t **path_item)
{
    char path[256] = "";
    for (const char *p = r->pattern; *p;) {
        if (*p == ':') {
            size_t k = strcspn(p + 1, "/");
            strcat(path, "{");
            strncat(path, p + 1, k);
            strcat(path, "}");
            p += 1 + k;
        } else {
            strncat(path, p, 1);
            p++;
        }
    }
    char method[16];
    size_t i = 0;
    for (; r->method[i] && i < sizeof(method) - 1; i++)
        method[i] = (char)(r->method[i] | 0x20);
    method[i] = '\0';
    json_t *item = json_object_get(json_object_get(doc, "paths"), path);
    if (path_item != NULL)
        *path_item = item;
    json_t *op = json_object_get(item, method);
    return json_is_object(op) ? op : NULL;
}

uint64_t ut_xorshift(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}
