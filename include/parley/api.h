/*
 * The resources of the HTTP API (src/api/): one file per resource, each a
 * route table of handlers that validate, call the store and answer. The
 * server hands these tables to the router.
 */
#ifndef PARLEY_API_H
#define PARLEY_API_H

#include <stddef.h>
#include <stdint.h>

#include "parley/http.h"

/* Every route table of the server, NULL-terminated (src/api/routes.c). */
extern const http_route_t *const api_route_tables[];

/* ---- the retention sweep (src/api/retention.c) ---- */

struct parley_app;
typedef struct api_retention api_retention_t;

typedef struct api_retention_stats {
    int64_t last_run_ms;       /* wall clock of the last sweep that ran; 0 = none */
    uint64_t messages_deleted; /* by sweeps since the start */
} api_retention_stats_t;

/*
 * Starts the thread that, every interval_s seconds, deletes the messages
 * older than the live message_retention_days (0: none) with
 * api_retention_sweep. NULL when the thread cannot start (logged).
 */
api_retention_t *api_retention_start(struct parley_app *app, unsigned interval_s);
/* Stops it (waits for a sweep in progress to finish its batch); NULL: no-op. */
void api_retention_stop(api_retention_t *r);
/* Process-wide counters of the sweeps. Thread-safe. */
void api_retention_stats(api_retention_stats_t *out);

/*
 * One sweep as of now_ms: each message created more than the retention
 * before now_ms is deleted as a DELETE by its author would (the log, views,
 * search and an event message.deleted with deleted_by null and reason
 * "retention"), its attachments with it, in batches of 100 with no lock held
 * between them. Returns how many it deleted. No-op when retention is 0.
 */
size_t api_retention_sweep(struct parley_app *app, int64_t now_ms);

/* ---- TLS certificate reload (src/api/tls_reload.c) ---- */

/*
 * SIGHUP: reloads the TLS pair (http_tls_reload; `tls` is an http_tls_t,
 * NULL when the server speaks plain HTTP, then only logged) and writes the
 * audit entry tls.reload or tls.reload_refused, durable before it returns.
 * Called by the main thread only.
 */
void api_tls_reload(struct parley_app *app, void *tls);

/* ---- metrics (src/api/h_metrics.c) ---- */

/*
 * The server's figures in the Prometheus text format (what GET /metrics
 * answers): malloc'd text (the caller frees) and its length in *len, or
 * NULL when out of memory. Thread-safe; costs what a system status costs.
 */
char *api_metrics_text(struct parley_app *app, size_t *len);

#endif
