/*
 * Configuration of `parley serve`.
 *
 * Every setting is one row of `settings[]`: its JSON key, its flag, its
 * environment variable, its type and bounds, and its help text. The same row
 * drives the three sources (defaults < config file < environment < flags),
 * the validation and `parley --help`, so a setting cannot be documented under
 * one name and read under another. Values from every source pass through one
 * text parser per type; a config-file number is printed back to text first,
 * so a file and a flag accept exactly the same values.
 *
 * A bad value is fatal: the caller prints the one-line message (which names
 * the setting and where it came from) and exits.
 */
#include "parley/config.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parley/ipnet.h"
#include "parley/origin.h"

enum setting_type {
    SET_ADDRESS,   /* IP literal */
    SET_PATH,      /* non-empty string */
    SET_UNSIGNED,  /* unsigned within [min, max] */
    SET_LOG_LEVEL,
    SET_FSYNC,
    SET_TEXT,      /* a non-empty string of printable ASCII */
    SET_TEXT_OPT,  /* the same, or empty */
    SET_BOOL,      /* true | false (an unsigned 0 or 1) */
    SET_REGISTRATION,
    SET_CIDR_LIST, /* comma-separated addresses or CIDR ranges; may be empty */
    SET_ORIGIN_LIST, /* comma-separated web origins (origin.h); may be empty */
    SET_COOKIE_SECURE, /* auto | always | never (enum config_cookie_secure) */
    /* metrics and logs (issue 16): */
    SET_HOST_PORT_OPT, /* ADDR:PORT or [IPv6]:PORT (config_parse_host_port), or empty */
    SET_LOG_FORMAT,  /* text | json */
};

typedef struct setting {
    const char *key;
    const char *flag;
    const char *env;
    enum setting_type type;
    size_t offset;      /* into parley_config_t */
    size_t size;        /* of the field */
    unsigned long long min, max;
    const char *help;
} setting_t;

#define FIELD(name) offsetof(parley_config_t, name), sizeof(((parley_config_t *)0)->name)

static const setting_t settings[] = {
    {"bind", "--bind", "PARLEY_BIND", SET_ADDRESS, FIELD(bind), 0, 0,
     "IP address to listen on (IPv4 or IPv6 literal)"},
    {"port", "--port", "PARLEY_PORT", SET_UNSIGNED, FIELD(port), 1, 65535,
     "TCP port to listen on"},
    {"data_dir", "--data-dir", "PARLEY_DATA_DIR", SET_PATH, FIELD(data_dir), 0, 0,
     "directory for the log, snapshots and files (created if missing)"},
    {"threads", "--threads", "PARLEY_THREADS", SET_UNSIGNED, FIELD(threads), 1, 1024,
     "HTTP worker threads (handlers block on fsync, so more than the cores)"},
    {"max_body_bytes", "--max-body-bytes", "PARLEY_MAX_BODY_BYTES", SET_UNSIGNED,
     FIELD(max_body_bytes), 1024, 1ULL << 30, "largest JSON request body, in bytes"},
    {"idle_timeout", "--idle-timeout", "PARLEY_IDLE_TIMEOUT", SET_UNSIGNED,
     FIELD(idle_timeout), 1, 86400, "seconds before an idle connection is closed"},
    {"drain_timeout", "--drain-timeout", "PARLEY_DRAIN_TIMEOUT", SET_UNSIGNED,
     FIELD(drain_timeout), 1, 3600,
     "seconds a stop waits for requests in flight whose clients are still connected"},
    {"max_connections", "--max-connections", "PARLEY_MAX_CONNECTIONS", SET_UNSIGNED,
     FIELD(max_connections), 16, 1000000,
     "most simultaneous client connections (shared evenly by the threads)"},
    {"max_connections_per_ip", "--max-connections-per-ip", "PARLEY_MAX_CONNECTIONS_PER_IP",
     SET_UNSIGNED, FIELD(max_connections_per_ip), 0, 1000000,
     "most simultaneous connections from one address (IPv6: one /64; trusted proxies exempt); "
     "0 = no limit"},
    {"header_timeout", "--header-timeout", "PARLEY_HEADER_TIMEOUT", SET_UNSIGNED,
     FIELD(header_timeout), 1, 3600,
     "seconds a request may take from its first line to the end of its headers"},
    {"body_min_rate", "--body-min-rate", "PARLEY_BODY_MIN_RATE", SET_UNSIGNED,
     FIELD(body_min_rate), 0, 1u << 30,
     "bytes per second a request body must average after header_timeout seconds; 0 = any"},
    {"body_budget_bytes", "--body-budget-bytes", "PARLEY_BODY_BUDGET_BYTES", SET_UNSIGNED,
     FIELD(body_budget_bytes), 1u << 20, 1ULL << 40,
     "request body bytes held in memory at once by all requests (more: 503)"},
    {"public_body_bytes", "--public-body-bytes", "PARLEY_PUBLIC_BODY_BYTES", SET_UNSIGNED,
     FIELD(public_body_bytes), 1024, 1ULL << 30,
     "largest body of a request without credentials (registration, login...)"},
    {"register_rate", "--register-rate", "PARLEY_REGISTER_RATE", SET_UNSIGNED,
     FIELD(register_rate), 0, 1000000,
     "registrations per hour from one address; 0 = no limit (rate_limit 0 turns it off)"},
    {"log_level", "--log-level", "PARLEY_LOG_LEVEL", SET_LOG_LEVEL, FIELD(log_level), 0, 0,
     "error | warning | info | debug"},
    {"fsync", "--fsync", "PARLEY_FSYNC", SET_FSYNC, FIELD(fsync), 0, 0,
     "always (answer after fdatasync) | batch (sync every 10 ms) | none"},
    {"access_token_ttl", "--access-token-ttl", "PARLEY_ACCESS_TOKEN_TTL", SET_UNSIGNED,
     FIELD(access_token_ttl), 1, 30 * 86400, "lifetime of an access token, in seconds"},
    {"refresh_token_ttl", "--refresh-token-ttl", "PARLEY_REFRESH_TOKEN_TTL", SET_UNSIGNED,
     FIELD(refresh_token_ttl), 60, 365 * 86400, "lifetime of a login (refresh token), in seconds"},
    {"snapshot_every_records", "--snapshot-every-records", "PARLEY_SNAPSHOT_EVERY_RECORDS",
     SET_UNSIGNED, FIELD(snapshot_every_records), 0, 1000000000,
     "take a snapshot after this many changes (0: not by count)"},
    {"snapshot_every_seconds", "--snapshot-every-seconds", "PARLEY_SNAPSHOT_EVERY_SECONDS",
     SET_UNSIGNED, FIELD(snapshot_every_seconds), 0, 30 * 86400,
     "take a snapshot this often when anything changed (0: not by time)"},
    {"rate_limit", "--rate-limit", "PARLEY_RATE_LIMIT", SET_UNSIGNED, FIELD(rate_limit), 0,
     1000000,
     "requests a minute per caller in the default category (0: off, and alone it turns off "
     "every category not set by its own setting)"},
    {"rate_limit_auth", "--rate-limit-auth", "PARLEY_RATE_LIMIT_AUTH", SET_UNSIGNED,
     FIELD(rate_limit_auth), 0, 1000000,
     "requests a minute per caller to /api/v1/auth (login, register, refresh, MFA; 0: off)"},
    {"rate_limit_messages", "--rate-limit-messages", "PARLEY_RATE_LIMIT_MESSAGES", SET_UNSIGNED,
     FIELD(rate_limit_messages), 0, 1000000,
     "messages and reactions posted, edited or deleted a minute per user (0: off)"},
    {"rate_limit_uploads", "--rate-limit-uploads", "PARLEY_RATE_LIMIT_UPLOADS", SET_UNSIGNED,
     FIELD(rate_limit_uploads), 0, 1000000, "uploads a minute per user (0: off)"},
    {"rate_limit_search", "--rate-limit-search", "PARLEY_RATE_LIMIT_SEARCH", SET_UNSIGNED,
     FIELD(rate_limit_search), 0, 1000000, "searches a minute per user (0: off)"},
    {"rate_limit_admin", "--rate-limit-admin", "PARLEY_RATE_LIMIT_ADMIN", SET_UNSIGNED,
     FIELD(rate_limit_admin), 0, 1000000, "admin requests a minute per admin (0: off)"},
    {"max_upload_bytes", "--max-upload-bytes", "PARLEY_MAX_UPLOAD_BYTES", SET_UNSIGNED,
     FIELD(max_upload_bytes), 1, 1ULL << 40, "largest uploaded file, in bytes"},
    {"storage_quota_bytes", "--storage-quota-bytes", "PARLEY_STORAGE_QUOTA_BYTES", SET_UNSIGNED,
     FIELD(storage_quota_bytes), 0, 1ULL << 50,
     "bytes of live uploads each user may hold (0: no quota)"},
    {"upload_bytes_per_minute", "--upload-bytes-per-minute", "PARLEY_UPLOAD_BYTES_PER_MINUTE",
     SET_UNSIGNED, FIELD(upload_bytes_per_minute), 0, 1ULL << 40,
     "bytes each user may upload a minute (0: no budget)"},
    {"allowed_types", "--allowed-types", "PARLEY_ALLOWED_TYPES", SET_TEXT, FIELD(allowed_types),
     0, 0, "MIME types an upload may have, as comma-separated globs"},
    {"ws_max_frame_bytes", "--ws-max-frame-bytes", "PARLEY_WS_MAX_FRAME_BYTES", SET_UNSIGNED,
     FIELD(ws_max_frame_bytes), 1024, 16u << 20, "largest WebSocket message a client may send"},
    {"ws_queue_bytes", "--ws-queue-bytes", "PARLEY_WS_QUEUE_BYTES", SET_UNSIGNED,
     FIELD(ws_queue_bytes), 4096, 1u << 30,
     "bytes queued to a WebSocket that does not read before it is closed"},
    {"ws_ping_interval", "--ws-ping-interval", "PARLEY_WS_PING_INTERVAL", SET_UNSIGNED,
     FIELD(ws_ping_interval), 1, 3600, "seconds between WebSocket pings"},
    {"ws_close_grace", "--ws-close-grace", "PARLEY_WS_CLOSE_GRACE", SET_UNSIGNED,
     FIELD(ws_close_grace), 1, 3600,
     "seconds a WebSocket being closed may go without reading before it is reset"},
    {"ws_idle_timeout", "--ws-idle-timeout", "PARLEY_WS_IDLE_TIMEOUT", SET_UNSIGNED,
     FIELD(ws_idle_timeout), 2, 86400,
     "seconds without any frame (pongs count) before a WebSocket is closed"},
    {"ws_frame_rate", "--ws-frame-rate", "PARLEY_WS_FRAME_RATE", SET_UNSIGNED,
     FIELD(ws_frame_rate), 0, 1000000,
     "frames a second a WebSocket client may send, bursts of twice that (0: off)"},
    {"realtime_connect_rate", "--realtime-connect-rate", "PARLEY_REALTIME_CONNECT_RATE",
     SET_UNSIGNED, FIELD(realtime_connect_rate), 0, 1000000,
     "WebSocket and event-stream connects a minute per user, bursts of as many (0: off)"},
    {"sse_ping_interval", "--sse-ping-interval", "PARLEY_SSE_PING_INTERVAL", SET_UNSIGNED,
     FIELD(sse_ping_interval), 1, 3600, "seconds between event-stream pings"},
    {"event_ring", "--event-ring", "PARLEY_EVENT_RING", SET_UNSIGNED, FIELD(event_ring), 16,
     10000000, "recent events kept for clients that reconnect (resume)"},
    {"event_ring_bytes", "--event-ring-bytes", "PARLEY_EVENT_RING_BYTES", SET_UNSIGNED,
     FIELD(event_ring_bytes), 65536, 1ull << 40,
     "memory the kept events may take, in bytes (the oldest go first)"},
    {"audit_max_entries", "--audit-max-entries", "PARLEY_AUDIT_MAX_ENTRIES", SET_UNSIGNED,
     FIELD(audit_max_entries), 1, 100000000, "audit log entries kept (the oldest go first)"},
    {"audit_max_days", "--audit-max-days", "PARLEY_AUDIT_MAX_DAYS", SET_UNSIGNED,
     FIELD(audit_max_days), 0, 36500, "days audit log entries are kept (0: no age bound)"},
    {"view_cache_bytes", "--view-cache-bytes", "PARLEY_VIEW_CACHE_BYTES", SET_UNSIGNED,
     FIELD(view_cache_bytes), 0, 1ull << 40,
     "memory for rendered message views reused by history pages (0: off)"},
    {"search_concurrency", "--search-concurrency", "PARLEY_SEARCH_CONCURRENCY", SET_UNSIGNED,
     FIELD(search_concurrency), 0, 1024,
     "message searches run at once, others wait (0: half the cores, at least 1)"},
    {"search_work_max", "--search-work-max", "PARLEY_SEARCH_WORK_MAX", SET_UNSIGNED,
     FIELD(search_work_max), 1000, 100000000,
     "index postings one message search may walk before it answers truncated"},
    {"server_name", "--server-name", "PARLEY_SERVER_NAME", SET_TEXT, FIELD(server_name), 0, 0,
     "the server's name (a live setting: see docs/admin.md)"},
    {"server_description", "--server-description", "PARLEY_SERVER_DESCRIPTION", SET_TEXT_OPT,
     FIELD(server_description), 0, 0, "the server's description (live setting)"},
    {"registration", "--registration", "PARLEY_REGISTRATION", SET_REGISTRATION,
     FIELD(registration), 0, 0, "who may register: open | invite | closed (live setting)"},
    {"require_mfa_for_admins", "--require-mfa-for-admins", "PARLEY_REQUIRE_MFA_FOR_ADMINS",
     SET_BOOL, FIELD(require_mfa_for_admins), 0, 0,
     "admins without MFA are refused on admin routes: true | false (live setting)"},
    {"message_retention_days", "--message-retention-days", "PARLEY_MESSAGE_RETENTION_DAYS",
     SET_UNSIGNED, FIELD(message_retention_days), 0, 36500,
     "delete messages older than this many days (0: keep; live setting)"},
    {"default_channel", "--default-channel", "PARLEY_DEFAULT_CHANNEL", SET_TEXT_OPT,
     FIELD(default_channel), 0, 0, "channel id new accounts join (live setting)"},
    {"retention_sweep_interval", "--retention-sweep-interval", "PARLEY_RETENTION_SWEEP_INTERVAL",
     SET_UNSIGNED, FIELD(retention_sweep_interval), 1, 86400,
     "seconds between two sweeps of messages past the retention"},
    {"public_url", "--public-url", "PARLEY_PUBLIC_URL", SET_TEXT_OPT, FIELD(public_url), 0, 0,
     "the server's public base URL for invite links (default: from the request's Host)"},
    {"trusted_proxies", "--trusted-proxies", "PARLEY_TRUSTED_PROXIES", SET_CIDR_LIST,
     FIELD(trusted_proxies), 0, 0,
     "reverse proxies (comma-separated addresses or CIDRs) whose X-Forwarded-For / "
     "Forwarded are believed"},
    {"cors_origins", "--cors-origins", "PARLEY_CORS_ORIGINS", SET_ORIGIN_LIST,
     FIELD(cors_origins), 0, 0,
     "web origins (comma-separated, e.g. https://chat.example.com) browsers may call the API "
     "from (live setting)"},
    /* TLS (src/http/tls.c, docs/operations.md "TLS"). */
    {"tls_cert", "--tls-cert", "PARLEY_TLS_CERT", SET_PATH, FIELD(tls_cert), 0, 0,
     "PEM certificate chain (the server's first): serve HTTPS and WSS on --port; needs "
     "--tls-key; reloaded on SIGHUP"},
    {"tls_key", "--tls-key", "PARLEY_TLS_KEY", SET_PATH, FIELD(tls_key), 0, 0,
     "PEM private key of --tls-cert, readable by the server only (mode 0600)"},
    {"tls_redirect_port", "--tls-redirect-port", "PARLEY_TLS_REDIRECT_PORT", SET_UNSIGNED,
     FIELD(tls_redirect_port), 0, 65535,
     "plain-HTTP port answering 308 to HTTPS (and /api/health); 0 = none; needs TLS"},
    {"hsts_max_age_seconds", "--hsts-max-age-seconds", "PARLEY_HSTS_MAX_AGE_SECONDS",
     SET_UNSIGNED, FIELD(hsts_max_age_seconds), 0, 63072000,
     "Strict-Transport-Security max-age in seconds on answers under TLS; 0 = not sent "
     "(live setting)"},
    /* Session cookies (src/http/session_cookie.c). */
    {"cookie_secure", "--cookie-secure", "PARLEY_COOKIE_SECURE", SET_COOKIE_SECURE,
     FIELD(cookie_secure), 0, 0,
     "Secure attribute of the session cookies: auto (when the request came over TLS or a "
     "trusted proxy says X-Forwarded-Proto: https) | always | never"},
    /* metrics and logs (docs/operations.md, "Metrics" and "Logs") */
    {"metrics_bind", "--metrics-bind", "PARLEY_METRICS_BIND", SET_HOST_PORT_OPT,
     FIELD(metrics_bind), 0, 0,
     "ADDR:PORT ([ADDR]:PORT for IPv6) of a separate plain listener serving only GET /metrics "
     "without credentials (empty: none)"},
    {"log_format", "--log-format", "PARLEY_LOG_FORMAT", SET_LOG_FORMAT, FIELD(log_format), 0, 0,
     "text | json (one JSON object per line)"},
    /* ---- encryption at rest (src/tools/keys.c checks the file at start-up) ---- */
    {"encryption_key_file", "--encryption-key-file", "PARLEY_ENCRYPTION_KEY_FILE", SET_TEXT_OPT,
     FIELD(encryption_key_file), 0, 0,
     "file with the 32-byte data key (`parley keygen`; mode 0600): the log, snapshots and "
     "files are encrypted (AES-256-GCM); \"\" = plain"},
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))
_Static_assert(N_SETTINGS <= 64 * sizeof(((parley_config_t *)0)->given) / sizeof(uint64_t),
               "parley_config_t.given has a bit per setting");

/* The settings of the categories that `rate_limit 0` turns off with it. */
static const char *const rate_category_keys[] = {
    "rate_limit_auth", "rate_limit_messages", "rate_limit_uploads", "rate_limit_search",
    "rate_limit_admin", "realtime_connect_rate", "register_rate",
};

/* The row of the setting `key`, or NULL. */
static const setting_t *setting_named(const char *key)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(settings[i].key, key) == 0)
            return &settings[i];
    return NULL;
}

static int parse_unsigned(const char *text, unsigned long long *out);

static const char *const level_names[] = {"error", "warning", "info", "debug"};
static const char *const fsync_names[] = {"always", "batch", "none"};
static const char *const registration_names[] = {"open", "invite", "closed"};
static const char *const bool_names[] = {"false", "true"};
static const char *const cookie_secure_names[] = {"auto", "always", "never"};

static const char *const log_format_names[] = {"text", "json"};

int config_parse_host_port(const char *text, char addr[64], uint16_t *port, bool *is_v6)
{
    const char *colon;
    char host[64];
    size_t n;
    bool v6 = text[0] == '[';
    if (v6) {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        n = (size_t)(close - text - 1);
        if (n == 0 || n >= sizeof(host))
            return -1;
        memcpy(host, text + 1, n);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL || strchr(text, ':') != colon)
            return -1;
        n = (size_t)(colon - text);
        if (n == 0 || n >= sizeof(host))
            return -1;
        memcpy(host, text, n);
    }
    host[n] = '\0';
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, buf) != 1)
        return -1;
    unsigned long long p;
    if (parse_unsigned(colon + 1, &p) != 0 || p < 1 || p > 65535)
        return -1;
    strcpy(addr, host);
    *port = (uint16_t)p;
    *is_v6 = v6;
    return 0;
}

void config_defaults(parley_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->bind, "0.0.0.0");
    cfg->port = 7575;
    strcpy(cfg->data_dir, "./data");
    /* See docs/architecture.md, "Worker pool": handlers wait on fdatasync
     * and password hashing, and group commit batches at most as many
     * records as there are waiting threads. */
    cfg->threads = 32;
    cfg->max_body_bytes = 1 << 20;
    cfg->idle_timeout = 60;
    cfg->drain_timeout = 30;
    cfg->max_connections = 4096;
    cfg->max_connections_per_ip = 256;
    cfg->header_timeout = 10;
    cfg->body_min_rate = 1024;
    cfg->body_budget_bytes = 256u << 20;
    cfg->public_body_bytes = 16u << 10;
    cfg->register_rate = 20;
    cfg->log_level = LOG_LEVEL_INFO;
    cfg->fsync = FSYNC_ALWAYS;
    cfg->access_token_ttl = 900;
    cfg->refresh_token_ttl = 30 * 86400;
    cfg->snapshot_every_records = 100000;
    cfg->snapshot_every_seconds = 600;
    cfg->audit_max_entries = 100000;
    cfg->rate_limit = 600;
    cfg->rate_limit_auth = 10;
    cfg->rate_limit_messages = 100;
    cfg->rate_limit_uploads = 20;
    cfg->rate_limit_search = 50;
    cfg->rate_limit_admin = 200;
    cfg->max_upload_bytes = 25u << 20;
    cfg->storage_quota_bytes = 1ull << 30;
    cfg->upload_bytes_per_minute = 256ull << 20;
    strcpy(cfg->allowed_types, "*/*");
    cfg->ws_max_frame_bytes = 64 * 1024;
    cfg->ws_queue_bytes = 1u << 20;
    cfg->ws_ping_interval = 25;
    cfg->ws_idle_timeout = 60;
    cfg->ws_close_grace = 5;
    cfg->ws_frame_rate = 20;
    cfg->realtime_connect_rate = 60;
    cfg->sse_ping_interval = 15;
    cfg->event_ring = 8192;
    cfg->event_ring_bytes = 16u << 20;
    cfg->view_cache_bytes = 16u << 20;
    cfg->search_work_max = 50000;
    strcpy(cfg->server_name, "Parley");
    cfg->retention_sweep_interval = 3600;
    cfg->hsts_max_age_seconds = 15552000; /* 180 days */
}

int config_parse_log_level(const char *text, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *config_log_level_name(enum log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "?";
}

__attribute__((format(printf, 2, 3))) static void fail(char err[CONFIG_ERR_MAX],
                                                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, CONFIG_ERR_MAX, fmt, ap);
    va_end(ap);
}

/* Parses a decimal number with nothing before or after it. */
static int parse_unsigned(const char *text, unsigned long long *out)
{
    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/*
 * Stores `text` into the field of `s`. `origin` names where the value came
 * from ("--port", "PARLEY_PORT", "config file x.json") for the message.
 */
static int apply(parley_config_t *cfg, const setting_t *s, const char *text,
                 const char *origin, char err[CONFIG_ERR_MAX])
{
    char *field = (char *)cfg + s->offset;
    size_t bit = (size_t)(s - settings);
    cfg->given[bit / 64] |= 1ull << (bit % 64);

    switch (s->type) {
    case SET_ADDRESS: {
        unsigned char buf[sizeof(struct in6_addr)];
        if (strlen(text) >= s->size || (inet_pton(AF_INET, text, buf) != 1 &&
                                        inet_pton(AF_INET6, text, buf) != 1)) {
            fail(err, "invalid %s (from %s): '%.64s' is not an IPv4 or IPv6 address",
                 s->key, origin, text);
            return -1;
        }
        strcpy(field, text);
        return 0;
    }
    case SET_PATH:
        if (text[0] == '\0' || strlen(text) >= s->size - 64) {
            fail(err, "invalid %s (from %s): the path is empty or too long", s->key, origin);
            return -1;
        }
        strcpy(field, text);
        return 0;
    case SET_UNSIGNED: {
        unsigned long long v;
        if (parse_unsigned(text, &v) != 0 || v < s->min || v > s->max) {
            fail(err, "invalid %s (from %s): '%.64s' is not a whole number from %llu to %llu",
                 s->key, origin, text, s->min, s->max);
            return -1;
        }
        if (s->size == sizeof(uint16_t))
            *(uint16_t *)field = (uint16_t)v;
        else if (s->size == sizeof(unsigned))
            *(unsigned *)field = (unsigned)v;
        else
            *(uint64_t *)field = (uint64_t)v;
        return 0;
    }
    case SET_LOG_LEVEL:
        if (config_parse_log_level(text, (enum log_level *)field) != 0) {
            fail(err, "invalid %s (from %s): '%.64s' is not one of error, warning, info, debug",
                 s->key, origin, text);
            return -1;
        }
        return 0;
    case SET_TEXT:
    case SET_TEXT_OPT: {
        size_t n = strlen(text);
        bool printable = (n > 0 || s->type == SET_TEXT_OPT) && n < s->size;
        for (size_t i = 0; printable && i < n; i++)
            printable = text[i] >= 0x20 && text[i] < 0x7f;
        if (!printable) {
            fail(err, "invalid %s (from %s): give 1-%zu printable ASCII characters", s->key,
                 origin, s->size - 1);
            return -1;
        }
        strcpy(field, text);
        return 0;
    }
    case SET_BOOL:
    case SET_REGISTRATION:
    case SET_COOKIE_SECURE: {
        const char *const *names = s->type == SET_BOOL           ? bool_names
                                   : s->type == SET_REGISTRATION ? registration_names
                                                                 : cookie_secure_names;
        unsigned count = s->type == SET_BOOL ? 2 : 3;
        for (unsigned i = 0; i < count; i++) {
            bool digit = s->type == SET_BOOL && text[0] == (char)('0' + i) && text[1] == '\0';
            if (strcasecmp(text, names[i]) == 0 || digit) {
                *(unsigned *)field = i;
                return 0;
            }
        }
        fail(err, "invalid %s (from %s): '%.64s' is not one of %s", s->key, origin, text,
             s->type == SET_BOOL           ? "true, false"
             : s->type == SET_REGISTRATION ? "open, invite, closed"
                                           : "auto, always, never");
        return -1;
    }
    case SET_CIDR_LIST: {
        char (*items)[IPNET_TEXT_MAX] = calloc(IPNET_LIST_MAX, IPNET_TEXT_MAX);
        if (items == NULL) {
            fail(err, "invalid %s (from %s): out of memory", s->key, origin);
            return -1;
        }
        int n = strlen(text) < s->size ? ipnet_split_list(text, items, IPNET_LIST_MAX) : -1;
        int bad = -1;
        for (int i = 0; i < n && bad < 0; i++) {
            ipnet_t net;
            if (ipnet_parse(items[i], true, &net) != 0)
                bad = i;
        }
        if (n < 0 || bad >= 0) {
            if (n < 0)
                fail(err, "invalid %s (from %s): give at most %d comma-separated addresses or "
                          "CIDR ranges", s->key, origin, IPNET_LIST_MAX);
            else
                fail(err, "invalid %s (from %s): '%.64s' is not an IPv4/IPv6 address or CIDR "
                          "range without host bits (e.g. 10.0.0.0/8)", s->key, origin, items[bad]);
            free(items);
            return -1;
        }
        free(items);
        strcpy(field, text);
        return 0;
    }
    case SET_ORIGIN_LIST: {
        char(*items)[ORIGIN_LEN_MAX + 1] = calloc(ORIGIN_LIST_MAX, ORIGIN_LEN_MAX + 1);
        if (items == NULL) {
            fail(err, "invalid %s (from %s): out of memory", s->key, origin);
            return -1;
        }
        int n = strlen(text) < s->size ? origin_split_list(text, items, ORIGIN_LIST_MAX) : -1;
        int bad = -1;
        for (int i = 0; i < n && bad < 0; i++)
            if (!origin_valid(items[i]))
                bad = i;
        if (n < 0)
            fail(err, "invalid %s (from %s): give at most %d comma-separated origins",
                 s->key, origin, ORIGIN_LIST_MAX);
        else if (bad >= 0)
            fail(err, "invalid %s (from %s): '%.64s' is not an origin (scheme://host[:port], "
                      "no path, no wildcard)", s->key, origin, items[bad]);
        free(items);
        if (n < 0 || bad >= 0)
            return -1;
        strcpy(field, text);
        return 0;
    }
    case SET_HOST_PORT_OPT: {
        char addr[64];
        uint16_t port;
        bool v6;
        if (text[0] != '\0' &&
            (strlen(text) >= s->size || config_parse_host_port(text, addr, &port, &v6) != 0)) {
            fail(err, "invalid %s (from %s): '%.64s' is not ADDR:PORT (an IPv4 address, or an "
                      "IPv6 one in brackets, and a port from 1 to 65535)", s->key, origin, text);
            return -1;
        }
        strcpy(field, text);
        return 0;
    }
    case SET_LOG_FORMAT:
        for (unsigned i = 0; i < 2; i++) {
            if (strcasecmp(text, log_format_names[i]) == 0) {
                *(enum log_format *)field = (enum log_format)i;
                return 0;
            }
        }
        fail(err, "invalid %s (from %s): '%.64s' is not one of text, json", s->key, origin, text);
        return -1;
    case SET_FSYNC:
        for (size_t i = 0; i < sizeof(fsync_names) / sizeof(fsync_names[0]); i++) {
            if (strcasecmp(text, fsync_names[i]) == 0) {
                *(enum fsync_policy *)field = (enum fsync_policy)i;
                return 0;
            }
        }
        fail(err, "invalid %s (from %s): '%.64s' is not one of always, batch, none", s->key,
             origin, text);
        return -1;
    }
    return -1;
}

static const char *env_get(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (char **e = envp; e && *e; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    }
    return NULL;
}

/* Joins a JSON array of strings with commas into out; false when an item
 * is no string or the whole does not fit. */
static bool join_strings(json_t *array, char *out, size_t size)
{
    size_t len = 0, i;
    json_t *item;
    out[0] = '\0';
    json_array_foreach(array, i, item) {
        if (!json_is_string(item))
            return false;
        int n = snprintf(out + len, size - len, "%s%s", i ? "," : "", json_string_value(item));
        if (n < 0 || (size_t)n >= size - len)
            return false;
        len += (size_t)n;
    }
    return true;
}

static int load_file(parley_config_t *cfg, const char *path, char err[CONFIG_ERR_MAX])
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        fail(err, "config file %s: %s (line %d)", path, jerr.text, jerr.line);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        fail(err, "config file %s: the top level must be a JSON object", path);
        goto out;
    }
    char origin[CONFIG_ERR_MAX / 2];
    snprintf(origin, sizeof(origin), "config file %s", path);

    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        const setting_t *s = setting_named(key);
        if (s == NULL) {
            fail(err, "config file %s: unknown setting '%.64s'", path, key);
            goto out;
        }
        char text[64], list[sizeof(((parley_config_t *)0)->cors_origins)];
        const char *as_text;
        if (json_is_string(value)) {
            as_text = json_string_value(value);
        } else if (json_is_boolean(value) && s->type == SET_BOOL) {
            as_text = json_is_true(value) ? "true" : "false";
        } else if (json_is_integer(value) && s->type == SET_UNSIGNED) {
            snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(value));
            as_text = text;
        } else if (json_is_array(value) &&
                   (s->type == SET_CIDR_LIST || s->type == SET_ORIGIN_LIST) &&
                   join_strings(value, list, sizeof(list))) {
            as_text = list; /* ["10.0.0.0/8", "::1"] reads as "10.0.0.0/8,::1" */
        } else {
            fail(err, "invalid %s (from %s): expected a %s", s->key, origin,
                 s->type == SET_UNSIGNED   ? "whole number"
                 : s->type == SET_CIDR_LIST || s->type == SET_ORIGIN_LIST
                     ? "string or a list of strings"
                                            : "string");
            goto out;
        }
        if (apply(cfg, s, as_text, origin, err) != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/*
 * Matches argv[*i] against `flag` in the forms "--flag value" and
 * "--flag=value". On a match sets *value, advances *i past a separate value,
 * and returns 1; returns 0 when argv[*i] is another flag, -1 when the value
 * is missing.
 */
static int match_flag(int argc, char **argv, int *i, const char *flag, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(flag);
    if (strncmp(arg, flag, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

int config_load(parley_config_t *cfg, int argc, char **argv, char **envp,
                char err[CONFIG_ERR_MAX])
{
    config_defaults(cfg);
    err[0] = '\0';

    /* The config file is named first (flag over environment), since its
     * values rank below both. */
    const char *file = env_get(envp, "PARLEY_CONFIG");
    for (int i = 0; i < argc; i++) {
        const char *value;
        int m = match_flag(argc, argv, &i, "--config", &value);
        if (m < 0) {
            fail(err, "--config needs a value");
            return -1;
        }
        if (m > 0)
            file = value;
    }
    if (file != NULL && file[0] != '\0') {
        if (strlen(file) >= sizeof(cfg->config_file)) {
            fail(err, "invalid config (from --config or PARLEY_CONFIG): the path is too long");
            return -1;
        }
        strcpy(cfg->config_file, file);
        if (load_file(cfg, file, err) != 0)
            return -1;
    }

    for (size_t k = 0; k < N_SETTINGS; k++) {
        const char *value = env_get(envp, settings[k].env);
        if (value != NULL && apply(cfg, &settings[k], value, settings[k].env, err) != 0)
            return -1;
    }

    for (int i = 0; i < argc; i++) {
        const char *value;
        int m = match_flag(argc, argv, &i, "--config", &value);
        if (m != 0)
            continue;
        for (size_t k = 0; k < N_SETTINGS && m == 0; k++) {
            m = match_flag(argc, argv, &i, settings[k].flag, &value);
            if (m < 0) {
                fail(err, "%s needs a value", settings[k].flag);
                return -1;
            }
            if (m > 0 && apply(cfg, &settings[k], value, settings[k].flag, err) != 0)
                return -1;
        }
        if (m == 0) {
            fail(err, "unknown argument '%.64s' (see parley --help)", argv[i]);
            return -1;
        }
    }

    /* The setting of old, `rate_limit 0`, meant no limits at all: it still
     * does for every category not given a value of its own. */
    size_t n_categories = sizeof(rate_category_keys) / sizeof(rate_category_keys[0]);
    for (size_t c = 0; cfg->rate_limit == 0 && c < n_categories; c++) {
        const setting_t *s = setting_named(rate_category_keys[c]);
        if (!config_given(cfg, s->key))
            *(unsigned *)((char *)cfg + s->offset) = 0;
    }

    /* libmicrohttpd gives each pool thread an equal share of the connection
     * limit; a share of zero would leave a thread unable to accept. */
    if (cfg->max_connections < cfg->threads) {
        fail(err, "invalid max_connections: %u is less than threads (%u)", cfg->max_connections,
             cfg->threads);
        return -1;
    }
    /* TLS: both files or neither; the redirect port only beside TLS. The
     * files themselves are checked by the server before it writes anything. */
    if ((cfg->tls_cert[0] != '\0') != (cfg->tls_key[0] != '\0')) {
        fail(err, "invalid %s: TLS needs both --tls-cert and --tls-key",
             cfg->tls_cert[0] ? "tls_cert without tls_key" : "tls_key without tls_cert");
        return -1;
    }
    if (cfg->tls_redirect_port != 0 && cfg->tls_cert[0] == '\0') {
        fail(err, "invalid tls_redirect_port: it redirects to HTTPS, which needs --tls-cert and "
                  "--tls-key");
        return -1;
    }
    if (cfg->tls_redirect_port != 0 && cfg->tls_redirect_port == cfg->port) {
        fail(err, "invalid tls_redirect_port: %u is the HTTPS port itself", cfg->port);
        return -1;
    }
    return 0;
}

bool config_given(const parley_config_t *cfg, const char *key)
{
    const setting_t *s = setting_named(key);
    if (s == NULL)
        return false;
    size_t bit = (size_t)(s - settings);
    return (cfg->given[bit / 64] & (1ull << (bit % 64))) != 0;
}

void config_print_help(FILE *out)
{
    parley_config_t d;
    config_defaults(&d);
    fprintf(out, "Settings (flag > environment > config file > default):\n");
    fprintf(out, "  %-20s %-24s %s\n", "--config PATH", "PARLEY_CONFIG",
            "JSON config file whose keys are the setting names below");
    for (size_t k = 0; k < N_SETTINGS; k++) {
        const setting_t *s = &settings[k];
        const char *field = (const char *)&d + s->offset;
        char def[64];
        switch (s->type) {
        case SET_ADDRESS:
        case SET_PATH:
        case SET_TEXT:
        case SET_TEXT_OPT:
            snprintf(def, sizeof(def), "%s", field[0] ? field : "none");
            break;
        case SET_BOOL:
            snprintf(def, sizeof(def), "%s", bool_names[*(const unsigned *)field != 0]);
            break;
        case SET_REGISTRATION:
            snprintf(def, sizeof(def), "%s", registration_names[*(const unsigned *)field % 3]);
            break;
        case SET_COOKIE_SECURE:
            snprintf(def, sizeof(def), "%s", cookie_secure_names[*(const unsigned *)field % 3]);
            break;
        case SET_CIDR_LIST:
        case SET_ORIGIN_LIST:
            snprintf(def, sizeof(def), "%s", field[0] ? field : "none");
            break;
        case SET_UNSIGNED:
            if (s->size == sizeof(uint16_t))
                snprintf(def, sizeof(def), "%u", *(const uint16_t *)field);
            else if (s->size == sizeof(unsigned))
                snprintf(def, sizeof(def), "%u", *(const unsigned *)field);
            else
                snprintf(def, sizeof(def), "%llu", (unsigned long long)*(const uint64_t *)field);
            break;
        case SET_LOG_LEVEL:
            snprintf(def, sizeof(def), "%s", config_log_level_name(*(const enum log_level *)field));
            break;
        case SET_FSYNC:
            snprintf(def, sizeof(def), "%s", fsync_names[*(const enum fsync_policy *)field]);
            break;
        case SET_HOST_PORT_OPT:
            snprintf(def, sizeof(def), "%s", field[0] ? field : "none");
            break;
        case SET_LOG_FORMAT:
            snprintf(def, sizeof(def), "%s", log_format_names[*(const enum log_format *)field]);
            break;
        }
        fprintf(out, "  %-20s %-24s %s (default %s; file key \"%s\")\n", s->flag, s->env,
                s->help, def, s->key);
    }
}
