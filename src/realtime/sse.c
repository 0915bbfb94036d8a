/*
 * Server-Sent Events (GET /api/v1/events): the same events as the WebSocket,
 * as `id:`/`event:`/`data:` lines, resumable with Last-Event-ID.
 *
 * A stream is a libmicrohttpd response of unknown length whose content
 * reader is called on a pool thread whenever the socket can take more. With
 * nothing to send, the reader suspends its connection (MHD_suspend_
 * connection, allowed from a content reader) instead of returning 0, which
 * in this polling mode would make libmicrohttpd spin; a publish or the ping
 * timer resumes it. So an idle stream holds no thread, and a client that
 * does not read is simply not asked for more: its cursor stays behind and
 * nothing piles up in memory (if the ring moves past it, it is told to
 * reload, as a WebSocket is).
 *
 * A wake-up that lands between the reader finding nothing and suspending is
 * not lost: the reader suspends only if the hub's wake count did not move
 * since it looked. Suspended connections must be resumed before the daemon
 * stops; realtime__sse_hub_stop ends every stream first.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "parley/clock.h"

#define SESSION_CHECK_NS (2LL * 1000000000)
#define FETCH_BATCH 64
#define BLOCK_SIZE 16384

typedef struct sse_stream {
    struct sse_stream *prev, *next;
    struct sse_hub *hub;
    struct MHD_Connection *conn;
    rt_client_t client;
    bool has_since;
    uint64_t since;
    bool started;
    bool suspended;          /* by its reader; under the hub's lock */
    bool ending;             /* send what is pending, then end */
    bool check_due;          /* the timer asks for a session check */
    ipnet_t addr;            /* the client's address, for blocks made later */
    int64_t last_write_ns, next_check_ns;
    char *out;               /* text not yet handed to libmicrohttpd */
    size_t out_len, out_off, out_cap;
} sse_stream_t;

struct sse_hub {
    realtime_t *rt;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    sse_stream_t *streams;
    unsigned n_streams;
    uint64_t wakes;
    bool stopping;
    int64_t ping_ns;
};

struct sse_hub *realtime__sse_hub_new(realtime_t *rt)
{
    struct sse_hub *hub = calloc(1, sizeof(*hub));
    if (hub == NULL)
        return NULL;
    hub->rt = rt;
    hub->ping_ns = (int64_t)rt->app->config->sse_ping_interval * 1000000000;
    pthread_mutex_init(&hub->lock, NULL);
    pthread_cond_init(&hub->changed, NULL);
    return hub;
}

void realtime__sse_hub_free(struct sse_hub *hub)
{
    if (hub == NULL)
        return;
    pthread_mutex_destroy(&hub->lock);
    pthread_cond_destroy(&hub->changed);
    free(hub);
}

/* Resumes a suspended stream; the hub's lock is held. */
static void resume(sse_stream_t *st)
{
    if (st->suspended) {
        st->suspended = false;
        MHD_resume_connection(st->conn);
    }
}

void realtime__sse_hub_wake(struct sse_hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    hub->wakes++;
    for (sse_stream_t *st = hub->streams; st; st = st->next)
        resume(st);
    pthread_mutex_unlock(&hub->lock);
}

/* Whether the client of a suspended stream has hung up. libmicrohttpd does
 * not watch a suspended connection, so without this a closed stream would
 * hold its socket and memory until the next ping (15 s by default): SSE
 * churn of ~130 streams a second kept ~4,200 descriptors open and RSS at
 * 160-190 MB (scripts/soak.py, SOAK_LOAD=sse). An event-stream client never
 * half-closes, so end of input means it is gone. */
static bool peer_gone(const sse_stream_t *st)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL)
        return false;
    struct pollfd pfd = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&pfd, 1, 0) != 1)
        return false;
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* A stream lives no longer than the access token it was opened with (an
 * EventSource reconnects by itself, with a fresh ?token= from its page). */
static bool token_expired(const rt_client_t *c)
{
    return c->expires_ms != 0 && clock_wall_ms() >= c->expires_ms;
}

void realtime__sse_hub_tick(struct sse_hub *hub)
{
    int64_t now = clock_mono_ns();
    pthread_mutex_lock(&hub->lock);
    for (sse_stream_t *st = hub->streams; st; st = st->next) {
        if (!st->suspended)
            continue;
        if (now - st->last_write_ns >= hub->ping_ns) {
            resume(st);
        } else if (now >= st->next_check_ns) {
            /* Suspended: its reader is not running, so its client is ours
             * for the check. */
            st->next_check_ns = now + SESSION_CHECK_NS;
            if (peer_gone(st)) {
                st->ending = true;
                resume(st);
            } else if (token_expired(&st->client) || realtime__addr_blocked(hub->rt, &st->addr) ||
                !principal_still_valid(hub->rt->app, &st->client.who)) {
                st->check_due = true;
                resume(st);
            }
        }
    }
    pthread_mutex_unlock(&hub->lock);
}

void realtime__sse_hub_stop(struct sse_hub *hub)
{
    if (hub == NULL)
        return;
    pthread_mutex_lock(&hub->lock);
    hub->stopping = true;
    for (sse_stream_t *st = hub->streams; st; st = st->next)
        resume(st);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 2;
    while (hub->streams != NULL &&
           pthread_cond_timedwait(&hub->changed, &hub->lock, &deadline) == 0)
        ;
    pthread_mutex_unlock(&hub->lock);
}

static void append(sse_stream_t *st, const char *a, size_t a_len, const char *b, size_t b_len,
                   const char *c, size_t c_len)
{
    size_t need = st->out_len + a_len + b_len + c_len;
    if (need > st->out_cap) {
        size_t cap = need * 2;
        char *grown = realloc(st->out, cap);
        if (grown == NULL)
            return;
        st->out = grown;
        st->out_cap = cap;
    }
    memcpy(st->out + st->out_len, a, a_len);
    memcpy(st->out + st->out_len + a_len, b, b_len);
    memcpy(st->out + st->out_len + a_len + b_len, c, c_len);
    st->out_len = need;
}

static void append_event(sse_stream_t *st, uint64_t seq, const char *type, const char *data,
                         size_t data_len)
{
    char head[96];
    int n = seq ? snprintf(head, sizeof(head), "id: %llu\nevent: %s\ndata: ",
                           (unsigned long long)seq, type)
                : snprintf(head, sizeof(head), "event: %s\ndata: ", type);
    append(st, head, (size_t)n, data, data_len, "\n\n", 2);
}

static void append_json_event(sse_stream_t *st, const char *type, json_t *data)
{
    char *text = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (text)
        append_event(st, 0, type, text, strlen(text));
    free(text);
}

/* Adds to st->out what is due now: the opening, events, pings, the end. */
static void fill(sse_stream_t *st)
{
    realtime_t *rt = st->hub->rt;
    int64_t now = clock_mono_ns();
    if (!st->started) {
        st->started = true;
        st->next_check_ns = now + SESSION_CHECK_NS;
        uint64_t last = realtime__bus_last_seq(rt->bus);
        st->client.cursor = st->has_since ? st->since : last;
        realtime__presence_opened(rt, st->client.who.user.id);
        append(st, "retry: 3000\n\n", 13, "", 0, "", 0);
        append_json_event(st, "ready",
                          json_pack("{s:s, s:b, s:I}", "user_id", st->client.who.user.id,
                                    "resumed", st->has_since, "seq",
                                    (json_int_t)(st->client.cursor > last ? last
                                                                          : st->client.cursor)));
    }
    if (st->check_due || now >= st->next_check_ns) {
        st->check_due = false;
        st->next_check_ns = now + SESSION_CHECK_NS;
        if (token_expired(&st->client)) {
            append_json_event(st, "error",
                              json_pack("{s:s, s:s}", "code", "TOKEN_EXPIRED", "message",
                                        "the access token has expired: reconnect with a fresh "
                                        "one"));
            st->ending = true;
            return;
        }
        if (realtime__addr_blocked(rt, &st->addr)) {
            append_json_event(st, "error",
                              json_pack("{s:s, s:s}", "code", "IP_BLOCKED", "message",
                                        "requests from your address are blocked"));
            st->ending = true;
            return;
        }
        if (!principal_still_valid(rt->app, &st->client.who)) {
            bool banned = principal_user_banned(&st->client.who.user, clock_wall_ms());
            append_json_event(st, "error",
                              json_pack("{s:s, s:s}", "code",
                                        banned ? "ACCOUNT_BANNED" : "TOKEN_INVALID", "message",
                                        banned ? "this account is banned"
                                               : "the login behind this stream has ended"));
            st->ending = true;
            return;
        }
    }
    uint64_t last = realtime__bus_last_seq(rt->bus);
    while (st->client.cursor < last && st->out_len < BLOCK_SIZE) {
        rt_event_t *batch[FETCH_BATCH];
        bool lost;
        size_t n = realtime__bus_fetch(rt->bus, st->client.cursor, batch, FETCH_BATCH, &lost);
        if (lost) {
            st->client.cursor = last;
            RT_COUNT(resyncs);
            append_json_event(st, "error",
                              json_pack("{s:s, s:s}", "code", "RESYNC_REQUIRED", "message",
                                        "events since Last-Event-ID are no longer kept; "
                                        "reload over HTTP"));
            break;
        }
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            rt_event_t *ev = batch[i];
            st->client.cursor = ev->seq;
            char *frame;
            size_t frame_len, data_len;
            const char *data;
            bool owned;
            if (realtime__client_sees(rt->app->store, &st->client, ev) &&
                realtime__event_current(rt->app->store, ev, &frame, &frame_len, &data,
                                        &data_len, &owned)) {
                append_event(st, ev->seq, ev->type, data, data_len);
                if (owned)
                    free(frame);
                realtime__note_delivered(rt, &st->client, ev);
            }
            realtime__event_release(ev);
        }
    }
    if (st->out_len == 0 && now - st->last_write_ns >= st->hub->ping_ns)
        append(st, "event: ping\ndata: {}\n\n", 22, "", 0, "", 0);
}

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sse_stream_t *st = cls;
    struct sse_hub *hub = st->hub;
    while (st->out_off == st->out_len) {
        st->out_off = st->out_len = 0;
        pthread_mutex_lock(&hub->lock);
        bool stopping = hub->stopping;
        uint64_t wakes = hub->wakes;
        pthread_mutex_unlock(&hub->lock);
        if (stopping || st->ending)
            return MHD_CONTENT_READER_END_OF_STREAM;
        fill(st);
        if (st->out_len > 0)
            break;
        pthread_mutex_lock(&hub->lock);
        if (hub->wakes == wakes && !hub->stopping && !st->check_due) {
            st->suspended = true;
            MHD_suspend_connection(st->conn);
            pthread_mutex_unlock(&hub->lock);
            return 0;
        }
        pthread_mutex_unlock(&hub->lock);
    }
    size_t n = st->out_len - st->out_off;
    if (n > max)
        n = max;
    memcpy(buf, st->out + st->out_off, n);
    st->out_off += n;
    st->last_write_ns = clock_mono_ns();
    return (ssize_t)n;
}

static void sse__add_header(void *ctx, const char *name, const char *value)
{
    MHD_add_response_header(ctx, name, value);
}

static void free_stream(void *cls)
{
    sse_stream_t *st = cls;
    struct sse_hub *hub = st->hub;
    pthread_mutex_lock(&hub->lock);
    if (st->prev)
        st->prev->next = st->next;
    else if (hub->streams == st)
        hub->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    hub->n_streams--;
    pthread_cond_broadcast(&hub->changed);
    pthread_mutex_unlock(&hub->lock);
    if (st->started)
        realtime__presence_closed(hub->rt, st->client.who.user.id);
    realtime__client_clear(&st->client);
    free(st->out);
    free(st);
}

enum MHD_Result realtime__sse_accept(realtime_t *rt, const rt_request_t *rq, int *status)
{
    struct MHD_Connection *conn = rq->conn;
    struct sse_hub *hub = rt->sse;
    const char *credentials = realtime__request_credentials(conn);
    sse_stream_t *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return MHD_NO;
    const char *refusal = NULL;
    int err = credentials != NULL
                  ? realtime__client_authenticate(rt->app, &st->client, credentials)
                  : realtime__cookie_authenticate(rt->app, conn, false, &st->client, &refusal);
    if (err == RT_NO_COOKIE) {
        free(st);
        return realtime__reply_error(conn, rq->request_id, HTTP_ERR_AUTHENTICATION_REQUIRED,
                              "this endpoint needs an access token, an API key or a session "
                              "cookie", status);
    }
    if (err >= 0) {
        free(st);
        return realtime__reply_error(conn, rq->request_id, (enum http_error)err,
                              refusal != NULL ? refusal
                              : err == HTTP_ERR_TOKEN_EXPIRED ? "the access token has expired"
                                                            : "the credentials are not valid",
                              status);
    }
    if (!realtime__connect_admit(rt, st->client.who.user.id)) {
        realtime__client_clear(&st->client);
        free(st);
        return realtime__reply_error(conn, rq->request_id, HTTP_ERR_RATE_LIMITED,
                              "too many real-time connections of this user this minute",
                              status);
    }
    pthread_mutex_lock(&hub->lock);
    bool stopping = hub->stopping;
    pthread_mutex_unlock(&hub->lock);
    if (stopping) {
        realtime__client_clear(&st->client);
        free(st);
        return realtime__reply_error(conn, rq->request_id, HTTP_ERR_UNAVAILABLE,
                              "the server is shutting down", status);
    }
    st->hub = hub;
    st->conn = conn;
    st->has_since = rq->has_since;
    st->since = rq->since;
    st->addr = rq->addr;
    st->last_write_ns = clock_mono_ns();
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, BLOCK_SIZE, read_stream, st,
                                          free_stream);
    if (resp == NULL) {
        realtime__client_clear(&st->client);
        free(st);
        return MHD_NO;
    }
    pthread_mutex_lock(&hub->lock);
    st->next = hub->streams;
    if (hub->streams)
        hub->streams->prev = st;
    hub->streams = st;
    hub->n_streams++;
    pthread_mutex_unlock(&hub->lock);
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    http_security_headers_each(sse__add_header, resp);
    http_cors_headers_each(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"),
                           sse__add_header, resp);
    MHD_add_response_header(resp, "X-Request-Id", rq->request_id);
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    *status = 200;
    return ok;
}

unsigned realtime__sse_hub_count(struct sse_hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    unsigned n = hub->n_streams;
    pthread_mutex_unlock(&hub->lock);
    return n;
}
