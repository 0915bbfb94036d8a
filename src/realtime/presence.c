/*
 * Presence: a user is online while it holds at least one live WebSocket or
 * event stream. The count of connections per user is src/access/online.c's
 * (the user object's status reads it at once); the events are this file's.
 *
 * Built for connect churn (a client that connects and closes in a loop):
 *   - debounced: the last connection closing schedules "offline"
 *     RT_PRESENCE_DEBOUNCE_MS later; a connection opening before then
 *     cancels it, and no "online" is published either, since no one was
 *     told the user left. A churning client publishes one "online" when it
 *     starts and one "offline" once it stops, whatever the number of cycles;
 *   - off the WebSocket loop: the events (whose audience is every user who
 *     shares a channel with the user, from the user's own memberships) are
 *     computed and published by one presence thread, fed by a queue that
 *     opened/closed only push to;
 *   - last_seen is written to the user's record only when "offline" is
 *     published (through the log like every change, without waiting for the
 *     fsync: losing it in a crash loses nothing anyone was promised), so at
 *     most once a debounce per user and never per disconnect. It is the time
 *     the last connection closed, not the time of the write. At shutdown the
 *     pending offlines are published and written at once.
 * The connect budget (realtime__connect_admit, realtime_connect_rate a
 * minute per user) bounds the rest.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/xalloc.h"

typedef struct pres_op {
    char user_id[STORE_ID_MAX];
    bool open;
    int64_t at_ms; /* wall clock of a close */
} pres_op_t;

typedef struct pres_pending {
    char user_id[STORE_ID_MAX];
    int64_t due_ns;   /* monotonic */
    int64_t last_seen_ms;
} pres_pending_t;

struct rt_presence {
    realtime_t *rt;
    pthread_t thread;
    pthread_mutex_t mu; /* ops, stop */
    pthread_cond_t cond;
    pres_op_t *ops;
    size_t n_ops, cap_ops;
    bool stop;
    /* the thread's own */
    pres_pending_t *pending;
    size_t n_pending, cap_pending;
};

static int compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

char (*realtime__channel_peers(store_t *s, const char *user_id, size_t *n))[STORE_ID_MAX]
{
    *n = 0;
    size_t n_channels = 0;
    char(*channels)[STORE_ID_MAX] = chat_user_channels(s, user_id, &n_channels);
    char(*peers)[STORE_ID_MAX] = NULL;
    size_t n_peers = 0, cap_peers = 0;
    for (size_t i = 0; i < n_channels; i++) {
        chat_channel_t ch;
        if (!chat_channel_get(s, channels[i], &ch))
            continue;
        bool deleted = ch.is_deleted;
        chat_channel_clear(&ch);
        if (deleted)
            continue;
        size_t count = chat_member_count(s, channels[i]);
        chat_membership_t *members = calloc(count ? count : 1, sizeof(*members));
        size_t got = 0;
        if (members != NULL)
            chat_members(s, channels[i], 0, count, members, &got);
        if (n_peers + got > cap_peers) {
            size_t cap = (n_peers + got) * 2;
            void *grown = realloc(peers, cap * sizeof(*peers));
            if (grown == NULL) {
                free(members);
                break;
            }
            peers = grown;
            cap_peers = cap;
        }
        for (size_t k = 0; k < got; k++)
            memcpy(peers[n_peers++], members[k].user_id, STORE_ID_MAX);
        free(members);
    }
    free(channels);
    if (peers == NULL)
        return NULL;
    qsort(peers, n_peers, sizeof(*peers), compare_ids);
    size_t unique = 0;
    for (size_t i = 0; i < n_peers; i++)
        if (unique == 0 || strcmp(peers[unique - 1], peers[i]) != 0)
            memmove(peers[unique++], peers[i], STORE_ID_MAX);
    *n = unique;
    return peers;
}

void realtime_publish_to_peers(realtime_t *rt, const char *type, const char *user_id,
                               json_t *data)
{
    if (rt == NULL) {
        json_decref(data);
        return;
    }
    size_t n = 0;
    char(*peers)[STORE_ID_MAX] = realtime__channel_peers(rt->app->store, user_id, &n);
    /* The user itself hears of it too (its other devices). */
    const char **audience = calloc(n + 1, sizeof(*audience));
    if (audience == NULL) {
        free(peers);
        json_decref(data);
        return;
    }
    size_t k = 0;
    bool self_in = false;
    for (size_t i = 0; i < n; i++) {
        audience[k++] = peers[i];
        self_in |= strcmp(peers[i], user_id) == 0;
    }
    if (!self_in)
        audience[k++] = user_id;
    realtime__bus_publish(rt->bus, type, NULL, NULL, audience, k, data);
    free(audience);
    free(peers);
}

static void publish_presence(realtime_t *rt, const char *user_id, bool online, int64_t last_seen)
{
    json_t *data = json_pack("{s:s, s:s, s:o}", "user_id", user_id, "status",
                             online ? "online" : "offline", "last_seen",
                             last_seen ? time_json(last_seen) : json_null());
    realtime_publish_to_peers(rt, "presence", user_id, data);
}

static int set_last_seen(void *ctx, store_user_t *u)
{
    u->last_seen = *(const int64_t *)ctx;
    return 0;
}

static void publish_offline(realtime_t *rt, const pres_pending_t *p)
{
    uint64_t lsn;
    int64_t at = p->last_seen_ms;
    store_user_modify(rt->app->store, p->user_id, set_last_seen, &at, NULL, &lsn);
    publish_presence(rt, p->user_id, false, at);
}

static pres_pending_t *pending_find(struct rt_presence *p, const char *user_id)
{
    for (size_t i = 0; i < p->n_pending; i++)
        if (strcmp(p->pending[i].user_id, user_id) == 0)
            return &p->pending[i];
    return NULL;
}

static void pending_remove(struct rt_presence *p, pres_pending_t *e)
{
    *e = p->pending[--p->n_pending];
}

static void apply_op(struct rt_presence *p, const pres_op_t *op)
{
    pres_pending_t *e = pending_find(p, op->user_id);
    if (op->open) {
        if (e != NULL)
            pending_remove(p, e); /* back before anyone was told it left */
        else
            publish_presence(p->rt, op->user_id, true, 0);
        return;
    }
    if (e == NULL) {
        if (p->n_pending == p->cap_pending) {
            p->cap_pending = p->cap_pending ? p->cap_pending * 2 : 16;
            p->pending = xrealloc(p->pending, p->cap_pending * sizeof(*p->pending));
        }
        e = &p->pending[p->n_pending++];
        snprintf(e->user_id, sizeof(e->user_id), "%s", op->user_id);
    }
    e->due_ns = clock_mono_ns() + (int64_t)RT_PRESENCE_DEBOUNCE_MS * 1000000;
    e->last_seen_ms = op->at_ms;
}

static void *presence_main(void *arg)
{
    struct rt_presence *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->n_ops == 0 && !p->stop) {
            int64_t next = 0;
            for (size_t i = 0; i < p->n_pending; i++)
                if (next == 0 || p->pending[i].due_ns < next)
                    next = p->pending[i].due_ns;
            if (next == 0) {
                pthread_cond_wait(&p->cond, &p->mu);
                continue;
            }
            int64_t now = clock_mono_ns();
            if (next <= now)
                break;
            /* The condition variable waits on CLOCK_MONOTONIC (see start). */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait = next - now;
            ts.tv_sec += wait / 1000000000;
            ts.tv_nsec += wait % 1000000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&p->cond, &p->mu, &ts);
        }
        pres_op_t *ops = p->ops;
        size_t n = p->n_ops;
        bool stop = p->stop;
        p->ops = NULL;
        p->n_ops = p->cap_ops = 0;
        pthread_mutex_unlock(&p->mu);

        for (size_t i = 0; i < n; i++)
            apply_op(p, &ops[i]);
        free(ops);
        int64_t now = clock_mono_ns();
        for (size_t i = 0; i < p->n_pending;) {
            pres_pending_t *e = &p->pending[i];
            if (stop || e->due_ns <= now) {
                pres_pending_t done = *e;
                pending_remove(p, e);
                publish_offline(p->rt, &done);
            } else {
                i++;
            }
        }
        if (stop)
            return NULL;
    }
}

struct rt_presence *realtime__presence_start(realtime_t *rt)
{
    struct rt_presence *p = xcalloc(1, sizeof(*p));
    p->rt = rt;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&p->thread, NULL, presence_main, p) != 0) {
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    return p;
}

void realtime__presence_stop(struct rt_presence *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    free(p->ops);
    free(p->pending);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static void push_op(realtime_t *rt, const char *user_id, bool open)
{
    struct rt_presence *p = rt->presence;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    if (!p->stop) {
        if (p->n_ops == p->cap_ops) {
            p->cap_ops = p->cap_ops ? p->cap_ops * 2 : 16;
            p->ops = xrealloc(p->ops, p->cap_ops * sizeof(*p->ops));
        }
        pres_op_t *op = &p->ops[p->n_ops++];
        snprintf(op->user_id, sizeof(op->user_id), "%s", user_id);
        op->open = open;
        op->at_ms = clock_wall_ms();
        pthread_cond_signal(&p->cond);
    }
    pthread_mutex_unlock(&p->mu);
}

void realtime__presence_opened(realtime_t *rt, const char *user_id)
{
    if (online_join(user_id))
        push_op(rt, user_id, true);
}

void realtime__presence_closed(realtime_t *rt, const char *user_id)
{
    if (online_leave(user_id))
        push_op(rt, user_id, false);
}

bool realtime__connect_admit(realtime_t *rt, const char *user_id)
{
    return realtime__budget_take(rt->connects, user_id, rt->app->config->realtime_connect_rate,
                                 clock_mono_ns());
}
