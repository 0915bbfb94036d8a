/* Hexadecimal digits (src/util/hex.c). */
#ifndef PARLEY_HEX_H
#define PARLEY_HEX_H

#include <stddef.h>

/* The value of one hex digit (either case), or -1. */
int hex_digit(char c);

/* Writes the 2*n lowercase hex digits of in[0..n) and a NUL to out, which
 * holds 2*n + 1 bytes. */
void hex_encode(const unsigned char *in, size_t n, char *out);

/* Decodes the 2*n hex digits (either case) at `in` into out[0..n).
 * Returns 0, or -1 when one of them is not a hex digit (out untouched). */
int hex_decode(const char *in, size_t n, unsigned char *out);

#endif
