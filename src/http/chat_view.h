/* Who may do what in a channel, and the JSON of channels and messages
 * (chat_view.c), shared by the channel, message and search resources. */
#ifndef PARLEY_HTTP_CHAT_VIEW_H
#define PARLEY_HTTP_CHAT_VIEW_H

#include <jansson.h>

#include "parley/app.h"
#include "parley/chat.h"
#include "parley/http.h"
#include "principal.h"
#include "view_cache.h"

/* What the caller may do in one channel. */
typedef struct channel_access {
    chat_channel_t channel;     /* a copy; access_clear frees it */
    chat_membership_t member;   /* zeroed when the caller never was one */
    bool exists;                /* and is not deleted */
    bool can_see;               /* public, or a member (admins see everything) */
    bool can_read;              /* same as can_see */
    bool can_post;              /* can read and is not banned (public: anyone) */
    bool can_moderate;          /* owner, moderator or admin (direct channels: admin only) */
    bool is_owner;              /* owner or admin */
    bool banned;
} channel_access_t;

/*
 * Loads the channel and the caller's relation to it. Returns true when the
 * caller may see it; otherwise answers 404 (a channel one may not see does
 * not exist, for that caller) and returns false. access_clear() in both
 * cases.
 */
bool channel_access_load(http_ctx_t *ctx, const principal_t *p, const char *channel_id,
                         channel_access_t *a);
void channel_access_clear(channel_access_t *a);

/* The same without answering (real-time delivery, typing): *a filled
 * whatever it says; access_clear() after. */
void channel_access_get(store_t *s, const store_user_t *u, const char *channel_id,
                        channel_access_t *a);

/* Only whether the user may read the channel (search filters, listings). */
bool channel_readable(store_t *s, const store_user_t *u, const char *channel_id);

/* {id, name, description, type, is_private, owner_id, member_count, created_at, updated_at} */
json_t *channel_json(store_t *s, const chat_channel_t *c);

/* The API's message object, with the sender's public profile. */
json_t *message_json(store_t *s, const chat_message_t *m);

/* Answers 200 with {"messages": [the views of list[0..n)], ...the members
 * of rest} (rest consumed; an object). The views come from app->views when
 * the cached text is current (same message, sender and file revs), else are
 * rendered and cached; list must be copies out of the store (revs set). */
void http_reply_message_page(http_ctx_t *ctx, const chat_message_t *list, size_t n,
                             json_t *rest);

/* The API's file object {id, filename, size, content_type, sha256, url,
 * channel_id, uploaded_by, uploaded_at, description}. */
struct store_file;
json_t *file_view_json(const struct store_file *f);

/* {id, username, display_name, avatar_url} of a user, or nulls when gone. */
json_t *sender_json(store_t *s, const char *user_id);

#endif
