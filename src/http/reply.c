/*
 * Answers of handlers, and read access to the request. Bodies are handed to
 * ulfius by pointer (ulfius frees them with free(), as jansson allocates them
 * with malloc()), so a JSON answer is serialised once and never copied on
 * the way into ulfius.
 */
#include <stdarg.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/http.h"
#include "parley/log.h"

/* The headers of every answer (docs/security.md): no sniffing of types, no
 * Referer sent on from a page of ours, no framing, no script or other
 * content loaded by an answer shown as a page (every answer is JSON, an
 * event stream or a stored file: a file opened in a tab runs nothing), and
 * no camera, microphone or location for such a page. */
static const char *const security_headers[][2] = {
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
    {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
    {"Permissions-Policy", "camera=(), microphone=(), geolocation=()"},
};

void http_security_headers_each(void (*fn)(void *ctx, const char *name, const char *value),
                                void *ctx)
{
    for (size_t i = 0; i < sizeof(security_headers) / sizeof(security_headers[0]); i++)
        fn(ctx, security_headers[i][0], security_headers[i][1]);
}

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
    http_reply_json_text(ctx, status, text);
}

void http_reply_json_text(http_ctx_t *ctx, int status, char *text)
{
    if (already_answered(ctx)) {
        free(text);
        return;
    }
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

bool http_paging(http_ctx_t *ctx, long *page, long *limit)
{
    const char *names[2] = {"page", "limit"};
    long *out[2] = {page, limit};
    long max[2] = {1000000, 100};
    *page = 1;
    *limit = 50;
    for (int i = 0; i < 2; i++) {
        const char *v = http_query(ctx, names[i]);
        if (v == NULL)
            continue;
        char *end;
        long n = strtol(v, &end, 10);
        if (v[0] < '0' || v[0] > '9' || *end != '\0' || n < 1 || n > max[i]) {
            http_reply_invalid(ctx, names[i], "%s must be a whole number from 1 to %ld",
                               names[i], max[i]);
            return false;
        }
        *out[i] = n;
    }
    return true;
}

bool http_parse_time(const char *s, int64_t *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return false;
    int millis = 0;
    if (*rest == '.') {
        rest++;
        int digits = 0;
        while (*rest >= '0' && *rest <= '9') {
            if (digits < 3)
                millis = millis * 10 + (*rest - '0');
            digits++;
            rest++;
        }
        if (digits == 0)
            return false;
        for (; digits < 3; digits++)
            millis *= 10;
    }
    if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)
        return false;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *ms = (int64_t)t * 1000 + millis;
    return true;
}

