/*
 * The real-time service: its start and stop, the entry point the connection
 * gate calls for GET /api/v1/ws and GET /api/v1/events (before ulfius, so
 * the request is answered straight from libmicrohttpd: ulfius would read it
 * as an ordinary request), and publishing.
 *
 * Publishing appends to the bus and wakes both kinds of connection: the
 * WebSocket loop through its eventfd, event streams by resuming them.
 *
 * The client's address, which the gate found (and checked against the
 * blocked addresses) before handing the request over, goes with each
 * connection, so that a block made while it is open ends it at the next
 * login check (realtime__addr_blocked).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "parley/clock.h"
#include "parley/http.h"
#include "parley/ip_blocks.h"
#include "parley/ipnet.h"

static void on_publish(void *ctx)
{
    realtime_t *rt = ctx;
    realtime__ws_loop_wake(rt->ws);
    realtime__sse_hub_wake(rt->sse);
}

realtime_t *realtime_start(struct parley_app *app, realtime_call_fn call, void *call_ctx,
                           char *err, size_t err_size)
{
    realtime_t *rt = calloc(1, sizeof(*rt));
    if (rt == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    rt->app = app;
    rt->call = call;
    rt->call_ctx = call_ctx;
    rt->bus = realtime__bus_new(app->config->event_ring, app->config->event_ring_bytes);
    rt->sse = realtime__sse_hub_new(rt);
    rt->connects = realtime__budgets_new();
    rt->typing = realtime__budgets_new();
    rt->presence = realtime__presence_start(rt);
    if (rt->bus == NULL || rt->sse == NULL || rt->presence == NULL) {
        snprintf(err, err_size, "out of memory for the event ring");
        realtime_free(rt);
        return NULL;
    }
    realtime__bus_on_publish(rt->bus, on_publish, rt);
    rt->ws = realtime__ws_loop_start(rt, err, err_size);
    if (rt->ws == NULL) {
        realtime_free(rt);
        return NULL;
    }
    return rt;
}

void realtime_shutdown(realtime_t *rt)
{
    if (rt == NULL)
        return;
    realtime__sse_hub_stop(rt->sse);
    realtime__ws_loop_stop(rt->ws);
    /* After the connections: their closes publish the pending offlines. */
    realtime__presence_stop(rt->presence);
    rt->presence = NULL;
}

void realtime_free(realtime_t *rt)
{
    if (rt == NULL)
        return;
    realtime__ws_loop_free(rt->ws);
    realtime__sse_hub_free(rt->sse);
    realtime__presence_stop(rt->presence);
    realtime__budgets_free(rt->connects);
    realtime__budgets_free(rt->typing);
    realtime__bus_free(rt->bus);
    free(rt);
}

void realtime_publish(realtime_t *rt, const char *type, const char *channel_id,
                      const char *also_user, json_t *data)
{
    if (rt == NULL) {
        json_decref(data);
        return;
    }
    realtime__bus_publish(rt->bus, type, channel_id, also_user, NULL, 0, data);
}

void realtime_publish_text(realtime_t *rt, const char *type, const char *channel_id,
                           const char *also_user, const char *data)
{
    if (rt == NULL || data == NULL)
        return;
    realtime__bus_publish_text(rt->bus, type, channel_id, also_user, NULL, 0, strdup(data));
}

void realtime_publish_message(realtime_t *rt, const char *type, const char *channel_id,
                              const char *message_id, int64_t updated_at, const char *data)
{
    if (rt == NULL || data == NULL)
        return;
    realtime__bus_publish_message(rt->bus, type, channel_id, message_id, updated_at,
                                  strdup(data));
}

void realtime_publish_to(realtime_t *rt, const char *type, const char *const *audience,
                         size_t n_audience, json_t *data)
{
    if (rt == NULL) {
        json_decref(data);
        return;
    }
    realtime__bus_publish(rt->bus, type, NULL, NULL, audience, n_audience, data);
}

unsigned realtime_websockets_open(realtime_t *rt)
{
    return rt ? realtime__ws_loop_open_count(rt->ws) : 0;
}

/* Whether `path` is `want` the way the router sees paths: empty segments
 * ("//", a trailing "/") do not count. */
static bool same_path(const char *path, const char *want)
{
    for (;;) {
        while (*path == '/')
            path++;
        while (*want == '/')
            want++;
        size_t a = strcspn(path, "/"), b = strcspn(want, "/");
        if (a != b || strncmp(path, want, a) != 0)
            return false;
        if (a == 0)
            return true;
        path += a;
        want += b;
    }
}

/* /ws too: PlexiChat's document connects there (docs/api.md, "Differences
 * from the seed documents"); the same endpoint. */
static bool is_websocket_path(const char *path)
{
    return same_path(path, "/api/v1/ws") || same_path(path, "/ws");
}

bool realtime_claims(void *rt, const char *method, const char *path)
{
    (void)rt;
    return strcmp(method, "GET") == 0 &&
           (is_websocket_path(path) || same_path(path, "/api/v1/events"));
}

/* A resume point: 0-2^63 in decimal, nothing else. */
static bool parse_seq(const char *text, uint64_t *out)
{
    if (text == NULL || text[0] == '\0' || strlen(text) > 19)
        return false;
    uint64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return true;
}

bool realtime__addr_blocked(realtime_t *rt, const ipnet_t *addr)
{
    ipnet_set_t *blocked = store_ip_block_set(rt->app->store);
    return addr->family != 0 && ipnet_set_count(blocked) > 0 &&
           ipnet_set_match(blocked, addr, clock_wall_ms(), NULL, NULL);
}

enum MHD_Result realtime_accept(void *ctx, struct MHD_Connection *conn, const char *path,
                                const char *request_id, int *status)
{
    realtime_t *rt = ctx;
    bool websocket = is_websocket_path(path);
    rt_request_t rq = {.conn = conn, .request_id = request_id};
    /* The gate found the client's address before it handed the request over. */
    const char *ip = http_client_ip(NULL);
    if (ip == NULL || ipnet_parse(ip, true, &rq.addr) != 0)
        memset(&rq.addr, 0, sizeof(rq.addr));
    const char *since = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
    if (!websocket && since == NULL)
        since = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (since != NULL) {
        if (!parse_seq(since, &rq.since))
            return realtime__reply_error(conn, request_id, HTTP_ERR_VALIDATION,
                                  websocket ? "since must be a seq number (decimal digits)"
                                            : "Last-Event-ID must be a seq number",
                                  status);
        rq.has_since = true;
    }
    return websocket ? realtime__ws_accept(rt, &rq, status) : realtime__sse_accept(rt, &rq, status);
}

rt_counters_t realtime__counters;

void realtime_get_stats(realtime_t *rt, realtime_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->events_published = atomic_load_explicit(&realtime__counters.published, memory_order_relaxed);
    out->events_ring_dropped =
        atomic_load_explicit(&realtime__counters.ring_dropped, memory_order_relaxed);
    out->resyncs = atomic_load_explicit(&realtime__counters.resyncs, memory_order_relaxed);
    out->slow_consumers_closed =
        atomic_load_explicit(&realtime__counters.slow_closed, memory_order_relaxed);
    out->frames_dropped =
        atomic_load_explicit(&realtime__counters.frames_dropped, memory_order_relaxed);
    if (rt == NULL)
        return;
    out->websockets = realtime__ws_loop_open_count(rt->ws);
    out->event_streams = realtime__sse_hub_count(rt->sse);
    realtime__bus_fill(rt->bus, &out->ring_events, &out->ring_capacity);
    out->ring_bytes = realtime__bus_bytes(rt->bus);
    out->ring_max_bytes = rt->app->config->event_ring_bytes;
}
