/*
 * Read receipts (docs/realtime.md, "Receipts"): who has read a message, from
 * the channel's durable read markers, and the message_status "read" its
 * author gets when a first reader's marker passes it.
 *
 * Nothing is kept per message: markers are prefixes of a channel's history
 * (ids sort in creation order), so "some member other than the author has
 * read m" is "the furthest marker among the members other than the author is
 * at or past m". A marker move announces the messages it is the first to
 * pass: those the other members' two furthest markers (two: one may be the
 * author's) had not reached. Moves in one channel are serialised by a striped
 * lock held from that look until the move is applied (not over the fsync),
 * so two readers passing the same message announce it once. A move announces
 * at most RECEIPTS_READ_MAX messages (the newest it passes): its cost is
 * O(members + RECEIPTS_READ_MAX), whatever the distance it moves.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "resource.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/realtime.h"

#define READ_STRIPES 64
static pthread_mutex_t stripes[READ_STRIPES] = {[0 ... READ_STRIPES - 1] =
                                                    PTHREAD_MUTEX_INITIALIZER};

enum { MEMBER_SLACK = 16 }; /* members who join between the count and the listing */

static pthread_mutex_t *stripe_of(const char *channel_id)
{
    unsigned h = 2166136261u;
    for (const char *p = channel_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return &stripes[h % READ_STRIPES];
}

/* Calls fn for each member of the channel. One listing of them all: the
 * store copies and sorts the whole member set for any page, so paging would
 * cost O(members^2 / page). */
static void each_member(store_t *s, const char *channel_id,
                        void (*fn)(void *ctx, const chat_membership_t *m), void *ctx)
{
    size_t cap = chat_member_count(s, channel_id) + MEMBER_SLACK;
    chat_membership_t *all = calloc(cap, sizeof(*all));
    if (all == NULL)
        return;
    size_t n = 0;
    chat_members(s, channel_id, 0, cap, all, &n);
    for (size_t i = 0; i < n; i++)
        fn(ctx, &all[i]);
    free(all);
}

typedef struct top_ctx {
    const char *reader;
    receipts_mark_t *top; /* [2], furthest first */
} top_ctx_t;

static void keep_top(void *ctx, const chat_membership_t *m)
{
    top_ctx_t *t = ctx;
    if (m->last_read[0] == '\0' || strcmp(m->user_id, t->reader) == 0)
        return;
    receipts_mark_t mk;
    memcpy(mk.message_id, m->last_read, STORE_ID_MAX);
    memcpy(mk.user_id, m->user_id, STORE_ID_MAX);
    if (strcmp(mk.message_id, t->top[0].message_id) > 0) {
        t->top[1] = t->top[0];
        t->top[0] = mk;
    } else if (strcmp(mk.message_id, t->top[1].message_id) > 0) {
        t->top[1] = mk;
    }
}

void receipts_read_begin(store_t *s, const char *channel_id, const char *reader,
                         receipts_move_t *mv)
{
    memset(mv, 0, sizeof(*mv));
    mv->lock = stripe_of(channel_id);
    pthread_mutex_lock(mv->lock);
    chat_membership_t me;
    if (chat_membership_get(s, channel_id, reader, &me))
        memcpy(mv->old_read, me.last_read, STORE_ID_MAX);
    top_ctx_t t = {.reader = reader, .top = mv->top};
    each_member(s, channel_id, keep_top, &t);
}

void receipts_read_end(receipts_move_t *mv)
{
    if (mv->lock)
        pthread_mutex_unlock(mv->lock);
    mv->lock = NULL;
}

/* Whether a member other than the reader and the author had read id. */
static bool read_before(const receipts_move_t *mv, const char *author, const char *id)
{
    for (int k = 0; k < 2; k++)
        if (mv->top[k].message_id[0] && strcmp(mv->top[k].user_id, author) != 0)
            return strcmp(mv->top[k].message_id, id) >= 0;
    return false;
}

static void announce(parley_app_t *app, const receipts_move_t *mv, const char *reader,
                     const chat_message_t *m)
{
    if (m->is_deleted || strcmp(m->id, mv->old_read) <= 0 || strcmp(m->user_id, reader) == 0 ||
        read_before(mv, m->user_id, m->id))
        return;
    const char *to = m->user_id;
    realtime_publish_to(app->realtime, "message_status", &to, 1,
                        json_pack("{s:s, s:s, s:s, s:s, s:o}", "message_id", m->id, "channel_id",
                                  m->channel_id, "status", "read", "user_id", reader,
                                  "timestamp", time_json(clock_wall_ms())));
}

void receipts_read_publish(parley_app_t *app, const char *channel_id, const char *reader,
                           const receipts_move_t *mv, const char *new_read)
{
    if (app->realtime == NULL || strcmp(new_read, mv->old_read) <= 0)
        return;
    chat_message_t *list = calloc(RECEIPTS_READ_MAX, sizeof(*list));
    if (list == NULL)
        return;
    size_t n = 0;
    bool more = false;
    if (chat_history(app->store, channel_id, new_read, NULL, RECEIPTS_READ_MAX - 1, list, &n,
                     &more) == 0) {
        for (size_t i = 0; i < n; i++)
            announce(app, mv, reader, &list[i]);
    }
    for (size_t i = 0; i < n; i++)
        chat_message_clear(&list[i]);
    chat_message_t last;
    if (chat_message_get(app->store, new_read, &last)) {
        announce(app, mv, reader, &last);
        chat_message_clear(&last);
    }
    free(list);
}

typedef struct state_ctx {
    const chat_message_t *m;
    size_t count;
    json_t *list;
} state_ctx_t;

static void count_reader(void *ctx, const chat_membership_t *mb)
{
    state_ctx_t *st = ctx;
    if (strcmp(mb->user_id, st->m->user_id) == 0 || strcmp(mb->last_read, st->m->id) < 0)
        return;
    st->count++;
    if (json_array_size(st->list) < RECEIPTS_READ_BY_MAX)
        json_array_append_new(st->list, json_pack("{s:s}", "user_id", mb->user_id));
}

void receipts_add_read_state(store_t *s, const chat_message_t *m, json_t *view)
{
    state_ctx_t st = {.m = m, .list = json_array()};
    each_member(s, m->channel_id, count_reader, &st);
    json_object_set_new(view, "read_count", json_integer((json_int_t)st.count));
    json_object_set_new(view, "read_by", st.list);
}
