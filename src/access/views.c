/*
 * The API's JSON objects (docs/api.md): users, channels, messages, files
 * and senders, the same for HTTP answers and real-time events, and pages of
 * messages assembled from cached views.
 *
 * A history or thread page is copied together from each message's JSON text
 * (view_cache.c) instead of being built and encoded by jansson on every
 * read. A text answers only under the stamp it was made with (see
 * message_key/message_stamp_now below).
 */
#include "parley/access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/clock.h"
#include "parley/files.h"
#include "parley/text_buf.h"
#include "parley/view_cache.h"

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *time_json(int64_t ms)
{
    if (ms == 0)
        return json_null();
    char buf[CLOCK_RFC3339_LEN];
    clock_format_rfc3339(ms, buf);
    return json_string(buf);
}

json_t *user_permissions_json(const store_user_t *u)
{
    static const char *const everyone[] = {"messages.read", "messages.write", "channels.create",
                                           "files.upload", "profile.edit"};
    static const char *const admins[] = {"users.create", "users.manage", "moderation.manage",
                                         "settings.manage", "audit.read", "system.manage"};
    json_t *list = json_array();
    for (size_t i = 0; i < sizeof(everyone) / sizeof(everyone[0]); i++)
        json_array_append_new(list, json_string(everyone[i]));
    for (size_t i = 0; u->is_admin && i < sizeof(admins) / sizeof(admins[0]); i++)
        json_array_append_new(list, json_string(admins[i]));
    return list;
}

json_t *user_json(const store_user_t *u, bool full, bool self)
{
    json_t *roles = json_array();
    json_array_append_new(roles, json_string("user"));
    if (u->is_admin)
        json_array_append_new(roles, json_string("admin"));
    json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:b}", "id", u->id,
                          "username", u->username, "display_name",
                          str_or_null(u->display_name ? u->display_name : u->username), "bio",
                          str_or_null(u->bio), "avatar_url", str_or_null(u->avatar_url), "roles",
                          roles, "status", online_status(u->id), "last_seen",
                          time_json(u->last_seen), "created_at", time_json(u->created_at), "is_active", u->is_active);
    if (full)
        json_object_set_new(o, "email", json_string(u->email));
    if (self) {
        json_object_set_new(o, "mfa_enabled", json_boolean(u->mfa_enabled));
        json_object_set_new(o, "last_login", time_json(u->last_login));
        json_object_set_new(o, "permissions", user_permissions_json(u));
        json_t *prefs = u->preferences ? json_loads(u->preferences, 0, NULL) : NULL;
        json_object_set_new(o, "preferences", prefs ? prefs : json_object());
    }
    return o;
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

/* The sender object; *rev gets the user's rev (0: no such user). */
static json_t *sender_view(store_t *s, const char *user_id, uint32_t *rev)
{
    store_user_t u;
    if (!store_user_get(s, user_id, &u)) {
        *rev = 0;
        return json_pack("{s:s, s:n, s:n, s:n}", "id", user_id, "username", "display_name",
                         "avatar_url");
    }
    *rev = u.rev;
    if (u.deleted_at != 0) {
        /* Its username may belong to someone else now. */
        store_user_clear(&u);
        return json_pack("{s:s, s:n, s:s, s:n, s:b}", "id", user_id, "username", "display_name",
                         "Deleted user", "avatar_url", "is_deleted", 1);
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:o}", "id", u.id, "username", u.username,
                          "display_name", u.display_name ? u.display_name : u.username,
                          "avatar_url", u.avatar_url ? json_string(u.avatar_url) : json_null());
    store_user_clear(&u);
    return o;
}

json_t *sender_json(store_t *s, const char *user_id)
{
    uint32_t rev;
    return sender_view(s, user_id, &rev);
}

static json_t *id_list(char (*ids)[STORE_ID_MAX], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(ids[i]));
    return a;
}

/* null for NULL and for "" (ids and names of chat entities). */
static json_t *text_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

json_t *file_view_json(const struct store_file *f)
{
    char url[96];
    snprintf(url, sizeof(url), "/api/v1/files/%s/download", f->id);
    /* original_filename (PlexiChat 001): the name as sent, sanitised at
     * upload (h_files.c); the stored filename is that very name. */
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:s, s:b, s:o, s:o}",
                     "id", f->id,
                     "filename", f->filename, "size", (json_int_t)f->size, "content_type",
                     f->content_type, "sha256", f->sha256, "url", url, "channel_id",
                     f->channel_id[0] ? json_string(f->channel_id) : json_null(), "uploaded_by",
                     f->uploaded_by, "uploaded_at", time_json(f->uploaded_at), "description",
                     f->description ? json_string(f->description) : json_null(),
                     "original_filename", f->filename, "is_public", f->is_public, "width",
                     f->width ? json_integer(f->width) : json_null(), "height",
                     f->height ? json_integer(f->height) : json_null());
}

/*
 * The stamp of a message view: the message's id and rev, its sender's rev
 * and its files' revs, mixed. The store changes a rev at every apply, so
 * any change to what the view shows changes the stamp. message_view()
 * stamps from the very copies it renders; message_stamp_now() from the
 * revs alone (no copies), for a cache lookup.
 */
static uint64_t message_key(const chat_message_t *m)
{
    return view_hash_text(0, m->id);
}

/* The senders' revs already looked up for one page (pages have few). */
#define SENDER_MEMO 8

typedef struct sender_memo {
    const char *user_id[SENDER_MEMO];
    uint32_t rev[SENDER_MEMO];
    size_t n;
} sender_memo_t;

static uint32_t sender_rev(store_t *s, sender_memo_t *memo, const char *user_id)
{
    for (size_t i = 0; i < memo->n; i++)
        if (strcmp(memo->user_id[i], user_id) == 0)
            return memo->rev[i];
    uint32_t rev = store_user_rev(s, user_id);
    if (memo->n < SENDER_MEMO) {
        memo->user_id[memo->n] = user_id;
        memo->rev[memo->n++] = rev;
    }
    return rev;
}

static uint64_t message_stamp_now(store_t *s, sender_memo_t *memo, const chat_message_t *m,
                                  uint64_t key)
{
    uint64_t st = view_hash_word(key, m->rev);
    st = view_hash_word(st, sender_rev(s, memo, m->user_id));
    for (size_t i = 0; i < m->n_attachments; i++)
        st = view_hash_word(st, store_file_rev(s, m->attachments[i]));
    return st;
}

/* The file objects of a message's attachments (deleted files left out),
 * their revs mixed into *stamp. */
static json_t *attachments_json(store_t *s, const chat_message_t *m, uint64_t *stamp)
{
    json_t *a = json_array();
    for (size_t i = 0; i < m->n_attachments; i++) {
        store_file_t f;
        if (!store_file_get(s, m->attachments[i], &f)) {
            *stamp = view_hash_word(*stamp, 0);
            continue;
        }
        *stamp = view_hash_word(*stamp, f.rev);
        if (!f.is_deleted)
            json_array_append_new(a, file_view_json(&f));
        store_file_clear(&f);
    }
    return a;
}

static json_t *message_view(store_t *s, const chat_message_t *m, uint64_t *stamp)
{
    json_t *reactions = json_array();
    for (size_t i = 0; i < m->n_reactions; i++) {
        const chat_reaction_t *r = &m->reactions[i];
        json_array_append_new(reactions,
                              json_pack("{s:s, s:I, s:o}", "emoji", r->emoji, "count",
                                        (json_int_t)r->n_users, "users",
                                        id_list(r->users, r->n_users)));
    }
    uint32_t sender_rev;
    json_t *sender = sender_view(s, m->user_id, &sender_rev);
    *stamp = view_hash_word(view_hash_word(message_key(m), m->rev), sender_rev);
    json_t *attachments = attachments_json(s, m, stamp);
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:b, s:b, s:o, s:o, s:o, s:o, "
                     "s:o}",
                     "id", m->id, "channel_id", m->channel_id, "user_id", m->user_id, "sender",
                     sender, "content",
                     m->is_deleted || m->content == NULL ? json_null() : json_string(m->content),
                     "content_type", "text", "created_at", time_json(m->created_at),
                     "updated_at", time_json(m->updated_at), "is_edited", m->is_edited,
                     "is_deleted", m->is_deleted, "reply_to", text_or_null(m->reply_to),
                     "thread_id", text_or_null(m->thread_id), "mentions",
                     id_list(m->mentions, m->n_mentions), "attachments", attachments,
                     "reactions", reactions);
}

json_t *message_json(store_t *s, const chat_message_t *m)
{
    uint64_t stamp;
    return message_view(s, m, &stamp);
}

/* Appends the JSON text of message_json(m) to out: from `views` when the
 * cached text is current, else rendered and cached. false: the text could
 * not be made (out may hold part of it). The memo's revs were read before m
 * was rendered, as the stamp requires (see above). */
static bool message_view_append(store_t *s, view_cache_t *views, sender_memo_t *memo,
                                const chat_message_t *m, text_buf_t *out)
{
    /* rev 0: a message that is not a copy out of the store. */
    bool cacheable = views != NULL && m->rev != 0;
    uint64_t key = message_key(m);
    if (cacheable && view_cache_append(views, key, message_stamp_now(s, memo, m, key), out))
        return true;
    uint64_t stamp;
    json_t *view = message_view(s, m, &stamp);
    char *text = json_dumps(view, JSON_COMPACT);
    json_decref(view);
    if (text == NULL)
        return false;
    size_t len = strlen(text);
    if (cacheable)
        view_cache_put(views, key, stamp, text, len);
    bool ok = text_buf_append(out, text, len);
    free(text);
    return ok;
}

char *message_page_text(store_t *s, struct view_cache *views, const chat_message_t *list,
                        size_t n, json_t *rest)
{
    /* Splices texts jansson encoded: the views (cached or new) as the
     * elements of "messages", then rest's members. */
    text_buf_t page = {0};
    sender_memo_t memo = {.n = 0};
    char *tail = json_dumps(rest, JSON_COMPACT);
    json_decref(rest);
    /* Sized for typical views (~550 bytes) so the page is rarely copied. */
    bool ok = tail != NULL && text_buf_reserve(&page, 1024 + n * 768) &&
              text_buf_puts(&page, "{\"messages\":[");
    for (size_t i = 0; ok && i < n; i++) {
        if (i > 0)
            text_buf_append(&page, ",", 1);
        ok = message_view_append(s, views, &memo, &list[i], &page);
    }
    if (ok && strcmp(tail, "{}") != 0) {
        text_buf_puts(&page, "],");
        text_buf_puts(&page, tail + 1);
    } else if (ok) {
        text_buf_puts(&page, "]}");
    }
    free(tail);
    if (!ok || page.failed) {
        free(page.data);
        return NULL;
    }
    return page.data;
}
