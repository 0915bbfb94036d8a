/* The router: matches a request to a route and runs its handler. */
#ifndef PARLEY_HTTP_ROUTER_H
#define PARLEY_HTTP_ROUTER_H

#include <ulfius.h>

#include "parley/http.h"

typedef struct router router_t;

/*
 * Builds a router over `tables`, a NULL-terminated list of route tables each
 * ending with an entry whose method is NULL. The tables must outlive the
 * router. `app` is handed to every handler as ctx->app. Aborts on a malformed
 * pattern (a programming error).
 */
router_t *router_new(const http_route_t *const *tables, void *app);
void router_free(router_t *router);

/* True when a route takes uploads (HTTP_ROUTE_UPLOAD) at method + path;
 * `router` is a router_t (the signature fits gate_configure). */
bool router_takes_upload(void *router, const char *method, const char *path);

/* The ulfius callback; user_data is the router. Always U_CALLBACK_COMPLETE. */
int router_dispatch(const struct _u_request *req, struct _u_response *resp, void *user_data);

/*
 * Runs a request made inside the server (a WebSocket send_message) through
 * the same route and handler as one from the network: `body` (a JSON object,
 * not stolen, may be NULL) stands for the parsed body, `preauth` (a
 * principal_t, see http_ctx_t) for the credentials. Returns the status and
 * sets *answer to the JSON answered (caller decrefs; NULL for none). Blocks
 * as long as the handler does (a post waits for its record to be durable).
 */
int router_call(router_t *r, const char *method, const char *path, json_t *body,
                const void *preauth, const char *request_id, json_t **answer);

/* Every route table of the server (src/http/routes.c). */
extern const http_route_t *const http_route_tables[];

#endif
