/*
 * File life (src/files/file_life.c) over a real store and blob store: a blob
 * lives exactly as long as a live record names it; concurrent uploads and
 * deletions of the same bytes never leave a record without its blob nor a
 * blob without a record; an operation on one hash never waits for another
 * hash (checked by completing an operation on B while A is held, and by
 * seeing an operation on A wait for A through blobs__hash_waiters: conditions,
 * never timings); avatars replaced are deleted only when they are the user's.
 */
#include <gnutls/crypto.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../test.h"
#include "testutil.h"
#include "parley/blobs.h"
#include "parley/file_life.h"

typedef struct fixture {
    char dir[64];
    store_t *s;
    blobs_t *b;
} fixture_t;

static void fixture_open(fixture_t *fx)
{
    ut_tmpdir(fx->dir, sizeof(fx->dir), "file-life");
    fx->s = ut_store_open(fx->dir);
    char err[256] = "";
    fx->b = blobs_open(fx->dir, err, sizeof(err));
    if (fx->b == NULL)
        TEST_FAIL_("blobs_open: %s", err);
}

static void fixture_close(fixture_t *fx)
{
    blobs_close(fx->b);
    ASSERT_EQ(store_close(fx->s), 0);
    ut_leak_check();
    ut_rmrf(fx->dir);
}

static void sha_of(const char *text, char out[65])
{
    unsigned char d[32];
    ASSERT_EQ(gnutls_hash_fast(GNUTLS_DIG_SHA256, text, strlen(text), d), 0);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Uploads `text` as a new file of `owner` through file_life_add. */
static int add_text(fixture_t *fx, const char *text, const char *owner, bool avatar,
                    store_file_t *f, bool *dedup)
{
    memset(f, 0, sizeof(*f));
    blob_writer_t *w;
    ASSERT_EQ(blob_writer_new(fx->b, BLOB_NO_LIMIT, &w), 0);
    ASSERT_EQ(blob_writer_write(w, text, strlen(text)), 0);
    store_new_id("file", f->id);
    snprintf(f->filename, sizeof(f->filename), "t.txt");
    snprintf(f->uploaded_by, sizeof(f->uploaded_by), "%s", owner);
    f->uploaded_at = 1;
    f->is_avatar = avatar;
    return file_life_add(fx->s, fx->b, w, f, dedup);
}

TEST(file_life_blob_goes_with_its_last_record)
{
    fixture_t fx;
    fixture_open(&fx);
    const char *text = "the same bytes, twice";
    char sha[65];
    sha_of(text, sha);
    store_file_t a, b;
    bool dedup = true;
    ASSERT_EQ(add_text(&fx, text, "usr_1", false, &a, &dedup), 0);
    ASSERT_TRUE(!dedup);
    ASSERT_STREQ(a.sha256, sha);
    ASSERT_EQ(a.size, strlen(text));
    ASSERT_STREQ(a.content_type, "text/plain");
    ASSERT_EQ(add_text(&fx, text, "usr_2", false, &b, &dedup), 0);
    ASSERT_TRUE(dedup);
    ASSERT_EQ(store_blob_refs(fx.s, sha), 2);

    ASSERT_EQ(file_life_remove(fx.s, fx.b, &a), 0);
    ASSERT_TRUE(a.is_deleted);
    ASSERT_TRUE(blobs_exists(fx.b, sha)); /* b still names it */
    ASSERT_EQ(file_life_remove(fx.s, fx.b, &b), 0);
    ASSERT_EQ(store_blob_refs(fx.s, sha), 0);
    ASSERT_TRUE(!blobs_exists(fx.b, sha));
    /* A second deletion of a deleted file is harmless. */
    ASSERT_EQ(file_life_remove(fx.s, fx.b, &b), 0);

    /* A sealed upload that is aborted (refused by the caller) is no blob. */
    blob_writer_t *w;
    blob_info_t info;
    ASSERT_EQ(blob_writer_new(fx.b, BLOB_NO_LIMIT, &w), 0);
    ASSERT_EQ(blob_writer_write(w, text, strlen(text)), 0);
    ASSERT_EQ(blob_writer_seal(w, &info), 0);
    ASSERT_STREQ(info.sha256, sha);
    ASSERT_EQ(blob_writer_write(w, "x", 1), BLOB_E_ARG);
    blob_writer_abort(w);
    ASSERT_TRUE(!blobs_exists(fx.b, sha));

    store_file_clear(&a);
    store_file_clear(&b);
    fixture_close(&fx);
}

TEST(file_life_channel_and_avatar_removals)
{
    fixture_t fx;
    fixture_open(&fx);
    store_file_t f;
    uint64_t lsn;
    for (int i = 0; i < 3; i++) {
        char text[32];
        snprintf(text, sizeof(text), "channel file %d", i);
        ASSERT_EQ(add_text(&fx, text, "usr_1", false, &f, NULL), 0);
        snprintf(f.channel_id, sizeof(f.channel_id), "chn_1");
        ASSERT_EQ(store_file_put(fx.s, &f, &lsn, NULL), 0);
        store_file_clear(&f);
    }
    ASSERT_EQ(file_life_remove_channel(fx.s, fx.b, "chn_1"), 0);
    store_file_t left[4];
    size_t n;
    ASSERT_EQ(store_file_list(fx.s, "chn_1", NULL, 0, 4, left, &n), 0);
    ASSERT_EQ(n, 0);
    char sha[65];
    sha_of("channel file 1", sha);
    ASSERT_TRUE(!blobs_exists(fx.b, sha));

    /* An avatar URL of the user's own avatar upload is dropped; the same
     * URL given for another user, or naming a plain file, is not. */
    store_file_t av, plain;
    ASSERT_EQ(add_text(&fx, "avatar bytes", "usr_1", true, &av, NULL), 0);
    ASSERT_EQ(add_text(&fx, "plain bytes", "usr_1", false, &plain, NULL), 0);
    char url[128];
    snprintf(url, sizeof(url), FILE_URL_PREFIX "%s" FILE_URL_SUFFIX, av.id);
    file_life_drop_avatar(fx.s, fx.b, "usr_2", url);
    ASSERT_TRUE(blobs_exists(fx.b, av.sha256));
    file_life_drop_avatar(fx.s, fx.b, "usr_1", "https://example.com/a.png");
    snprintf(url, sizeof(url), FILE_URL_PREFIX "%s" FILE_URL_SUFFIX, plain.id);
    file_life_drop_avatar(fx.s, fx.b, "usr_1", url);
    ASSERT_TRUE(blobs_exists(fx.b, plain.sha256));
    snprintf(url, sizeof(url), FILE_URL_PREFIX "%s" FILE_URL_SUFFIX, av.id);
    file_life_drop_avatar(fx.s, fx.b, "usr_1", url);
    ASSERT_TRUE(!blobs_exists(fx.b, av.sha256));
    store_file_t got;
    ASSERT_TRUE(store_file_get(fx.s, av.id, &got) && got.is_deleted);
    store_file_clear(&got);
    store_file_clear(&av);
    store_file_clear(&plain);
    fixture_close(&fx);
}

/* ---- the same bytes from many threads ------------------------------------ */

enum { CHURNERS = 4, ROUNDS = 25 };
#define CHURN_TEXT "bytes that every thread uploads and deletes"

typedef struct churner {
    fixture_t *fx;
    pthread_barrier_t *start;
    const char *sha;
    bool keep_last; /* leave the last upload in place */
    int failures;   /* an operation failed */
    int orphans;    /* a live record of ours whose blob was missing */
} churner_t;

static void *churn(void *arg)
{
    churner_t *c = arg;
    pthread_barrier_wait(c->start);
    for (int i = 0; i < ROUNDS; i++) {
        store_file_t f;
        if (add_text(c->fx, CHURN_TEXT, "usr_churn", false, &f, NULL) != 0) {
            c->failures++;
            continue;
        }
        /* Our record is live and only we delete it: the bytes must be there,
         * whatever the other threads' deletions did meanwhile. */
        if (!blobs_exists(c->fx->b, c->sha))
            c->orphans++;
        if (!(c->keep_last && i == ROUNDS - 1) && file_life_remove(c->fx->s, c->fx->b, &f) != 0)
            c->failures++;
        store_file_clear(&f);
    }
    return NULL;
}

/* Runs CHURNERS threads; `kept` of them keep their last file. */
static void churn_round(fixture_t *fx, const char *sha, int kept)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, CHURNERS);
    churner_t c[CHURNERS];
    pthread_t t[CHURNERS];
    for (int i = 0; i < CHURNERS; i++) {
        c[i] = (churner_t){.fx = fx, .start = &start, .sha = sha, .keep_last = i < kept};
        ASSERT_EQ(pthread_create(&t[i], NULL, churn, &c[i]), 0);
    }
    for (int i = 0; i < CHURNERS; i++) {
        pthread_join(t[i], NULL);
        ASSERT_EQ(c[i].failures, 0);
        ASSERT_EQ(c[i].orphans, 0);
    }
    pthread_barrier_destroy(&start);
}

TEST(file_life_concurrent_adds_and_removes_of_one_hash_stay_in_step)
{
    fixture_t fx;
    fixture_open(&fx);
    char sha[65];
    sha_of(CHURN_TEXT, sha);
    /* Everything deleted: no blob without a record. */
    churn_round(&fx, sha, 0);
    ASSERT_EQ(store_blob_refs(fx.s, sha), 0);
    ASSERT_TRUE(!blobs_exists(fx.b, sha));
    /* Two files kept: their blob stays, also after a restart. */
    churn_round(&fx, sha, 2);
    ASSERT_EQ(store_blob_refs(fx.s, sha), 2);
    ASSERT_TRUE(blobs_exists(fx.b, sha));
    fx.s = ut_store_reopen(fx.s, fx.dir);
    ASSERT_EQ(store_blob_refs(fx.s, sha), 2);
    ASSERT_EQ(blobs_check(fx.b, NULL, NULL, NULL), 0);
    fixture_close(&fx);
}

/* ---- different hashes do not wait ---------------------------------------- */

typedef struct holder {
    blobs_t *b;
    const char *sha;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool held;    /* guarded by mu */
    bool release; /* guarded by mu */
} holder_t;

/* Keeps the hash until told to let go. */
static int hold_until_released(void *ctx)
{
    holder_t *h = ctx;
    pthread_mutex_lock(&h->mu);
    h->held = true;
    pthread_cond_broadcast(&h->cv);
    while (!h->release)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

static void *hold_thread(void *arg)
{
    holder_t *h = arg;
    ASSERT_EQ(blobs_with_hash(h->b, h->sha, hold_until_released, h), 0);
    return NULL;
}

typedef struct adder {
    fixture_t *fx;
    const char *text;
    store_file_t f;
    int rc;
    atomic_bool done;
} adder_t;

static void *add_thread(void *arg)
{
    adder_t *a = arg;
    a->rc = add_text(a->fx, a->text, "usr_1", false, &a->f, NULL);
    atomic_store(&a->done, true);
    return NULL;
}

TEST(file_life_other_hashes_do_not_wait_for_a_held_one)
{
    fixture_t fx;
    fixture_open(&fx);
    char sha_a[65], sha_b[65];
    sha_of("bytes A", sha_a);
    sha_of("bytes B", sha_b);
    store_file_t fb;
    /* B's bytes exist before A is held, so that B's removal has work to do. */
    ASSERT_EQ(add_text(&fx, "bytes B", "usr_1", false, &fb, NULL), 0);

    holder_t h = {.b = fx.b, .sha = sha_a};
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    pthread_t holder;
    ASSERT_EQ(pthread_create(&holder, NULL, hold_thread, &h), 0);
    pthread_mutex_lock(&h.mu);
    while (!h.held)
        pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);

    /* While A is held, operations on B complete on this very thread (were
     * they to wait for A, the test would hang and fail on its time limit). */
    store_file_t fb2;
    bool dedup = false;
    ASSERT_EQ(add_text(&fx, "bytes B", "usr_1", false, &fb2, &dedup), 0);
    ASSERT_TRUE(dedup);
    ASSERT_EQ(file_life_remove(fx.s, fx.b, &fb), 0);
    ASSERT_EQ(file_life_remove(fx.s, fx.b, &fb2), 0);
    ASSERT_TRUE(!blobs_exists(fx.b, sha_b));

    /* An upload of A's bytes waits for A: it is seen waiting, not done. */
    adder_t a = {.fx = &fx, .text = "bytes A"};
    pthread_t adder;
    ASSERT_EQ(pthread_create(&adder, NULL, add_thread, &a), 0);
    while (blobs__hash_waiters(fx.b, sha_a) == 0)
        sched_yield();
    ASSERT_TRUE(!atomic_load(&a.done));
    ASSERT_TRUE(!blobs_exists(fx.b, sha_a));

    pthread_mutex_lock(&h.mu);
    h.release = true;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    pthread_join(holder, NULL);
    pthread_join(adder, NULL);
    ASSERT_EQ(a.rc, 0);
    ASSERT_TRUE(blobs_exists(fx.b, sha_a));
    ASSERT_EQ(blobs__hash_waiters(fx.b, sha_a), 0);

    pthread_cond_destroy(&h.cv);
    pthread_mutex_destroy(&h.mu);
    store_file_clear(&a.f);
    store_file_clear(&fb);
    store_file_clear(&fb2);
    fixture_close(&fx);
}
