/*
 * Cross-origin requests (src/http/cors.c): the router's two calls. The list
 * of allowed origins is set by http_cors_origins_set (include/parley/http.h).
 */
#ifndef PARLEY_HTTP_CORS_H
#define PARLEY_HTTP_CORS_H

#include <stdbool.h>

#include "parley/http.h"

/* Whether the request is a CORS preflight: OPTIONS with an Origin and an
 * Access-Control-Request-Method. */
bool cors_is_preflight(const http_ctx_t *ctx);

/* When the request's Origin is listed, adds the answer's CORS headers
 * (Allow-Origin, Allow-Credentials, Expose-Headers); Vary: Origin always
 * when an origin list is set, since the answer depends on it. */
void cors_annotate(http_ctx_t *ctx);

/* Answers a preflight for a path that takes the methods `allow`
 * (comma-separated): 204, with Allow-Methods, Allow-Headers and Max-Age
 * when the origin is listed (cors_annotate ran), none otherwise. */
void cors_preflight(http_ctx_t *ctx, const char *allow);

#endif
