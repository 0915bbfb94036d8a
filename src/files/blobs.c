/*
 * Content-addressed blobs: uploads streamed to disk, hashed, typed and
 * stored once under <data>/files/ab/cd/<sha256>.
 *
 * DESIGN
 * An upload is never whole in memory: blob_writer_write() appends each chunk
 * to a temp file (mkstemp in files/tmp/, a random name, mode 0600), feeds it
 * to a GnuTLS SHA-256 context and keeps only the first BLOB_HEAD_BYTES for
 * libmagic (blobs_mime.c). The size limit is checked before a chunk is
 * written, so an oversize upload costs at most max_bytes of disk.
 *
 * Durability order (blob_writer_seal does 1, blob_writer_finish the rest,
 * and step 1 too when seal was not called), so that a log record written after
 * finish returns never names a blob a crash could lose or tear:
 *   1. fsync(temp file)                 the bytes are on disk;
 *   2. mkdir files/ab, fsync(files/)    only the first time this process uses
 *      mkdir files/ab/cd, fsync(ab/)    each directory (a bitmap of 256 + 65536
 *                                       bits), whether or not mkdir created it:
 *                                       a directory left by a crashed run may
 *                                       never have been made durable;
 *   3. link(tmp/<name>, ab/cd/<sha>)    atomic: the blob appears complete;
 *   4. fsync(files/ab/cd)               the name is on disk;
 *   5. unlink(tmp/<name>)               no fsync: a temp file that survives a
 *                                       crash is removed by blobs_open().
 * A blob at its address is therefore always complete; a crash between 3 and
 * the caller's log record leaves an unreferenced blob (harmless; a store-side
 * sweep can collect it), never a reference to a missing blob.
 *
 * Deduplication and concurrent uploads of the same bytes: link(2) is the
 * check. It creates the name only if it does not exist, atomically, so of N
 * concurrent finishes of identical bytes exactly one gets 0 (deduplicated =
 * false, it created the blob) and the others get EEXIST (deduplicated =
 * true) and drop their temp file. A stat-then-rename would let two uploads
 * both see "absent" and both report a new blob. The EEXIST path fsyncs the
 * leaf directory too: the winner may not have reached step 4 yet. An existing
 * entry that is not a regular file of our size (a torn or damaged blob, a
 * symlink) is replaced by rename(2), which is atomic as well.
 *
 * On a filesystem without hard links (link gives EPERM or EOPNOTSUPP: vfat,
 * some FUSE mounts) finish falls back to stat, then rename over: rename
 * replaces an identical blob atomically, so the result is still one correct
 * blob, but two racing uploads may both report deduplicated = false.
 *
 * Holding a hash (blobs_with_hash): the callers that add and drop references
 * to blobs (src/files/file_life.c) must keep "place a blob + record a
 * reference" apart from "no reference left + remove the blob" for one hash,
 * and only for that hash. blobs_t keeps a short list of the hashes in use
 * (one entry per operation in progress, so a linear search is enough) under
 * `hold_mu`; an operation on a held hash waits on that entry's condition
 * variable, an operation on any other hash does not wait at all. hold_mu is
 * held only to look at the list, never while the caller's function runs, so
 * it is a leaf lock. The caller's function runs on the calling thread (the
 * read-modify-write shape of store_user_modify), so no hold outlives its
 * call.
 *
 * Concurrency: blobs_t is read-only after blobs_open except the
 * directory-durability bitmap (atomic OR, set only after the fsync
 * succeeded; two threads fsyncing the same directory is merely redundant).
 * All paths are resolved relative to descriptors of files/ and files/tmp/
 * held open, and every hash is validated (64 lowercase hex) before it becomes
 * part of a path, so no client string can walk out of the store.
 */
#include "parley/blobs.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob_crypt.h"
#include "parley/hex.h"
#include "parley/log.h"
#include "parley/xalloc.h"

#define SHA256_LEN 32
#define REL_PATH_MAX 72 /* "ab/cd/" + 64 hex + NUL = 71 */
#define CHECK_BUF 65536

struct blobs {
    char *files_path; /* <data>/files */
    char *tmp_path;   /* <data>/files/tmp */
    int files_fd;
    int tmp_fd;
    size_t stale_removed;
    atomic_bool no_links; /* tests: take the no-hard-link path */
    /* Bit i set: directory i has been made durable by this process. */
    _Atomic uint64_t durable_ab[256 / 64];
    _Atomic uint64_t durable_leaf[65536 / 64];
    /* The hashes held by blobs_with_hash (see "Holding a hash"). */
    pthread_mutex_t hold_mu;
    struct hash_hold *holds; /* guarded by hold_mu */
    /* Backups' pins: removals wait while pinned (blobs_pin). guarded by hold_mu */
    unsigned pins;
    char (*deferred)[BLOB_SHA256_HEX_LEN + 1];
    size_t n_deferred, cap_deferred;
    /* Encryption at rest (blob_crypt.c): set once by blobs_set_key, before use. */
    bool keyed;
    uint8_t key[BLOB_CRYPT_KEY];
    uint8_t key_id[BLOB_CRYPT_KEY_ID];
};

/* One hash in use by blobs_with_hash: held by one caller, waited for by
 * `waiters` others. Freed by the release that finds no waiter, so a waiter's
 * pointer to it stays valid. Every field is guarded by blobs_t.hold_mu. */
typedef struct hash_hold {
    char sha[BLOB_SHA256_HEX_LEN + 1];
    bool held;
    unsigned waiters;
    pthread_cond_t cv; /* signalled when `held` becomes false */
    struct hash_hold *next;
} hash_hold_t;

struct blob_writer {
    blobs_t *b;
    int fd;
    char tmp_name[32]; /* in files/tmp/ */
    gnutls_hash_hd_t hash;
    uint64_t size;
    uint64_t max;
    int err; /* sticky: the first failure */
    bool sealed; /* blob_writer_seal succeeded: sha and mime are set, fd closed */
    char sha[BLOB_SHA256_HEX_LEN + 1];
    char mime[BLOB_MIME_MAX];
    size_t head_len;
    uint32_t width, height; /* image_size of the head, for images */
    unsigned char head[BLOB_HEAD_BYTES];
    /* Keyed stores: the content goes out in sealed chunks (blob_crypt.c). */
    gnutls_aead_cipher_hd_t cipher; /* NULL: plain */
    uint8_t data_key[BLOB_CRYPT_KEY];
    uint8_t *chunk;     /* BLOB_CRYPT_CHUNK plain bytes, then BLOB_CRYPT_CHUNK + tag sealed */
    size_t chunk_len;
    uint64_t chunk_idx;
};

/* ---- helpers ------------------------------------------------------------- */

static char *str_concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = xmalloc(la + lb + 1);
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

static bool valid_sha(const char *sha)
{
    return sha != NULL && strnlen(sha, BLOB_SHA256_HEX_LEN + 1) == BLOB_SHA256_HEX_LEN &&
           is_lower_hex(sha, BLOB_SHA256_HEX_LEN);
}

/* "ab/cd/<sha>" (REQUIRES: valid_sha(sha)). */
static void rel_path(const char *sha, char out[REL_PATH_MAX])
{
    snprintf(out, REL_PATH_MAX, "%.2s/%.2s/%s", sha, sha + 2, sha);
}

static int fsync_fd(int fd)
{
    return fsync(fd) == 0 ? 0 : -errno;
}

/* fsync of a directory named relative to dirfd. */
static int fsync_dir_at(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync_fd(fd);
    close(fd);
    return rc;
}

/* mkdir that tolerates an existing entry; sets *created. */
static int mkdir_at(int dirfd, const char *name, bool *created)
{
    *created = false;
    if (mkdirat(dirfd, name, 0700) == 0) {
        *created = true;
        return 0;
    }
    return errno == EEXIST ? 0 : -errno;
}

static bool bit_test(_Atomic uint64_t *bits, unsigned i)
{
    return (atomic_load_explicit(&bits[i / 64], memory_order_acquire) >> (i % 64)) & 1;
}

static void bit_set(_Atomic uint64_t *bits, unsigned i)
{
    atomic_fetch_or_explicit(&bits[i / 64], UINT64_C(1) << (i % 64), memory_order_release);
}

/*
 * Makes files/ab/cd exist durably (step 2 of the design) and opens it.
 * OUT: *leaf_fd (the caller closes it). REQUIRES: valid_sha(sha).
 */
static int open_leaf(blobs_t *b, const char *sha, int *leaf_fd)
{
    unsigned ab = (unsigned)(hex_digit(sha[0]) << 4 | hex_digit(sha[1]));
    unsigned leaf = ab << 8 | (unsigned)(hex_digit(sha[2]) << 4 | hex_digit(sha[3]));
    char name[8];
    bool created;
    int rc;

    snprintf(name, sizeof(name), "%.2s", sha);
    if (!bit_test(b->durable_ab, ab)) {
        if ((rc = mkdir_at(b->files_fd, name, &created)) < 0)
            return rc;
        if ((rc = fsync_fd(b->files_fd)) < 0)
            return rc;
        bit_set(b->durable_ab, ab);
    }
    snprintf(name, sizeof(name), "%.2s/%.2s", sha, sha + 2);
    if (!bit_test(b->durable_leaf, leaf)) {
        if ((rc = mkdir_at(b->files_fd, name, &created)) < 0)
            return rc;
        char parent[4];
        snprintf(parent, sizeof(parent), "%.2s", sha);
        if ((rc = fsync_dir_at(b->files_fd, parent)) < 0)
            return rc;
        bit_set(b->durable_leaf, leaf);
    }
    int fd = openat(b->files_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    *leaf_fd = fd;
    return 0;
}

/* A fresh directory stream on dirfd/name (its own offset, unlike dup). */
static DIR *open_dir_at(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return d;
}

static bool dot_or_dotdot(const char *n)
{
    return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

/* ---- open / close -------------------------------------------------------- */

/* Removes every non-directory entry of files/tmp/; returns the count. */
static size_t clean_tmp(blobs_t *b)
{
    size_t removed = 0;
    DIR *d = open_dir_at(b->tmp_fd, ".");
    if (d == NULL) {
        log_warning("blobs: cannot list %s: %s", b->tmp_path, strerror(errno));
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (dot_or_dotdot(e->d_name))
            continue;
        struct stat st;
        if (fstatat(b->tmp_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            log_warning("blobs: leaving directory %s/%s alone", b->tmp_path, e->d_name);
            continue;
        }
        if (unlinkat(b->tmp_fd, e->d_name, 0) == 0)
            removed++;
        else
            log_warning("blobs: cannot remove %s/%s: %s", b->tmp_path, e->d_name,
                        strerror(errno));
    }
    closedir(d);
    return removed;
}

blobs_t *blobs_open(const char *data_dir, char *err, size_t err_size)
{
    blobs_t *b = NULL;
    int dfd = -1;
    bool created;
    int rc;
    const char *what = data_dir;

    if (data_dir == NULL || data_dir[0] == '\0') {
        snprintf(err, err_size, "blobs: no data directory");
        return NULL;
    }
    b = xcalloc(1, sizeof(*b));
    b->files_fd = b->tmp_fd = -1;
    pthread_mutex_init(&b->hold_mu, NULL);
    b->files_path = str_concat(data_dir, "/files");
    b->tmp_path = str_concat(b->files_path, "/tmp");

    dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = -errno;
        goto fail;
    }
    what = b->files_path;
    if ((rc = mkdir_at(dfd, "files", &created)) < 0)
        goto fail;
    if (created && (rc = fsync_fd(dfd)) < 0)
        goto fail;
    b->files_fd = openat(dfd, "files", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (b->files_fd < 0) {
        rc = -errno;
        goto fail;
    }
    what = b->tmp_path;
    if ((rc = mkdir_at(b->files_fd, "tmp", &created)) < 0)
        goto fail;
    if (created && (rc = fsync_fd(b->files_fd)) < 0)
        goto fail;
    b->tmp_fd = openat(b->files_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (b->tmp_fd < 0) {
        rc = -errno;
        goto fail;
    }
    close(dfd);

    b->stale_removed = clean_tmp(b);
    if (b->stale_removed > 0)
        log_info("blobs: removed %zu unfinished upload(s) from %s", b->stale_removed,
                 b->tmp_path);
    return b;

fail:
    snprintf(err, err_size, "blobs: %s: %s", what, strerror(-rc));
    if (dfd >= 0)
        close(dfd);
    blobs_close(b);
    return NULL;
}

size_t blobs_stale_removed(const blobs_t *b)
{
    return b->stale_removed;
}

void blobs_close(blobs_t *b)
{
    blobs_thread_cleanup();
    if (b == NULL)
        return;
    if (b->files_fd >= 0)
        close(b->files_fd);
    if (b->tmp_fd >= 0)
        close(b->tmp_fd);
    assert(b->holds == NULL); /* every blobs_with_hash has returned */
    pthread_mutex_destroy(&b->hold_mu);
    free(b->deferred);
    free(b->files_path);
    free(b->tmp_path);
    free(b);
}

void blobs__test_disable_links(blobs_t *b, bool disable)
{
    atomic_store(&b->no_links, disable);
}

/* ---- writing ------------------------------------------------------------- */

static int write_all(int fd, const unsigned char *p, size_t len);
static int seal(blob_writer_t *w);
static bool hex_pair_name(const char *n);

int blob_writer_new(blobs_t *b, uint64_t max_bytes, blob_writer_t **out)
{
    if (b == NULL || out == NULL)
        return BLOB_E_ARG;
    blob_writer_t *w = malloc(sizeof(*w)); /* per upload: try-allocation */
    if (w == NULL)
        return -ENOMEM;
    w->b = b;
    w->size = 0;
    w->max = max_bytes;
    w->err = 0;
    w->sealed = false;
    w->head_len = 0;
    w->width = w->height = 0;
    w->hash = NULL;
    w->cipher = NULL;
    w->chunk = NULL;
    w->chunk_len = 0;
    w->chunk_idx = 0;

    size_t n = strlen(b->tmp_path) + sizeof("/up-XXXXXX");
    char *templ = malloc(n);
    if (templ == NULL) {
        free(w);
        return -ENOMEM;
    }
    snprintf(templ, n, "%s/up-XXXXXX", b->tmp_path);
    w->fd = mkostemp(templ, O_CLOEXEC);
    if (w->fd < 0) {
        int rc = -errno;
        log_error("blobs: cannot create a temp file in %s: %s", b->tmp_path, strerror(errno));
        free(templ);
        free(w);
        return rc;
    }
    snprintf(w->tmp_name, sizeof(w->tmp_name), "%s", strrchr(templ, '/') + 1);
    free(templ);
    if (gnutls_hash_init(&w->hash, GNUTLS_DIG_SHA256) < 0) {
        w->hash = NULL;
        blob_writer_abort(w);
        return -ENOMEM;
    }
    if (b->keyed) {
        static const uint8_t zero[BLOB_CRYPT_HEADER];
        w->chunk = malloc(2 * BLOB_CRYPT_CHUNK + BLOB_CRYPT_TAG);
        int rc = w->chunk == NULL ? -ENOMEM : 0;
        if (rc == 0 && blobs__crypt_new_data_key(w->data_key, &w->cipher) != 0) {
            w->cipher = NULL;
            rc = BLOB_E_FAILED;
        }
        if (rc == 0 && write(w->fd, zero, sizeof(zero)) != (ssize_t)sizeof(zero))
            rc = -errno;
        if (rc != 0) {
            blob_writer_abort(w);
            return rc;
        }
    }
    *out = w;
    return 0;
}

void blobs_set_key(blobs_t *b, const uint8_t key[32], const uint8_t key_id[8])
{
    b->keyed = key != NULL;
    if (key) {
        memcpy(b->key, key, BLOB_CRYPT_KEY);
        memcpy(b->key_id, key_id, BLOB_CRYPT_KEY_ID);
    }
}

/* Seals and writes the gathered chunk. */
static int write_chunk(blob_writer_t *w, bool last)
{
    uint8_t *sealed = w->chunk + BLOB_CRYPT_CHUNK;
    if (blobs__crypt_seal_chunk(w->cipher, w->chunk_idx, last, w->chunk, w->chunk_len, sealed) != 0)
        return BLOB_E_FAILED;
    int rc = write_all(w->fd, sealed, w->chunk_len + BLOB_CRYPT_TAG);
    if (rc == 0) {
        w->chunk_idx++;
        w->chunk_len = 0;
    }
    return rc;
}

/* A keyed writer's bytes: into the chunk; a full chunk goes out once more
 * bytes follow it (only then is it known not to be the last). */
static int write_sealed(blob_writer_t *w, const unsigned char *p, size_t len)
{
    while (len > 0) {
        if (w->chunk_len == BLOB_CRYPT_CHUNK) {
            int rc = write_chunk(w, false);
            if (rc != 0)
                return rc;
        }
        size_t take = BLOB_CRYPT_CHUNK - w->chunk_len;
        if (take > len)
            take = len;
        memcpy(w->chunk + w->chunk_len, p, take);
        w->chunk_len += take;
        p += take;
        len -= take;
    }
    return 0;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int blob_writer_write(blob_writer_t *w, const void *data, size_t len)
{
    if (w == NULL || (data == NULL && len > 0))
        return BLOB_E_ARG;
    if (w->err != 0)
        return BLOB_E_FAILED;
    if (w->sealed)
        return BLOB_E_ARG;
    if (len == 0)
        return 0;
    /* w->size <= w->max always holds, so the subtraction cannot wrap. */
    if ((uint64_t)len > w->max - w->size) {
        w->err = BLOB_E_TOO_LARGE;
        return w->err;
    }
    const unsigned char *p = data;
    if (w->head_len < BLOB_HEAD_BYTES) {
        size_t take = BLOB_HEAD_BYTES - w->head_len;
        if (take > len)
            take = len;
        memcpy(w->head + w->head_len, p, take);
        w->head_len += take;
    }
    if (gnutls_hash(w->hash, p, len) < 0) {
        w->err = BLOB_E_FAILED;
        return w->err;
    }
    int rc = w->cipher ? write_sealed(w, p, len) : write_all(w->fd, p, len);
    if (rc < 0) {
        if (rc != -ENOSPC) /* a full disk is the client's size, not news */
            log_error("blobs: write to %s/%s: %s", w->b->tmp_path, w->tmp_name, strerror(-rc));
        w->err = rc;
        return rc;
    }
    w->size += len;
    return 0;
}

/* Frees the writer; removes the temp file unless it was renamed away. */
static void writer_free(blob_writer_t *w, bool unlink_tmp)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->hash != NULL)
        gnutls_hash_deinit(w->hash, NULL);
    if (w->cipher != NULL)
        gnutls_aead_cipher_deinit(w->cipher);
    gnutls_memset(w->data_key, 0, sizeof(w->data_key));
    if (w->chunk != NULL) {
        gnutls_memset(w->chunk, 0, BLOB_CRYPT_CHUNK);
        free(w->chunk);
    }
    if (unlink_tmp && unlinkat(w->b->tmp_fd, w->tmp_name, 0) != 0 && errno != ENOENT)
        log_warning("blobs: cannot remove %s/%s: %s", w->b->tmp_path, w->tmp_name,
                    strerror(errno));
    free(w);
}

void blob_writer_abort(blob_writer_t *w)
{
    if (w != NULL)
        writer_free(w, true);
}

/*
 * Step 3 of the design: puts the (fsynced, closed) temp file at `sha` in
 * leaf_fd. OUT: *dedup, *renamed (the temp file is gone).
 */
static int place(blob_writer_t *w, int leaf_fd, const char *sha, bool *dedup, bool *renamed)
{
    blobs_t *b = w->b;
    struct stat st;

    *dedup = false;
    *renamed = false;
    if (!atomic_load(&b->no_links)) {
        if (linkat(b->tmp_fd, w->tmp_name, leaf_fd, sha, 0) == 0)
            return 0;
        if (errno != EEXIST && errno != EPERM && errno != EOPNOTSUPP && errno != ENOTSUP)
            return -errno;
        if (errno != EEXIST) {
            static atomic_bool logged;
            if (!atomic_exchange(&logged, true))
                log_warning("blobs: no hard links in %s (%s): using rename", b->files_path,
                            strerror(errno));
        }
    }
    /* EEXIST, or no hard links: look at what is there. */
    if (fstatat(leaf_fd, sha, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        uint64_t stored = w->cipher ? blobs__crypt_stored_size(w->size) : w->size;
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size == stored) {
            *dedup = true;
            return 0;
        }
        if (S_ISDIR(st.st_mode))
            return -EEXIST;
        log_warning("blobs: replacing damaged blob %s/%.2s/%.2s/%s (%s, %lld bytes)",
                    b->files_path, sha, sha + 2, sha,
                    S_ISREG(st.st_mode) ? "regular" : "not a regular file",
                    (long long)st.st_size);
    } else if (errno != ENOENT) {
        return -errno;
    }
    /* Absent (no-link fallback) or damaged: rename is atomic and replaces. */
    if (renameat(b->tmp_fd, w->tmp_name, leaf_fd, sha) != 0)
        return -errno;
    *renamed = true;
    return 0;
}

/*
 * Step 1 of the design and the hash: ends the writing, once (a sealed writer
 * is left as it is). A failure is sticky. REQUIRES: w is not NULL.
 */
static int seal(blob_writer_t *w)
{
    if (w->err != 0 || w->sealed)
        return w->err;
    unsigned char digest[SHA256_LEN];
    gnutls_hash_deinit(w->hash, digest);
    w->hash = NULL;
    hex_encode(digest, SHA256_LEN, w->sha);
    int rc = 0;
    if (w->cipher) { /* the last chunk, then the header that wraps the data key */
        uint8_t header[BLOB_CRYPT_HEADER];
        rc = write_chunk(w, true);
        if (rc == 0 && blobs__crypt_header(w->b->key, w->b->key_id, digest, w->size, w->data_key,
                                    header) != 0)
            rc = BLOB_E_FAILED;
        if (rc == 0 && pwrite(w->fd, header, sizeof(header), 0) != (ssize_t)sizeof(header))
            rc = -errno;
        if (rc != 0) {
            w->err = rc;
            return rc;
        }
    }
    rc = fsync_fd(w->fd);
    if (rc < 0) {
        log_error("blobs: fsync %s/%s: %s", w->b->tmp_path, w->tmp_name, strerror(-rc));
        w->err = rc;
        return rc;
    }
    close(w->fd);
    w->fd = -1;
    /* Only the head is examined; a failing libmagic yields octet-stream. */
    (void)blobs_detect_mime(w->head, w->head_len, w->mime, sizeof(w->mime));
    if (strncmp(w->mime, "image/", 6) == 0)
        (void)image_size(w->head, w->head_len, &w->width, &w->height);
    w->sealed = true;
    return 0;
}

static void sealed_info(const blob_writer_t *w, bool dedup, blob_info_t *out)
{
    memcpy(out->sha256, w->sha, sizeof(out->sha256));
    out->size = w->size;
    memcpy(out->mime, w->mime, sizeof(out->mime));
    out->deduplicated = dedup;
    out->width = w->width;
    out->height = w->height;
}

int blob_writer_seal(blob_writer_t *w, blob_info_t *out)
{
    if (w == NULL || out == NULL)
        return BLOB_E_ARG;
    int rc = seal(w);
    if (rc == 0)
        sealed_info(w, false, out);
    return rc;
}

int blob_writer_finish(blob_writer_t *w, blob_info_t *out)
{
    if (w == NULL)
        return BLOB_E_ARG;
    blobs_t *b = w->b;
    int leaf_fd = -1;
    bool dedup = false, renamed = false;
    int rc = w->err;

    if (rc != 0)
        goto out;
    if (out == NULL) {
        rc = BLOB_E_ARG;
        goto out;
    }
    /* 1. The bytes (unless blob_writer_seal did it). */
    if ((rc = seal(w)) < 0)
        goto out;
    const char *sha = w->sha;

    /* 2. The directories; 3. the name. */
    if ((rc = open_leaf(b, sha, &leaf_fd)) < 0) {
        log_error("blobs: directory for %s in %s: %s", sha, b->files_path, strerror(-rc));
        goto out;
    }
    if ((rc = place(w, leaf_fd, sha, &dedup, &renamed)) < 0) {
        log_error("blobs: storing %s: %s", sha, strerror(-rc));
        goto out;
    }
    /* 4. The name on disk (also when deduplicated: see the design). */
    if ((rc = fsync_fd(leaf_fd)) < 0) {
        log_error("blobs: fsync %s/%.2s/%.2s: %s", b->files_path, sha, sha + 2, strerror(-rc));
        goto out;
    }
    sealed_info(w, dedup, out);
    rc = 0;
out:
    if (leaf_fd >= 0)
        close(leaf_fd);
    writer_free(w, !renamed); /* 5. */
    return rc;
}

/* ---- holding a hash ------------------------------------------------------ */

/* REQUIRES: b->hold_mu held. */
static hash_hold_t *find_hold(blobs_t *b, const char *sha)
{
    for (hash_hold_t *h = b->holds; h != NULL; h = h->next)
        if (strcmp(h->sha, sha) == 0)
            return h;
    return NULL;
}

int blobs_with_hash(blobs_t *b, const char *sha256, int (*fn)(void *ctx), void *ctx)
{
    if (b == NULL || fn == NULL)
        return BLOB_E_ARG;
    if (!valid_sha(sha256))
        return BLOB_E_BAD_HASH;
    pthread_mutex_lock(&b->hold_mu);
    hash_hold_t *h = find_hold(b, sha256);
    if (h == NULL) {
        h = xcalloc(1, sizeof(*h));
        memcpy(h->sha, sha256, sizeof(h->sha));
        pthread_cond_init(&h->cv, NULL);
        h->next = b->holds;
        b->holds = h;
    } else {
        h->waiters++;
        while (h->held)
            pthread_cond_wait(&h->cv, &b->hold_mu);
        h->waiters--;
    }
    h->held = true;
    pthread_mutex_unlock(&b->hold_mu);

    int rc = fn(ctx);

    pthread_mutex_lock(&b->hold_mu);
    h->held = false;
    if (h->waiters > 0) {
        pthread_cond_signal(&h->cv);
    } else {
        hash_hold_t **pp = &b->holds;
        while (*pp != h)
            pp = &(*pp)->next;
        *pp = h->next;
        pthread_cond_destroy(&h->cv);
        free(h);
    }
    pthread_mutex_unlock(&b->hold_mu);
    return rc;
}

unsigned blobs__hash_waiters(blobs_t *b, const char *sha256)
{
    pthread_mutex_lock(&b->hold_mu);
    hash_hold_t *h = valid_sha(sha256) ? find_hold(b, sha256) : NULL;
    unsigned n = h ? h->waiters : 0;
    pthread_mutex_unlock(&b->hold_mu);
    return n;
}

/* ---- reading and removing ------------------------------------------------ */

int blobs_path(blobs_t *b, const char *sha256, char *out, size_t out_size)
{
    if (b == NULL || out == NULL)
        return BLOB_E_ARG;
    if (!valid_sha(sha256))
        return BLOB_E_BAD_HASH;
    char rel[REL_PATH_MAX];
    rel_path(sha256, rel);
    int n = snprintf(out, out_size, "%s/%s", b->files_path, rel);
    if (n < 0 || (size_t)n >= out_size) {
        if (out_size > 0)
            out[0] = '\0';
        return -ENAMETOOLONG;
    }
    return 0;
}

int blobs_open_read(blobs_t *b, const char *sha256, int *fd_out, uint64_t *size)
{
    if (b == NULL || fd_out == NULL || size == NULL)
        return BLOB_E_ARG;
    if (!valid_sha(sha256))
        return BLOB_E_BAD_HASH;
    char rel[REL_PATH_MAX];
    rel_path(sha256, rel);
    int fd = openat(b->files_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -ENOENT;
    }
    *fd_out = fd;
    *size = (uint64_t)st.st_size;
    return 0;
}

void blobs_pin(blobs_t *b)
{
    pthread_mutex_lock(&b->hold_mu);
    b->pins++;
    pthread_mutex_unlock(&b->hold_mu);
}

size_t blobs_unpin(blobs_t *b, char (**hashes)[BLOB_SHA256_HEX_LEN + 1])
{
    pthread_mutex_lock(&b->hold_mu);
    size_t n = 0;
    *hashes = NULL;
    if (b->pins > 0 && --b->pins == 0) {
        *hashes = b->deferred;
        n = b->n_deferred;
        b->deferred = NULL;
        b->n_deferred = b->cap_deferred = 0;
    }
    pthread_mutex_unlock(&b->hold_mu);
    return n;
}

/* Notes a removal asked for while a backup pins the blobs; true when
 * pinned (the blob stays). */
static bool defer_removal(blobs_t *b, const char *sha256)
{
    pthread_mutex_lock(&b->hold_mu);
    bool pinned = b->pins > 0;
    if (pinned) {
        if (b->n_deferred == b->cap_deferred) {
            b->cap_deferred = b->cap_deferred ? b->cap_deferred * 2 : 16;
            b->deferred = xrealloc(b->deferred, b->cap_deferred * sizeof(*b->deferred));
        }
        snprintf(b->deferred[b->n_deferred++], BLOB_SHA256_HEX_LEN + 1, "%s", sha256);
    }
    pthread_mutex_unlock(&b->hold_mu);
    return pinned;
}

/* ---- reading (plain or sealed) ------------------------------------------ */

struct blob_reader {
    int fd;
    uint64_t size;                /* plaintext bytes */
    gnutls_aead_cipher_hd_t h;    /* NULL: plain, pread straight through */
    uint8_t *buf;                 /* sealed: one opened chunk, then the sealed one */
    uint64_t cached;              /* which chunk buf holds */
    bool have;
};

void blob_reader_close(blob_reader_t *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    if (r->h)
        gnutls_aead_cipher_deinit(r->h);
    if (r->buf) {
        gnutls_memset(r->buf, 0, BLOB_CRYPT_CHUNK);
        free(r->buf);
    }
    free(r);
}

/* A reader through `key` (NULL: the file is plain). */
static int reader_open(blobs_t *b, const char *sha256, const uint8_t *key, const uint8_t *key_id,
                       blob_reader_t **out, uint64_t *size)
{
    int fd;
    uint64_t stored;
    int rc = blobs_open_read(b, sha256, &fd, &stored);
    if (rc != 0)
        return rc;
    blob_reader_t *r = calloc(1, sizeof(*r)); /* per download: try-allocation */
    if (r == NULL) {
        close(fd);
        return -ENOMEM;
    }
    r->fd = fd;
    r->size = stored;
    if (key) {
        uint8_t header[BLOB_CRYPT_HEADER], sha[SHA256_LEN];
        hex_decode(sha256, SHA256_LEN, sha);
        rc = pread(fd, header, sizeof(header), 0) == (ssize_t)sizeof(header) ? 0 : BLOB_E_DAMAGED;
        if (rc == 0 &&
            blobs__crypt_open_header(key, key_id, sha, header, &r->size, &r->h, NULL) != 0) {
            r->h = NULL;
            rc = BLOB_E_DAMAGED;
        }
        if (rc == 0 && blobs__crypt_stored_size(r->size) != stored)
            rc = BLOB_E_DAMAGED;
        if (rc == 0 && (r->buf = malloc(2 * BLOB_CRYPT_CHUNK + BLOB_CRYPT_TAG)) == NULL)
            rc = -ENOMEM;
        if (rc != 0) {
            blob_reader_close(r);
            return rc;
        }
    }
    *out = r;
    *size = r->size;
    return 0;
}

int blobs_reader_open(blobs_t *b, const char *sha256, blob_reader_t **out, uint64_t *size)
{
    if (b == NULL || out == NULL || size == NULL)
        return BLOB_E_ARG;
    return reader_open(b, sha256, b->keyed ? b->key : NULL, b->key_id, out, size);
}

ssize_t blob_reader_read(blob_reader_t *r, uint64_t off, void *buf, size_t len)
{
    if (off >= r->size || len == 0)
        return 0;
    if (len > r->size - off)
        len = (size_t)(r->size - off);
    if (r->h == NULL) {
        ssize_t n = pread(r->fd, buf, len, (off_t)off);
        return n < 0 ? -errno : n;
    }
    uint64_t i = off / BLOB_CRYPT_CHUNK;
    size_t at = (size_t)(off % BLOB_CRYPT_CHUNK);
    uint64_t n_chunks = blobs__crypt_chunks(r->size);
    size_t chunk_len =
        (size_t)(i + 1 < n_chunks ? BLOB_CRYPT_CHUNK : r->size - i * BLOB_CRYPT_CHUNK);
    if (!r->have || r->cached != i) {
        uint8_t *sealed = r->buf + BLOB_CRYPT_CHUNK;
        ssize_t n =
            pread(r->fd, sealed, chunk_len + BLOB_CRYPT_TAG, (off_t)blobs__crypt_chunk_offset(i));
        r->have = false;
        if (n != (ssize_t)(chunk_len + BLOB_CRYPT_TAG) ||
            blobs__crypt_open_chunk(r->h, i, i + 1 == n_chunks, sealed, chunk_len + BLOB_CRYPT_TAG,
                                    r->buf) != 0)
            return BLOB_E_DAMAGED;
        r->cached = i;
        r->have = true;
    }
    if (len > chunk_len - at)
        len = chunk_len - at;
    memcpy(buf, r->buf + at, len);
    return (ssize_t)len;
}

int blobs_reseal(blobs_t *b, const char *sha256, const uint8_t *src_key, const uint8_t *src_id)
{
    if (b == NULL || !b->keyed)
        return BLOB_E_ARG;
    if (!valid_sha(sha256))
        return BLOB_E_BAD_HASH;
    blob_reader_t *r;
    uint64_t size;
    if (reader_open(b, sha256, b->key, b->key_id, &r, &size) == 0) {
        blob_reader_close(r);
        return 1; /* already under the store's key */
    }
    int rc = reader_open(b, sha256, src_key, src_id, &r, &size);
    if (rc != 0)
        return rc;
    blob_writer_t *w;
    rc = blob_writer_new(b, BLOB_NO_LIMIT, &w);
    if (rc != 0) {
        blob_reader_close(r);
        return rc;
    }
    unsigned char *buf = xmalloc(CHECK_BUF);
    uint64_t off = 0;
    while (rc == 0 && off < size) {
        ssize_t n = blob_reader_read(r, off, buf, CHECK_BUF);
        if (n <= 0)
            rc = n < 0 ? (int)n : BLOB_E_DAMAGED;
        else if ((rc = blob_writer_write(w, buf, (size_t)n)) == 0)
            off += (uint64_t)n;
    }
    free(buf);
    blob_reader_close(r);
    if (rc == 0)
        rc = seal(w);
    if (rc == 0 && strcmp(w->sha, sha256) != 0)
        rc = BLOB_E_DAMAGED; /* the content does not hash to its name */
    int leaf_fd = -1;
    bool renamed = false;
    if (rc == 0)
        rc = open_leaf(b, sha256, &leaf_fd);
    if (rc == 0) {
        rc = renameat(b->tmp_fd, w->tmp_name, leaf_fd, sha256) == 0 ? 0 : -errno;
        renamed = rc == 0;
    }
    if (rc == 0)
        rc = fsync_fd(leaf_fd);
    if (leaf_fd >= 0)
        close(leaf_fd);
    writer_free(w, !renamed);
    return rc;
}

int blobs_each(blobs_t *b, int (*fn)(void *ctx, const char *sha256), void *ctx)
{
    if (b == NULL)
        return BLOB_E_ARG;
    int rc = 0;
    for (unsigned ab = 0; ab < 256 && rc == 0; ab++) {
        char name[8];
        snprintf(name, sizeof(name), "%02x", ab);
        DIR *d1 = open_dir_at(b->files_fd, name);
        if (d1 == NULL)
            continue;
        struct dirent *e1;
        while (rc == 0 && (e1 = readdir(d1)) != NULL) {
            if (!hex_pair_name(e1->d_name))
                continue;
            char leaf[300];
            snprintf(leaf, sizeof(leaf), "%s/%s", name, e1->d_name);
            DIR *d2 = open_dir_at(b->files_fd, leaf);
            if (d2 == NULL)
                continue;
            struct dirent *e2;
            while (rc == 0 && (e2 = readdir(d2)) != NULL)
                if (valid_sha(e2->d_name) && strncmp(e2->d_name, leaf, 2) == 0 &&
                    strncmp(e2->d_name + 2, e1->d_name, 2) == 0)
                    rc = fn(ctx, e2->d_name);
            closedir(d2);
        }
        closedir(d1);
    }
    return rc;
}

int blobs_remove(blobs_t *b, const char *sha256)
{
    if (b == NULL)
        return BLOB_E_ARG;
    if (!valid_sha(sha256))
        return BLOB_E_BAD_HASH;
    if (defer_removal(b, sha256))
        return 0;
    char leaf[8];
    snprintf(leaf, sizeof(leaf), "%.2s/%.2s", sha256, sha256 + 2);
    int leaf_fd = openat(b->files_fd, leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (leaf_fd < 0)
        return errno == ENOENT ? 0 : -errno;
    int rc = 0;
    if (unlinkat(leaf_fd, sha256, 0) != 0 && errno != ENOENT)
        rc = -errno;
    /* Even after ENOENT: a concurrent remove may not have fsynced yet. */
    if (rc == 0 && (rc = fsync_fd(leaf_fd)) < 0)
        log_error("blobs: fsync %s/%s: %s", b->files_path, leaf, strerror(-rc));
    close(leaf_fd);
    return rc;
}

bool blobs_exists(blobs_t *b, const char *sha256)
{
    if (b == NULL || !valid_sha(sha256))
        return false;
    char rel[REL_PATH_MAX];
    rel_path(sha256, rel);
    struct stat st;
    return fstatat(b->files_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* ---- verification -------------------------------------------------------- */

typedef struct check {
    blobs_t *b;
    void (*fn)(void *ctx, const char *path, const char *problem);
    void *ctx;
    uint64_t n_blobs;
    uint64_t problems;
    unsigned char *buf; /* CHECK_BUF bytes */
} check_t;

static void report(check_t *c, const char *rel, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(check_t *c, const char *rel, const char *fmt, ...)
{
    c->problems++;
    if (c->fn == NULL)
        return;
    char path[PATH_MAX + 64];
    char problem[256];
    snprintf(path, sizeof(path), "%s/%s", c->b->files_path, rel);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof(problem), fmt, ap);
    va_end(ap);
    c->fn(c->ctx, path, problem);
}

/* A keyed store's blob: every chunk opened, the plaintext re-hashed. */
static void check_sealed_blob(check_t *c, const char *rel, const char *sha)
{
    blob_reader_t *r;
    uint64_t size;
    int rc = blobs_reader_open(c->b, sha, &r, &size);
    if (rc == -ENOENT)
        return;
    c->n_blobs++;
    if (rc != 0) {
        report(c, rel, "%s", rc == BLOB_E_DAMAGED
                                 ? "does not decrypt: not encrypted, altered, or another key"
                                 : strerror(-rc));
        return;
    }
    gnutls_hash_hd_t h;
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
        blob_reader_close(r);
        report(c, rel, "cannot hash: GnuTLS failed");
        return;
    }
    uint64_t off = 0;
    ssize_t n = 0;
    while (off < size && (n = blob_reader_read(r, off, c->buf, CHECK_BUF)) > 0) {
        gnutls_hash(h, c->buf, (size_t)n);
        off += (uint64_t)n;
    }
    blob_reader_close(r);
    unsigned char digest[SHA256_LEN];
    gnutls_hash_deinit(h, digest);
    if (off < size) {
        report(c, rel, "chunk at byte %llu does not decrypt: altered or cut",
               (unsigned long long)off);
        return;
    }
    char hex[BLOB_SHA256_HEX_LEN + 1];
    hex_encode(digest, SHA256_LEN, hex);
    if (strcmp(hex, sha) != 0)
        report(c, rel, "hash mismatch: content hashes to %s", hex);
}

/* Re-hashes one well-named regular file (rel: "ab/cd/<sha>"). */
static void check_blob(check_t *c, const char *rel, const char *sha)
{
    if (c->b->keyed) {
        check_sealed_blob(c, rel, sha);
        return;
    }
    int fd = openat(c->b->files_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno != ENOENT) /* removed during the walk: not a problem */
            report(c, rel, "unreadable: %s", strerror(errno));
        return;
    }
    c->n_blobs++;
    gnutls_hash_hd_t h;
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
        close(fd);
        report(c, rel, "cannot hash: GnuTLS failed");
        return;
    }
    int err = 0;
    for (;;) {
        ssize_t n = read(fd, c->buf, CHECK_BUF);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            break;
        }
        if (n == 0)
            break;
        gnutls_hash(h, c->buf, (size_t)n);
    }
    close(fd);
    unsigned char digest[SHA256_LEN];
    gnutls_hash_deinit(h, digest);
    if (err != 0) {
        report(c, rel, "unreadable: %s", strerror(err));
        return;
    }
    char hex[BLOB_SHA256_HEX_LEN + 1];
    hex_encode(digest, SHA256_LEN, hex);
    if (strcmp(hex, sha) != 0)
        report(c, rel, "hash mismatch: content hashes to %s", hex);
}

static int sorted_entries(int dirfd, const char *rel, struct dirent ***list)
{
    int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    int n = scandirat(fd, ".", list, NULL, alphasort);
    int rc = n < 0 ? -errno : n;
    close(fd);
    return rc;
}

static void free_entries(struct dirent **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* Kind of an entry, without following symlinks: 'd', 'f', 'o'ther, 0 gone. */
static char kind_at(int dirfd, const char *rel)
{
    struct stat st;
    if (fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    return S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : 'o';
}

static bool hex_pair_name(const char *n)
{
    return strlen(n) == 2 && is_lower_hex(n, 2);
}

static void check_leaf(check_t *c, const char *ab, const char *cd)
{
    char dir[8];
    snprintf(dir, sizeof(dir), "%.2s/%.2s", ab, cd);
    struct dirent **list;
    int n = sorted_entries(c->b->files_fd, dir, &list);
    if (n < 0) {
        report(c, dir, "unreadable directory: %s", strerror(-n));
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        if (dot_or_dotdot(name))
            continue;
        char rel[PATH_MAX];
        snprintf(rel, sizeof(rel), "%s/%s", dir, name);
        char k = kind_at(c->b->files_fd, rel);
        if (k == 0)
            continue;
        if (!valid_sha(name))
            report(c, rel, "not a blob: the name is not a lowercase SHA-256");
        else if (name[0] != ab[0] || name[1] != ab[1] || name[2] != cd[0] || name[3] != cd[1])
            report(c, rel, "not a blob: in the wrong directory");
        else if (k != 'f')
            report(c, rel, "not a blob: not a regular file");
        else
            check_blob(c, rel, name);
    }
    free_entries(list, n);
}

static void check_ab(check_t *c, const char *ab)
{
    struct dirent **list;
    int n = sorted_entries(c->b->files_fd, ab, &list);
    if (n < 0) {
        report(c, ab, "unreadable directory: %s", strerror(-n));
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        if (dot_or_dotdot(name))
            continue;
        char rel[PATH_MAX];
        snprintf(rel, sizeof(rel), "%s/%s", ab, name);
        char k = kind_at(c->b->files_fd, rel);
        if (k == 0)
            continue;
        if (hex_pair_name(name) && k == 'd')
            check_leaf(c, ab, name);
        else
            report(c, rel, "not a blob: stray entry in the blob tree");
    }
    free_entries(list, n);
}

int blobs_check(blobs_t *b, void (*fn)(void *ctx, const char *path, const char *problem),
                void *ctx, uint64_t *n_blobs)
{
    if (b == NULL)
        return BLOB_E_ARG;
    check_t c = {.b = b, .fn = fn, .ctx = ctx};
    struct dirent **list;
    int n = sorted_entries(b->files_fd, ".", &list);
    if (n < 0)
        return n;
    c.buf = xmalloc(CHECK_BUF);
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        if (dot_or_dotdot(name))
            continue;
        char k = kind_at(b->files_fd, name);
        if (k == 0)
            continue;
        if (strcmp(name, "tmp") == 0 && k == 'd')
            continue; /* uploads in progress */
        if (hex_pair_name(name) && k == 'd')
            check_ab(&c, name);
        else
            report(&c, name, "not a blob: stray entry in the blob tree");
    }
    free_entries(list, n);
    free(c.buf);
    if (n_blobs != NULL)
        *n_blobs = c.n_blobs;
    return c.problems > INT_MAX ? INT_MAX : (int)c.problems;
}
