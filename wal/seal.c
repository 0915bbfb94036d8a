/*
 * Sealing: AES-256-GCM (GnuTLS) over every frame of a segment or snapshot
 * when the log is opened with a key.
 *
 * Why a key per file and the offset as nonce: GCM must never see one
 * (key, nonce) pair with two plaintexts. Each sealed file gets 16 random
 * bytes (its salt, in the seal block after the file header) when it is
 * created, and its own key HKDF-SHA256(master, salt, "parley wal ...").
 * The nonce of a frame is its byte offset in that file. Within one file an
 * offset holds one frame only: a segment is written by one process and
 * never appended to by another (every open makes a new file, with a new
 * salt, even where it replaces an empty segment of the same name); a
 * frame rewritten after ENOSPC is the same bytes, already sealed; a cut
 * tail (torn, repaired) is never written again under that salt. So no
 * counter needs to survive a crash, and a rewritten name cannot reuse a
 * nonce: it has another salt, hence another key.
 *
 * The associated data is the file's 64 header bytes and bytes 4-31 of the
 * frame's header: a frame cannot move to another file or offset (nonce and
 * key change), nor have its length, LSN, count or kind changed. The CRC is
 * still checked first (it tells a torn write from tampering); a frame whose
 * CRC holds but whose tag does not is corruption or the wrong key.
 *
 * When the key is NULL none of this runs: plain files are today's format.
 */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>

#include "wal_internal.h"

static int hkdf(const uint8_t key[WAL_KEY_BYTES], const uint8_t *salt, size_t salt_len,
                const char *info, uint8_t *out, size_t out_len)
{
    uint8_t prk[32];
    gnutls_datum_t ikm = {(unsigned char *)key, WAL_KEY_BYTES};
    gnutls_datum_t s = {(unsigned char *)salt, (unsigned)salt_len};
    if (gnutls_hkdf_extract(GNUTLS_MAC_SHA256, &ikm, &s, prk) != 0)
        return WAL_E_KEY;
    gnutls_datum_t p = {prk, sizeof(prk)};
    gnutls_datum_t i = {(unsigned char *)info, (unsigned)strlen(info)};
    int rc = gnutls_hkdf_expand(GNUTLS_MAC_SHA256, &p, &i, out, out_len);
    gnutls_memset(prk, 0, sizeof(prk));
    return rc == 0 ? 0 : WAL_E_KEY;
}

void wal_key_id(const uint8_t key[WAL_KEY_BYTES], uint8_t out[WAL_KEY_ID_BYTES])
{
    static const uint8_t no_salt[1] = {0};
    if (hkdf(key, no_salt, 0, "parley key id v1", out, WAL_KEY_ID_BYTES) != 0)
        memset(out, 0, WAL_KEY_ID_BYTES);
}

void wal__seal_block(uint8_t *header, const uint8_t key[WAL_KEY_BYTES])
{
    uint8_t *b = header + WALF_FILE_HEADER;
    memset(b, 0, WALF_SEAL_BLOCK);
    if (gnutls_rnd(GNUTLS_RND_NONCE, b, WALF_SALT_BYTES) != 0)
        abort(); /* no randomness: nothing safe can be written */
    uint8_t id[WAL_KEY_ID_BYTES];
    wal_key_id(key, id);
    memcpy(b + WALF_SALT_BYTES, id, WALF_FILE_KEY_ID);
    wal__put32(b + 28, wal__mask(wal__crc32c(0, b, 28)));
}

bool wal__seal_block_ok(const uint8_t *header)
{
    const uint8_t *b = header + WALF_FILE_HEADER;
    for (int i = WALF_SALT_BYTES + WALF_FILE_KEY_ID; i < 28; i++)
        if (b[i])
            return false;
    return wal__mask(wal__crc32c(0, b, 28)) == wal__get32(b + 28);
}

bool wal__seal_key_matches(const uint8_t *header, const uint8_t key[WAL_KEY_BYTES])
{
    uint8_t id[WAL_KEY_ID_BYTES];
    wal_key_id(key, id);
    return memcmp(header + WALF_FILE_HEADER + WALF_SALT_BYTES, id, WALF_FILE_KEY_ID) == 0;
}

int wal__seal_open(walf_seal_t *s, const uint8_t key[WAL_KEY_BYTES], const uint8_t *header,
                   bool snapshot)
{
    memset(s, 0, sizeof(*s));
    uint8_t fk[WAL_KEY_BYTES];
    int rc = hkdf(key, header + WALF_FILE_HEADER, WALF_SALT_BYTES,
                  snapshot ? "parley wal snapshot v1" : "parley wal segment v1", fk, sizeof(fk));
    if (rc != 0)
        return rc;
    gnutls_datum_t k = {fk, sizeof(fk)};
    gnutls_aead_cipher_hd_t h;
    rc = gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_256_GCM, &k);
    gnutls_memset(fk, 0, sizeof(fk));
    if (rc != 0)
        return WAL_E_KEY;
    s->h = h;
    memcpy(s->aad, header, WALF_SEALED_HEADER);
    return 0;
}

void wal__seal_close(walf_seal_t *s)
{
    if (s->h)
        gnutls_aead_cipher_deinit((gnutls_aead_cipher_hd_t)s->h);
    s->h = NULL;
}

static void nonce_of(uint8_t nonce[12], uint64_t offset)
{
    wal__put64(nonce, offset);
    wal__put32(nonce + 8, 0);
}

static void aad_of(const walf_seal_t *s, const uint8_t *frame_header, uint8_t *aad)
{
    memcpy(aad, s->aad, WALF_SEALED_HEADER);
    memcpy(aad + WALF_SEALED_HEADER, frame_header + 4, WALF_FRAME_HEADER - 4);
}

int wal__seal_encrypt(const walf_seal_t *s, uint64_t offset, const uint8_t *frame_header,
                      const uint8_t *plain, size_t len, uint8_t *out)
{
    uint8_t nonce[12], aad[WALF_SEALED_HEADER + WALF_FRAME_HEADER];
    nonce_of(nonce, offset);
    aad_of(s, frame_header, aad);
    size_t out_len = len + WALF_TAG_BYTES;
    int rc = gnutls_aead_cipher_encrypt((gnutls_aead_cipher_hd_t)s->h, nonce, sizeof(nonce), aad,
                                        WALF_SEALED_HEADER + WALF_FRAME_HEADER - 4,
                                        WALF_TAG_BYTES, plain, len, out, &out_len);
    return rc == 0 && out_len == len + WALF_TAG_BYTES ? 0 : WAL_E_KEY;
}

bool wal__seal_decrypt(const walf_seal_t *s, uint64_t offset, const uint8_t *frame_header,
                       const uint8_t *sealed, size_t len, uint8_t *out)
{
    if (len < WALF_TAG_BYTES)
        return false;
    uint8_t nonce[12], aad[WALF_SEALED_HEADER + WALF_FRAME_HEADER];
    nonce_of(nonce, offset);
    aad_of(s, frame_header, aad);
    size_t out_len = len - WALF_TAG_BYTES;
    uint8_t dummy;
    int rc = gnutls_aead_cipher_decrypt((gnutls_aead_cipher_hd_t)s->h, nonce, sizeof(nonce), aad,
                                        WALF_SEALED_HEADER + WALF_FRAME_HEADER - 4,
                                        WALF_TAG_BYTES, sealed, len, out_len ? out : &dummy,
                                        &out_len);
    return rc == 0 && out_len == len - WALF_TAG_BYTES;
}
