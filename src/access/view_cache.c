/*
 * A bounded cache of rendered JSON texts, so that a history page is copied
 * together from the views of its messages instead of being built and
 * encoded by jansson each time (encoding a 50-message page is ~0.6 ms of
 * CPU; copying the cached texts is a few microseconds).
 *
 * Validity is the caller's stamp, not an invalidation protocol: an entry
 * answers only when the stamp asked for equals the one it was stored with.
 * The caller derives the stamp from the revisions of everything the view
 * shows (a message, its sender, its files), which the store changes on
 * every apply, so a change makes the old text unreachable at once, with no
 * hook from the store into this cache and no race between a change and a
 * reader: a reader computing the stamp after the change never sees the
 * text of before it.
 *
 * Layout: a direct-mapped array of slots (a power of two, ~one slot per
 * 512 bytes of budget), guarded by 64 striped mutexes; a key's slot is
 * replaced by any other key that maps there. The texts' total is kept
 * under the budget: a text that would pass it is not stored. Hits copy the
 * text out under the stripe lock (a few hundred bytes), so no reference
 * counting is needed.
 */
#include "parley/view_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64
#define BYTES_PER_SLOT 512
#define MIN_SLOTS 64
#define MAX_SLOTS (1u << 22) /* 128 MiB of slots: beyond, texts are larger on average */

typedef struct slot {
    uint64_t key, stamp;
    char *text; /* NULL: empty */
    size_t len;
} slot_t;

struct view_cache {
    slot_t *slots;
    size_t mask;
    size_t budget;
    atomic_size_t bytes, entries;
    atomic_uint_least64_t hits, misses;
    pthread_mutex_t stripe[STRIPES];
};

uint64_t view_hash_word(uint64_t h, uint64_t word)
{
    uint64_t z = h ^ (word + 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t view_hash_text(uint64_t h, const char *s)
{
    /* Eight bytes a step; the length ends it, so "a" and "a\0" differ. */
    size_t n = strlen(s), i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = view_hash_word(h, w);
    }
    uint64_t tail = 0;
    memcpy(&tail, s + i, n - i);
    return view_hash_word(view_hash_word(h, tail), n);
}

view_cache_t *view_cache_new(size_t budget)
{
    if (budget == 0)
        return NULL;
    view_cache_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    size_t slots = MIN_SLOTS;
    while (slots * 2 <= budget / BYTES_PER_SLOT && slots < MAX_SLOTS)
        slots *= 2;
    c->slots = calloc(slots, sizeof(*c->slots));
    if (c->slots == NULL) {
        free(c);
        return NULL;
    }
    c->mask = slots - 1;
    c->budget = budget;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&c->stripe[i], NULL);
    return c;
}

void view_cache_free(view_cache_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i <= c->mask; i++)
        free(c->slots[i].text);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&c->stripe[i]);
    free(c->slots);
    free(c);
}

static size_t slot_of(const view_cache_t *c, uint64_t key)
{
    return (size_t)view_hash_word(0, key) & c->mask;
}

bool view_cache_append(view_cache_t *c, uint64_t key, uint64_t stamp, text_buf_t *out)
{
    if (c == NULL)
        return false;
    size_t i = slot_of(c, key);
    pthread_mutex_t *lock = &c->stripe[i % STRIPES];
    pthread_mutex_lock(lock);
    const slot_t *sl = &c->slots[i];
    bool hit = sl->text && sl->key == key && sl->stamp == stamp;
    if (hit)
        hit = text_buf_append(out, sl->text, sl->len);
    pthread_mutex_unlock(lock);
    atomic_fetch_add_explicit(hit ? &c->hits : &c->misses, 1, memory_order_relaxed);
    return hit;
}

void view_cache_put(view_cache_t *c, uint64_t key, uint64_t stamp, const char *text,
                    size_t len)
{
    if (c == NULL || len > c->budget / 16)
        return;
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return;
    memcpy(copy, text, len);
    copy[len] = '\0';
    size_t i = slot_of(c, key);
    pthread_mutex_t *lock = &c->stripe[i % STRIPES];
    pthread_mutex_lock(lock);
    slot_t *sl = &c->slots[i];
    size_t old = sl->text ? sl->len : 0;
    /* Concurrent puts in other stripes may pass the check together: the
     * budget can be exceeded by at most one text a stripe. */
    if (atomic_load_explicit(&c->bytes, memory_order_relaxed) - old + len > c->budget) {
        pthread_mutex_unlock(lock);
        free(copy);
        return;
    }
    char *gone = sl->text;
    if (gone == NULL)
        atomic_fetch_add_explicit(&c->entries, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->bytes, len, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->bytes, old, memory_order_relaxed);
    sl->key = key;
    sl->stamp = stamp;
    sl->text = copy;
    sl->len = len;
    pthread_mutex_unlock(lock);
    free(gone);
}

void view_cache_get_stats(view_cache_t *c, view_cache_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (c == NULL)
        return;
    out->hits = atomic_load(&c->hits);
    out->misses = atomic_load(&c->misses);
    out->entries = atomic_load(&c->entries);
    out->bytes = atomic_load(&c->bytes);
}
