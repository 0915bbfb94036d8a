/*
 * The sharded hash map. A key picks its shard by hash; each shard is a
 * chained table that doubles when it holds more entries than buckets, so a
 * lookup costs one hash, one read lock and a short chain, and writers to
 * different shards never wait for each other. Hashing is FNV-1a with a final
 * mix (keys are short ids and lower-cased names; no attacker chooses a key
 * that lands in a chosen bucket of a secret-free hash cheaply enough to
 * matter at these sizes, and shards bound the damage).
 */
#include "map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/xalloc.h"

void map_init(map_t *m, void (*free_value)(void *value))
{
    memset(m, 0, sizeof(*m));
    m->free_value = free_value;
    for (size_t i = 0; i < MAP_SHARDS; i++)
        pthread_rwlock_init(&m->shards[i].lock, NULL);
}

static void free_chain(map_t *m, map_shard_t *sh)
{
    for (size_t b = 0; b < sh->n_buckets; b++) {
        map_entry_t *e = sh->buckets[b];
        while (e) {
            map_entry_t *next = e->next;
            if (m->free_value)
                m->free_value(e->value);
            free(e);
            e = next;
        }
        sh->buckets[b] = NULL;
    }
    sh->count = 0;
}

void map_deinit(map_t *m)
{
    for (size_t i = 0; i < MAP_SHARDS; i++) {
        free_chain(m, &m->shards[i]);
        free(m->shards[i].buckets);
        pthread_rwlock_destroy(&m->shards[i].lock);
    }
}

uint64_t map_hash(const char *key)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

map_shard_t *map_shard_of(map_t *m, uint64_t hash)
{
    return &m->shards[hash % MAP_SHARDS];
}

void *map_find_locked(map_shard_t *sh, uint64_t hash, const char *key)
{
    if (sh->n_buckets == 0)
        return NULL;
    for (map_entry_t *e = sh->buckets[(hash >> 8) % sh->n_buckets]; e; e = e->next)
        if (e->hash == hash && strcmp(e->key, key) == 0)
            return e->value;
    return NULL;
}

static void grow(map_shard_t *sh)
{
    size_t n = sh->n_buckets ? sh->n_buckets * 2 : 16;
    map_entry_t **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < sh->n_buckets; i++) {
        map_entry_t *e = sh->buckets[i];
        while (e) {
            map_entry_t *next = e->next;
            size_t at = (e->hash >> 8) % n;
            e->next = b[at];
            b[at] = e;
            e = next;
        }
    }
    free(sh->buckets);
    sh->buckets = b;
    sh->n_buckets = n;
}

void *map_put_locked(map_shard_t *sh, uint64_t hash, const char *key, void *value)
{
    if (sh->n_buckets) {
        for (map_entry_t *e = sh->buckets[(hash >> 8) % sh->n_buckets]; e; e = e->next) {
            if (e->hash == hash && strcmp(e->key, key) == 0) {
                void *old = e->value;
                e->value = value;
                return old;
            }
        }
    }
    if (sh->count >= sh->n_buckets)
        grow(sh);
    size_t len = strlen(key);
    map_entry_t *e = xmalloc(sizeof(*e) + len + 1);
    e->hash = hash;
    e->value = value;
    memcpy(e->key, key, len + 1);
    size_t at = (hash >> 8) % sh->n_buckets;
    e->next = sh->buckets[at];
    sh->buckets[at] = e;
    sh->count++;
    return NULL;
}

void *map_remove_locked(map_shard_t *sh, uint64_t hash, const char *key)
{
    if (sh->n_buckets == 0)
        return NULL;
    map_entry_t **p = &sh->buckets[(hash >> 8) % sh->n_buckets];
    for (; *p; p = &(*p)->next) {
        map_entry_t *e = *p;
        if (e->hash == hash && strcmp(e->key, key) == 0) {
            void *value = e->value;
            *p = e->next;
            free(e);
            sh->count--;
            return value;
        }
    }
    return NULL;
}

bool map_get_field(map_t *m, const char *key, size_t offset, void *out, size_t size)
{
    uint64_t h = map_hash(key);
    map_shard_t *sh = map_shard_of(m, h);
    pthread_rwlock_rdlock(&sh->lock);
    const char *v = map_find_locked(sh, h, key);
    if (v)
        memcpy(out, v + offset, size);
    pthread_rwlock_unlock(&sh->lock);
    return v != NULL;
}

bool map_get_copy(map_t *m, const char *key, void *out, size_t size)
{
    return map_get_field(m, key, 0, out, size);
}

bool map_index_get(map_t *m, const char *key, char *id_out, size_t id_size)
{
    uint64_t h = map_hash(key);
    map_shard_t *sh = map_shard_of(m, h);
    pthread_rwlock_rdlock(&sh->lock);
    const char *id = map_find_locked(sh, h, key);
    if (id)
        snprintf(id_out, id_size, "%s", id);
    pthread_rwlock_unlock(&sh->lock);
    return id != NULL;
}

void map_index_set(map_t *m, const char *key, const char *id)
{
    uint64_t h = map_hash(key);
    map_shard_t *sh = map_shard_of(m, h);
    char *copy = xstrdup(id);
    pthread_rwlock_wrlock(&sh->lock);
    free(map_put_locked(sh, h, key, copy));
    pthread_rwlock_unlock(&sh->lock);
}

void map_index_unset(map_t *m, const char *key, const char *id)
{
    uint64_t h = map_hash(key);
    map_shard_t *sh = map_shard_of(m, h);
    pthread_rwlock_wrlock(&sh->lock);
    const char *cur = map_find_locked(sh, h, key);
    if (cur && strcmp(cur, id) == 0)
        free(map_remove_locked(sh, h, key));
    pthread_rwlock_unlock(&sh->lock);
}

void map_clear(map_t *m)
{
    for (size_t i = 0; i < MAP_SHARDS; i++) {
        pthread_rwlock_wrlock(&m->shards[i].lock);
        free_chain(m, &m->shards[i]);
        pthread_rwlock_unlock(&m->shards[i].lock);
    }
}

size_t map_count(map_t *m)
{
    size_t n = 0;
    for (size_t i = 0; i < MAP_SHARDS; i++) {
        pthread_rwlock_rdlock(&m->shards[i].lock);
        n += m->shards[i].count;
        pthread_rwlock_unlock(&m->shards[i].lock);
    }
    return n;
}

void map_each(map_t *m, bool (*fn)(void *ctx, const char *key, void *value), void *ctx)
{
    for (size_t i = 0; i < MAP_SHARDS; i++) {
        map_shard_t *sh = &m->shards[i];
        pthread_rwlock_rdlock(&sh->lock);
        bool go = true;
        for (size_t b = 0; go && b < sh->n_buckets; b++)
            for (map_entry_t *e = sh->buckets[b]; go && e; e = e->next)
                go = fn(ctx, e->key, e->value);
        pthread_rwlock_unlock(&sh->lock);
        if (!go)
            return;
    }
}
