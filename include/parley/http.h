/*
 * The shared layer every HTTP handler stands on: the route table, the
 * per-request context, JSON body access and validation, and JSON answers and
 * errors in the shape of docs/api.md.
 *
 * A handler is a function of one http_ctx_t. By the time it runs, the router
 * has matched the route, checked the method, assigned the request id, when a
 * body came checked its type and parsed it into ctx->body, and authenticated
 * the caller as the route's flags ask (ctx->principal; see "Route flags"). The
 * handler answers exactly once with http_reply_json(), http_reply_empty() or
 * http_reply_error(); a handler that returns without answering gets a 500.
 *
 * Handlers run on libmicrohttpd's worker threads. They may block (on the
 * log's fsync, on password hashing); each such wait holds one pool thread.
 */
#ifndef PARLEY_HTTP_H
#define PARLEY_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <ulfius.h>

#include "parley/access.h"
#include "parley/blobs.h"

/* Error codes of the API; http_error_status() maps each to its status. */
enum http_error {
    HTTP_ERR_BAD_REQUEST,
    HTTP_ERR_AUTHENTICATION_REQUIRED,
    HTTP_ERR_INVALID_CREDENTIALS,
    HTTP_ERR_TOKEN_EXPIRED,
    HTTP_ERR_TOKEN_INVALID,
    HTTP_ERR_MFA_REQUIRED,
    HTTP_ERR_INSUFFICIENT_PERMISSIONS,
    HTTP_ERR_ACCOUNT_BANNED,
    HTTP_ERR_ACCOUNT_MUTED,
    HTTP_ERR_IP_BLOCKED,
    HTTP_ERR_MFA_SETUP_REQUIRED,
    HTTP_ERR_CSRF_TOKEN_INVALID,
    HTTP_ERR_REGISTRATION_CLOSED,
    HTTP_ERR_INVITE_INVALID,
    HTTP_ERR_NOT_FOUND,
    HTTP_ERR_METHOD_NOT_ALLOWED,
    HTTP_ERR_CONFLICT,
    HTTP_ERR_PAYLOAD_TOO_LARGE,
    HTTP_ERR_UNSUPPORTED_MEDIA_TYPE,
    HTTP_ERR_RANGE_NOT_SATISFIABLE,
    HTTP_ERR_VALIDATION,
    HTTP_ERR_RATE_LIMITED,
    HTTP_ERR_INTERNAL,
    HTTP_ERR_UNAVAILABLE,
    HTTP_ERR_COUNT_
};

/* The code string ("VALIDATION_ERROR") and the HTTP status of an error. */
const char *http_error_code(enum http_error err);
int http_error_status(enum http_error err);

/* The error that answers a refusal of the policy layer (ACCESS_E_EXPIRED:
 * TOKEN_EXPIRED; ACCESS_E_BANNED: ACCOUNT_BANNED; anything else:
 * TOKEN_INVALID). */
enum http_error http_error_of_access(int rc);

#define HTTP_MAX_PARAMS 4
#define HTTP_REQUEST_ID_MAX 72

typedef struct http_ctx {
    const struct _u_request *req;  /* ulfius's; valid for the handler's run */
    struct _u_response *resp;      /* ulfius's; filled by the http_reply_* calls */
    const char *request_id;        /* "req_..." or the client's sane X-Request-Id */
    json_t *body;                  /* parsed JSON object body, or NULL; owned by the router */
    const char *params[HTTP_MAX_PARAMS]; /* decoded ":name" path segments, in order */
    size_t n_params;
    int status;                    /* 0 until the handler has answered */
    void *app;                     /* server-wide state, given to router_new */
    /* The caller, authenticated by the router before the handler runs, as
     * the route's flags ask (HTTP_ROUTE_USER/ADMIN); NULL on a public
     * route. Valid for the handler's run; the router clears it after. */
    const principal_t *principal;
    /* Set for a request made inside the server on behalf of a caller already
     * authenticated elsewhere (a WebSocket send_message): a principal_t whose
     * user.id, session_id, via_api_key and can_write stand for the request's
     * credentials. NULL for every request from the network. */
    const principal_t *preauth;
    char _param_buf[1024];
} http_ctx_t;

typedef void (*http_handler_fn)(http_ctx_t *ctx);

/*
 * Route flags. Who may call: exactly one of PUBLIC (anyone), USER (a valid
 * access token or API key) and ADMIN (the same, of an admin). What an API
 * key needs on a USER or ADMIN route: exactly one of READ and WRITE. The
 * router checks them before the handler runs (and router_new aborts on a
 * route that does not say), so a handler is its business logic: it finds the
 * caller in ctx->principal.
 *
 * On USER/ADMIN routes the router answers, before the handler: 401
 * AUTHENTICATION_REQUIRED (no credentials), TOKEN_EXPIRED, TOKEN_INVALID;
 * 403 ACCOUNT_BANNED (valid credentials of a banned account);
 * 403 CSRF_TOKEN_INVALID (a session-cookie request that changes state
 * without the session's X-CSRF-Token);
 * 429 RATE_LIMIT_EXCEEDED (below); 403 INSUFFICIENT_PERMISSIONS (an API key
 * without the permission; a non-admin on an ADMIN route); 403 ACCOUNT_MUTED
 * with details.until (a CONTENT route called by an account whose
 * server-wide mute holds).
 *
 * CONTENT marks a write that puts content before others (posting, editing,
 * reacting, uploading, creating or renaming channels, opening direct
 * channels); it goes with WRITE.
 *
 * LOGIN_ONLY marks an account-security route (two-factor setup, enable and
 * disable, password change, API keys, logout): it needs a real login (an
 * access token); an API key, whatever its permissions, gets 403
 * INSUFFICIENT_PERMISSIONS, so a leaked key cannot lock its owner out or
 * mint its successors.
 *
 * Rate-limit category (include/parley/auth.h, auth_rate_category_t): an
 * ADMIN route is "admin", an UPLOAD route "uploads"; any other route says
 * HTTP_RATE_AUTH, HTTP_RATE_MESSAGES or HTTP_RATE_SEARCH, HTTP_RATE_NONE
 * (not limited at all: the health check), or nothing ("default"); router_new
 * aborts on a route with two. The router takes a token from the bucket of
 * (category, caller) before the handler, on every route that is limited:
 * the caller is the user once authenticated, else the client address (a
 * public route, or credentials that fail: those are counted per address
 * before the 401). While the category's limit is on, every answer carries
 * X-RateLimit-Limit, -Remaining, -Reset and -Window; an empty bucket answers
 * 429 RATE_LIMIT_EXCEEDED with Retry-After and details {retry_after,
 * category}.
 */
#define HTTP_ROUTE_UPLOAD 0x01u /* takes multipart/form-data bodies */
#define HTTP_ROUTE_CONTENT 0x02u /* refused to a muted account */
#define HTTP_ROUTE_STREAM 0x04u /* answers a byte stream, not JSON: not batched (h_batch.c) */
#define HTTP_ROUTE_LOGIN_ONLY 0x80u /* refused to an API key */
#define HTTP_ROUTE_PUBLIC 0x10u
#define HTTP_ROUTE_USER 0x20u
#define HTTP_ROUTE_ADMIN 0x40u
#define HTTP_ROUTE_READ 0x100u
#define HTTP_ROUTE_WRITE 0x200u
#define HTTP_USER_READ (HTTP_ROUTE_USER | HTTP_ROUTE_READ)
#define HTTP_USER_WRITE (HTTP_ROUTE_USER | HTTP_ROUTE_WRITE)
#define HTTP_ADMIN_READ (HTTP_ROUTE_ADMIN | HTTP_ROUTE_READ)
#define HTTP_ADMIN_WRITE (HTTP_ROUTE_ADMIN | HTTP_ROUTE_WRITE)
#define HTTP_USER_CONTENT (HTTP_USER_WRITE | HTTP_ROUTE_CONTENT)
#define HTTP_RATE_AUTH 0x1000u
#define HTTP_RATE_MESSAGES 0x2000u
#define HTTP_RATE_SEARCH 0x4000u
#define HTTP_RATE_NONE 0x8000u

/* The rate-limit category of a route with `flags` (an auth_rate_category_t),
 * or -1 for a route that is not limited (HTTP_RATE_NONE) or whose flags
 * name two categories. */
int http_route_rate_category(unsigned flags);

/*
 * A route. `query` and `body` declare its inputs, comma-separated names
 * ("page,limit"; "" for none): the query parameters it reads, and the
 * top-level fields of its JSON object body (of an HTTP_ROUTE_UPLOAD route:
 * its multipart form fields, the file part's "file" among them), or
 * HTTP_FIELDS_OWN when the handler refuses unknown fields itself (a body
 * that is a table's own patch). The router answers 422 VALIDATION_ERROR
 * {field, in: "query"|"body", allowed} for any other name, after the caller
 * is authenticated and before the handler runs (docs/api.md, "Unknown
 * parameters and fields"). NULL is a row that forgot to declare: nothing is
 * refused for it, and tests/unit/test_route_inputs.c fails.
 */
#define HTTP_FIELDS_OWN "*"
typedef struct http_route {
    const char *method;   /* "GET", "POST", ... (a GET route also answers HEAD) */
    const char *pattern;  /* "/api/v1/channels/:id/messages" */
    http_handler_fn handler;
    unsigned flags;
    const char *query;    /* query parameters read: "before,after,limit" */
    const char *body;     /* top-level body fields read: "content,reply_to" */
} http_route_t;


/* ---- answers ----------------------------------------------------------- */

/* Answers `status` with the JSON value `body` (the reference is stolen). */
void http_reply_json(http_ctx_t *ctx, int status, json_t *body);

/* Answers `status` with JSON already serialised (`text`, malloc'd, taken
 * over; NULL answers 500), for an answer whose text is also used elsewhere. */
void http_reply_json_text(http_ctx_t *ctx, int status, char *text);

/* Answers `status` with `len` bytes of `data` (copied) as `content_type`. */
void http_reply_bytes(http_ctx_t *ctx, int status, const char *content_type, const void *data,
                      size_t len);

/* Answers `status` (204, 202...) with no body. */
void http_reply_empty(http_ctx_t *ctx, int status);

/*
 * Answers the error `err` with a printf-style message. `details` (stolen, may
 * be NULL) becomes error.details; it defaults to {}.
 */
void http_reply_error(http_ctx_t *ctx, enum http_error err, json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* http_reply_error(VALIDATION_ERROR) with details {"field": field}. */
void http_reply_invalid(http_ctx_t *ctx, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Calls fn(ctx, name, value) for each security header every answer carries
 * (X-Content-Type-Options, Referrer-Policy, X-Frame-Options,
 * Content-Security-Policy, Permissions-Policy): ulfius's default headers,
 * the gate's own answers and event streams add them through it. */
void http_security_headers_each(void (*fn)(void *ctx, const char *name, const char *value),
                                void *ctx);

/* Adds a response header (copied). */
void http_set_header(http_ctx_t *ctx, const char *name, const char *value);

/*
 * Builds the error body of docs/api.md as a string the caller frees.
 * Used by the router and by the connection gate, which answers before any
 * handler runs.
 */
char *http_error_body(enum http_error err, const char *message, json_t *details,
                      const char *request_id);

/* ---- request input ----------------------------------------------------- */

/* A request header, case-insensitively; NULL when absent. */
const char *http_header(const http_ctx_t *ctx, const char *name);

/* A query parameter; NULL when absent. */
const char *http_query(const http_ctx_t *ctx, const char *name);

/*
 * Field readers for the JSON body. Each returns 0 and sets *out when the
 * field is valid, 0 and leaves *out alone when it is absent and not
 * required, and -1 after answering 422 VALIDATION_ERROR (details.field =
 * name) when it is missing, of the wrong type or out of bounds. Lengths count
 * Unicode code points; strings are checked to hold no control characters
 * except, when allow_newlines, '\n', '\r' and '\t'. *out points into
 * ctx->body and lives as long as the request.
 */
int http_field_string(http_ctx_t *ctx, const char *name, bool required, size_t min_len,
                      size_t max_len, bool allow_newlines, const char **out);
int http_field_bool(http_ctx_t *ctx, const char *name, bool required, bool *out);
int http_field_int(http_ctx_t *ctx, const char *name, bool required, long long min,
                   long long max, long long *out);

/*
 * Reads ?page= (1-1000000, default 1) and ?limit= (1-100, default 50) for
 * lists. Returns true, or false after answering 422 naming the parameter.
 */
bool http_paging(http_ctx_t *ctx, long *page, long *limit);

/* Parses an RFC 3339 UTC time ("2026-01-09T12:00:00Z", optional
 * milliseconds, "Z" or "+00:00") into ms since the epoch; false when
 * malformed. */
bool http_parse_time(const char *s, int64_t *ms);

/* The client's IP address as text ("127.0.0.1", "::1"): the connecting
 * peer, or, when the peer is a trusted proxy, the first address not of a
 * trusted proxy in X-Forwarded-For / Forwarded walking from the right
 * (http_trusted_proxies_set; src/http/forwarded.c). What blocks, limits,
 * the login throttle and the access log use. It is the request being served
 * on the calling thread's ("" outside one), so ctx may be NULL where there
 * is none yet (the real-time accept the gate hands a request to). */
const char *http_client_ip(const http_ctx_t *ctx);

/*
 * The trusted proxies: only when the connecting peer is in one of these
 * networks are X-Forwarded-For and Forwarded believed (see
 * http_client_ip). cidrs[0..n) are addresses or CIDR ranges ("10.0.0.0/8",
 * "::1"), host bits refused (ipnet_parse strict). Replaces the whole list
 * at once for every later request; n = 0 trusts nobody (the default).
 * Returns 0, or the IPNET_E_* code of the first bad entry and changes
 * nothing. Thread-safe; the strings are not kept.
 */
int http_trusted_proxies_set(const char *const *cidrs, size_t n);

/* The same check without setting anything: 0, or the IPNET_E_* code of the
 * first bad entry and its index in *bad (may be NULL). */
int http_trusted_proxies_check(const char *const *cidrs, size_t n, size_t *bad);

/*
 * The web origins browsers may call the API from (CORS; src/http/cors.c):
 * origins[0..n) as origin_valid (include/parley/origin.h) takes them, at
 * most ORIGIN_LIST_MAX. Replaces the whole list at once for every later
 * request; n = 0 allows none (the default). 0, or -1 on a bad entry or too
 * many (nothing changed). Thread-safe; the strings are copied.
 */
int http_cors_origins_set(const char *const *origins, size_t n);

/* Calls fn(ctx, name, value) for the CORS headers of an answer to a request
 * from `origin` (its Origin header; may be NULL): Vary: Origin whenever the
 * list is not empty, and Access-Control-Allow-Origin (origin itself),
 * -Allow-Credentials and -Expose-Headers when origin is listed. The router
 * adds them to every answer; event streams through this. */
void http_cors_headers_each(const char *origin,
                            void (*fn)(void *ctx, const char *name, const char *value), void *ctx);

/* ---- browser sessions by cookie (session_cookie.c) --------------------- */

#define HTTP_SESSION_COOKIE "parley_session" /* HttpOnly: the session credential */
#define HTTP_CSRF_COOKIE "parley_csrf"       /* readable: the session's CSRF token */
#define HTTP_CSRF_HEADER "X-CSRF-Token"

/*
 * Whether the request being served on this thread came over HTTPS: over a
 * TLS connection of this server, or from a trusted proxy (trusted_proxies)
 * whose X-Forwarded-Proto says https. What --cookie-secure auto sets Secure
 * by, and the scheme of the server's own origin. Thread-safe.
 */
bool http_request_https(const http_ctx_t *ctx);

/* When the session cookies carry Secure (--cookie-secure; the values of
 * enum config_cookie_secure): AUTO (the default) when http_request_https,
 * ALWAYS, NEVER. Set at start-up by server.c. */
#define HTTP_COOKIE_SECURE_AUTO 0
#define HTTP_COOKIE_SECURE_ALWAYS 1
#define HTTP_COOKIE_SECURE_NEVER 2
void http_session_cookies_secure(int mode);

/* The request's parley_session cookie, or NULL. */
const char *http_session_cookie(const http_ctx_t *ctx);

/*
 * Adds the Set-Cookie headers of a browser login to the answer:
 * parley_session = `credential` (HttpOnly) and parley_csrf = `csrf`, both
 * Path=/, SameSite=Lax, Max-Age `max_age_s` (clamped to 1 s - 400 days),
 * Secure as --cookie-secure says. clear: both emptied and expired (a logout).
 */
void http_session_cookies_set(http_ctx_t *ctx, const char *credential, const char *csrf,
                              int64_t max_age_s);
void http_session_cookies_clear(http_ctx_t *ctx);

/*
 * Whether a cookie-authenticated real-time request from `origin` (its
 * Origin header) may go on: origin is the server's own (`https` ? "https" :
 * "http") + "://" + `host` (the Host header; NULL matches nothing), or one
 * of the cors_origins. False for NULL or a malformed origin. Thread-safe.
 */
bool http_origin_trusted(const char *origin, const char *host, bool https);

/* HTTP requests started and not finished, the caller's included. */
unsigned http_requests_in_flight(void);
/* Requests received per second, averaged over the last 60 seconds (the
 * gate counts each as it starts; lock-free). */
double http_requests_per_second(void);

/* Requests answered since start, by status class (by_class[1..5]: 1xx to
 * 5xx; by_class[0]: no status, e.g. the client left first) and the 429s
 * among them (rate limits and throttles). Counted as each request
 * completes, whoever answered it; lock-free. */
typedef struct http_answer_counts {
    uint64_t by_class[6];
    uint64_t too_many;
} http_answer_counts_t;
void http_requests_answered(http_answer_counts_t *out);

/*
 * Requests by route (src/http/route_metrics.c), counted as each request
 * completes, whoever answered it: the route is the route table's pattern
 * ("/api/v1/channels/{id}/messages") and method, never the raw path, so the
 * set of names is bounded; requests no route took (404, 405, the gate's
 * refusals before routing) count under route "unmatched", method "any".
 * Status codes outside HTTP_ROUTE_CODES' list count as code -1 ("other");
 * 0 is a request that ended without a status. Latencies (from the request
 * line to the end of the answer) fall into fixed buckets whose upper bounds
 * are http_latency_bounds (seconds); bytes are those of the request bodies
 * read and of the answer bodies given to libmicrohttpd (headers not
 * counted; an event stream's or WebSocket's later traffic neither).
 * Counting is a handful of relaxed atomic adds per request, no lock.
 */
#define HTTP_LATENCY_BUCKETS 13
/* The Prometheus text format's content type (what GET /metrics answers). */
#define HTTP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
extern const double http_latency_bounds[HTTP_LATENCY_BUCKETS];
#define HTTP_ROUTE_CODES 40

typedef struct http_route_metrics {
    const char *method, *route; /* valid while the server runs */
    struct {
        int code;               /* -1: other; 0: none */
        uint64_t n;
    } codes[HTTP_ROUTE_CODES];
    size_t n_codes;             /* codes with n > 0, ascending, "other" last */
    uint64_t le[HTTP_LATENCY_BUCKETS + 1]; /* cumulative; le[HTTP_LATENCY_BUCKETS] is +Inf */
    uint64_t count;             /* = le[HTTP_LATENCY_BUCKETS] */
    double sum_seconds;
    uint64_t bytes_in, bytes_out;
} http_route_metrics_t;

/* Calls fn(ctx, m) for each route that has counted a request (the
 * unmatched one last), in the route table's order. Thread-safe (reads
 * atomics; a request completing meanwhile may show in one figure and not
 * yet in another, but a histogram's buckets and count always agree). */
void http_route_metrics_each(void (*fn)(void *ctx, const http_route_metrics_t *m), void *ctx);

/* Requests answered 403 IP_BLOCKED by the gate (a blocked address) since
 * start; lock-free. */
uint64_t http_blocked_hits(void);

/* ---- uploads ----------------------------------------------------------- */

/* What an HTTP_ROUTE_UPLOAD route's multipart body delivered (src/http/upload.c). */
typedef struct upload {
    blob_writer_t *writer;   /* the file's bytes so far; NULL when none or gone */
    char filename[1024];     /* as the client sent it (made safe later) */
    bool filename_truncated;
    bool got_file;           /* a part named "file" arrived */
    bool extra_files;        /* more than one */
    bool in_extra;           /* the current part is an extra one (ignored) */
    bool too_large;          /* over max_upload_bytes: the body was refused */
    bool failed;             /* the disk refused it */
    bool other_file;         /* a file came in a part not named "file" (not read) */
    char other_name[64];     /* the first such part's name, as sent (cut to fit) */
} upload_t;

/* The current request's upload, or NULL when no file part came. Owned by
 * the request (freed, its temporary blob removed, when it ends). */
upload_t *http_upload_current(void);

/* Whether the current request's multipart body ended with its closing
 * delimiter: libmicrohttpd never reports a part cut short, so an upload
 * route asks this before it keeps a file. True when it is no upload. */
bool http_upload_body_complete(void);

/* ---- answering straight from libmicrohttpd ----------------------------- */
/* For the real-time endpoints, which the gate hands the connection to
 * before ulfius sees it (gate_set_takeover). */

/*
 * Attaches state to the request being served on this thread (an upload in
 * progress); free_fn(state) runs when the request ends, however it ends.
 * One state per request; attaching again replaces (and frees) the previous.
 */
void http_request_attach(void *state, void (*free_fn)(void *state));

/* A JSON error response (docs/api.md) with the headers every error
 * carries, for answers made straight from libmicrohttpd; NULL when out of
 * memory. */
struct MHD_Response *http_error_response(enum http_error err, const char *message,
                                         const char *request_id);

/* ---- pieces the router and its tests share ----------------------------- */

/* Number of code points in valid UTF-8 `s` (jansson strings are valid). */
size_t http_utf8_length(const char *s, size_t bytes);

/*
 * The router's body check, exposed for tests and fuzzing. Given the
 * Content-Type header (may be NULL) and a non-empty raw body: returns 0 and
 * sets *out to the parsed JSON object (caller owns), or to NULL when the body
 * is multipart and the route takes uploads; or returns -1 and sets *err and a
 * message in msg (msg_size bytes).
 */
#define HTTP_JSON_MAX_DEPTH 32
int http_parse_json_body(const char *content_type, const void *body, size_t len,
                         bool accepts_upload, json_t **out, enum http_error *err, char *msg,
                         size_t msg_size);

/* True when the client's X-Request-Id is safe to reuse: 1-64 of [A-Za-z0-9._:-]. */
bool http_request_id_acceptable(const char *id);

#endif
