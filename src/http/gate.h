/*
 * The connection gate's side of a request, for the rest of src/http/ (the
 * router, the upload callback, replies). What the server and other layers
 * may use is in include/parley/http.h and http_server.h. See gate.c for why
 * the gate exists.
 */
#ifndef PARLEY_HTTP_GATE_H
#define PARLEY_HTTP_GATE_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/http.h"
#include "parley/http_server.h"

/* The state attached to the current request, or NULL. */
void *gate_attached(void);

/* From now on the current request's body is discarded and the request is
 * answered 413 when it ends (an upload went over its limit). */
void gate_refuse_body(void);

/* The upload limit of the current request (max_upload_bytes as it was when
 * the request started, so the gate and the upload agree), or the current
 * limit outside an upload. */
uint64_t gate_upload_limit(void);

/* Whether the current request's multipart upload body ended with its closing
 * delimiter ("--boundary--", then at most a short epilogue). libmicrohttpd
 * holds back the last bytes of a part until it sees the next delimiter and
 * never reports a part cut short, so an upload endpoint asks this before it
 * keeps a file. True when the request is not a multipart upload. */
bool gate_multipart_closed(void);

/* For the request being served on the calling thread (NULL/no-op outside
 * one): its id, and the status it was answered with, for the access log. */
const char *gate_request_id(void);
void gate_note_status(int status);
/* The route the router matched (a route_slot_t of route_metrics.h) and the
 * bytes of the answer's body, for the route's figures. */
void gate_note_route(void *route_metric);
void gate_note_bytes_out(uint64_t bytes);
/* The authenticated caller's user id, for the access log (copied). */
void gate_note_user(const char *user_id);

/* Whether the current request came over HTTPS (http_request_https); false
 * outside a request. */
bool gate_request_https(void);

/* The client's IP address as text ("127.0.0.1", "::1"), or "" outside a
 * request. */
const char *gate_client_ip(void);

/* Whether the peer of socket fd has closed its end (FIN or RST received)
 * with nothing left unread: its request cannot finish. Reads nothing. */
bool gate_peer_gone(int fd);

#endif
