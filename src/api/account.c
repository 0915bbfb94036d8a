/*
 * Accounts: the rules for usernames, emails and passwords, creating a user,
 * and starting a login. A login is a session in the store (its id, a random
 * salt, the generation of its refresh token, its end); access tokens name
 * the session, so revoking it ends them at once, and refresh tokens are a MAC
 * of (session, salt, generation), so nothing else is stored for them.
 */
#include "account.h"

#include <string.h>

#include "parley/access.h"
#include "parley/app.h"
#include "parley/auth.h"
#include "parley/clock.h"
#include "parley/rules.h"
#include "resource.h"

bool account_create(http_ctx_t *ctx, bool first_is_admin, bool admin, store_user_t *out)
{
    parley_app_t *app = ctx->app;
    const char *username = NULL, *email = NULL, *password = NULL, *display_name = NULL;
    if (http_field_string(ctx, "username", true, 1, 1000, false, &username) != 0)
        return false;
    if (!rules_username_ok(username)) {
        http_reply_invalid(ctx, "username",
                           "username must be 3-32 characters of letters, digits, _ . -");
        return false;
    }
    if (http_field_string(ctx, "email", true, 1, 1000, false, &email) != 0)
        return false;
    if (!rules_email_ok(email)) {
        http_reply_invalid(ctx, "email", "email is not a valid address");
        return false;
    }
    if (http_field_string(ctx, "password", true, 8, 128, false, &password) != 0 ||
        http_field_string(ctx, "display_name", false, 1, 64, false, &display_name) != 0)
        return false;

    store_user_t u;
    memset(&u, 0, sizeof(u));
    store_new_id("usr", u.id);
    snprintf(u.username, sizeof(u.username), "%s", username);
    snprintf(u.email, sizeof(u.email), "%s", email);
    if (auth_password_hash(password, u.password_hash, sizeof(u.password_hash)) != AUTH_OK) {
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "could not hash the password");
        return false;
    }
    u.display_name = display_name ? strdup(display_name) : NULL;
    u.is_admin = admin;
    u.is_active = true;
    u.created_at = u.updated_at = clock_wall_ms();
    uint64_t lsn;
    int rc = store_user_create(app->store, &u, first_is_admin, &lsn);
    if (rc == 0)
        rc = store_wait(app->store, lsn);
    if (rc != 0) {
        store_user_clear(&u);
        reply_store_error(ctx, rc);
        return false;
    }
    *out = u;
    return true;
}

void account_reply_tokens(http_ctx_t *ctx, const store_user_t *u, const store_session_t *ss,
                          int status)
{
    parley_app_t *app = ctx->app;
    char *access = NULL;
    char refresh[AUTH_REFRESH_MAX];
    int ttl = (int)app->config->access_token_ttl;
    if (auth_token_issue(&app->keys, u->id, ss->id, clock_wall_ms() / 1000, ttl, &access) !=
            AUTH_OK ||
        auth_refresh_issue(&app->keys, ss->id, ss->salt, ss->generation, refresh) != AUTH_OK) {
        free(access);
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "could not issue tokens");
        return;
    }
    json_t *body = json_pack("{s:s, s:s, s:i, s:s, s:o}", "access_token", access, "token_type",
                             "bearer", "expires_in", ttl, "refresh_token", refresh, "user",
                             user_json(u, true, true));
    free(access);
    http_reply_json(ctx, status, body);
}

void account_start_session(http_ctx_t *ctx, const store_user_t *u, int status)
{
    parley_app_t *app = ctx->app;
    store_session_t ss;
    memset(&ss, 0, sizeof(ss));
    store_new_id("ses", ss.id);
    snprintf(ss.user_id, sizeof(ss.user_id), "%s", u->id);
    if (auth_random_hex(16, ss.salt) != AUTH_OK) {
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "no randomness");
        return;
    }
    ss.generation = 1;
    ss.created_at = clock_wall_ms();
    ss.expires_at = ss.created_at + (int64_t)app->config->refresh_token_ttl * 1000;
    uint64_t lsn;
    int rc = store_session_put(app->store, &ss, &lsn);
    if (rc == 0)
        rc = store_wait(app->store, lsn);
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return;
    }
    account_reply_tokens(ctx, u, &ss, status);
}

static int note_login(void *ctx, store_user_t *u)
{
    (void)ctx;
    u->last_login = clock_wall_ms();
    u->login_count++;
    return 0;
}

void account_login(http_ctx_t *ctx, const store_user_t *u)
{
    parley_app_t *app = ctx->app;
    store_user_t now;
    uint64_t lsn;
    int rc = store_user_modify(app->store, u->id, note_login, NULL, &now, &lsn);
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return;
    }
    /* Durable with the session's record, which comes after it in the log. */
    audit_write_as(ctx, u->id, lsn, "auth.login", u->id,
                   json_pack("{s:b}", "mfa", u->mfa_enabled));
    account_start_session(ctx, &now, 200);
    store_user_clear(&now);
}

void account_login_failed(http_ctx_t *ctx, const char *account_key, const store_user_t *u,
                          const char *reason)
{
    parley_app_t *app = ctx->app;
    const char *ip = http_client_ip(ctx);
    /* Dated after the hash: a second boundary passing while it ran must not
     * eat the delay that this failure starts. */
    bool locked = auth_login_failure(app->login_limiter, account_key, ip, clock_wall_ms() / 1000);
    const char *actor = u ? u->id : NULL;
    uint64_t lsn = audit_write_as(ctx, actor, 0, "auth.login_failed", account_key,
                                  json_pack("{s:s}", "reason", reason));
    if (locked)
        lsn = audit_write_as(ctx, actor, lsn, "auth.lockout", account_key,
                             json_pack("{s:i}", "failures", AUTH_LOGIN_FREE_ACCOUNT));
    store_wait(app->store, lsn); /* a log that refuses: the 401 is right anyway */
}

bool account_refuse_banned(http_ctx_t *ctx, const store_user_t *u)
{
    if (!principal_user_banned(u, clock_wall_ms()))
        return false;
    json_t *details = json_object();
    if (u->banned_until)
        json_object_set_new(details, "until", time_json(u->banned_until));
    if (u->ban_reason)
        json_object_set_new(details, "reason", json_string(u->ban_reason));
    http_reply_error(ctx, HTTP_ERR_ACCOUNT_BANNED, details, "this account is banned");
    return true;
}
