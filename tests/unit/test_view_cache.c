/* The cache of rendered views (src/http/view_cache.c): a text answers only
 * under the stamp it was stored with, the budget holds, a NULL cache caches
 * nothing, and concurrent readers and writers never see a torn text. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "../test.h"
#include "testutil.h"
#include "parley/view_cache.h"

TEST(view_cache_answers_only_under_the_stamp_it_was_stored_with)
{
    view_cache_t *c = view_cache_new(1 << 20);
    text_buf_t out = {0};
    ASSERT_TRUE(!view_cache_append(c, 7, 100, &out));
    view_cache_put(c, 7, 100, "{\"a\":1}", 7);
    ASSERT_TRUE(!view_cache_append(c, 7, 101, &out)); /* the stamp moved on */
    ASSERT_TRUE(!view_cache_append(c, 8, 100, &out)); /* another key */
    ASSERT_EQ(out.len, 0);
    ASSERT_TRUE(view_cache_append(c, 7, 100, &out));
    ASSERT_TRUE(view_cache_append(c, 7, 100, &out));
    ASSERT_STREQ(out.data, "{\"a\":1}{\"a\":1}");
    /* A new text under a new stamp replaces the old one. */
    view_cache_put(c, 7, 101, "{\"a\":2}", 7);
    ASSERT_TRUE(!view_cache_append(c, 7, 100, &out));
    out.len = 0;
    ASSERT_TRUE(view_cache_append(c, 7, 101, &out));
    ASSERT_STREQ(out.data, "{\"a\":2}");
    view_cache_stats_t st;
    view_cache_get_stats(c, &st);
    ASSERT_EQ(st.hits, 3);
    ASSERT_EQ(st.misses, 4);
    ASSERT_EQ(st.entries, 1);
    ASSERT_EQ(st.bytes, 7);
    free(out.data);
    view_cache_free(c);
}

TEST(view_cache_keeps_its_budget)
{
    size_t budget = 64 * 1024;
    view_cache_t *c = view_cache_new(budget);
    char text[1000];
    memset(text, 'x', sizeof(text));
    for (uint64_t k = 1; k <= 5000; k++)
        view_cache_put(c, k, k, text, sizeof(text));
    view_cache_stats_t st;
    view_cache_get_stats(c, &st);
    ASSERT_LE(st.bytes, budget);
    ASSERT_GT(st.entries, 0);
    ASSERT_EQ(st.bytes, st.entries * sizeof(text));
    /* A text over a sixteenth of the budget is never kept. */
    static char big[8192];
    memset(big, 'y', sizeof(big));
    view_cache_put(c, 99999, 1, big, sizeof(big));
    text_buf_t out = {0};
    ASSERT_TRUE(!view_cache_append(c, 99999, 1, &out));
    view_cache_free(c);
}

TEST(view_cache_of_budget_zero_is_null_and_caches_nothing)
{
    view_cache_t *c = view_cache_new(0);
    ASSERT_NULL(c);
    view_cache_put(c, 1, 1, "x", 1);
    text_buf_t out = {0};
    ASSERT_TRUE(!view_cache_append(c, 1, 1, &out));
    view_cache_stats_t st;
    view_cache_get_stats(c, &st);
    ASSERT_EQ(st.entries, 0);
    view_cache_free(c);
}

TEST(view_hash_tells_texts_and_words_apart)
{
    ASSERT_NE(view_hash_text(0, "msg_0000000000000001"), view_hash_text(0, "msg_0000000000000002"));
    ASSERT_NE(view_hash_text(0, "a"), view_hash_text(0, "a\x01"));
    ASSERT_NE(view_hash_text(0, ""), view_hash_text(1, ""));
    ASSERT_NE(view_hash_word(view_hash_word(0, 1), 2), view_hash_word(view_hash_word(0, 2), 1));
}

/* Writers store "<key>:<stamp>:" padded texts while readers check that
 * whatever they get is the whole text of the key and stamp they asked for. */
#define KEYS 32

typedef struct race {
    view_cache_t *c;
    int id;
    int bad;
    atomic_bool *written; /* set by the writers after their first put */
} race_t;

static size_t make_text(char *buf, size_t size, uint64_t key, uint64_t stamp)
{
    int n = snprintf(buf, size, "%llu:%llu:", (unsigned long long)key,
                     (unsigned long long)stamp);
    size_t len = (size_t)n + (key * 37 + stamp) % 300;
    memset(buf + n, 'z', len - (size_t)n);
    buf[len] = '\0';
    return len;
}

static void *race_writer(void *arg)
{
    race_t *r = arg;
    char buf[512];
    for (uint64_t i = 0; i < 20000; i++) {
        uint64_t key = (i * 7 + (uint64_t)r->id) % KEYS, stamp = i % 5;
        view_cache_put(r->c, key, stamp, buf, make_text(buf, sizeof(buf), key, stamp));
        atomic_store(r->written, true);
    }
    return NULL;
}

static void *race_reader(void *arg)
{
    race_t *r = arg;
    char want[512];
    text_buf_t out = {0};
    /* Readers start once there is a text: 40,000 reads then ask for every
     * key and stamp, so some hit, however the threads were scheduled. */
    int64_t deadline = tu_deadline();
    while (!atomic_load(r->written)) {
        if (tu_expired(deadline))
            TEST_FAIL_("no writer put a text");
        sched_yield();
    }
    for (uint64_t i = 0; i < 40000; i++) {
        uint64_t key = (i * 13 + (uint64_t)r->id) % KEYS, stamp = i % 5;
        out.len = 0;
        if (view_cache_append(r->c, key, stamp, &out)) {
            make_text(want, sizeof(want), key, stamp);
            if (strcmp(out.data, want) != 0)
                r->bad++;
        }
    }
    free(out.data);
    return NULL;
}

TEST(view_cache_concurrent_readers_get_whole_texts_of_their_stamp)
{
    view_cache_t *c = view_cache_new(64 * 1024);
    pthread_t th[6];
    race_t r[6];
    atomic_bool written = false;
    for (int i = 0; i < 6; i++) {
        r[i] = (race_t){.c = c, .id = i, .written = &written};
        pthread_create(&th[i], NULL, i < 3 ? race_writer : race_reader, &r[i]);
    }
    int bad = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        bad += r[i].bad;
    }
    ASSERT_EQ(bad, 0);
    view_cache_stats_t st;
    view_cache_get_stats(c, &st);
    ASSERT_GT(st.hits, 0);
    ASSERT_LE(st.bytes, 64 * 1024);
    view_cache_free(c);
}
