/*
 * In-memory limits: the login throttle and the request rate limits by category.
 * Nothing here is logged or persisted; a restart forgets it, which costs an
 * attacker at most one free burst per restart.
 *
 * DESIGN, storage. Both are built on one bounded table: a fixed array of
 * slots allocated once (calloc, so pages a quiet server never touches are
 * never backed by memory), hash chains through 32-bit slot indices, and a
 * doubly linked list in order of last use. Slots are handed out in order
 * until the array is full; after that an insert takes over the least
 * recently used slot (the head of the list). So memory is fixed at start,
 * inserts never allocate, and eviction is O(chain length).
 *
 * DESIGN, login throttle. Two maps, accounts (the name typed, ASCII
 * lower-cased) and client IPs, each entry holding a failure count and the
 * time of the last failure. An entry is forgotten 15 minutes after its last
 * failure. Below the free allowance (5 per account, 20 per IP) attempts are
 * not delayed; from there each attempt must come at least 2^(n - free)
 * seconds after the last failure (1 s, 2 s, 4 s ... capped at 300 s). An
 * attacker is slowed to one guess per 5 minutes per account and per IP,
 * while the real owner waits at most 5 minutes, never a lockout. Measuring
 * the window from the last failure rather than the first means an attacker
 * at the cap never gets a fresh burst of free guesses; quiet for 15 minutes
 * and the slate is clean.
 *   check() counts the attempt in advance, so 100 parallel requests cannot
 * all pass while the first few are still hashing (each takes ~60 ms); a
 * success then clears the account and gives the IP its attempt back.
 *   Keys are HMAC-SHA256 under a random per-process key, truncated to 16
 * bytes: fixed-size slots, no names in memory, and an attacker cannot aim
 * many names at one hash chain. Eviction drops the least recently used
 * entry (last counted attempt or failure). To push out the entry of an
 * account under attack, an attacker would need 100k other attempts within
 * that entry's delay (<= 300 s), i.e. 333 password verifications a second,
 * while argon2's gate allows about 40 a second on two cores (each allowed
 * attempt costs one verification, real or dummy, if the handler follows
 * check() with one): in practice only entries already stale get evicted.
 * One mutex for both maps: it is taken a few times per login, which costs
 * 60 ms of argon2 anyway.
 *
 * DESIGN, request limits. A token bucket per (category, caller): it holds
 * up to `limit` tokens, starts full, refills at limit/60 tokens a second and
 * a request takes one. Tokens are kept in integer units of 1/60000 of a
 * token, so a bucket of limit L gains exactly L units a millisecond: no
 * floating point, no drift. A bucket remembers the limit it was sized for
 * (`count`); when the admin changes a category's limit (an atomic per
 * category), the next check resizes the bucket keeping the tokens used, so
 * a raise helps at once and a cut bites at once. This runs on every request,
 * so the table is split into 16 shards, each with its own mutex and LRU,
 * and a check takes exactly one shard lock. The key is the category byte, a
 * kind byte ('u' user id, 'a' client address: the two can never share a
 * bucket) and the caller, zero-padded; the hash is seeded FNV-1a (ids are
 * ours, addresses are the peer's, neither is chosen freely). Memory is the
 * fixed table: at most max_entries buckets over all categories; an evicted
 * bucket comes back full, which is lenient and only happens once more than
 * 100k (category, caller) pairs are active at once.
 *
 * DESIGN, budgets (auth_rate_spend). The same bucket for amounts rather than
 * requests, the bytes a user uploads: a key whose category byte no category
 * has, the budget given with each call (the live setting), per_minute units
 * a millisecond. One amount larger than the whole budget passes on a full
 * bucket and leaves it owing, so a single big file is never refused forever
 * and the bound over any minute stays one file plus the budget.
 */
#include "parley/auth.h"

#include <assert.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "parley/xalloc.h"

#define NIL UINT32_MAX

/* ---- bounded LRU table ---------------------------------------------------- */

struct slot {
    uint32_t chain;      /* next slot in the same bucket, or NIL */
    uint32_t prev, next; /* use order: prev is older; NIL at the ends */
    uint32_t hash;
    int64_t t;      /* login: time of the last failure; rate: last refill (ms) */
    int64_t tokens; /* rate: what the bucket holds, in 1/RATE_UNIT tokens */
    uint32_t count; /* login: failures; rate: the limit the bucket is sized for */
    unsigned char key[];
};

struct table {
    unsigned char *slots; /* cap slots of `stride` bytes */
    size_t stride, key_size;
    uint32_t cap, used;
    uint32_t *buckets; /* slot index or NIL */
    uint32_t mask;
    uint32_t head, tail; /* least and most recently used */
};

static void table_init(struct table *t, size_t cap, size_t key_size)
{
    if (cap < 1)
        cap = 1;
    if (cap > (1u << 28))
        cap = 1u << 28;
    size_t nb = 1;
    while (nb < cap)
        nb <<= 1;
    t->key_size = key_size;
    t->stride = (sizeof(struct slot) + key_size + alignof(struct slot) - 1) &
                ~(alignof(struct slot) - 1);
    t->cap = (uint32_t)cap;
    t->used = 0;
    t->slots = xcalloc(cap, t->stride);
    t->buckets = xcalloc(nb, sizeof(uint32_t));
    memset(t->buckets, 0xff, nb * sizeof(uint32_t));
    t->mask = (uint32_t)(nb - 1);
    t->head = t->tail = NIL;
}

static void table_deinit(struct table *t)
{
    free(t->slots);
    free(t->buckets);
}

static struct slot *slot_at(const struct table *t, uint32_t i)
{
    return (struct slot *)(void *)(t->slots + (size_t)i * t->stride);
}

static void lru_unlink(struct table *t, uint32_t i)
{
    struct slot *s = slot_at(t, i);
    if (s->prev != NIL)
        slot_at(t, s->prev)->next = s->next;
    else
        t->head = s->next;
    if (s->next != NIL)
        slot_at(t, s->next)->prev = s->prev;
    else
        t->tail = s->prev;
}

static void lru_append(struct table *t, uint32_t i)
{
    struct slot *s = slot_at(t, i);
    s->prev = t->tail;
    s->next = NIL;
    if (t->tail != NIL)
        slot_at(t, t->tail)->next = i;
    else
        t->head = i;
    t->tail = i;
}

/* Marks slot i as the most recently used. */
static void table_touch(struct table *t, uint32_t i)
{
    if (t->tail == i)
        return;
    lru_unlink(t, i);
    lru_append(t, i);
}

/* The slot holding `key` (key_size bytes), or NULL. */
static struct slot *table_find(struct table *t, uint32_t hash, const unsigned char *key,
                               uint32_t *index)
{
    for (uint32_t i = t->buckets[hash & t->mask]; i != NIL;) {
        struct slot *s = slot_at(t, i);
        if (s->hash == hash && memcmp(s->key, key, t->key_size) == 0) {
            *index = i;
            return s;
        }
        i = s->chain;
    }
    return NULL;
}

/* Removes slot i from its hash chain. */
static void chain_unlink(struct table *t, uint32_t i)
{
    uint32_t *link = &t->buckets[slot_at(t, i)->hash & t->mask];
    while (*link != i) {
        assert(*link != NIL);
        link = &slot_at(t, *link)->chain;
    }
    *link = slot_at(t, i)->chain;
}

/* A zeroed slot for `key`, most recently used; evicts the least recently
 * used slot when the table is full. */
static struct slot *table_insert(struct table *t, uint32_t hash, const unsigned char *key,
                                 uint32_t *index)
{
    uint32_t i;
    if (t->used < t->cap) {
        i = t->used++;
    } else {
        i = t->head;
        chain_unlink(t, i);
        lru_unlink(t, i);
    }
    struct slot *s = slot_at(t, i);
    memset(s, 0, t->stride);
    s->hash = hash;
    memcpy(s->key, key, t->key_size);
    s->chain = t->buckets[hash & t->mask];
    t->buckets[hash & t->mask] = i;
    lru_append(t, i);
    *index = i;
    return s;
}

static struct slot *table_get(struct table *t, uint32_t hash, const unsigned char *key)
{
    uint32_t i;
    struct slot *s = table_find(t, hash, key, &i);
    if (!s)
        s = table_insert(t, hash, key, &i);
    else
        table_touch(t, i);
    return s;
}

/* ---- login throttle ------------------------------------------------------- */

#define DIGEST_LEN 16

struct auth_login_limiter {
    pthread_mutex_t mu;
    unsigned char hkey[32]; /* HMAC key of the map keys; set once */
    struct table accounts;  /* guarded by mu */
    struct table ips;       /* guarded by mu */
};

/* What one map says about an attempt. */
struct verdict {
    bool present;
    int retry_after; /* 0: allowed */
};

auth_login_limiter_t *auth_login_limiter_new(size_t max_entries)
{
    if (max_entries == 0)
        max_entries = AUTH_LOGIN_MAX_ENTRIES;
    auth_login_limiter_t *l = xcalloc(1, sizeof(*l));
    if (pthread_mutex_init(&l->mu, NULL) != 0 || gnutls_rnd(GNUTLS_RND_KEY, l->hkey, sizeof(l->hkey)) != 0)
        abort();
    table_init(&l->accounts, max_entries, DIGEST_LEN);
    table_init(&l->ips, max_entries, DIGEST_LEN);
    return l;
}

void auth_login_limiter_free(auth_login_limiter_t *l)
{
    if (!l)
        return;
    table_deinit(&l->accounts);
    table_deinit(&l->ips);
    pthread_mutex_destroy(&l->mu);
    explicit_bzero(l->hkey, sizeof(l->hkey));
    free(l);
}

/* HMAC of `s` (ASCII lower-cased when `fold`) into `d`; false when `s` is
 * NULL or empty, i.e. this map does not apply. */
static bool login_key(const auth_login_limiter_t *l, const char *s, bool fold,
                      unsigned char d[DIGEST_LEN], uint32_t *hash)
{
    if (!s || !*s)
        return false;
    gnutls_hmac_hd_t h;
    if (gnutls_hmac_init(&h, GNUTLS_MAC_SHA256, l->hkey, sizeof(l->hkey)) != 0)
        abort();
    char chunk[64];
    size_t n = 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        chunk[n++] = (fold && c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        if (n == sizeof(chunk)) {
            gnutls_hmac(h, chunk, n);
            n = 0;
        }
    }
    gnutls_hmac(h, chunk, n);
    unsigned char full[32];
    gnutls_hmac_deinit(h, full);
    memcpy(d, full, DIGEST_LEN);
    memcpy(hash, full + DIGEST_LEN, sizeof(*hash));
    return true;
}

/* Seconds to wait after the last failure once `count` failures are on
 * record: 0 below the allowance, then 1, 2, 4 ... up to the cap. */
static int64_t login_delay(uint32_t count, uint32_t free_n)
{
    if (count < free_n)
        return 0;
    uint32_t e = count - free_n;
    if (e >= 9) /* 2^9 = 512 > 300 */
        return AUTH_LOGIN_MAX_DELAY;
    int64_t d = (int64_t)1 << e;
    return d < AUTH_LOGIN_MAX_DELAY ? d : AUTH_LOGIN_MAX_DELAY;
}

static bool expired(const struct slot *s, int64_t now)
{
    return now - s->t >= AUTH_LOGIN_WINDOW;
}

/* REQUIRES: l->mu held. How long an attempt must still wait in one map. */
static int login_wait(struct table *t, const unsigned char *key, uint32_t hash, uint32_t free_n,
                      int64_t now)
{
    uint32_t i;
    struct slot *s = table_find(t, hash, key, &i);
    if (!s || expired(s, now))
        return 0;
    int64_t d = login_delay(s->count, free_n);
    if (d == 0)
        return 0;
    int64_t wait = s->t + d - now;
    if (wait <= 0)
        return 0;
    return (int)(wait < d ? wait : d); /* a clock that went back waits no longer than d */
}

/* REQUIRES: l->mu held. Counts one failure at `now` in one map. */
static void login_count(struct table *t, const unsigned char *key, uint32_t hash, int64_t now)
{
    struct slot *s = table_get(t, hash, key);
    if (expired(s, now))
        s->count = 0;
    if (s->count < UINT32_MAX)
        s->count++;
    s->t = now;
}

int auth_login_check(auth_login_limiter_t *l, const char *account_key, const char *ip, int64_t now,
                     int *retry_after)
{
    unsigned char ak[DIGEST_LEN], ik[DIGEST_LEN];
    uint32_t ah = 0, ih = 0;
    bool use_a = login_key(l, account_key, true, ak, &ah);
    bool use_i = login_key(l, ip, false, ik, &ih);

    pthread_mutex_lock(&l->mu);
    int wa = use_a ? login_wait(&l->accounts, ak, ah, AUTH_LOGIN_FREE_ACCOUNT, now) : 0;
    int wi = use_i ? login_wait(&l->ips, ik, ih, AUTH_LOGIN_FREE_IP, now) : 0;
    if (wa == 0 && wi == 0) {
        if (use_a)
            login_count(&l->accounts, ak, ah, now);
        if (use_i)
            login_count(&l->ips, ik, ih, now);
    }
    pthread_mutex_unlock(&l->mu);

    if (wa == 0 && wi == 0)
        return AUTH_OK;
    if (retry_after)
        *retry_after = wa > wi ? wa : wi;
    return AUTH_ELIMITED;
}

/* REQUIRES: l->mu held. The failure was counted by check() unless the entry
 * is gone (evicted, expired, or check() was not called): count it then.
 * Returns the entry's count of failures now. */
static uint32_t login_failed(struct table *t, const unsigned char *key, uint32_t hash,
                             int64_t now)
{
    uint32_t i;
    struct slot *s = table_find(t, hash, key, &i);
    if (!s || expired(s, now) || s->count == 0) {
        login_count(t, key, hash, now);
        s = table_find(t, hash, key, &i);
        return s ? s->count : 1;
    }
    table_touch(t, i);
    if (now > s->t)
        s->t = now;
    return s->count;
}

bool auth_login_failure(auth_login_limiter_t *l, const char *account_key, const char *ip,
                        int64_t now)
{
    unsigned char ak[DIGEST_LEN], ik[DIGEST_LEN];
    uint32_t ah = 0, ih = 0, count = 0;
    bool use_a = login_key(l, account_key, true, ak, &ah);
    bool use_i = login_key(l, ip, false, ik, &ih);
    pthread_mutex_lock(&l->mu);
    if (use_a)
        count = login_failed(&l->accounts, ak, ah, now);
    if (use_i)
        login_failed(&l->ips, ik, ih, now);
    pthread_mutex_unlock(&l->mu);
    return use_a && count == AUTH_LOGIN_FREE_ACCOUNT;
}

void auth_login_success(auth_login_limiter_t *l, const char *account_key, const char *ip,
                        int64_t now)
{
    (void)now;
    unsigned char ak[DIGEST_LEN], ik[DIGEST_LEN];
    uint32_t ah = 0, ih = 0, i;
    bool use_a = login_key(l, account_key, true, ak, &ah);
    bool use_i = login_key(l, ip, false, ik, &ih);
    pthread_mutex_lock(&l->mu);
    struct slot *s;
    if (use_a && (s = table_find(&l->accounts, ah, ak, &i)) != NULL)
        s->count = 0;
    if (use_i && (s = table_find(&l->ips, ih, ik, &i)) != NULL && s->count > 0)
        s->count--;
    pthread_mutex_unlock(&l->mu);
}

/* ---- request rate limits by category ------------------------------------- */

#define RATE_SHARDS 16
/* A token is `window_ms` units and a bucket of limit L gains L units a
 * millisecond: L tokens a window (a minute, unless made with
 * auth_rate_limiter_new_window), in integers. */
#define RATE_KEY_SIZE (2 + AUTH_RATE_CALLER_MAX + 1)

struct rate_shard {
    alignas(64) pthread_mutex_t mu;
    struct table t; /* guarded by mu */
};

struct auth_rate_limiter {
    atomic_int limits[AUTH_RATE_CATEGORIES];
    int64_t window_ms; /* set once */
    uint32_t seed; /* set once */
    struct rate_shard shards[RATE_SHARDS];
};

static const char *const category_names[AUTH_RATE_CATEGORIES] = {
    [AUTH_RATE_DEFAULT] = "default", [AUTH_RATE_AUTH] = "auth",
    [AUTH_RATE_MESSAGES] = "messages", [AUTH_RATE_UPLOADS] = "uploads",
    [AUTH_RATE_SEARCH] = "search",   [AUTH_RATE_ADMIN] = "admin",
};

const char *auth_rate_category_name(int category)
{
    return category >= 0 && category < AUTH_RATE_CATEGORIES ? category_names[category] : NULL;
}

int auth_rate_category_from_name(const char *name)
{
    for (int c = 0; name && c < AUTH_RATE_CATEGORIES; c++)
        if (strcmp(category_names[c], name) == 0)
            return c;
    return -1;
}

static int clamp_limit(int limit)
{
    return limit <= 0 ? 0 : limit > AUTH_RATE_LIMIT_MAX ? AUTH_RATE_LIMIT_MAX : limit;
}

auth_rate_limiter_t *auth_rate_limiter_new(const int limits[AUTH_RATE_CATEGORIES],
                                           size_t max_entries)
{
    return auth_rate_limiter_new_window(limits, max_entries, AUTH_RATE_WINDOW);
}

auth_rate_limiter_t *auth_rate_limiter_new_window(const int limits[AUTH_RATE_CATEGORIES],
                                                  size_t max_entries, unsigned window_seconds)
{
    if (max_entries == 0)
        max_entries = AUTH_RATE_MAX_ENTRIES;
    auth_rate_limiter_t *l = aligned_alloc(64, (sizeof(*l) + 63) & ~(size_t)63);
    if (!l)
        abort();
    memset(l, 0, sizeof(*l));
    l->window_ms = (int64_t)(window_seconds ? window_seconds : AUTH_RATE_WINDOW) * 1000;
    for (int c = 0; c < AUTH_RATE_CATEGORIES; c++)
        atomic_init(&l->limits[c], clamp_limit(limits ? limits[c] : 0));
    if (gnutls_rnd(GNUTLS_RND_NONCE, &l->seed, sizeof(l->seed)) != 0)
        abort();
    size_t per_shard = (max_entries + RATE_SHARDS - 1) / RATE_SHARDS;
    for (int i = 0; i < RATE_SHARDS; i++) {
        if (pthread_mutex_init(&l->shards[i].mu, NULL) != 0)
            abort();
        table_init(&l->shards[i].t, per_shard, RATE_KEY_SIZE);
    }
    return l;
}

void auth_rate_limiter_free(auth_rate_limiter_t *l)
{
    if (!l)
        return;
    for (int i = 0; i < RATE_SHARDS; i++) {
        table_deinit(&l->shards[i].t);
        pthread_mutex_destroy(&l->shards[i].mu);
    }
    free(l);
}

int auth_rate_set_category_limit(auth_rate_limiter_t *l, int category, int per_minute)
{
    if (!l || category < 0 || category >= AUTH_RATE_CATEGORIES || per_minute < 0 ||
        per_minute > AUTH_RATE_LIMIT_MAX)
        return AUTH_EINVALID;
    atomic_store(&l->limits[category], per_minute);
    return AUTH_OK;
}

int auth_rate_category_limit(const auth_rate_limiter_t *l, int category)
{
    if (!l || category < 0 || category >= AUTH_RATE_CATEGORIES)
        return -1;
    return atomic_load(&((auth_rate_limiter_t *)l)->limits[category]);
}

/* Seeded FNV-1a with a final avalanche (murmur3's fmix32), so both the
 * high bits (shard) and the low bits (bucket) are mixed. */
static uint32_t rate_hash(uint32_t seed, const unsigned char *key, size_t len)
{
    uint32_t h = 2166136261u ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= key[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* a / b rounded up, for a >= 0 and b > 0. */
static int64_t div_up(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* REQUIRES: the shard's mu held. Brings the bucket in `s` to `now_ms` at
 * `limit`: a new slot (count 0) starts full; a bucket sized for another
 * limit keeps the tokens it has used (cut to the new size); then the time
 * since the last check refills it. */
static void bucket_update(struct slot *s, int limit, int64_t now_ms, int64_t window_ms)
{
    int64_t cap = (int64_t)limit * window_ms;
    if (s->count == 0) {
        s->tokens = cap;
        s->t = now_ms;
    } else if (s->count != (uint32_t)limit) {
        s->tokens += cap - (int64_t)s->count * window_ms;
        if (s->tokens < 0)
            s->tokens = 0;
    }
    s->count = (uint32_t)limit;
    if (now_ms > s->t) { /* a clock that went back refills nothing */
        int64_t elapsed = now_ms - s->t;
        s->tokens += (elapsed < window_ms ? elapsed : window_ms) * limit;
        s->t = now_ms;
    }
    if (s->tokens > cap)
        s->tokens = cap;
}

int auth_rate_check(auth_rate_limiter_t *l, int category, const char *user_id,
                    const char *address, int64_t now_ms, auth_rate_info_t *out)
{
    auth_rate_info_t info = {0};
    if (out)
        *out = info;
    if (category < 0 || category >= AUTH_RATE_CATEGORIES)
        return AUTH_OK;
    int limit = atomic_load(&l->limits[category]);
    bool by_user = user_id && *user_id;
    const char *caller = by_user ? user_id : address;
    if (limit <= 0 || !caller || !*caller)
        return AUTH_OK;

    /* The key: category, kind of caller, then the caller, zero-padded. */
    unsigned char key[RATE_KEY_SIZE] = {(unsigned char)category, by_user ? 'u' : 'a'};
    size_t len = strnlen(caller, AUTH_RATE_CALLER_MAX);
    memcpy(key + 2, caller, len);
    uint32_t hash = rate_hash(l->seed, key, 2 + len);
    struct rate_shard *sh = &l->shards[hash >> 28];

    pthread_mutex_lock(&sh->mu);
    struct slot *s = table_get(&sh->t, hash, key);
    int64_t unit = l->window_ms;
    bucket_update(s, limit, now_ms, unit);
    bool limited = s->tokens < unit;
    if (!limited)
        s->tokens -= unit;
    int64_t tokens = s->tokens;
    pthread_mutex_unlock(&sh->mu);

    int64_t cap = (int64_t)limit * unit;
    info.enabled = true;
    info.limit = limit;
    info.remaining = (int)(tokens / unit);
    info.reset = div_up(now_ms + div_up(cap - tokens, limit), 1000);
    if (limited) {
        int64_t wait_s = div_up(div_up(unit - tokens, limit), 1000);
        info.retry_after = wait_s < 1 ? 1 : (int)wait_s;
    }
    if (out)
        *out = info;
    return limited ? AUTH_ELIMITED : AUTH_OK;
}

int auth_rate_spend(auth_rate_limiter_t *l, const char *user_id, int64_t amount,
                    int64_t per_minute, int64_t now_ms, int *retry_after)
{
    if (!l || per_minute <= 0 || amount <= 0 || !user_id || !*user_id)
        return AUTH_OK;
    if (per_minute > AUTH_RATE_SPEND_MAX)
        per_minute = AUTH_RATE_SPEND_MAX;
    if (amount > AUTH_RATE_SPEND_MAX)
        amount = AUTH_RATE_SPEND_MAX;
    /* A category byte no category has, and kind 'b': never a request bucket. */
    unsigned char key[RATE_KEY_SIZE] = {(unsigned char)AUTH_RATE_CATEGORIES, 'b'};
    size_t len = strnlen(user_id, AUTH_RATE_CALLER_MAX);
    memcpy(key + 2, user_id, len);
    uint32_t hash = rate_hash(l->seed, key, 2 + len);
    struct rate_shard *sh = &l->shards[hash >> 28];
    /* Units as auth_rate_check's with a one-minute window: per_minute units
     * a millisecond (2^40 x 60000 fits an int64 with room to spare). */
    const int64_t minute_ms = 60000;
    int64_t cap = per_minute * minute_ms, need = amount * minute_ms;

    pthread_mutex_lock(&sh->mu);
    struct slot *s = table_get(&sh->t, hash, key);
    if (s->count == 0) {
        s->tokens = cap;
        s->t = now_ms;
        s->count = 1;
    }
    if (now_ms > s->t) {
        int64_t elapsed = now_ms - s->t;
        s->tokens += (elapsed < minute_ms ? elapsed : minute_ms) * per_minute;
        s->t = now_ms;
    }
    if (s->tokens > cap)
        s->tokens = cap;
    bool ok = s->tokens >= need || s->tokens == cap;
    int64_t wanted = (need < cap ? need : cap) - s->tokens; /* units still missing */
    if (ok)
        s->tokens -= need;
    pthread_mutex_unlock(&sh->mu);

    if (ok)
        return AUTH_OK;
    if (retry_after) {
        int64_t wait_s = div_up(div_up(wanted, per_minute), 1000);
        *retry_after = wait_s < 1 ? 1 : (int)wait_s;
    }
    return AUTH_ELIMITED;
}
