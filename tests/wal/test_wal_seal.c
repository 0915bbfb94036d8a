/*
 * Sealed logs (wal_options_t.key): a round trip through segments and a
 * snapshot; no record text on disk; the wrong key, no key and a key for a
 * plain log each refused with WAL_E_KEY and nothing changed; a byte of a
 * frame altered (its CRC made good again, so only the tag can tell), frames
 * of a snapshot swapped or dropped, its end cut: each detected; reseal
 * (rekey) and plain -> sealed conversion keep every record.
 */
#include <string.h>
#include <unistd.h>

#include "../../wal/wal_format.h"
#include "../test.h"
#include "wal.h"
#include "wal_testutil.h"

static const uint8_t KEY_A[WAL_KEY_BYTES] = "0123456789abcdef0123456789abcdef";
static const uint8_t KEY_B[WAL_KEY_BYTES] = "fedcba9876543210fedcba9876543210";

static wal_options_t keyed(const uint8_t *key)
{
    wal_options_t o = tu_opts();
    o.key = key;
    return o;
}

/* Opens dir with key, expecting rc; returns the records replayed (freed by caller). */
static int open_with(const char *dir, const uint8_t *key, tu_replay_t *r)
{
    wal_options_t o = keyed(key);
    wal_replay_t rp = tu_replay(r);
    wal_t *w = NULL;
    int rc = wal_open(dir, &o, &rp, &w, NULL);
    if (rc == 0)
        ASSERT_EQ(wal_close(w), 0);
    return rc;
}

static bool contains(const uint8_t *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return true;
    return false;
}

TEST(wal_sealed_round_trip_hides_the_records)
{
    char dir[128];
    tu_tmpdir(dir, sizeof(dir), "seal");
    wal_options_t o = keyed(KEY_A);
    uint64_t last = tu_write_records(dir, &o, 20);
    ASSERT_EQ(last, 20);
    last = tu_write_records(dir, &o, 5); /* a second segment */
    tu_replay_t r = {0};
    ASSERT_EQ(open_with(dir, KEY_A, &r), 0);
    tu_expect_records(&r, 1, 25);
    tu_replay_free(&r);

    tu_tree_t t;
    tu_tree_load(&t, dir);
    ASSERT_GE(t.n, 2);
    for (size_t i = 0; i < t.n; i++) {
        ASSERT_TRUE(!(contains(t.files[i].data, t.files[i].len, "record ")));
        if (t.files[i].len >= WALF_SEALED_HEADER)
            ASSERT_EQ(wal__get32(t.files[i].data + 12) & WALF_FILE_SEALED, WALF_FILE_SEALED);
    }
    tu_tree_free(&t);
    /* The tools see through the seal with the key only. */
    wal_recovery_t rep;
    ASSERT_EQ(wal_check(dir, &o, &rep), 0);
    ASSERT_EQ(wal_check(dir, NULL, &rep), WAL_E_KEY);
    tu_rmrf(dir);
}

TEST(wal_sealed_wrong_missing_or_unwanted_key_changes_nothing)
{
    char dir[128], plain[128];
    tu_tmpdir(dir, sizeof(dir), "sealkey");
    tu_tmpdir(plain, sizeof(plain), "sealplain");
    wal_options_t o = keyed(KEY_A);
    tu_write_records(dir, &o, 8);
    wal_options_t p = tu_opts();
    tu_write_records(plain, &p, 8);

    tu_tree_t before, after;
    tu_tree_load(&before, dir);
    tu_replay_t r = {0};
    ASSERT_EQ(open_with(dir, KEY_B, &r), WAL_E_KEY);
    ASSERT_EQ(open_with(dir, NULL, &r), WAL_E_KEY);
    ASSERT_EQ(r.n, 0);
    tu_tree_load(&after, dir);
    ASSERT_TRUE(tu_tree_equal(&before, &after));
    tu_tree_free(&before);
    tu_tree_free(&after);

    tu_tree_load(&before, plain);
    ASSERT_EQ(open_with(plain, KEY_A, &r), WAL_E_KEY);
    tu_tree_load(&after, plain);
    ASSERT_TRUE(tu_tree_equal(&before, &after));
    tu_tree_free(&before);
    tu_tree_free(&after);
    ASSERT_EQ(open_with(plain, NULL, &r), 0);
    tu_expect_records(&r, 1, 8);
    tu_replay_free(&r);
    tu_rmrf(dir);
    tu_rmrf(plain);
}

/* A byte of a middle frame's payload altered and its CRC recomputed: only
 * the tag catches it, and it is corruption (not a torn tail). */
TEST(wal_sealed_altered_frame_is_detected)
{
    char dir[128], path[256];
    tu_tmpdir(dir, sizeof(dir), "sealtamper");
    wal_options_t o = keyed(KEY_A);
    tu_write_records(dir, &o, 6);
    tu_seg_path(path, sizeof(path), dir, 1);
    size_t len;
    /* Walk the sealed frames (from offset 64). */
    uint8_t *img = tu_read(path, &len);
    size_t off = WALF_SEALED_HEADER, offs[16];
    size_t k = 0;
    while (off + WALF_FRAME_HEADER <= len && k < 16) {
        offs[k++] = off;
        off += WALF_FRAME_HEADER + wal__get32(img + off + 4);
    }
    ASSERT_EQ(k, 6);
    img[offs[2] + WALF_FRAME_HEADER + 3] ^= 0x40;
    wal__frame_crc(img + offs[2]);
    tu_write(path, img, len);
    free(img);
    tu_replay_t r = {0};
    ASSERT_EQ(open_with(dir, KEY_A, &r), WAL_E_CORRUPT);
    tu_replay_free(&r);
    tu_rmrf(dir);
}

/* A snapshot of equal-sized uncompressed frames: in a plain file two of
 * them can be swapped unnoticed (each CRC still holds); sealed, the nonce is
 * the offset, so a swap or a dropped frame fails, and a cut end is not a
 * snapshot. Each time recovery falls back to the log. */
static void write_snapshotted(const char *dir, const uint8_t *key)
{
    wal_options_t o = keyed(key);
    o.compression_level = -1;
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    uint64_t lsn;
    ASSERT_EQ(wal_append(w, 1, "x", 1, &lsn), 0);
    wal_snapshot_t *s;
    ASSERT_EQ(wal_snapshot_begin(w, lsn, &s), 0);
    static uint8_t big[100000];
    for (int i = 0; i < 30; i++) {
        memset(big, 'a' + i % 26, sizeof(big));
        ASSERT_EQ(wal_snapshot_add(s, 2, big, sizeof(big)), 0);
    }
    ASSERT_EQ(wal_snapshot_commit(s), 0);
    ASSERT_EQ(wal_close(w), 0);
}

static void frame_offsets(const uint8_t *img, size_t len, size_t start, size_t *offs, size_t *n)
{
    size_t off = start, k = 0;
    while (off + WALF_FRAME_HEADER <= len && k < *n) {
        offs[k++] = off;
        off += WALF_FRAME_HEADER + wal__get32(img + off + 4);
    }
    *n = k;
}

static size_t snapshot_records_after(const char *dir, const uint8_t *key)
{
    tu_replay_t r = {0};
    ASSERT_EQ(open_with(dir, key, &r), 0);
    size_t n = r.n_snap;
    tu_replay_free(&r);
    return n;
}

static void swap_frames(const char *dir, const uint8_t *key)
{
    char path[256];
    tu_snap_path(path, sizeof(path), dir, 1, ".snap");
    size_t len, offs[8], n = 8;
    uint8_t *img = tu_read(path, &len);
    frame_offsets(img, len, key ? WALF_SEALED_HEADER : WALF_FILE_HEADER, offs, &n);
    ASSERT_EQ(n, 4); /* 3 record frames of 10 records and the end frame */
    size_t a = offs[0], b = offs[1], flen = offs[1] - offs[0];
    ASSERT_EQ(offs[2] - offs[1], flen);
    uint8_t *tmp = malloc(flen);
    memcpy(tmp, img + a, flen);
    memmove(img + a, img + b, flen);
    memcpy(img + b, tmp, flen);
    free(tmp);
    tu_write(path, img, len);
    free(img);
}

TEST(wal_sealed_snapshot_frames_cannot_be_reordered_dropped_or_cut)
{
    char dir[128];
    /* Plain: the swap goes unnoticed (the case sealing closes). */
    tu_tmpdir(dir, sizeof(dir), "sealswap");
    write_snapshotted(dir, NULL);
    swap_frames(dir, NULL);
    ASSERT_EQ(snapshot_records_after(dir, NULL), 30);
    tu_rmrf(dir);

    /* Sealed: swapped. */
    tu_tmpdir(dir, sizeof(dir), "sealswap");
    write_snapshotted(dir, KEY_A);
    ASSERT_EQ(snapshot_records_after(dir, KEY_A), 30);
    swap_frames(dir, KEY_A);
    ASSERT_EQ(snapshot_records_after(dir, KEY_A), 0);
    tu_rmrf(dir);

    /* Sealed: a middle frame dropped. */
    char path[256];
    tu_tmpdir(dir, sizeof(dir), "sealdrop");
    write_snapshotted(dir, KEY_A);
    tu_snap_path(path, sizeof(path), dir, 1, ".snap");
    size_t len, offs[8], n = 8;
    uint8_t *img = tu_read(path, &len);
    frame_offsets(img, len, WALF_SEALED_HEADER, offs, &n);
    ASSERT_EQ(n, 4);
    size_t flen = offs[2] - offs[1];
    memmove(img + offs[1], img + offs[2], len - offs[2]);
    tu_write(path, img, len - flen);
    free(img);
    ASSERT_EQ(snapshot_records_after(dir, KEY_A), 0);
    tu_rmrf(dir);

    /* Sealed: the end frame cut off. */
    tu_tmpdir(dir, sizeof(dir), "sealcut");
    write_snapshotted(dir, KEY_A);
    tu_snap_path(path, sizeof(path), dir, 1, ".snap");
    img = tu_read(path, &len);
    n = 8;
    frame_offsets(img, len, WALF_SEALED_HEADER, offs, &n);
    free(img);
    tu_truncate(path, offs[3]);
    ASSERT_EQ(snapshot_records_after(dir, KEY_A), 0);
    tu_rmrf(dir);
}

TEST(wal_reseal_changes_the_key_and_keeps_the_records)
{
    char dir[128], src[256], dst[300];
    tu_tmpdir(dir, sizeof(dir), "reseal");
    wal_options_t p = tu_opts();
    tu_write_records(dir, &p, 10);
    tu_seg_path(src, sizeof(src), dir, 1);
    snprintf(dst, sizeof(dst), "%s.new", src);
    uint8_t id[8], want[WAL_KEY_ID_BYTES];
    ASSERT_EQ(wal_file_seal(src, id), 0);
    /* plain -> A */
    ASSERT_EQ(wal_reseal_file(src, dst, false, KEY_A, KEY_B), WAL_E_KEY);
    ASSERT_TRUE(!(tu_exists(dst)));
    ASSERT_EQ(wal_reseal_file(src, dst, false, NULL, KEY_A), 0);
    ASSERT_EQ(rename(dst, src), 0);
    ASSERT_EQ(wal_file_seal(src, id), 1);
    wal_key_id(KEY_A, want);
    ASSERT_EQ(memcmp(id, want, 8), 0);
    tu_replay_t r = {0};
    ASSERT_EQ(open_with(dir, KEY_A, &r), 0);
    tu_expect_records(&r, 1, 10);
    tu_replay_free(&r);
    /* A -> B, for every segment now there. */
    uint64_t segs[8];
    size_t ns = tu_list(dir, "wal", ".wal", segs, 8);
    for (size_t i = 0; i < ns; i++) {
        tu_seg_path(src, sizeof(src), dir, segs[i]);
        snprintf(dst, sizeof(dst), "%s.new", src);
        ASSERT_EQ(wal_reseal_file(src, dst, false, KEY_A, KEY_B), 0);
        ASSERT_EQ(rename(dst, src), 0);
    }
    ASSERT_EQ(open_with(dir, KEY_A, &r), WAL_E_KEY);
    ASSERT_EQ(open_with(dir, KEY_B, &r), 0);
    tu_expect_records(&r, 1, 10);
    tu_replay_free(&r);
    tu_rmrf(dir);
}
