/*
 * libFuzzer harness: the router on arbitrary methods, paths and bodies,
 * through real ulfius request and response objects. Input: a method byte, then
 * the path (its query's names judged against the rows' lists) up to the first
 * NUL, then the body. Every answer must be a status
 * the router can give with a JSON body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parley/api.h"
#include "parley/http_server.h"
#include "parley/http.h"

static void echo(http_ctx_t *ctx)
{
    json_t *params = json_array();
    for (size_t i = 0; i < ctx->n_params; i++)
        json_array_append_new(params, json_string(ctx->params[i]));
    http_reply_json(ctx, 200, params);
}

static const http_route_t fuzz_routes[] = {
    {"GET", "/api/v1/channels/:id", echo, HTTP_ROUTE_PUBLIC, "fields,page", ""},
    {"POST", "/api/v1/channels/:id/messages", echo, HTTP_ROUTE_PUBLIC, "", "content,reply_to"},
    {"DELETE", "/api/v1/messages/:id/reactions/:emoji", echo, HTTP_ROUTE_PUBLIC, NULL, NULL},
    {"POST", "/api/v1/files", echo, HTTP_ROUTE_PUBLIC | HTTP_ROUTE_UPLOAD, "", "file,channel_id"},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
static const http_route_t *const fuzz_tables[] = {fuzz_routes, NULL};
static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static router_t *router;
    if (router == NULL)
        router = router_new(fuzz_tables, NULL);
    if (size < 2)
        return 0;
    const char *method = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
    const uint8_t *path_start = data + 1;
    const uint8_t *nul = memchr(path_start, 0, size - 1);
    size_t path_len = nul ? (size_t)(nul - path_start) : size - 1;
    const uint8_t *body = nul ? nul + 1 : data + size;
    size_t body_len = (size_t)(data + size - body);

    struct _u_request req;
    struct _u_response resp;
    ulfius_init_request(&req);
    ulfius_init_response(&resp);
    req.http_verb = o_strdup(method);
    req.url_path = o_strndup((const char *)path_start, path_len);
    req.http_url = o_strndup((const char *)path_start, path_len); /* the query's names are judged */
    u_map_put(req.map_header, "Content-Type",
              (data[0] & 0x80) ? "multipart/form-data; boundary=b" : "application/json");
    if (body_len) {
        req.binary_body = o_malloc(body_len);
        memcpy(req.binary_body, body, body_len);
        req.binary_body_length = body_len;
    }
    router_dispatch(&req, &resp, router);
    switch (resp.status) {
    case 200: case 400: case 404: case 405: case 422:
        break;
    default:
        abort();
    }
    json_t *answer = json_loadb(resp.binary_body, resp.binary_body_length, JSON_DECODE_ANY, NULL);
    if (answer == NULL && !(resp.status == 200 && strcmp(method, "HEAD") == 0))
        abort();
    json_decref(answer);
    ulfius_clean_request(&req);
    ulfius_clean_response(&resp);
    return 0;
}
