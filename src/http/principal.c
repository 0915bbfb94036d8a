/*
 * Authentication of requests, and the views every resource shares.
 *
 * An access token is checked in three steps: the signature and claims
 * (auth_token_verify, no I/O), the session it names (a logout or a reused
 * refresh token revokes the session, so a revoked login stops working at
 * once, not when its token expires), and the user (a deactivated account
 * stops working too). API keys are looked up by their SHA-256. Then the
 * user's per-minute limit; the X-RateLimit-* headers go on every
 * authenticated answer, errors included. A key without the permission the
 * method needs (read for GET/HEAD, write for the rest) is refused after
 * that count: the caller is known, so its 403 carries the headers too.
 */
#include "principal.h"

#include <string.h>
#include <strings.h>

#include "parley/app.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/realtime.h"

void principal_clear(principal_t *p)
{
    store_user_clear(&p->user);
}

static bool is_write(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

int principal_from_token(struct parley_app *app, const char *token, principal_t *p)
{
    memset(p, 0, sizeof(*p));
    auth_claims_t claims;
    int64_t now_ms = clock_wall_ms();
    int rc = auth_token_verify(&app->keys, token, now_ms / 1000, &claims);
    if (rc == AUTH_EEXPIRED)
        return HTTP_ERR_TOKEN_EXPIRED;
    store_session_t ss;
    if (rc != AUTH_OK || !store_session_get(app->store, claims.sid, &ss) || ss.revoked ||
        strcmp(ss.user_id, claims.sub) != 0 || ss.expires_at <= now_ms)
        return HTTP_ERR_TOKEN_INVALID;
    if (!store_user_get(app->store, claims.sub, &p->user) || !p->user.is_active) {
        store_user_clear(&p->user);
        return HTTP_ERR_TOKEN_INVALID;
    }
    snprintf(p->session_id, sizeof(p->session_id), "%s", ss.id);
    p->can_write = true;
    p->can_read = true;
    return -1;
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
        return HTTP_ERR_TOKEN_INVALID;
    if (!p->user.is_active) {
        store_user_clear(&p->user);
        return HTTP_ERR_TOKEN_INVALID;
    }
    p->via_api_key = true;
    p->can_write = k.can_write;
    p->can_read = k.can_read;
    return -1;
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
    bool active = now.is_active;
    store_user_clear(&p->user);
    p->user = now;
    return active;
}

/* The principal a request made inside the server stands for (ctx->preauth):
 * the user as it is now. */
static int from_preauth(parley_app_t *app, const principal_t *given, principal_t *p)
{
    memset(p, 0, sizeof(*p));
    if (!store_user_get(app->store, given->user.id, &p->user) || !p->user.is_active) {
        store_user_clear(&p->user);
        return HTTP_ERR_TOKEN_INVALID;
    }
    memcpy(p->session_id, given->session_id, sizeof(p->session_id));
    memcpy(p->api_key_hash, given->api_key_hash, sizeof(p->api_key_hash));
    p->via_api_key = given->via_api_key;
    p->can_read = given->can_read;
    p->can_write = given->can_write;
    return -1;
}

static void set_rate_headers(http_ctx_t *ctx, const auth_rate_info_t *ri)
{
    if (!ri->enabled)
        return;
    char v[32];
    snprintf(v, sizeof(v), "%d", ri->limit);
    http_set_header(ctx, "X-RateLimit-Limit", v);
    snprintf(v, sizeof(v), "%d", ri->remaining);
    http_set_header(ctx, "X-RateLimit-Remaining", v);
    snprintf(v, sizeof(v), "%lld", (long long)ri->reset);
    http_set_header(ctx, "X-RateLimit-Reset", v);
}

bool http_authenticate(http_ctx_t *ctx, principal_t *p)
{
    parley_app_t *app = ctx->app;
    memset(p, 0, sizeof(*p));
    const char *authz = http_header(ctx, "Authorization");
    const char *api_key = http_header(ctx, "X-API-Key");
    int err;
    if (ctx->preauth != NULL) {
        err = from_preauth(app, ctx->preauth, p);
    } else if (authz != NULL) {
        if (strncasecmp(authz, "Bearer ", 7) != 0 || authz[7] == '\0') {
            http_reply_error(ctx, HTTP_ERR_TOKEN_INVALID, NULL,
                             "the Authorization header must be \"Bearer <token>\"");
            return false;
        }
        err = principal_from_token(app, authz + 7, p);
    } else if (api_key != NULL) {
        err = principal_from_api_key(app, api_key, p);
    } else {
        http_reply_error(ctx, HTTP_ERR_AUTHENTICATION_REQUIRED, NULL,
                         "this endpoint needs an access token or an API key");
        return false;
    }
    if (err >= 0) {
        http_reply_error(ctx, (enum http_error)err, NULL, "%s",
                         err == HTTP_ERR_TOKEN_EXPIRED ? "the access token has expired"
                         : api_key != NULL && authz == NULL
                             ? "the API key is not valid, revoked or expired"
                             : "the access token is not valid");
        return false;
    }
    bool allowed = is_write(ctx->req->http_verb) ? p->can_write : p->can_read;
    auth_rate_info_t ri;
    if (auth_rate_check(app->rate_limiter, p->user.id, clock_wall_ms() / 1000, &ri) != AUTH_OK) {
        set_rate_headers(ctx, &ri);
        char retry[16];
        snprintf(retry, sizeof(retry), "%d", ri.retry_after);
        http_set_header(ctx, "Retry-After", retry);
        http_reply_error(ctx, HTTP_ERR_RATE_LIMITED,
                         json_pack("{s:i}", "retry_after", ri.retry_after),
                         "too many requests; try again in %d seconds", ri.retry_after);
        principal_clear(p);
        return false;
    }
    set_rate_headers(ctx, &ri);
    if (!allowed) {
        principal_clear(p);
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "this API key does not have the %s permission",
                         is_write(ctx->req->http_verb) ? "write" : "read");
        return false;
    }
    return true;
}

bool http_credentials_valid(struct parley_app *app, const struct _u_request *req, bool write)
{
    const char *authz = u_map_get_case(req->map_header, "Authorization");
    const char *key = u_map_get_case(req->map_header, "X-API-Key");
    principal_t p;
    int err;
    if (authz != NULL) {
        if (strncasecmp(authz, "Bearer ", 7) != 0)
            return false;
        err = principal_from_token(app, authz + 7, &p);
    } else if (key != NULL) {
        err = principal_from_api_key(app, key, &p);
    } else {
        return false;
    }
    if (err >= 0)
        return false;
    bool ok = !write || p.can_write;
    principal_clear(&p);
    return ok;
}

bool http_authenticate_admin(http_ctx_t *ctx, principal_t *p)
{
    if (!http_authenticate(ctx, p))
        return false;
    if (!p->user.is_admin) {
        principal_clear(p);
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "this endpoint is for administrators");
        return false;
    }
    return true;
}

json_t *time_json(int64_t ms)
{
    if (ms == 0)
        return json_null();
    char buf[CLOCK_RFC3339_LEN];
    clock_format_rfc3339(ms, buf);
    return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *user_json(const store_user_t *u, bool full, bool self)
{
    json_t *roles = json_array();
    json_array_append_new(roles, json_string("user"));
    if (u->is_admin)
        json_array_append_new(roles, json_string("admin"));
    json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:b}", "id", u->id,
                          "username", u->username, "display_name",
                          str_or_null(u->display_name ? u->display_name : u->username), "bio",
                          str_or_null(u->bio), "avatar_url", str_or_null(u->avatar_url), "roles",
                          roles, "status", realtime_user_status(u->id), "last_seen",
                          time_json(u->last_seen), "created_at", time_json(u->created_at), "is_active", u->is_active);
    if (full)
        json_object_set_new(o, "email", json_string(u->email));
    if (self) {
        json_object_set_new(o, "mfa_enabled", json_boolean(u->mfa_enabled));
        json_t *prefs = u->preferences ? json_loads(u->preferences, 0, NULL) : NULL;
        json_object_set_new(o, "preferences", prefs ? prefs : json_object());
    }
    return o;
}

void reply_store_error(http_ctx_t *ctx, int rc)
{
    switch (rc) {
    case STORE_E_CONFLICT_USERNAME:
        http_reply_error(ctx, HTTP_ERR_CONFLICT, json_pack("{s:s}", "field", "username"),
                         "that username is taken");
        break;
    case STORE_E_CONFLICT_EMAIL:
        http_reply_error(ctx, HTTP_ERR_CONFLICT, json_pack("{s:s}", "field", "email"),
                         "that email is already registered");
        break;
    case STORE_E_NOT_FOUND:
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "not found");
        break;
    case STORE_E_INVALID:
        http_reply_error(ctx, HTTP_ERR_VALIDATION, NULL,
                         "a value is outside what the server can store");
        break;
    default:
        http_reply_error(ctx, HTTP_ERR_UNAVAILABLE, NULL,
                         "the server cannot save changes right now");
        break;
    }
}
