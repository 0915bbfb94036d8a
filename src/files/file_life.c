/*
 * File life: an upload's blob and record made together, a file's deletion
 * and the removal of its blob once nothing names it (include/parley/file_life.h).
 *
 * DESIGN
 * The store counts the live records naming each blob (store_blob_refs,
 * derived at apply, replay included); a blob is removed when that count is
 * 0. Two rules keep a record from ever naming a missing blob:
 *
 *   durability  a blob is fsynced and linked at its address before the record
 *               naming it is logged (file_life_add: blob_writer_finish, then
 *               store_file_put); a blob is unlinked only after the record
 *               that dropped its last reference is durable (file_life_remove:
 *               store_wait, then the removal).
 *   exclusion   for one hash, "place the blob (or find it present) + apply
 *               the new record" and "find the count at 0 + unlink the blob"
 *               never interleave. Otherwise an upload could deduplicate
 *               against a blob, a removal see the count still at 0 and
 *               unlink it, and the upload's record then name nothing.
 *
 * What is locked: the hash, and only the hash. Both steps run inside
 * blobs_with_hash(b, sha, ...), the blob store's table of hashes in use (a
 * mutex-guarded list with a condition variable per entry, blobs.c); an
 * operation on hash H waits only for another operation on H. The shape is
 * store_user_modify's: the caller's read-modify-write runs as a callback
 * under the lock, so no lock is ever left held. Whichever of the two steps
 * runs first, the other sees its effect: a removal that comes second finds
 * the new record counted (applied in memory, durable or not) and keeps the
 * blob; an upload that comes second finds the blob gone and links its own.
 *
 * Why no global lock is needed: operations on different hashes share no
 * state that the exclusion protects. Their blob names differ, their counts
 * differ, the store's write_mu already orders their records, and the
 * directories they share (files/ab/cd) are created idempotently and never
 * removed (blobs.c). The old process-wide mutex held every upload and
 * deletion behind any other's fsyncs; now only the same bytes wait.
 *
 * Not under the hold: the slow fsync of an upload's bytes (blob_writer_seal,
 * before the hash is held; it is also what yields the hash), the deletion
 * record itself (its count is only a hint: the decision to unlink is made
 * again under the hold, after the record is durable) and every store_wait
 * (the group commit must not hold up the same hash's other operations).
 *
 * Lock order: hash hold -> the store's write_mu -> shard locks -> the log's
 * mutex. The store never calls up into src/files/, a thread holds at most
 * one hash (no order among hashes is needed), and blobs_t.hold_mu is a leaf,
 * never held while the callback runs.
 *
 * Failures: an upload whose record the log refused (STORE_E_UNAVAILABLE)
 * keeps its blob: with the log failing, a deletion that brought the count to
 * 0 may never become durable, and after a restart its file would be live
 * again and need the bytes. An unreferenced blob is harmless (as after a
 * crash between link and record); the next removal of the same bytes takes
 * it. Upload checks that depend on the bytes (empty, type) are made by the
 * caller between blob_writer_seal and this module, so a refused upload never
 * becomes a blob at all.
 */
#include "parley/file_life.h"

#include <stdio.h>
#include <string.h>

#include "parley/log.h"

/* Unlinks the blob when no live record names it. REQUIRES: the hash held
 * (inside blobs_with_hash). */
static void unlink_if_unnamed(store_t *s, blobs_t *b, const char *sha)
{
    if (store_blob_refs(s, sha) != 0)
        return;
    int rc = blobs_remove(b, sha);
    if (rc != 0)
        log_warning("files: the unreferenced blob %s stays: %s", sha,
                    rc > -1000 ? strerror(-rc) : "invalid hash");
}

typedef struct add_op {
    store_t *s;
    blobs_t *b;
    blob_writer_t *w; /* consumed by the callback */
    store_file_t *f;
    blob_info_t info;
    uint64_t lsn;
} add_op_t;

/* Places the blob and applies the record. REQUIRES: the hash held. */
static int add_held(void *ctx)
{
    add_op_t *op = ctx;
    blob_writer_t *w = op->w;
    op->w = NULL;
    if (blob_writer_finish(w, &op->info) != 0)
        return FILE_LIFE_E_BLOB; /* logged by blobs.c */
    store_file_t *f = op->f;
    snprintf(f->sha256, sizeof(f->sha256), "%s", op->info.sha256);
    f->size = op->info.size;
    snprintf(f->content_type, sizeof(f->content_type), "%s", op->info.mime);
    f->width = op->info.width;
    f->height = op->info.height;
    uint64_t refs;
    int rc = store_file_put(op->s, f, &op->lsn, &refs);
    if (rc != 0 && rc != STORE_E_UNAVAILABLE) /* refused, not lost: see the design */
        unlink_if_unnamed(op->s, op->b, op->info.sha256);
    return rc;
}

int file_life_add(store_t *s, blobs_t *b, blob_writer_t *w, store_file_t *f,
                  bool *deduplicated)
{
    blob_info_t sealed;
    if (blob_writer_seal(w, &sealed) != 0) {
        blob_writer_abort(w);
        return FILE_LIFE_E_BLOB;
    }
    add_op_t op = {.s = s, .b = b, .w = w, .f = f};
    int rc = blobs_with_hash(b, sealed.sha256, add_held, &op);
    if (op.w != NULL) /* the callback did not run */
        blob_writer_abort(op.w);
    if (rc == 0)
        rc = store_wait(s, op.lsn);
    else if (rc == BLOB_E_BAD_HASH || rc == BLOB_E_ARG)
        rc = FILE_LIFE_E_BLOB; /* blobs_with_hash's own refusal */
    if (rc == 0 && deduplicated != NULL)
        *deduplicated = op.info.deduplicated;
    return rc;
}

typedef struct remove_op {
    store_t *s;
    blobs_t *b;
    const char *sha;
} remove_op_t;

static int remove_held(void *ctx)
{
    remove_op_t *op = ctx;
    unlink_if_unnamed(op->s, op->b, op->sha);
    return 0;
}

int file_life_remove(store_t *s, blobs_t *b, store_file_t *f)
{
    f->is_deleted = true;
    uint64_t lsn, refs = 1;
    int rc = store_file_put(s, f, &lsn, &refs);
    if (rc == 0)
        rc = store_wait(s, lsn);
    if (rc == 0 && refs == 0) {
        /* The deletion is durable: the bytes may go, unless a record of
         * the same bytes came meanwhile (checked again under the hold). */
        remove_op_t op = {s, b, f->sha256};
        blobs_with_hash(b, f->sha256, remove_held, &op);
    }
    return rc;
}

bool file_life_is_avatar(store_t *s, const char *user_id, const char *file_id)
{
    store_user_t u;
    if (!store_user_get(s, user_id, &u))
        return false;
    char url[sizeof(FILE_URL_PREFIX FILE_URL_SUFFIX) + STORE_ID_MAX];
    snprintf(url, sizeof(url), "%s%s%s", FILE_URL_PREFIX, file_id, FILE_URL_SUFFIX);
    bool named = u.avatar_url && strcmp(u.avatar_url, url) == 0;
    store_user_clear(&u);
    return named;
}

int file_life_release(store_t *s, blobs_t *b, store_file_t *f, file_ref_t what)
{
    if (f->is_deleted)
        return 0;
    bool avatar = file_life_is_avatar(s, f->uploaded_by, f->id);
    switch (what) {
    case FILE_REF_MESSAGE: /* the attachment had moved it into the channel */
    case FILE_REF_CHANNEL:
        if (!avatar)
            return file_life_remove(s, b, f);
        f->channel_id[0] = f->message_id[0] = '\0';
        break;
    case FILE_REF_AVATAR:
        if (avatar || !f->is_avatar)
            return 0; /* named again, or a plain upload: it stays its uploader's */
        if (f->message_id[0] == '\0')
            return file_life_remove(s, b, f);
        f->is_avatar = false; /* an attachment now, read as its message is */
        break;
    }
    uint64_t lsn;
    int rc = store_file_put(s, f, &lsn, NULL);
    return rc == 0 ? store_wait(s, lsn) : rc;
}

int file_life_remove_channel(store_t *s, blobs_t *b, const char *channel_id)
{
    enum { BATCH = 64 };
    store_file_t batch[BATCH];
    for (;;) {
        size_t n;
        /* Each file released leaves the channel (deleted or moved out), so
         * the first page is always the next. */
        store_file_list(s, channel_id, NULL, 0, BATCH, batch, &n);
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
            if (rc == 0)
                rc = file_life_release(s, b, &batch[i], FILE_REF_CHANNEL);
            store_file_clear(&batch[i]);
        }
        if (rc != 0 || n < BATCH)
            return rc;
    }
}

bool file_life_url_id(const char *url, char id[STORE_ID_MAX])
{
    size_t pre = strlen(FILE_URL_PREFIX), post = strlen(FILE_URL_SUFFIX);
    if (url == NULL || strncmp(url, FILE_URL_PREFIX, pre) != 0 || strlen(url) <= pre + post ||
        strcmp(url + strlen(url) - post, FILE_URL_SUFFIX) != 0 ||
        strlen(url) - pre - post >= STORE_ID_MAX)
        return false;
    int n = (int)(strlen(url) - pre - post);
    for (int i = 0; i < n; i++) {
        char c = url[pre + (size_t)i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false; /* ids are [A-Za-z0-9_-]: no "/", "..", "%" */
    }
    snprintf(id, STORE_ID_MAX, "%.*s", n, url + pre);
    return true;
}

void file_life_drop_avatar(store_t *s, blobs_t *b, const char *user_id, const char *url)
{
    char id[STORE_ID_MAX];
    if (!file_life_url_id(url, id))
        return;
    store_file_t f;
    if (!store_file_get(s, id, &f))
        return;
    if (!f.is_deleted && strcmp(f.uploaded_by, user_id) == 0 &&
        file_life_release(s, b, &f, FILE_REF_AVATAR) != 0)
        log_warning("the replaced avatar %s stays until it is deleted", id);
    store_file_clear(&f);
}

void file_life_recheck(store_t *s, blobs_t *b, const char *sha256)
{
    remove_op_t op = {.s = s, .b = b, .sha = sha256};
    blobs_with_hash(b, sha256, remove_held, &op);
}
