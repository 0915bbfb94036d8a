/*
 * The connection gate: the first code to see each HTTP request, in front of
 * ulfius. See gate.c for why it exists.
 */
#ifndef PARLEY_HTTP_GATE_H
#define PARLEY_HTTP_GATE_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

/* Sets the largest body accepted (before any request is served). */
void gate_configure(size_t max_body_bytes);

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

/* From now on every answer closes its connection (shutdown in progress). */
void gate_begin_drain(void);
bool gate_draining(void);

#endif
