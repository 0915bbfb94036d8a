/*
 * The server's life: lock the data directory, recover the store from its
 * snapshot and log, start ulfius on libmicrohttpd, wait for a signal, drain,
 * stop, and close the store (which writes a last snapshot).
 *
 * libmicrohttpd runs in thread-pool mode: an internal polling thread per
 * pool member, each with its own epoll set over the connections it accepted
 * (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL + THREAD_POOL_SIZE), so
 * the thread count is fixed by --threads however many clients connect. ulfius
 * needs its URI-log and completion callbacks among the options; the gate
 * (http/gate.c) wraps both. In this mode ulfius ignores its own bind address
 * and timeout fields, so the socket address and timeout go to libmicrohttpd
 * directly.
 *
 * Signals: SIGINT and SIGTERM are blocked in every thread (the mask is set
 * before any thread starts) and taken synchronously by the main thread with
 * sigwait(), so no code runs in a signal handler. SIGHUP, taken the same
 * way, reloads the TLS certificate (api_tls_reload) and the wait goes on. Shutdown stops accepting
 * (stop_accepting below), marks every further answer "Connection: close",
 * waits for requests in flight to finish (bounded), then stops the daemon,
 * which closes idle keep-alive connections. WebSockets and event streams
 * are ended (realtime_shutdown) before the wait: they never end by
 * themselves, and libmicrohttpd needs their sockets back before it stops.
 */
#include "parley/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <ulfius.h>
#include <unistd.h>

#include "parley/access.h"
#include "parley/api.h"
#include "parley/app.h"
#include "parley/audit.h"
#include "parley/clock.h"
#include "parley/datadir.h"
#include "parley/http_server.h"
#include "parley/ip_blocks.h"
#include "parley/ipnet.h"
#include "parley/origin.h"
#include "parley/log.h"
#include "parley/realtime.h"
#include "parley/settings.h"
#include "parley/tools.h"
#include "parley/version.h"
#include "parley/view_cache.h"

#define CONNECTION_MEMORY_BYTES (16 * 1024)

/* Lets the process hold as many descriptors as its hard limit allows:
 * every connection is one, and the log and files need a few more. */
static void raise_fd_limit(unsigned want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)want + 64)
        log_warning("the descriptor limit (%llu) is below max_connections (%u)",
                    (unsigned long long)rl.rlim_cur, want);
}

typedef union listen_addr {
    struct sockaddr sa;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
} listen_addr_t;

static void make_listen_addr(const parley_config_t *cfg, listen_addr_t *addr, bool *is_v6)
{
    memset(addr, 0, sizeof(*addr));
    if (inet_pton(AF_INET, cfg->bind, &addr->v4.sin_addr) == 1) {
        addr->v4.sin_family = AF_INET;
        addr->v4.sin_port = htons(cfg->port);
        *is_v6 = false;
    } else {
        /* config_load accepted it, so it is an IPv6 literal. */
        inet_pton(AF_INET6, cfg->bind, &addr->v6.sin6_addr);
        addr->v6.sin6_family = AF_INET6;
        addr->v6.sin6_port = htons(cfg->port);
        *is_v6 = true;
    }
}

/* The plain /metrics listener of --metrics-bind (src/http/metrics_listener.c). */
static char *render_metrics(void *app, size_t *len)
{
    return api_metrics_text(app, len);
}

static http_metrics_listener_t *start_metrics_listener(const parley_config_t *cfg,
                                                       parley_app_t *app)
{
    char host[64];
    uint16_t port;
    bool is_v6;
    if (config_parse_host_port(cfg->metrics_bind, host, &port, &is_v6) != 0)
        return NULL; /* config_load checked it */
    return http_metrics_listener_start(host, port, is_v6, render_metrics, app);
}

/* The live settings' starting values: the configuration's (flags,
 * environment, file; docs/admin.md, "Settings"). The rate limits start from
 * the PlexiChat table when limits are on (--rate-limit > 0, which is also
 * the default category's), all 0 when they are off. */
static void configured_settings(const parley_config_t *cfg, store_settings_t *st)
{
    memset(st, 0, sizeof(*st));
    snprintf(st->server_name, sizeof(st->server_name), "%s", cfg->server_name);
    snprintf(st->server_description, sizeof(st->server_description), "%s",
             cfg->server_description);
    st->registration = (int)cfg->registration;
    st->require_mfa_for_admins = cfg->require_mfa_for_admins != 0;
    st->max_upload_bytes = cfg->max_upload_bytes;
    st->storage_quota_bytes = cfg->storage_quota_bytes;
    st->upload_bytes_per_minute = cfg->upload_bytes_per_minute;
    snprintf(st->allowed_types, sizeof(st->allowed_types), "%s", cfg->allowed_types);
    st->message_retention_days = cfg->message_retention_days;
    snprintf(st->default_channel, sizeof(st->default_channel), "%s", cfg->default_channel);
    /* The configuration has resolved them (--rate-limit 0: all off but
     * those given their own value). */
    st->rate_limits[SETTINGS_RATE_DEFAULT] = cfg->rate_limit;
    st->rate_limits[SETTINGS_RATE_AUTH] = cfg->rate_limit_auth;
    st->rate_limits[SETTINGS_RATE_MESSAGES] = cfg->rate_limit_messages;
    st->rate_limits[SETTINGS_RATE_UPLOADS] = cfg->rate_limit_uploads;
    st->rate_limits[SETTINGS_RATE_SEARCH] = cfg->rate_limit_search;
    st->rate_limits[SETTINGS_RATE_ADMIN] = cfg->rate_limit_admin;
    st->audit_max_entries = cfg->audit_max_entries;
    st->audit_max_days = cfg->audit_max_days;
    char items[IPNET_LIST_MAX][IPNET_TEXT_MAX];
    int n = ipnet_split_list(cfg->trusted_proxies, items, IPNET_LIST_MAX);
    for (int i = 0; i < n && (size_t)i < SETTINGS_PROXIES_MAX; i++) {
        size_t len = strlen(items[i]); /* checked by the configuration */
        if (len <= SETTINGS_PROXY_LEN)
            memcpy(st->trusted_proxies[st->n_trusted_proxies++], items[i], len + 1);
    }
    char origins[ORIGIN_LIST_MAX][ORIGIN_LEN_MAX + 1];
    n = origin_split_list(cfg->cors_origins, origins, ORIGIN_LIST_MAX); /* checked too */
    for (int i = 0; i < n; i++)
        memcpy(st->cors_origins[st->n_cors_origins++], origins[i], sizeof(origins[i]));
    st->hsts_max_age_seconds = cfg->hsts_max_age_seconds;
}

/* The settings hook of the parts of http/ that keep their own copy. The
 * rate limiter's and the proxy list's hooks are added beside it. */
static void apply_http_settings(void *ctx, const store_settings_t *st)
{
    (void)ctx;
    gate_set_max_upload(st->max_upload_bytes);
    http_set_admin_mfa_required(st->require_mfa_for_admins);
    const char *proxies[SETTINGS_PROXIES_MAX];
    for (size_t i = 0; i < st->n_trusted_proxies; i++)
        proxies[i] = st->trusted_proxies[i];
    /* Each was checked (the configuration, the PATCH): a refusal is a bug. */
    if (http_trusted_proxies_set(proxies, st->n_trusted_proxies) != 0)
        log_error("settings: trusted_proxies not applied");
    else if (st->n_trusted_proxies > 0)
        log_info("trusting X-Forwarded-For and Forwarded from %zu addresses or ranges",
                 st->n_trusted_proxies);
    const char *origins[SETTINGS_ORIGINS_MAX];
    for (size_t i = 0; i < st->n_cors_origins; i++)
        origins[i] = st->cors_origins[i];
    if (http_cors_origins_set(origins, st->n_cors_origins) != 0)
        log_error("settings: cors_origins not applied");
    http_tls_set_hsts_max_age(st->hsts_max_age_seconds);
}

static void put_default_header(void *ctx, const char *name, const char *value)
{
    u_map_put(ctx, name, value);
}

/* The audit log's bounds: the next entry written trims to them. */
static void apply_audit_limits(void *ctx, const store_settings_t *st)
{
    store_audit_set_limits(ctx, st->audit_max_entries, st->audit_max_days);
}

/* The rate limits per category, by their shared names ("auth"...). */
static void apply_rate_limits(void *ctx, const store_settings_t *st)
{
    auth_rate_limiter_t *limiter = ctx;
    for (int i = 0; i < SETTINGS_RATE_COUNT; i++) {
        int category = auth_rate_category_from_name(settings_rate_names[i]);
        if (category < 0 ||
            auth_rate_set_category_limit(limiter, category, (int)st->rate_limits[i]) != AUTH_OK)
            log_error("settings: rate limit %s not applied", settings_rate_names[i]);
    }
}

/* The router as the real-time service calls it (realtime_call_fn). */
static int call_router(void *router, const char *method, const char *path, json_t *body,
                       const void *preauth, const char *request_id, json_t **answer)
{
    return router_call(router, method, path, body, preauth, request_id, answer);
}

/*
 * Closes the listening socket under libmicrohttpd's feet, so that new
 * connections are refused while the requests in flight finish.
 * MHD_quiesce_daemon() is not used: in thread-pool mode with epoll it races
 * with the workers, which remove the same descriptor from their epoll sets
 * once they see the daemon quiesced, and whichever loses gets ENOENT and
 * MHD_PANIC aborts the process (seen once in a few thousand stops of the
 * e2e suite: "Failed to remove listen FD from epoll set"). Instead an
 * eventfd, which never becomes readable, is put in the listener's place
 * with dup2(): the socket's last descriptor goes, so the kernel closes it
 * (connections are refused) and drops it from every epoll set itself; the
 * workers never see an event for that number again, and MHD_stop_daemon
 * later closes the eventfd as if it were its socket.
 */
static void stop_accepting(struct MHD_Daemon *daemon)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_LISTEN_FD);
    if (info == NULL || info->listen_fd == MHD_INVALID_SOCKET)
        return;
    int placeholder = eventfd(0, EFD_CLOEXEC);
    if (placeholder < 0 || dup2(placeholder, info->listen_fd) < 0)
        log_warning("cannot close the listening socket: %s", strerror(errno));
    if (placeholder >= 0)
        close(placeholder);
}

static void drain(struct MHD_Daemon *daemon, realtime_t *rt, unsigned drain_timeout)
{
    gate_begin_drain();
    stop_accepting(daemon);
    /* WebSockets and event streams never end by themselves; libmicrohttpd
     * must get their sockets back before it stops. */
    realtime_shutdown(rt);
    /* Requests being answered, and those whose clients are still connected,
     * are waited for up to drain_timeout; one whose client has closed its
     * end is not (see gate.c, the in-flight list). */
    int64_t deadline = clock_mono_ns() + (int64_t)drain_timeout * 1000000000;
    while (gate_in_flight_waited() > 0 && clock_mono_ns() < deadline)
        usleep(5000);
    if (gate_in_flight() > 0)
        log_warning("stopping with %u requests still in flight", gate_in_flight());
}

int server_run(const parley_config_t *cfg)
{
    parley_app_t app = {.config = cfg, .started_mono_ns = clock_mono_ns()};
    int rc = 1;

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP); /* reloads the TLS certificate */
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    /* Encryption at rest (src/tools/keys.c): checked before the lock writes anything. */
    static uint8_t data_key[CRYPT_KEY_BYTES];
    const uint8_t *key = cfg->encryption_key_file[0] ? data_key : NULL;
    if ((key && crypt_key_load(cfg->encryption_key_file, data_key, err, sizeof(err)) != 0) ||
        crypt_dir_check(cfg->data_dir, key, cfg->encryption_key_file, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return 2;
    }
    /* TLS files are checked before anything is written to the data dir. */
    http_tls_t *tls = NULL;
    if (cfg->tls_cert[0] != '\0' &&
        (tls = http_tls_open(cfg->tls_cert, cfg->tls_key, err, sizeof(err))) == NULL) {
        log_error("%s", err);
        return 2;
    }
    http_tls_redirect_t *redirect = NULL;
    int lock_fd = datadir_lock(cfg->data_dir, err, sizeof(err));
    if (lock_fd < 0 || crypt_dir_init(cfg->data_dir, key, err, sizeof(err)) != 0) {
        log_error("%s", err);
        datadir_unlock(lock_fd);
        return 1;
    }
    raise_fd_limit(cfg->max_connections);

    static const enum wal_fsync policies[] = {
        [FSYNC_ALWAYS] = WAL_FSYNC_ALWAYS,
        [FSYNC_BATCH] = WAL_FSYNC_BATCH,
        [FSYNC_NONE] = WAL_FSYNC_NONE,
    };
    store_options_t so = {
        .fsync = policies[cfg->fsync],
        .snapshot_every_records = cfg->snapshot_every_records,
        .snapshot_every_seconds = cfg->snapshot_every_seconds,
        .audit_max_entries = cfg->audit_max_entries,
        .audit_max_days = cfg->audit_max_days,
        .encryption_key = key,
    };
    if (auth_keys_load(cfg->data_dir, getenv("PARLEY_JWT_SECRET"), &app.keys, err,
                       sizeof(err)) != AUTH_OK) {
        log_error("%s", err);
        datadir_unlock(lock_fd);
        return 1;
    }
    if (store_open(&app.store, cfg->data_dir, &so, err, sizeof(err)) != 0) {
        log_error("%s", err);
        datadir_unlock(lock_fd);
        return 1;
    }
    activity_seed(app.store); /* the dashboard's active users, from what the log keeps */
    app.blobs = blobs_open(cfg->data_dir, err, sizeof(err));
    if (app.blobs == NULL) {
        log_error("%s", err);
        store_close(app.store);
        datadir_unlock(lock_fd);
        return 1;
    }
    crypt_blobs_key(app.blobs, key);
    app.login_limiter = auth_login_limiter_new(0);
    int limits[AUTH_RATE_CATEGORIES] = {
        [AUTH_RATE_DEFAULT] = (int)cfg->rate_limit,
        [AUTH_RATE_AUTH] = (int)cfg->rate_limit_auth,
        [AUTH_RATE_MESSAGES] = (int)cfg->rate_limit_messages,
        [AUTH_RATE_UPLOADS] = (int)cfg->rate_limit_uploads,
        [AUTH_RATE_SEARCH] = (int)cfg->rate_limit_search,
        [AUTH_RATE_ADMIN] = (int)cfg->rate_limit_admin,
    };
    app.rate_limiter = auth_rate_limiter_new(limits, 0);
    if (cfg->register_rate > 0) {
        int per_hour[AUTH_RATE_CATEGORIES] = {[AUTH_RATE_AUTH] = (int)cfg->register_rate};
        app.register_limiter = auth_rate_limiter_new_window(per_hour, 10000, 3600);
    }
    app.views = view_cache_new(cfg->view_cache_bytes);
    store_settings_t configured;
    configured_settings(cfg, &configured);
    store_settings_add_hook(app.store, apply_http_settings, NULL);
    store_settings_add_hook(app.store, apply_rate_limits, app.rate_limiter);
    store_settings_add_hook(app.store, apply_audit_limits, app.store);

    router_t *router = router_new(api_route_tables, &app);
    app.router = router;
    gate_configure(cfg->max_body_bytes, cfg->max_upload_bytes, router_takes_upload, router);
    gate_limits_t gate_limits = {
        .max_connections_per_ip = cfg->max_connections_per_ip,
        .header_timeout = cfg->header_timeout,
        .idle_timeout = cfg->idle_timeout,
        .body_min_rate = cfg->body_min_rate,
        .body_budget_bytes = cfg->body_budget_bytes,
        .public_body_bytes = cfg->public_body_bytes,
        .route_flags = router_route_flags,
    };
    gate_set_limits(&gate_limits);
    _Static_assert(CONFIG_COOKIE_SECURE_AUTO == HTTP_COOKIE_SECURE_AUTO &&
                       CONFIG_COOKIE_SECURE_ALWAYS == HTTP_COOKIE_SECURE_ALWAYS &&
                       CONFIG_COOKIE_SECURE_NEVER == HTTP_COOKIE_SECURE_NEVER,
                   "--cookie-secure's values are the http layer's");
    http_session_cookies_secure((int)cfg->cookie_secure);
    store_settings_seed(app.store, &configured); /* after the gate: its hook sets the limit */
    api_retention_t *retention = NULL;
    app.realtime = realtime_start(&app, call_router, router, err, sizeof(err));
    if (app.realtime == NULL) {
        log_error("%s", err);
        goto out_router;
    }
    gate_set_takeover(realtime_claims, realtime_accept, app.realtime);
    retention = api_retention_start(&app, cfg->retention_sweep_interval);
    gate_set_blocklist(store_ip_block_set(app.store));
    struct _u_instance instance;
    if (ulfius_init_instance(&instance, cfg->port, NULL, NULL) != U_OK) {
        log_error("cannot initialise ulfius");
        goto out_router;
    }
    instance.max_post_body_size = cfg->max_body_bytes;
    /* Multipart bodies go through ulfius's post processor: file parts to
     * upload_chunk (streamed to disk), other fields to map_post_body. */
    instance.allowed_post_processor = U_POST_PROCESS_MULTIPART_FORMDATA;
    instance.max_post_param_size = 64 * 1024;
    upload_ctx_t upload_ctx = {.app = &app, .router = router};
    ulfius_set_upload_file_callback_function(&instance, upload_chunk, &upload_ctx);
    http_security_headers_each(put_default_header, instance.default_headers);
    u_map_put(instance.default_headers, "Cache-Control", "no-store");
    ulfius_add_endpoint_by_val(&instance, "*", NULL, "*", 0, router_dispatch, router);

    listen_addr_t addr;
    bool is_v6;
    make_listen_addr(cfg, &addr, &is_v6);
    struct MHD_OptionItem options[16] = {
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)gate_request_completed, NULL},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)gate_uri_logger, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->idle_timeout, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->max_connections, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        /* Each connection's buffer for the request line, headers and the
         * answer's headers: libmicrohttpd's default is 32 KiB, which an
         * upgraded WebSocket keeps for its whole life (measured: 1,000 idle
         * WebSockets cost 33 MB with it, 25 MB with 16 KiB). 16 KiB still
         * takes request headers of 12 KiB (more is answered 431 as JSON). */
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY_BYTES, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, &addr.sa},
        /* One thread is libmicrohttpd's plain internal thread, not a pool. */
        {cfg->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)cfg->threads,
         NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_UPGRADE |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (is_v6)
        flags |= MHD_USE_IPv6;
    flags |= http_tls_mhd_options(tls, options, sizeof(options) / sizeof(options[0]));
    if (cfg->tls_redirect_port != 0 &&
        (redirect = http_tls_redirect_start(cfg->bind, cfg->tls_redirect_port, cfg->port, router,
                                            err, sizeof(err))) == NULL) {
        log_error("%s", err);
        goto out_instance;
    }
    /* Before the main port: once it answers, the metrics listener does too. */
    http_metrics_listener_t *metrics_listener = NULL;
    if (cfg->metrics_bind[0] && (metrics_listener = start_metrics_listener(cfg, &app)) == NULL) {
        log_error("cannot listen on metrics_bind %s (is the port in use?)", cfg->metrics_bind);
        goto out_instance;
    }
    if (ulfius_start_framework_with_mhd_options(&instance, flags, options) != U_OK) {
        log_error("cannot listen on %s port %u (is the port in use?)", cfg->bind, cfg->port);
        http_metrics_listener_stop(metrics_listener);
        goto out_instance;
    }
    log_info("parley %s listening on %s port %u (%s) with %u worker threads, data in %s",
             PARLEY_VERSION, cfg->bind, cfg->port, tls ? "HTTPS" : "HTTP", cfg->threads,
             cfg->data_dir);

    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0 || sig == SIGHUP) {
        if (sig == SIGHUP)
            api_tls_reload(&app, tls);
        sig = 0;
    }
    log_info("received %s; finishing requests in flight", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_metrics_listener_stop(metrics_listener);
    drain(instance.mhd_daemon, app.realtime, cfg->drain_timeout);
    http_tls_redirect_stop(redirect);
    redirect = NULL;
    ulfius_stop_framework(&instance);
    gate_stop();
    view_cache_stats_t views;
    view_cache_get_stats(app.views, &views);
    log_info("stopped; message view cache: %llu hits, %llu misses, %zu views in %zu bytes",
             (unsigned long long)views.hits, (unsigned long long)views.misses, views.entries,
             views.bytes);
    rc = 0;

out_instance:
    http_tls_redirect_stop(redirect);
    realtime_shutdown(app.realtime);
    ulfius_clean_instance(&instance);
out_router:
    api_retention_stop(retention);
    realtime_free(app.realtime);
    router_free(router);
    if (store_close(app.store) != 0)
        rc = 1;
    blobs_close(app.blobs);
    auth_login_limiter_free(app.login_limiter);
    auth_rate_limiter_free(app.rate_limiter);
    auth_rate_limiter_free(app.register_limiter);
    view_cache_free(app.views);
    auth_keys_wipe(&app.keys);
    datadir_unlock(lock_fd);
    http_tls_close(tls);
    return rc;
}
