/*
 * Authentication by the route table: before a handler runs, the router asks
 * authenticate_route() to establish who is calling as the route's flags say
 * (include/parley/http.h, "Route flags"), so that no handler repeats it.
 *
 * Credentials are `Authorization: Bearer <access token>`, `X-API-Key:
 * plx_...` or a browser's `parley_session` cookie, in that order: the first
 * one present is the only one judged (a Bearer token with a cookie beside
 * it is a token request; the cookie is not looked at). The policy layer
 * checks them (src/access/principal.c). A cookie request that changes state
 * (any method but GET, HEAD, OPTIONS) must carry the session's CSRF token
 * in X-CSRF-Token, or it is 403 CSRF_TOKEN_INVALID, after the rate limit
 * counted it: a page of another site can make the browser send the cookie,
 * never read the token. Then the
 * route's rate limit (rate_limit.c): counted per user once the caller is
 * known, per client address when the credentials fail (so a flood of bad
 * tokens meets a 429 like any anonymous flood); the X-RateLimit-* headers go
 * on every answer of a limited category, errors included. A key without the
 * permission the route needs (READ or WRITE), or a non-admin on an ADMIN
 * route, is refused after that count: the caller is known, so its 403
 * carries the headers too, as is an API key on a LOGIN_ONLY route (the
 * account-security routes need a login). Last, a route that puts content before others
 * (HTTP_ROUTE_CONTENT) is refused to a muted account with 403
 * ACCOUNT_MUTED: the one place the mute is enforced over HTTP, and over
 * WebSocket send_message, which runs through the router; and while the
 * live setting require_mfa_for_admins holds, an ADMIN route is refused to
 * an admin without two-factor authentication (403 MFA_SETUP_REQUIRED).
 *
 * The upload callback runs before the router (while the body arrives) and
 * only needs a yes or no: http_credentials_valid() decides it the same way
 * without answering or counting.
 */
#include "authenticate.h"

#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#include "parley/access.h"
#include "parley/app.h"
#include "parley/clock.h"
#include "parley/http_server.h"
#include "rate_limit.h"

/* The live require_mfa_for_admins setting (http_set_admin_mfa_required). */
static atomic_bool admin_mfa_required;

/* Why identify() found no caller. */
enum refusal {
    REFUSED_NONE,      /* no credentials */
    REFUSED_MALFORMED, /* an Authorization that is not "Bearer <token>" */
    REFUSED_ACCESS,    /* credentials the policy layer refused: *rc says why */
};

/* GET, HEAD and OPTIONS change nothing: they need no CSRF token. */
static bool safe_method(const char *method)
{
    return method != NULL && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
                              strcmp(method, "OPTIONS") == 0);
}

/* Who the request's credentials name: true with *p filled, or false with
 * *why (and for REFUSED_ACCESS *rc, an ACCESS_E_* code). Answers nothing. */
static bool identify(http_ctx_t *ctx, principal_t *p, bool *by_key, enum refusal *why, int *rc)
{
    parley_app_t *app = ctx->app;
    const char *authz = http_header(ctx, "Authorization");
    const char *api_key = http_header(ctx, "X-API-Key");
    *by_key = authz == NULL && api_key != NULL;
    *why = REFUSED_ACCESS;
    if (ctx->preauth != NULL)
        *rc = principal_from_given(app, ctx->preauth, p);
    else if (authz != NULL && (strncasecmp(authz, "Bearer ", 7) != 0 || authz[7] == '\0'))
        *why = REFUSED_MALFORMED;
    else if (authz != NULL)
        *rc = principal_from_token(app, authz + 7, p);
    else if (api_key != NULL)
        *rc = principal_from_api_key(app, api_key, p);
    else if (http_session_cookie(ctx) != NULL) /* the token only matters to a write */
        *rc = principal_from_session_cookie(app, http_session_cookie(ctx),
                                            safe_method(ctx->req->http_verb)
                                                ? NULL
                                                : http_header(ctx, HTTP_CSRF_HEADER),
                                            p);
    else
        *why = REFUSED_NONE;
    return *why == REFUSED_ACCESS && *rc == 0;
}

/* Answers the refusal identify() found (a ban: details.until, its end). */
static void refuse(http_ctx_t *ctx, enum refusal why, int rc, bool by_key, int64_t banned_until)
{
    if (why == REFUSED_NONE)
        http_reply_error(ctx, HTTP_ERR_AUTHENTICATION_REQUIRED, NULL,
                         "this endpoint needs an access token, an API key or a session cookie");
    else if (why == REFUSED_MALFORMED)
        http_reply_error(ctx, HTTP_ERR_TOKEN_INVALID, NULL,
                         "the Authorization header must be \"Bearer <token>\"");
    else
        http_reply_error(ctx, http_error_of_access(rc),
                         rc == ACCESS_E_BANNED
                             ? json_pack("{s:o}", "until", time_json(banned_until))
                             : NULL,
                         "%s",
                         rc == ACCESS_E_EXPIRED  ? "the access token has expired"
                         : rc == ACCESS_E_BANNED ? "this account is banned"
                         : by_key              ? "the API key is not valid, revoked or expired"
                         : http_header(ctx, "Authorization") == NULL && http_session_cookie(ctx)
                             ? "the session cookie is not valid: log in again"
                             : "the access token is not valid");
}

bool authenticate_route(http_ctx_t *ctx, unsigned flags, principal_t *p)
{
    memset(p, 0, sizeof(*p));
    int category = http_route_rate_category(flags);
    bool by_key;
    enum refusal why;
    int rc = 0;
    if (!identify(ctx, p, &by_key, &why, &rc)) {
        principal_clear(p);
        if (rate_limit_admit(ctx, category, NULL))
            refuse(ctx, why, rc, by_key, p->banned_until);
        return false;
    }
    activity_note(p->user.id, clock_wall_ms()); /* the dashboard's active users */
    if (!rate_limit_admit(ctx, category, p->user.id)) {
        principal_clear(p);
        return false;
    }
    if (p->via_cookie && !p->csrf_valid && !safe_method(ctx->req->http_verb)) {
        principal_clear(p);
        http_reply_error(ctx, HTTP_ERR_CSRF_TOKEN_INVALID, NULL,
                         "a request authenticated by the session cookie that changes state "
                         "needs the session's CSRF token in " HTTP_CSRF_HEADER);
        return false;
    }
    bool write = (flags & HTTP_ROUTE_WRITE) != 0;
    if (!(write ? p->can_write : p->can_read)) {
        principal_clear(p);
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "this API key does not have the %s permission", write ? "write" : "read");
        return false;
    }
    if ((flags & HTTP_ROUTE_LOGIN_ONLY) && p->via_api_key) {
        principal_clear(p);
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "this endpoint needs a login (an access token), not an API key");
        return false;
    }
    if ((flags & HTTP_ROUTE_ADMIN) && !p->user.is_admin) {
        principal_clear(p);
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "this endpoint is for administrators");
        return false;
    }
    if ((flags & HTTP_ROUTE_CONTENT) && principal_user_muted(&p->user, clock_wall_ms())) {
        json_t *details = json_pack("{s:o}", "until", time_json(p->user.muted_until));
        principal_clear(p);
        http_reply_error(ctx, HTTP_ERR_ACCOUNT_MUTED, details,
                         "this account is muted: it may read but not post");
        return false;
    }
    /* The admin routes are all under /api/v1/admin; turning MFA on is not
     * (/api/v1/auth/mfa/...), so an admin refused here can still do it. */
    if ((flags & HTTP_ROUTE_ADMIN) && !p->user.mfa_enabled &&
        atomic_load(&admin_mfa_required)) {
        principal_clear(p);
        http_reply_error(ctx, HTTP_ERR_MFA_SETUP_REQUIRED,
                         json_pack("{s:[s], s:s}", "mfa_methods", "totp", "setup",
                                   "/api/v1/auth/mfa/setup"),
                         "administrators must turn on two-factor authentication first");
        return false;
    }
    return true;
}

void http_set_admin_mfa_required(bool required)
{
    atomic_store(&admin_mfa_required, required);
}

bool http_credentials_valid(struct parley_app *app, const struct _u_request *req,
                            unsigned flags)
{
    const char *authz = u_map_get_case(req->map_header, "Authorization");
    const char *key = u_map_get_case(req->map_header, "X-API-Key");
    principal_t p;
    int rc;
    if (authz != NULL) {
        if (strncasecmp(authz, "Bearer ", 7) != 0)
            return false;
        rc = principal_from_token(app, authz + 7, &p);
    } else if (key != NULL) {
        rc = principal_from_api_key(app, key, &p);
    } else if (req->map_cookie && u_map_get(req->map_cookie, HTTP_SESSION_COOKIE) != NULL) {
        rc = principal_from_session_cookie(app, u_map_get(req->map_cookie, HTTP_SESSION_COOKIE),
                                           u_map_get_case(req->map_header, HTTP_CSRF_HEADER),
                                           &p);
        if (rc == 0 && !p.csrf_valid && !safe_method(req->http_verb)) {
            principal_clear(&p);
            return false;
        }
    } else {
        return false;
    }
    if (rc != 0)
        return false;
    bool ok = (!(flags & HTTP_ROUTE_LOGIN_ONLY) || !p.via_api_key) &&
              (!(flags & HTTP_ROUTE_WRITE) || p.can_write) &&
              (!(flags & HTTP_ROUTE_CONTENT) || !principal_user_muted(&p.user, clock_wall_ms()));
    principal_clear(&p);
    return ok;
}
