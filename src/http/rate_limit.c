/*
 * Rate limits by category, applied by the router before any handler: the
 * route's flags give its category (http_route_rate_category), the caller is
 * the authenticated user or else the client address, and the limiter
 * (src/auth/limits.c: a token bucket per (category, caller), one shard lock
 * per check) says yes or no. Every answer of a limited category carries the
 * bucket's state, so a client can pace itself without ever meeting a 429:
 *   X-RateLimit-Limit      the category's limit (the bucket's size), per minute
 *   X-RateLimit-Remaining  whole requests left now
 *   X-RateLimit-Reset      Unix seconds when the bucket is full again
 *   X-RateLimit-Window     60, the seconds the limit is counted over
 * A 429 adds Retry-After (whole seconds until the next token, >= 1), which
 * details.retry_after repeats beside details.category.
 */
#include "rate_limit.h"

#include <stdio.h>

#include "parley/app.h"
#include "parley/auth.h"
#include "parley/clock.h"

static void set_headers(http_ctx_t *ctx, const auth_rate_info_t *ri)
{
    char v[32];
    snprintf(v, sizeof(v), "%d", ri->limit);
    http_set_header(ctx, "X-RateLimit-Limit", v);
    snprintf(v, sizeof(v), "%d", ri->remaining);
    http_set_header(ctx, "X-RateLimit-Remaining", v);
    snprintf(v, sizeof(v), "%lld", (long long)ri->reset);
    http_set_header(ctx, "X-RateLimit-Reset", v);
    snprintf(v, sizeof(v), "%d", AUTH_RATE_WINDOW);
    http_set_header(ctx, "X-RateLimit-Window", v);
}

bool rate_limit_admit(http_ctx_t *ctx, int category, const char *user_id)
{
    parley_app_t *app = ctx->app;
    if (category < 0 || app == NULL || app->rate_limiter == NULL)
        return true;
    auth_rate_info_t ri;
    int rc = auth_rate_check(app->rate_limiter, category, user_id, http_client_ip(ctx),
                             clock_wall_ms(), &ri);
    if (ri.enabled)
        set_headers(ctx, &ri);
    if (rc == AUTH_OK)
        return true;
    char retry[16];
    snprintf(retry, sizeof(retry), "%d", ri.retry_after);
    http_set_header(ctx, "Retry-After", retry);
    const char *name = auth_rate_category_name(category);
    http_reply_error(ctx, HTTP_ERR_RATE_LIMITED,
                     json_pack("{s:i, s:s}", "retry_after", ri.retry_after, "category", name),
                     "too many %s requests; try again in %d seconds", name, ri.retry_after);
    return false;
}
