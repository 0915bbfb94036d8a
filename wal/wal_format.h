/*
 * The byte format of wal/ files: private to the library, described for
 * people in docs/wal-format.md (which must match this header).
 *
 * Every integer is little-endian. A file (log segment or snapshot) is a
 * 32-byte file header followed by frames; a frame is a 32-byte frame header
 * followed by `stored_len` payload bytes. A frame's payload, once
 * decompressed, is `count` records, each an 8-byte record header and `len`
 * data bytes.
 */
#ifndef WAL_FORMAT_H
#define WAL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- file header (32 bytes) ----
 *   0  8  magic: "PRLYWAL\0" (segment) or "PRLYSNP\0" (snapshot)
 *   8  4  format version (WAL_FORMAT_VERSION)
 *  12  4  flags: bit 0 WALF_FILE_UNSYNCED (segments written under the
 *           fsync policies batch or none, whose frames were not each synced
 *           before the next was written)
 *  16  8  base LSN: a segment's first LSN; a snapshot's LSN
 *  24  4  zero
 *  28  4  masked CRC32C of bytes 0-27
 */
#define WALF_FILE_HEADER 32
#define WALF_MAGIC_SEGMENT "PRLYWAL"
#define WALF_MAGIC_SNAPSHOT "PRLYSNP"
#define WALF_FILE_UNSYNCED 0x1u
#define WALF_FILE_SEALED 0x2u /* a seal block follows; every frame is AES-256-GCM sealed */

/* ---- seal block (32 bytes), at offset 32 of a sealed file ----
 *   0 16  salt: random, made when the file is created; the file's key is
 *           HKDF-SHA256(master key, salt, "parley wal segment v1" or
 *           "parley wal snapshot v1")
 *  16  8  key id: the first 8 bytes of the master key's id (wal_key_id)
 *  24  4  zero
 *  28  4  masked CRC32C of bytes 0-27 of the block
 * Frames of a sealed file start at offset 64.
 */
#define WALF_SEAL_BLOCK 32
#define WALF_SALT_BYTES 16
#define WALF_FILE_KEY_ID 8
#define WALF_SEALED_HEADER (WALF_FILE_HEADER + WALF_SEAL_BLOCK)
#define WALF_TAG_BYTES 16

/* ---- frame header (32 bytes) ----
 *   0  4  masked CRC32C of bytes 4-31 of this header and the stored payload
 *   4  4  stored_len: payload bytes as stored
 *   8  8  first LSN of the frame's records (segments); 0 in snapshots
 *  16  4  count: records in the frame (0 for an end frame)
 *  20  4  raw_len: payload bytes after decompression
 *  24  1  kind: WALF_KIND_RECORDS or WALF_KIND_SNAPSHOT_END
 *  25  1  flags: bit 0 WALF_FLAG_ZSTD, bit 1 WALF_FLAG_SEALED (every frame of
 *           a sealed file; the stored payload is then ciphertext + tag)
 *  26  6  zero
 * An all-zero frame header marks the end of the data (a preallocated tail).
 */
#define WALF_FRAME_HEADER 32
#define WALF_KIND_RECORDS 1
#define WALF_KIND_SNAPSHOT_END 2 /* payload: u64 record count, u64 snapshot LSN */
#define WALF_FLAG_ZSTD 0x01      /* the payload is the next piece of the file's zstd stream */
#define WALF_FLAG_SEALED 0x02    /* the payload is AES-256-GCM ciphertext + 16-byte tag */
#define WALF_END_PAYLOAD 16

/* ---- record header (8 bytes), inside a decompressed payload ----
 *   0  4  len: data bytes (at most WAL_RECORD_MAX)
 *   4  1  type (1-255; 0 is invalid)
 *   5  3  zero
 */
#define WALF_RECORD_HEADER 8

/* A frame holds at most this much raw payload, except that one record larger
 * than it gets a frame of its own. */
#define WALF_FRAME_TARGET (1u << 20)
#define WALF_FRAME_RAW_MAX ((16u << 20) + WALF_RECORD_HEADER)
/* Stored bytes can exceed raw bytes a little (zstd block headers). */
#define WALF_FRAME_STORED_MAX \
    (WALF_FRAME_RAW_MAX + (WALF_FRAME_RAW_MAX >> 7) + 4096 + WALF_TAG_BYTES)

static inline void wal__put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void wal__put64(uint8_t *p, uint64_t v)
{
    wal__put32(p, (uint32_t)v);
    wal__put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t wal__get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t wal__get64(const uint8_t *p)
{
    return (uint64_t)wal__get32(p) | (uint64_t)wal__get32(p + 4) << 32;
}

/* CRC32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2. */
uint32_t wal__crc32c(uint32_t crc, const void *data, size_t len);

/* LevelDB's mask: a CRC stored in data that is itself checksummed must not
 * be the raw CRC of that data. */
static inline uint32_t wal__mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

typedef struct walf_frame {
    uint32_t stored_len;
    uint64_t first_lsn;
    uint32_t count;
    uint32_t raw_len;
    uint8_t kind;
    uint8_t flags;
} walf_frame_t;

/* Encodes a file header into out[32]; wal__file_header() has flags 0. */
void wal__file_header(uint8_t *out, bool snapshot, uint64_t base_lsn);
void wal__file_header_flags(uint8_t *out, bool snapshot, uint64_t base_lsn, uint32_t flags);

/* Encodes a frame header into out[32]; the payload must follow it in memory
 * (out + 32), as the CRC covers it. */
void wal__frame_header(uint8_t *out, const walf_frame_t *f);
/* The same in two steps: the fields (bytes 4-31), then the CRC once the
 * payload is in place (a sealed payload depends on the fields). */
void wal__frame_fields(uint8_t *out, const walf_frame_t *f);
void wal__frame_crc(uint8_t *out);

#endif
