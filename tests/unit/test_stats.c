/*
 * The dashboard's counts: the per-bucket series (src/util/series.c) at
 * minute/hour/day boundaries, out of order and empty; the store's counts
 * kept by the apply (src/store/stats.c) over 30 days of synthetic
 * timestamps, checked bucket by bucket against a count made here, with
 * records applied again, replayed from the log and from a snapshot; logins,
 * uploads and the blob bytes saved by deduplication; the activity table's
 * distinct users per bucket (src/access/activity.c).
 */
#include <pthread.h>

#include "../test.h"
#include "testutil.h"
#include "parley/access.h"
#include "parley/chat.h"
#include "parley/files.h"
#include "parley/series.h"
#include "parley/xalloc.h"
#include "store/chat_internal.h"
#include "store/codec.h"

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z, a day boundary */
#define MIN SERIES_MINUTE_MS
#define HOUR SERIES_HOUR_MS
#define DAY SERIES_DAY_MS

/* ---- the series ---------------------------------------------------------------- */

TEST(series_buckets_split_at_minute_hour_and_day_boundaries)
{
    series_t *s = series_new();
    series_add(s, T0 - 1, 1);            /* the last ms of 2025-12-31 */
    series_add(s, T0, 1);                /* the first of 2026-01-01 */
    series_add(s, T0 + MIN - 1, 1);      /* still the first minute */
    series_add(s, T0 + MIN, 1);          /* the second minute */
    series_add(s, T0 + HOUR, 1);         /* the second hour */
    series_add(s, T0 + DAY - 1, 1);      /* the last ms of the day */
    int64_t m[3], h[3], d[3];
    series_read(s, SERIES_MINUTE, series_bucket_of(SERIES_MINUTE, T0) - 1, 3, m);
    ASSERT_EQ(m[0], 1);
    ASSERT_EQ(m[1], 2);
    ASSERT_EQ(m[2], 1);
    series_read(s, SERIES_HOUR, series_bucket_of(SERIES_HOUR, T0) - 1, 3, h);
    ASSERT_EQ(h[0], 1);
    ASSERT_EQ(h[1], 3);
    ASSERT_EQ(h[2], 1);
    series_read(s, SERIES_DAY, series_bucket_of(SERIES_DAY, T0) - 1, 3, d);
    ASSERT_EQ(d[0], 1);
    ASSERT_EQ(d[1], 5);
    ASSERT_EQ(d[2], 0);
    ASSERT_EQ(series_total(s), 6);
    /* Floor division: before 1970 too. */
    ASSERT_EQ(series_bucket_of(SERIES_MINUTE, -1), -1);
    ASSERT_EQ(series_bucket_of(SERIES_MINUTE, -MIN), -1);
    ASSERT_EQ(series_bucket_of(SERIES_MINUTE, -MIN - 1), -2);
    ASSERT_EQ(series_bucket_of(SERIES_DAY, T0), T0 / DAY);
    series_free(s);
}

TEST(series_out_of_order_adds_empty_ranges_and_clear)
{
    series_t *s = series_new();
    int64_t out[10];
    /* Nothing counted: zeros, whatever the range. */
    series_read(s, SERIES_HOUR, 0, 10, out);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(out[i], 0);
    series_read(s, SERIES_HOUR, 0, 0, out); /* no bucket at all */
    /* Newest first, then the past, then in between. */
    int64_t b0 = series_bucket_of(SERIES_HOUR, T0);
    series_add(s, T0 + 9 * HOUR, 5);
    series_add(s, T0, 2);
    series_add(s, T0 + 4 * HOUR + 7, 3);
    series_add(s, T0 + 4 * HOUR + 8, -1); /* counts may go down */
    series_read(s, SERIES_HOUR, b0, 10, out);
    int64_t want[10] = {2, 0, 0, 0, 2, 0, 0, 0, 0, 5};
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(out[i], want[i]);
    /* A window that starts inside and one past everything. */
    series_read(s, SERIES_HOUR, b0 + 5, 5, out);
    ASSERT_EQ(out[0], 0);
    ASSERT_EQ(out[4], 5);
    series_read(s, SERIES_HOUR, b0 + 10, 10, out);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(out[i], 0);
    /* Levels apart: series_add_level counts in one level only. */
    series_add_level(s, SERIES_DAY, T0, 7);
    series_read(s, SERIES_DAY, series_bucket_of(SERIES_DAY, T0), 1, out);
    ASSERT_EQ(out[0], 9 + 7);
    series_read(s, SERIES_HOUR, b0, 1, out);
    ASSERT_EQ(out[0], 2);
    series_clear(s);
    series_read(s, SERIES_DAY, series_bucket_of(SERIES_DAY, T0), 1, out);
    ASSERT_EQ(out[0], 0);
    ASSERT_EQ(series_total(s), 0);
    series_free(s);
}

/* ---- the store's counts ------------------------------------------------------------ */

/* Appends a record and applies it, as the store's writers do. */
static void put_record(store_t *s, uint8_t type, const void *data, size_t len)
{
    uint64_t lsn;
    pthread_mutex_lock(&s->write_mu);
    ASSERT_EQ(store__append_bytes(s, type, xmemdup(data, len), len, &lsn), 0);
    ASSERT_EQ(store_apply(s, type, data, len), 0);
    pthread_mutex_unlock(&s->write_mu);
    ASSERT_EQ(store_wait(s, lsn), 0);
}

static char *message_record(uint64_t seq, int64_t created_at, bool deleted, size_t *len)
{
    chat_message_t m;
    memset(&m, 0, sizeof(m));
    chat__msg_id(seq, m.id);
    snprintf(m.channel_id, sizeof(m.channel_id), "ch_stats");
    snprintf(m.user_id, sizeof(m.user_id), "usr_stats");
    m.content = deleted ? NULL : strdup("counted");
    m.is_deleted = deleted;
    m.created_at = m.updated_at = created_at;
    char *rec = chat__message_encode(&m, len);
    ASSERT_NOT_NULL(rec);
    chat_message_clear(&m);
    return rec;
}

#define N_MSGS 5000
#define HOURS_30D (30 * 24)

/* A spread of times over 30 days: uneven, some on bucket edges. */
static int64_t synthetic_time(uint64_t i)
{
    uint64_t x = i * 2654435761u;
    int64_t off = (int64_t)(x % (uint64_t)(30 * DAY));
    if (i % 17 == 0)
        off -= off % HOUR; /* exactly on an hour's first ms */
    if (i % 29 == 0)
        off = off - off % HOUR + HOUR - 1; /* an hour's last ms */
    return T0 + off;
}

static void check_hourly(store_t *s, const int64_t *want)
{
    int64_t got[HOURS_30D];
    store_series_read(s, STORE_METRIC_MESSAGES, SERIES_HOUR, series_bucket_of(SERIES_HOUR, T0),
                      HOURS_30D, got);
    for (int i = 0; i < HOURS_30D; i++)
        if (got[i] != want[i])
            TEST_FAIL_("hour %d: %lld counted, %lld expected", i, (long long)got[i],
                       (long long)want[i]);
    int64_t days[30], total = 0;
    store_series_read(s, STORE_METRIC_MESSAGES, SERIES_DAY, series_bucket_of(SERIES_DAY, T0), 30,
                      days);
    for (int d = 0; d < 30; d++) {
        int64_t sum = 0;
        for (int h = 0; h < 24; h++)
            sum += want[d * 24 + h];
        ASSERT_EQ(days[d], sum);
        total += sum;
    }
    ASSERT_EQ(total, N_MSGS);
}

TEST(store_counts_messages_over_30_days_exactly_through_reapply_and_replay)
{
    char dir[96];
    ut_tmpdir(dir, sizeof(dir), "stats-msgs");
    store_t *s = ut_store_open(dir);
    static int64_t want[HOURS_30D];
    for (uint64_t i = 1; i <= N_MSGS; i++) {
        int64_t t = synthetic_time(i);
        want[(t - T0) / HOUR]++;
        size_t len;
        char *rec = message_record(i, t, i % 10 == 0, &len); /* deleted ones count too */
        put_record(s, STORE_REC_MESSAGE, rec, len);
        free(rec);
    }
    check_hourly(s, want);

    /* The same states again (a snapshot taken while writes went on, then
     * the log replayed over it): nothing moves. So do edits and deletions
     * of known messages. */
    for (uint64_t i = 1; i <= N_MSGS; i += 7) {
        size_t len;
        char *rec = message_record(i, synthetic_time(i), i % 3 == 0, &len);
        put_record(s, STORE_REC_MESSAGE, rec, len);
        free(rec);
    }
    check_hourly(s, want);

    /* Replayed from the log alone, then from a snapshot. */
    s = ut_store_reopen(s, dir);
    check_hourly(s, want);
    store_close(s); /* writes a snapshot: removed, so the log alone is replayed */
    ut_rm_snapshots(dir);
    s = ut_store_open(dir);
    check_hourly(s, want);
    s = ut_store_reopen(s, dir);
    check_hourly(s, want);

    /* A message whose time changed moves between buckets. */
    size_t len;
    char *rec = message_record(1, T0, false, &len);
    int64_t old = synthetic_time(1);
    want[(old - T0) / HOUR]--;
    want[0]++;
    put_record(s, STORE_REC_MESSAGE, rec, len);
    free(rec);
    check_hourly(s, want);
    store_close(s);
    ut_rmrf(dir);
}

static void user_record(store_t *s, const char *id, int64_t created_at, int64_t last_login,
                        int64_t logins)
{
    store_user_t u;
    memset(&u, 0, sizeof(u));
    snprintf(u.id, sizeof(u.id), "%s", id);
    snprintf(u.username, sizeof(u.username), "%s", id);
    snprintf(u.email, sizeof(u.email), "%s@example.com", id);
    snprintf(u.password_hash, sizeof(u.password_hash), "x");
    u.is_active = true;
    u.created_at = u.updated_at = created_at;
    u.last_login = last_login;
    u.login_count = logins;
    char *rec = codec_user_encode(&u);
    put_record(s, STORE_REC_USER, rec, strlen(rec));
    free(rec);
}

static int64_t count_at(store_t *s, enum store_metric m, enum series_level l, int64_t t)
{
    int64_t v;
    store_series_read(s, m, l, series_bucket_of(l, t), 1, &v);
    return v;
}

TEST(store_counts_signups_and_logins_once_each)
{
    char dir[96];
    ut_tmpdir(dir, sizeof(dir), "stats-users");
    store_t *s = ut_store_open(dir);
    user_record(s, "usr_a", T0, 0, 0);
    user_record(s, "usr_b", T0 + HOUR, 0, 0);
    user_record(s, "usr_a", T0, T0 + 2 * HOUR, 1);     /* a login */
    user_record(s, "usr_a", T0, T0 + 2 * HOUR, 1);     /* the same state again */
    user_record(s, "usr_a", T0, T0 + 3 * HOUR, 2);     /* another */
    user_record(s, "usr_a", T0, T0 + 2 * HOUR, 1);     /* an older state replayed */
    user_record(s, "usr_a", T0, T0 + 3 * HOUR, 2);     /* and the newer again */
    ASSERT_EQ(count_at(s, STORE_METRIC_SIGNUPS, SERIES_DAY, T0), 2);
    ASSERT_EQ(count_at(s, STORE_METRIC_SIGNUPS, SERIES_HOUR, T0 + HOUR), 1);
    ASSERT_EQ(count_at(s, STORE_METRIC_LOGINS, SERIES_HOUR, T0 + 2 * HOUR), 1);
    ASSERT_EQ(count_at(s, STORE_METRIC_LOGINS, SERIES_HOUR, T0 + 3 * HOUR), 1);
    ASSERT_EQ(count_at(s, STORE_METRIC_LOGINS, SERIES_DAY, T0), 2);
    /* From the log: the same. From a snapshot: each account's last login. */
    store_close(s); /* writes a snapshot: removed, so the log alone is replayed */
    ut_rm_snapshots(dir);
    s = ut_store_open(dir);
    ASSERT_EQ(count_at(s, STORE_METRIC_LOGINS, SERIES_DAY, T0), 2);
    ASSERT_EQ(count_at(s, STORE_METRIC_SIGNUPS, SERIES_DAY, T0), 2);
    s = ut_store_reopen(s, dir);
    ASSERT_EQ(count_at(s, STORE_METRIC_SIGNUPS, SERIES_DAY, T0), 2);
    ASSERT_EQ(count_at(s, STORE_METRIC_LOGINS, SERIES_DAY, T0), 1);
    ASSERT_EQ(count_at(s, STORE_METRIC_LOGINS, SERIES_HOUR, T0 + 3 * HOUR), 1);
    store_close(s);
    ut_rmrf(dir);
}

static void file_put(store_t *s, const char *id, char sha_digit, uint64_t size, int64_t at,
                     bool deleted)
{
    store_file_t f;
    memset(&f, 0, sizeof(f));
    snprintf(f.id, sizeof(f.id), "%s", id);
    memset(f.sha256, sha_digit, 64);
    f.size = size;
    snprintf(f.content_type, sizeof(f.content_type), "text/plain");
    snprintf(f.filename, sizeof(f.filename), "a.txt");
    snprintf(f.uploaded_by, sizeof(f.uploaded_by), "usr_a");
    f.uploaded_at = at;
    f.is_deleted = deleted;
    uint64_t lsn, refs;
    ASSERT_EQ(store_file_put(s, &f, &lsn, &refs), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
}

static void check_files(store_t *s, uint64_t live, uint64_t bytes, uint64_t blobs)
{
    store_stats_t st;
    store_get_stats(s, &st);
    ASSERT_EQ(st.live_files, live);
    ASSERT_EQ(st.file_bytes, bytes);
    ASSERT_EQ(st.blob_bytes, blobs);
}

TEST(store_counts_uploads_and_the_bytes_deduplication_saves)
{
    char dir[96];
    ut_tmpdir(dir, sizeof(dir), "stats-files");
    store_t *s = ut_store_open(dir);
    file_put(s, "file_a", 'a', 100, T0, false);
    file_put(s, "file_b", 'a', 100, T0 + MIN, false); /* the same bytes */
    file_put(s, "file_c", 'c', 40, T0 + MIN, false);
    check_files(s, 3, 240, 140);
    file_put(s, "file_b", 'a', 100, T0 + MIN, false); /* applied again */
    check_files(s, 3, 240, 140);
    file_put(s, "file_a", 'a', 100, T0, true); /* one of two copies goes */
    check_files(s, 2, 140, 140);
    file_put(s, "file_b", 'a', 100, T0 + MIN, true); /* the last: its blob goes */
    check_files(s, 1, 40, 40);
    /* Uploads count each file once, deleted or not. */
    ASSERT_EQ(count_at(s, STORE_METRIC_UPLOADS, SERIES_MINUTE, T0), 1);
    ASSERT_EQ(count_at(s, STORE_METRIC_UPLOADS, SERIES_MINUTE, T0 + MIN), 2);
    s = ut_store_reopen(s, dir);
    check_files(s, 1, 40, 40);
    ASSERT_EQ(count_at(s, STORE_METRIC_UPLOADS, SERIES_HOUR, T0), 3);
    store_close(s);
    ut_rmrf(dir);
}

TEST(store_snapshot_now_reports_what_it_wrote)
{
    char dir[96];
    ut_tmpdir(dir, sizeof(dir), "stats-snap");
    store_t *s = ut_store_open(dir);
    user_record(s, "usr_a", T0, 0, 0);
    store_snapshot_info_t si, state;
    ASSERT_EQ(store_snapshot_now(s, &si), 0);
    store_stats_t st;
    store_get_stats(s, &st);
    ASSERT_EQ(si.lsn, st.last_lsn);
    ASSERT_GT(si.bytes, 0);
    ASSERT_GT(si.at_ms, T0);
    store_snapshot_state(s, &state);
    ASSERT_EQ(state.lsn, si.lsn);
    ASSERT_EQ(state.bytes, si.bytes);
    ASSERT_TRUE(!state.running);
    /* After a restart the state is read from the snapshot's file. */
    store_close(s);
    s = ut_store_open(dir);
    store_snapshot_state(s, &state);
    ASSERT_EQ(state.lsn, si.lsn);
    ASSERT_EQ(state.bytes, si.bytes);
    ASSERT_GT(state.at_ms, T0);
    store_close(s);
    ut_rmrf(dir);
}

/* ---- active users ------------------------------------------------------------------- */

TEST(activity_counts_distinct_users_per_bucket)
{
    int64_t base = T0 + 400 * DAY; /* apart from any other test's times */
    activity_note("usr_x", base);
    activity_note("usr_x", base + 10);        /* same minute: nothing new */
    activity_note("usr_y", base + 20);
    activity_note("usr_x", base + MIN);       /* next minute, same hour */
    activity_note("usr_x", base + HOUR);      /* next hour, same day */
    activity_note("", base);                  /* ignored */
    int64_t m[2], h[2], d[1];
    activity_series_read(SERIES_MINUTE, series_bucket_of(SERIES_MINUTE, base), 2, m);
    ASSERT_EQ(m[0], 2);
    ASSERT_EQ(m[1], 1);
    activity_series_read(SERIES_HOUR, series_bucket_of(SERIES_HOUR, base), 2, h);
    ASSERT_EQ(h[0], 2);
    ASSERT_EQ(h[1], 1);
    activity_series_read(SERIES_DAY, series_bucket_of(SERIES_DAY, base), 1, d);
    ASSERT_EQ(d[0], 2);
    ASSERT_EQ(activity_active_since(base + HOUR), 1);
    ASSERT_EQ(activity_active_since(base), 2);
    /* Many users: the table grows and keeps them all. */
    for (int i = 0; i < 3000; i++) {
        char id[32];
        snprintf(id, sizeof(id), "usr_many_%d", i);
        activity_note(id, base + 2 * DAY);
        activity_note(id, base + 2 * DAY + 1);
    }
    activity_series_read(SERIES_DAY, series_bucket_of(SERIES_DAY, base + 2 * DAY), 1, d);
    ASSERT_EQ(d[0], 3000);
    ASSERT_EQ(activity_active_since(base + 2 * DAY), 3000);
}

/* ---- threads ---------------------------------------------------------------------- */

typedef struct worker {
    series_t *s;
    int no;
} worker_t;

static void *work(void *arg)
{
    worker_t *w = arg;
    int64_t base = T0 + 800 * DAY;
    for (int i = 0; i < 2000; i++) {
        char id[32];
        snprintf(id, sizeof(id), "usr_t%d_%d", w->no, i % 500);
        activity_note(id, base + (i / 500) * MIN); /* 4 minutes, 500 users each */
        series_add(w->s, base + (int64_t)(i % 60) * MIN, 1);
    }
    return NULL;
}

TEST(series_and_activity_from_many_threads)
{
    series_t *s = series_new();
    pthread_t th[4];
    worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){s, i};
        ASSERT_EQ(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    int64_t base = T0 + 800 * DAY, m[60], d;
    series_read(s, SERIES_MINUTE, series_bucket_of(SERIES_MINUTE, base), 60, m);
    int64_t sum = 0;
    for (int i = 0; i < 60; i++)
        sum += m[i];
    ASSERT_EQ(sum, 8000);
    ASSERT_EQ(series_total(s), 8000);
    activity_series_read(SERIES_MINUTE, series_bucket_of(SERIES_MINUTE, base), 4, m);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(m[i], 2000); /* 4 threads x 500 users in each minute */
    activity_series_read(SERIES_DAY, series_bucket_of(SERIES_DAY, base), 1, &d);
    ASSERT_EQ(d, 2000);
    series_free(s);
}
