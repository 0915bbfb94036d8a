/*
 * libFuzzer harness: the credentials a client presents (src/auth/token.c):
 * access tokens (auth_token_verify, JWT HS256), refresh tokens
 * (auth_refresh_parse, auth_refresh_check) and API keys (auth_api_key_hash).
 * The input is one presented string (NUL bytes end it early, as in a
 * header). Beyond "no crash, no leak": nothing forged verifies. The keys
 * are derived from a fixed secret the fuzzer cannot see, so an input that
 * verifies, or a refresh token whose MAC checks, is a finding; a parsed
 * refresh token's parts read back as the token; a key that hashes is
 * exactly "plx_" + 64 lowercase hex; a parsed session cookie is its
 * session id, a dot and 64 lowercase hex, and neither it nor a CSRF token
 * checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parley/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static auth_keys_t keys;

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys._loaded) {
        static const char secret[] = "fuzz-secret-that-no-input-can-know-0123456789";
        if (auth_keys_derive(secret, sizeof(secret) - 1, &keys) != AUTH_OK)
            abort();
    }
    if (size > 8192)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';

    auth_claims_t claims;
    int rc = auth_token_verify(&keys, text, 1800000000, &claims);
    if (rc == AUTH_OK || rc == AUTH_EEXPIRED)
        abort(); /* a forged access token verified */
    rc = auth_token_verify(&keys, text, 1800000000, &claims); /* the verified cache */
    if (rc == AUTH_OK || rc == AUTH_EEXPIRED)
        abort();

    char sid[AUTH_ID_MAX];
    uint64_t gen;
    const char *mac;
    if (auth_refresh_parse(text, sid, &gen, &mac) == AUTH_OK) {
        if (strlen(mac) != AUTH_REFRESH_MAC_LEN || !is_lower_hex(mac, AUTH_REFRESH_MAC_LEN) ||
            strncmp(text, sid, strlen(sid)) != 0 || text[strlen(sid)] != '.')
            abort();
        if (auth_refresh_check(&keys, text, sid, "salt", gen) == AUTH_OK ||
            auth_refresh_check(&keys, text, sid, "salt", gen + 1) == AUTH_EREUSED)
            abort(); /* a forged MAC checked */
        /* A real token of that session and generation checks, and the
         * input differs from it unless the fuzzer found the MAC. */
        char real[AUTH_REFRESH_MAX];
        if (auth_refresh_issue(&keys, sid, "salt", gen, real) == AUTH_OK &&
            auth_refresh_check(&keys, real, sid, "salt", gen) != AUTH_OK)
            abort();
    }
    auth_refresh_check(&keys, text, "session", "salt", 3);

    if (auth_session_cookie_parse(text, sid) == AUTH_OK) {
        size_t n = strlen(sid);
        if (strncmp(text, sid, n) != 0 || text[n] != '.' || strlen(text) != n + 65 ||
            !is_lower_hex(text + n + 1, 64))
            abort();
        if (auth_session_cookie_check(&keys, text, sid, "salt") == AUTH_OK)
            abort(); /* a forged session cookie checked */
        char real[AUTH_SESSION_COOKIE_MAX];
        if (auth_session_cookie_issue(&keys, sid, "salt", real) == AUTH_OK &&
            auth_session_cookie_check(&keys, real, sid, "salt") != AUTH_OK)
            abort();
    }
    auth_session_cookie_check(&keys, text, "session", "salt");
    if (auth_csrf_check(&keys, "session", "salt", text) == AUTH_OK)
        abort(); /* a forged CSRF token checked */

    char hash[AUTH_SHA256_HEX];
    if (auth_api_key_hash(text, hash) == AUTH_OK &&
        (strlen(text) != 68 || strncmp(text, "plx_", 4) != 0 || !is_lower_hex(text + 4, 64) ||
         strlen(hash) != 64 || !is_lower_hex(hash, 64)))
        abort();
    free(text);
    return 0;
}
