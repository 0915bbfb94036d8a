/*
 * Helpers shared by the unit tests: temporary directories (removed at the
 * end of the test, also when it fails), a store opened in one with test
 * settings, the snapshots of a data directory, and the leak check of the
 * ASan build. The file helpers of the log's tests come with it
 * (tests/wal/wal_testutil.h, linked into the unit tests too): tu_write,
 * tu_read, tu_exists, tu_count_entries, tu_rmrf...
 *
 * Every helper fails the running test (exit 1 in the forked child) on a
 * system error, so tests need not check their set-up.
 */
#ifndef PARLEY_UNIT_TESTUTIL_H
#define PARLEY_UNIT_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../wal/wal_testutil.h"
#include "parley/http.h"
#include "parley/store.h"

/* Which sanitizer this build runs under (clang's and gcc's spellings). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UT_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define UT_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(UT_ASAN)
#define UT_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(UT_TSAN)
#define UT_TSAN 1
#endif

/* ---- files and directories ---- */

/* Creates /tmp/parley-<tag>-XXXXXX into dir (at least 64 bytes). A failing
 * test's directories are removed when it exits; a passing test ends with
 * _exit (tests/test_main.c), so it calls ut_rmrf itself. */
void ut_tmpdir(char *dir, size_t size, const char *tag);
/* Removes a directory tree (or a file; a missing path is fine), and from
 * the list of those removed at exit. */
void ut_rmrf(const char *path);

/* ---- a store in a directory ---- */

/* Opens the store of `dir` with fsync ALWAYS, or the given policy. */
store_t *ut_store_open(const char *dir);
store_t *ut_store_open_mode(const char *dir, enum wal_fsync fsync);
/* Closes `s` (which must succeed: it writes a snapshot) and opens it again. */
store_t *ut_store_reopen(store_t *s, const char *dir);
/* Removes every snapshot of `dir`, or only the newest one. */
void ut_rm_snapshots(const char *dir);
void ut_rm_newest_snapshot(const char *dir);

/* ---- the OpenAPI document (docs/openapi.json, built into the server) ---- */

/* The document, parsed (caller json_decref's it); fails the test when it
 * is not JSON. */
json_t *ut_openapi_doc(void);
/* The operation object that describes `r` (":id" of the pattern is "{id}",
 * the method in lower case), borrowed from doc; NULL when there is none.
 * *path_item (may be NULL) is set to its path's object. */
json_t *ut_openapi_operation(json_t *doc, const http_route_t *r, json_t **path_item);

/* ---- memory ---- */

/* Under ASan, fails the test if memory leaked so far (the harness ends a
 * child with _exit, which skips LeakSanitizer's own check); else nothing. */
void ut_leak_check(void);

/* The next number of a xorshift64 sequence (*state: its non-zero state),
 * for tests that want many repeatable pseudo-random choices. */
uint64_t ut_xorshift(uint64_t *state);

#endif
