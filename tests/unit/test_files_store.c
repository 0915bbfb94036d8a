/* File records in the store: blob reference counts follow the live files,
 * through deletes, re-puts (replay twice) and reopening. */
#include <unistd.h>

#include "../test.h"
#include "testutil.h"
#include "parley/files.h"
#include "parley/store.h"

static void make_file(store_file_t *f, const char *sha_digit, const char *owner)
{
    memset(f, 0, sizeof(*f));
    store_new_id("file", f->id);
    memset(f->sha256, sha_digit[0], 64);
    f->sha256[64] = '\0';
    f->size = 10;
    snprintf(f->content_type, sizeof(f->content_type), "image/png");
    snprintf(f->filename, sizeof(f->filename), "a.png");
    snprintf(f->uploaded_by, sizeof(f->uploaded_by), "%s", owner);
    f->uploaded_at = 1;
}

TEST(files_refcounts_follow_live_files_and_survive_reopen)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "files-store");
    store_t *s = ut_store_open(dir);
    store_file_t a, b, c;
    make_file(&a, "a", "usr_1");
    make_file(&b, "a", "usr_2");
    make_file(&c, "b", "usr_1");
    snprintf(c.channel_id, sizeof(c.channel_id), "chn_7");
    snprintf(c.message_id, sizeof(c.message_id), "msg_9");
    c.is_avatar = true;
    if (strcmp(a.id, b.id) == 0)
        b.id[strlen(b.id) - 1] ^= 1;
    uint64_t lsn, refs;
    ASSERT_EQ(store_file_put(s, &a, &lsn, &refs), 0);
    ASSERT_EQ(refs, 1);
    ASSERT_EQ(store_file_put(s, &b, &lsn, &refs), 0);
    ASSERT_EQ(refs, 2);
    /* The same state again (a replayed record) changes no count. */
    ASSERT_EQ(store_file_put(s, &b, &lsn, &refs), 0);
    ASSERT_EQ(refs, 2);
    ASSERT_EQ(store_file_put(s, &c, &lsn, &refs), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    ASSERT_EQ(store_blob_refs(s, a.sha256), 2);
    /* The in-memory rev: +1 at each apply, 0 for no file. */
    ASSERT_EQ(store_file_rev(s, a.id), 1);
    ASSERT_EQ(store_file_rev(s, b.id), 2);
    ASSERT_EQ(store_file_rev(s, "file_nothing"), 0);

    a.is_deleted = true;
    ASSERT_EQ(store_file_put(s, &a, &lsn, &refs), 0);
    ASSERT_EQ(refs, 1);
    ASSERT_EQ(store_file_put(s, &a, &lsn, &refs), 0);
    ASSERT_EQ(refs, 1);
    store_file_t out[4];
    size_t n;
    ASSERT_EQ(store_file_list(s, NULL, "usr_1", 0, 4, out, &n), 1); /* c; a is deleted */
    ASSERT_STREQ(out[0].id, c.id);
    for (size_t i = 0; i < n; i++)
        store_file_clear(&out[i]);
    ASSERT_EQ(store_wait(s, lsn), 0);

    s = ut_store_reopen(s, dir);
    ASSERT_EQ(store_blob_refs(s, a.sha256), 1);
    ASSERT_EQ(store_blob_refs(s, c.sha256), 1);
    store_file_t got;
    ASSERT_TRUE(store_file_get(s, a.id, &got) && got.is_deleted);
    store_file_clear(&got);
    ASSERT_TRUE(store_file_get(s, c.id, &got) && !got.is_deleted);
    ASSERT_STREQ(got.channel_id, "chn_7");
    ASSERT_STREQ(got.message_id, "msg_9");
    ASSERT_TRUE(got.is_avatar);
    store_file_clear(&got);
    ASSERT_TRUE(store_file_get(s, b.id, &got));
    ASSERT_TRUE(!got.is_avatar);
    ASSERT_EQ(got.message_id[0], '\0');
    store_file_clear(&got);
    b.is_deleted = true;
    ASSERT_EQ(store_file_put(s, &b, &lsn, &refs), 0);
    ASSERT_EQ(refs, 0);
    ASSERT_EQ(store_blob_refs(s, a.sha256), 0);
    /* Records that do not parse or name a bad hash are refused. */
    ASSERT_EQ(store_apply(s, STORE_REC_FILE, "{\"v\":1}", 7), STORE_E_CORRUPT);
    store_file_t bad;
    make_file(&bad, "a", "usr_1");
    bad.sha256[3] = 'G';
    ASSERT_NE(store_file_put(s, &bad, &lsn, &refs), 0);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(files_bytes_per_uploader_follow_live_files_and_survive_reopen)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "files-bytes");
    store_t *s = ut_store_open(dir);
    store_file_t a, b, c;
    make_file(&a, "a", "usr_1");
    make_file(&b, "a", "usr_1"); /* the same bytes: counted again */
    make_file(&c, "c", "usr_2");
    b.size = 30;
    c.size = 7;
    if (strcmp(a.id, b.id) == 0)
        b.id[strlen(b.id) - 1] ^= 1;
    uint64_t lsn;
    ASSERT_EQ(store_file_put(s, &a, &lsn, NULL), 0);
    ASSERT_EQ(store_file_put(s, &b, &lsn, NULL), 0);
    ASSERT_EQ(store_file_put(s, &b, &lsn, NULL), 0); /* applied twice: no change */
    ASSERT_EQ(store_file_put(s, &c, &lsn, NULL), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    ASSERT_EQ(store_file_user_bytes(s, "usr_1"), 40);
    ASSERT_EQ(store_file_user_bytes(s, "usr_2"), 7);
    ASSERT_EQ(store_file_user_bytes(s, "usr_none"), 0);
    a.is_deleted = true;
    ASSERT_EQ(store_file_put(s, &a, &lsn, NULL), 0);
    ASSERT_EQ(store_file_put(s, &a, &lsn, NULL), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    ASSERT_EQ(store_file_user_bytes(s, "usr_1"), 30);
    /* Rebuilt from the log alone, and from a snapshot. */
    s = ut_store_reopen(s, dir);
    ASSERT_EQ(store_file_user_bytes(s, "usr_1"), 30);
    ASSERT_EQ(store_file_user_bytes(s, "usr_2"), 7);
    ASSERT_EQ(store_snapshot(s), 0);
    s = ut_store_reopen(s, dir);
    ASSERT_EQ(store_file_user_bytes(s, "usr_1"), 30);
    c.is_deleted = true;
    ASSERT_EQ(store_file_put(s, &c, &lsn, NULL), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    ASSERT_EQ(store_file_user_bytes(s, "usr_2"), 0);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(files_version_1_records_load_and_version_2_keeps_size_and_public)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "files-v2");
    store_t *s = ut_store_open(dir);
    /* A record as written before is_public, width and height. */
    const char *v1 = "{\"v\":1,\"id\":\"file_old\",\"sha256\":"
                     "\"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\","
                     "\"size\":3,\"content_type\":\"image/png\",\"filename\":\"o.png\","
                     "\"description\":null,\"uploaded_by\":\"usr_1\",\"channel_id\":\"\","
                     "\"message_id\":\"\",\"uploaded_at\":5,\"is_avatar\":false,"
                     "\"is_deleted\":false}";
    ASSERT_EQ(store_apply(s, STORE_REC_FILE, v1, strlen(v1)), 0);
    store_file_t got;
    ASSERT_TRUE(store_file_get(s, "file_old", &got));
    ASSERT_EQ(got.width, 0);
    ASSERT_EQ(got.height, 0);
    ASSERT_TRUE(!got.is_public);
    store_file_clear(&got);
    /* Version 2 round-trips them through the log and the snapshot. */
    store_file_t f;
    make_file(&f, "d", "usr_1");
    f.width = 640;
    f.height = 480;
    f.is_public = true;
    uint64_t lsn, refs;
    ASSERT_EQ(store_file_put(s, &f, &lsn, &refs), 0);
    ASSERT_EQ(store_close(s), 0);
    s = ut_store_open(dir);
    ASSERT_TRUE(store_file_get(s, f.id, &got));
    ASSERT_EQ(got.width, 640);
    ASSERT_EQ(got.height, 480);
    ASSERT_TRUE(got.is_public);
    store_file_clear(&got);
    ASSERT_TRUE(store_file_get(s, "file_old", &got));
    store_file_clear(&got);
    /* Bad new fields are refused; a version from the future too. */
    const char *bad = "{\"v\":2,\"id\":\"file_bad\",\"sha256\":"
                      "\"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\","
                      "\"size\":3,\"content_type\":\"image/png\",\"filename\":\"o.png\","
                      "\"uploaded_by\":\"usr_1\",\"channel_id\":\"\",\"uploaded_at\":5,"
                      "\"is_deleted\":false,\"width\":-1}";
    ASSERT_EQ(store_apply(s, STORE_REC_FILE, bad, strlen(bad)), STORE_E_CORRUPT);
    ASSERT_EQ(store_apply(s, STORE_REC_FILE, "{\"v\":3}", 7), STORE_E_CORRUPT);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}
