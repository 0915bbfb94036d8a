/*
 * Answers shared by the resource files: a channel the caller may not read is
 * a 404 (an admin knows of private channels it is not in, for the routes
 * that say so, but reads none of them; and a message in one is the same 404
 * as a message that never existed), a page of messages comes from the
 * policy layer's cached views, and
 * a store failure maps to one error per cause, and a seed's field whose one
 * value Parley supports is checked.
 */
#include "resource.h"

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
    http_reply_json_text(ctx, 200, text);
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

/* Whether file_id is what the user's avatar_url names now. */
static bool is_avatar_of(store_t *s, const char *user_id, const char *file_id)
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

int delete_message_files(parley_app_t *app, const chat_message_t *m)
{
    for (size_t i = 0; i < m->n_attachments; i++) {
        store_file_t f;
        if (!store_file_get(app->store, m->attachments[i], &f))
            continue;
        int rc = 0;
        /* Only the files the message owns: its author's uploads tied to it
         * (share_attachments), never a file a moderator shared, an avatar
         * or the file the author's avatar_url names. */
        if (!f.is_deleted && !f.is_avatar && strcmp(f.message_id, m->id) == 0 &&
            strcmp(f.uploaded_by, m->user_id) == 0 && !is_avatar_of(app->store, f.uploaded_by, f.id))
            rc = file_life_remove(app->store, app->blobs, &f);
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
