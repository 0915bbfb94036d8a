/*
 * What the resource files of src/api/ share: answers that need the HTTP
 * context on top of the policy layer's decisions (resource.c), the route
 * tables (routes.c lists them all).
 */
#ifndef PARLEY_API_RESOURCE_H
#define PARLEY_API_RESOURCE_H

#include "parley/access.h"
#include "parley/app.h"
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
extern const http_route_t admin_users_routes[];
extern const http_route_t admin_stats_routes[];

/*
 * Loads the channel and the caller's relation to it. Returns true when the
 * caller may see it; otherwise answers 404 (a channel one may not see does
 * not exist, for that caller) and returns false. channel_access_clear() in
 * both cases.
 */
bool channel_access_load(http_ctx_t *ctx, const principal_t *p, const char *channel_id,
                         channel_access_t *a);

/* Answers 200 with {"messages": [views of list[0..n)], ...rest's members}
 * (rest consumed), from cached views where current (message_page_text). */
void http_reply_message_page(http_ctx_t *ctx, const chat_message_t *list, size_t n,
                             json_t *rest);

/* Answers 200 with {key: items, total, page, pages} (items stolen), the
 * shape of every paged list. */
void reply_page(http_ctx_t *ctx, const char *key, json_t *items, size_t total, long page,
                long limit);

/* Answers the error for a store failure (conflicts, unavailable...). */
void reply_store_error(http_ctx_t *ctx, int rc);

#endif
