/*
 * GET /api/v1/openapi.json: the OpenAPI document of this build. The document
 * is docs/openapi.json, linked into the binary as bytes (openapi_blob.S), so
 * the server always serves the description of the code it runs, and a unit
 * test checks that every route in the router is described there.
 */
#include "parley/http.h"
#include "resource.h"

extern const char parley_openapi_json[];
extern const char parley_openapi_json_end[];

static void get_openapi(http_ctx_t *ctx)
{
    http_reply_bytes(ctx, 200, "application/json; charset=utf-8", parley_openapi_json,
                     (size_t)(parley_openapi_json_end - parley_openapi_json));
}

const http_route_t openapi_routes[] = {
    {"GET", "/api/v1/openapi.json", get_openapi, HTTP_ROUTE_PUBLIC, "", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
