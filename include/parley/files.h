/*
 * Files in the store: the metadata of uploaded files, whose bytes live in
 * the blob store (include/parley/blobs.h) under their SHA-256. Several file
 * records may name the same blob (identical uploads are stored once); the
 * store counts the live records of each blob, so the blob can be removed
 * when the last one goes.
 */
#ifndef PARLEY_FILES_H
#define PARLEY_FILES_H

#include "parley/store.h"

#define STORE_REC_FILE 20 /* the wal's type byte of file records */
#define FILE_NAME_MAX 256 /* bytes of a stored filename (255 + NUL) */
#define FILE_TYPE_MAX 128
/* The file record's own version: 2 added width, height (image dimensions,
 * 0 unknown) and is_public; a version-1 record loads with 0, 0, false. */
#define STORE_FILE_SCHEMA_VERSION 2

typedef struct store_file {
    char id[STORE_ID_MAX];          /* "file_..." */
    char sha256[65];
    uint64_t size;
    char content_type[FILE_TYPE_MAX]; /* detected from the bytes */
    char filename[FILE_NAME_MAX];   /* made safe by the caller */
    char *description;              /* malloc'd or NULL */
    char uploaded_by[STORE_ID_MAX];
    char channel_id[STORE_ID_MAX];  /* "" = not in a channel */
    char message_id[STORE_ID_MAX];  /* the message it is attached to; "" = none */
    int64_t uploaded_at;            /* ms */
    bool is_avatar;                 /* a user's avatar: readable by every user */
    bool is_public;                 /* its uploader made it readable by every user */
    uint32_t width, height;         /* an image's, from its header; 0: unknown */
    bool is_deleted;
    uint32_t rev; /* in memory only: changes with each apply (see store_user_t) */
} store_file_t;

void store_file_clear(store_file_t *f);

/*
 * Writes a file's whole state (a new file, or a deletion). *refs_left gets
 * how many live files name the same blob afterwards (0 after the last one
 * is deleted: the caller removes the blob once the record is durable).
 */
int store_file_put(store_t *s, const store_file_t *f, uint64_t *lsn, uint64_t *refs_left);

bool store_file_get(store_t *s, const char *id, store_file_t *out);
/* The file's rev (0: no such file), without copying it. */
uint32_t store_file_rev(store_t *s, const char *id);

/* Live files of a channel (channel_id set) or every live upload of a user
 * (uploaded_by set), newest first; returns the total. */
size_t store_file_list(store_t *s, const char *channel_id, const char *uploaded_by,
                       size_t offset, size_t limit, store_file_t *out, size_t *n_out);

/* The orders of store_file_list_sorted (ties by id, so pages are stable). */
typedef enum store_file_sort { STORE_FILE_BY_UPLOADED, STORE_FILE_BY_SIZE } store_file_sort_t;

/* store_file_list in the order `sort`, descending when `desc` (the order of
 * store_file_list: STORE_FILE_BY_UPLOADED, desc). O(files). */
size_t store_file_list_sorted(store_t *s, const char *channel_id, const char *uploaded_by,
                              store_file_sort_t sort, bool desc, size_t offset, size_t limit,
                              store_file_t *out, size_t *n_out);

/* The bytes of the live files user_id uploaded (avatars included), each
 * file at its size even when its bytes are shared with another file's
 * (deduplicated): what the storage quota counts. Derived at apply, replay
 * included; lock-free to read. */
uint64_t store_file_user_bytes(store_t *s, const char *user_id);

/* Live files naming a blob. */
uint64_t store_blob_refs(store_t *s, const char *sha256);

/* Calls fn for every blob named by a live file (for `parley files check`). */
void store_blob_each(store_t *s, void (*fn)(void *ctx, const char *sha256, uint64_t refs),
                     void *ctx);

#endif
