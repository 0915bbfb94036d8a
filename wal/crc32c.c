/*
 * CRC32C (the Castagnoli polynomial, as in iSCSI, ext4 and LevelDB), which
 * the log uses to checksum every header and payload. No Debian library
 * offers it to C programs, so it lives here: the SSE4.2 crc32 instruction
 * when the CPU has it (chosen once, at first use), otherwise a table.
 */
#include <stdint.h>
#include <string.h>

#include "wal_format.h"

#define POLY 0x82f63b78u /* reflected Castagnoli polynomial */

static uint32_t table[8][256];

static void build_table(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++)
            table[k][n] = (table[k - 1][n] >> 8) ^ table[0][table[k - 1][n] & 0xff];
}

/* Slicing-by-8, eight bytes per step. */
static uint32_t crc_table(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc; /* little-endian: the low four bytes take the CRC */
        crc = table[7][v & 0xff] ^ table[6][(v >> 8) & 0xff] ^ table[5][(v >> 16) & 0xff] ^
              table[4][(v >> 24) & 0xff] ^ table[3][(v >> 32) & 0xff] ^
              table[2][(v >> 40) & 0xff] ^ table[1][(v >> 48) & 0xff] ^ table[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const uint8_t *p,
                                                           size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

typedef uint32_t (*crc_fn)(uint32_t, const uint8_t *, size_t);

static crc_fn choose(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        return crc_sse42;
#endif
    return crc_table;
}

static crc_fn impl;

__attribute__((constructor)) static void crc32c_init(void)
{
    build_table();
    impl = choose();
}

uint32_t wal__crc32c(uint32_t crc, const void *data, size_t len)
{
    return ~impl(~crc, (const uint8_t *)data, len);
}

/* For tests: the table path regardless of the CPU. */
uint32_t wal__crc32c_portable(uint32_t crc, const void *data, size_t len);
uint32_t wal__crc32c_portable(uint32_t crc, const void *data, size_t len)
{
    return ~crc_table(~crc, (const uint8_t *)data, len);
}
