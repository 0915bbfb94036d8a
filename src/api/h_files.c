/*
 * /api/v1/files: uploads, file objects, listings, downloads and deletion
 * (docs/api.md, "Files").
 *
 * An upload arrives streamed (upload.c) into a temporary blob; here the
 * blob is sealed (hashed, fsynced, typed), its type checked against
 * allowed_types, and the files layer (src/files/file_life.c) places it at
 * its content address and writes the file record through the log; deletions
 * go through the same layer, which removes a blob when its last record goes
 * and keeps uploads and removals of the same bytes apart.
 *
 * Downloads stream from the blob's file (ulfius stream responses), with the
 * detected type, a Content-Disposition whose filename is safe (RFC 6266 and
 * RFC 5987 for non-ASCII names), nosniff, the SHA-256 as ETag, and single
 * byte ranges (206/416). Only images are shown inline; everything else is an
 * attachment, so a script that says it is a PNG is never rendered.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resource.h"
#include "parley/app.h"
#include "parley/auth.h"
#include "parley/blobs.h"
#include "parley/clock.h"
#include "parley/file_life.h"
#include "parley/log.h"
#include "parley/settings.h"
#include "parley/utf8.h"
#include "parley/xalloc.h"

/* Whether the 3-byte sequence at p is a character that changes how the text
 * around it is shown, not what it says: the bidirectional marks, embeddings,
 * overrides and isolates (U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) and
 * the line and paragraph separators (U+2028, U+2029). A name with U+202E
 * shows "photo\u202Egpj.exe" as "photoexe.jpg". (U+061C is 2 bytes: below.) */
static bool format_control3(const unsigned char *p)
{
    if (p[0] != 0xE2)
        return false;
    if (p[1] == 0x80)
        return p[2] == 0x8E || p[2] == 0x8F || (p[2] >= 0xA8 && p[2] <= 0xAE);
    return p[1] == 0x81 && p[2] >= 0xA6 && p[2] <= 0xA9;
}

/* The last path component of a client's filename: 1 to size - 1 bytes of
 * valid UTF-8 without control characters (C0, DEL, C1), neither "." nor
 * "..", with the bidirectional and separator controls (format_control3,
 * U+061C ARABIC LETTER MARK) stripped. False when nothing usable is left.
 * The store and every JSON answer need valid UTF-8 (jansson refuses
 * anything else). */
static bool safe_filename(const char *raw, char *out, size_t size)
{
    const char *base = raw;
    for (const char *p = raw; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    size_t len = strlen(base);
    if (len == 0 || len >= size)
        return false;
    const unsigned char *end = (const unsigned char *)base + len;
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)base; *p;) {
        size_t n = utf8_sequence(p, (size_t)(end - p));
        if (n == 0 || *p < 0x20 || *p == 0x7f || (p[0] == 0xC2 && p[1] < 0xA0))
            return false;
        bool strip = (n == 3 && format_control3(p)) || (n == 2 && p[0] == 0xD8 && p[1] == 0x9C);
        if (!strip) {
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    out[o] = '\0';
    return o > 0 && strcmp(out, ".") != 0 && strcmp(out, "..") != 0;
}

static bool type_allowed(const char *allowed, const char *type)
{
    char list[1024];
    snprintf(list, sizeof(list), "%s", allowed);
    char *save = NULL;
    for (char *g = strtok_r(list, ", ", &save); g; g = strtok_r(NULL, ", ", &save))
        if (fnmatch(g, type, 0) == 0)
            return true;
    return false;
}

/* The checks every upload passes before its bytes are kept: a file part,
 * a body that ended properly, and a safe filename (written to filename). */
static bool upload_complete(http_ctx_t *ctx, const upload_t *up, char filename[FILE_NAME_MAX])
{
    if (up == NULL || !up->got_file) {
        http_reply_invalid(ctx, "file", "send the file as multipart/form-data in a field named file");
        return false;
    }
    if (!http_upload_body_complete()) {
        http_reply_error(ctx, HTTP_ERR_BAD_REQUEST, NULL,
                         "the multipart body ended before its closing boundary");
        return false;
    }
    if (up->failed || up->writer == NULL) {
        http_reply_error(ctx, HTTP_ERR_UNAVAILABLE, NULL, "the upload could not be stored");
        return false;
    }
    if (up->filename_truncated || !safe_filename(up->filename, filename, FILE_NAME_MAX)) {
        http_reply_invalid(ctx, "filename",
                           "the filename must be 1-255 bytes of UTF-8 without control "
                           "characters");
        return false;
    }
    return true;
}

static bool is_avatar_type(const char *mime)
{
    return strncmp(mime, "image/", 6) == 0 && strcmp(mime, "image/svg+xml") != 0;
}

/*
 * Keeps the upload as file f (whose id, sha256, size and content_type this
 * fills; the caller filled the rest), durably. The detected type must pass
 * allowed_types, and be an image other than SVG for an avatar, and the
 * uploader's live files with this one must fit storage_quota_bytes (413
 * PAYLOAD_TOO_LARGE, details.reason "quota"), and its size the uploader's
 * upload_bytes_per_minute budget (429, details.category "upload_bytes"):
 * those checks
 * come between sealing and storing, so a refused upload is never stored. On
 * failure it has answered and kept nothing.
 */
static bool keep_upload(http_ctx_t *ctx, upload_t *up, store_file_t *f, bool *deduplicated)
{
    parley_app_t *app = ctx->app;
    blob_info_t info;
    blob_writer_t *w = up->writer;
    up->writer = NULL;
    if (blob_writer_seal(w, &info) != 0) {
        blob_writer_abort(w);
        http_reply_error(ctx, HTTP_ERR_UNAVAILABLE, NULL, "the upload could not be stored");
        return false;
    }
    bool empty = info.size == 0;
    store_settings_t live; /* allowed_types as set now (docs/admin.md, "Settings") */
    store_settings_get(app->store, &live);
    bool allowed = type_allowed(live.allowed_types, info.mime) &&
                   (!f->is_avatar || is_avatar_type(info.mime));
    if (empty || !allowed) {
        blob_writer_abort(w);
        if (empty)
            http_reply_invalid(ctx, "file", "the file is empty");
        else
            http_reply_error(ctx, HTTP_ERR_UNSUPPORTED_MEDIA_TYPE,
                             json_pack("{s:s}", "content_type", info.mime),
                             f->is_avatar ? "an avatar must be an image (not SVG), not %s"
                                          : "files of type %s are not accepted here",
                             info.mime);
        return false;
    }
    /* The storage quota: the bytes of the uploader's live files, this one
     * included (uploads racing each other may pass it by one file each). */
    uint64_t used = store_file_user_bytes(app->store, f->uploaded_by);
    if (live.storage_quota_bytes && used + info.size > live.storage_quota_bytes) {
        blob_writer_abort(w);
        http_reply_error(ctx, HTTP_ERR_PAYLOAD_TOO_LARGE,
                         json_pack("{s:s, s:I, s:I, s:I}", "reason", "quota", "quota_bytes",
                                   (json_int_t)live.storage_quota_bytes, "used_bytes",
                                   (json_int_t)used, "size", (json_int_t)info.size),
                         "this upload would pass your storage quota of %llu bytes (%llu used); "
                         "delete files first",
                         (unsigned long long)live.storage_quota_bytes,
                         (unsigned long long)used);
        return false;
    }
    /* The upload budget: bytes a minute per user (a live setting). */
    int retry = 0;
    if (auth_rate_spend(app->rate_limiter, f->uploaded_by, (int64_t)info.size,
                        (int64_t)live.upload_bytes_per_minute, clock_wall_ms(),
                        &retry) != AUTH_OK) {
        blob_writer_abort(w);
        char v[16];
        snprintf(v, sizeof(v), "%d", retry);
        http_set_header(ctx, "Retry-After", v);
        http_reply_error(ctx, HTTP_ERR_RATE_LIMITED,
                         json_pack("{s:i, s:s}", "retry_after", retry, "category", "upload_bytes"),
                         "you may upload %llu bytes a minute; try again in %d seconds",
                         (unsigned long long)live.upload_bytes_per_minute, retry);
        return false;
    }
    store_new_id("file", f->id);
    f->uploaded_at = clock_wall_ms();
    int rc = file_life_add(app->store, app->blobs, w, f, deduplicated);
    if (rc == FILE_LIFE_E_BLOB) {
        http_reply_error(ctx, HTTP_ERR_UNAVAILABLE, NULL, "the upload could not be stored");
        return false;
    }
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return false;
    }
    return true;
}

/* A multipart form's boolean: "true"/"false" (also "1"/"0"). */
static bool form_bool(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return false;
    return true;
}

static void post_file(http_ctx_t *ctx)
{
    const principal_t *p = ctx->principal;
    channel_access_t a;
    memset(&a, 0, sizeof(a));
    upload_t *up = http_upload_current();
    const char *channel_id = u_map_get(ctx->req->map_post_body, "channel_id");
    const char *description = u_map_get(ctx->req->map_post_body, "description");
    const char *is_public = u_map_get(ctx->req->map_post_body, "is_public");
    store_file_t f;
    memset(&f, 0, sizeof(f));
    if (!upload_complete(ctx, up, f.filename))
        goto out;
    if (is_public && !form_bool(is_public, &f.is_public)) {
        http_reply_invalid(ctx, "is_public", "is_public must be true or false");
        goto out;
    }
    if (description && http_utf8_length(description, strlen(description)) > 500) {
        http_reply_invalid(ctx, "description", "description is limited to 500 characters");
        goto out;
    }
    if (channel_id && channel_id[0]) {
        if (!channel_access_load(ctx, p, channel_id, &a))
            goto out;
        if (!a.can_post) {
            http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                             "you may not share files in this channel");
            goto out;
        }
    }
    f.description = description && description[0] ? strdup(description) : NULL;
    snprintf(f.uploaded_by, sizeof(f.uploaded_by), "%s", p->user.id);
    if (a.exists)
        snprintf(f.channel_id, sizeof(f.channel_id), "%s", a.channel.id);
    bool deduplicated;
    if (keep_upload(ctx, up, &f, &deduplicated)) {
        json_t *o = file_view_json(&f);
        json_object_set_new(o, "deduplicated", json_boolean(deduplicated));
        http_reply_json(ctx, 201, o);
    }
out:
    store_file_clear(&f);
    channel_access_clear(&a);
}

/* Sets the user's avatar_url, keeping the one it replaces in ctx->old. */
typedef struct avatar_change {
    const char *url;
    char *old;
} avatar_change_t;

static int apply_avatar(void *ctx, store_user_t *u)
{
    avatar_change_t *c = ctx;
    c->old = u->avatar_url;
    u->avatar_url = xstrdup(c->url);
    u->updated_at = clock_wall_ms();
    return 0;
}

static void put_avatar(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    upload_t *up = http_upload_current();
    store_file_t f;
    memset(&f, 0, sizeof(f));
    bool deduplicated;
    if (!upload_complete(ctx, up, f.filename))
        goto out;
    f.is_avatar = true;
    snprintf(f.uploaded_by, sizeof(f.uploaded_by), "%s", p->user.id);
    if (!keep_upload(ctx, up, &f, &deduplicated))
        goto out;
    char url[STORE_ID_MAX + 32];
    snprintf(url, sizeof(url), FILE_URL_PREFIX "%s" FILE_URL_SUFFIX, f.id);
    avatar_change_t c = {url, NULL};
    store_user_t now;
    uint64_t lsn;
    int rc = store_user_modify(app->store, p->user.id, apply_avatar, &c, &now, &lsn);
    if (rc == 0) {
        rc = store_wait(app->store, lsn);
        if (rc == 0) {
            file_life_drop_avatar(app->store, app->blobs, p->user.id, c.old);
            http_reply_json(ctx, 200, user_json(&now, true, true));
        }
        store_user_clear(&now);
    }
    free(c.old);
    if (rc != 0) {
        reply_store_error(ctx, rc);
        if (file_life_remove(app->store, app->blobs, &f) != 0)
            log_warning("the unused avatar %s stays until it is deleted", f.id);
    }
out:
    store_file_clear(&f);
}

/* Loads a file the caller may read: its own, a public one, an avatar (an avatar upload or
 * the file its uploader's avatar_url names), or one of a channel
 * it can read; for deleting (`to_delete`), an admin's any file (admins do
 * not read private channels they are not in, but may remove what is in
 * them). Answers 404 otherwise. */
static bool load_file(http_ctx_t *ctx, const principal_t *p, store_file_t *f, bool to_delete)
{
    parley_app_t *app = ctx->app;
    if (!store_file_get(app->store, ctx->params[0], f) || f->is_deleted) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such file");
        return false;
    }
    bool ok = (to_delete && p->user.is_admin) || f->is_avatar || f->is_public ||
              strcmp(f->uploaded_by, p->user.id) == 0 ||
              (f->channel_id[0] && channel_readable(app->store, &p->user, f->channel_id)) ||
              file_life_is_avatar(app->store, f->uploaded_by, f->id);
    if (!ok) {
        store_file_clear(f);
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such file");
    }
    return ok;
}

static void get_file(http_ctx_t *ctx)
{
    const principal_t *p = ctx->principal;
    store_file_t f;
    if (load_file(ctx, p, &f, false)) {
        reply_fields(ctx, 200, FIELDS_FILE, file_view_json(&f));
        store_file_clear(&f);
    }
}

/* ?sort= of GET /files, in store_file_sort_t's order. */
static const char *const file_sort_names[] = {"uploaded_at", "size", NULL};
static const bool file_sort_desc[] = {true, true};
static const sort_keys_t file_sort = {file_sort_names, file_sort_desc};

static void get_files(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    long page, limit;
    const char *channel_id = http_query(ctx, "channel_id");
    int sort;
    bool desc;
    if (!http_paging(ctx, &page, &limit) || !sort_read(ctx, &file_sort, &sort, &desc) ||
        !fields_prune(ctx, FIELDS_FILE, NULL))
        return;
    if (channel_id && !channel_readable(app->store, &p->user, channel_id)) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such channel");
        return;
    }
    store_file_t *list = xcalloc((size_t)limit, sizeof(*list));
    size_t n;
    size_t total = store_file_list_sorted(app->store, channel_id, channel_id ? NULL : p->user.id,
                                          (store_file_sort_t)sort, desc,
                                          (size_t)(page - 1) * (size_t)limit, (size_t)limit,
                                          list, &n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, file_view_json(&list[i]));
        store_file_clear(&list[i]);
    }
    free(list);
    fields_prune(ctx, FIELDS_FILE, arr);
    reply_page(ctx, "files", arr, total, page, limit);
}

/* ---- downloads ------------------------------------------------------------- */

typedef struct stream {
    blob_reader_t *r; /* plain or sealed (blobs.h) */
    uint64_t pos, end; /* bytes [pos, end) remain */
} stream_t;

static ssize_t read_stream(void *cls, uint64_t off, char *buf, size_t max)
{
    (void)off;
    stream_t *s = cls;
    if (s->pos >= s->end)
        return U_STREAM_END;
    size_t want = max < s->end - s->pos ? max : (size_t)(s->end - s->pos);
    ssize_t n = blob_reader_read(s->r, s->pos, buf, want);
    if (n <= 0)
        return U_STREAM_ERROR;
    s->pos += (uint64_t)n;
    return n;
}

static void free_stream(void *cls)
{
    stream_t *s = cls;
    blob_reader_close(s->r);
    free(s);
}

/*
 * Parses a single range "bytes=a-b", "bytes=a-" or "bytes=-n" against size.
 * Returns 1 with [*from, *to] (inclusive), 0 when the header is malformed or
 * asks for several ranges (the whole file is sent, as RFC 9110 allows), -1
 * when it cannot be satisfied (416).
 */
static int parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to)
{
    if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0;
    const char *p = h + 6;
    char *end;
    if (*p == '-') {
        if (p[1] < '0' || p[1] > '9')
            return 0;
        unsigned long long n = strtoull(p + 1, &end, 10);
        if (*end != '\0')
            return 0;
        if (n == 0 || size == 0)
            return -1;
        *from = n >= size ? 0 : size - n;
        *to = size - 1;
        return 1;
    }
    if (*p < '0' || *p > '9')
        return 0;
    unsigned long long a = strtoull(p, &end, 10);
    if (*end != '-')
        return 0;
    unsigned long long b = size ? size - 1 : 0;
    if (end[1] != '\0') {
        if (end[1] < '0' || end[1] > '9')
            return 0;
        char *end2;
        b = strtoull(end + 1, &end2, 10);
        if (*end2 != '\0' || b < a)
            return 0;
    }
    if (a >= size)
        return -1;
    *from = a;
    *to = b >= size ? size - 1 : b;
    return 1;
}

/*
 * Whether an If-None-Match value lists `etag` (RFC 9110 13.1.2): "*", or a
 * comma-separated list of entity tags compared weakly (W/"x" matches "x").
 */
static bool etag_listed(const char *inm, const char *etag)
{
    size_t n = strlen(etag);
    const char *p = inm;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            return false;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (*p != '"')
            return false; /* not an entity tag: ignore the header */
        const char *close = strchr(p + 1, '"');
        if (close == NULL)
            return false;
        if ((size_t)(close + 1 - p) == n && strncmp(p, etag, n) == 0)
            return true;
        p = close + 1;
    }
}

/* Content-Disposition with an ASCII fallback and the RFC 5987 UTF-8 name. */
static void disposition(const store_file_t *f, char *out, size_t size)
{
    bool inline_ok = strncmp(f->content_type, "image/", 6) == 0 &&
                     strcmp(f->content_type, "image/svg+xml") != 0;
    char ascii[FILE_NAME_MAX], encoded[FILE_NAME_MAX * 3 + 1];
    size_t a = 0, e = 0;
    for (const unsigned char *p = (const unsigned char *)f->filename; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_';
        ascii[a++] = (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') ? (char)*p : '_';
        if (plain) {
            encoded[e++] = (char)*p;
        } else {
            e += (size_t)snprintf(encoded + e, sizeof(encoded) - e, "%%%02X", *p);
        }
    }
    ascii[a] = '\0';
    encoded[e] = '\0';
    snprintf(out, size, "%s; filename=\"%s\"; filename*=UTF-8''%s",
             inline_ok ? "inline" : "attachment", ascii, encoded);
}

static void get_download(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    store_file_t f;
    if (!load_file(ctx, p, &f, false))
        return;
    char etag[72];
    snprintf(etag, sizeof(etag), "\"%s\"", f.sha256);
    const char *inm = http_header(ctx, "If-None-Match");
    if (inm && etag_listed(inm, etag)) {
        http_set_header(ctx, "ETag", etag);
        http_reply_empty(ctx, 304);
        goto out;
    }
    blob_reader_t *reader;
    uint64_t size;
    if (blobs_reader_open(app->blobs, f.sha256, &reader, &size) != 0) {
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "the file's bytes are missing");
        goto out;
    }
    uint64_t from = 0, to = size ? size - 1 : 0;
    int range = 0;
    const char *rh = http_header(ctx, "Range");
    if (rh)
        range = parse_range(rh, size, &from, &to);
    /* Room for the longest Content-Disposition: the ASCII fallback and a
     * filename* of up to three characters per byte. */
    char v[FILE_NAME_MAX * 4 + 64];
    if (range < 0) {
        blob_reader_close(reader);
        snprintf(v, sizeof(v), "bytes */%llu", (unsigned long long)size);
        http_set_header(ctx, "Content-Range", v);
        http_reply_error(ctx, HTTP_ERR_RANGE_NOT_SATISFIABLE,
                         json_pack("{s:I}", "size", (json_int_t)size),
                         "the range is outside the file");
        goto out;
    }
    stream_t *st = xmalloc(sizeof(*st));
    st->r = reader;
    st->pos = from;
    st->end = size ? to + 1 : 0;
    http_set_header(ctx, "Content-Type", f.content_type);
    http_set_header(ctx, "X-Content-Type-Options", "nosniff");
    http_set_header(ctx, "ETag", etag);
    http_set_header(ctx, "Accept-Ranges", "bytes");
    http_set_header(ctx, "Cache-Control", "private, max-age=31536000, immutable");
    disposition(&f, v, sizeof(v));
    http_set_header(ctx, "Content-Disposition", v);
    if (range > 0) {
        snprintf(v, sizeof(v), "bytes %llu-%llu/%llu", (unsigned long long)from,
                 (unsigned long long)to, (unsigned long long)size);
        http_set_header(ctx, "Content-Range", v);
    }
    int status = range > 0 ? 206 : 200;
    if (ulfius_set_stream_response(ctx->resp, (unsigned)status, read_stream, free_stream,
                                   st->end - st->pos, 64 * 1024, st) != U_OK) {
        free_stream(st);
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "could not stream the file");
        goto out;
    }
    ctx->status = status;
out:
    store_file_clear(&f);
}

/* PATCH /files/{id} {is_public}: the uploader makes its file readable by
 * every signed-in user, or no longer (PlexiChat 001). Durable before 200. */
static void patch_file(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    store_file_t f;
    if (!load_file(ctx, p, &f, false))
        return;
    if (strcmp(f.uploaded_by, p->user.id) != 0) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "only the uploader may change a file");
        goto out;
    }
    if (http_field_bool(ctx, "is_public", true, &f.is_public) != 0)
        goto out;
    uint64_t lsn;
    int rc = store_file_put(app->store, &f, &lsn, NULL);
    if (rc == 0)
        rc = store_wait(app->store, lsn);
    if (rc != 0)
        reply_store_error(ctx, rc);
    else
        http_reply_json(ctx, 200, file_view_json(&f));
out:
    store_file_clear(&f);
}

static void delete_file(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    store_file_t f;
    if (!load_file(ctx, p, &f, true))
        return;
    if (strcmp(f.uploaded_by, p->user.id) != 0 && !p->user.is_admin) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "only the uploader or an admin may delete a file");
        goto out;
    }
    int rc = file_life_remove(app->store, app->blobs, &f);
    if (rc == 0 && strcmp(f.uploaded_by, p->user.id) != 0) /* an admin's: audited */
        rc = store_wait(app->store, audit_write(ctx, 0, "file.delete", f.id,
                                                json_pack("{s:s, s:s}", "filename", f.filename,
                                                          "uploaded_by", f.uploaded_by)));
    if (rc != 0) {
        reply_store_error(ctx, rc);
        goto out;
    }
    http_reply_empty(ctx, 204);
out:
    store_file_clear(&f);
}

const http_route_t files_routes[] = {
    {"POST", "/api/v1/files", post_file, HTTP_USER_CONTENT | HTTP_ROUTE_UPLOAD,
     "", "file,channel_id,description,is_public"},
    {"POST", "/api/v1/files/upload", post_file, HTTP_USER_CONTENT | HTTP_ROUTE_UPLOAD,
     "", "file,channel_id,description,is_public"},
    {"GET", "/api/v1/files", get_files, HTTP_USER_READ,
     "channel_id,page,limit,sort,order,fields", ""},
    {"GET", "/api/v1/files/:id", get_file, HTTP_USER_READ, "fields", ""},
    {"GET", "/api/v1/files/:id/download", get_download, HTTP_USER_READ | HTTP_ROUTE_STREAM, "",
     ""},
    {"DELETE", "/api/v1/files/:id", delete_file, HTTP_USER_WRITE, "", ""},
    {"PATCH", "/api/v1/files/:id", patch_file, HTTP_USER_WRITE, "", "is_public"},
    {"PUT", "/api/v1/users/me/avatar", put_avatar, HTTP_USER_WRITE | HTTP_ROUTE_UPLOAD,
     "", "file"},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
