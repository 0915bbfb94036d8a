#!/usr/bin/env bash
# Writes the seed corpora of the write-ahead-log fuzz harnesses from files the
# library itself produces, so the seeds carry real headers, checksums and zstd
# streams (hand-made bytes would stop at the first checksum):
#   fuzz/corpus/fuzz_wal_recover/<name>   a segment image
#   fuzz/corpus/fuzz_wal_scan/<name>      selector byte (bit 0 snapshot, bit 1
#                                         sealed), then the file image
# It builds a small C program against build/release/libwal.a, writes a few
# small logs (compressed and not, one batch and many, records of 0 bytes to
# 1 KiB, a snapshot, a header-only segment) and copies them in. Re-run it
# only when the format changes; the seeds are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory build/release/libwal.a >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/gen.c" <<'C'
/* Writes small logs with the library:
 * gen <dir> <compression> <batches> <snapshot> [sealed]; sealed: with the
 * fuzz harness's fixed key (fuzz/fuzz_wal_scan.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wal.h"

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6)
        return 2;
    static const uint8_t key[WAL_KEY_BYTES] = "parley fuzz key";
    wal_options_t o = {.compression_level = atoi(argv[2]), .key = argc == 6 ? key : NULL};
    wal_t *w;
    if (wal_open(argv[1], &o, NULL, &w, NULL) != 0)
        return 1;
    int batches = atoi(argv[3]);
    uint64_t lsn = 0;
    char rec[1100];
    for (int b = 0; b < batches; b++) {
        for (int i = 0; i <= b % 3; i++) {
            int n = snprintf(rec, sizeof(rec),
                             "{\"op\":\"message.put\",\"id\":%d,\"channel_id\":\"ch_%d\","
                             "\"content\":\"hello %d\"}", b * 10 + i, b % 4, b);
            size_t len = (size_t)n;
            if (b == 2 && i == 0)
                len = 0; /* an empty record */
            if (b == 4 && i == 1) {
                memset(rec, 'x', 1024); /* a longer one */
                len = 1024;
            }
            if (wal_append(w, (uint8_t)(1 + (b + i) % 3), rec, len, &lsn) != 0)
                return 1;
        }
        if (wal_wait(w, lsn) != 0) /* one frame per batch */
            return 1;
    }
    if (atoi(argv[4])) {
        wal_snapshot_t *s;
        if (wal_snapshot_begin(w, lsn, &s) != 0)
            return 1;
        for (int i = 0; i < 6; i++) {
            int n = snprintf(rec, sizeof(rec), "{\"channel\":\"ch_%d\",\"messages\":%d}", i, i * 7);
            if (wal_snapshot_add(s, (uint8_t)(1 + i % 2), rec, (size_t)n) != 0)
                return 1;
        }
        if (wal_snapshot_commit(s) != 0)
            return 1;
    }
    return wal_close(w) != 0;
}
C
cc -std=c11 -D_GNU_SOURCE -Iinclude -Iinclude/wal -O1 "$tmp/gen.c" build/release/libwal.a -lzstd -lgnutls -pthread \
  -o "$tmp/gen"

scan=fuzz/corpus/fuzz_wal_scan
recover=fuzz/corpus/fuzz_wal_recover
mkdir -p "$scan" "$recover"
add() { # add <name> <file>: a segment seed for both harnesses
  cp "$2" "$recover/$1"
  { printf '\0'; cat "$2"; } >"$scan/segment-$1"
}
gen() { # gen <name> <compression> <batches> <snapshot> [sealed]
  mkdir -p "$tmp/$1"
  "$tmp/gen" "$tmp/$1" "${@:2}"
}
gen zstd 0 6 1
gen raw -1 5 1
gen one 0 1 0
gen empty 0 0 0
add zstd-batches "$tmp/zstd/wal/00000000000000000001.wal"
add raw-batches "$tmp/raw/wal/00000000000000000001.wal"
add zstd-one "$tmp/one/wal/00000000000000000001.wal"
add header-only "$tmp/empty/wal/00000000000000000001.wal"
snap=$(ls "$tmp/zstd/snapshots/"*.snap)
rsnap=$(ls "$tmp/raw/snapshots/"*.snap)
{ printf '\1'; cat "$rsnap"; } >"$scan/snapshot-raw"
{ printf '\1'; cat "$snap"; } >"$scan/snapshot-zstd"
# Sealed (selector bit 1: read with the harness's key).
gen sealed 0 6 1 sealed
{ printf '\2'; cat "$tmp/sealed/wal/00000000000000000001.wal"; } >"$scan/sealed-segment-zstd"
{ printf '\3'; cat "$tmp/sealed/snapshots/"*.snap; } >"$scan/sealed-snapshot-zstd"
wc -c "$scan"/* "$recover"/*
