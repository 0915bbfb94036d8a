/*
 * Accounts: the rules for usernames, emails and passwords, creating a user,
 * and starting a login. A login is a session in the store (its id, a random
 * salt, the generation of its refresh token, its end); access tokens name
 * the session, so revoking it ends them at once, and refresh tokens are a MAC
 * of (session, salt, generation), so nothing else is stored for them.
 *
 * Creating an account hashes its password (argon2id, tens of milliseconds
 * of a core), so the cheap refusals come first: the fields' rules, then
 * whether the username or email is taken (the create still decides that
 * atomically; the check only spares the hash), then, for a registration,
 * the registration throttle per client address (--register-rate per hour,
 * app->register_limiter): only an attempt that would create an account
 * spends a token of it.
 */
#include "account.h"

#include <stdio.h>
#include <string.h>

#include "parley/access.h"
#include "parley/app.h"
#include "parley/auth.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/realtime.h"
#include "parley/rules.h"
#include "parley/settings.h"
#include "resource.h"

/* Runs under the store's write lock (chat_membership_modify): joins as a
 * member unless already one or banned from the channel. */
static int join_member(void *ctx, chat_membership_t *m)
{
    (void)ctx;
    if (m->role > CHAT_ROLE_NONE || m->banned_at != 0)
        return 1;
    m->role = CHAT_ROLE_MEMBER;
    m->joined_at = clock_wall_ms();
    return 0;
}

bool account_join(parley_app_t *app, const char *channel_id, const char *user_id,
                  bool public_only)
{
    chat_channel_t c;
    if (!chat_channel_get(app->store, channel_id, &c))
        return false;
    bool ok = !c.is_deleted && !c.is_direct && !(public_only && c.is_private);
    chat_channel_clear(&c);
    uint64_t lsn;
    if (!ok || chat_membership_modify(app->store, channel_id, user_id, join_member, NULL, NULL,
                                      &lsn) != 0 ||
        store_wait(app->store, lsn) != 0)
        return false;
    realtime_publish(app->realtime, "member.joined", channel_id, NULL,
                     json_pack("{s:s, s:s, s:o}", "channel_id", channel_id, "user_id", user_id,
                               "user", sender_json(app->store, user_id)));
    return true;
}

void account_reply_invite_refused(http_ctx_t *ctx, const char *code)
{
    parley_app_t *app = ctx->app;
    store_invite_t inv;
    int64_t now = clock_wall_ms();
    const char *reason = !store_invite_get(app->store, code, &inv) ? "unknown"
                         : inv.expires_at && now >= inv.expires_at ? "expired"
                                                                   : "used_up";
    http_reply_error(ctx, HTTP_ERR_INVITE_INVALID,
                     json_pack("{s:s, s:s}", "field", "invite_code", "reason", reason),
                     "this invite is %s",
                     reason[0] == 'u' && reason[1] == 'n' ? "not valid (unknown or revoked)"
                     : reason[0] == 'e'                   ? "expired"
                                                          : "used up");
}

/* True when `name_or_email` names an account already; answers 409 as the
 * create would, with `rc` saying which field. */
static bool taken(http_ctx_t *ctx, const char *name_or_email, int rc)
{
    parley_app_t *app = ctx->app;
    store_user_t other;
    if (!store_user_find(app->store, name_or_email, &other))
        return false;
    store_user_clear(&other);
    reply_store_error(ctx, rc);
    return true;
}

/* The registration throttle: false (429 answered) when the client's
 * address has registered --register-rate accounts in the last hour. */
static bool register_admitted(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    if (app->register_limiter == NULL)
        return true;
    auth_rate_info_t ri;
    if (auth_rate_check(app->register_limiter, AUTH_RATE_AUTH, NULL, http_client_ip(ctx),
                        clock_wall_ms(), &ri) == AUTH_OK)
        return true;
    char retry[16];
    snprintf(retry, sizeof(retry), "%d", ri.retry_after);
    http_set_header(ctx, "Retry-After", retry);
    http_reply_error(ctx, HTTP_ERR_RATE_LIMITED,
                     json_pack("{s:i, s:s}", "retry_after", ri.retry_after, "category",
                               "register"),
                     "too many registrations from your address; try again in %d seconds",
                     ri.retry_after);
    return false;
}

/* account_create, with a use of invite `code` (NULL: none) counted with
 * the account; *inv gets the invite as used. `throttled`: a registration,
 * which the registration throttle admits. */
static bool create(http_ctx_t *ctx, bool first_is_admin, bool admin, const char *code,
                   store_invite_t *inv, store_user_t *out, bool throttled)
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
    if (taken(ctx, username, STORE_E_CONFLICT_USERNAME) ||
        taken(ctx, email, STORE_E_CONFLICT_EMAIL))
        return false;
    if (throttled && !register_admitted(ctx))
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
    int rc = code ? store_user_create_invited(app->store, &u, first_is_admin, code,
                                              clock_wall_ms(), inv, &lsn)
                  : store_user_create(app->store, &u, first_is_admin, &lsn);
    if (rc == 0)
        rc = store_wait(app->store, lsn);
    if (rc != 0) {
        store_user_clear(&u);
        if (rc == STORE_E_INVITE)
            account_reply_invite_refused(ctx, code);
        else
            reply_store_error(ctx, rc);
        return false;
    }
    /* New accounts join the default channel (a public one; a setting that
     * names anything else is skipped). */
    store_settings_t live;
    store_settings_get(app->store, &live);
    if (live.default_channel[0])
        account_join(app, live.default_channel, u.id, true);
    *out = u;
    return true;
}

bool account_create(http_ctx_t *ctx, bool first_is_admin, bool admin, store_user_t *out)
{
    return create(ctx, first_is_admin, admin, NULL, NULL, out, false);
}

bool account_register(http_ctx_t *ctx, store_user_t *out)
{
    parley_app_t *app = ctx->app;
    const char *code = NULL;
    if (http_field_string(ctx, "invite_code", false, 1, STORE_INVITE_CODE_MAX - 1, false,
                          &code) != 0)
        return false;
    store_settings_t live;
    store_settings_get(app->store, &live);
    /* The first account (the bootstrap admin) registers whatever the mode. */
    int mode = store_user_count(app->store) == 0 ? SETTINGS_REG_OPEN : live.registration;
    if (mode == SETTINGS_REG_CLOSED) {
        http_reply_error(ctx, HTTP_ERR_REGISTRATION_CLOSED, NULL,
                         "registration is closed on this server; an administrator creates "
                         "accounts");
        return false;
    }
    if (mode == SETTINGS_REG_INVITE && code == NULL) {
        http_reply_invalid(ctx, "invite_code", "registration is by invitation: give invite_code");
        return false;
    }
    store_invite_t inv;
    if (!create(ctx, true, false, code, &inv, out, true))
        return false;
    for (size_t i = 0; code && i < inv.n_channels; i++)
        account_join(app, inv.channels[i], out->id, false);
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

bool account_session_field_valid(http_ctx_t *ctx)
{
    bool wanted;
    return http_field_bool(ctx, "session", false, &wanted) == 0;
}

bool account_session_wanted(const http_ctx_t *ctx)
{
    return ctx->body != NULL && json_is_true(json_object_get(ctx->body, "session"));
}

/* Answers a browser login: the session's cookies, and in the body only its
 * CSRF token (a page of a listed origin cannot read the cookie of another
 * host), its end and the user. */
static void reply_session_cookies(http_ctx_t *ctx, const store_user_t *u,
                                  const store_session_t *ss, int status)
{
    parley_app_t *app = ctx->app;
    char credential[AUTH_SESSION_COOKIE_MAX], csrf[AUTH_CSRF_TOKEN_MAX];
    if (auth_session_cookie_issue(&app->keys, ss->id, ss->salt, credential) != AUTH_OK ||
        auth_csrf_token(&app->keys, ss->id, ss->salt, csrf) != AUTH_OK) {
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "could not issue the session cookie");
        return;
    }
    http_session_cookies_set(ctx, credential, csrf, (ss->expires_at - clock_wall_ms()) / 1000);
    http_reply_json(ctx, status,
                    json_pack("{s:s, s:s, s:o, s:o}", "token_type", "cookie", "csrf_token", csrf,
                              "expires_at", time_json(ss->expires_at), "user",
                              user_json(u, true, true)));
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
    if (account_session_wanted(ctx))
        reply_session_cookies(ctx, u, &ss, status);
    else
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
                   json_pack("{s:b, s:b}", "mfa", u->mfa_enabled, "session",
                             account_session_wanted(ctx)));
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
