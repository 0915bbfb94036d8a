/*
 * /api/v1/users: the caller's own profile, other users' public profiles,
 * search with pagination, and account creation by an admin (docs/api.md,
 * "Users"). Email addresses are shown only to their owner and to admins;
 * preferences only to their owner.
 *
 * A rename (PUT /users/me {username}) is one more field of the same
 * read-modify-write as the rest of the profile: store_user_modify checks
 * the name is free case-insensitively under the write lock (no race between
 * two renames), the user record is written whole, and the name index moves
 * with it on apply and replay; audited and announced once durable.
 */
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "parley/app.h"
#include "parley/clock.h"
#include "parley/file_life.h"
#include "parley/realtime.h"
#include "parley/rules.h"
#include "parley/xalloc.h"
#include "resource.h"

static void get_me(http_ctx_t *ctx)
{
    const principal_t *p = ctx->principal;
    reply_fields(ctx, 200, FIELDS_USER, user_json(&p->user, true, true));
}

/* Replaces *slot with a copy of value ("" clears it to NULL). */
static void set_text(char **slot, const char *value)
{
    free(*slot);
    *slot = (value && value[0]) ? strdup(value) : NULL;
}

/*
 * What an avatar_url may be (checked by PUT /users/me; POST /users/me/avatar
 * sets its own): either exactly FILE_URL_PREFIX <id> FILE_URL_SUFFIX naming
 * a live image file (not SVG) the user uploaded, or an absolute https URL
 * with a host and no credentials (nothing before an "@" in the authority),
 * of printable ASCII without spaces or backslashes. A prefix is not enough:
 * "/api/v1/files/../../x" or another user's file must not pass, nor
 * http:// (mixed content), javascript:, data: or scheme-relative URLs.
 */
static bool avatar_url_ok(store_t *s, const char *user_id, const char *url)
{
    char id[STORE_ID_MAX];
    if (file_life_url_id(url, id)) {
        store_file_t f;
        if (!store_file_get(s, id, &f))
            return false;
        bool ok = !f.is_deleted && strcmp(f.uploaded_by, user_id) == 0 &&
                  strncmp(f.content_type, "image/", 6) == 0 &&
                  strcmp(f.content_type, "image/svg+xml") != 0;
        store_file_clear(&f);
        return ok;
    }
    if (strncmp(url, "https://", 8) != 0)
        return false;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '\\')
            return false;
    const char *host = url + 8;
    size_t authority = strcspn(host, "/?#");
    return authority > 0 && memchr(host, '@', authority) == NULL && host[0] != ':';
}

/* The change PUT /users/me asks for, applied to the user as it is when the
 * store runs apply_me (under its write lock: no lost updates). */
typedef struct me_change {
    const char *display_name, *bio, *email, *avatar, *username;
    json_t *prefs;     /* borrowed from the body, or NULL */
    char old_username[STORE_USERNAME_MAX]; /* the name before, when username is set */
    char *old_avatar;  /* the avatar_url replaced (malloc'd), or NULL */
} me_change_t;

#define PREFS_TOO_LARGE 1

static int apply_me(void *ctx, store_user_t *u)
{
    me_change_t *c = ctx;
    if (c->prefs) {
        /* Merge into what the user has: a PUT of one preference keeps the others. */
        json_t *merged = u->preferences ? json_loads(u->preferences, 0, NULL) : NULL;
        if (!json_is_object(merged)) {
            json_decref(merged);
            merged = json_object();
        }
        json_object_update(merged, c->prefs);
        char *text = json_dumps(merged, JSON_COMPACT);
        json_decref(merged);
        if (text == NULL || strlen(text) > 4096) {
            free(text);
            return PREFS_TOO_LARGE;
        }
        free(u->preferences);
        u->preferences = text;
    }
    if (c->display_name)
        set_text(&u->display_name, c->display_name);
    if (c->bio)
        set_text(&u->bio, c->bio);
    if (c->avatar) {
        free(c->old_avatar);
        c->old_avatar = u->avatar_url ? strdup(u->avatar_url) : NULL;
        set_text(&u->avatar_url, c->avatar);
    }
    if (c->email)
        snprintf(u->email, sizeof(u->email), "%s", c->email);
    if (c->username) { /* store_user_modify refuses a name taken, case-insensitively */
        snprintf(c->old_username, sizeof(c->old_username), "%s", u->username);
        snprintf(u->username, sizeof(u->username), "%s", c->username);
    }
    u->updated_at = clock_wall_ms();
    return 0;
}

static void put_me(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    me_change_t c = {0};
    if (http_field_string(ctx, "display_name", false, 1, 64, false, &c.display_name) != 0 ||
        http_field_string(ctx, "bio", false, 0, 500, true, &c.bio) != 0 ||
        http_field_string(ctx, "email", false, 1, 254, false, &c.email) != 0 ||
        http_field_string(ctx, "avatar_url", false, 0, 2048, false, &c.avatar) != 0 ||
        http_field_string(ctx, "username", false, 1, 1000, false, &c.username) != 0)
        goto out;
    if (c.username && !rules_username_ok(c.username)) { /* registration's rule (account.c) */
        http_reply_invalid(ctx, "username",
                           "username must be 3-32 characters of letters, digits, _ . -");
        goto out;
    }
    if (c.email && !rules_email_ok(c.email)) {
        http_reply_invalid(ctx, "email", "email is not a valid address");
        goto out;
    }
    if (c.avatar && c.avatar[0] && !avatar_url_ok(app->store, p->user.id, c.avatar)) {
        http_reply_invalid(ctx, "avatar_url",
                           "avatar_url must be an https URL or " FILE_URL_PREFIX
                           "{id}" FILE_URL_SUFFIX " of an image you uploaded");
        goto out;
    }
    c.prefs = json_object_get(ctx->body, "preferences");
    if (json_is_null(c.prefs))
        c.prefs = NULL;
    if (c.prefs && !json_is_object(c.prefs)) {
        http_reply_invalid(ctx, "preferences", "preferences must be an object");
        goto out;
    }
    store_user_t now;
    uint64_t lsn;
    int rc = store_user_modify(app->store, p->user.id, apply_me, &c, &now, &lsn);
    if (rc == PREFS_TOO_LARGE) {
        http_reply_invalid(ctx, "preferences", "preferences are limited to 4 KiB");
        goto out;
    }
    if (rc == 0) {
        /* A rename (a new version of the user record) is audited and
         * announced; the same name in another case is a rename too. */
        bool renamed = c.username && strcmp(c.old_username, now.username) != 0;
        if (renamed)
            lsn = audit_write(ctx, lsn, "user.rename", now.id,
                              json_pack("{s:s, s:s}", "from", c.old_username, "to", now.username));
        rc = store_wait(app->store, lsn);
        if (rc == 0) {
            if (c.old_avatar && strcmp(c.old_avatar, now.avatar_url ? now.avatar_url : "") != 0)
                file_life_drop_avatar(app->store, app->blobs, p->user.id, c.old_avatar);
            http_reply_json(ctx, 200, user_json(&now, true, true));
            if (renamed)
                realtime_publish_to_peers(
                    app->realtime, "user.updated", now.id,
                    json_pack("{s:o, s:s}", "user", user_json(&now, false, false), "previous_username",
                              c.old_username));
        }
        store_user_clear(&now);
    }
    if (rc != 0)
        reply_store_error(ctx, rc);
out:
    free(c.old_avatar);
}

static void reply_profile(http_ctx_t *ctx, const principal_t *p, bool found, store_user_t *u)
{
    if (!found) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such user");
        return;
    }
    bool self = strcmp(u->id, p->user.id) == 0;
    reply_fields(ctx, 200, FIELDS_USER, user_json(u, self || p->user.is_admin, self));
    store_user_clear(u);
}

static void get_user(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    store_user_t u;
    reply_profile(ctx, p, store_user_get(app->store, ctx->params[0], &u), &u);
}

static void get_user_by_name(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    store_user_t u;
    bool found = rules_username_ok(ctx->params[0]) &&
                 store_user_find(app->store, ctx->params[0], &u) &&
                 (strcasecmp(u.username, ctx->params[0]) == 0 || (store_user_clear(&u), false));
    reply_profile(ctx, p, found, &u);
}

/* ?sort= of GET /users, in store_user_sort_t's order. */
static const char *const user_sort_names[] = {"username", "created_at", "last_seen", NULL};
static const bool user_sort_desc[] = {false, true, true};
static const sort_keys_t user_sort = {user_sort_names, user_sort_desc};

static void get_users(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    long page, limit;
    const char *q = http_query(ctx, "search");
    if (q == NULL)
        q = http_query(ctx, "q");
    if (q && strlen(q) > 100) {
        http_reply_invalid(ctx, "search", "search is limited to 100 characters");
        return;
    }
    int sort;
    bool desc;
    if (!http_paging(ctx, &page, &limit) || !sort_read(ctx, &user_sort, &sort, &desc) ||
        !fields_prune(ctx, FIELDS_USER, NULL))
        return;
    store_user_t *hits = xcalloc((size_t)limit, sizeof(*hits));
    size_t n;
    size_t total = store_user_search_sorted(app->store, q, (store_user_sort_t)sort, desc,
                                            (size_t)(page - 1) * (size_t)limit, (size_t)limit,
                                            hits, &n);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        bool self = strcmp(hits[i].id, p->user.id) == 0;
        json_array_append_new(list, user_json(&hits[i], self || p->user.is_admin, self));
        store_user_clear(&hits[i]);
    }
    free(hits);
    fields_prune(ctx, FIELDS_USER, list);
    reply_page(ctx, "users", list, total, page, limit);
}

static void post_user(http_ctx_t *ctx)
{
    bool admin = false;
    json_t *roles = json_object_get(ctx->body, "roles");
    if (roles && !json_is_null(roles)) {
        size_t i;
        json_t *v;
        bool ok = json_is_array(roles);
        if (ok) {
            json_array_foreach(roles, i, v) {
                const char *r = json_string_value(v);
                if (r && strcmp(r, "admin") == 0)
                    admin = true;
                else if (!r || strcmp(r, "user") != 0)
                    ok = false;
            }
        }
        if (!ok) {
            http_reply_invalid(ctx, "roles", "roles must be a list of \"user\", \"admin\"");
            return;
        }
    }
    store_user_t u;
    if (!account_create(ctx, false, admin, &u))
        return;
    parley_app_t *app = ctx->app;
    int rc = store_wait(app->store, audit_write(ctx, 0, "user.create", u.id,
                                                json_pack("{s:s, s:b}", "username", u.username,
                                                          "admin", u.is_admin)));
    if (rc != 0)
        reply_store_error(ctx, rc);
    else
        http_reply_json(ctx, 201, user_json(&u, true, false));
    store_user_clear(&u);
}

const http_route_t users_routes[] = {
    {"GET", "/api/v1/users/me", get_me, HTTP_USER_READ, "fields", ""},
    {"PUT", "/api/v1/users/me", put_me, HTTP_USER_WRITE,
     "", "display_name,bio,email,avatar_url,preferences,username"},
    {"GET", "/api/v1/users/by-username/:username", get_user_by_name, HTTP_USER_READ, "fields", ""},
    {"GET", "/api/v1/users/:id", get_user, HTTP_USER_READ, "fields", ""},
    {"GET", "/api/v1/users", get_users, HTTP_USER_READ,
     "search,q,page,limit,sort,order,fields", ""},
    {"POST", "/api/v1/users", post_user, HTTP_ADMIN_WRITE,
     "", "username,email,password,display_name,roles"},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
