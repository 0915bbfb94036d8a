/* Authentication by route flags (authenticate.c), private to src/http/. */
#ifndef PARLEY_HTTP_AUTHENTICATE_H
#define PARLEY_HTTP_AUTHENTICATE_H

#include <stdbool.h>
#include <ulfius.h>

#include "parley/access.h"
#include "parley/http.h"

/*
 * Establishes the caller of a USER or ADMIN route (`flags`: the route's).
 * Returns true with *p filled (principal_clear it), or false after
 * answering (see "Route flags" in include/parley/http.h) with *p cleared.
 */
bool authenticate_route(http_ctx_t *ctx, unsigned flags, principal_t *p);

/*
 * Whether a request carries credentials valid for a route of these flags
 * (HTTP_ROUTE_WRITE: allowing writes; HTTP_ROUTE_CONTENT: of an account not
 * muted), decided without answering or counting anything: for the upload
 * callback, which must not write a stranger's (or a muted account's) bytes
 * to disk before the router runs and refuses them.
 */
struct parley_app;
bool http_credentials_valid(struct parley_app *app, const struct _u_request *req,
                            unsigned flags);

#endif
