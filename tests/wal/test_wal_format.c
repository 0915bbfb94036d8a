/*
 * The byte format: CRC32C against known values and the portable table code,
 * file headers of a newer version refused without touching anything, and
 * wal_scan_image never crashing on garbage, cut or mutated images.
 */
#include <zstd.h>

#include "../../wal/wal_format.h"
#include "../test.h"
#include "wal.h"
#include "wal_testutil.h"

uint32_t wal__crc32c_portable(uint32_t crc, const void *data, size_t len);

/* ---- CRC32C ---- */

TEST(wal_crc32c_known_values)
{
    ASSERT_EQ(wal__crc32c(0, "123456789", 9), 0xE3069283u);
    ASSERT_EQ(wal__crc32c_portable(0, "123456789", 9), 0xE3069283u);
    ASSERT_EQ(wal__crc32c(0, "", 0), 0);
    ASSERT_EQ(wal__crc32c_portable(0, "", 0), 0);
    /* RFC 3720 (iSCSI) B.4 test vectors. */
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    ASSERT_EQ(wal__crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof(buf));
    ASSERT_EQ(wal__crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    ASSERT_EQ(wal__crc32c(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    ASSERT_EQ(wal__crc32c(0, buf, 32), 0x113FDB5Cu);
    /* Incremental use gives the same as one call. */
    ASSERT_EQ(wal__crc32c(wal__crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    /* The mask is a rotation plus a constant, and is not the identity. */
    ASSERT_EQ(wal__mask(0), 0xa282ead8u);
    ASSERT_NE(wal__mask(0xE3069283u), 0xE3069283u);
}

TEST(wal_crc32c_hardware_matches_portable)
{
    uint8_t *buf = malloc(300 + 16);
    ASSERT_NOT_NULL(buf);
    uint64_t st = 42;
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < 316; i++)
            buf[i] = (uint8_t)tu_rand(&st);
        for (size_t align = 0; align < 16; align += (round == 0 ? 1 : 5)) {
            for (size_t len = 0; len <= 300; len++) {
                uint32_t seed = round == 3 ? (uint32_t)tu_rand(&st) : 0;
                uint32_t a = wal__crc32c(seed, buf + align, len);
                uint32_t b = wal__crc32c_portable(seed, buf + align, len);
                if (a != b)
                    TEST_FAIL_("len %zu align %zu: %08x != %08x", len, align, a, b);
                /* Split anywhere: the same. */
                size_t cut = len / 3;
                ASSERT_EQ(wal__crc32c(wal__crc32c(seed, buf + align, cut), buf + align + cut,
                                      len - cut),
                          a);
            }
        }
    }
    free(buf);
}

TEST(wal_file_header_layout)
{
    uint8_t h[WALF_FILE_HEADER];
    wal__file_header(h, false, 0x0102030405060708ull);
    ASSERT_EQ(memcmp(h, "PRLYWAL\0", 8), 0);
    ASSERT_EQ(wal__get32(h + 8), WAL_FORMAT_VERSION);
    ASSERT_EQ(wal__get32(h + 12), 0);
    ASSERT_EQ(wal__get64(h + 16), 0x0102030405060708ull);
    ASSERT_EQ(h[16], 0x08); /* little-endian */
    ASSERT_EQ(wal__get32(h + 24), 0);
    ASSERT_EQ(wal__get32(h + 28), wal__mask(wal__crc32c(0, h, 28)));
    wal__file_header(h, true, 5);
    ASSERT_EQ(memcmp(h, "PRLYSNP\0", 8), 0);

    uint8_t f[WALF_FRAME_HEADER + 4] = {0};
    memcpy(f + WALF_FRAME_HEADER, "abcd", 4);
    walf_frame_t fr = {.stored_len = 4, .first_lsn = 9, .count = 1, .raw_len = 4,
                       .kind = WALF_KIND_RECORDS, .flags = 0};
    wal__frame_header(f, &fr);
    ASSERT_EQ(wal__get32(f + 4), 4);
    ASSERT_EQ(wal__get64(f + 8), 9);
    ASSERT_EQ(wal__get32(f + 16), 1);
    ASSERT_EQ(wal__get32(f + 20), 4);
    ASSERT_EQ(f[24], WALF_KIND_RECORDS);
    ASSERT_EQ(wal__get32(f), wal__mask(wal__crc32c(0, f + 4, WALF_FRAME_HEADER - 4 + 4)));
}

/* ---- newer format versions ---- */

/* Rewrites the header of a file in `tree` to say version 2, with a valid
 * checksum. */
static void make_version_2(tu_tree_t *tree, const char *name)
{
    tu_file_t *f = tu_tree_get(tree, name);
    ASSERT_NOT_NULL(f);
    ASSERT_GE(f->len, WALF_FILE_HEADER);
    wal__put32(f->data + 8, 2);
    wal__put32(f->data + 28, wal__mask(wal__crc32c(0, f->data, 28)));
}

static void expect_version_refused(const tu_tree_t *tree, const char *name)
{
    char dir[64], path[512];
    tu_tmpdir(dir, sizeof(dir), "version");
    tu_tree_store(tree, dir);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    tu_tree_t before, after;
    tu_tree_load(&before, dir);
    wal_options_t o = tu_opts();
    o.repair = true; /* not even repair touches it */
    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_recovery_t rep;
    wal_t *w = NULL;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), WAL_E_VERSION);
    ASSERT_NULL(w);
    ASSERT_STREQ(rep.error_file, path);
    ASSERT_EQ(wal_check(dir, &o, &rep), WAL_E_VERSION);
    ASSERT_STREQ(rep.error_file, path);
    tu_tree_load(&after, dir);
    ASSERT_TRUE(tu_tree_equal(&before, &after));
    const tu_file_t *f = tu_tree_get(&after, name);
    ASSERT_EQ(wal_scan_image(f->data, f->len, strncmp(name, "snap", 4) == 0), WAL_E_VERSION);
    tu_tree_free(&before);
    tu_tree_free(&after);
    tu_replay_free(&r);
    tu_rmrf(dir);
}

TEST(wal_newer_version_is_refused)
{
    char src[64];
    tu_tmpdir(src, sizeof(src), "vsrc");
    wal_options_t o = tu_opts();
    ASSERT_EQ(tu_write_records(src, &o, 3), 3);
    ASSERT_EQ(tu_write_records(src, &o, 3), 6);
    wal_t *w;
    ASSERT_EQ(wal_open(src, &o, NULL, &w, NULL), 0);
    wal_snapshot_t *s;
    ASSERT_EQ(wal_snapshot_begin(w, 6, &s), 0);
    ASSERT_EQ(wal_snapshot_add(s, 1, "state", 5), 0);
    ASSERT_EQ(wal_snapshot_commit(s), 0);
    ASSERT_EQ(wal_close(w), 0);
    tu_tree_t tree;
    tu_tree_load(&tree, src);
    tu_rmrf(src);

    char name[64];
    /* The first segment, the second, the last (empty) one, the snapshot. */
    uint64_t segs[] = {1, 4, 7};
    for (size_t i = 0; i < 3; i++) {
        tu_tree_t t;
        tu_tmpdir(src, sizeof(src), "vsrc");
        tu_tree_store(&tree, src);
        tu_tree_load(&t, src);
        tu_rmrf(src);
        char snap[64];
        tu_snap_name(snap, sizeof(snap), 6);
        /* Without the snapshot, so that every segment is read. */
        tu_file_t *sf = tu_tree_get(&t, snap);
        ASSERT_NOT_NULL(sf);
        snprintf(sf->name, sizeof(sf->name), "snapshots/not-a-snapshot");
        tu_seg_name(name, sizeof(name), segs[i]);
        make_version_2(&t, name);
        expect_version_refused(&t, name);
        tu_tree_free(&t);
    }
    tu_snap_name(name, sizeof(name), 6);
    make_version_2(&tree, name);
    expect_version_refused(&tree, name);
    tu_tree_free(&tree);
}

/* ---- wal_scan_image ---- */

static bool allowed(int rc)
{
    return rc == 0 || rc == WAL_E_CORRUPT || rc == WAL_E_VERSION;
}

/* A real segment of several frames and a real snapshot, from the library. */
static void real_images(tu_tree_t *tree, const tu_file_t **seg, const tu_file_t **snap)
{
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "images");
    wal_options_t o = tu_opts();
    ASSERT_EQ(tu_write_records(dir, &o, 8), 8);
    wal_t *w;
    ASSERT_EQ(wal_open(dir, &o, NULL, &w, NULL), 0);
    wal_snapshot_t *s;
    ASSERT_EQ(wal_snapshot_begin(w, 8, &s), 0);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(wal_snapshot_add(s, (uint8_t)(i + 1), "snapshot record", 15), 0);
    ASSERT_EQ(wal_snapshot_commit(s), 0);
    ASSERT_EQ(wal_close(w), 0);
    tu_tree_load(tree, dir);
    tu_rmrf(dir);
    char name[64];
    tu_seg_name(name, sizeof(name), 1);
    *seg = tu_tree_get(tree, name);
    tu_snap_name(name, sizeof(name), 8);
    *snap = tu_tree_get(tree, name);
    ASSERT_NOT_NULL(*seg);
    ASSERT_NOT_NULL(*snap);
}

TEST(wal_scan_image_cut_and_mutated)
{
    tu_tree_t tree;
    const tu_file_t *seg, *snap;
    real_images(&tree, &seg, &snap);
    ASSERT_EQ(wal_scan_image(seg->data, seg->len, false), 0);
    ASSERT_EQ(wal_scan_image(snap->data, snap->len, true), 0);
    ASSERT_EQ(wal_scan_image(seg->data, seg->len, true), WAL_E_CORRUPT);
    ASSERT_EQ(wal_scan_image(snap->data, snap->len, false), WAL_E_CORRUPT);
    ASSERT_EQ(wal_scan_image(NULL, 0, false), WAL_E_CORRUPT);

    tu_frame_t fr[16];
    size_t nf = tu_frames(seg->data, seg->len, fr, 16);
    ASSERT_EQ(nf, 8);
    uint8_t *copy = malloc(seg->len + snap->len);
    ASSERT_NOT_NULL(copy);

    /* Cut anywhere: clean exactly at frame boundaries. */
    for (size_t len = 0; len <= seg->len; len++) {
        bool boundary = len == WALF_FILE_HEADER;
        for (size_t i = 0; i < nf; i++)
            boundary = boundary || fr[i].end == len;
        memcpy(copy, seg->data, len);
        ASSERT_EQ(wal_scan_image(copy, len, false), boundary ? 0 : WAL_E_CORRUPT);
    }
    for (size_t len = 0; len <= snap->len; len++) {
        memcpy(copy, snap->data, len);
        ASSERT_EQ(wal_scan_image(copy, len, true), len == snap->len ? 0 : WAL_E_CORRUPT);
    }

    /* Any byte changed: every byte is under a checksum. */
    uint64_t st = 7;
    for (int pass = 0; pass < 2; pass++) {
        const tu_file_t *f = pass ? snap : seg;
        for (size_t at = 0; at < f->len; at++) {
            memcpy(copy, f->data, f->len);
            copy[at] ^= (uint8_t)(tu_rand(&st) % 255 + 1);
            int rc = wal_scan_image(copy, f->len, pass == 1);
            if (rc != WAL_E_CORRUPT)
                TEST_FAIL_("%s byte %zu changed: %d", pass ? "snapshot" : "segment", at, rc);
        }
    }

    /* Several bytes changed, zeroed runs, appended junk: only allowed
     * results, and no sanitizer report. */
    for (int i = 0; i < 3000; i++) {
        const tu_file_t *f = i % 2 ? snap : seg;
        size_t len = f->len;
        memcpy(copy, f->data, len);
        int kind = (int)(tu_rand(&st) % 4);
        int n = (int)(tu_rand(&st) % 8) + 1;
        for (int k = 0; k < n; k++) {
            size_t at = tu_rand(&st) % len;
            if (kind == 0)
                copy[at] = (uint8_t)tu_rand(&st);
            else if (kind == 1)
                memset(copy + at, 0, (len - at) < 40 ? len - at : 40);
            else if (kind == 2)
                copy[at] = (uint8_t)(copy[at] ^ 0x80);
        }
        if (kind == 3) {
            size_t extra = tu_rand(&st) % 200;
            for (size_t k = 0; k < extra && len < f->len + snap->len; k++)
                copy[len++] = (uint8_t)tu_rand(&st);
        }
        ASSERT_TRUE(allowed(wal_scan_image(copy, len, i % 2 == 1)));
    }
    free(copy);
    tu_tree_free(&tree);
}

TEST(wal_scan_image_random_garbage)
{
    uint64_t st = 99;
    uint8_t *buf = malloc(8192);
    ASSERT_NOT_NULL(buf);
    for (int i = 0; i < 2000; i++) {
        size_t len = tu_rand(&st) % 8192;
        if (i < 100)
            len = (size_t)i; /* every short length */
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)tu_rand(&st);
        bool snap = i % 2 == 1;
        /* Half of them get a valid file header, so the frames are tried. */
        if (i % 4 >= 2 && len >= WALF_FILE_HEADER)
            wal__file_header(buf, snap, tu_rand(&st) % 1000);
        /* Some get runs of zeros (they look like preallocated tails). */
        if (i % 8 == 7 && len > 64)
            memset(buf + len / 2, 0, len / 4);
        int rc = wal_scan_image(buf, len, snap);
        ASSERT_TRUE(allowed(rc));
        if (i % 4 < 2 && len > 0)
            ASSERT_EQ(rc, WAL_E_CORRUPT);
    }
    free(buf);
}

/* Frames whose checksum holds but whose content breaks a rule: corrupt,
 * never accepted, never a crash. */
TEST(wal_scan_image_checksummed_nonsense)
{
    uint8_t img[4096];
    uint8_t raw[1024];
    size_t rl, off;

    /* Baseline: a hand-made valid segment. */
    wal__file_header(img, false, 1);
    rl = tu_raw_record(raw, 0, 1, "ok", 2);
    off = WALF_FILE_HEADER + tu_raw_frame(img + WALF_FILE_HEADER, 1, 1, raw, rl,
                                          WALF_KIND_RECORDS);
    ASSERT_EQ(wal_scan_image(img, off, false), 0);

    struct {
        const char *what;
        uint64_t first_lsn;
        uint32_t count;
        uint8_t kind;
        int record_type;  /* type byte of the record */
        int bad_reserved; /* a non-zero reserved byte in the record header */
    } cases[] = {
        {"first LSN out of sequence", 5, 1, WALF_KIND_RECORDS, 1, 0},
        {"first LSN zero", 0, 1, WALF_KIND_RECORDS, 1, 0},
        {"count too large", 1, 2, WALF_KIND_RECORDS, 1, 0},
        {"count zero", 1, 0, WALF_KIND_RECORDS, 1, 0},
        {"record type zero", 1, 1, WALF_KIND_RECORDS, 0, 0},
        {"reserved record byte", 1, 1, WALF_KIND_RECORDS, 1, 1},
        {"end frame in a segment", 1, 0, WALF_KIND_SNAPSHOT_END, 1, 0},
        {"unknown kind", 1, 1, 9, 1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wal__file_header(img, false, 1);
        rl = tu_raw_record(raw, 0, (uint8_t)cases[i].record_type, "payload", 7);
        if (cases[i].bad_reserved)
            raw[6] = 1;
        off = WALF_FILE_HEADER + tu_raw_frame(img + WALF_FILE_HEADER, cases[i].first_lsn,
                                              cases[i].count, raw, rl, cases[i].kind);
        int rc = wal_scan_image(img, off, false);
        if (rc != WAL_E_CORRUPT)
            TEST_FAIL_("%s: %d", cases[i].what, rc);
    }

    /* A zstd payload that decompresses to more, or less, than raw_len, or
     * is not zstd at all; and stored_len past the end of the file. */
    rl = tu_raw_record(raw, 0, 1, "compressed record", 17);
    uint8_t z[256];
    size_t zl = ZSTD_compress(z, sizeof(z), raw, rl, 1);
    ASSERT_TRUE(!ZSTD_isError(zl));
    for (int variant = 0; variant < 5; variant++) {
        wal__file_header(img, false, 1);
        uint8_t *h = img + WALF_FILE_HEADER;
        memcpy(h + WALF_FRAME_HEADER, z, zl);
        walf_frame_t f = {.stored_len = (uint32_t)zl, .first_lsn = 1, .count = 1,
                          .raw_len = (uint32_t)rl, .kind = WALF_KIND_RECORDS,
                          .flags = WALF_FLAG_ZSTD};
        if (variant == 1)
            f.raw_len = (uint32_t)rl - 1;
        if (variant == 2)
            f.raw_len = (uint32_t)rl + 8;
        if (variant == 3)
            memset(h + WALF_FRAME_HEADER, 0xAB, zl);
        wal__frame_header(h, &f);
        size_t len = WALF_FILE_HEADER + WALF_FRAME_HEADER + zl;
        if (variant == 4) {
            wal__put32(h + 4, 100000); /* then the checksum no longer holds */
        }
        int rc = wal_scan_image(img, len, false);
        if (variant == 0)
            ASSERT_EQ(rc, 0);
        else if (rc != WAL_E_CORRUPT)
            TEST_FAIL_("zstd variant %d: %d", variant, rc);
    }

    /* Snapshots: an end frame with the wrong count or LSN, data after the
     * end, an end frame with a first LSN. */
    for (int variant = 0; variant < 4; variant++) {
        wal__file_header(img, true, 10);
        off = WALF_FILE_HEADER;
        rl = tu_raw_record(raw, 0, 1, "state", 5);
        off += tu_raw_frame(img + off, 0, 1, raw, rl, WALF_KIND_RECORDS);
        uint8_t end[WALF_END_PAYLOAD];
        wal__put64(end, variant == 1 ? 2 : 1);
        wal__put64(end + 8, variant == 2 ? 11 : 10);
        off += tu_raw_frame(img + off, variant == 3 ? 10 : 0, 0, end, sizeof(end),
                            WALF_KIND_SNAPSHOT_END);
        if (variant == 0) {
            ASSERT_EQ(wal_scan_image(img, off, true), 0);
            off += tu_raw_frame(img + off, 0, 1, raw, rl, WALF_KIND_RECORDS);
        }
        ASSERT_EQ(wal_scan_image(img, off, true), WAL_E_CORRUPT);
    }
}

/* File header flags other than `unsynced` on a segment, or any flag on a
 * snapshot, with a valid checksum: not a file this build understands. */
TEST(wal_unknown_file_flags_are_corrupt)
{
    char src[64];
    tu_tmpdir(src, sizeof(src), "flags");
    wal_options_t o = tu_opts();
    ASSERT_EQ(tu_write_records(src, &o, 3), 3);
    wal_t *w;
    ASSERT_EQ(wal_open(src, &o, NULL, &w, NULL), 0);
    wal_snapshot_t *s;
    ASSERT_EQ(wal_snapshot_begin(w, 3, &s), 0);
    ASSERT_EQ(wal_snapshot_commit(s), 0);
    ASSERT_EQ(wal_close(w), 0);
    tu_tree_t tree;
    tu_tree_load(&tree, src);
    tu_rmrf(src);
    char seg[64], snap[64];
    tu_seg_name(seg, sizeof(seg), 1);
    tu_snap_name(snap, sizeof(snap), 3);
    tu_file_t *fs = tu_tree_get(&tree, seg), *fp = tu_tree_get(&tree, snap);
    ASSERT_NOT_NULL(fs);
    ASSERT_NOT_NULL(fp);
    ASSERT_EQ(wal_scan_image(fs->data, fs->len, false), 0);

    uint8_t *orig = malloc(fs->len);
    ASSERT_NOT_NULL(orig);
    memcpy(orig, fs->data, fs->len);
    static const uint32_t bad_flags[] = {4, 5, 0x80000000u}; /* bit 1 is WALF_FILE_SEALED */
    for (size_t i = 0; i < 3; i++) {
        memcpy(fs->data, orig, fs->len);
        wal__file_header_flags(fs->data, false, 1, bad_flags[i]);
        ASSERT_EQ(wal_scan_image(fs->data, fs->len, false), WAL_E_CORRUPT);
        /* Without the snapshot, so that the segment is read. */
        tu_file_t saved = *fp;
        snprintf(fp->name, sizeof(fp->name), "snapshots/set-aside");
        char dir[64], path[512];
        tu_tmpdir(dir, sizeof(dir), "flags");
        tu_tree_store(&tree, dir);
        *fp = saved;
        tu_seg_path(path, sizeof(path), dir, 1);
        wal_recovery_t rep;
        ASSERT_EQ(wal_open(dir, &o, NULL, &w, &rep), WAL_E_CORRUPT);
        ASSERT_STREQ(rep.error_file, path);
        ASSERT_EQ(rep.error_offset, 12);
        tu_rmrf(dir);
    }
    memcpy(fs->data, orig, fs->len);
    free(orig);

    /* A snapshot with the `unsynced` flag: damaged, so recovery does
     * without it and replays the log. */
    wal__file_header_flags(fp->data, true, 3, WALF_FILE_UNSYNCED);
    ASSERT_EQ(wal_scan_image(fp->data, fp->len, true), WAL_E_CORRUPT);
    char dir[64];
    tu_tmpdir(dir, sizeof(dir), "flags");
    tu_tree_store(&tree, dir);
    tu_replay_t r = {0};
    wal_replay_t rp = tu_replay(&r);
    wal_recovery_t rep;
    ASSERT_EQ(wal_open(dir, &o, &rp, &w, &rep), 0);
    ASSERT_EQ(rep.snapshot_lsn, 0);
    ASSERT_EQ(r.n_begins, 0);
    tu_expect_records(&r, 1, 3);
    ASSERT_EQ(wal_close(w), 0);
    tu_replay_free(&r);
    tu_rmrf(dir);
    tu_tree_free(&tree);
}
