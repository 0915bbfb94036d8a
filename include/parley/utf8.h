/* Strict UTF-8 (src/util/utf8.c): shortest forms only, no surrogates,
 * nothing above U+10FFFF, which is what jansson accepts in a string. */
#ifndef PARLEY_UTF8_H
#define PARLEY_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1-4) of the UTF-8 sequence at p, which has `avail` bytes; 0 when
 * none starts there (or it is cut off). */
size_t utf8_sequence(const unsigned char *p, size_t avail);

/* s[0..len) is UTF-8 throughout (NUL bytes are not refused here). */
bool utf8_valid(const char *s, size_t len);

#endif
