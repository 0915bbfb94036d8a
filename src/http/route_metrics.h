/*
 * The per-route request figures of src/http/ (route_metrics.c): the router
 * makes one table per router and says which slot a request is counted in;
 * the gate counts each request in its slot as it completes. What others
 * read is in include/parley/http.h (http_route_metrics_each).
 */
#ifndef PARLEY_HTTP_ROUTE_METRICS_H
#define PARLEY_HTTP_ROUTE_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct route_metrics route_metrics_t;
typedef struct route_slot route_slot_t;

/* A table of n slots, named by method and pattern (":id" segments shown as
 * "{id}"); the strings are copied. It becomes the table that
 * http_route_metrics_each reads (the newest router's). Not thread-safe:
 * called by router_new, before requests. */
route_metrics_t *route_metrics__new(size_t n);
void route_metrics__name(route_metrics_t *m, size_t i, const char *method, const char *pattern);
/* Frees m (NULL: no-op); no request may still count in it. */
void route_metrics__free(route_metrics_t *m);
route_slot_t *route_metrics__slot(route_metrics_t *m, size_t i);

/* The slot's route pattern and method ("unmatched" / "any" for NULL). */
const char *route_metrics__route(const route_slot_t *slot);
const char *route_metrics__method(const route_slot_t *slot);

/* Counts one completed request in slot (NULL: the "unmatched" slot, for
 * requests no route took); status 0 = none. Lock-free: a few relaxed
 * atomic adds. */
void route_metrics__count(route_slot_t *slot, int status, int64_t duration_ns, uint64_t bytes_in,
                          uint64_t bytes_out);

/* The slot of the route `router` (a router_t) takes method+path to, or
 * NULL (router.c; the gate asks it for the requests the real-time code
 * answers, which never reach the router). */
void *router__route_metric(void *router, const char *method, const char *path);

#endif
