/*
 * Blocked addresses (include/parley/ip_blocks.h): one record per block's
 * whole state, STORE_REC_IP_BLOCK, JSON with "v":
 *
 *   {"v":1, "id":"ipb_...", "ip":"10.0.0.0/8", "reason":"..."|null,
 *    "created_by":"usr_...", "created_at":ms, "expires_at":ms|0, "deleted":false}
 *
 * Like every table of the store: appended and applied under the store's
 * write lock (store.c), replayed by the same apply, written whole in
 * snapshots (live blocks only: a deleted block leaves the tables, so its
 * record is needed only until the next snapshot).
 *
 * Three structures follow the records: blocks by id, an index from the
 * network's canonical text to the id (one block per network), and the
 * ipnet_set_t that the connection gate matches every request against. The
 * set is written only here, by apply, and read by anyone through its own
 * read lock (a leaf); the expiry is kept in it, so a timed block stops
 * matching by the clock with nothing written. The ip field must be the
 * canonical text of a network (ipnet_format of ipnet_parse), checked by the
 * one validity check the writer and the decoder share, so the key of the
 * index is the key of the set.
 */
#include "parley/ip_blocks.h"

#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "internal.h"
#include "parley/chat.h"
#include "parley/xalloc.h"

struct ip_block_tables {
    map_t by_id;     /* id -> store_ip_block_t* (not deleted) */
    map_t by_ip;     /* canonical network text -> id */
    ipnet_set_t *set; /* the networks of by_id, with their expiries */
};

void store_ip_block_clear(store_ip_block_t *b)
{
    free(b->reason);
    b->reason = NULL;
}

static void free_block(void *v)
{
    if (v) {
        store_ip_block_clear(v);
        free(v);
    }
}

static void copy_block(store_ip_block_t *dst, const store_ip_block_t *src)
{
    *dst = *src;
    dst->reason = src->reason ? xstrdup(src->reason) : NULL;
}

bool store_ip_block_active(const store_ip_block_t *b, int64_t now_ms)
{
    return !b->deleted && (b->expires_at == 0 || b->expires_at > now_ms);
}

struct ip_block_tables *ip_blocks__new(void)
{
    struct ip_block_tables *t = xcalloc(1, sizeof(*t));
    map_init(&t->by_id, free_block);
    map_init(&t->by_ip, free);
    t->set = ipnet_set_new();
    return t;
}

void ip_blocks__free(struct ip_block_tables *t)
{
    if (t == NULL)
        return;
    map_deinit(&t->by_id);
    map_deinit(&t->by_ip);
    ipnet_set_free(t->set);
    free(t);
}

void ip_blocks__clear(struct ip_block_tables *t)
{
    map_clear(&t->by_id);
    map_clear(&t->by_ip);
    ipnet_set_clear(t->set);
}

ipnet_set_t *store_ip_block_set(store_t *s)
{
    return s->ip_blocks->set;
}

/* ---- records ---------------------------------------------------------------- */

/* The network of a valid block's ip into *net; false when the text is not
 * the canonical form of a network. */
static bool canonical_net(const char *ip, ipnet_t *net)
{
    char again[IPNET_TEXT_MAX];
    if (ipnet_parse(ip, true, net) != 0)
        return false;
    ipnet_format(net, again);
    return strcmp(again, ip) == 0;
}

/* The one check of the writer and the decoder. */
static bool block_valid(const store_ip_block_t *b)
{
    ipnet_t net;
    return b->id[0] != '\0' && canonical_net(b->ip, &net) &&
           (b->reason == NULL || strlen(b->reason) <= IP_BLOCK_REASON_MAX) &&
           b->created_at >= 0 && b->expires_at >= 0;
}

static char *encode(const void *value)
{
    const store_ip_block_t *b = value;
    json_t *o = json_pack("{s:i, s:s, s:s, s:o, s:s, s:I, s:I, s:b}", "v", STORE_SCHEMA_VERSION,
                          "id", b->id, "ip", b->ip, "reason",
                          b->reason ? json_string(b->reason) : json_null(), "created_by",
                          b->created_by, "created_at", (json_int_t)b->created_at, "expires_at",
                          (json_int_t)b->expires_at, "deleted", b->deleted);
    return codec_close(o);
}

static int decode(const void *data, size_t len, store_ip_block_t *b)
{
    memset(b, 0, sizeof(*b));
    json_t *o = codec_open_record(data, len, STORE_SCHEMA_VERSION);
    if (o == NULL)
        return STORE_E_CORRUPT;
    json_t *reason = json_object_get(o, "reason"), *created = json_object_get(o, "created_at");
    json_t *expires = json_object_get(o, "expires_at"), *deleted = json_object_get(o, "deleted");
    bool ok = codec_get_fixed(o, "id", b->id, sizeof(b->id)) && codec_get_fixed(o, "ip", b->ip, sizeof(b->ip)) &&
              codec_get_fixed(o, "created_by", b->created_by, sizeof(b->created_by)) &&
              json_is_integer(created) && json_is_integer(expires) && json_is_boolean(deleted) &&
              (reason == NULL || json_is_null(reason) ||
               (json_is_string(reason) && json_string_length(reason) <= IP_BLOCK_REASON_MAX &&
                strlen(json_string_value(reason)) == json_string_length(reason)));
    if (ok) {
        b->created_at = json_integer_value(created);
        b->expires_at = json_integer_value(expires);
        b->deleted = json_is_true(deleted);
        if (json_is_string(reason))
            b->reason = xstrdup(json_string_value(reason));
        ok = block_valid(b);
    }
    json_decref(o);
    if (!ok) {
        store_ip_block_clear(b);
        return STORE_E_CORRUPT;
    }
    return 0;
}

/* ---- apply ------------------------------------------------------------------ */

/* Takes b's strings. REQUIRES: write_mu held, or recovery. */
static void apply_block(store_t *s, store_ip_block_t *b)
{
    struct ip_block_tables *t = s->ip_blocks;
    ipnet_t net;
    canonical_net(b->ip, &net); /* valid: checked by the writer or the decoder */
    uint64_t h = map_hash(b->id);
    map_shard_t *sh = map_shard_of(&t->by_id, h);
    store_ip_block_t *nb = NULL;
    if (!b->deleted) {
        nb = xmalloc(sizeof(*nb));
        *nb = *b;
        memset(b, 0, sizeof(*b));
    }
    pthread_rwlock_wrlock(&sh->lock);
    store_ip_block_t *old = nb ? map_put_locked(sh, h, nb->id, nb)
                               : map_remove_locked(sh, h, b->id);
    pthread_rwlock_unlock(&sh->lock);
    const char *id = nb ? nb->id : b->id;
    if (old && (nb == NULL || strcmp(old->ip, nb->ip) != 0)) {
        /* The block's network leaves the set unless another block holds it. */
        ipnet_t old_net;
        char holder[STORE_ID_MAX];
        canonical_net(old->ip, &old_net);
        if (map_index_get(&t->by_ip, old->ip, holder, sizeof(holder)) &&
            strcmp(holder, id) == 0) {
            map_index_unset(&t->by_ip, old->ip, id);
            ipnet_set_remove(t->set, &old_net);
        }
    }
    if (nb) {
        map_index_set(&t->by_ip, nb->ip, nb->id);
        ipnet_set_put(t->set, &net, nb->expires_at);
    }
    free_block(old);
    store_ip_block_clear(b);
}

int ip_blocks__apply(store_t *s, const void *data, size_t len)
{
    store_ip_block_t b;
    int rc = decode(data, len, &b);
    if (rc == 0)
        apply_block(s, &b);
    return rc;
}

/* Appends and applies b's state. REQUIRES: write_mu held. */
static int write_block(store_t *s, const store_ip_block_t *b, uint64_t *lsn)
{
    int rc = store__append(s, STORE_REC_IP_BLOCK, encode(b), lsn);
    if (rc == 0) {
        store_ip_block_t copy;
        copy_block(&copy, b);
        apply_block(s, &copy);
    }
    return rc;
}

static bool get_by_id(store_t *s, const char *id, store_ip_block_t *out)
{
    map_t *m = &s->ip_blocks->by_id;
    uint64_t h = map_hash(id);
    map_shard_t *sh = map_shard_of(m, h);
    pthread_rwlock_rdlock(&sh->lock);
    const store_ip_block_t *b = map_find_locked(sh, h, id);
    if (b)
        copy_block(out, b);
    pthread_rwlock_unlock(&sh->lock);
    return b != NULL;
}

bool store_ip_block_get(store_t *s, const char *id, store_ip_block_t *out)
{
    return get_by_id(s, id, out);
}

bool store_ip_block_find(store_t *s, const char *ip, store_ip_block_t *out)
{
    char id[STORE_ID_MAX];
    return map_index_get(&s->ip_blocks->by_ip, ip, id, sizeof(id)) && get_by_id(s, id, out);
}

int store_ip_block_create(store_t *s, store_ip_block_t *b, int64_t now_ms, uint64_t *lsn)
{
    b->deleted = false;
    if (!block_valid(b))
        return STORE_E_INVALID;
    pthread_mutex_lock(&s->write_mu);
    store_ip_block_t old;
    int rc = 0;
    if (store_ip_block_find(s, b->ip, &old)) {
        if (store_ip_block_active(&old, now_ms))
            rc = STORE_E_CONFLICT_IP_BLOCK;
        else
            memcpy(b->id, old.id, sizeof(b->id));
        store_ip_block_clear(&old);
    }
    if (rc == 0)
        rc = write_block(s, b, lsn);
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

int store_ip_block_delete(store_t *s, const char *id, const char *ip, store_ip_block_t *out,
                          uint64_t *lsn)
{
    pthread_mutex_lock(&s->write_mu);
    store_ip_block_t b;
    int rc = (id ? get_by_id(s, id, &b) : store_ip_block_find(s, ip, &b)) ? 0
                                                                          : STORE_E_NOT_FOUND;
    if (rc == 0) {
        b.deleted = true;
        rc = write_block(s, &b, lsn);
        b.deleted = false;
        if (rc == 0 && out)
            *out = b;
        else
            store_ip_block_clear(&b);
    }
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

typedef struct list_ctx {
    bool active_only;
    int64_t now_ms;
    store_ip_block_t *hits;
    size_t n, cap;
} list_ctx_t;

static bool collect(void *ctx, const char *key, void *value)
{
    (void)key;
    list_ctx_t *lc = ctx;
    const store_ip_block_t *b = value;
    if (lc->active_only && !store_ip_block_active(b, lc->now_ms))
        return true;
    if (lc->n == lc->cap) {
        lc->cap = lc->cap ? lc->cap * 2 : 32;
        lc->hits = xrealloc(lc->hits, lc->cap * sizeof(*lc->hits));
    }
    copy_block(&lc->hits[lc->n++], b);
    return true;
}

static void clear_item(void *item)
{
    store_ip_block_clear(item);
}

static int newest_first(const void *pa, const void *pb)
{
    const store_ip_block_t *a = pa, *b = pb;
    if (a->created_at != b->created_at)
        return a->created_at < b->created_at ? 1 : -1;
    return strcmp(b->id, a->id);
}

size_t store_ip_block_list(store_t *s, bool active_only, int64_t now_ms, size_t offset,
                           size_t limit, store_ip_block_t *out, size_t *n_out)
{
    list_ctx_t lc = {.active_only = active_only, .now_ms = now_ms};
    map_each(&s->ip_blocks->by_id, collect, &lc);
    store__page(lc.hits, lc.n, sizeof(*lc.hits), newest_first, clear_item, offset, limit, out,
                n_out);
    return lc.n;
}

/* ---- snapshots ------------------------------------------------------------ */

int ip_blocks__snapshot(store_t *s, wal_snapshot_t *snap)
{
    return store__snapshot_map(&s->ip_blocks->by_id, STORE_REC_IP_BLOCK, encode, snap);
}
