/*
 * The chat tables: channels, memberships, messages (include/parley/chat.h),
 * their records, their apply and their snapshot. Search is search.c, the
 * records chat_codec.c, the small containers chat_ds.c.
 *
 * DESIGN
 * Mutations follow store.c: the caller's new state is checked (the same
 * check the decoders make, so the log never holds a record replay would
 * refuse), then under s->write_mu the uniqueness/existence checks, the
 * store__append() and the apply run as one step; store_wait() is the
 * caller's, after. The apply_* functions are the only code that changes the
 * tables, live and in replay (chat__apply). Records set whole states, so a
 * record applied twice changes nothing.
 *
 * Structures (struct chat_tables, chat_internal.h):
 * - channels: map id -> chat_channel_t; channel_by_name: folded name -> id
 *   for named channels not deleted (a delete frees the name, a rename moves
 *   it); channel_by_direct: direct_key -> id (same users, same channel).
 * - memberships: map "<channel>/<user>" -> chat_membership_t; people:
 *   channel -> {members (role > NONE), banned (banned_at > 0)}; joined:
 *   user -> channels it is a member of. apply_membership keeps both sets in
 *   step with every role and ban change. listings: user -> the count of its
 *   private named channels and its direct channels in order (listing_t),
 *   kept by apply_membership and, when a channel changes kind (private,
 *   direct, deleted), by apply_channel over its members, so that the
 *   default listing never reads each of the user's channels.
 * - messages: msg_t (~80 bytes + content; mentions, attachments, reactions
 *   and the idempotency key in a msg_extra only when present; the user id
 *   interned) in a seq -> msg table (stab: pages of 1,024 slots); per channel an
 *   array of msg_t* in seq (= id) order; per thread root the array of its
 *   replies; "<user>/<channel>/<key>" -> msg for idempotency (a key is
 *   scoped to its user and channel: the same key in another channel is
 *   another post; rebuilt from the
 *   records); the word index (search.c). next_seq = max seq applied + 1.
 *   Measured: ~160 bytes of overhead per 100-byte message, the word index's
 *   ~40 included (tests/unit/test_chat.c, chat_memory_per_message).
 *
 * Locking. write_mu serialises writers (as in store.c). Readers never take
 * it. The entity maps have their shard rwlocks (map.c). idx_lock (rwlock)
 * guards people and joined. msg_lock (rwlock, writer-preferring so a stream
 * of readers cannot starve posts; hence never taken recursively) guards
 * every message structure and the word index: applies take it for writing
 * for O(words + log n) work, readers for reading.
 * Order: write_mu -> idx_lock -> membership shard locks (chat_members), a
 * channel shard (apply_membership reads the channel's kind); idx_lock ->
 * order_mu -> channel shards (the default listing, channel_list_ordered);
 * write_mu -> msg_lock; a map shard lock is never held while another lock
 * is taken, except that one. No lock but write_mu is held while a caller's
 * callback runs: the modify fns run under write_mu (like store_user_modify)
 * and may read the store; chat_search's can_read runs with no lock at all.
 *
 * Complexity: channel get O(1); channel list O(C log C), or by name without
 * a query O(offset + limit + others' private channels passed over), however
 * many channels the user is in; membership get /
 * modify O(1) (+ O(members) memmove in the sets when a role or ban
 * changes); members / banned O(m log m); post O(log n + words) (append at
 * the end of the channel's array, amortised); message get O(1); history
 * O(log n + limit) (binary search on the seq of the cursor), or O(limit) by
 * offset (chat_history_skip: the list is an array, a rank is an index; its
 * length is the O(1) total_count); thread O(k);
 * unread O(log n + counted); last message O(1); snapshot O(N log C): the
 * messages in seq order across the C channels, 1024 per read lock so posts
 * go on meanwhile (and so replay appends to the word index, see
 * snap_messages).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"
#include "parley/clock.h"
#include "parley/xalloc.h"

#define NAME_KEY_MAX (4 * CHAT_NAME_MAX)            /* a folded name */
#define MEMBER_KEY_MAX (2 * STORE_ID_MAX)           /* "<channel>/<user>" */
#define IDEM_KEY_MAX (2 * STORE_ID_MAX + CHAT_IDEMPOTENCY_MAX)
#define SNAP_BATCH 1024

/* ---- entities ------------------------------------------------------------------ */

static void *dup_mem(const void *p, size_t n)
{
    if (p == NULL || n == 0)
        return NULL;
    return memcpy(xmalloc(n), p, n);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void channel_copy(chat_channel_t *dst, const chat_channel_t *src)
{
    *dst = *src;
    dst->description = dup_or_null(src->description);
    dst->direct_key = dup_or_null(src->direct_key);
}

static void free_channel(void *v)
{
    if (v) {
        chat_channel_clear(v);
        free(v);
    }
}

static void copy_reactions(chat_reaction_t **dst, const chat_reaction_t *src, size_t n)
{
    *dst = n ? dup_mem(src, n * sizeof(*src)) : NULL;
    for (size_t i = 0; i < n; i++)
        (*dst)[i].users = dup_mem(src[i].users, src[i].n_users * STORE_ID_MAX);
}

void chat_message_copy(chat_message_t *dst, const chat_message_t *src)
{
    *dst = *src;
    dst->content = dup_or_null(src->content);
    dst->mentions = dup_mem(src->mentions, src->n_mentions * STORE_ID_MAX);
    dst->attachments = dup_mem(src->attachments, src->n_attachments * STORE_ID_MAX);
    copy_reactions(&dst->reactions, src->reactions, src->n_reactions);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *chat_direct_key(const char *const *user_ids, size_t n)
{
    const char **v = xmalloc((n ? n : 1) * sizeof(*v));
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        v[i] = user_ids[i];
        len += strlen(v[i]) + 1;
    }
    qsort(v, n, sizeof(*v), cmp_strp);
    char *key = xmalloc(len), *p = key;
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(v[i], v[i - 1]) == 0)
            continue;
        if (p != key)
            *p++ = ',';
        size_t l = strlen(v[i]);
        memcpy(p, v[i], l);
        p += l;
    }
    *p = '\0';
    free(v);
    return key;
}

/* ---- index helpers (maps of key -> id) ---------------------------------------------- */


/* The name index key of a channel; "" when it holds no name. */
static void name_key(const chat_channel_t *c, char out[NAME_KEY_MAX])
{
    out[0] = '\0';
    if (!c->is_deleted && !c->is_direct && c->name[0])
        chat__fold(c->name, out, NAME_KEY_MAX);
}

/* One named channel in the listing order (chat_channel_list). */
struct chat_order_entry {
    char *key; /* the folded name */
    char id[STORE_ID_MAX];
    bool is_private;
};

static void order_free(struct chat_tables *t)
{
    for (size_t i = 0; i < t->n_order; i++)
        free(t->order[i].key);
    free(t->order);
    t->order = NULL;
    t->n_order = t->n_order_public = 0;
    t->order_gen = 0;
}

static bool member_key(const char *channel_id, const char *user_id, char out[MEMBER_KEY_MAX])
{
    if (strlen(channel_id) >= STORE_ID_MAX || strlen(user_id) >= STORE_ID_MAX)
        return false;
    snprintf(out, MEMBER_KEY_MAX, "%s/%s", channel_id, user_id);
    return true;
}

static void idem_key(const char *user_id, const char *channel_id, const char *key,
                     char out[IDEM_KEY_MAX])
{
    snprintf(out, IDEM_KEY_MAX, "%s/%s/%s", user_id, channel_id, key);
}

/* ---- tables --------------------------------------------------------------------------- */

static void free_msg_extra(msg_extra_t *e)
{
    if (e == NULL)
        return;
    free(e->idem);
    free(e->mentions);
    free(e->attachments);
    for (size_t i = 0; i < e->n_reactions; i++)
        free(e->reactions[i].users);
    free(e->reactions);
    free(e);
}

static void free_msg(void *v)
{
    msg_t *g = v;
    free(g->content);
    free_msg_extra(g->extra);
    free(g);
}

static void free_list(void *v)
{
    msg_list_t *l = v;
    free(l->msgs.v);
    free(l);
}

static void free_thread(void *v)
{
    thread_t *th = v;
    free(th->msgs.v);
    free(th);
}

static void free_people(void *v)
{
    people_t *p = v;
    chat__idset_free(&p->members);
    chat__idset_free(&p->banned);
    free(p);
}

static void free_idset(void *v)
{
    chat__idset_free(v);
    free(v);
}

/* ---- what the default listing counts of a user's channels -------------------------- */

typedef struct direct_ref {
    char id[STORE_ID_MAX];
    int64_t created_at;
} direct_ref_t;

/* One user's channels as channel_list_ordered counts them (idx_lock). */
typedef struct listing {
    size_t n_private;     /* named private channels, not deleted */
    direct_ref_t *direct; /* direct channels not deleted, in by_direct_order */
    size_t n_direct, cap_direct;
} listing_t;

enum listed_as { LISTED_ELSE, LISTED_PRIVATE, LISTED_DIRECT };

/* How a member's listing counts channel c (NULL: not known yet). */
static enum listed_as listed_as(const chat_channel_t *c)
{
    if (c == NULL || c->is_deleted)
        return LISTED_ELSE;
    if (c->is_direct)
        return LISTED_DIRECT;
    return c->is_private && c->name[0] ? LISTED_PRIVATE : LISTED_ELSE;
}

static void free_listing(void *v)
{
    listing_t *l = v;
    free(l->direct);
    free(l);
}

/* Direct channels newest first (ties by id, descending). */
static int by_direct_order(const void *a, const void *b)
{
    const direct_ref_t *x = a, *y = b;
    if (x->created_at != y->created_at)
        return x->created_at > y->created_at ? -1 : 1;
    return -strcmp(x->id, y->id);
}

/* Adds (or removes) channel `id`, counted `as`, to user_id's listing.
 * REQUIRES: idx_lock held for writing. */
static void listing_change(struct chat_tables *t, const char *user_id, const char *id,
                           enum listed_as as, int64_t created_at, bool add)
{
    if (as == LISTED_ELSE)
        return;
    listing_t *l = chat__smap_get(&t->listings, user_id);
    if (l == NULL) {
        if (!add)
            return;
        l = xcalloc(1, sizeof(*l));
        chat__smap_put(&t->listings, user_id, l);
    }
    if (as == LISTED_PRIVATE) {
        if (add)
            l->n_private++;
        else if (l->n_private)
            l->n_private--;
        return;
    }
    size_t at = 0;
    while (at < l->n_direct && strcmp(l->direct[at].id, id) != 0)
        at++;
    if (at < l->n_direct) { /* present: removed (and put back in place when adding) */
        memmove(&l->direct[at], &l->direct[at + 1], (l->n_direct - at - 1) * sizeof(*l->direct));
        l->n_direct--;
    }
    if (!add)
        return;
    if (l->n_direct == l->cap_direct) {
        l->cap_direct = l->cap_direct ? l->cap_direct * 2 : 4;
        l->direct = xrealloc(l->direct, l->cap_direct * sizeof(*l->direct));
    }
    direct_ref_t ref = {.created_at = created_at};
    snprintf(ref.id, sizeof(ref.id), "%s", id);
    at = 0;
    while (at < l->n_direct && by_direct_order(&l->direct[at], &ref) < 0)
        at++;
    memmove(&l->direct[at + 1], &l->direct[at], (l->n_direct - at) * sizeof(*l->direct));
    l->direct[at] = ref;
    l->n_direct++;
}

struct chat_tables *chat__new(void)
{
    struct chat_tables *t = xcalloc(1, sizeof(*t));
    map_init(&t->channels, free_channel);
    map_init(&t->channel_by_name, free);
    map_init(&t->channel_by_direct, free);
    map_init(&t->memberships, free);
    pthread_rwlock_init(&t->idx_lock, NULL);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&t->msg_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    t->next_seq = 1;
    t->indexed_upto = 0; /* recovery does not index; chat__index_build_start does */
    pthread_mutex_init(&t->index_mu, NULL);
    pthread_mutex_init(&t->order_mu, NULL);
    atomic_init(&t->channels_gen, 1);
    pthread_cond_init(&t->index_cv, NULL);
    return t;
}

void chat__clear(struct chat_tables *t)
{
    atomic_fetch_add(&t->channels_gen, 1);
    map_clear(&t->channels);
    map_clear(&t->channel_by_name);
    map_clear(&t->channel_by_direct);
    map_clear(&t->memberships);
    pthread_rwlock_wrlock(&t->idx_lock);
    chat__smap_free(&t->people, free_people);
    chat__smap_free(&t->joined, free_idset);
    chat__smap_free(&t->listings, free_listing);
    pthread_rwlock_unlock(&t->idx_lock);
    pthread_rwlock_wrlock(&t->msg_lock);
    chat__index_free(t);
    chat__stab_free(&t->msgs, free_msg);
    chat__smap_free(&t->lists, free_list);
    chat__ptab_free(&t->threads, free_thread);
    chat__smap_free(&t->idem, NULL);
    chat__smap_free(&t->users, NULL);
    t->last_list = NULL;
    t->last_user = NULL;
    t->next_seq = 1;
    pthread_rwlock_unlock(&t->msg_lock);
}

void chat__free(struct chat_tables *t)
{
    if (t == NULL)
        return;
    chat__index_build_stop(t);
    chat__clear(t);
    map_deinit(&t->channels);
    map_deinit(&t->channel_by_name);
    map_deinit(&t->channel_by_direct);
    map_deinit(&t->memberships);
    pthread_rwlock_destroy(&t->idx_lock);
    pthread_rwlock_destroy(&t->msg_lock);
    pthread_mutex_destroy(&t->index_mu);
    pthread_cond_destroy(&t->index_cv);
    order_free(t);
    pthread_mutex_destroy(&t->order_mu);
    free(t);
}

void chat__stats(store_t *s, size_t *channels, size_t *messages)
{
    struct chat_tables *t = s->chat;
    *channels = map_count(&t->channels);
    pthread_rwlock_rdlock(&t->msg_lock);
    *messages = t->msgs.n;
    pthread_rwlock_unlock(&t->msg_lock);
}

typedef struct kinds {
    size_t open, closed, direct;
} kinds_t;

static bool count_kind(void *ctx, const char *key, void *value)
{
    (void)key;
    kinds_t *k = ctx;
    const chat_channel_t *c = value;
    if (c->is_deleted)
        return true;
    if (c->is_direct)
        k->direct++;
    else if (c->is_private)
        k->closed++;
    else
        k->open++;
    return true;
}

void chat_channel_kinds(store_t *s, size_t *public_n, size_t *private_n, size_t *direct_n)
{
    kinds_t k = {0};
    map_each(&s->chat->channels, count_kind, &k);
    *public_n = k.open;
    *private_n = k.closed;
    *direct_n = k.direct;
}

/* ---- message arrays ------------------------------------------------------------------ */

size_t chat__mvec_lower(const mvec_t *v, uint64_t seq)
{
    size_t lo = 0, hi = v->n;
    /* The common cases first: past the end, or the last. */
    if (hi == 0 || v->v[hi - 1]->seq < seq)
        return hi;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->v[mid]->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void mvec_insert(mvec_t *v, msg_t *g)
{
    size_t at = chat__mvec_lower(v, g->seq);
    if (at < v->n && v->v[at] == g)
        return;
    if (v->n == v->cap) {
        v->cap = v->cap < 8 ? 8 : v->cap + v->cap / 2;
        v->v = xrealloc(v->v, v->cap * sizeof(*v->v));
    }
    memmove(&v->v[at + 1], &v->v[at], (v->n - at) * sizeof(*v->v));
    v->v[at] = g;
    v->n++;
}

static void mvec_remove(mvec_t *v, const msg_t *g)
{
    size_t at = chat__mvec_lower(v, g->seq);
    if (at < v->n && v->v[at] == g) {
        memmove(&v->v[at], &v->v[at + 1], (v->n - at - 1) * sizeof(*v->v));
        v->n--;
    }
}

/* ---- apply: the only code that changes the tables --------------------------------------- */

/* Takes c's strings (c is left zeroed). */
static void apply_channel(store_t *s, chat_channel_t *c)
{
    struct chat_tables *t = s->chat;
    chat_channel_t *nc = dup_mem(c, sizeof(*c));
    memset(c, 0, sizeof(*c));
    char new_name[NAME_KEY_MAX], old_name[NAME_KEY_MAX] = "", id[STORE_ID_MAX];
    name_key(nc, new_name);
    memcpy(id, nc->id, sizeof(id));
    char *new_direct = (!nc->is_deleted && nc->is_direct) ? xstrdup(nc->direct_key) : NULL;
    char *old_direct = NULL;

    uint64_t h = map_hash(id);
    map_shard_t *sh = map_shard_of(&t->channels, h);
    pthread_rwlock_wrlock(&sh->lock);
    chat_channel_t *old = map_put_locked(sh, h, id, nc);
    enum listed_as was = listed_as(old), now = listed_as(nc);
    int64_t was_created = old ? old->created_at : 0, created = nc->created_at;
    if (old) {
        name_key(old, old_name);
        if (!old->is_deleted && old->is_direct)
            old_direct = xstrdup(old->direct_key);
        free_channel(old);
    }
    pthread_rwlock_unlock(&sh->lock);
    atomic_fetch_add(&t->channels_gen, 1); /* the listing order is stale */
    if (was != now || (now == LISTED_DIRECT && was_created != created)) {
        /* Its members' listings count it anew. */
        pthread_rwlock_wrlock(&t->idx_lock);
        const people_t *p = chat__smap_get(&t->people, id);
        for (size_t i = 0; p && i < p->members.n; i++) {
            listing_change(t, p->members.v[i], id, was, was_created, false);
            listing_change(t, p->members.v[i], id, now, created, true);
        }
        pthread_rwlock_unlock(&t->idx_lock);
    }

    if (old_name[0] && strcmp(old_name, new_name) != 0)
        map_index_unset(&t->channel_by_name, old_name, id);
    if (new_name[0])
        map_index_set(&t->channel_by_name, new_name, id);
    if (old_direct && (new_direct == NULL || strcmp(old_direct, new_direct) != 0))
        map_index_unset(&t->channel_by_direct, old_direct, id);
    if (new_direct)
        map_index_set(&t->channel_by_direct, new_direct, id);
    free(old_direct);
    free(new_direct);
}

static void apply_membership(store_t *s, const chat_membership_t *m)
{
    struct chat_tables *t = s->chat;
    char key[MEMBER_KEY_MAX];
    member_key(m->channel_id, m->user_id, key);
    uint64_t h = map_hash(key);
    map_shard_t *sh = map_shard_of(&t->memberships, h);
    pthread_rwlock_wrlock(&sh->lock);
    free(map_put_locked(sh, h, key, dup_mem(m, sizeof(*m))));
    pthread_rwlock_unlock(&sh->lock);

    /* The sets follow the new state (adding or removing twice is harmless). */
    pthread_rwlock_wrlock(&t->idx_lock);
    people_t *p = chat__smap_get(&t->people, m->channel_id);
    if (p == NULL) {
        p = xcalloc(1, sizeof(*p));
        chat__smap_put(&t->people, m->channel_id, p);
    }
    idset_t *j = chat__smap_get(&t->joined, m->user_id);
    if (j == NULL) {
        j = xcalloc(1, sizeof(*j));
        chat__smap_put(&t->joined, m->user_id, j);
    }
    bool now = m->role > CHAT_ROLE_NONE;
    if (now != chat__idset_has(j, m->channel_id)) {
        /* The channel as it is now (idx_lock -> a channel shard: the order);
         * apply_channel recounts its members when it changes. */
        uint64_t ch = map_hash(m->channel_id);
        map_shard_t *csh = map_shard_of(&t->channels, ch);
        pthread_rwlock_rdlock(&csh->lock);
        const chat_channel_t *c = map_find_locked(csh, ch, m->channel_id);
        enum listed_as as = listed_as(c);
        int64_t created = c ? c->created_at : 0;
        pthread_rwlock_unlock(&csh->lock);
        listing_change(t, m->user_id, m->channel_id, as, created, now);
    }
    if (now) {
        chat__idset_add(&p->members, m->user_id);
        chat__idset_add(j, m->channel_id);
    } else {
        chat__idset_del(&p->members, m->user_id);
        chat__idset_del(j, m->channel_id);
    }
    if (m->banned_at > 0)
        chat__idset_add(&p->banned, m->user_id);
    else
        chat__idset_del(&p->banned, m->user_id);
    pthread_rwlock_unlock(&t->idx_lock);
}

/* Moves what few messages have out of m; NULL when it has none of it. */
static msg_extra_t *take_extra(chat_message_t *m)
{
    if (!m->idempotency_key[0] && !m->n_mentions && !m->n_attachments && !m->n_reactions)
        return NULL;
    msg_extra_t *e = xcalloc(1, sizeof(*e));
    e->idem = m->idempotency_key[0] ? xstrdup(m->idempotency_key) : NULL;
    e->n_mentions = m->n_mentions;
    e->mentions = m->mentions;
    e->n_attachments = m->n_attachments;
    e->attachments = m->attachments;
    e->n_reactions = m->n_reactions;
    e->reactions = m->reactions;
    m->mentions = m->attachments = NULL;
    m->reactions = NULL;
    m->n_mentions = m->n_attachments = m->n_reactions = 0;
    return e;
}

static msg_list_t *list_of(struct chat_tables *t, const char *channel_id)
{
    msg_list_t *l = chat__smap_get(&t->lists, channel_id);
    if (l == NULL) {
        l = xcalloc(1, sizeof(*l));
        snprintf(l->id, sizeof(l->id), "%s", channel_id);
        chat__smap_put(&t->lists, channel_id, l);
    }
    return l;
}

static thread_t *thread_of(struct chat_tables *t, uint64_t root, bool create)
{
    thread_t *th = chat__ptab_get(&t->threads, root);
    if (th == NULL && create) {
        th = xcalloc(1, sizeof(*th));
        th->root = root;
        chat__ptab_put(&t->threads, th);
    }
    return th;
}

/* REQUIRES: msg_lock held for writing; user interned in t->users. */
static void message_count_add(struct chat_tables *t, const char *user, int delta)
{
    uintptr_t n = (uintptr_t)chat__smap_get(&t->users, user);
    if (delta < 0 && n == 0)
        return;
    chat__smap_put(&t->users, user, (void *)(n + (uintptr_t)(intptr_t)delta));
}

uint64_t chat_user_message_count(store_t *s, const char *user_id)
{
    struct chat_tables *t = s->chat;
    pthread_rwlock_rdlock(&t->msg_lock);
    uintptr_t n = (uintptr_t)chat__smap_get(&t->users, user_id);
    pthread_rwlock_unlock(&t->msg_lock);
    return n;
}

/* Takes m's memory (m is left clear). */
static void apply_message(store_t *s, chat_message_t *m)
{
    struct chat_tables *t = s->chat;
    uint64_t seq = chat__msg_seq(m->id);
    uint64_t thread = chat__msg_seq(m->thread_id);
    msg_extra_t *extra = take_extra(m);
    char *content = m->content;
    m->content = NULL;

    pthread_rwlock_wrlock(&t->msg_lock);
    msg_list_t *list = t->last_list && strcmp(t->last_list->id, m->channel_id) == 0
                           ? t->last_list
                           : (t->last_list = list_of(t, m->channel_id));
    const char *user = t->last_user && strcmp(t->last_user, m->user_id) == 0
                           ? t->last_user
                           : (t->last_user = chat__smap_intern(&t->users, m->user_id));
    msg_t *g = chat__stab_get(&t->msgs, seq);
    char *old_content = NULL;
    msg_extra_t *old_extra = NULL;
    /* The per-user count of live messages, kept in the value of the
     * interned id (chat_user_message_count): a state applied again moves
     * it by nothing. */
    if (g != NULL && !g->is_deleted)
        message_count_add(t, g->user, -1);
    if (!m->is_deleted)
        message_count_add(t, user, 1);
    /* The dashboard's count (store.h): a message counts once, when its id
     * first appears, deleted or not; a state applied again moves nothing. */
    if (g == NULL) {
        store__count(s, STORE_METRIC_MESSAGES, m->created_at, 1);
    } else if (g->created_at != m->created_at) {
        store__count(s, STORE_METRIC_MESSAGES, g->created_at, -1);
        store__count(s, STORE_METRIC_MESSAGES, m->created_at, 1);
    }
    if (g == NULL) {
        g = xcalloc(1, sizeof(*g));
        g->seq = seq;
        chat__stab_put(&t->msgs, seq, g);
    } else {
        old_content = g->content;
        old_extra = g->extra;
        if (g->list != list)
            mvec_remove(&g->list->msgs, g);
        if (g->thread_seq && g->thread_seq != thread) {
            thread_t *th = thread_of(t, g->thread_seq, false);
            if (th)
                mvec_remove(&th->msgs, g);
        }
        if (old_extra && old_extra->idem) {
            char key[IDEM_KEY_MAX];
            idem_key(g->user, g->list->id, old_extra->idem, key);
            if (chat__smap_get(&t->idem, key) == g)
                chat__smap_del(&t->idem, key);
        }
    }
    mvec_insert(&list->msgs, g);
    if (thread)
        mvec_insert(&thread_of(t, thread, true)->msgs, g);
    if (extra && extra->idem) {
        char key[IDEM_KEY_MAX];
        idem_key(user, list->id, extra->idem, key);
        chat__smap_put(&t->idem, key, g);
    }
    if (seq <= t->indexed_upto)
        old_content = chat__index_change(t, seq, old_content, content);
    g->reply_seq = chat__msg_seq(m->reply_to);
    g->thread_seq = thread;
    g->created_at = m->created_at;
    g->updated_at = m->updated_at;
    g->list = list;
    g->user = user;
    g->content = content;
    g->extra = extra;
    g->is_edited = m->is_edited;
    g->is_deleted = m->is_deleted;
    g->rev++;
    if (seq >= t->next_seq)
        t->next_seq = seq + 1;
    pthread_rwlock_unlock(&t->msg_lock);

    free(old_content);
    free_msg_extra(old_extra);
    chat_message_clear(m);
}

int chat__apply(store_t *s, uint8_t type, const void *data, size_t len)
{
    int rc;
    switch (type) {
    case STORE_REC_CHANNEL: {
        chat_channel_t c;
        if ((rc = chat__channel_decode(data, len, &c)) == 0)
            apply_channel(s, &c);
        return rc;
    }
    case STORE_REC_MEMBERSHIP: {
        chat_membership_t m;
        if ((rc = chat__membership_decode(data, len, &m)) == 0)
            apply_membership(s, &m);
        return rc;
    }
    case STORE_REC_MESSAGE: {
        chat_message_t m;
        if ((rc = chat__message_decode(data, len, &m)) == 0)
            apply_message(s, &m);
        return rc;
    }
    default:
        return STORE_E_CORRUPT;
    }
}

char *chat__message_record_json(const void *data, size_t len)
{
    chat_message_t m;
    if (chat__message_decode(data, len, &m) != 0)
        return NULL;
    char *text = chat__message_json(&m);
    chat_message_clear(&m);
    return text;
}

void chat__msg_export(const msg_t *g, chat_message_t *out)
{
    memset(out, 0, sizeof(*out));
    chat__msg_id(g->seq, out->id);
    memcpy(out->channel_id, g->list->id, sizeof(out->channel_id));
    memcpy(out->user_id, g->user, strlen(g->user) + 1); /* interned from a user_id[] */
    out->content = dup_or_null(g->content);
    if (g->reply_seq)
        chat__msg_id(g->reply_seq, out->reply_to);
    if (g->thread_seq)
        chat__msg_id(g->thread_seq, out->thread_id);
    const msg_extra_t *e = g->extra;
    if (e) {
        if (e->idem)
            snprintf(out->idempotency_key, sizeof(out->idempotency_key), "%s", e->idem);
        out->n_mentions = e->n_mentions;
        out->mentions = dup_mem(e->mentions, e->n_mentions * STORE_ID_MAX);
        out->n_attachments = e->n_attachments;
        out->attachments = dup_mem(e->attachments, e->n_attachments * STORE_ID_MAX);
        out->n_reactions = e->n_reactions;
        copy_reactions(&out->reactions, e->reactions, e->n_reactions);
    }
    out->is_edited = g->is_edited;
    out->is_deleted = g->is_deleted;
    out->created_at = g->created_at;
    out->updated_at = g->updated_at;
    out->rev = g->rev;
}

/* ---- channels ------------------------------------------------------------------------- */

bool chat_channel_by_name(store_t *s, const char *name, char id_out[STORE_ID_MAX])
{
    char key[NAME_KEY_MAX];
    chat__fold(name, key, sizeof(key));
    return key[0] && map_index_get(&s->chat->channel_by_name, key, id_out, STORE_ID_MAX);
}

bool chat_channel_get(store_t *s, const char *id, chat_channel_t *out)
{
    struct chat_tables *t = s->chat;
    uint64_t h = map_hash(id);
    map_shard_t *sh = map_shard_of(&t->channels, h);
    pthread_rwlock_rdlock(&sh->lock);
    const chat_channel_t *c = map_find_locked(sh, h, id);
    if (c)
        channel_copy(out, c);
    pthread_rwlock_unlock(&sh->lock);
    return c != NULL;
}

static bool channel_exists(store_t *s, const char *id, bool *deleted)
{
    struct chat_tables *t = s->chat;
    uint64_t h = map_hash(id);
    map_shard_t *sh = map_shard_of(&t->channels, h);
    pthread_rwlock_rdlock(&sh->lock);
    const chat_channel_t *c = map_find_locked(sh, h, id);
    if (c && deleted)
        *deleted = c->is_deleted;
    pthread_rwlock_unlock(&sh->lock);
    return c != NULL;
}

/* Logs and applies one membership. REQUIRES: write_mu held. */
static int put_membership(store_t *s, const chat_membership_t *m, uint64_t *lsn)
{
    char *text = chat__membership_encode(m);
    if (text == NULL)
        return STORE_E_INVALID;
    int rc = store__append(s, STORE_REC_MEMBERSHIP, text, lsn);
    if (rc == 0)
        apply_membership(s, m);
    return rc;
}

/* Logs and applies one channel. REQUIRES: write_mu held. */
static int put_channel(store_t *s, const chat_channel_t *c, uint64_t *lsn)
{
    char *text = chat__channel_encode(c);
    if (text == NULL)
        return STORE_E_INVALID;
    int rc = store__append(s, STORE_REC_CHANNEL, text, lsn);
    if (rc == 0) {
        chat_channel_t copy;
        channel_copy(&copy, c);
        apply_channel(s, &copy);
    }
    return rc;
}

int chat_channel_create(store_t *s, chat_channel_t *c, const char *const *members,
                        size_t n_members, bool *created, uint64_t *lsn)
{
    struct chat_tables *t = s->chat;
    if (created)
        *created = false;
    if ((n_members && members == NULL) || (c->is_direct && n_members > CHAT_DIRECT_MAX) ||
        n_members > CHAT_MENTIONS_MAX)
        return STORE_E_INVALID;
    for (size_t i = 0; i < n_members; i++)
        if (members[i] == NULL || !chat__valid_id(members[i]))
            return STORE_E_INVALID;

    /* nc borrows c's strings, except a direct_key made here. */
    chat_channel_t nc = *c;
    char *made_key = NULL;
    nc.is_deleted = false;
    if (nc.is_direct) {
        nc.is_private = true;
        nc.name[0] = '\0';
        if (nc.direct_key == NULL) {
            const char **all = xmalloc((n_members + 1) * sizeof(*all));
            for (size_t i = 0; i < n_members; i++)
                all[i] = members[i];
            all[n_members] = nc.owner_id;
            size_t n_all = memchr(nc.owner_id, '\0', sizeof(nc.owner_id)) ? n_members + 1 : n_members;
            nc.direct_key = made_key = chat_direct_key(all, n_all);
            free(all);
        }
    }
    if (nc.created_at == 0)
        nc.created_at = clock_wall_ms();
    if (nc.updated_at == 0)
        nc.updated_at = nc.created_at;
    store_new_id("ch", nc.id);
    if (!chat__channel_valid(&nc) || !chat__valid_id(nc.owner_id) ||
        (!nc.is_direct && nc.name[0] == '\0')) {
        free(made_key);
        return STORE_E_INVALID;
    }
    char key[NAME_KEY_MAX], other[STORE_ID_MAX];
    name_key(&nc, key);

    pthread_mutex_lock(&s->write_mu);
    int rc = 0;
    if (nc.is_direct && map_index_get(&t->channel_by_direct, nc.direct_key, other, STORE_ID_MAX)) {
        chat_channel_t found;
        if (chat_channel_get(s, other, &found)) {
            *lsn = wal_last_lsn(s->wal);
            pthread_mutex_unlock(&s->write_mu);
            free(made_key);
            chat_channel_clear(c);
            *c = found;
            return 0;
        }
    }
    if (key[0] && map_index_get(&t->channel_by_name, key, other, STORE_ID_MAX))
        rc = STORE_E_CONFLICT_NAME;
    while (rc == 0 && channel_exists(s, nc.id, NULL)) /* a clash of 32 random bits */
        store_new_id("ch", nc.id);
    if (rc == 0)
        rc = put_channel(s, &nc, lsn);
    chat_membership_t m = {0};
    memcpy(m.channel_id, nc.id, sizeof(m.channel_id));
    m.joined_at = nc.created_at;
    if (rc == 0) {
        memcpy(m.user_id, nc.owner_id, sizeof(m.user_id));
        m.role = CHAT_ROLE_OWNER;
        rc = put_membership(s, &m, lsn);
    }
    for (size_t i = 0; rc == 0 && i < n_members; i++) {
        bool seen = strcmp(members[i], nc.owner_id) == 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(members[i], members[j]) == 0;
        if (seen)
            continue;
        snprintf(m.user_id, sizeof(m.user_id), "%s", members[i]);
        m.role = CHAT_ROLE_MEMBER;
        rc = put_membership(s, &m, lsn);
    }
    pthread_mutex_unlock(&s->write_mu);
    if (rc != 0) {
        free(made_key);
        return rc;
    }
    memcpy(c->id, nc.id, sizeof(c->id));
    c->name[0] = nc.is_direct ? '\0' : c->name[0];
    c->is_private = nc.is_private;
    c->is_deleted = false;
    c->created_at = nc.created_at;
    c->updated_at = nc.updated_at;
    if (made_key)
        c->direct_key = made_key;
    if (created)
        *created = true;
    return 0;
}

int chat_channel_modify(store_t *s, const char *id, int (*fn)(void *ctx, chat_channel_t *c),
                        void *ctx, chat_channel_t *out, uint64_t *lsn)
{
    struct chat_tables *t = s->chat;
    chat_channel_t c;
    pthread_mutex_lock(&s->write_mu);
    if (!chat_channel_get(s, id, &c)) {
        pthread_mutex_unlock(&s->write_mu);
        return STORE_E_NOT_FOUND;
    }
    char saved_id[STORE_ID_MAX];
    memcpy(saved_id, c.id, sizeof(saved_id));
    bool is_direct = c.is_direct;
    char *direct_key = dup_or_null(c.direct_key);
    int rc = fn(ctx, &c);
    /* What cannot change. */
    memcpy(c.id, saved_id, sizeof(c.id));
    c.is_direct = is_direct;
    free(c.direct_key);
    c.direct_key = direct_key;
    if (is_direct) {
        c.is_private = true;
        c.name[0] = '\0';
    }
    if (rc == 0 && (!chat__channel_valid(&c) || (!is_direct && !c.is_deleted && !c.name[0])))
        rc = STORE_E_INVALID;
    if (rc == 0) {
        char key[NAME_KEY_MAX], other[STORE_ID_MAX];
        name_key(&c, key);
        if (key[0] && map_index_get(&t->channel_by_name, key, other, STORE_ID_MAX) &&
            strcmp(other, c.id) != 0)
            rc = STORE_E_CONFLICT_NAME;
    }
    if (rc == 0)
        rc = put_channel(s, &c, lsn);
    pthread_mutex_unlock(&s->write_mu);
    if (rc == 0 && out)
        *out = c;
    else
        chat_channel_clear(&c);
    return rc;
}

/* What the listing order needs of a channel: no copy of the channel itself
 * (only the page is copied out, by id). */
typedef struct list_entry {
    char key[NAME_KEY_MAX];
    char id[STORE_ID_MAX];
    int64_t created_at;
    int64_t activity; /* its last message's created_at, else created_at (when sorted so) */
    bool is_direct;
} list_entry_t;

typedef struct list_ctx {
    const idset_t *mine;
    bool all;          /* private channels too, whoever their members */
    const char *query; /* folded, or NULL */
    list_entry_t *v;
    size_t n, cap;
} list_ctx_t;

static bool collect_channel(void *ctx, const char *key, void *value)
{
    (void)key;
    list_ctx_t *lc = ctx;
    const chat_channel_t *c = value;
    if (c->is_deleted || (c->is_private && !lc->all && !chat__idset_has(lc->mine, c->id)))
        return true;
    char folded[NAME_KEY_MAX] = "";
    if (!c->is_direct)
        chat__fold(c->name, folded, sizeof(folded));
    if (lc->query && (c->is_direct || strstr(folded, lc->query) == NULL))
        return true;
    if (lc->n == lc->cap) {
        lc->cap = lc->cap ? lc->cap * 2 : 32;
        lc->v = xrealloc(lc->v, lc->cap * sizeof(*lc->v));
    }
    list_entry_t *e = &lc->v[lc->n++];
    memcpy(e->key, folded, sizeof(e->key));
    memcpy(e->id, c->id, sizeof(e->id));
    e->created_at = c->created_at;
    e->is_direct = c->is_direct;
    return true;
}

/* qsort of pointers to entries: the entries (some 400 bytes) stay put. */
static int by_listing_order(const void *a, const void *b)
{
    const list_entry_t *x = *(const list_entry_t *const *)a, *y = *(const list_entry_t *const *)b;
    if (x->is_direct != y->is_direct)
        return x->is_direct ? 1 : -1;
    if (!x->is_direct) {
        int r = strcmp(x->key, y->key);
        return r ? r : strcmp(x->id, y->id);
    }
    if (x->created_at != y->created_at)
        return x->created_at > y->created_at ? -1 : 1;
    return -strcmp(x->id, y->id);
}

typedef struct order_build {
    struct chat_order_entry *v;
    size_t n, cap, n_public;
} order_build_t;

static bool collect_order(void *ctx, const char *key, void *value)
{
    (void)key;
    order_build_t *b = ctx;
    const chat_channel_t *c = value;
    char folded[NAME_KEY_MAX];
    name_key(c, folded);
    if (folded[0] == '\0')
        return true;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
    }
    struct chat_order_entry *e = &b->v[b->n++];
    e->key = xstrdup(folded);
    memcpy(e->id, c->id, sizeof(e->id));
    e->is_private = c->is_private;
    b->n_public += !c->is_private;
    return true;
}

static int by_order(const void *a, const void *b)
{
    const struct chat_order_entry *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    return r ? r : strcmp(x->id, y->id);
}

/* Rebuilds the listing order when a channel changed since it was built.
 * REQUIRES: order_mu held (it takes the channel map's shard locks). */
static void order_refresh(struct chat_tables *t)
{
    uint64_t gen = atomic_load(&t->channels_gen);
    if (t->order_gen == gen)
        return;
    order_free(t);
    order_build_t b = {0};
    map_each(&t->channels, collect_order, &b);
    if (b.n > 1)
        qsort(b.v, b.n, sizeof(*b.v), by_order);
    t->order = b.v;
    t->n_order = b.n;
    t->n_order_public = b.n_public;
    t->order_gen = gen; /* a change during the scan bumped it: rebuilt next time */
}

/*
 * The listing without a query, paged from the cached order: O(offset +
 * limit + the private channels of others passed over), whatever the number
 * of channels the user is in (its listing_t counts them), and only the page
 * is copied. Named channels first (public or mine), then my direct ones,
 * newest first. user_id NULL: public channels only.
 */
static size_t channel_list_ordered(store_t *s, const char *user_id, size_t offset, size_t limit,
                                   chat_channel_t *out, size_t *n_out)
{
    struct chat_tables *t = s->chat;
    static const idset_t none = {0};
    char(*page)[STORE_ID_MAX] = xmalloc((limit ? limit : 1) * sizeof(*page));
    size_t n_page = 0, seen = 0, total;
    /* idx_lock (read) -> order_mu -> the channel map's shards (a refresh). */
    pthread_rwlock_rdlock(&t->idx_lock);
    const idset_t *mine = user_id ? chat__smap_get(&t->joined, user_id) : NULL;
    const listing_t *l = user_id ? chat__smap_get(&t->listings, user_id) : NULL;
    size_t n_private = l ? l->n_private : 0, n_direct = l ? l->n_direct : 0;
    if (mine == NULL)
        mine = &none;
    pthread_mutex_lock(&t->order_mu);
    order_refresh(t);
    total = t->n_order_public + n_private + n_direct;
    for (size_t i = 0; i < t->n_order && n_page < limit; i++) {
        const struct chat_order_entry *e = &t->order[i];
        if (e->is_private && !chat__idset_has(mine, e->id))
            continue;
        if (seen++ >= offset)
            memcpy(page[n_page++], e->id, STORE_ID_MAX);
    }
    size_t named_seen = t->n_order_public + n_private;
    pthread_mutex_unlock(&t->order_mu);
    for (size_t i = 0; i < n_direct && n_page < limit; i++)
        if (named_seen + i >= offset)
            memcpy(page[n_page++], l->direct[i].id, STORE_ID_MAX);
    pthread_rwlock_unlock(&t->idx_lock);

    *n_out = 0;
    for (size_t i = 0; i < n_page; i++) {
        if (!chat_channel_get(s, page[i], &out[*n_out]))
            continue;
        if (out[*n_out].is_deleted)
            chat_channel_clear(&out[*n_out]);
        else
            (*n_out)++;
    }
    free(page);
    return total;
}

typedef struct channel_order {
    chat_channel_sort_t sort;
    bool desc;
} channel_order_t;

static int by_channel_order(const void *a, const void *b, void *ctx)
{
    const channel_order_t *o = ctx;
    const list_entry_t *x = *(const list_entry_t *const *)a, *y = *(const list_entry_t *const *)b;
    int r = 0;
    if (o->sort == CHAT_CHANNEL_BY_CREATED)
        r = (x->created_at > y->created_at) - (x->created_at < y->created_at);
    else if (o->sort == CHAT_CHANNEL_BY_ACTIVITY)
        r = (x->activity > y->activity) - (x->activity < y->activity);
    if (r == 0 && o->sort != CHAT_CHANNEL_BY_NAME)
        r = strcmp(x->id, y->id);
    if (r == 0)
        r = by_listing_order(a, b);
    return o->desc ? -r : r;
}

/* Each entry's last activity, under the message lock (no other lock held). */
static void fill_activity(struct chat_tables *t, list_entry_t *v, size_t n)
{
    pthread_rwlock_rdlock(&t->msg_lock);
    for (size_t i = 0; i < n; i++) {
        const msg_list_t *l = chat__smap_get(&t->lists, v[i].id);
        v[i].activity = l && l->msgs.n ? l->msgs.v[l->msgs.n - 1]->created_at : v[i].created_at;
    }
    pthread_rwlock_unlock(&t->msg_lock);
}

static size_t list_channels(store_t *s, const char *user_id, bool all, const char *query,
                            chat_channel_sort_t sort, bool desc, size_t offset, size_t limit,
                            chat_channel_t *out, size_t *n_out)
{
    struct chat_tables *t = s->chat;
    bool listing_order = sort == CHAT_CHANNEL_BY_NAME && !desc;
    if (!all && listing_order && (query == NULL || query[0] == '\0'))
        return channel_list_ordered(s, user_id, offset, limit, out, n_out);
    idset_t mine = {0};
    if (user_id) {
        pthread_rwlock_rdlock(&t->idx_lock);
        const idset_t *j = chat__smap_get(&t->joined, user_id);
        if (j && j->n) {
            mine.n = mine.cap = j->n;
            mine.v = xmalloc(j->n * sizeof(*mine.v));
            for (size_t i = 0; i < j->n; i++)
                mine.v[i] = xstrdup(j->v[i]);
        }
        pthread_rwlock_unlock(&t->idx_lock);
    }
    char folded[NAME_KEY_MAX];
    list_ctx_t lc = {.mine = &mine, .all = all};
    if (query && query[0]) {
        chat__fold(query, folded, sizeof(folded));
        lc.query = folded;
    }
    map_each(&t->channels, collect_channel, &lc);
    chat__idset_free(&mine);
    const list_entry_t **order = xmalloc((lc.n ? lc.n : 1) * sizeof(*order));
    for (size_t i = 0; i < lc.n; i++)
        order[i] = &lc.v[i];
    channel_order_t how = {sort, desc};
    if (sort == CHAT_CHANNEL_BY_ACTIVITY)
        fill_activity(t, lc.v, lc.n);
    if (lc.n > 1 && listing_order)
        qsort(order, lc.n, sizeof(*order), by_listing_order);
    else if (lc.n > 1)
        qsort_r(order, lc.n, sizeof(*order), by_channel_order, &how);
    /* Only the page is copied (a channel deleted since the scan is left out). */
    *n_out = 0;
    for (size_t i = offset; i < lc.n && *n_out < limit; i++) {
        if (chat_channel_get(s, order[i]->id, &out[*n_out])) {
            if (out[*n_out].is_deleted)
                chat_channel_clear(&out[*n_out]);
            else
                (*n_out)++;
        }
    }
    free(order);
    free(lc.v);
    return lc.n;
}

size_t chat_channel_list(store_t *s, const char *user_id, const char *query, size_t offset,
                         size_t limit, chat_channel_t *out, size_t *n_out)
{
    return list_channels(s, user_id, false, query, CHAT_CHANNEL_BY_NAME, false, offset, limit,
                         out, n_out);
}

size_t chat_channel_list_sorted(store_t *s, const char *user_id, bool all, const char *query,
                                chat_channel_sort_t sort, bool desc, size_t offset, size_t limit,
                                chat_channel_t *out, size_t *n_out)
{
    return list_channels(s, all ? NULL : user_id, all, query, sort, desc, offset, limit, out,
                         n_out);
}

size_t chat_channel_list_all(store_t *s, const char *query, size_t offset, size_t limit,
                             chat_channel_t *out, size_t *n_out)
{
    return list_channels(s, NULL, true, query, CHAT_CHANNEL_BY_NAME, false, offset, limit, out,
                         n_out);
}

char (*chat_user_channels(store_t *s, const char *user_id, size_t *n))[STORE_ID_MAX]
{
    struct chat_tables *t = s->chat;
    char(*ids)[STORE_ID_MAX] = NULL;
    *n = 0;
    pthread_rwlock_rdlock(&t->idx_lock);
    const idset_t *j = chat__smap_get(&t->joined, user_id);
    if (j && j->n) {
        ids = xmalloc(j->n * sizeof(*ids));
        for (size_t i = 0; i < j->n; i++)
            snprintf(ids[i], STORE_ID_MAX, "%s", j->v[i]);
        *n = j->n;
    }
    pthread_rwlock_unlock(&t->idx_lock);
    return ids;
}

/* ---- memberships --------------------------------------------------------------------------- */

bool chat_membership_get(store_t *s, const char *channel_id, const char *user_id,
                         chat_membership_t *out)
{
    char key[MEMBER_KEY_MAX];
    return member_key(channel_id, user_id, key) &&
           map_get_copy(&s->chat->memberships, key, out, sizeof(*out));
}

int chat_membership_modify(store_t *s, const char *channel_id, const char *user_id,
                           int (*fn)(void *ctx, chat_membership_t *m), void *ctx,
                           chat_membership_t *out, uint64_t *lsn)
{
    if (!chat__valid_id(channel_id) || !chat__valid_id(user_id))
        return STORE_E_NOT_FOUND;
    chat_membership_t m;
    pthread_mutex_lock(&s->write_mu);
    if (!channel_exists(s, channel_id, NULL)) {
        pthread_mutex_unlock(&s->write_mu);
        return STORE_E_NOT_FOUND;
    }
    if (!chat_membership_get(s, channel_id, user_id, &m)) {
        memset(&m, 0, sizeof(m));
        snprintf(m.channel_id, sizeof(m.channel_id), "%s", channel_id);
        snprintf(m.user_id, sizeof(m.user_id), "%s", user_id);
    }
    int rc = fn(ctx, &m);
    snprintf(m.channel_id, sizeof(m.channel_id), "%s", channel_id);
    snprintf(m.user_id, sizeof(m.user_id), "%s", user_id);
    if (rc == 0 && !chat__membership_valid(&m))
        rc = STORE_E_INVALID;
    if (rc == 0)
        rc = put_membership(s, &m, lsn);
    pthread_mutex_unlock(&s->write_mu);
    if (rc == 0 && out)
        *out = m;
    return rc;
}

static int by_joined(const void *a, const void *b)
{
    const chat_membership_t *x = a, *y = b;
    if (x->joined_at != y->joined_at)
        return x->joined_at < y->joined_at ? -1 : 1;
    return strcmp(x->user_id, y->user_id);
}

static int by_banned(const void *a, const void *b)
{
    const chat_membership_t *x = a, *y = b;
    if (x->banned_at != y->banned_at)
        return x->banned_at < y->banned_at ? -1 : 1;
    return strcmp(x->user_id, y->user_id);
}

/* The memberships of one of a channel's sets, sorted, sliced. */
static size_t list_people(store_t *s, const char *channel_id, bool banned, size_t offset,
                          size_t limit, chat_membership_t *out, size_t *n_out)
{
    struct chat_tables *t = s->chat;
    *n_out = 0;
    chat_membership_t *v = NULL;
    size_t n = 0;
    pthread_rwlock_rdlock(&t->idx_lock);
    const people_t *p = chat__smap_get(&t->people, channel_id);
    const idset_t *set = p ? (banned ? &p->banned : &p->members) : NULL;
    if (set && set->n) {
        v = xmalloc(set->n * sizeof(*v));
        for (size_t i = 0; i < set->n; i++) /* idx_lock -> membership shard: the order */
            if (chat_membership_get(s, channel_id, set->v[i], &v[n]))
                n++;
    }
    pthread_rwlock_unlock(&t->idx_lock);
    if (n > 1)
        qsort(v, n, sizeof(*v), banned ? by_banned : by_joined);
    for (size_t i = offset; i < n && *n_out < limit; i++)
        out[(*n_out)++] = v[i];
    free(v);
    return n;
}

size_t chat_members(store_t *s, const char *channel_id, size_t offset, size_t limit,
                    chat_membership_t *out, size_t *n_out)
{
    return list_people(s, channel_id, false, offset, limit, out, n_out);
}

size_t chat_banned(store_t *s, const char *channel_id, size_t offset, size_t limit,
                   chat_membership_t *out, size_t *n_out)
{
    return list_people(s, channel_id, true, offset, limit, out, n_out);
}

size_t chat_member_count(store_t *s, const char *channel_id)
{
    struct chat_tables *t = s->chat;
    pthread_rwlock_rdlock(&t->idx_lock);
    const people_t *p = chat__smap_get(&t->people, channel_id);
    size_t n = p ? p->members.n : 0;
    pthread_rwlock_unlock(&t->idx_lock);
    return n;
}

/* ---- messages ----------------------------------------------------------------------------- */

/* Logs and applies one message. REQUIRES: write_mu held. */
static int put_message(store_t *s, const chat_message_t *m, uint64_t *lsn)
{
    size_t len;
    char *rec = chat__message_encode(m, &len);
    if (rec == NULL)
        return STORE_E_INVALID;
    int rc = store__append_bytes(s, STORE_REC_MESSAGE, rec, len, lsn);
    if (rc == 0) {
        chat_message_t copy;
        chat_message_copy(&copy, m);
        apply_message(s, &copy);
    }
    return rc;
}

/* A message by id, copied. REQUIRES: msg_lock not held by this thread. */
static bool message_get(struct chat_tables *t, uint64_t seq, chat_message_t *out)
{
    if (seq == 0)
        return false;
    pthread_rwlock_rdlock(&t->msg_lock);
    const msg_t *g = chat__stab_get(&t->msgs, seq);
    if (g)
        chat__msg_export(g, out);
    pthread_rwlock_unlock(&t->msg_lock);
    return g != NULL;
}

bool chat_message_get(store_t *s, const char *id, chat_message_t *out)
{
    return message_get(s->chat, chat__msg_seq(id), out);
}

bool chat_message_state(store_t *s, const char *id, int64_t *updated_at, bool *deleted)
{
    struct chat_tables *t = s->chat;
    uint64_t seq = chat__msg_seq(id);
    if (seq == 0)
        return false;
    pthread_rwlock_rdlock(&t->msg_lock);
    const msg_t *g = chat__stab_get(&t->msgs, seq);
    if (g) {
        *updated_at = g->updated_at;
        *deleted = g->is_deleted;
    }
    pthread_rwlock_unlock(&t->msg_lock);
    return g != NULL;
}

int chat_reaction_room(const chat_message_t *m, const char *emoji, const char *user_id)
{
    bool emoji_there = false;
    size_t mine = 0;
    for (size_t i = 0; i < m->n_reactions; i++) {
        const chat_reaction_t *r = &m->reactions[i];
        if (strcmp(r->emoji, emoji) == 0)
            emoji_there = true;
        for (size_t k = 0; k < r->n_users; k++)
            if (strcmp(r->users[k], user_id) == 0) {
                mine++;
                break;
            }
    }
    if (!emoji_there && m->n_reactions >= CHAT_REACTION_EMOJI_MAX)
        return STORE_E_REACTION_EMOJI_LIMIT;
    if (mine >= CHAT_REACTIONS_PER_USER_MAX)
        return STORE_E_REACTION_USER_LIMIT;
    return 0;
}

int chat_message_post(store_t *s, chat_message_t *m, bool *existing, uint64_t *lsn)
{
    struct chat_tables *t = s->chat;
    if (existing)
        *existing = false;
    if (!memchr(m->channel_id, '\0', sizeof(m->channel_id)) ||
        !memchr(m->user_id, '\0', sizeof(m->user_id)) ||
        !memchr(m->reply_to, '\0', sizeof(m->reply_to)) ||
        !memchr(m->idempotency_key, '\0', sizeof(m->idempotency_key)))
        return STORE_E_INVALID;
    pthread_mutex_lock(&s->write_mu);
    int rc = 0;
    bool deleted = false;
    if (!channel_exists(s, m->channel_id, &deleted) || deleted)
        rc = STORE_E_NOT_FOUND;

    chat_message_t n = *m; /* borrows m's memory */
    if (rc == 0 && m->idempotency_key[0] && strlen(m->user_id) < STORE_ID_MAX) {
        char key[IDEM_KEY_MAX];
        idem_key(m->user_id, m->channel_id, m->idempotency_key, key);
        pthread_rwlock_rdlock(&t->msg_lock);
        const msg_t *g = chat__smap_get(&t->idem, key);
        chat_message_t found;
        if (g)
            chat__msg_export(g, &found);
        pthread_rwlock_unlock(&t->msg_lock);
        if (g) {
            *lsn = wal_last_lsn(s->wal);
            pthread_mutex_unlock(&s->write_mu);
            chat_message_clear(m);
            *m = found;
            if (existing)
                *existing = true;
            return 0;
        }
    }
    n.thread_id[0] = '\0';
    if (rc == 0 && m->reply_to[0]) {
        pthread_rwlock_rdlock(&t->msg_lock);
        const msg_t *r = chat__stab_get(&t->msgs, chat__msg_seq(m->reply_to));
        if (r == NULL || strcmp(r->list->id, m->channel_id) != 0)
            rc = STORE_E_NOT_FOUND;
        else
            chat__msg_id(r->thread_seq ? r->thread_seq : r->seq, n.thread_id);
        pthread_rwlock_unlock(&t->msg_lock);
    }
    if (rc == 0) {
        pthread_rwlock_rdlock(&t->msg_lock);
        uint64_t seq = t->next_seq;
        pthread_rwlock_unlock(&t->msg_lock);
        if (seq > CHAT_SEQ_MAX)
            rc = STORE_E_UNAVAILABLE; /* ten quadrillion messages */
        else
            chat__msg_id(seq, n.id);
    }
    if (rc == 0) {
        n.created_at = n.updated_at = clock_wall_ms();
        n.is_edited = n.is_deleted = false;
        if (n.content == NULL)
            n.content = "";
        if (!chat__message_valid(&n))
            rc = STORE_E_INVALID;
    }
    if (rc == 0)
        rc = put_message(s, &n, lsn);
    pthread_mutex_unlock(&s->write_mu);
    if (rc == 0) {
        memcpy(m->id, n.id, sizeof(m->id));
        memcpy(m->thread_id, n.thread_id, sizeof(m->thread_id));
        m->created_at = n.created_at;
        m->updated_at = n.updated_at;
        m->is_edited = m->is_deleted = false;
        if (m->content == NULL)
            m->content = xstrdup("");
    }
    return rc;
}

/* Drops reactions left with no user. */
static void prune_reactions(chat_message_t *m)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n_reactions; i++) {
        if (m->reactions[i].n_users == 0)
            free(m->reactions[i].users);
        else
            m->reactions[k++] = m->reactions[i];
    }
    m->n_reactions = k;
    if (k == 0) {
        free(m->reactions);
        m->reactions = NULL;
    }
}

int chat_message_modify(store_t *s, const char *id, int (*fn)(void *ctx, chat_message_t *m),
                        void *ctx, chat_message_t *out, uint64_t *lsn)
{
    struct chat_tables *t = s->chat;
    chat_message_t m, keep;
    pthread_mutex_lock(&s->write_mu);
    if (!message_get(t, chat__msg_seq(id), &m)) {
        pthread_mutex_unlock(&s->write_mu);
        return STORE_E_NOT_FOUND;
    }
    keep = m; /* the scalar fields that cannot change */
    int rc = fn(ctx, &m);
    memcpy(m.id, keep.id, sizeof(m.id));
    memcpy(m.channel_id, keep.channel_id, sizeof(m.channel_id));
    memcpy(m.user_id, keep.user_id, sizeof(m.user_id));
    memcpy(m.reply_to, keep.reply_to, sizeof(m.reply_to));
    memcpy(m.thread_id, keep.thread_id, sizeof(m.thread_id));
    memcpy(m.idempotency_key, keep.idempotency_key, sizeof(m.idempotency_key));
    m.created_at = keep.created_at;
    if (rc == 0 && m.reactions && m.n_reactions)
        prune_reactions(&m);
    if (rc == 0 && !chat__message_valid(&m))
        rc = STORE_E_INVALID;
    if (rc == 0)
        rc = put_message(s, &m, lsn);
    pthread_mutex_unlock(&s->write_mu);
    if (rc == 0 && out)
        *out = m;
    else
        chat_message_clear(&m);
    return rc;
}

/* The index of cursor `id` in l; false when it is not a message of l. */
static bool cursor_at(struct chat_tables *t, const msg_list_t *l, const char *id, size_t *at)
{
    const msg_t *g = chat__stab_get(&t->msgs, chat__msg_seq(id));
    if (g == NULL || g->list != l)
        return false;
    *at = chat__mvec_lower(&l->msgs, g->seq);
    return *at < l->msgs.n && l->msgs.v[*at] == g;
}

int chat_history(store_t *s, const char *channel_id, const char *before, const char *after,
                 size_t limit, chat_message_t *out, size_t *n_out, bool *has_more)
{
    struct chat_tables *t = s->chat;
    int rc = 0;
    *n_out = 0;
    *has_more = false;
    pthread_rwlock_rdlock(&t->msg_lock);
    const msg_list_t *l = chat__smap_get(&t->lists, channel_id);
    size_t n = l ? l->msgs.n : 0, lo = 0, hi = n, b = 0, a = 0;
    if ((before && (!l || !cursor_at(t, l, before, &b))) ||
        (after && (!l || !cursor_at(t, l, after, &a)))) {
        rc = STORE_E_NOT_FOUND;
        goto out;
    }
    if (before)
        hi = b;
    if (after)
        lo = a + 1;
    if (lo >= hi)
        goto out;
    size_t start, end;
    if (after) { /* the oldest after the cursor */
        start = lo;
        end = hi - lo > limit ? lo + limit : hi;
        *has_more = end < hi;
    } else { /* the newest before the cursor, or of all */
        end = hi;
        start = hi - lo > limit ? hi - limit : lo;
        *has_more = start > lo;
    }
    for (size_t i = start; i < end; i++)
        chat__msg_export(l->msgs.v[i], &out[(*n_out)++]);
out:
    pthread_rwlock_unlock(&t->msg_lock);
    return rc;
}

void chat_history_skip(store_t *s, const char *channel_id, uint64_t skip, size_t limit,
                       chat_message_t *out, size_t *n_out, bool *has_more, size_t *total)
{
    struct chat_tables *t = s->chat;
    *n_out = 0;
    pthread_rwlock_rdlock(&t->msg_lock);
    const msg_list_t *l = chat__smap_get(&t->lists, channel_id);
    size_t n = l ? l->msgs.n : 0;
    size_t end = skip < n ? n - (size_t)skip : 0;
    size_t start = end > limit ? end - limit : 0;
    for (size_t i = start; i < end; i++)
        chat__msg_export(l->msgs.v[i], &out[(*n_out)++]);
    *has_more = start > 0;
    *total = n;
    pthread_rwlock_unlock(&t->msg_lock);
}

size_t chat_history_count(store_t *s, const char *channel_id)
{
    struct chat_tables *t = s->chat;
    pthread_rwlock_rdlock(&t->msg_lock);
    const msg_list_t *l = chat__smap_get(&t->lists, channel_id);
    size_t n = l ? l->msgs.n : 0;
    pthread_rwlock_unlock(&t->msg_lock);
    return n;
}

bool chat_direct_find(store_t *s, const char *key, char id_out[STORE_ID_MAX])
{
    return map_index_get(&s->chat->channel_by_direct, key, id_out, STORE_ID_MAX);
}

size_t chat_thread(store_t *s, const char *root, size_t limit, chat_message_t *out,
                   size_t *n_out)
{
    struct chat_tables *t = s->chat;
    *n_out = 0;
    uint64_t seq = chat__msg_seq(root);
    if (seq == 0)
        return 0;
    pthread_rwlock_rdlock(&t->msg_lock);
    const thread_t *th = chat__ptab_get(&t->threads, seq);
    size_t total = th ? th->msgs.n : 0;
    for (size_t i = 0; i < total && i < limit; i++)
        chat__msg_export(th->msgs.v[i], &out[(*n_out)++]);
    pthread_rwlock_unlock(&t->msg_lock);
    return total;
}

size_t chat_unread(store_t *s, const char *channel_id, const char *user_id,
                   const char *last_read, size_t cap)
{
    struct chat_tables *t = s->chat;
    size_t count = 0;
    uint64_t after = last_read ? chat__msg_seq(last_read) : 0;
    pthread_rwlock_rdlock(&t->msg_lock);
    const msg_list_t *l = chat__smap_get(&t->lists, channel_id);
    if (l) {
        for (size_t i = chat__mvec_lower(&l->msgs, after + 1); i < l->msgs.n && count < cap;
             i++) {
            const msg_t *g = l->msgs.v[i];
            if (!g->is_deleted && (user_id == NULL || strcmp(g->user, user_id) != 0))
                count++;
        }
    }
    pthread_rwlock_unlock(&t->msg_lock);
    return count;
}

bool chat_last_message(store_t *s, const char *channel_id, chat_message_t *out)
{
    struct chat_tables *t = s->chat;
    pthread_rwlock_rdlock(&t->msg_lock);
    const msg_list_t *l = chat__smap_get(&t->lists, channel_id);
    bool found = l && l->msgs.n;
    if (found)
        chat__msg_export(l->msgs.v[l->msgs.n - 1], out);
    pthread_rwlock_unlock(&t->msg_lock);
    return found;
}

/* ---- snapshots ------------------------------------------------------------------------------ */

typedef struct snap_ctx {
    wal_snapshot_t *snap;
    uint8_t type;
    int rc;
} snap_ctx_t;

static bool snap_entity(void *ctx, const char *key, void *value)
{
    (void)key;
    snap_ctx_t *sc = ctx;
    char *text = sc->type == STORE_REC_CHANNEL ? chat__channel_encode(value)
                                               : chat__membership_encode(value);
    if (text == NULL) { /* cannot be: every state in the tables was encoded once */
        sc->rc = STORE_E_CORRUPT;
        return false;
    }
    sc->rc = wal_snapshot_add(sc->snap, sc->type, text, strlen(text));
    free(text);
    return sc->rc == 0;
}

/* A min-heap of channel cursors by the seq they point at. */
typedef struct cursor {
    uint64_t seq;
    const mvec_t *v;
    size_t at;
} cursor_t;

static void heap_down(cursor_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < n && h[l].seq < h[m].seq)
            m = l;
        if (r < n && h[r].seq < h[m].seq)
            m = r;
        if (m == i)
            return;
        cursor_t tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
}

/*
 * Every message, in seq order across channels (a k-way merge of the
 * channels' arrays), SNAP_BATCH at a time under the read lock so posts go on
 * in between. Seq order matters: replay then appends to the posting lists
 * (O(1)) instead of inserting before their ends (O(list) each).
 */
static int snap_messages(struct chat_tables *t, wal_snapshot_t *snap)
{
    pthread_rwlock_rdlock(&t->msg_lock);
    size_t n_lists = 0;
    msg_list_t **lists = xmalloc((t->lists.n ? t->lists.n : 1) * sizeof(*lists));
    for (size_t i = 0; i < t->lists.cap; i++)
        if (t->lists.slots[i].key)
            lists[n_lists++] = t->lists.slots[i].val; /* live until chat__clear */
    pthread_rwlock_unlock(&t->msg_lock);

    cursor_t *heap = xmalloc((n_lists ? n_lists : 1) * sizeof(*heap));
    char **texts = xmalloc(SNAP_BATCH * sizeof(*texts));
    size_t *lens = xmalloc(SNAP_BATCH * sizeof(*lens));
    uint64_t next = 1; /* the first seq not yet written */
    int rc = 0;
    while (rc == 0) {
        size_t k = 0, n = 0;
        pthread_rwlock_rdlock(&t->msg_lock);
        for (size_t i = 0; i < n_lists; i++) {
            const mvec_t *v = &lists[i]->msgs;
            size_t at = chat__mvec_lower(v, next);
            if (at < v->n)
                heap[n++] = (cursor_t){v->v[at]->seq, v, at};
        }
        for (size_t i = n / 2; i-- > 0;)
            heap_down(heap, n, i);
        while (n && k < SNAP_BATCH) {
            cursor_t *c = &heap[0];
            chat_message_t m;
            chat__msg_export(c->v->v[c->at], &m);
            texts[k] = chat__message_encode(&m, &lens[k]);
            k++;
            chat_message_clear(&m);
            next = c->seq + 1;
            if (++c->at < c->v->n)
                c->seq = c->v->v[c->at]->seq;
            else
                heap[0] = heap[--n];
            heap_down(heap, n, 0);
        }
        pthread_rwlock_unlock(&t->msg_lock);
        for (size_t i = 0; i < k; i++) {
            if (rc == 0)
                rc = texts[i] ? wal_snapshot_add(snap, STORE_REC_MESSAGE, texts[i], lens[i])
                              : STORE_E_CORRUPT;
            free(texts[i]);
        }
        if (k < SNAP_BATCH)
            break;
    }
    free(texts);
    free(lens);
    free(heap);
    free(lists);
    return rc;
}

int chat__snapshot(store_t *s, wal_snapshot_t *snap)
{
    struct chat_tables *t = s->chat;
    snap_ctx_t sc = {.snap = snap, .type = STORE_REC_CHANNEL};
    map_each(&t->channels, snap_entity, &sc);
    if (sc.rc == 0) {
        sc.type = STORE_REC_MEMBERSHIP;
        map_each(&t->memberships, snap_entity, &sc);
    }
    if (sc.rc == 0)
        sc.rc = snap_messages(t, snap);
    return sc.rc;
}

/* ---- retention ---------------------------------------------------------------------- */

#define OLDER_SCAN_MAX 4096 /* seqs looked at per call (one read lock) */

size_t chat_messages_older(store_t *s, uint64_t *cursor, int64_t cutoff_ms, size_t max,
                           char (*ids)[STORE_ID_MAX], bool *more)
{
    struct chat_tables *t = s->chat;
    size_t n = 0;
    uint64_t seq = *cursor ? *cursor : 1;
    *more = false;
    pthread_rwlock_rdlock(&t->msg_lock);
    for (size_t looked = 0; seq < t->next_seq; looked++) {
        if (looked == OLDER_SCAN_MAX || n == max) {
            *more = true;
            break;
        }
        const msg_t *g = chat__stab_get(&t->msgs, seq);
        if (g && g->created_at >= cutoff_ms)
            break; /* ids are in creation order: the rest is newer */
        if (g && !g->is_deleted)
            chat__msg_id(seq, ids[n++]);
        seq++;
    }
    pthread_rwlock_unlock(&t->msg_lock);
    *cursor = seq;
    return n;
}
