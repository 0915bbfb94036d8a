/* The report table (src/store/reports.c): filing with its two bounds (one
 * report per reporter and message, STORE_REPORT_OPEN_MAX open per
 * reporter), one close, listing by status, and all of it through the log,
 * from the log alone and from a snapshot; the decoder refusing bad records. */
#include "parley/reports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "testutil.h"

static void fill(store_report_t *r, const char *id, const char *reporter, const char *message,
                 int64_t at)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    snprintf(r->message_id, sizeof(r->message_id), "%s", message);
    snprintf(r->channel_id, sizeof(r->channel_id), "ch_1");
    snprintf(r->reporter_id, sizeof(r->reporter_id), "%s", reporter);
    snprintf(r->author_id, sizeof(r->author_id), "usr_author");
    snprintf(r->author_username, sizeof(r->author_username), "author");
    r->content = strdup("the message");
    r->reason = strdup("spam");
    r->created_at = at;
    r->message_created_at = at - 1;
}

static void file_one(store_t *s, const char *id, const char *reporter, const char *message,
                     int64_t at, int want)
{
    store_report_t r;
    fill(&r, id, reporter, message, at);
    uint64_t lsn = 0;
    ASSERT_EQ(store_report_create(s, &r, &lsn), want);
    if (want == 0)
        ASSERT_EQ(store_wait(s, lsn), 0);
    store_report_clear(&r);
}

static void expect_state(store_t *s)
{
    store_report_t r;
    ASSERT_TRUE(store_report_get(s, "rep_a", &r));
    ASSERT_EQ(r.status, STORE_REPORT_RESOLVED);
    ASSERT_EQ(r.action, STORE_REPORT_BAN_AUTHOR);
    ASSERT_STREQ(r.resolved_by, "usr_admin");
    ASSERT_EQ(r.resolved_at, 5000);
    ASSERT_STREQ(r.content, "the message");
    ASSERT_STREQ(r.author_username, "author");
    store_report_clear(&r);
    ASSERT_TRUE(store_report_get(s, "rep_b", &r));
    ASSERT_EQ(r.status, STORE_REPORT_OPEN);
    ASSERT_EQ(r.action, STORE_REPORT_ACTION_NONE);
    store_report_clear(&r);
    /* the derived tables come back too */
    ASSERT_EQ(store_report_open_count(s, "usr_r1"), 1);
    ASSERT_EQ(store_report_open_count(s, "usr_r2"), 0);
    file_one(s, "rep_dup", "usr_r2", "msg_1", 9000, STORE_E_REPORT_DUPLICATE);
    store_report_t list[4];
    size_t n;
    ASSERT_EQ(store_report_list(s, -1, 0, 4, list, &n), 2);
    ASSERT_EQ(n, 2);
    ASSERT_STREQ(list[0].id, "rep_b"); /* newest first */
    for (size_t i = 0; i < n; i++)
        store_report_clear(&list[i]);
    ASSERT_EQ(store_report_list(s, STORE_REPORT_OPEN, 0, 4, list, &n), 1);
    ASSERT_STREQ(list[0].id, "rep_b");
    store_report_clear(&list[0]);
    ASSERT_EQ(store_report_list(s, STORE_REPORT_DISMISSED, 0, 4, list, &n), 0);
}

TEST(reports_are_filed_closed_once_and_survive_the_log_and_snapshots)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "reports");
    store_t *s = ut_store_open(dir);
    file_one(s, "rep_a", "usr_r2", "msg_1", 1000, 0);
    file_one(s, "rep_b", "usr_r1", "msg_1", 2000, 0);
    file_one(s, "rep_c", "usr_r2", "msg_1", 3000, STORE_E_REPORT_DUPLICATE);
    ASSERT_EQ(store_report_open_count(s, "usr_r2"), 1);
    store_report_t now;
    uint64_t lsn;
    ASSERT_EQ(store_report_close(s, "rep_a", STORE_REPORT_RESOLVED, STORE_REPORT_BAN_AUTHOR,
                                 "usr_admin", 5000, &now, &lsn),
              0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    ASSERT_EQ(now.status, STORE_REPORT_RESOLVED);
    store_report_clear(&now);
    uint64_t untouched = 777;
    ASSERT_EQ(store_report_close(s, "rep_a", STORE_REPORT_DISMISSED, STORE_REPORT_DISMISS,
                                 "usr_admin", 6000, NULL, &untouched),
              STORE_E_REPORT_CLOSED);
    ASSERT_EQ(untouched, 777);
    ASSERT_EQ(store_report_close(s, "rep_nosuch", STORE_REPORT_DISMISSED, STORE_REPORT_DISMISS,
                                 "usr_admin", 6000, NULL, &lsn),
              STORE_E_NOT_FOUND);
    /* a status and an action that do not go together are refused */
    ASSERT_EQ(store_report_close(s, "rep_b", STORE_REPORT_DISMISSED, STORE_REPORT_BAN_AUTHOR,
                                 "usr_admin", 6000, NULL, &lsn),
              STORE_E_INVALID);
    expect_state(s);
    ASSERT_EQ(store_close(s), 0);
    ut_rm_snapshots(dir);
    s = ut_store_open(dir); /* the log alone */
    expect_state(s);
    s = ut_store_reopen(s, dir); /* from the snapshot its close wrote */
    expect_state(s);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(reports_open_ones_are_capped_per_reporter)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "reports-cap");
    store_t *s = ut_store_open(dir);
    char id[STORE_ID_MAX], msg[STORE_ID_MAX];
    for (int i = 0; i < STORE_REPORT_OPEN_MAX; i++) {
        snprintf(id, sizeof(id), "rep_%d", i);
        snprintf(msg, sizeof(msg), "msg_%d", i);
        file_one(s, id, "usr_flood", msg, 1000 + i, 0);
    }
    file_one(s, "rep_over", "usr_flood", "msg_over", 9000, STORE_E_REPORT_LIMIT);
    file_one(s, "rep_other", "usr_calm", "msg_over", 9000, 0);
    uint64_t lsn;
    ASSERT_EQ(store_report_close(s, "rep_0", STORE_REPORT_DISMISSED, STORE_REPORT_DISMISS,
                                 "usr_admin", 9500, NULL, &lsn),
              0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    file_one(s, "rep_over", "usr_flood", "msg_over", 9600, 0);
    s = ut_store_reopen(s, dir);
    ASSERT_EQ(store_report_open_count(s, "usr_flood"), STORE_REPORT_OPEN_MAX);
    file_one(s, "rep_over2", "usr_flood", "msg_more", 9700, STORE_E_REPORT_LIMIT);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

TEST(reports_decoder_refuses_bad_records_and_writers_bad_states)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "reports-bad");
    store_t *s = ut_store_open(dir);
    const char *good = "{\"v\":1,\"id\":\"rep_g\",\"message_id\":\"msg_1\",\"channel_id\":\"ch_1\","
                       "\"reporter_id\":\"usr_1\",\"author_id\":\"usr_2\",\"author_username\":\"a\","
                       "\"content\":null,\"content_truncated\":false,\"message_created_at\":1,"
                       "\"reason\":\"r\",\"status\":\"open\",\"action\":null,\"created_at\":2,"
                       "\"resolved_at\":0,\"resolved_by\":null}";
    ASSERT_EQ(store_apply(s, STORE_REC_REPORT, good, strlen(good)), 0);
    const char *bad[] = {
        "", "[]", "{\"v\":2,\"id\":\"rep_x\"}", "{\"v\":1}",
        /* an unknown status; open with an action; resolved without one */
        "{\"v\":1,\"id\":\"rep_x\",\"message_id\":\"m\",\"channel_id\":\"c\",\"reporter_id\":\"u\","
        "\"author_id\":\"a\",\"reason\":\"r\",\"status\":\"lost\"}",
        "{\"v\":1,\"id\":\"rep_x\",\"message_id\":\"m\",\"channel_id\":\"c\",\"reporter_id\":\"u\","
        "\"author_id\":\"a\",\"reason\":\"r\",\"status\":\"open\",\"action\":\"dismiss\"}",
        "{\"v\":1,\"id\":\"rep_x\",\"message_id\":\"m\",\"channel_id\":\"c\",\"reporter_id\":\"u\","
        "\"author_id\":\"a\",\"reason\":\"r\",\"status\":\"resolved\",\"resolved_by\":\"x\"}",
        /* no reason; an empty one; a content of the wrong type */
        "{\"v\":1,\"id\":\"rep_x\",\"message_id\":\"m\",\"channel_id\":\"c\",\"reporter_id\":\"u\","
        "\"author_id\":\"a\",\"status\":\"open\"}",
        "{\"v\":1,\"id\":\"rep_x\",\"message_id\":\"m\",\"channel_id\":\"c\",\"reporter_id\":\"u\","
        "\"author_id\":\"a\",\"reason\":\"\",\"status\":\"open\"}",
        "{\"v\":1,\"id\":\"rep_x\",\"message_id\":\"m\",\"channel_id\":\"c\",\"reporter_id\":\"u\","
        "\"author_id\":\"a\",\"reason\":\"r\",\"status\":\"open\",\"content\":5}",
        "{\"v\":1,\"id\":\"\",\"message_id\":\"m\",\"channel_id\":\"c\",\"reporter_id\":\"u\","
        "\"author_id\":\"a\",\"reason\":\"r\",\"status\":\"open\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_EQ(store_apply(s, STORE_REC_REPORT, bad[i], strlen(bad[i])), STORE_E_CORRUPT);
    store_report_t r;
    ASSERT_TRUE(!store_report_get(s, "rep_x", &r));
    /* the writer refuses what the decoder would */
    fill(&r, "rep_y", "usr_1", "msg_9", 10);
    free(r.reason);
    r.reason = calloc(STORE_REPORT_REASON_MAX + 2, 1);
    memset(r.reason, 'x', STORE_REPORT_REASON_MAX + 1);
    uint64_t lsn;
    ASSERT_EQ(store_report_create(s, &r, &lsn), STORE_E_INVALID);
    store_report_clear(&r);
    fill(&r, "rep_y", "usr_1", "msg_9", 10);
    r.status = STORE_REPORT_DISMISSED;
    r.action = STORE_REPORT_DISMISS;
    ASSERT_EQ(store_report_create(s, &r, &lsn), STORE_E_INVALID);
    store_report_clear(&r);
    ASSERT_EQ(store_report_status_of("dismissed"), STORE_REPORT_DISMISSED);
    ASSERT_EQ(store_report_action_of("none"), -1);
    ASSERT_EQ(store_report_action_of("mute_author"), STORE_REPORT_MUTE_AUTHOR);
    ASSERT_STREQ(store_report_action_name(STORE_REPORT_DELETE_MESSAGE), "delete_message");
    ASSERT_NULL(store_report_action_name(STORE_REPORT_ACTION_NONE));
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}
