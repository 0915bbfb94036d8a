/*
 * Who may do what in a channel (include/parley/access.h), decided in one
 * place for HTTP answers and real-time delivery alike.
 *
 * The rules (docs/api.md): public channels are readable by every user and
 * open to posting by everyone not banned from them; private and direct
 * channels are read only by their members: an admin who is not one knows
 * such a channel exists (can_see: its object, deleting it) but reads none of
 * it, neither its messages, files, members nor events; owners, moderators and admins
 * moderate named channels (delete others' messages, invite, remove, ban);
 * a direct channel has no moderators: its "owner" is only the member who
 * opened it and deletes no one else's messages (an admin still may); owners
 * and admins change and delete the channel. A channel the caller may not
 * see answers 404, exactly like one that does not exist, so private
 * channels cannot be discovered by probing ids.
 */
#include "parley/access.h"

#include <string.h>

void channel_access_clear(channel_access_t *a)
{
    chat_channel_clear(&a->channel);
}

static void decide(const store_user_t *u, channel_access_t *a)
{
    bool member = a->member.role > CHAT_ROLE_NONE;
    a->banned = a->member.banned_at > 0;
    a->can_read = a->exists && (member || !a->channel.is_private);
    a->can_see = a->can_read || (a->exists && u->is_admin);
    a->can_post = a->can_read && !a->banned;
    a->is_owner = a->exists && (u->is_admin || a->member.role == CHAT_ROLE_OWNER);
    a->can_moderate =
        a->exists && (u->is_admin || (!a->channel.is_direct &&
                                      a->member.role >= CHAT_ROLE_MODERATOR));
}

void channel_access_get(store_t *s, const store_user_t *u, const char *channel_id,
                        channel_access_t *a)
{
    memset(a, 0, sizeof(*a));
    a->exists = chat_channel_get(s, channel_id, &a->channel) && !a->channel.is_deleted;
    if (!chat_membership_get(s, channel_id, u->id, &a->member))
        memset(&a->member, 0, sizeof(a->member));
    decide(u, a);
}

bool channel_readable(store_t *s, const store_user_t *u, const char *channel_id)
{
    channel_access_t a;
    channel_access_get(s, u, channel_id, &a);
    bool ok = a.can_read;
    channel_access_clear(&a);
    return ok;
}
