/*
 * The parts of the real-time service (src/realtime/) and how they meet:
 *   bus.c       the event ring: sequence numbers, resume, fan-out wake-ups
 *   client.c    one subscriber's identity, subscriptions and what it may see
 *   presence.c  who is online; typing indicators
 *   websocket.c the WebSocket loop (one epoll thread, wslay framing)
 *   outq.c      a WebSocket's outbound text frames (shared by reference, sendmsg)
 *   sse.c       event streams (libmicrohttpd suspend/resume)
 *   realtime.c  start/stop, the gate's entry point, publishing
 *   handshake.c credentials and JSON errors of the two handshakes
 *   budget.c    per-user budgets (connects, typing events)
 */
#ifndef PARLEY_REALTIME_INTERNAL_H
#define PARLEY_REALTIME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "parley/access.h"
#include "parley/http.h"
#include "parley/app.h"
#include "parley/ipnet.h"
#include "parley/realtime.h"
#include "parley/store.h"

/* ---- events and the ring (bus.c) ------------------------------------- */

#define RT_TYPE_MAX 32

typedef struct rt_event {
    atomic_int refs;
    atomic_bool delivered;              /* message.created: its "delivered" receipt sent
                                         * (client.c; in the padding after refs) */
    uint64_t seq;
    char type[RT_TYPE_MAX];
    char channel_id[STORE_ID_MAX];      /* "" for none */
    char also_user[STORE_ID_MAX];       /* "" for none */
    char (*audience)[STORE_ID_MAX];     /* sorted; NULL when the channel decides */
    size_t n_audience;
    char message_id[STORE_ID_MAX];      /* a message event: the message it shows; else "" */
    int64_t message_updated_at;         /* that message's updated_at when rendered */
    int64_t at_ms;                      /* wall clock when published */
    size_t bytes;                       /* what the event costs the ring */
    /* {"type","seq","data"}: a WebSocket text frame, kept once; the data
     * object (an event stream's data line) is the part of it at data. */
    char *frame;
    size_t frame_len;
    const char *data;                   /* inside frame, data_len bytes, not terminated */
    size_t data_len;
} rt_event_t;

typedef struct rt_bus rt_bus_t;

/* What the service has done since start, for GET /metrics (realtime_get_stats):
 * relaxed atomic counters, bumped where it happens (realtime.c defines them). */
typedef struct rt_counters {
    _Atomic uint64_t published;      /* events appended to the ring (bus.c) */
    _Atomic uint64_t ring_dropped;   /* events dropped early for the ring's byte bound */
    _Atomic uint64_t resyncs;        /* consumers told RESYNC_REQUIRED: events lost to them */
    _Atomic uint64_t slow_closed;    /* WebSockets closed as slow consumers (ws_queue_bytes) */
    _Atomic uint64_t frames_dropped; /* client frames dropped over ws_frame_rate */
} rt_counters_t;
extern rt_counters_t realtime__counters;
#define RT_COUNT(field) atomic_fetch_add_explicit(&realtime__counters.field, 1, memory_order_relaxed)

/* A ring keeping the last `capacity` events, and of those only as many of
 * the newest as fit in `max_bytes` (0: no byte bound; the newest event is
 * always kept): the oldest go first. Sequence numbers of this run start above
 * (start-up unix seconds) << 20, so a resume point from an earlier run is
 * never mistaken for one of this run. */
rt_bus_t *realtime__bus_new(size_t capacity, size_t max_bytes);
void realtime__bus_free(rt_bus_t *bus);

/* Called (outside the bus's lock) after each publish. */
void realtime__bus_on_publish(rt_bus_t *bus, void (*fn)(void *ctx), void *ctx);

/* Appends an event (data stolen); returns its seq, 0 when out of memory. */
uint64_t realtime__bus_publish(rt_bus_t *bus, const char *type, const char *channel_id,
                        const char *also_user, const char *const *audience, size_t n_audience,
                        json_t *data);

/* The same with the data already serialised (`data`, malloc'd JSON text,
 * taken over; NULL publishes nothing). */
uint64_t realtime__bus_publish_text(rt_bus_t *bus, const char *type, const char *channel_id,
                             const char *also_user, const char *const *audience,
                             size_t n_audience, char *data);

/* The same for an event showing a message (message.created/updated):
 * delivery checks the message again (realtime__event_current). */
uint64_t realtime__bus_publish_message(rt_bus_t *bus, const char *type, const char *channel_id,
                                const char *message_id, int64_t updated_at, char *data);

/* The seq of the newest event (the resume point of a client that has seen
 * everything so far). */
uint64_t realtime__bus_last_seq(rt_bus_t *bus);
/* Events the ring holds now, and how many it can hold. */
void realtime__bus_fill(rt_bus_t *bus, size_t *events, size_t *capacity);
/* Bytes the events the ring holds take (realtime__bus_new's byte bound). */
size_t realtime__bus_bytes(rt_bus_t *bus);

/*
 * Events with seq > after, oldest first, at most `max`, each with a reference
 * the caller releases. *lost is set when `after` cannot be resumed from: some
 * events after it have left the ring, or it is not a seq of this run. Then
 * nothing is returned.
 */
size_t realtime__bus_fetch(rt_bus_t *bus, uint64_t after, rt_event_t **out, size_t max, bool *lost);

void realtime__event_release(rt_event_t *ev);

/* Renders {"type":"<type>","seq":<seq>,"data":<data>} into *frame (malloc'd,
 * terminated; *frame_len without the terminator); the data starts at
 * *data_off. false when out of memory. */
bool realtime__frame_render(const char *type, uint64_t seq, const char *data, size_t data_len,
                            char **frame, size_t *frame_len, size_t *data_off);

/* ---- a WebSocket's outbound text frames (outq.c) ------------------------- */

typedef struct rt_out_frame {
    rt_event_t *event;   /* a reference: the text is the event's frame, shared */
    char *own;           /* or the connection's own text (malloc'd) */
    const char *text;
    size_t len;
    uint8_t head[10];    /* the frame header (unmasked, FIN, text) */
    uint8_t head_len;
} rt_out_frame_t;

/* A ring of frames; zeroed is empty. */
typedef struct rt_outq {
    rt_out_frame_t *ring;
    size_t first, n, cap;
    size_t sent;         /* bytes of the first frame (header + text) written */
    size_t bytes;        /* bytes queued, headers included, less none written */
} rt_outq_t;

/* Queues the event's frame by reference (no copy). false: out of memory. */
bool realtime__outq_push_event(rt_outq_t *q, rt_event_t *ev);
/* Queues text (malloc'd, taken over: freed even on failure). */
bool realtime__outq_push_owned(rt_outq_t *q, char *text, size_t len);
/* Queues a copy of text. */
bool realtime__outq_push_copy(rt_outq_t *q, const char *text, size_t len);
/* Writes frames to the non-blocking socket fd, up to 32 in one sendmsg,
 * until the queue is empty or the socket full; only_begun: only the rest
 * of a frame begun (none: nothing). Returns the bytes written, -1 when the
 * socket failed (errno). */
ssize_t realtime__outq_flush(rt_outq_t *q, int fd, bool only_begun);
/* Whether a frame is half written (it must be finished before any other). */
static inline bool realtime__outq_begun(const rt_outq_t *q)
{
    return q->sent > 0;
}
/* Drops every frame not begun (a close was sent or received: nothing may
 * follow it but the rest of a frame begun). */
void realtime__outq_drop_unbegun(rt_outq_t *q);
/* Drops everything and frees the ring. */
void realtime__outq_clear(rt_outq_t *q);

/* ---- one subscriber (client.c) ----------------------------------------- */

#define RT_MAX_SUBSCRIPTIONS 1000

typedef struct rt_channel_set {
    char (*ids)[STORE_ID_MAX];
    size_t n, cap;
} rt_channel_set_t;

typedef struct rt_client {
    principal_t who;               /* valid when authenticated */
    bool authenticated;
    int64_t expires_ms;            /* the access token's expiry (wall ms); 0: none (API key) */
    uint64_t cursor;               /* seq of the last event handled */
    rt_channel_set_t subscribed;   /* readable channels asked for beyond memberships */
    rt_channel_set_t muted;        /* channels unsubscribed from */
} rt_client_t;

/*
 * Authenticates a client by credentials: "Bearer <jwt>", a bare JWT, or an
 * API key (plx_...). Returns -1, or the http_error (TOKEN_INVALID,
 * TOKEN_EXPIRED; INSUFFICIENT_PERMISSIONS for a key without read). Sets
 * c->expires_ms to the access token's expiry (0 for an API key, whose
 * expiry the login check sees).
 */
int realtime__client_authenticate(parley_app_t *app, rt_client_t *c, const char *credentials);

/* Makes p (taken over) the client's caller, with the credentials' expiry
 * (0: none). */
void realtime__client_adopt(rt_client_t *c, principal_t *p, int64_t expires_ms);

/* Whether the event reaches this client now (see realtime_publish): the
 * client's access now, and for a channel only members read (private, direct)
 * only events published since the client's membership began. */
bool realtime__client_sees(store_t *s, const rt_client_t *c, const rt_event_t *ev);

/*
 * The frame and data to send for an event now. An event showing a message
 * is sent as it was published while the message is unchanged; for a message
 * changed since, it is rendered again from the store (*frame and *data
 * malloc'd, *owned set: the caller frees *frame); for a message deleted
 * since (or gone), false: send nothing (the later message.deleted tells).
 * So a resume never replays text that was since edited or deleted.
 */
bool realtime__event_current(store_t *s, const rt_event_t *ev, char **frame, size_t *frame_len,
                             const char **data, size_t *data_len, bool *owned);

/*
 * An event was queued to this client's live connection (WebSocket send queue,
 * event-stream buffer): when it is a message.created of another user, the
 * first such queueing publishes the author's message_status "delivered"
 * (docs/realtime.md, "Receipts"). The only state is the event's flag, which
 * leaves with the event when the ring drops it.
 */
void realtime__note_delivered(realtime_t *rt, const rt_client_t *c, rt_event_t *ev);

/* The id of the channel `ref` names for this client: an id it may read, or
 * the name (case-insensitively) of a channel it may see (public, or one it is
 * a member of). Copies it into out (STORE_ID_MAX); false when none (unknown
 * and unreadable answer alike). */
bool realtime__channel_resolve(store_t *s, const rt_client_t *c, const char *ref, char *out);

/* Subscribes to a channel the client may read: 0, or -1 when the channel does
 * not exist or may not be read (the same answer: unknown to this user), -2
 * when the client holds RT_MAX_SUBSCRIPTIONS already. */
int realtime__client_subscribe(store_t *s, rt_client_t *c, const char *channel_id);
/* Mutes a channel: 0, or -2 when RT_MAX_SUBSCRIPTIONS are muted already. */
int realtime__client_unsubscribe(rt_client_t *c, const char *channel_id);

void realtime__client_clear(rt_client_t *c);

/* ---- per-user budgets (budget.c) ---------------------------------------- */

/* A token bucket: per_minute tokens a minute, holding at most per_minute.
 * A zeroed bucket is full. */
typedef struct rt_bucket {
    double tokens;
    int64_t at_ns;  /* last taken (monotonic ns); 0: never */
} rt_bucket_t;

/* Takes a token at now_ns: false when the bucket is empty (nothing taken).
 * per_minute 0: no limit, always true. Pure. */
bool realtime__bucket_take(rt_bucket_t *b, unsigned per_minute, int64_t now_ns);

typedef struct rt_budgets rt_budgets_t;
rt_budgets_t *realtime__budgets_new(void);
void realtime__budgets_free(rt_budgets_t *b);
/* realtime__bucket_take on key's bucket (thread-safe). */
bool realtime__budget_take(rt_budgets_t *b, const char *key, unsigned per_minute,
                           int64_t now_ns);

/* Typing events (start or stop) one user may cause a minute. */
#define RT_TYPING_PER_MINUTE 120

/* ---- presence and typing (presence.c) ------------------------------------ */

/*
 * A connection of user_id opened or closed. Presence is debounced and runs
 * on presence.c's own thread (never the WebSocket loop): the first
 * connection publishes "online" unless the user's "offline" was still
 * pending; the last one schedules "offline" RT_PRESENCE_DEBOUNCE_MS later,
 * cancelled by a reconnect in between. Only a published "offline" writes
 * last_seen to the user's record. Both are cheap (a queue push).
 */
#define RT_PRESENCE_DEBOUNCE_MS 3000
void realtime__presence_opened(realtime_t *rt, const char *user_id);
void realtime__presence_closed(realtime_t *rt, const char *user_id);
/* Starts and stops the presence thread; stop publishes the pending
 * offlines (and their last_seen) first. */
struct rt_presence *realtime__presence_start(realtime_t *rt);
void realtime__presence_stop(struct rt_presence *p);

/* Whether user_id may open one more real-time connection now (the connect
 * budget, realtime_connect_rate a minute). */
bool realtime__connect_admit(realtime_t *rt, const char *user_id);

/* The users who share a channel with user_id (itself included), from the
 * user's own memberships: sorted, malloc'd; *n set. NULL when none or out
 * of memory. */
char (*realtime__channel_peers(store_t *s, const char *user_id, size_t *n))[STORE_ID_MAX];

/* ---- the service (realtime.c) -------------------------------------------- */

struct ws_loop;
struct sse_hub;

struct realtime {
    parley_app_t *app;
    realtime_call_fn call; /* runs a request through the router (send_message) */
    void *call_ctx;
    rt_bus_t *bus;
    struct ws_loop *ws;
    struct sse_hub *sse;
    struct rt_presence *presence;
    rt_budgets_t *connects;   /* connects a minute per user */
    rt_budgets_t *typing;     /* typing events a minute per user */
};

/* What a real-time request asked for in its URL and headers. */
typedef struct rt_request {
    struct MHD_Connection *conn;
    const char *request_id;
    uint64_t since;        /* resume point; valid when has_since */
    bool has_since;
    ipnet_t addr;          /* the client's address (http_client_ip); family 0: unknown */
} rt_request_t;

/* Whether an admin has blocked addr since the connection opened (the
 * store's blocked addresses, by the clock): live connections check it with
 * their login, and end (IP_BLOCKED) when it holds. */
bool realtime__addr_blocked(realtime_t *rt, const ipnet_t *addr);

/* websocket.c */
struct ws_loop *realtime__ws_loop_start(realtime_t *rt, char *err, size_t err_size);
void realtime__ws_loop_wake(struct ws_loop *loop);
void realtime__ws_loop_stop(struct ws_loop *loop);  /* closes every WebSocket; idempotent */
void realtime__ws_loop_free(struct ws_loop *loop);
unsigned realtime__ws_loop_open_count(struct ws_loop *loop);
enum MHD_Result realtime__ws_accept(realtime_t *rt, const rt_request_t *rq, int *status);

/* sse.c */
struct sse_hub *realtime__sse_hub_new(realtime_t *rt);
void realtime__sse_hub_wake(struct sse_hub *hub);
void realtime__sse_hub_tick(struct sse_hub *hub);
void realtime__sse_hub_stop(struct sse_hub *hub);
void realtime__sse_hub_free(struct sse_hub *hub);
/* Event streams open now. */
unsigned realtime__sse_hub_count(struct sse_hub *hub);
enum MHD_Result realtime__sse_accept(realtime_t *rt, const rt_request_t *rq, int *status);

/* The credentials a real-time request carries: the Authorization header, else
 * X-API-Key, else ?token= (browsers cannot set headers on a WebSocket or an
 * EventSource). NULL when none. */
const char *realtime__request_credentials(struct MHD_Connection *conn);

/*
 * A real-time request that carries no other credentials, authenticated by
 * the browser's session cookie (handshake.c). The Origin is checked first:
 * it must be the server's own or one of cors_origins
 * (http_origin_trusted). Without an Origin, `origin_required` (WebSocket:
 * browsers always send one) refuses; otherwise (an event stream: a browser
 * sends none on a same-origin GET) it passes unless Sec-Fetch-Site says the
 * request is cross-site or same-site. Returns:
 *  RT_NO_COOKIE (-2) no session cookie: nothing done;
 *  -1   authenticated: c is the session's user (c->expires_ms 0: the
 *       session's end, a logout or a ban is seen by principal_still_valid);
 *  >=0  the http_error to answer (INSUFFICIENT_PERMISSIONS for the Origin,
 *       TOKEN_INVALID, ACCOUNT_BANNED), with *message.
 */
#define RT_NO_COOKIE (-2)
int realtime__cookie_authenticate(parley_app_t *app, struct MHD_Connection *conn,
                                  bool origin_required, rt_client_t *c, const char **message);

/* Answers a JSON error (docs/api.md) from the gate, before any handler. */
enum MHD_Result realtime__reply_error(struct MHD_Connection *conn, const char *request_id,
                               enum http_error err, const char *message, int *status);

#endif
