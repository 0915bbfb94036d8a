/*
 * One real-time subscriber (a WebSocket or an event stream): who it is, which
 * channels it asked for, and the one rule deciding which events reach it.
 *
 * The rule is applied when an event is delivered, not when it is published,
 * so a ban, a removal or a channel turning private takes effect on the next
 * event, also for events already in the ring (a resume replays only what the
 * user may see now). By default a subscriber gets the events of the channels
 * it is a member of; `subscribe` adds channels it may read without being a
 * member (a public channel it is looking at), `unsubscribe` mutes one.
 *
 * A connection opened with an access token lives no longer than the token:
 * authenticate records its expiry, and the connection must send a fresh
 * token (an auth frame) before then or it is closed (docs/realtime.md).
 *
 * Events are rendered when published, but what they show must be what is
 * true when they are delivered: in a channel only members read, a member
 * gets no event from before their membership began, and an event showing a
 * message is checked against the message now (realtime__event_current):
 * unchanged, it goes as it is; edited since, it is rendered again; deleted
 * since, it is not sent. A resume never replays text that is gone.
 *
 * Delivery receipts ride on the same point: the first time a message.created
 * is queued to a connection of someone other than its author, the author gets
 * message_status "delivered". The "already sent" flag lives in the ring's
 * event, so the receipts cost no memory beyond the ring (docs/realtime.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "parley/auth.h"
#include "parley/chat.h"
#include "parley/clock.h"

/* The channel sets are open-addressing hash sets of ids (linear probing,
 * backward-shift removal, an empty slot's id is ""), at most half full: a
 * lookup on every event delivered and each of a subscribe's channels cost
 * O(1), where a list cost O(subscriptions) (1,000 subscriptions made a
 * subscribe O(n^2): docs/benchmarks.md, "P15"). */
static size_t set_slot_of(const char *id, size_t cap)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

/* The slot holding id, or the empty slot where it would go. */
static size_t set_find(const rt_channel_set_t *set, const char *id)
{
    size_t i = set_slot_of(id, set->cap);
    while (set->ids[i][0] && strcmp(set->ids[i], id) != 0)
        i = (i + 1) & (set->cap - 1);
    return i;
}

static bool set_has(const rt_channel_set_t *set, const char *id)
{
    return set->n > 0 && set->ids[set_find(set, id)][0] != '\0';
}

static int set_add(rt_channel_set_t *set, const char *id)
{
    if (id[0] == '\0' || set_has(set, id)) /* "" marks an empty slot; no id is "" */
        return 0;
    if (set->n == RT_MAX_SUBSCRIPTIONS)
        return -2;
    if ((set->n + 1) * 2 > set->cap) {
        rt_channel_set_t grown = {.cap = set->cap ? set->cap * 2 : 8, .n = set->n};
        grown.ids = calloc(grown.cap, sizeof(*grown.ids));
        if (grown.ids == NULL)
            return -2;
        for (size_t i = 0; i < set->cap; i++)
            if (set->ids[i][0])
                memcpy(grown.ids[set_find(&grown, set->ids[i])], set->ids[i], STORE_ID_MAX);
        free(set->ids);
        *set = grown;
    }
    snprintf(set->ids[set_find(set, id)], STORE_ID_MAX, "%s", id);
    set->n++;
    return 0;
}

static void set_remove(rt_channel_set_t *set, const char *id)
{
    if (!set_has(set, id))
        return;
    size_t hole = set_find(set, id), mask = set->cap - 1;
    set->ids[hole][0] = '\0';
    set->n--;
    /* Backward shift: the entries after the hole that may move into it do. */
    for (size_t i = (hole + 1) & mask; set->ids[i][0]; i = (i + 1) & mask) {
        size_t home = set_slot_of(set->ids[i], set->cap);
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            memcpy(set->ids[hole], set->ids[i], STORE_ID_MAX);
            set->ids[i][0] = '\0';
            hole = i;
        }
    }
}

int realtime__client_authenticate(parley_app_t *app, rt_client_t *c, const char *credentials)
{
    if (strlen(credentials) > AUTH_TOKEN_MAX_LEN)
        return HTTP_ERR_TOKEN_INVALID; /* not parsed at all */
    const char *token = credentials;
    if (strncasecmp(token, "Bearer ", 7) == 0)
        token += 7;
    principal_t p;
    bool api_key = strncmp(token, "plx_", 4) == 0;
    int err = api_key ? principal_from_api_key(app, token, &p) : principal_from_token(app, token, &p);
    if (err != 0)
        return http_error_of_access(err);
    int64_t expires_ms = 0;
    auth_claims_t claims;
    if (!api_key && auth_token_verify(&app->keys, token, clock_wall_ms() / 1000, &claims) == AUTH_OK)
        expires_ms = claims.exp * 1000;
    if (!p.can_read) {
        principal_clear(&p);
        return HTTP_ERR_INSUFFICIENT_PERMISSIONS;
    }
    realtime__client_adopt(c, &p, expires_ms);
    return -1;
}

void realtime__client_adopt(rt_client_t *c, principal_t *p, int64_t expires_ms)
{
    if (c->authenticated)
        principal_clear(&c->who);
    c->who = *p;
    c->authenticated = true;
    c->expires_ms = expires_ms;
}

bool realtime__client_sees(store_t *s, const rt_client_t *c, const rt_event_t *ev)
{
    if (!c->authenticated)
        return false;
    const char *me = c->who.user.id;
    if (ev->audience != NULL)
        return bsearch(me, ev->audience, ev->n_audience, sizeof(*ev->audience),
                       (int (*)(const void *, const void *))strcmp) != NULL;
    if (ev->also_user[0] && strcmp(ev->also_user, me) == 0)
        return true;
    if (ev->channel_id[0] == '\0' || set_has(&c->muted, ev->channel_id))
        return false;
    channel_access_t a;
    channel_access_get(s, &c->who.user, ev->channel_id, &a);
    bool member = a.member.role > CHAT_ROLE_NONE && !a.banned;
    bool sees = a.can_read && (member || set_has(&c->subscribed, ev->channel_id));
    /* A channel only members read: nothing from before one's membership,
     * which a resume from an old point would otherwise replay. */
    if (sees && a.channel.is_private && ev->at_ms < a.member.joined_at)
        sees = false;
    channel_access_clear(&a);
    return sees;
}

bool realtime__event_current(store_t *s, const rt_event_t *ev, char **frame, size_t *frame_len,
                             const char **data, size_t *data_len, bool *owned)
{
    *owned = false;
    if (ev->message_id[0]) {
        int64_t updated_at;
        bool deleted;
        if (!chat_message_state(s, ev->message_id, &updated_at, &deleted) || deleted)
            return false;
        if (updated_at != ev->message_updated_at) {
            chat_message_t m;
            if (!chat_message_get(s, ev->message_id, &m))
                return false;
            json_t *view = m.is_deleted ? NULL : message_json(s, &m);
            chat_message_clear(&m);
            char *text = view ? json_dumps(view, JSON_COMPACT) : NULL;
            json_decref(view);
            size_t off;
            bool ok = text && realtime__frame_render(ev->type, ev->seq, text, strlen(text),
                                                     frame, frame_len, &off);
            free(text);
            if (!ok)
                return false;
            *data = *frame + off;
            *data_len = *frame_len - off - 1;
            *owned = true;
            return true;
        }
    }
    *frame = ev->frame;
    *frame_len = ev->frame_len;
    *data = ev->data;
    *data_len = ev->data_len;
    return true;
}

void realtime__note_delivered(realtime_t *rt, const rt_client_t *c, rt_event_t *ev)
{
    if (ev->message_id[0] == '\0' || strcmp(ev->type, "message.created") != 0 ||
        atomic_load_explicit(&ev->delivered, memory_order_relaxed))
        return;
    /* The author is looked up only until the receipt is sent: the first
     * connection of another user ends it (the author's own ones do not). */
    chat_message_t m;
    if (!chat_message_get(rt->app->store, ev->message_id, &m))
        return;
    if (strcmp(m.user_id, c->who.user.id) != 0 && !atomic_exchange(&ev->delivered, true)) {
        const char *to = m.user_id;
        realtime_publish_to(rt, "message_status", &to, 1,
                            json_pack("{s:s, s:s, s:s, s:o}", "message_id", ev->message_id,
                                      "channel_id", ev->channel_id, "status", "delivered",
                                      "timestamp", time_json(clock_wall_ms())));
    }
    chat_message_clear(&m);
}

bool realtime__channel_resolve(store_t *s, const rt_client_t *c, const char *ref, char *out)
{
    if (strlen(ref) < STORE_ID_MAX && channel_readable(s, &c->who.user, ref)) {
        snprintf(out, STORE_ID_MAX, "%s", ref);
        return true;
    }
    /* Names are unique case-insensitively: the store's name index says which
     * channel carries it, then the same rule as for an id (a private channel
     * the user is not in is not found). */
    char id[STORE_ID_MAX];
    if (!chat_channel_by_name(s, ref, id) || !channel_readable(s, &c->who.user, id))
        return false;
    memcpy(out, id, STORE_ID_MAX);
    return true;
}

int realtime__client_subscribe(store_t *s, rt_client_t *c, const char *channel_id)
{
    if (!channel_readable(s, &c->who.user, channel_id))
        return -1;
    set_remove(&c->muted, channel_id);
    return set_add(&c->subscribed, channel_id);
}

int realtime__client_unsubscribe(rt_client_t *c, const char *channel_id)
{
    set_remove(&c->subscribed, channel_id);
    return set_add(&c->muted, channel_id);
}

void realtime__client_clear(rt_client_t *c)
{
    if (c->authenticated)
        principal_clear(&c->who);
    free(c->subscribed.ids);
    free(c->muted.ids);
    memset(c, 0, sizeof(*c));
}
