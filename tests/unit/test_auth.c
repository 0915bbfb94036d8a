/* Authentication primitives: argon2id hashing and its concurrency gate,
 * access and refresh tokens, API keys, the server secret, the login throttle
 * and the request limiter. Every test drives time through `now`. */
#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../test.h"
#include "testutil.h"
#include "parley/auth.h"

#define NOW 1767960000LL /* 2026-01-09T12:00:00Z */

/* ---- helpers -------------------------------------------------------------- */

/* CPU time, not wall time: what these tests compare is the work done (an
 * argon2 hash or none), which a busy machine does not change, while the
 * wall clock of a test running beside fuzzers can jump by milliseconds. */
static void cpu_now(struct timespec *t)
{
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, t);
}

static double cpu_ms_since(const struct timespec *a)
{
    struct timespec b;
    cpu_now(&b);
    return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

static bool all_hex(const char *s, size_t len)
{
    if (strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void test_keys(auth_keys_t *k, char fill)
{
    char secret[40];
    memset(secret, fill, sizeof(secret));
    ASSERT_EQ(auth_keys_derive(secret, sizeof(secret), k), AUTH_OK);
}

/* A token made directly with libjwt: `alg` and `key` as given (the test
 * reaches into the private key field to forge with the server's own key),
 * claims from JSON. Caller frees. */
static char *forge(jwt_alg_t alg, const unsigned char *key, int key_len, const char *claims)
{
    jwt_t *j = NULL;
    ASSERT_EQ(jwt_new(&j), 0);
    ASSERT_EQ(jwt_add_grants_json(j, claims), 0);
    ASSERT_EQ(jwt_set_alg(j, alg, key, key_len), 0);
    char *s = jwt_encode_str(j);
    ASSERT_NOT_NULL(s);
    jwt_free(j);
    return s;
}

/* Well-formed claims with the given iat/exp. */
static const char *claims_at(long long iat, long long exp)
{
    static char buf[256];
    snprintf(buf, sizeof(buf),
             "{\"iss\":\"parley\",\"sub\":\"u1\",\"sid\":\"s1\",\"jti\":\"0123\","
             "\"iat\":%lld,\"exp\":%lld}",
             iat, exp);
    return buf;
}

/* ---- passwords ------------------------------------------------------------ */

TEST(password_hash_is_argon2id_owasp_and_verifies)
{
    char h[AUTH_PASSWORD_HASH_MAX];
    ASSERT_EQ(auth_password_hash("correct horse battery", h, sizeof(h)), AUTH_OK);
    ASSERT_EQ(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0);
    ASSERT_TRUE(auth_password_verify("correct horse battery", h));
    ASSERT_TRUE(!auth_password_verify("correct horse batterY", h));
    ASSERT_TRUE(!auth_password_verify("", h));
    ASSERT_TRUE(!auth_password_needs_rehash(h));
    ASSERT_TRUE(auth_password_needs_rehash("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaA"));
    /* a buffer too small is refused, not overrun */
    char small[64];
    ASSERT_EQ(auth_password_hash("x", small, sizeof(small)), AUTH_EINVALID);
}

TEST(password_hashes_of_one_password_differ_by_salt)
{
    char a[AUTH_PASSWORD_HASH_MAX], b[AUTH_PASSWORD_HASH_MAX];
    ASSERT_EQ(auth_password_hash("same password", a, sizeof(a)), AUTH_OK);
    ASSERT_EQ(auth_password_hash("same password", b, sizeof(b)), AUTH_OK);
    ASSERT_STRNE(a, b);
    ASSERT_TRUE(auth_password_verify("same password", a));
    ASSERT_TRUE(auth_password_verify("same password", b));
}

TEST(password_verify_malformed_encoded_is_false)
{
    char h[AUTH_PASSWORD_HASH_MAX];
    ASSERT_EQ(auth_password_hash("password1", h, sizeof(h)), AUTH_OK);
    char cut[AUTH_PASSWORD_HASH_MAX];
    memcpy(cut, h, 40);
    cut[40] = '\0';
    ASSERT_TRUE(!auth_password_verify("password1", cut));
    ASSERT_TRUE(!auth_password_verify("password1", ""));
    ASSERT_TRUE(!auth_password_verify("password1", "garbage"));
    ASSERT_TRUE(!auth_password_verify("password1", NULL));
    ASSERT_TRUE(!auth_password_verify(NULL, h));
    /* argon2i, not argon2id */
    char other[AUTH_PASSWORD_HASH_MAX];
    snprintf(other, sizeof(other), "$argon2i$%s", h + strlen("$argon2id$"));
    ASSERT_TRUE(!auth_password_verify("password1", other));
    /* a corrupted record asking for 4 GiB is refused before argon2 runs:
     * no hash went through the gate (no clock: a condition, not a time) */
    auth__password_stats_reset();
    ASSERT_TRUE(!auth_password_verify(
        "password1", "$argon2id$v=19$m=4194304,t=2,p=1$cGFybGV5LWR1bW15LXNsdA$"
                     "SQDW9MDJTQzVX4khpujQ/MzrgngRT+fLXcWhD2Z9Svg"));
    int now, max;
    auth__password_stats(&now, &max);
    ASSERT_EQ(max, 0);
}

TEST(password_longer_than_1024_bytes_is_refused)
{
    char *pw = malloc(1 << 20);
    memset(pw, 'p', (1 << 20) - 1);
    pw[(1 << 20) - 1] = '\0';
    char h[AUTH_PASSWORD_HASH_MAX];
    ASSERT_EQ(auth_password_hash(pw, h, sizeof(h)), AUTH_ETOOLONG);

    pw[1025] = '\0';
    ASSERT_EQ(auth_password_hash(pw, h, sizeof(h)), AUTH_ETOOLONG);
    pw[1024] = '\0';
    ASSERT_EQ(auth_password_hash(pw, h, sizeof(h)), AUTH_OK);
    ASSERT_TRUE(auth_password_verify(pw, h));
    /* 1025 bytes is not silently cut to the 1024 that were hashed */
    pw[1024] = 'p';
    ASSERT_TRUE(!auth_password_verify(pw, h));
    ASSERT_TRUE(!auth_password_verify_dummy(pw));
    free(pw);
}

static void *hash_thread(void *arg)
{
    char *h = arg;
    ASSERT_EQ(auth_password_hash("concurrent password", h, AUTH_PASSWORD_HASH_MAX), AUTH_OK);
    return NULL;
}

TEST(password_hashing_concurrency_is_bounded_by_cpus)
{
    enum { THREADS = 8 };
    int n = auth_password_concurrency();
    ASSERT_GE(n, 1);
    ASSERT_EQ(n, sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1);
    auth__password_stats_reset();
    pthread_t th[THREADS];
    static char out[THREADS][AUTH_PASSWORD_HASH_MAX];
    for (int i = 0; i < THREADS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, hash_thread, out[i]), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    int now, max;
    auth__password_stats(&now, &max);
    ASSERT_EQ(now, 0);
    if (max > n)
        TEST_FAIL_("%d hashes ran at once, limit %d", max, n);
    /* the gate admits N, it does not serialise: 8 x ~50 ms starting together */
    ASSERT_GE(max, (n < 2 ? n : 2));
    for (int i = 0; i < THREADS; i++)
        ASSERT_TRUE(auth_password_verify("concurrent password", out[i]));
}

TEST(password_dummy_verify_is_false_and_costs_a_hash)
{
    auth__password_stats_reset();
    struct timespec t0;
    cpu_now(&t0);
    /* even the dummy hash's own password does not log anyone in */
    ASSERT_TRUE(!auth_password_verify_dummy("parley dummy password"));
    double dummy_ms = cpu_ms_since(&t0);
    ASSERT_TRUE(!auth_password_verify_dummy("anything at all"));
    int now, max;
    auth__password_stats(&now, &max);
    ASSERT_EQ(max, 1); /* it went through argon2, behind the gate */
    char h[AUTH_PASSWORD_HASH_MAX];
    ASSERT_EQ(auth_password_hash("a real password", h, sizeof(h)), AUTH_OK);
    cpu_now(&t0);
    ASSERT_TRUE(!auth_password_verify("a wrong password", h));
    double real_ms = cpu_ms_since(&t0);
    if (dummy_ms < 10 || dummy_ms < real_ms / 3)
        TEST_FAIL_("dummy verify %.1f ms vs real %.1f ms", dummy_ms, real_ms);
}

/* ---- access tokens -------------------------------------------------------- */

TEST(token_round_trip)
{
    auth_keys_t k;
    test_keys(&k, 'k');
    char *t = NULL;
    ASSERT_EQ(auth_token_issue(&k, "user-42", "sess-7", NOW, 900, &t), AUTH_OK);
    ASSERT_LT(strlen(t), 400);
    auth_claims_t c;
    ASSERT_EQ(auth_token_verify(&k, t, NOW + 10, &c), AUTH_OK);
    ASSERT_STREQ(c.sub, "user-42");
    ASSERT_STREQ(c.sid, "sess-7");
    ASSERT_TRUE(all_hex(c.jti, 32));
    ASSERT_EQ(c.iat, NOW);
    ASSERT_EQ(c.exp, NOW + 900);
    char *t2 = NULL;
    ASSERT_EQ(auth_token_issue(&k, "user-42", "sess-7", NOW, 900, &t2), AUTH_OK);
    auth_claims_t c2;
    ASSERT_EQ(auth_token_verify(&k, t2, NOW, &c2), AUTH_OK);
    ASSERT_STRNE(c.jti, c2.jti);
    free(t);
    free(t2);
    /* bad arguments */
    ASSERT_EQ(auth_token_issue(&k, "", "s", NOW, 900, &t), AUTH_EINVALID);
    ASSERT_EQ(auth_token_issue(&k, "u", "s.1", NOW, 900, &t), AUTH_EINVALID);
    ASSERT_EQ(auth_token_issue(&k, "u", "s", NOW, 0, &t), AUTH_EINVALID);
}

TEST(token_cache_answers_only_the_same_token_under_the_same_key)
{
    auth_keys_t k, other;
    test_keys(&k, 'k');
    test_keys(&other, 'o');
    char *t = NULL;
    ASSERT_EQ(auth_token_issue(&k, "u-cache", "s-cache", NOW, 900, &t), AUTH_OK);
    auth_claims_t c;
    /* Verified once: now remembered. Same answers from the cache. */
    ASSERT_EQ(auth_token_verify(&k, t, NOW, &c), AUTH_OK);
    for (int i = 0; i < 3; i++) {
        memset(&c, 0, sizeof(c));
        ASSERT_EQ(auth_token_verify(&k, t, NOW + 1, &c), AUTH_OK);
        ASSERT_STREQ(c.sub, "u-cache");
        ASSERT_STREQ(c.sid, "s-cache");
    }
    /* Expiry and a clock gone back are judged on every call. */
    ASSERT_EQ(auth_token_verify(&k, t, NOW + 900, &c), AUTH_EEXPIRED);
    ASSERT_EQ(auth_token_verify(&k, t, NOW - 3600, &c), AUTH_EINVALID);
    /* Another key does not get the remembered answer. */
    ASSERT_EQ(auth_token_verify(&other, t, NOW, &c), AUTH_EINVALID);
    /* Nor does the same token with one byte changed, anywhere. */
    size_t len = strlen(t);
    for (size_t i = 0; i + 1 < len; i += 7) { /* not the last: base64 padding bits */
        char saved = t[i];
        t[i] = saved == 'A' ? 'B' : 'A';
        ASSERT_NE(auth_token_verify(&k, t, NOW, &c), AUTH_OK);
        t[i] = saved;
    }
    ASSERT_EQ(auth_token_verify(&k, t, NOW, &c), AUTH_OK);
    free(t);
}

TEST(token_expired)
{
    auth_keys_t k;
    test_keys(&k, 'k');
    char *t = NULL;
    ASSERT_EQ(auth_token_issue(&k, "u1", "s1", NOW, 900, &t), AUTH_OK);
    auth_claims_t c;
    ASSERT_EQ(auth_token_verify(&k, t, NOW + 899, &c), AUTH_OK);
    memset(&c, 0, sizeof(c));
    ASSERT_EQ(auth_token_verify(&k, t, NOW + 900, &c), AUTH_EEXPIRED);
    ASSERT_STREQ(c.sub, "u1");
    ASSERT_EQ(auth_token_verify(&k, t, NOW + 100000, &c), AUTH_EEXPIRED);
    free(t);
}

TEST(token_hs512_with_the_same_key_is_invalid)
{
    auth_keys_t k;
    test_keys(&k, 'k');
    const char *cl = claims_at(NOW, NOW + 900);
    /* the forging helper works: HS256 with the same claims passes */
    char *ok = forge(JWT_ALG_HS256, k._jwt, 32, cl);
    auth_claims_t c;
    ASSERT_EQ(auth_token_verify(&k, ok, NOW, &c), AUTH_OK);
    char *t512 = forge(JWT_ALG_HS512, k._jwt, 32, cl);
    ASSERT_EQ(auth_token_verify(&k, t512, NOW, &c), AUTH_EINVALID);
    char *t384 = forge(JWT_ALG_HS384, k._jwt, 32, cl);
    ASSERT_EQ(auth_token_verify(&k, t384, NOW, &c), AUTH_EINVALID);
    free(ok);
    free(t512);
    free(t384);
}

TEST(token_alg_none_is_invalid)
{
    auth_keys_t k;
    test_keys(&k, 'k');
    char *t = forge(JWT_ALG_NONE, NULL, 0, claims_at(NOW, NOW + 900));
    ASSERT_EQ(t[strlen(t) - 1], '.');
    auth_claims_t c;
    ASSERT_EQ(auth_token_verify(&k, t, NOW, &c), AUTH_EINVALID);
    /* keys never loaded (zero length key would make libjwt accept none) */
    auth_keys_t zero;
    memset(&zero, 0, sizeof(zero));
    ASSERT_EQ(auth_token_verify(&zero, t, NOW, &c), AUTH_EINVALID);
    char *out = NULL;
    ASSERT_EQ(auth_token_issue(&zero, "u", "s", NOW, 900, &out), AUTH_EINVALID);
    free(t);
}

TEST(token_tampered_payload_or_signature_is_invalid)
{
    auth_keys_t k;
    test_keys(&k, 'k');
    char *a = NULL, *b = NULL;
    ASSERT_EQ(auth_token_issue(&k, "victim", "s1", NOW, 900, &a), AUTH_OK);
    ASSERT_EQ(auth_token_issue(&k, "attacker", "s2", NOW, 900, &b), AUTH_OK);
    /* a's header and signature around b's payload */
    char *a1 = strchr(a, '.'), *a2 = strrchr(a, '.');
    char *b1 = strchr(b, '.'), *b2 = strrchr(b, '.');
    char spliced[1024];
    snprintf(spliced, sizeof(spliced), "%.*s%.*s%s", (int)(a1 - a), a, (int)(b2 - b1), b1, a2);
    auth_claims_t c;
    ASSERT_EQ(auth_token_verify(&k, spliced, NOW, &c), AUTH_EINVALID);
    /* one character of the signature changed */
    char flipped[1024];
    snprintf(flipped, sizeof(flipped), "%s", a);
    size_t last = strlen(flipped) - 2;
    flipped[last] = flipped[last] == 'A' ? 'B' : 'A';
    ASSERT_EQ(auth_token_verify(&k, flipped, NOW, &c), AUTH_EINVALID);
    ASSERT_EQ(auth_token_verify(&k, "", NOW, &c), AUTH_EINVALID);
    ASSERT_EQ(auth_token_verify(&k, "a.b.c", NOW, &c), AUTH_EINVALID);
    ASSERT_EQ(auth_token_verify(&k, "not a token", NOW, &c), AUTH_EINVALID);
    ASSERT_EQ(auth_token_verify(&k, NULL, NOW, &c), AUTH_EINVALID);
    free(a);
    free(b);
}

TEST(token_from_another_key_is_invalid)
{
    auth_keys_t k, other;
    test_keys(&k, 'k');
    test_keys(&other, 'o');
    char *t = NULL;
    ASSERT_EQ(auth_token_issue(&other, "u1", "s1", NOW, 900, &t), AUTH_OK);
    auth_claims_t c;
    ASSERT_EQ(auth_token_verify(&k, t, NOW, &c), AUTH_EINVALID);
    /* the refresh-MAC key does not sign access tokens */
    char *r = forge(JWT_ALG_HS256, k._refresh, 32, claims_at(NOW, NOW + 900));
    ASSERT_EQ(auth_token_verify(&k, r, NOW, &c), AUTH_EINVALID);
    free(t);
    free(r);
}

TEST(token_longer_than_4096_bytes_is_refused)
{
    auth_keys_t k;
    test_keys(&k, 'k');
    char claims[8192], pad[6000];
    auth_claims_t c;
    /* correctly signed, 3000 bytes of padding: accepted */
    memset(pad, 'x', 2000);
    pad[2000] = '\0';
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"parley\",\"sub\":\"u\",\"sid\":\"s\",\"jti\":\"j\",\"iat\":%lld,"
             "\"exp\":%lld,\"pad\":\"%s\"}",
             NOW, NOW + 900, pad);
    char *t = forge(JWT_ALG_HS256, k._jwt, 32, claims);
    ASSERT_LT(strlen(t), 4096);
    ASSERT_EQ(auth_token_verify(&k, t, NOW, &c), AUTH_OK);
    free(t);
    /* the same, over 4096 bytes: refused */
    memset(pad, 'x', 5000);
    pad[5000] = '\0';
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"parley\",\"sub\":\"u\",\"sid\":\"s\",\"jti\":\"j\",\"iat\":%lld,"
             "\"exp\":%lld,\"pad\":\"%s\"}",
             NOW, NOW + 900, pad);
    t = forge(JWT_ALG_HS256, k._jwt, 32, claims);
    ASSERT_GT(strlen(t), 4096);
    ASSERT_EQ(auth_token_verify(&k, t, NOW, &c), AUTH_EINVALID);
    free(t);
}

static int verify_claims(const auth_keys_t *k, const char *claims)
{
    char *t = forge(JWT_ALG_HS256, k->_jwt, 32, claims);
    auth_claims_t c;
    int rc = auth_token_verify(k, t, NOW, &c);
    free(t);
    return rc;
}

TEST(token_missing_or_mistyped_claims_are_invalid)
{
    auth_keys_t k;
    test_keys(&k, 'k');
    char buf[512];
#define CLAIMS(...) (snprintf(buf, sizeof(buf), __VA_ARGS__), buf)
    ASSERT_EQ(verify_claims(&k, claims_at(NOW, NOW + 900)), AUTH_OK);
    ASSERT_EQ(verify_claims(&k, CLAIMS("{\"iss\":\"parley\",\"sid\":\"s\",\"jti\":\"j\","
                                       "\"iat\":%lld,\"exp\":%lld}", NOW, NOW + 900)),
              AUTH_EINVALID); /* no sub */
    ASSERT_EQ(verify_claims(&k, CLAIMS("{\"iss\":\"parley\",\"sub\":\"\",\"sid\":\"s\","
                                       "\"jti\":\"j\",\"iat\":%lld,\"exp\":%lld}", NOW, NOW + 900)),
              AUTH_EINVALID); /* empty sub */
    ASSERT_EQ(verify_claims(&k, CLAIMS("{\"iss\":\"parley\",\"sub\":42,\"sid\":\"s\","
                                       "\"jti\":\"j\",\"iat\":%lld,\"exp\":%lld}", NOW, NOW + 900)),
              AUTH_EINVALID); /* sub not a string */
    ASSERT_EQ(verify_claims(&k, CLAIMS("{\"iss\":\"parley\",\"sub\":\"u\",\"jti\":\"j\","
                                       "\"iat\":%lld,\"exp\":%lld}", NOW, NOW + 900)),
              AUTH_EINVALID); /* no sid */
    ASSERT_EQ(verify_claims(&k, CLAIMS("{\"iss\":\"parley\",\"sub\":\"u\",\"sid\":\"s\","
                                       "\"iat\":%lld,\"exp\":%lld}", NOW, NOW + 900)),
              AUTH_EINVALID); /* no jti */
    ASSERT_EQ(verify_claims(&k, CLAIMS("{\"iss\":\"parley\",\"sub\":\"u\",\"sid\":\"s\","
                                       "\"jti\":\"j\",\"iat\":%lld}", NOW)),
              AUTH_EINVALID); /* no exp */
    ASSERT_EQ(verify_claims(&k, CLAIMS("{\"iss\":\"parley\",\"sub\":\"u\",\"sid\":\"s\","
                                       "\"jti\":\"j\",\"iat\":%lld,\"exp\":\"%lld\"}", NOW,
                                       NOW + 900)),
              AUTH_EINVALID); /* exp a string */
    ASSERT_EQ(verify_claims(&k, CLAIMS("{\"iss\":\"parley\",\"sub\":\"u\",\"sid\":\"s\","
                                       "\"jti\":\"j\",\"iat\":%lld,\"exp\":%lld.5}", NOW,
                                       NOW + 900)),
              AUTH_EINVALID); /* exp a real */
    ASSERT_EQ(verify_claims(&k, CLAIMS("{\"iss\":\"parley\",\"sub\":\"u\",\"sid\":\"s\","
                                       "\"jti\":\"j\",\"exp\":%lld}", NOW + 900)),
              AUTH_EINVALID); /* no iat */
    ASSERT_EQ(verify_claims(&k, CLAIMS("{\"iss\":\"parley\",\"sub\":\"u\",\"sid\":\"s\","
                                       "\"jti\":\"j\",\"iat\":\"%lld\",\"exp\":%lld}", NOW,
                                       NOW + 900)),
              AUTH_EINVALID); /* iat a string (libjwt reads it as 0) */
    ASSERT_EQ(verify_claims(&k, CLAIMS("{\"iss\":\"parley\",\"sub\":\"u\",\"sid\":\"s\","
                                       "\"jti\":\"j\",\"iat\":true,\"exp\":%lld}", NOW + 900)),
              AUTH_EINVALID); /* iat a boolean */
    ASSERT_EQ(verify_claims(&k, claims_at(NOW, NOW)), AUTH_EINVALID); /* exp <= iat */
    /* a sub longer than an id */
    char longsub[100];
    memset(longsub, 'u', 70);
    longsub[70] = '\0';
    ASSERT_EQ(verify_claims(&k, CLAIMS("{\"iss\":\"parley\",\"sub\":\"%s\",\"sid\":\"s\","
                                       "\"jti\":\"j\",\"iat\":%lld,\"exp\":%lld}", longsub, NOW,
                                       NOW + 900)),
              AUTH_EINVALID);
#undef CLAIMS
}

TEST(token_wrong_issuer_is_invalid)
{
    auth_keys_t k;
    test_keys(&k, 'k');
    char buf[256];
    const char *issuers[] = {"\"other\"", "\"parley \"", "\"Parley\"", "\"\"", "1", "null"};
    for (size_t i = 0; i < sizeof(issuers) / sizeof(issuers[0]); i++) {
        snprintf(buf, sizeof(buf),
                 "{\"iss\":%s,\"sub\":\"u\",\"sid\":\"s\",\"jti\":\"j\",\"iat\":%lld,"
                 "\"exp\":%lld}",
                 issuers[i], NOW, NOW + 900);
        if (verify_claims(&k, buf) != AUTH_EINVALID)
            TEST_FAIL_("iss %s accepted", issuers[i]);
    }
    snprintf(buf, sizeof(buf),
             "{\"sub\":\"u\",\"sid\":\"s\",\"jti\":\"j\",\"iat\":%lld,\"exp\":%lld}", NOW,
             NOW + 900);
    ASSERT_EQ(verify_claims(&k, buf), AUTH_EINVALID);
}

TEST(token_iat_in_the_future_is_invalid)
{
    auth_keys_t k;
    test_keys(&k, 'k');
    ASSERT_EQ(verify_claims(&k, claims_at(NOW + 60, NOW + 960)), AUTH_OK);
    ASSERT_EQ(verify_claims(&k, claims_at(NOW + 61, NOW + 961)), AUTH_EINVALID);
    ASSERT_EQ(verify_claims(&k, claims_at(NOW + 86400, NOW + 86400 + 900)), AUTH_EINVALID);
}

/* ---- refresh tokens ------------------------------------------------------- */

TEST(refresh_current_reused_and_invalid)
{
    auth_keys_t k, other;
    test_keys(&k, 'k');
    test_keys(&other, 'o');
    char r[AUTH_REFRESH_MAX];
    ASSERT_EQ(auth_refresh_issue(&k, "sess-1", "salt-a", 5, r), AUTH_OK);
    ASSERT_EQ(strncmp(r, "sess-1.5.", 9), 0);
    ASSERT_TRUE(all_hex(r + 9, 64));

    char sid[AUTH_ID_MAX];
    uint64_t gen;
    const char *mac;
    ASSERT_EQ(auth_refresh_parse(r, sid, &gen, &mac), AUTH_OK);
    ASSERT_STREQ(sid, "sess-1");
    ASSERT_EQ(gen, 5);
    ASSERT_TRUE(mac == r + 9);

    ASSERT_EQ(auth_refresh_check(&k, r, "sess-1", "salt-a", 5), AUTH_OK);
    ASSERT_EQ(auth_refresh_check(&k, r, "sess-1", "salt-a", 6), AUTH_EREUSED);
    ASSERT_EQ(auth_refresh_check(&k, r, "sess-1", "salt-a", 4), AUTH_EINVALID);
    ASSERT_EQ(auth_refresh_check(&k, r, "sess-1", "salt-b", 5), AUTH_EINVALID);
    ASSERT_EQ(auth_refresh_check(&k, r, "sess-2", "salt-a", 5), AUTH_EINVALID);
    ASSERT_EQ(auth_refresh_check(&other, r, "sess-1", "salt-a", 5), AUTH_EINVALID);

    /* a forged generation keeps the old MAC: refused, not REUSED/CURRENT */
    char forged[AUTH_REFRESH_MAX];
    snprintf(forged, sizeof(forged), "sess-1.6.%s", r + 9);
    ASSERT_EQ(auth_refresh_check(&k, forged, "sess-1", "salt-a", 6), AUTH_EINVALID);
    /* one MAC character changed */
    snprintf(forged, sizeof(forged), "%s", r);
    forged[20] = forged[20] == '0' ? '1' : '0';
    ASSERT_EQ(auth_refresh_check(&k, forged, "sess-1", "salt-a", 5), AUTH_EINVALID);

    /* generation 0 and the largest one work */
    ASSERT_EQ(auth_refresh_issue(&k, "s", "x", 0, r), AUTH_OK);
    ASSERT_EQ(auth_refresh_check(&k, r, "s", "x", 0), AUTH_OK);
    ASSERT_EQ(auth_refresh_issue(&k, "s", "x", UINT64_MAX, r), AUTH_OK);
    ASSERT_EQ(auth_refresh_check(&k, r, "s", "x", UINT64_MAX), AUTH_OK);
    /* ids the format cannot carry */
    ASSERT_EQ(auth_refresh_issue(&k, "a.b", "x", 1, r), AUTH_EINVALID);
    ASSERT_EQ(auth_refresh_issue(&k, "", "x", 1, r), AUTH_EINVALID);
    ASSERT_EQ(auth_refresh_issue(&k, "s", "", 1, r), AUTH_EINVALID);
}

TEST(refresh_malformed_inputs_are_invalid)
{
    auth_keys_t k;
    test_keys(&k, 'k');
    char good[AUTH_REFRESH_MAX];
    ASSERT_EQ(auth_refresh_issue(&k, "s", "salt", 1, good), AUTH_OK);
    const char *mac = good + 4; /* "s.1." */
    char bad[16][512];
    int n = 0;
    snprintf(bad[n++], 512, "%s", "");
    snprintf(bad[n++], 512, "%s", "nodots");
    snprintf(bad[n++], 512, "%s", "s.1");
    snprintf(bad[n++], 512, "%s", "..");
    snprintf(bad[n++], 512, ".1.%s", mac);                       /* empty session id */
    snprintf(bad[n++], 512, "s..%s", mac);                       /* empty generation */
    snprintf(bad[n++], 512, "s.1a.%s", mac);                     /* non-digit */
    snprintf(bad[n++], 512, "s.-1.%s", mac);                     /* sign */
    snprintf(bad[n++], 512, "s.01.%s", mac);                     /* leading zero */
    snprintf(bad[n++], 512, "s.18446744073709551616.%s", mac);  /* 2^64 */
    snprintf(bad[n++], 512, "s.99999999999999999999999.%s", mac); /* huge */
    snprintf(bad[n++], 512, "s.1.%.63s", mac);                   /* short mac */
    snprintf(bad[n++], 512, "s.1.%s0", mac);                     /* long mac */
    snprintf(bad[n++], 512, "s.1.%s", mac);
    for (char *p = bad[n - 1] + 4; *p; p++) /* uppercase hex */
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    snprintf(bad[n++], 512, "s.1.%s.x", mac);                    /* extra part */
    memset(bad[n], 'a', 300);                                     /* over-long */
    bad[n++][300] = '\0';
    for (int i = 0; i < n; i++) {
        char sid[AUTH_ID_MAX];
        uint64_t gen;
        const char *m;
        if (auth_refresh_parse(bad[i], sid, &gen, &m) != AUTH_EINVALID)
            TEST_FAIL_("parsed: \"%s\"", bad[i]);
        if (auth_refresh_check(&k, bad[i], "s", "salt", 1) != AUTH_EINVALID)
            TEST_FAIL_("accepted: \"%s\"", bad[i]);
    }
    ASSERT_EQ(auth_refresh_check(&k, NULL, "s", "salt", 1), AUTH_EINVALID);
    ASSERT_EQ(auth_refresh_check(&k, good, "s", "salt", 1), AUTH_OK);
}

/* ---- session cookies and CSRF tokens ---------------------------------------- */

TEST(session_cookie_names_its_session_and_nothing_else)
{
    auth_keys_t k, other;
    test_keys(&k, 'k');
    test_keys(&other, 'o');
    char c[AUTH_SESSION_COOKIE_MAX], sid[AUTH_ID_MAX];
    ASSERT_EQ(auth_session_cookie_issue(&k, "ses_1", "salt-a", c), AUTH_OK);
    ASSERT_EQ(strncmp(c, "ses_1.", 6), 0);
    ASSERT_TRUE(all_hex(c + 6, 64));
    ASSERT_EQ(strlen(c), 6 + 64);
    ASSERT_EQ(auth_session_cookie_parse(c, sid), AUTH_OK);
    ASSERT_STREQ(sid, "ses_1");
    ASSERT_EQ(auth_session_cookie_check(&k, c, "ses_1", "salt-a"), AUTH_OK);
    ASSERT_EQ(auth_session_cookie_check(&k, c, "ses_1", "salt-b"), AUTH_EINVALID);
    ASSERT_EQ(auth_session_cookie_check(&k, c, "ses_2", "salt-a"), AUTH_EINVALID);
    ASSERT_EQ(auth_session_cookie_check(&other, c, "ses_1", "salt-a"), AUTH_EINVALID);
    /* the cookie, the CSRF token and a refresh token are three different MACs */
    char csrf[AUTH_CSRF_TOKEN_MAX], r[AUTH_REFRESH_MAX], as_cookie[AUTH_SESSION_COOKIE_MAX];
    ASSERT_EQ(auth_csrf_token(&k, "ses_1", "salt-a", csrf), AUTH_OK);
    ASSERT_TRUE(all_hex(csrf, 64));
    ASSERT_EQ(strlen(csrf), 64);
    ASSERT_STRNE(csrf, c + 6);
    snprintf(as_cookie, sizeof(as_cookie), "ses_1.%.64s", csrf);
    ASSERT_EQ(auth_session_cookie_check(&k, as_cookie, "ses_1", "salt-a"), AUTH_EINVALID);
    ASSERT_EQ(auth_csrf_check(&k, "ses_1", "salt-a", c + 6), AUTH_EINVALID);
    ASSERT_EQ(auth_refresh_issue(&k, "ses_1", "salt-a", 1, r), AUTH_OK);
    snprintf(as_cookie, sizeof(as_cookie), "ses_1.%.64s", r + 8);
    ASSERT_EQ(auth_session_cookie_check(&k, as_cookie, "ses_1", "salt-a"), AUTH_EINVALID);
    ASSERT_EQ(auth_csrf_check(&k, "ses_1", "salt-a", r + 8), AUTH_EINVALID);
    /* the CSRF token is the session's own */
    ASSERT_EQ(auth_csrf_check(&k, "ses_1", "salt-a", csrf), AUTH_OK);
    ASSERT_EQ(auth_csrf_check(&k, "ses_2", "salt-a", csrf), AUTH_EINVALID);
    ASSERT_EQ(auth_csrf_check(&k, "ses_1", "salt-b", csrf), AUTH_EINVALID);
    ASSERT_EQ(auth_csrf_check(&other, "ses_1", "salt-a", csrf), AUTH_EINVALID);
    ASSERT_EQ(auth_csrf_check(&k, "ses_1", "salt-a", NULL), AUTH_EINVALID);
    /* ids the format cannot carry, an unloaded key */
    ASSERT_EQ(auth_session_cookie_issue(&k, "a.b", "x", c), AUTH_EINVALID);
    ASSERT_EQ(auth_session_cookie_issue(&k, "s", "", c), AUTH_EINVALID);
    auth_keys_t none;
    memset(&none, 0, sizeof(none));
    ASSERT_EQ(auth_session_cookie_issue(&none, "s", "x", c), AUTH_EINVALID);
    ASSERT_EQ(auth_csrf_token(&none, "s", "x", csrf), AUTH_EINVALID);
}

TEST(session_cookie_and_csrf_malformed_inputs_are_invalid)
{
    auth_keys_t k;
    test_keys(&k, 'k');
    char good[AUTH_SESSION_COOKIE_MAX], csrf[AUTH_CSRF_TOKEN_MAX];
    ASSERT_EQ(auth_session_cookie_issue(&k, "s", "salt", good), AUTH_OK);
    ASSERT_EQ(auth_csrf_token(&k, "s", "salt", csrf), AUTH_OK);
    const char *mac = good + 2; /* "s." */
    char bad[12][512];
    int n = 0;
    snprintf(bad[n++], 512, "%s", "");
    snprintf(bad[n++], 512, "%s", "s");
    snprintf(bad[n++], 512, "%s", "s.");
    snprintf(bad[n++], 512, ".%s", mac);         /* empty session id */
    snprintf(bad[n++], 512, "s.%.63s", mac);     /* short mac */
    snprintf(bad[n++], 512, "s.%sa", mac);       /* long mac */
    snprintf(bad[n++], 512, "s.%s.x", mac);      /* extra part */
    snprintf(bad[n++], 512, "s x.%s", mac);      /* a space in the id */
    snprintf(bad[n++], 512, "s.%s", mac);
    for (char *p = bad[n - 1] + 2; *p; p++) /* uppercase hex */
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    memset(bad[n], 'a', 300); /* over-long */
    bad[n++][300] = '\0';
    snprintf(bad[n++], 512, "%0100d.%s", 1, mac); /* an id of 100 bytes */
    for (int i = 0; i < n; i++) {
        char sid[AUTH_ID_MAX];
        if (auth_session_cookie_parse(bad[i], sid) != AUTH_EINVALID)
            TEST_FAIL_("parsed: \"%s\"", bad[i]);
        if (auth_session_cookie_check(&k, bad[i], "s", "salt") != AUTH_EINVALID)
            TEST_FAIL_("accepted: \"%s\"", bad[i]);
    }
    static const char *const bad_csrf[] = {
        "", "x", "0000", "not hex at all, but 64 characters long, exactly: 0123456789ab"};
    for (size_t i = 0; i < sizeof(bad_csrf) / sizeof(bad_csrf[0]); i++)
        ASSERT_EQ(auth_csrf_check(&k, "s", "salt", bad_csrf[i]), AUTH_EINVALID);
    char upper[AUTH_CSRF_TOKEN_MAX + 1];
    snprintf(upper, sizeof(upper), "%s", csrf);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    ASSERT_EQ(auth_csrf_check(&k, "s", "salt", upper), AUTH_EINVALID);
    char longer[AUTH_CSRF_TOKEN_MAX + 2];
    snprintf(longer, sizeof(longer), "%s0", csrf);
    ASSERT_EQ(auth_csrf_check(&k, "s", "salt", longer), AUTH_EINVALID);
    ASSERT_EQ(auth_session_cookie_parse(NULL, (char[AUTH_ID_MAX]){0}), AUTH_EINVALID);
    ASSERT_EQ(auth_session_cookie_check(&k, good, "s", "salt"), AUTH_OK);
    ASSERT_EQ(auth_csrf_check(&k, "s", "salt", csrf), AUTH_OK);
}

/* ---- API keys ------------------------------------------------------------- */

TEST(api_key_format_and_hash)
{
    char key[AUTH_API_KEY_MAX], id[AUTH_API_KEY_ID_MAX], hash[AUTH_SHA256_HEX], again[AUTH_SHA256_HEX];
    ASSERT_EQ(auth_api_key_new(key, id, hash), AUTH_OK);
    ASSERT_EQ(strncmp(key, "plx_", 4), 0);
    ASSERT_TRUE(all_hex(key + 4, 64));
    ASSERT_TRUE(all_hex(id, 12));
    ASSERT_TRUE(all_hex(hash, 64));
    ASSERT_EQ(auth_api_key_hash(key, again), AUTH_OK);
    ASSERT_STREQ(again, hash);
    /* plain SHA-256 of the whole key: a known vector (sha256sum) */
    char zero[AUTH_API_KEY_MAX] = "plx_";
    memset(zero + 4, '0', 64);
    ASSERT_EQ(auth_api_key_hash(zero, again), AUTH_OK);
    ASSERT_STREQ(again, "3dde0e1c71d0bdd8141af365804c3e0b04a907259358d36cc6899fe004d25dbd");
}

TEST(api_keys_differ_and_bad_keys_are_refused)
{
    char k1[AUTH_API_KEY_MAX], i1[AUTH_API_KEY_ID_MAX], h1[AUTH_SHA256_HEX];
    char k2[AUTH_API_KEY_MAX], i2[AUTH_API_KEY_ID_MAX], h2[AUTH_SHA256_HEX];
    ASSERT_EQ(auth_api_key_new(k1, i1, h1), AUTH_OK);
    ASSERT_EQ(auth_api_key_new(k2, i2, h2), AUTH_OK);
    ASSERT_STRNE(k1, k2);
    ASSERT_STRNE(i1, i2);
    ASSERT_STRNE(h1, h2);
    char h[AUTH_SHA256_HEX];
    ASSERT_EQ(auth_api_key_hash("plx_short", h), AUTH_EINVALID);
    ASSERT_EQ(auth_api_key_hash(k1 + 4, h), AUTH_EINVALID);
    char upper[AUTH_API_KEY_MAX];
    snprintf(upper, sizeof(upper), "PLX_%s", k1 + 4);
    ASSERT_EQ(auth_api_key_hash(upper, h), AUTH_EINVALID);
    char longer[AUTH_API_KEY_MAX + 8];
    snprintf(longer, sizeof(longer), "%s0", k1);
    ASSERT_EQ(auth_api_key_hash(longer, h), AUTH_EINVALID);
    ASSERT_EQ(auth_api_key_hash(NULL, h), AUTH_EINVALID);
}

/* ---- keys and the secret file --------------------------------------------- */

TEST(keys_from_env_secret_are_deterministic)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "auth");
    const char *secret = "0123456789abcdef0123456789abcdef";
    auth_keys_t a, b, c;
    char err[256] = "";
    ASSERT_EQ(auth_keys_load(dir, secret, &a, err, sizeof(err)), AUTH_OK);
    ASSERT_EQ(auth_keys_load(NULL, secret, &b, err, sizeof(err)), AUTH_OK);
    ASSERT_EQ(memcmp(a._jwt, b._jwt, 32), 0);
    ASSERT_EQ(memcmp(a._refresh, b._refresh, 32), 0);
    ASSERT_NE(memcmp(a._jwt, a._refresh, 32), 0);
    ASSERT_EQ(auth_keys_load(dir, "0123456789abcdef0123456789abcdeF", &c, err, sizeof(err)),
              AUTH_OK);
    ASSERT_NE(memcmp(a._jwt, c._jwt, 32), 0);
    /* the data directory is left alone */
    struct stat st;
    char path[128];
    snprintf(path, sizeof(path), "%s/secret.key", dir);
    ASSERT_NE(stat(path, &st), 0);
    ASSERT_EQ(errno, ENOENT);
    /* a token signed under one load verifies under the other */
    char *t = NULL;
    ASSERT_EQ(auth_token_issue(&a, "u", "s", NOW, 60, &t), AUTH_OK);
    auth_claims_t cl;
    ASSERT_EQ(auth_token_verify(&b, t, NOW, &cl), AUTH_OK);
    free(t);
    auth_keys_wipe(&a);
    ASSERT_TRUE(!a._loaded);
    ut_rmrf(dir);
}

TEST(keys_short_env_secret_is_refused)
{
    auth_keys_t k;
    memset(&k, 0x5a, sizeof(k));
    char err[256] = "";
    ASSERT_EQ(auth_keys_load("/nonexistent", "0123456789abcdef0123456789abcde", &k, err,
                             sizeof(err)),
              AUTH_ESECRET);
    ASSERT_CONTAINS(err, "PARLEY_JWT_SECRET");
    ASSERT_EQ(k._jwt[0], 0x5a); /* untouched */
    ASSERT_EQ(auth_keys_load(NULL, "", &k, err, sizeof(err)), AUTH_ESECRET);
}

TEST(keys_secret_file_is_created_0600_and_reused)
{
    char dir[64], path[128], tmp[128];
    ut_tmpdir(dir, sizeof(dir), "auth");
    snprintf(path, sizeof(path), "%s/secret.key", dir);
    snprintf(tmp, sizeof(tmp), "%s/secret.key.tmp", dir);
    umask(0277); /* the mode must not depend on the umask (open alone gives 0400) */
    auth_keys_t a, b;
    char err[256] = "";
    ASSERT_EQ(auth_keys_load(dir, NULL, &a, err, sizeof(err)), AUTH_OK);
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_mode & 07777, 0600);
    ASSERT_EQ(st.st_size, 65);
    ASSERT_NE(stat(tmp, &st), 0);
    FILE *f = fopen(path, "r");
    char text[80] = "";
    ASSERT_NOT_NULL(fgets(text, sizeof(text), f));
    fclose(f);
    ASSERT_EQ(strlen(text), 65);
    ASSERT_TRUE(all_hex((text[64] = '\0', text), 64));

    ASSERT_EQ(auth_keys_load(dir, NULL, &b, err, sizeof(err)), AUTH_OK);
    ASSERT_EQ(memcmp(&a, &b, sizeof(a)), 0);
    /* and the file's secret goes through the same derivation */
    unsigned char raw[32];
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(text + 2 * i, "%2x", &v);
        raw[i] = (unsigned char)v;
    }
    auth_keys_t c;
    ASSERT_EQ(auth_keys_derive(raw, sizeof(raw), &c), AUTH_OK);
    ASSERT_EQ(memcmp(&a, &c, sizeof(a)), 0);
    ut_rmrf(dir);
}

TEST(keys_secret_file_with_loose_mode_is_refused)
{
    char dir[64], path[128];
    ut_tmpdir(dir, sizeof(dir), "auth");
    snprintf(path, sizeof(path), "%s/secret.key", dir);
    auth_keys_t k;
    char err[256] = "";
    ASSERT_EQ(auth_keys_load(dir, NULL, &k, err, sizeof(err)), AUTH_OK);
    ASSERT_EQ(chmod(path, 0644), 0);
    ASSERT_EQ(auth_keys_load(dir, NULL, &k, err, sizeof(err)), AUTH_ESECRET);
    ASSERT_CONTAINS(err, path);
    ASSERT_CONTAINS(err, "0644");
    ASSERT_EQ(chmod(path, 0640), 0);
    ASSERT_EQ(auth_keys_load(dir, NULL, &k, err, sizeof(err)), AUTH_ESECRET);
    ASSERT_EQ(chmod(path, 0400), 0); /* stricter is fine */
    ASSERT_EQ(auth_keys_load(dir, NULL, &k, err, sizeof(err)), AUTH_OK);
    ut_rmrf(dir);
}

TEST(keys_corrupted_secret_file_is_refused_and_kept)
{
    char dir[64], path[128];
    ut_tmpdir(dir, sizeof(dir), "auth");
    snprintf(path, sizeof(path), "%s/secret.key", dir);
    const char *bad[] = {
        "",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n",   /* 63 */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\n", /* 65 */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\n",  /* not hex */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r",  /* not \n */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tu_write(path, bad[i], strlen(bad[i]));
        auth_keys_t k;
        char err[256] = "";
        if (auth_keys_load(dir, NULL, &k, err, sizeof(err)) != AUTH_ESECRET)
            TEST_FAIL_("accepted secret file #%zu", i);
        ASSERT_CONTAINS(err, path);
        struct stat st;
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_size, (long long)strlen(bad[i])); /* not replaced */
    }
    /* the same content without the newline is fine */
    const char *good = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    tu_write(path, good, strlen(good));
    auth_keys_t k;
    char err[256] = "";
    ASSERT_EQ(auth_keys_load(dir, NULL, &k, err, sizeof(err)), AUTH_OK);
    /* a directory in its place */
    unlink(path);
    ASSERT_EQ(mkdir(path, 0700), 0);
    ASSERT_NE(auth_keys_load(dir, NULL, &k, err, sizeof(err)), AUTH_OK);
    ASSERT_CONTAINS(err, path);
    ut_rmrf(dir);
}

TEST(keys_missing_data_dir_is_an_error)
{
    auth_keys_t k;
    char err[256] = "";
    int rc = auth_keys_load("/tmp/parley-no-such-dir/x", NULL, &k, err, sizeof(err));
    ASSERT_LT(rc, 0);
    ASSERT_NE(rc, AUTH_OK);
    ASSERT_CONTAINS(err, "/tmp/parley-no-such-dir/x/secret.key");
}

TEST(random_hex_has_the_right_length_and_varies)
{
    char a[65], b[65];
    ASSERT_EQ(auth_random_hex(32, a), AUTH_OK);
    ASSERT_EQ(auth_random_hex(32, b), AUTH_OK);
    ASSERT_TRUE(all_hex(a, 64));
    ASSERT_STRNE(a, b);
    ASSERT_EQ(auth_random_hex(0, a), AUTH_OK);
    ASSERT_STREQ(a, "");
}

/* ---- login throttle ------------------------------------------------------- */

/* One failed login attempt at `now`; returns the check's result. */
static int attempt(auth_login_limiter_t *l, const char *acct, const char *ip, int64_t now,
                   int *retry)
{
    *retry = -1;
    int rc = auth_login_check(l, acct, ip, now, retry);
    if (rc == AUTH_OK)
        auth_login_failure(l, acct, ip, now);
    return rc;
}

TEST(login_failure_reports_the_moment_the_account_is_throttled)
{
    auth_login_limiter_t *l = auth_login_limiter_new(0);
    int retry;
    int64_t t = NOW;
    for (int i = 0; i < AUTH_LOGIN_FREE_ACCOUNT; i++) {
        ASSERT_EQ(auth_login_check(l, "hana", "10.0.0.7", t, &retry), AUTH_OK);
        bool locked = auth_login_failure(l, "hana", "10.0.0.7", t);
        if (locked != (i == AUTH_LOGIN_FREE_ACCOUNT - 1))
            TEST_FAIL_("failure %d: locked %d", i + 1, locked);
    }
    /* Once per run of failures: the next allowed failure does not say it again. */
    t += 1;
    ASSERT_EQ(auth_login_check(l, "hana", "10.0.0.7", t, &retry), AUTH_OK);
    ASSERT_TRUE(!auth_login_failure(l, "hana", "10.0.0.7", t));
    /* A success clears the account: five more failures throttle it anew. */
    t += 2;
    ASSERT_EQ(auth_login_check(l, "hana", "10.0.0.7", t, &retry), AUTH_OK);
    auth_login_success(l, "hana", "10.0.0.7", t);
    int locks = 0;
    for (int i = 0; i < AUTH_LOGIN_FREE_ACCOUNT; i++) {
        ASSERT_EQ(auth_login_check(l, "hana", "10.0.0.8", t, &retry), AUTH_OK);
        locks += auth_login_failure(l, "hana", "10.0.0.8", t);
    }
    ASSERT_EQ(locks, 1);
    auth_login_limiter_free(l);
}

TEST(login_free_failures_then_doubling_delay_capped_at_300)
{
    auth_login_limiter_t *l = auth_login_limiter_new(0);
    int retry;
    int64_t t = NOW;
    for (int i = 0; i < AUTH_LOGIN_FREE_ACCOUNT; i++)
        ASSERT_EQ(attempt(l, "alice", "10.0.0.1", t, &retry), AUTH_OK);
    int want = 1;
    for (int i = 0; i < 14; i++) {
        ASSERT_EQ(auth_login_check(l, "alice", "10.0.0.1", t, &retry), AUTH_ELIMITED);
        if (retry != want)
            TEST_FAIL_("step %d: Retry-After %d, want %d", i, retry, want);
        /* one second early is still refused, on time is allowed */
        ASSERT_EQ(auth_login_check(l, "alice", "10.0.0.1", t + want - 1, &retry), AUTH_ELIMITED);
        ASSERT_EQ(retry, 1);
        t += want;
        ASSERT_EQ(attempt(l, "alice", "10.0.0.1", t, &retry), AUTH_OK);
        want = want * 2 > AUTH_LOGIN_MAX_DELAY ? AUTH_LOGIN_MAX_DELAY : want * 2;
    }
    ASSERT_EQ(want, 300);
    ASSERT_EQ(auth_login_check(l, "alice", "10.0.0.1", t, &retry), AUTH_ELIMITED);
    ASSERT_EQ(retry, 300);
    auth_login_limiter_free(l);
}

TEST(login_success_clears_the_account)
{
    auth_login_limiter_t *l = auth_login_limiter_new(0);
    int retry;
    for (int i = 0; i < 8; i++) /* failures at +0 ... +70: 8 on record, 8 s delay */
        ASSERT_EQ(attempt(l, "bob", "10.0.0.2", NOW + i * 10, &retry), AUTH_OK);
    ASSERT_EQ(auth_login_check(l, "bob", "10.0.0.2", NOW + 71, &retry), AUTH_ELIMITED);
    ASSERT_EQ(retry, 7);
    /* the right password after waiting */
    ASSERT_EQ(auth_login_check(l, "bob", "10.0.0.2", NOW + 78, &retry), AUTH_OK);
    auth_login_success(l, "bob", "10.0.0.2", NOW + 78);
    for (int i = 0; i < AUTH_LOGIN_FREE_ACCOUNT; i++)
        ASSERT_EQ(attempt(l, "bob", "10.0.0.2", NOW + 78, &retry), AUTH_OK);
    ASSERT_EQ(auth_login_check(l, "bob", "10.0.0.2", NOW + 78, &retry), AUTH_ELIMITED);
    ASSERT_EQ(retry, 1);
    auth_login_limiter_free(l);
}

TEST(login_account_and_ip_limits_are_independent)
{
    auth_login_limiter_t *l = auth_login_limiter_new(0);
    int retry;
    char acct[32];
    /* 20 different accounts from one IP: free; the 21st attempt waits */
    for (int i = 0; i < AUTH_LOGIN_FREE_IP; i++) {
        snprintf(acct, sizeof(acct), "user%d", i);
        ASSERT_EQ(attempt(l, acct, "203.0.113.9", NOW, &retry), AUTH_OK);
    }
    ASSERT_EQ(auth_login_check(l, "fresh", "203.0.113.9", NOW, &retry), AUTH_ELIMITED);
    ASSERT_EQ(retry, 1);
    /* the same account from elsewhere is fine */
    ASSERT_EQ(auth_login_check(l, "fresh", "198.51.100.1", NOW, &retry), AUTH_OK);
    /* an account attacked from many IPs is limited everywhere */
    char ip[32];
    for (int i = 0; i < AUTH_LOGIN_FREE_ACCOUNT; i++) {
        snprintf(ip, sizeof(ip), "192.0.2.%d", i);
        ASSERT_EQ(attempt(l, "carol", ip, NOW, &retry), AUTH_OK);
    }
    ASSERT_EQ(auth_login_check(l, "carol", "192.0.2.200", NOW, &retry), AUTH_ELIMITED);
    /* without an IP (or account) only the other map applies */
    ASSERT_EQ(auth_login_check(l, "carol", NULL, NOW, &retry), AUTH_ELIMITED);
    ASSERT_EQ(auth_login_check(l, NULL, "192.0.2.201", NOW, &retry), AUTH_OK);
    /* a success from the IP gives back its own attempt (20 on record, not
     * 21: the next waits 1 s, not 2), but not the earlier failures */
    ASSERT_EQ(auth_login_check(l, "dave", "203.0.113.9", NOW + 1, &retry), AUTH_OK);
    auth_login_success(l, "dave", "203.0.113.9", NOW + 1);
    ASSERT_EQ(auth_login_check(l, "erin", "203.0.113.9", NOW + 2, &retry), AUTH_OK);
    auth_login_failure(l, "erin", "203.0.113.9", NOW + 2);
    ASSERT_EQ(auth_login_check(l, "frank", "203.0.113.9", NOW + 2, &retry), AUTH_ELIMITED);
    ASSERT_EQ(retry, 2);
    auth_login_limiter_free(l);
}

TEST(login_account_is_case_insensitive)
{
    auth_login_limiter_t *l = auth_login_limiter_new(0);
    int retry;
    const char *spellings[] = {"Alice", "ALICE", "alice", "aLiCe", "alicE"};
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(attempt(l, spellings[i], NULL, NOW, &retry), AUTH_OK);
    ASSERT_EQ(auth_login_check(l, "alice", NULL, NOW, &retry), AUTH_ELIMITED);
    auth_login_limiter_free(l);
}

TEST(login_failures_are_forgotten_15_minutes_after_the_last)
{
    auth_login_limiter_t *l = auth_login_limiter_new(0);
    int retry;
    int64_t t = NOW;
    for (int i = 0; i < 10; i++) {
        while (auth_login_check(l, "gina", "10.1.1.1", t, &retry) != AUTH_OK)
            t += retry;
        auth_login_failure(l, "gina", "10.1.1.1", t);
    }
    ASSERT_EQ(auth_login_check(l, "gina", "10.1.1.1", t, &retry), AUTH_ELIMITED);
    ASSERT_EQ(retry, 32);
    /* after 899 quiet seconds the count still stands (one more failure
     * would wait 64 s), after 900 it is gone */
    ASSERT_EQ(attempt(l, "gina", "10.1.1.1", t + 899, &retry), AUTH_OK);
    ASSERT_EQ(auth_login_check(l, "gina", "10.1.1.1", t + 899, &retry), AUTH_ELIMITED);
    ASSERT_EQ(retry, 64);
    t += 899 + 900;
    for (int i = 0; i < AUTH_LOGIN_FREE_ACCOUNT; i++)
        ASSERT_EQ(attempt(l, "gina", "10.1.1.1", t, &retry), AUTH_OK);
    ASSERT_EQ(auth_login_check(l, "gina", "10.1.1.1", t, &retry), AUTH_ELIMITED);
    ASSERT_EQ(retry, 1);
    auth_login_limiter_free(l);
}

TEST(login_parallel_attempts_cannot_skip_the_count)
{
    auth_login_limiter_t *l = auth_login_limiter_new(0);
    int retry, allowed = 0;
    /* 50 requests arrive before any has finished hashing */
    for (int i = 0; i < 50; i++)
        if (auth_login_check(l, "hank", NULL, NOW, &retry) == AUTH_OK)
            allowed++;
    ASSERT_EQ(allowed, AUTH_LOGIN_FREE_ACCOUNT);
    auth_login_limiter_free(l);
}

TEST(login_memory_is_bounded_and_evicts_the_oldest)
{
    auth_login_limiter_t *l = auth_login_limiter_new(4);
    int retry;
    attempt(l, "b", NULL, NOW, &retry);
    attempt(l, "c", NULL, NOW, &retry);
    for (int i = 0; i < AUTH_LOGIN_FREE_ACCOUNT; i++)
        attempt(l, "a", NULL, NOW, &retry);
    attempt(l, "d", NULL, NOW, &retry);
    ASSERT_EQ(auth_login_check(l, "a", NULL, NOW, &retry), AUTH_ELIMITED);
    ASSERT_EQ(auth_login_check(l, "b", NULL, NOW, &retry), AUTH_OK); /* touches "b" */
    /* a fifth name evicts the least recently used ("c"), not "a" or "b" */
    attempt(l, "e", NULL, NOW, &retry);
    ASSERT_EQ(auth_login_check(l, "a", NULL, NOW, &retry), AUTH_ELIMITED);
    for (int i = 0; i < AUTH_LOGIN_FREE_ACCOUNT - 2; i++) /* b has 2 on record */
        ASSERT_EQ(attempt(l, "b", NULL, NOW, &retry), AUTH_OK);
    ASSERT_EQ(auth_login_check(l, "b", NULL, NOW, &retry), AUTH_ELIMITED);
    /* thousands of names later, still four entries' worth and no crash */
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        attempt(l, name, NULL, NOW, &retry);
    }
    ASSERT_EQ(auth_login_check(l, "a", NULL, NOW, &retry), AUTH_OK); /* evicted */
    auth_login_limiter_free(l);
    auth_login_limiter_free(NULL);
}

/* ---- request rate limits by category -------------------------------------- */

#define T0 1767960010000LL /* ms */

/* A limiter with `limit` in `category` and every other category off. */
static auth_rate_limiter_t *rate_one(int category, int limit, size_t max_entries)
{
    int limits[AUTH_RATE_CATEGORIES] = {0};
    limits[category] = limit;
    return auth_rate_limiter_new(limits, max_entries);
}

TEST(rate_burst_then_refill_at_limit_per_minute)
{
    auth_rate_limiter_t *l = rate_one(AUTH_RATE_SEARCH, 3, 0);
    auth_rate_info_t in;
    /* A new bucket is full: a burst of 3 in the same millisecond. */
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(auth_rate_check(l, AUTH_RATE_SEARCH, "u1", NULL, T0, &in), AUTH_OK);
        ASSERT_TRUE(in.enabled);
        ASSERT_EQ(in.limit, 3);
        ASSERT_EQ(in.remaining, 2 - i);
        ASSERT_EQ(in.retry_after, 0);
        /* full again after (i + 1) tokens at one per 20 s */
        ASSERT_EQ(in.reset, (T0 + (i + 1) * 20000 + 999) / 1000);
    }
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_SEARCH, "u1", NULL, T0, &in), AUTH_ELIMITED);
    ASSERT_EQ(in.remaining, 0);
    ASSERT_EQ(in.retry_after, 20);
    ASSERT_EQ(in.reset, (T0 + 60000 + 999) / 1000);
    /* 19.999 s later no token yet, and a refused request took nothing. */
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_SEARCH, "u1", NULL, T0 + 19999, &in), AUTH_ELIMITED);
    ASSERT_EQ(in.retry_after, 1); /* 1 ms, rounded up to a second */
    /* At 20 s exactly one token has come back: one request, not two. */
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_SEARCH, "u1", NULL, T0 + 20000, &in), AUTH_OK);
    ASSERT_EQ(in.remaining, 0);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_SEARCH, "u1", NULL, T0 + 20000, &in), AUTH_ELIMITED);
    /* Partial tokens add up: 10 s + 10 s is one token. */
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_SEARCH, "u1", NULL, T0 + 30000, &in), AUTH_ELIMITED);
    ASSERT_EQ(in.retry_after, 10);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_SEARCH, "u1", NULL, T0 + 40000, &in), AUTH_OK);
    /* A long quiet spell fills the bucket, never beyond its size. */
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(auth_rate_check(l, AUTH_RATE_SEARCH, "u1", NULL, T0 + 3600000, &in), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_SEARCH, "u1", NULL, T0 + 3600000, &in), AUTH_ELIMITED);
    /* A clock that goes back refills nothing and breaks nothing. */
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_SEARCH, "u1", NULL, T0, &in), AUTH_ELIMITED);
    ASSERT_GE(in.retry_after, 1);
    auth_rate_limiter_free(l);
}

TEST(rate_window_of_an_hour_refills_over_the_hour)
{
    /* The registration throttle: 3 an hour, one token each 20 minutes. */
    int limits[AUTH_RATE_CATEGORIES] = {[AUTH_RATE_AUTH] = 3};
    auth_rate_limiter_t *l = auth_rate_limiter_new_window(limits, 64, 3600);
    auth_rate_info_t in;
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, "10.0.0.1", T0, &in), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, "10.0.0.1", T0, &in), AUTH_ELIMITED);
    ASSERT_EQ(in.retry_after, 1200);
    /* Another address has its own bucket. */
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, "10.0.0.2", T0, &in), AUTH_OK);
    /* A minute later (a per-minute bucket would be full): still nothing. */
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, "10.0.0.1", T0 + 60000, &in),
              AUTH_ELIMITED);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, "10.0.0.1", T0 + 1200000, &in), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, "10.0.0.1", T0 + 1200000, &in),
              AUTH_ELIMITED);
    auth_rate_limiter_free(l);
}

TEST(rate_steady_pace_at_the_limit_is_never_refused)
{
    /* 100 a minute = one each 600 ms: a client at exactly that pace after
     * spending its burst always finds a token. */
    auth_rate_limiter_t *l = rate_one(AUTH_RATE_MESSAGES, 100, 0);
    int64_t t = T0;
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(auth_rate_check(l, AUTH_RATE_MESSAGES, "u1", NULL, t, NULL), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_MESSAGES, "u1", NULL, t, NULL), AUTH_ELIMITED);
    for (int i = 0; i < 1000; i++) {
        t += 600;
        ASSERT_EQ(auth_rate_check(l, AUTH_RATE_MESSAGES, "u1", NULL, t, NULL), AUTH_OK);
        ASSERT_EQ(auth_rate_check(l, AUTH_RATE_MESSAGES, "u1", NULL, t, NULL), AUTH_ELIMITED);
    }
    auth_rate_limiter_free(l);
}

TEST(rate_categories_and_callers_are_independent)
{
    int limits[AUTH_RATE_CATEGORIES] = {[AUTH_RATE_DEFAULT] = 5, [AUTH_RATE_AUTH] = 2,
                                        [AUTH_RATE_MESSAGES] = 4, [AUTH_RATE_UPLOADS] = 1,
                                        [AUTH_RATE_SEARCH] = 3, [AUTH_RATE_ADMIN] = 6};
    auth_rate_limiter_t *l = auth_rate_limiter_new(limits, 0);
    auth_rate_info_t in;
    /* Empty u1's auth bucket. */
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, "u1", "10.0.0.1", T0, &in), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, "u1", "10.0.0.1", T0, &in), AUTH_ELIMITED);
    /* Every other category of u1 is still full. */
    for (int c = 0; c < AUTH_RATE_CATEGORIES; c++) {
        if (c == AUTH_RATE_AUTH)
            continue;
        ASSERT_EQ(auth_rate_check(l, c, "u1", "10.0.0.1", T0, &in), AUTH_OK);
        ASSERT_EQ(in.limit, limits[c]);
        ASSERT_EQ(in.remaining, limits[c] - 1);
    }
    /* Another user, and the address u1 came from, have their own buckets:
     * the user id wins over the address, and an address is not a user. */
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, "u2", "10.0.0.1", T0, &in), AUTH_OK);
    ASSERT_EQ(in.remaining, 1);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, "10.0.0.1", T0, &in), AUTH_OK);
    ASSERT_EQ(in.remaining, 1);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, "", "10.0.0.1", T0, &in), AUTH_OK);
    ASSERT_EQ(in.remaining, 0);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, "10.0.0.1", T0, &in), AUTH_ELIMITED);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, "10.0.0.1", NULL, T0, &in), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, "10.0.0.2", T0, &in), AUTH_OK);
    ASSERT_EQ(in.remaining, 1);
    /* No caller at all (no user, no address) is not limited. */
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, "", T0, &in), AUTH_OK);
    ASSERT_TRUE(!in.enabled);
    /* An unknown category is not limited either. */
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_CATEGORIES, "u1", NULL, T0, &in), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, -1, "u1", NULL, T0, &in), AUTH_OK);
    ASSERT_TRUE(!in.enabled);
    auth_rate_limiter_free(l);
}

TEST(rate_limit_zero_is_off_and_the_setter_acts_at_once)
{
    auth_rate_limiter_t *l = rate_one(AUTH_RATE_DEFAULT, 5, 0);
    auth_rate_info_t in;
    for (int i = 0; i < 1000; i++)
        ASSERT_EQ(auth_rate_check(l, AUTH_RATE_UPLOADS, "u1", NULL, T0, &in), AUTH_OK);
    ASSERT_TRUE(!in.enabled);
    ASSERT_EQ(in.limit, 0);
    ASSERT_EQ(auth_rate_category_limit(l, AUTH_RATE_UPLOADS), 0);
    ASSERT_EQ(auth_rate_category_limit(l, AUTH_RATE_DEFAULT), 5);

    /* Off to on: the first bucket is full at the new size. */
    ASSERT_EQ(auth_rate_set_category_limit(l, AUTH_RATE_UPLOADS, 1), AUTH_OK);
    ASSERT_EQ(auth_rate_category_limit(l, AUTH_RATE_UPLOADS), 1);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_UPLOADS, "u1", NULL, T0, &in), AUTH_OK);
    ASSERT_TRUE(in.enabled);
    ASSERT_EQ(in.limit, 1);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_UPLOADS, "u1", NULL, T0, &in), AUTH_ELIMITED);
    ASSERT_EQ(in.retry_after, 60);

    /* 2 of 5 used; raised to 10: 8 left at once (7 after this one); with 3
     * of 10 used, cut to 3: none left at once. */
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(auth_rate_check(l, AUTH_RATE_DEFAULT, "u1", NULL, T0, &in), AUTH_OK);
    ASSERT_EQ(auth_rate_set_category_limit(l, AUTH_RATE_DEFAULT, 10), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_DEFAULT, "u1", NULL, T0, &in), AUTH_OK);
    ASSERT_EQ(in.limit, 10);
    ASSERT_EQ(in.remaining, 7);
    ASSERT_EQ(auth_rate_set_category_limit(l, AUTH_RATE_DEFAULT, 3), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_DEFAULT, "u1", NULL, T0, &in), AUTH_ELIMITED);
    ASSERT_EQ(in.limit, 3);
    ASSERT_EQ(in.remaining, 0);
    /* An emptied bucket refills at the new pace (3 a minute: 20 s). */
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_DEFAULT, "u1", NULL, T0 + 20000, &in), AUTH_OK);
    /* Raised from an empty 3 to 100: 97 at once. */
    ASSERT_EQ(auth_rate_set_category_limit(l, AUTH_RATE_DEFAULT, 100), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_DEFAULT, "u1", NULL, T0 + 20000, &in), AUTH_OK);
    ASSERT_EQ(in.remaining, 96);

    /* Off again: nothing counted, no headers. */
    ASSERT_EQ(auth_rate_set_category_limit(l, AUTH_RATE_UPLOADS, 0), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_UPLOADS, "u1", NULL, T0, &in), AUTH_OK);
    ASSERT_TRUE(!in.enabled);

    /* Bad arguments change nothing. */
    ASSERT_EQ(auth_rate_set_category_limit(l, AUTH_RATE_DEFAULT, -1), AUTH_EINVALID);
    ASSERT_EQ(auth_rate_set_category_limit(l, AUTH_RATE_DEFAULT, AUTH_RATE_LIMIT_MAX + 1),
              AUTH_EINVALID);
    ASSERT_EQ(auth_rate_set_category_limit(l, AUTH_RATE_CATEGORIES, 5), AUTH_EINVALID);
    ASSERT_EQ(auth_rate_set_category_limit(l, -1, 5), AUTH_EINVALID);
    ASSERT_EQ(auth_rate_category_limit(l, AUTH_RATE_DEFAULT), 100);
    ASSERT_EQ(auth_rate_category_limit(l, AUTH_RATE_CATEGORIES), -1);
    ASSERT_EQ(auth_rate_set_category_limit(l, AUTH_RATE_ADMIN, AUTH_RATE_LIMIT_MAX), AUTH_OK);
    auth_rate_limiter_free(l);
}

TEST(rate_category_names)
{
    const char *names[] = {"default", "auth", "messages", "uploads", "search", "admin"};
    ASSERT_EQ(sizeof(names) / sizeof(names[0]), AUTH_RATE_CATEGORIES);
    for (int c = 0; c < AUTH_RATE_CATEGORIES; c++) {
        ASSERT_STREQ(auth_rate_category_name(c), names[c]);
        ASSERT_EQ(auth_rate_category_from_name(names[c]), c);
    }
    ASSERT_NULL(auth_rate_category_name(AUTH_RATE_CATEGORIES));
    ASSERT_NULL(auth_rate_category_name(-1));
    ASSERT_EQ(auth_rate_category_from_name("Auth"), -1);
    ASSERT_EQ(auth_rate_category_from_name(""), -1);
    ASSERT_EQ(auth_rate_category_from_name(NULL), -1);
}

struct rate_arg {
    auth_rate_limiter_t *l;
    int allowed;
};

static void *rate_thread(void *p)
{
    struct rate_arg *a = p;
    char id[16];
    for (int i = 0; i < 4000; i++) {
        snprintf(id, sizeof(id), "user%d", i % 4);
        if (auth_rate_check(a->l, (i / 4) % 2 ? AUTH_RATE_SEARCH : AUTH_RATE_DEFAULT, id, NULL, T0,
                            NULL) == AUTH_OK)
            a->allowed++;
    }
    return NULL;
}

TEST(rate_limit_counts_exactly_across_threads)
{
    int limits[AUTH_RATE_CATEGORIES] = {[AUTH_RATE_DEFAULT] = 700, [AUTH_RATE_SEARCH] = 800};
    auth_rate_limiter_t *l = auth_rate_limiter_new(limits, 0);
    struct rate_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct rate_arg){l, 0};
        ASSERT_EQ(pthread_create(&th[i], NULL, rate_thread, &args[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += args[i].allowed;
    }
    /* 4 users x (700 default + 800 search) of 8000 requests each */
    ASSERT_EQ(total, 4 * (700 + 800));
    auth_rate_limiter_free(l);
}

TEST(rate_limit_memory_is_bounded)
{
    /* 32 buckets in all (2 a shard): a flood of callers evicts, never grows. */
    auth_rate_limiter_t *l = rate_one(AUTH_RATE_AUTH, 2, 32);
    auth_rate_info_t in;
    char addr[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(addr, sizeof(addr), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, addr, T0, &in), AUTH_OK);
    }
    /* the most recent caller is still counted */
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, addr, T0, &in), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, addr, T0, &in), AUTH_ELIMITED);
    /* an early one was evicted: it comes back with a full bucket */
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, NULL, "10.0.0.0", T0, &in), AUTH_OK);
    ASSERT_EQ(in.remaining, 1);
    /* a long caller is keyed by its first AUTH_RATE_CALLER_MAX bytes */
    char a[100], b[100];
    memset(a, 'x', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    memcpy(b, a, sizeof(b));
    b[sizeof(b) - 2] = 'y';
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, a, NULL, T0, &in), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, b, NULL, T0, &in), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_AUTH, a, NULL, T0, &in), AUTH_ELIMITED);
    auth_rate_limiter_free(l);
    auth_rate_limiter_free(NULL);
}

TEST(rate_spend_is_a_budget_per_user_that_refills_and_lets_one_large_amount_owe)
{
    auth_rate_limiter_t *l = auth_rate_limiter_new(NULL, 0);
    int64_t t = 1000000;
    int retry = 0;
    /* 6000 a minute: 100 a second. */
    ASSERT_EQ(auth_rate_spend(l, "usr_a", 4000, 6000, t, &retry), AUTH_OK);
    ASSERT_EQ(auth_rate_spend(l, "usr_a", 2000, 6000, t, &retry), AUTH_OK);
    ASSERT_EQ(auth_rate_spend(l, "usr_a", 100, 6000, t, &retry), AUTH_ELIMITED);
    ASSERT_EQ(retry, 1);
    ASSERT_EQ(auth_rate_spend(l, "usr_b", 6000, 6000, t, &retry), AUTH_OK); /* its own */
    /* A second later 100 came back: 100 passes, 101 does not. */
    ASSERT_EQ(auth_rate_spend(l, "usr_a", 101, 6000, t + 1000, &retry), AUTH_ELIMITED);
    ASSERT_EQ(auth_rate_spend(l, "usr_a", 100, 6000, t + 1000, &retry), AUTH_OK);
    /* Full again after a minute; an amount over the budget passes once and
     * is owed: nothing passes until it is paid back. */
    t += 120000;
    ASSERT_EQ(auth_rate_spend(l, "usr_a", 9000, 6000, t, &retry), AUTH_OK);
    ASSERT_EQ(auth_rate_spend(l, "usr_a", 1, 6000, t + 30000, &retry), AUTH_ELIMITED);
    ASSERT_GE(retry, 1);
    ASSERT_EQ(auth_rate_spend(l, "usr_a", 1, 6000, t + 31000, &retry), AUTH_OK);
    /* No budget, no user: always allowed. */
    ASSERT_EQ(auth_rate_spend(l, "usr_a", 1000000, 0, t, &retry), AUTH_OK);
    ASSERT_EQ(auth_rate_spend(l, "", 1000000, 10, t, &retry), AUTH_OK);
    /* Request buckets are apart: the budget did not touch them. */
    ASSERT_EQ(auth_rate_set_category_limit(l, AUTH_RATE_UPLOADS, 1), AUTH_OK);
    ASSERT_EQ(auth_rate_check(l, AUTH_RATE_UPLOADS, "usr_a", NULL, t, NULL), AUTH_OK);
    auth_rate_limiter_free(l);
}
