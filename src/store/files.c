/*
 * File records (include/parley/files.h): the metadata of uploads, one
 * record per file state, and the count of live files per blob.
 *
 * Like every table of the store: a change is one record with the file's
 * whole state, appended and applied under the store's write lock (store.c),
 * replayed by the same apply. The blob reference counts are derived, never
 * logged: apply recomputes them from the change of one file's liveness
 * (deleted or not), so replaying a record twice leaves them right; so are
 * the bytes of each uploader's live files (the storage quota's count). The
 * bytes themselves are the blob store's; a blob is written and synced before
 * its first record is appended, and removed only after the record that
 * dropped its last reference is durable (h_files.c).
 */
#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "internal.h"
#include "parley/files.h"
#include "parley/xalloc.h"

struct file_tables {
    map_t files;     /* id -> store_file_t* */
    map_t blob_refs; /* sha256 -> uint64_t* live files naming it */
    map_t user_bytes; /* uploader id -> uint64_t* bytes of its live files */
    /* Derived like blob_refs, from each change of a file's liveness: the
     * sizes of the live files, and of the distinct blobs they name (a blob
     * counts from its first live file to its last). */
    _Atomic uint64_t file_bytes, blob_bytes, live_files;
};

void store_file_clear(store_file_t *f)
{
    free(f->description);
    f->description = NULL;
}

static void free_file(void *v)
{
    if (v) {
        store_file_clear(v);
        free(v);
    }
}

struct file_tables *files__new(void)
{
    struct file_tables *t = xcalloc(1, sizeof(*t));
    map_init(&t->files, free_file);
    map_init(&t->blob_refs, free);
    map_init(&t->user_bytes, free);
    return t;
}

void files__free(struct file_tables *t)
{
    if (t == NULL)
        return;
    map_deinit(&t->files);
    map_deinit(&t->blob_refs);
    map_deinit(&t->user_bytes);
    free(t);
}

void files__clear(struct file_tables *t)
{
    map_clear(&t->files);
    map_clear(&t->blob_refs);
    map_clear(&t->user_bytes);
    atomic_store(&t->file_bytes, 0);
    atomic_store(&t->blob_bytes, 0);
    atomic_store(&t->live_files, 0);
}

void files__bytes(store_t *s, uint64_t *live_files, uint64_t *file_bytes, uint64_t *blob_bytes)
{
    *live_files = atomic_load(&s->files->live_files);
    *file_bytes = atomic_load(&s->files->file_bytes);
    *blob_bytes = atomic_load(&s->files->blob_bytes);
}

/* ---- records ---------------------------------------------------------------- */

static char *encode(const store_file_t *f)
{
    json_t *o = json_pack("{s:i, s:s, s:s, s:I, s:s, s:s, s:o, s:s, s:s, s:s, s:I, s:b, s:b, s:b, "
                          "s:I, s:I}", "v",
                          STORE_FILE_SCHEMA_VERSION, "id", f->id, "sha256", f->sha256, "size",
                          (json_int_t)f->size, "content_type", f->content_type, "filename",
                          f->filename, "description",
                          f->description ? json_string(f->description) : json_null(),
                          "uploaded_by", f->uploaded_by, "channel_id", f->channel_id,
                          "message_id", f->message_id,
                          "uploaded_at", (json_int_t)f->uploaded_at, "is_avatar", f->is_avatar,
                          "is_deleted", f->is_deleted, "is_public", f->is_public, "width",
                          (json_int_t)f->width, "height", (json_int_t)f->height);
    return codec_close(o);
}

static bool sha_ok(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static int decode(const void *data, size_t len, store_file_t *f)
{
    memset(f, 0, sizeof(*f));
    json_t *o = codec_open_record(data, len, STORE_FILE_SCHEMA_VERSION);
    if (o == NULL)
        return STORE_E_CORRUPT;
    /* Version 1 has no is_public, width or height: false, 0, 0. */
    json_t *pub = json_object_get(o, "is_public"), *width = json_object_get(o, "width"),
           *height = json_object_get(o, "height");
    bool dims_ok = (width == NULL || (json_is_integer(width) && json_integer_value(width) >= 0 &&
                                      json_integer_value(width) <= UINT32_MAX)) &&
                   (height == NULL || (json_is_integer(height) && json_integer_value(height) >= 0 &&
                                       json_integer_value(height) <= UINT32_MAX));
    json_t *size = json_object_get(o, "size"), *at = json_object_get(o, "uploaded_at");
    json_t *deleted = json_object_get(o, "is_deleted"), *desc = json_object_get(o, "description");
    json_t *avatar = json_object_get(o, "is_avatar");
    bool ok = codec_get_fixed(o, "id", f->id, sizeof(f->id)) && f->id[0] &&
              codec_get_fixed(o, "sha256", f->sha256, sizeof(f->sha256)) && sha_ok(f->sha256) &&
              json_is_integer(size) && json_integer_value(size) >= 0 &&
              codec_get_fixed(o, "content_type", f->content_type, sizeof(f->content_type)) &&
              codec_get_fixed(o, "filename", f->filename, sizeof(f->filename)) &&
              codec_get_fixed(o, "uploaded_by", f->uploaded_by, sizeof(f->uploaded_by)) &&
              codec_get_fixed(o, "channel_id", f->channel_id, sizeof(f->channel_id)) &&
              (json_object_get(o, "message_id") == NULL ||
               codec_get_fixed(o, "message_id", f->message_id, sizeof(f->message_id))) &&
              json_is_integer(at) && json_is_boolean(deleted) &&
              (avatar == NULL || json_is_boolean(avatar)) &&
              (pub == NULL || json_is_boolean(pub)) && dims_ok &&
              (desc == NULL || json_is_null(desc) || json_is_string(desc));
    if (ok) {
        f->size = (uint64_t)json_integer_value(size);
        f->uploaded_at = json_integer_value(at);
        f->is_deleted = json_is_true(deleted);
        f->is_avatar = json_is_true(avatar);
        f->is_public = json_is_true(pub);
        f->width = width ? (uint32_t)json_integer_value(width) : 0;
        f->height = height ? (uint32_t)json_integer_value(height) : 0;
        if (json_is_string(desc)) {
            f->description = xstrdup(json_string_value(desc));
        }
    }
    json_decref(o);
    return ok ? 0 : STORE_E_CORRUPT;
}

/* ---- apply ------------------------------------------------------------------ */

/* Adds delta to the counter of `key` in m (a map of uint64_t*), removing it
 * at zero (never below); returns the new value. Blob counts and uploader
 * bytes are both such counters. */
static uint64_t adjust_counter(map_t *m, const char *key, int64_t delta)
{
    uint64_t h = map_hash(key);
    map_shard_t *sh = map_shard_of(m, h);
    pthread_rwlock_wrlock(&sh->lock);
    uint64_t *n = map_find_locked(sh, h, key);
    if (n == NULL && delta > 0) {
        n = xcalloc(1, sizeof(*n));
        free(map_put_locked(sh, h, key, n));
    }
    uint64_t now = 0;
    if (n) {
        *n = delta < 0 && *n < (uint64_t)-delta ? 0 : (uint64_t)((int64_t)*n + delta);
        now = *n;
        if (now == 0)
            free(map_remove_locked(sh, h, key));
    }
    pthread_rwlock_unlock(&sh->lock);
    return now;
}

static uint64_t adjust_refs(struct file_tables *t, const char *sha, int delta)
{
    return adjust_counter(&t->blob_refs, sha, delta);
}

static void adjust_user_bytes(struct file_tables *t, const char *user_id, int64_t delta)
{
    adjust_counter(&t->user_bytes, user_id, delta);
}

uint64_t store_file_user_bytes(store_t *s, const char *user_id)
{
    struct file_tables *t = s->files;
    uint64_t h = map_hash(user_id), n = 0;
    map_shard_t *sh = map_shard_of(&t->user_bytes, h);
    pthread_rwlock_rdlock(&sh->lock);
    uint64_t *v = map_find_locked(sh, h, user_id);
    if (v)
        n = *v;
    pthread_rwlock_unlock(&sh->lock);
    return n;
}

/* Takes f's strings. Returns the live count of f's blob afterwards. */
static uint64_t apply_file(store_t *s, store_file_t *f)
{
    struct file_tables *t = s->files;
    store_file_t *nf = xmalloc(sizeof(*nf));
    *nf = *f;
    memset(f, 0, sizeof(*f));
    uint64_t h = map_hash(nf->id);
    map_shard_t *sh = map_shard_of(&t->files, h);
    pthread_rwlock_wrlock(&sh->lock);
    store_file_t *old = map_put_locked(sh, h, nf->id, nf);
    nf->rev = old ? old->rev + 1 : 1;
    bool was_live = old && !old->is_deleted;
    char old_sha[65] = "", old_user[STORE_ID_MAX] = "";
    uint64_t old_size = old ? old->size : 0, size = nf->size;
    bool first = old == NULL;
    int64_t uploaded_at = nf->uploaded_at;
    if (old) {
        memcpy(old_sha, old->sha256, sizeof(old_sha));
        memcpy(old_user, old->uploaded_by, sizeof(old_user));
    }
    free_file(old);
    pthread_rwlock_unlock(&sh->lock);
    if (first) /* the dashboard: a file counts once, when its id first appears */
        store__count(s, STORE_METRIC_UPLOADS, uploaded_at, 1);

    bool live = !nf->is_deleted;
    if (was_live) {
        atomic_fetch_sub(&t->file_bytes, old_size);
        atomic_fetch_sub(&t->live_files, 1);
        adjust_user_bytes(t, old_user, -(int64_t)old_size);
    }
    if (live) {
        atomic_fetch_add(&t->file_bytes, size);
        atomic_fetch_add(&t->live_files, 1);
        adjust_user_bytes(t, nf->uploaded_by, (int64_t)size);
    }
    if (was_live && (!live || strcmp(old_sha, nf->sha256) != 0) &&
        adjust_refs(t, old_sha, -1) == 0)
        atomic_fetch_sub(&t->blob_bytes, old_size);
    if (live && (!was_live || strcmp(old_sha, nf->sha256) != 0) &&
        adjust_refs(t, nf->sha256, +1) == 1)
        atomic_fetch_add(&t->blob_bytes, size);
    return store_blob_refs(s, nf->sha256);
}

int files__apply(store_t *s, const void *data, size_t len)
{
    store_file_t f;
    int rc = decode(data, len, &f);
    if (rc == 0)
        apply_file(s, &f);
    return rc;
}

int store_file_put(store_t *s, const store_file_t *f, uint64_t *lsn, uint64_t *refs_left)
{
    if (!sha_ok(f->sha256) || f->id[0] == '\0')
        return STORE_E_INVALID;
    pthread_mutex_lock(&s->write_mu);
    int rc = store__append(s, STORE_REC_FILE, encode(f), lsn);
    if (rc == 0) {
        store_file_t copy = *f;
        copy.description = f->description ? strdup(f->description) : NULL;
        uint64_t refs = apply_file(s, &copy);
        if (refs_left)
            *refs_left = refs;
    }
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

bool store_file_get(store_t *s, const char *id, store_file_t *out)
{
    struct file_tables *t = s->files;
    uint64_t h = map_hash(id);
    map_shard_t *sh = map_shard_of(&t->files, h);
    pthread_rwlock_rdlock(&sh->lock);
    const store_file_t *f = map_find_locked(sh, h, id);
    if (f) {
        *out = *f;
        out->description = f->description ? strdup(f->description) : NULL;
    }
    pthread_rwlock_unlock(&sh->lock);
    return f != NULL;
}

uint32_t store_file_rev(store_t *s, const char *id)
{
    uint32_t rev = 0;
    map_get_field(&s->files->files, id, offsetof(store_file_t, rev), &rev, sizeof(rev));
    return rev;
}

uint64_t store_blob_refs(store_t *s, const char *sha256)
{
    uint64_t n = 0;
    return map_get_copy(&s->files->blob_refs, sha256, &n, sizeof(n)) ? n : 0;
}

typedef struct list_ctx {
    const char *channel_id, *uploaded_by;
    store_file_t *hits;
    size_t n, cap;
} list_ctx_t;

static bool collect(void *ctx, const char *key, void *value)
{
    (void)key;
    list_ctx_t *lc = ctx;
    const store_file_t *f = value;
    if (f->is_deleted)
        return true;
    if (lc->channel_id ? strcmp(f->channel_id, lc->channel_id) != 0
                       : strcmp(f->uploaded_by, lc->uploaded_by) != 0)
        return true;
    if (lc->n == lc->cap) {
        lc->cap = lc->cap ? lc->cap * 2 : 32;
        lc->hits = xrealloc(lc->hits, lc->cap * sizeof(*lc->hits));
    }
    lc->hits[lc->n] = *f;
    lc->hits[lc->n].description = f->description ? strdup(f->description) : NULL;
    lc->n++;
    return true;
}

static void clear_item(void *item)
{
    store_file_clear(item);
}

typedef struct file_order {
    store_file_sort_t sort;
    bool desc;
} file_order_t;

static int by_file_order(const void *a, const void *b, void *ctx)
{
    const file_order_t *o = ctx;
    const store_file_t *x = a, *y = b;
    int r = o->sort == STORE_FILE_BY_SIZE ? (x->size > y->size) - (x->size < y->size) : 0;
    if (r == 0)
        r = (x->uploaded_at > y->uploaded_at) - (x->uploaded_at < y->uploaded_at);
    if (r == 0)
        r = strcmp(x->id, y->id);
    return o->desc ? -r : r;
}

size_t store_file_list_sorted(store_t *s, const char *channel_id, const char *uploaded_by,
                              store_file_sort_t sort, bool desc, size_t offset, size_t limit,
                              store_file_t *out, size_t *n_out)
{
    list_ctx_t lc = {.channel_id = channel_id, .uploaded_by = uploaded_by ? uploaded_by : ""};
    file_order_t order = {sort, desc};
    map_each(&s->files->files, collect, &lc);
    if (lc.n > 1)
        qsort_r(lc.hits, lc.n, sizeof(*lc.hits), by_file_order, &order);
    store__page(lc.hits, lc.n, sizeof(*lc.hits), NULL, clear_item, offset, limit, out, n_out);
    return lc.n;
}

size_t store_file_list(store_t *s, const char *channel_id, const char *uploaded_by,
                       size_t offset, size_t limit, store_file_t *out, size_t *n_out)
{
    return store_file_list_sorted(s, channel_id, uploaded_by, STORE_FILE_BY_UPLOADED, true,
                                  offset, limit, out, n_out);
}

typedef struct each_ctx {
    void (*fn)(void *ctx, const char *sha256, uint64_t refs);
    void *ctx;
} each_ctx_t;

static bool each_blob(void *ctx, const char *key, void *value)
{
    each_ctx_t *ec = ctx;
    ec->fn(ec->ctx, key, *(const uint64_t *)value);
    return true;
}

void store_blob_each(store_t *s, void (*fn)(void *ctx, const char *sha256, uint64_t refs),
                     void *ctx)
{
    each_ctx_t ec = {fn, ctx};
    map_each(&s->files->blob_refs, each_blob, &ec);
}

/* ---- snapshots ------------------------------------------------------------ */

static char *encode_value(const void *value)
{
    return encode(value);
}

int files__snapshot(store_t *s, wal_snapshot_t *snap)
{
    return store__snapshot_map(&s->files->files, STORE_REC_FILE, encode_value, snap);
}

size_t files__count(store_t *s)
{
    return map_count(&s->files->files);
}
