/*
 * The log's sync figures (wal_get_stats): for each of the last
 * WAL_STATS_WINDOW seconds, a slot with a histogram of fdatasync latencies
 * and the count, sum and maximum of the records each sync made durable (the
 * group-commit batch).
 *
 * Why a fixed histogram per second rather than a list of samples: the
 * writer notes every sync under the mutex it holds anyway, so noting must
 * be a few stores, never an allocation; 4 buckets per power of two (the
 * HdrHistogram idea with 2 bits of mantissa) bound a percentile's error to
 * a quarter of its octave, and 60 slots of 128 counters are 31 KiB. A slot
 * is reused when its second comes round again, so old seconds fall out of
 * the window by themselves. The caller holds the log's mutex for both
 * noting and reading.
 *
 * Beside the window, two cumulative histograms since open (fixed Prometheus-
 * style buckets: latencies from 100 us to 1 s, batches from 1 to 1,024
 * records) and their sums: a few more counters under the same mutex.
 */
#include <string.h>

#include "wal_internal.h"

const uint64_t wal_fsync_bounds_us[WAL_FSYNC_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000,
};
const uint64_t wal_batch_bounds[WAL_BATCH_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

/* The first bucket whose bound is >= v (n: over every bound). */
static unsigned fixed_bucket(const uint64_t *bounds, unsigned n, uint64_t v)
{
    unsigned b = 0;
    while (b < n && v > bounds[b])
        b++;
    return b;
}

void wal__stats_init(walf_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    for (int i = 0; i < WAL_STATS_WINDOW; i++)
        st->slot[i].second = -1;
}

unsigned wal__stats_bucket(uint64_t us)
{
    if (us < 4)
        return (unsigned)us;
    unsigned k = 63u - (unsigned)__builtin_clzll(us); /* us in [2^k, 2^(k+1)), k >= 2 */
    unsigned b = 4u * (k - 1) + (unsigned)((us >> (k - 2)) & 3u);
    return b < WALF_STAT_BUCKETS ? b : WALF_STAT_BUCKETS - 1;
}

uint64_t wal__stats_bucket_floor(unsigned bucket)
{
    if (bucket < 4)
        return bucket;
    unsigned k = bucket / 4 + 1, sub = bucket % 4;
    return (uint64_t)(4 + sub) << (k - 2);
}

void wal__stats_note(walf_stats_t *st, int64_t now_s, uint64_t latency_us, uint64_t batch)
{
    walf_stat_slot_t *sl = &st->slot[now_s % WAL_STATS_WINDOW];
    if (sl->second != now_s) {
        memset(sl, 0, sizeof(*sl));
        sl->second = now_s;
    }
    sl->syncs++;
    sl->hist[wal__stats_bucket(latency_us)]++;
    if (latency_us > sl->max_us)
        sl->max_us = latency_us;
    sl->batch_sum += batch;
    if (batch > sl->batch_max)
        sl->batch_max = batch;
    st->total++;
    st->fsync_hist[fixed_bucket(wal_fsync_bounds_us, WAL_FSYNC_BUCKETS, latency_us)]++;
    st->fsync_sum_us += latency_us;
    st->batch_hist[fixed_bucket(wal_batch_bounds, WAL_BATCH_BUCKETS, batch)]++;
    st->batch_sum += batch;
}

/* The lower edge of the bucket holding the rank-th (1-based) latency. */
static uint64_t percentile(const uint32_t *hist, uint64_t count, unsigned pct)
{
    uint64_t rank = (count * pct + 99) / 100;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < WALF_STAT_BUCKETS; b++) {
        seen += hist[b];
        if (seen >= rank)
            return wal__stats_bucket_floor(b);
    }
    return 0;
}

void wal__stats_read(const walf_stats_t *st, int64_t now_s, wal_stats_t *out)
{
    uint32_t hist[WALF_STAT_BUCKETS] = {0};
    uint64_t syncs = 0, batch_sum = 0, batch_max = 0, max_us = 0;
    for (int i = 0; i < WAL_STATS_WINDOW; i++) {
        const walf_stat_slot_t *sl = &st->slot[i];
        if (sl->second < 0 || sl->second > now_s || sl->second <= now_s - WAL_STATS_WINDOW)
            continue;
        syncs += sl->syncs;
        batch_sum += sl->batch_sum;
        if (sl->batch_max > batch_max)
            batch_max = sl->batch_max;
        if (sl->max_us > max_us)
            max_us = sl->max_us;
        for (unsigned b = 0; b < WALF_STAT_BUCKETS; b++)
            hist[b] += sl->hist[b];
    }
    out->syncs_total = st->total;
    memcpy(out->fsync_hist, st->fsync_hist, sizeof(out->fsync_hist));
    out->fsync_sum_us = st->fsync_sum_us;
    memcpy(out->batch_hist, st->batch_hist, sizeof(out->batch_hist));
    out->batch_sum = st->batch_sum;
    out->appends_total = st->appends;
    out->append_bytes_total = st->append_bytes;
    out->syncs = syncs;
    out->batch_max = batch_max;
    out->batch_mean = syncs ? (double)batch_sum / (double)syncs : 0.0;
    out->fsync_max_us = max_us;
    out->fsync_p50_us = syncs ? percentile(hist, syncs, 50) : 0;
    out->fsync_p99_us = syncs ? percentile(hist, syncs, 99) : 0;
    if (out->fsync_p99_us > max_us) /* a bucket's floor never passes its max, but be sure */
        out->fsync_p99_us = max_us;
    if (out->fsync_p50_us > out->fsync_p99_us)
        out->fsync_p50_us = out->fsync_p99_us;
}
