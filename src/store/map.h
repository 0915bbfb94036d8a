/*
 * A string-keyed hash map split into shards, each with its own rwlock: the
 * building block of the store's tables and indexes. Values are owned by the
 * map and freed through its `free_value` function.
 */
#ifndef PARLEY_STORE_MAP_H
#define PARLEY_STORE_MAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAP_SHARDS 64

typedef struct map_entry {
    struct map_entry *next;
    uint64_t hash;
    void *value;
    char key[]; /* NUL-terminated */
} map_entry_t;

typedef struct map_shard {
    pthread_rwlock_t lock;
    map_entry_t **buckets; /* guarded by lock */
    size_t n_buckets;
    size_t count;
} map_shard_t;

typedef struct map {
    map_shard_t shards[MAP_SHARDS];
    void (*free_value)(void *value);
} map_t;

void map_init(map_t *m, void (*free_value)(void *value));
void map_deinit(map_t *m);

uint64_t map_hash(const char *key);
map_shard_t *map_shard_of(map_t *m, uint64_t hash);

/* Lookup inside a shard. REQUIRES: the shard's lock held (read or write). */
void *map_find_locked(map_shard_t *sh, uint64_t hash, const char *key);

/*
 * Sets key -> value; the map owns value from now on. Returns the value it
 * replaces (the caller owns it now), or NULL. REQUIRES: the shard's write
 * lock held.
 */
void *map_put_locked(map_shard_t *sh, uint64_t hash, const char *key, void *value);

/* Removes key and returns its value (the caller owns it), or NULL when
 * absent. REQUIRES: the shard's write lock held. */
void *map_remove_locked(map_shard_t *sh, uint64_t hash, const char *key);

/* Copies `size` bytes of key's value into out under the shard's read lock
 * (for values that are plain structs). False when absent. */
bool map_get_copy(map_t *m, const char *key, void *out, size_t size);
/* The same for `size` bytes at `offset` in the value (one field). */
bool map_get_field(map_t *m, const char *key, size_t offset, void *out, size_t size);

/* Index maps (key -> id string, the map owning its copies). */

/* Copies the id of key into id_out (id_size bytes); false when absent. */
bool map_index_get(map_t *m, const char *key, char *id_out, size_t id_size);
/* Sets key -> a copy of id. */
void map_index_set(map_t *m, const char *key, const char *id);
/* Removes key only while it still points at id. */
void map_index_unset(map_t *m, const char *key, const char *id);

/* Removes everything. Takes every shard's write lock in order. */
void map_clear(map_t *m);

/* Total number of entries (a moment's sum over the shards). */
size_t map_count(map_t *m);

/*
 * Calls fn for every entry, shard by shard, each shard under its read lock.
 * fn returns false to stop. fn must not take this map's locks.
 */
void map_each(map_t *m, bool (*fn)(void *ctx, const char *key, void *value), void *ctx);

#endif
