/*
 * Small containers of the chat tables, without locks of their own (the
 * tables' rwlocks guard them; chat.c says which).
 *
 * DESIGN
 * - smap: string -> pointer, open addressing with linear probing, kept at
 *   most 3/4 full, doubled when it gets there; removal shifts the following
 *   entries back (no tombstones), so lookups stay short after churn. A slot
 *   is 24 bytes; keys are copied. Used for the per-channel lists, the
 *   idempotency index, interned user ids, the vocabulary and the member
 *   sets' owners. Expected O(1) get/put/del.
 * - ptab: uint64_t -> object whose first member is that key, 8 bytes a slot
 *   (the key is read through the pointer): the thread table (root ->
 *   replies) and the page directory of the stab. Nothing is removed.
 * - stab: seq -> message, pages of 1,024 slots found through a ptab of
 *   pages: messages are numbered 1, 2, 3..., so a lookup is two loads and
 *   no probing (the probing ptab it replaced cost restarts a tenth of their
 *   time in cache misses). 8 bytes a message.
 * - idset: a sorted array of strings: O(log n) lookup, O(n) insert/remove,
 *   which suits member sets (read often, changed rarely).
 * Hashing: the FNV-1a + mix of map.c (map_hash).
 * Out of memory aborts (STYLE.md: internal allocations abort).
 */
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"
#include "parley/xalloc.h"

/* ---- smap ------------------------------------------------------------------- */

static size_t smap_find(const smap_t *m, uint64_t h, const char *key)
{
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const smap_slot_t *sl = &m->slots[i];
        if (sl->key == NULL || (sl->hash == h && strcmp(sl->key, key) == 0))
            return i;
    }
}

static void smap_grow(smap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    smap_slot_t *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = xcalloc(cap, sizeof(*m->slots));
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key)
            m->slots[smap_find(m, old[i].hash, old[i].key)] = old[i];
    free(old);
}

void *chat__smap_get(const smap_t *m, const char *key)
{
    if (m->n == 0)
        return NULL;
    uint64_t h = map_hash(key);
    const smap_slot_t *sl = &m->slots[smap_find(m, h, key)];
    return sl->key ? sl->val : NULL;
}

static smap_slot_t *smap_slot(smap_t *m, const char *key, bool *fresh)
{
    if ((m->n + 1) * 4 > m->cap * 3)
        smap_grow(m);
    uint64_t h = map_hash(key);
    smap_slot_t *sl = &m->slots[smap_find(m, h, key)];
    *fresh = sl->key == NULL;
    if (*fresh) {
        sl->hash = h;
        sl->key = xstrdup(key);
        sl->val = NULL;
        m->n++;
    }
    return sl;
}

void *chat__smap_put(smap_t *m, const char *key, void *val)
{
    bool fresh;
    smap_slot_t *sl = smap_slot(m, key, &fresh);
    void *old = sl->val;
    sl->val = val;
    return old;
}

const char *chat__smap_intern(smap_t *m, const char *key)
{
    bool fresh;
    return smap_slot(m, key, &fresh)->key;
}

void *chat__smap_del(smap_t *m, const char *key)
{
    if (m->n == 0)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = smap_find(m, map_hash(key), key);
    if (m->slots[i].key == NULL)
        return NULL;
    void *val = m->slots[i].val;
    free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->n--;
    /* Backward shift: move later entries of the run into the hole when
     * their home slot does not lie (cyclically) in (hole, j]. */
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = (size_t)m->slots[j].hash & mask;
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        m->slots[i] = m->slots[j];
        m->slots[j].key = NULL;
        i = j;
    }
    return val;
}

void chat__smap_free(smap_t *m, void (*free_val)(void *val))
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key) {
            if (free_val)
                free_val(m->slots[i].val);
            free(m->slots[i].key);
        }
    }
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* ---- ptab ------------------------------------------------------------------- */

static uint64_t key_of(const void *obj)
{
    return *(const uint64_t *)obj;
}

static size_t ptab_home(uint64_t key, size_t mask)
{
    key *= 0x9e3779b97f4a7c15ull;
    return (size_t)(key >> 32 ^ key) & mask;
}

static size_t ptab_find(const ptab_t *t, uint64_t key)
{
    size_t mask = t->cap - 1;
    for (size_t i = ptab_home(key, mask);; i = (i + 1) & mask)
        if (t->slots[i] == NULL || key_of(t->slots[i]) == key)
            return i;
}

void *chat__ptab_get(const ptab_t *t, uint64_t key)
{
    if (t->n == 0)
        return NULL;
    return t->slots[ptab_find(t, key)];
}

void chat__ptab_put(ptab_t *t, void *obj)
{
    if ((t->n + 1) * 4 > t->cap * 3) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        void **old = t->slots;
        size_t old_cap = t->cap;
        t->slots = xcalloc(cap, sizeof(*t->slots));
        t->cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i])
                t->slots[ptab_find(t, key_of(old[i]))] = old[i];
        free(old);
    }
    size_t i = ptab_find(t, key_of(obj));
    if (t->slots[i] == NULL)
        t->n++;
    t->slots[i] = obj;
}

/* ---- stab ------------------------------------------------------------------- */

void *chat__stab_get(const stab_t *t, uint64_t seq)
{
    const stab_page_t *p = chat__ptab_get(&t->pages, (seq >> STAB_PAGE_BITS) + 1);
    return p ? p->slot[seq & (STAB_PAGE - 1)] : NULL;
}

void chat__stab_put(stab_t *t, uint64_t seq, void *obj)
{
    uint64_t no = (seq >> STAB_PAGE_BITS) + 1;
    stab_page_t *p = chat__ptab_get(&t->pages, no);
    if (p == NULL) {
        p = xcalloc(1, sizeof(*p));
        p->no = no;
        chat__ptab_put(&t->pages, p);
    }
    p->slot[seq & (STAB_PAGE - 1)] = obj;
    t->n++;
}

void chat__stab_each(const stab_t *t, void (*fn)(void *ctx, void *obj), void *ctx)
{
    for (size_t i = 0; i < t->pages.cap; i++) {
        stab_page_t *p = t->pages.slots[i];
        for (size_t k = 0; p && k < STAB_PAGE; k++)
            if (p->slot[k])
                fn(ctx, p->slot[k]);
    }
}

void chat__stab_free(stab_t *t, void (*free_obj)(void *obj))
{
    for (size_t i = 0; i < t->pages.cap; i++) {
        stab_page_t *p = t->pages.slots[i];
        for (size_t k = 0; p && free_obj && k < STAB_PAGE; k++)
            if (p->slot[k])
                free_obj(p->slot[k]);
    }
    chat__ptab_free(&t->pages, free);
    t->n = 0;
}

void chat__ptab_free(ptab_t *t, void (*free_obj)(void *obj))
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i] && free_obj)
            free_obj(t->slots[i]);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* ---- idset ------------------------------------------------------------------ */

/* The position of id, or where it would go. */
static size_t idset_pos(const idset_t *s, const char *id, bool *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->v[mid], id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

bool chat__idset_has(const idset_t *s, const char *id)
{
    bool found;
    idset_pos(s, id, &found);
    return found;
}

void chat__idset_add(idset_t *s, const char *id)
{
    bool found;
    size_t at = idset_pos(s, id, &found);
    if (found)
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof(*s->v));
    s->v[at] = xstrdup(id);
    s->n++;
}

void chat__idset_del(idset_t *s, const char *id)
{
    bool found;
    size_t at = idset_pos(s, id, &found);
    if (!found)
        return;
    free(s->v[at]);
    memmove(&s->v[at], &s->v[at + 1], (s->n - at - 1) * sizeof(*s->v));
    s->n--;
}

void chat__idset_free(idset_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}
