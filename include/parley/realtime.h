/*
 * Real-time delivery (docs/api.md, "Real time"): the event bus that every
 * durable change is published to, and the WebSocket (GET /api/v1/ws) and
 * Server-Sent Events (GET /api/v1/events) connections that carry it to the
 * users who may see it. See src/realtime/ and docs/realtime.md.
 */
#ifndef PARLEY_REALTIME_H
#define PARLEY_REALTIME_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

struct parley_app;
typedef struct realtime realtime_t;

/*
 * Runs a request made inside the server through the HTTP router, as if it
 * had come from the network with the credentials of `preauth` (a
 * principal_t): the server hands realtime_start the router's router_call.
 * Returns the status and sets *answer (caller decrefs; NULL for none).
 */
typedef int (*realtime_call_fn)(void *ctx, const char *method, const char *path, json_t *body,
                                const void *preauth, const char *request_id, json_t **answer);

/*
 * Creates the real-time service of `app` (whose config, store and keys are
 * ready). A WebSocket send_message runs POST /api/v1/messages through
 * call(call_ctx, ...), exactly like one from the network. NULL when out of
 * memory or a thread cannot start (err says why).
 */
realtime_t *realtime_start(struct parley_app *app, realtime_call_fn call, void *call_ctx,
                           char *err, size_t err_size);

/* Ends every real-time connection (WebSockets get a close frame, 1001 "server
 * shutting down"; event streams end) and waits for them, bounded. Call
 * before the HTTP daemon stops: libmicrohttpd requires its upgraded and
 * suspended connections to be given back first. */
void realtime_shutdown(realtime_t *rt);

/* Frees what realtime_start made (after realtime_shutdown). NULL is fine. */
void realtime_free(realtime_t *rt);

/*
 * Publishes an event, after the change it reports is durable. `data` (a
 * JSON object; the reference is stolen) becomes the event's "data". It
 * reaches the connections that may see it at delivery time:
 *   - channel_id set: users who may read the channel and are members of it
 *     (or subscribed to it), and who did not unsubscribe;
 *   - also_user set: that user too, whatever the channel (a member who left
 *     or was removed learns it);
 *   - audience (n_audience ids): exactly those users (channel_id ignored).
 * Safe from any thread; NULL rt does nothing (tools, tests).
 */
void realtime_publish(realtime_t *rt, const char *type, const char *channel_id,
                      const char *also_user, json_t *data);
/* realtime_publish with the data already serialised: `data` is JSON text of
 * an object, copied (the caller keeps it, e.g. to answer with it). */
void realtime_publish_text(realtime_t *rt, const char *type, const char *channel_id,
                           const char *also_user, const char *data);
/* realtime_publish_text of an event showing a message (message.created,
 * message.updated: data is the message object, copied) as it was at
 * updated_at: delivered later (a resume), it shows the message as it is
 * then, re-rendered when it has changed, or nothing once it is deleted. */
void realtime_publish_message(realtime_t *rt, const char *type, const char *channel_id,
                              const char *message_id, int64_t updated_at, const char *data);
void realtime_publish_to(realtime_t *rt, const char *type, const char *const *audience,
                         size_t n_audience, json_t *data);
/* realtime_publish_to every user who shares a channel with user_id, and
 * user_id itself (its other devices): presence, user.updated. Steals data. */
void realtime_publish_to_peers(realtime_t *rt, const char *type, const char *user_id,
                               json_t *data);

/* Whether GET `path` is one of the real-time endpoints, which the
 * connection gate hands to realtime_accept before any body is read. */
bool realtime_claims(void *rt, const char *method, const char *path);

/*
 * Answers a real-time request from the connection gate: the WebSocket
 * handshake (101, then the socket belongs to the real-time loop), an event
 * stream (200, text/event-stream), or a JSON error. *status is set to the
 * status answered. `rt` is a realtime_t (the signature fits gate_set_takeover).
 */
enum MHD_Result realtime_accept(void *rt, struct MHD_Connection *conn, const char *path,
                                const char *request_id, int *status);

/* Open WebSocket connections, and users online (for admin statistics). */
unsigned realtime_websockets_open(realtime_t *rt);

/* What the service holds now (for the admin dashboard); zeros for NULL,
 * but for the counters since start. */
typedef struct realtime_stats {
    unsigned websockets, event_streams;
    size_t ring_events, ring_capacity; /* the event ring's fill */
    size_t ring_bytes, ring_max_bytes; /* its bytes, and their bound (0: none) */
    /* Since start (counted even for NULL, which is the process's service): */
    uint64_t events_published;      /* events appended to the ring */
    uint64_t events_ring_dropped;   /* dropped before their turn, for ring_max_bytes */
    uint64_t resyncs;               /* consumers told RESYNC_REQUIRED (events lost to them) */
    uint64_t slow_consumers_closed; /* WebSockets closed for an unread queue over ws_queue_bytes */
    uint64_t frames_dropped;        /* client WebSocket frames dropped over ws_frame_rate */
} realtime_stats_t;
void realtime_get_stats(realtime_t *rt, realtime_stats_t *out);

#endif
