/*
 * Who is calling: an access token or an API key turned into the user behind
 * it, without answering anything (the HTTP router and the real-time
 * endpoints each answer a refusal in their own way).
 *
 * An access token is checked in three steps: the signature and claims
 * (auth_token_verify, no I/O), the session it names (a logout or a reused
 * refresh token revokes the session, so a revoked login stops working at
 * once, not when its token expires), and the user (a deactivated account
 * stops working too). API keys are looked up by their SHA-256. A browser's
 * session cookie names the same session as a token would, with a MAC
 * instead of a signature (auth_session_cookie_check), so a logout, a reused
 * refresh token, a password change or a ban ends it the same way.
 *
 * A banned user's credentials are refused with their own code
 * (ACCESS_E_BANNED: 403 ACCOUNT_BANNED), so a client can tell "log in again"
 * from "this account is banned". A ban revokes nothing: the sessions and keys
 * are refused while it holds, and a timed ban ends when its time passes,
 * with no write, because every check compares banned_until with the clock.
 * A mute (principal_user_muted) is the same comparison; it refuses nothing
 * here, only the writes of content (the router's HTTP_ROUTE_CONTENT check).
 */
#include "parley/access.h"

#include <string.h>
#include <strings.h>

#include "parley/app.h"
#include "parley/auth.h"
#include "parley/clock.h"

bool principal_user_banned(const store_user_t *u, int64_t now_ms)
{
    return u->banned_at != 0 && (u->banned_until == 0 || u->banned_until > now_ms);
}

bool principal_user_muted(const store_user_t *u, int64_t now_ms)
{
    return u->muted_at != 0 && (u->muted_until == 0 || u->muted_until > now_ms);
}

/* 0, or why p's user cannot call (p->user is cleared then; a ban's end is
 * kept in p->banned_until for the answer). */
static int user_refusal(principal_t *p, int64_t now_ms)
{
    store_user_t *u = &p->user;
    int rc = !u->is_active ? ACCESS_E_INVALID
             : principal_user_banned(u, now_ms) ? ACCESS_E_BANNED
                                                : 0;
    int64_t until = u->banned_until;
    if (rc != 0)
        store_user_clear(u);
    if (rc == ACCESS_E_BANNED)
        p->banned_until = until;
    return rc;
}

void principal_clear(principal_t *p)
{
    store_user_clear(&p->user);
}

int principal_from_token(struct parley_app *app, const char *token, principal_t *p)
{
    memset(p, 0, sizeof(*p));
    auth_claims_t claims;
    int64_t now_ms = clock_wall_ms();
    int rc = auth_token_verify(&app->keys, token, now_ms / 1000, &claims);
    if (rc == AUTH_EEXPIRED)
        return ACCESS_E_EXPIRED;
    store_session_t ss;
    if (rc != AUTH_OK || !store_session_get(app->store, claims.sid, &ss) || ss.revoked ||
        strcmp(ss.user_id, claims.sub) != 0 || ss.expires_at <= now_ms)
        return ACCESS_E_INVALID;
    if (!store_user_get(app->store, claims.sub, &p->user))
        return ACCESS_E_INVALID;
    rc = user_refusal(p, now_ms);
    if (rc != 0)
        return rc;
    snprintf(p->session_id, sizeof(p->session_id), "%s", ss.id);
    p->can_write = true;
    p->can_read = true;
    return 0;
}

int principal_from_session_cookie(struct parley_app *app, const char *value, const char *csrf,
                                  principal_t *p)
{
    memset(p, 0, sizeof(*p));
    char sid[AUTH_ID_MAX];
    store_session_t ss;
    int64_t now_ms = clock_wall_ms();
    if (auth_session_cookie_parse(value, sid) != AUTH_OK ||
        !store_session_get(app->store, sid, &ss) || ss.revoked || ss.expires_at <= now_ms ||
        auth_session_cookie_check(&app->keys, value, ss.id, ss.salt) != AUTH_OK ||
        !store_user_get(app->store, ss.user_id, &p->user))
        return ACCESS_E_INVALID;
    int rc = user_refusal(p, now_ms);
    if (rc != 0)
        return rc;
    snprintf(p->session_id, sizeof(p->session_id), "%s", ss.id);
    p->via_cookie = true;
    p->csrf_valid = csrf != NULL && auth_csrf_check(&app->keys, ss.id, ss.salt, csrf) == AUTH_OK;
    p->can_write = true;
    p->can_read = true;
    return 0;
}

int principal_from_api_key(struct parley_app *app, const char *key, principal_t *p)
{
    memset(p, 0, sizeof(*p));
    store_api_key_t k;
    int64_t now_ms = clock_wall_ms();
    if (auth_api_key_hash(key, p->api_key_hash) != AUTH_OK ||
        !store_api_key_find_hash(app->store, p->api_key_hash, &k) || k.revoked ||
        (k.expires_at != 0 && k.expires_at <= now_ms) ||
        !store_user_get(app->store, k.user_id, &p->user))
        return ACCESS_E_INVALID;
    int rc = user_refusal(p, now_ms);
    if (rc != 0)
        return rc;
    p->via_api_key = true;
    p->can_write = k.can_write;
    p->can_read = k.can_read;
    return 0;
}

bool principal_still_valid(struct parley_app *app, principal_t *p)
{
    int64_t now_ms = clock_wall_ms();
    const char *user_id = p->user.id;
    if (p->via_api_key) {
        store_api_key_t k;
        if (!store_api_key_find_hash(app->store, p->api_key_hash, &k) || k.revoked ||
            (k.expires_at != 0 && k.expires_at <= now_ms) || strcmp(k.user_id, user_id) != 0)
            return false;
    } else {
        store_session_t ss;
        if (!store_session_get(app->store, p->session_id, &ss) || ss.revoked ||
            ss.expires_at <= now_ms || strcmp(ss.user_id, user_id) != 0)
            return false;
    }
    store_user_t now;
    if (!store_user_get(app->store, user_id, &now))
        return false;
    bool active = now.is_active && !principal_user_banned(&now, now_ms);
    store_user_clear(&p->user);
    p->user = now;
    return active;
}

int principal_from_given(struct parley_app *app, const principal_t *given, principal_t *p)
{
    memset(p, 0, sizeof(*p));
    if (!store_user_get(app->store, given->user.id, &p->user))
        return ACCESS_E_INVALID;
    int rc = user_refusal(p, clock_wall_ms());
    if (rc != 0)
        return rc;
    memcpy(p->session_id, given->session_id, sizeof(p->session_id));
    memcpy(p->api_key_hash, given->api_key_hash, sizeof(p->api_key_hash));
    p->via_api_key = given->via_api_key;
    p->can_read = given->can_read;
    p->can_write = given->can_write;
    return 0;
}

