/* The real-time budgets (src/realtime/budget.c): the token bucket's
 * arithmetic (burst, refill, cap, off) and the per-key table. */
#include <stdio.h>

#include "../test.h"
#include "realtime/internal.h"

#define SEC 1000000000LL

TEST(bucket_allows_a_minutes_worth_at_once_then_refills_evenly)
{
    rt_bucket_t b = {0};
    int64_t t = 5 * SEC;
    for (int i = 0; i < 6; i++)
        ASSERT_TRUE(realtime__bucket_take(&b, 6, t));
    ASSERT_TRUE(!realtime__bucket_take(&b, 6, t));
    /* 6 a minute: one every 10 s. */
    ASSERT_TRUE(!realtime__bucket_take(&b, 6, t + 9 * SEC));
    ASSERT_TRUE(realtime__bucket_take(&b, 6, t + 10 * SEC + 1));
    ASSERT_TRUE(!realtime__bucket_take(&b, 6, t + 10 * SEC + 2));
}

TEST(bucket_never_holds_more_than_a_minutes_worth)
{
    rt_bucket_t b = {0};
    ASSERT_TRUE(realtime__bucket_take(&b, 3, SEC));
    /* An hour idle refills to 3, not 180. */
    int64_t later = SEC + 3600 * SEC;
    for (int i = 0; i < 3; i++)
        ASSERT_TRUE(realtime__bucket_take(&b, 3, later));
    ASSERT_TRUE(!realtime__bucket_take(&b, 3, later));
}

TEST(bucket_with_no_limit_always_admits)
{
    rt_bucket_t b = {0};
    for (int i = 0; i < 10000; i++)
        ASSERT_TRUE(realtime__bucket_take(&b, 0, SEC));
}

TEST(budgets_are_per_key)
{
    rt_budgets_t *b = realtime__budgets_new();
    ASSERT_TRUE(realtime__budget_take(b, "usr_a", 2, SEC));
    ASSERT_TRUE(realtime__budget_take(b, "usr_a", 2, SEC));
    ASSERT_TRUE(!realtime__budget_take(b, "usr_a", 2, SEC));
    ASSERT_TRUE(realtime__budget_take(b, "usr_b", 2, SEC));
    ASSERT_TRUE(realtime__budget_take(b, "usr_0", 2, SEC));
    ASSERT_TRUE(!realtime__budget_take(b, "usr_a", 2, SEC));
    realtime__budgets_free(b);
}

TEST(budgets_table_stays_bounded_and_keeps_working_with_many_keys)
{
    rt_budgets_t *b = realtime__budgets_new();
    char key[32];
    /* More keys than the table holds, each with a debt. */
    for (int i = 0; i < 70000; i++) {
        snprintf(key, sizeof(key), "usr_%06d", i);
        ASSERT_TRUE(realtime__budget_take(b, key, 1, SEC + i));
    }
    /* The newest keys' debts are kept. */
    ASSERT_TRUE(!realtime__budget_take(b, "usr_069999", 1, SEC + 70000));
    realtime__budgets_free(b);
}
