/*
 * Per-user budgets of the real-time service: connects (WebSockets and event
 * streams opened) and events published on a user's behalf (typing). A token
 * bucket per key: `per_minute` tokens refilled evenly over a minute, holding
 * at most `per_minute` (a burst of a minute's worth, then the steady rate).
 *
 * The bucket arithmetic is a pure function (unit-tested); the table keyed by
 * user id is a sorted array under one mutex, taken once per connect or
 * typing event. It never holds more than BUDGET_MAX_KEYS keys: when full,
 * the buckets that refilled completely (they carry no state) are dropped,
 * and if none did the oldest half goes (a forgiven debt, never a refusal of
 * someone new).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "parley/xalloc.h"

#define BUDGET_MAX_KEYS 65536

bool realtime__bucket_take(rt_bucket_t *b, unsigned per_minute, int64_t now_ns)
{
    if (per_minute == 0)
        return true;
    double cap = per_minute;
    if (b->at_ns == 0) {
        b->tokens = cap;
    } else if (now_ns > b->at_ns) {
        b->tokens += (double)(now_ns - b->at_ns) / 60e9 * cap;
        if (b->tokens > cap)
            b->tokens = cap;
    }
    b->at_ns = now_ns;
    if (b->tokens < 1)
        return false;
    b->tokens -= 1;
    return true;
}

typedef struct budget_entry {
    char key[STORE_ID_MAX];
    rt_bucket_t bucket;
} budget_entry_t;

struct rt_budgets {
    pthread_mutex_t mu;
    budget_entry_t *v; /* sorted by key */
    size_t n, cap;
};

rt_budgets_t *realtime__budgets_new(void)
{
    rt_budgets_t *b = xcalloc(1, sizeof(*b));
    pthread_mutex_init(&b->mu, NULL);
    return b;
}

void realtime__budgets_free(rt_budgets_t *b)
{
    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b->v);
    free(b);
}

static int by_age(const void *x, const void *y)
{
    const budget_entry_t *a = x, *b = y;
    return (a->bucket.at_ns > b->bucket.at_ns) - (a->bucket.at_ns < b->bucket.at_ns);
}

static int by_key(const void *x, const void *y)
{
    return strcmp(((const budget_entry_t *)x)->key, ((const budget_entry_t *)y)->key);
}

/* Makes room for one more key. REQUIRES: mu held. */
static void budgets_prune(rt_budgets_t *b, unsigned per_minute, int64_t now_ns)
{
    size_t kept = 0;
    for (size_t i = 0; i < b->n; i++) {
        rt_bucket_t probe = b->v[i].bucket;
        double refill = (double)(now_ns - probe.at_ns) / 60e9 * per_minute;
        if (probe.tokens + refill < per_minute)
            b->v[kept++] = b->v[i];
    }
    b->n = kept;
    if (b->n >= BUDGET_MAX_KEYS) {
        qsort(b->v, b->n, sizeof(*b->v), by_age);
        memmove(b->v, b->v + b->n / 2, (b->n - b->n / 2) * sizeof(*b->v));
        b->n -= b->n / 2;
        qsort(b->v, b->n, sizeof(*b->v), by_key);
    }
}

bool realtime__budget_take(rt_budgets_t *b, const char *key, unsigned per_minute,
                           int64_t now_ns)
{
    if (per_minute == 0 || b == NULL)
        return true;
    pthread_mutex_lock(&b->mu);
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(b->v[mid].key, key);
        if (cmp == 0) {
            lo = mid;
            goto found;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (b->n >= BUDGET_MAX_KEYS) {
        budgets_prune(b, per_minute, now_ns);
        pthread_mutex_unlock(&b->mu);
        return realtime__budget_take(b, key, per_minute, now_ns);
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
    }
    memmove(&b->v[lo + 1], &b->v[lo], (b->n - lo) * sizeof(*b->v));
    memset(&b->v[lo], 0, sizeof(b->v[lo]));
    snprintf(b->v[lo].key, sizeof(b->v[lo].key), "%s", key);
    b->n++;
found:;
    bool ok = realtime__bucket_take(&b->v[lo].bucket, per_minute, now_ns);
    pthread_mutex_unlock(&b->mu);
    return ok;
}
