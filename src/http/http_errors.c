/*
 * The API's error codes and their HTTP statuses (docs/api.md, "Errors"),
 * and the one builder of the error body. This is the only place that maps an
 * error to a status, so a code can never be answered with two statuses.
 */
#include <string.h>

#include "parley/clock.h"
#include "parley/http.h"

static const struct {
    const char *code;
    int status;
} errors[HTTP_ERR_COUNT_] = {
    [HTTP_ERR_BAD_REQUEST] = {"BAD_REQUEST", 400},
    [HTTP_ERR_AUTHENTICATION_REQUIRED] = {"AUTHENTICATION_REQUIRED", 401},
    [HTTP_ERR_INVALID_CREDENTIALS] = {"INVALID_CREDENTIALS", 401},
    [HTTP_ERR_TOKEN_EXPIRED] = {"TOKEN_EXPIRED", 401},
    [HTTP_ERR_TOKEN_INVALID] = {"TOKEN_INVALID", 401},
    [HTTP_ERR_MFA_REQUIRED] = {"MFA_REQUIRED", 401},
    [HTTP_ERR_INSUFFICIENT_PERMISSIONS] = {"INSUFFICIENT_PERMISSIONS", 403},
    [HTTP_ERR_ACCOUNT_BANNED] = {"ACCOUNT_BANNED", 403},
    [HTTP_ERR_ACCOUNT_MUTED] = {"ACCOUNT_MUTED", 403},
    [HTTP_ERR_IP_BLOCKED] = {"IP_BLOCKED", 403},
    [HTTP_ERR_MFA_SETUP_REQUIRED] = {"MFA_SETUP_REQUIRED", 403},
    [HTTP_ERR_CSRF_TOKEN_INVALID] = {"CSRF_TOKEN_INVALID", 403},
    [HTTP_ERR_REGISTRATION_CLOSED] = {"REGISTRATION_CLOSED", 403},
    [HTTP_ERR_INVITE_INVALID] = {"INVITE_INVALID", 403},
    [HTTP_ERR_NOT_FOUND] = {"RESOURCE_NOT_FOUND", 404},
    [HTTP_ERR_METHOD_NOT_ALLOWED] = {"METHOD_NOT_ALLOWED", 405},
    [HTTP_ERR_CONFLICT] = {"CONFLICT", 409},
    [HTTP_ERR_PAYLOAD_TOO_LARGE] = {"PAYLOAD_TOO_LARGE", 413},
    [HTTP_ERR_UNSUPPORTED_MEDIA_TYPE] = {"UNSUPPORTED_MEDIA_TYPE", 415},
    [HTTP_ERR_RANGE_NOT_SATISFIABLE] = {"RANGE_NOT_SATISFIABLE", 416},
    [HTTP_ERR_VALIDATION] = {"VALIDATION_ERROR", 422},
    [HTTP_ERR_RATE_LIMITED] = {"RATE_LIMIT_EXCEEDED", 429},
    [HTTP_ERR_INTERNAL] = {"INTERNAL_SERVER_ERROR", 500},
    [HTTP_ERR_UNAVAILABLE] = {"SERVICE_UNAVAILABLE", 503},
};

const char *http_error_code(enum http_error err)
{
    return (unsigned)err < HTTP_ERR_COUNT_ ? errors[err].code : "INTERNAL_SERVER_ERROR";
}

int http_error_status(enum http_error err)
{
    return (unsigned)err < HTTP_ERR_COUNT_ ? errors[err].status : 500;
}

enum http_error http_error_of_access(int rc)
{
    return rc == ACCESS_E_EXPIRED  ? HTTP_ERR_TOKEN_EXPIRED
           : rc == ACCESS_E_BANNED ? HTTP_ERR_ACCOUNT_BANNED
                                   : HTTP_ERR_TOKEN_INVALID;
}

char *http_error_body(enum http_error err, const char *message, json_t *details,
                      const char *request_id)
{
    char now[CLOCK_RFC3339_LEN];
    clock_format_rfc3339(clock_wall_ms(), now);
    if (details == NULL)
        details = json_object();
    json_t *body = json_pack("{s:{s:s, s:s, s:o, s:s, s:s}}", "error", "code",
                             http_error_code(err), "message", message, "details", details,
                             "request_id", request_id ? request_id : "", "timestamp", now);
    if (body == NULL) /* a message that is not valid UTF-8 */
        body = json_pack("{s:{s:s, s:s, s:{}, s:s, s:s}}", "error", "code",
                         http_error_code(err), "message", "invalid request", "details",
                         "request_id", request_id ? request_id : "", "timestamp", now);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}
