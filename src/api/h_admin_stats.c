/*
 * The admin dashboard (docs/admin.md, "Dashboard: stats, series, system
 * status, snapshots"): GET /api/v1/admin/stats (counts of what the server
 * holds and does), GET /api/v1/admin/stats/timeseries (counts per minute,
 * hour or day for charts), GET /api/v1/admin/system/status (the process,
 * the disk, the log, the connections) and POST /api/v1/admin/snapshot.
 *
 * Nothing here scans messages: the store keeps counts per bucket as it
 * applies records (src/store/stats.c), the active users come from the
 * policy layer's activity table (src/access/activity.c), the log measures
 * its own syncs (wal_get_stats), the gate counts requests per second. A
 * series of n buckets costs O(log k + n); the stats cost O(users +
 * channels) for the account and channel counts, cheap next to a request's
 * own cost at any size this server is meant for.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "parley/access.h"
#include "parley/app.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/http.h"
#include "parley/realtime.h"
#include "parley/series.h"
#include "parley/store.h"
#include "parley/text_buf.h"
#include "parley/version.h"
#include "parley/view_cache.h"
#include "parley/xalloc.h"
#include "resource.h"

#define SERIES_POINTS_MAX 10000
#define DAY_MS SERIES_DAY_MS

int64_t process_uptime_seconds(const parley_app_t *app)
{
    return (int64_t)((clock_mono_ns() - app->started_mono_ns) / 1000000000);
}

/* {lsn, time, bytes} of the last snapshot (time null when unknown). */
static json_t *snapshot_json(const store_snapshot_info_t *si)
{
    return json_pack("{s:I, s:o, s:I}", "lsn", (json_int_t)si->lsn, "time",
                     time_json(si->at_ms), "bytes", (json_int_t)si->bytes);
}

/* ---- GET /admin/stats ----------------------------------------------------- */

static void get_stats(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    int64_t now = clock_wall_ms();
    store_stats_t st;
    store_get_stats(app->store, &st);
    store_user_counts_t uc;
    store_user_counts(app->store, now, &uc);
    size_t pub, priv, direct;
    chat_channel_kinds(app->store, &pub, &priv, &direct);
    store_snapshot_info_t si;
    store_snapshot_state(app->store, &si);
    realtime_stats_t rs;
    realtime_get_stats(app->realtime, &rs);

    json_t *o = json_object();
    json_object_set_new(o, "users",
                        json_pack("{s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)uc.total,
                                  "active_24h", (json_int_t)activity_active_since(now - DAY_MS),
                                  "active_7d",
                                  (json_int_t)activity_active_since(now - 7 * DAY_MS), "banned",
                                  (json_int_t)uc.banned, "deactivated",
                                  (json_int_t)uc.deactivated));
    json_object_set_new(o, "channels",
                        json_pack("{s:I, s:I, s:I, s:I}", "total",
                                  (json_int_t)(pub + priv + direct), "public", (json_int_t)pub,
                                  "private", (json_int_t)priv, "direct", (json_int_t)direct));
    json_object_set_new(o, "messages", json_pack("{s:I}", "total", (json_int_t)st.messages));
    uint64_t saved = st.file_bytes > st.blob_bytes ? st.file_bytes - st.blob_bytes : 0;
    json_object_set_new(o, "files",
                        json_pack("{s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)st.files,
                                  "live", (json_int_t)st.live_files, "bytes",
                                  (json_int_t)st.file_bytes, "blob_bytes",
                                  (json_int_t)st.blob_bytes, "dedup_saved_bytes",
                                  (json_int_t)saved));
    json_object_set_new(o, "wal",
                        json_pack("{s:I, s:I, s:I}", "bytes", (json_int_t)st.wal_bytes,
                                  "segments", (json_int_t)st.wal_segments, "last_lsn",
                                  (json_int_t)st.last_lsn));
    json_object_set_new(o, "snapshot", snapshot_json(&si));
    json_object_set_new(o, "uptime_seconds",
                        json_integer((json_int_t)process_uptime_seconds(app)));
    json_object_set_new(o, "realtime",
                        json_pack("{s:I, s:I}", "websockets", (json_int_t)rs.websockets,
                                  "event_streams", (json_int_t)rs.event_streams));
    json_object_set_new(o, "requests_per_second", json_real(http_requests_per_second()));
    json_object_set_new(o, "generated_at", time_json(now));
    http_reply_json(ctx, 200, o);
}

/* ---- GET /admin/stats/timeseries ------------------------------------------ */

static const char *const metric_names[] = {"messages", "signups", "uploads", "logins",
                                           "active_users", NULL};
/* The store's metric of each name above but the last (active_users). */
static const enum store_metric metric_of[] = {STORE_METRIC_MESSAGES, STORE_METRIC_SIGNUPS,
                                              STORE_METRIC_UPLOADS, STORE_METRIC_LOGINS};
#define METRIC_ACTIVE 4

static const char *const bucket_names[] = {"minute", "hour", "day", NULL};
/* The span of a series without `from`: an hour of minutes, a day of hours,
 * thirty days. */
static const int64_t default_span[] = {SERIES_HOUR_MS, DAY_MS, 30 * DAY_MS};

/* The index of the value of `param` in names (NULL-terminated), or
 * `absent` when not given; -1 after answering 422. */
static int choice(http_ctx_t *ctx, const char *param, const char *const *names, int absent)
{
    const char *v = http_query(ctx, param);
    if (v == NULL)
        return absent;
    char list[96] = "";
    size_t len = 0;
    for (int i = 0; names[i]; i++) {
        if (strcmp(v, names[i]) == 0)
            return i;
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", names[i]);
    }
    http_reply_invalid(ctx, param, "%s must be one of %s", param, list);
    return -1;
}

/* A time parameter: *ms untouched when absent; false after answering 422. */
static bool time_param(http_ctx_t *ctx, const char *param, int64_t *ms)
{
    const char *v = http_query(ctx, param);
    if (v == NULL)
        return true;
    if (!http_parse_time(v, ms)) {
        http_reply_invalid(ctx, param, "%s must be an RFC 3339 time (UTC)", param);
        return false;
    }
    return true;
}

/* The RFC 3339 text of bucket starts in ascending order: the date is
 * formatted once per day (clock_format_rfc3339), the time of day written
 * from the ms within it, since a bucket starts on a whole minute. A series
 * of 10,000 points is mostly this and the JSON; it is measured in
 * docs/benchmarks.md (P8). */
typedef struct point_time {
    int64_t day;
    char text[CLOCK_RFC3339_LEN];
} point_time_t;

static const char *point_time(point_time_t *pt, int64_t ms)
{
    int64_t day = series_bucket_of(SERIES_DAY, ms);
    if (day != pt->day) {
        clock_format_rfc3339(ms, pt->text);
        pt->day = day;
        return pt->text;
    }
    int64_t in_day = ms - day * DAY_MS;
    int hh = (int)(in_day / SERIES_HOUR_MS), mm = (int)(in_day / SERIES_MINUTE_MS % 60);
    /* "YYYY-MM-DDTHH:MM:00.000Z": hours at 11, minutes at 14 */
    pt->text[11] = (char)('0' + hh / 10);
    pt->text[12] = (char)('0' + hh % 10);
    pt->text[14] = (char)('0' + mm / 10);
    pt->text[15] = (char)('0' + mm % 10);
    return pt->text;
}

#define POINTS_CHUNK 128
#define POINT_TEXT_MAX 64 /* {"t":"<24>","value":<at most 20>} and a comma */

/*
 * The answer's text: head's members (consumed), then "points". A series is
 * up to 10,000 small objects; made as jansson values one by one, that is
 * some 60,000 allocations per answer, and on a server whose heap a million
 * messages have fragmented each costs more (measured: docs/benchmarks.md,
 * P8). So one chunk of POINTS_CHUNK point objects is made once and reused:
 * its values are set, jansson encodes it into a buffer, and the encoded
 * chunks are spliced into one array (as message_page_text splices views).
 * Returns malloc'd text, or NULL when out of memory.
 */
static char *series_text(json_t *head, int64_t first, size_t n, int64_t width,
                         const int64_t *counts)
{
    char *head_text = json_dumps(head, JSON_COMPACT);
    json_decref(head);
    size_t chunk = n < POINTS_CHUNK ? n : POINTS_CHUNK;
    json_t *arr = json_array();
    for (size_t i = 0; i < chunk; i++)
        json_array_append_new(arr, json_pack("{s:s, s:I}", "t", "", "value", (json_int_t)0));
    char *buf = xmalloc(POINTS_CHUNK * POINT_TEXT_MAX + 2);
    text_buf_t out = {0}; /* a try-allocation (its size is the client's): NULL, 503 */
    bool ok = head_text && text_buf_reserve(&out, strlen(head_text) + 16 + n * 48);
    if (ok) {
        text_buf_append(&out, head_text, strlen(head_text) - 1); /* without its '}' */
        text_buf_puts(&out, ",\"points\":[");
    }
    point_time_t pt = {.day = INT64_MIN};
    for (size_t start = 0; ok && start < n; start += chunk) {
        size_t k = n - start < chunk ? n - start : chunk;
        while (json_array_size(arr) > k)
            json_array_remove(arr, json_array_size(arr) - 1);
        for (size_t j = 0; j < k; j++) {
            json_t *p = json_array_get(arr, j);
            int64_t t = (first + (int64_t)(start + j)) * width;
            json_string_setn_nocheck(json_object_get(p, "t"), point_time(&pt, t),
                                     CLOCK_RFC3339_LEN - 1);
            json_integer_set(json_object_get(p, "value"), (json_int_t)counts[start + j]);
        }
        size_t len = json_dumpb(arr, buf, POINTS_CHUNK * POINT_TEXT_MAX + 2, JSON_COMPACT);
        ok = len >= 2 && len <= POINTS_CHUNK * POINT_TEXT_MAX + 2;
        if (ok && start > 0)
            text_buf_append(&out, ",", 1);
        if (ok) /* the chunk's elements, without its brackets */
            text_buf_append(&out, buf + 1, len - 2);
    }
    if (ok)
        text_buf_puts(&out, "]}");
    json_decref(arr);
    free(buf);
    free(head_text);
    if (!ok || out.failed) {
        free(out.data);
        return NULL;
    }
    return out.data;
}

static void get_timeseries(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    int metric = choice(ctx, "metric", metric_names, -2);
    if (metric == -2) {
        http_reply_invalid(ctx, "metric", "metric is required");
        return;
    }
    int bucket;
    if (metric < 0 || (bucket = choice(ctx, "bucket", bucket_names, SERIES_HOUR)) < 0)
        return;
    enum series_level level = (enum series_level)bucket;
    int64_t to = clock_wall_ms(), from = INT64_MIN;
    if (!time_param(ctx, "to", &to) || !time_param(ctx, "from", &from))
        return;
    if (from == INT64_MIN)
        from = to - default_span[level];
    if (to < from) {
        http_reply_invalid(ctx, "to", "to must not be before from");
        return;
    }
    /* Every bucket that meets [from, to), the first one's start at or
     * before from. */
    int64_t first = series_bucket_of(level, from);
    int64_t n = to > from ? series_bucket_of(level, to - 1) - first + 1 : 0;
    if (n > SERIES_POINTS_MAX) {
        http_reply_invalid(ctx, "from", "at most %d buckets: %lld asked for", SERIES_POINTS_MAX,
                           (long long)n);
        return;
    }
    int64_t *counts = xcalloc(n ? (size_t)n : 1, sizeof(*counts));
    if (metric == METRIC_ACTIVE)
        activity_series_read(level, first, (size_t)n, counts);
    else
        store_series_read(app->store, metric_of[metric], level, first, (size_t)n, counts);
    char from_text[CLOCK_RFC3339_LEN], to_text[CLOCK_RFC3339_LEN];
    clock_format_rfc3339(from, from_text); /* not time_json: 0 is a time here, not "none" */
    clock_format_rfc3339(to, to_text);
    json_t *head = json_pack("{s:s, s:s, s:s, s:s}", "metric", metric_names[metric], "bucket",
                             bucket_names[level], "from", from_text, "to", to_text);
    char *text = series_text(head, first, (size_t)n, series_width_ms(level), counts);
    free(counts);
    if (text == NULL)
        http_reply_error(ctx, HTTP_ERR_UNAVAILABLE, NULL, "out of memory for the series");
    else
        http_reply_json_text(ctx, 200, text);
}

/* ---- GET /admin/system/status --------------------------------------------- */

int64_t process_rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return (int64_t)resident * (int64_t)sysconf(_SC_PAGESIZE);
}

int64_t process_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 0;
    int64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* not the descriptor of the listing itself */
}

double timeval_seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static json_t *disk_json(const char *dir)
{
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0)
        return json_null();
    uint64_t unit = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
    uint64_t total = (uint64_t)sv.f_blocks * unit, free_b = (uint64_t)sv.f_bfree * unit;
    return json_pack("{s:s, s:I, s:I, s:I, s:I}", "path", dir, "total_bytes", (json_int_t)total,
                     "used_bytes", (json_int_t)(total - free_b), "free_bytes", (json_int_t)free_b,
                     "available_bytes", (json_int_t)((uint64_t)sv.f_bavail * unit));
}

static void get_system_status(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    wal_stats_t ws;
    store_wal_stats(app->store, &ws);
    store_snapshot_info_t si;
    store_snapshot_state(app->store, &si);
    realtime_stats_t rs;
    realtime_get_stats(app->realtime, &rs);
    view_cache_stats_t vc = {0};
    view_cache_get_stats(app->views, &vc);
    uint64_t lookups = vc.hits + vc.misses;

    json_t *o = json_object();
    json_object_set_new(o, "status", json_string("healthy"));
    json_object_set_new(o, "version", json_string(PARLEY_VERSION));
    json_int_t uptime = (json_int_t)process_uptime_seconds(app);
    json_object_set_new(o, "uptime_seconds", json_integer(uptime));
    /* PlexiChat's name for the same number (docs/api.md, "Differences"). */
    json_object_set_new(o, "uptime", json_integer(uptime));
    json_object_set_new(o, "process",
                        json_pack("{s:I, s:f, s:f, s:I}", "rss_bytes",
                                  (json_int_t)process_rss_bytes(),
                                  "cpu_user_seconds", timeval_seconds(ru.ru_utime),
                                  "cpu_system_seconds", timeval_seconds(ru.ru_stime), "open_fds",
                                  (json_int_t)process_open_fds()));
    json_object_set_new(o, "disk", disk_json(app->config->data_dir));
    json_t *snap = snapshot_json(&si);
    json_object_set_new(snap, "duration_ms", json_integer((json_int_t)si.duration_ms));
    json_object_set_new(snap, "in_progress", json_boolean(si.running));
    store_log_state_t ls;
    store_log_state(app->store, &ls);
    json_object_set_new(snap, "failures", json_integer((json_int_t)ls.snapshot_failures));
    json_object_set_new(snap, "last_failure",
                        ls.snapshot_failed_ms
                            ? json_pack("{s:o, s:s}", "time", time_json(ls.snapshot_failed_ms),
                                        "error", ls.snapshot_error)
                            : json_null());
    json_t *log = log_state_json(&ls);
    json_object_set_new(log, "space_stalls", json_integer((json_int_t)ls.space_stalls));
    json_object_set_new(o, "log", log);
    if (strcmp(ls.state, "ok") != 0)
        json_object_set_new(o, "status", json_string("degraded"));
    json_object_set_new(
        o, "wal",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:f, s:I}}",
                  "segment", (json_int_t)ws.segment_first_lsn, "segment_bytes",
                  (json_int_t)ws.segment_bytes, "bytes", (json_int_t)ws.bytes, "segments",
                  (json_int_t)ws.segments, "last_lsn", (json_int_t)ws.last_lsn, "durable_lsn",
                  (json_int_t)ws.durable_lsn, "fsync", "p50_us", (json_int_t)ws.fsync_p50_us,
                  "p99_us", (json_int_t)ws.fsync_p99_us, "max_us", (json_int_t)ws.fsync_max_us,
                  "count", (json_int_t)ws.syncs, "total", (json_int_t)ws.syncs_total, "batch",
                  "mean", ws.batch_mean, "max", (json_int_t)ws.batch_max));
    json_object_set_new(o, "snapshot", snap);
    json_object_set_new(o, "connections",
                        json_pack("{s:I, s:I, s:I}", "http_in_flight",
                                  (json_int_t)http_requests_in_flight(), "websockets",
                                  (json_int_t)rs.websockets, "event_streams",
                                  (json_int_t)rs.event_streams));
    json_object_set_new(o, "event_ring",
                        json_pack("{s:I, s:I, s:f, s:I, s:I}", "events",
                                  (json_int_t)rs.ring_events, "capacity",
                                  (json_int_t)rs.ring_capacity, "fill",
                                  rs.ring_capacity
                                      ? (double)rs.ring_events / (double)rs.ring_capacity
                                      : 0.0,
                                  "bytes", (json_int_t)rs.ring_bytes, "max_bytes",
                                  (json_int_t)rs.ring_max_bytes));
    json_object_set_new(o, "view_cache",
                        json_pack("{s:I, s:I, s:f, s:I, s:I}", "hits", (json_int_t)vc.hits,
                                  "misses", (json_int_t)vc.misses, "hit_rate",
                                  lookups ? (double)vc.hits / (double)lookups : 0.0, "entries",
                                  (json_int_t)vc.entries, "bytes", (json_int_t)vc.bytes));
    json_object_set_new(o, "requests_per_second", json_real(http_requests_per_second()));
    http_reply_json(ctx, 200, o);
}

/* ---- POST /admin/snapshot ------------------------------------------------- */

static void post_snapshot(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    store_snapshot_info_t si;
    int rc = store_snapshot_now(app->store, &si);
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return;
    }
    /* The snapshot is synced before store_snapshot_now returns; its audit
     * entry (after it in the log) is waited for. */
    rc = store_wait(app->store,
                    audit_write(ctx, 0, "system.snapshot", NULL,
                                json_pack("{s:I, s:I}", "lsn", (json_int_t)si.lsn, "bytes",
                                          (json_int_t)si.bytes)));
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return;
    }
    http_reply_json(ctx, 200,
                    json_pack("{s:I, s:I, s:o, s:I, s:I}", "lsn", (json_int_t)si.lsn, "bytes",
                              (json_int_t)si.bytes, "time", time_json(si.at_ms), "duration_ms",
                              (json_int_t)si.duration_ms, "segments_trimmed",
                              (json_int_t)si.segments_trimmed));
}

const http_route_t admin_stats_routes[] = {
    {"GET", "/api/v1/admin/stats", get_stats, HTTP_ADMIN_READ, "", ""},
    {"GET", "/api/v1/admin/stats/timeseries", get_timeseries, HTTP_ADMIN_READ,
     "metric,bucket,from,to", ""},
    {"GET", "/api/v1/admin/system/status", get_system_status, HTTP_ADMIN_READ, "", ""},
    {"POST", "/api/v1/admin/snapshot", post_snapshot, HTTP_ADMIN_WRITE, "", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
