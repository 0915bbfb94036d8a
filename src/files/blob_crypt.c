/*
 * The format of an encrypted blob (a data directory with a key): a 96-byte
 * header, then the content in 64 KiB chunks, each AES-256-GCM sealed.
 *
 *    0  8  magic "PRLYBLB\0"
 *    8  4  version 1
 *   12  4  chunk size (65536)
 *   16  8  plaintext size
 *   24  8  key id (the first 8 bytes of the master key's wal_key_id)
 *   32 12  wrap nonce (random)
 *   44 48  the blob's data key (32 bytes) sealed under the blob key
 *          HKDF-SHA256(master, salt = the content's SHA-256, "parley blob v1"),
 *          with bytes 0-43 as associated data, and its 16-byte tag
 *   92  4  zero
 *   96 ..  chunk i: min(65536, rest) bytes of ciphertext + 16-byte tag;
 *          nonce = u64 i, u32 1 for the last chunk else 0 (so a blob cut
 *          after a whole chunk, or chunks moved, fail); an empty blob has
 *          one empty last chunk.
 *
 * Why a random data key wrapped by the hash-derived key rather than the
 * hash-derived key itself: an upload is streamed, and its hash is known
 * only at the end; with a random data key the temporary file is ciphertext
 * from its first byte and no plaintext ever touches the disk, and the data
 * key is used for one file only (so counting nonces are safe). The blob's
 * name is still the plaintext's SHA-256, so deduplication works as before.
 * A rekey rewraps the 48 bytes of the header and leaves the chunks alone.
 */
#include "blob_crypt.h"

#include <gnutls/gnutls.h>
#include <string.h>

static const char MAGIC[8] = "PRLYBLB";

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t blobs__crypt_chunks(uint64_t plain)
{
    return plain == 0 ? 1 : (plain + BLOB_CRYPT_CHUNK - 1) / BLOB_CRYPT_CHUNK;
}

uint64_t blobs__crypt_stored_size(uint64_t plain)
{
    return BLOB_CRYPT_HEADER + plain + blobs__crypt_chunks(plain) * BLOB_CRYPT_TAG;
}

uint64_t blobs__crypt_chunk_offset(uint64_t i)
{
    return BLOB_CRYPT_HEADER + i * (BLOB_CRYPT_CHUNK + BLOB_CRYPT_TAG);
}

static int cipher(const uint8_t key[BLOB_CRYPT_KEY], gnutls_aead_cipher_hd_t *h)
{
    gnutls_datum_t k = {(unsigned char *)key, BLOB_CRYPT_KEY};
    return gnutls_aead_cipher_init(h, GNUTLS_CIPHER_AES_256_GCM, &k) == 0 ? 0 : -1;
}

int blobs__crypt_new_data_key(uint8_t data_key[BLOB_CRYPT_KEY], gnutls_aead_cipher_hd_t *h)
{
    if (gnutls_rnd(GNUTLS_RND_KEY, data_key, BLOB_CRYPT_KEY) != 0)
        return -1;
    return cipher(data_key, h);
}

static int blob_key(const uint8_t master[BLOB_CRYPT_KEY], const uint8_t sha[32],
                    gnutls_aead_cipher_hd_t *h)
{
    uint8_t prk[32], k[BLOB_CRYPT_KEY];
    gnutls_datum_t ikm = {(unsigned char *)master, BLOB_CRYPT_KEY};
    gnutls_datum_t salt = {(unsigned char *)sha, 32};
    static const char info[] = "parley blob v1";
    gnutls_datum_t inf = {(unsigned char *)info, sizeof(info) - 1};
    int rc = gnutls_hkdf_extract(GNUTLS_MAC_SHA256, &ikm, &salt, prk);
    gnutls_datum_t p = {prk, sizeof(prk)};
    if (rc == 0)
        rc = gnutls_hkdf_expand(GNUTLS_MAC_SHA256, &p, &inf, k, sizeof(k));
    if (rc == 0)
        rc = cipher(k, h);
    gnutls_memset(prk, 0, sizeof(prk));
    gnutls_memset(k, 0, sizeof(k));
    return rc == 0 ? 0 : -1;
}

int blobs__crypt_header(const uint8_t master[BLOB_CRYPT_KEY],
                        const uint8_t key_id[BLOB_CRYPT_KEY_ID], const uint8_t sha[32],
                        uint64_t plain, const uint8_t data_key[BLOB_CRYPT_KEY],
                        uint8_t out[BLOB_CRYPT_HEADER])
{
    memset(out, 0, BLOB_CRYPT_HEADER);
    memcpy(out, MAGIC, 8);
    put32(out + 8, 1);
    put32(out + 12, BLOB_CRYPT_CHUNK);
    put64(out + 16, plain);
    memcpy(out + 24, key_id, BLOB_CRYPT_KEY_ID);
    if (gnutls_rnd(GNUTLS_RND_NONCE, out + 32, 12) != 0)
        return -1;
    gnutls_aead_cipher_hd_t h;
    if (blob_key(master, sha, &h) != 0)
        return -1;
    size_t n = BLOB_CRYPT_KEY + BLOB_CRYPT_TAG;
    int rc = gnutls_aead_cipher_encrypt(h, out + 32, 12, out, 44, BLOB_CRYPT_TAG, data_key,
                                        BLOB_CRYPT_KEY, out + 44, &n);
    gnutls_aead_cipher_deinit(h);
    return rc == 0 ? 0 : -1;
}

int blobs__crypt_open_header(const uint8_t master[BLOB_CRYPT_KEY],
                             const uint8_t key_id[BLOB_CRYPT_KEY_ID], const uint8_t sha[32],
                             const uint8_t hdr[BLOB_CRYPT_HEADER], uint64_t *plain,
                             gnutls_aead_cipher_hd_t *h, uint8_t data_key_out[BLOB_CRYPT_KEY])
{
    if (memcmp(hdr, MAGIC, 8) != 0 || get64(hdr + 8) != ((uint64_t)BLOB_CRYPT_CHUNK << 32 | 1))
        return -1;
    if (memcmp(hdr + 24, key_id, BLOB_CRYPT_KEY_ID) != 0)
        return 1;
    gnutls_aead_cipher_hd_t bk;
    if (blob_key(master, sha, &bk) != 0)
        return -1;
    uint8_t dk[BLOB_CRYPT_KEY];
    size_t n = sizeof(dk);
    int rc = gnutls_aead_cipher_decrypt(bk, hdr + 32, 12, hdr, 44, BLOB_CRYPT_TAG, hdr + 44,
                                        BLOB_CRYPT_KEY + BLOB_CRYPT_TAG, dk, &n);
    gnutls_aead_cipher_deinit(bk);
    if (rc == 0 && h)
        rc = cipher(dk, h);
    if (rc == 0 && data_key_out)
        memcpy(data_key_out, dk, sizeof(dk));
    gnutls_memset(dk, 0, sizeof(dk));
    if (rc != 0)
        return -1;
    *plain = get64(hdr + 16);
    return 0;
}

static void nonce(uint8_t out[12], uint64_t i, bool last)
{
    put64(out, i);
    put32(out + 8, last ? 1 : 0);
}

int blobs__crypt_seal_chunk(gnutls_aead_cipher_hd_t h, uint64_t i, bool last, const uint8_t *plain,
                            size_t len, uint8_t *out)
{
    uint8_t n[12];
    nonce(n, i, last);
    size_t out_len = len + BLOB_CRYPT_TAG;
    return gnutls_aead_cipher_encrypt(h, n, sizeof(n), NULL, 0, BLOB_CRYPT_TAG, plain, len, out,
                                      &out_len) == 0
               ? 0
               : -1;
}

int blobs__crypt_open_chunk(gnutls_aead_cipher_hd_t h, uint64_t i, bool last, const uint8_t *in,
                            size_t len, uint8_t *out)
{
    if (len < BLOB_CRYPT_TAG)
        return -1;
    uint8_t n[12], dummy;
    nonce(n, i, last);
    size_t out_len = len - BLOB_CRYPT_TAG;
    return gnutls_aead_cipher_decrypt(h, n, sizeof(n), NULL, 0, BLOB_CRYPT_TAG, in, len,
                                      out_len ? out : &dummy, &out_len) == 0
               ? 0
               : -1;
}
