/*
 * Channel permissions and the JSON views of chat entities.
 *
 * The rules (shared/API.md): public channels are readable by every user and
 * open to posting by everyone not banned from them; private and direct
 * channels exist only for their members; owners, moderators and admins
 * moderate named channels (delete others' messages, invite, remove, ban);
 * a direct channel has no moderators: its "owner" is only the member who
 * opened it and deletes no one else's messages (an admin still may); owners
 * and admins change and delete the channel. A channel the caller may not
 * see answers 404, exactly like one that does not exist, so private
 * channels cannot be discovered by probing ids.
 */
#include "chat_view.h"

#include <stdio.h>
#include <string.h>

#include "parley/app.h"
#include "parley/files.h"

void channel_access_clear(channel_access_t *a)
{
    chat_channel_clear(&a->channel);
}

static void decide(const store_user_t *u, channel_access_t *a)
{
    bool member = a->member.role > CHAT_ROLE_NONE;
    a->banned = a->member.banned_at > 0;
    a->can_see = a->exists && (u->is_admin || member || !a->channel.is_private);
    a->can_read = a->can_see;
    a->can_post = a->can_see && !a->banned && (member || !a->channel.is_private);
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

bool channel_access_load(http_ctx_t *ctx, const principal_t *p, const char *channel_id,
                         channel_access_t *a)
{
    parley_app_t *app = ctx->app;
    channel_access_get(app->store, &p->user, channel_id, a);
    if (!a->can_see) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such channel");
        return false;
    }
    return true;
}

bool channel_readable(store_t *s, const store_user_t *u, const char *channel_id)
{
    channel_access_t a;
    channel_access_get(s, u, channel_id, &a);
    bool ok = a.can_read;
    channel_access_clear(&a);
    return ok;
}

json_t *channel_json(store_t *s, const chat_channel_t *c)
{
    json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:b, s:s, s:I, s:o, s:o}", "id", c->id, "name",
                          c->name, "description",
                          c->description ? json_string(c->description) : json_null(), "type",
                          c->is_direct ? "direct" : "channel", "is_private", c->is_private,
                          "owner_id", c->owner_id, "member_count",
                          (json_int_t)chat_member_count(s, c->id), "created_at",
                          time_json(c->created_at), "updated_at", time_json(c->updated_at));
    return o;
}

json_t *sender_json(store_t *s, const char *user_id)
{
    store_user_t u;
    if (!store_user_get(s, user_id, &u))
        return json_pack("{s:s, s:n, s:n, s:n}", "id", user_id, "username", "display_name",
                         "avatar_url");
    json_t *o = json_pack("{s:s, s:s, s:s, s:o}", "id", u.id, "username", u.username,
                          "display_name", u.display_name ? u.display_name : u.username,
                          "avatar_url", u.avatar_url ? json_string(u.avatar_url) : json_null());
    store_user_clear(&u);
    return o;
}

static json_t *id_list(char (*ids)[STORE_ID_MAX], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(ids[i]));
    return a;
}

static json_t *str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

json_t *file_view_json(const struct store_file *f)
{
    char url[96];
    snprintf(url, sizeof(url), "/api/v1/files/%s/download", f->id);
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:o, s:s, s:o, s:o}", "id", f->id,
                     "filename", f->filename, "size", (json_int_t)f->size, "content_type",
                     f->content_type, "sha256", f->sha256, "url", url, "channel_id",
                     f->channel_id[0] ? json_string(f->channel_id) : json_null(), "uploaded_by",
                     f->uploaded_by, "uploaded_at", time_json(f->uploaded_at), "description",
                     f->description ? json_string(f->description) : json_null());
}

/* The file objects of a message's attachments (deleted files left out). */
static json_t *attachments_json(store_t *s, const chat_message_t *m)
{
    json_t *a = json_array();
    for (size_t i = 0; i < m->n_attachments; i++) {
        store_file_t f;
        if (!store_file_get(s, m->attachments[i], &f))
            continue;
        if (!f.is_deleted)
            json_array_append_new(a, file_view_json(&f));
        store_file_clear(&f);
    }
    return a;
}

json_t *message_json(store_t *s, const chat_message_t *m)
{
    json_t *reactions = json_array();
    for (size_t i = 0; i < m->n_reactions; i++) {
        const chat_reaction_t *r = &m->reactions[i];
        json_array_append_new(reactions,
                              json_pack("{s:s, s:I, s:o}", "emoji", r->emoji, "count",
                                        (json_int_t)r->n_users, "users",
                                        id_list(r->users, r->n_users)));
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:b, s:b, s:o, s:o, s:o, s:o, "
                     "s:o}",
                     "id", m->id, "channel_id", m->channel_id, "user_id", m->user_id, "sender",
                     sender_json(s, m->user_id), "content",
                     m->is_deleted || m->content == NULL ? json_null() : json_string(m->content),
                     "content_type", "text", "created_at", time_json(m->created_at),
                     "updated_at", time_json(m->updated_at), "is_edited", m->is_edited,
                     "is_deleted", m->is_deleted, "reply_to", str_or_null(m->reply_to),
                     "thread_id", str_or_null(m->thread_id), "mentions",
                     id_list(m->mentions, m->n_mentions), "attachments", attachments_json(s, m),
                     "reactions", reactions);
}
