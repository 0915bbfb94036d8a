/*
 * GET /api/health: liveness for load balancers and container health checks.
 * Unauthenticated and cheap: it reads a few numbers, under the log's mutex
 * only. requests_in_flight lets an operator (and a test) see requests that
 * have started and not finished, this one included. `log` says whether
 * writes are taken: when the disk is full or a sync failed, reads still work
 * and the answer stays 200 with status "degraded" (a load balancer that
 * drops the server would cut the readers off too); the reason is in `log`.
 * Otherwise status is "healthy", the word the seed documents' clients
 * (Fechatter, PlexiChat) read; the admin system status keeps "ok".
 */
#include <string.h>

#include "parley/access.h"
#include "parley/app.h"
#include "parley/clock.h"
#include "parley/http.h"
#include "parley/store.h"
#include "parley/version.h"
#include "resource.h"

json_t *log_state_json(const store_log_state_t *ls)
{
    return json_pack("{s:s, s:s?, s:o}", "state", ls->state, "error",
                     ls->error[0] ? ls->error : NULL, "since",
                     ls->since_ms ? time_json(ls->since_ms) : json_null());
}

static void get_health(http_ctx_t *ctx)
{
    const parley_app_t *app = ctx->app;
    int64_t uptime = (clock_mono_ns() - app->started_mono_ns) / 1000000000;
    store_log_state_t ls;
    store_log_state(app->store, &ls);
    bool ok = strcmp(ls.state, "ok") == 0;
    http_reply_json(ctx, 200,
                    json_pack("{s:s, s:s, s:I, s:I, s:o}", "status", ok ? "healthy" : "degraded",
                              "version", PARLEY_VERSION, "uptime_seconds", (json_int_t)uptime,
                              "requests_in_flight", (json_int_t)http_requests_in_flight(), "log",
                              log_state_json(&ls)));
}

const http_route_t health_routes[] = {
    {"GET", "/api/health", get_health, HTTP_ROUTE_PUBLIC | HTTP_RATE_NONE, "", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
