/*
 * Presence: a user is online while it holds at least one live WebSocket or
 * event stream. The count of connections per user is src/access/online.c's
 * (the user object's status reads it too); the first connection and the
 * last one publish a presence event to the users who share a channel with
 * the user, computed when the event is published.
 *
 * last_seen is written to the user's record when its last connection
 * closes, through the log like every change, without waiting for the fsync:
 * losing it in a crash loses nothing anyone was promised.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "parley/chat.h"
#include "parley/clock.h"

static int compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

char (*realtime__channel_peers(store_t *s, const char *user_id, size_t *n))[STORE_ID_MAX]
{
    *n = 0;
    size_t none;
    size_t total = chat_channel_list(s, user_id, NULL, 0, 0, NULL, &none);
    chat_channel_t *channels = calloc(total ? total : 1, sizeof(*channels));
    if (channels == NULL)
        return NULL;
    size_t n_channels = 0;
    chat_channel_list(s, user_id, NULL, 0, total, channels, &n_channels);
    char(*peers)[STORE_ID_MAX] = NULL;
    size_t n_peers = 0, cap_peers = 0;
    for (size_t i = 0; i < n_channels; i++) {
        chat_membership_t me;
        if (chat_membership_get(s, channels[i].id, user_id, &me) && me.role > CHAT_ROLE_NONE) {
            size_t count = chat_member_count(s, channels[i].id);
            chat_membership_t *members = calloc(count ? count : 1, sizeof(*members));
            size_t got = 0;
            if (members != NULL)
                chat_members(s, channels[i].id, 0, count, members, &got);
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
        chat_channel_clear(&channels[i]);
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

static void publish_presence(realtime_t *rt, const char *user_id, bool online, int64_t last_seen)
{
    size_t n = 0;
    char(*peers)[STORE_ID_MAX] = realtime__channel_peers(rt->app->store, user_id, &n);
    /* The user itself hears of it too (its other devices). */
    const char **audience = calloc(n + 1, sizeof(*audience));
    if (audience == NULL) {
        free(peers);
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
    json_t *data = json_pack("{s:s, s:s, s:o}", "user_id", user_id, "status",
                             online ? "online" : "offline", "last_seen",
                             last_seen ? time_json(last_seen) : json_null());
    realtime__bus_publish(rt->bus, "presence", NULL, NULL, audience, k, data);
    free(audience);
    free(peers);
}

void realtime__presence_opened(realtime_t *rt, const char *user_id)
{
    if (online_join(user_id))
        publish_presence(rt, user_id, true, 0);
}

static int set_last_seen(void *ctx, store_user_t *u)
{
    u->last_seen = *(const int64_t *)ctx;
    return 0;
}

void realtime__presence_closed(realtime_t *rt, const char *user_id)
{
    if (!online_leave(user_id))
        return;
    int64_t now = clock_wall_ms();
    uint64_t lsn;
    store_user_modify(rt->app->store, user_id, set_last_seen, &now, NULL, &lsn);
    publish_presence(rt, user_id, false, now);
}
