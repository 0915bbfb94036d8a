/*
 * IP addresses, networks and sets of networks (include/parley/ipnet.h).
 *
 * Text goes through inet_pton/inet_ntop only, so what counts as an address
 * is the C library's (dotted quads without leading zeros, RFC 4291 IPv6),
 * and a prefix is 1-3 decimal digits. IPv4-mapped IPv6 is folded into IPv4
 * here, once, so nothing else has to think about it.
 *
 * The set answers "is this address in any of my networks" without a scan:
 * a network is a key (family, prefix length, masked bytes) in one open
 * addressing hash table, and each family keeps the list of prefix lengths
 * in use, longest first. A lookup masks the address to each of those
 * lengths and probes the table: O(distinct prefix lengths), at most 33 or
 * 129 probes, whatever the number of networks. The table is linear-probed,
 * at most half full, with backward-shift deletion (no tombstones), so a
 * miss ends at the first empty slot. Writers (the store's apply, a change
 * of the trusted proxies) are rare and take the write lock; readers (every
 * request) take the read lock, and an empty set is answered from an atomic
 * count without any lock, which keeps the common case (no blocks) at the
 * cost of one load.
 */
#include "parley/ipnet.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/xalloc.h"

int ipnet_bits(uint8_t family)
{
    return family == IPNET_V4 ? 32 : 128;
}

/* Clears the bits of addr past `prefix`. */
static void mask_bytes(uint8_t addr[16], int prefix)
{
    for (int i = 0; i < 16; i++) {
        int keep = prefix - i * 8;
        if (keep >= 8)
            continue;
        addr[i] = keep <= 0 ? 0 : (uint8_t)(addr[i] & (0xffu << (8 - keep)));
    }
}

static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Folds an IPv4-mapped IPv6 network of prefix >= 96 into IPv4. */
static void fold_mapped(ipnet_t *n)
{
    if (n->family != IPNET_V6 || n->prefix < 96 || memcmp(n->addr, mapped_prefix, 12) != 0)
        return;
    uint8_t v4[4];
    memcpy(v4, n->addr + 12, 4);
    memset(n->addr, 0, sizeof(n->addr));
    memcpy(n->addr, v4, 4);
    n->family = IPNET_V4;
    n->prefix = (uint8_t)(n->prefix - 96);
}

/* An address as written (not folded), prefix full. */
static int parse_raw(const char *text, size_t len, ipnet_t *out)
{
    char buf[INET6_ADDRSTRLEN];
    if (len == 0 || len >= sizeof(buf) || memchr(text, '\0', len) != NULL)
        return IPNET_E_SYNTAX;
    memcpy(buf, text, len);
    buf[len] = '\0';
    ipnet_t n;
    memset(&n, 0, sizeof(n));
    if (inet_pton(AF_INET, buf, n.addr) == 1) {
        n.family = IPNET_V4;
        n.prefix = 32;
    } else if (inet_pton(AF_INET6, buf, n.addr) == 1) {
        n.family = IPNET_V6;
        n.prefix = 128;
    } else {
        return IPNET_E_SYNTAX;
    }
    *out = n;
    return 0;
}

int ipnet_parse_addr(const char *text, size_t len, ipnet_t *out)
{
    ipnet_t n;
    if (parse_raw(text, len, &n) != 0)
        return IPNET_E_SYNTAX;
    fold_mapped(&n);
    *out = n;
    return 0;
}

int ipnet_parse(const char *text, bool strict, ipnet_t *out)
{
    const char *slash = strchr(text, '/');
    ipnet_t n;
    if (parse_raw(text, slash ? (size_t)(slash - text) : strlen(text), &n) != 0)
        return IPNET_E_SYNTAX;
    if (slash != NULL) {
        /* The prefix counts bits of the address as written (a mapped
         * network is folded after masking). */
        const char *p = slash + 1;
        size_t digits = strspn(p, "0123456789");
        if (digits == 0 || digits > 3 || p[digits] != '\0' || (digits > 1 && p[0] == '0'))
            return IPNET_E_SYNTAX;
        int prefix = atoi(p);
        if (prefix > ipnet_bits(n.family))
            return IPNET_E_PREFIX;
        uint8_t masked[16];
        memcpy(masked, n.addr, sizeof(masked));
        mask_bytes(masked, prefix);
        if (strict && memcmp(masked, n.addr, sizeof(masked)) != 0)
            return IPNET_E_HOST_BITS;
        memcpy(n.addr, masked, sizeof(masked));
        n.prefix = (uint8_t)prefix;
    }
    fold_mapped(&n);
    *out = n;
    return 0;
}

bool ipnet_from_sockaddr(const struct sockaddr *sa, ipnet_t *out)
{
    ipnet_t n;
    memset(&n, 0, sizeof(n));
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        memcpy(n.addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        n.family = IPNET_V4;
        n.prefix = 32;
    } else if (sa->sa_family == AF_INET6) {
        memcpy(n.addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        n.family = IPNET_V6;
        n.prefix = 128;
        fold_mapped(&n);
    } else {
        return false;
    }
    *out = n;
    return true;
}

void ipnet_format(const ipnet_t *net, char out[IPNET_TEXT_MAX])
{
    char addr[INET6_ADDRSTRLEN] = "?";
    inet_ntop(net->family == IPNET_V4 ? AF_INET : AF_INET6, net->addr, addr, sizeof(addr));
    if (net->prefix == ipnet_bits(net->family))
        snprintf(out, IPNET_TEXT_MAX, "%s", addr);
    else
        snprintf(out, IPNET_TEXT_MAX, "%s/%u", addr, net->prefix);
}

bool ipnet_contains(const ipnet_t *net, const ipnet_t *inner)
{
    if (net->family != inner->family || inner->prefix < net->prefix)
        return false;
    uint8_t a[16];
    memcpy(a, inner->addr, sizeof(a));
    mask_bytes(a, net->prefix);
    return memcmp(a, net->addr, sizeof(a)) == 0;
}

int ipnet_split_list(const char *text, char (*out)[IPNET_TEXT_MAX], size_t max)
{
    size_t n = 0;
    const char *p = text;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0')
        return 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        const char *a = p, *b = p + len;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b == a || (size_t)(b - a) >= IPNET_TEXT_MAX || n == max)
            return -1;
        memcpy(out[n], a, (size_t)(b - a));
        out[n][b - a] = '\0';
        n++;
        if (p[len] == '\0')
            return (int)n;
        p += len + 1;
    }
}

/* ---- sets ------------------------------------------------------------------ */

/* A network as two host-order halves of its big-endian bytes (an IPv4
 * address in the top 32 bits of hi), so masking is two shifts. */
typedef struct key {
    uint64_t hi, lo;
    uint8_t fi;  /* 0: IPv4, 1: IPv6 */
    uint8_t len; /* prefix length */
} netkey_t;

typedef struct slot {
    uint64_t hi, lo;
    int64_t expires_at;
    uint8_t fi, len;
    bool used;
} slot_t;

/* Per family and prefix length in use, a filter of FILTER_BITS bits (set
 * where some network of that length hashes), so most lengths are ruled out
 * by one bit test in memory that stays in the cache, and the table (whose
 * slots are cache misses) is probed only on a filter hit: with 10,000
 * networks spread over every length, this made lookups 4-8 times faster
 * (docs/benchmarks.md). The counts behind the bits let a removal clear a
 * bit; a count that would overflow stays put (a false positive for good,
 * never a miss). Allocated for the lengths in use only. */
#define FILTER_BITS 4096
#define FILTER_WORDS (FILTER_BITS / 64)

typedef uint64_t filter_bits_t[FILTER_WORDS];

struct ipnet_set {
    pthread_rwlock_t lock;
    atomic_size_t count;      /* entries; written under lock, read without */
    slot_t *slots;            /* guarded by lock; cap slots, at most half used */
    size_t cap;               /* a power of two */
    uint32_t per_len[2][129]; /* guarded by lock: entries per family and prefix */
    uint8_t lens[2][129];     /* guarded by lock: the prefixes in use, longest first */
    uint8_t n_lens[2];
    /* guarded by lock: the filters of every length, one block (allocated
     * with the first entry), and the counts of the lengths in use */
    filter_bits_t (*bits)[129];
    uint16_t *counts[2][129];
};

#define INITIAL_CAP 16

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static netkey_t key_of(const ipnet_t *n)
{
    netkey_t k = {.fi = n->family == IPNET_V4 ? 0 : 1, .len = n->prefix};
    k.hi = load_be64(n->addr);
    k.lo = load_be64(n->addr + 8);
    return k;
}

static uint64_t mask64(uint64_t x, int bits)
{
    return bits <= 0 ? 0 : bits >= 64 ? x : x & ~(UINT64_MAX >> bits);
}

/* k's address cut to `len` bits. */
static netkey_t masked(const netkey_t *k, uint8_t len)
{
    netkey_t m = {.fi = k->fi, .len = len};
    m.hi = mask64(k->hi, len);
    m.lo = mask64(k->lo, len - 64);
    return m;
}

static uint64_t hash_key(const netkey_t *k)
{
    uint64_t h = k->hi * 0x9e3779b97f4a7c15ull ^ k->lo * 0xc2b2ae3d27d4eb4full ^
                 ((uint64_t)k->fi << 8 | k->len) * 0x165667b19e3779f9ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

static bool slot_is(const slot_t *s, const netkey_t *k)
{
    return s->hi == k->hi && s->lo == k->lo && s->len == k->len && s->fi == k->fi;
}

/* The slot of key (hash h), or of the empty slot where it would go.
 * REQUIRES: lock held. */
static size_t find_slot(const ipnet_set_t *set, const netkey_t *k, uint64_t h)
{
    size_t mask = set->cap - 1;
    size_t i = (size_t)(h >> 10) & mask;
    while (set->slots[i].used && !slot_is(&set->slots[i], k))
        i = (i + 1) & mask;
    return i;
}

static size_t home_of(const ipnet_set_t *set, const slot_t *s)
{
    netkey_t k = {.hi = s->hi, .lo = s->lo, .fi = s->fi, .len = s->len};
    return (size_t)(hash_key(&k) >> 10) & (set->cap - 1);
}

ipnet_set_t *ipnet_set_new(void)
{
    ipnet_set_t *set = xcalloc(1, sizeof(*set));
    /* Writer-preferring: every request reads, and glibc's default would let
     * a steady stream of readers hold off an admin's block indefinitely. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&set->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    set->cap = INITIAL_CAP;
    set->slots = xcalloc(set->cap, sizeof(slot_t));
    return set;
}

static void free_filters(ipnet_set_t *set)
{
    for (int f = 0; f < 2; f++)
        for (int l = 0; l < 129; l++) {
            free(set->counts[f][l]);
            set->counts[f][l] = NULL;
        }
}

void ipnet_set_free(ipnet_set_t *set)
{
    if (set == NULL)
        return;
    pthread_rwlock_destroy(&set->lock);
    free_filters(set);
    free(set->bits);
    free(set->slots);
    free(set);
}

/* REQUIRES: write lock held. */
static void rebuild_lens(ipnet_set_t *set, int fi)
{
    int bits = fi == 0 ? 32 : 128;
    uint8_t n = 0;
    for (int l = bits; l >= 0; l--)
        if (set->per_len[fi][l])
            set->lens[fi][n++] = (uint8_t)l;
    set->n_lens[fi] = n;
}

/* Counts an entry of key k (hash h) in or out. REQUIRES: write lock held. */
static void count_entry(ipnet_set_t *set, const netkey_t *k, uint64_t h, int delta)
{
    uint32_t *per = &set->per_len[k->fi][k->len];
    uint16_t **counts = &set->counts[k->fi][k->len];
    if (set->bits == NULL)
        set->bits = xcalloc(2, sizeof(*set->bits));
    if (*counts == NULL)
        *counts = xcalloc(FILTER_BITS, sizeof(uint16_t));
    size_t bit = (size_t)(h & (FILTER_BITS - 1));
    uint16_t *c = &(*counts)[bit];
    if (*c != UINT16_MAX)
        *c = (uint16_t)(*c + delta);
    uint64_t *word = &set->bits[k->fi][k->len][bit / 64];
    if (*c)
        *word |= 1ull << (bit % 64);
    else
        *word &= ~(1ull << (bit % 64));
    uint32_t before = *per;
    *per = (uint32_t)((int64_t)before + delta);
    if ((before == 0) != (*per == 0))
        rebuild_lens(set, k->fi);
    if (*per == 0) {
        free(*counts);
        *counts = NULL;
    }
}

/* REQUIRES: write lock held. */
static void grow(ipnet_set_t *set)
{
    slot_t *old = set->slots;
    size_t old_cap = set->cap;
    set->cap *= 2;
    set->slots = xcalloc(set->cap, sizeof(slot_t));
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].used)
            continue;
        size_t j = home_of(set, &old[i]);
        while (set->slots[j].used)
            j = (j + 1) & (set->cap - 1);
        set->slots[j] = old[i];
    }
    free(old);
}

/* REQUIRES: write lock held. */
static void put_locked(ipnet_set_t *set, const ipnet_t *net, int64_t expires_at)
{
    netkey_t k = key_of(net);
    uint64_t h = hash_key(&k);
    size_t i = find_slot(set, &k, h);
    if (set->slots[i].used) {
        set->slots[i].expires_at = expires_at;
        return;
    }
    size_t n = atomic_load(&set->count);
    if ((n + 1) * 2 > set->cap) {
        grow(set);
        i = find_slot(set, &k, h);
    }
    set->slots[i] = (slot_t){.hi = k.hi, .lo = k.lo, .fi = k.fi, .len = k.len, .used = true,
                             .expires_at = expires_at};
    count_entry(set, &k, h, +1);
    atomic_store(&set->count, n + 1);
}

void ipnet_set_put(ipnet_set_t *set, const ipnet_t *net, int64_t expires_at)
{
    pthread_rwlock_wrlock(&set->lock);
    put_locked(set, net, expires_at);
    pthread_rwlock_unlock(&set->lock);
}

bool ipnet_set_remove(ipnet_set_t *set, const ipnet_t *net)
{
    netkey_t k = key_of(net);
    uint64_t h = hash_key(&k);
    pthread_rwlock_wrlock(&set->lock);
    size_t i = find_slot(set, &k, h);
    bool found = set->slots[i].used;
    if (found) {
        set->slots[i].used = false;
        /* Backward shift: move later entries of the probe run into the
         * hole unless their home slot lies cyclically in (i, j]. */
        size_t mask = set->cap - 1;
        for (size_t j = (i + 1) & mask; set->slots[j].used; j = (j + 1) & mask) {
            size_t home = home_of(set, &set->slots[j]);
            bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (stays)
                continue;
            set->slots[i] = set->slots[j];
            set->slots[j].used = false;
            i = j;
        }
        count_entry(set, &k, h, -1);
        atomic_store(&set->count, atomic_load(&set->count) - 1);
    }
    pthread_rwlock_unlock(&set->lock);
    return found;
}

/* REQUIRES: write lock held. */
static void clear_locked(ipnet_set_t *set)
{
    memset(set->slots, 0, set->cap * sizeof(slot_t));
    memset(set->per_len, 0, sizeof(set->per_len));
    memset(set->n_lens, 0, sizeof(set->n_lens));
    if (set->bits)
        memset(set->bits, 0, 2 * sizeof(*set->bits));
    free_filters(set);
    atomic_store(&set->count, 0);
}

void ipnet_set_clear(ipnet_set_t *set)
{
    pthread_rwlock_wrlock(&set->lock);
    clear_locked(set);
    pthread_rwlock_unlock(&set->lock);
}

void ipnet_set_replace(ipnet_set_t *set, const ipnet_t *nets, size_t n)
{
    pthread_rwlock_wrlock(&set->lock);
    clear_locked(set);
    for (size_t i = 0; i < n; i++)
        put_locked(set, &nets[i], 0);
    pthread_rwlock_unlock(&set->lock);
}

size_t ipnet_set_count(const ipnet_set_t *set)
{
    return atomic_load(&((ipnet_set_t *)set)->count);
}

bool ipnet_set_match(ipnet_set_t *set, const ipnet_t *addr, int64_t now_ms, ipnet_t *hit,
                     int64_t *expires_at)
{
    if (atomic_load_explicit(&set->count, memory_order_acquire) == 0)
        return false;
    netkey_t a = key_of(addr);
    bool found = false;
    pthread_rwlock_rdlock(&set->lock);
    for (uint8_t i = 0; i < set->n_lens[a.fi] && !found; i++) {
        uint8_t len = set->lens[a.fi][i];
        netkey_t k = masked(&a, len);
        uint64_t h = hash_key(&k);
        size_t bit = (size_t)(h & (FILTER_BITS - 1));
        if (!(set->bits[a.fi][len][bit / 64] & (1ull << (bit % 64))))
            continue;
        const slot_t *sl = &set->slots[find_slot(set, &k, h)];
        if (sl->used && (sl->expires_at == 0 || sl->expires_at > now_ms)) {
            found = true;
            if (hit) {
                *hit = *addr;
                hit->prefix = len;
                mask_bytes(hit->addr, len);
            }
            if (expires_at)
                *expires_at = sl->expires_at;
        }
    }
    pthread_rwlock_unlock(&set->lock);
    return found;
}
