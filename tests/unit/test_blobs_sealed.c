/*
 * Blobs of a keyed store (blobs_set_key, src/files/blob_crypt.c): round
 * trips of sizes around the 64 KiB chunk through blob readers (whole and at
 * every chunk edge), no plaintext on disk, deduplication by the plaintext's
 * hash, blobs_check finding an altered chunk, a cut file, another key's
 * blob and a plain one; blobs_reseal from plain and from another key.
 */
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../test.h"
#include "parley/blobs.h"
#include "testutil.h"

static char g_dir[64];
static const uint8_t KEY_A[32] = "blob key A", KEY_B[32] = "blob key B";
static const uint8_t ID_A[8] = "idA", ID_B[8] = "idB";

static blobs_t *open_keyed(const uint8_t *key, const uint8_t *id)
{
    char err[256] = "";
    blobs_t *b = blobs_open(g_dir, err, sizeof(err));
    if (b == NULL)
        TEST_FAIL_("blobs_open: %s", err);
    blobs_set_key(b, key, id);
    return b;
}

/* Random-looking bytes (tu_fill), malloc'd. */
static unsigned char *bytes(size_t n, uint64_t seed)
{
    unsigned char *p = malloc(n > 0 ? n : 1);
    ASSERT_NOT_NULL(p);
    tu_fill(p, n, seed, false);
    return p;
}

static void store(blobs_t *b, const unsigned char *p, size_t n, blob_info_t *info)
{
    blob_writer_t *w;
    ASSERT_EQ(blob_writer_new(b, BLOB_NO_LIMIT, &w), 0);
    for (size_t off = 0; off < n;) {
        size_t c = n - off < 40000 ? n - off : 40000; /* not a divisor of 64 KiB */
        ASSERT_EQ(blob_writer_write(w, p + off, c), 0);
        off += c;
    }
    ASSERT_EQ(blob_writer_finish(w, info), 0);
}

/* Reads [off, off + len) through a reader; false when it does not open. */
static bool read_range(blobs_t *b, const char *sha, uint64_t off, size_t len, unsigned char *out)
{
    blob_reader_t *r;
    uint64_t size;
    if (blobs_reader_open(b, sha, &r, &size) != 0)
        return false;
    size_t got = 0;
    while (got < len) {
        ssize_t n = blob_reader_read(r, off + got, out + got, len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    blob_reader_close(r);
    return got == len;
}

static const char *blob_file(const char *sha)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/files/%.2s/%.2s/%s", g_dir, sha, sha + 2, sha);
    return path;
}

static bool file_contains(const char *path, const unsigned char *needle, size_t n)
{
    size_t len;
    uint8_t *data = tu_read(path, &len);
    bool found = false;
    for (size_t i = 0; !found && i + n <= len; i++)
        found = memcmp(data + i, needle, n) == 0;
    free(data);
    return found;
}

static void count_problem(void *ctx, const char *path, const char *problem)
{
    (void)path;
    (void)problem;
    (*(int *)ctx)++;
}

TEST(blobs_sealed_round_trip_at_chunk_edges)
{
    ut_tmpdir(g_dir, sizeof(g_dir), "sealblob");
    blobs_t *b = open_keyed(KEY_A, ID_A);
    static const size_t sizes[] = {0, 1, 65535, 65536, 65537, 3 * 65536, 200001};
    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        unsigned char *p = bytes(n, i + 7), *back = malloc(n + 1);
        blob_info_t info;
        store(b, p, n, &info);
        ASSERT_EQ(info.size, n);
        struct stat st;
        ASSERT_EQ(stat(blob_file(info.sha256), &st), 0);
        ASSERT_EQ((uint64_t)st.st_size, 96 + n + 16 * (n == 0 ? 1 : (n + 65535) / 65536));
        ASSERT_TRUE(read_range(b, info.sha256, 0, n, back));
        ASSERT_TRUE(n == 0 || memcmp(back, p, n) == 0);
        static const uint64_t edges[] = {0, 65535, 65536, 65537, 131071, 131072};
        for (unsigned e = 0; e < 6; e++)
            if (edges[e] + 2 <= n) {
                ASSERT_TRUE(read_range(b, info.sha256, edges[e], 2, back));
                ASSERT_EQ(memcmp(back, p + edges[e], 2), 0);
            }
        if (n >= 64)
            ASSERT_TRUE(!file_contains(blob_file(info.sha256), p + n / 2, 32));
        blob_info_t again;
        store(b, p, n, &again);
        ASSERT_TRUE(again.deduplicated);
        free(p);
        free(back);
    }
    int problems = 0;
    ASSERT_EQ(blobs_check(b, count_problem, &problems, NULL), 0);
    ASSERT_EQ(problems, 0);
    blobs_close(b);
    ut_rmrf(g_dir);
}

TEST(blobs_sealed_damage_and_other_keys_are_found)
{
    ut_tmpdir(g_dir, sizeof(g_dir), "sealdamage");
    blobs_t *b = open_keyed(KEY_A, ID_A);
    unsigned char *p = bytes(150000, 3), *q = bytes(1000, 4), buf[64];
    blob_info_t altered, cut, fine;
    store(b, p, 150000, &altered);
    store(b, p, 140000, &cut);
    store(b, q, 1000, &fine);
    blobs_close(b);

    /* A byte of the second chunk: the first still reads, the second not. */
    tu_flip_bit(blob_file(altered.sha256), 96 + 65552 + 10, 3);
    /* The last chunk cut off: the size no longer matches the header. */
    tu_truncate(blob_file(cut.sha256), 96 + 2 * 65552);
    b = open_keyed(KEY_A, ID_A);
    ASSERT_TRUE(read_range(b, altered.sha256, 100, 64, buf));
    ASSERT_TRUE(!read_range(b, altered.sha256, 65536 + 5, 64, buf));
    ASSERT_TRUE(!read_range(b, cut.sha256, 0, 1, buf));
    int problems = 0;
    ASSERT_EQ(blobs_check(b, count_problem, &problems, NULL), 2);
    blobs_close(b);

    /* Under another key nothing opens, and check says so for each. */
    b = open_keyed(KEY_B, ID_B);
    ASSERT_TRUE(!read_range(b, fine.sha256, 0, 1, buf));
    problems = 0;
    ASSERT_EQ(blobs_check(b, count_problem, &problems, NULL), 3);
    /* Re-sealed from key A: now it opens under B. */
    ASSERT_EQ(blobs_reseal(b, fine.sha256, KEY_A, ID_A), 0);
    ASSERT_EQ(blobs_reseal(b, fine.sha256, KEY_A, ID_A), 1);
    ASSERT_TRUE(read_range(b, fine.sha256, 0, 64, buf));
    ASSERT_EQ(memcmp(buf, q, 64), 0);
    /* A damaged one is refused, not laundered. */
    ASSERT_EQ(blobs_reseal(b, altered.sha256, KEY_A, ID_A), BLOB_E_DAMAGED);
    blobs_close(b);
    free(p);
    free(q);
    ut_rmrf(g_dir);
}

TEST(blobs_reseal_encrypts_a_plain_blob)
{
    ut_tmpdir(g_dir, sizeof(g_dir), "sealplain");
    blobs_t *b = open_keyed(NULL, NULL);
    unsigned char *p = bytes(70000, 9), *back = malloc(70000);
    blob_info_t info;
    store(b, p, 70000, &info);
    ASSERT_TRUE(file_contains(blob_file(info.sha256), p + 1000, 32));
    blobs_close(b);
    b = open_keyed(KEY_A, ID_A);
    ASSERT_TRUE(!read_range(b, info.sha256, 0, 1, back)); /* plain under a key: refused */
    ASSERT_EQ(blobs_reseal(b, info.sha256, NULL, NULL), 0);
    ASSERT_TRUE(!file_contains(blob_file(info.sha256), p + 1000, 32));
    ASSERT_TRUE(read_range(b, info.sha256, 0, 70000, back));
    ASSERT_EQ(memcmp(back, p, 70000), 0);
    int problems = 0;
    ASSERT_EQ(blobs_check(b, count_problem, &problems, NULL), 0);
    blobs_close(b);
    free(p);
    free(back);
    ut_rmrf(g_dir);
}
