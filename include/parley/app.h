/*
 * The handles a request reaches (ctx->app in a handler; the real-time
 * service and the policy layer get the same pointer): settings, the store,
 * the blobs, the signing keys and the limiters. server.c fills it before the
 * port opens and it does not change while the server runs; the services
 * above the policy layer are opaque pointers here, so this header needs
 * nothing above the store, auth, files and config.
 */
#ifndef PARLEY_APP_H
#define PARLEY_APP_H

#include <stdint.h>

#include "parley/auth.h"
#include "parley/blobs.h"
#include "parley/config.h"
#include "parley/store.h"

typedef struct parley_app {
    const parley_config_t *config;
    int64_t started_mono_ns; /* clock_mono_ns() at start-up */
    store_t *store;          /* recovered before the port opens */
    blobs_t *blobs;          /* uploaded files' bytes, by SHA-256 */
    auth_keys_t keys;        /* signing keys; read-only once loaded */
    auth_login_limiter_t *login_limiter;
    auth_rate_limiter_t *rate_limiter;
    auth_rate_limiter_t *register_limiter; /* registrations per hour per address; NULL: none */
    struct realtime *realtime; /* the event bus and its connections; NULL in tools */
    struct view_cache *views;  /* rendered message views (src/http/view_cache.c); may be NULL */
    void *router;              /* the router (router_t) for requests made inside the server
                                * (POST /api/v1/batch: router_call); NULL in tools */
} parley_app_t;

#endif
