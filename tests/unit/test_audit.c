/* The audit log's table: entries newest first with filters, the bounds by
 * count and age, a record applied twice, snapshots of more entries than one
 * chunk, and records that do not parse. */
#include <string.h>

#include "../test.h"
#include "testutil.h"
#include "parley/audit.h"
#include "parley/clock.h"
#include "parley/store.h"

static uint64_t add(store_t *s, const char *actor, const char *action, const char *target,
                    int64_t at)
{
    store_audit_t a;
    memset(&a, 0, sizeof(a));
    snprintf(a.actor_id, sizeof(a.actor_id), "%s", actor);
    snprintf(a.action, sizeof(a.action), "%s", action);
    snprintf(a.target, sizeof(a.target), "%s", target);
    snprintf(a.ip, sizeof(a.ip), "127.0.0.1");
    a.at = at;
    uint64_t lsn = 0;
    ASSERT_EQ(store_audit_append(s, &a, &lsn), 0);
    ASSERT_GT(lsn, 0);
    store_audit_clear(&a);
    return lsn;
}

static size_t find(store_t *s, const store_audit_query_t *q, store_audit_t *out, size_t *n)
{
    return store_audit_find(s, q, out, n);
}

static void clear_all(store_audit_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_audit_clear(&out[i]);
}

TEST(audit_entries_newest_first_with_filters_and_paging)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "audit");
    store_t *s = ut_store_open(dir);
    add(s, "usr_a", "auth.login", "usr_a", 0);
    add(s, "usr_b", "auth.login_failed", "bob", 0);
    add(s, "usr_a", "user.ban", "usr_b", 0);
    uint64_t lsn = add(s, "usr_a", "user.unban", "usr_b", 0);
    ASSERT_EQ(store_wait(s, lsn), 0);

    store_audit_t out[8];
    size_t n;
    store_audit_query_t all = {.limit = 8};
    ASSERT_EQ(find(s, &all, out, &n), 4);
    ASSERT_EQ(n, 4);
    ASSERT_STREQ(out[0].action, "user.unban"); /* newest first */
    ASSERT_STREQ(out[3].action, "auth.login");
    ASSERT_GT(out[0].at, 0); /* dated by the store */
    ASSERT_STRNE(out[0].id, out[1].id);
    clear_all(out, n);

    store_audit_query_t q = {.actor_id = "usr_a", .limit = 8};
    ASSERT_EQ(find(s, &q, out, &n), 3);
    clear_all(out, n);
    store_audit_query_t prefix = {.action = "user.", .limit = 8};
    ASSERT_EQ(find(s, &prefix, out, &n), 2);
    clear_all(out, n);
    store_audit_query_t exact = {.action = "auth.login", .limit = 8};
    ASSERT_EQ(find(s, &exact, out, &n), 1); /* not auth.login_failed */
    clear_all(out, n);
    store_audit_query_t target = {.target = "usr_b", .action = "user.ban", .limit = 8};
    ASSERT_EQ(find(s, &target, out, &n), 1);
    clear_all(out, n);
    store_audit_query_t page = {.offset = 3, .limit = 2};
    ASSERT_EQ(find(s, &page, out, &n), 4); /* the total, whatever the page */
    ASSERT_EQ(n, 1);
    ASSERT_STREQ(out[0].action, "auth.login");
    clear_all(out, n);
    store_audit_query_t none = {.actor_id = "usr_nobody", .limit = 8};
    ASSERT_EQ(find(s, &none, out, &n), 0);
    ASSERT_EQ(n, 0);

    /* Kept across a restart, in the same order. */
    s = ut_store_reopen(s, dir);
    ASSERT_EQ(find(s, &all, out, &n), 4);
    ASSERT_STREQ(out[0].action, "user.unban");
    ASSERT_STREQ(out[3].action, "auth.login");
    clear_all(out, n);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(audit_time_range_is_from_inclusive_to_exclusive)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "audit");
    store_t *s = ut_store_open(dir);
    add(s, "", "a.one", "", 1000);
    add(s, "", "a.two", "", 2000);
    add(s, "", "a.three", "", 3000);
    store_audit_t out[4];
    size_t n;
    store_audit_query_t q = {.from = 2000, .to = 3000, .limit = 4};
    ASSERT_EQ(find(s, &q, out, &n), 1);
    ASSERT_STREQ(out[0].action, "a.two");
    clear_all(out, n);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(audit_bound_by_count_drops_the_oldest_and_snapshots_keep_the_rest)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "audit");
    store_t *s = ut_store_open(dir);
    store_audit_set_limits(s, 1000, 0);
    char target[32];
    uint64_t lsn = 0;
    for (int i = 0; i < 1500; i++) { /* three snapshot chunks */
        snprintf(target, sizeof(target), "t%d", i);
        lsn = add(s, "usr_a", "x.y", target, 0);
    }
    ASSERT_EQ(store_wait(s, lsn), 0);
    ASSERT_EQ(store_audit_count(s), 1000);
    store_audit_t out[2];
    size_t n;
    store_audit_query_t q = {.offset = 999, .limit = 2};
    ASSERT_EQ(find(s, &q, out, &n), 1000);
    ASSERT_EQ(n, 1);
    ASSERT_STREQ(out[0].target, "t500"); /* the oldest kept */
    clear_all(out, n);

    /* The snapshot holds the 1000 kept (the log before it is trimmed). */
    ASSERT_EQ(store_snapshot(s), 0);
    s = ut_store_reopen(s, dir);
    ASSERT_EQ(store_audit_count(s), 1000);
    store_audit_query_t newest = {.limit = 1};
    ASSERT_EQ(find(s, &newest, out, &n), 1000);
    ASSERT_STREQ(out[0].target, "t1499");
    clear_all(out, n);
    ASSERT_EQ(find(s, &q, out, &n), 1000);
    ASSERT_STREQ(out[0].target, "t500");
    clear_all(out, n);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(audit_bound_by_age_hides_and_then_drops_old_entries)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "audit");
    store_t *s = ut_store_open(dir);
    int64_t now = clock_wall_ms(), day = 24LL * 3600 * 1000;
    add(s, "", "old.one", "", now - 10 * day);
    add(s, "", "new.one", "", 0);
    store_audit_t out[4];
    size_t n;
    store_audit_query_t all = {.limit = 4};
    ASSERT_EQ(find(s, &all, out, &n), 2);
    clear_all(out, n);
    store_audit_set_limits(s, 100, 5);
    ASSERT_EQ(find(s, &all, out, &n), 1);
    ASSERT_STREQ(out[0].action, "new.one");
    clear_all(out, n);
    add(s, "", "new.two", "", 0); /* the next append drops what is too old */
    ASSERT_EQ(store_audit_count(s), 2);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(audit_record_applied_twice_adds_one_entry)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "audit");
    store_t *s = ut_store_open(dir);
    const char *rec = "{\"v\":1,\"id\":\"aud_1\",\"at\":5,\"actor\":\"usr_a\",\"action\":"
                      "\"user.ban\",\"target\":\"usr_b\",\"ip\":\"::1\",\"details\":"
                      "{\"reason\":\"spam\"}}";
    ASSERT_EQ(store_apply(s, STORE_REC_AUDIT, rec, strlen(rec)), 0);
    ASSERT_EQ(store_apply(s, STORE_REC_AUDIT, rec, strlen(rec)), 0);
    ASSERT_EQ(store_audit_count(s), 1);
    store_audit_t out[2];
    size_t n;
    store_audit_query_t all = {.limit = 2};
    ASSERT_EQ(find(s, &all, out, &n), 1);
    ASSERT_STREQ(out[0].details, "{\"reason\":\"spam\"}");
    ASSERT_STREQ(out[0].ip, "::1");
    clear_all(out, n);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(audit_refuses_bad_entries_and_records)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "audit");
    store_t *s = ut_store_open(dir);
    store_audit_t a;
    uint64_t lsn = 0;
    memset(&a, 0, sizeof(a));
    snprintf(a.action, sizeof(a.action), "User Ban"); /* outside [a-z0-9_.] */
    ASSERT_EQ(store_audit_append(s, &a, &lsn), STORE_E_INVALID);
    snprintf(a.action, sizeof(a.action), "user.ban");
    a.details = strdup("[1, 2]"); /* not an object */
    ASSERT_EQ(store_audit_append(s, &a, &lsn), STORE_E_INVALID);
    store_audit_clear(&a);
    a.details = malloc(AUDIT_DETAILS_MAX + 16);
    memset(a.details, ' ', AUDIT_DETAILS_MAX + 8);
    memcpy(a.details, "{}", 2);
    a.details[AUDIT_DETAILS_MAX + 8] = '\0';
    ASSERT_EQ(store_audit_append(s, &a, &lsn), STORE_E_INVALID);
    store_audit_clear(&a);
    ASSERT_EQ(lsn, 0);
    ASSERT_EQ(store_audit_count(s), 0);

    static const char *const bad[] = {
        "{\"v\":1}",
        "{\"v\":1,\"id\":\"aud_1\",\"at\":\"x\",\"actor\":\"\",\"action\":\"a\",\"target\":\"\","
        "\"ip\":\"\"}",
        "{\"v\":1,\"id\":\"aud_1\",\"at\":1,\"actor\":\"\",\"action\":\"A!\",\"target\":\"\","
        "\"ip\":\"\"}",
        "{\"v\":1,\"id\":\"aud_1\",\"at\":1,\"actor\":\"\",\"action\":\"a\",\"target\":\"\","
        "\"ip\":\"\",\"details\":[]}",
        "{\"v\":99,\"id\":\"aud_1\",\"at\":1,\"actor\":\"\",\"action\":\"a\",\"target\":\"\","
        "\"ip\":\"\"}",
        "not json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_EQ(store_apply(s, STORE_REC_AUDIT, bad[i], strlen(bad[i])), STORE_E_CORRUPT);
    ASSERT_EQ(store_audit_count(s), 0);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(audit_replay_keeps_what_a_raised_bound_kept_and_a_lower_bound_hides_the_oldest)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "audit");
    store_t *s = ut_store_open(dir);
    store_audit_set_limits(s, 8, 0);
    uint64_t lsn = 0;
    char target[16];
    for (int i = 0; i < 10; i++) {
        snprintf(target, sizeof(target), "t%d", i);
        lsn = add(s, "", "x.y", target, 0);
    }
    ASSERT_EQ(store_wait(s, lsn), 0);
    ASSERT_EQ(store_audit_count(s), 8);
    /* Reopened without a snapshot (the log alone, as after a crash): replay
     * does not trim, so a bound set later (the live setting) finds them. */
    ASSERT_EQ(store_close(s), 0);
    ut_rm_snapshots(dir);
    s = ut_store_open(dir);
    store_audit_set_limits(s, 5, 0);
    ASSERT_EQ(store_audit_count(s), 5); /* only the newest 5 are seen */
    store_audit_t out[10];
    size_t n;
    store_audit_query_t all = {.limit = 10};
    ASSERT_EQ(find(s, &all, out, &n), 5);
    ASSERT_STREQ(out[0].target, "t9");
    ASSERT_STREQ(out[4].target, "t5");
    clear_all(out, n);
    store_audit_set_limits(s, 100, 0);
    ASSERT_EQ(store_audit_count(s), 10); /* the log kept them all */
    store_audit_set_limits(s, 5, 0);
    add(s, "", "x.z", "t10", 0); /* the next entry drops what is past the bound */
    store_audit_set_limits(s, 100, 0);
    ASSERT_EQ(store_audit_count(s), 5);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}
