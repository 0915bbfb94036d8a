/*
 * GET /metrics: the server's figures in the Prometheus text exposition
 * format (version 0.0.4), for an admin (docs/operations.md, "Metrics").
 *
 * Nothing is measured here: every figure comes from the same collectors as
 * GET /admin/stats and /admin/system/status (store_get_stats, wal stats,
 * realtime_get_stats, view_cache_get_stats, the gate's counters, the
 * process figures of h_admin_stats.c), so the two never disagree and a
 * scrape costs what a system status costs: O(channels) for the channel
 * kinds, no scan of messages. The text is written into one growing buffer;
 * every family gets its HELP and TYPE line before its samples, label
 * values are escaped per the format.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "parley/app.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/http.h"
#include "parley/realtime.h"
#include "parley/store.h"
#include "parley/text_buf.h"
#include "parley/version.h"
#include "parley/view_cache.h"
#include "resource.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends printf-formatted text (one line is short: a name, labels, a
 * number). */
static void out_printf(text_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(text_buf_t *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        text_buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* The HELP and TYPE lines of a family. */
static void family(text_buf_t *b, const char *name, const char *type, const char *help)
{
    out_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value escaped per the format: backslash, double quote and line
 * feed as \\, \" and \n. */
static void label_value(text_buf_t *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            text_buf_puts(b, "\\\\");
        else if (*v == '"')
            text_buf_puts(b, "\\\"");
        else if (*v == '\n')
            text_buf_puts(b, "\\n");
        else
            text_buf_append(b, v, 1);
    }
}

/* One family of a single unlabelled sample. */
static void metric_u(text_buf_t *b, const char *name, const char *type, const char *help,
                     uint64_t v)
{
    family(b, name, type, help);
    out_printf(b, "%s %" PRIu64 "\n", name, v);
}

static void metric_f(text_buf_t *b, const char *name, const char *type, const char *help,
                     double v)
{
    family(b, name, type, help);
    out_printf(b, "%s %.17g\n", name, v);
}

static void process_metrics(text_buf_t *b, const parley_app_t *app)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    metric_f(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent.",
             timeval_seconds(ru.ru_utime) + timeval_seconds(ru.ru_stime));
    metric_u(b, "process_resident_memory_bytes", "gauge", "Resident memory size.",
             (uint64_t)process_rss_bytes());
    metric_u(b, "process_open_fds", "gauge", "Open file descriptors.",
             (uint64_t)process_open_fds());
    metric_u(b, "process_start_time_seconds", "gauge",
             "Start time of the process since the Unix epoch.",
             (uint64_t)(clock_wall_ms() / 1000 - process_uptime_seconds(app)));
    family(b, "parley_build_info", "gauge", "The server's version (always 1).");
    text_buf_puts(b, "parley_build_info{version=\"");
    label_value(b, PARLEY_VERSION);
    text_buf_puts(b, "\"} 1\n");
}

static void http_metrics(text_buf_t *b)
{
    static const char *const classes[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
    http_answer_counts_t hc;
    http_requests_answered(&hc);
    family(b, "parley_http_requests_total", "counter",
           "HTTP requests answered since start, by status class (none: no status).");
    for (unsigned i = 0; i < 6; i++)
        out_printf(b, "parley_http_requests_total{code=\"%s\"} %" PRIu64 "\n", classes[i],
                   hc.by_class[i]);
    metric_u(b, "parley_http_rate_limited_total", "counter",
             "HTTP requests answered 429 (rate limits and throttles) since start.", hc.too_many);
    metric_u(b, "parley_http_requests_in_flight", "gauge",
             "HTTP requests started and not finished.", http_requests_in_flight());
    metric_f(b, "parley_http_requests_per_second", "gauge",
             "HTTP requests received per second, averaged over the last minute.",
             http_requests_per_second());
}

static void wal_metrics(text_buf_t *b, store_t *store)
{
    wal_stats_t ws;
    store_wal_stats(store, &ws);
    metric_u(b, "parley_wal_bytes", "gauge", "Bytes of every log segment on disk.", ws.bytes);
    metric_u(b, "parley_wal_segments", "gauge", "Log segments on disk.", ws.segments);
    metric_u(b, "parley_wal_last_lsn", "gauge", "The last record's LSN.", ws.last_lsn);
    metric_u(b, "parley_wal_durable_lsn", "gauge", "The last LSN synced to disk.",
             ws.durable_lsn);
    metric_u(b, "parley_wal_syncs_total", "counter", "fdatasyncs of the log since start.",
             ws.syncs_total);
    metric_u(b, "parley_wal_space_stalls_total", "counter",
             "Writes refused because the disk was full, since start.", ws.space_stalls);
    /* Gauges, not a summary: the log keeps a histogram of the last minute,
     * not a running sum of every sync since start. */
    metric_f(b, "parley_wal_fsync_p50_seconds", "gauge",
             "fdatasync latency of the log, median over the last minute (0: no sync).",
             (double)ws.fsync_p50_us / 1e6);
    metric_f(b, "parley_wal_fsync_p99_seconds", "gauge",
             "fdatasync latency of the log, 99th percentile over the last minute.",
             (double)ws.fsync_p99_us / 1e6);
    metric_f(b, "parley_wal_fsync_max_seconds", "gauge",
             "fdatasync latency of the log, largest over the last minute.",
             (double)ws.fsync_max_us / 1e6);
    metric_u(b, "parley_wal_fsyncs_window", "gauge", "fdatasyncs of the log in the last minute.",
             ws.syncs);
    metric_f(b, "parley_wal_group_commit_batch_mean", "gauge",
             "Records made durable per sync, mean over the last minute.", ws.batch_mean);
    metric_u(b, "parley_wal_group_commit_batch_max", "gauge",
             "Records made durable per sync, largest over the last minute.", ws.batch_max);
}

static void snapshot_metrics(text_buf_t *b, store_t *store)
{
    store_snapshot_info_t si;
    store_snapshot_state(store, &si);
    store_log_state_t ls;
    store_log_state(store, &ls);
    metric_u(b, "parley_snapshot_last_lsn", "gauge", "LSN of the newest snapshot (0: none).",
             si.lsn);
    metric_u(b, "parley_snapshot_bytes", "gauge", "Size of the newest snapshot's file.",
             si.bytes);
    metric_f(b, "parley_snapshot_time_seconds", "gauge",
             "When the newest snapshot was committed, since the Unix epoch (0: unknown).",
             (double)si.at_ms / 1000.0);
    metric_f(b, "parley_snapshot_duration_seconds", "gauge",
             "How long the newest snapshot took to write.", (double)si.duration_ms / 1000.0);
    metric_u(b, "parley_snapshot_in_progress", "gauge", "1 while a snapshot is being written.",
             si.running ? 1 : 0);
    metric_u(b, "parley_snapshot_failures_total", "counter", "Snapshots that failed since start.",
             ls.snapshot_failures);
    static const char *const states[] = {"ok", "no_space", "read_only"};
    family(b, "parley_log_state", "gauge",
           "The log's state: 1 for the current one (ok, no_space, read_only).");
    for (unsigned i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        out_printf(b, "parley_log_state{state=\"%s\"} %d\n", states[i],
                   strcmp(ls.state, states[i]) == 0);
}

static void store_metrics(text_buf_t *b, parley_app_t *app)
{
    store_stats_t st;
    store_get_stats(app->store, &st);
    store_user_counts_t uc;
    store_user_counts(app->store, clock_wall_ms(), &uc);
    size_t pub, priv, direct;
    chat_channel_kinds(app->store, &pub, &priv, &direct);
    metric_u(b, "parley_users", "gauge", "Accounts not deleted.", uc.total);
    metric_u(b, "parley_users_banned", "gauge", "Accounts under a ban.", uc.banned);
    family(b, "parley_channels", "gauge", "Channels, by kind.");
    out_printf(b, "parley_channels{kind=\"public\"} %zu\n", pub);
    out_printf(b, "parley_channels{kind=\"private\"} %zu\n", priv);
    out_printf(b, "parley_channels{kind=\"direct\"} %zu\n", direct);
    metric_u(b, "parley_messages", "gauge",
             "Message records held (messages.total of GET /admin/stats).", st.messages);
    metric_u(b, "parley_files", "gauge", "File records held.", st.files);
    metric_u(b, "parley_files_live", "gauge", "Files not deleted.", st.live_files);
    metric_u(b, "parley_file_bytes", "gauge", "Sizes of the live files added up.",
             st.file_bytes);
    metric_u(b, "parley_blob_bytes", "gauge", "Sizes of the distinct blobs stored.",
             st.blob_bytes);
}

static void realtime_metrics(text_buf_t *b, parley_app_t *app)
{
    realtime_stats_t rs;
    realtime_get_stats(app->realtime, &rs);
    metric_u(b, "parley_websocket_connections", "gauge", "Open WebSocket connections.",
             rs.websockets);
    metric_u(b, "parley_sse_connections", "gauge", "Open event streams (SSE).",
             rs.event_streams);
    metric_u(b, "parley_event_ring_events", "gauge", "Events held in the event ring.",
             rs.ring_events);
    metric_u(b, "parley_event_ring_capacity", "gauge", "Events the event ring can hold.",
             rs.ring_capacity);
    metric_u(b, "parley_event_ring_bytes", "gauge", "Bytes of the events in the ring.",
             rs.ring_bytes);
    metric_u(b, "parley_event_ring_max_bytes", "gauge",
             "The event ring's bound in bytes (0: none).", rs.ring_max_bytes);
    view_cache_stats_t vc = {0};
    view_cache_get_stats(app->views, &vc);
    metric_u(b, "parley_view_cache_hits_total", "counter",
             "Message views served from the view cache.", vc.hits);
    metric_u(b, "parley_view_cache_misses_total", "counter",
             "Message views rendered for want of a cached one.", vc.misses);
    metric_u(b, "parley_view_cache_entries", "gauge", "Views held in the view cache.",
             vc.entries);
    metric_u(b, "parley_view_cache_bytes", "gauge", "Bytes held in the view cache.", vc.bytes);
}

static void get_metrics(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    text_buf_t b = {0};
    process_metrics(&b, app);
    http_metrics(&b);
    wal_metrics(&b, app->store);
    snapshot_metrics(&b, app->store);
    store_metrics(&b, app);
    realtime_metrics(&b, app);
    if (b.failed || b.data == NULL)
        http_reply_error(ctx, HTTP_ERR_UNAVAILABLE, NULL, "out of memory for the metrics");
    else
        http_reply_bytes(ctx, 200, METRICS_CONTENT_TYPE, b.data, b.len);
    free(b.data);
}

const http_route_t metrics_routes[] = {
    {"GET", "/metrics", get_metrics, HTTP_ADMIN_READ},
    {NULL, NULL, NULL, 0},
};
