/*
 * The store: Parley's state in memory, kept durable by the write-ahead log.
 *
 * Every change goes through one path: the caller builds the entity's new
 * full state, a store_*_put/create function turns it into a log record
 * ("user U now is {...}"), appends it, applies it to the tables (the same
 * store_apply() that replays the log at start-up), and returns the record's
 * LSN; the caller then calls store_wait(lsn) and only answers 2xx when that
 * returns 0. Records set whole states, never increments, so replaying one
 * twice changes nothing (snapshots are taken while writes go on).
 *
 * Reads copy entities out (store_*_get fill a caller's struct; strings in it
 * are malloc'd and freed by the matching *_clear), so no pointer into the
 * tables ever leaves a lock.
 *
 * Errors: 0, or STORE_E_* below; STORE_E_UNAVAILABLE means the log refuses
 * writes (a failed write or sync earlier: answer 503).
 */
#ifndef PARLEY_STORE_H
#define PARLEY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/series.h"
#include "wal.h"

#define STORE_E_CONFLICT_USERNAME (-2001)
#define STORE_E_CONFLICT_EMAIL (-2002)
#define STORE_E_NOT_FOUND (-2003)
#define STORE_E_UNAVAILABLE (-2004)
#define STORE_E_CORRUPT (-2005) /* a record that does not parse (recovery) */

#define STORE_ID_MAX 40
#define STORE_USERNAME_MAX 33 /* 32 + NUL */
#define STORE_EMAIL_MAX 255
#define STORE_HASH_MAX 160

/* Record types in the log (the wal's type byte). Payloads are JSON objects
 * with "v": the schema version of that record type. */
enum store_record_type {
    STORE_REC_USER = 1,
    STORE_REC_SESSION = 2,
    STORE_REC_API_KEY = 3,
};
#define STORE_SCHEMA_VERSION 1
/* The user record's own version: 2 added the ban (banned_at, banned_until,
 * ban_reason), last_login, login_count and deleted_at; 3 added the mute
 * (muted_at, muted_until, mute_reason); older records load with them
 * empty. */
#define STORE_USER_SCHEMA_VERSION 3
#define STORE_BAN_REASON_MAX 2000 /* bytes, NUL excluded (500 code points) */

typedef struct store_user {
    char id[STORE_ID_MAX];
    char username[STORE_USERNAME_MAX];
    char email[STORE_EMAIL_MAX];
    char password_hash[STORE_HASH_MAX];
    char *display_name; /* malloc'd or NULL */
    char *bio;          /* malloc'd or NULL */
    char *avatar_url;   /* malloc'd or NULL */
    char *preferences;  /* JSON object text, malloc'd or NULL */
    bool is_admin;
    bool is_active;
    int64_t created_at; /* ms since the epoch */
    int64_t updated_at;
    int64_t last_seen;
    bool mfa_enabled;
    char mfa_secret[41];  /* TOTP secret (hex) while enabled, else "" */
    char mfa_pending[41]; /* secret of a setup not yet confirmed, else "" */
    int64_t mfa_last_step; /* last TOTP step accepted (no replay) */
    int64_t banned_at;    /* ms; 0 = not banned (v2) */
    int64_t banned_until; /* ms the ban ends by itself; 0 = until unbanned */
    char *ban_reason;     /* malloc'd or NULL */
    int64_t muted_at;     /* ms; 0 = not muted (v3) */
    int64_t muted_until;  /* ms the mute ends by itself; 0 = until unmuted */
    char *mute_reason;    /* malloc'd or NULL; at most STORE_BAN_REASON_MAX bytes */
    int64_t last_login;   /* ms of the last successful login; 0 = never */
    int64_t login_count;
    int64_t deleted_at;   /* ms; deleted (deactivated, its username and email
                           * out of the indexes, so free); 0 = not */
    uint32_t rev; /* in memory only: changes each time the user's record is
                   * applied, so a cached view of it can tell it is stale */
    int64_t login_counted; /* in memory only: the newest last_login counted in
                            * the logins series (a state applied again, or an
                            * older one replayed after a snapshot, counts
                            * nothing) */
} store_user_t;

typedef struct store_session {
    char id[STORE_ID_MAX];
    char user_id[STORE_ID_MAX];
    char salt[40];        /* per-session secret of the refresh MAC (hex) */
    uint64_t generation;  /* of the current refresh token */
    int64_t created_at;   /* ms */
    int64_t expires_at;   /* ms: the refresh token's end */
    bool revoked;
} store_session_t;

typedef struct store_api_key {
    char id[STORE_ID_MAX];
    char user_id[STORE_ID_MAX];
    char name[129];
    char hash[65];        /* hex SHA-256 of the key */
    bool can_read;
    bool can_write;
    int64_t created_at;   /* ms */
    int64_t expires_at;   /* ms; 0 = never */
    bool revoked;
} store_api_key_t;

void store_user_clear(store_user_t *u);
/* Deep copy; dst must be clear (or zeroed). */
void store_user_copy(store_user_t *dst, const store_user_t *src);

typedef struct store store_t;

typedef struct store_options {
    enum wal_fsync fsync;
    unsigned snapshot_every_records; /* 0: never by count */
    unsigned snapshot_every_seconds; /* 0: never by time */
    size_t audit_max_entries;        /* audit entries kept; 0: the default (audit.h) */
    unsigned audit_max_days;         /* 0: no age bound */
    const uint8_t *encryption_key;   /* WAL_KEY_BYTES: the log is sealed; NULL: plain */
} store_options_t;

/*
 * Opens the log in data_dir, recovers the state (snapshot + log), and starts
 * the snapshot thread. Logs what it replayed and how long it took. Returns 0
 * or an error with a one-line reason in err.
 */
int store_open(store_t **out, const char *data_dir, const store_options_t *opts, char *err,
               size_t err_size);

/* Takes a snapshot (when anything changed since the last), closes the log and
 * frees the store. Returns 0 or the log's error. */
int store_close(store_t *s);

/* Blocks until record `lsn` is durable. 0 or STORE_E_UNAVAILABLE. */
int store_wait(store_t *s, uint64_t lsn);

/* Holds the log for a backup (wal_hold_begin: the newest snapshot and the
 * segments up to a durable LSN stay on disk until wal_hold_end). 0 or
 * STORE_E_UNAVAILABLE. Thread-safe. */
int store_backup_hold(store_t *s, wal_hold_t *out);

/* Writes a snapshot now and trims the log. */
int store_snapshot(store_t *s);

/* Applies one record (live or from the log); used by recovery and tests. */
int store_apply(store_t *s, uint8_t type, const void *data, size_t len);

/* A record as JSON text (malloc'd): the JSON records as they are, binary
 * message records rendered in the JSON layout earlier versions wrote. NULL
 * when the record does not decode. For `parley wal inspect`. */
char *store_record_json(uint8_t type, const void *data, size_t len);

/* ---- users ---- */

/*
 * Creates a user whose username and email (compared case-insensitively) are
 * free. When `first_is_admin`, the user is made admin if no user exists yet
 * (decided atomically with the insert). Sets *lsn. STORE_E_CONFLICT_*.
 */
int store_user_create(store_t *s, store_user_t *u, bool first_is_admin, uint64_t *lsn);

/* Replaces an existing user's state (email uniqueness checked).
 * STORE_E_NOT_FOUND, STORE_E_CONFLICT_EMAIL. */
int store_user_update(store_t *s, const store_user_t *u, uint64_t *lsn);

/*
 * Read-modify-write of one user, atomic with every other change: `fn` gets
 * a copy of the user as it is now and changes it in place; when it returns 0
 * the new state is checked (username and email uniqueness), logged and applied. `fn` runs
 * under the store's write lock: it must be quick and do no I/O. Returns 0,
 * STORE_E_NOT_FOUND, STORE_E_CONFLICT_USERNAME/_EMAIL, STORE_E_UNAVAILABLE, or fn's own
 * non-zero result (nothing changed). On success *out (may be NULL; caller
 * clears) gets the new state.
 */
int store_user_modify(store_t *s, const char *id, int (*fn)(void *ctx, store_user_t *u),
                      void *ctx, store_user_t *out, uint64_t *lsn);

bool store_user_get(store_t *s, const char *id, store_user_t *out);
/* The user's rev (0: no such user), without copying it: O(1), one shard
 * read lock. */
uint32_t store_user_rev(store_t *s, const char *id);
/* By username or email, case-insensitively. */
bool store_user_find(store_t *s, const char *name_or_email, store_user_t *out);
size_t store_user_count(store_t *s);

/*
 * Users whose username or display name contains `query` (case-insensitive;
 * NULL or "" for all), ordered by username. Fills up to `limit` users from
 * index `offset` into out (caller clears each) and returns how many matched
 * in all.
 */
size_t store_user_search(store_t *s, const char *query, size_t offset, size_t limit,
                         store_user_t *out, size_t *n_out);

/* The orders of store_user_search_sorted (ties by id, so pages are stable). */
typedef enum store_user_sort {
    STORE_USER_BY_USERNAME, /* case-insensitively */
    STORE_USER_BY_CREATED,
    STORE_USER_BY_LAST_SEEN, /* never seen counts as the oldest */
} store_user_sort_t;

/* store_user_search in the order `sort`, descending when `desc`. With a
 * query: O(candidates + matches log matches), the candidates from the name
 * index (src/store/user_names.c: the shortest posting list of the query's
 * two- or three-byte runs; a one-byte query reads every user's names);
 * without one (all users): O(users). */
size_t store_user_search_sorted(store_t *s, const char *query, store_user_sort_t sort, bool desc,
                                size_t offset, size_t limit, store_user_t *out, size_t *n_out);

/*
 * Every user for which keep(ctx, u) is true (NULL: all), copied into a
 * malloc'd array *out (caller clears each and frees it; NULL when none),
 * in no particular order. keep runs under a shard's read lock: quick, no
 * I/O, no store calls. Returns the count.
 */
size_t store_user_select(store_t *s, bool (*keep)(void *ctx, const store_user_t *u), void *ctx,
                         store_user_t **out);

/* Active admins not deleted (O(users)); for "the last admin" checks, which
 * run it inside store_user_modify's fn to decide atomically. */
size_t store_user_admin_count(store_t *s);

/* ---- sessions (a login: its refresh token family) ---- */

int store_session_put(store_t *s, const store_session_t *ss, uint64_t *lsn);
bool store_session_get(store_t *s, const char *id, store_session_t *out);

/*
 * Read-modify-write of one session, atomic with every other change (as
 * store_user_modify): `fn` gets a copy of the session as it is now and
 * changes it in place (not its id); when it returns 0 the new state is
 * logged and applied. So a refresh that rotates a session, a reuse that
 * revokes it, a logout and store_session_revoke_all never overwrite one
 * another: a revoked session is never written back un-revoked. `fn` runs
 * under the store's write lock: it must be quick and do no I/O; it may read
 * the store (store_user_get...), never write it. Returns 0,
 * STORE_E_NOT_FOUND, STORE_E_UNAVAILABLE, or fn's own non-zero result
 * (nothing changed, *lsn untouched). On success *out (may be NULL) gets the
 * new state and *lsn its record: the caller store_waits before answering.
 */
int store_session_modify(store_t *s, const char *id, int (*fn)(void *ctx, store_session_t *ss),
                         void *ctx, store_session_t *out, uint64_t *lsn);
/* The live sessions of a user (not revoked, not expired at now_ms), newest
 * first: fills up to max, returns the count. */
size_t store_session_list(store_t *s, const char *user_id, int64_t now_ms, store_session_t *out,
                          size_t max);
/* Revokes every session of user_id except `keep` (may be NULL). */
int store_session_revoke_all(store_t *s, const char *user_id, const char *keep, uint64_t *lsn);

/* ---- API keys ---- */

int store_api_key_put(store_t *s, const store_api_key_t *k, uint64_t *lsn);
bool store_api_key_get(store_t *s, const char *id, store_api_key_t *out);
bool store_api_key_find_hash(store_t *s, const char *hash, store_api_key_t *out);
/* The keys of a user, newest first: fills up to max, returns the count. */
size_t store_api_key_list(store_t *s, const char *user_id, store_api_key_t *out, size_t max);
/* Revokes every live API key of user_id (a password change does: the keys
 * were made by a login the new password ends). On success *lsn is moved to
 * the last record written (left as it was when there was none: pass the lsn
 * to wait for anyway) and *revoked (may be NULL) gets the count. */
int store_api_key_revoke_all(store_t *s, const char *user_id, uint64_t *lsn, size_t *revoked);

/* ---- ids and facts ---- */

/* A new id "<prefix>_<12 hex ms><8 hex random>": unique, sorts by time. */
void store_new_id(const char *prefix, char out[STORE_ID_MAX]);

typedef struct store_stats {
    size_t users, sessions, api_keys, channels, messages, files;
    uint64_t wal_bytes, wal_segments, last_lsn, snapshot_lsn;
    uint64_t live_files; /* files not deleted (files counts every file record) */
    uint64_t file_bytes; /* sizes of the live files added up */
    uint64_t blob_bytes; /* sizes of the distinct blobs they name (stored once) */
} store_stats_t;
void store_get_stats(store_t *s, store_stats_t *out);

/* ---- dashboard figures (the admin's stats and time series) ---- */

/*
 * Counts per minute/hour/day kept by the apply (the same in replay), so a
 * series costs O(log n + buckets), never a scan:
 *   MESSAGES  each message once, at its created_at, when its id first
 *             appears (a deleted message still counts: it was sent);
 *   SIGNUPS   each account once, at its created_at (deleted ones too);
 *   UPLOADS   each file record once, at its uploaded_at (avatars included);
 *   LOGINS    each applied user state whose last_login is newer than the
 *             newest counted for that account: every login while the
 *             server runs and every one replayed from the log; for the time
 *             before the last snapshot only each account's last login.
 * The tables and these counts are rebuilt together at start.
 */
enum store_metric {
    STORE_METRIC_MESSAGES,
    STORE_METRIC_SIGNUPS,
    STORE_METRIC_UPLOADS,
    STORE_METRIC_LOGINS,
    STORE_METRICS
};
/* out[0..n) = the counts of buckets first..first+n-1 (series_read). */
void store_series_read(store_t *s, enum store_metric m, enum series_level level, int64_t first,
                       size_t n, int64_t *out);

typedef struct store_user_counts {
    size_t total;       /* accounts not deleted */
    size_t banned;      /* of those, under a ban at now_ms */
    size_t deactivated; /* deleted or deactivated */
} store_user_counts_t;
/* O(users), shard by shard. */
void store_user_counts(store_t *s, int64_t now_ms, store_user_counts_t *out);

/* The last snapshot written by this process (or found at start). */
typedef struct store_snapshot_info {
    uint64_t lsn;         /* 0: none yet */
    uint64_t bytes;       /* of its file */
    int64_t at_ms;        /* wall time it was committed; 0 when unknown */
    int64_t duration_ms;  /* how long it took to write */
    uint64_t segments_trimmed; /* log segments removed after it */
    bool running;         /* one is being written now */
} store_snapshot_info_t;
void store_snapshot_state(store_t *s, store_snapshot_info_t *out);
/* store_snapshot, and what it wrote in *out (0 and filled, or an error). Safe
 * with another snapshot at once (they take turns). */
int store_snapshot_now(store_t *s, store_snapshot_info_t *out);
/*
 * What the log can do now, for GET /api/health and the admin's system
 * status. `state`: "ok"; "no_space" (the disk is full: writes answer
 * STORE_E_UNAVAILABLE and resume by themselves once space returns);
 * "read_only" (a sync or write failed: writes are refused until a restart).
 */
typedef struct store_log_state {
    const char *state;            /* static */
    char error[128];              /* "" when ok; "fdatasync failed: EIO (Input/output error)" */
    int64_t since_ms;             /* when it began (wall clock, ms); 0 when ok */
    uint64_t space_stalls;        /* times the disk was full since start */
    uint64_t snapshot_failures;   /* snapshots that failed since start (each is retried) */
    int64_t snapshot_failed_ms;   /* the last one's time; 0: none */
    char snapshot_error[128];     /* its reason; "" when none */
} store_log_state_t;

/* Fills *out. Thread-safe; takes the log's mutex and a leaf lock only. */
void store_log_state(store_t *s, store_log_state_t *out);

/* The log's figures (fsync latencies, batch sizes, segments). */
void store_wal_stats(store_t *s, wal_stats_t *out);

#endif
