/*
 * /api/v1/auth/mfa: two-factor authentication with TOTP codes (RFC 6238),
 * as authenticator apps make them.
 *
 * setup   makes a secret and keeps it as *pending*; the answer carries it in
 *         base32 and as an otpauth:// URL (for a QR code);
 * enable  turns it on once the user proves the app has it (a valid code);
 * disable turns it off, again with a valid code;
 * verify  finishes a login: a login with the right password but no code is
 *         answered 401 MFA_REQUIRED with a short-lived temp_token that names
 *         the user and nothing else; verify takes it with a code and starts
 *         the session.
 * Each accepted code's time step is stored, so no code works twice.
 *
 * Codes are guessed like passwords, so every route that takes one (a login
 * with mfa_code, verify, disable, enable) goes through one throttle: the
 * login limiter's entry "mfa:<user id>", apart from the password's entry.
 * A right password clears the password's failures, never the code's (so a
 * password-only login cannot reset the count and let codes be guessed at
 * the per-address rate); only an accepted code clears them. A wrong code
 * restarts the delay and is audited (auth.login_failed with reason mfa_code
 * on a login, mfa.code_failed on disable and enable; auth.lockout when the
 * failure starts the delays). A call that needs no code check after all
 * (two-factor already on or off) keeps its attempt counted.
 */
#include <string.h>

#include "account.h"
#include "parley/app.h"
#include "parley/auth.h"
#include "parley/clock.h"
#include "resource.h"

/* Outcomes of the changes below (positive: never a store error). */
enum {
    MFA_CODE_WRONG = 1, /* wrong or already used code */
    MFA_ALREADY_ON,
    MFA_NOT_SET_UP,
    MFA_OFF,
};

typedef struct mfa_change {
    const char *code;       /* NULL: no code is tried (setup) */
    const char *step;       /* "login", "enable", "disable": for the audit */
    const char *new_secret; /* setup */
} mfa_change_t;

/* The throttle entry of a user's two-factor codes in the login limiter. */
static void code_throttle_key(const char *user_id, char out[4 + STORE_ID_MAX])
{
    snprintf(out, 4 + STORE_ID_MAX, "mfa:%s", user_id);
}

/* Before a code is tried: counts the attempt in advance, or answers 429
 * RATE_LIMIT_EXCEEDED with Retry-After and returns false while the user's
 * code failures (or the address's) delay it. */
static bool code_admitted(http_ctx_t *ctx, const char *user_id)
{
    parley_app_t *app = ctx->app;
    char key[4 + STORE_ID_MAX];
    code_throttle_key(user_id, key);
    int retry = 0;
    if (auth_login_check(app->login_limiter, key, http_client_ip(ctx), clock_wall_ms() / 1000,
                         &retry) == AUTH_OK)
        return true;
    char v[16];
    snprintf(v, sizeof(v), "%d", retry);
    http_set_header(ctx, "Retry-After", v);
    http_reply_error(ctx, HTTP_ERR_RATE_LIMITED, json_pack("{s:i}", "retry_after", retry),
                     "too many wrong two-factor codes; try again in %d seconds", retry);
    return false;
}

/* A wrong code: restarts the delay and writes its audit entries (durable
 * before it returns). */
static void code_failed(http_ctx_t *ctx, const char *user_id, const char *step)
{
    parley_app_t *app = ctx->app;
    char key[4 + STORE_ID_MAX];
    code_throttle_key(user_id, key);
    bool locked =
        auth_login_failure(app->login_limiter, key, http_client_ip(ctx), clock_wall_ms() / 1000);
    uint64_t lsn = strcmp(step, "login") == 0
                       ? audit_write_as(ctx, user_id, 0, "auth.login_failed", user_id,
                                        json_pack("{s:s}", "reason", "mfa_code"))
                       : audit_write_as(ctx, user_id, 0, "mfa.code_failed", user_id,
                                        json_pack("{s:s}", "step", step));
    if (locked)
        lsn = audit_write_as(ctx, user_id, lsn, "auth.lockout", user_id,
                             json_pack("{s:i, s:s}", "failures", AUTH_LOGIN_FREE_ACCOUNT,
                                       "reason", "mfa_code"));
    store_wait(app->store, lsn); /* a log that refuses: the answer is right anyway */
}

/* An accepted code: the user's code failures are cleared. */
static void code_passed(http_ctx_t *ctx, const char *user_id)
{
    parley_app_t *app = ctx->app;
    char key[4 + STORE_ID_MAX];
    code_throttle_key(user_id, key);
    auth_login_success(app->login_limiter, key, http_client_ip(ctx), clock_wall_ms() / 1000);
}

/* Accepts a code of the active secret and moves the last used step, in one
 * step with every other change of the user (two requests racing with one
 * code cannot both pass). */
static int accept_code(void *ctx, store_user_t *u)
{
    mfa_change_t *c = ctx;
    int64_t step;
    if (!u->mfa_enabled ||
        auth_totp_check(u->mfa_secret, c->code, clock_wall_ms() / 1000, u->mfa_last_step,
                        &step) != AUTH_OK)
        return MFA_CODE_WRONG;
    u->mfa_last_step = step;
    return 0;
}

static int begin_setup(void *ctx, store_user_t *u)
{
    mfa_change_t *c = ctx;
    if (u->mfa_enabled)
        return MFA_ALREADY_ON;
    snprintf(u->mfa_pending, sizeof(u->mfa_pending), "%s", c->new_secret);
    u->updated_at = clock_wall_ms();
    return 0;
}

static int enable(void *ctx, store_user_t *u)
{
    mfa_change_t *c = ctx;
    if (u->mfa_enabled)
        return MFA_ALREADY_ON;
    if (!u->mfa_pending[0])
        return MFA_NOT_SET_UP;
    int64_t step;
    if (auth_totp_check(u->mfa_pending, c->code, clock_wall_ms() / 1000, 0, &step) != AUTH_OK)
        return MFA_CODE_WRONG;
    u->mfa_enabled = true;
    snprintf(u->mfa_secret, sizeof(u->mfa_secret), "%s", u->mfa_pending);
    u->mfa_pending[0] = '\0';
    u->mfa_last_step = step;
    u->updated_at = clock_wall_ms();
    return 0;
}

static int disable(void *ctx, store_user_t *u)
{
    if (!u->mfa_enabled)
        return MFA_OFF;
    int rc = accept_code(ctx, u);
    if (rc != 0)
        return rc;
    u->mfa_enabled = false;
    u->mfa_secret[0] = '\0';
    u->updated_at = clock_wall_ms();
    return 0;
}

/* Runs one change and answers its failure; true when it is durable (with
 * its audit entry `action`, when not NULL). A change that tries a code
 * (c->code) is throttled first (code_admitted) and counted after. */
static bool change(http_ctx_t *ctx, const char *user_id, int (*fn)(void *, store_user_t *),
                   mfa_change_t *c, bool code_is_field, const char *action)
{
    parley_app_t *app = ctx->app;
    if (c->code && !code_admitted(ctx, user_id))
        return false;
    uint64_t lsn;
    int rc = store_user_modify(app->store, user_id, fn, c, NULL, &lsn);
    if (c->code && rc == MFA_CODE_WRONG)
        code_failed(ctx, user_id, c->step);
    else if (c->code && rc == 0)
        code_passed(ctx, user_id);
    if (rc == 0 && action)
        lsn = audit_write_as(ctx, user_id, lsn, action, user_id, NULL);
    if (rc == 0)
        rc = store_wait(app->store, lsn);
    switch (rc) {
    case 0:
        return true;
    case MFA_CODE_WRONG:
        if (code_is_field)
            http_reply_invalid(ctx, "code", "the code does not match the new secret");
        else
            http_reply_error(ctx, HTTP_ERR_INVALID_CREDENTIALS,
                             json_pack("{s:s}", "field", "mfa_code"),
                             "the two-factor code is wrong or already used");
        return false;
    case MFA_ALREADY_ON:
        http_reply_error(ctx, HTTP_ERR_CONFLICT, NULL,
                         "two-factor authentication is already on; disable it first");
        return false;
    case MFA_NOT_SET_UP:
        http_reply_error(ctx, HTTP_ERR_CONFLICT, NULL, "call /api/v1/auth/mfa/setup first");
        return false;
    case MFA_OFF:
        http_reply_error(ctx, HTTP_ERR_CONFLICT, NULL, "two-factor authentication is off");
        return false;
    default:
        reply_store_error(ctx, rc);
        return false;
    }
}

bool account_mfa_accept(http_ctx_t *ctx, store_user_t *u, const char *code)
{
    mfa_change_t c = {.code = code, .step = "login"};
    return change(ctx, u->id, accept_code, &c, false, NULL);
}

static void post_setup(http_ctx_t *ctx)
{
    const principal_t *p = ctx->principal;
    char hex[AUTH_TOTP_SECRET_HEX], b32[AUTH_TOTP_BASE32];
    mfa_change_t c = {.new_secret = hex};
    if (auth_totp_new_secret(hex, b32) != AUTH_OK) {
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "no randomness");
    } else if (change(ctx, p->user.id, begin_setup, &c, true, NULL)) {
        char url[256];
        snprintf(url, sizeof(url),
                 "otpauth://totp/Parley:%s?secret=%s&issuer=Parley&algorithm=SHA1&digits=6&"
                 "period=30",
                 p->user.username, b32);
        http_reply_json(ctx, 200, json_pack("{s:s, s:s, s:b}", "secret", b32, "otpauth_url", url,
                                            "mfa_enabled", false));
    }
}

static void post_enable(http_ctx_t *ctx)
{
    const principal_t *p = ctx->principal;
    mfa_change_t c = {.step = "enable"};
    if (http_field_string(ctx, "code", true, 1, 16, false, &c.code) == 0 &&
        change(ctx, p->user.id, enable, &c, true, "mfa.enable"))
        http_reply_json(ctx, 200, json_pack("{s:b}", "mfa_enabled", true));
}

static void post_disable(http_ctx_t *ctx)
{
    const principal_t *p = ctx->principal;
    mfa_change_t c = {.step = "disable"};
    if (http_field_string(ctx, "code", true, 1, 16, false, &c.code) == 0 &&
        change(ctx, p->user.id, disable, &c, false, "mfa.disable"))
        http_reply_json(ctx, 200, json_pack("{s:b}", "mfa_enabled", false));
}

static void post_verify(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const char *temp = NULL, *code = NULL;
    if (http_field_string(ctx, "temp_token", true, 1, AUTH_MFA_TOKEN_MAX, false, &temp) != 0 ||
        http_field_string(ctx, "mfa_code", true, 1, 16, false, &code) != 0 ||
        !field_only_value(ctx, "method", "totp") || !account_session_field_valid(ctx))
        return;
    /* PlexiChat's client may name the method (above): TOTP is the only one. */
    char uid[AUTH_ID_MAX];
    int64_t now = clock_wall_ms() / 1000;
    int rc = auth_mfa_token_verify(&app->keys, temp, now, uid);
    if (rc == AUTH_EEXPIRED) {
        http_reply_error(ctx, HTTP_ERR_TOKEN_EXPIRED, NULL, "log in again: the step expired");
        return;
    }
    store_user_t u;
    if (rc != AUTH_OK || !store_user_get(app->store, uid, &u)) {
        http_reply_error(ctx, HTTP_ERR_TOKEN_INVALID, NULL, "the temp_token is not valid");
        return;
    }
    /* The code's throttle is account_mfa_accept's (code_admitted). */
    if (!u.is_active || !u.mfa_enabled)
        http_reply_error(ctx, HTTP_ERR_TOKEN_INVALID, NULL, "the temp_token is not valid");
    else if (account_refuse_banned(ctx, &u))
        ; /* banned after the password step: answered */
    else if (account_mfa_accept(ctx, &u, code))
        account_login(ctx, &u);
    store_user_clear(&u);
}

const http_route_t mfa_routes[] = {
    {"POST", "/api/v1/auth/mfa/setup", post_setup,
     HTTP_USER_WRITE | HTTP_ROUTE_LOGIN_ONLY | HTTP_RATE_AUTH, "", ""},
    {"POST", "/api/v1/auth/mfa/enable", post_enable,
     HTTP_USER_WRITE | HTTP_ROUTE_LOGIN_ONLY | HTTP_RATE_AUTH, "", "code"},
    {"POST", "/api/v1/auth/mfa/disable", post_disable,
     HTTP_USER_WRITE | HTTP_ROUTE_LOGIN_ONLY | HTTP_RATE_AUTH, "", "code"},
    {"POST", "/api/v1/auth/mfa/verify", post_verify, HTTP_ROUTE_PUBLIC | HTTP_RATE_AUTH,
     "", "temp_token,mfa_code,method,session"},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
