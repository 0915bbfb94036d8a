/*
 * Two-factor codes: TOTP (RFC 6238: HMAC-SHA1 over the 30-second step,
 * dynamic truncation to 6 digits), the secret in the base32 form that
 * authenticator apps read, and the short-lived token that carries a login
 * from "password right" to "code right" without starting a session.
 *
 * A code is accepted for the current step and one step either side (clock
 * drift), and only for a step later than the last one accepted, so a code
 * cannot be replayed. HMACs come from GnuTLS; base32 has no library on
 * Debian for C, so the 8-line encoder (RFC 4648, no padding needed for 20
 * bytes) is here.
 */
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/auth.h"
#include "parley/hex.h"

#define TOTP_STEP 30
#define TOTP_SECRET_BYTES 20

static void base32(const unsigned char *in, size_t n, char *out)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    size_t bits = 0, o = 0;
    unsigned buffer = 0;
    for (size_t i = 0; i < n; i++) {
        buffer = (buffer << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = alphabet[(buffer >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = alphabet[(buffer << (5 - bits)) & 31];
    out[o] = '\0';
}

static bool unhex(const char *hex, unsigned char *out, size_t n)
{
    return strlen(hex) == 2 * n && hex_decode(hex, n, out) == 0;
}

int auth_totp_new_secret(char hex_out[AUTH_TOTP_SECRET_HEX], char base32_out[AUTH_TOTP_BASE32])
{
    unsigned char secret[TOTP_SECRET_BYTES];
    if (gnutls_rnd(GNUTLS_RND_KEY, secret, sizeof(secret)) != 0)
        return AUTH_ECRYPTO;
    hex_encode(secret, sizeof(secret), hex_out);
    base32(secret, sizeof(secret), base32_out);
    return AUTH_OK;
}

int auth_totp_base32(const char *hex_secret, char base32_out[AUTH_TOTP_BASE32])
{
    unsigned char secret[TOTP_SECRET_BYTES];
    if (!unhex(hex_secret, secret, sizeof(secret)))
        return AUTH_EINVALID;
    base32(secret, sizeof(secret), base32_out);
    return AUTH_OK;
}

/* The code of one step, from raw key bytes. */
static int code_at(const unsigned char *key, size_t key_len, int64_t step, int digits,
                   char *out)
{
    unsigned char msg[8], mac[20];
    for (int i = 7; i >= 0; i--) {
        msg[i] = (unsigned char)(step & 0xff);
        step >>= 8;
    }
    if (gnutls_hmac_fast(GNUTLS_MAC_SHA1, key, key_len, msg, sizeof(msg), mac) != 0)
        return AUTH_ECRYPTO;
    int off = mac[19] & 0x0f;
    uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
                   ((uint32_t)mac[off + 2] << 8) | mac[off + 3];
    uint32_t mod = 1;
    for (int i = 0; i < digits; i++)
        mod *= 10;
    snprintf(out, (size_t)digits + 1, "%0*u", digits, bin % mod);
    return AUTH_OK;
}

int auth_totp_code_raw(const unsigned char *key, size_t key_len, int64_t step, int digits,
                       char *out)
{
    if (key == NULL || out == NULL || digits < 6 || digits > 8 || step < 0)
        return AUTH_EINVALID;
    return code_at(key, key_len, step, digits, out);
}

int auth_totp_check(const char *hex_secret, const char *code, int64_t now, int64_t last_step,
                    int64_t *matched_step)
{
    unsigned char secret[TOTP_SECRET_BYTES];
    if (hex_secret == NULL || code == NULL || !unhex(hex_secret, secret, sizeof(secret)) ||
        strlen(code) != 6 || strspn(code, "0123456789") != 6 || now < 0)
        return AUTH_EINVALID;
    int64_t step = now / TOTP_STEP;
    int found = 0;
    int64_t matched = 0;
    /* Every candidate is computed and compared, so the time taken does not
     * tell which one matched. */
    for (int64_t s = step - 1; s <= step + 1; s++) {
        char want[7];
        if (code_at(secret, sizeof(secret), s, 6, want) != AUTH_OK)
            return AUTH_ECRYPTO;
        if (gnutls_memcmp(want, code, 6) == 0 && s > last_step && !found) {
            found = 1;
            matched = s;
        }
    }
    if (!found)
        return AUTH_EINVALID;
    if (matched_step)
        *matched_step = matched;
    return AUTH_OK;
}

/* ---- the token between password and code ---------------------------------- */

static int mfa_mac(const auth_keys_t *k, const char *user_id, int64_t exp, char hex[65])
{
    char msg[AUTH_ID_MAX + 48];
    int n = snprintf(msg, sizeof(msg), "mfa%c%s%c%lld", 0, user_id, 0, (long long)exp);
    unsigned char mac[32];
    if (n < 0 || (size_t)n >= sizeof(msg) ||
        gnutls_hmac_fast(GNUTLS_MAC_SHA256, k->_refresh, sizeof(k->_refresh), msg, (size_t)n,
                         mac) != 0)
        return AUTH_ECRYPTO;
    hex_encode(mac, sizeof(mac), hex);
    return AUTH_OK;
}

int auth_mfa_token_issue(const auth_keys_t *k, const char *user_id, int64_t now, int ttl,
                         char out[AUTH_MFA_TOKEN_MAX])
{
    if (k == NULL || !k->_loaded || user_id == NULL || user_id[0] == '\0' ||
        strlen(user_id) >= AUTH_ID_MAX || strchr(user_id, '.') || ttl <= 0)
        return AUTH_EINVALID;
    char mac[65];
    int64_t exp = now + ttl;
    int rc = mfa_mac(k, user_id, exp, mac);
    if (rc != AUTH_OK)
        return rc;
    snprintf(out, AUTH_MFA_TOKEN_MAX, "%s.%lld.%s", user_id, (long long)exp, mac);
    return AUTH_OK;
}

int auth_mfa_token_verify(const auth_keys_t *k, const char *token, int64_t now,
                          char user_id[AUTH_ID_MAX])
{
    if (k == NULL || !k->_loaded || token == NULL || strlen(token) >= AUTH_MFA_TOKEN_MAX)
        return AUTH_EINVALID;
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (dot1 == NULL || dot2 == NULL || dot1 == token || (size_t)(dot1 - token) >= AUTH_ID_MAX ||
        strlen(dot2 + 1) != 64)
        return AUTH_EINVALID;
    char id[AUTH_ID_MAX];
    memcpy(id, token, (size_t)(dot1 - token));
    id[dot1 - token] = '\0';
    char *end;
    long long exp = strtoll(dot1 + 1, &end, 10);
    if (end != dot2 || dot1[1] < '0' || dot1[1] > '9')
        return AUTH_EINVALID;
    char want[65];
    if (mfa_mac(k, id, exp, want) != AUTH_OK || gnutls_memcmp(want, dot2 + 1, 64) != 0)
        return AUTH_EINVALID;
    if (now >= exp)
        return AUTH_EEXPIRED;
    memcpy(user_id, id, sizeof(id));
    return AUTH_OK;
}
