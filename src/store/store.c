/*
 * The store: tables in memory, each change a record in the write-ahead log.
 *
 * DESIGN
 * Tables are sharded maps (map.c): users by id, with indexes from the
 * lower-cased username and email to the id; sessions by id; API keys by id,
 * with an index from the key's hash. Readers take one shard's read lock at a
 * time and copy what they need out.
 *
 * Writers are serialised by `write_mu`, held across wal_append() and the
 * apply, so LSN order is apply order and a uniqueness check and its insert
 * are one step, and so is a read-modify-write (store_user_modify,
 * store_session_modify: the caller's change runs on the current state under
 * write_mu, so a refresh that rotates a session and a logout that revokes it
 * cannot overwrite each other); the wait for durability (store_wait) happens after it is
 * released, so the group commit batches every writer that came meanwhile.
 * The chat tables (chat.c) use the same write_mu for their writers; their
 * readers take only the chat structures' own read locks.
 *
 * The apply functions are the only code that changes the tables, live and in
 * replay (Redis replays its AOF through the live command code the same way).
 * They set whole states, so a record applied twice (a snapshot taken while
 * writes go on may already hold a record the log then replays) is harmless.
 *
 * Snapshots: a thread wakes every second and writes one when enough records
 * (or time) have passed; close writes a last one. The snapshot's LSN is read
 * under write_mu, when every record up to it has been applied.
 *
 * Recovery hands the records to replay.c's applier thread (the scan and the
 * apply overlap on two cores) and leaves the search index to its builder
 * thread (search.c), so a restart costs the scan and the apply alone.
 */
#include "parley/store.h"

#include <assert.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "codec.h"
#include "internal.h"
#include "parley/audit.h"
#include "parley/clock.h"
#include "parley/files.h"
#include "parley/ip_blocks.h"
#include "parley/log.h"
#include "parley/reports.h"
#include "parley/settings.h"
#include "parley/xalloc.h"
#include "user_names.h"


/* ---- entities ------------------------------------------------------------ */

void store_user_clear(store_user_t *u)
{
    free(u->display_name);
    free(u->bio);
    free(u->avatar_url);
    free(u->preferences);
    free(u->ban_reason);
    free(u->mute_reason);
    u->display_name = u->bio = u->avatar_url = u->preferences = u->ban_reason = NULL;
    u->mute_reason = NULL;
}

static char *dup_or_null(const char *s)
{
    if (s == NULL)
        return NULL;
    return xstrdup(s);
}

void store_user_copy(store_user_t *dst, const store_user_t *src)
{
    *dst = *src;
    dst->display_name = dup_or_null(src->display_name);
    dst->bio = dup_or_null(src->bio);
    dst->avatar_url = dup_or_null(src->avatar_url);
    dst->preferences = dup_or_null(src->preferences);
    dst->ban_reason = dup_or_null(src->ban_reason);
    dst->mute_reason = dup_or_null(src->mute_reason);
}

static void free_user(void *v)
{
    if (v) {
        store_user_clear(v);
        free(v);
    }
}

/* ASCII lower-casing into out (size bytes); usernames are ASCII, and an
 * email's non-ASCII bytes are kept as they are. */
void store__lower(const char *in, char *out, size_t size)
{
    size_t i = 0;
    for (; in[i] && i + 1 < size; i++)
        out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
    out[i] = '\0';
}

void store_new_id(const char *prefix, char out[STORE_ID_MAX])
{
    uint32_t rnd;
    gnutls_rnd(GNUTLS_RND_NONCE, &rnd, sizeof(rnd));
    snprintf(out, STORE_ID_MAX, "%s_%012llx%08x", prefix,
             (unsigned long long)clock_wall_ms() & 0xffffffffffffull, rnd);
}

/* ---- index helpers ------------------------------------------------------- */


/* ---- apply: the only code that changes the tables ---------------------- */

/* Takes ownership of *u's strings (u is consumed). */
static void apply_user(store_t *s, store_user_t *u)
{
    store_user_t *nu = xmemdup(u, sizeof(*u));
    uint64_t h = map_hash(nu->id);
    map_shard_t *sh = map_shard_of(&s->users, h);
    char old_name[STORE_USERNAME_MAX] = "", old_email[STORE_EMAIL_MAX] = "";
    pthread_rwlock_wrlock(&sh->lock);
    store_user_t *old = map_put_locked(sh, h, nu->id, nu);
    nu->rev = old ? old->rev + 1 : 1;
    /* The dashboard: an account counts once, when its id first appears; a
     * login when its time is newer than any counted (store.h). */
    nu->login_counted = old ? old->login_counted : 0;
    int64_t signup = old == NULL ? nu->created_at : INT64_MIN, login = INT64_MIN;
    if (nu->last_login > nu->login_counted)
        login = nu->login_counted = nu->last_login;
    if (old) {
        store__lower(old->username, old_name, sizeof(old_name));
        store__lower(old->email, old_email, sizeof(old_email));
        free_user(old);
    }
    pthread_rwlock_unlock(&sh->lock);
    if (signup != INT64_MIN) /* counted outside the shard lock (a leaf of its own) */
        store__count(s, STORE_METRIC_SIGNUPS, signup, 1);
    if (login != INT64_MIN)
        store__count(s, STORE_METRIC_LOGINS, login, 1);

    char name[STORE_USERNAME_MAX], email[STORE_EMAIL_MAX];
    store__lower(nu->username, name, sizeof(name));
    store__lower(nu->email, email, sizeof(email));
    bool deleted = nu->deleted_at != 0; /* its name and email are free */
    if (old_name[0] && (deleted || strcmp(old_name, name) != 0))
        map_index_unset(&s->user_by_name, old_name, nu->id);
    if (old_email[0] && (deleted || strcmp(old_email, email) != 0))
        map_index_unset(&s->user_by_email, old_email, nu->id);
    if (!deleted) {
        map_index_set(&s->user_by_name, name, nu->id);
        map_index_set(&s->user_by_email, email, nu->id);
    }
    store__names_set(s->user_names, nu->id, deleted ? NULL : nu->username, nu->display_name);
    memset(u, 0, sizeof(*u));
}

static void apply_session(store_t *s, const store_session_t *ss)
{
    uint64_t h = map_hash(ss->id);
    map_shard_t *sh = map_shard_of(&s->sessions, h);
    pthread_rwlock_wrlock(&sh->lock);
    free(map_put_locked(sh, h, ss->id, xmemdup(ss, sizeof(*ss))));
    pthread_rwlock_unlock(&sh->lock);
}

static void apply_api_key(store_t *s, const store_api_key_t *k)
{
    uint64_t h = map_hash(k->id);
    map_shard_t *sh = map_shard_of(&s->api_keys, h);
    pthread_rwlock_wrlock(&sh->lock);
    free(map_put_locked(sh, h, k->id, xmemdup(k, sizeof(*k))));
    pthread_rwlock_unlock(&sh->lock);
    map_index_set(&s->api_key_by_hash, k->hash, k->id);
}

char *store_record_json(uint8_t type, const void *data, size_t len)
{
    if (type == STORE_REC_MESSAGE)
        return chat__message_record_json(data, len);
    if (len == 0 || ((const char *)data)[0] != '{')
        return NULL;
    char *text = malloc(len + 1);
    if (text == NULL)
        return NULL;
    memcpy(text, data, len);
    text[len] = '\0';
    return text;
}

int store_apply(store_t *s, uint8_t type, const void *data, size_t len)
{
    switch (type) {
    case STORE_REC_USER: {
        store_user_t u;
        int rc = codec_user_decode(data, len, &u);
        if (rc == 0)
            apply_user(s, &u);
        return rc;
    }
    case STORE_REC_SESSION: {
        store_session_t ss;
        int rc = codec_session_decode(data, len, &ss);
        if (rc == 0)
            apply_session(s, &ss);
        return rc;
    }
    case STORE_REC_API_KEY: {
        store_api_key_t k;
        int rc = codec_api_key_decode(data, len, &k);
        if (rc == 0)
            apply_api_key(s, &k);
        return rc;
    }
    case STORE_REC_FILE:
        return files__apply(s, data, len);
    case STORE_REC_AUDIT:
        return audit__apply(s, data, len);
    case STORE_REC_REPORT:
        return reports__apply(s, data, len);
    case STORE_REC_SETTINGS:
        return settings__apply(s, data, len);
    case STORE_REC_INVITE:
        return invites__apply(s, data, len);
    case STORE_REC_IP_BLOCK:
        return ip_blocks__apply(s, data, len);
    default:
        return chat__apply(s, type, data, len);
    }
}

int store__append(store_t *s, uint8_t type, char *text /* freed */, uint64_t *lsn)
{
    return store__append_bytes(s, type, text, strlen(text), lsn);
}

int store__append_bytes(store_t *s, uint8_t type, void *data /* freed */, size_t len,
                        uint64_t *lsn)
{
    int rc = wal_append(s->wal, type, data, len, lsn);
    free(data);
    if (rc != 0) {
        if (rc != WAL_E_NOSPACE && rc != WAL_E_FAILED) /* those the log said once itself */
            log_error("store: the log refused a record: %s", wal_strerror(rc));
        return STORE_E_UNAVAILABLE;
    }
    return 0;
}

int store_wait(store_t *s, uint64_t lsn)
{
    return wal_wait(s->wal, lsn) == 0 ? 0 : STORE_E_UNAVAILABLE;
}

/* ---- users ---------------------------------------------------------------- */

int store_user_create(store_t *s, store_user_t *u, bool first_is_admin, uint64_t *lsn)
{
    pthread_mutex_lock(&s->write_mu);
    int rc = store__user_create_locked(s, u, first_is_admin, lsn);
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

int store__user_create_locked(store_t *s, store_user_t *u, bool first_is_admin, uint64_t *lsn)
{
    char name[STORE_USERNAME_MAX], email[STORE_EMAIL_MAX], other[STORE_ID_MAX];
    store__lower(u->username, name, sizeof(name));
    store__lower(u->email, email, sizeof(email));
    int rc = 0;
    if (map_index_get(&s->user_by_name, name, other, STORE_ID_MAX))
        rc = STORE_E_CONFLICT_USERNAME;
    else if (map_index_get(&s->user_by_email, email, other, STORE_ID_MAX))
        rc = STORE_E_CONFLICT_EMAIL;
    if (rc == 0) {
        if (first_is_admin && map_count(&s->users) == 0)
            u->is_admin = true;
        rc = store__append(s, STORE_REC_USER, codec_user_encode(u), lsn);
    }
    if (rc == 0) {
        store_user_t copy;
        store_user_copy(&copy, u);
        apply_user(s, &copy);
    }
    return rc;
}

int store_user_update(store_t *s, const store_user_t *u, uint64_t *lsn)
{
    char email[STORE_EMAIL_MAX], other[STORE_ID_MAX];
    store__lower(u->email, email, sizeof(email));
    pthread_mutex_lock(&s->write_mu);
    int rc = 0;
    store_user_t cur;
    if (!store_user_get(s, u->id, &cur)) {
        rc = STORE_E_NOT_FOUND;
    } else {
        store_user_clear(&cur);
        if (map_index_get(&s->user_by_email, email, other, STORE_ID_MAX) &&
            strcmp(other, u->id) != 0)
            rc = STORE_E_CONFLICT_EMAIL;
    }
    if (rc == 0)
        rc = store__append(s, STORE_REC_USER, codec_user_encode(u), lsn);
    if (rc == 0) {
        store_user_t copy;
        store_user_copy(&copy, u);
        apply_user(s, &copy);
    }
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

int store_user_modify(store_t *s, const char *id, int (*fn)(void *ctx, store_user_t *u),
                      void *ctx, store_user_t *out, uint64_t *lsn)
{
    char email[STORE_EMAIL_MAX], other[STORE_ID_MAX];
    store_user_t u;
    pthread_mutex_lock(&s->write_mu);
    int rc = 0;
    if (!store_user_get(s, id, &u)) {
        pthread_mutex_unlock(&s->write_mu);
        return STORE_E_NOT_FOUND;
    }
    rc = fn(ctx, &u);
    if (rc == 0 && u.deleted_at == 0) {
        char name[STORE_USERNAME_MAX];
        store__lower(u.username, name, sizeof(name));
        if (map_index_get(&s->user_by_name, name, other, STORE_ID_MAX) &&
            strcmp(other, u.id) != 0)
            rc = STORE_E_CONFLICT_USERNAME;
    }
    if (rc == 0 && u.deleted_at == 0) {
        store__lower(u.email, email, sizeof(email));
        if (map_index_get(&s->user_by_email, email, other, STORE_ID_MAX) &&
            strcmp(other, u.id) != 0)
            rc = STORE_E_CONFLICT_EMAIL;
    }
    if (rc == 0)
        rc = store__append(s, STORE_REC_USER, codec_user_encode(&u), lsn);
    if (rc == 0) {
        store_user_t copy;
        store_user_copy(&copy, &u);
        apply_user(s, &copy);
    }
    pthread_mutex_unlock(&s->write_mu);
    if (rc == 0 && out)
        *out = u;
    else
        store_user_clear(&u);
    return rc;
}

bool store_user_get(store_t *s, const char *id, store_user_t *out)
{
    uint64_t h = map_hash(id);
    map_shard_t *sh = map_shard_of(&s->users, h);
    pthread_rwlock_rdlock(&sh->lock);
    const store_user_t *u = map_find_locked(sh, h, id);
    if (u)
        store_user_copy(out, u);
    pthread_rwlock_unlock(&sh->lock);
    return u != NULL;
}

uint32_t store_user_rev(store_t *s, const char *id)
{
    uint32_t rev = 0;
    map_get_field(&s->users, id, offsetof(store_user_t, rev), &rev, sizeof(rev));
    return rev;
}

bool store_user_find(store_t *s, const char *name_or_email, store_user_t *out)
{
    char key[STORE_EMAIL_MAX], id[STORE_ID_MAX];
    if (strlen(name_or_email) >= sizeof(key))
        return false;
    store__lower(name_or_email, key, sizeof(key));
    if (!map_index_get(&s->user_by_name, key, id, STORE_ID_MAX) &&
        !map_index_get(&s->user_by_email, key, id, STORE_ID_MAX))
        return false;
    return store_user_get(s, id, out);
}

size_t store_user_count(store_t *s)
{
    return map_count(&s->users);
}

typedef struct search_ctx {
    char query[128];
    store_user_t *hits;
    size_t n, cap;
} search_ctx_t;

static bool contains_ci(const char *hay, const char *needle)
{
    return hay && strcasestr(hay, needle) != NULL;
}

static bool collect_user(void *ctx, const char *key, void *value)
{
    (void)key;
    search_ctx_t *sc = ctx;
    const store_user_t *u = value;
    if (u->deleted_at != 0)
        return true; /* its username may be someone else's now */
    if (sc->query[0] && !contains_ci(u->username, sc->query) &&
        !contains_ci(u->display_name, sc->query))
        return true;
    if (sc->n == sc->cap) {
        sc->cap = sc->cap ? sc->cap * 2 : 64;
        sc->hits = xrealloc(sc->hits, sc->cap * sizeof(*sc->hits));
    }
    store_user_copy(&sc->hits[sc->n++], u);
    return true;
}

static int by_username(const void *a, const void *b)
{
    return strcasecmp(((const store_user_t *)a)->username, ((const store_user_t *)b)->username);
}

typedef struct user_order {
    store_user_sort_t sort;
    bool desc;
} user_order_t;

static int by_user_order(const void *a, const void *b, void *ctx)
{
    const user_order_t *o = ctx;
    const store_user_t *x = a, *y = b;
    int r = 0;
    if (o->sort == STORE_USER_BY_CREATED)
        r = (x->created_at > y->created_at) - (x->created_at < y->created_at);
    else if (o->sort == STORE_USER_BY_LAST_SEEN)
        r = (x->last_seen > y->last_seen) - (x->last_seen < y->last_seen);
    if (r == 0 && o->sort != STORE_USER_BY_USERNAME)
        r = strcmp(x->id, y->id);
    if (r == 0)
        r = by_username(a, b);
    return o->desc ? -r : r;
}

size_t store_user_search(store_t *s, const char *query, size_t offset, size_t limit,
                         store_user_t *out, size_t *n_out)
{
    return store_user_search_sorted(s, query, STORE_USER_BY_USERNAME, false, offset, limit, out,
                                    n_out);
}

/* The users the name index says match sc->query, checked again on their
 * copies (a rename may be between its apply and the index's). */
static void collect_indexed(store_t *s, search_ctx_t *sc)
{
    char(*ids)[STORE_ID_MAX];
    size_t n = store__names_find(s->user_names, sc->query, &ids);
    sc->hits = xmalloc((n ? n : 1) * sizeof(*sc->hits));
    sc->cap = n ? n : 1;
    for (size_t i = 0; i < n; i++) {
        store_user_t *u = &sc->hits[sc->n];
        if (!store_user_get(s, ids[i], u))
            continue;
        if (u->deleted_at == 0 &&
            (contains_ci(u->username, sc->query) || contains_ci(u->display_name, sc->query)))
            sc->n++;
        else
            store_user_clear(u);
    }
    free(ids);
}

size_t store_user_search_sorted(store_t *s, const char *query, store_user_sort_t sort, bool desc,
                                size_t offset, size_t limit, store_user_t *out, size_t *n_out)
{
    search_ctx_t sc = {0};
    user_order_t order = {sort, desc};
    snprintf(sc.query, sizeof(sc.query), "%s", query ? query : "");
    if (sc.query[0])
        collect_indexed(s, &sc);
    else
        map_each(&s->users, collect_user, &sc);
    if (sc.n > 1)
        qsort_r(sc.hits, sc.n, sizeof(*sc.hits), by_user_order, &order);
    *n_out = 0;
    for (size_t i = 0; i < sc.n; i++) {
        if (i >= offset && *n_out < limit)
            out[(*n_out)++] = sc.hits[i]; /* strings move to the caller */
        else
            store_user_clear(&sc.hits[i]);
    }
    free(sc.hits);
    return sc.n;
}

typedef struct select_ctx {
    bool (*keep)(void *ctx, const store_user_t *u);
    void *ctx;
    store_user_t *list;
    size_t n, cap;
} select_ctx_t;

static bool select_user(void *ctx, const char *key, void *value)
{
    (void)key;
    select_ctx_t *sc = ctx;
    const store_user_t *u = value;
    if (sc->keep && !sc->keep(sc->ctx, u))
        return true;
    if (sc->n == sc->cap) {
        sc->cap = sc->cap ? sc->cap * 2 : 64;
        sc->list = xrealloc(sc->list, sc->cap * sizeof(*sc->list));
    }
    store_user_copy(&sc->list[sc->n++], u);
    return true;
}

size_t store_user_select(store_t *s, bool (*keep)(void *ctx, const store_user_t *u), void *ctx,
                         store_user_t **out)
{
    select_ctx_t sc = {.keep = keep, .ctx = ctx};
    map_each(&s->users, select_user, &sc);
    *out = sc.list;
    return sc.n;
}

static bool count_admin(void *ctx, const char *key, void *value)
{
    (void)key;
    const store_user_t *u = value;
    if (u->is_admin && u->is_active && u->deleted_at == 0)
        ++*(size_t *)ctx;
    return true;
}

size_t store_user_admin_count(store_t *s)
{
    size_t n = 0;
    map_each(&s->users, count_admin, &n);
    return n;
}

/* ---- sessions --------------------------------------------------------------- */

int store_session_put(store_t *s, const store_session_t *ss, uint64_t *lsn)
{
    pthread_mutex_lock(&s->write_mu);
    int rc = store__append(s, STORE_REC_SESSION, codec_session_encode(ss), lsn);
    if (rc == 0)
        apply_session(s, ss);
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

bool store_session_get(store_t *s, const char *id, store_session_t *out)
{
    return map_get_copy(&s->sessions, id, out, sizeof(*out));
}

int store_session_modify(store_t *s, const char *id, int (*fn)(void *ctx, store_session_t *ss),
                         void *ctx, store_session_t *out, uint64_t *lsn)
{
    store_session_t ss;
    pthread_mutex_lock(&s->write_mu);
    int rc = store_session_get(s, id, &ss) ? fn(ctx, &ss) : STORE_E_NOT_FOUND;
    if (rc == 0) {
        assert(strcmp(ss.id, id) == 0); /* fn changes the session, not which one */
        rc = store__append(s, STORE_REC_SESSION, codec_session_encode(&ss), lsn);
    }
    if (rc == 0)
        apply_session(s, &ss);
    pthread_mutex_unlock(&s->write_mu);
    if (rc == 0 && out)
        *out = ss;
    return rc;
}

typedef struct revoke_ctx {
    const char *user_id;
    const char *keep;
    store_session_t *list;
    size_t n, cap;
} revoke_ctx_t;

static bool collect_live_session(void *ctx, const char *key, void *value)
{
    (void)key;
    revoke_ctx_t *rc = ctx;
    const store_session_t *ss = value;
    if (ss->revoked || strcmp(ss->user_id, rc->user_id) != 0 ||
        (rc->keep && strcmp(ss->id, rc->keep) == 0))
        return true;
    if (rc->n == rc->cap) {
        rc->cap = rc->cap ? rc->cap * 2 : 16;
        rc->list = xrealloc(rc->list, rc->cap * sizeof(*rc->list));
    }
    rc->list[rc->n++] = *ss;
    return true;
}

typedef struct session_list_ctx {
    const char *user_id;
    int64_t now_ms;
    store_session_t *out;
    size_t n, max;
} session_list_ctx_t;

static bool list_session(void *ctx, const char *key, void *value)
{
    (void)key;
    session_list_ctx_t *lc = ctx;
    const store_session_t *ss = value;
    if (!ss->revoked && ss->expires_at > lc->now_ms && strcmp(ss->user_id, lc->user_id) == 0 &&
        lc->n < lc->max)
        lc->out[lc->n++] = *ss;
    return true;
}

static int by_created_desc(const void *a, const void *b)
{
    int64_t x = ((const store_session_t *)a)->created_at,
            y = ((const store_session_t *)b)->created_at;
    return (x < y) - (x > y);
}

size_t store_session_list(store_t *s, const char *user_id, int64_t now_ms, store_session_t *out,
                          size_t max)
{
    session_list_ctx_t lc = {.user_id = user_id, .now_ms = now_ms, .out = out, .max = max};
    map_each(&s->sessions, list_session, &lc);
    qsort(out, lc.n, sizeof(*out), by_created_desc);
    return lc.n;
}

int store_session_revoke_all(store_t *s, const char *user_id, const char *keep, uint64_t *lsn)
{
    revoke_ctx_t rc = {.user_id = user_id, .keep = keep};
    int err = 0;
    *lsn = 0;
    pthread_mutex_lock(&s->write_mu);
    map_each(&s->sessions, collect_live_session, &rc);
    for (size_t i = 0; i < rc.n && err == 0; i++) {
        rc.list[i].revoked = true;
        err = store__append(s, STORE_REC_SESSION, codec_session_encode(&rc.list[i]), lsn);
        if (err == 0)
            apply_session(s, &rc.list[i]);
    }
    pthread_mutex_unlock(&s->write_mu);
    free(rc.list);
    if (err == 0 && *lsn == 0)
        *lsn = wal_last_lsn(s->wal); /* nothing to revoke: nothing to wait for */
    return err;
}

/* ---- API keys --------------------------------------------------------------- */

int store_api_key_put(store_t *s, const store_api_key_t *k, uint64_t *lsn)
{
    pthread_mutex_lock(&s->write_mu);
    int rc = store__append(s, STORE_REC_API_KEY, codec_api_key_encode(k), lsn);
    if (rc == 0)
        apply_api_key(s, k);
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

bool store_api_key_get(store_t *s, const char *id, store_api_key_t *out)
{
    return map_get_copy(&s->api_keys, id, out, sizeof(*out));
}

bool store_api_key_find_hash(store_t *s, const char *hash, store_api_key_t *out)
{
    char id[STORE_ID_MAX];
    return map_index_get(&s->api_key_by_hash, hash, id, STORE_ID_MAX) &&
           store_api_key_get(s, id, out);
}

typedef struct key_list_ctx {
    const char *user_id;
    store_api_key_t *out;
    size_t n, max;
} key_list_ctx_t;

static bool collect_key(void *ctx, const char *key, void *value)
{
    (void)key;
    key_list_ctx_t *kc = ctx;
    const store_api_key_t *k = value;
    if (strcmp(k->user_id, kc->user_id) == 0 && !k->revoked && kc->n < kc->max)
        kc->out[kc->n++] = *k;
    return true;
}

static int newest_first(const void *a, const void *b)
{
    const store_api_key_t *x = a, *y = b;
    return x->created_at < y->created_at ? 1 : x->created_at > y->created_at ? -1 : 0;
}

size_t store_api_key_list(store_t *s, const char *user_id, store_api_key_t *out, size_t max)
{
    key_list_ctx_t kc = {.user_id = user_id, .out = out, .max = max};
    map_each(&s->api_keys, collect_key, &kc);
    if (kc.n > 1)
        qsort(out, kc.n, sizeof(*out), newest_first);
    return kc.n;
}

typedef struct key_revoke_ctx {
    const char *user_id;
    store_api_key_t *list;
    size_t n, cap;
} key_revoke_ctx_t;

static bool collect_live_key(void *ctx, const char *key, void *value)
{
    (void)key;
    key_revoke_ctx_t *kc = ctx;
    const store_api_key_t *k = value;
    if (k->revoked || strcmp(k->user_id, kc->user_id) != 0)
        return true;
    if (kc->n == kc->cap) {
        kc->cap = kc->cap ? kc->cap * 2 : 16;
        kc->list = xrealloc(kc->list, kc->cap * sizeof(*kc->list));
    }
    kc->list[kc->n++] = *k;
    return true;
}

int store_api_key_revoke_all(store_t *s, const char *user_id, uint64_t *lsn, size_t *revoked)
{
    key_revoke_ctx_t kc = {.user_id = user_id};
    int err = 0;
    size_t done = 0;
    pthread_mutex_lock(&s->write_mu);
    map_each(&s->api_keys, collect_live_key, &kc);
    for (size_t i = 0; i < kc.n && err == 0; i++) {
        kc.list[i].revoked = true;
        err = store__append(s, STORE_REC_API_KEY, codec_api_key_encode(&kc.list[i]), lsn);
        if (err == 0) {
            apply_api_key(s, &kc.list[i]);
            done++;
        }
    }
    pthread_mutex_unlock(&s->write_mu);
    free(kc.list);
    if (revoked)
        *revoked = done;
    return err;
}

/* ---- snapshots ---------------------------------------------------------------- */

typedef struct snap_ctx {
    wal_snapshot_t *snap;
    uint8_t type;
    int rc;
} snap_ctx_t;

static bool snap_entity(void *ctx, const char *key, void *value)
{
    (void)key;
    snap_ctx_t *sc = ctx;
    char *text;
    switch (sc->type) {
    case STORE_REC_USER:
        text = codec_user_encode(value);
        break;
    case STORE_REC_SESSION:
        text = codec_session_encode(value);
        break;
    default:
        text = codec_api_key_encode(value);
        break;
    }
    sc->rc = wal_snapshot_add(sc->snap, sc->type, text, strlen(text));
    free(text);
    return sc->rc == 0;
}

void store__page(void *hits, size_t n, size_t size, int (*cmp)(const void *, const void *),
                 void (*clear)(void *item), size_t offset, size_t limit, void *out,
                 size_t *n_out)
{
    if (n > 1 && cmp) /* NULL: already in order */
        qsort(hits, n, size, cmp);
    *n_out = 0;
    for (size_t i = 0; i < n; i++) {
        char *item = (char *)hits + i * size;
        if (i >= offset && *n_out < limit)
            memcpy((char *)out + (*n_out)++ * size, item, size);
        else
            clear(item);
    }
    free(hits);
}

typedef struct map_snap_ctx {
    wal_snapshot_t *snap;
    uint8_t type;
    char *(*encode)(const void *value);
    int rc;
} map_snap_ctx_t;

static bool snap_map_value(void *ctx, const char *key, void *value)
{
    (void)key;
    map_snap_ctx_t *sc = ctx;
    char *text = sc->encode(value);
    sc->rc = wal_snapshot_add(sc->snap, sc->type, text, strlen(text));
    free(text);
    return sc->rc == 0;
}

int store__snapshot_map(map_t *m, uint8_t type, char *(*encode)(const void *value),
                        wal_snapshot_t *snap)
{
    map_snap_ctx_t sc = {.snap = snap, .type = type, .encode = encode};
    map_each(m, snap_map_value, &sc);
    return sc.rc;
}

/* The other tables' records, each module's own (a new table adds its
 * function here, beside its case in store_apply). */
static int (*const table_snapshots[])(store_t *s, wal_snapshot_t *snap) = {
    chat__snapshot,     files__snapshot,   audit__snapshot,     reports__snapshot,
    settings__snapshot, invites__snapshot, ip_blocks__snapshot,
};

int store_backup_hold(store_t *s, wal_hold_t *out)
{
    return wal_hold_begin(s->wal, out) == 0 ? 0 : STORE_E_UNAVAILABLE;
}

int store_snapshot(store_t *s)
{
    return store_snapshot_now(s, NULL);
}

/* A failed snapshot is retried by the scheduler after 1, 2, 4... up to 60
 * seconds: a full disk should not be filled again every second by a
 * snapshot's temporary file (which the log's own writes would then lack). */
static void note_snapshot_failure(store_t *s, uint64_t lsn, int rc)
{
    pthread_mutex_lock(&s->info_mu);
    s->snap_failures++;
    unsigned n = s->snap_fails_in_row++;
    int64_t backoff_s = n >= 6 ? 60 : (int64_t)1 << n;
    s->snap_retry_ns = clock_mono_ns() + backoff_s * 1000000000;
    s->snap_failed_ms = clock_wall_ms();
    snprintf(s->snap_error, sizeof(s->snap_error), "%s", wal_strerror(rc));
    pthread_mutex_unlock(&s->info_mu);
    log_error("snapshot at lsn %llu failed: %s; retried in %lld s", (unsigned long long)lsn,
              wal_strerror(rc), (long long)backoff_s);
}

/* A scheduled snapshot may start: the log takes writes, and the backoff
 * after a failure has passed. */
static bool snapshot_may_run(store_t *s)
{
    if (wal_get_state(s->wal, NULL) != WAL_STATE_OK)
        return false; /* it would fail; tried again once the log is OK */
    pthread_mutex_lock(&s->info_mu);
    bool ok = clock_mono_ns() >= s->snap_retry_ns;
    pthread_mutex_unlock(&s->info_mu);
    return ok;
}

int store_snapshot_now(store_t *s, store_snapshot_info_t *out)
{
    pthread_mutex_lock(&s->snap_mu);
    atomic_store(&s->snapshot_running, true);
    uint64_t segments_before, segments_after, bytes;
    wal_disk_usage(s->wal, &bytes, &segments_before);
    /* Every record up to `lsn` is applied while write_mu is held. */
    pthread_mutex_lock(&s->write_mu);
    uint64_t lsn = wal_last_lsn(s->wal);
    pthread_mutex_unlock(&s->write_mu);
    int64_t started = clock_mono_ns();
    wal_snapshot_t *snap;
    int rc = wal_snapshot_begin(s->wal, lsn, &snap);
    if (rc == 0) {
        snap_ctx_t sc = {.snap = snap};
        sc.type = STORE_REC_USER;
        map_each(&s->users, snap_entity, &sc);
        if (sc.rc == 0) {
            sc.type = STORE_REC_SESSION;
            map_each(&s->sessions, snap_entity, &sc);
        }
        if (sc.rc == 0) {
            sc.type = STORE_REC_API_KEY;
            map_each(&s->api_keys, snap_entity, &sc);
        }
        for (size_t i = 0; sc.rc == 0 && i < sizeof(table_snapshots) / sizeof(table_snapshots[0]);
             i++)
            sc.rc = table_snapshots[i](s, snap);
        if (sc.rc == 0) {
            rc = wal_snapshot_commit(snap);
        } else {
            rc = sc.rc;
            wal_snapshot_abort(snap);
        }
    }
    if (rc == 0) {
        atomic_store(&s->snapshot_lsn, lsn);
        s->last_snapshot_ns = clock_mono_ns();
        log_info("snapshot at lsn %llu written in %.1f ms", (unsigned long long)lsn,
                 (double)(clock_mono_ns() - started) / 1e6);
        wal_disk_usage(s->wal, &bytes, &segments_after);
        wal_stats_t ws;
        wal_get_stats(s->wal, &ws);
        pthread_mutex_lock(&s->info_mu);
        s->last_snap = (store_snapshot_info_t){
            .lsn = lsn,
            .bytes = ws.snapshot_bytes,
            .at_ms = clock_wall_ms(),
            .duration_ms = (clock_mono_ns() - started) / 1000000,
            .segments_trimmed =
                segments_before > segments_after ? segments_before - segments_after : 0,
        };
        if (out)
            *out = s->last_snap;
        pthread_mutex_unlock(&s->info_mu);
        pthread_mutex_lock(&s->info_mu);
        s->snap_fails_in_row = 0;
        s->snap_retry_ns = 0;
        pthread_mutex_unlock(&s->info_mu);
    } else {
        note_snapshot_failure(s, lsn, rc);
    }
    atomic_store(&s->snapshot_running, false);
    pthread_mutex_unlock(&s->snap_mu);
    return rc == 0 ? 0 : STORE_E_UNAVAILABLE;
}

static void *snapshot_main(void *arg)
{
    store_t *s = arg;
    pthread_setname_np(pthread_self(), "parley-snapshot");
    pthread_mutex_lock(&s->thread_mu);
    while (!s->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->thread_cv, &s->thread_mu, &ts);
        if (s->stop)
            break;
        uint64_t since = wal_last_lsn(s->wal) - atomic_load(&s->snapshot_lsn);
        bool by_count = s->opts.snapshot_every_records && since >= s->opts.snapshot_every_records;
        bool by_time = s->opts.snapshot_every_seconds && since > 0 &&
                       clock_mono_ns() - s->last_snapshot_ns >=
                           (int64_t)s->opts.snapshot_every_seconds * 1000000000;
        if ((by_count || by_time) && snapshot_may_run(s)) {
            pthread_mutex_unlock(&s->thread_mu);
            store_snapshot(s);
            pthread_mutex_lock(&s->thread_mu);
        }
    }
    pthread_mutex_unlock(&s->thread_mu);
    return NULL;
}

/* ---- open and close ------------------------------------------------------------- */

static void wal_message(void *ctx, int level, const char *message)
{
    (void)ctx;
    if (level == 0)
        log_error("wal: %s", message);
    else if (level == 1)
        log_warning("wal: %s", message);
    else
        log_info("wal: %s", message);
}

static void clear_tables(store_t *s)
{
    map_clear(&s->users);
    map_clear(&s->user_by_name);
    map_clear(&s->user_by_email);
    map_clear(&s->sessions);
    map_clear(&s->api_keys);
    map_clear(&s->api_key_by_hash);
    store__names_clear(s->user_names);
    chat__clear(s->chat);
    files__clear(s->files);
    audit__clear(s->audit);
    reports__clear(s->reports);
    settings__clear(s->settings);
    map_clear(&s->invites);
    ip_blocks__clear(s->ip_blocks);
    for (int i = 0; i < STORE_METRICS; i++)
        series_clear(s->series[i]);
}

/* Recovery's callbacks: records go to the replayer (replay.c), or are
 * applied here when it has no thread. */
typedef struct recovery {
    store_t *s;
    replayer_t *r;
} recovery_t;

static int replay_record(recovery_t *rc, uint64_t lsn, uint8_t type, const void *data,
                         size_t len)
{
    if (rc->r)
        return store__replayer_add(rc->r, lsn, type, data, len);
    if (store_apply(rc->s, type, data, len) != 0) {
        log_error("store: record %llu (type %u) does not parse", (unsigned long long)lsn, type);
        return 1;
    }
    return 0;
}

static int on_snapshot_begin(void *ctx, uint64_t lsn)
{
    (void)lsn;
    recovery_t *rc = ctx;
    if (rc->r && store__replayer_drain(rc->r) != 0)
        return 1;
    clear_tables(rc->s);
    return 0;
}

static int on_snapshot_record(void *ctx, uint8_t type, const void *data, size_t len)
{
    return replay_record(ctx, 0, type, data, len);
}

static int on_record(void *ctx, uint64_t lsn, uint8_t type, const void *data, size_t len)
{
    return replay_record(ctx, lsn, type, data, len);
}

/* Ends the replayer; false (logged) when a record did not apply. */
static bool finish_replay(recovery_t *rc)
{
    uint64_t lsn;
    uint8_t type;
    if (rc->r == NULL || store__replayer_stop(rc->r, &lsn, &type))
        return true;
    log_error("store: %s record %llu (type %u) does not parse", lsn ? "log" : "snapshot",
              (unsigned long long)lsn, type);
    return false;
}

int store_open(store_t **out, const char *data_dir, const store_options_t *opts, char *err,
               size_t err_size)
{
    store_t *s = xcalloc(1, sizeof(*s));
    s->opts = *opts;
    pthread_mutex_init(&s->write_mu, NULL);
    pthread_mutex_init(&s->snap_mu, NULL);
    pthread_mutex_init(&s->thread_mu, NULL);
    pthread_cond_init(&s->thread_cv, NULL);
    pthread_mutex_init(&s->info_mu, NULL);
    for (int i = 0; i < STORE_METRICS; i++)
        s->series[i] = series_new();
    map_init(&s->users, free_user);
    map_init(&s->user_by_name, free);
    map_init(&s->user_by_email, free);
    map_init(&s->sessions, free);
    map_init(&s->api_keys, free);
    map_init(&s->api_key_by_hash, free);
    s->user_names = store__names_new();
    s->chat = chat__new();
    s->files = files__new();
    s->audit = audit__new();
    /* Before replay, so replay trims to the bounds configured now. */
    store_audit_set_limits(s, opts->audit_max_entries ? opts->audit_max_entries
                                                      : AUDIT_DEFAULT_MAX_ENTRIES,
                           opts->audit_max_days);
    s->reports = reports__new();
    s->settings = settings__new();
    map_init(&s->invites, free);
    s->ip_blocks = ip_blocks__new();

    wal_options_t wo = {.fsync = opts->fsync, .log = wal_message, .key = opts->encryption_key};
    recovery_t recovery = {s, store__replayer_start(s)};
    wal_replay_t replay = {on_snapshot_begin, on_snapshot_record, on_record, &recovery};
    wal_recovery_t rep;
    int64_t started = clock_mono_ns();
    int rc = wal_open(data_dir, &wo, &replay, &s->wal, &rep);
    /* Everything handed over is applied before the log is used. A failure
     * the scan did not see yet (the last batch's) fails the open too. */
    if (!finish_replay(&recovery) && rc == 0) {
        wal_close(s->wal);
        s->wal = NULL;
        rc = WAL_E_CALLBACK;
    }
    if (rc != 0) {
        if (rep.error_file[0])
            snprintf(err, err_size, "cannot recover the log: %s (%s at offset %llu)",
                     wal_strerror(rc), rep.error_file, (unsigned long long)rep.error_offset);
        else
            snprintf(err, err_size, "cannot recover the log: %s", wal_strerror(rc));
        clear_tables(s);
        store_close(s);
        return -1;
    }
    double ms = (double)(clock_mono_ns() - started) / 1e6;
    log_info("recovered in %.1f ms: snapshot at lsn %llu (%llu records), %llu log records "
             "replayed, last lsn %llu; %zu users",
             ms, (unsigned long long)rep.snapshot_lsn, (unsigned long long)rep.snapshot_records,
             (unsigned long long)rep.records_replayed, (unsigned long long)rep.last_lsn,
             map_count(&s->users));
    atomic_store(&s->snapshot_lsn, rep.snapshot_lsn);
    s->last_snapshot_ns = clock_mono_ns();
    store__snapshot_found(s, rep.snapshot_lsn);
    chat__index_build_start(s->chat);
    if (pthread_create(&s->snap_thread, NULL, snapshot_main, s) == 0)
        s->snap_thread_started = true;
    *out = s;
    return 0;
}

int store_close(store_t *s)
{
    if (s == NULL)
        return 0;
    if (s->snap_thread_started) {
        pthread_mutex_lock(&s->thread_mu);
        s->stop = true;
        pthread_cond_signal(&s->thread_cv);
        pthread_mutex_unlock(&s->thread_mu);
        pthread_join(s->snap_thread, NULL);
    }
    int rc = 0;
    if (s->wal) {
        if (wal_last_lsn(s->wal) > atomic_load(&s->snapshot_lsn))
            store_snapshot(s);
        rc = wal_close(s->wal) == 0 ? 0 : STORE_E_UNAVAILABLE;
    }
    map_deinit(&s->users);
    map_deinit(&s->user_by_name);
    map_deinit(&s->user_by_email);
    map_deinit(&s->sessions);
    map_deinit(&s->api_keys);
    map_deinit(&s->api_key_by_hash);
    store__names_free(s->user_names);
    chat__free(s->chat);
    files__free(s->files);
    audit__free(s->audit);
    reports__free(s->reports);
    settings__free(s->settings);
    map_deinit(&s->invites);
    ip_blocks__free(s->ip_blocks);
    pthread_mutex_destroy(&s->write_mu);
    pthread_mutex_destroy(&s->snap_mu);
    pthread_mutex_destroy(&s->thread_mu);
    pthread_cond_destroy(&s->thread_cv);
    pthread_mutex_destroy(&s->info_mu);
    for (int i = 0; i < STORE_METRICS; i++)
        series_free(s->series[i]);
    free(s);
    return rc;
}

void store_get_stats(store_t *s, store_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->users = map_count(&s->users);
    out->sessions = map_count(&s->sessions);
    out->api_keys = map_count(&s->api_keys);
    chat__stats(s, &out->channels, &out->messages);
    out->files = files__count(s);
    wal_disk_usage(s->wal, &out->wal_bytes, &out->wal_segments);
    out->last_lsn = wal_last_lsn(s->wal);
    out->snapshot_lsn = atomic_load(&s->snapshot_lsn);
    files__bytes(s, &out->live_files, &out->file_bytes, &out->blob_bytes);
}
