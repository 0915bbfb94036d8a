/*
 * The event bus: a ring of the most recent events, each with a server-wide
 * sequence number.
 *
 * Publishing serialises the event once (the WebSocket frame and the data
 * text) and appends it under one mutex, so sequence order is ring order.
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

struct rt_bus {
    pthread_mutex_t lock;
    rt_event_t **ring;     /* ring[seq % capacity] */
    size_t capacity;
    uint64_t base;         /* seq before this run's first event */
    uint64_t last;         /* seq of the newest event; base when none */
    void (*on_publish)(void *ctx);
    void *on_publish_ctx;
};

rt_bus_t *realtime__bus_new(size_t capacity)
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
    bus->base = bus->last = (uint64_t)time(NULL) << 20;
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
    free(ev->data);
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

uint64_t realtime__bus_publish_text(rt_bus_t *bus, const char *type, const char *channel_id,
                             const char *also_user, const char *const *audience,
                             size_t n_audience, char *data)
{
    rt_event_t *ev = data ? calloc(1, sizeof(*ev)) : NULL;
    if (ev == NULL) {
        free(data);
        return 0;
    }
    atomic_init(&ev->refs, 1);
    ev->data = data;
    ev->data_len = strlen(data);
    snprintf(ev->type, sizeof(ev->type), "%s", type);
    snprintf(ev->channel_id, sizeof(ev->channel_id), "%s", channel_id ? channel_id : "");
    snprintf(ev->also_user, sizeof(ev->also_user), "%s", also_user ? also_user : "");
    if (audience != NULL) {
        ev->audience = calloc(n_audience ? n_audience : 1, sizeof(*ev->audience));
        if (ev->audience == NULL)
            goto fail;
        for (size_t i = 0; i < n_audience; i++)
            snprintf(ev->audience[i], STORE_ID_MAX, "%s", audience[i]);
        qsort(ev->audience, n_audience, sizeof(*ev->audience), compare_ids);
        ev->n_audience = n_audience;
    }
    /* The frame is {"type":"...","seq":N,"data":...}; seq is known only under
     * the lock. Types are fixed ASCII words of the server's own. */
    size_t cap = strlen(ev->type) + ev->data_len + 64;
    ev->frame = malloc(cap);
    if (ev->frame == NULL)
        goto fail;

    pthread_mutex_lock(&bus->lock);
    uint64_t seq = ++bus->last;
    ev->seq = seq;
    int n = snprintf(ev->frame, cap, "{\"type\":\"%s\",\"seq\":%llu,\"data\":%s}", ev->type,
                     (unsigned long long)seq, ev->data);
    ev->frame_len = (size_t)n;
    rt_event_t **slot = &bus->ring[seq % bus->capacity];
    rt_event_t *evicted = *slot;
    *slot = ev;
    pthread_mutex_unlock(&bus->lock);

    realtime__event_release(evicted);
    if (bus->on_publish)
        bus->on_publish(bus->on_publish_ctx);
    return seq;

fail:
    realtime__event_release(ev);
    return 0;
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
    uint64_t oldest = bus->last - bus->base > bus->capacity ? bus->last - bus->capacity + 1
                                                             : bus->base + 1;
    if (after < bus->base || after > bus->last || after + 1 < oldest) {
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
    uint64_t n = bus->last - bus->base;
    pthread_mutex_unlock(&bus->lock);
    *events = n < bus->capacity ? (size_t)n : bus->capacity;
    *capacity = bus->capacity;
}
