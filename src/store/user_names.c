/*
 * The index of user search (store_user_search): which users' username or
 * display name contains a query, case-insensitively, without looking at
 * every user. GET /users?search= with 100,000 users scanned them all with
 * strcasestr (150 ms of CPU a request, docs/benchmarks.md "P15"); with this
 * index a query costs the shortest posting list among its pieces.
 *
 * How: each indexed user has a slot holding its two names folded (ASCII
 * lower case, as strcasestr compares in the C locale the server runs in),
 * "username\0display name\0". Every distinct run of two and of three bytes
 * of either name (a "gram") has a posting list: the slots whose names hold
 * it. A name that contains the query holds each of the query's grams, so
 * the candidates of a query of 3 bytes or more are the list of its rarest
 * trigram, of a query of 2 bytes its bigram's list; each candidate is then
 * checked with strstr on its names, so the answer is exactly the scan's. A
 * query of one byte reads every slot's names (what the scan did, without
 * the users' locks and copies). Inserting costs a lookup and an append per
 * gram, no sorting: the store applies users one by one in replay too.
 *
 * A rename or a deletion marks the old slot dead (its postings are skipped)
 * and a rename takes a new slot; when dead slots outnumber the live ones
 * (and there are more than a few), everything is rebuilt from the live
 * slots, O(postings), amortised over the changes that made them dead.
 *
 * Locking: the index has one rwlock, a leaf (docs/architecture.md, "Locks"):
 * apply_user takes it for writing after the users' shard lock is released,
 * a search for reading.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"
#include "parley/xalloc.h"
#include "user_names.h"

#define REBUILD_MIN 1024

typedef struct name_slot {
    const char *id;    /* by_id's copy of the key (a dead slot's may be gone) */
    char *text;        /* "username\0display\0", folded */
    uint32_t user_len; /* bytes of the username */
    uint32_t len;      /* bytes of text, both NULs included */
    bool dead;         /* renamed or removed: its postings are skipped */
} name_slot_t;

/* The slots holding one gram; first member the ptab key (never 0). */
typedef struct posting {
    uint64_t gram; /* (length << 24) | its bytes */
    uint32_t *slots;
    uint32_t n, cap;
} posting_t;

struct user_names {
    pthread_rwlock_t lock; /* guards everything below */
    name_slot_t *slots;
    size_t n_slots, cap_slots, n_dead;
    smap_t by_id;          /* user id -> (uintptr_t)(slot + 1) of its live slot (a user
                            * once indexed keeps its key while it is) */
    ptab_t grams;          /* gram -> posting_t* */
};

static uint64_t gram_key(const char *p, size_t len)
{
    uint64_t k = (uint64_t)len << 24;
    for (size_t i = 0; i < len; i++)
        k |= (uint64_t)(unsigned char)p[i] << (8 * (2 - i));
    return k;
}

user_names_t *store__names_new(void)
{
    user_names_t *x = xcalloc(1, sizeof(*x));
    pthread_rwlock_init(&x->lock, NULL);
    return x;
}

static void free_posting(void *v)
{
    posting_t *p = v;
    free(p->slots);
    free(p);
}

static void names_empty(user_names_t *x)
{
    for (size_t i = 0; i < x->n_slots; i++)
        free(x->slots[i].text);
    free(x->slots);
    x->slots = NULL;
    x->n_slots = x->cap_slots = x->n_dead = 0;
    chat__smap_free(&x->by_id, NULL);
    chat__ptab_free(&x->grams, free_posting);
}

void store__names_clear(user_names_t *x)
{
    pthread_rwlock_wrlock(&x->lock);
    names_empty(x);
    pthread_rwlock_unlock(&x->lock);
}

void store__names_free(user_names_t *x)
{
    if (x == NULL)
        return;
    names_empty(x);
    pthread_rwlock_destroy(&x->lock);
    free(x);
}

static void fold_into(char *out, const char *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
    out[n] = '\0';
}

/* "username\0display\0" folded. */
static char *fold_names(const char *username, const char *display, uint32_t *user_len,
                        size_t *len)
{
    size_t u = strlen(username), d = display ? strlen(display) : 0;
    char *t = xmalloc(u + d + 2);
    fold_into(t, username, u);
    fold_into(t + u + 1, display ? display : "", d);
    *user_len = (uint32_t)u;
    *len = u + d + 2;
    return t;
}

static int by_key(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Adds slot to the posting list of each distinct gram of its names.
 * REQUIRES: lock held for writing. */
static void index_slot(user_names_t *x, uint32_t slot)
{
    const name_slot_t *sl = &x->slots[slot];
    const char *names[2] = {sl->text, sl->text + sl->user_len + 1};
    size_t lens[2] = {sl->user_len, strlen(names[1])};
    size_t n = 0, cap = 2 * (lens[0] + lens[1]) + 1;
    uint64_t *keys = xmalloc(cap * sizeof(*keys));
    for (int f = 0; f < 2; f++)
        for (size_t i = 0; i + 1 < lens[f]; i++) {
            keys[n++] = gram_key(names[f] + i, 2);
            if (i + 2 < lens[f])
                keys[n++] = gram_key(names[f] + i, 3);
        }
    if (n > 1)
        qsort(keys, n, sizeof(*keys), by_key);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && keys[i] == keys[i - 1])
            continue;
        posting_t *p = chat__ptab_get(&x->grams, keys[i]);
        if (p == NULL) {
            p = xcalloc(1, sizeof(*p));
            p->gram = keys[i];
            chat__ptab_put(&x->grams, p);
        }
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 4;
            p->slots = xrealloc(p->slots, p->cap * sizeof(*p->slots));
        }
        p->slots[p->n++] = slot;
    }
    free(keys);
}

/* Drops the dead slots: the live ones are renumbered and indexed again.
 * REQUIRES: lock held for writing. */
static void names_rebuild(user_names_t *x)
{
    chat__ptab_free(&x->grams, free_posting);
    size_t n = 0;
    for (size_t i = 0; i < x->n_slots; i++) {
        if (x->slots[i].dead) {
            free(x->slots[i].text);
            continue;
        }
        x->slots[n] = x->slots[i];
        chat__smap_put(&x->by_id, x->slots[n].id, (void *)(uintptr_t)(n + 1));
        index_slot(x, (uint32_t)n);
        n++;
    }
    x->n_slots = n;
    x->n_dead = 0;
}

void store__names_set(user_names_t *x, const char *id, const char *username, const char *display)
{
    uint32_t user_len = 0;
    size_t len = 0;
    char *text = username ? fold_names(username, display, &user_len, &len) : NULL;
    pthread_rwlock_wrlock(&x->lock);
    uintptr_t at = (uintptr_t)chat__smap_get(&x->by_id, id);
    if (at) {
        name_slot_t *sl = &x->slots[at - 1];
        if (text && sl->user_len == user_len && sl->len == len &&
            memcmp(sl->text, text, len) == 0) {
            pthread_rwlock_unlock(&x->lock); /* a login, a profile change: same names */
            free(text);
            return;
        }
        sl->dead = true;
        x->n_dead++;
        if (text == NULL) /* removed: a rename keeps the key for the new slot */
            chat__smap_del(&x->by_id, id);
    }
    if (text) {
        if (x->n_slots == x->cap_slots) {
            x->cap_slots = x->cap_slots ? x->cap_slots * 2 : 64;
            x->slots = xrealloc(x->slots, x->cap_slots * sizeof(*x->slots));
        }
        size_t slot = x->n_slots++;
        name_slot_t *sl = &x->slots[slot];
        sl->id = chat__smap_intern(&x->by_id, id);
        sl->text = text;
        sl->user_len = user_len;
        sl->len = (uint32_t)len;
        sl->dead = false;
        chat__smap_put(&x->by_id, id, (void *)(uintptr_t)(slot + 1));
        index_slot(x, (uint32_t)slot);
    }
    if (x->n_dead > REBUILD_MIN && x->n_dead > x->n_slots - x->n_dead)
        names_rebuild(x);
    pthread_rwlock_unlock(&x->lock);
}

static bool slot_matches(const name_slot_t *sl, const char *q)
{
    return !sl->dead &&
           (strstr(sl->text, q) != NULL || strstr(sl->text + sl->user_len + 1, q) != NULL);
}

size_t store__names_find(user_names_t *x, const char *query, char (**ids)[STORE_ID_MAX])
{
    size_t qlen = strlen(query);
    char *q = xmalloc(qlen + 1);
    fold_into(q, query, qlen);
    pthread_rwlock_rdlock(&x->lock);
    /* The candidates: the shortest list among the query's grams (none
     * when one has no list), or every slot for a one-byte query. */
    const uint32_t *cand = NULL;
    size_t n_cand = x->n_slots;
    bool every_slot = qlen < 2;
    for (size_t i = 0; !every_slot && i + 1 < qlen; i++) {
        size_t g = qlen == 2 ? 2 : 3;
        if (i + g > qlen)
            break;
        const posting_t *p = chat__ptab_get(&x->grams, gram_key(q + i, g));
        if (p == NULL) {
            n_cand = 0;
            break;
        }
        if (cand == NULL || p->n < n_cand) {
            cand = p->slots;
            n_cand = p->n;
        }
    }
    char(*out)[STORE_ID_MAX] = xmalloc((n_cand ? n_cand : 1) * sizeof(*out));
    size_t n = 0;
    for (size_t i = 0; i < n_cand; i++) {
        const name_slot_t *sl = &x->slots[every_slot ? i : cand[i]];
        if (slot_matches(sl, q))
            snprintf(out[n++], STORE_ID_MAX, "%s", sl->id);
    }
    pthread_rwlock_unlock(&x->lock);
    free(q);
    *ids = out;
    return n;
}

static void add_posting_bytes(void *ctx, void *obj)
{
    const posting_t *p = obj;
    *(size_t *)ctx += sizeof(*p) + p->cap * sizeof(*p->slots) + sizeof(void *);
}

size_t store__names_bytes(user_names_t *x)
{
    pthread_rwlock_rdlock(&x->lock);
    size_t b = x->cap_slots * sizeof(*x->slots) + x->by_id.cap * sizeof(*x->by_id.slots);
    for (size_t i = 0; i < x->n_slots; i++)
        if (!x->slots[i].dead)
            b += x->slots[i].len + strlen(x->slots[i].id) + 1; /* its text, by_id's key */
    for (size_t i = 0; i < x->grams.cap; i++)
        if (x->grams.slots[i])
            add_posting_bytes(&b, x->grams.slots[i]);
    pthread_rwlock_unlock(&x->lock);
    return b;
}
