/*
 * The user-search index (src/store/user_names.c) against a brute-force
 * model: thousands of users added, renamed and removed (so that merges of
 * the pending slots and of dead entries happen), queried with substrings of
 * names, in other cases, across the two names' boundary, with bytes outside
 * ASCII and with strings nobody has; and store_user_search through the
 * store, live and after a replay.
 */
#include <ctype.h>
#include <strings.h>

#include "../test.h"
#include "testutil.h"
#include "parley/store.h"
#include "store/user_names.h"

#define MODEL_USERS 3000

typedef struct model_user {
    char id[STORE_ID_MAX];
    char username[40];
    char display[80];
    bool live;
} model_user_t;

static uint64_t rng = 88172645463325252ull;

static uint64_t next_random(void)
{
    return ut_xorshift(&rng);
}

/* Short names from few letters (so queries match many users), some upper
 * case, some with UTF-8 bytes. */
static void random_name(char *out, size_t size, bool display)
{
    static const char *const parts[] = {"ka", "Lo", "ri", "TU", "ne", "sa", "é", "ß", "x", "zz"};
    out[0] = '\0';
    int n = 1 + (int)(next_random() % 4);
    for (int i = 0; i < n; i++) {
        strncat(out, parts[next_random() % 10], size - strlen(out) - 1);
        if (display && next_random() % 3 == 0)
            strncat(out, " ", size - strlen(out) - 1);
    }
}

static bool model_has(const model_user_t *u, const char *q)
{
    return u->live && (strcasestr(u->username, q) || (u->display[0] && strcasestr(u->display, q)));
}

static int by_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The index's answer for q equals the model's. */
static void check_query(user_names_t *x, const model_user_t *m, size_t n, const char *q)
{
    char(*ids)[STORE_ID_MAX];
    size_t got = store__names_find(x, q, &ids);
    qsort(ids, got, sizeof(*ids), by_id);
    size_t want = 0;
    for (size_t i = 0; i < n; i++) {
        if (!model_has(&m[i], q))
            continue;
        want++;
        if (bsearch(m[i].id, ids, got, sizeof(*ids), by_id) == NULL)
            TEST_FAIL_("query \"%s\": %s (%s / %s) missing", q, m[i].id, m[i].username,
                       m[i].display);
    }
    if (got != want)
        TEST_FAIL_("query \"%s\": %zu found, %zu expected", q, got, want);
    free(ids);
}

static void check_queries(user_names_t *x, const model_user_t *m, size_t n)
{
    static const char *const fixed[] = {"k", "ka", "KA", "kalo", "lo ri", "é", "ß", "xzz",
                                        "zzz", "nobody", "a\xc3", "\xff", "tuTU"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(*fixed); i++)
        check_query(x, m, n, fixed[i]);
    for (int k = 0; k < 40; k++) {
        const model_user_t *u = &m[next_random() % n];
        const char *name = next_random() % 2 ? u->username : u->display;
        size_t len = strlen(name);
        if (len == 0)
            continue;
        size_t from = next_random() % len, take = 1 + next_random() % (len - from);
        char q[80];
        snprintf(q, sizeof(q), "%.*s", (int)take, name + from);
        if (next_random() % 2)
            for (char *p = q; *p; p++)
                *p = (char)toupper((unsigned char)*p);
        check_query(x, m, n, q);
    }
}

TEST(user_names_index_matches_a_scan_through_adds_renames_and_removals)
{
    user_names_t *x = store__names_new();
    model_user_t *m = calloc(MODEL_USERS, sizeof(*m));
    for (size_t i = 0; i < MODEL_USERS; i++) {
        snprintf(m[i].id, sizeof(m[i].id), "usr_%06zu", i);
        random_name(m[i].username, sizeof(m[i].username), false);
        snprintf(m[i].username + strlen(m[i].username), 8, "%zu", i % 7);
        if (next_random() % 4)
            random_name(m[i].display, sizeof(m[i].display), true);
        m[i].live = true;
        store__names_set(x, m[i].id, m[i].username, m[i].display[0] ? m[i].display : NULL);
        if (i % 500 == 499)
            check_queries(x, m, i + 1);
    }
    for (int round = 0; round < 12; round++) {
        for (int k = 0; k < 700; k++) {
            model_user_t *u = &m[next_random() % MODEL_USERS];
            switch (next_random() % 4) {
            case 0: /* removed (deleted) */
                u->live = false;
                store__names_set(x, u->id, NULL, NULL);
                break;
            case 1: /* renamed */
                random_name(u->username, sizeof(u->username), false);
                u->live = true;
                store__names_set(x, u->id, u->username, u->display[0] ? u->display : NULL);
                break;
            case 2: /* a new display name */
                random_name(u->display, sizeof(u->display), true);
                u->live = true;
                store__names_set(x, u->id, u->username, u->display);
                break;
            default: /* the same names again (a login) */
                if (u->live)
                    store__names_set(x, u->id, u->username, u->display[0] ? u->display : NULL);
            }
        }
        check_queries(x, m, MODEL_USERS);
    }
    ASSERT_GT(store__names_bytes(x), 0);
    store__names_clear(x);
    char(*ids)[STORE_ID_MAX];
    ASSERT_EQ(store__names_find(x, "ka", &ids), 0);
    free(ids);
    store__names_free(x);
    store__names_free(NULL);
    free(m);
}

TEST(user_names_do_not_match_across_the_two_names)
{
    user_names_t *x = store__names_new();
    store__names_set(x, "usr_1", "abc", "Def");
    char(*ids)[STORE_ID_MAX];
    ASSERT_EQ(store__names_find(x, "cd", &ids), 0);
    free(ids);
    ASSERT_EQ(store__names_find(x, "c", &ids), 1);
    free(ids);
    ASSERT_EQ(store__names_find(x, "DEF", &ids), 1);
    free(ids);
    ASSERT_EQ(store__names_find(x, "abcdef", &ids), 0);
    free(ids);
    /* Both names hold it: the user is found once. */
    store__names_set(x, "usr_2", "anna", "Anna Nanna");
    ASSERT_EQ(store__names_find(x, "nn", &ids), 1);
    ASSERT_STREQ(ids[0], "usr_2");
    free(ids);
    store__names_free(x);
}

static void add_user(store_t *s, const char *name, const char *display, char id[STORE_ID_MAX])
{
    store_user_t u;
    memset(&u, 0, sizeof(u));
    store_new_id("usr", u.id);
    snprintf(u.username, sizeof(u.username), "%s", name);
    snprintf(u.email, sizeof(u.email), "%s@example.com", name);
    snprintf(u.password_hash, sizeof(u.password_hash), "$argon2id$fake");
    u.display_name = display ? strdup(display) : NULL;
    u.is_active = true;
    u.created_at = u.updated_at = 1767960000000;
    uint64_t lsn;
    ASSERT_EQ(store_user_create(s, &u, false, &lsn), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    memcpy(id, u.id, STORE_ID_MAX);
    store_user_clear(&u);
}

static int rename_to(void *ctx, store_user_t *u)
{
    snprintf(u->username, sizeof(u->username), "%s", (const char *)ctx);
    return 0;
}

static int delete_user(void *ctx, store_user_t *u)
{
    (void)ctx;
    u->deleted_at = 1767960000001;
    return 0;
}

static void expect_search(store_t *s, const char *q, size_t total, const char *first)
{
    store_user_t out[4];
    size_t n;
    ASSERT_EQ(store_user_search(s, q, 0, 4, out, &n), total);
    if (first)
        ASSERT_STREQ(out[0].username, first);
    for (size_t i = 0; i < n; i++)
        store_user_clear(&out[i]);
}

TEST(user_search_follows_renames_and_deletions_live_and_after_replay)
{
    char dir[64], a[STORE_ID_MAX], b[STORE_ID_MAX], c[STORE_ID_MAX];
    ut_tmpdir(dir, sizeof(dir), "user-names");
    store_t *s = ut_store_open(dir);
    add_user(s, "marta", "Marta Kowal", a);
    add_user(s, "bob", "Robert", b);
    add_user(s, "carol", NULL, c);
    expect_search(s, "ar", 2, "carol");
    expect_search(s, "KOWAL", 1, "marta");
    uint64_t lsn;
    ASSERT_EQ(store_user_modify(s, b, rename_to, "bartek", NULL, &lsn), 0);
    ASSERT_EQ(store_user_modify(s, c, delete_user, NULL, NULL, &lsn), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    expect_search(s, "ar", 2, "bartek");
    expect_search(s, "bob", 0, NULL);
    expect_search(s, "robert", 1, "bartek");
    expect_search(s, "carol", 0, NULL);
    s = ut_store_reopen(s, dir);
    expect_search(s, "ar", 2, "bartek");
    expect_search(s, "bob", 0, NULL);
    expect_search(s, "carol", 0, NULL);
    expect_search(s, "", 2, "bartek");
    store_close(s);
}
