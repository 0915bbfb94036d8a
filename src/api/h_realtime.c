/*
 * The routes of the real-time endpoints (GET /api/v1/ws, GET /api/v1/events).
 * A GET never reaches these handlers: the connection gate hands it to
 * src/realtime/ as soon as its headers are in. They exist so that the router
 * knows the paths: other methods get 405 with Allow, and a HEAD (which has
 * no stream to give) a JSON error.
 */
#include "resource.h"

static void head_ws(http_ctx_t *ctx)
{
    http_reply_error(ctx, HTTP_ERR_BAD_REQUEST, NULL,
                     "this endpoint speaks WebSocket: send a GET with Upgrade: websocket");
}

static void head_events(http_ctx_t *ctx)
{
    http_reply_error(ctx, HTTP_ERR_BAD_REQUEST, NULL,
                     "this endpoint is an event stream: send a GET");
}

const http_route_t realtime_routes[] = {
    {"GET", "/api/v1/ws", head_ws, HTTP_ROUTE_PUBLIC, "token,since", ""},
    {"GET", "/api/v1/events", head_events, HTTP_ROUTE_PUBLIC, "token,since", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
