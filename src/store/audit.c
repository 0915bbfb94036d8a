/*
 * The audit log's table (include/parley/audit.h): entries in the order they
 * were applied (the log's order, so replay rebuilds the same sequence), in a
 * ring of pointers that drops its oldest entry when a bound is passed, and a
 * set of their ids so a record applied twice adds nothing.
 *
 * Why a ring and a scan: entries are only ever appended and read newest
 * first, a query filters by several fields at once, and the table is
 * bounded (100,000 entries by default). Scanning what is kept costs about a
 * millisecond at the bound, which an admin's page view affords; indexes per
 * field would cost memory and time on every login instead.
 *
 * Locking: appends run under the store's write mutex (like every change)
 * and take the table's rwlock for writing to link the entry; queries take it
 * for reading and copy out. The id set is a map_t whose shard locks are
 * only taken inside the table's lock (lock order: write_mu, audit lock, map
 * shard).
 */
#include "parley/audit.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "internal.h"
#include "parley/clock.h"
#include "parley/xalloc.h"

#define DAY_MS (24LL * 3600 * 1000)

struct audit_tables {
    pthread_rwlock_t lock;
    store_audit_t **ring; /* guarded by lock: ring[(head + i) % cap], oldest first */
    size_t cap, head, count;
    uint64_t next_seq;    /* guarded by lock: the seq of the next entry linked */
    map_t ids;            /* id -> its entry (not owned); guarded by lock */
    _Atomic size_t max_entries;
    _Atomic unsigned max_days;
};

void store_audit_clear(store_audit_t *a)
{
    free(a->details);
    a->details = NULL;
}

static void free_entry(store_audit_t *a)
{
    if (a) {
        store_audit_clear(a);
        free(a);
    }
}

struct audit_tables *audit__new(void)
{
    struct audit_tables *t = xcalloc(1, sizeof(*t));
    pthread_rwlock_init(&t->lock, NULL);
    map_init(&t->ids, NULL);
    atomic_init(&t->max_entries, AUDIT_DEFAULT_MAX_ENTRIES);
    atomic_init(&t->max_days, 0);
    return t;
}

void audit__clear(struct audit_tables *t)
{
    pthread_rwlock_wrlock(&t->lock);
    for (size_t i = 0; i < t->count; i++)
        free_entry(t->ring[(t->head + i) % t->cap]);
    t->head = t->count = 0;
    map_clear(&t->ids);
    pthread_rwlock_unlock(&t->lock);
}

void audit__free(struct audit_tables *t)
{
    if (t == NULL)
        return;
    audit__clear(t);
    free(t->ring);
    map_deinit(&t->ids);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

void store_audit_set_limits(store_t *s, size_t max_entries, unsigned max_days)
{
    atomic_store(&s->audit->max_entries, max_entries ? max_entries : 1);
    atomic_store(&s->audit->max_days, max_days);
}

/* ---- records ---------------------------------------------------------------- */

static bool action_ok(const char *a)
{
    if (a[0] == '\0')
        return false;
    for (; *a; a++)
        if (!((*a >= 'a' && *a <= 'z') || (*a >= '0' && *a <= '9') || *a == '_' || *a == '.'))
            return false;
    return true;
}

/* The details' text parsed: a JSON object within the bound, or NULL. */
static json_t *details_object(const char *text)
{
    if (strlen(text) > AUDIT_DETAILS_MAX)
        return NULL;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static char *encode(const store_audit_t *a)
{
    json_t *details = a->details ? details_object(a->details) : json_null();
    json_t *o = json_pack("{s:i, s:s, s:I, s:s, s:s, s:s, s:s, s:o}", "v", STORE_SCHEMA_VERSION,
                          "id", a->id, "at", (json_int_t)a->at, "actor", a->actor_id, "action",
                          a->action, "target", a->target, "ip", a->ip, "details",
                          details ? details : json_null());
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL)
        abort();
    return text;
}

static int decode(const void *data, size_t len, store_audit_t *a)
{
    memset(a, 0, sizeof(*a));
    json_t *o = codec_open_record(data, len, STORE_SCHEMA_VERSION);
    if (o == NULL)
        return STORE_E_CORRUPT;
    json_t *at = json_object_get(o, "at"), *details = json_object_get(o, "details");
    bool ok = codec_get_fixed(o, "id", a->id, sizeof(a->id)) && a->id[0] && json_is_integer(at) &&
              codec_get_fixed(o, "actor", a->actor_id, sizeof(a->actor_id)) &&
              codec_get_fixed(o, "action", a->action, sizeof(a->action)) && action_ok(a->action) &&
              codec_get_fixed(o, "target", a->target, sizeof(a->target)) &&
              codec_get_fixed(o, "ip", a->ip, sizeof(a->ip)) &&
              (details == NULL || json_is_null(details) || json_is_object(details));
    if (ok) {
        a->at = json_integer_value(at);
        if (json_is_object(details)) {
            a->details = json_dumps(details, JSON_COMPACT);
            ok = a->details && strlen(a->details) <= AUDIT_DETAILS_MAX;
        }
    }
    json_decref(o);
    if (!ok) {
        store_audit_clear(a);
        return STORE_E_CORRUPT;
    }
    return 0;
}

/* ---- apply ------------------------------------------------------------------ */

/* REQUIRES: t->lock held for writing. */
static void drop_oldest(struct audit_tables *t)
{
    store_audit_t *old = t->ring[t->head];
    uint64_t h = map_hash(old->id);
    map_shard_t *sh = map_shard_of(&t->ids, h);
    pthread_rwlock_wrlock(&sh->lock);
    map_remove_locked(sh, h, old->id);
    pthread_rwlock_unlock(&sh->lock);
    free_entry(old);
    t->head = (t->head + 1) % t->cap;
    t->count--;
}

/* Drops what is past the bounds, oldest first. REQUIRES: t->lock for writing. */
static void trim(struct audit_tables *t, size_t room)
{
    size_t max = atomic_load(&t->max_entries);
    unsigned days = atomic_load(&t->max_days);
    int64_t oldest_kept = days ? clock_wall_ms() - (int64_t)days * DAY_MS : INT64_MIN;
    while (t->count > 0 && (t->count + room > max || t->ring[t->head]->at < oldest_kept))
        drop_oldest(t);
}

/* Links a (taken) as the newest entry unless its id is known; a live
 * append (`trim_now`) first drops what is past the bounds. Replay does not
 * trim by count: the bound it would use is the configuration's, and the live
 * settings (which may keep more) apply only once recovery is done, so the
 * table may hold the log tail's entries beyond the bound until the next
 * append (queries and snapshots read only the newest max_entries). */
static void apply_entry(store_t *s, store_audit_t *a, bool trim_now)
{
    struct audit_tables *t = s->audit;
    pthread_rwlock_wrlock(&t->lock);
    uint64_t h = map_hash(a->id);
    map_shard_t *sh = map_shard_of(&t->ids, h);
    pthread_rwlock_rdlock(&sh->lock);
    bool known = map_find_locked(sh, h, a->id) != NULL;
    pthread_rwlock_unlock(&sh->lock);
    if (known) {
        pthread_rwlock_unlock(&t->lock);
        store_audit_clear(a);
        return;
    }
    if (trim_now)
        trim(t, 1);
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        store_audit_t **ring = xmalloc(cap * sizeof(*ring));
        for (size_t i = 0; i < t->count; i++)
            ring[i] = t->ring[(t->head + i) % t->cap];
        free(t->ring);
        t->ring = ring;
        t->cap = cap;
        t->head = 0;
    }
    store_audit_t *e = xmemdup(a, sizeof(*a));
    memset(a, 0, sizeof(*a));
    e->seq = t->next_seq++;
    t->ring[(t->head + t->count) % t->cap] = e;
    t->count++;
    pthread_rwlock_wrlock(&sh->lock);
    map_put_locked(sh, h, e->id, e);
    pthread_rwlock_unlock(&sh->lock);
    pthread_rwlock_unlock(&t->lock);
}

int audit__apply(store_t *s, const void *data, size_t len)
{
    store_audit_t a;
    int rc = decode(data, len, &a);
    if (rc == 0)
        apply_entry(s, &a, false);
    return rc;
}

int store_audit_append(store_t *s, store_audit_t *a, uint64_t *lsn)
{
    if (!action_ok(a->action) || strnlen(a->action, sizeof(a->action)) == sizeof(a->action) ||
        strnlen(a->target, sizeof(a->target)) == sizeof(a->target) ||
        strnlen(a->ip, sizeof(a->ip)) == sizeof(a->ip) ||
        strnlen(a->actor_id, sizeof(a->actor_id)) == sizeof(a->actor_id))
        return STORE_E_INVALID;
    if (a->details) {
        json_t *d = details_object(a->details);
        if (d == NULL)
            return STORE_E_INVALID;
        json_decref(d);
    }
    if (a->id[0] == '\0')
        store_new_id("aud", a->id);
    pthread_mutex_lock(&s->write_mu);
    if (a->at == 0)
        a->at = clock_wall_ms(); /* under the mutex: entries apply in time order */
    int rc = store__append(s, STORE_REC_AUDIT, encode(a), lsn);
    if (rc == 0) {
        store_audit_t copy = *a;
        copy.details = a->details ? xstrdup(a->details) : NULL;
        apply_entry(s, &copy, true);
    }
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

/* ---- queries ---------------------------------------------------------------- */

static bool matches(const store_audit_t *a, const store_audit_query_t *q)
{
    if (q->actor_id && strcmp(a->actor_id, q->actor_id) != 0)
        return false;
    if (q->target && strcmp(a->target, q->target) != 0)
        return false;
    if (q->from && a->at < q->from)
        return false;
    if (q->to && a->at >= q->to)
        return false;
    if (q->action) {
        size_t n = strlen(q->action);
        if (n > 0 && q->action[n - 1] == '.' ? strncmp(a->action, q->action, n) != 0
                                             : strcmp(a->action, q->action) != 0)
            return false;
    }
    return true;
}

size_t store_audit_find(store_t *s, const store_audit_query_t *q, store_audit_t *out,
                        size_t *n_out)
{
    struct audit_tables *t = s->audit;
    unsigned days = atomic_load(&t->max_days);
    int64_t oldest_kept = days ? clock_wall_ms() - (int64_t)days * DAY_MS : INT64_MIN;
    size_t total = 0, max = atomic_load(&t->max_entries);
    *n_out = 0;
    pthread_rwlock_rdlock(&t->lock);
    size_t first = t->count > max ? t->count - max : 0;
    for (size_t i = t->count; i-- > first;) {
        const store_audit_t *a = t->ring[(t->head + i) % t->cap];
        if (a->at < oldest_kept || !matches(a, q))
            continue;
        if (total >= q->offset && *n_out < q->limit) {
            out[*n_out] = *a;
            out[*n_out].details = a->details ? xstrdup(a->details) : NULL;
            (*n_out)++;
        }
        total++;
    }
    pthread_rwlock_unlock(&t->lock);
    return total;
}

size_t store_audit_count(store_t *s)
{
    size_t max = atomic_load(&s->audit->max_entries);
    pthread_rwlock_rdlock(&s->audit->lock);
    size_t n = s->audit->count < max ? s->audit->count : max;
    pthread_rwlock_unlock(&s->audit->lock);
    return n;
}

/* ---- snapshots -------------------------------------------------------------- */

/* In chunks, the lock let go between them, so appends (and with them every
 * write of the server, which wait on write_mu) never wait for the snapshot's
 * I/O. An entry's seq says where the next chunk starts, whatever was trimmed
 * in between. */
int audit__snapshot(store_t *s, wal_snapshot_t *snap)
{
    enum { CHUNK = 512 };
    struct audit_tables *t = s->audit;
    unsigned days = atomic_load(&t->max_days);
    int64_t oldest_kept = days ? clock_wall_ms() - (int64_t)days * DAY_MS : INT64_MIN;
    size_t max = atomic_load(&t->max_entries);
    uint64_t next = 0;
    int rc = 0;
    char *texts[CHUNK];
    while (rc == 0) {
        size_t n = 0;
        pthread_rwlock_rdlock(&t->lock);
        if (t->count > 0) {
            uint64_t head_seq = t->ring[t->head]->seq;
            /* the newest max only: older ones are past the bound */
            uint64_t skip = t->count > max ? (uint64_t)(t->count - max) : 0;
            if (next < head_seq + skip)
                next = head_seq + skip;
            for (size_t i = (size_t)(next - head_seq); i < t->count && n < CHUNK; i++, next++) {
                const store_audit_t *a = t->ring[(t->head + i) % t->cap];
                if (a->at >= oldest_kept)
                    texts[n++] = encode(a);
            }
        }
        bool more = t->count > 0 && next - t->ring[t->head]->seq < t->count;
        pthread_rwlock_unlock(&t->lock);
        for (size_t i = 0; i < n; i++) {
            if (rc == 0)
                rc = wal_snapshot_add(snap, STORE_REC_AUDIT, texts[i], strlen(texts[i]));
            free(texts[i]);
        }
        if (!more)
            break;
    }
    return rc;
}
