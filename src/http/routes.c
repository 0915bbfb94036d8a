/*
 * Every route of the server, by resource. A new resource file adds its
 * table here and nowhere else.
 */
#include "router.h"
#include "routes.h"

const http_route_t *const http_route_tables[] = {
    health_routes,
    openapi_routes,
    auth_routes,
    mfa_routes,
    users_routes,
    channels_routes,
    messages_routes,
    search_routes,
    files_routes,
    realtime_routes,
    NULL,
};
