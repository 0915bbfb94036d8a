/*
 * /api/v1/admin/users: accounts as an administrator sees them, and
 * moderation (docs/admin.md, docs/api.md "Admin"): the list with filters and
 * sorting, one account with its logins, keys and message count, bans (until
 * lifted, or until a time: the policy layer compares banned_until with the
 * clock, so a timed ban ends by itself), roles, and deletion.
 *
 * Each change is one store_user_modify (the check and the change on the
 * account as it is, under the store's write mutex: "the last admin" is
 * decided there), durable before the answer. A ban revokes nothing: the
 * policy layer (src/access/principal.c) refuses the account's tokens, keys
 * and live connections while it holds, so an unban or the end of a timed
 * ban gives them back. A mute (timeout) is the same pair of fields beside
 * the ban's, which the router compares on the routes that put content
 * before others (HTTP_ROUTE_CONTENT: 403 ACCOUNT_MUTED); it refuses nothing
 * else. Bans and mutes share one code path (admin_moderate), which the
 * report resolutions of h_admin_reports.c call too. Deletion deactivates the account for good, frees
 * its username and email (the store drops them from its indexes) and
 * revokes its sessions; its messages stay, with a "Deleted user" sender.
 *
 * Refusals: an admin may not ban, mute or delete their own account (403
 * INSUFFICIENT_PERMISSIONS), nor remove the admin role of the last admin
 * (409 CONFLICT); a deleted account cannot be deleted again (409).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parley/access.h"
#include "parley/app.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/files.h"
#include "parley/http.h"
#include "parley/store.h"
#include "parley/xalloc.h"
#include "resource.h"

#define SEARCH_MAX 100
#define REASON_MAX 500 /* code points; STORE_BAN_REASON_MAX bytes at most */
#define SESSIONS_MAX 100
#define KEYS_MAX 100

/* The admin's view: the full user object, the moderation fields and the
 * bytes of the user's live uploads (what storage_quota_bytes counts). */
static json_t *admin_user_json(store_t *s, const store_user_t *u)
{
    json_t *o = user_json(u, true, false);
    bool banned = principal_user_banned(u, clock_wall_ms());
    json_object_set_new(o, "is_banned", json_boolean(banned));
    json_object_set_new(o, "banned_until", time_json(banned ? u->banned_until : 0));
    json_object_set_new(o, "ban_reason",
                        banned && u->ban_reason ? json_string(u->ban_reason) : json_null());
    bool muted = principal_user_muted(u, clock_wall_ms());
    json_object_set_new(o, "is_muted", json_boolean(muted));
    json_object_set_new(o, "muted_until", time_json(muted ? u->muted_until : 0));
    json_object_set_new(o, "mute_reason",
                        muted && u->mute_reason ? json_string(u->mute_reason) : json_null());
    json_object_set_new(o, "last_login", time_json(u->last_login));
    json_object_set_new(o, "login_count", json_integer(u->login_count));
    json_object_set_new(o, "is_deleted", json_boolean(u->deleted_at != 0));
    json_object_set_new(o, "storage_bytes",
                        json_integer((json_int_t)store_file_user_bytes(s, u->id)));
    return o;
}

/* ---- GET /admin/users ---------------------------------------------------- */

/* In the order of their query values; the last is "absent". */
enum status_filter { STATUS_ACTIVE, STATUS_BANNED, STATUS_DEACTIVATED, STATUS_ANY };
enum role_filter { ROLE_ADMIN, ROLE_USER, ROLE_ANY };
enum sort_key { SORT_CREATED, SORT_USERNAME, SORT_LAST_LOGIN };

typedef struct list_filter {
    const char *search; /* NULL or "" for all */
    enum status_filter status;
    enum role_filter role;
    bool include_inactive;
    int64_t now_ms;
} list_filter_t;

static bool contains_ci(const char *hay, const char *needle)
{
    return hay && strcasestr(hay, needle) != NULL;
}

/* Runs under a shard's read lock (store_user_select): no store calls. */
static bool keep_user(void *ctx, const store_user_t *u)
{
    const list_filter_t *f = ctx;
    bool banned = principal_user_banned(u, f->now_ms);
    switch (f->status) {
    case STATUS_ACTIVE:
        if (!u->is_active || banned)
            return false;
        break;
    case STATUS_BANNED:
        if (!u->is_active || !banned)
            return false;
        break;
    case STATUS_DEACTIVATED:
        if (u->is_active)
            return false;
        break;
    case STATUS_ANY:
        if (!u->is_active && !f->include_inactive)
            return false;
        break;
    }
    if ((f->role == ROLE_ADMIN && !u->is_admin) || (f->role == ROLE_USER && u->is_admin))
        return false;
    return !f->search || !f->search[0] || contains_ci(u->username, f->search) ||
           contains_ci(u->display_name, f->search) || contains_ci(u->email, f->search);
}

typedef struct sort_order {
    enum sort_key key;
    bool desc;
} sort_order_t;

static int cmp_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

static int cmp_users(const void *pa, const void *pb, void *ctx)
{
    const store_user_t *a = pa, *b = pb;
    const sort_order_t *o = ctx;
    int c = o->key == SORT_USERNAME     ? strcasecmp(a->username, b->username)
            : o->key == SORT_LAST_LOGIN ? cmp_i64(a->last_login, b->last_login)
                                        : cmp_i64(a->created_at, b->created_at);
    if (c == 0)
        c = strcmp(a->id, b->id); /* a total order: pages never overlap */
    return o->desc ? -c : c;
}

/* The index in `names` (NULL-terminated) of the query parameter `param`'s
 * value, or the count of names when it is absent; -1 after answering 422
 * naming it. */
static int query_choice(http_ctx_t *ctx, const char *param, const char *const *names)
{
    const char *v = http_query(ctx, param);
    int n = 0;
    while (names[n])
        n++;
    if (v == NULL)
        return n;
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    size_t len = 0;
    char list[128] = "";
    for (int i = 0; i < n && len < sizeof(list); i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", names[i]);
    http_reply_invalid(ctx, param, "%s must be one of %s", param, list);
    return -1;
}

static void get_users(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    static const char *const statuses[] = {"active", "banned", "deactivated", NULL};
    static const char *const roles[] = {"admin", "user", NULL};
    static const char *const bools[] = {"false", "true", NULL};
    static const char *const sorts[] = {"created_at", "username", "last_login", NULL};
    static const char *const orders[] = {"asc", "desc", NULL};
    list_filter_t f = {.now_ms = clock_wall_ms()};
    f.search = http_query(ctx, "search");
    if (f.search && strlen(f.search) > SEARCH_MAX) {
        http_reply_invalid(ctx, "search", "search is limited to %d characters", SEARCH_MAX);
        return;
    }
    int status, role, inactive, sort, order;
    long page, limit;
    if ((status = query_choice(ctx, "status", statuses)) < 0 ||
        (role = query_choice(ctx, "role", roles)) < 0 ||
        (inactive = query_choice(ctx, "include_inactive", bools)) < 0 ||
        (sort = query_choice(ctx, "sort", sorts)) < 0 ||
        (order = query_choice(ctx, "order", orders)) < 0 || !http_paging(ctx, &page, &limit))
        return;
    f.status = (enum status_filter)status;
    f.role = (enum role_filter)role;
    f.include_inactive = inactive == 1;
    /* defaults (absent: the count of names): created_at, asc */
    sort_order_t o = {.key = sort == 3 ? SORT_CREATED : (enum sort_key)sort, .desc = order == 1};

    store_user_t *all;
    size_t total = store_user_select(app->store, keep_user, &f, &all);
    if (total > 1)
        qsort_r(all, total, sizeof(*all), cmp_users, &o);
    json_t *list = json_array();
    size_t from = (size_t)(page - 1) * (size_t)limit;
    for (size_t i = 0; i < total; i++) {
        if (i >= from && i < from + (size_t)limit)
            json_array_append_new(list, admin_user_json(app->store, &all[i]));
        store_user_clear(&all[i]);
    }
    free(all);
    reply_page(ctx, "users", list, total, page, limit);
}

/* ---- GET /admin/users/{id} ----------------------------------------------- */

static void get_user(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    store_user_t u;
    if (!store_user_get(app->store, ctx->params[0], &u)) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such user");
        return;
    }
    json_t *o = admin_user_json(app->store, &u);
    int64_t now = clock_wall_ms();
    store_session_t *ss = xcalloc(SESSIONS_MAX, sizeof(*ss));
    size_t n = store_session_list(app->store, u.id, now, ss, SESSIONS_MAX);
    json_t *sessions = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(sessions, json_pack("{s:s, s:o, s:o}", "id", ss[i].id, "created_at",
                                                  time_json(ss[i].created_at), "expires_at",
                                                  time_json(ss[i].expires_at)));
    free(ss);
    store_api_key_t *keys = xcalloc(KEYS_MAX, sizeof(*keys));
    n = store_api_key_list(app->store, u.id, keys, KEYS_MAX);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *perms = json_array();
        if (keys[i].can_read)
            json_array_append_new(perms, json_string("read"));
        if (keys[i].can_write)
            json_array_append_new(perms, json_string("write"));
        json_array_append_new(list, json_pack("{s:s, s:s, s:o, s:o, s:o}", "id", keys[i].id,
                                              "name", keys[i].name, "permissions", perms,
                                              "created_at", time_json(keys[i].created_at),
                                              "expires_at", time_json(keys[i].expires_at)));
    }
    free(keys);
    json_object_set_new(o, "sessions", sessions);
    json_object_set_new(o, "api_keys", list);
    json_object_set_new(o, "message_count",
                        json_integer((json_int_t)chat_user_message_count(app->store, u.id)));
    store_user_clear(&u);
    http_reply_json(ctx, 200, o);
}

/* ---- changes ------------------------------------------------------------- */

#define REFUSE_DELETED 1
#define REFUSE_LAST_ADMIN 2

/* Whether the account `id` exists (else 404) and, unless self_ok, is not
 * the caller's own (else 403: an admin does not `what` themselves).
 * Answers and returns false when not. */
static bool target_ok(http_ctx_t *ctx, const char *id, bool self_ok, const char *what)
{
    parley_app_t *app = ctx->app;
    store_user_t probe;
    if (!store_user_get(app->store, id, &probe)) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such user");
        return false;
    }
    store_user_clear(&probe);
    if (!self_ok && strcmp(id, ctx->principal->user.id) == 0) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "an administrator cannot %s their own account", what);
        return false;
    }
    return true;
}

/* Runs one change on account `id` (not the caller's when !self_ok), writes
 * its audit entry (`action`, `details` stolen) and waits for both: true with
 * *now set (caller clears), or false after answering the refusal. */
static bool modify_user(http_ctx_t *ctx, const char *id, bool self_ok, const char *what,
                        int (*fn)(void *c, store_user_t *u), void *c, store_user_t *now,
                        const char *action, json_t *details)
{
    parley_app_t *app = ctx->app;
    if (!target_ok(ctx, id, self_ok, what)) {
        json_decref(details);
        return false;
    }
    uint64_t lsn;
    int rc = store_user_modify(app->store, id, fn, c, now, &lsn);
    if (rc == 0)
        lsn = audit_write(ctx, lsn, action, id, details);
    else
        json_decref(details);
    if (rc == REFUSE_DELETED) {
        http_reply_error(ctx, HTTP_ERR_CONFLICT, NULL, "the account is deleted");
    } else if (rc == REFUSE_LAST_ADMIN) {
        http_reply_error(ctx, HTTP_ERR_CONFLICT, NULL,
                         "the server would have no administrator left");
    } else if (rc != 0) {
        reply_store_error(ctx, rc); /* NOT_FOUND: 404 */
    } else {
        rc = store_wait(app->store, lsn);
        if (rc == 0)
            return true;
        reply_store_error(ctx, rc);
        store_user_clear(now);
    }
    return false;
}

/* modify_user on the route's account, answering 200 with the admin view. */
static void change_user(http_ctx_t *ctx, bool self_ok, const char *what,
                        int (*fn)(void *c, store_user_t *u), void *c, const char *action,
                        json_t *details)
{
    store_user_t now;
    if (modify_user(ctx, ctx->params[0], self_ok, what, fn, c, &now, action, details)) {
        http_reply_json(ctx, 200, admin_user_json(((parley_app_t *)ctx->app)->store, &now));
        store_user_clear(&now);
    }
}

/* A ban or a mute: the same fields, in two sets of the user record. */
static int apply_moderation(void *ctx, store_user_t *u)
{
    const admin_moderation_t *m = ctx;
    if (u->deleted_at)
        return REFUSE_DELETED;
    int64_t now = clock_wall_ms();
    char *reason = m->reason && m->reason[0] ? xstrdup(m->reason) : NULL;
    if (m->what == ADMIN_BAN) {
        u->banned_at = now;
        u->banned_until = m->until;
        free(u->ban_reason);
        u->ban_reason = reason;
    } else {
        u->muted_at = now;
        u->muted_until = m->until;
        free(u->mute_reason);
        u->mute_reason = reason;
    }
    u->updated_at = now;
    return 0;
}

bool admin_moderation_read(http_ctx_t *ctx, admin_moderation_t *m)
{
    const char *until = NULL;
    m->reason = NULL;
    m->until = 0;
    if (http_field_string(ctx, "reason", false, 0, REASON_MAX, true, &m->reason) != 0 ||
        http_field_string(ctx, "until", false, 1, 64, false, &until) != 0)
        return false;
    if (until) {
        if (!http_parse_time(until, &m->until)) {
            http_reply_invalid(ctx, "until", "until must be an RFC 3339 time");
            return false;
        }
        if (m->until <= clock_wall_ms()) {
            http_reply_invalid(ctx, "until", "until must be in the future");
            return false;
        }
    }
    return true;
}

bool admin_moderate(http_ctx_t *ctx, const char *user_id, const admin_moderation_t *m,
                    store_user_t *out)
{
    store_user_t now;
    json_t *details = json_pack("{s:o, s:o}", "reason",
                                m->reason && m->reason[0] ? json_string(m->reason) : json_null(),
                                "until", time_json(m->until));
    if (!modify_user(ctx, user_id, false, m->what == ADMIN_BAN ? "ban" : "mute",
                     apply_moderation, (void *)m, &now,
                     m->what == ADMIN_BAN ? "user.ban" : "user.mute", details))
        return false;
    if (out)
        *out = now;
    else
        store_user_clear(&now);
    return true;
}

/* POST /admin/users/{id}/ban and /mute {reason?, until?} */
static void post_moderation(http_ctx_t *ctx, int what)
{
    admin_moderation_t m = {.what = what};
    store_user_t now;
    if (admin_moderation_read(ctx, &m) && admin_moderate(ctx, ctx->params[0], &m, &now)) {
        http_reply_json(ctx, 200, admin_user_json(((parley_app_t *)ctx->app)->store, &now));
        store_user_clear(&now);
    }
}

static void post_ban(http_ctx_t *ctx)
{
    post_moderation(ctx, ADMIN_BAN);
}

static void post_mute(http_ctx_t *ctx)
{
    post_moderation(ctx, ADMIN_MUTE);
}

static int apply_unban(void *ctx, store_user_t *u)
{
    (void)ctx;
    u->banned_at = u->banned_until = 0;
    free(u->ban_reason);
    u->ban_reason = NULL;
    u->updated_at = clock_wall_ms();
    return 0;
}

static void post_unban(http_ctx_t *ctx)
{
    change_user(ctx, true, "unban", apply_unban, NULL, "user.unban", NULL);
}

static int apply_unmute(void *ctx, store_user_t *u)
{
    (void)ctx;
    u->muted_at = u->muted_until = 0;
    free(u->mute_reason);
    u->mute_reason = NULL;
    u->updated_at = clock_wall_ms();
    return 0;
}

static void post_unmute(http_ctx_t *ctx)
{
    change_user(ctx, true, "unmute", apply_unmute, NULL, "user.unmute", NULL);
}

typedef struct roles_change {
    store_t *store;
    bool admin;
} roles_change_t;

/* Under the store's write mutex: the count of admins cannot change while
 * this decides. */
static int apply_roles(void *ctx, store_user_t *u)
{
    const roles_change_t *r = ctx;
    if (u->deleted_at)
        return REFUSE_DELETED;
    if (u->is_admin && !r->admin && u->is_active && store_user_admin_count(r->store) <= 1)
        return REFUSE_LAST_ADMIN;
    u->is_admin = r->admin;
    u->updated_at = clock_wall_ms();
    return 0;
}

static void put_roles(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    json_t *roles = json_object_get(ctx->body, "roles");
    bool user = false, admin = false, ok = json_is_array(roles);
    size_t i;
    json_t *v;
    if (ok) {
        json_array_foreach(roles, i, v) {
            const char *r = json_string_value(v);
            if (r && strcmp(r, "user") == 0 && !user)
                user = true;
            else if (r && strcmp(r, "admin") == 0 && !admin)
                admin = true;
            else
                ok = false;
        }
    }
    if (!ok || !user) {
        http_reply_invalid(ctx, "roles", "roles must be [\"user\"] or [\"user\", \"admin\"]");
        return;
    }
    roles_change_t r = {.store = app->store, .admin = admin};
    change_user(ctx, true, "change the roles of", apply_roles, &r, "user.roles",
                json_pack("{s:b}", "admin", admin));
}

static int apply_delete(void *ctx, store_user_t *u)
{
    (void)ctx;
    if (u->deleted_at)
        return REFUSE_DELETED;
    u->deleted_at = u->updated_at = clock_wall_ms();
    u->is_active = false;
    return 0;
}

static void delete_user(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const char *id = ctx->params[0];
    if (!target_ok(ctx, id, false, "delete"))
        return;
    uint64_t lsn, revoked = 0;
    int rc = store_user_modify(app->store, id, apply_delete, NULL, NULL, &lsn);
    if (rc == REFUSE_DELETED) {
        http_reply_error(ctx, HTTP_ERR_CONFLICT, NULL, "the account is already deleted");
        return;
    }
    /* The account refuses its logins already; revoking them is tidiness. */
    if (rc == 0)
        rc = store_session_revoke_all(app->store, id, NULL, &revoked);
    if (rc == 0)
        rc = store_wait(app->store,
                        audit_write(ctx, revoked > lsn ? revoked : lsn, "user.delete", id, NULL));
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return;
    }
    http_reply_empty(ctx, 204);
}

const http_route_t admin_users_routes[] = {
    {"GET", "/api/v1/admin/users", get_users, HTTP_ADMIN_READ,
     "search,status,role,include_inactive,sort,order,page,limit", ""},
    {"GET", "/api/v1/admin/users/:id", get_user, HTTP_ADMIN_READ, "", ""},
    {"POST", "/api/v1/admin/users/:id/ban", post_ban, HTTP_ADMIN_WRITE, "", "reason,until"},
    {"POST", "/api/v1/admin/users/:id/unban", post_unban, HTTP_ADMIN_WRITE, "", ""},
    {"POST", "/api/v1/admin/users/:id/mute", post_mute, HTTP_ADMIN_WRITE, "", "reason,until"},
    {"POST", "/api/v1/admin/users/:id/unmute", post_unmute, HTTP_ADMIN_WRITE, "", ""},
    {"PUT", "/api/v1/admin/users/:id/roles", put_roles, HTTP_ADMIN_WRITE, "", "roles"},
    {"DELETE", "/api/v1/admin/users/:id", delete_user, HTTP_ADMIN_WRITE, "", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
