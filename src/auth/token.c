/*
 * Access tokens (JWT HS256 through libjwt 1.10.2) and refresh tokens (an HMAC
 * over the session and a generation number).
 *
 * DESIGN, access tokens. Short-lived (PARLEY_ACCESS_TOKEN_TTL, 900 s) and
 * stateless: claims iss "parley", sub (user), sid (login session, so logout
 * and revocation can be checked against the session table), iat, exp and a
 * random jti. libjwt has no validation API and some permissive corners, so
 * verification does all of it here, in this order:
 *   - a token over 4096 bytes is refused before parsing (libjwt decodes the
 *     JSON before it checks the signature);
 *   - the key is always our 32-byte key (with key_len 0 libjwt accepts alg
 *     "none"; an unloaded auth_keys_t is refused instead);
 *   - jwt_decode checks the signature, then the alg must be exactly HS256:
 *     libjwt accepts an HS512 (or HS384) token signed with the same key;
 *   - every claim is type-checked. libjwt 1.10.2 answers a string or real
 *     claim read with jwt_get_grant_int with 0 and errno untouched (not
 *     EINVAL; ENOENT only when missing), so iat and exp must be > 0, which
 *     also rejects the wrong types; jwt_get_grant returns NULL for non-strings;
 *   - iat more than 60 s ahead of our clock is forged or from a broken clock;
 *   - only a token that passed everything else is reported EXPIRED, so that
 *     answer (TOKEN_EXPIRED: "refresh and retry") is never given to garbage.
 *
 * DESIGN, the verified-token cache. Verifying is a pure function of the
 * token and the key, and libjwt spends about a fifth of a message post's CPU
 * on it (base64, JSON, HMAC: measured with perf under make bench). So a
 * token that passed every check is remembered: a direct-mapped table of
 * VERIFIED_SLOTS entries, each holding the whole token, the key it was
 * verified with and its claims, under striped mutexes. A hit needs the exact
 * same token bytes and key; it skips only the signature and claim checks,
 * never the expiry (checked against `now` on every call) nor anything the
 * caller checks after (the session, the user). A collision simply replaces
 * the entry. Tokens are at most AUTH_TOKEN_MAX_LEN bytes, so the table is
 * bounded (in practice ~300 bytes a token).
 *
 * DESIGN, refresh tokens. "<session_id>.<generation>.<mac>" with mac = hex
 * HMAC-SHA256(refresh key, session_id || 0 || session_salt || 0 ||
 * generation). The server stores no token, only per session its salt and
 * current generation: a refresh presents generation g; g == current is the
 * live token (rotate: current = g + 1), g < current is a spent token coming
 * back (stolen and raced: revoke the session, as OAuth's refresh-token
 * rotation recommends), g > current was never issued. The NUL separators
 * keep the MAC input unambiguous; the per-session salt lets the caller void
 * every token of a session by changing it. MACs are compared with
 * gnutls_memcmp (constant time). Hex rather than base64url: no padding or
 * alphabet questions, and 64 characters is fine in a JSON body.
 *
 * DESIGN, session cookies and CSRF tokens. The same MAC over the session
 * with a word in place of the generation: "cookie" for the credential a
 * browser's cookie holds (it does not rotate, so a cookie check is one HMAC
 * and a session lookup, no write), "csrf" for the token a cookie request
 * that changes state must echo in X-CSRF-Token. Both die with the session.
 */
#include "parley/auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/hex.h"

#define IAT_SKEW 60
#define SALT_MAX 255

_Static_assert(sizeof(long) >= sizeof(int64_t), "jwt_*_grant_int take long");

/* 1-63 printable ASCII bytes; `allow_dot` false for session ids, which end
 * at the first dot of a refresh token. */
static bool valid_id(const char *s, size_t len, bool allow_dot)
{
    if (len == 0 || len >= AUTH_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || (c == '.' && !allow_dot))
            return false;
    }
    return true;
}

static bool valid_id_str(const char *s, bool allow_dot)
{
    return s && valid_id(s, strnlen(s, AUTH_ID_MAX), allow_dot);
}

/* ---- access tokens -------------------------------------------------------- */

int auth_token_issue(const auth_keys_t *k, const char *user_id, const char *session_id, int64_t now,
                     int ttl_seconds, char **out)
{
    if (!k || !k->_loaded || !out || !valid_id_str(user_id, true) ||
        !valid_id_str(session_id, false) || ttl_seconds <= 0 || now <= 0)
        return AUTH_EINVALID;
    char jti[AUTH_JTI_SIZE];
    if (auth_random_hex((AUTH_JTI_SIZE - 1) / 2, jti) != AUTH_OK)
        return AUTH_ECRYPTO;

    int rc = AUTH_ECRYPTO;
    jwt_t *j = NULL;
    if (jwt_new(&j) != 0)
        return AUTH_ECRYPTO;
    if (jwt_add_grant(j, "iss", AUTH_ISSUER) != 0 || jwt_add_grant(j, "sub", user_id) != 0 ||
        jwt_add_grant(j, "sid", session_id) != 0 || jwt_add_grant(j, "jti", jti) != 0 ||
        jwt_add_grant_int(j, "iat", (long)now) != 0 ||
        jwt_add_grant_int(j, "exp", (long)(now + ttl_seconds)) != 0 ||
        jwt_set_alg(j, JWT_ALG_HS256, k->_jwt, (int)sizeof(k->_jwt)) != 0)
        goto out;
    /* jwt_encode_str allocates with libjwt's allocator, malloc unless
     * jwt_set_alloc was called (Parley never does), so free() releases it. */
    char *s = jwt_encode_str(j);
    if (!s)
        goto out;
    *out = s;
    rc = AUTH_OK;
out:
    jwt_free(j);
    return rc;
}

/* Copies string claim `name` into `dst` (dst_size bytes). False when missing,
 * not a string, empty or too long. */
static bool get_string(jwt_t *j, const char *name, char *dst, size_t dst_size)
{
    const char *v = jwt_get_grant(j, name);
    if (!v)
        return false;
    size_t len = strnlen(v, dst_size);
    if (len == 0 || len >= dst_size)
        return false;
    memcpy(dst, v, len + 1);
    return true;
}

/* Reads a positive integer claim. False when missing (ENOENT), or of another
 * type (libjwt then returns 0 without setting errno), or <= 0. */
static bool get_positive(jwt_t *j, const char *name, int64_t *v)
{
    errno = 0;
    long x = jwt_get_grant_int(j, name);
    if (errno != 0 || x <= 0)
        return false;
    *v = x;
    return true;
}

#define VERIFIED_SLOTS 1024
#define VERIFIED_LOCKS 64

typedef struct verified_token {
    char *token;                   /* malloc'd; NULL when the slot is empty */
    size_t len;
    unsigned char key[32];
    auth_claims_t claims;
} verified_token_t;

static verified_token_t verified[VERIFIED_SLOTS];
static pthread_mutex_t verified_locks[VERIFIED_LOCKS] = {
    [0 ... VERIFIED_LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER,
};

static size_t token_slot(const char *token, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)token[i]) * 1099511628211ULL;
    return (size_t)(h % VERIFIED_SLOTS);
}

static bool verified_get(const auth_keys_t *k, const char *token, size_t len, auth_claims_t *out)
{
    size_t slot = token_slot(token, len);
    pthread_mutex_t *lock = &verified_locks[slot % VERIFIED_LOCKS];
    pthread_mutex_lock(lock);
    const verified_token_t *v = &verified[slot];
    bool hit = v->token && v->len == len && memcmp(v->token, token, len) == 0 &&
               memcmp(v->key, k->_jwt, sizeof(v->key)) == 0;
    if (hit)
        *out = v->claims;
    pthread_mutex_unlock(lock);
    return hit;
}

static void verified_put(const auth_keys_t *k, const char *token, size_t len,
                         const auth_claims_t *claims)
{
    char *copy = malloc(len);
    if (copy == NULL)
        return;
    memcpy(copy, token, len);
    size_t slot = token_slot(token, len);
    pthread_mutex_t *lock = &verified_locks[slot % VERIFIED_LOCKS];
    pthread_mutex_lock(lock);
    verified_token_t *v = &verified[slot];
    char *old = v->token;
    v->token = copy;
    v->len = len;
    memcpy(v->key, k->_jwt, sizeof(v->key));
    v->claims = *claims;
    pthread_mutex_unlock(lock);
    free(old);
}

int auth_token_verify(const auth_keys_t *k, const char *token, int64_t now, auth_claims_t *out)
{
    if (!k || !k->_loaded || !token || !out)
        return AUTH_EINVALID;
    size_t len = strnlen(token, AUTH_TOKEN_MAX_LEN + 1);
    if (len > AUTH_TOKEN_MAX_LEN)
        return AUTH_EINVALID;
    auth_claims_t cached;
    if (verified_get(k, token, len, &cached)) {
        if (cached.iat > now + IAT_SKEW)
            return AUTH_EINVALID; /* as the full check answers (a clock gone back) */
        *out = cached;
        return now >= cached.exp ? AUTH_EEXPIRED : AUTH_OK;
    }
    jwt_t *j = NULL;
    if (jwt_decode(&j, token, k->_jwt, (int)sizeof(k->_jwt)) != 0 || !j)
        return AUTH_EINVALID; /* jwt_decode leaves j NULL on failure */

    int rc = AUTH_EINVALID;
    auth_claims_t c;
    char iss[sizeof(AUTH_ISSUER) + 1];
    if (jwt_get_alg(j) != JWT_ALG_HS256)
        goto out;
    if (!get_string(j, "iss", iss, sizeof(iss)) || strcmp(iss, AUTH_ISSUER) != 0)
        goto out;
    if (!get_string(j, "sub", c.sub, sizeof(c.sub)) ||
        !get_string(j, "sid", c.sid, sizeof(c.sid)) ||
        !get_string(j, "jti", c.jti, sizeof(c.jti)))
        goto out;
    if (!get_positive(j, "iat", &c.iat) || !get_positive(j, "exp", &c.exp) || c.exp <= c.iat)
        goto out;
    if (c.iat > now + IAT_SKEW)
        goto out;
    *out = c;
    rc = now >= c.exp ? AUTH_EEXPIRED : AUTH_OK;
    verified_put(k, token, len, &c);
out:
    jwt_free(j);
    return rc;
}

/* ---- refresh tokens ------------------------------------------------------- */

/* Hex MAC of (sid, salt, purpose) into `hex` (AUTH_REFRESH_MAC_LEN + 1): a
 * refresh token's purpose is its generation in decimal; the session cookie's
 * and the CSRF token's are words ("cookie", "csrf"), which no generation
 * spells, so none of the three can stand for another. */
static int session_mac(const auth_keys_t *k, const char *sid, const char *salt,
                       const char *purpose, char hex[AUTH_REFRESH_MAC_LEN + 1])
{
    char msg[AUTH_ID_MAX + 1 + SALT_MAX + 1 + 21];
    size_t sid_len = strlen(sid), salt_len = strlen(salt);
    memcpy(msg, sid, sid_len);
    msg[sid_len] = '\0';
    memcpy(msg + sid_len + 1, salt, salt_len);
    msg[sid_len + 1 + salt_len] = '\0';
    size_t off = sid_len + 1 + salt_len + 1;
    int n = snprintf(msg + off, sizeof(msg) - off, "%s", purpose);
    unsigned char d[32];
    if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, k->_refresh, sizeof(k->_refresh), msg, off + (size_t)n,
                         d) != 0)
        return AUTH_ECRYPTO;
    hex_encode(d, sizeof(d), hex);
    return AUTH_OK;
}

static int refresh_mac(const auth_keys_t *k, const char *sid, const char *salt, uint64_t generation,
                       char hex[AUTH_REFRESH_MAC_LEN + 1])
{
    char gen[21];
    snprintf(gen, sizeof(gen), "%" PRIu64, generation);
    return session_mac(k, sid, salt, gen, hex);
}

static bool valid_salt(const char *salt)
{
    if (!salt)
        return false;
    size_t len = strnlen(salt, SALT_MAX + 1);
    return len > 0 && len <= SALT_MAX;
}

int auth_refresh_issue(const auth_keys_t *k, const char *session_id, const char *session_salt,
                       uint64_t generation, char out[AUTH_REFRESH_MAX])
{
    if (!k || !k->_loaded || !out || !valid_id_str(session_id, false) || !valid_salt(session_salt))
        return AUTH_EINVALID;
    char mac[AUTH_REFRESH_MAC_LEN + 1];
    if (refresh_mac(k, session_id, session_salt, generation, mac) != AUTH_OK)
        return AUTH_ECRYPTO;
    /* At most 63 + 1 + 20 + 1 + 64 + NUL = 150 bytes: always fits. */
    snprintf(out, AUTH_REFRESH_MAX, "%s.%" PRIu64 ".%s", session_id, generation, mac);
    return AUTH_OK;
}

int auth_refresh_parse(const char *token, char sid[AUTH_ID_MAX], uint64_t *generation,
                       const char **mac)
{
    if (!token || !sid || !generation || !mac)
        return AUTH_EINVALID;
    size_t len = strnlen(token, AUTH_REFRESH_MAX);
    if (len == 0 || len >= AUTH_REFRESH_MAX)
        return AUTH_EINVALID;

    const char *dot1 = memchr(token, '.', len);
    if (!dot1 || !valid_id(token, (size_t)(dot1 - token), false))
        return AUTH_EINVALID;
    const char *g = dot1 + 1;
    const char *dot2 = memchr(g, '.', len - (size_t)(g - token));
    if (!dot2)
        return AUTH_EINVALID;
    size_t g_len = (size_t)(dot2 - g);
    if (g_len == 0 || g_len > 20 || (g_len > 1 && g[0] == '0'))
        return AUTH_EINVALID;
    uint64_t gen = 0;
    for (size_t i = 0; i < g_len; i++) {
        if (g[i] < '0' || g[i] > '9')
            return AUTH_EINVALID;
        unsigned digit = (unsigned)(g[i] - '0');
        if (gen > (UINT64_MAX - digit) / 10)
            return AUTH_EINVALID;
        gen = gen * 10 + digit;
    }
    const char *m = dot2 + 1;
    if (len - (size_t)(m - token) != AUTH_REFRESH_MAC_LEN)
        return AUTH_EINVALID;
    for (size_t i = 0; i < AUTH_REFRESH_MAC_LEN; i++)
        if (!((m[i] >= '0' && m[i] <= '9') || (m[i] >= 'a' && m[i] <= 'f')))
            return AUTH_EINVALID;

    size_t sid_len = (size_t)(dot1 - token);
    memcpy(sid, token, sid_len);
    sid[sid_len] = '\0';
    *generation = gen;
    *mac = m;
    return AUTH_OK;
}

int auth_refresh_check(const auth_keys_t *k, const char *token, const char *session_id,
                       const char *session_salt, uint64_t current_generation)
{
    if (!k || !k->_loaded || !valid_id_str(session_id, false) || !valid_salt(session_salt))
        return AUTH_EINVALID;
    char sid[AUTH_ID_MAX];
    uint64_t gen;
    const char *mac;
    if (auth_refresh_parse(token, sid, &gen, &mac) != AUTH_OK || strcmp(sid, session_id) != 0)
        return AUTH_EINVALID;
    char want[AUTH_REFRESH_MAC_LEN + 1];
    if (refresh_mac(k, sid, session_salt, gen, want) != AUTH_OK)
        return AUTH_ECRYPTO;
    if (gnutls_memcmp(want, mac, AUTH_REFRESH_MAC_LEN) != 0)
        return AUTH_EINVALID;
    if (gen == current_generation)
        return AUTH_OK;
    return gen < current_generation ? AUTH_EREUSED : AUTH_EINVALID;
}

/* ---- session cookies and CSRF tokens -------------------------------------- */

/* Whether s is exactly AUTH_REFRESH_MAC_LEN lowercase hex characters. */
static bool is_mac_hex(const char *s, size_t len)
{
    if (len != AUTH_REFRESH_MAC_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int auth_session_cookie_issue(const auth_keys_t *k, const char *session_id,
                              const char *session_salt, char out[AUTH_SESSION_COOKIE_MAX])
{
    if (!k || !k->_loaded || !out || !valid_id_str(session_id, false) || !valid_salt(session_salt))
        return AUTH_EINVALID;
    char mac[AUTH_REFRESH_MAC_LEN + 1];
    if (session_mac(k, session_id, session_salt, "cookie", mac) != AUTH_OK)
        return AUTH_ECRYPTO;
    snprintf(out, AUTH_SESSION_COOKIE_MAX, "%s.%s", session_id, mac); /* <= 63 + 1 + 64 */
    return AUTH_OK;
}

int auth_session_cookie_parse(const char *value, char sid[AUTH_ID_MAX])
{
    if (!value || !sid)
        return AUTH_EINVALID;
    size_t len = strnlen(value, AUTH_SESSION_COOKIE_MAX);
    if (len == 0 || len >= AUTH_SESSION_COOKIE_MAX)
        return AUTH_EINVALID;
    const char *dot = memchr(value, '.', len);
    if (!dot || !valid_id(value, (size_t)(dot - value), false) ||
        !is_mac_hex(dot + 1, len - (size_t)(dot + 1 - value)))
        return AUTH_EINVALID;
    memcpy(sid, value, (size_t)(dot - value));
    sid[dot - value] = '\0';
    return AUTH_OK;
}

int auth_session_cookie_check(const auth_keys_t *k, const char *value, const char *session_id,
                              const char *session_salt)
{
    if (!k || !k->_loaded || !valid_id_str(session_id, false) || !valid_salt(session_salt))
        return AUTH_EINVALID;
    char sid[AUTH_ID_MAX];
    if (auth_session_cookie_parse(value, sid) != AUTH_OK || strcmp(sid, session_id) != 0)
        return AUTH_EINVALID;
    char want[AUTH_REFRESH_MAC_LEN + 1];
    if (session_mac(k, sid, session_salt, "cookie", want) != AUTH_OK)
        return AUTH_ECRYPTO;
    return gnutls_memcmp(want, value + strlen(sid) + 1, AUTH_REFRESH_MAC_LEN) == 0
               ? AUTH_OK
               : AUTH_EINVALID;
}

int auth_csrf_token(const auth_keys_t *k, const char *session_id, const char *session_salt,
                    char out[AUTH_CSRF_TOKEN_MAX])
{
    if (!k || !k->_loaded || !out || !valid_id_str(session_id, false) || !valid_salt(session_salt))
        return AUTH_EINVALID;
    return session_mac(k, session_id, session_salt, "csrf", out) == AUTH_OK ? AUTH_OK
                                                                            : AUTH_ECRYPTO;
}

int auth_csrf_check(const auth_keys_t *k, const char *session_id, const char *session_salt,
                    const char *token)
{
    if (!token || !is_mac_hex(token, strnlen(token, AUTH_REFRESH_MAC_LEN + 1)))
        return AUTH_EINVALID;
    char want[AUTH_CSRF_TOKEN_MAX];
    int rc = auth_csrf_token(k, session_id, session_salt, want);
    if (rc != AUTH_OK)
        return rc;
    return gnutls_memcmp(want, token, AUTH_REFRESH_MAC_LEN) == 0 ? AUTH_OK : AUTH_EINVALID;
}
