/*
 * The resources of the HTTP API (src/api/): one file per resource, each a
 * route table of handlers that validate, call the store and answer. The
 * server hands these tables to the router.
 */
#ifndef PARLEY_API_H
#define PARLEY_API_H

#include "parley/http.h"

/* Every route table of the server, NULL-terminated (src/api/routes.c). */
extern const http_route_t *const api_route_tables[];

#endif
