/* TOTP against RFC 6238's test vectors, the drift window, replay refusal,
 * base32, and the token between password and code. */
#include "../test.h"
#include "parley/auth.h"

/* "12345678901234567890" as hex. */
static const char rfc_secret_hex[] = "3132333435363738393031323334353637383930";

TEST(totp_matches_rfc6238_vectors)
{
    const unsigned char *key = (const unsigned char *)"12345678901234567890";
    struct {
        int64_t t;
        const char *code;
    } v[] = {{59, "94287082"},         {1111111109, "07081804"}, {1111111111, "14050471"},
             {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000LL, "65353130"}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char out[9];
        ASSERT_EQ(auth_totp_code_raw(key, 20, v[i].t / 30, 8, out), AUTH_OK);
        ASSERT_STREQ(out, v[i].code);
        /* The 6-digit code is the last six digits. */
        ASSERT_EQ(auth_totp_code_raw(key, 20, v[i].t / 30, 6, out), AUTH_OK);
        ASSERT_STREQ(out, v[i].code + 2);
    }
}

TEST(totp_check_window_and_replay)
{
    int64_t now = 1111111111; /* step 37037037, code 050471 */
    int64_t step = 0;
    ASSERT_EQ(auth_totp_check(rfc_secret_hex, "050471", now, 0, &step), AUTH_OK);
    ASSERT_EQ(step, now / 30);
    /* The same code again: the step is not later than the last one used. */
    ASSERT_EQ(auth_totp_check(rfc_secret_hex, "050471", now, step, NULL), AUTH_EINVALID);
    /* One step of drift either way is accepted, two are not. */
    ASSERT_EQ(auth_totp_check(rfc_secret_hex, "050471", now + 30, 0, NULL), AUTH_OK);
    ASSERT_EQ(auth_totp_check(rfc_secret_hex, "050471", now - 30, 0, NULL), AUTH_OK);
    ASSERT_EQ(auth_totp_check(rfc_secret_hex, "050471", now + 61, 0, NULL), AUTH_EINVALID);
    const char *bad[] = {"", "12345", "1234567", "05047a", " 50471", "050472"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_EQ(auth_totp_check(rfc_secret_hex, bad[i], now, 0, NULL), AUTH_EINVALID);
    ASSERT_EQ(auth_totp_check("zz", "050471", now, 0, NULL), AUTH_EINVALID);
}

TEST(totp_secrets_and_base32)
{
    char b32[AUTH_TOTP_BASE32];
    ASSERT_EQ(auth_totp_base32(rfc_secret_hex, b32), AUTH_OK);
    ASSERT_STREQ(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    char hex1[AUTH_TOTP_SECRET_HEX], hex2[AUTH_TOTP_SECRET_HEX], b1[AUTH_TOTP_BASE32];
    ASSERT_EQ(auth_totp_new_secret(hex1, b1), AUTH_OK);
    ASSERT_EQ(strlen(hex1), 40);
    ASSERT_EQ(strlen(b1), 32);
    ASSERT_EQ(auth_totp_new_secret(hex2, b32), AUTH_OK);
    ASSERT_STRNE(hex1, hex2);
    ASSERT_EQ(auth_totp_base32(hex1, b32), AUTH_OK);
    ASSERT_STREQ(b32, b1);
}

TEST(mfa_token_round_trip_expiry_and_forgery)
{
    auth_keys_t k, other;
    ASSERT_EQ(auth_keys_derive("0123456789abcdef0123456789abcdef", 32, &k), AUTH_OK);
    ASSERT_EQ(auth_keys_derive("fedcba9876543210fedcba9876543210", 32, &other), AUTH_OK);
    char tok[AUTH_MFA_TOKEN_MAX], uid[AUTH_ID_MAX];
    ASSERT_EQ(auth_mfa_token_issue(&k, "usr_1", 1000, 300, tok), AUTH_OK);
    ASSERT_EQ(auth_mfa_token_verify(&k, tok, 1200, uid), AUTH_OK);
    ASSERT_STREQ(uid, "usr_1");
    ASSERT_EQ(auth_mfa_token_verify(&k, tok, 1300, uid), AUTH_EEXPIRED);
    ASSERT_EQ(auth_mfa_token_verify(&other, tok, 1200, uid), AUTH_EINVALID);
    char forged[AUTH_MFA_TOKEN_MAX];
    snprintf(forged, sizeof(forged), "usr_2%s", strchr(tok, '.'));
    ASSERT_EQ(auth_mfa_token_verify(&k, forged, 1200, uid), AUTH_EINVALID);
    snprintf(forged, sizeof(forged), "usr_1.99999%s", strchr(strchr(tok, '.') + 1, '.'));
    ASSERT_EQ(auth_mfa_token_verify(&k, forged, 1200, uid), AUTH_EINVALID);
    const char *bad[] = {"", "a", "a.b", "a.1.", "usr_1.-5.00", NULL};
    for (size_t i = 0; bad[i]; i++)
        ASSERT_EQ(auth_mfa_token_verify(&k, bad[i], 1200, uid), AUTH_EINVALID);
    ASSERT_EQ(auth_mfa_token_issue(&k, "a.b", 1000, 300, tok), AUTH_EINVALID);
}
