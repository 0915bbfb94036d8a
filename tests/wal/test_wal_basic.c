/* The log's basic contract: records come back after reopening, in order. */
#include <unistd.h>

#include "../test.h"
#include "wal.h"

static int seen_count;
static uint64_t seen_last;

static int count_record(void *ctx, uint64_t lsn, uint8_t type, const void *data, size_t len)
{
    (void)ctx;
    char want[64];
    int n = snprintf(want, sizeof(want), "record %llu", (unsigned long long)lsn);
    if (type != 7 || len != (size_t)n || memcmp(data, want, len) != 0)
        return 1;
    seen_count++;
    seen_last = lsn;
    return 0;
}

TEST(wal_round_trip_after_reopen)
{
    char dir[] = "/tmp/parley-wal-basic-XXXXXX";
    ASSERT_NOT_NULL(mkdtemp(dir));
    wal_t *w;
    ASSERT_EQ(wal_open(dir, NULL, NULL, &w, NULL), 0);
    uint64_t lsn = 0;
    for (int i = 1; i <= 1000; i++) {
        char rec[64];
        int n = snprintf(rec, sizeof(rec), "record %d", i);
        ASSERT_EQ(wal_append(w, 7, rec, (size_t)n, &lsn), 0);
        ASSERT_EQ(lsn, i);
    }
    ASSERT_EQ(wal_wait(w, lsn), 0);
    ASSERT_EQ(wal_durable_lsn(w), 1000);
    ASSERT_EQ(wal_close(w), 0);

    wal_replay_t replay = {.on_record = count_record};
    wal_recovery_t rep;
    ASSERT_EQ(wal_open(dir, NULL, &replay, &w, &rep), 0);
    ASSERT_EQ(seen_count, 1000);
    ASSERT_EQ(seen_last, 1000);
    ASSERT_EQ(rep.last_lsn, 1000);
    ASSERT_EQ(wal_last_lsn(w), 1000);
    ASSERT_EQ(wal_append(w, 7, "record 1001", 11, &lsn), 0);
    ASSERT_EQ(lsn, 1001);
    ASSERT_EQ(wal_wait(w, lsn), 0);
    ASSERT_EQ(wal_close(w), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
}
