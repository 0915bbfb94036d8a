/*
 * /api/v1/admin/settings: the server's live settings (docs/admin.md,
 * "Settings"). GET shows the effective values, which of them were changed
 * through the API ("overridden": those win over the flags, restarts
 * included) and the retention sweep's progress; PATCH changes any of them
 * at once.
 *
 * A PATCH is checked whole before anything changes (store_settings_check:
 * unknown names, wrong types, out-of-range values answer 422 naming the
 * field), then applied as one record by store_settings_patch, whose check
 * callback decides what needs the store, atomically with the write: the
 * default channel must exist and be public, and an admin without MFA may
 * not require MFA of admins (that would lock them out of these routes; 409).
 * null resets a setting to its configured value. The parts that keep their
 * own copy (the gate's upload limit, the MFA rule of the admin routes, the
 * rate limiter, the proxy list) follow through the store's change hooks.
 */
#include <string.h>

#include "parley/api.h"
#include "parley/app.h"
#include "parley/chat.h"
#include "parley/http.h"
#include "parley/settings.h"
#include "resource.h"

enum { BAD_CHANNEL = 1, MFA_LOCKOUT };

typedef struct patch_ctx {
    parley_app_t *app;
    const principal_t *caller;
    bool sets_channel; /* the PATCH names a default_channel */
} patch_ctx_t;

/* Runs under the store's write lock (store_settings_patch): reads only. */
static int check_patch(void *vctx, const store_settings_t *next)
{
    patch_ctx_t *pc = vctx;
    if (pc->sets_channel && next->default_channel[0]) {
        chat_channel_t c;
        if (!chat_channel_get(pc->app->store, next->default_channel, &c))
            return BAD_CHANNEL;
        bool ok = !c.is_deleted && !c.is_private && !c.is_direct;
        chat_channel_clear(&c);
        if (!ok)
            return BAD_CHANNEL;
    }
    if (next->require_mfa_for_admins && !pc->caller->user.mfa_enabled)
        return MFA_LOCKOUT;
    return 0;
}

static json_t *settings_view(const store_settings_t *st)
{
    json_t *o = store_settings_json(st);
    api_retention_stats_t rs;
    api_retention_stats(&rs);
    json_object_set_new(o, "retention_sweep",
                        json_pack("{s:o, s:I}", "last_run_at", time_json(rs.last_run_ms),
                                  "messages_deleted", (json_int_t)rs.messages_deleted));
    return o;
}

static void get_settings(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    store_settings_t st;
    store_settings_get(app->store, &st);
    http_reply_json(ctx, 200, settings_view(&st));
}

static void patch_settings(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    char field[64], msg[256];
    if (ctx->body == NULL) {
        http_reply_invalid(ctx, "settings", "send a JSON object of settings");
        return;
    }
    if (!store_settings_check(ctx->body, field, msg)) {
        http_reply_invalid(ctx, field, "%s", msg);
        return;
    }
    store_settings_t st;
    if (json_object_size(ctx->body) == 0) { /* nothing to change */
        store_settings_get(app->store, &st);
        http_reply_json(ctx, 200, settings_view(&st));
        return;
    }
    json_t *channel = json_object_get(ctx->body, "default_channel");
    patch_ctx_t pc = {.app = app, .caller = ctx->principal,
                      .sets_channel = json_is_string(channel)};
    uint64_t lsn;
    int rc = store_settings_patch(app->store, ctx->body, check_patch, &pc, &st, &lsn);
    if (rc == BAD_CHANNEL) {
        http_reply_invalid(ctx, "default_channel",
                           "default_channel must name an existing public channel");
        return;
    }
    if (rc == MFA_LOCKOUT) {
        http_reply_error(ctx, HTTP_ERR_CONFLICT,
                         json_pack("{s:s}", "field", "require_mfa_for_admins"),
                         "turn on two-factor authentication for your own account before "
                         "requiring it of administrators");
        return;
    }
    if (rc == 0) /* the names and values asked for (null: back to the configured one) */
        rc = store_wait(app->store, audit_write(ctx, lsn, "settings.update", "settings",
                                                json_deep_copy(ctx->body)));
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return;
    }
    http_reply_json(ctx, 200, settings_view(&st));
}

const http_route_t admin_settings_routes[] = {
    {"GET", "/api/v1/admin/settings", get_settings, HTTP_ADMIN_READ, "", ""},
    {"PATCH", "/api/v1/admin/settings", patch_settings, HTTP_ADMIN_WRITE, "", HTTP_FIELDS_OWN},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
