/*
 * Password hashing with argon2id (libargon2), OWASP's minimum parameters:
 * m = 19 MiB, t = 2, p = 1, a 16-byte salt from gnutls_rnd(GNUTLS_RND_NONCE)
 * and a 32-byte tag, stored in the standard encoded form so the parameters
 * travel with each hash and can be raised later (auth_password_needs_rehash).
 * One hash costs ~50-60 ms of one core and 19 MiB.
 *
 * DESIGN: a counting semaphore admits at most N hashes at once, N = online
 * CPUs at first use (p = 1 makes each hash single-threaded, so N saturates
 * the machine and no more). A burst of 32 logins then holds N x 19 MiB, not
 * 32 x 19 MiB, and the other requests keep their share of the cores while the
 * excess logins queue in sem_wait. Verification goes through the same gate,
 * since it costs exactly as much as hashing.
 *
 * Timing: argon2id_verify recomputes the tag and compares it in constant time
 * (argon2_compare). For an unknown account auth_password_verify_dummy runs a
 * real verification against a fixed hash made with the same parameters, so
 * the answer takes as long as for a known account. A malformed encoded string
 * fails in argon2's decoder in microseconds; it can only come from our own
 * store, so it leaks nothing about accounts.
 *
 * Limits: passwords are taken as byte strings up to 1024 bytes (the 8-128
 * character rule is the handler's); longer ones are refused before any work.
 * A stored string asking for more than 256 MiB, t > 16 or p > 8 is refused
 * too: a corrupted record must not be able to take the server's memory.
 */
#include "parley/auth.h"

#include <argon2.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T_COST 2u
#define M_COST_KIB 19456u
#define PARALLELISM 1u
#define SALT_LEN 16u
#define TAG_LEN 32u

/* Accepted from stored strings (the current parameters are well inside). */
#define MAX_M_COST_KIB (256u * 1024u)
#define MAX_T_COST 16u
#define MAX_PARALLELISM 8u
#define MAX_ENCODED_LEN 256u

/* argon2id of "parley dummy password" with the current parameters and a
 * fixed salt; no account's hash, only something to spend the time against. */
static const char DUMMY_HASH[] = "$argon2id$v=19$m=19456,t=2,p=1$cGFybGV5LWR1bW15LXNsdA$"
                                 "SQDW9MDJTQzVX4khpujQ/MzrgngRT+fLXcWhD2Z9Svg";

static pthread_once_t gate_once = PTHREAD_ONCE_INIT;
static sem_t gate;
static int gate_size;
static atomic_int in_progress;
static atomic_int max_seen;

static void gate_init(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > 256)
        n = 256;
    gate_size = (int)n;
    if (sem_init(&gate, 0, (unsigned)gate_size) != 0)
        abort();
}

static void gate_enter(void)
{
    pthread_once(&gate_once, gate_init);
    while (sem_wait(&gate) != 0) {
        if (errno != EINTR)
            abort();
    }
    int now = atomic_fetch_add(&in_progress, 1) + 1;
    int seen = atomic_load(&max_seen);
    while (now > seen && !atomic_compare_exchange_weak(&max_seen, &seen, now))
        ;
}

static void gate_leave(void)
{
    atomic_fetch_sub(&in_progress, 1);
    sem_post(&gate);
}

int auth_password_concurrency(void)
{
    pthread_once(&gate_once, gate_init);
    return gate_size;
}

void auth__password_stats(int *now, int *max)
{
    if (now)
        *now = atomic_load(&in_progress);
    if (max)
        *max = atomic_load(&max_seen);
}

void auth__password_stats_reset(void)
{
    atomic_store(&max_seen, atomic_load(&in_progress));
}

/* Length of `password`, or SIZE_MAX when longer than the limit (strnlen
 * stops reading there, so a huge input costs nothing). */
static size_t password_len(const char *password)
{
    size_t n = strnlen(password, AUTH_PASSWORD_MAX_BYTES + 1);
    return n > AUTH_PASSWORD_MAX_BYTES ? SIZE_MAX : n;
}

int auth_password_hash(const char *password, char *out, size_t out_size)
{
    if (!password || !out || out_size < AUTH_PASSWORD_HASH_MAX)
        return AUTH_EINVALID;
    size_t len = password_len(password);
    if (len == SIZE_MAX)
        return AUTH_ETOOLONG;
    unsigned char salt[SALT_LEN];
    if (gnutls_rnd(GNUTLS_RND_NONCE, salt, sizeof(salt)) != 0)
        return AUTH_ECRYPTO;
    char encoded[AUTH_PASSWORD_HASH_MAX];
    gate_enter();
    int rc = argon2id_hash_encoded(T_COST, M_COST_KIB, PARALLELISM, password, len, salt,
                                   sizeof(salt), TAG_LEN, encoded, sizeof(encoded));
    gate_leave();
    if (rc != ARGON2_OK)
        return AUTH_ECRYPTO;
    memcpy(out, encoded, strlen(encoded) + 1);
    return AUTH_OK;
}

/* Reads the parameters of an argon2id v=19 string. Returns 0, or -1 when
 * the prefix is not that. */
static int parse_params(const char *encoded, unsigned *m, unsigned *t, unsigned *p)
{
    int used = 0;
    if (sscanf(encoded, "$argon2id$v=19$m=%u,t=%u,p=%u$%n", m, t, p, &used) != 3 || used == 0)
        return -1;
    return 0;
}

/* True when the encoded string is argon2id with parameters we will run. */
static bool params_acceptable(const char *encoded)
{
    if (strnlen(encoded, MAX_ENCODED_LEN + 1) > MAX_ENCODED_LEN)
        return false;
    unsigned m, t, p;
    if (parse_params(encoded, &m, &t, &p) != 0)
        return false;
    return m >= 8 && m <= MAX_M_COST_KIB && t >= 1 && t <= MAX_T_COST && p >= 1 &&
           p <= MAX_PARALLELISM;
}

static bool verify_gated(const char *password, const char *encoded)
{
    size_t len = password_len(password);
    if (len == SIZE_MAX || !params_acceptable(encoded))
        return false;
    gate_enter();
    int rc = argon2id_verify(encoded, password, len);
    gate_leave();
    return rc == ARGON2_OK;
}

bool auth_password_verify(const char *password, const char *encoded)
{
    if (!password || !encoded)
        return false;
    return verify_gated(password, encoded);
}

bool auth_password_verify_dummy(const char *password)
{
    if (!password)
        return false;
    (void)verify_gated(password, DUMMY_HASH);
    return false;
}

bool auth_password_needs_rehash(const char *encoded)
{
    unsigned m, t, p;
    if (!encoded || parse_params(encoded, &m, &t, &p) != 0)
        return true;
    return m != M_COST_KIB || t != T_COST || p != PARALLELISM;
}
