/*
 * Request bodies: the type check and JSON parse the router runs before any
 * handler, and the field readers handlers validate with.
 *
 * Rules, in order: a body must be declared application/json (multipart is
 * let through only to routes that take uploads); it must parse as JSON with
 * no duplicate keys (jansson also refuses invalid UTF-8 and \u0000); it may
 * nest at most HTTP_JSON_MAX_DEPTH levels; and its top level must be an
 * object. The first three are 400 BAD_REQUEST (the client sent something
 * that is not a JSON request at all); a well-formed body of the wrong shape
 * is 422 VALIDATION_ERROR, as docs/api.md separates them.
 */
#include <string.h>
#include <strings.h>

#include "parley/http.h"

size_t http_utf8_length(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* Compares the media type of a Content-Type value (before any ';'). */
static bool media_type_is(const char *content_type, const char *type)
{
    size_t n = strlen(type);
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    if (strncasecmp(content_type, type, n) != 0)
        return false;
    const char *rest = content_type + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}

/* True when a JSON Content-Type names no charset or names UTF-8. */
static bool charset_is_utf8(const char *content_type)
{
    const char *p = strcasestr(content_type, "charset=");
    if (p == NULL)
        return true;
    p += strlen("charset=");
    if (*p == '"')
        p++;
    return strncasecmp(p, "utf-8", 5) == 0 || strncasecmp(p, "utf8", 4) == 0;
}

static bool depth_within(const json_t *v, int depth)
{
    if (depth > HTTP_JSON_MAX_DEPTH)
        return false;
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)v, key, child) {
            if (!depth_within(child, depth + 1))
                return false;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) {
            if (!depth_within(child, depth + 1))
                return false;
        }
    }
    return true;
}

int http_parse_json_body(const char *content_type, const void *body, size_t len,
                         bool accepts_upload, json_t **out, enum http_error *err, char *msg,
                         size_t msg_size)
{
    *out = NULL;
    if (content_type != NULL && accepts_upload &&
        media_type_is(content_type, "multipart/form-data"))
        return 0;
    if (content_type == NULL || !media_type_is(content_type, "application/json")) {
        *err = HTTP_ERR_BAD_REQUEST;
        snprintf(msg, msg_size, "the body must be sent as Content-Type: application/json%s",
                 accepts_upload ? " or multipart/form-data" : "");
        return -1;
    }
    if (!charset_is_utf8(content_type)) {
        *err = HTTP_ERR_BAD_REQUEST;
        snprintf(msg, msg_size, "JSON bodies must be UTF-8");
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        *err = HTTP_ERR_BAD_REQUEST;
        snprintf(msg, msg_size, "malformed JSON at line %d, column %d: %s", jerr.line,
                 jerr.column, jerr.text);
        return -1;
    }
    if (!depth_within(root, 1)) {
        json_decref(root);
        *err = HTTP_ERR_BAD_REQUEST;
        snprintf(msg, msg_size, "JSON nested deeper than %d levels", HTTP_JSON_MAX_DEPTH);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *err = HTTP_ERR_VALIDATION;
        snprintf(msg, msg_size, "the body must be a JSON object");
        return -1;
    }
    *out = root;
    return 0;
}

/*
 * Finds `name` in the body. Returns 1 with *value set, 0 when it is absent
 * (or null) and not required, -1 after answering when it is required.
 */
static int field_lookup(http_ctx_t *ctx, const char *name, bool required, json_t **value)
{
    json_t *v = ctx->body ? json_object_get(ctx->body, name) : NULL;
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return 0;
        http_reply_invalid(ctx, name, "%s is required", name);
        return -1;
    }
    *value = v;
    return 1;
}

static bool text_is_clean(const char *s, bool allow_newlines)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x20 && *p != 0x7f)
            continue;
        if (allow_newlines && (*p == '\n' || *p == '\r' || *p == '\t'))
            continue;
        return false;
    }
    return true;
}

int http_field_string(http_ctx_t *ctx, const char *name, bool required, size_t min_len,
                      size_t max_len, bool allow_newlines, const char **out)
{
    json_t *v;
    int found = field_lookup(ctx, name, required, &v);
    if (found <= 0)
        return found;
    if (!json_is_string(v)) {
        http_reply_invalid(ctx, name, "%s must be a string", name);
        return -1;
    }
    const char *s = json_string_value(v);
    size_t len = http_utf8_length(s, json_string_length(v));
    if (len < min_len || len > max_len) {
        if (min_len == max_len)
            http_reply_invalid(ctx, name, "%s must be %zu characters", name, min_len);
        else
            http_reply_invalid(ctx, name, "%s must be %zu-%zu characters", name, min_len,
                               max_len);
        return -1;
    }
    if (!text_is_clean(s, allow_newlines)) {
        http_reply_invalid(ctx, name, "%s must not contain control characters", name);
        return -1;
    }
    *out = s;
    return 0;
}

int http_field_bool(http_ctx_t *ctx, const char *name, bool required, bool *out)
{
    json_t *v;
    int found = field_lookup(ctx, name, required, &v);
    if (found <= 0)
        return found;
    if (!json_is_boolean(v)) {
        http_reply_invalid(ctx, name, "%s must be true or false", name);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int http_field_int(http_ctx_t *ctx, const char *name, bool required, long long min,
                   long long max, long long *out)
{
    json_t *v;
    int found = field_lookup(ctx, name, required, &v);
    if (found <= 0)
        return found;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        http_reply_invalid(ctx, name, "%s must be a whole number from %lld to %lld", name, min,
                           max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}
