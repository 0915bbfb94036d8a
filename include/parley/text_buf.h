/* A growable text buffer (src/util/text_buf.c). */
#ifndef PARLEY_TEXT_BUF_H
#define PARLEY_TEXT_BUF_H

#include <stdbool.h>
#include <stddef.h>

/* A growable text, always NUL-terminated once anything was appended. Start
 * from `text_buf_t b = {0}`; the caller frees b.data (or hands it on).
 *
 * Growing is a try-allocation (include/parley/xalloc.h): the texts are
 * answers whose size follows what a client asked for, so running out of
 * memory fails the answer, not the server. After an allocation failure
 * `failed` stays set and appends do nothing, so a caller may append a
 * whole text and check `failed` (or the last result) once at the end.
 *
 * Not thread-safe: one buffer, one thread at a time. */
typedef struct text_buf {
    char *data; /* malloc'd; the caller frees (or hands it on) */
    size_t len, cap;
    bool failed;
} text_buf_t;

/* Makes room for `total` bytes of text in all (plus the NUL). false: the
 * buffer has failed (now or before). */
bool text_buf_reserve(text_buf_t *b, size_t total);
/* Appends s[0..n) / the string s. false: the buffer has failed. */
bool text_buf_append(text_buf_t *b, const char *s, size_t n);
bool text_buf_puts(text_buf_t *b, const char *s);

#endif
