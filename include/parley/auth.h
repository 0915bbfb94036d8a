/*
 * Authentication primitives: password hashing, access tokens (JWT HS256),
 * refresh tokens, API keys, the server's keys, the login throttle and the
 * request rate limits by category. Pure functions over memory: no HTTP, no
 * store, no logging (nothing here ever writes a password, token or key
 * anywhere).
 * The handlers call these and map the codes below to HTTP in http_errors.c.
 *
 * Times are `int64_t now` in Unix seconds (`now_ms`: milliseconds), passed
 * in by the caller, so tests control the clock.
 *
 * Thread safety: every function may be called from any thread at once,
 * except auth_keys_load()/auth_keys_derive() on the same auth_keys_t (load
 * the keys once at start-up, then share them read-only) and the limiters'
 * _free(), which must be the last call on that limiter.
 */
#ifndef PARLEY_AUTH_H
#define PARLEY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- result codes (Parley's own codes live below -1000) ------------------ */

enum {
    AUTH_OK = 0,
    AUTH_EINVALID = -1100, /* malformed, forged, wrong key/alg/type, or bad argument */
    AUTH_EEXPIRED = -1101, /* authentic access token whose exp has passed */
    AUTH_EREUSED = -1102,  /* authentic refresh token of an older generation */
    AUTH_ELIMITED = -1103, /* throttled or rate-limited: retry later */
    AUTH_ETOOLONG = -1104, /* input longer than this module accepts */
    AUTH_ECRYPTO = -1105,  /* the RNG, argon2, libjwt or GnuTLS failed (incl. out of memory) */
    AUTH_ESECRET = -1106,  /* server secret missing, too short, malformed or unsafe */
};

/* Sizes, including the terminating NUL. */
#define AUTH_ID_MAX 64            /* user and session ids: at most 63 bytes */
#define AUTH_JTI_SIZE 33          /* 16 random bytes as lowercase hex */
#define AUTH_TOKEN_MAX_LEN 4096   /* longer access tokens are refused unparsed */
#define AUTH_PASSWORD_MAX_BYTES 1024
#define AUTH_PASSWORD_HASH_MAX 128 /* "$argon2id$v=19$m=19456,t=2,p=1$<22>$<43>" is 97 */
#define AUTH_REFRESH_MAX 160      /* "<sid>.<generation>.<64 hex>" */
#define AUTH_REFRESH_MAC_LEN 64   /* hex HMAC-SHA256 */
#define AUTH_API_KEY_MAX 72       /* "plx_" + 64 hex = 68 */
#define AUTH_API_KEY_ID_MAX 13    /* 12 hex */
#define AUTH_SHA256_HEX 65        /* 64 hex */
#define AUTH_ISSUER "parley"

/* ---- passwords (argon2id, m=19 MiB, t=2, p=1) ----------------------------- */

/*
 * Hashes `password` (any bytes up to AUTH_PASSWORD_MAX_BYTES, NUL-terminated;
 * the 8-128 character rule belongs to the handler) into the standard encoded
 * form "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" with a fresh 16-byte
 * salt. Blocks ~60 ms of CPU and 19 MiB, and first waits while
 * auth_password_concurrency() hashes are already running.
 *
 * Returns AUTH_OK with the NUL-terminated string in `out` (OUT, caller's
 * buffer of out_size bytes, AUTH_PASSWORD_HASH_MAX is enough);
 * AUTH_EINVALID for a NULL argument or out_size < AUTH_PASSWORD_HASH_MAX;
 * AUTH_ETOOLONG when the password is longer than AUTH_PASSWORD_MAX_BYTES;
 * AUTH_ECRYPTO when the RNG or argon2 fails. `out` is untouched on failure.
 */
int auth_password_hash(const char *password, char *out, size_t out_size);

/*
 * True when `password` matches `encoded` (an argon2id string from
 * auth_password_hash()). The comparison is constant-time (argon2's own).
 * False for a wrong password, a NULL argument, a password longer than
 * AUTH_PASSWORD_MAX_BYTES, or an encoded string that is malformed, not
 * argon2id, or asks for more than 256 MiB / t=16 / p=8 (a corrupted record
 * must not be able to take the server's memory). Shares the concurrency limit.
 */
bool auth_password_verify(const char *password, const char *encoded);

/*
 * Spends the time of a verification against a fixed dummy hash (same
 * parameters) and returns false: call it when the account does not exist, so
 * that "unknown user" and "wrong password" take the same time.
 */
bool auth_password_verify_dummy(const char *password);

/* True when `encoded` was made with other parameters than the current ones:
 * the caller may rehash after a successful login. */
bool auth_password_needs_rehash(const char *encoded);

/* How many hashes may run at once: the online CPUs at first use, at least 1. */
int auth_password_concurrency(void);

/* Test hook: hashes/verifications running now, and the most seen at once
 * since start (or the last reset). */
void auth__password_stats(int *in_progress, int *max_seen);
void auth__password_stats_reset(void);

/* ---- keys ----------------------------------------------------------------- */

/*
 * The server's symmetric keys, derived from one 32+ byte secret with HKDF-SHA256
 * (distinct info strings): one signs access tokens, the other MACs refresh
 * tokens. A value type so it can live in the app struct; the fields are
 * private (leading underscore). Share it read-only once loaded.
 */
typedef struct auth_keys {
    unsigned char _jwt[32];
    unsigned char _refresh[32];
    bool _loaded;
} auth_keys_t;

/*
 * Loads the keys. With `env_secret` (PARLEY_JWT_SECRET; at least 32 bytes)
 * the keys derive from it and the data directory is not touched. Otherwise
 * they derive from `<data_dir>/secret.key` (64 hex characters + newline, mode
 * 0600), which is created on first start (temp file, fsync, rename, directory
 * fsync). The directory must exist.
 *
 * Returns AUTH_OK with `out` filled (OUT); AUTH_ESECRET when the env secret is
 * shorter than 32 bytes, or the file has the wrong size or content, is not a
 * regular file, or is readable/writable by group or others; a negative errno
 * when the file or directory cannot be read, created or synced; AUTH_ECRYPTO
 * when the RNG or HKDF fails. On failure `err` (err_size bytes) gets one line
 * naming the file or variable and the reason, and `out` is untouched.
 */
int auth_keys_load(const char *data_dir, const char *env_secret, auth_keys_t *out, char *err,
                   size_t err_size);

/* The derivation both cases use: HKDF-SHA256 of `len` bytes of `secret`.
 * Returns AUTH_OK, AUTH_EINVALID (len < 32 or NULL), AUTH_ECRYPTO. */
int auth_keys_derive(const void *secret, size_t len, auth_keys_t *out);

/* Overwrites the keys with zeros (explicit_bzero). */
void auth_keys_wipe(auth_keys_t *k);

/* Writes 2*nbytes lowercase hex characters and a NUL into `out` (OUT, at
 * least 2*nbytes+1 bytes) from gnutls_rnd(GNUTLS_RND_KEY).
 * Returns AUTH_OK, AUTH_EINVALID (nbytes > 1024), AUTH_ECRYPTO. */
int auth_random_hex(size_t nbytes, char *out);

/* ---- access tokens (JWT HS256) -------------------------------------------- */

typedef struct auth_claims {
    char sub[AUTH_ID_MAX];   /* user id */
    char sid[AUTH_ID_MAX];   /* session (login) id */
    char jti[AUTH_JTI_SIZE]; /* token id */
    int64_t iat;
    int64_t exp;
} auth_claims_t;

/*
 * Issues an access token: HS256 with claims iss "parley", sub, sid, iat = now,
 * exp = now + ttl_seconds, jti = 16 random bytes in hex.
 *
 * Returns AUTH_OK with `*out` (OUT) a NUL-terminated string the caller frees
 * with free(); AUTH_EINVALID for an unloaded key, an empty or too long
 * (>= AUTH_ID_MAX) id, or ttl_seconds <= 0; AUTH_ECRYPTO when the RNG or
 * libjwt fails. `*out` is untouched on failure.
 */
int auth_token_issue(const auth_keys_t *k, const char *user_id, const char *session_id, int64_t now,
                     int ttl_seconds, char **out);

/*
 * Verifies an access token. Returns:
 *   AUTH_OK        authentic, unexpired: `out` (OUT) holds the claims;
 *   AUTH_EEXPIRED  authentic and well-formed but now >= exp (`out` is filled
 *                  too, for logging the user id);
 *   AUTH_EINVALID  anything else: NULL, longer than AUTH_TOKEN_MAX_LEN
 *                  (refused before parsing), not a JWT, bad signature or key,
 *                  alg other than exactly HS256 (HS512 and none included),
 *                  iss not "parley", sub/sid/jti missing, empty, too long or
 *                  not strings, iat/exp missing, not positive integers or
 *                  exp <= iat, iat more than 60 s in the future.
 * The session's revocation is the caller's business (look up out->sid).
 */
int auth_token_verify(const auth_keys_t *k, const char *token, int64_t now, auth_claims_t *out);

/* ---- refresh tokens ("<session_id>.<generation>.<mac>") ------------------- */

/*
 * Writes the refresh token of generation `generation` of a session into
 * `out` (OUT): "<session_id>.<generation in decimal>.<mac>", mac = hex
 * HMAC-SHA256(refresh key, session_id || 0x00 || session_salt || 0x00 ||
 * generation in decimal). Nothing is stored: the session keeps its salt and
 * its current generation; rotating = incrementing the generation.
 * `session_id` must be 1-63 printable ASCII bytes without '.', and
 * `session_salt` a string of 1-255 bytes (e.g. auth_random_hex(16)) kept
 * with the session; changing it voids all of the session's refresh tokens.
 * Returns AUTH_OK, AUTH_EINVALID (bad id or salt, unloaded key),
 * AUTH_ECRYPTO.
 */
int auth_refresh_issue(const auth_keys_t *k, const char *session_id, const char *session_salt,
                       uint64_t generation, char out[AUTH_REFRESH_MAX]);

/*
 * Splits a refresh token without checking its MAC, so the caller can look up
 * the session. Returns AUTH_OK with `sid` (OUT), `*generation` (OUT) and
 * `*mac` (OUT, points into `token`: valid as long as `token` is), or
 * AUTH_EINVALID: NULL, empty, longer than AUTH_REFRESH_MAX - 1, not three
 * dot-separated parts, a bad session id, a generation that is not 1-20
 * decimal digits without leading zeros or does not fit 64 bits, a mac that is
 * not 64 lowercase hex characters.
 */
int auth_refresh_parse(const char *token, char sid[AUTH_ID_MAX], uint64_t *generation,
                       const char **mac);

/*
 * Checks a refresh token against the session it names. Returns:
 *   AUTH_OK        the MAC is right and generation == current_generation:
 *                  the caller rotates (generation + 1) and answers a new pair;
 *   AUTH_EREUSED   the MAC is right but generation < current_generation: a
 *                  spent token came back, the caller revokes the whole session;
 *   AUTH_EINVALID  malformed, another session's token, wrong MAC (constant-
 *                  time compare), or generation > current_generation;
 *   AUTH_ECRYPTO   GnuTLS failed.
 */
int auth_refresh_check(const auth_keys_t *k, const char *token, const char *session_id,
                       const char *session_salt, uint64_t current_generation);

/* ---- session cookies and CSRF tokens (a browser's login) ------------------ */

#define AUTH_SESSION_COOKIE_MAX 129 /* "<session_id>.<64 hex>" + NUL */
#define AUTH_CSRF_TOKEN_MAX 65      /* 64 hex + NUL */

/*
 * A browser's login holds its session (the same record a refresh token
 * names) in a cookie: "<session_id>.<mac>", mac = hex HMAC-SHA256(refresh
 * key, session_id || 0 || session_salt || 0 || "cookie"). It does not
 * rotate: it holds while the session does (revoked, expired or its salt
 * changed, it is void), so checking it costs one HMAC and no write. The
 * CSRF token of the same session is the MAC with "csrf" (a synchronizer
 * token: derived from the session, never stored). Neither can stand for a
 * refresh token or each other (distinct purposes in the MAC).
 *
 * issue: AUTH_OK with `out` (OUT), AUTH_EINVALID (bad id or salt, unloaded
 * key), AUTH_ECRYPTO. parse: AUTH_OK with `sid` (OUT), or AUTH_EINVALID for
 * anything but 1-63 printable bytes without '.', a dot and 64 lowercase hex
 * (longer values are refused unread). check: AUTH_OK when `value` is the
 * cookie of that session, AUTH_EINVALID otherwise (constant-time compare),
 * AUTH_ECRYPTO. auth_csrf_check: AUTH_OK when `token` is the session's CSRF
 * token, AUTH_EINVALID (NULL, malformed or another), AUTH_ECRYPTO.
 */
int auth_session_cookie_issue(const auth_keys_t *k, const char *session_id,
                              const char *session_salt, char out[AUTH_SESSION_COOKIE_MAX]);
int auth_session_cookie_parse(const char *value, char sid[AUTH_ID_MAX]);
int auth_session_cookie_check(const auth_keys_t *k, const char *value, const char *session_id,
                              const char *session_salt);
int auth_csrf_token(const auth_keys_t *k, const char *session_id, const char *session_salt,
                    char out[AUTH_CSRF_TOKEN_MAX]);
int auth_csrf_check(const auth_keys_t *k, const char *session_id, const char *session_salt,
                    const char *token);

/* ---- API keys ("plx_" + 64 lowercase hex) --------------------------------- */

/*
 * Makes a new API key: `key_out` = "plx_" + 32 random bytes in lowercase hex
 * (shown to the user once), `id_out` = 12 hex characters (public id for
 * listing and DELETE), `hash_out` = hex SHA-256 of the whole key (what the
 * store keeps). All OUT, caller's buffers. Returns AUTH_OK or AUTH_ECRYPTO.
 */
int auth_api_key_new(char key_out[AUTH_API_KEY_MAX], char id_out[AUTH_API_KEY_ID_MAX],
                     char hash_out[AUTH_SHA256_HEX]);

/* Hashes a presented key for lookup. Returns AUTH_OK with `hash_out` (OUT),
 * or AUTH_EINVALID when `key` is not "plx_" + 64 lowercase hex (no lookup
 * needed), AUTH_ECRYPTO. */
int auth_api_key_hash(const char *key, char hash_out[AUTH_SHA256_HEX]);

/* ---- two-factor codes (TOTP, RFC 6238) ------------------------------------ */

#define AUTH_TOTP_SECRET_HEX 41  /* 20 bytes as hex */
#define AUTH_TOTP_BASE32 33      /* 20 bytes as base32, no padding */
#define AUTH_MFA_TOKEN_MAX 160   /* "<user_id>.<exp>.<64 hex>" */

/* A new 20-byte TOTP secret as hex (what the store keeps) and base32 (what an
 * authenticator app reads). AUTH_OK or AUTH_ECRYPTO. */
int auth_totp_new_secret(char hex_out[AUTH_TOTP_SECRET_HEX], char base32_out[AUTH_TOTP_BASE32]);

/* The base32 form of a hex secret. AUTH_OK or AUTH_EINVALID. */
int auth_totp_base32(const char *hex_secret, char base32_out[AUTH_TOTP_BASE32]);

/*
 * Checks a 6-digit code against the secret at `now` (Unix seconds), allowing
 * one 30-second step of drift either way, and only for a step later than
 * `last_step` (the last one accepted: no replay). Returns AUTH_OK with
 * *matched_step (OUT, may be NULL) to store as the new last_step, or
 * AUTH_EINVALID (wrong, replayed or malformed), AUTH_ECRYPTO.
 */
int auth_totp_check(const char *hex_secret, const char *code, int64_t now, int64_t last_step,
                    int64_t *matched_step);

/* The RFC 6238 code of `step` for raw key bytes, `digits` 6-8 (for tests
 * against the RFC's vectors). */
int auth_totp_code_raw(const unsigned char *key, size_t key_len, int64_t step, int digits,
                       char *out);

/*
 * The token a login with the right password but no code gets back
 * (MFA_REQUIRED): "<user_id>.<exp>.<HMAC>", valid `ttl` seconds, carrying
 * nothing but the user. verify returns AUTH_OK with user_id (OUT),
 * AUTH_EEXPIRED, or AUTH_EINVALID.
 */
int auth_mfa_token_issue(const auth_keys_t *k, const char *user_id, int64_t now, int ttl,
                         char out[AUTH_MFA_TOKEN_MAX]);
int auth_mfa_token_verify(const auth_keys_t *k, const char *token, int64_t now,
                          char user_id[AUTH_ID_MAX]);

/* ---- login throttle ------------------------------------------------------- */

#define AUTH_LOGIN_FREE_ACCOUNT 5   /* failures before delays start, per account */
#define AUTH_LOGIN_FREE_IP 20       /* ... per client IP */
#define AUTH_LOGIN_WINDOW 900       /* failures are forgotten 15 min after the last */
#define AUTH_LOGIN_MAX_DELAY 300    /* the delay doubles from 1 s up to 5 min */
#define AUTH_LOGIN_MAX_ENTRIES 100000 /* per map (accounts, IPs) by default */

typedef struct auth_login_limiter auth_login_limiter_t;

/* A new throttle holding at most `max_entries` accounts and as many IPs
 * (0 = AUTH_LOGIN_MAX_ENTRIES, ~56 bytes each, allocated up front but only
 * touched as used); when a map is full the least recently used entry (last
 * counted attempt or failure) is evicted. Aborts when out of memory. */
auth_login_limiter_t *auth_login_limiter_new(size_t max_entries);
void auth_login_limiter_free(auth_login_limiter_t *l); /* NULL is a no-op */

/*
 * Before checking a password. `account_key` is the username or email as
 * typed (compared ASCII-case-insensitively; NULL or "" skips the account),
 * `ip` the client address (NULL or "" skips it). Returns AUTH_OK and counts
 * the attempt as a failure in advance (so parallel attempts cannot all slip
 * through before the first one fails), or AUTH_ELIMITED with `*retry_after`
 * (OUT, seconds >= 1) and nothing counted.
 */
int auth_login_check(auth_login_limiter_t *l, const char *account_key, const char *ip, int64_t now,
                     int *retry_after);

/* After a wrong password: restarts the delay from `now` (the attempt was
 * already counted by auth_login_check). True when this failure used up the
 * account's free allowance: from now on its attempts are delayed (the
 * moment to report the account as locked out, once per run of failures). */
bool auth_login_failure(auth_login_limiter_t *l, const char *account_key, const char *ip,
                        int64_t now);

/* After a right password: clears the account's failures and takes back the
 * attempt counted against the IP (earlier failures from the IP stay). */
void auth_login_success(auth_login_limiter_t *l, const char *account_key, const char *ip,
                        int64_t now);

/* ---- request rate limits by category -------------------------------------- */

/*
 * Every request falls into one category (the route table says which:
 * include/parley/http.h, "Route flags"), and each category has its own
 * per-minute limit and its own token bucket per caller: the user for an
 * authenticated call, the client address for an anonymous one.
 */
typedef enum auth_rate_category {
    AUTH_RATE_DEFAULT,  /* "default": everything the others do not take */
    AUTH_RATE_AUTH,     /* "auth": /api/v1/auth/... (login, register, refresh, MFA, keys) */
    AUTH_RATE_MESSAGES, /* "messages": posting, editing, deleting messages; reactions */
    AUTH_RATE_UPLOADS,  /* "uploads": file and avatar uploads */
    AUTH_RATE_SEARCH,   /* "search": /api/v1/search/... */
    AUTH_RATE_ADMIN,    /* "admin": the admin routes */
    AUTH_RATE_CATEGORIES
} auth_rate_category_t;

#define AUTH_RATE_WINDOW 60          /* seconds: a limit is requests per minute */
#define AUTH_RATE_LIMIT_MAX 1000000  /* the largest limit a category takes */
#define AUTH_RATE_MAX_ENTRIES 100000 /* (category, caller) buckets by default */
#define AUTH_RATE_CALLER_MAX 61      /* bytes of a caller kept in its key */

/* The category's name ("default", "auth", "messages", "uploads", "search",
 * "admin"), or NULL for a value out of range. */
const char *auth_rate_category_name(int category);

/* The category named `name` (exactly as above), or -1. */
int auth_rate_category_from_name(const char *name);

typedef struct auth_rate_limiter auth_rate_limiter_t;

typedef struct auth_rate_info {
    bool enabled;      /* false when the category's limit is 0: the rest is zero */
    int limit;         /* X-RateLimit-Limit: the bucket's size, requests per minute */
    int remaining;     /* X-RateLimit-Remaining: whole tokens left after this request */
    int64_t reset;     /* X-RateLimit-Reset: Unix seconds (rounded up) when the
                        * bucket is full again if nothing more is asked */
    int retry_after;   /* when limited: seconds (rounded up, >= 1) until the next
                        * token; else 0 */
} auth_rate_info_t;

/*
 * A limiter with `limits[c]` requests per minute for each category c
 * (0 = off; values above AUTH_RATE_LIMIT_MAX are taken as that), holding
 * at most `max_entries` (category, caller) buckets in all (0 =
 * AUTH_RATE_MAX_ENTRIES, ~110 bytes each, allocated up front but only
 * touched as used); when a shard is full its least recently used bucket is
 * forgotten. Aborts when out of memory.
 */
auth_rate_limiter_t *auth_rate_limiter_new(const int limits[AUTH_RATE_CATEGORIES],
                                           size_t max_entries);
/* The same with limits per `window_seconds` instead of per minute (0: a
 * minute): a bucket holds `limit` tokens and refills in one window. The
 * registration throttle is one with a window of an hour. */
auth_rate_limiter_t *auth_rate_limiter_new_window(const int limits[AUTH_RATE_CATEGORIES],
                                                  size_t max_entries, unsigned window_seconds);
void auth_rate_limiter_free(auth_rate_limiter_t *l); /* NULL is a no-op */

/*
 * Changes a category's limit (the live settings), thread-safe, effective
 * from the next check: a bucket keeps the tokens it has used (a caller with
 * 2 of 5 used has 8 of 10 after a raise to 10, 1 of 3 after a cut to 3, 0
 * when it used more than the new limit). 0 turns the category off. Returns AUTH_OK,
 * or AUTH_EINVALID (nothing changed) for an unknown category or a limit
 * outside 0..AUTH_RATE_LIMIT_MAX.
 */
int auth_rate_set_category_limit(auth_rate_limiter_t *l, int category, int per_minute);

/* A category's limit now (0: off; -1 for an unknown category). */
int auth_rate_category_limit(const auth_rate_limiter_t *l, int category);

/*
 * Takes one token from the bucket of (category, caller) at `now_ms` (Unix
 * milliseconds). The caller is `user_id` when it is non-empty, else the
 * client `address` (the two never share a bucket); longer ones are keyed by
 * their first AUTH_RATE_CALLER_MAX bytes. A bucket holds `limit` tokens,
 * starts full and refills at limit/60 tokens a second. Returns AUTH_OK
 * (allowed; also when the category is off or there is no caller at all) or
 * AUTH_ELIMITED (nothing taken); `out` (OUT, may be NULL) gets the header
 * values either way. Takes one shard lock.
 */
int auth_rate_check(auth_rate_limiter_t *l, int category, const char *user_id,
                    const char *address, int64_t now_ms, auth_rate_info_t *out);

#define AUTH_RATE_SPEND_MAX (1ll << 40) /* the largest budget per minute */

/*
 * A budget of amounts per user (the bytes a user may upload a minute): takes
 * `amount` from user_id's bucket, which holds `per_minute` (0: no budget,
 * AUTH_RATE_SPEND_MAX at most), starts full and refills at per_minute/60 a
 * second. Allowed when the bucket holds the amount, or is full (one amount
 * larger than the whole budget passes, and the bucket owes it: nothing more
 * passes until it is paid back). Returns AUTH_OK, or AUTH_ELIMITED (nothing
 * taken) with *retry_after (OUT, seconds >= 1) until it would pass. Its
 * buckets share the limiter's table (and its bound) with the categories'.
 * Takes one shard lock.
 */
int auth_rate_spend(auth_rate_limiter_t *l, const char *user_id, int64_t amount,
                    int64_t per_minute, int64_t now_ms, int *retry_after);

#endif
