/*
 * Invites (docs/admin.md, "Invites"): codes that let a new account register
 * while registration is by invitation, and put it in channels.
 *
 * - /api/v1/admin/invites: an admin creates (any channels but direct ones),
 *   lists and revokes invites.
 * - POST /api/v1/channels/{id}/invites: the owner of a private channel (or
 *   an admin) creates an invite to that channel alone.
 * - POST /api/v1/invites/{code}/accept: a signed-in account uses one to
 *   join its channels.
 *
 * A code is 16 bytes of GnuTLS randomness in hex (auth_random_hex): URL-safe
 * and unguessable. Its url is public_url (config) or http://<Host> of the
 * request, + "/register?invite=<code>". Everything in a body is checked
 * before anything is written; a use is counted by the store atomically with
 * what it allows (store_user_create_invited, store_invite_use).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "parley/access.h"
#include "parley/app.h"
#include "parley/auth.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/http.h"
#include "parley/settings.h"
#include "resource.h"

#define HOST_MAX 255

static json_t *invite_json(http_ctx_t *ctx, const store_invite_t *inv)
{
    parley_app_t *app = ctx->app;
    char base[600];
    const char *host = http_header(ctx, "Host");
    bool host_ok = host && host[0] && strlen(host) <= HOST_MAX;
    for (const char *q = host; host_ok && *q; q++)
        host_ok = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                  (*q >= '0' && *q <= '9') || strchr(".-:[]", *q);
    if (app->config->public_url[0])
        snprintf(base, sizeof(base), "%s", app->config->public_url);
    else
        snprintf(base, sizeof(base), "http://%s", host_ok ? host : "localhost");
    size_t n = strlen(base);
    if (n && base[n - 1] == '/')
        base[n - 1] = '\0';
    char url[700];
    snprintf(url, sizeof(url), "%s/register?invite=%s", base, inv->code);
    json_t *ch = json_array();
    for (size_t i = 0; i < inv->n_channels; i++)
        json_array_append_new(ch, json_string(inv->channels[i]));
    return json_pack("{s:s, s:s, s:o, s:I, s:o, s:o, s:s, s:o}", "code", inv->code, "url", url,
                     "expires_at", time_json(inv->expires_at), "uses", (json_int_t)inv->uses,
                     "max_uses", inv->max_uses ? json_integer(inv->max_uses) : json_null(),
                     "channel_ids", ch, "created_by", inv->created_by, "created_at",
                     time_json(inv->created_at));
}

/* Reads max_uses and expires_at into inv. False after answering 422. */
static bool read_limits(http_ctx_t *ctx, store_invite_t *inv)
{
    long long max_uses = 0;
    const char *expires = NULL;
    if (http_field_int(ctx, "max_uses", false, 1, STORE_INVITE_USES_MAX, &max_uses) != 0 ||
        http_field_string(ctx, "expires_at", false, 1, 64, false, &expires) != 0)
        return false;
    inv->max_uses = max_uses;
    if (expires) {
        if (!http_parse_time(expires, &inv->expires_at)) {
            http_reply_invalid(ctx, "expires_at", "expires_at must be an RFC 3339 time");
            return false;
        }
        if (inv->expires_at <= clock_wall_ms()) {
            http_reply_invalid(ctx, "expires_at", "expires_at must be in the future");
            return false;
        }
    }
    return true;
}

/* Fills the rest of a new invite and writes it; answers 201 or the error. */
static void create_invite(http_ctx_t *ctx, store_invite_t *inv)
{
    parley_app_t *app = ctx->app;
    if (auth_random_hex(16, inv->code) != AUTH_OK) {
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "no randomness");
        return;
    }
    snprintf(inv->created_by, sizeof(inv->created_by), "%s", ctx->principal->user.id);
    inv->created_at = clock_wall_ms();
    uint64_t lsn;
    int rc = store_invite_put(app->store, inv, &lsn);
    if (rc == 0) {
        json_t *channels = json_array();
        for (size_t i = 0; i < inv->n_channels; i++)
            json_array_append_new(channels, json_string(inv->channels[i]));
        rc = store_wait(app->store,
                        audit_write(ctx, lsn, "invite.create", inv->code,
                                    json_pack("{s:I, s:o, s:o}", "max_uses", (json_int_t)inv->max_uses,
                                              "expires_at", time_json(inv->expires_at),
                                              "channel_ids", channels)));
    }
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return;
    }
    http_reply_json(ctx, 201, invite_json(ctx, inv));
}

static void post_admin_invite(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    store_invite_t inv;
    memset(&inv, 0, sizeof(inv));
    if (!read_limits(ctx, &inv))
        return;
    json_t *ids = ctx->body ? json_object_get(ctx->body, "channel_ids") : NULL;
    if (ids && !(json_is_array(ids) && json_array_size(ids) <= STORE_INVITE_CHANNELS_MAX)) {
        http_reply_invalid(ctx, "channel_ids", "channel_ids must be a list of at most %d ids",
                           STORE_INVITE_CHANNELS_MAX);
        return;
    }
    size_t i;
    json_t *e;
    json_array_foreach(ids, i, e) {
        const char *id = json_string_value(e);
        if (id == NULL || strlen(id) == 0 || strlen(id) >= STORE_ID_MAX) {
            http_reply_invalid(ctx, "channel_ids", "channel_ids[%zu] is not a channel id", i);
            return;
        }
        chat_channel_t c;
        bool found = chat_channel_get(app->store, id, &c);
        /* A private channel the admin is not in is not the admin's to open:
         * admins read no private channel they are not members of. */
        bool ok = found && !c.is_deleted && !c.is_direct &&
                  channel_readable(app->store, &ctx->principal->user, id);
        if (found)
            chat_channel_clear(&c);
        if (!ok) {
            http_reply_error(ctx, HTTP_ERR_NOT_FOUND,
                             json_pack("{s:s, s:s}", "field", "channel_ids", "channel_id", id),
                             "no such channel: %s", id);
            return;
        }
        bool dup = false;
        for (size_t k = 0; k < inv.n_channels; k++)
            dup = dup || strcmp(inv.channels[k], id) == 0;
        if (!dup)
            snprintf(inv.channels[inv.n_channels++], STORE_ID_MAX, "%s", id);
    }
    create_invite(ctx, &inv);
}

static void get_admin_invites(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    long page, limit;
    if (!http_paging(ctx, &page, &limit))
        return;
    store_invite_t *all;
    size_t n = store_invite_list(app->store, &all);
    json_t *items = json_array();
    size_t from = (size_t)(page - 1) * (size_t)limit;
    for (size_t i = from; i < n && i < from + (size_t)limit; i++)
        json_array_append_new(items, invite_json(ctx, &all[i]));
    free(all);
    reply_page(ctx, "invites", items, n, page, limit);
}

static void delete_admin_invite(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    store_invite_t inv;
    if (strlen(ctx->params[0]) >= STORE_INVITE_CODE_MAX ||
        !store_invite_get(app->store, ctx->params[0], &inv)) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such invite");
        return;
    }
    inv.revoked = true;
    uint64_t lsn;
    int rc = store_invite_put(app->store, &inv, &lsn);
    if (rc == 0)
        rc = store_wait(app->store, audit_write(ctx, lsn, "invite.revoke", inv.code,
                                                json_pack("{s:I}", "uses", (json_int_t)inv.uses)));
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return;
    }
    http_reply_empty(ctx, 204);
}

static void post_channel_invite(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    channel_access_t a;
    if (!channel_access_load(ctx, p, ctx->params[0], &a)) {
        channel_access_clear(&a);
        return;
    }
    chat_channel_t c;
    bool found = chat_channel_get(app->store, ctx->params[0], &c);
    bool is_private = found && c.is_private && !c.is_direct;
    bool owner = found && strcmp(c.owner_id, p->user.id) == 0;
    if (found)
        chat_channel_clear(&c);
    chat_membership_t m;
    if (!owner && chat_membership_get(app->store, ctx->params[0], p->user.id, &m))
        owner = m.role == CHAT_ROLE_OWNER;
    channel_access_clear(&a);
    if (!owner && !p->user.is_admin) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "only the channel's owner or an admin may invite to it");
        return;
    }
    if (!is_private) {
        http_reply_invalid(ctx, "id",
                           "channel invites are for private channels; a public one is joined "
                           "freely");
        return;
    }
    store_invite_t inv;
    memset(&inv, 0, sizeof(inv));
    if (!read_limits(ctx, &inv))
        return;
    inv.n_channels = 1;
    snprintf(inv.channels[0], STORE_ID_MAX, "%s", ctx->params[0]);
    create_invite(ctx, &inv);
}

static void post_accept(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    const char *code = ctx->params[0];
    if (strlen(code) >= STORE_INVITE_CODE_MAX) {
        account_reply_invite_refused(ctx, "");
        return;
    }
    store_invite_t inv;
    uint64_t lsn;
    int rc = store_invite_use(app->store, code, clock_wall_ms(), &inv, &lsn);
    if (rc == STORE_E_INVITE) {
        account_reply_invite_refused(ctx, code);
        return;
    }
    if (rc == 0)
        rc = store_wait(app->store, lsn);
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return;
    }
    json_t *joined = json_array();
    for (size_t i = 0; i < inv.n_channels; i++)
        if (account_join(app, inv.channels[i], p->user.id, false))
            json_array_append_new(joined, json_string(inv.channels[i]));
    http_reply_json(ctx, 200, json_pack("{s:o}", "joined", joined));
}

const http_route_t invites_routes[] = {
    {"POST", "/api/v1/admin/invites", post_admin_invite, HTTP_ADMIN_WRITE,
     "", "channel_ids,max_uses,expires_at"},
    {"GET", "/api/v1/admin/invites", get_admin_invites, HTTP_ADMIN_READ, "page,limit", ""},
    {"DELETE", "/api/v1/admin/invites/:code", delete_admin_invite, HTTP_ADMIN_WRITE, "", ""},
    {"POST", "/api/v1/channels/:id/invites", post_channel_invite, HTTP_USER_WRITE,
     "", "max_uses,expires_at"},
    {"POST", "/api/v1/invites/:code/accept", post_accept, HTTP_USER_WRITE, "", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
