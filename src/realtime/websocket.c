/*
 * WebSockets (GET /api/v1/ws): the handshake, and one epoll thread that owns
 * every upgraded socket.
 *
 * Why not ulfius's WebSockets: Debian's ulfius 2.7.13 gives each socket its
 * own thread polling every 50 ms, corrupts its heap under connect/disconnect
 * churn, sends partial frames to slow readers while reporting success, and
 * keeps every message by default (docs/architecture.md, "Real time", has the
 * measurements). Here libmicrohttpd's own upgrade (MHD_create_response_for_
 * upgrade) hands over the socket once the 101 is sent; libwslay does the
 * RFC 6455 framing (masking, fragments, control frames, UTF-8 checks, the
 * close handshake) on a non-blocking socket, resuming a half-written frame
 * where it stopped; and this file runs the connections:
 *   - one thread, one epoll set: a connection costs a struct, a wslay
 *     context and its queue, not a thread;
 *   - each connection has a cursor into the event ring (bus.c); on a wake-up
 *     the loop queues every event past the cursor that the user may see, so
 *     a resume and live delivery are the same code, in order, exactly once;
 *   - a connection whose outbound queue passes ws_queue_bytes is a slow
 *     consumer: nothing more is queued, a close frame (1008) follows the
 *     frames already queued (wslay never cuts into a frame), and a client
 *     that makes no progress reading for ws_close_grace (5 s) is reset (never a
 *     stream that ends inside a frame);
 *   - send_message runs POST /api/v1/messages through the router on a small
 *     pool of worker threads (it waits for the log's fsync, which the loop
 *     must never do); the answer comes back to the loop as an ack frame
 *     (a muted account's is the router's 403 ACCOUNT_MUTED, and its
 *     typing_start is refused here with the same code);
 *   - a tick (every TICK_MS) sends pings, closes idle, unauthenticated or
 *     logged-out connections, expires typing indicators and drops clients
 *     that never finished a close.
 * Only the loop thread touches a connection's wslay context.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <orcania.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "internal.h"
#include "parley/access.h"
#include "parley/auth.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/log.h"

#define TICK_MS 250
#define AUTH_TIMEOUT_NS (5LL * 1000000000)
#define SESSION_CHECK_NS (1LL * 1000000000)
#define TYPING_TTL_NS (8LL * 1000000000)
#define MAX_JOBS_PER_CONN 8
#define N_WORKERS 4
#define FETCH_BATCH 64
#define CLOSE_AUTH 4001
#define CLOSE_BLOCKED 4003
#define CLOSE_TOO_MANY 4029
/* Bytes read from one connection per wake-up, so that one flooding socket
 * cannot keep the loop from the others (epoll is level-triggered: what is
 * left is read on the next round). */
#define READ_PER_WAKE (64 * 1024)

typedef struct ws_conn ws_conn_t;

typedef struct ws_job {
    struct ws_job *next;
    ws_conn_t *conn;
    principal_t who;          /* ids only: the handler loads the user */
    json_t *ref;              /* the client's "ref", echoed; may be NULL */
    json_t *body;
    int status;               /* the answer */
    json_t *answer;
} ws_job_t;

struct ws_conn {
    ws_conn_t *prev, *next;
    /* (the fields a pass over every connection reads, in the first cache line) */
    bool started;             /* authenticated and announced (ready, presence) */
    bool closing;             /* closing: nothing more is queued but the close */
    bool gone;                /* finished; freed when its jobs come back */
    struct ws_loop *loop;
    int fd;
    struct MHD_UpgradeResponseHandle *urh;
    wslay_event_context_ptr ws;
    char *preread;            /* bytes the client sent right after its handshake */
    size_t preread_len, preread_off;
    rt_client_t client;
    char request_id[HTTP_REQUEST_ID_MAX];
    bool has_since;
    uint64_t since;
    ipnet_t addr;             /* the client's address, for blocks made later */
    bool close_queued;        /* the close frame is in wslay's queue */
    uint16_t close_code;
    char close_reason[64];
    bool peer_gone;           /* the socket failed or reached EOF */
    int64_t opened_ns, last_heard_ns, last_ping_ns, close_deadline_ns, next_check_ns;
    uint32_t interest;        /* the epoll events asked for */
    double tokens;            /* frame rate limit (token bucket) */
    int64_t tokens_ns;
    unsigned over_limit;      /* frames refused since the bucket was last full */
    bool rate_told;           /* the client was told of a dropped frame since */
    bool drop_msg;            /* a frame of the message being received was over the rate */
    bool flooded;             /* over the frame or queue budget: reset at once */
    size_t read_left;         /* bytes this wake-up may still read */
    unsigned jobs;            /* send_message jobs out */
    rt_outq_t out;            /* text frames to send (outq.c); wslay holds only control
                               * frames (pings, pongs, the close) */
    /* wslay's state as of the last call into it (ws_sync), so that a pass
     * over every connection does not touch every wslay context */
    bool ws_read;             /* wslay_event_want_read */
    bool ws_write;            /* wslay_event_want_write: control frames to send */
    bool ws_closed;           /* a close received or sent, or writing shut down */
    size_t ws_queued;         /* wslay_event_get_queued_msg_length */
};

/* Handed from the upgrade handler (a libmicrohttpd thread) to the loop. */
typedef struct ws_pending {
    ws_conn_t *conn;
    atomic_bool taken;
} ws_pending_t;

/* The events of one wake-up (loop_main), fetched from the ring once for
 * every connection whose cursor is where the round starts (every one that
 * kept up), each checked once against the message it shows
 * (realtime__event_current) rather than once per subscriber. */
typedef struct ws_round {
    uint64_t after;                 /* the events are seq after+1 .. after+n */
    size_t n;
    rt_event_t *ev[FETCH_BATCH];
    bool current[FETCH_BATCH];      /* false: not to be sent (deleted since) */
    char *frame[FETCH_BATCH];       /* the frame to send: the event's, or */
    size_t frame_len[FETCH_BATCH];
    bool owned[FETCH_BATCH];        /* rendered again (edited since): freed after */
} ws_round_t;

typedef struct typing_entry {
    char user_id[STORE_ID_MAX];
    char channel_id[STORE_ID_MAX];
    int64_t expires_ns;
} typing_entry_t;

struct ws_loop {
    realtime_t *rt;
    pthread_t thread;
    int epfd, wakefd;
    atomic_bool wake_pending;
    atomic_bool stopping;
    atomic_uint n_open;
    pthread_mutex_t lock;          /* incoming, done, ended */
    bool ended;                    /* the loop thread has returned */
    ws_conn_t *incoming;
    ws_job_t *done;
    ws_conn_t *conns;              /* the loop's own list */
    ws_round_t round;              /* the events of the wake-up being delivered */
    uint64_t delivered;            /* deliver_all reached every connection up to this seq */
    typing_entry_t *typing;
    size_t n_typing, cap_typing;
    /* send_message workers */
    pthread_t workers[N_WORKERS];
    pthread_mutex_t job_lock;
    pthread_cond_t job_cond;
    ws_job_t *job_head, *job_tail;
    bool workers_stop;
    /* settings */
    uint64_t max_frame;
    size_t queue_bytes;
    int64_t ping_ns, idle_ns;
    int64_t close_grace_ns; /* ws_close_grace: a closing peer's time to make progress */
    double rate;                   /* frames per second; 0 = unlimited */
};

/* ---- sending ------------------------------------------------------------ */

/* Reads wslay's state after a call into it (recv, send, a queued control
 * frame, a shutdown). */
static void ws_sync(ws_conn_t *c)
{
    wslay_event_context_ptr ws = c->ws;
    c->ws_read = wslay_event_want_read(ws);
    c->ws_write = wslay_event_want_write(ws);
    c->ws_closed = wslay_event_get_close_received(ws) || wslay_event_get_close_sent(ws) ||
                   !wslay_event_get_write_enabled(ws);
    c->ws_queued = wslay_event_get_queued_msg_length(ws);
}

/* Whether a text frame may be queued: not once the connection is closing,
 * nor once a close was received or sent (nothing may follow a close). */
static bool may_queue(ws_conn_t *c)
{
    return !c->closing && !c->gone && !c->flooded && !c->ws_closed;
}

/* Queues text the connection owns (malloc'd, taken over). */
static void queue_owned(ws_conn_t *c, char *text, size_t len)
{
    if (may_queue(c))
        realtime__outq_push_owned(&c->out, text, len);
    else
        free(text);
}

/* Queues an event's own frame, shared by reference. */
static void queue_event(ws_conn_t *c, rt_event_t *ev)
{
    if (may_queue(c))
        realtime__outq_push_event(&c->out, ev);
}

/* What the connection has queued to send, its frames and wslay's. */
static size_t queued_bytes(ws_conn_t *c)
{
    return c->out.bytes + c->ws_queued;
}

/* Sends {"type", "seq": cursor, "data"} (data stolen). */
static void send_frame(ws_conn_t *c, const char *type, json_t *data)
{
    json_t *frame = json_pack("{s:s, s:I, s:o}", "type", type, "seq",
                              (json_int_t)c->client.cursor, "data", data ? data : json_object());
    char *text = frame ? json_dumps(frame, JSON_COMPACT) : NULL;
    json_decref(frame);
    if (text)
        queue_owned(c, text, strlen(text));
}

/* Sends an error frame: data {code, message, details, ref}. `ref` not stolen. */
static void send_error(ws_conn_t *c, const char *code, const char *message, json_t *details,
                       json_t *ref)
{
    json_t *data = json_pack("{s:s, s:s, s:o}", "code", code, "message", message, "details",
                             details ? details : json_object());
    if (ref)
        json_object_set(data, "ref", ref);
    send_frame(c, "error", data);
}

/* Closes with code and reason once the frames already queued are out:
 * wslay sends control frames ahead of queued data, so the close frame is
 * queued only when the data queue is empty (see service()). */
static void start_close(ws_conn_t *c, uint16_t code, const char *reason)
{
    if (c->closing || c->gone)
        return;
    c->closing = true;
    c->close_code = code;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
    c->close_deadline_ns = clock_mono_ns() + c->loop->close_grace_ns;
}

/* ---- wslay callbacks -------------------------------------------------- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
    (void)flags;
    ws_conn_t *c = user;
    if (c->preread_off < c->preread_len) {
        size_t n = c->preread_len - c->preread_off;
        if (n > len)
            n = len;
        memcpy(buf, c->preread + c->preread_off, n);
        c->preread_off += n;
        return (ssize_t)n;
    }
    if (c->read_left == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > c->read_left)
        len = c->read_left;
    for (;;) {
        ssize_t r = recv(c->fd, buf, len, 0);
        if (r > 0) {
            c->last_heard_ns = clock_mono_ns();
            c->read_left -= (size_t)r;
            return r;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        c->peer_gone = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    ws_conn_t *c = user;
    int more = (flags & WSLAY_MSG_MORE) ? MSG_MORE : 0;
    for (;;) {
        ssize_t r = send(c->fd, data, len, MSG_NOSIGNAL | more);
        if (r >= 0) {
            /* A closing client that still reads gets its whole close:
             * the grace runs from its last progress. */
            if (c->closing && r > 0)
                c->close_deadline_ns = clock_mono_ns() + c->loop->close_grace_ns;
            return r;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        c->peer_gone = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
}

static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)ctx;
    (void)user;
    gnutls_rnd(GNUTLS_RND_NONCE, buf, len);
    return 0;
}

static void handle_text(ws_conn_t *c, const uint8_t *text, size_t len);
static bool service(ws_conn_t *c);

/* Token bucket: rate frames a second, bursts of twice that. False when the
 * frame is over the limit. */
static bool within_rate(ws_conn_t *c)
{
    struct ws_loop *loop = c->loop;
    if (loop->rate <= 0)
        return true;
    int64_t now = clock_mono_ns();
    double burst = loop->rate * 2;
    c->tokens += (double)(now - c->tokens_ns) / 1e9 * loop->rate;
    c->tokens_ns = now;
    if (c->tokens >= burst) {
        c->tokens = burst;
        c->over_limit = 0;
        c->rate_told = false;
    }
    if (c->tokens >= 1) {
        c->tokens -= 1;
        return true;
    }
    c->over_limit++;
    return false;
}

/* The peer is over its budget: nothing more is read or queued, and the
 * loop resets the socket at once (recv_some), which frees its queue (a
 * close frame would wait behind it). */
static void flood_stop(ws_conn_t *c)
{
    c->flooded = true;
    wslay_event_shutdown_read(c->ws);
    wslay_event_shutdown_write(c->ws);
    ws_sync(c);
}

/* Every frame the client sends (data, continuation, ping, pong, close)
 * counts here, when its header arrives: before wslay queues the pong of a
 * ping, so a ping flood meets the same budget as any frame. */
static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    ws_conn_t *c = user;
    if (c->flooded)
        return;
    if (c->out.bytes + wslay_event_get_queued_msg_length(ctx) > c->loop->queue_bytes) {
        RT_COUNT(slow_closed);
        flood_stop(c); /* sending while its answers pile up unread */
        return;
    }
    bool data = arg->opcode < 8;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        c->drop_msg = false; /* a new message */
    if (within_rate(c))
        return;
    if (c->over_limit > 10 * c->loop->rate + 20) {
        flood_stop(c);
        return;
    }
    if (data)
        c->drop_msg = true;
}

static void on_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                       void *user)
{
    (void)ctx;
    ws_conn_t *c = user;
    if (c->closing || c->flooded)
        return;
    bool data = arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME;
    if (data && c->drop_msg) {
        c->drop_msg = false;
        RT_COUNT(frames_dropped);
        if (!c->rate_told)
            send_error(c, "RATE_LIMIT_EXCEEDED",
                       "too many frames; this one was dropped (slow down)", NULL, NULL);
        c->rate_told = true;
        return;
    }
    if (arg->opcode == WSLAY_BINARY_FRAME)
        start_close(c, WSLAY_CODE_UNSUPPORTED_DATA,
                    "binary frames are not accepted; send JSON text");
    else if (arg->opcode == WSLAY_TEXT_FRAME)
        handle_text(c, arg->msg, arg->msg_length);
}

/* ---- the events --------------------------------------------------------- */

/* One event for a connection, its cursor moving past it: queued when the
 * user may see it (frame: what to send now, NULL for nothing; the event's
 * own frame goes by reference, another one as a copy). */
static void deliver_one(ws_conn_t *c, rt_event_t *ev, const char *frame, size_t frame_len)
{
    struct ws_loop *loop = c->loop;
    c->client.cursor = ev->seq;
    if (frame != NULL && realtime__client_sees(loop->rt->app->store, &c->client, ev)) {
        if (frame == ev->frame)
            queue_event(c, ev);
        else if (may_queue(c))
            realtime__outq_push_copy(&c->out, frame, frame_len);
        realtime__note_delivered(loop->rt, &c->client, ev);
    }
    if (queued_bytes(c) > loop->queue_bytes && !c->closing) {
        RT_COUNT(slow_closed);
        start_close(c, WSLAY_CODE_POLICY_VIOLATION,
                    "slow consumer: the client does not read its events");
    }
}

/* Fetches the events after `after` (at most FETCH_BATCH) into the round
 * and checks each once against its message. Nothing when the ring has
 * moved past `after`: each connection then finds that out by itself. */
static void round_fill(struct ws_loop *loop, uint64_t after)
{
    ws_round_t *r = &loop->round;
    store_t *s = loop->rt->app->store;
    bool lost;
    r->after = after;
    r->n = realtime__bus_fetch(loop->rt->bus, after, r->ev, FETCH_BATCH, &lost);
    for (size_t i = 0; i < r->n; i++) {
        const char *data;
        size_t data_len;
        r->current[i] = realtime__event_current(s, r->ev[i], &r->frame[i], &r->frame_len[i],
                                                &data, &data_len, &r->owned[i]);
    }
}

static void round_clear(struct ws_loop *loop)
{
    ws_round_t *r = &loop->round;
    for (size_t i = 0; i < r->n; i++) {
        if (r->current[i] && r->owned[i])
            free(r->frame[i]);
        realtime__event_release(r->ev[i]);
    }
    r->n = 0;
}

/* Queues every event past the cursor that the user may see: from the
 * round's events when the cursor is among them, else fetched for this
 * connection alone (one that resumed from further back). */
static void deliver(ws_conn_t *c, uint64_t last_seq)
{
    struct ws_loop *loop = c->loop;
    store_t *s = loop->rt->app->store;
    ws_round_t *round = &loop->round;
    while (c->started && !c->closing && c->client.cursor < last_seq) {
        if (round->n > 0 && c->client.cursor >= round->after &&
            c->client.cursor < round->after + round->n) {
            for (size_t i = (size_t)(c->client.cursor - round->after);
                 i < round->n && !c->closing; i++)
                deliver_one(c, round->ev[i], round->current[i] ? round->frame[i] : NULL,
                            round->frame_len[i]);
            continue;
        }
        rt_event_t *batch[FETCH_BATCH];
        bool lost;
        size_t n = realtime__bus_fetch(loop->rt->bus, c->client.cursor, batch, FETCH_BATCH, &lost);
        if (lost) {
            c->client.cursor = realtime__bus_last_seq(loop->rt->bus);
            RT_COUNT(resyncs);
            send_error(c, "RESYNC_REQUIRED",
                       "events since this connection's resume point are no longer kept; "
                       "reload over HTTP",
                       NULL, NULL);
            return;
        }
        if (n == 0)
            return;
        for (size_t i = 0; i < n; i++) {
            rt_event_t *ev = batch[i];
            char *frame;
            size_t frame_len, data_len;
            const char *data;
            bool owned;
            if (!c->closing) {
                bool current = realtime__event_current(s, ev, &frame, &frame_len, &data,
                                                       &data_len, &owned);
                deliver_one(c, ev, current ? frame : NULL, frame_len);
                if (current && owned)
                    free(frame);
            }
            realtime__event_release(ev);
        }
    }
}

/* A connection still behind last_seq (the first in the list: they are
 * usually all at the same point), or NULL when none is. */
static ws_conn_t *first_behind(struct ws_loop *loop, uint64_t last_seq)
{
    for (ws_conn_t *c = loop->conns; c; c = c->next)
        if (c->started && !c->closing && c->client.cursor < last_seq)
            return c;
    return NULL;
}

/* Delivers the events up to last_seq to every connection: rounds of at most
 * FETCH_BATCH events after the cursor of a connection still behind, each
 * connection's frames written as soon as they are queued. One pass over the
 * connections a round: each walk of the list costs a cache miss or more per
 * connection, so nothing walks it when every one is known to be caught up
 * (loop->delivered: each started connection's cursor is at least that, as
 * a new one starts at the newest event and delivers to it itself). */
static void deliver_all(struct ws_loop *loop, uint64_t last_seq)
{
    if (last_seq <= loop->delivered)
        return;
    ws_conn_t *behind = first_behind(loop, last_seq);
    while (behind != NULL) {
        round_fill(loop, behind->client.cursor);
        uint64_t upto = loop->round.n > 0 ? loop->round.after + loop->round.n : last_seq;
        behind = NULL;
        for (ws_conn_t *c = loop->conns, *next; c; c = next) {
            next = c->next;
            deliver(c, upto);
            if (service(c) && behind == NULL && c->started && !c->closing &&
                c->client.cursor < last_seq)
                behind = c;
        }
        round_clear(loop);
    }
    loop->delivered = last_seq;
}

/* The connection is authenticated: announce it and start its stream. */
static void start_stream(ws_conn_t *c)
{
    struct ws_loop *loop = c->loop;
    c->started = true;
    c->next_check_ns = clock_mono_ns() + SESSION_CHECK_NS;
    uint64_t last = realtime__bus_last_seq(loop->rt->bus);
    bool resuming = c->has_since;
    c->client.cursor = resuming ? c->since : last;
    realtime__presence_opened(loop->rt, c->client.who.user.id);
    json_t *data = json_pack("{s:s, s:b, s:I, s:I}", "user_id", c->client.who.user.id,
                             "resumed", resuming, "heartbeat_interval",
                             (json_int_t)(loop->ping_ns / 1000000000), "max_frame_bytes",
                             (json_int_t)loop->max_frame);
    uint64_t cursor = c->client.cursor;
    /* "seq" of ready is the resume point the stream starts from. */
    c->client.cursor = resuming && cursor > last ? last : cursor;
    send_frame(c, "ready", data);
    c->client.cursor = cursor;
    deliver(c, realtime__bus_last_seq(loop->rt->bus));
}

/* ---- client frames ------------------------------------------------------ */

static const char *error_code(int err)
{
    return http_error_code((enum http_error)err);
}

static void do_auth(ws_conn_t *c, json_t *msg, json_t *ref)
{
    const char *token = json_string_value(json_object_get(msg, "token"));
    if (token == NULL || token[0] == '\0') {
        send_error(c, "VALIDATION_ERROR", "auth needs a token: \"Bearer <access token>\"",
                   json_pack("{s:s}", "field", "token"), ref);
        if (!c->started)
            start_close(c, CLOSE_AUTH, "authentication failed");
        return;
    }
    char previous[STORE_ID_MAX] = "";
    if (c->client.authenticated)
        snprintf(previous, sizeof(previous), "%s", c->client.who.user.id);
    rt_client_t probe;
    memset(&probe, 0, sizeof(probe));
    int err = realtime__client_authenticate(c->loop->rt->app, &probe, token);
    if (err < 0 && previous[0] && strcmp(previous, probe.who.user.id) != 0) {
        realtime__client_clear(&probe);
        send_error(c, "TOKEN_INVALID", "a connection cannot change users", NULL, ref);
        start_close(c, CLOSE_AUTH, "a connection cannot change users");
        return;
    }
    if (err >= 0) {
        send_error(c, error_code(err),
                   err == HTTP_ERR_TOKEN_EXPIRED ? "the access token has expired"
                                                 : "the credentials are not valid",
                   NULL, ref);
        if (!c->started)
            start_close(c, CLOSE_AUTH, "authentication failed");
        return;
    }
    if (!c->started && !realtime__connect_admit(c->loop->rt, probe.who.user.id)) {
        realtime__client_clear(&probe);
        send_error(c, "RATE_LIMIT_EXCEEDED",
                   "too many real-time connections of this user this minute", NULL, ref);
        start_close(c, CLOSE_TOO_MANY, "too many connections");
        return;
    }
    if (c->client.authenticated)
        principal_clear(&c->client.who);
    c->client.who = probe.who;
    c->client.authenticated = true;
    c->client.expires_ms = probe.expires_ms;
    if (!c->started)
        start_stream(c);
    else
        send_frame(c, "authenticated", ref ? json_pack("{s:O}", "ref", ref) : NULL);
}

/* The channels of a subscribe/unsubscribe frame: "channels" (1-100
 * strings, each an id or a name) or "channel_id"/"channel" (one). NULL
 * after answering. */
static json_t *channel_list(ws_conn_t *c, json_t *msg, json_t *ref)
{
    json_t *list = json_object_get(msg, "channels");
    json_t *one = json_object_get(msg, "channel_id");
    if (one == NULL)
        one = json_object_get(msg, "channel");
    if (list == NULL && json_is_string(one) && json_string_length(one) > 0 &&
        json_string_length(one) < CHAT_NAME_MAX)
        return json_pack("[O]", one);
    bool ok = json_is_array(list) && json_array_size(list) >= 1 && json_array_size(list) <= 100;
    size_t i;
    json_t *v;
    if (ok) {
        json_array_foreach(list, i, v) {
            size_t len = json_string_length(v);
            ok &= json_is_string(v) && len > 0 && len < CHAT_NAME_MAX;
        }
    }
    if (!ok) {
        send_error(c, "VALIDATION_ERROR", "channels must be a list of 1-100 channel ids or names",
                   json_pack("{s:s}", "field", "channels"), ref);
        return NULL;
    }
    return json_incref(list);
}

static void do_subscribe(ws_conn_t *c, json_t *msg, json_t *ref, bool subscribe)
{
    json_t *list = channel_list(c, msg, ref);
    if (list == NULL)
        return;
    store_t *s = c->loop->rt->app->store;
    size_t i;
    json_t *v;
    /* Names become ids, all or nothing: an unknown name and one of a channel
     * the user may not read answer alike (no existence leak). Unsubscribing
     * mutes an id as given when it names nothing readable. */
    json_t *ids = json_array();
    json_array_foreach(list, i, v) {
        char id[STORE_ID_MAX];
        if (realtime__channel_resolve(s, &c->client, json_string_value(v), id)) {
            json_array_append_new(ids, json_string(id));
        } else if (subscribe || json_string_length(v) >= STORE_ID_MAX) {
            send_error(c, "RESOURCE_NOT_FOUND", "there is no such channel",
                       json_pack("{s:O}", "channel_id", v), ref);
            json_decref(ids);
            json_decref(list);
            return;
        } else {
            json_array_append(ids, v);
        }
    }
    json_decref(list);
    int rc = 0;
    json_array_foreach(ids, i, v) {
        const char *id = json_string_value(v);
        int r = subscribe ? realtime__client_subscribe(s, &c->client, id)
                          : realtime__client_unsubscribe(&c->client, id);
        if (r != 0)
            rc = r;
    }
    if (rc == -2)
        send_error(c, "VALIDATION_ERROR", "a connection holds at most 1000 subscriptions", NULL,
                   ref);
    json_t *data = json_pack("{s:o}", "channels", ids);
    if (ref)
        json_object_set(data, "ref", ref);
    send_frame(c, subscribe ? "subscribed" : "unsubscribed", data);
}

static typing_entry_t *typing_find(struct ws_loop *loop, const char *user_id,
                                   const char *channel_id)
{
    for (size_t i = 0; i < loop->n_typing; i++)
        if (strcmp(loop->typing[i].user_id, user_id) == 0 &&
            strcmp(loop->typing[i].channel_id, channel_id) == 0)
            return &loop->typing[i];
    return NULL;
}

static void publish_typing(struct ws_loop *loop, const char *user_id, const char *channel_id,
                           bool is_typing)
{
    realtime__bus_publish(loop->rt->bus, "typing", channel_id, NULL, NULL, 0,
                   json_pack("{s:s, s:s, s:b}", "channel_id", channel_id, "user_id", user_id,
                             "is_typing", is_typing));
}

static void typing_remove(struct ws_loop *loop, typing_entry_t *t)
{
    size_t i = (size_t)(t - loop->typing);
    loop->typing[i] = loop->typing[--loop->n_typing];
}

static void do_typing(ws_conn_t *c, json_t *msg, json_t *ref, bool start)
{
    struct ws_loop *loop = c->loop;
    const char *channel_id = json_string_value(json_object_get(msg, "channel_id"));
    if (channel_id == NULL || channel_id[0] == '\0' || strlen(channel_id) >= STORE_ID_MAX) {
        send_error(c, "VALIDATION_ERROR", "channel_id must be a channel id",
                   json_pack("{s:s}", "field", "channel_id"), ref);
        return;
    }
    const char *me = c->client.who.user.id;
    if (!c->client.who.can_write) {
        send_error(c, "INSUFFICIENT_PERMISSIONS", "these credentials may read, not write",
                   json_pack("{s:s}", "channel_id", channel_id), ref);
        return;
    }
    channel_access_t a;
    channel_access_get(loop->rt->app->store, &c->client.who.user, channel_id, &a);
    bool can_see = a.can_read, can_post = a.can_post;
    channel_access_clear(&a);
    if (!can_see) {
        send_error(c, "RESOURCE_NOT_FOUND", "there is no such channel",
                   json_pack("{s:s}", "channel_id", channel_id), ref);
        return;
    }
    if (!can_post) {
        send_error(c, "INSUFFICIENT_PERMISSIONS", "you may not post in this channel",
                   json_pack("{s:s}", "channel_id", channel_id), ref);
        return;
    }
    store_user_t now;
    bool muted = false;
    int64_t until = 0;
    if (start && store_user_get(loop->rt->app->store, me, &now)) {
        muted = principal_user_muted(&now, clock_wall_ms());
        until = now.muted_until;
        store_user_clear(&now);
    }
    if (muted) { /* a muted account may stop typing, not start */
        send_error(c, "ACCOUNT_MUTED", "this account is muted: it may read but not post",
                   json_pack("{s:s, s:o}", "channel_id", channel_id, "until", time_json(until)),
                   ref);
        return;
    }
    typing_entry_t *t = typing_find(loop, me, channel_id);
    if (start && t != NULL) {
        t->expires_ns = clock_mono_ns() + TYPING_TTL_NS;
        return;
    }
    if ((start || t != NULL) &&
        !realtime__budget_take(loop->rt->typing, me, RT_TYPING_PER_MINUTE, clock_mono_ns())) {
        send_error(c, "RATE_LIMIT_EXCEEDED", "too many typing events this minute",
                   json_pack("{s:s}", "channel_id", channel_id), ref);
        return; /* a typing_start left to expire by itself */
    }
    if (start) {
        if (loop->n_typing == loop->cap_typing) {
            size_t cap = loop->cap_typing ? loop->cap_typing * 2 : 64;
            void *grown = realloc(loop->typing, cap * sizeof(*loop->typing));
            if (grown == NULL)
                return;
            loop->typing = grown;
            loop->cap_typing = cap;
        }
        t = &loop->typing[loop->n_typing++];
        snprintf(t->user_id, sizeof(t->user_id), "%s", me);
        snprintf(t->channel_id, sizeof(t->channel_id), "%s", channel_id);
        t->expires_ns = clock_mono_ns() + TYPING_TTL_NS;
        publish_typing(loop, me, channel_id, true);
    } else if (t != NULL) {
        typing_remove(loop, t);
        publish_typing(loop, me, channel_id, false);
    }
}

static void do_send_message(ws_conn_t *c, json_t *msg, json_t *ref)
{
    struct ws_loop *loop = c->loop;
    json_t *data = json_object_get(msg, "data");
    if (!json_is_object(data)) {
        send_error(c, "VALIDATION_ERROR",
                   "send_message needs data: {channel_id, content, ...} as for POST /messages",
                   json_pack("{s:s}", "field", "data"), ref);
        return;
    }
    if (!c->client.who.can_write) {
        send_error(c, "INSUFFICIENT_PERMISSIONS", "these credentials may read, not write", NULL,
                   ref);
        return;
    }
    if (c->jobs >= MAX_JOBS_PER_CONN) {
        send_error(c, "RATE_LIMIT_EXCEEDED", "too many messages waiting for their answer", NULL,
                   ref);
        return;
    }
    /* The channel by name (data.channel, or a channel_id that is a name):
     * POST /messages gets the id, and never the extra field. */
    json_t *named = json_object_get(data, "channel");
    json_t *given = json_object_get(data, "channel_id");
    json_t *body = json_deep_copy(data);
    if (body == NULL) {
        send_error(c, "INTERNAL_SERVER_ERROR", "out of memory", NULL, ref);
        return;
    }
    if (named != NULL || json_is_string(given)) {
        const char *field = named != NULL ? "channel" : "channel_id";
        json_t *v = named != NULL ? named : given;
        char id[STORE_ID_MAX];
        size_t len = json_string_length(v);
        if (named != NULL && given != NULL) {
            send_error(c, "VALIDATION_ERROR", "give channel or channel_id, not both",
                       json_pack("{s:s}", "field", "channel"), ref);
            json_decref(body);
            return;
        }
        if (!json_is_string(v) || len == 0 || len >= CHAT_NAME_MAX) {
            send_error(c, "VALIDATION_ERROR", "channel must be a channel name",
                       json_pack("{s:s}", "field", field), ref);
            json_decref(body);
            return;
        }
        if (realtime__channel_resolve(loop->rt->app->store, &c->client, json_string_value(v),
                                      id)) {
            json_object_del(body, "channel");
            json_object_set_new(body, "channel_id", json_string(id));
        } else if (named != NULL) {
            send_error(c, "RESOURCE_NOT_FOUND", "there is no such channel",
                       json_pack("{s:O}", "channel", v), ref);
            json_decref(body);
            return;
        }
        /* an unresolved channel_id goes on: POST /messages answers it */
    }
    ws_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        json_decref(body);
        send_error(c, "INTERNAL_SERVER_ERROR", "out of memory", NULL, ref);
        return;
    }
    job->conn = c;
    memcpy(job->who.user.id, c->client.who.user.id, STORE_ID_MAX);
    memcpy(job->who.session_id, c->client.who.session_id, STORE_ID_MAX);
    memcpy(job->who.api_key_hash, c->client.who.api_key_hash, sizeof(job->who.api_key_hash));
    job->who.via_api_key = c->client.who.via_api_key;
    job->who.can_read = c->client.who.can_read;
    job->who.can_write = c->client.who.can_write;
    job->ref = ref ? json_incref(ref) : NULL;
    job->body = body;
    c->jobs++;
    pthread_mutex_lock(&loop->job_lock);
    if (loop->job_tail)
        loop->job_tail->next = job;
    else
        loop->job_head = job;
    loop->job_tail = job;
    pthread_cond_signal(&loop->job_cond);
    pthread_mutex_unlock(&loop->job_lock);
}

static void handle_text(ws_conn_t *c, const uint8_t *text, size_t len)
{
    json_t *msg = NULL;
    enum http_error err;
    char why[256];
    if (len == 0 || http_parse_json_body("application/json", text, len, false, &msg, &err, why,
                                         sizeof(why)) != 0) {
        send_error(c, "BAD_REQUEST",
                   len == 0 ? "a frame must be a JSON object" : why, NULL, NULL);
        return;
    }
    json_t *ref = json_object_get(msg, "ref");
    if (ref && !json_is_string(ref) && !json_is_integer(ref))
        ref = NULL;
    if (ref && json_is_string(ref) && json_string_length(ref) > 128)
        ref = NULL;
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (type == NULL) {
        send_error(c, "VALIDATION_ERROR", "a frame needs a \"type\"",
                   json_pack("{s:s}", "field", "type"), ref);
    } else if (strcmp(type, "auth") == 0) {
        do_auth(c, msg, ref);
    } else if (!c->client.authenticated) {
        send_error(c, "AUTHENTICATION_REQUIRED",
                   "the first frame must be {\"type\":\"auth\",\"token\":\"Bearer ...\"}", NULL,
                   ref);
        start_close(c, CLOSE_AUTH, "authentication required");
    } else if (strcmp(type, "ping") == 0) {
        send_frame(c, "pong", ref ? json_pack("{s:O}", "ref", ref) : NULL);
    } else if (strcmp(type, "subscribe") == 0 || strcmp(type, "unsubscribe") == 0) {
        do_subscribe(c, msg, ref, type[0] == 's');
    } else if (strcmp(type, "typing_start") == 0 || strcmp(type, "typing_stop") == 0) {
        do_typing(c, msg, ref, strcmp(type, "typing_start") == 0);
    } else if (strcmp(type, "send_message") == 0) {
        do_send_message(c, msg, ref);
    } else {
        send_error(c, "VALIDATION_ERROR", "unknown frame type",
                   json_pack("{s:s, s:s}", "field", "type", "type", type), ref);
    }
    json_decref(msg);
}

/* ---- send_message workers ------------------------------------------------ */

static void *worker_main(void *arg)
{
    struct ws_loop *loop = arg;
    for (;;) {
        pthread_mutex_lock(&loop->job_lock);
        while (loop->job_head == NULL && !loop->workers_stop)
            pthread_cond_wait(&loop->job_cond, &loop->job_lock);
        ws_job_t *job = loop->job_head;
        if (job == NULL) {
            pthread_mutex_unlock(&loop->job_lock);
            return NULL;
        }
        loop->job_head = job->next;
        if (loop->job_head == NULL)
            loop->job_tail = NULL;
        pthread_mutex_unlock(&loop->job_lock);

        job->next = NULL;
        job->status = loop->rt->call(loop->rt->call_ctx, "POST", "/api/v1/messages", job->body,
                                  &job->who, job->conn->request_id, &job->answer);
        pthread_mutex_lock(&loop->lock);
        job->next = loop->done;
        loop->done = job;
        pthread_mutex_unlock(&loop->lock);
        realtime__ws_loop_wake(loop);
    }
}

static void free_conn(ws_conn_t *c)
{
    realtime__client_clear(&c->client);
    realtime__outq_clear(&c->out);
    if (c->ws)
        wslay_event_context_free(c->ws);
    free(c->preread);
    free(c);
}

/* Queues a send_message's answer; returns its connection, or NULL when that
 * has finished (and may have been freed). */
static ws_conn_t *answer_job(ws_job_t *job)
{
    ws_conn_t *c = job->conn;
    c->jobs--;
    if (c->gone) {
        if (c->jobs == 0)
            free_conn(c);
        c = NULL;
    } else if (job->status == 200 || job->status == 201) {
        json_t *data = json_pack("{s:i, s:O}", "status", job->status, "message",
                                 job->answer ? job->answer : json_null());
        if (job->ref)
            json_object_set(data, "ref", job->ref);
        send_frame(c, "ack", data);
    } else {
        json_t *e = json_object_get(job->answer, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *message = json_string_value(json_object_get(e, "message"));
        json_t *details = json_object_get(e, "details");
        send_error(c, code ? code : "INTERNAL_SERVER_ERROR", message ? message : "the post failed",
                   details ? json_incref(details) : NULL, job->ref);
    }
    json_decref(job->ref);
    json_decref(job->body);
    json_decref(job->answer);
    free(job);
    return c;
}

/* ---- the loop ----------------------------------------------------------- */

void realtime__ws_loop_wake(struct ws_loop *loop)
{
    if (atomic_exchange(&loop->wake_pending, true))
        return;
    uint64_t one = 1;
    ssize_t w = write(loop->wakefd, &one, sizeof(one));
    (void)w;
}

unsigned realtime__ws_loop_open_count(struct ws_loop *loop)
{
    return loop ? atomic_load(&loop->n_open) : 0;
}

/* Whether something waits to be written: wslay's control frames, or frames
 * of the connection's queue that may still go (the rest of one begun, or
 * any while no close was sent or received). */
static bool want_write(ws_conn_t *c)
{
    if (c->ws_write)
        return true;
    if (c->out.n == 0 || c->flooded)
        return false;
    return realtime__outq_begun(&c->out) || !c->ws_closed;
}

/* Writes what may go now: the rest of a frame begun first; then wslay's
 * control frames, which go only between whole frames; then the queue,
 * unless a close was sent or received (what is not begun is dropped). */
static void send_pending(ws_conn_t *c)
{
    if (realtime__outq_begun(&c->out) && realtime__outq_flush(&c->out, c->fd, true) < 0) {
        c->peer_gone = true;
        return;
    }
    if (realtime__outq_begun(&c->out))
        return; /* the socket is full */
    if (c->ws_write) {
        int r = wslay_event_send(c->ws);
        ws_sync(c);
        if (r != 0) {
            c->peer_gone = true;
            return;
        }
    }
    if (c->ws_write)
        return; /* a control frame is half written (or the socket is full) */
    if (c->ws_closed) {
        realtime__outq_drop_unbegun(&c->out);
        return;
    }
    ssize_t r = realtime__outq_flush(&c->out, c->fd, false);
    if (r < 0)
        c->peer_gone = true;
    else if (r > 0 && c->closing) /* a closing client that still reads gets its whole close */
        c->close_deadline_ns = clock_mono_ns() + c->loop->close_grace_ns;
}

static void set_interest(ws_conn_t *c)
{
    uint32_t want = 0;
    if (c->ws_read)
        want |= EPOLLIN;
    if (want_write(c))
        want |= EPOLLOUT;
    if (want == c->interest)
        return;
    struct epoll_event ev = {.events = want | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->interest = want;
}

/* Removes a connection for good: the socket goes back to libmicrohttpd,
 * which closes it. */
static void finish(ws_conn_t *c)
{
    struct ws_loop *loop = c->loop;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        loop->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub(&loop->n_open, 1);
    if (c->started)
        realtime__presence_closed(loop->rt, c->client.who.user.id);
    c->gone = true;
    if (c->jobs == 0)
        free_conn(c);
}

/* Sends what is queued and decides whether the connection is over. Returns
 * false when it was finished (and may be freed). */
static bool service(ws_conn_t *c)
{
    if (!c->peer_gone && !c->flooded)
        send_pending(c);
    if (c->closing && !c->close_queued && !c->peer_gone && c->out.n == 0 && !c->ws_write) {
        c->close_queued = true;
        wslay_event_queue_close(c->ws, c->close_code, (const uint8_t *)c->close_reason,
                                strlen(c->close_reason));
        if (wslay_event_send(c->ws) != 0)
            c->peer_gone = true;
        ws_sync(c);
    }
    bool over = c->peer_gone || (!c->ws_read && !want_write(c));
    if (over) {
        finish(c);
        return false;
    }
    set_interest(c);
    return true;
}

/* Reads what the client sent, at most READ_PER_WAKE bytes; a flooder is
 * reset (SO_LINGER 0: the kernel drops what it holds for it too) and
 * finished by the next service(). */
static void recv_some(ws_conn_t *c)
{
    c->read_left = READ_PER_WAKE;
    if (c->ws_read && wslay_event_recv(c->ws) != 0)
        c->peer_gone = true;
    ws_sync(c);
    if (c->flooded && !c->peer_gone) {
        struct linger reset = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
        log_warning("websocket %s: over the frame budget (ws_frame_rate %g/s) or the queue "
                    "budget (ws_queue_bytes %zu): reset",
                    c->request_id, c->loop->rate, c->loop->queue_bytes);
        c->peer_gone = true;
    }
}

static void adopt(struct ws_loop *loop, ws_conn_t *c)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    c->interest = EPOLLIN;
    int64_t now = clock_mono_ns();
    c->opened_ns = c->last_heard_ns = c->last_ping_ns = c->tokens_ns = now;
    c->tokens = loop->rate * 2;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
        free_conn(c);
        return;
    }
    c->next = loop->conns;
    if (loop->conns)
        loop->conns->prev = c;
    loop->conns = c;
    atomic_fetch_add(&loop->n_open, 1);
    if (c->client.authenticated)
        start_stream(c);
    if (c->preread_len > 0)
        recv_some(c);
    service(c);
}

static void tick(struct ws_loop *loop, int64_t now)
{
    for (size_t i = 0; i < loop->n_typing;) {
        typing_entry_t *t = &loop->typing[i];
        if (t->expires_ns <= now) {
            char user[STORE_ID_MAX], channel[STORE_ID_MAX];
            memcpy(user, t->user_id, sizeof(user));
            memcpy(channel, t->channel_id, sizeof(channel));
            typing_remove(loop, t);
            publish_typing(loop, user, channel, false);
        } else {
            i++;
        }
    }
    for (ws_conn_t *c = loop->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing) {
            if (now >= c->close_deadline_ns) {
                /* It stopped reading: drop it with a reset, which also
                 * frees what the kernel still holds for it, rather than
                 * end its stream inside a frame. */
                struct linger reset = {1, 0};
                setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
                c->peer_gone = true;
            }
        } else if (!c->client.authenticated && now - c->opened_ns > AUTH_TIMEOUT_NS) {
            send_error(c, "AUTHENTICATION_REQUIRED", "no auth frame came within 5 seconds", NULL,
                       NULL);
            start_close(c, CLOSE_AUTH, "authentication timeout");
        } else if (now - c->last_heard_ns > loop->idle_ns) {
            start_close(c, WSLAY_CODE_GOING_AWAY, "idle timeout");
        } else {
            if (c->started && now >= c->next_check_ns) {
                c->next_check_ns = now + SESSION_CHECK_NS;
                if (c->client.expires_ms != 0 && clock_wall_ms() >= c->client.expires_ms) {
                    send_error(c, "TOKEN_EXPIRED",
                               "the access token has expired: send {\"type\":\"auth\"} with "
                               "a fresh one before it does",
                               NULL, NULL);
                    start_close(c, CLOSE_AUTH, "token expired");
                } else if (realtime__addr_blocked(loop->rt, &c->addr)) {
                    send_error(c, "IP_BLOCKED", "requests from your address are blocked", NULL,
                               NULL);
                    start_close(c, CLOSE_BLOCKED, "address blocked");
                } else if (!principal_still_valid(loop->rt->app, &c->client.who)) {
                    /* still_valid refreshed the user when it could load it */
                    if (principal_user_banned(&c->client.who.user, clock_wall_ms())) {
                        send_error(c, "ACCOUNT_BANNED", "this account is banned", NULL, NULL);
                        start_close(c, CLOSE_AUTH, "account banned");
                    } else {
                        send_error(c, "TOKEN_INVALID",
                                   "the login behind this connection has ended", NULL, NULL);
                        start_close(c, CLOSE_AUTH, "the login has ended");
                    }
                }
            }
            if (!c->closing && now - c->last_ping_ns >= loop->ping_ns) {
                c->last_ping_ns = now;
                struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
                wslay_event_queue_msg(c->ws, &ping);
                ws_sync(c);
            }
        }
        service(c);
    }
    realtime__sse_hub_tick(loop->rt->sse);
}

static void *loop_main(void *arg)
{
    struct ws_loop *loop = arg;
    struct epoll_event events[256];
    int64_t next_tick = clock_mono_ns();
    bool stop_begun = false;
    int64_t stop_deadline = 0;
    for (;;) {
        int n = epoll_wait(loop->epfd, events, 256, TICK_MS);
        bool woken = false;
        for (int i = 0; i < n; i++) {
            ws_conn_t *c = events[i].data.ptr;
            if (c == NULL) {
                uint64_t v;
                ssize_t r = read(loop->wakefd, &v, sizeof(v));
                (void)r;
                atomic_store(&loop->wake_pending, false);
                woken = true;
                continue;
            }
            if (c->gone)
                continue;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
                bool reading = c->ws_read;
                if (reading)
                    recv_some(c);
                /* A hang-up ends it once all that came before is read. */
                bool all_read = !reading || c->read_left > 0;
                if (!c->peer_gone && ((events[i].events & EPOLLERR) ||
                                      (all_read && (events[i].events & EPOLLHUP)) ||
                                      (!reading && (events[i].events & EPOLLRDHUP))))
                    c->peer_gone = true;
            }
            service(c);
        }
        if (woken) {
            pthread_mutex_lock(&loop->lock);
            ws_conn_t *incoming = loop->incoming;
            loop->incoming = NULL;
            ws_job_t *done = loop->done;
            loop->done = NULL;
            pthread_mutex_unlock(&loop->lock);
            while (incoming) {
                ws_conn_t *c = incoming;
                incoming = c->next;
                c->next = c->prev = NULL;
                adopt(loop, c);
            }
            /* Oldest first: the list was built by pushing in front. */
            ws_job_t *ordered = NULL;
            while (done) {
                ws_job_t *j = done;
                done = j->next;
                j->next = ordered;
                ordered = j;
            }
            /* Events first: a post's message.created (published before its
             * handler returned) reaches the sender before its ack. */
            deliver_all(loop, realtime__bus_last_seq(loop->rt->bus));
            while (ordered) {
                ws_job_t *j = ordered;
                ordered = j->next;
                ws_conn_t *c = answer_job(j);
                if (c != NULL)
                    service(c);
            }
        }
        int64_t now = clock_mono_ns();
        if (atomic_load(&loop->stopping) && !stop_begun) {
            stop_begun = true;
            stop_deadline = now + 2LL * 1000000000;
            for (ws_conn_t *c = loop->conns; c; c = c->next)
                start_close(c, WSLAY_CODE_GOING_AWAY, "server shutting down");
            for (ws_conn_t *c = loop->conns, *next; c; c = next) {
                next = c->next;
                service(c);
            }
        }
        if (now >= next_tick) {
            next_tick = now + (int64_t)TICK_MS * 1000000;
            tick(loop, now);
        }
        if (stop_begun && (loop->conns == NULL || now >= stop_deadline)) {
            while (loop->conns)
                finish(loop->conns);
            return NULL;
        }
    }
}

/* Ends the first n send_message workers once the queue is empty. */
static void stop_workers(struct ws_loop *loop, int n)
{
    pthread_mutex_lock(&loop->job_lock);
    loop->workers_stop = true;
    pthread_cond_broadcast(&loop->job_cond);
    pthread_mutex_unlock(&loop->job_lock);
    for (int i = 0; i < n; i++)
        pthread_join(loop->workers[i], NULL);
}

struct ws_loop *realtime__ws_loop_start(realtime_t *rt, char *err, size_t err_size)
{
    struct ws_loop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    const parley_config_t *cfg = rt->app->config;
    loop->rt = rt;
    loop->max_frame = cfg->ws_max_frame_bytes;
    loop->queue_bytes = cfg->ws_queue_bytes;
    loop->ping_ns = (int64_t)cfg->ws_ping_interval * 1000000000;
    loop->idle_ns = (int64_t)cfg->ws_idle_timeout * 1000000000;
    loop->close_grace_ns = (int64_t)cfg->ws_close_grace * 1000000000;
    loop->rate = cfg->ws_frame_rate;
    pthread_mutex_init(&loop->lock, NULL);
    pthread_mutex_init(&loop->job_lock, NULL);
    pthread_cond_init(&loop->job_cond, NULL);
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (loop->epfd < 0 || loop->wakefd < 0 ||
        epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) != 0) {
        snprintf(err, err_size, "cannot create the WebSocket loop: %s", strerror(errno));
        goto fail;
    }
    for (int i = 0; i < N_WORKERS; i++) {
        if (pthread_create(&loop->workers[i], NULL, worker_main, loop) != 0) {
            snprintf(err, err_size, "cannot start the WebSocket workers");
            stop_workers(loop, i);
            goto fail;
        }
    }
    if (pthread_create(&loop->thread, NULL, loop_main, loop) != 0) {
        snprintf(err, err_size, "cannot start the WebSocket loop");
        stop_workers(loop, N_WORKERS);
        goto fail;
    }
    return loop;
fail:
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->wakefd >= 0)
        close(loop->wakefd);
    free(loop);
    return NULL;
}

void realtime__ws_loop_stop(struct ws_loop *loop)
{
    if (loop == NULL || atomic_exchange(&loop->stopping, true))
        return;
    realtime__ws_loop_wake(loop);
    pthread_join(loop->thread, NULL);
    stop_workers(loop, N_WORKERS);
    /* Answers that came back after the loop ended, and sockets upgraded
     * while it was ending. */
    pthread_mutex_lock(&loop->lock);
    loop->ended = true;
    while (loop->done) {
        ws_job_t *j = loop->done;
        loop->done = j->next;
        answer_job(j);
    }
    while (loop->incoming) {
        ws_conn_t *c = loop->incoming;
        loop->incoming = c->next;
        MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
        free_conn(c);
    }
    pthread_mutex_unlock(&loop->lock);
}

void realtime__ws_loop_free(struct ws_loop *loop)
{
    if (loop == NULL)
        return;
    realtime__ws_loop_stop(loop);
    close(loop->epfd);
    close(loop->wakefd);
    free(loop->typing);
    pthread_mutex_destroy(&loop->lock);
    pthread_mutex_destroy(&loop->job_lock);
    pthread_cond_destroy(&loop->job_cond);
    free(loop);
}

/* ---- the handshake ------------------------------------------------------ */

static void upgraded(void *cls, struct MHD_Connection *connection, void *con_cls,
                     const char *extra_in, size_t extra_in_size, MHD_socket sock,
                     struct MHD_UpgradeResponseHandle *urh)
{
    (void)connection;
    (void)con_cls;
    ws_pending_t *pending = cls;
    ws_conn_t *c = pending->conn;
    atomic_store(&pending->taken, true);
    struct ws_loop *loop = c->loop;
    c->fd = sock;
    c->urh = urh;
    int flags = fcntl(sock, F_GETFL);
    fcntl(sock, F_SETFL, flags | O_NONBLOCK);
    int one = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (extra_in_size > 0) {
        c->preread = malloc(extra_in_size);
        if (c->preread) {
            memcpy(c->preread, extra_in, extra_in_size);
            c->preread_len = extra_in_size;
        }
    }
    pthread_mutex_lock(&loop->lock);
    if (loop->ended) {
        pthread_mutex_unlock(&loop->lock);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        free_conn(c);
        return;
    }
    c->next = loop->incoming;
    loop->incoming = c;
    pthread_mutex_unlock(&loop->lock);
    realtime__ws_loop_wake(loop);
}

/* Frees a handshake's connection when the request ends without the upgrade
 * (the client went away before the 101 was sent). */
static void pending_free(void *p)
{
    ws_pending_t *pending = p;
    if (!atomic_load(&pending->taken))
        free_conn(pending->conn);
    free(pending);
}

static bool header_has_token(const char *value, const char *token)
{
    if (value == NULL)
        return false;
    size_t n = strlen(token);
    const char *p = value;
    while (*p) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed > 0 && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
            trimmed--;
        if (trimmed == n && strncasecmp(p, token, n) == 0)
            return true;
        p += len;
    }
    return false;
}

enum MHD_Result realtime__ws_accept(realtime_t *rt, const rt_request_t *rq, int *status)
{
    struct MHD_Connection *conn = rq->conn;
    struct ws_loop *loop = rt->ws;
    const char *upgrade = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
    const char *connection = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Connection");
    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    const char *version =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
    if (!header_has_token(upgrade, "websocket") || !header_has_token(connection, "upgrade"))
        return realtime__reply_error(conn, rq->request_id, HTTP_ERR_BAD_REQUEST,
                              "this endpoint speaks WebSocket: send Connection: Upgrade and "
                              "Upgrade: websocket",
                              status);
    if (version == NULL || strcmp(version, "13") != 0)
        return realtime__reply_error(conn, rq->request_id, HTTP_ERR_BAD_REQUEST,
                              "Sec-WebSocket-Version must be 13", status);
    unsigned char raw_key[64];
    size_t raw_len = 0;
    if (key == NULL || strlen(key) != 24 ||
        !o_base64_decode((const unsigned char *)key, 24, raw_key, &raw_len) || raw_len != 16)
        return realtime__reply_error(conn, rq->request_id, HTTP_ERR_BAD_REQUEST,
                              "Sec-WebSocket-Key must be 16 bytes in base64", status);
    if (atomic_load(&loop->stopping))
        return realtime__reply_error(conn, rq->request_id, HTTP_ERR_UNAVAILABLE,
                              "the server is shutting down", status);

    ws_conn_t *c = calloc(1, sizeof(*c));
    ws_pending_t *pending = calloc(1, sizeof(*pending));
    if (c == NULL || pending == NULL) {
        free(c);
        free(pending);
        return MHD_NO;
    }
    c->loop = loop;
    c->fd = -1;
    c->has_since = rq->has_since;
    c->since = rq->since;
    c->addr = rq->addr;
    snprintf(c->request_id, sizeof(c->request_id), "%s", rq->request_id);

    /* Credentials in the handshake are checked now: a bad one is refused
     * with a JSON 401 before any upgrade. */
    const char *credentials = realtime__request_credentials(conn);
    const char *refusal = NULL;
    int by_cookie = credentials != NULL
                        ? RT_NO_COOKIE
                        : realtime__cookie_authenticate(rt->app, conn, true, &c->client, &refusal);
    if (credentials != NULL || by_cookie != RT_NO_COOKIE) {
        int err = credentials != NULL
                      ? realtime__client_authenticate(rt->app, &c->client, credentials)
                      : by_cookie;
        if (err >= 0) {
            free(pending);
            free_conn(c);
            return realtime__reply_error(conn, rq->request_id, (enum http_error)err,
                                  refusal != NULL ? refusal
                                  : err == HTTP_ERR_TOKEN_EXPIRED ? "the access token has expired"
                                                                : "the credentials are not valid",
                                  status);
        }
        if (!realtime__connect_admit(rt, c->client.who.user.id)) {
            free(pending);
            free_conn(c);
            return realtime__reply_error(conn, rq->request_id, HTTP_ERR_RATE_LIMITED,
                                  "too many real-time connections of this user this minute",
                                  status);
        }
    }

    static const struct wslay_event_callbacks callbacks = {
        .recv_callback = on_recv,
        .send_callback = on_send,
        .genmask_callback = on_genmask,
        .on_frame_recv_start_callback = on_frame_start,
        .on_msg_recv_callback = on_message,
    };
    if (wslay_event_context_server_init(&c->ws, &callbacks, c) != 0) {
        free(pending);
        free_conn(c);
        return MHD_NO;
    }
    wslay_event_config_set_max_recv_msg_length(c->ws, loop->max_frame);
    ws_sync(c);

    char buf[128];
    snprintf(buf, sizeof(buf), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    unsigned char digest[20];
    unsigned char accept[64];
    size_t accept_len = 0;
    gnutls_hash_fast(GNUTLS_DIG_SHA1, buf, strlen(buf), digest);
    o_base64_encode(digest, sizeof(digest), accept, &accept_len);
    accept[accept_len] = '\0';

    pending->conn = c;
    struct MHD_Response *resp = MHD_create_response_for_upgrade(upgraded, pending);
    if (resp == NULL) {
        free(pending);
        free_conn(c);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Upgrade", "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", (const char *)accept);
    MHD_add_response_header(resp, "X-Request-Id", rq->request_id);
    http_request_attach(pending, pending_free);
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    *status = 101;
    return ok;
}
