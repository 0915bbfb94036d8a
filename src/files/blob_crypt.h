/* Encrypted blobs' format (src/files/blob_crypt.c); private to src/files. */
#ifndef PARLEY_BLOB_CRYPT_H
#define PARLEY_BLOB_CRYPT_H

#include <gnutls/crypto.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOB_CRYPT_HEADER 96
#define BLOB_CRYPT_CHUNK 65536u
#define BLOB_CRYPT_TAG 16
#define BLOB_CRYPT_KEY 32
#define BLOB_CRYPT_KEY_ID 8

/* Bytes on disk of an encrypted blob of `plain` bytes. */
uint64_t blobs__crypt_stored_size(uint64_t plain);

/* A fresh random data key and its cipher. 0 or -1. */
int blobs__crypt_new_data_key(uint8_t data_key[BLOB_CRYPT_KEY], gnutls_aead_cipher_hd_t *h);

/* The header of a finished blob: the data key wrapped under the blob key
 * HKDF(master, sha256, "parley blob v1"). 0 or -1. */
int blobs__crypt_header(const uint8_t master[BLOB_CRYPT_KEY],
                        const uint8_t key_id[BLOB_CRYPT_KEY_ID], const uint8_t sha[32],
                        uint64_t plain, const uint8_t data_key[BLOB_CRYPT_KEY],
                        uint8_t out[BLOB_CRYPT_HEADER]);

/* Opens a header: checks magic and key id, unwraps the data key into a
 * cipher. Returns 0, 1 when it names another key, -1 when damaged. */
int blobs__crypt_open_header(const uint8_t master[BLOB_CRYPT_KEY],
                             const uint8_t key_id[BLOB_CRYPT_KEY_ID], const uint8_t sha[32],
                             const uint8_t hdr[BLOB_CRYPT_HEADER], uint64_t *plain,
                             gnutls_aead_cipher_hd_t *h, uint8_t data_key_out[BLOB_CRYPT_KEY]);

/* Chunk i of a blob (`last`: the final one): len plain bytes <-> len + 16. */
int blobs__crypt_seal_chunk(gnutls_aead_cipher_hd_t h, uint64_t i, bool last, const uint8_t *plain,
                            size_t len, uint8_t *out);
int blobs__crypt_open_chunk(gnutls_aead_cipher_hd_t h, uint64_t i, bool last, const uint8_t *in,
                            size_t len, uint8_t *out);

/* Offset of chunk i in the file, and the number of chunks of a blob. */
uint64_t blobs__crypt_chunk_offset(uint64_t i);
uint64_t blobs__crypt_chunks(uint64_t plain);

#endif
