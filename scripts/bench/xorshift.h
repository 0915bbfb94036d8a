/*
 * The benchmarks' pseudo-random numbers: xorshift64, repeatable from a
 * fixed seed (scripts/bench/ipblock_bench.c, seed_width.c).
 */
#ifndef PARLEY_BENCH_XORSHIFT_H
#define PARLEY_BENCH_XORSHIFT_H

#include <stdint.h>

/* The next number of the sequence; *state is its non-zero state. */
static inline uint64_t bench_xorshift(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

#endif
