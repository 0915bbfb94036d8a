/*
 * Authentication by the route table: before a handler runs, the router asks
 * authenticate_route() to establish who is calling as the route's flags say
 * (include/parley/http.h, "Route flags"), so that no handler repeats it.
 *
 * Credentials are `Authorization: Bearer <access token>` or `X-API-Key:
 * plx_...` (the policy layer checks them: src/access/principal.c). Then the
 * user's per-minute limit; the X-RateLimit-* headers go on every
 * authenticated answer, errors included. A key without the permission the
 * route needs (READ or WRITE), or a non-admin on an ADMIN route, is refused
 * after that count: the caller is known, so its 403 carries the headers too.
 *
 * The upload callback runs before the router (while the body arrives) and
 * only needs a yes or no: http_credentials_valid() decides it the same way
 * without answering or counting.
 */
#include "authenticate.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "parley/access.h"
#include "parley/app.h"
#include "parley/auth.h"
#include "parley/clock.h"

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

/* Who the request's credentials name: 0 with *p filled, an ACCESS_E_* code,
 * or 1 after answering (no credentials, a malformed Authorization). */
static int identify(http_ctx_t *ctx, principal_t *p, bool *by_key)
{
    parley_app_t *app = ctx->app;
    const char *authz = http_header(ctx, "Authorization");
    const char *api_key = http_header(ctx, "X-API-Key");
    *by_key = authz == NULL && api_key != NULL;
    if (ctx->preauth != NULL)
        return principal_from_given(app, ctx->preauth, p);
    if (authz != NULL) {
        if (strncasecmp(authz, "Bearer ", 7) != 0 || authz[7] == '\0') {
            http_reply_error(ctx, HTTP_ERR_TOKEN_INVALID, NULL,
                             "the Authorization header must be \"Bearer <token>\"");
            return 1;
        }
        return principal_from_token(app, authz + 7, p);
    }
    if (api_key != NULL)
        return principal_from_api_key(app, api_key, p);
    http_reply_error(ctx, HTTP_ERR_AUTHENTICATION_REQUIRED, NULL,
                     "this endpoint needs an access token or an API key");
    return 1;
}

bool authenticate_route(http_ctx_t *ctx, unsigned flags, principal_t *p)
{
    parley_app_t *app = ctx->app;
    memset(p, 0, sizeof(*p));
    bool by_key;
    int rc = identify(ctx, p, &by_key);
    if (rc == 1)
        return false;
    if (rc != 0) {
        http_reply_error(ctx, http_error_of_access(rc), NULL, "%s",
                         rc == ACCESS_E_EXPIRED  ? "the access token has expired"
                         : rc == ACCESS_E_BANNED ? "this account is banned"
                         : by_key              ? "the API key is not valid, revoked or expired"
                                              : "the access token is not valid");
        return false;
    }
    activity_note(p->user.id, clock_wall_ms()); /* the dashboard's active users */
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
    bool write = (flags & HTTP_ROUTE_WRITE) != 0;
    if (!(write ? p->can_write : p->can_read)) {
        principal_clear(p);
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "this API key does not have the %s permission", write ? "write" : "read");
        return false;
    }
    if ((flags & HTTP_ROUTE_ADMIN) && !p->user.is_admin) {
        principal_clear(p);
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "this endpoint is for administrators");
        return false;
    }
    return true;
}

bool http_credentials_valid(struct parley_app *app, const struct _u_request *req, bool write)
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
    } else {
        return false;
    }
    if (rc != 0)
        return false;
    bool ok = !write || p.can_write;
    principal_clear(&p);
    return ok;
}
