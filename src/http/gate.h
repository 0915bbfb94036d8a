/*
 * The connection gate: the first code to see each HTTP request, in front of
 * ulfius. See gate.c for why it exists.
 */
#ifndef PARLEY_HTTP_GATE_H
#define PARLEY_HTTP_GATE_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/http.h"

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
 * Attaches state to the request being served on this thread (an upload in
 * progress); free_fn(state) runs when the request ends, however it ends.
 * One state per request; attaching again replaces (and frees) the previous.
 */
void gate_attach(void *state, void (*free_fn)(void *state));

/* The state attached to the current request, or NULL. */
void *gate_attached(void);

/* From now on the current request's body is discarded and the request is
 * answered 413 when it ends (an upload went over its limit). */
void gate_refuse_body(void);

/* Whether the current request's multipart upload body ended with its closing
 * delimiter ("--boundary--", then at most a short epilogue). libmicrohttpd
 * holds back the last bytes of a part until it sees the next delimiter and
 * never reports a part cut short, so an upload endpoint asks this before it
 * keeps a file. True when the request is not a multipart upload. */
bool gate_multipart_closed(void);

/* A JSON error response (shared/API.md) with the headers every error
 * carries, for answers made straight from libmicrohttpd; NULL when out of
 * memory. */
struct MHD_Response *gate_error_response(enum http_error err, const char *message,
                                         const char *request_id);

/* MHD_OPTION_URI_LOG_CALLBACK and MHD_OPTION_NOTIFY_COMPLETED for the daemon;
 * they wrap ulfius's own, which ulfius requires. */
void *gate_uri_logger(void *cls, const char *uri);
void gate_request_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                            enum MHD_RequestTerminationCode toe);

/* For the request being served on the calling thread (NULL/no-op outside
 * one): its id, and the status it was answered with, for the access log. */
const char *gate_request_id(void);
void gate_note_status(int status);

/* The client's IP address as text ("127.0.0.1", "::1"), or "" outside a
 * request. */
const char *gate_client_ip(void);

/* Requests that have started and not yet completed. */
unsigned gate_in_flight(void);
/* Requests in flight worth waiting for at shutdown: those being answered,
 * and those whose client is still connected (however slowly it sends). Not
 * counted: requests whose client has closed its end (see gate.c), and the
 * real-time streams, which realtime_shutdown ends. */
unsigned gate_in_flight_waited(void);

/* Whether the peer of socket fd has closed its end (FIN or RST received)
 * with nothing left unread: its request cannot finish. Reads nothing. */
bool gate_peer_gone(int fd);

/* From now on every answer closes its connection (shutdown in progress). */
void gate_begin_drain(void);
bool gate_draining(void);

#endif
