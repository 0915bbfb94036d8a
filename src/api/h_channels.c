/*
 * /api/v1/channels: channels, membership, moderation, direct channels and
 * read markers (docs/api.md, "Channels"). Permissions come from
 * src/access/channel_access.c; every change is one or more durable store records made by a
 * read-modify-write under the store's lock, then waited for.
 *
 * A direct channel is its set of users: opening it again (POST /direct)
 * answers the same channel and makes those of the set who left it members
 * again, so that it never answers a channel its caller cannot see.
 */
#include <stdlib.h>
#include <string.h>

#include "resource.h"
#include "parley/app.h"
#include "parley/clock.h"
#include "parley/file_life.h"
#include "parley/realtime.h"
#include "parley/rules.h"
#include "parley/xalloc.h"

/* Answers a store failure, or waits for lsn; true when durable. */
static bool durable(http_ctx_t *ctx, int rc, uint64_t lsn)
{
    parley_app_t *app = ctx->app;
    if (rc == 0)
        rc = store_wait(app->store, lsn);
    if (rc == STORE_E_CONFLICT_NAME) {
        http_reply_error(ctx, HTTP_ERR_CONFLICT, json_pack("{s:s}", "field", "name"),
                         "a channel with that name exists");
        return false;
    }
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return false;
    }
    return true;
}

/* Channel names: 1-80 characters, no control characters, not only spaces. */
static bool read_channel_fields(http_ctx_t *ctx, bool require_name, const char **name,
                                const char **description, int *is_private)
{
    bool priv = false;
    *is_private = -1;
    if (http_field_string(ctx, "name", require_name, 1, 80, false, name) != 0 ||
        http_field_string(ctx, "description", false, 0, 500, true, description) != 0 ||
        http_field_bool(ctx, "is_private", false, &priv) != 0)
        return false;
    if (*name && strspn(*name, " ") == strlen(*name)) {
        http_reply_invalid(ctx, "name", "name must not be blank");
        return false;
    }
    if (json_object_get(ctx->body, "is_private") && !json_is_null(json_object_get(ctx->body, "is_private")))
        *is_private = priv;
    return true;
}

static void publish_joined(parley_app_t *app, const char *channel_id, const char *user_id);

static void post_channel(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    const char *name = NULL, *description = NULL;
    int is_private;
    if (!read_channel_fields(ctx, true, &name, &description, &is_private))
        return;
    chat_channel_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.name, sizeof(c.name), "%s", name);
    c.description = description && description[0] ? strdup(description) : NULL;
    c.is_private = is_private == 1;
    snprintf(c.owner_id, sizeof(c.owner_id), "%s", p->user.id);
    c.created_at = c.updated_at = clock_wall_ms();
    const char *members[1] = {p->user.id};
    bool created;
    uint64_t lsn;
    int rc = chat_channel_create(app->store, &c, members, 1, &created, &lsn);
    if (durable(ctx, rc, lsn)) {
        /* The creator's other connections learn of the channel as of any
         * channel they join. */
        publish_joined(app, c.id, p->user.id);
        http_reply_json(ctx, 201, channel_json(app->store, &c));
    }
    chat_channel_clear(&c);
}

static json_t *channel_with_state(store_t *s, const chat_channel_t *c, const char *user_id)
{
    json_t *o = channel_json(s, c);
    chat_membership_t m;
    bool known = chat_membership_get(s, c->id, user_id, &m);
    const char *last_read = known ? m.last_read : "";
    /* Whether the caller is a member now (a record stays after a leave): a
     * public channel is listed to all, and a client tells the channels it
     * is in from those it may join. */
    json_object_set_new(o, "is_member", json_boolean(known && m.role > CHAT_ROLE_NONE));
    json_object_set_new(o, "unread_count",
                        json_integer((json_int_t)chat_unread(s, c->id, user_id, last_read, 1000)));
    chat_message_t last;
    if (chat_last_message(s, c->id, &last)) {
        json_object_set_new(o, "last_message", message_json(s, &last));
        chat_message_clear(&last);
    } else {
        json_object_set_new(o, "last_message", json_null());
    }
    return o;
}

/* ?sort= of GET /channels, in chat_channel_sort_t's order. */
static const char *const channel_sort_names[] = {"name", "created_at", "last_activity", NULL};
static const bool channel_sort_desc[] = {false, true, true};
static const sort_keys_t channel_sort = {channel_sort_names, channel_sort_desc};

static void get_channels(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    long page, limit;
    int sort;
    bool desc;
    if (!http_paging(ctx, &page, &limit) || !sort_read(ctx, &channel_sort, &sort, &desc) ||
        !fields_prune(ctx, FIELDS_CHANNEL, NULL))
        return;
    const char *q = http_query(ctx, "search");
    const char *all_text = http_query(ctx, "all");
    bool all = all_text && strcmp(all_text, "true") == 0;
    if (all_text && !all && strcmp(all_text, "false") != 0) {
        http_reply_invalid(ctx, "all", "all must be true or false");
        return;
    }
    if (all && !p->user.is_admin) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "only admins list every channel");
        return;
    }
    chat_channel_t *list = xcalloc((size_t)limit, sizeof(*list));
    size_t n, offset = (size_t)(page - 1) * (size_t)limit;
    size_t total = chat_channel_list_sorted(app->store, p->user.id, all, q,
                                            (chat_channel_sort_t)sort, desc, offset,
                                            (size_t)limit, list, &n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        /* The admins' listing: private channels the admin is not in are
         * named, not read (no last message, no unread count). */
        bool reads = !all || channel_readable(app->store, &p->user, list[i].id);
        json_array_append_new(arr, reads ? channel_with_state(app->store, &list[i], p->user.id)
                                         : channel_json(app->store, &list[i]));
        chat_channel_clear(&list[i]);
    }
    free(list);
    fields_prune(ctx, FIELDS_CHANNEL, arr);
    reply_page(ctx, "channels", arr, total, page, limit);
}

static void get_channel(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    channel_access_t a;
    /* An admin outside a private channel gets its object, not its last message. */
    if (channel_access_load_known(ctx, p, ctx->params[0], &a))
        reply_fields(ctx, 200, FIELDS_CHANNEL,
                     a.can_read ? channel_with_state(app->store, &a.channel, p->user.id)
                                : channel_json(app->store, &a.channel));
    channel_access_clear(&a);
}

typedef struct channel_change {
    const char *name, *description;
    int is_private; /* -1: unchanged */
    bool delete;
} channel_change_t;

static int change_channel(void *ctx, chat_channel_t *c)
{
    channel_change_t *ch = ctx;
    if (ch->delete) {
        c->is_deleted = true;
    } else {
        if (ch->name)
            snprintf(c->name, sizeof(c->name), "%s", ch->name);
        if (ch->description) {
            free(c->description);
            c->description = ch->description[0] ? strdup(ch->description) : NULL;
        }
        if (ch->is_private >= 0)
            c->is_private = ch->is_private;
    }
    c->updated_at = clock_wall_ms();
    return 0;
}

static void patch_channel(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    channel_access_t a;
    if (!channel_access_load(ctx, p, ctx->params[0], &a))
        goto out;
    channel_change_t ch = {0};
    if (!read_channel_fields(ctx, false, &ch.name, &ch.description, &ch.is_private))
        goto out;
    if (!a.is_owner) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "only the owner or an admin may change this channel");
        goto out;
    }
    if (a.channel.is_direct && (ch.name || ch.is_private == 0)) {
        http_reply_invalid(ctx, ch.name ? "name" : "is_private",
                           "a direct channel has no name and stays private");
        goto out;
    }
    chat_channel_t now;
    uint64_t lsn;
    int rc = chat_channel_modify(app->store, a.channel.id, change_channel, &ch, &now, &lsn);
    if (durable(ctx, rc, lsn)) {
        json_t *view = channel_json(app->store, &now);
        realtime_publish(app->realtime, "channel.updated", now.id, NULL, json_incref(view));
        http_reply_json(ctx, 200, view);
        chat_channel_clear(&now);
    }
out:
    channel_access_clear(&a);
}

static void delete_channel(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    channel_access_t a;
    if (!channel_access_load_known(ctx, p, ctx->params[0], &a))
        goto out;
    if (!a.is_owner) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "only the owner or an admin may delete this channel");
        goto out;
    }
    channel_change_t ch = {.is_private = -1, .delete = true};
    uint64_t lsn;
    size_t n_members = chat_member_count(app->store, a.channel.id), n_got = 0;
    chat_membership_t *members = calloc(n_members ? n_members : 1, sizeof(*members));
    if (members != NULL)
        chat_members(app->store, a.channel.id, 0, n_members, members, &n_got);
    int rc = chat_channel_modify(app->store, a.channel.id, change_channel, &ch, NULL, &lsn);
    if (rc == 0 && strcmp(a.channel.owner_id, p->user.id) != 0) /* an admin's: audited */
        lsn = audit_write(ctx, lsn, "channel.delete", a.channel.id,
                          json_pack("{s:s, s:s}", "name", a.channel.name, "owner_id",
                                    a.channel.owner_id));
    if (!durable(ctx, rc, lsn)) {
        free(members);
        goto out;
    }
    /* Once deleted, nobody may read the channel: its members are named. */
    const char **audience = calloc(n_got ? n_got : 1, sizeof(*audience));
    for (size_t i = 0; audience && i < n_got; i++)
        audience[i] = members[i].user_id;
    if (audience)
        realtime_publish_to(app->realtime, "channel.deleted", audience, n_got,
                            json_pack("{s:s}", "channel_id", a.channel.id));
    free(audience);
    free(members);
    /* The channel's files (its messages' attachments among them) go with it. */
    rc = file_life_remove_channel(app->store, app->blobs, a.channel.id);
    if (rc != 0)
        reply_store_error(ctx, rc);
    else
        http_reply_empty(ctx, 204);
out:
    channel_access_clear(&a);
}

/* ---- membership ----------------------------------------------------------- */

typedef struct member_change {
    enum { JOIN, LEAVE, SET_ROLE, BAN, UNBAN, READ } what;
    int role;
    const char *message_id;
    const char *by;      /* who made the change (for the event) */
    bool was_member;     /* set by change_member: the state before */
} member_change_t;

#define ROLE_UNCHANGED 1 /* fn result: nothing to write */

static int change_member(void *ctx, chat_membership_t *m)
{
    member_change_t *c = ctx;
    int64_t now = clock_wall_ms();
    c->was_member = m->role > CHAT_ROLE_NONE;
    switch (c->what) {
    case JOIN:
        if (m->role > CHAT_ROLE_NONE)
            return ROLE_UNCHANGED;
        m->role = c->role ? c->role : CHAT_ROLE_MEMBER;
        m->joined_at = now;
        return 0;
    case LEAVE:
        if (m->role == CHAT_ROLE_NONE)
            return ROLE_UNCHANGED;
        m->role = CHAT_ROLE_NONE;
        return 0;
    case SET_ROLE:
        if (m->role == CHAT_ROLE_NONE || m->role == CHAT_ROLE_OWNER)
            return ROLE_UNCHANGED;
        m->role = c->role;
        return 0;
    case BAN:
        if (m->banned_at == 0)
            m->banned_at = now;
        m->role = CHAT_ROLE_NONE;
        return 0;
    case UNBAN:
        if (m->banned_at == 0)
            return ROLE_UNCHANGED;
        m->banned_at = 0;
        return 0;
    case READ:
        /* Read markers only move forward (ids sort in creation order). */
        if (strcmp(c->message_id, m->last_read) <= 0)
            return ROLE_UNCHANGED;
        snprintf(m->last_read, sizeof(m->last_read), "%s", c->message_id);
        return 0;
    }
    return ROLE_UNCHANGED;
}

/* The event of a durable membership change: member.joined, or member.left
 * (to the channel, and to the user who left, who may no longer read it). */
static void publish_member_change(parley_app_t *app, const char *channel_id, const char *user_id,
                                  const member_change_t *c)
{
    const char *reason = c->what == BAN                          ? "banned"
                         : c->by && strcmp(c->by, user_id) != 0 ? "removed"
                                                                 : "left";
    if (c->what == JOIN)
        realtime_publish(app->realtime, "member.joined", channel_id, NULL,
                         json_pack("{s:s, s:s, s:o}", "channel_id", channel_id, "user_id",
                                   user_id, "user", sender_json(app->store, user_id)));
    else if ((c->what == LEAVE || c->what == BAN) && c->was_member)
        realtime_publish(app->realtime, "member.left", channel_id, user_id,
                         json_pack("{s:s, s:s, s:s}", "channel_id", channel_id, "user_id",
                                   user_id, "reason", reason));
}

static void publish_joined(parley_app_t *app, const char *channel_id, const char *user_id)
{
    member_change_t join = {.what = JOIN};
    publish_member_change(app, channel_id, user_id, &join);
}

/* Runs a membership change; true when done (or nothing was needed, then
 * *changed, when given, is false). */
static bool member_change_ex(http_ctx_t *ctx, const char *channel_id, const char *user_id,
                             member_change_t *c, bool *changed)
{
    parley_app_t *app = ctx->app;
    uint64_t lsn;
    int rc = chat_membership_modify(app->store, channel_id, user_id, change_member, c, NULL, &lsn);
    if (changed)
        *changed = rc != ROLE_UNCHANGED;
    if (rc == ROLE_UNCHANGED)
        return true;
    if (!durable(ctx, rc, lsn))
        return false;
    publish_member_change(app, channel_id, user_id, c);
    return true;
}

static bool member_change(http_ctx_t *ctx, const char *channel_id, const char *user_id,
                          member_change_t *c)
{
    return member_change_ex(ctx, channel_id, user_id, c, NULL);
}

static void post_join(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    channel_access_t a;
    /* A private channel one is not in cannot be joined, nor seen. */
    if (!channel_access_load(ctx, p, ctx->params[0], &a))
        goto out;
    if (a.banned) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "you are banned from this channel");
        goto out;
    }
    if (a.channel.is_private && a.member.role == CHAT_ROLE_NONE) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "a private channel is joined by invitation");
        goto out;
    }
    member_change_t c = {.what = JOIN};
    if (member_change(ctx, a.channel.id, p->user.id, &c))
        http_reply_json(ctx, 200, channel_json(app->store, &a.channel));
out:
    channel_access_clear(&a);
}

static void post_leave(http_ctx_t *ctx)
{
    const principal_t *p = ctx->principal;
    channel_access_t a;
    if (!channel_access_load(ctx, p, ctx->params[0], &a))
        goto out;
    if (a.member.role == CHAT_ROLE_NONE) {
        http_reply_error(ctx, HTTP_ERR_CONFLICT, NULL, "you are not a member of this channel");
        goto out;
    }
    if (a.member.role == CHAT_ROLE_OWNER && !a.channel.is_direct) {
        http_reply_error(ctx, HTTP_ERR_CONFLICT, NULL,
                         "the owner cannot leave; delete the channel instead");
        goto out;
    }
    member_change_t c = {.what = LEAVE, .by = p->user.id};
    if (member_change(ctx, a.channel.id, p->user.id, &c))
        http_reply_empty(ctx, 204);
out:
    channel_access_clear(&a);
}

static const char *role_name(int role)
{
    switch (role) {
    case CHAT_ROLE_OWNER:
        return "owner";
    case CHAT_ROLE_MODERATOR:
        return "moderator";
    default:
        return "member";
    }
}

static json_t *member_json(store_t *s, const chat_membership_t *m)
{
    store_user_t u;
    bool found = store_user_get(s, m->user_id, &u);
    json_t *o = json_pack("{s:s, s:s, s:s, s:o}", "user_id", m->user_id, "username",
                          found ? u.username : "", "role", role_name(m->role), "joined_at",
                          time_json(m->joined_at));
    if (found)
        store_user_clear(&u);
    return o;
}

static void get_members(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    channel_access_t a;
    long page, limit;
    if (!channel_access_load(ctx, p, ctx->params[0], &a) || !http_paging(ctx, &page, &limit))
        goto out;
    chat_membership_t *list = xcalloc((size_t)limit, sizeof(*list));
    size_t n;
    size_t total = chat_members(app->store, a.channel.id, (size_t)(page - 1) * (size_t)limit,
                                (size_t)limit, list, &n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, member_json(app->store, &list[i]));
    free(list);
    reply_page(ctx, "members", arr, total, page, limit);
out:
    channel_access_clear(&a);
}

/* Loads the channel for a moderator action; answers 403/404 itself. */
static bool moderate(http_ctx_t *ctx, const principal_t *p, channel_access_t *a)
{
    if (!channel_access_load(ctx, p, ctx->params[0], a))
        return false;
    if (!a->can_moderate) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "only the owner, a moderator or an admin may do this");
        return false;
    }
    if (a->channel.is_direct) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "direct channels have no moderation");
        return false;
    }
    return true;
}

static void post_member(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    channel_access_t a;
    const char *user_id = NULL;
    if (!moderate(ctx, p, &a) ||
        http_field_string(ctx, "user_id", true, 1, STORE_ID_MAX - 1, false, &user_id) != 0)
        goto out;
    store_user_t u;
    if (!store_user_get(app->store, user_id, &u)) {
        http_reply_invalid(ctx, "user_id", "no such user");
        goto out;
    }
    store_user_clear(&u);
    chat_membership_t m;
    if (chat_membership_get(app->store, a.channel.id, user_id, &m) && m.banned_at) {
        http_reply_error(ctx, HTTP_ERR_CONFLICT, NULL, "that user is banned; unban first");
        goto out;
    }
    member_change_t c = {.what = JOIN};
    bool added;
    if (!member_change_ex(ctx, a.channel.id, user_id, &c, &added))
        goto out;
    if (chat_membership_get(app->store, a.channel.id, user_id, &m))
        http_reply_json(ctx, added ? 201 : 200, member_json(app->store, &m));
    else
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "membership vanished");
out:
    channel_access_clear(&a);
}

/* Loads the membership of the user named by the path (:user_id) in a's
 * channel into *m. false after answering: 404 when that user is not a
 * member, 403 `owner_refusal` when it is the owner. */
static bool load_member_not_owner(http_ctx_t *ctx, const channel_access_t *a,
                                  chat_membership_t *m, const char *owner_refusal)
{
    parley_app_t *app = ctx->app;
    if (!chat_membership_get(app->store, a->channel.id, ctx->params[1], m) ||
        m->role == CHAT_ROLE_NONE) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "not a member of this channel");
        return false;
    }
    if (m->role == CHAT_ROLE_OWNER) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL, "%s", owner_refusal);
        return false;
    }
    return true;
}

static void delete_member(http_ctx_t *ctx)
{
    const principal_t *p = ctx->principal;
    channel_access_t a;
    if (!moderate(ctx, p, &a))
        goto out;
    chat_membership_t m;
    if (!load_member_not_owner(ctx, &a, &m, "the owner cannot be removed"))
        goto out;
    if (m.role == CHAT_ROLE_MODERATOR && !a.is_owner) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "only the owner or an admin may remove a moderator");
        goto out;
    }
    member_change_t c = {.what = LEAVE, .by = p->user.id};
    if (member_change(ctx, a.channel.id, m.user_id, &c))
        http_reply_empty(ctx, 204);
out:
    channel_access_clear(&a);
}

static void patch_member(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    channel_access_t a;
    const char *role = NULL;
    if (!moderate(ctx, p, &a) ||
        http_field_string(ctx, "role", true, 1, 16, false, &role) != 0)
        goto out;
    int r = strcmp(role, "moderator") == 0 ? CHAT_ROLE_MODERATOR
            : strcmp(role, "member") == 0  ? CHAT_ROLE_MEMBER
                                           : CHAT_ROLE_NONE;
    if (r == CHAT_ROLE_NONE) {
        http_reply_invalid(ctx, "role", "role must be \"moderator\" or \"member\"");
        goto out;
    }
    if (!a.is_owner) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "only the owner or an admin may change roles");
        goto out;
    }
    chat_membership_t m;
    if (!load_member_not_owner(ctx, &a, &m, "the owner's role cannot change"))
        goto out;
    member_change_t c = {.what = SET_ROLE, .role = r};
    if (member_change(ctx, a.channel.id, m.user_id, &c) &&
        chat_membership_get(app->store, a.channel.id, m.user_id, &m))
        http_reply_json(ctx, 200, member_json(app->store, &m));
out:
    channel_access_clear(&a);
}

static json_t *channel_with_bans(store_t *s, const chat_channel_t *c)
{
    json_t *o = channel_json(s, c);
    chat_membership_t list[100];
    size_t n;
    chat_banned(s, c->id, 0, 100, list, &n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:o}", "user_id", list[i].user_id,
                                             "created_at", time_json(list[i].banned_at)));
    json_object_set_new(o, "member_exceptions", arr);
    return o;
}

static void ban_or_unban(http_ctx_t *ctx, bool ban)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    channel_access_t a;
    if (!moderate(ctx, p, &a))
        goto out;
    store_user_t u;
    if (!rules_username_ok(ctx->params[1]) || !store_user_find(app->store, ctx->params[1], &u) ||
        (strcasecmp(u.username, ctx->params[1]) != 0 && (store_user_clear(&u), true))) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such user");
        goto out;
    }
    chat_membership_t m;
    bool is_member = chat_membership_get(app->store, a.channel.id, u.id, &m);
    if (ban && (strcmp(u.id, p->user.id) == 0 || (is_member && m.role == CHAT_ROLE_OWNER) ||
                (is_member && m.role == CHAT_ROLE_MODERATOR && !a.is_owner))) {
        store_user_clear(&u);
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "you cannot ban that user from this channel");
        goto out;
    }
    member_change_t c = {.what = ban ? BAN : UNBAN};
    bool ok = member_change(ctx, a.channel.id, u.id, &c);
    store_user_clear(&u);
    if (ok)
        http_reply_json(ctx, 200, channel_with_bans(app->store, &a.channel));
out:
    channel_access_clear(&a);
}

static void post_ban(http_ctx_t *ctx)
{
    ban_or_unban(ctx, true);
}

static void post_unban(http_ctx_t *ctx)
{
    ban_or_unban(ctx, false);
}

static void get_banned(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    channel_access_t a;
    long page, limit;
    if (!moderate(ctx, p, &a) || !http_paging(ctx, &page, &limit))
        goto out;
    chat_membership_t *list = xcalloc((size_t)limit, sizeof(*list));
    size_t n;
    size_t total = chat_banned(app->store, a.channel.id, (size_t)(page - 1) * (size_t)limit,
                               (size_t)limit, list, &n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *s = sender_json(app->store, list[i].user_id);
        json_array_append_new(arr, json_pack("{s:O, s:O, s:O}", "id", json_object_get(s, "id"),
                                             "username", json_object_get(s, "username"),
                                             "display_name",
                                             json_object_get(s, "display_name")));
        json_decref(s);
    }
    free(list);
    http_reply_json(ctx, 200,
                    json_pack("{s:o, s:I}", "users", arr, "total", (json_int_t)total));
out:
    channel_access_clear(&a);
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void post_direct(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    json_t *ids = json_object_get(ctx->body, "user_ids");
    const char *members[CHAT_DIRECT_MAX];
    size_t n = 0;
    members[n++] = p->user.id;
    if (!json_is_array(ids) || json_array_size(ids) == 0 ||
        json_array_size(ids) >= CHAT_DIRECT_MAX) {
        http_reply_invalid(ctx, "user_ids", "user_ids must list 1-%d other users",
                           CHAT_DIRECT_MAX - 1);
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        const char *id = json_string_value(v);
        store_user_t u;
        if (id == NULL || strlen(id) >= STORE_ID_MAX || !store_user_get(app->store, id, &u)) {
            http_reply_invalid(ctx, "user_ids", "user_ids must be ids of existing users");
            return;
        }
        store_user_clear(&u);
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            dup = dup || strcmp(members[k], id) == 0;
        if (!dup)
            members[n++] = id;
    }
    if (n < 2) {
        http_reply_invalid(ctx, "user_ids", "a direct channel needs at least one other user");
        return;
    }
    const char *sorted[CHAT_DIRECT_MAX];
    memcpy(sorted, members, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_ids);
    size_t key_len = 0;
    for (size_t k = 0; k < n; k++)
        key_len += strlen(sorted[k]) + 1;
    chat_channel_t c;
    memset(&c, 0, sizeof(c));
    c.direct_key = xmalloc(key_len);
    c.direct_key[0] = '\0';
    for (size_t k = 0; k < n; k++) {
        if (k)
            strcat(c.direct_key, ",");
        strcat(c.direct_key, sorted[k]);
    }
    c.is_direct = true;
    c.is_private = true;
    snprintf(c.owner_id, sizeof(c.owner_id), "%s", p->user.id);
    c.created_at = c.updated_at = clock_wall_ms();
    bool created;
    uint64_t lsn;
    int rc = chat_channel_create(app->store, &c, members, n, &created, &lsn);
    bool ok = durable(ctx, rc, lsn);
    /* The set of users is the channel: opening it again brings back those
     * of them who left it (else it would answer a channel they cannot see). */
    for (size_t k = 0; ok && !created && k < n; k++) {
        member_change_t join = {.what = JOIN,
                                .role = strcmp(members[k], c.owner_id) == 0 ? CHAT_ROLE_OWNER
                                                                            : CHAT_ROLE_MEMBER};
        ok = member_change(ctx, c.id, members[k], &join);
    }
    /* Its members (the creator's other connections too) learn of a new
     * direct channel as of any channel they join. */
    for (size_t k = 0; ok && created && k < n; k++)
        publish_joined(app, c.id, members[k]);
    if (ok)
        http_reply_json(ctx, created ? 201 : 200, channel_json(app->store, &c));
    chat_channel_clear(&c);
}

static void post_read(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    channel_access_t a;
    const char *message_id = NULL;
    if (!channel_access_load(ctx, p, ctx->params[0], &a) ||
        http_field_string(ctx, "message_id", true, 1, STORE_ID_MAX - 1, false, &message_id) != 0)
        goto out;
    chat_message_t m;
    if (!chat_message_get(app->store, message_id, &m)) {
        http_reply_invalid(ctx, "message_id", "no such message in this channel");
        goto out;
    }
    bool here = strcmp(m.channel_id, a.channel.id) == 0;
    chat_message_clear(&m);
    if (!here) {
        http_reply_invalid(ctx, "message_id", "no such message in this channel");
        goto out;
    }
    /* The move and its receipts (receipts.c): the others' markers are looked
     * at and the move applied under the channel's stripe lock; the authors
     * hear of it once it is durable. */
    member_change_t c = {.what = READ, .message_id = message_id};
    receipts_move_t mv;
    uint64_t lsn;
    receipts_read_begin(app->store, a.channel.id, p->user.id, &mv);
    int rc = chat_membership_modify(app->store, a.channel.id, p->user.id, change_member, &c,
                                    NULL, &lsn);
    receipts_read_end(&mv);
    if (rc == ROLE_UNCHANGED || durable(ctx, rc, lsn)) {
        /* A reader who is not a member (a public channel looked at) has no
         * place in read_by, so it announces nothing either. */
        if (rc != ROLE_UNCHANGED && a.member.role > CHAT_ROLE_NONE && !a.banned)
            receipts_read_publish(app, a.channel.id, p->user.id, &mv, message_id);
        chat_membership_t mm;
        const char *last = chat_membership_get(app->store, a.channel.id, p->user.id, &mm)
                               ? mm.last_read
                               : "";
        http_reply_json(ctx, 200,
                        json_pack("{s:s, s:I}", "last_read", last, "unread_count",
                                  (json_int_t)chat_unread(app->store, a.channel.id, p->user.id,
                                                          last, 1000)));
    }
out:
    channel_access_clear(&a);
}

const http_route_t channels_routes[] = {
    {"POST", "/api/v1/channels", post_channel, HTTP_USER_CONTENT,
     "", "name,description,is_private"},
    {"GET", "/api/v1/channels", get_channels, HTTP_USER_READ,
     "search,all,page,limit,sort,order,fields", ""},
    {"POST", "/api/v1/channels/direct", post_direct, HTTP_USER_CONTENT, "", "user_ids"},
    {"GET", "/api/v1/channels/:id", get_channel, HTTP_USER_READ, "fields", ""},
    {"PATCH", "/api/v1/channels/:id", patch_channel, HTTP_USER_CONTENT,
     "", "name,description,is_private"},
    {"DELETE", "/api/v1/channels/:id", delete_channel, HTTP_USER_WRITE, "", ""},
    {"POST", "/api/v1/channels/:id/join", post_join, HTTP_USER_WRITE, "", ""},
    {"POST", "/api/v1/channels/:id/leave", post_leave, HTTP_USER_WRITE, "", ""},
    {"GET", "/api/v1/channels/:id/members", get_members, HTTP_USER_READ, "page,limit", ""},
    {"POST", "/api/v1/channels/:id/members", post_member, HTTP_USER_WRITE, "", "user_id"},
    {"PATCH", "/api/v1/channels/:id/members/:user_id", patch_member, HTTP_USER_WRITE, "", "role"},
    {"DELETE", "/api/v1/channels/:id/members/:user_id", delete_member, HTTP_USER_WRITE, "", ""},
    {"POST", "/api/v1/channels/:id/ban-by-username/:username", post_ban, HTTP_USER_WRITE, "", ""},
    {"POST", "/api/v1/channels/:id/unban-by-username/:username", post_unban, HTTP_USER_WRITE,
     "", ""},
    {"GET", "/api/v1/channels/:id/banned-users", get_banned, HTTP_USER_READ, "page,limit", ""},
    {"POST", "/api/v1/channels/:id/read", post_read, HTTP_USER_WRITE, "", "message_id"},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
