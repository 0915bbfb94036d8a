/*
 * Invites (include/parley/settings.h): codes that let an account register
 * while registration is by invitation, and put it in channels.
 *
 * Each change is a record of the invite's whole state (type 32,
 * {"v":1,"code","created_by","created_at","expires_at","max_uses","uses",
 * "revoked","channel_ids"}); a revoked invite's record removes it from the
 * table, so it is neither listed nor usable and snapshots leave it out. Uses
 * are counted under the store's write lock together with what they allow
 * (store_user_create_invited creates the account and writes the invite's
 * new count in one step), so an invite's last use goes to one caller only.
 */
#include "parley/settings.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"
#include "codec.h"
#include "parley/xalloc.h"

/* A code: 1-32 of [A-Za-z0-9_-] (the id rule, shorter). */
static bool code_ok(const char *c)
{
    return strnlen(c, STORE_INVITE_CODE_MAX) < STORE_INVITE_CODE_MAX && chat__valid_id(c);
}

/* The check every invite record passes, written or read. */
static bool invite_valid(const store_invite_t *inv)
{
    if (!code_ok(inv->code) || !chat__valid_id(inv->created_by) || inv->max_uses < 0 ||
        inv->max_uses > STORE_INVITE_USES_MAX || inv->uses < 0 ||
        inv->uses > STORE_INVITE_USES_MAX || inv->expires_at < 0 || inv->created_at < 0 ||
        inv->n_channels > STORE_INVITE_CHANNELS_MAX)
        return false;
    for (size_t i = 0; i < inv->n_channels; i++)
        if (!chat__valid_id(inv->channels[i]))
            return false;
    return true;
}

bool store_invite_usable(const store_invite_t *inv, int64_t now_ms)
{
    return !inv->revoked && (inv->expires_at == 0 || now_ms < inv->expires_at) &&
           (inv->max_uses == 0 || inv->uses < inv->max_uses);
}

static char *invite_encode(const store_invite_t *inv)
{
    json_t *ch = json_array();
    for (size_t i = 0; i < inv->n_channels; i++)
        json_array_append_new(ch, json_string(inv->channels[i]));
    json_t *o = json_pack("{s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:o}", "v",
                          STORE_INVITE_SCHEMA_VERSION, "code", inv->code, "created_by",
                          inv->created_by, "created_at", (json_int_t)inv->created_at,
                          "expires_at", (json_int_t)inv->expires_at, "max_uses",
                          (json_int_t)inv->max_uses, "uses", (json_int_t)inv->uses, "revoked",
                          inv->revoked, "channel_ids", ch);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static bool copy_str(json_t *o, const char *key, char *out, size_t size)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v == NULL || strlen(v) >= size)
        return false;
    strcpy(out, v);
    return true;
}

static bool get_int(json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return false;
    *out = json_integer_value(v);
    return true;
}

static int invite_decode(const void *data, size_t len, store_invite_t *inv)
{
    memset(inv, 0, sizeof(*inv));
    json_t *o = codec_open_record(data, len, STORE_INVITE_SCHEMA_VERSION);
    if (o == NULL)
        return STORE_E_CORRUPT;
    json_t *ch = json_object_get(o, "channel_ids");
    json_t *rev = json_object_get(o, "revoked");
    bool ok = copy_str(o, "code", inv->code, sizeof(inv->code)) &&
              copy_str(o, "created_by", inv->created_by, sizeof(inv->created_by)) &&
              get_int(o, "created_at", &inv->created_at) &&
              get_int(o, "expires_at", &inv->expires_at) &&
              get_int(o, "max_uses", &inv->max_uses) && get_int(o, "uses", &inv->uses) &&
              json_is_boolean(rev) && json_is_array(ch) &&
              json_array_size(ch) <= STORE_INVITE_CHANNELS_MAX;
    if (ok) {
        inv->revoked = json_is_true(rev);
        size_t i;
        json_t *e;
        json_array_foreach(ch, i, e) {
            const char *id = json_string_value(e);
            if (id == NULL || strlen(id) >= STORE_ID_MAX) {
                ok = false;
                break;
            }
            strcpy(inv->channels[inv->n_channels++], id);
        }
    }
    json_decref(o);
    if (!ok || !invite_valid(inv)) {
        memset(inv, 0, sizeof(*inv));
        return STORE_E_CORRUPT;
    }
    return 0;
}

static void apply_invite(store_t *s, const store_invite_t *inv)
{
    uint64_t h = map_hash(inv->code);
    map_shard_t *sh = map_shard_of(&s->invites, h);
    pthread_rwlock_wrlock(&sh->lock);
    if (inv->revoked)
        free(map_remove_locked(sh, h, inv->code));
    else
        free(map_put_locked(sh, h, inv->code, xmemdup(inv, sizeof(*inv))));
    pthread_rwlock_unlock(&sh->lock);
}

int invites__apply(store_t *s, const void *data, size_t len)
{
    store_invite_t inv;
    int rc = invite_decode(data, len, &inv);
    if (rc == 0)
        apply_invite(s, &inv);
    return rc;
}

typedef struct snap_ctx {
    wal_snapshot_t *snap;
    int rc;
} snap_ctx_t;

static bool snap_invite(void *ctx, const char *key, void *value)
{
    (void)key;
    snap_ctx_t *sc = ctx;
    char *text = invite_encode(value);
    sc->rc = wal_snapshot_add(sc->snap, STORE_REC_INVITE, text, strlen(text));
    free(text);
    return sc->rc == 0;
}

int invites__snapshot(store_t *s, wal_snapshot_t *snap)
{
    snap_ctx_t sc = {.snap = snap};
    map_each(&s->invites, snap_invite, &sc);
    return sc.rc;
}

/* Logs and applies. REQUIRES: write_mu held. */
static int put_locked(store_t *s, const store_invite_t *inv, uint64_t *lsn)
{
    if (!invite_valid(inv))
        return STORE_E_INVALID;
    int rc = store__append(s, STORE_REC_INVITE, invite_encode(inv), lsn);
    if (rc == 0)
        apply_invite(s, inv);
    return rc;
}

int store_invite_put(store_t *s, const store_invite_t *inv, uint64_t *lsn)
{
    pthread_mutex_lock(&s->write_mu);
    int rc = put_locked(s, inv, lsn);
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

bool store_invite_get(store_t *s, const char *code, store_invite_t *out)
{
    return map_get_copy(&s->invites, code, out, sizeof(*out));
}

typedef struct list_ctx {
    store_invite_t *v;
    size_t n, cap;
} list_ctx_t;

static bool collect(void *ctx, const char *key, void *value)
{
    (void)key;
    list_ctx_t *lc = ctx;
    if (lc->n == lc->cap) {
        lc->cap = lc->cap ? lc->cap * 2 : 16;
        lc->v = xrealloc(lc->v, lc->cap * sizeof(*lc->v));
    }
    lc->v[lc->n++] = *(const store_invite_t *)value;
    return true;
}

static int newest_first(const void *a, const void *b)
{
    const store_invite_t *x = a, *y = b;
    if (x->created_at != y->created_at)
        return x->created_at < y->created_at ? 1 : -1;
    return strcmp(x->code, y->code);
}

size_t store_invite_list(store_t *s, store_invite_t **out)
{
    list_ctx_t lc = {0};
    map_each(&s->invites, collect, &lc);
    if (lc.n > 1)
        qsort(lc.v, lc.n, sizeof(*lc.v), newest_first);
    *out = lc.v;
    return lc.n;
}

/* Counts a use of `code`. REQUIRES: write_mu held. */
static int use_locked(store_t *s, const char *code, int64_t now_ms, store_invite_t *out,
                      uint64_t *lsn)
{
    store_invite_t inv;
    if (!store_invite_get(s, code, &inv) || !store_invite_usable(&inv, now_ms))
        return STORE_E_INVITE;
    inv.uses++;
    int rc = put_locked(s, &inv, lsn);
    if (rc == 0 && out)
        *out = inv;
    return rc;
}

int store_invite_use(store_t *s, const char *code, int64_t now_ms, store_invite_t *inv,
                     uint64_t *lsn)
{
    pthread_mutex_lock(&s->write_mu);
    int rc = use_locked(s, code, now_ms, inv, lsn);
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

int store_user_create_invited(store_t *s, store_user_t *u, bool first_is_admin, const char *code,
                              int64_t now_ms, store_invite_t *inv, uint64_t *lsn)
{
    pthread_mutex_lock(&s->write_mu);
    store_invite_t cur;
    int rc = store_invite_get(s, code, &cur) && store_invite_usable(&cur, now_ms)
                 ? store__user_create_locked(s, u, first_is_admin, lsn)
                 : STORE_E_INVITE;
    /* The user's record is applied: the use follows it in the log (a crash
     * between the two leaves an account and an uncounted use, never a
     * counted use without its account). */
    if (rc == 0)
        rc = use_locked(s, code, now_ms, inv, lsn);
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}
