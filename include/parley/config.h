/*
 * Server configuration: one table of settings, read from (highest first)
 * command-line flags, environment variables, an optional JSON config file,
 * and built-in defaults.
 */
#ifndef PARLEY_CONFIG_H
#define PARLEY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "parley/log.h"

#define CONFIG_ERR_MAX 512

enum fsync_policy {
    FSYNC_ALWAYS,
    FSYNC_BATCH,
    FSYNC_NONE,
};

/* --cookie-secure: when the session cookies carry the Secure attribute
 * (the same values as HTTP_COOKIE_SECURE_* of include/parley/http.h). */
enum config_cookie_secure {
    CONFIG_COOKIE_SECURE_AUTO,   /* when the request came over TLS (or a trusted proxy's https) */
    CONFIG_COOKIE_SECURE_ALWAYS,
    CONFIG_COOKIE_SECURE_NEVER,
};

typedef struct parley_config {
    char bind[64];               /* IPv4 or IPv6 literal */
    uint16_t port;
    char data_dir[4096];
    unsigned threads;            /* HTTP worker pool size */
    size_t max_body_bytes;       /* largest request body (JSON) accepted */
    unsigned idle_timeout;       /* seconds before an idle connection is closed */
    unsigned drain_timeout;      /* seconds a stop waits for requests in flight */
    unsigned max_connections;
    unsigned max_connections_per_ip; /* per address (IPv6: per /64); 0 = no limit */
    unsigned header_timeout;     /* seconds from a request's first line to its last header */
    unsigned body_min_rate;      /* bytes/s a request body must average; 0 = no minimum */
    uint64_t body_budget_bytes;  /* request body bytes held in memory at once, all requests */
    uint64_t public_body_bytes;  /* largest body before authentication (public routes) */
    unsigned register_rate;      /* registrations per hour per address; 0 = no limit */
    enum log_level log_level;
    enum fsync_policy fsync;     /* when a change counts as durable */
    unsigned access_token_ttl;   /* seconds */
    unsigned refresh_token_ttl;  /* seconds */
    unsigned snapshot_every_records; /* 0: not by count */
    unsigned snapshot_every_seconds; /* 0: not by time */
    /* Rate limits by category, requests a minute per caller (0: off); the
     * default category's is rate_limit, and `rate_limit 0` also turns off
     * every other category not given a value of its own. */
    unsigned rate_limit;
    unsigned rate_limit_auth;
    unsigned rate_limit_messages;
    unsigned rate_limit_uploads;
    unsigned rate_limit_search;
    unsigned rate_limit_admin;
    uint64_t max_upload_bytes;   /* largest uploaded file */
    uint64_t storage_quota_bytes; /* live upload bytes per user (0: no quota) */
    uint64_t upload_bytes_per_minute; /* uploaded bytes a minute per user (0: none) */
    char allowed_types[1024];    /* MIME globs, comma-separated, e.g. image/png,text/plain */
    size_t ws_max_frame_bytes;   /* largest WebSocket message accepted */
    size_t ws_queue_bytes;       /* outbound bytes queued per WebSocket before it is dropped */
    unsigned ws_ping_interval;   /* seconds between WebSocket pings */
    unsigned ws_idle_timeout;    /* seconds without a frame before a WebSocket is closed */
    unsigned ws_close_grace;     /* seconds a closing WebSocket may go without reading */
    unsigned ws_frame_rate;      /* frames per second a WebSocket may send; 0: off */
    unsigned realtime_connect_rate; /* WebSocket/event-stream connects a minute per user; 0: off */
    unsigned sse_ping_interval;  /* seconds between event-stream pings */
    unsigned event_ring;         /* events kept for resuming */
    size_t event_ring_bytes;     /* bytes those events may take */
    size_t view_cache_bytes;     /* rendered message views kept; 0: none */
    unsigned search_concurrency; /* message searches run at once; 0: half the cores, >= 1 */
    unsigned search_work_max;    /* index postings one message search may walk */
    unsigned audit_max_entries;  /* audit log entries kept */
    unsigned audit_max_days;     /* age bound of audit entries; 0: none */
    /* Starting values of the live settings (include/parley/settings.h);
     * one changed through the API wins over these. */
    char server_name[257];
    char server_description[2001];
    unsigned registration;       /* enum settings_registration: open, invite, closed */
    unsigned require_mfa_for_admins; /* 0 or 1 */
    unsigned message_retention_days; /* 0: keep */
    char default_channel[40];    /* "" = none */
    unsigned retention_sweep_interval; /* seconds between retention sweeps */
    char public_url[512];        /* base of invite URLs; "" = from the request's Host */
    char trusted_proxies[4096];  /* CIDRs, comma-separated; "" = none (ipnet_split_list) */
    char cors_origins[8448];     /* web origins, comma-separated; "" = none (origin.h) */
    /* TLS (src/http/tls.c): both paths or neither; "" = plain HTTP. */
    char tls_cert[4096];         /* PEM certificate chain, the server's first */
    char tls_key[4096];          /* PEM private key, mode 0600 or stricter */
    uint16_t tls_redirect_port;  /* plain-HTTP port answering 308 to HTTPS; 0 = none */
    unsigned hsts_max_age_seconds; /* Strict-Transport-Security under TLS; 0 = not sent */
    /* Session cookies (src/http/session_cookie.c): when they carry Secure. */
    unsigned cookie_secure;      /* enum config_cookie_secure */
    /* metrics and logs */
    char metrics_bind[80];       /* "ADDR:PORT" of the plain /metrics listener; "" = none */
    enum log_format log_format;  /* text (default) | json */
    char encryption_key_file[4096]; /* the data key's file; "" = plain data directory */
    char config_file[4096];      /* "" when none was given */
    uint64_t given[2];           /* which settings a source gave (a bit each): config_given() */
} parley_config_t;

/* Fills *cfg with the built-in defaults. */
void config_defaults(parley_config_t *cfg);

/*
 * Builds the configuration of `parley serve` from argv (the arguments after
 * the command word), the environment `envp` (NULL-terminated "NAME=value"
 * strings; NULL means none) and the config file named by --config or
 * PARLEY_CONFIG.
 *
 * Returns 0 on success. On a bad flag, value or file returns -1 and writes a
 * one-line message naming the setting into err (CONFIG_ERR_MAX bytes); *cfg
 * is then unspecified.
 */
int config_load(parley_config_t *cfg, int argc, char **argv, char **envp,
                char err[CONFIG_ERR_MAX]);

/* Whether the setting `key` ("rate_limit_auth") was given by the config
 * file, the environment or a flag, rather than left at its default. */
bool config_given(const parley_config_t *cfg, const char *key);

/* Prints the table of settings (flag, environment, default, meaning). */
void config_print_help(FILE *out);

/* Parses "error" | "warning" | "info" | "debug". Returns 0 or -1. */
int config_parse_log_level(const char *text, enum log_level *out);

const char *config_log_level_name(enum log_level level);

/* Parses "ADDR:PORT" (an IPv4 literal) or "[ADDR]:PORT" (IPv6) into the
 * address's text (addr, 64 bytes), the port (1-65535) and whether it is
 * IPv6. Returns 0, or -1 (outputs untouched). */
int config_parse_host_port(const char *text, char addr[64], uint16_t *port, bool *is_v6);

#endif
