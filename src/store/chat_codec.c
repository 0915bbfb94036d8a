/*
 * Records of the chat tables: a channel, a membership or a message, each as
 * its whole state in one JSON object with the schema version "v" (the
 * payload of log records and snapshot records alike), following codec.c.
 * Messages are written in binary since (message_record.c); their JSON
 * decoder stays for the records of earlier data directories.
 *
 * DESIGN
 * - Every field of the struct is written; arrays for mentions, attachments
 *   and reactions ([{"emoji", "users": [...]}]); a NULL string is null.
 * - Readers fill what they know, take a missing optional field as empty
 *   (false, 0, "", [] or NULL), and refuse a newer "v", a wrong type, a
 *   string over its buffer or limit, and an array over its limit (checked
 *   before anything is allocated), so any bytes give a record or
 *   STORE_E_CORRUPT, without leaks (fuzz/fuzz_store_apply.c drives this).
 * - One validity check per entity (chat__*_valid) is used by the decoders
 *   AND by chat.c before it appends, so the server never writes a record its
 *   own replay would refuse (that would stop start-up). json_string()
 *   refuses invalid UTF-8: an encoder returns NULL then (STORE_E_INVALID).
 * - jansson refuses \u0000 in strings (no JSON_ALLOW_NUL), so a decoded
 *   string's length is its strlen; its parser bounds nesting depth.
 * - The entities' clear functions live here, beside the decoders that fill
 *   them, so that chat.c depends on this file and not the other way round.
 * Cost: O(record size) each way.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"
#include "codec.h"
#include "parley/xalloc.h"

/* The owners of a record's allocations free them: a decoder that fails
 * half-way clears what it filled, and chat.c clears the copies it hands out. */
void chat_channel_clear(chat_channel_t *c)
{
    free(c->description);
    free(c->direct_key);
    c->description = c->direct_key = NULL;
}

void chat_message_clear(chat_message_t *m)
{
    free(m->content);
    free(m->mentions);
    free(m->attachments);
    for (size_t i = 0; i < m->n_reactions && m->reactions; i++)
        free(m->reactions[i].users);
    free(m->reactions);
    m->content = NULL;
    m->mentions = m->attachments = NULL;
    m->reactions = NULL;
    m->n_mentions = m->n_attachments = m->n_reactions = 0;
}

/* ---- ids ------------------------------------------------------------------- */

bool chat__valid_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= STORE_ID_MAX - 1 ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

bool chat_id_ok(const char *s)
{
    return chat__valid_id(s);
}

uint64_t chat__msg_seq(const char *id)
{
    if (strncmp(id, "msg_", 4) != 0)
        return 0;
    uint64_t seq = 0;
    for (size_t i = 4; i < 20; i++) {
        if (id[i] < '0' || id[i] > '9')
            return 0;
        seq = seq * 10 + (uint64_t)(id[i] - '0');
    }
    return id[20] == '\0' ? seq : 0;
}

void chat__msg_id(uint64_t seq, char out[STORE_ID_MAX])
{
    /* By hand, not snprintf: every message read out of the store (a history
     * page is 50) formats its id, and snprintf was a tenth of a page's CPU. */
    memcpy(out, "msg_", 4);
    for (int i = 19; i >= 4; i--) {
        out[i] = (char)('0' + seq % 10);
        seq /= 10;
    }
    out[20] = '\0';
}

/* ---- validity --------------------------------------------------------------- */

static bool terminated(const char *buf, size_t size)
{
    return memchr(buf, '\0', size) != NULL;
}

static bool opt_msg_id(const char *buf)
{
    return terminated(buf, STORE_ID_MAX) && (buf[0] == '\0' || chat__msg_seq(buf) != 0);
}

static bool opt_id(const char *buf)
{
    return terminated(buf, STORE_ID_MAX) && (buf[0] == '\0' || chat__valid_id(buf));
}

static bool id_buf(const char *buf)
{
    return terminated(buf, STORE_ID_MAX) && chat__valid_id(buf);
}

static bool valid_direct_key(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n >= CHAT_DIRECT_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == ','))
            return false;
    }
    return true;
}

bool chat__channel_valid(chat_channel_t *c)
{
    if (!id_buf(c->id) || !terminated(c->name, sizeof(c->name)) || !opt_id(c->owner_id))
        return false;
    if (c->description && strlen(c->description) > CHAT_DESCRIPTION_MAX)
        return false;
    if (c->is_direct)
        return c->is_private && c->direct_key && valid_direct_key(c->direct_key);
    return c->direct_key == NULL;
}

bool chat__membership_valid(const chat_membership_t *m)
{
    return id_buf(m->channel_id) && id_buf(m->user_id) && m->role >= CHAT_ROLE_NONE &&
           m->role <= CHAT_ROLE_OWNER && opt_msg_id(m->last_read);
}

static bool id_array(size_t n, char (*v)[STORE_ID_MAX], size_t max)
{
    if (n > max || (n && v == NULL))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!id_buf(v[i]))
            return false;
    return true;
}

bool chat__message_valid(chat_message_t *m)
{
    if (chat__msg_seq(m->id) == 0 || !terminated(m->id, sizeof(m->id)) ||
        !id_buf(m->channel_id) || !id_buf(m->user_id) || !opt_msg_id(m->reply_to) ||
        !opt_msg_id(m->thread_id) || !terminated(m->idempotency_key, sizeof(m->idempotency_key)))
        return false;
    if (m->is_deleted) {
        free(m->content); /* a deleted message keeps no content */
        m->content = NULL;
    }
    if (m->content && strlen(m->content) > CHAT_CONTENT_BYTES_MAX)
        return false;
    if (!id_array(m->n_mentions, m->mentions, CHAT_MENTIONS_MAX) ||
        !id_array(m->n_attachments, m->attachments, CHAT_ATTACHMENTS_MAX))
        return false;
    if (m->n_reactions > CHAT_REACTIONS_MAX || (m->n_reactions && m->reactions == NULL))
        return false;
    size_t pairs = 0;
    for (size_t i = 0; i < m->n_reactions; i++) {
        const chat_reaction_t *r = &m->reactions[i];
        if (!terminated(r->emoji, sizeof(r->emoji)) || r->emoji[0] == '\0')
            return false;
        pairs += r->n_users;
        if (pairs > CHAT_REACTIONS_MAX || !id_array(r->n_users, r->users, CHAT_REACTIONS_MAX))
            return false;
    }
    return true;
}

/* ---- encoding ----------------------------------------------------------------- */

/* Sets a string (null for NULL); false when it is not valid UTF-8. */
static bool set_str(json_t *o, const char *key, const char *v)
{
    json_t *j = v ? json_string(v) : json_null();
    return j != NULL && json_object_set_new(o, key, j) == 0;
}

static bool set_ids(json_t *o, const char *key, size_t n, char (*v)[STORE_ID_MAX])
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_string(v[i]);
        if (j == NULL || json_array_append_new(a, j) != 0) {
            json_decref(a);
            return false;
        }
    }
    return json_object_set_new(o, key, a) == 0;
}

static json_t *new_record(void)
{
    json_t *o = json_object();
    if (o == NULL)
        abort();
    json_object_set_new(o, "v", json_integer(STORE_SCHEMA_VERSION));
    return o;
}

static char *close_record(json_t *o, bool ok)
{
    char *text = ok ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (ok && text == NULL)
        abort();
    return text;
}

char *chat__channel_encode(const chat_channel_t *c)
{
    json_t *o = new_record();
    bool ok = set_str(o, "id", c->id) && set_str(o, "name", c->name) &&
              set_str(o, "description", c->description) &&
              set_str(o, "owner_id", c->owner_id) && set_str(o, "direct_key", c->direct_key);
    json_object_set_new(o, "is_direct", json_boolean(c->is_direct));
    json_object_set_new(o, "is_private", json_boolean(c->is_private));
    json_object_set_new(o, "is_deleted", json_boolean(c->is_deleted));
    json_object_set_new(o, "created_at", json_integer(c->created_at));
    json_object_set_new(o, "updated_at", json_integer(c->updated_at));
    return close_record(o, ok);
}

char *chat__membership_encode(const chat_membership_t *m)
{
    json_t *o = new_record();
    bool ok = set_str(o, "channel_id", m->channel_id) && set_str(o, "user_id", m->user_id) &&
              set_str(o, "last_read", m->last_read);
    json_object_set_new(o, "role", json_integer(m->role));
    json_object_set_new(o, "joined_at", json_integer(m->joined_at));
    json_object_set_new(o, "banned_at", json_integer(m->banned_at));
    return close_record(o, ok);
}

char *chat__message_json(const chat_message_t *m)
{
    json_t *o = new_record();
    bool ok = set_str(o, "id", m->id) && set_str(o, "channel_id", m->channel_id) &&
              set_str(o, "user_id", m->user_id) && set_str(o, "content", m->content) &&
              set_str(o, "reply_to", m->reply_to) && set_str(o, "thread_id", m->thread_id) &&
              set_ids(o, "mentions", m->n_mentions, m->mentions) &&
              set_ids(o, "attachments", m->n_attachments, m->attachments) &&
              set_str(o, "idempotency_key", m->idempotency_key);
    json_t *rs = json_array();
    for (size_t i = 0; ok && i < m->n_reactions; i++) {
        json_t *r = json_object();
        ok = set_str(r, "emoji", m->reactions[i].emoji) &&
             set_ids(r, "users", m->reactions[i].n_users, m->reactions[i].users);
        json_array_append_new(rs, r);
    }
    json_object_set_new(o, "reactions", rs);
    json_object_set_new(o, "is_edited", json_boolean(m->is_edited));
    json_object_set_new(o, "is_deleted", json_boolean(m->is_deleted));
    json_object_set_new(o, "created_at", json_integer(m->created_at));
    json_object_set_new(o, "updated_at", json_integer(m->updated_at));
    return close_record(o, ok);
}

/* ---- decoding ----------------------------------------------------------------- */


static bool str_into(json_t *v, char *out, size_t size)
{
    if (!json_is_string(v) || json_string_length(v) >= size)
        return false;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

/* A required string into a fixed buffer. */
static bool get_fixed(json_t *o, const char *key, char *out, size_t size)
{
    return str_into(json_object_get(o, key), out, size);
}

/* An optional one: missing or null is "". */
static bool get_fixed_opt(json_t *o, const char *key, char *out, size_t size)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v)) {
        out[0] = '\0';
        return true;
    }
    return str_into(v, out, size);
}

/* A nullable string of at most `max` bytes as a malloc'd copy. */
static bool get_dup(json_t *o, const char *key, size_t max, char **out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v) || json_string_length(v) > max)
        return false;
    *out = xstrdup(json_string_value(v));
    return true;
}

static bool get_i64(json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (v == NULL)
        return true;
    if (!json_is_integer(v))
        return false;
    *out = json_integer_value(v);
    return true;
}

static bool get_bool(json_t *o, const char *key, bool *out)
{
    json_t *v = json_object_get(o, key);
    *out = false;
    if (v == NULL)
        return true;
    if (!json_is_boolean(v))
        return false;
    *out = json_is_true(v);
    return true;
}

/* An optional array of ids (at most max) as a malloc'd array. */
static bool get_ids(json_t *o, const char *key, size_t max, size_t *n, char (**out)[STORE_ID_MAX])
{
    json_t *a = json_object_get(o, key);
    *n = 0;
    *out = NULL;
    if (a == NULL || json_is_null(a))
        return true;
    if (!json_is_array(a) || json_array_size(a) > max)
        return false;
    size_t count = json_array_size(a);
    if (count == 0)
        return true;
    *out = xmalloc(count * sizeof(**out));
    for (size_t i = 0; i < count; i++) {
        if (!str_into(json_array_get(a, i), (*out)[i], STORE_ID_MAX)) {
            free(*out);
            *out = NULL;
            return false;
        }
    }
    *n = count;
    return true;
}

static bool get_reactions(json_t *o, chat_message_t *m)
{
    json_t *a = json_object_get(o, "reactions");
    if (a == NULL || json_is_null(a))
        return true;
    if (!json_is_array(a) || json_array_size(a) > CHAT_REACTIONS_MAX)
        return false;
    size_t count = json_array_size(a), pairs = 0;
    if (count == 0)
        return true;
    for (size_t i = 0; i < count; i++) { /* bound the allocations first */
        pairs += json_array_size(json_object_get(json_array_get(a, i), "users"));
        if (pairs > CHAT_REACTIONS_MAX)
            return false;
    }
    m->reactions = xcalloc(count, sizeof(*m->reactions));
    m->n_reactions = count; /* cleared by chat_message_clear on failure */
    for (size_t i = 0; i < count; i++) {
        json_t *r = json_array_get(a, i);
        chat_reaction_t *cr = &m->reactions[i];
        if (!json_is_object(r) || !get_fixed(r, "emoji", cr->emoji, sizeof(cr->emoji)) ||
            !get_ids(r, "users", CHAT_REACTIONS_MAX, &cr->n_users, &cr->users))
            return false;
    }
    return true;
}

int chat__channel_decode(const void *data, size_t len, chat_channel_t *c)
{
    memset(c, 0, sizeof(*c));
    json_t *o = codec_open_record(data, len, STORE_SCHEMA_VERSION);
    if (o == NULL)
        return STORE_E_CORRUPT;
    bool ok = get_fixed(o, "id", c->id, sizeof(c->id)) &&
              get_fixed_opt(o, "name", c->name, sizeof(c->name)) &&
              get_dup(o, "description", CHAT_DESCRIPTION_MAX, &c->description) &&
              get_bool(o, "is_direct", &c->is_direct) &&
              get_bool(o, "is_private", &c->is_private) &&
              get_bool(o, "is_deleted", &c->is_deleted) &&
              get_fixed_opt(o, "owner_id", c->owner_id, sizeof(c->owner_id)) &&
              get_dup(o, "direct_key", CHAT_DIRECT_KEY_MAX, &c->direct_key) &&
              get_i64(o, "created_at", &c->created_at) &&
              get_i64(o, "updated_at", &c->updated_at) && chat__channel_valid(c);
    json_decref(o);
    if (!ok) {
        chat_channel_clear(c);
        memset(c, 0, sizeof(*c));
        return STORE_E_CORRUPT;
    }
    return 0;
}

int chat__membership_decode(const void *data, size_t len, chat_membership_t *m)
{
    memset(m, 0, sizeof(*m));
    json_t *o = codec_open_record(data, len, STORE_SCHEMA_VERSION);
    if (o == NULL)
        return STORE_E_CORRUPT;
    int64_t role = 0;
    bool ok = get_fixed(o, "channel_id", m->channel_id, sizeof(m->channel_id)) &&
              get_fixed(o, "user_id", m->user_id, sizeof(m->user_id)) &&
              get_i64(o, "role", &role) && role >= CHAT_ROLE_NONE && role <= CHAT_ROLE_OWNER &&
              get_i64(o, "joined_at", &m->joined_at) &&
              get_i64(o, "banned_at", &m->banned_at) &&
              get_fixed_opt(o, "last_read", m->last_read, sizeof(m->last_read));
    m->role = (int)role;
    ok = ok && chat__membership_valid(m);
    json_decref(o);
    if (!ok) {
        memset(m, 0, sizeof(*m));
        return STORE_E_CORRUPT;
    }
    return 0;
}

int chat__message_decode(const void *data, size_t len, chat_message_t *m)
{
    if (len > 0 && ((const unsigned char *)data)[0] == CHAT_MSG_RECORD_BINARY)
        return chat__message_decode_binary(data, len, m);
    /* A JSON record: written before message records were binary. */
    memset(m, 0, sizeof(*m));
    json_t *o = codec_open_record(data, len, STORE_SCHEMA_VERSION);
    if (o == NULL)
        return STORE_E_CORRUPT;
    bool ok = get_fixed(o, "id", m->id, sizeof(m->id)) &&
              get_fixed(o, "channel_id", m->channel_id, sizeof(m->channel_id)) &&
              get_fixed(o, "user_id", m->user_id, sizeof(m->user_id)) &&
              get_dup(o, "content", CHAT_CONTENT_BYTES_MAX, &m->content) &&
              get_fixed_opt(o, "reply_to", m->reply_to, sizeof(m->reply_to)) &&
              get_fixed_opt(o, "thread_id", m->thread_id, sizeof(m->thread_id)) &&
              get_ids(o, "mentions", CHAT_MENTIONS_MAX, &m->n_mentions, &m->mentions) &&
              get_ids(o, "attachments", CHAT_ATTACHMENTS_MAX, &m->n_attachments,
                      &m->attachments) &&
              get_reactions(o, m) &&
              get_fixed_opt(o, "idempotency_key", m->idempotency_key,
                            sizeof(m->idempotency_key)) &&
              get_bool(o, "is_edited", &m->is_edited) &&
              get_bool(o, "is_deleted", &m->is_deleted) &&
              get_i64(o, "created_at", &m->created_at) &&
              get_i64(o, "updated_at", &m->updated_at) && chat__message_valid(m);
    json_decref(o);
    if (!ok) {
        chat_message_clear(m);
        memset(m, 0, sizeof(*m));
        return STORE_E_CORRUPT;
    }
    return 0;
}
