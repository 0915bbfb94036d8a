/*
 * Counts per minute, hour and day (include/parley/series.h).
 *
 * Each level is an array of (bucket number, count) sorted by bucket: the
 * events a chart counts (posts, sign-ups, uploads, logins) nearly always
 * come in time order, so an add is almost always at the end or on the last
 * bucket (O(1)), and an add into the past (a record replayed out of order,
 * a time series built from older data) is a binary search and a memmove.
 * Reading n buckets is one binary search and a walk of at most n entries,
 * so a 30-day hourly chart is 720 steps however many messages there are.
 * Memory is 16 bytes per non-empty bucket and level: a year of minutes is
 * 8 MiB at most, and only minutes with events are kept.
 *
 * One mutex per series (a leaf: nothing is called under it). Counts are
 * int64 and may go down (a message whose time changed moves its count);
 * an entry that falls to zero stays, which is harmless.
 */
#include "parley/series.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "parley/xalloc.h"

typedef struct series_entry {
    int64_t bucket;
    int64_t count;
} series_entry_t;

typedef struct series_vec {
    series_entry_t *v;
    size_t n, cap;
} series_vec_t;

struct series {
    pthread_mutex_t mu;
    series_vec_t level[SERIES_LEVELS]; /* guarded by mu */
    int64_t total;                     /* guarded by mu */
};

static const int64_t widths[SERIES_LEVELS] = {SERIES_MINUTE_MS, SERIES_HOUR_MS, SERIES_DAY_MS};

series_t *series_new(void)
{
    series_t *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

void series_free(series_t *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < SERIES_LEVELS; i++)
        free(s->level[i].v);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void series_clear(series_t *s)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < SERIES_LEVELS; i++)
        s->level[i].n = 0;
    s->total = 0;
    pthread_mutex_unlock(&s->mu);
}

int64_t series_width_ms(enum series_level level)
{
    return widths[level];
}

int64_t series_bucket_of(enum series_level level, int64_t t_ms)
{
    int64_t w = widths[level];
    int64_t q = t_ms / w;
    return (t_ms % w != 0 && t_ms < 0) ? q - 1 : q;
}

/* The position of the first entry whose bucket is >= b. */
static size_t lower(const series_vec_t *v, int64_t b)
{
    if (v->n == 0 || v->v[v->n - 1].bucket < b)
        return v->n; /* the common case: past the newest */
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->v[mid].bucket < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* REQUIRES: mu held. */
static void vec_add(series_vec_t *v, int64_t b, int64_t delta)
{
    if (v->n > 0 && v->v[v->n - 1].bucket == b) {
        v->v[v->n - 1].count += delta;
        return;
    }
    size_t at = lower(v, b);
    if (at < v->n && v->v[at].bucket == b) {
        v->v[at].count += delta;
        return;
    }
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        v->v = xrealloc(v->v, v->cap * sizeof(*v->v));
    }
    memmove(v->v + at + 1, v->v + at, (v->n - at) * sizeof(*v->v));
    v->v[at] = (series_entry_t){b, delta};
    v->n++;
}

void series_add(series_t *s, int64_t t_ms, int64_t delta)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < SERIES_LEVELS; i++)
        vec_add(&s->level[i], series_bucket_of((enum series_level)i, t_ms), delta);
    s->total += delta;
    pthread_mutex_unlock(&s->mu);
}

void series_add_level(series_t *s, enum series_level level, int64_t t_ms, int64_t delta)
{
    pthread_mutex_lock(&s->mu);
    vec_add(&s->level[level], series_bucket_of(level, t_ms), delta);
    if (level == SERIES_MINUTE)
        s->total += delta;
    pthread_mutex_unlock(&s->mu);
}

void series_read(series_t *s, enum series_level level, int64_t first, size_t n, int64_t *out)
{
    memset(out, 0, n * sizeof(*out));
    pthread_mutex_lock(&s->mu);
    const series_vec_t *v = &s->level[level];
    for (size_t at = lower(v, first); at < v->n; at++) {
        int64_t off = v->v[at].bucket - first;
        if (off >= (int64_t)n)
            break;
        out[off] = v->v[at].count;
    }
    pthread_mutex_unlock(&s->mu);
}

int64_t series_total(series_t *s)
{
    pthread_mutex_lock(&s->mu);
    int64_t t = s->total;
    pthread_mutex_unlock(&s->mu);
    return t;
}
