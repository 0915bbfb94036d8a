/*
 * The retention sweep: messages older than the live message_retention_days
 * are deleted, with their files, by a thread that wakes every
 * --retention-sweep-interval seconds.
 *
 * It deletes the way DELETE /messages/{id} does, through the store's
 * ordinary message change (chat_message_modify: a record of the log, so the
 * history, the search index and the cached views follow, and replay agrees),
 * then the message's files (delete_message_files: a blob goes with its last
 * reference) and an event message.deleted for live clients. It works in
 * batches (chat_messages_older looks at a bounded number of messages under
 * one read lock, each delete takes the write lock for one record), waiting
 * for each batch's records to be durable before the files and the events,
 * so posting goes on between batches. Where the previous sweep stopped is
 * remembered (ids are in creation order), so a sweep costs what it deletes,
 * not the history's size; the cursor starts over when the retention
 * changes and at each start.
 */
#include "parley/api.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parley/app.h"
#include "parley/audit.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/log.h"
#include "parley/realtime.h"
#include "parley/settings.h"
#include "parley/xalloc.h"
#include "resource.h"

#define BATCH 100
#define DAY_MS (86400ll * 1000)

struct api_retention {
    parley_app_t *app;
    unsigned interval_s;
    pthread_t thread;
    pthread_mutex_t mu; /* guards stop */
    pthread_cond_t cv;
    bool stop;
};

static _Atomic int64_t last_run_ms;
static _Atomic uint64_t messages_deleted;
/* Where the last sweep stopped, and for which retention (one sweeper). */
static uint64_t cursor;
static uint32_t cursor_days;
static pthread_mutex_t sweep_mu = PTHREAD_MUTEX_INITIALIZER;

void api_retention_stats(api_retention_stats_t *out)
{
    out->last_run_ms = atomic_load(&last_run_ms);
    out->messages_deleted = atomic_load(&messages_deleted);
}

enum { GONE = 1 };

/* Runs under the store's write lock. */
static int mark_deleted(void *ctx, chat_message_t *m)
{
    (void)ctx;
    if (m->is_deleted)
        return GONE;
    free(m->content);
    m->content = NULL;
    m->is_deleted = true;
    m->updated_at = clock_wall_ms();
    return 0;
}

/* Deletes a batch; returns how many, or -1 when the store refused. */
static long delete_batch(parley_app_t *app, char (*ids)[STORE_ID_MAX], size_t n)
{
    chat_message_t *done = xcalloc(n, sizeof(*done));
    size_t k = 0;
    uint64_t lsn = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t one;
        rc = chat_message_modify(app->store, ids[i], mark_deleted, NULL, &done[k], &one);
        if (rc == GONE || rc == STORE_E_NOT_FOUND) {
            rc = 0;
            continue;
        }
        if (rc == 0) {
            lsn = one;
            k++;
        }
    }
    if (k > 0 && store_wait(app->store, lsn) != 0)
        rc = STORE_E_UNAVAILABLE;
    for (size_t i = 0; i < k; i++) {
        /* The message record is durable: its files may go. */
        if (rc == 0 && delete_message_files(app, &done[i]) != 0)
            rc = STORE_E_UNAVAILABLE;
        realtime_publish(app->realtime, "message.deleted", done[i].channel_id, NULL,
                         json_pack("{s:s, s:s, s:n, s:s}", "id", done[i].id, "channel_id",
                                   done[i].channel_id, "deleted_by", "reason", "retention"));
        chat_message_clear(&done[i]);
    }
    free(done);
    return rc == 0 ? (long)k : -1;
}

/* The sweep's audit entry: no actor (the server did it), no address. */
static void audit_sweep(parley_app_t *app, size_t deleted, unsigned days)
{
    store_audit_t a;
    memset(&a, 0, sizeof(a));
    snprintf(a.action, sizeof(a.action), "retention.sweep");
    snprintf(a.target, sizeof(a.target), "messages");
    json_t *details = json_pack("{s:I, s:i}", "deleted", (json_int_t)deleted, "days", (int)days);
    a.details = json_dumps(details, JSON_COMPACT);
    json_decref(details);
    uint64_t lsn;
    if (store_audit_append(app->store, &a, &lsn) != 0 || store_wait(app->store, lsn) != 0)
        log_warning("retention: the sweep's audit entry was not written");
    store_audit_clear(&a);
}

size_t api_retention_sweep(parley_app_t *app, int64_t now_ms)
{
    store_settings_t st;
    store_settings_get(app->store, &st);
    if (st.message_retention_days == 0)
        return 0;
    int64_t cutoff = now_ms - (int64_t)st.message_retention_days * DAY_MS;
    char(*ids)[STORE_ID_MAX] = xmalloc(BATCH * sizeof(*ids));
    size_t total = 0;
    pthread_mutex_lock(&sweep_mu);
    if (cursor_days != st.message_retention_days) {
        cursor = 0;
        cursor_days = st.message_retention_days;
    }
    for (;;) {
        bool more;
        size_t n = chat_messages_older(app->store, &cursor, cutoff, BATCH, ids, &more);
        long done = n ? delete_batch(app, ids, n) : 0;
        if (done < 0) {
            log_warning("retention: the store refused a deletion; the sweep stops here");
            cursor = 0; /* look at them again next time */
            break;
        }
        total += (size_t)done;
        if (!more)
            break;
    }
    pthread_mutex_unlock(&sweep_mu);
    free(ids);
    atomic_store(&last_run_ms, now_ms);
    atomic_fetch_add(&messages_deleted, total);
    if (total) {
        log_info("retention: deleted %zu messages older than %u days", total,
                 st.message_retention_days);
        audit_sweep(app, total, st.message_retention_days);
    }
    return total;
}

static void *sweep_main(void *arg)
{
    api_retention_t *r = arg;
    pthread_setname_np(pthread_self(), "parley-retain");
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += r->interval_s;
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->mu);
        api_retention_sweep(r->app, clock_wall_ms());
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

api_retention_t *api_retention_start(parley_app_t *app, unsigned interval_s)
{
    api_retention_t *r = xcalloc(1, sizeof(*r));
    r->app = app;
    r->interval_s = interval_s ? interval_s : 1;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, sweep_main, r) != 0) {
        log_error("retention: cannot start the sweep thread");
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return NULL;
    }
    return r;
}

void api_retention_stop(api_retention_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
