/*
 * GET /api/health: liveness for load balancers and container health checks.
 * Unauthenticated and cheap: it reads three numbers and touches no lock.
 * requests_in_flight lets an operator (and a test) see requests that have
 * started and not finished, this one included.
 */
#include "parley/app.h"
#include "parley/clock.h"
#include "parley/http.h"
#include "parley/version.h"
#include "resource.h"

static void get_health(http_ctx_t *ctx)
{
    const parley_app_t *app = ctx->app;
    int64_t uptime = (clock_mono_ns() - app->started_mono_ns) / 1000000000;
    http_reply_json(ctx, 200,
                    json_pack("{s:s, s:s, s:I, s:I}", "status", "ok", "version", PARLEY_VERSION,
                              "uptime_seconds", (json_int_t)uptime, "requests_in_flight",
                              (json_int_t)http_requests_in_flight()));
}

const http_route_t health_routes[] = {
    {"GET", "/api/health", get_health, HTTP_ROUTE_PUBLIC | HTTP_RATE_NONE},
    {NULL, NULL, NULL, 0},
};
