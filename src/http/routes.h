/* The route table of each resource; routes.c lists them all. */
#ifndef PARLEY_HTTP_ROUTES_H
#define PARLEY_HTTP_ROUTES_H

#include "parley/http.h"

extern const http_route_t health_routes[];
extern const http_route_t openapi_routes[];
extern const http_route_t auth_routes[];
extern const http_route_t users_routes[];
extern const http_route_t mfa_routes[];
extern const http_route_t channels_routes[];
extern const http_route_t messages_routes[];
extern const http_route_t search_routes[];
extern const http_route_t files_routes[];
extern const http_route_t realtime_routes[];

#endif
