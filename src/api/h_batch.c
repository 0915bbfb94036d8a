/*
 * POST /api/v1/batch (Fechatter 003, "Batch Operations"; docs/api.md,
 * "Batch"): up to BATCH_OPS_MAX operations {method, path, body}, run in
 * order as the caller, each answered with its own {status, body}.
 *
 * Each operation goes through the router in process (router_call, as a
 * WebSocket send_message does), with the caller's principal standing for
 * its credentials (ctx->preauth: the same user, session, API key and
 * permissions), so it meets exactly the checks the same request from the
 * network would: route flags, permissions, its rate-limit category's bucket
 * (each operation takes its own token), validation, store_wait before its
 * 2xx. Nothing is special-cased per route here.
 *
 * What is checked before any operation runs (a bad batch changes nothing:
 * 422 naming operations[i].field): the list (1-50 objects of method, path
 * and body only), the method, the path (/api/v1/..., no dot segments,
 * encoded dots or slashes, no empty segments, printable ASCII), the body
 * (an object or absent), and the route: one that needs credentials (public
 * routes, the real-time upgrades among them, are not batched), no upload,
 * no byte stream (HTTP_ROUTE_STREAM), no batch inside a batch. A path that
 * names no route is run and answers its own 404/405.
 *
 * Failures are not hidden and do not stop the batch: every operation runs
 * whatever the earlier ones answered, and the answer (200) lists them all,
 * with how many succeeded (2xx) and failed. The answers held in memory are
 * bounded (BATCH_ANSWER_BYTES_MAX): once passed, the remaining operations
 * are not run and say so (status null, skipped).
 */
#include <string.h>

#include "parley/app.h"
#include "parley/http_server.h"
#include "resource.h"

#define BATCH_OPS_MAX 50
#define BATCH_PATH_MAX 2048
#define BATCH_ANSWER_BYTES_MAX (8u << 20) /* answers' JSON held for one batch */
#define BATCH_PREFIX "/api/v1/"

static bool method_ok(const char *m)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    for (size_t i = 0; m && i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(m, methods[i]) == 0)
            return true;
    return false;
}

/* Whether the part of `path` before any "?" is a plain /api/v1/ path:
 * printable ASCII without spaces, backslashes or "#", no empty, "." or ".."
 * segment, no encoded dot or slash (%2e, %2f). */
static bool path_ok(const char *path)
{
    size_t len = strlen(path), end = strcspn(path, "?");
    if (len > BATCH_PATH_MAX || strncmp(path, BATCH_PREFIX, strlen(BATCH_PREFIX)) != 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '#')
            return false;
    }
    for (size_t i = 0; i + 2 < end; i++)
        if (path[i] == '%' && path[i + 1] == '2' &&
            strchr("eEfF", path[i + 2]) != NULL)
            return false;
    for (size_t i = 1; i < end;) { /* segments after the leading "/" */
        size_t n = strcspn(path + i, "/?");
        if (n > end - i)
            n = end - i;
        if (n == 0 || (n == 1 && path[i] == '.') || (n == 2 && strncmp(path + i, "..", 2) == 0))
            return false;
        i += n + 1;
    }
    return true;
}

/* Refuses the operation at index i with 422 naming operations[i].<what>. */
static bool refuse(http_ctx_t *ctx, size_t i, const char *what, const char *msg)
{
    char field[64];
    snprintf(field, sizeof(field), "operations[%zu]%s%s", i, what[0] ? "." : "", what);
    http_reply_invalid(ctx, field, "%s", msg);
    return false;
}

/* Checks operation i of the batch (nothing runs before all are checked). */
static bool op_ok(http_ctx_t *ctx, void *router, size_t i, json_t *op)
{
    if (!json_is_object(op))
        return refuse(ctx, i, "", "each operation must be an object {method, path, body}");
    const char *key;
    json_t *v;
    json_object_foreach(op, key, v) {
        if (strcmp(key, "method") != 0 && strcmp(key, "path") != 0 && strcmp(key, "body") != 0)
            return refuse(ctx, i, key, "an operation has only method, path and body");
    }
    const char *method = json_string_value(json_object_get(op, "method"));
    if (!method_ok(method))
        return refuse(ctx, i, "method", "method must be GET, POST, PUT, PATCH or DELETE");
    const char *path = json_string_value(json_object_get(op, "path"));
    if (path == NULL || !path_ok(path))
        return refuse(ctx, i, "path",
                      "path must be an " BATCH_PREFIX "... path of printable ASCII, without "
                      "dot segments, encoded dots or slashes, or empty segments");
    json_t *body = json_object_get(op, "body");
    if (body && !json_is_null(body) && !json_is_object(body))
        return refuse(ctx, i, "body", "body must be a JSON object (or absent)");
    char bare[BATCH_PATH_MAX + 1];
    snprintf(bare, sizeof(bare), "%.*s", (int)strcspn(path, "?"), path);
    if (strcmp(bare, "/api/v1/batch") == 0 || strcmp(bare, "/api/v1/batch/") == 0)
        return refuse(ctx, i, "path", "a batch cannot hold a batch");
    unsigned flags = router_route_flags(router, method, bare);
    if (flags == 0)
        return true; /* no such route: it answers its own 404/405 */
    if (!(flags & (HTTP_ROUTE_USER | HTTP_ROUTE_ADMIN)))
        return refuse(ctx, i, "path",
                      "only routes that need credentials are batched (not logins, the health "
                      "check or the real-time upgrades)");
    if (flags & HTTP_ROUTE_UPLOAD)
        return refuse(ctx, i, "path", "uploads are not batched: send them on their own");
    if (flags & HTTP_ROUTE_STREAM)
        return refuse(ctx, i, "path", "downloads are not batched: send them on their own");
    return true;
}

static void post_batch(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    void *router = app->router;
    if (router == NULL || ctx->preauth != NULL) {
        http_reply_error(ctx, HTTP_ERR_UNAVAILABLE, NULL, "batches are not taken here");
        return;
    }
    json_t *ops = ctx->body ? json_object_get(ctx->body, "operations") : NULL;
    if (!json_is_array(ops) || json_array_size(ops) == 0 ||
        json_array_size(ops) > BATCH_OPS_MAX) {
        http_reply_invalid(ctx, "operations", "operations must be a list of 1 to %d operations",
                           BATCH_OPS_MAX);
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach(ctx->body, key, v) {
        if (strcmp(key, "operations") != 0) {
            http_reply_invalid(ctx, key, "a batch has only operations");
            return;
        }
    }
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op) {
        if (!op_ok(ctx, router, i, op))
            return;
    }
    json_t *results = json_array();
    size_t held = 0, succeeded = 0, failed = 0, skipped = 0;
    json_array_foreach(ops, i, op) {
        if (held > BATCH_ANSWER_BYTES_MAX) {
            json_array_append_new(results,
                                  json_pack("{s:n, s:n, s:s}", "status", "body", "skipped",
                                            "the answers before passed the batch's bound; "
                                            "this operation was not run"));
            skipped++;
            continue;
        }
        json_t *body = json_object_get(op, "body"), *answer = NULL;
        if (json_is_null(body))
            body = NULL;
        int status = router_call(router, json_string_value(json_object_get(op, "method")),
                                 json_string_value(json_object_get(op, "path")), body,
                                 ctx->principal, ctx->request_id, &answer);
        if (answer)
            held += json_dumpb(answer, NULL, 0, JSON_COMPACT);
        if (status >= 200 && status < 300)
            succeeded++;
        else
            failed++;
        json_array_append_new(results, json_pack("{s:i, s:o}", "status", status, "body",
                                                 answer ? answer : json_null()));
    }
    http_reply_json(ctx, 200,
                    json_pack("{s:o, s:I, s:I, s:I}", "results", results, "succeeded",
                              (json_int_t)succeeded, "failed", (json_int_t)failed, "skipped",
                              (json_int_t)skipped));
}

const http_route_t batch_routes[] = {
    {"POST", "/api/v1/batch", post_batch, HTTP_USER_WRITE, "", "operations"},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
