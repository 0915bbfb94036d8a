/*
 * The server's live settings and its invites, kept by the store
 * (src/store/settings.c, src/store/invites.c) like every other state: each
 * change a log record of the whole new state (type 30: every setting changed
 * through the API; type 32: one invite), applied under the store's write
 * lock, replayed at start and written in snapshots.
 *
 * Settings. The configuration (flags, environment, config file) gives the
 * starting values (store_settings_seed); a setting changed through the API
 * (store_settings_patch) is an override that wins over the configured value
 * from then on, restarts included, until a PATCH sets it to null again. The
 * effective values (configured + overrides) are an immutable copy behind a
 * read-write lock: store_settings_get copies them out, so any thread may
 * read them at any time, and a change takes effect for the next reader.
 *
 * Errors: 0 or STORE_E_* (store.h, chat.h) and STORE_E_INVITE below.
 */
#ifndef PARLEY_SETTINGS_H
#define PARLEY_SETTINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/store.h"

enum settings_record_type {
    STORE_REC_SETTINGS = 30,
    STORE_REC_INVITE = 32,
};
#define STORE_SETTINGS_SCHEMA_VERSION 1
#define STORE_INVITE_SCHEMA_VERSION 1

/* An invite that cannot be used: unknown (or revoked), expired or used up. */
#define STORE_E_INVITE (-2040)

enum settings_registration {
    SETTINGS_REG_OPEN = 0,
    SETTINGS_REG_INVITE = 1,
    SETTINGS_REG_CLOSED = 2,
};

/* Rate limit categories (requests per minute; 0: no limit). */
enum settings_rate {
    SETTINGS_RATE_AUTH,
    SETTINGS_RATE_MESSAGES,
    SETTINGS_RATE_UPLOADS,
    SETTINGS_RATE_SEARCH,
    SETTINGS_RATE_ADMIN,
    SETTINGS_RATE_DEFAULT,
    SETTINGS_RATE_COUNT,
};
#define SETTINGS_RATE_MAX 1000000

#define SETTINGS_NAME_CHARS 64          /* server_name: 1-64 code points */
#define SETTINGS_DESCRIPTION_CHARS 500  /* server_description: 0-500 */
#define SETTINGS_TYPES_MAX 64           /* allowed_types: 1-64 globs */
#define SETTINGS_TYPE_LEN 127           /* bytes of one glob */
#define SETTINGS_PROXIES_MAX 64         /* trusted_proxies entries */
#define SETTINGS_PROXY_LEN 49           /* bytes of one CIDR ("ffff:...:ffff/128") */
#define SETTINGS_ORIGINS_MAX 32         /* cors_origins entries (ORIGIN_LIST_MAX) */
#define SETTINGS_ORIGIN_LEN 255         /* bytes of one origin (ORIGIN_LEN_MAX) */
#define SETTINGS_UPLOAD_MAX (1ull << 40)
#define SETTINGS_RETENTION_MAX 36500    /* days */
#define SETTINGS_AUDIT_ENTRIES_MAX 100000000
#define SETTINGS_QUOTA_MAX (1ull << 50) /* storage_quota_bytes: 0 (none) - 1 PiB */
#define SETTINGS_UPLOAD_BUDGET_MAX (1ull << 40) /* upload_bytes_per_minute */
#define SETTINGS_HSTS_MAX 63072000 /* hsts_max_age_seconds: 0 (not sent) - 2 years */

/* Bits of store_settings_t.overridden, in the order of settings_names(). */
enum settings_field {
    SETTINGS_F_SERVER_NAME,
    SETTINGS_F_SERVER_DESCRIPTION,
    SETTINGS_F_REGISTRATION,
    SETTINGS_F_REQUIRE_MFA,
    SETTINGS_F_MAX_UPLOAD,
    SETTINGS_F_ALLOWED_TYPES,
    SETTINGS_F_RETENTION,
    SETTINGS_F_DEFAULT_CHANNEL,
    SETTINGS_F_RATE_LIMITS,
    SETTINGS_F_TRUSTED_PROXIES,
    SETTINGS_F_AUDIT_MAX_ENTRIES,
    SETTINGS_F_AUDIT_MAX_DAYS,
    SETTINGS_F_STORAGE_QUOTA,
    SETTINGS_F_UPLOAD_BUDGET,
    SETTINGS_F_CORS_ORIGINS,
    SETTINGS_F_HSTS_MAX_AGE,
    SETTINGS_F_COUNT,
};

typedef struct store_settings {
    char server_name[4 * SETTINGS_NAME_CHARS + 1];
    char server_description[4 * SETTINGS_DESCRIPTION_CHARS + 1];
    int registration; /* enum settings_registration */
    bool require_mfa_for_admins;
    uint64_t max_upload_bytes;
    char allowed_types[1024]; /* MIME globs joined by ',' (as the config's) */
    uint32_t message_retention_days; /* 0: keep forever */
    char default_channel[STORE_ID_MAX]; /* "" = none */
    uint32_t rate_limits[SETTINGS_RATE_COUNT];
    size_t n_trusted_proxies;
    char trusted_proxies[SETTINGS_PROXIES_MAX][SETTINGS_PROXY_LEN + 1];
    uint32_t audit_max_entries; /* the audit log's bounds (include/parley/audit.h) */
    uint32_t audit_max_days;    /* 0: no age bound */
    uint64_t storage_quota_bytes; /* live upload bytes per user; 0: no quota */
    uint64_t upload_bytes_per_minute; /* uploaded bytes a minute per user; 0: no budget */
    size_t n_cors_origins; /* web origins browsers may call from (CORS) */
    char cors_origins[SETTINGS_ORIGINS_MAX][SETTINGS_ORIGIN_LEN + 1];
    uint32_t hsts_max_age_seconds; /* Strict-Transport-Security under TLS; 0: not sent */
    uint32_t overridden; /* 1 << enum settings_field: set through the API */
} store_settings_t;

/* The API names of the settings (index: enum settings_field) and of the
 * rate limit categories (index: enum settings_rate). */
extern const char *const settings_names[SETTINGS_F_COUNT];
extern const char *const settings_rate_names[SETTINGS_RATE_COUNT];
extern const char *const settings_registration_names[3];

/*
 * Checks a PATCH body (a JSON object of settings by name): every name known,
 * every value of its type and range, or null (reset to the configured
 * value). Returns true, or false with the offending field's name (e.g.
 * "rate_limits.auth") in field and a sentence in msg. Pure; any thread.
 */
bool store_settings_check(const json_t *patch, char field[64], char msg[256]);

/* The settings as the API shows them (a new object). */
json_t *store_settings_json(const store_settings_t *st);

/* Sets the configured values (the overridden mask of *configured is
 * ignored) and recomputes the effective ones; server.c calls it once after
 * store_open, before the port opens. Runs the change hooks. */
void store_settings_seed(store_t *s, const store_settings_t *configured);

/* The effective settings, copied. Thread-safe. */
void store_settings_get(store_t *s, store_settings_t *out);

/*
 * Applies a PATCH checked by store_settings_check: set values become
 * overrides, nulls drop them; rate_limits merges its categories into the
 * current ones. `check` (may be NULL) sees the would-be effective settings
 * under the store's write lock (quick, no I/O; it may read the store) and
 * returns non-zero to refuse: nothing is written and that value is
 * returned. Otherwise the record is logged and applied, *out (may be NULL)
 * gets the new effective settings and *lsn its record (store_wait it).
 * Runs the change hooks after releasing the lock.
 * 0, STORE_E_INVALID (a patch that does not pass the check), STORE_E_UNAVAILABLE,
 * or check's result.
 */
int store_settings_patch(store_t *s, const json_t *patch,
                         int (*check)(void *ctx, const store_settings_t *next), void *ctx,
                         store_settings_t *out, uint64_t *lsn);

/*
 * Change hooks (settings_apply_hooks): fn(ctx, effective) runs after every
 * change of the effective settings (seed, patch), with no store lock held,
 * one call at a time (a hook mutex, so the latest settings always win; a
 * hook must not change the settings). For the parts that keep their own
 * copy: the gate's upload limit, the rate limiter, the proxy list.
 * At most 8 hooks; add them before the port opens.
 */
typedef void (*store_settings_hook_fn)(void *ctx, const store_settings_t *effective);
void store_settings_add_hook(store_t *s, store_settings_hook_fn fn, void *ctx);

/* ---- invites ---- */

#define STORE_INVITE_CODE_MAX 33    /* 1-32 of [A-Za-z0-9_-] + NUL */
#define STORE_INVITE_CHANNELS_MAX 20
#define STORE_INVITE_USES_MAX 1000000

typedef struct store_invite {
    char code[STORE_INVITE_CODE_MAX];
    char created_by[STORE_ID_MAX];
    int64_t created_at;   /* ms */
    int64_t expires_at;   /* ms; 0 = never */
    int64_t max_uses;     /* 0 = unlimited */
    int64_t uses;
    bool revoked;         /* a revoked invite leaves the table */
    size_t n_channels;
    char channels[STORE_INVITE_CHANNELS_MAX][STORE_ID_MAX];
} store_invite_t;

/* Whether the invite can be used at now_ms (not revoked, not expired, not
 * used up). */
bool store_invite_usable(const store_invite_t *inv, int64_t now_ms);

/* Writes an invite's whole state (a new one, or revoked = true to remove
 * it). STORE_E_INVALID when a field is over its limits. */
int store_invite_put(store_t *s, const store_invite_t *inv, uint64_t *lsn);
bool store_invite_get(store_t *s, const char *code, store_invite_t *out);
/* Every invite, newest first, into a malloc'd array (caller frees; NULL
 * when none); returns the count. */
size_t store_invite_list(store_t *s, store_invite_t **out);

/*
 * Creates user u (as store_user_create) and counts one use of invite `code`,
 * in one step under the store's write lock: two registrations racing for an
 * invite's last use cannot both succeed. STORE_E_INVITE when the invite is
 * not usable at now_ms (nothing written); the STORE_E_CONFLICT_* of
 * store_user_create. On success *inv (may be NULL) gets the invite as it is
 * now and *lsn the last record.
 */
int store_user_create_invited(store_t *s, store_user_t *u, bool first_is_admin, const char *code,
                              int64_t now_ms, store_invite_t *inv, uint64_t *lsn);

/* Counts one use of invite `code` for an existing account (accept). */
int store_invite_use(store_t *s, const char *code, int64_t now_ms, store_invite_t *inv,
                     uint64_t *lsn);

#endif
