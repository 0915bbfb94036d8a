/*
 * What the server (src/server.c) needs of the HTTP transport to run it: the
 * router over the API's route tables, the connection gate's callbacks and
 * settings, the streaming of uploads, and the drain at shutdown. Handlers
 * need none of this: they use include/parley/http.h.
 */
#ifndef PARLEY_HTTP_SERVER_H
#define PARLEY_HTTP_SERVER_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ulfius.h>

#include "parley/http.h"
#include "parley/ipnet.h"

/* ---- the router (router.c) ----------------------------------------------- */

typedef struct router router_t;

/*
 * Builds a router over `tables`, a NULL-terminated list of route tables each
 * ending with an entry whose method is NULL. The tables must outlive the
 * router. `app` is handed to every handler as ctx->app. Aborts on a malformed
 * pattern (a programming error).
 */
router_t *router_new(const http_route_t *const *tables, void *app);
void router_free(router_t *router);

/* True when a route takes uploads (HTTP_ROUTE_UPLOAD) at method + path;
 * `router` is a router_t (the signature fits gate_configure). */
bool router_takes_upload(void *router, const char *method, const char *path);

/* The flags (HTTP_ROUTE_*) of the route at method + path; 0 when none
 * matches. */
unsigned router_route_flags(void *router, const char *method, const char *path);

/* The ulfius callback; user_data is the router. Always U_CALLBACK_COMPLETE. */
int router_dispatch(const struct _u_request *req, struct _u_response *resp, void *user_data);

/*
 * Runs a request made inside the server (a WebSocket send_message) through
 * the same route and handler as one from the network: `body` (a JSON object,
 * not stolen, may be NULL) stands for the parsed body, a query string after
 * `path`'s "?" for the query parameters (decoded as from the network; a
 * part that cannot be decoded: 400 and no answer), `preauth` (a
 * principal_t, see http_ctx_t) for the credentials. Returns the status and
 * sets *answer to the JSON answered (caller decrefs; NULL for none). Blocks
 * as long as the handler does (a post waits for its record to be durable).
 */
int router_call(router_t *r, const char *method, const char *path, json_t *body,
                const principal_t *preauth, const char *request_id, json_t **answer);

/* ---- the connection gate (gate.c) ---------------------------------------- */

/*
 * Sets the largest body accepted (before any request is served): max_body
 * for every request, max_upload (plus GATE_UPLOAD_SLACK for the multipart
 * framing and the form's other fields) for multipart/form-data requests to
 * which takes_upload(ctx, method, path) says yes. takes_upload may be NULL.
 */
#define GATE_UPLOAD_SLACK (1u << 20)
void gate_configure(size_t max_body, uint64_t max_upload,
                    bool (*takes_upload)(void *ctx, const char *method, const char *path),
                    void *ctx);

/*
 * The gate's bounds on connections and bodies (conn_guard.c, gate.c), set
 * before the port opens:
 *   - max_connections_per_ip: connections one address (IPv6: one /64) may
 *     hold; more are refused at accept (trusted proxies exempt); 0 = none;
 *   - header_timeout: seconds from a request's first line (a connection's
 *     start for its first request) to the end of its headers, however the
 *     bytes come; a kept-alive connection gets idle_timeout + header_timeout
 *     after an answer to send its next request; then its socket is shut;
 *   - body_min_rate: bytes per second a body must average once the headers
 *     are in, after a grace of header_timeout; 0 = no minimum;
 *   - body_budget_bytes: body bytes all requests together may hold in
 *     memory (uploads streamed to disk excluded); a request whose body
 *     would pass it is answered 503 SERVICE_UNAVAILABLE (Retry-After);
 *   - public_body_bytes: the largest body of a request that carries no
 *     credentials (no Authorization, X-API-Key or access cookie), or of a
 *     public route: more is answered 413 before the body is read.
 * route_flags (router_route_flags, with gate_configure's ctx) tells
 * public routes; NULL: every route is treated as needing credentials.
 */
typedef struct gate_limits {
    unsigned max_connections_per_ip;
    unsigned header_timeout;
    unsigned idle_timeout;
    unsigned body_min_rate;
    uint64_t body_budget_bytes;
    uint64_t public_body_bytes;
    unsigned (*route_flags)(void *ctx, const char *method, const char *path);
} gate_limits_t;
void gate_set_limits(const gate_limits_t *limits);

/* Stops the gate's sweeper thread, once the daemon has stopped. */
void gate_stop(void);

/* The live require_mfa_for_admins setting: while true, an admin whose
 * account has no MFA is refused on every ADMIN route with 403
 * MFA_SETUP_REQUIRED (thread-safe). */
void http_set_admin_mfa_required(bool required);

/* Changes the upload limit of requests that start from now on (the live
 * max_upload_bytes setting; thread-safe). */
void gate_set_max_upload(uint64_t max_upload_bytes);

/*
 * Hands requests to which claims(ctx, method, path) says yes to
 * take(ctx, ...) as soon as their headers are in, instead of ulfius: the
 * real-time endpoints, which answer straight from libmicrohttpd (an upgrade
 * to WebSocket, an event stream). take answers the request itself and sets
 * *status for the access log; gate_attach works inside it.
 */
void gate_set_takeover(bool (*claims)(void *ctx, const char *method, const char *path),
                       enum MHD_Result (*take)(void *ctx, struct MHD_Connection *conn,
                                               const char *path, const char *request_id,
                                               int *status),
                       void *ctx);

/*
 * The blocked addresses (the store's set, include/parley/ip_blocks.h), set
 * before the port opens: a request whose client address matches one that
 * has not expired is answered 403 IP_BLOCKED as soon as its headers are in,
 * before anything else (its body is not read; the connection is closed).
 * NULL (the default): nothing is blocked. The set must outlive the daemon.
 */
void gate_set_blocklist(ipnet_set_t *blocked);

/* MHD_OPTION_URI_LOG_CALLBACK and MHD_OPTION_NOTIFY_COMPLETED for the daemon;
 * they wrap ulfius's own, which ulfius requires. */
void *gate_uri_logger(void *cls, const char *uri, struct MHD_Connection *conn);
void gate_request_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                            enum MHD_RequestTerminationCode toe);

/* Requests that have started and not yet completed. */
unsigned gate_in_flight(void);
/* Requests in flight worth waiting for at shutdown: those being answered,
 * and those whose client is still connected (however slowly it sends). Not
 * counted: requests whose client has closed its end (see gate.c), and the
 * real-time streams, which realtime_shutdown ends. */
unsigned gate_in_flight_waited(void);

/* From now on every answer closes its connection (shutdown in progress). */
void gate_begin_drain(void);
bool gate_draining(void);

/* ---- the plain /metrics listener (metrics_listener.c) ------------------ */

/* Makes the metrics text: malloc'd (the caller frees), its length in *len;
 * NULL when out of memory. Called on the listener's thread. */
typedef char *(*http_metrics_render_fn)(void *ctx, size_t *len);
typedef struct http_metrics_listener http_metrics_listener_t;

/*
 * Listens on host (an IPv4 literal, or IPv6 with is_v6) and port, and answers
 * GET /metrics with render(ctx)'s text, without credentials; anything else
 * is answered 404 or 405 (JSON errors). NULL when the address cannot be
 * bound (in use, not local). Its requests do not go through the gate.
 */
http_metrics_listener_t *http_metrics_listener_start(const char *host, uint16_t port, bool is_v6,
                                                     http_metrics_render_fn render, void *ctx);
/* Stops it (waits for its thread); NULL: no-op. */
void http_metrics_listener_stop(http_metrics_listener_t *l);

/* ---- uploads (upload.c) --------------------------------------------------- */

/* The context of upload_chunk: the server's app and router. */
typedef struct upload_ctx {
    struct parley_app *app;
    router_t *router;
} upload_ctx_t;

/*
 * ulfius's upload-file callback (cls: an upload_ctx_t): streams the "file"
 * part of a multipart body to a temporary blob as it arrives. See upload.c.
 */
int upload_chunk(const struct _u_request *req, const char *key, const char *filename,
                 const char *content_type, const char *transfer_encoding, const char *data,
                 uint64_t off, size_t size, void *cls);

/* ---- TLS (tls.c, tls_redirect.c) ------------------------------------------ */

/* The GnuTLS priority string of the TLS port (TLS 1.2 + 1.3, AEAD, ECDHE/DHE). */
extern const char *const http_tls_priorities;

typedef struct http_tls http_tls_t;

/* 0 when --tls-cert and --tls-key are both given or both not; -1 with one
 * line in err otherwise. */
int http_tls_check_config(const char *cert_path, const char *key_path, char *err,
                          size_t errlen);

/*
 * Reads and checks the certificate chain and key (tls.c's file comment lists
 * the checks) and makes them the pair of new handshakes. Returns the TLS
 * context (one per process), or NULL with one line naming the problem in
 * err. Call before the daemon starts; http_tls_close after it stopped.
 */
http_tls_t *http_tls_open(const char *cert_path, const char *key_path, char *err,
                          size_t errlen);

/* Appends the daemon's TLS options (certificate callback, priorities) to
 * items, an array of `max` entries ending at its first MHD_OPTION_END
 * (which is moved behind them; the array needs 2 entries to spare, else it
 * aborts), and returns the flags TLS needs (MHD_USE_TLS). NULL tls: changes
 * nothing, returns 0. */
unsigned http_tls_mhd_options(http_tls_t *tls, struct MHD_OptionItem *items, size_t max);

#define HTTP_TLS_SERIAL_LEN 41 /* hex of at most 20 bytes + NUL */

/* SIGHUP: reads the two files again; on success new handshakes get the new
 * pair (connections made keep theirs) and 0 is returned with its serial in
 * `serial`; else the old pair stays, one line is logged, and -1 is returned
 * with the old serial in `serial` and the reason in err. Thread-safe against
 * handshakes. NULL tls: logs, returns 1. */
int http_tls_reload(http_tls_t *tls, char serial[HTTP_TLS_SERIAL_LEN], char *err,
                    size_t errlen);
void http_tls_close(http_tls_t *tls);

/* Whether the API's port speaks TLS (an http_tls_open succeeded and was not
 * closed): e.g. for a cookie's Secure attribute. Thread-safe. */
bool http_tls_enabled(void);

/* Strict-Transport-Security: max-age (seconds; 0 = not sent), live. */
void http_tls_set_hsts_max_age(unsigned seconds);
/* Calls fn with the HSTS header when TLS is on and the max age is above 0. */
void http_tls_hsts_each(void (*fn)(void *ctx, const char *name, const char *value), void *ctx);

/*
 * The plain-HTTP port of --tls-redirect-port (tls_redirect.c): its own small
 * libmicrohttpd daemon on `bind`:`port` answering every request 308 to
 * https://<Host without port>[:https_port]<path and query>, except
 * GET/HEAD /api/health, which is run through `router` (router_call) and
 * answered as on the TLS port, for load balancers. NULL with err when the
 * port cannot be opened.
 */
typedef struct http_tls_redirect http_tls_redirect_t;
http_tls_redirect_t *http_tls_redirect_start(const char *bind, uint16_t port,
                                             uint16_t https_port, router_t *router,
                                             char *err, size_t errlen);
void http_tls_redirect_stop(http_tls_redirect_t *r);

#endif
