/*
 * Content-addressed file blobs (src/files/blobs.c, src/files/blobs_mime.c).
 *
 * An upload streams through a blob_writer_t into a temporary file under
 * <data>/files/tmp/, hashed with SHA-256 as the bytes arrive and typed by
 * libmagic from its first BLOB_HEAD_BYTES bytes (never from the client's file
 * name or Content-Type). blob_writer_finish() makes it durable and moves it
 * to its content address
 *
 *     <data>/files/ab/cd/<sha256>      (ab, cd: the first two hex pairs)
 *
 * unless a blob with that hash is already there (then the temp file is
 * deleted and the caller learns `deduplicated`). Once finish returns 0 the
 * blob and its directory entries are on stable storage, so a log record that
 * refers to it may be written.
 *
 * Reference counting is not this module's business: the store counts the
 * records naming each blob, and the files layer (include/parley/file_life.h)
 * calls blobs_remove() when the last one goes. blobs_remove() and a
 * blob_writer_finish() of the same bytes race (an upload may deduplicate
 * against a blob that is being removed): the caller serialises, for one
 * hash, "finish + record the new reference" against "refcount reached zero +
 * blobs_remove", with blobs_with_hash() around each. An upload that must be
 * judged by its hash or type before it is placed is sealed first
 * (blob_writer_seal: the slow fsync of its bytes, outside any hold).
 *
 * Errors: 0 (or a documented non-negative value) on success, a negative
 * errno for system errors (-ENOSPC, -EIO...), or a BLOB_E_* code below.
 * Out-parameters are left untouched on failure.
 *
 * Thread safety: every function may be called from any thread at once on one
 * blobs_t. A blob_writer_t belongs to one caller at a time (no locking inside).
 */
#ifndef PARLEY_BLOBS_H
#define PARLEY_BLOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BLOB_E_TOO_LARGE (-3001) /* the upload passed its max_bytes */
#define BLOB_E_BAD_HASH (-3002)  /* not 64 lowercase hex digits */
#define BLOB_E_MAGIC (-3003)     /* libmagic could not be loaded or failed */
#define BLOB_E_FAILED (-3004)    /* the writer failed earlier (sticky): abort it */
#define BLOB_E_ARG (-3005)       /* a NULL pointer or another bad argument */
#define BLOB_E_DAMAGED (-3006)   /* an encrypted blob does not open (altered, cut, other key) */

#define BLOB_SHA256_HEX_LEN 64
#define BLOB_MIME_MAX 128      /* including the NUL */
#define BLOB_HEAD_BYTES 16384  /* bytes kept and given to libmagic */
#define BLOB_NO_LIMIT UINT64_MAX

typedef struct blobs blobs_t;
typedef struct blob_writer blob_writer_t;

typedef struct blob_info {
    char sha256[BLOB_SHA256_HEX_LEN + 1]; /* lowercase hex */
    uint64_t size;                        /* bytes */
    char mime[BLOB_MIME_MAX];             /* libmagic's MIME type of the head */
    bool deduplicated;                    /* the blob was already stored */
    uint32_t width, height;               /* image_size of the head; 0 when unknown */
} blob_info_t;

/*
 * Opens the blob store of `data_dir` (which must exist; the caller holds the
 * data-directory lock, so no other process uses it). Creates <data>/files and
 * <data>/files/tmp (mode 0700, parents fsynced) when missing and removes every
 * file left in tmp/ by an earlier run (uploads cut short by a crash); the
 * count is logged and available from blobs_stale_removed(). Open one blobs_t
 * per data directory per process: opening deletes temp files of live writers.
 *
 * Returns the handle (owned by the caller, freed by blobs_close), or NULL with
 * a one-line reason in err (`data_dir` is copied; nothing is kept).
 */
blobs_t *blobs_open(const char *data_dir, char *err, size_t err_size);

/* Temp files removed by blobs_open(). */
size_t blobs_stale_removed(const blobs_t *b);

/*
 * Frees the handle (NULL is a no-op) and the calling thread's libmagic
 * handle (blobs_thread_cleanup). Every writer must be finished or aborted
 * first.
 */
void blobs_close(blobs_t *b);

/*
 * Starts an upload of at most `max_bytes` bytes (BLOB_NO_LIMIT: none): a temp
 * file made by mkstemp in files/tmp/ and a SHA-256 context.
 * OUT: *w, owned by the caller until blob_writer_finish or blob_writer_abort.
 * Returns 0, -errno (the temp file cannot be created), BLOB_E_ARG.
 */
int blob_writer_new(blobs_t *b, uint64_t max_bytes, blob_writer_t **w);

/*
 * Appends `len` bytes (`data` is only read during the call). Returns:
 *   0                 written and hashed;
 *   BLOB_E_TOO_LARGE  the total would pass max_bytes: nothing of this chunk
 *                     was written; the caller answers 413 and aborts;
 *   -errno            the write failed (-ENOSPC, -EIO...);
 *   BLOB_E_FAILED     an earlier call failed;
 *   BLOB_E_ARG        the writer is sealed (blob_writer_seal).
 * Every failure is sticky: the writer only accepts abort (or finish, which
 * then fails and cleans up).
 */
int blob_writer_write(blob_writer_t *w, const void *data, size_t len);

/*
 * Ends the upload and ALWAYS consumes `w` (freed, temp file gone), whatever
 * it returns. Durability order: fsync(temp file) (already done when the
 * writer was sealed); create files/ab and
 * files/ab/cd if needed, fsyncing the parent of each (once per process per
 * directory); link(temp -> content address); fsync(files/ab/cd); unlink(temp).
 * A blob already at the address (EEXIST) means deduplicated; the leaf
 * directory is fsynced in that case too (the blob may have just been linked
 * by a concurrent upload whose fsync has not finished).
 *
 * The MIME type is what libmagic says of the first BLOB_HEAD_BYTES bytes: an
 * empty upload is "application/x-empty" (libmagic's answer, reported as is);
 * if libmagic fails it is "application/octet-stream" and finish still
 * succeeds (logged).
 *
 * OUT: *out filled on success. Returns 0, the writer's sticky error,
 * -errno (fsync, mkdir, link/rename failures), BLOB_E_ARG.
 */
int blob_writer_finish(blob_writer_t *w, blob_info_t *out);

/*
 * Ends the writing without placing the blob: hashes, fsyncs the temp file
 * (step 1 of finish) and types the head. After it, blob_writer_write refuses
 * (BLOB_E_ARG) and only blob_writer_finish (which then places the blob) or
 * blob_writer_abort may follow; sealing twice gives the same answer. `w`
 * stays the caller's whatever this returns.
 * OUT: *out (sha256, size, mime; deduplicated is false: not known yet).
 * Returns 0, the writer's sticky error, -errno (fsync), BLOB_E_ARG.
 */
int blob_writer_seal(blob_writer_t *w, blob_info_t *out);

/* Removes the temp file and frees `w` (NULL is a no-op). */
void blob_writer_abort(blob_writer_t *w);

/*
 * Runs fn(ctx) while holding `sha256`: no other blobs_with_hash of the same
 * hash on `b` runs meanwhile (it waits), and calls for other hashes do not
 * wait for this one. For keeping "place a blob and record a reference to
 * it" apart from "find no reference left and remove the blob".
 * fn runs on the calling thread; it may take the store's locks and do I/O
 * (it holds up only the same hash), but must not call blobs_with_hash (one
 * hash at a time per thread: hashes have no order among themselves).
 * Returns fn's result, BLOB_E_BAD_HASH (fn not called), BLOB_E_ARG.
 */
/*
 * Pins the blob store for a backup: while pinned, blobs_remove keeps the
 * blob and notes its hash. blobs_unpin drops one pin; when the last goes it
 * hands back the noted hashes (*hashes malloc'd, 65 bytes each, the
 * caller frees; their removal must be decided again, file_life_recheck)
 * and returns their count. Thread-safe.
 */
void blobs_pin(blobs_t *b);
size_t blobs_unpin(blobs_t *b, char (**hashes)[BLOB_SHA256_HEX_LEN + 1]);

int blobs_with_hash(blobs_t *b, const char *sha256, int (*fn)(void *ctx), void *ctx);

/*
 * Writes "<data>/files/ab/cd/<sha256>" into out. `sha256` must be exactly 64
 * lowercase hex digits (anything else, "../" included, is refused).
 * Returns 0, BLOB_E_BAD_HASH, -ENAMETOOLONG (out too small).
 */
int blobs_path(blobs_t *b, const char *sha256, char *out, size_t out_size);

/*
 * Opens a blob read-only (O_CLOEXEC, O_NOFOLLOW) for serving.
 * OUT: *fd (the caller closes it), *size (bytes).
 * Returns 0, BLOB_E_BAD_HASH, -ENOENT (no such blob), other -errno.
 */
int blobs_open_read(blobs_t *b, const char *sha256, int *fd, uint64_t *size);

/*
 * Encryption at rest: from now on blobs are written sealed with `key`
 * (32 bytes; key_id: the first 8 bytes of its wal_key_id), and read and
 * checked through it (src/files/blob_crypt.c has the format). Call once,
 * right after blobs_open, before any other use. NULL: plain (the default).
 */
void blobs_set_key(blobs_t *b, const uint8_t key[32], const uint8_t key_id[8]);

/*
 * Reading a blob's content whether the store is plain or keyed (downloads,
 * Range requests, checks). OUT: *r (blob_reader_close), *size (content
 * bytes). Returns 0, BLOB_E_BAD_HASH, -ENOENT, BLOB_E_DAMAGED (keyed: the
 * header does not open or the size does not match), other -errno.
 * blob_reader_read gives up to len bytes at `off` (fewer at a chunk's end;
 * 0 at the end), or BLOB_E_DAMAGED when a chunk does not authenticate, or
 * -errno. Plain: one pread, no copy. A reader belongs to one thread.
 */
typedef struct blob_reader blob_reader_t;
int blobs_reader_open(blobs_t *b, const char *sha256, blob_reader_t **r, uint64_t *size);
ssize_t blob_reader_read(blob_reader_t *r, uint64_t off, void *buf, size_t len);
void blob_reader_close(blob_reader_t *r);

/*
 * `parley rekey` / `parley encrypt`: re-writes blob `sha256`, read through
 * src_key/src_id (NULL: stored plain), sealed under the store's key (set
 * with blobs_set_key) with a fresh data key: a temp file, fsynced, renamed
 * over the blob, its directory fsynced, so a crash leaves either version.
 * The content must hash to the name. Returns 1 when the blob already opens
 * with the store's key (nothing done), 0 when re-written, BLOB_E_DAMAGED,
 * BLOB_E_ARG (store not keyed), -errno.
 */
int blobs_reseal(blobs_t *b, const char *sha256, const uint8_t *src_key, const uint8_t *src_id);

/* Calls fn(ctx, sha256) for every well-named blob; stops at a non-zero
 * return, which it returns. */
int blobs_each(blobs_t *b, int (*fn)(void *ctx, const char *sha256), void *ctx);

/*
 * Unlinks a blob and fsyncs its directory. Empty ab/cd directories are kept
 * (a concurrent upload may be linking into them). Returns 0 (also when the
 * blob did not exist), BLOB_E_BAD_HASH, -errno.
 */
int blobs_remove(blobs_t *b, const char *sha256);

/* Whether a blob is stored (false for an invalid hash). */
bool blobs_exists(blobs_t *b, const char *sha256);

/*
 * Verifies the store for `parley files check`: walks files/ab/cd/<sha256>, re-hashes
 * every blob (64 KiB at a time) and calls fn(ctx, path, problem) for each
 * problem: a blob whose content does not hash to its name, an unreadable
 * blob, and anything that is not a blob (wrong name, wrong directory, not a
 * regular file, a symlink). files/tmp/ is skipped (live uploads). `path` and
 * `problem` are valid during the call only. fn may be NULL.
 * OUT: *n_blobs (may be NULL): well-named blobs examined.
 * Returns 0 when clean, the number of problems (> 0), or -errno when files/
 * cannot be read. Safe to run while the server writes (blobs removed during
 * the walk are skipped), but meant for an offline check.
 */
int blobs_check(blobs_t *b, void (*fn)(void *ctx, const char *path, const char *problem),
                void *ctx, uint64_t *n_blobs);

/*
 * The MIME type of `head` (the first bytes of a file; only the first
 * BLOB_HEAD_BYTES are examined) according to libmagic, e.g. "image/png".
 * Uses a libmagic handle private to the calling thread (a magic_t cannot be
 * shared), loaded on first use (~7 ms) and freed when the thread exits or
 * calls blobs_thread_cleanup(). Returns 0; BLOB_E_MAGIC when libmagic cannot
 * be loaded or fails (out is then "application/octet-stream"); -ERANGE when
 * the type does not fit in out (out is then "" if out_size > 0); BLOB_E_ARG
 * for a NULL head with len > 0.
 */
int blobs_detect_mime(const void *head, size_t len, char *out, size_t out_size);

/* The width and height of the image whose first len bytes are `head`, read
 * from its header (PNG IHDR, GIF, JPEG SOF, WebP VP8/VP8L/VP8X; image_size.c):
 * true with both above 0, else false with both 0 (not one of these, cut short
 * or corrupt). Reads only [head, head + len). */
bool image_size(const void *head, size_t len, uint32_t *width, uint32_t *height);

/*
 * Frees the calling thread's libmagic handle, if any. Threads that exit free
 * theirs automatically; call this from a thread that lives on (or let the
 * atexit handler do it for the thread that calls exit()).
 */
void blobs_thread_cleanup(void);

/* ---- internal, for tests ------------------------------------------------- */

/*
 * Makes finish behave as on a filesystem without hard links: the fallback
 * path (check, then rename over) instead of link(). Not for production.
 */
void blobs__test_disable_links(blobs_t *b, bool disable);

/* How many blobs_with_hash calls are waiting for `sha256` (0 when it is not
 * held), so that a test can wait for "blocked on the hash" as a condition. */
unsigned blobs__hash_waiters(blobs_t *b, const char *sha256);

#endif
