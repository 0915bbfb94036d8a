/* A bounded cache of rendered JSON views (view_cache.c). The pages they are
 * copied into are text buffers (parley/text_buf.h). */
#ifndef PARLEY_VIEW_CACHE_H
#define PARLEY_VIEW_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/text_buf.h"

typedef struct view_cache view_cache_t;

typedef struct view_cache_stats {
    uint64_t hits, misses;
    size_t entries, bytes;
} view_cache_stats_t;

/* A cache holding at most `budget` bytes of text. NULL when budget is 0:
 * every function accepts a NULL cache and then caches nothing. */
view_cache_t *view_cache_new(size_t budget);
void view_cache_free(view_cache_t *c);

/* Appends the text cached under `key` to out when it was stored with this
 * very `stamp`; false (out untouched) when absent or stored with another. */
bool view_cache_append(view_cache_t *c, uint64_t key, uint64_t stamp, text_buf_t *out);

/* Stores a copy of text under key, replacing what the key's slot held.
 * Texts too big for the budget are not kept. */
void view_cache_put(view_cache_t *c, uint64_t key, uint64_t stamp, const char *text,
                    size_t len);

void view_cache_get_stats(view_cache_t *c, view_cache_stats_t *out);

/* 64-bit mixing of the words a stamp or a key is made of (splitmix64's
 * finaliser over the running value xor the next word). */
uint64_t view_hash_word(uint64_t h, uint64_t word);
uint64_t view_hash_text(uint64_t h, const char *s);

#endif
