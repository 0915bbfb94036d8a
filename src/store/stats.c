/*
 * The store's figures for the admin dashboard (include/parley/store.h,
 * "dashboard figures"): the per-bucket counts the apply keeps, account
 * counts, the last snapshot, the log's own figures and its state (ok, no_space,
 * read_only: store_log_state, for /api/health and the system status).
 *
 * The counts are kept by the apply functions (store.c, chat.c, files.c) on
 * the events that make an entity appear: a message id, an account or a
 * file record seen for the first time, a newer last_login. Since replay is
 * the same apply, a restart rebuilds them from the snapshot and the log;
 * since an entity counts only when its id first appears in its table, a
 * record applied twice (a snapshot taken while writes go on) counts once.
 * clear_tables() (a snapshot that recovery discards) clears them with the
 * tables. Reading a series is series_read: O(log n + buckets).
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "parley/chat.h"

void store__count(store_t *s, enum store_metric m, int64_t t_ms, int64_t delta)
{
    series_add(s->series[m], t_ms, delta);
}

void store_series_read(store_t *s, enum store_metric m, enum series_level level, int64_t first,
                       size_t n, int64_t *out)
{
    series_read(s->series[m], level, first, n, out);
}

typedef struct user_counts_ctx {
    store_user_counts_t *out;
    int64_t now_ms;
} user_counts_ctx_t;

/* Runs under a shard's read lock: counts, keeps nothing. */
static bool count_user(void *ctx, const store_user_t *u)
{
    user_counts_ctx_t *c = ctx;
    if (u->deleted_at || !u->is_active) {
        c->out->deactivated++;
        return false;
    }
    c->out->total++;
    if (u->banned_at && (u->banned_until == 0 || u->banned_until > c->now_ms))
        c->out->banned++;
    return false;
}

void store_user_counts(store_t *s, int64_t now_ms, store_user_counts_t *out)
{
    memset(out, 0, sizeof(*out));
    user_counts_ctx_t c = {out, now_ms};
    store_user_t *none;
    store_user_select(s, count_user, &c, &none); /* keeps none: nothing to free */
}

void store__snapshot_found(store_t *s, uint64_t lsn)
{
    wal_stats_t ws;
    wal_get_stats(s->wal, &ws);
    pthread_mutex_lock(&s->info_mu);
    memset(&s->last_snap, 0, sizeof(s->last_snap));
    s->last_snap.lsn = lsn;
    if (lsn && ws.snapshot_lsn == lsn) {
        s->last_snap.bytes = ws.snapshot_bytes;
        s->last_snap.at_ms = ws.snapshot_time_ms;
    }
    pthread_mutex_unlock(&s->info_mu);
}

void store_snapshot_state(store_t *s, store_snapshot_info_t *out)
{
    pthread_mutex_lock(&s->info_mu);
    *out = s->last_snap;
    pthread_mutex_unlock(&s->info_mu);
    out->running = atomic_load(&s->snapshot_running);
}

void store_wal_stats(store_t *s, wal_stats_t *out)
{
    wal_get_stats(s->wal, out);
}

void store_log_state(store_t *s, store_log_state_t *out)
{
    memset(out, 0, sizeof(*out));
    wal_fault_t f;
    wal_state_t st = wal_get_state(s->wal, &f);
    out->state = wal_state_name(st);
    out->since_ms = f.since_ms;
    out->space_stalls = f.space_stalls;
    if (st != WAL_STATE_OK)
        snprintf(out->error, sizeof(out->error), "%s failed: %s (%s)", f.what,
                 f.error ? strerrorname_np(f.error) : "?", f.error ? strerror(f.error) : "?");
    pthread_mutex_lock(&s->info_mu);
    out->snapshot_failures = s->snap_failures;
    out->snapshot_failed_ms = s->snap_failed_ms;
    snprintf(out->snapshot_error, sizeof(out->snapshot_error), "%s", s->snap_error);
    pthread_mutex_unlock(&s->info_mu);
}
