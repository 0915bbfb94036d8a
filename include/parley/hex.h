/* Hexadecimal digits (src/util/hex.c). */
#ifndef PARLEY_HEX_H
#define PARLEY_HEX_H

/* The value of one hex digit (either case), or -1. */
int hex_digit(char c);

#endif
