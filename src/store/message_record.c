/*
 * Message records in binary. Messages are nearly all of the log and of the
 * snapshots, and replaying them as JSON spent two thirds of start-up inside
 * jansson (parsing one ~300-byte object cost ~14 us; this decoder takes well
 * under one), so since schema 2 a message record is this layout, while the
 * JSON message records of earlier data directories still decode
 * (chat_codec.c tells them apart by the first byte: a JSON text starts with
 * '{', a binary record with CHAT_MSG_RECORD_BINARY).
 *
 * Layout (integers little-endian):
 *   u8  CHAT_MSG_RECORD_BINARY
 *   u8  flags: 1 is_edited, 2 is_deleted, 4 has content
 *   i64 created_at, i64 updated_at
 *   s8  id, channel_id, user_id, reply_to, thread_id, idempotency_key
 *   s32 content                          (only with flag 4)
 *   u32 n mentions,    n x s8 user id
 *   u32 n attachments, n x s8 file id
 *   u32 n reactions,   n x (s8 emoji, u32 n users, n x s8 user id)
 * where s8 is a u8 length then the bytes, s32 a u32 length then the bytes
 * (no NUL: the decoder refuses one). Nothing may follow.
 *
 * The decoder trusts nothing: every length is checked against what is left
 * and against the field's limit before anything is copied or allocated,
 * strings must be NUL-free UTF-8 (what jansson would have accepted), and
 * the result passes chat__message_valid like a JSON record. Any bytes give
 * a message or STORE_E_CORRUPT, without leaks (fuzz/fuzz_store_apply.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"
#include "parley/utf8.h"
#include "parley/xalloc.h"

enum { FLAG_EDITED = 1, FLAG_DELETED = 2, FLAG_CONTENT = 4 };

_Static_assert(STORE_ID_MAX <= 256 && CHAT_IDEMPOTENCY_MAX <= 256 && CHAT_EMOJI_MAX <= 256,
               "fixed strings have a one-byte length");

/* ---- encoding ----------------------------------------------------------------- */

typedef struct out {
    uint8_t *p;
} out_t;

static void put_u8(out_t *o, unsigned v)
{
    *o->p++ = (uint8_t)v;
}

static void put_u32(out_t *o, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *o->p++ = (uint8_t)(v >> (8 * i));
}

static void put_i64(out_t *o, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        *o->p++ = (uint8_t)(u >> (8 * i));
}

static void put_s8(out_t *o, const char *s)
{
    size_t n = strlen(s);
    put_u8(o, (unsigned)n);
    memcpy(o->p, s, n);
    o->p += n;
}

/* Bytes of the record; 0 when a string is not valid UTF-8 (ids are checked
 * by chat__message_valid, which callers ran). */
static size_t record_size(const chat_message_t *m)
{
    size_t n = 2 + 16 + 6 + 12;
    const char *fixed[] = {m->id, m->channel_id, m->user_id, m->reply_to, m->thread_id,
                           m->idempotency_key};
    for (size_t i = 0; i < 6; i++)
        n += strlen(fixed[i]);
    if (!utf8_valid(m->idempotency_key, strlen(m->idempotency_key)))
        return 0;
    if (m->content) {
        size_t len = strlen(m->content);
        if (!utf8_valid(m->content, len))
            return 0;
        n += 4 + len;
    }
    for (size_t i = 0; i < m->n_mentions; i++)
        n += 1 + strlen(m->mentions[i]);
    for (size_t i = 0; i < m->n_attachments; i++)
        n += 1 + strlen(m->attachments[i]);
    for (size_t i = 0; i < m->n_reactions; i++) {
        const chat_reaction_t *r = &m->reactions[i];
        if (!utf8_valid(r->emoji, strlen(r->emoji)))
            return 0;
        n += 1 + strlen(r->emoji) + 4;
        for (size_t k = 0; k < r->n_users; k++)
            n += 1 + strlen(r->users[k]);
    }
    return n;
}

char *chat__message_encode(const chat_message_t *m, size_t *len)
{
    size_t n = record_size(m);
    if (n == 0)
        return NULL;
    char *buf = xmalloc(n);
    out_t o = {(uint8_t *)buf};
    put_u8(&o, CHAT_MSG_RECORD_BINARY);
    put_u8(&o, (m->is_edited ? FLAG_EDITED : 0) | (m->is_deleted ? FLAG_DELETED : 0) |
                   (m->content ? FLAG_CONTENT : 0));
    put_i64(&o, m->created_at);
    put_i64(&o, m->updated_at);
    put_s8(&o, m->id);
    put_s8(&o, m->channel_id);
    put_s8(&o, m->user_id);
    put_s8(&o, m->reply_to);
    put_s8(&o, m->thread_id);
    put_s8(&o, m->idempotency_key);
    if (m->content) {
        size_t c = strlen(m->content);
        put_u32(&o, (uint32_t)c);
        memcpy(o.p, m->content, c);
        o.p += c;
    }
    put_u32(&o, (uint32_t)m->n_mentions);
    for (size_t i = 0; i < m->n_mentions; i++)
        put_s8(&o, m->mentions[i]);
    put_u32(&o, (uint32_t)m->n_attachments);
    for (size_t i = 0; i < m->n_attachments; i++)
        put_s8(&o, m->attachments[i]);
    put_u32(&o, (uint32_t)m->n_reactions);
    for (size_t i = 0; i < m->n_reactions; i++) {
        put_s8(&o, m->reactions[i].emoji);
        put_u32(&o, (uint32_t)m->reactions[i].n_users);
        for (size_t k = 0; k < m->reactions[i].n_users; k++)
            put_s8(&o, m->reactions[i].users[k]);
    }
    if ((size_t)(o.p - (uint8_t *)buf) != n)
        abort(); /* record_size and the writer disagree: a bug, not data */
    *len = n;
    return buf;
}

/* ---- decoding ----------------------------------------------------------------- */

typedef struct in {
    const uint8_t *p, *end;
    bool ok; /* false once anything was wrong; later reads give zeros */
} in_t;

static bool take(in_t *in, size_t n, const uint8_t **at)
{
    if (!in->ok || (size_t)(in->end - in->p) < n) {
        in->ok = false;
        return false;
    }
    *at = in->p;
    in->p += n;
    return true;
}

static unsigned get_u8(in_t *in)
{
    const uint8_t *b;
    return take(in, 1, &b) ? b[0] : 0;
}

static uint32_t get_u32(in_t *in)
{
    const uint8_t *b;
    if (!take(in, 4, &b))
        return 0;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static int64_t get_i64(in_t *in)
{
    const uint8_t *b;
    if (!take(in, 8, &b))
        return 0;
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = u << 8 | b[i];
    return (int64_t)u;
}

/* n bytes of NUL-free UTF-8 into out (size bytes, NUL added). */
static void get_text(in_t *in, size_t n, char *out, size_t size)
{
    const uint8_t *b;
    if (n >= size || !take(in, n, &b) || memchr(b, '\0', n) != NULL ||
        !utf8_valid((const char *)b, n)) {
        in->ok = false;
        out[0] = '\0';
        return;
    }
    memcpy(out, b, n);
    out[n] = '\0';
}

static void get_s8(in_t *in, char *out, size_t size)
{
    get_text(in, get_u8(in), out, size);
}

/* A count of at most `max` items of at least `min_bytes` each: a count the
 * rest of the record cannot hold is refused before anything is allocated. */
static size_t get_count(in_t *in, size_t max, size_t min_bytes)
{
    uint32_t n = get_u32(in);
    if (n > max || (size_t)n * min_bytes > (size_t)(in->end - in->p)) {
        in->ok = false;
        return 0;
    }
    return n;
}

static void get_ids(in_t *in, size_t max, size_t *n_out, char (**ids)[STORE_ID_MAX])
{
    size_t n = get_count(in, max, 1);
    *n_out = 0;
    if (n == 0)
        return;
    *ids = xmalloc(n * STORE_ID_MAX);
    *n_out = n; /* freed by chat_message_clear, whatever follows */
    for (size_t i = 0; i < n; i++)
        get_s8(in, (*ids)[i], STORE_ID_MAX);
}

int chat__message_decode_binary(const void *data, size_t len, chat_message_t *m)
{
    memset(m, 0, sizeof(*m));
    in_t in = {data, (const uint8_t *)data + len, true};
    if (get_u8(&in) != CHAT_MSG_RECORD_BINARY)
        return STORE_E_CORRUPT;
    unsigned flags = get_u8(&in);
    m->is_edited = flags & FLAG_EDITED;
    m->is_deleted = flags & FLAG_DELETED;
    m->created_at = get_i64(&in);
    m->updated_at = get_i64(&in);
    get_s8(&in, m->id, sizeof(m->id));
    get_s8(&in, m->channel_id, sizeof(m->channel_id));
    get_s8(&in, m->user_id, sizeof(m->user_id));
    get_s8(&in, m->reply_to, sizeof(m->reply_to));
    get_s8(&in, m->thread_id, sizeof(m->thread_id));
    get_s8(&in, m->idempotency_key, sizeof(m->idempotency_key));
    if (flags & ~(unsigned)(FLAG_EDITED | FLAG_DELETED | FLAG_CONTENT))
        in.ok = false;
    if (in.ok && (flags & FLAG_CONTENT)) {
        uint32_t n = get_u32(&in);
        if (n <= CHAT_CONTENT_BYTES_MAX && n <= (size_t)(in.end - in.p)) {
            m->content = xmalloc((size_t)n + 1);
            get_text(&in, n, m->content, (size_t)n + 1);
        } else {
            in.ok = false;
        }
    }
    get_ids(&in, CHAT_MENTIONS_MAX, &m->n_mentions, &m->mentions);
    get_ids(&in, CHAT_ATTACHMENTS_MAX, &m->n_attachments, &m->attachments);
    size_t n_reactions = get_count(&in, CHAT_REACTIONS_MAX, 1 + 4);
    if (n_reactions) {
        m->reactions = xcalloc(n_reactions, sizeof(*m->reactions));
        m->n_reactions = n_reactions;
    }
    size_t pairs = 0;
    for (size_t i = 0; in.ok && i < n_reactions; i++) {
        chat_reaction_t *r = &m->reactions[i];
        get_s8(&in, r->emoji, sizeof(r->emoji));
        get_ids(&in, CHAT_REACTIONS_MAX - pairs, &r->n_users, &r->users);
        pairs += r->n_users;
    }
    if (!in.ok || in.p != in.end || !chat__message_valid(m)) {
        chat_message_clear(m);
        memset(m, 0, sizeof(*m));
        return STORE_E_CORRUPT;
    }
    return 0;
}
