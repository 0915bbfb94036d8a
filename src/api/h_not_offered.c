/*
 * Endpoints a seed document shows that Parley does not offer (docs/api.md,
 * "Differences from the seed documents"): PlexiChat's AI assistant
 * (POST /api/v1/ai/chat) and semantic search (POST /api/v1/ai/search).
 * A client written from that document gets a clear answer instead of the
 * router's bare "no endpoint at this path": 404 RESOURCE_NOT_FOUND (the
 * contract has no 501) whose message says what Parley has instead and
 * whose details.instead names it (null when nothing). Nothing is read from
 * the request and nothing changes; signed-in callers only, so an anonymous
 * probe learns no more than from any other route.
 */
#include "parley/http.h"
#include "resource.h"

static void post_ai_chat(http_ctx_t *ctx)
{
    http_reply_error(ctx, HTTP_ERR_NOT_FOUND, json_pack("{s:n}", "instead"),
                     "Parley has no AI assistant; nothing is sent to a model provider");
}

static void post_ai_search(http_ctx_t *ctx)
{
    http_reply_error(ctx, HTTP_ERR_NOT_FOUND,
                     json_pack("{s:s}", "instead", "/api/v1/search/messages"),
                     "Parley has no semantic search; full-text search is "
                     "POST /api/v1/search/messages {query, filters}");
}

const http_route_t not_offered_routes[] = {
    /* PlexiChat's documented fields (not read: the answer is the same 404). */
    {"POST", "/api/v1/ai/chat", post_ai_chat, HTTP_USER_WRITE, "", "message,context,provider,model"},
    {"POST", "/api/v1/ai/search", post_ai_search, HTTP_USER_WRITE, "",
     "query,content_types,channels,similarity_threshold,limit"},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
