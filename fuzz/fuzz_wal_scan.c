/*
 * libFuzzer harness: the reader of one write-ahead-log file, wal_scan_image(),
 * which is the same code (wal__scan) that recovery, `wal check` and `wal
 * inspect` run on every segment and snapshot. The first byte picks the kind
 * (bit 0: snapshot, else segment) and whether it is read with a fixed key
 * (bit 1: the sealed path, AES-256-GCM frames); the rest is the whole file
 * image. Seeds
 * are real files written by the library (scripts/make-wal-seeds.sh), so the
 * fuzzer starts from valid headers, checksums and zstd streams. Any crash,
 * leak or undefined behaviour is a finding, and so is an answer other than
 * the four the API names.
 */
#include <stdint.h>
#include <stdlib.h>

#include "wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint8_t key[WAL_KEY_BYTES] = "parley fuzz key";
    bool snapshot = data[0] & 1;
    int rc = wal_scan_image_key(data + 1, size - 1, snapshot, data[0] & 2 ? key : NULL);
    if (rc != 0 && rc != WAL_E_CORRUPT && rc != WAL_E_VERSION && rc != WAL_E_KEY)
        abort();
    return 0;
}
