/*
 * Requests by route: for each route of the router's table (and one slot for
 * requests no route took), counts by status code, a latency histogram with
 * fixed buckets, and the bytes of request and answer bodies; GET /metrics
 * shows them (include/parley/http.h, http_route_metrics_each).
 *
 * Why this shape: the label set must stay bounded whatever clients send, so
 * a request is counted under its route's pattern, never its path, and a
 * status under one of a fixed list of codes (anything else is "other").
 * Counting sits on every request's path, so it takes no lock: each slot is
 * a block of atomics, and counting a request is five relaxed atomic adds
 * (its code, its latency bucket, the latency sum, the two byte counts) on
 * its route's own cache lines, about as dear as the request's other
 * counters in gate.c. The buckets are kept per bucket, not cumulative, so a
 * request touches one of them; a reader adds them up, and takes the count
 * from that sum, so a histogram's +Inf bucket and _count always agree.
 *
 * The table belongs to the router that made it; the newest one is the one
 * read (a process has one router; the unit tests make more, one at a time).
 */
#include "route_metrics.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "parley/http.h"
#include "parley/xalloc.h"

const double http_latency_bounds[HTTP_LATENCY_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* The codes counted by name, ascending; index HTTP_ROUTE_CODES - 1 is
 * "other". */
static const int known_codes[HTTP_ROUTE_CODES - 1] = {
    0,   101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308,
    400, 401, 403, 404, 405, 406, 408, 409, 410, 411, 412, 413, 414,
    415, 416, 417, 422, 426, 429, 431, 500, 501, 502, 503, 504, 505,
};

struct route_slot {
    char *method, *route;
    _Atomic uint64_t codes[HTTP_ROUTE_CODES];
    _Atomic uint64_t buckets[HTTP_LATENCY_BUCKETS + 1];
    _Atomic uint64_t sum_ns;
    _Atomic uint64_t bytes_in, bytes_out;
};

struct route_metrics {
    size_t n;
    route_slot_t *slots;
};

static route_slot_t unmatched = {.method = "any", .route = "unmatched"};
static _Atomic(route_metrics_t *) current;

route_metrics_t *route_metrics__new(size_t n)
{
    route_metrics_t *m = xcalloc(1, sizeof(*m));
    m->n = n;
    m->slots = xcalloc(n ? n : 1, sizeof(*m->slots));
    atomic_store(&current, m);
    return m;
}

void route_metrics__name(route_metrics_t *m, size_t i, const char *method, const char *pattern)
{
    route_slot_t *s = &m->slots[i];
    s->method = xstrdup(method);
    /* ":id" -> "{id}": at most one more byte per segment */
    size_t cap = strlen(pattern) * 2 + 1, o = 0;
    char *out = xmalloc(cap);
    for (const char *p = pattern; *p;) {
        if (*p == ':' && (p == pattern || p[-1] == '/')) {
            size_t len = strcspn(p + 1, "/");
            out[o++] = '{';
            memcpy(out + o, p + 1, len);
            o += len;
            out[o++] = '}';
            p += 1 + len;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    s->route = out;
}

void route_metrics__free(route_metrics_t *m)
{
    if (m == NULL)
        return;
    route_metrics_t *expected = m;
    atomic_compare_exchange_strong(&current, &expected, NULL);
    for (size_t i = 0; i < m->n; i++) {
        free(m->slots[i].method);
        free(m->slots[i].route);
    }
    free(m->slots);
    free(m);
}

route_slot_t *route_metrics__slot(route_metrics_t *m, size_t i)
{
    return &m->slots[i];
}

const char *route_metrics__route(const route_slot_t *slot)
{
    return (slot ? slot : &unmatched)->route;
}

const char *route_metrics__method(const route_slot_t *slot)
{
    return (slot ? slot : &unmatched)->method;
}

static unsigned code_index(int status)
{
    unsigned lo = 0, hi = HTTP_ROUTE_CODES - 1;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (known_codes[mid] < status)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < HTTP_ROUTE_CODES - 1 && known_codes[lo] == status ? lo : HTTP_ROUTE_CODES - 1;
}

static unsigned bucket_index(int64_t ns)
{
    double s = (double)ns / 1e9;
    unsigned b = 0;
    while (b < HTTP_LATENCY_BUCKETS && s > http_latency_bounds[b])
        b++;
    return b;
}

void route_metrics__count(route_slot_t *slot, int status, int64_t duration_ns, uint64_t bytes_in,
                          uint64_t bytes_out)
{
    route_slot_t *s = slot ? slot : &unmatched;
    if (duration_ns < 0)
        duration_ns = 0;
    atomic_fetch_add_explicit(&s->codes[code_index(status)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->buckets[bucket_index(duration_ns)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_ns, (uint64_t)duration_ns, memory_order_relaxed);
    if (bytes_in)
        atomic_fetch_add_explicit(&s->bytes_in, bytes_in, memory_order_relaxed);
    if (bytes_out)
        atomic_fetch_add_explicit(&s->bytes_out, bytes_out, memory_order_relaxed);
}

/* Fills *out from s; false when s has counted nothing. */
static bool read_slot(route_slot_t *s, http_route_metrics_t *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t total = 0;
    for (unsigned b = 0; b <= HTTP_LATENCY_BUCKETS; b++) {
        total += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
        out->le[b] = total;
    }
    if (total == 0)
        return false;
    out->count = total;
    out->method = s->method;
    out->route = s->route;
    for (unsigned c = 0; c < HTTP_ROUTE_CODES; c++) {
        uint64_t n = atomic_load_explicit(&s->codes[c], memory_order_relaxed);
        if (n == 0)
            continue;
        out->codes[out->n_codes].code = c < HTTP_ROUTE_CODES - 1 ? known_codes[c] : -1;
        out->codes[out->n_codes++].n = n;
    }
    out->sum_seconds = (double)atomic_load_explicit(&s->sum_ns, memory_order_relaxed) / 1e9;
    out->bytes_in = atomic_load_explicit(&s->bytes_in, memory_order_relaxed);
    out->bytes_out = atomic_load_explicit(&s->bytes_out, memory_order_relaxed);
    return true;
}

void http_route_metrics_each(void (*fn)(void *ctx, const http_route_metrics_t *m), void *ctx)
{
    http_route_metrics_t *m = xmalloc(sizeof(*m));
    route_metrics_t *t = atomic_load(&current);
    for (size_t i = 0; t != NULL && i < t->n; i++)
        if (read_slot(&t->slots[i], m))
            fn(ctx, m);
    if (read_slot(&unmatched, m))
        fn(ctx, m);
    free(m);
}
