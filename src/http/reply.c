/*
 * Answers of handlers, and read access to the request. Bodies are handed to
 * ulfius by pointer (ulfius frees them with free(), as jansson allocates them
 * with malloc()), so a JSON answer is serialised once and never copied on
 * the way into ulfius.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/http.h"
#include "parley/log.h"

static bool already_answered(http_ctx_t *ctx)
{
    if (ctx->status == 0)
        return false;
    log_error("request %s: a handler answered twice; the first answer (%d) stands",
              ctx->request_id, ctx->status);
    return true;
}

static void set_body(http_ctx_t *ctx, char *text)
{
    free(ctx->resp->binary_body);
    ctx->resp->binary_body = text;
    ctx->resp->binary_body_length = text ? strlen(text) : 0;
    u_map_put(ctx->resp->map_header, "Content-Type", "application/json; charset=utf-8");
}

void http_reply_json(http_ctx_t *ctx, int status, json_t *body)
{
    if (already_answered(ctx)) {
        json_decref(body);
        return;
    }
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (text == NULL) {
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "could not encode the answer");
        return;
    }
    ctx->status = status;
    ctx->resp->status = (long)status;
    set_body(ctx, text);
}

void http_reply_bytes(http_ctx_t *ctx, int status, const char *content_type, const void *data,
                      size_t len)
{
    if (already_answered(ctx))
        return;
    char *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        http_reply_error(ctx, HTTP_ERR_UNAVAILABLE, NULL, "out of memory");
        return;
    }
    memcpy(copy, data, len);
    ctx->status = status;
    ctx->resp->status = (long)status;
    free(ctx->resp->binary_body);
    ctx->resp->binary_body = copy;
    ctx->resp->binary_body_length = len;
    u_map_put(ctx->resp->map_header, "Content-Type", content_type);
}

void http_reply_empty(http_ctx_t *ctx, int status)
{
    if (already_answered(ctx))
        return;
    ctx->status = status;
    ctx->resp->status = (long)status;
    free(ctx->resp->binary_body);
    ctx->resp->binary_body = NULL;
    ctx->resp->binary_body_length = 0;
}

__attribute__((format(printf, 4, 0))) static void
reply_error_va(http_ctx_t *ctx, enum http_error err, json_t *details, const char *fmt, va_list ap)
{
    if (already_answered(ctx)) {
        json_decref(details);
        return;
    }
    char message[512];
    vsnprintf(message, sizeof(message), fmt, ap);
    char *text = http_error_body(err, message, details, ctx->request_id);
    ctx->status = http_error_status(err);
    ctx->resp->status = ctx->status;
    set_body(ctx, text);
}

void http_reply_error(http_ctx_t *ctx, enum http_error err, json_t *details, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_error_va(ctx, err, details, fmt, ap);
    va_end(ap);
}

void http_reply_invalid(http_ctx_t *ctx, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_error_va(ctx, HTTP_ERR_VALIDATION, json_pack("{s:s}", "field", field), fmt, ap);
    va_end(ap);
}

void http_set_header(http_ctx_t *ctx, const char *name, const char *value)
{
    u_map_put(ctx->resp->map_header, name, value);
}

const char *http_header(const http_ctx_t *ctx, const char *name)
{
    return u_map_get_case(ctx->req->map_header, name);
}

const char *http_query(const http_ctx_t *ctx, const char *name)
{
    return u_map_get(ctx->req->map_url, name);
}
