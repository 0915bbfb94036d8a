/* Allocations that cannot fail (src/util/xalloc.c). */
#ifndef PARLEY_XALLOC_H
#define PARLEY_XALLOC_H

#include <stddef.h>

/*
 * Internal allocations use these: sizes the server chose itself or bounded
 * by validation (a record, a table slot, a list of at most `limit` items).
 * When memory runs out they print one line on stderr, naming the function
 * and the bytes asked for, and abort(): there is no sensible way on (Redis
 * zmalloc, h2o "or dies if impossible"; STYLE.md section 3).
 *
 * They never return NULL, also not for a size of 0 (a zero size asks for
 * one byte), so `xrealloc(p, 0)` does not free p. The results are freed
 * with free().
 *
 * Try-allocations stay with plain malloc/calloc/realloc and a NULL check:
 * sizes a client chose and large buffers where running out is answered
 * with 413 or 503 rather than a crash. They live in functions named
 * `*_try`, or are commented as a try-allocation at the call.
 *
 * Thread safety: as malloc.
 */

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* realloc of n * size bytes; an overflowing product aborts as well. */
void *xreallocarray(void *p, size_t n, size_t size);
/* Copies of a NUL-terminated string, of at most n bytes of one (plus the
 * NUL), and of n bytes of anything. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);

#endif
