/*
 * A growable, NUL-terminated text buffer, the one the history pages are
 * spliced together in (src/access/views.c, src/access/view_cache.c): appends double
 * the capacity from 4 KiB, so a page of n texts costs O(log n) reallocs.
 * Growing is a try-allocation with a sticky `failed` flag rather than an
 * abort, because the size follows what a client asked for.
 */
#include "parley/text_buf.h"

#include <stdlib.h>
#include <string.h>

bool text_buf_reserve(text_buf_t *b, size_t total)
{
    if (b->failed)
        return false;
    if (total + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < total + 1)
        cap *= 2;
    char *p = realloc(b->data, cap); /* try-allocation: see text_buf.h */
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

bool text_buf_append(text_buf_t *b, const char *s, size_t n)
{
    if (!text_buf_reserve(b, b->len + n))
        return false;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool text_buf_puts(text_buf_t *b, const char *s)
{
    return text_buf_append(b, s, strlen(s));
}
