/*
 * Who has been active, and when: the dashboard's "active users" (in the
 * last 24 hours / 7 days, and per minute, hour and day in the time series).
 *
 * Kept in memory only, like online.c: an account is active at a time when
 * an authenticated request of it (a token or an API key) reached the
 * router then (src/http/authenticate.c notes it). At start the table is
 * seeded from the store with each account's last login and last seen (the
 * only activity the log keeps), so after a restart the past is known only
 * through each account's most recent one; every request from then on
 * counts in full.
 *
 * Per account: the time of its latest activity and, for each level of the
 * series, the bucket it was last counted in; a request counts the account
 * once in a bucket by moving that mark forward, so "distinct users per
 * bucket" costs O(1) per request and nothing per query beyond reading the
 * series (O(log n + buckets)). Counting "active since" is O(accounts seen).
 *
 * The table is an open-addressing hash of the user ids split in 16
 * stripes, each under its own mutex (a leaf but for the series' own
 * lock, which is taken under it); a request takes one stripe for a probe
 * and a compare.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/access.h"
#include "parley/xalloc.h"

#define STRIPES 16

typedef struct activity_entry {
    char user_id[STORE_ID_MAX]; /* "" = empty slot */
    int64_t last_ms;
    int64_t mark[SERIES_LEVELS]; /* the bucket it was last counted in */
} activity_entry_t;

typedef struct stripe {
    pthread_mutex_t mu;
    activity_entry_t *slots; /* guarded by mu; cap a power of two (or 0) */
    size_t cap, n;
} stripe_t;

static stripe_t stripes[STRIPES];
static series_t *active_series;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&stripes[i].mu, NULL);
    active_series = series_new();
}

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot of id, or the empty one where it goes. REQUIRES: mu held, cap > 0. */
static activity_entry_t *probe(stripe_t *st, const char *id, uint64_t h)
{
    size_t mask = st->cap - 1;
    for (size_t i = (h >> 4) & mask;; i = (i + 1) & mask) {
        activity_entry_t *e = &st->slots[i];
        if (e->user_id[0] == '\0' || strcmp(e->user_id, id) == 0)
            return e;
    }
}

/* Doubles the table when it is half full. REQUIRES: mu held. */
static void grow(stripe_t *st)
{
    if (st->cap && st->n * 2 < st->cap)
        return;
    stripe_t bigger = {.cap = st->cap ? st->cap * 2 : 64};
    bigger.slots = xcalloc(bigger.cap, sizeof(*bigger.slots));
    for (size_t i = 0; i < st->cap; i++)
        if (st->slots[i].user_id[0])
            *probe(&bigger, st->slots[i].user_id, hash_id(st->slots[i].user_id)) = st->slots[i];
    free(st->slots);
    st->slots = bigger.slots;
    st->cap = bigger.cap;
}

void activity_note(const char *user_id, int64_t t_ms)
{
    if (user_id == NULL || user_id[0] == '\0' || strlen(user_id) >= STORE_ID_MAX || t_ms <= 0)
        return;
    pthread_once(&once, init_once);
    uint64_t h = hash_id(user_id);
    stripe_t *st = &stripes[h % STRIPES];
    pthread_mutex_lock(&st->mu);
    grow(st);
    activity_entry_t *e = probe(st, user_id, h);
    if (e->user_id[0] == '\0') {
        snprintf(e->user_id, sizeof(e->user_id), "%s", user_id);
        for (int l = 0; l < SERIES_LEVELS; l++)
            e->mark[l] = INT64_MIN;
        st->n++;
    }
    if (t_ms > e->last_ms)
        e->last_ms = t_ms;
    /* Marks only move forward: an older time (only the seed gives one)
     * is not counted again in a bucket already passed. */
    for (int l = 0; l < SERIES_LEVELS; l++) {
        int64_t b = series_bucket_of((enum series_level)l, t_ms);
        if (b > e->mark[l]) {
            e->mark[l] = b;
            series_add_level(active_series, (enum series_level)l, t_ms, 1);
        }
    }
    pthread_mutex_unlock(&st->mu);
}

typedef struct seed_entry {
    char id[STORE_ID_MAX];
    int64_t at;
} seed_entry_t;

typedef struct seed {
    seed_entry_t *v;
    size_t n, cap;
} seed_t;

/* Runs under a shard's read lock: copies two fields, keeps no user. */
static bool collect_seed(void *ctx, const store_user_t *u)
{
    seed_t *sd = ctx;
    int64_t at = u->last_login > u->last_seen ? u->last_login : u->last_seen;
    if (at <= 0 || u->deleted_at)
        return false;
    if (sd->n == sd->cap) {
        sd->cap = sd->cap ? sd->cap * 2 : 64;
        sd->v = xrealloc(sd->v, sd->cap * sizeof(*sd->v));
    }
    memcpy(sd->v[sd->n].id, u->id, STORE_ID_MAX);
    sd->v[sd->n++].at = at;
    return false;
}

static int by_time(const void *a, const void *b)
{
    int64_t x = ((const seed_entry_t *)a)->at, y = ((const seed_entry_t *)b)->at;
    return (x > y) - (x < y);
}

void activity_seed(store_t *s)
{
    seed_t sd = {0};
    store_user_t *none;
    store_user_select(s, collect_seed, &sd, &none);
    if (sd.n > 1) /* oldest first: every series bucket then counts once */
        qsort(sd.v, sd.n, sizeof(*sd.v), by_time);
    for (size_t i = 0; i < sd.n; i++)
        activity_note(sd.v[i].id, sd.v[i].at);
    free(sd.v);
}

size_t activity_active_since(int64_t since_ms)
{
    pthread_once(&once, init_once);
    size_t n = 0;
    for (int i = 0; i < STRIPES; i++) {
        stripe_t *st = &stripes[i];
        pthread_mutex_lock(&st->mu);
        for (size_t j = 0; j < st->cap; j++)
            if (st->slots[j].user_id[0] && st->slots[j].last_ms >= since_ms)
                n++;
        pthread_mutex_unlock(&st->mu);
    }
    return n;
}

void activity_series_read(enum series_level level, int64_t first, size_t n, int64_t *out)
{
    pthread_once(&once, init_once);
    series_read(active_series, level, first, n, out);
}
