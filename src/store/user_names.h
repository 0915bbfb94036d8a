/*
 * The index of user search by name (user_names.c): users whose username or
 * display name contains a string, ASCII case-insensitively. Thread-safe:
 * one rwlock of its own, a leaf. Not for use outside src/store/.
 */
#ifndef PARLEY_STORE_USER_NAMES_H
#define PARLEY_STORE_USER_NAMES_H

#include <stddef.h>

#include "parley/store.h"

typedef struct user_names user_names_t;

user_names_t *store__names_new(void);
/* Frees the index; NULL is a no-op. */
void store__names_free(user_names_t *x);
/* Empties the index (the store's tables are being reloaded). */
void store__names_clear(user_names_t *x);
/* The names of user `id` are now these (display may be NULL); username
 * NULL removes the user from the index (deleted). O(1) when nothing
 * changed; a change costs a merge now and then (amortised O(1)). */
void store__names_set(user_names_t *x, const char *id, const char *username,
                      const char *display);
/* The ids of the users whose username or display name contains `query`
 * (non-empty), each once, in no particular order: a malloc'd array in *ids
 * (caller frees; never NULL) and the count. O(log n + matches). */
size_t store__names_find(user_names_t *x, const char *query, char (**ids)[STORE_ID_MAX]);
/* Bytes the index holds (for tests and benchmarks). */
size_t store__names_bytes(user_names_t *x);

#endif
