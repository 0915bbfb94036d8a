/*
 * Answers shared by the resource files: a channel the caller may not read is
 * a 404 (an admin knows of private channels it is not in, for the routes
 * that say so, but reads none of them; and a message in one is the same 404
 * as a message that never existed), a page of messages comes from the
 * policy layer's cached views, ?fields= prunes the objects answered
 * (validated against each object's known keys, so a typo is a 422 rather
 * than an empty object), a seed's field whose one value Parley supports is
 * checked, and a store failure maps to one error per cause.
 */
#include "resource.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/file_life.h"

static bool load(http_ctx_t *ctx, const principal_t *p, const char *channel_id,
                 channel_access_t *a, bool known_is_enough)
{
    parley_app_t *app = ctx->app;
    channel_access_get(app->store, &p->user, channel_id, a);
    if (!(known_is_enough ? a->can_see : a->can_read)) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such channel");
        return false;
    }
    return true;
}

bool channel_access_load(http_ctx_t *ctx, const principal_t *p, const char *channel_id,
                         channel_access_t *a)
{
    return load(ctx, p, channel_id, a, false);
}

bool channel_access_load_known(http_ctx_t *ctx, const principal_t *p, const char *channel_id,
                               channel_access_t *a)
{
    return load(ctx, p, channel_id, a, true);
}

bool message_access_load(http_ctx_t *ctx, const principal_t *p, const char *id,
                         chat_message_t *m, channel_access_t *a)
{
    parley_app_t *app = ctx->app;
    memset(a, 0, sizeof(*a));
    bool found = chat_message_get(app->store, id, m);
    if (found) {
        channel_access_get(app->store, &p->user, m->channel_id, a);
        if (!a->can_read)
            chat_message_clear(m);
    }
    if (!found || !a->can_read) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such message");
        return false;
    }
    return true;
}

void http_reply_message_page(http_ctx_t *ctx, const chat_message_t *list, size_t n,
                             json_t *rest)
{
    parley_app_t *app = ctx->app;
    char *text = message_page_text(app->store, app->views, list, n, rest);
    if (text == NULL) {
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "could not encode the answer");
        return;
    }
    if (http_query(ctx, "fields") == NULL) {
        http_reply_json_text(ctx, 200, text);
        return;
    }
    /* Sparse: the cached text parsed again (only for those who ask). */
    json_t *page = json_loads(text, 0, NULL);
    free(text);
    if (page == NULL) {
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "could not encode the answer");
        return;
    }
    if (fields_prune(ctx, FIELDS_MESSAGE, json_object_get(page, "messages")))
        http_reply_json(ctx, 200, page);
    else
        json_decref(page);
}

/* Every key a view of each kind may carry (access/views.c, h_files.c);
 * a key added to a view is added here for ?fields= to name it. At most 64. */
static const char *const user_keys[] = {
    "id", "username", "display_name", "bio", "avatar_url", "roles", "status", "last_seen",
    "created_at", "is_active", "email", "mfa_enabled", "last_login", "permissions",
    "preferences", NULL};
static const char *const channel_keys[] = {
    "id", "name", "description", "type", "is_private", "owner_id", "member_count",
    "created_at", "updated_at", "last_message", "unread_count", "is_member", NULL};
static const char *const message_keys[] = {
    "id", "channel_id", "user_id", "sender", "content", "content_type", "created_at",
    "updated_at", "is_edited", "is_deleted", "reply_to", "thread_id", "mentions",
    "attachments", "reactions", "read_count", "read_by", NULL};
static const char *const file_keys[] = {
    "id", "filename", "original_filename", "content_type", "size", "sha256", "url",
    "channel_id", "description", "uploaded_by", "uploaded_at", "deduplicated", "is_public",
    "width", "height", NULL};
static const char *const *const kind_keys[] = {user_keys, channel_keys, message_keys,
                                               file_keys};

static json_t *names_json(const char *const *names)
{
    json_t *a = json_array();
    for (size_t i = 0; names[i]; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

/* The mask of keys ?fields= names (0: absent), or false after 422. */
static bool fields_mask(http_ctx_t *ctx, fields_kind_t kind, uint64_t *mask)
{
    const char *const *keys = kind_keys[kind];
    const char *v = http_query(ctx, "fields");
    *mask = 0;
    if (v == NULL)
        return true;
    for (const char *at = v;;) {
        size_t len = strcspn(at, ",");
        size_t k = 0;
        while (keys[k] && (strlen(keys[k]) != len || strncmp(keys[k], at, len) != 0))
            k++;
        if (keys[k] == NULL) {
            json_t *allowed = names_json(keys);
            char name[65];
            snprintf(name, sizeof(name), "%.*s", (int)(len < 64 ? len : 64), at);
            http_reply_error(ctx, HTTP_ERR_VALIDATION,
                             json_pack("{s:s, s:s%, s:o}", "field", "fields", "unknown", name,
                                       strlen(name), "allowed", allowed),
                             "fields: unknown field \"%s\"", name);
            return false;
        }
        *mask |= 1ull << k;
        if (at[len] == '\0')
            return true;
        at += len + 1;
    }
}

static void prune_object(json_t *o, const char *const *keys, uint64_t mask)
{
    const char *key;
    json_t *val;
    void *tmp;
    json_object_foreach_safe(o, tmp, key, val) {
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], key) != 0)
            k++;
        /* "id" is always kept; a key not in the list (none should be) goes. */
        if (strcmp(key, "id") != 0 && (keys[k] == NULL || !(mask & (1ull << k))))
            json_object_del(o, key);
    }
}

bool fields_prune(http_ctx_t *ctx, fields_kind_t kind, json_t *v)
{
    uint64_t mask;
    if (!fields_mask(ctx, kind, &mask))
        return false;
    if (mask == 0 || v == NULL)
        return true;
    if (json_is_object(v))
        prune_object(v, kind_keys[kind], mask);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (json_is_object(e))
            prune_object(e, kind_keys[kind], mask);
    }
    return true;
}

bool sort_read(http_ctx_t *ctx, const sort_keys_t *keys, int *sort, bool *desc)
{
    static const char *const orders[] = {"asc", "desc", NULL};
    const char *s = http_query(ctx, "sort"), *o = http_query(ctx, "order");
    int k = 0;
    if (s) {
        while (keys->names[k] && strcmp(keys->names[k], s) != 0)
            k++;
        if (keys->names[k] == NULL) {
            json_t *allowed = names_json(keys->names);
            char *list = json_dumps(allowed, JSON_COMPACT);
            http_reply_error(ctx, HTTP_ERR_VALIDATION,
                             json_pack("{s:s, s:o}", "field", "sort", "allowed", allowed),
                             "sort must be one of %s", list ? list : "the allowed keys");
            free(list);
            return false;
        }
    }
    if (o && strcmp(o, "asc") != 0 && strcmp(o, "desc") != 0) {
        http_reply_error(ctx, HTTP_ERR_VALIDATION,
                         json_pack("{s:s, s:o}", "field", "order", "allowed", names_json(orders)),
                         "order must be asc or desc");
        return false;
    }
    *sort = k;
    *desc = o ? strcmp(o, "desc") == 0 : keys->desc_default[k];
    return true;
}

void reply_fields(http_ctx_t *ctx, int status, fields_kind_t kind, json_t *v)
{
    if (fields_prune(ctx, kind, v))
        http_reply_json(ctx, status, v);
    else
        json_decref(v);
}

void reply_page(http_ctx_t *ctx, const char *key, json_t *items, size_t total, long page,
                long limit)
{
    http_reply_json(ctx, 200,
                    json_pack("{s:o, s:I, s:I, s:I}", key, items, "total", (json_int_t)total,
                              "page", (json_int_t)page, "pages",
                              (json_int_t)((total + (size_t)limit - 1) / (size_t)limit)));
}

void reply_store_error(http_ctx_t *ctx, int rc)
{
    switch (rc) {
    case STORE_E_CONFLICT_USERNAME:
        http_reply_error(ctx, HTTP_ERR_CONFLICT, json_pack("{s:s}", "field", "username"),
                         "that username is taken");
        break;
    case STORE_E_CONFLICT_EMAIL:
        http_reply_error(ctx, HTTP_ERR_CONFLICT, json_pack("{s:s}", "field", "email"),
                         "that email is already registered");
        break;
    case STORE_E_NOT_FOUND:
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "not found");
        break;
    case STORE_E_INVALID:
        http_reply_error(ctx, HTTP_ERR_VALIDATION, NULL,
                         "a value is outside what the server can store");
        break;
    default:
        http_reply_error(ctx, HTTP_ERR_UNAVAILABLE, NULL,
                         "the server cannot save changes right now");
        break;
    }
}

int delete_message_files(parley_app_t *app, const chat_message_t *m)
{
    for (size_t i = 0; i < m->n_attachments; i++) {
        store_file_t f;
        if (!store_file_get(app->store, m->attachments[i], &f))
            continue;
        int rc = 0;
        /* Only the files the message owns: its author's uploads tied to it
         * (share_attachments), never a file a moderator shared; one that is
         * also the author's avatar stays the avatar (file_life_release). */
        if (!f.is_deleted && strcmp(f.message_id, m->id) == 0 &&
            strcmp(f.uploaded_by, m->user_id) == 0)
            rc = file_life_release(app->store, app->blobs, &f, FILE_REF_MESSAGE);
        store_file_clear(&f);
        if (rc != 0)
            return rc;
    }
    return 0;
}

bool field_only_value(http_ctx_t *ctx, const char *name, const char *value)
{
    const char *got = NULL;
    if (http_field_string(ctx, name, false, 0, 64, false, &got) != 0)
        return false;
    if (got != NULL && strcmp(got, value) != 0) {
        http_reply_invalid(ctx, name, "%s must be \"%s\" (the only one supported)", name, value);
        return false;
    }
    return true;
}
