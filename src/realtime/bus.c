/*
 * The event bus: a ring of the most recent events, each with a server-wide
 * sequence number.
 *
 * Publishing serialises the event once, as the WebSocket frame
 * {"type","seq","data"}; an event stream's data line is the part of that
 * frame the data takes, so no event's text is kept twice. It appends under
 * one mutex, so sequence order is ring order. The ring is bounded twice: in
 * events (`event_ring`) and in bytes (`event_ring_bytes`: the frames, the
 * audiences and the event headers), the oldest leaving first, so a few huge
 * events cannot hold the memory that thousands of small ones would.
 * Readers (the WebSocket loop, event streams) never copy the ring: they take
 * references to the events past their cursor and deliver them outside the
 * lock; an event leaves memory when the ring has moved past it and the last
 * reader has released it. A reader whose cursor the ring has moved past is
 * told so (it must reload), never silently skipped ahead.
 *
 * Sequence numbers start at (start-up unix seconds) << 20 + 1, so they go on
 * growing across restarts (unless more than a million events a second were
 * published since the previous start), and a resume point from an earlier
 * run falls below this run's first event: that client is told to reload.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "parley/clock.h"

struct rt_bus {
    pthread_mutex_t lock;
    rt_event_t **ring;     /* ring[seq % capacity]; NULL once dropped for bytes */
    size_t capacity;
    size_t max_bytes;      /* 0: no byte bound */
    size_t bytes;          /* the events kept */
    uint64_t base;         /* seq before this run's first event */
    uint64_t last;         /* seq of the newest event; base when none */
    uint64_t first;        /* seq of the oldest event kept; last + 1 when none */
    void (*on_publish)(void *ctx);
    void *on_publish_ctx;
};

rt_bus_t *realtime__bus_new(size_t capacity, size_t max_bytes)
{
    rt_bus_t *bus = calloc(1, sizeof(*bus));
    if (bus == NULL)
        return NULL;
    bus->ring = calloc(capacity, sizeof(*bus->ring));
    if (bus->ring == NULL) {
        free(bus);
        return NULL;
    }
    bus->capacity = capacity;
    bus->max_bytes = max_bytes;
    bus->base = bus->last = (uint64_t)time(NULL) << 20;
    bus->first = bus->last + 1;
    pthread_mutex_init(&bus->lock, NULL);
    return bus;
}

void realtime__bus_free(rt_bus_t *bus)
{
    if (bus == NULL)
        return;
    for (size_t i = 0; i < bus->capacity; i++)
        if (bus->ring[i])
            realtime__event_release(bus->ring[i]);
    free(bus->ring);
    pthread_mutex_destroy(&bus->lock);
    free(bus);
}

void realtime__bus_on_publish(rt_bus_t *bus, void (*fn)(void *ctx), void *ctx)
{
    bus->on_publish = fn;
    bus->on_publish_ctx = ctx;
}

void realtime__event_release(rt_event_t *ev)
{
    if (ev == NULL || atomic_fetch_sub(&ev->refs, 1) != 1)
        return;
    free(ev->audience);
    free(ev->frame);
    free(ev);
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

uint64_t realtime__bus_publish(rt_bus_t *bus, const char *type, const char *channel_id,
                        const char *also_user, const char *const *audience, size_t n_audience,
                        json_t *data)
{
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    return realtime__bus_publish_text(bus, type, channel_id, also_user, audience, n_audience, text);
}

bool realtime__frame_render(const char *type, uint64_t seq, const char *data, size_t data_len,
                            char **frame, size_t *frame_len, size_t *data_off)
{
    /* {"type":"...","seq":N,"data":...}; types are fixed ASCII words of the
     * server's own, data is JSON text. */
    size_t cap = strlen(type) + data_len + 64;
    char *f = malloc(cap);
    if (f == NULL)
        return false;
    int head = snprintf(f, cap, "{\"type\":\"%s\",\"seq\":%llu,\"data\":", type,
                        (unsigned long long)seq);
    memcpy(f + head, data, data_len);
    f[head + data_len] = '}';
    f[head + data_len + 1] = '\0';
    *frame = f;
    *frame_len = (size_t)head + data_len + 1;
    *data_off = (size_t)head;
    return true;
}

/* Drops the oldest events until the kept ones fit the byte bound (the
 * newest stays). REQUIRES: bus->lock held. Returns the dropped events, to
 * release outside the lock, through *out (malloc'd, *n set), or NULL. */
static rt_event_t **trim_bytes(rt_bus_t *bus, size_t *n)
{
    *n = 0;
    if (bus->max_bytes == 0 || bus->bytes <= bus->max_bytes)
        return NULL;
    size_t cap = 0;
    rt_event_t **out = NULL;
    while (bus->bytes > bus->max_bytes && bus->first < bus->last) {
        rt_event_t **slot = &bus->ring[bus->first % bus->capacity];
        rt_event_t *ev = *slot;
        *slot = NULL;
        bus->first++;
        if (ev == NULL)
            continue;
        RT_COUNT(ring_dropped);
        bus->bytes -= ev->bytes;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            rt_event_t **grown = realloc(out, cap * sizeof(*out));
            if (grown == NULL) { /* released under the lock: only frees */
                realtime__event_release(ev);
                cap = *n;
                continue;
            }
            out = grown;
        }
        out[(*n)++] = ev;
    }
    return out;
}

static uint64_t append(rt_bus_t *bus, rt_event_t *ev, char *data)
{
    ev->data_len = strlen(data);
    ev->at_ms = clock_wall_ms();
    ev->bytes = sizeof(*ev) + ev->n_audience * sizeof(*ev->audience);

    pthread_mutex_lock(&bus->lock);
    uint64_t seq = bus->last + 1;
    size_t off;
    if (!realtime__frame_render(ev->type, seq, data, ev->data_len, &ev->frame, &ev->frame_len,
                                &off)) {
        pthread_mutex_unlock(&bus->lock);
        free(data);
        realtime__event_release(ev);
        return 0;
    }
    free(data);
    ev->data = ev->frame + off;
    ev->bytes += ev->frame_len + 1;
    bus->last = seq;
    ev->seq = seq;
    RT_COUNT(published);
    rt_event_t **slot = &bus->ring[seq % bus->capacity];
    rt_event_t *evicted = *slot;
    *slot = ev;
    if (evicted) {
        bus->bytes -= evicted->bytes;
        bus->first = evicted->seq + 1;
    } else if (bus->first > seq) {
        bus->first = seq;
    }
    bus->bytes += ev->bytes;
    size_t n_dropped;
    rt_event_t **dropped = trim_bytes(bus, &n_dropped);
    pthread_mutex_unlock(&bus->lock);

    realtime__event_release(evicted);
    for (size_t i = 0; i < n_dropped; i++)
        realtime__event_release(dropped[i]);
    free(dropped);
    if (bus->on_publish)
        bus->on_publish(bus->on_publish_ctx);
    return seq;
}

static rt_event_t *event_new(const char *type, const char *channel_id, const char *also_user)
{
    rt_event_t *ev = calloc(1, sizeof(*ev));
    if (ev == NULL)
        return NULL;
    atomic_init(&ev->refs, 1);
    snprintf(ev->type, sizeof(ev->type), "%s", type);
    snprintf(ev->channel_id, sizeof(ev->channel_id), "%s", channel_id ? channel_id : "");
    snprintf(ev->also_user, sizeof(ev->also_user), "%s", also_user ? also_user : "");
    return ev;
}

uint64_t realtime__bus_publish_text(rt_bus_t *bus, const char *type, const char *channel_id,
                             const char *also_user, const char *const *audience,
                             size_t n_audience, char *data)
{
    rt_event_t *ev = data ? event_new(type, channel_id, also_user) : NULL;
    if (ev == NULL) {
        free(data);
        return 0;
    }
    if (audience != NULL) {
        ev->audience = calloc(n_audience ? n_audience : 1, sizeof(*ev->audience));
        if (ev->audience == NULL) {
            free(data);
            realtime__event_release(ev);
            return 0;
        }
        for (size_t i = 0; i < n_audience; i++)
            snprintf(ev->audience[i], STORE_ID_MAX, "%s", audience[i]);
        qsort(ev->audience, n_audience, sizeof(*ev->audience), compare_ids);
        ev->n_audience = n_audience;
    }
    return append(bus, ev, data);
}

uint64_t realtime__bus_publish_message(rt_bus_t *bus, const char *type, const char *channel_id,
                                const char *message_id, int64_t updated_at, char *data)
{
    rt_event_t *ev = data ? event_new(type, channel_id, NULL) : NULL;
    if (ev == NULL) {
        free(data);
        return 0;
    }
    snprintf(ev->message_id, sizeof(ev->message_id), "%s", message_id);
    ev->message_updated_at = updated_at;
    return append(bus, ev, data);
}

uint64_t realtime__bus_last_seq(rt_bus_t *bus)
{
    pthread_mutex_lock(&bus->lock);
    uint64_t last = bus->last;
    pthread_mutex_unlock(&bus->lock);
    return last;
}

size_t realtime__bus_fetch(rt_bus_t *bus, uint64_t after, rt_event_t **out, size_t max, bool *lost)
{
    *lost = false;
    size_t n = 0;
    pthread_mutex_lock(&bus->lock);
    if (after < bus->base || after > bus->last || after + 1 < bus->first) {
        *lost = true;
    } else {
        for (uint64_t seq = after + 1; seq <= bus->last && n < max; seq++) {
            rt_event_t *ev = bus->ring[seq % bus->capacity];
            atomic_fetch_add(&ev->refs, 1);
            out[n++] = ev;
        }
    }
    pthread_mutex_unlock(&bus->lock);
    return n;
}

void realtime__bus_fill(rt_bus_t *bus, size_t *events, size_t *capacity)
{
    pthread_mutex_lock(&bus->lock);
    uint64_t n = bus->last + 1 - bus->first;
    pthread_mutex_unlock(&bus->lock);
    *events = (size_t)n;
    *capacity = bus->capacity;
}

size_t realtime__bus_bytes(rt_bus_t *bus)
{
    pthread_mutex_lock(&bus->lock);
    size_t n = bus->bytes;
    pthread_mutex_unlock(&bus->lock);
    return n;
}
