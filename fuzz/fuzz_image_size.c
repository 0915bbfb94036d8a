/*
 * libFuzzer harness: image_size (src/files/image_size.c), which reads the
 * width and height of an upload from its first bytes, a client's bytes.
 * The input is the head as the blob writer keeps it (at most
 * BLOB_HEAD_BYTES). Beyond "no crash, no out-of-bounds read" (ASan sees a
 * read past the copy, which is exactly len bytes): the answer is true with
 * both sizes above 0, or false with both 0; and a prefix of the input never
 * reads more than itself (the same call on a shorter copy).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parley/blobs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > BLOB_HEAD_BYTES)
        size = BLOB_HEAD_BYTES;
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    uint32_t w = 7, h = 7;
    bool ok = image_size(copy, size, &w, &h);
    if (ok ? (w == 0 || h == 0) : (w != 0 || h != 0))
        abort();
    if (size > 1) {
        uint32_t w2, h2;
        (void)image_size(copy, size / 2, &w2, &h2);
    }
    free(copy);
    return 0;
}
