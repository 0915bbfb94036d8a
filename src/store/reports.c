/*
 * Report records (include/parley/reports.h): a reader's report of a message,
 * with the message's content and author copied at report time, from filing
 * (open) to its one close (resolved with an action, or dismissed).
 *
 * Like every table of the store: a change is one record with the report's
 * whole state, appended and applied under the store's write lock, replayed
 * by the same apply, written whole in snapshots. Two derived tables are
 * never logged: the (reporter, message) index that refuses a second report
 * of the same message, and the count of open reports per reporter behind
 * the flood cap; apply recomputes them from the change of one report (its
 * old and new status), so a record applied twice leaves them right. One
 * validity check serves the decoder and the writers, so the server never
 * logs a record its replay would refuse.
 */
#include "parley/reports.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "internal.h"
#include "parley/xalloc.h"

#define PAIR_KEY_MAX (2 * STORE_ID_MAX + 1)

struct report_tables {
    map_t reports;     /* id -> store_report_t* */
    map_t by_pair;     /* "reporter_id message_id" -> report id */
    map_t open_counts; /* reporter_id -> uint64_t* open reports (none: 0) */
};

static const char *const status_names[] = {"open", "resolved", "dismissed"};
static const char *const action_names[] = {"none", "dismiss", "delete_message", "ban_author",
                                           "mute_author"};
#define N_STATUS (sizeof(status_names) / sizeof(status_names[0]))
#define N_ACTION (sizeof(action_names) / sizeof(action_names[0]))

const char *store_report_status_name(int status)
{
    return status >= 0 && (size_t)status < N_STATUS ? status_names[status] : NULL;
}

const char *store_report_action_name(int action)
{
    return action > 0 && (size_t)action < N_ACTION ? action_names[action] : NULL;
}

static int index_of(const char *name, const char *const *names, size_t n, size_t from)
{
    for (size_t i = from; name && i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    return -1;
}

int store_report_status_of(const char *name)
{
    return index_of(name, status_names, N_STATUS, 0);
}

int store_report_action_of(const char *name)
{
    return index_of(name, action_names, N_ACTION, 1); /* "none" is no action to take */
}

void store_report_clear(store_report_t *r)
{
    free(r->content);
    free(r->reason);
    r->content = r->reason = NULL;
}

static void free_report(void *v)
{
    if (v) {
        store_report_clear(v);
        free(v);
    }
}

static void copy_report(store_report_t *dst, const store_report_t *src)
{
    *dst = *src;
    dst->content = src->content ? xstrdup(src->content) : NULL;
    dst->reason = src->reason ? xstrdup(src->reason) : NULL;
}

struct report_tables *reports__new(void)
{
    struct report_tables *t = xcalloc(1, sizeof(*t));
    map_init(&t->reports, free_report);
    map_init(&t->by_pair, free);
    map_init(&t->open_counts, free);
    return t;
}

void reports__free(struct report_tables *t)
{
    if (t == NULL)
        return;
    map_deinit(&t->reports);
    map_deinit(&t->by_pair);
    map_deinit(&t->open_counts);
    free(t);
}

void reports__clear(struct report_tables *t)
{
    map_clear(&t->reports);
    map_clear(&t->by_pair);
    map_clear(&t->open_counts);
}

/* ---- records ---------------------------------------------------------------- */

static bool id_ok(const char *id)
{
    return id[0] != '\0';
}

/* What a record may hold: shared by the decoder and the writers. */
static bool report_valid(const store_report_t *r)
{
    bool closed_ok =
        r->status == STORE_REPORT_OPEN
            ? r->action == STORE_REPORT_ACTION_NONE && r->resolved_at == 0 && !r->resolved_by[0]
        : r->status == STORE_REPORT_DISMISSED
            ? r->action == STORE_REPORT_DISMISS && id_ok(r->resolved_by)
        : r->status == STORE_REPORT_RESOLVED
            ? r->action >= STORE_REPORT_DELETE_MESSAGE && r->action <= STORE_REPORT_MUTE_AUTHOR &&
                  id_ok(r->resolved_by)
            : false;
    return closed_ok && id_ok(r->id) && id_ok(r->message_id) && id_ok(r->channel_id) &&
           id_ok(r->reporter_id) && id_ok(r->author_id) && r->reason && r->reason[0] &&
           strlen(r->reason) <= STORE_REPORT_REASON_MAX &&
           (r->content == NULL || strlen(r->content) <= STORE_REPORT_CONTENT_MAX) &&
           r->created_at >= 0 && r->resolved_at >= 0 && r->message_created_at >= 0;
}

static char *encode(const store_report_t *r)
{
    json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:s, s:s, s:I, s:I}",
                          "v", STORE_SCHEMA_VERSION, "id", r->id, "message_id", r->message_id,
                          "channel_id", r->channel_id, "reporter_id", r->reporter_id,
                          "author_id", r->author_id, "author_username", r->author_username,
                          "content_truncated", r->content_truncated, "message_created_at",
                          (json_int_t)r->message_created_at, "reason", r->reason, "status",
                          store_report_status_name(r->status), "created_at",
                          (json_int_t)r->created_at, "resolved_at", (json_int_t)r->resolved_at);
    if (o == NULL)
        abort(); /* report_valid was checked: only memory can fail */
    codec_set_str(o, "content", r->content);
    codec_set_str(o, "action", store_report_action_name(r->action));
    codec_set_str(o, "resolved_by", r->resolved_by[0] ? r->resolved_by : NULL);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL)
        abort();
    return text;
}

static int decode(const void *data, size_t len, store_report_t *r)
{
    memset(r, 0, sizeof(*r));
    json_t *o = codec_open_record(data, len, STORE_SCHEMA_VERSION);
    if (o == NULL)
        return STORE_E_CORRUPT;
    json_t *status = json_object_get(o, "status"), *action = json_object_get(o, "action");
    r->status = store_report_status_of(json_string_value(status));
    r->action = json_is_null(action) ? STORE_REPORT_ACTION_NONE
                                     : store_report_action_of(json_string_value(action));
    bool ok = codec_get_fixed(o, "id", r->id, sizeof(r->id)) &&
              codec_get_fixed(o, "message_id", r->message_id, sizeof(r->message_id)) &&
              codec_get_fixed(o, "channel_id", r->channel_id, sizeof(r->channel_id)) &&
              codec_get_fixed(o, "reporter_id", r->reporter_id, sizeof(r->reporter_id)) &&
              codec_get_fixed(o, "author_id", r->author_id, sizeof(r->author_id)) &&
              codec_get_fixed_opt(o, "author_username", r->author_username,
                                  sizeof(r->author_username)) &&
              codec_get_dup(o, "content", &r->content) &&
              codec_get_bool(o, "content_truncated", &r->content_truncated) &&
              codec_get_i64(o, "message_created_at", &r->message_created_at) &&
              codec_get_dup(o, "reason", &r->reason) &&
              codec_get_i64(o, "created_at", &r->created_at) &&
              codec_get_i64(o, "resolved_at", &r->resolved_at) &&
              codec_get_fixed_opt(o, "resolved_by", r->resolved_by, sizeof(r->resolved_by)) &&
              report_valid(r);
    json_decref(o);
    if (!ok) {
        store_report_clear(r);
        return STORE_E_CORRUPT;
    }
    return 0;
}

/* ---- apply ------------------------------------------------------------------ */

static void pair_key(const store_report_t *r, char out[PAIR_KEY_MAX])
{
    snprintf(out, PAIR_KEY_MAX, "%s %s", r->reporter_id, r->message_id);
}

/* Adds delta to the reporter's open count (dropping it at zero). */
static void adjust_open(struct report_tables *t, const char *reporter_id, int delta)
{
    uint64_t h = map_hash(reporter_id);
    map_shard_t *sh = map_shard_of(&t->open_counts, h);
    pthread_rwlock_wrlock(&sh->lock);
    uint64_t *n = map_find_locked(sh, h, reporter_id);
    if (n == NULL && delta > 0) {
        n = xcalloc(1, sizeof(*n));
        free(map_put_locked(sh, h, reporter_id, n));
    }
    if (n) {
        *n = delta < 0 && *n < (uint64_t)-delta ? 0 : (uint64_t)((int64_t)*n + delta);
        if (*n == 0)
            free(map_remove_locked(sh, h, reporter_id));
    }
    pthread_rwlock_unlock(&sh->lock);
}

/* Takes r's strings. REQUIRES: write_mu held (or recovery's one applier). */
static void apply_report(store_t *s, store_report_t *r)
{
    struct report_tables *t = s->reports;
    store_report_t *nr = xmemdup(r, sizeof(*r));
    memset(r, 0, sizeof(*r));
    uint64_t h = map_hash(nr->id);
    map_shard_t *sh = map_shard_of(&t->reports, h);
    pthread_rwlock_wrlock(&sh->lock);
    store_report_t *old = map_put_locked(sh, h, nr->id, nr);
    bool was_open = old && old->status == STORE_REPORT_OPEN;
    free_report(old);
    pthread_rwlock_unlock(&sh->lock);

    bool open = nr->status == STORE_REPORT_OPEN;
    if (was_open != open)
        adjust_open(t, nr->reporter_id, open ? +1 : -1);
    char key[PAIR_KEY_MAX];
    pair_key(nr, key);
    map_index_set(&t->by_pair, key, nr->id);
}

int reports__apply(store_t *s, const void *data, size_t len)
{
    store_report_t r;
    int rc = decode(data, len, &r);
    if (rc == 0)
        apply_report(s, &r);
    return rc;
}

/* Logs and applies a copy of r. REQUIRES: write_mu held. */
static int put_locked(store_t *s, const store_report_t *r, uint64_t *lsn)
{
    int rc = store__append(s, STORE_REC_REPORT, encode(r), lsn);
    if (rc == 0) {
        store_report_t copy;
        copy_report(&copy, r);
        apply_report(s, &copy);
    }
    return rc;
}

int store_report_create(store_t *s, const store_report_t *r, uint64_t *lsn)
{
    if (!report_valid(r) || r->status != STORE_REPORT_OPEN)
        return STORE_E_INVALID;
    char key[PAIR_KEY_MAX], other[STORE_ID_MAX];
    pair_key(r, key);
    pthread_mutex_lock(&s->write_mu);
    int rc = map_index_get(&s->reports->by_pair, key, other, sizeof(other))
                 ? STORE_E_REPORT_DUPLICATE
             : store_report_open_count(s, r->reporter_id) >= STORE_REPORT_OPEN_MAX
                 ? STORE_E_REPORT_LIMIT
                 : put_locked(s, r, lsn);
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

int store_report_close(store_t *s, const char *id, int status, int action, const char *by,
                       int64_t at, store_report_t *out, uint64_t *lsn)
{
    store_report_t r;
    pthread_mutex_lock(&s->write_mu);
    int rc = 0;
    if (!store_report_get(s, id, &r)) {
        pthread_mutex_unlock(&s->write_mu);
        return STORE_E_NOT_FOUND;
    }
    if (r.status != STORE_REPORT_OPEN) {
        rc = STORE_E_REPORT_CLOSED;
    } else {
        r.status = status;
        r.action = action;
        r.resolved_at = at;
        snprintf(r.resolved_by, sizeof(r.resolved_by), "%s", by);
        rc = status == STORE_REPORT_OPEN || !report_valid(&r) ? STORE_E_INVALID
                                                              : put_locked(s, &r, lsn);
    }
    pthread_mutex_unlock(&s->write_mu);
    if (rc == 0 && out)
        *out = r;
    else
        store_report_clear(&r);
    return rc;
}

bool store_report_get(store_t *s, const char *id, store_report_t *out)
{
    map_t *m = &s->reports->reports;
    uint64_t h = map_hash(id);
    map_shard_t *sh = map_shard_of(m, h);
    pthread_rwlock_rdlock(&sh->lock);
    const store_report_t *r = map_find_locked(sh, h, id);
    if (r)
        copy_report(out, r);
    pthread_rwlock_unlock(&sh->lock);
    return r != NULL;
}

size_t store_report_open_count(store_t *s, const char *reporter_id)
{
    uint64_t n = 0;
    return map_get_copy(&s->reports->open_counts, reporter_id, &n, sizeof(n)) ? (size_t)n : 0;
}

typedef struct list_ctx {
    int status;
    store_report_t *hits;
    size_t n, cap;
} list_ctx_t;

static bool collect(void *ctx, const char *key, void *value)
{
    (void)key;
    list_ctx_t *lc = ctx;
    const store_report_t *r = value;
    if (lc->status >= 0 && r->status != lc->status)
        return true;
    if (lc->n == lc->cap) {
        lc->cap = lc->cap ? lc->cap * 2 : 32;
        lc->hits = xrealloc(lc->hits, lc->cap * sizeof(*lc->hits));
    }
    copy_report(&lc->hits[lc->n++], r);
    return true;
}

static int newest_first(const void *a, const void *b)
{
    const store_report_t *x = a, *y = b;
    if (x->created_at != y->created_at)
        return x->created_at < y->created_at ? 1 : -1;
    return strcmp(y->id, x->id);
}

size_t store_report_list(store_t *s, int status, size_t offset, size_t limit,
                         store_report_t *out, size_t *n_out)
{
    list_ctx_t lc = {.status = status};
    map_each(&s->reports->reports, collect, &lc);
    if (lc.n > 1)
        qsort(lc.hits, lc.n, sizeof(*lc.hits), newest_first);
    *n_out = 0;
    for (size_t i = 0; i < lc.n; i++) {
        if (i >= offset && *n_out < limit)
            out[(*n_out)++] = lc.hits[i]; /* strings move to the caller */
        else
            store_report_clear(&lc.hits[i]);
    }
    free(lc.hits);
    return lc.n;
}

/* ---- snapshots ------------------------------------------------------------ */

typedef struct snap_ctx {
    wal_snapshot_t *snap;
    int rc;
} snap_ctx_t;

static bool snap_report(void *ctx, const char *key, void *value)
{
    (void)key;
    snap_ctx_t *sc = ctx;
    char *text = encode(value);
    sc->rc = wal_snapshot_add(sc->snap, STORE_REC_REPORT, text, strlen(text));
    free(text);
    return sc->rc == 0;
}

int reports__snapshot(store_t *s, wal_snapshot_t *snap)
{
    snap_ctx_t sc = {.snap = snap};
    map_each(&s->reports->reports, snap_report, &sc);
    return sc.rc;
}
