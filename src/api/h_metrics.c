/*
 * GET /metrics: the server's figures in the Prometheus text exposition
 * format (version 0.0.4), for an admin (docs/operations.md, "Metrics").
 *
 * Nothing is measured here: every figure comes from the same collectors as
 * GET /admin/stats and /admin/system/status (store_get_stats, wal stats,
 * realtime_get_stats, view_cache_get_stats, the gate's counters, the
 * process figures of h_admin_stats.c), so the two never disagree and a
 * scrape costs what a system status costs: O(channels) for the channel
 * kinds, no scan of messages; the figures by route are O(routes). The text
 * is written into one growing buffer; every family gets its HELP and TYPE
 * line before its samples, label values are escaped per the format.
 * Histograms (requests by route, the log's syncs) are cumulative since
 * start with fixed buckets, so Prometheus can rate() and
 * histogram_quantile() them; families whose samples all have labels show
 * only the label sets that have counted something (a route never called
 * has no series).
 *
 * api_metrics_text is also what the separate plain listener of
 * --metrics-bind answers (src/http/metrics_listener.c, through server.c).
 */
#include "parley/api.h"

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

/* A le="..." label value: the shortest text that reads back as v. */
static void le_text(char *out, size_t size, double v)
{
    snprintf(out, size, "%.15g", v);
}

typedef struct route_pass {
    text_buf_t *b;
    int part; /* 0: requests, 1: durations, 2: bytes in, 3: bytes out */
} route_pass_t;

static void route_labels(text_buf_t *b, const http_route_metrics_t *m)
{
    text_buf_puts(b, "method=\"");
    label_value(b, m->method);
    text_buf_puts(b, "\",route=\"");
    label_value(b, m->route);
    text_buf_puts(b, "\"");
}

static void route_sample(void *cls, const http_route_metrics_t *m)
{
    route_pass_t *p = cls;
    text_buf_t *b = p->b;
    if (p->part == 0) {
        for (size_t i = 0; i < m->n_codes; i++) {
            text_buf_puts(b, "parley_http_route_requests_total{");
            route_labels(b, m);
            int code = m->codes[i].code;
            if (code < 0)
                out_printf(b, ",code=\"other\"} %" PRIu64 "\n", m->codes[i].n);
            else if (code == 0)
                out_printf(b, ",code=\"none\"} %" PRIu64 "\n", m->codes[i].n);
            else
                out_printf(b, ",code=\"%d\"} %" PRIu64 "\n", code, m->codes[i].n);
        }
    } else if (p->part == 1) {
        for (unsigned i = 0; i <= HTTP_LATENCY_BUCKETS; i++) {
            char le[32] = "+Inf";
            if (i < HTTP_LATENCY_BUCKETS)
                le_text(le, sizeof(le), http_latency_bounds[i]);
            text_buf_puts(b, "parley_http_request_duration_seconds_bucket{");
            route_labels(b, m);
            out_printf(b, ",le=\"%s\"} %" PRIu64 "\n", le, m->le[i]);
        }
        text_buf_puts(b, "parley_http_request_duration_seconds_sum{");
        route_labels(b, m);
        out_printf(b, "} %.9f\n", m->sum_seconds);
        text_buf_puts(b, "parley_http_request_duration_seconds_count{");
        route_labels(b, m);
        out_printf(b, "} %" PRIu64 "\n", m->count);
    } else {
        text_buf_puts(b, p->part == 2 ? "parley_http_request_body_bytes_total{"
                                      : "parley_http_response_body_bytes_total{");
        route_labels(b, m);
        out_printf(b, "} %" PRIu64 "\n", p->part == 2 ? m->bytes_in : m->bytes_out);
    }
}

static void route_metrics(text_buf_t *b)
{
    static const char *const names[4][3] = {
        {"parley_http_route_requests_total", "counter",
         "HTTP requests answered since start, by route pattern, method and status code."},
        {"parley_http_request_duration_seconds", "histogram",
         "Time from the request line to the end of the answer, by route pattern and method."},
        {"parley_http_request_body_bytes_total", "counter",
         "Bytes of request bodies read, by route pattern and method."},
        {"parley_http_response_body_bytes_total", "counter",
         "Bytes of answer bodies sent, by route pattern and method (headers not counted)."},
    };
    for (int part = 0; part < 4; part++) {
        family(b, names[part][0], names[part][1], names[part][2]);
        route_pass_t p = {.b = b, .part = part};
        http_route_metrics_each(route_sample, &p);
    }
    metric_u(b, "parley_http_blocked_total", "counter",
             "Requests answered 403 IP_BLOCKED (a blocked address) since start.",
             http_blocked_hits());
}

/* A histogram family of fixed bounds from per-bucket counts (n bounds,
 * hist[n] over the last); scale divides the bounds and the sum. */
static void fixed_histogram(text_buf_t *b, const char *name, const char *help,
                            const uint64_t *bounds, const uint64_t *hist, unsigned n,
                            uint64_t sum, double scale)
{
    family(b, name, "histogram", help);
    uint64_t total = 0;
    for (unsigned i = 0; i <= n; i++) {
        total += hist[i];
        char le[32] = "+Inf";
        if (i < n)
            le_text(le, sizeof(le), (double)bounds[i] / scale);
        out_printf(b, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, le, total);
    }
    out_printf(b, "%s_sum %.17g\n", name, (double)sum / scale);
    out_printf(b, "%s_count %" PRIu64 "\n", name, total);
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
    metric_u(b, "parley_wal_appends_total", "counter", "Records appended to the log since start.",
             ws.appends_total);
    metric_u(b, "parley_wal_append_bytes_total", "counter",
             "Payload bytes of the records appended to the log since start (before compression).",
             ws.append_bytes_total);
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
    fixed_histogram(b, "parley_wal_fsync_duration_seconds",
                    "fdatasync latency of the log since start.", wal_fsync_bounds_us,
                    ws.fsync_hist, WAL_FSYNC_BUCKETS, ws.fsync_sum_us, 1e6);
    fixed_histogram(b, "parley_wal_group_commit_batch_records",
                    "Records made durable per fdatasync of the log (the group-commit batch) "
                    "since start.",
                    wal_batch_bounds, ws.batch_hist, WAL_BATCH_BUCKETS, ws.batch_sum, 1.0);
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
    metric_u(b, "parley_events_published_total", "counter",
             "Events published to WebSocket and SSE clients since start.", rs.events_published);
    metric_u(b, "parley_events_dropped_total", "counter",
             "Events dropped from the ring before their turn, for its byte bound, since start.",
             rs.events_ring_dropped);
    metric_u(b, "parley_realtime_resyncs_total", "counter",
             "WebSocket and SSE clients told RESYNC_REQUIRED (events lost to them) since start.",
             rs.resyncs);
    metric_u(b, "parley_websocket_slow_consumers_closed_total", "counter",
             "WebSockets closed because their unread queue passed ws_queue_bytes, since start.",
             rs.slow_consumers_closed);
    metric_u(b, "parley_websocket_frames_dropped_total", "counter",
             "Client WebSocket frames dropped over ws_frame_rate since start.",
             rs.frames_dropped);
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

char *api_metrics_text(struct parley_app *app, size_t *len)
{
    text_buf_t b = {0};
    process_metrics(&b, app);
    http_metrics(&b);
    route_metrics(&b);
    wal_metrics(&b, app->store);
    snapshot_metrics(&b, app->store);
    store_metrics(&b, app);
    realtime_metrics(&b, app);
    if (b.failed || b.data == NULL) {
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

static void get_metrics(http_ctx_t *ctx)
{
    size_t len = 0;
    char *text = api_metrics_text(ctx->app, &len);
    if (text == NULL)
        http_reply_error(ctx, HTTP_ERR_UNAVAILABLE, NULL, "out of memory for the metrics");
    else
        http_reply_bytes(ctx, 200, HTTP_METRICS_CONTENT_TYPE, text, len);
    free(text);
}

const http_route_t metrics_routes[] = {
    {"GET", "/metrics", get_metrics, HTTP_ADMIN_READ, "", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
