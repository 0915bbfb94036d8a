/*
 * The store: uniqueness, the mutation path through the log, replay
 * idempotence, recovery after reopening (with and without a snapshot),
 * concurrent inserts and lookups across shards, and read-modify-writes of
 * users and sessions racing one another.
 */
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "../test.h"
#include "testutil.h"
#include "parley/store.h"

static void make_user(store_user_t *u, const char *name, const char *email)
{
    memset(u, 0, sizeof(*u));
    store_new_id("usr", u->id);
    snprintf(u->username, sizeof(u->username), "%s", name);
    snprintf(u->email, sizeof(u->email), "%s", email);
    snprintf(u->password_hash, sizeof(u->password_hash), "$argon2id$fake");
    u->display_name = strdup(name);
    u->is_active = true;
    u->created_at = u->updated_at = 1767960000000;
}

static uint64_t create(store_t *s, const char *name, const char *email, int expect)
{
    store_user_t u;
    make_user(&u, name, email);
    uint64_t lsn = 0;
    int rc = store_user_create(s, &u, true, &lsn);
    if (rc != expect)
        TEST_FAIL_("create %s: %d, expected %d", name, rc, expect);
    if (rc == 0)
        ASSERT_EQ(store_wait(s, lsn), 0);
    store_user_clear(&u);
    return lsn;
}

TEST(store_usernames_and_emails_are_unique_case_insensitively)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "store-unique");
    store_t *s = ut_store_open(dir);
    create(s, "Alice", "Alice@Example.com", 0);
    create(s, "alice", "other@example.com", STORE_E_CONFLICT_USERNAME);
    create(s, "ALICE", "x@example.com", STORE_E_CONFLICT_USERNAME);
    create(s, "bob", "alice@EXAMPLE.com", STORE_E_CONFLICT_EMAIL);
    create(s, "bob", "bob@example.com", 0);
    ASSERT_EQ(store_user_count(s), 2);
    store_user_t u;
    ASSERT_TRUE(store_user_find(s, "ALICE", &u));
    ASSERT_STREQ(u.username, "Alice");
    ASSERT_TRUE(u.is_admin); /* the first account */
    store_user_clear(&u);
    ASSERT_TRUE(store_user_find(s, "alice@example.COM", &u));
    ASSERT_STREQ(u.username, "Alice");
    store_user_clear(&u);
    ASSERT_TRUE(store_user_find(s, "bob", &u));
    ASSERT_TRUE(!u.is_admin);
    store_user_clear(&u);
    ASSERT_TRUE(!store_user_find(s, "carol", &u));
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(store_update_moves_the_email_index)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "store-update");
    store_t *s = ut_store_open(dir);
    create(s, "alice", "a@example.com", 0);
    create(s, "bob", "b@example.com", 0);
    store_user_t u;
    ASSERT_TRUE(store_user_find(s, "alice", &u));
    snprintf(u.email, sizeof(u.email), "b@example.com");
    uint64_t lsn;
    ASSERT_EQ(store_user_update(s, &u, &lsn), STORE_E_CONFLICT_EMAIL);
    snprintf(u.email, sizeof(u.email), "new@example.com");
    free(u.bio);
    u.bio = strdup("hello");
    ASSERT_EQ(store_user_update(s, &u, &lsn), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    store_user_clear(&u);
    ASSERT_TRUE(!store_user_find(s, "a@example.com", &u));
    ASSERT_TRUE(store_user_find(s, "new@example.com", &u));
    ASSERT_STREQ(u.bio, "hello");
    store_user_clear(&u);
    /* The old email is free again. */
    create(s, "carol", "a@example.com", 0);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(store_state_survives_reopen_with_and_without_snapshot)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "store-reopen");
    store_t *s = ut_store_open(dir);
    for (int i = 0; i < 50; i++) {
        char name[32], email[64];
        snprintf(name, sizeof(name), "user%d", i);
        snprintf(email, sizeof(email), "u%d@example.com", i);
        create(s, name, email, 0);
    }
    store_session_t ss = {0};
    store_new_id("ses", ss.id);
    store_user_t u;
    ASSERT_TRUE(store_user_find(s, "user7", &u));
    snprintf(ss.user_id, sizeof(ss.user_id), "%s", u.id);
    store_user_clear(&u);
    snprintf(ss.salt, sizeof(ss.salt), "00112233");
    ss.generation = 3;
    uint64_t lsn;
    ASSERT_EQ(store_session_put(s, &ss, &lsn), 0);
    store_api_key_t k = {0};
    store_new_id("key", k.id);
    snprintf(k.user_id, sizeof(k.user_id), "%s", ss.user_id);
    snprintf(k.name, sizeof(k.name), "ci");
    memset(k.hash, 'a', 64);
    k.can_read = true;
    ASSERT_EQ(store_api_key_put(s, &k, &lsn), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    /* store_close writes a snapshot (the first: nothing is trimmed yet). */
    ASSERT_EQ(store_close(s), 0);

    /* 1. The log alone: remove the snapshot. */
    ut_rm_snapshots(dir);
    s = ut_store_open(dir);
    ASSERT_EQ(store_user_count(s), 50);
    store_session_t got;
    ASSERT_TRUE(store_session_get(s, ss.id, &got));
    ASSERT_EQ(got.generation, 3);
    store_api_key_t gk;
    ASSERT_TRUE(store_api_key_find_hash(s, k.hash, &gk));
    ASSERT_STREQ(gk.name, "ci");

    /* 2. From snapshot S1 (written by the close), plus one record; close
     * writes S2 and trims. */
    s = ut_store_reopen(s, dir);
    ASSERT_EQ(store_user_count(s), 50);
    ASSERT_TRUE(store_user_find(s, "USER42", &u));
    ASSERT_STREQ(u.email, "u42@example.com");
    store_user_clear(&u);
    create(s, "late", "late@example.com", 0);
    ASSERT_EQ(store_close(s), 0);

    /* 3. Lose the newest snapshot: S1 plus the log still hold everything. */
    ut_rm_newest_snapshot(dir);
    s = ut_store_open(dir);
    ASSERT_EQ(store_user_count(s), 51);
    ASSERT_TRUE(store_user_find(s, "late", &u));
    store_user_clear(&u);
    ASSERT_TRUE(store_session_get(s, ss.id, &got));
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(store_replaying_a_record_twice_changes_nothing)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "store-idem");
    store_t *s = ut_store_open(dir);
    const char *rec = "{\"v\":1,\"id\":\"usr_1\",\"username\":\"Zed\",\"email\":\"z@example.com\","
                      "\"password_hash\":\"h\",\"display_name\":\"Z\",\"is_admin\":false,"
                      "\"is_active\":true,\"created_at\":1,\"updated_at\":2,\"last_seen\":0}";
    const char *renamed = "{\"v\":1,\"id\":\"usr_1\",\"username\":\"Zed\",\"email\":\"zz@example.com\","
                          "\"password_hash\":\"h\",\"is_admin\":false,\"is_active\":true,"
                          "\"created_at\":1,\"updated_at\":3}";
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(store_apply(s, STORE_REC_USER, rec, strlen(rec)), 0);
    ASSERT_EQ(store_user_count(s), 1);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(store_apply(s, STORE_REC_USER, renamed, strlen(renamed)), 0);
    store_user_t u;
    ASSERT_TRUE(!store_user_find(s, "z@example.com", &u));
    ASSERT_TRUE(store_user_find(s, "zz@example.com", &u));
    ASSERT_EQ(u.updated_at, 3);
    ASSERT_NULL(u.display_name);
    store_user_clear(&u);
    /* Records that do not parse, or of a newer schema, are refused. */
    ASSERT_EQ(store_apply(s, STORE_REC_USER, "{", 1), STORE_E_CORRUPT);
    const char *future = "{\"v\":99,\"id\":\"usr_2\",\"username\":\"n\",\"email\":\"n@x\","
                         "\"password_hash\":\"h\"}";
    ASSERT_EQ(store_apply(s, STORE_REC_USER, future, strlen(future)), STORE_E_CORRUPT);
    ASSERT_EQ(store_apply(s, 200, "{}", 2), STORE_E_CORRUPT);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

typedef struct worker {
    store_t *s;
    int id;
    int failures;
} worker_t;

static void *insert_and_read(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < 100; i++) {
        char name[32], email[64];
        snprintf(name, sizeof(name), "w%d_%d", w->id, i);
        snprintf(email, sizeof(email), "w%d_%d@example.com", w->id, i);
        store_user_t u;
        make_user(&u, name, email);
        uint64_t lsn;
        if (store_user_create(w->s, &u, false, &lsn) != 0 || store_wait(w->s, lsn) != 0)
            w->failures++;
        store_user_clear(&u);
        store_user_t got;
        if (!store_user_find(w->s, name, &got))
            w->failures++;
        else
            store_user_clear(&got);
        /* Everyone races for the same name: exactly one wins it. */
        store_user_t dup;
        snprintf(name, sizeof(name), "shared%d", i);
        snprintf(email, sizeof(email), "shared%d_%d@example.com", i, w->id);
        make_user(&dup, name, email);
        store_user_create(w->s, &dup, false, &lsn);
        store_user_clear(&dup);
    }
    return NULL;
}

TEST(store_concurrent_inserts_and_lookups_across_shards)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "store-conc");
    store_t *s = ut_store_open(dir);
    enum { THREADS = 8 };
    pthread_t t[THREADS];
    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){.s = s, .id = i};
        pthread_create(&t[i], NULL, insert_and_read, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ASSERT_EQ(w[i].failures, 0);
    }
    ASSERT_EQ(store_user_count(s), THREADS * 100 + 100);
    s = ut_store_reopen(s, dir);
    ASSERT_EQ(store_user_count(s), THREADS * 100 + 100);
    store_user_t u;
    ASSERT_TRUE(store_user_find(s, "w7_99@example.com", &u));
    store_user_clear(&u);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(store_search_and_revocation)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "store-search");
    store_t *s = ut_store_open(dir);
    create(s, "zoe", "zoe@example.com", 0);
    create(s, "adam", "adam@example.com", 0);
    create(s, "Zack", "zack@example.com", 0);
    store_user_t out[10];
    size_t n;
    ASSERT_EQ(store_user_search(s, "z", 0, 10, out, &n), 2);
    ASSERT_EQ(n, 2);
    ASSERT_STREQ(out[0].username, "Zack");
    ASSERT_STREQ(out[1].username, "zoe");
    for (size_t i = 0; i < n; i++)
        store_user_clear(&out[i]);
    ASSERT_EQ(store_user_search(s, NULL, 1, 1, out, &n), 3);
    ASSERT_EQ(n, 1);
    ASSERT_STREQ(out[0].username, "Zack");
    store_user_clear(&out[0]);

    store_user_t u;
    ASSERT_TRUE(store_user_find(s, "adam", &u));
    store_session_t a = {0}, b = {0};
    store_new_id("ses", a.id);
    store_new_id("ses", b.id);
    if (strcmp(a.id, b.id) == 0)
        b.id[strlen(b.id) - 1] ^= 1;
    snprintf(a.user_id, sizeof(a.user_id), "%s", u.id);
    snprintf(b.user_id, sizeof(b.user_id), "%s", u.id);
    store_user_clear(&u);
    uint64_t lsn;
    ASSERT_EQ(store_session_put(s, &a, &lsn), 0);
    ASSERT_EQ(store_session_put(s, &b, &lsn), 0);
    ASSERT_EQ(store_session_revoke_all(s, a.user_id, a.id, &lsn), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    store_session_t got;
    ASSERT_TRUE(store_session_get(s, a.id, &got) && !got.revoked);
    ASSERT_TRUE(store_session_get(s, b.id, &got) && got.revoked);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

static int append_x(void *ctx, store_user_t *u)
{
    (void)ctx;
    size_t n = u->bio ? strlen(u->bio) : 0;
    char *b = malloc(n + 2);
    if (n)
        memcpy(b, u->bio, n);
    b[n] = 'x';
    b[n + 1] = '\0';
    free(u->bio);
    u->bio = b;
    return 0;
}

static int refuse(void *ctx, store_user_t *u)
{
    (void)ctx;
    u->is_admin = true; /* must not stick */
    return 7;
}

typedef struct modify_worker {
    store_t *s;
    const char *id;
    int failures;
} modify_worker_t;

static void *modify_many(void *arg)
{
    modify_worker_t *w = arg;
    for (int i = 0; i < 50; i++) {
        uint64_t lsn;
        if (store_user_modify(w->s, w->id, append_x, NULL, NULL, &lsn) != 0 ||
            store_wait(w->s, lsn) != 0)
            w->failures++;
    }
    return NULL;
}

TEST(store_user_modify_loses_no_update)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "store-modify");
    store_t *s = ut_store_open(dir);
    create(s, "first", "first@example.com", 0);
    create(s, "target", "target@example.com", 0);
    store_user_t u;
    ASSERT_TRUE(store_user_find(s, "target", &u));
    char id[STORE_ID_MAX];
    snprintf(id, sizeof(id), "%s", u.id);
    store_user_clear(&u);

    enum { THREADS = 8 };
    pthread_t t[THREADS];
    modify_worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (modify_worker_t){.s = s, .id = id};
        pthread_create(&t[i], NULL, modify_many, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ASSERT_EQ(w[i].failures, 0);
    }
    ASSERT_TRUE(store_user_get(s, id, &u));
    ASSERT_EQ(strlen(u.bio), THREADS * 50);
    /* The in-memory rev: 1 at creation, +1 a change (views cached by it). */
    ASSERT_EQ(u.rev, 1 + THREADS * 50);
    ASSERT_EQ(store_user_rev(s, id), u.rev);
    ASSERT_EQ(store_user_rev(s, "usr_nobody"), 0);
    store_user_clear(&u);

    uint64_t lsn;
    ASSERT_EQ(store_user_modify(s, id, refuse, NULL, NULL, &lsn), 7);
    ASSERT_TRUE(store_user_get(s, id, &u));
    ASSERT_TRUE(!u.is_admin);
    ASSERT_EQ(u.rev, 1 + THREADS * 50); /* a refused change is no change */
    store_user_clear(&u);
    ASSERT_EQ(store_user_modify(s, "usr_missing", append_x, NULL, NULL, &lsn), STORE_E_NOT_FOUND);
    s = ut_store_reopen(s, dir);
    ASSERT_TRUE(store_user_get(s, id, &u));
    ASSERT_EQ(strlen(u.bio), THREADS * 50);
    store_user_clear(&u);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

/* ---- store_session_modify ------------------------------------------------ */

#define ROTATED_ALREADY 9

typedef struct rotation {
    store_t *s;
    const char *id;
    pthread_barrier_t *start;
    int rc;
} rotation_t;

/* A refresh of generation 1: only the session as it is decides. */
static int rotate_from_one(void *ctx, store_session_t *ss)
{
    (void)ctx;
    if (ss->revoked || ss->generation != 1)
        return ROTATED_ALREADY;
    sched_yield(); /* widen the window a lock must close */
    ss->generation++;
    return 0;
}

static void *rotate_thread(void *arg)
{
    rotation_t *r = arg;
    pthread_barrier_wait(r->start);
    uint64_t lsn;
    r->rc = store_session_modify(r->s, r->id, rotate_from_one, NULL, NULL, &lsn);
    if (r->rc == 0 && store_wait(r->s, lsn) != 0)
        r->rc = -1;
    return NULL;
}

static int revoke_it(void *ctx, store_session_t *ss)
{
    (void)ctx;
    ss->revoked = true;
    return 0;
}

TEST(store_session_modify_concurrent_rotations_one_wins)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "store-session");
    store_t *s = ut_store_open(dir);
    store_session_t ss = {0};
    store_new_id("ses", ss.id);
    snprintf(ss.user_id, sizeof(ss.user_id), "usr_1");
    ss.generation = 1;
    uint64_t lsn;
    ASSERT_EQ(store_session_put(s, &ss, &lsn), 0);

    enum { THREADS = 8 };
    for (int round = 0; round < 20; round++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, THREADS);
        rotation_t r[THREADS];
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++) {
            r[i] = (rotation_t){.s = s, .id = ss.id, .start = &start};
            ASSERT_EQ(pthread_create(&t[i], NULL, rotate_thread, &r[i]), 0);
        }
        int won = 0;
        for (int i = 0; i < THREADS; i++) {
            pthread_join(t[i], NULL);
            if (r[i].rc == 0)
                won++;
            else
                ASSERT_EQ(r[i].rc, ROTATED_ALREADY);
        }
        pthread_barrier_destroy(&start);
        ASSERT_EQ(won, 1);
        store_session_t got;
        ASSERT_TRUE(store_session_get(s, ss.id, &got));
        ASSERT_EQ(got.generation, 2);
        got.generation = 1; /* the next round starts from generation 1 again */
        ASSERT_EQ(store_session_put(s, &got, &lsn), 0);
    }

    /* Revoked, the session is never rotated (written back un-revoked). */
    store_session_t now;
    ASSERT_EQ(store_session_modify(s, ss.id, revoke_it, NULL, &now, &lsn), 0);
    ASSERT_TRUE(now.revoked);
    ASSERT_EQ(store_wait(s, lsn), 0);
    uint64_t untouched = 12345;
    ASSERT_EQ(store_session_modify(s, ss.id, rotate_from_one, NULL, NULL, &untouched),
              ROTATED_ALREADY);
    ASSERT_EQ(untouched, 12345);
    ASSERT_EQ(store_session_modify(s, "ses_missing", revoke_it, NULL, NULL, &lsn),
              STORE_E_NOT_FOUND);
    s = ut_store_reopen(s, dir);
    store_session_t got;
    ASSERT_TRUE(store_session_get(s, ss.id, &got));
    ASSERT_TRUE(got.revoked);
    ASSERT_EQ(got.generation, 1);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

static int moderate(void *ctx, store_user_t *u)
{
    (void)ctx;
    u->banned_at = 1767960000000;
    u->banned_until = 1767970000000;
    u->ban_reason = strdup("spam");
    u->last_login = 1767965000000;
    u->login_count = 7;
    return 0;
}

static void expect_moderated(store_t *s, const char *id)
{
    store_user_t u;
    ASSERT_TRUE(store_user_get(s, id, &u));
    ASSERT_EQ(u.banned_at, 1767960000000);
    ASSERT_EQ(u.banned_until, 1767970000000);
    ASSERT_STREQ(u.ban_reason, "spam");
    ASSERT_EQ(u.last_login, 1767965000000);
    ASSERT_EQ(u.login_count, 7);
    store_user_clear(&u);
}

TEST(store_user_v1_records_load_and_v2_keeps_the_moderation_fields)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "store-user-v2");
    store_t *s = ut_store_open(dir);
    /* A user record as version 1 wrote it: no ban, no login fields. */
    const char *v1 = "{\"v\":1,\"id\":\"usr_old\",\"username\":\"Old\",\"email\":\"old@example.com\","
                     "\"password_hash\":\"h\",\"display_name\":null,\"bio\":null,"
                     "\"avatar_url\":null,\"preferences\":null,\"is_admin\":true,"
                     "\"is_active\":true,\"created_at\":1,\"updated_at\":2,\"last_seen\":3,"
                     "\"mfa_enabled\":false,\"mfa_secret\":null,\"mfa_pending\":null,"
                     "\"mfa_last_step\":0}";
    ASSERT_EQ(store_apply(s, STORE_REC_USER, v1, strlen(v1)), 0);
    store_user_t u;
    ASSERT_TRUE(store_user_find(s, "old", &u));
    ASSERT_TRUE(u.is_admin);
    ASSERT_EQ(u.last_seen, 3);
    ASSERT_EQ(u.banned_at, 0);
    ASSERT_EQ(u.banned_until, 0);
    ASSERT_NULL(u.ban_reason);
    ASSERT_EQ(u.last_login, 0);
    ASSERT_EQ(u.login_count, 0);
    ASSERT_EQ(u.deleted_at, 0);
    store_user_clear(&u);
    /* The writer now writes v3 (the next test); v4 and bad v2 fields are
     * refused; other record types are still at version 1. */
    char *text = store_record_json(STORE_REC_USER, v1, strlen(v1));
    ASSERT_NOT_NULL(text);
    free(text);
    const char *v4 = "{\"v\":4,\"id\":\"usr_n\",\"username\":\"n\",\"email\":\"n@x\","
                     "\"password_hash\":\"h\"}";
    ASSERT_EQ(store_apply(s, STORE_REC_USER, v4, strlen(v4)), STORE_E_CORRUPT);
    const char *negative = "{\"v\":2,\"id\":\"usr_n\",\"username\":\"n\",\"email\":\"n@x\","
                           "\"password_hash\":\"h\",\"login_count\":-1}";
    ASSERT_EQ(store_apply(s, STORE_REC_USER, negative, strlen(negative)), STORE_E_CORRUPT);
    const char *reason = "{\"v\":2,\"id\":\"usr_n\",\"username\":\"n\",\"email\":\"n@x\","
                         "\"password_hash\":\"h\",\"ban_reason\":7}";
    ASSERT_EQ(store_apply(s, STORE_REC_USER, reason, strlen(reason)), STORE_E_CORRUPT);
    const char *session_v2 = "{\"v\":2,\"id\":\"ses_1\",\"user_id\":\"usr_old\",\"salt\":\"00\","
                             "\"generation\":1,\"created_at\":1,\"expires_at\":2,\"revoked\":false}";
    ASSERT_EQ(store_apply(s, STORE_REC_SESSION, session_v2, strlen(session_v2)), STORE_E_CORRUPT);

    create(s, "mod", "mod@example.com", 0);
    ASSERT_TRUE(store_user_find(s, "mod", &u));
    char id[STORE_ID_MAX];
    snprintf(id, sizeof(id), "%s", u.id);
    store_user_clear(&u);
    uint64_t lsn;
    ASSERT_EQ(store_user_modify(s, id, moderate, NULL, NULL, &lsn), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    expect_moderated(s, id);
    ASSERT_EQ(store_close(s), 0);
    /* The log alone (the v1 record was applied, not logged), then a snapshot. */
    ut_rm_snapshots(dir);
    s = ut_store_open(dir);
    expect_moderated(s, id);
    s = ut_store_reopen(s, dir);
    expect_moderated(s, id);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

static int mute(void *ctx, store_user_t *u)
{
    (void)ctx;
    u->muted_at = 1767960000000;
    u->muted_until = 1767990000000;
    u->mute_reason = strdup("flood");
    return 0;
}

static void expect_muted(store_t *s, const char *id)
{
    store_user_t u;
    ASSERT_TRUE(store_user_get(s, id, &u));
    ASSERT_EQ(u.muted_at, 1767960000000);
    ASSERT_EQ(u.muted_until, 1767990000000);
    ASSERT_STREQ(u.mute_reason, "flood");
    ASSERT_EQ(u.banned_at, 1767000000000); /* the v2 fields kept beside */
    ASSERT_STREQ(u.ban_reason, "old ban");
    ASSERT_EQ(u.login_count, 4);
    store_user_clear(&u);
}

TEST(store_user_v2_records_load_and_v3_keeps_the_mute)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "store-user-v3");
    store_t *s = ut_store_open(dir);
    /* A user record as version 2 wrote it: a ban, logins, no mute. */
    const char *v2 = "{\"v\":2,\"id\":\"usr_two\",\"username\":\"Two\",\"email\":\"two@example.com\","
                     "\"password_hash\":\"h\",\"display_name\":null,\"bio\":null,"
                     "\"avatar_url\":null,\"preferences\":null,\"is_admin\":false,"
                     "\"is_active\":true,\"created_at\":1,\"updated_at\":2,\"last_seen\":3,"
                     "\"mfa_enabled\":false,\"mfa_secret\":null,\"mfa_pending\":null,"
                     "\"mfa_last_step\":0,\"banned_at\":1767000000000,\"banned_until\":0,"
                     "\"ban_reason\":\"old ban\",\"last_login\":5,\"login_count\":4,"
                     "\"deleted_at\":0}";
    ASSERT_EQ(store_apply(s, STORE_REC_USER, v2, strlen(v2)), 0);
    store_user_t u;
    ASSERT_TRUE(store_user_find(s, "two", &u));
    ASSERT_EQ(u.muted_at, 0);
    ASSERT_EQ(u.muted_until, 0);
    ASSERT_NULL(u.mute_reason);
    ASSERT_EQ(u.banned_at, 1767000000000);
    ASSERT_STREQ(u.ban_reason, "old ban");
    store_user_clear(&u);
    /* Bad mute fields are refused. */
    const char *bad[] = {
        "{\"v\":3,\"id\":\"usr_n\",\"username\":\"n\",\"email\":\"n@x\","
        "\"password_hash\":\"h\",\"muted_at\":-1}",
        "{\"v\":3,\"id\":\"usr_n\",\"username\":\"n\",\"email\":\"n@x\","
        "\"password_hash\":\"h\",\"muted_until\":\"soon\"}",
        "{\"v\":3,\"id\":\"usr_n\",\"username\":\"n\",\"email\":\"n@x\","
        "\"password_hash\":\"h\",\"mute_reason\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_EQ(store_apply(s, STORE_REC_USER, bad[i], strlen(bad[i])), STORE_E_CORRUPT);
    ASSERT_TRUE(!store_user_get(s, "usr_n", &u));
    /* Muted through the log (v3), replayed from the log alone, then from a
     * snapshot. The v2 record was applied, not logged: log it as it loaded. */
    ASSERT_TRUE(store_user_get(s, "usr_two", &u));
    uint64_t lsn;
    ASSERT_EQ(store_user_update(s, &u, &lsn), 0);
    store_user_clear(&u);
    ASSERT_EQ(store_user_modify(s, "usr_two", mute, NULL, NULL, &lsn), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    expect_muted(s, "usr_two");
    ASSERT_EQ(store_close(s), 0);
    ut_rm_snapshots(dir);
    s = ut_store_open(dir);
    expect_muted(s, "usr_two");
    s = ut_store_reopen(s, dir);
    expect_muted(s, "usr_two");
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

static int delete_account(void *ctx, store_user_t *u)
{
    (void)ctx;
    u->deleted_at = 1767960000000;
    u->is_active = false;
    return 0;
}

static bool only_deleted(void *ctx, const store_user_t *u)
{
    (void)ctx;
    return u->deleted_at != 0;
}

TEST(store_deleting_a_user_frees_its_username_and_email)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "store-delete");
    store_t *s = ut_store_open(dir);
    create(s, "alice", "alice@example.com", 0);
    create(s, "bob", "bob@example.com", 0);
    ASSERT_EQ(store_user_admin_count(s), 1); /* the first */
    store_user_t u;
    ASSERT_TRUE(store_user_find(s, "alice", &u));
    char old[STORE_ID_MAX];
    snprintf(old, sizeof(old), "%s", u.id);
    store_user_clear(&u);
    create(s, "ALICE", "other@example.com", STORE_E_CONFLICT_USERNAME);
    uint64_t lsn;
    ASSERT_EQ(store_user_modify(s, old, delete_account, NULL, NULL, &lsn), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    ASSERT_EQ(store_user_admin_count(s), 0);
    ASSERT_TRUE(!store_user_find(s, "alice", &u));
    ASSERT_TRUE(!store_user_find(s, "alice@example.com", &u));
    size_t n = 0;
    store_user_t hits[4];
    ASSERT_EQ(store_user_search(s, "alice", 0, 4, hits, &n), 0);
    create(s, "Alice", "alice@example.com", 0);

    for (int round = 0; round < 2; round++) {
        if (round == 0) {
            ASSERT_EQ(store_close(s), 0);
            ut_rm_snapshots(dir);
            s = ut_store_open(dir);
        } else {
            s = ut_store_reopen(s, dir);
        }
        ASSERT_TRUE(store_user_find(s, "alice@example.com", &u));
        ASSERT_STRNE(u.id, old);
        ASSERT_STREQ(u.username, "Alice");
        store_user_clear(&u);
        ASSERT_TRUE(store_user_get(s, old, &u));
        ASSERT_EQ(u.deleted_at, 1767960000000);
        ASSERT_TRUE(!u.is_active);
        store_user_clear(&u);
        store_user_t *list;
        ASSERT_EQ(store_user_select(s, only_deleted, NULL, &list), 1);
        ASSERT_STREQ(list[0].id, old);
        store_user_clear(&list[0]);
        free(list);
        ASSERT_EQ(store_user_select(s, NULL, NULL, &list), 3);
        for (int i = 0; i < 3; i++)
            store_user_clear(&list[i]);
        free(list);
    }
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(store_session_list_gives_the_live_sessions_newest_first)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "store-sessions");
    store_t *s = ut_store_open(dir);
    const int64_t now = 1767960000000;
    for (int i = 0; i < 4; i++) {
        store_session_t ss = {0};
        snprintf(ss.id, sizeof(ss.id), "ses_%d", i);
        snprintf(ss.user_id, sizeof(ss.user_id), "%s", i == 3 ? "usr_b" : "usr_a");
        snprintf(ss.salt, sizeof(ss.salt), "00");
        ss.created_at = now - 1000 + i;
        ss.expires_at = i == 1 ? now : now + 1000; /* 1 has just ended */
        ss.revoked = i == 2;
        uint64_t lsn;
        ASSERT_EQ(store_session_put(s, &ss, &lsn), 0);
    }
    store_session_t out[4];
    ASSERT_EQ(store_session_list(s, "usr_a", now, out, 4), 1);
    ASSERT_STREQ(out[0].id, "ses_0");
    ASSERT_EQ(store_session_list(s, "usr_a", now - 1, out, 4), 2);
    ASSERT_STREQ(out[0].id, "ses_1");
    ASSERT_STREQ(out[1].id, "ses_0");
    ASSERT_EQ(store_session_list(s, "usr_a", now - 1, out, 1), 1);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}
