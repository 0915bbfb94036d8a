/*
 * /api/v1/auth: register, login, refresh, logout, change-password, API keys
 * (docs/api.md, "Auth").
 *
 * Login is throttled per account and per client address before the password
 * is checked (auth_login_check counts the attempt in advance, so parallel
 * guesses cannot slip through), and an unknown account costs the same hash
 * time as a known one. The throttle counts the account, not the spelling:
 * once the name typed is found, it is keyed by the user's id, so failures by
 * username and by email (in any case) add up. A failure restarts the delay
 * from when it happened, after the ~60 ms hash, not from when the request
 * came: dated at the start, a failure whose hash crossed a second boundary
 * let the next guess through at once. Two-factor codes have a throttle
 * entry of their own (h_mfa.c): a right password clears the password's
 * failures, never the code's.
 *
 * Refresh tokens rotate: each use makes the session's next generation; a
 * token of an older generation coming back means it was stolen or replayed,
 * and the whole login is revoked. Any string that is not a live refresh
 * token is TOKEN_INVALID, whatever its length: the token is opaque to
 * clients.
 *
 * Sessions are changed by read-modify-write of their whole state (refresh,
 * reuse revocation, logout), each one store_session_modify: the check and
 * the change run on the session as it is, under the store's write lock,
 * which change-password's store_session_revoke_all takes too. So two
 * presentations of one refresh token cannot both rotate it, and a refresh
 * that raced a logout can never write the session back un-revoked. The
 * lock covers the read and the store's in-memory apply, not the wait for
 * the log's fsync. change-password hashes for ~100 ms; it then re-reads the
 * user and changes only the hash, so a profile update made meanwhile is kept.
 *
 * A login, a registration or an MFA step with "session": true answers with
 * session cookies instead of tokens (account.c; src/http/session_cookie.c);
 * logout clears them. The cookie session does not refresh: it is the
 * session itself, valid until it ends (refresh_token_ttl after the login)
 * or is revoked.
 *
 * API keys are created from a login, never with another API key: a
 * write-only key could otherwise mint itself a read key, and any key a
 * successor that outlives its revocation (the router refuses keys on every
 * account-security route: HTTP_ROUTE_LOGIN_ONLY). A password change revokes
 * the user's other logins and every API key: whoever changes a password
 * after a compromise expects the intruder's credentials to end, and a key
 * the intruder minted would otherwise outlive it. The owner makes new keys
 * from the new login.
 */
#include <string.h>

#include "account.h"
#include "parley/access.h"
#include "parley/app.h"
#include "parley/auth.h"
#include "parley/clock.h"
#include "parley/xalloc.h"
#include "resource.h"

/* Longest refresh_token value read before it is judged (and refused). */
#define REFRESH_FIELD_MAX 4096

static void post_register(http_ctx_t *ctx)
{
    store_user_t u;
    if (!account_session_field_valid(ctx) || !account_register(ctx, &u))
        return;
    /* Durable with the session's record, which comes after it. */
    audit_write_as(ctx, u.id, 0, "auth.register", u.id,
                   json_pack("{s:s, s:b, s:b}", "username", u.username, "admin", u.is_admin,
                             "session", account_session_wanted(ctx)));
    account_start_session(ctx, &u, 201);
    store_user_clear(&u);
}

static void post_login(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const char *name = NULL, *password = NULL, *mfa_code = NULL;
    bool remember = false;
    if (http_field_string(ctx, "username", false, 1, 254, false, &name) != 0 ||
        (name == NULL && http_field_string(ctx, "email", false, 1, 254, false, &name) != 0) ||
        (name == NULL &&
         http_field_string(ctx, "username_or_email", false, 1, 254, false, &name) != 0))
        return;
    if (name == NULL) {
        http_reply_invalid(ctx, "username", "username, email or username_or_email is required");
        return;
    }
    if (http_field_string(ctx, "password", true, 1, 1024, false, &password) != 0 ||
        http_field_bool(ctx, "remember_me", false, &remember) != 0 ||
        http_field_string(ctx, "mfa_code", false, 1, 16, false, &mfa_code) != 0 ||
        !account_session_field_valid(ctx))
        return;

    int64_t now = clock_wall_ms() / 1000;
    const char *ip = http_client_ip(ctx);
    int retry = 0;
    store_user_t u;
    memset(&u, 0, sizeof(u));
    bool found = store_user_find(app->store, name, &u);
    /* One throttle entry per account, however it was named. */
    const char *account = found ? u.id : name;
    if (auth_login_check(app->login_limiter, account, ip, now, &retry) != AUTH_OK) {
        store_user_clear(&u);
        char v[16];
        snprintf(v, sizeof(v), "%d", retry);
        http_set_header(ctx, "Retry-After", v);
        http_reply_error(ctx, HTTP_ERR_RATE_LIMITED, json_pack("{s:i}", "retry_after", retry),
                         "too many failed logins; try again in %d seconds", retry);
        return;
    }
    bool ok = found ? auth_password_verify(password, u.password_hash)
                    : auth_password_verify_dummy(password);
    if (!ok) {
        account_login_failed(ctx, account, found ? &u : NULL, "password");
        store_user_clear(&u);
        http_reply_error(ctx, HTTP_ERR_INVALID_CREDENTIALS, NULL,
                         "the username or password is wrong");
        return;
    }
    if (!u.is_active) {
        /* Said only after the right password, so it tells a guesser nothing. */
        auth_login_success(app->login_limiter, account, ip, now);
        store_wait(app->store, audit_write_as(ctx, u.id, 0, "auth.login_refused", u.id,
                                              json_pack("{s:s}", "reason", "deactivated")));
        store_user_clear(&u);
        http_reply_error(ctx, HTTP_ERR_ACCOUNT_BANNED, NULL, "this account is deactivated");
        return;
    }
    if (principal_user_banned(&u, clock_wall_ms())) {
        auth_login_success(app->login_limiter, account, ip, now);
        store_wait(app->store, audit_write_as(ctx, u.id, 0, "auth.login_refused", u.id,
                                              json_pack("{s:s}", "reason", "banned")));
        account_refuse_banned(ctx, &u);
        store_user_clear(&u);
        return;
    }
    if (u.mfa_enabled && mfa_code == NULL) {
        /* The password was right; the second factor comes with verify. */
        auth_login_success(app->login_limiter, account, ip, now);
        char temp[AUTH_MFA_TOKEN_MAX];
        if (auth_mfa_token_issue(&app->keys, u.id, now, ACCOUNT_MFA_TOKEN_TTL, temp) != AUTH_OK)
            http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "could not issue a token");
        else
            http_reply_error(ctx, HTTP_ERR_MFA_REQUIRED,
                             json_pack("{s:s, s:[s]}", "temp_token", temp, "mfa_methods", "totp"),
                             "a two-factor code is required: POST it with the temp_token to "
                             "/api/v1/auth/mfa/verify, or log in again with mfa_code");
        store_user_clear(&u);
        return;
    }
    /* The password was right: its failures are cleared; the code has its
     * own throttle, which only an accepted code clears (h_mfa.c). */
    auth_login_success(app->login_limiter, account, ip, now);
    if (u.mfa_enabled && !account_mfa_accept(ctx, &u, mfa_code)) {
        store_user_clear(&u);
        return;
    }
    account_login(ctx, &u);
    store_user_clear(&u);
}

/* A refresh, judged and made on the session as it is (store_session_modify). */
typedef struct refresh {
    parley_app_t *app;
    const char *token;
    enum { REFRESH_INVALID = 1, REFRESH_REUSED, REFRESH_BANNED, REFRESH_OK } outcome;
    store_user_t user; /* the session's user, when it rotates */
} refresh_t;

static int rotate_session(void *ctx, store_session_t *ss)
{
    refresh_t *r = ctx;
    if (ss->revoked || ss->expires_at <= clock_wall_ms())
        return REFRESH_INVALID;
    int check = auth_refresh_check(&r->app->keys, r->token, ss->id, ss->salt, ss->generation);
    if (check == AUTH_EREUSED) {
        ss->revoked = true;
        r->outcome = REFRESH_REUSED;
        return 0;
    }
    if (check != AUTH_OK || !store_user_get(r->app->store, ss->user_id, &r->user))
        return REFRESH_INVALID;
    if (!r->user.is_active)
        return REFRESH_INVALID;
    if (principal_user_banned(&r->user, clock_wall_ms())) {
        /* Kept as it is: the login works again when the ban ends. */
        r->outcome = REFRESH_BANNED;
        return REFRESH_BANNED;
    }
    ss->generation++;
    r->outcome = REFRESH_OK;
    return 0;
}

static void post_refresh(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const char *token = NULL;
    if (http_field_string(ctx, "refresh_token", true, 1, REFRESH_FIELD_MAX, false, &token) != 0)
        return;
    char sid[AUTH_ID_MAX];
    uint64_t gen;
    const char *mac;
    if (auth_refresh_parse(token, sid, &gen, &mac) != AUTH_OK) {
        http_reply_error(ctx, HTTP_ERR_TOKEN_INVALID, NULL, "the refresh token is not valid");
        return;
    }
    refresh_t r = {.app = app, .token = token, .outcome = REFRESH_INVALID};
    store_session_t ss;
    uint64_t lsn;
    int rc = store_session_modify(app->store, sid, rotate_session, &r, &ss, &lsn);
    if (rc == 0)
        rc = store_wait(app->store, lsn);
    if (r.outcome == REFRESH_REUSED && rc == 0)
        rc = store_wait(app->store, audit_write_as(ctx, ss.user_id, 0, "auth.refresh_reuse",
                                                   sid, NULL));
    if (r.outcome == REFRESH_REUSED)
        http_reply_error(ctx, HTTP_ERR_TOKEN_INVALID, NULL,
                         "this refresh token was already used; the login is revoked");
    else if (r.outcome == REFRESH_BANNED)
        account_refuse_banned(ctx, &r.user);
    else if (r.outcome == REFRESH_INVALID || rc == STORE_E_NOT_FOUND)
        http_reply_error(ctx, HTTP_ERR_TOKEN_INVALID, NULL, "the refresh token is not valid");
    else if (rc != 0)
        reply_store_error(ctx, rc);
    else
        account_reply_tokens(ctx, &r.user, &ss, 200);
    store_user_clear(&r.user);
}

#define ALREADY_REVOKED 1

static int revoke_session(void *ctx, store_session_t *ss)
{
    (void)ctx;
    if (ss->revoked)
        return ALREADY_REVOKED;
    ss->revoked = true;
    return 0;
}

static void post_logout(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    uint64_t lsn;
    int rc = store_session_modify(app->store, p->session_id, revoke_session, NULL, NULL, &lsn);
    if (rc == 0)
        rc = store_wait(app->store, lsn);
    /* A browser's cookies go whatever logged out: the login they held is
     * the one ended, or (a token beside them wins) one that is not theirs
     * to keep in a browser that logs out. */
    if (p->via_cookie || http_session_cookie(ctx) != NULL)
        http_session_cookies_clear(ctx);
    if (rc == STORE_E_NOT_FOUND)
        http_reply_error(ctx, HTTP_ERR_TOKEN_INVALID, NULL, "the access token is not valid");
    else if (rc != 0 && rc != ALREADY_REVOKED)
        reply_store_error(ctx, rc);
    else
        http_reply_empty(ctx, 204);
}

typedef struct password_change {
    const char *expected; /* the hash the caller's current password matched */
    const char *fresh;
} password_change_t;

#define PASSWORD_CHANGED_MEANWHILE 1

static int set_password(void *ctx, store_user_t *u)
{
    password_change_t *c = ctx;
    if (strcmp(u->password_hash, c->expected) != 0)
        return PASSWORD_CHANGED_MEANWHILE;
    snprintf(u->password_hash, sizeof(u->password_hash), "%s", c->fresh);
    u->updated_at = clock_wall_ms();
    return 0;
}

static void put_change_password(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    const char *current = NULL, *fresh = NULL;
    if (http_field_string(ctx, "current_password", true, 1, 1024, false, &current) != 0 ||
        http_field_string(ctx, "new_password", true, 8, 128, false, &fresh) != 0)
        return;
    if (!auth_password_verify(current, p->user.password_hash)) {
        http_reply_error(ctx, HTTP_ERR_INVALID_CREDENTIALS, json_pack("{s:s}", "field",
                         "current_password"), "the current password is wrong");
        return;
    }
    char fresh_hash[STORE_HASH_MAX];
    if (auth_password_hash(fresh, fresh_hash, sizeof(fresh_hash)) != AUTH_OK) {
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "could not hash the password");
        return;
    }
    /* The hashing took a while: change only the hash of the user as it is
     * now, unless the password itself changed meanwhile. */
    password_change_t change = {.expected = p->user.password_hash, .fresh = fresh_hash};
    uint64_t lsn;
    int rc = store_user_modify(app->store, p->user.id, set_password, &change, NULL, &lsn);
    if (rc == PASSWORD_CHANGED_MEANWHILE) {
        http_reply_error(ctx, HTTP_ERR_INVALID_CREDENTIALS,
                         json_pack("{s:s}", "field", "current_password"),
                         "the password was changed meanwhile");
        return;
    }
    if (rc == 0)
        rc = store_session_revoke_all(app->store, p->user.id,
                                      p->session_id[0] ? p->session_id : NULL, &lsn);
    size_t keys = 0;
    if (rc == 0)
        rc = store_api_key_revoke_all(app->store, p->user.id, &lsn, &keys);
    if (rc == 0)
        rc = store_wait(app->store, audit_write(ctx, lsn, "auth.password_change", p->user.id,
                                                json_pack("{s:I}", "api_keys_revoked",
                                                          (json_int_t)keys)));
    if (rc != 0)
        reply_store_error(ctx, rc);
    else
        http_reply_empty(ctx, 204);
}

static json_t *api_key_json(const store_api_key_t *k)
{
    json_t *perms = json_array();
    if (k->can_read)
        json_array_append_new(perms, json_string("read"));
    if (k->can_write)
        json_array_append_new(perms, json_string("write"));
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "id", k->id, "name", k->name, "permissions",
                     perms, "expires_at", time_json(k->expires_at), "created_at",
                     time_json(k->created_at));
}

static void post_api_key(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    const char *name = NULL, *expires = NULL;
    store_api_key_t k;
    memset(&k, 0, sizeof(k));
    if (http_field_string(ctx, "name", true, 1, 100, false, &name) != 0 ||
        http_field_string(ctx, "expires_at", false, 1, 40, false, &expires) != 0)
        return;
    json_t *perms = json_object_get(ctx->body, "permissions");
    if (!json_is_array(perms) || json_array_size(perms) == 0 || json_array_size(perms) > 2) {
        http_reply_invalid(ctx, "permissions", "permissions must be a list of \"read\", \"write\"");
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(perms, i, v) {
        const char *perm = json_string_value(v);
        if (perm && strcmp(perm, "read") == 0)
            k.can_read = true;
        else if (perm && strcmp(perm, "write") == 0)
            k.can_write = true;
        else {
            http_reply_invalid(ctx, "permissions",
                               "permissions must be a list of \"read\", \"write\"");
            return;
        }
    }
    k.created_at = clock_wall_ms();
    if (expires && (!http_parse_time(expires, &k.expires_at) || k.expires_at <= k.created_at)) {
        http_reply_invalid(ctx, "expires_at", "expires_at must be a future RFC 3339 UTC time");
        return;
    }
    char key[AUTH_API_KEY_MAX], short_id[AUTH_API_KEY_ID_MAX];
    if (auth_api_key_new(key, short_id, k.hash) != AUTH_OK) {
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "no randomness");
        return;
    }
    snprintf(k.id, sizeof(k.id), "key_%s", short_id);
    snprintf(k.user_id, sizeof(k.user_id), "%s", p->user.id);
    snprintf(k.name, sizeof(k.name), "%s", name);
    uint64_t lsn;
    int rc = store_api_key_put(app->store, &k, &lsn);
    if (rc == 0)
        rc = store_wait(app->store, audit_write(ctx, lsn, "api_key.create", k.id,
                                                json_pack("{s:s, s:b, s:b}", "name", k.name,
                                                          "read", k.can_read, "write",
                                                          k.can_write)));
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return;
    }
    json_t *body = api_key_json(&k);
    json_object_set_new(body, "key", json_string(key));
    http_reply_json(ctx, 201, body);
}

#define MAX_KEYS_LISTED 1000

static void get_api_keys(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    store_api_key_t *keys = xcalloc(MAX_KEYS_LISTED, sizeof(*keys));
    size_t n = store_api_key_list(app->store, p->user.id, keys, MAX_KEYS_LISTED);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, api_key_json(&keys[i]));
    free(keys);
    http_reply_json(ctx, 200, json_pack("{s:o}", "api_keys", list));
}

static void delete_api_key(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    store_api_key_t k;
    if (!store_api_key_get(app->store, ctx->params[0], &k) || k.revoked ||
        strcmp(k.user_id, p->user.id) != 0) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such API key");
        return;
    }
    k.revoked = true;
    uint64_t lsn;
    int rc = store_api_key_put(app->store, &k, &lsn);
    if (rc == 0)
        rc = store_wait(app->store, audit_write(ctx, lsn, "api_key.delete", k.id,
                                                json_pack("{s:s}", "name", k.name)));
    if (rc != 0)
        reply_store_error(ctx, rc);
    else
        http_reply_empty(ctx, 204);
}

const http_route_t auth_routes[] = {
    {"POST", "/api/v1/auth/register", post_register, HTTP_ROUTE_PUBLIC | HTTP_RATE_AUTH,
     "", "username,email,password,display_name,invite_code,session"},
    {"POST", "/api/v1/auth/login", post_login, HTTP_ROUTE_PUBLIC | HTTP_RATE_AUTH,
     "", "username,email,username_or_email,password,remember_me,mfa_code,session"},
    {"POST", "/api/v1/auth/refresh", post_refresh, HTTP_ROUTE_PUBLIC | HTTP_RATE_AUTH,
     "", "refresh_token"},
    {"POST", "/api/v1/auth/logout", post_logout,
     HTTP_USER_WRITE | HTTP_ROUTE_LOGIN_ONLY | HTTP_RATE_AUTH, "", ""},
    {"PUT", "/api/v1/auth/change-password", put_change_password,
     HTTP_USER_WRITE | HTTP_ROUTE_LOGIN_ONLY | HTTP_RATE_AUTH,
     "", "current_password,new_password"},
    {"POST", "/api/v1/auth/api-keys", post_api_key,
     HTTP_USER_WRITE | HTTP_ROUTE_LOGIN_ONLY | HTTP_RATE_AUTH,
     "", "name,permissions,expires_at"},
    {"GET", "/api/v1/auth/api-keys", get_api_keys,
     HTTP_USER_READ | HTTP_ROUTE_LOGIN_ONLY | HTTP_RATE_AUTH, "", ""},
    {"DELETE", "/api/v1/auth/api-keys/:id", delete_api_key,
     HTTP_USER_WRITE | HTTP_ROUTE_LOGIN_ONLY | HTTP_RATE_AUTH, "", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
