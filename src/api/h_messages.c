/*
 * Messages (docs/api.md, "Messages"): posting (with replies, mentions and
 * idempotency keys), history with cursors or offsets, one message, edit,
 * delete, threads and reactions.
 *
 * History takes the other seed documents' names too (chat_id, before_id,
 * after_id: aliases, refused when they disagree with the name they stand
 * for, never ignored), offset pages (skip, counted from the newest, O(limit)
 * as the channel's list is an array in creation order) and a direct
 * conversation by its other user (recipient_id); every page carries
 * PlexiChat's pagination object beside the flat has_more/next_cursor.
 *
 * A post is answered 201 once its record is durable; the same
 * idempotency_key from the same user in the same channel answers 200 with the
 * first message (keys are scoped to (user, channel): the same key elsewhere
 * is another post;
 * the key lives in the message record, so this holds across restarts;
 * keys are 1-128 bytes, refused rather than cut, so two keys never meet).
 * Mentions are the union of the `mentions` ids given and the @usernames
 * found in the content. A deleted message keeps its place in the history
 * with is_deleted true and no content.
 */
#include <stdlib.h>
#include <string.h>

#include "resource.h"
#include "parley/app.h"
#include "parley/clock.h"
#include "parley/file_life.h"
#include "parley/files.h"
#include "parley/realtime.h"
#include "parley/rules.h"
#include "parley/xalloc.h"

#define EMOJI_MAX_CHARS 32
/* ?skip= of history: at most 15 digits (any such offset costs the same:
 * past the end is an empty page). */
#define HISTORY_SKIP_DIGITS 15

static bool durable(http_ctx_t *ctx, int rc, uint64_t lsn)
{
    parley_app_t *app = ctx->app;
    if (rc == 0)
        rc = store_wait(app->store, lsn);
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return false;
    }
    return true;
}

/* Trimmed length in code points, without copying. */
static size_t trimmed_chars(const char *s, size_t *start, size_t *len)
{
    size_t n = strlen(s), a = 0, b = n;
    while (a < b && (s[a] == ' ' || s[a] == '\n' || s[a] == '\r' || s[a] == '\t'))
        a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\n' || s[b - 1] == '\r' || s[b - 1] == '\t'))
        b--;
    *start = a;
    *len = b - a;
    return http_utf8_length(s + a, b - a);
}

/* Reads and checks `content`: 1-4000 characters after trimming (0-4000
 * when allow_empty: a message of attachments only). Returns a malloc'd
 * trimmed copy, or NULL after answering. */
static char *read_content(http_ctx_t *ctx, bool allow_empty)
{
    const char *content = NULL;
    if (http_field_string(ctx, "content", !allow_empty, 0, 100000, true, &content) != 0)
        return NULL;
    if (content == NULL)
        content = "";
    size_t start, len;
    size_t chars = trimmed_chars(content, &start, &len);
    if ((chars < 1 && !allow_empty) || chars > CHAT_CONTENT_MAX) {
        http_reply_invalid(ctx, "content", "content must be 1-%d characters", CHAT_CONTENT_MAX);
        return NULL;
    }
    char *out = xmalloc(len + 1);
    memcpy(out, content + start, len);
    out[len] = '\0';
    return out;
}

static void add_mention(chat_message_t *m, const char *user_id)
{
    for (size_t i = 0; i < m->n_mentions; i++)
        if (strcmp(m->mentions[i], user_id) == 0)
            return;
    m->mentions = xrealloc(m->mentions, (m->n_mentions + 1) * sizeof(*m->mentions));
    snprintf(m->mentions[m->n_mentions++], STORE_ID_MAX, "%s", user_id);
}

/* @username in the content, at the start or after a space. */
static void mentions_in_text(store_t *s, chat_message_t *m)
{
    for (const char *p = strchr(m->content, '@'); p && m->n_mentions < 50; p = strchr(p + 1, '@')) {
        if (p != m->content && p[-1] != ' ' && p[-1] != '\n' && p[-1] != '(')
            continue;
        char name[STORE_USERNAME_MAX];
        size_t n = 0;
        for (const char *q = p + 1; n + 1 < sizeof(name) &&
                                    ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                                     (*q >= '0' && *q <= '9') || *q == '_' || *q == '.' ||
                                     *q == '-');
             q++)
            name[n++] = *q;
        name[n] = '\0';
        while (n > 0 && name[n - 1] == '.')
            name[--n] = '\0'; /* "@bob." ends a sentence */
        store_user_t u;
        if (rules_username_ok(name) && store_user_find(s, name, &u)) {
            if (strcasecmp(u.username, name) == 0)
                add_mention(m, u.id);
            store_user_clear(&u);
        }
    }
}

/* Posts into channel_id, or into the body's channel_id when NULL (read
 * after authentication, so a caller without credentials learns nothing). */
#define MAX_ATTACHMENTS 10

/* Whether a file already attached to a message may be attached again by
 * this post: only when the post is a retry of that very message (same user,
 * same idempotency key), which then answers the first message. */
static bool retry_of_holder(store_t *s, const store_file_t *f, const char *user_id,
                            const char *key)
{
    chat_message_t held;
    if (key == NULL || !chat_message_get(s, f->message_id, &held))
        return false;
    bool same = strcmp(held.user_id, user_id) == 0 && strcmp(held.idempotency_key, key) == 0;
    chat_message_clear(&held);
    return same;
}

/*
 * Checks the attachments of a new message and lists them in m, without
 * changing anything. Each must be a live file (an avatar too: its life
 * follows both references, file_life_release), and either the poster's own upload (outside channels, or in this channel) not
 * attached to another message, or, when the poster moderates the channel, a
 * file of this channel (a moderator shares it; it stays its uploader's).
 * So nobody can take another member's file into a message of their own and
 * delete it with the message. Answers 422 and returns false on a bad one.
 */
static bool attach_files(http_ctx_t *ctx, const principal_t *p, const channel_access_t *a,
                         const char *key, json_t *att, chat_message_t *m)
{
    const char *channel_id = a->channel.id;
    parley_app_t *app = ctx->app;
    size_t i;
    json_t *v;
    json_array_foreach(att, i, v) {
        const char *id = json_string_value(v);
        store_file_t f;
        if (id == NULL || strlen(id) >= STORE_ID_MAX || !store_file_get(app->store, id, &f)) {
            http_reply_invalid(ctx, "attachments", "attachments must be ids of uploaded files");
            return false;
        }
        bool mine = strcmp(f.uploaded_by, p->user.id) == 0;
        bool here = strcmp(f.channel_id, channel_id) == 0;
        bool ok = !f.is_deleted &&
                  ((mine && (here || f.channel_id[0] == '\0')) || (here && a->can_moderate));
        bool held = ok && mine && f.message_id[0] &&
                    !retry_of_holder(app->store, &f, p->user.id, key);
        store_file_clear(&f);
        if (!ok) {
            http_reply_invalid(ctx, "attachments",
                               "attachments must be your own uploads (a moderator may "
                               "also attach files of this channel)");
            return false;
        }
        if (held) {
            http_reply_invalid(ctx, "attachments",
                               "a file is attached to one message only; upload it again");
            return false;
        }
        bool dup = false;
        for (size_t k = 0; k < m->n_attachments; k++)
            dup = dup || strcmp(m->attachments[k], id) == 0;
        if (dup)
            continue;
        m->attachments = xrealloc(m->attachments, (m->n_attachments + 1) * sizeof(*m->attachments));
        snprintf(m->attachments[m->n_attachments++], STORE_ID_MAX, "%s", id);
    }
    return true;
}

/* Ties the attachments of a posted message to it: each of the author's
 * own names the message (so deleting the message deletes it), and one
 * uploaded outside channels moves into the message's channel, readable by
 * whoever reads the message. A file a moderator shared is left as it is
 * (its uploader's, in this channel already). Runs once the message is
 * durable. */
static bool share_attachments(http_ctx_t *ctx, const chat_message_t *m)
{
    parley_app_t *app = ctx->app;
    for (size_t i = 0; i < m->n_attachments; i++) {
        store_file_t f;
        if (!store_file_get(app->store, m->attachments[i], &f))
            continue;
        int rc = 0;
        uint64_t lsn;
        if (!f.is_deleted && strcmp(f.uploaded_by, m->user_id) == 0 &&
            (strcmp(f.channel_id, m->channel_id) != 0 || strcmp(f.message_id, m->id) != 0)) {
            snprintf(f.channel_id, sizeof(f.channel_id), "%s", m->channel_id);
            snprintf(f.message_id, sizeof(f.message_id), "%s", m->id);
            rc = store_file_put(app->store, &f, &lsn, NULL);
            if (rc == 0)
                rc = store_wait(app->store, lsn);
        }
        store_file_clear(&f);
        if (rc != 0) {
            reply_store_error(ctx, rc);
            return false;
        }
    }
    return true;
}

/* The body's channel_id, or chat_id (Fechatter's and Chat API's name for
 * it): false after answering 422 (neither given, malformed, or both given
 * and different: naming chat_id). */
static bool body_channel(http_ctx_t *ctx, const char **channel_id)
{
    const char *id = NULL, *alias = NULL;
    if (http_field_string(ctx, "channel_id", false, 1, STORE_ID_MAX - 1, false, &id) != 0 ||
        http_field_string(ctx, "chat_id", false, 1, STORE_ID_MAX - 1, false, &alias) != 0)
        return false;
    if (id && alias && strcmp(id, alias) != 0) {
        http_reply_invalid(ctx, "chat_id", "chat_id and channel_id name the same thing; give one");
        return false;
    }
    if (id == NULL && alias == NULL) {
        http_reply_invalid(ctx, "channel_id", "channel_id is required");
        return false;
    }
    *channel_id = id ? id : alias;
    return true;
}

static void post_in(http_ctx_t *ctx, const char *channel_id)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    channel_access_t a;
    memset(&a, 0, sizeof(a));
    chat_message_t m;
    memset(&m, 0, sizeof(m));
    if (channel_id == NULL && !body_channel(ctx, &channel_id))
        goto out;
    if (!channel_access_load(ctx, p, channel_id, &a))
        goto out;
    if (!a.can_post) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         a.banned ? "you are banned from this channel"
                                  : "only members may post in this channel");
        goto out;
    }
    json_t *att = json_object_get(ctx->body, "attachments");
    if (json_is_null(att))
        att = NULL;
    if (att && (!json_is_array(att) || json_array_size(att) > MAX_ATTACHMENTS)) {
        http_reply_invalid(ctx, "attachments", "attachments must be a list of up to %d file ids",
                           MAX_ATTACHMENTS);
        goto out;
    }
    const char *reply_to = NULL, *key = NULL;
    if (!field_only_value(ctx, "content_type", "text") ||
        (m.content = read_content(ctx, att && json_array_size(att) > 0)) == NULL ||
        http_field_string(ctx, "reply_to", false, 1, STORE_ID_MAX - 1, false, &reply_to) != 0 ||
        http_field_string(ctx, "idempotency_key", false, 1, CHAT_IDEMPOTENCY_MAX - 1, false,
                          &key) != 0)
        goto out;
    /* The limits above count characters; the record's fields are bytes. */
    if (reply_to && strlen(reply_to) >= STORE_ID_MAX) {
        http_reply_invalid(ctx, "reply_to", "reply_to must be a message of this channel");
        goto out;
    }
    if (key && strlen(key) >= CHAT_IDEMPOTENCY_MAX) {
        http_reply_invalid(ctx, "idempotency_key", "idempotency_key must be 1-%d bytes of UTF-8",
                           CHAT_IDEMPOTENCY_MAX - 1);
        goto out;
    }
    if (att && !attach_files(ctx, p, &a, key, att, &m))
        goto out;
    json_t *mentions = json_object_get(ctx->body, "mentions");
    if (mentions && !json_is_null(mentions)) {
        if (!json_is_array(mentions) || json_array_size(mentions) > 50) {
            http_reply_invalid(ctx, "mentions", "mentions must be a list of up to 50 user ids");
            goto out;
        }
        size_t i;
        json_t *v;
        json_array_foreach(mentions, i, v) {
            const char *id = json_string_value(v);
            store_user_t u;
            if (id == NULL || strlen(id) >= STORE_ID_MAX || !store_user_get(app->store, id, &u)) {
                http_reply_invalid(ctx, "mentions", "mentions must be ids of existing users");
                goto out;
            }
            store_user_clear(&u);
            add_mention(&m, id);
        }
    }
    mentions_in_text(app->store, &m);
    snprintf(m.channel_id, sizeof(m.channel_id), "%s", a.channel.id);
    snprintf(m.user_id, sizeof(m.user_id), "%s", p->user.id);
    if (reply_to)
        snprintf(m.reply_to, sizeof(m.reply_to), "%s", reply_to);
    if (key)
        snprintf(m.idempotency_key, sizeof(m.idempotency_key), "%s", key);
    m.created_at = m.updated_at = clock_wall_ms();
    bool existing = false;
    uint64_t lsn;
    int rc = chat_message_post(app->store, &m, &existing, &lsn);
    if (rc == STORE_E_NOT_FOUND) {
        http_reply_invalid(ctx, "reply_to", "reply_to must be a message of this channel");
        goto out;
    }
    if (durable(ctx, rc, lsn) && share_attachments(ctx, &m)) {
        /* One serialisation for the answer and the event. */
        json_t *view = message_json(app->store, &m);
        char *text = json_dumps(view, JSON_COMPACT);
        json_decref(view);
        if (!existing && text)
            realtime_publish_message(app->realtime, "message.created", m.channel_id, m.id,
                                     m.updated_at, text);
        http_reply_json_text(ctx, existing ? 200 : 201, text);
    }
out:
    chat_message_clear(&m);
    channel_access_clear(&a);
}

static void post_channel_message(http_ctx_t *ctx)
{
    post_in(ctx, ctx->params[0]);
}

static void post_message(http_ctx_t *ctx)
{
    post_in(ctx, NULL);
}

/*
 * A query parameter under its own name or an alias (the name another seed
 * document gives it: Fechatter's before_id, chat_id...): *out the value,
 * NULL when neither is given. Both given and different: answers 422 naming
 * the alias and returns false.
 */
static bool query_alias(http_ctx_t *ctx, const char *name, const char *alias, const char **out)
{
    const char *v = http_query(ctx, name), *w = http_query(ctx, alias);
    if (v && w && strcmp(v, w) != 0) {
        http_reply_invalid(ctx, alias, "%s and %s name the same thing; give one", alias, name);
        return false;
    }
    *out = v ? v : w;
    return true;
}

/* The name the caller used of a parameter and its alias (for 422s). */
static const char *used_name(http_ctx_t *ctx, const char *name, const char *alias)
{
    return http_query(ctx, name) || !http_query(ctx, alias) ? name : alias;
}

/* ?skip= (offset paging): *skip and *given; false after answering 422. */
static bool read_skip(http_ctx_t *ctx, uint64_t *skip, bool *given)
{
    const char *v = http_query(ctx, "skip");
    *given = v != NULL;
    *skip = 0;
    if (v == NULL)
        return true;
    size_t n = strlen(v);
    bool ok = n >= 1 && n <= HISTORY_SKIP_DIGITS;
    for (size_t i = 0; ok && i < n; i++)
        ok = v[i] >= '0' && v[i] <= '9';
    if (!ok) {
        http_reply_invalid(ctx, "skip", "skip must be a whole number from 0 (at most %d digits)",
                           HISTORY_SKIP_DIGITS);
        return false;
    }
    *skip = strtoull(v, NULL, 10);
    return true;
}

/*
 * The channel a history request reads: the path's, ?channel_id= (alias
 * chat_id), or the caller's direct conversation with ?recipient_id= (Chat
 * API). Fills a (a.channel.id[0] == '\0': a conversation not opened yet,
 * read as empty). Returns false after answering: 422 channel_id (none
 * given), recipient_id (with a channel, or the caller itself), 404 (no such
 * user; a channel the caller may not see).
 */
static bool history_channel(http_ctx_t *ctx, const char *channel_id, channel_access_t *a)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    const char *recipient = NULL;
    if (channel_id == NULL) {
        if (!query_alias(ctx, "channel_id", "chat_id", &channel_id))
            return false;
        recipient = http_query(ctx, "recipient_id");
        if (recipient && channel_id) {
            http_reply_invalid(ctx, "recipient_id", "give channel_id or recipient_id, not both");
            return false;
        }
        if (!recipient && !channel_id) {
            http_reply_invalid(ctx, "channel_id", "channel_id (or recipient_id) is required");
            return false;
        }
    }
    if (recipient == NULL)
        return channel_access_load(ctx, p, channel_id, a);
    store_user_t u;
    if (strlen(recipient) >= STORE_ID_MAX || !store_user_get(app->store, recipient, &u)) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such user");
        return false;
    }
    store_user_clear(&u);
    if (strcmp(recipient, p->user.id) == 0) {
        http_reply_invalid(ctx, "recipient_id", "recipient_id must be another user");
        return false;
    }
    const char *pair[2] = {p->user.id, recipient};
    char *key = chat_direct_key(pair, 2);
    char id[STORE_ID_MAX];
    bool found = key && chat_direct_find(app->store, key, id);
    free(key);
    if (found)
        channel_access_get(app->store, &p->user, id, a);
    if (!found || !a->can_read) { /* none, or one the caller left: nothing to read */
        channel_access_clear(a);
        memset(a, 0, sizeof(*a));
    }
    return true;
}

/* History of channel_id, or of the query's channel (history_channel; read
 * after authentication). Pages by cursor (before/after, aliases
 * before_id/after_id) or by offset from the newest (skip). */
static void history(http_ctx_t *ctx, const char *channel_id)
{
    parley_app_t *app = ctx->app;
    channel_access_t a;
    memset(&a, 0, sizeof(a));
    if (!history_channel(ctx, channel_id, &a))
        goto out;
    long limit = 50;
    const char *lim = http_query(ctx, "limit");
    if (lim) {
        char *end;
        limit = strtol(lim, &end, 10);
        if (lim[0] < '0' || lim[0] > '9' || *end != '\0' || limit < 1 || limit > 100) {
            http_reply_invalid(ctx, "limit", "limit must be a whole number from 1 to 100");
            goto out;
        }
    }
    const char *before, *after;
    if (!query_alias(ctx, "before", "before_id", &before) ||
        !query_alias(ctx, "after", "after_id", &after))
        goto out;
    const char *before_name = used_name(ctx, "before", "before_id");
    const char *after_name = used_name(ctx, "after", "after_id");
    if (before && after) {
        http_reply_invalid(ctx, before_name, "give before or after, not both");
        goto out;
    }
    uint64_t skip;
    bool by_offset;
    if (!read_skip(ctx, &skip, &by_offset))
        goto out;
    if (by_offset && (before || after)) {
        http_reply_invalid(ctx, "skip", "skip pages by offset: not with before or after");
        goto out;
    }
    const char *id = a.channel.id;
    chat_message_t list[100];
    size_t n = 0, total = 0;
    bool more = false;
    if (by_offset) {
        chat_history_skip(app->store, id, skip, (size_t)limit, list, &n, &more, &total);
    } else {
        int rc = id[0] ? chat_history(app->store, id, before, after, (size_t)limit, list, &n,
                                      &more)
                       : (before || after ? STORE_E_NOT_FOUND : 0);
        if (rc == STORE_E_NOT_FOUND) {
            http_reply_invalid(ctx, before ? before_name : after_name,
                               "the cursor is not a message of this channel");
            goto out;
        }
        total = id[0] ? chat_history_count(app->store, id) : 0;
    }
    /* Paging goes back in time by default (before, and skip), forward with
     * after. */
    json_t *cursor = json_null();
    if (more && n > 0)
        cursor = json_string(after ? list[n - 1].id : list[0].id);
    json_t *rest = json_pack("{s:b, s:O, s:{s:b, s:o, s:I}}", "has_more", more, "next_cursor",
                             cursor, "pagination", "has_more", more, "next_cursor", cursor,
                             "total_count", (json_int_t)total);
    if (channel_id == NULL && http_query(ctx, "recipient_id"))
        json_object_set_new(rest, "channel_id", id[0] ? json_string(id) : json_null());
    http_reply_message_page(ctx, list, n, rest);
    for (size_t i = 0; i < n; i++)
        chat_message_clear(&list[i]);
out:
    channel_access_clear(&a);
}

static void get_channel_messages(http_ctx_t *ctx)
{
    history(ctx, ctx->params[0]);
}

static void get_messages(http_ctx_t *ctx)
{
    history(ctx, NULL);
}

static void get_message(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    chat_message_t m;
    channel_access_t a;
    /* ?read_state=true: its author sees who read it (receipts.c); nobody
     * else does. Asked for, so the message object stays the same. */
    const char *rs = http_query(ctx, "read_state");
    if (rs && strcmp(rs, "true") != 0 && strcmp(rs, "false") != 0) {
        http_reply_invalid(ctx, "read_state", "read_state must be true or false");
        return;
    }
    if (message_access_load(ctx, p, ctx->params[0], &m, &a)) {
        json_t *view = message_json(app->store, &m);
        if (view && rs && strcmp(rs, "true") == 0 && strcmp(m.user_id, p->user.id) == 0)
            receipts_add_read_state(app->store, &m, view);
        reply_fields(ctx, 200, FIELDS_MESSAGE, view);
        chat_message_clear(&m);
    }
    channel_access_clear(&a);
}

/* Changes made by chat_message_modify under the store's lock. */
typedef struct message_change {
    enum { EDIT, DELETE, REACT, UNREACT } what;
    char *content;
    const char *emoji;
    const char *user_id;
} message_change_t;

enum { GONE = 1, NO_SUCH_REACTION, UNCHANGED };

static int change_message(void *ctx, chat_message_t *m)
{
    message_change_t *c = ctx;
    if (m->is_deleted)
        return GONE;
    switch (c->what) {
    case EDIT:
        free(m->content);
        m->content = strdup(c->content);
        m->is_edited = true;
        break;
    case DELETE:
        free(m->content);
        m->content = NULL;
        m->is_deleted = true;
        break;
    case REACT:
    case UNREACT: {
        chat_reaction_t *r = NULL;
        for (size_t i = 0; i < m->n_reactions && !r; i++)
            if (strcmp(m->reactions[i].emoji, c->emoji) == 0)
                r = &m->reactions[i];
        size_t at = r ? r->n_users : 0;
        for (size_t i = 0; r && i < r->n_users; i++)
            if (strcmp(r->users[i], c->user_id) == 0)
                at = i;
        bool has = r && at < r->n_users;
        if (c->what == REACT) {
            if (has)
                return UNCHANGED; /* already there: nothing to write */
            int room = chat_reaction_room(m, c->emoji, c->user_id);
            if (room != 0)
                return room;
            if (r == NULL) {
                m->reactions = xrealloc(m->reactions, (m->n_reactions + 1) * sizeof(*r));
                r = &m->reactions[m->n_reactions++];
                memset(r, 0, sizeof(*r));
                snprintf(r->emoji, sizeof(r->emoji), "%s", c->emoji);
            }
            r->users = xrealloc(r->users, (r->n_users + 1) * sizeof(*r->users));
            snprintf(r->users[r->n_users++], STORE_ID_MAX, "%s", c->user_id);
        } else {
            if (!has)
                return NO_SUCH_REACTION;
            memmove(&r->users[at], &r->users[at + 1], (r->n_users - at - 1) * sizeof(*r->users));
            if (--r->n_users == 0) {
                free(r->users);
                size_t idx = (size_t)(r - m->reactions);
                memmove(r, r + 1, (m->n_reactions - idx - 1) * sizeof(*r));
                m->n_reactions--;
            }
        }
        return 0;
    }
    }
    m->updated_at = clock_wall_ms();
    return 0;
}

static void put_message(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    chat_message_t m, now;
    channel_access_t a;
    message_change_t c = {.what = EDIT};
    if (!message_access_load(ctx, p, ctx->params[0], &m, &a))
        goto out_access;
    if (strcmp(m.user_id, p->user.id) != 0) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "only the author may edit a message");
        goto out;
    }
    if (!a.can_post) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         a.banned ? "you are banned from this channel"
                                  : "only members may edit in this channel");
        goto out;
    }
    if ((c.content = read_content(ctx, m.n_attachments > 0)) == NULL)
        goto out;
    uint64_t lsn;
    int rc = chat_message_modify(app->store, m.id, change_message, &c, &now, &lsn);
    if (rc == GONE)
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "the message was deleted");
    else if (durable(ctx, rc, lsn)) {
        json_t *view = message_json(app->store, &now);
        char *text = json_dumps(view, JSON_COMPACT);
        json_decref(view);
        if (text)
            realtime_publish_message(app->realtime, "message.updated", now.channel_id, now.id,
                                     now.updated_at, text);
        http_reply_json_text(ctx, 200, text);
        chat_message_clear(&now);
    }
out:
    free(c.content);
    chat_message_clear(&m);
out_access:
    channel_access_clear(&a);
}

/* Deletes the files of a deleted message (delete_message_files). */
static bool delete_attachments(http_ctx_t *ctx, const chat_message_t *m)
{
    int rc = delete_message_files(ctx->app, m);
    if (rc != 0)
        reply_store_error(ctx, rc);
    return rc == 0;
}

bool message_delete(http_ctx_t *ctx, const chat_message_t *m, const char *by, bool *already)
{
    parley_app_t *app = ctx->app;
    message_change_t c = {.what = DELETE};
    uint64_t lsn;
    int rc = chat_message_modify(app->store, m->id, change_message, &c, NULL, &lsn);
    if (rc == 0 && strcmp(m->user_id, by) != 0) /* moderation: audited */
        lsn = audit_write(ctx, lsn, "message.delete", m->id,
                          json_pack("{s:s, s:s}", "channel_id", m->channel_id, "author_id",
                                    m->user_id));
    *already = rc == GONE;
    if (rc == GONE)
        return true;
    if (!durable(ctx, rc, lsn) || !delete_attachments(ctx, m))
        return false;
    realtime_publish(app->realtime, "message.deleted", m->channel_id, NULL,
                     json_pack("{s:s, s:s, s:s}", "id", m->id, "channel_id", m->channel_id,
                               "deleted_by", by));
    return true;
}

static void delete_message(http_ctx_t *ctx)
{
    const principal_t *p = ctx->principal;
    chat_message_t m;
    channel_access_t a;
    bool already;
    if (!message_access_load(ctx, p, ctx->params[0], &m, &a))
        goto out_access;
    if (strcmp(m.user_id, p->user.id) != 0 && !a.can_moderate) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         "only the author, a moderator or an admin may delete a message");
        goto out;
    }
    if (message_delete(ctx, &m, p->user.id, &already)) {
        if (already)
            http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "the message was already deleted");
        else
            http_reply_empty(ctx, 204);
    }
out:
    chat_message_clear(&m);
out_access:
    channel_access_clear(&a);
}

static void get_thread(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    chat_message_t m;
    channel_access_t a;
    if (!message_access_load(ctx, p, ctx->params[0], &m, &a))
        goto out_access;
    /* The thread of any message in it is its root's. */
    const char *root = m.thread_id[0] ? m.thread_id : m.id;
    chat_message_t *list = xcalloc(100, sizeof(*list));
    size_t n;
    size_t total = chat_thread(app->store, root, 100, list, &n);
    http_reply_message_page(ctx, list, n,
                            json_pack("{s:s, s:I}", "thread_id", root, "total",
                                      (json_int_t)total));
    for (size_t i = 0; i < n; i++)
        chat_message_clear(&list[i]);
    free(list);
    chat_message_clear(&m);
out_access:
    channel_access_clear(&a);
}

static bool emoji_ok(const char *e)
{
    size_t bytes = strlen(e);
    size_t chars = http_utf8_length(e, bytes);
    if (chars < 1 || chars > EMOJI_MAX_CHARS || bytes >= CHAT_EMOJI_MAX)
        return false;
    for (const unsigned char *q = (const unsigned char *)e; *q; q++)
        if (*q <= 0x20 || *q == 0x7f || *q == '/')
            return false;
    return true;
}

/* Adds or removes a reaction; `emoji` NULL means the body's (read after
 * authentication). */
static void react(http_ctx_t *ctx, bool add, const char *emoji)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    chat_message_t m, now;
    channel_access_t a;
    memset(&a, 0, sizeof(a));
    if (!message_access_load(ctx, p, ctx->params[0], &m, &a))
        goto out_access;
    if (emoji == NULL && http_field_string(ctx, "emoji", true, 0, 1000, false, &emoji) != 0)
        goto out;
    if (!a.can_post) {
        http_reply_error(ctx, HTTP_ERR_INSUFFICIENT_PERMISSIONS, NULL,
                         a.banned ? "you are banned from this channel"
                                  : "only members may react in this channel");
        goto out;
    }
    if (!emoji_ok(emoji)) {
        http_reply_invalid(ctx, "emoji", "emoji must be 1-%d characters without spaces",
                           EMOJI_MAX_CHARS);
        goto out;
    }
    message_change_t c = {.what = add ? REACT : UNREACT, .emoji = emoji, .user_id = p->user.id};
    uint64_t lsn;
    int rc = chat_message_modify(app->store, m.id, change_message, &c, &now, &lsn);
    if (rc == GONE)
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "the message was deleted");
    else if (rc == NO_SUCH_REACTION)
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "you have not reacted with that emoji");
    else if (rc == STORE_E_REACTION_EMOJI_LIMIT || rc == STORE_E_REACTION_USER_LIMIT) {
        bool per_user = rc == STORE_E_REACTION_USER_LIMIT;
        http_reply_error(ctx, HTTP_ERR_CONFLICT,
                         json_pack("{s:s, s:s, s:i}", "field", "emoji", "limit",
                                   per_user ? "reactions_per_user" : "emoji_per_message", "max",
                                   per_user ? CHAT_REACTIONS_PER_USER_MAX
                                            : CHAT_REACTION_EMOJI_MAX),
                         per_user ? "you have as many reactions on this message as one user may"
                                  : "this message has as many different reactions as it may");
    } else if (rc == UNCHANGED)
        http_reply_json(ctx, 200, message_json(app->store, &m));
    else if (durable(ctx, rc, lsn)) {
        json_t *view = message_json(app->store, &now);
        /* The change only, with the emoji's new count: not the whole list,
         * which would make each event as big as the message's reactions. */
        size_t count = 0;
        for (size_t i = 0; i < now.n_reactions; i++)
            if (strcmp(now.reactions[i].emoji, emoji) == 0)
                count = now.reactions[i].n_users;
        realtime_publish(app->realtime, add ? "reaction.added" : "reaction.removed",
                         now.channel_id, NULL,
                         json_pack("{s:s, s:s, s:s, s:s, s:I}", "message_id", now.id,
                                   "channel_id", now.channel_id, "user_id", p->user.id, "emoji",
                                   emoji, "count", (json_int_t)count));
        http_reply_json(ctx, add ? 201 : 200, view);
        chat_message_clear(&now);
    }
out:
    chat_message_clear(&m);
out_access:
    channel_access_clear(&a);
}

static void post_reaction(http_ctx_t *ctx)
{
    react(ctx, true, NULL);
}

static void delete_reaction(http_ctx_t *ctx)
{
    react(ctx, false, ctx->params[1]);
}

/* Writing messages and reactions is the "messages" rate-limit category;
 * reading them is "default". */
#define MESSAGES_WRITE (HTTP_USER_WRITE | HTTP_RATE_MESSAGES)
#define MESSAGES_CONTENT (HTTP_USER_CONTENT | HTTP_RATE_MESSAGES)

const http_route_t messages_routes[] = {
    {"POST", "/api/v1/channels/:id/messages", post_channel_message, MESSAGES_CONTENT,
     "", "content,content_type,attachments,reply_to,idempotency_key,mentions"},
    {"GET", "/api/v1/channels/:id/messages", get_channel_messages, HTTP_USER_READ,
     "limit,before,after,before_id,after_id,skip,fields", ""},
    {"POST", "/api/v1/messages", post_message, MESSAGES_CONTENT,
     "", "channel_id,chat_id,content,content_type,attachments,reply_to,idempotency_key,mentions"},
    {"GET", "/api/v1/messages", get_messages, HTTP_USER_READ,
     "channel_id,chat_id,recipient_id,limit,before,after,before_id,after_id,skip,fields", ""},
    {"GET", "/api/v1/messages/:id", get_message, HTTP_USER_READ, "fields,read_state", ""},
    {"PUT", "/api/v1/messages/:id", put_message, MESSAGES_CONTENT, "", "content"},
    {"DELETE", "/api/v1/messages/:id", delete_message, MESSAGES_WRITE, "", ""},
    {"GET", "/api/v1/messages/:id/thread", get_thread, HTTP_USER_READ, "fields", ""},
    {"POST", "/api/v1/messages/:id/reactions", post_reaction, MESSAGES_CONTENT, "", "emoji"},
    {"DELETE", "/api/v1/messages/:id/reactions/:emoji", delete_reaction, MESSAGES_WRITE, "", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
