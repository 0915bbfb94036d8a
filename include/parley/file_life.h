/*
 * The life of an uploaded file (src/files/file_life.c): its bytes (a blob,
 * include/parley/blobs.h) and its record (include/parley/files.h) are made
 * and removed together, so that no live record ever names a missing blob and
 * a blob goes once the last record naming it is durably deleted.
 *
 * These are domain operations: they take the store and the blob store, not
 * a request, and the handlers of src/api/ call them after their own checks.
 *
 * Errors: 0, a STORE_E_* code (the record could not be written or waited
 * for: STORE_E_UNAVAILABLE, STORE_E_INVALID), or FILE_LIFE_E_BLOB (the bytes
 * could not be placed; the cause is logged).
 *
 * Thread safety: every function may be called from any thread at once.
 * Operations on the same bytes (the same SHA-256) are serialised where they
 * touch the blob; operations on different bytes never wait for each other.
 * No function may be called with a store lock held (they take the store's
 * locks and wait for the log).
 */
#ifndef PARLEY_FILE_LIFE_H
#define PARLEY_FILE_LIFE_H

#include <stdbool.h>

#include "parley/blobs.h"
#include "parley/files.h"
#include "parley/store.h"

#define FILE_LIFE_E_BLOB (-3101) /* the blob could not be stored */

/* The avatar_url of an uploaded avatar: FILE_URL_PREFIX <file id>
 * FILE_URL_SUFFIX (what file_life_drop_avatar recognises). */
#define FILE_URL_PREFIX "/api/v1/files/"
#define FILE_URL_SUFFIX "/download"

/*
 * Stores the upload `w` (sealed by blob_writer_seal or not) and writes the
 * record of file f, both durably, in this order: the blob is fsynced and
 * linked to its content address before the record naming it is logged. Sets
 * f->sha256, size and content_type from the bytes; the caller has filled the
 * rest (id, filename, uploaded_by, uploaded_at, channel, flags).
 * Consumes `w` whatever it returns. On failure no record names the bytes.
 * OUT: *deduplicated (may be NULL): identical bytes were stored already.
 * Returns 0 (the record is durable), FILE_LIFE_E_BLOB, STORE_E_*.
 */
int file_life_add(store_t *s, blobs_t *b, blob_writer_t *w, store_file_t *f,
                  bool *deduplicated);

/*
 * Deletes the live file f (sets f->is_deleted): a durable deletion record,
 * then the blob when no live record names it any more. A blob that cannot
 * be removed is logged and stays (unreferenced, harmless).
 * Returns 0 or a STORE_E_* code (then the blob is kept).
 */
int file_life_remove(store_t *s, blobs_t *b, store_file_t *f);

/* What held a file and no longer does (file_life_release). */
typedef enum file_ref {
    FILE_REF_MESSAGE, /* the message it is attached to is deleted */
    FILE_REF_CHANNEL, /* the channel it lives in is deleted */
    FILE_REF_AVATAR,  /* it stopped being its uploader's avatar */
} file_ref_t;

/*
 * A file's life follows every reference to it: its uploader's avatar_url,
 * the message it is attached to, the channel it lives in. Drops the
 * reference `what` of the live file f: f is deleted (file_life_remove)
 * unless another reference still holds it, and then its record is rewritten
 * durably without the dropped one: an avatar whose message or channel goes
 * stays the avatar, out of the channel (attachable again); an avatar upload that
 * is replaced but still attached to a message stays that attachment (no
 * longer readable by everyone). A plain upload that stops being the avatar
 * stays its uploader's. Returns 0 or a STORE_E_* code.
 */
int file_life_release(store_t *s, blobs_t *b, store_file_t *f, file_ref_t what);

/* Whether user_id's avatar_url names the file file_id now. */
bool file_life_is_avatar(store_t *s, const char *user_id, const char *file_id);

/* Releases every live file of a channel (the channel is being deleted:
 * FILE_REF_CHANNEL). Returns 0 or the first STORE_E_* code met (the files
 * after it stay). */
int file_life_remove_channel(store_t *s, blobs_t *b, const char *channel_id);

/* Whether url is exactly FILE_URL_PREFIX <id> FILE_URL_SUFFIX with an id
 * of id characters ([A-Za-z0-9_-], shorter than STORE_ID_MAX): then true
 * with the id in `id`. Says nothing of whether the file exists. */
bool file_life_url_id(const char *url, char id[STORE_ID_MAX]);

/* Releases (FILE_REF_AVATAR) the file a replaced avatar_url named, when it
 * is one of that user's uploads (an avatar_url set by PUT /users/me may also
 * be an https URL, or none: then nothing happens). Failures are logged. */
void file_life_drop_avatar(store_t *s, blobs_t *b, const char *user_id, const char *url);

/* Removes the blob `sha256` if no live file names it, under its hold: for
 * the removals a backup's pin deferred (blobs_unpin). */
void file_life_recheck(store_t *s, blobs_t *b, const char *sha256);

#endif
