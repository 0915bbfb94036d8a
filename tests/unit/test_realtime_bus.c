/* The event ring (src/realtime/bus.c): sequence numbers, resume points, what
 * falls out of the ring, frames, references, and concurrent publishers. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../test.h"
#include "realtime/internal.h"

static int published;

static void count_publish(void *ctx)
{
    (void)ctx;
    __atomic_add_fetch(&published, 1, __ATOMIC_RELAXED);
}

static uint64_t publish_n(rt_bus_t *bus, int n)
{
    uint64_t last = 0;
    for (int i = 0; i < n; i++)
        last = realtime__bus_publish(bus, "message.created", "ch_a", NULL, NULL, 0,
                              json_pack("{s:i}", "n", i));
    return last;
}

TEST(bus_seq_starts_above_this_runs_time_and_grows_by_one)
{
    uint64_t before = (uint64_t)time(NULL);
    rt_bus_t *bus = realtime__bus_new(8, 0);
    uint64_t after = (uint64_t)time(NULL);
    uint64_t start = realtime__bus_last_seq(bus);
    /* The second it was made in, whatever the time the test took. */
    ASSERT_GE(start, before << 20);
    ASSERT_LE(start, after << 20);
    uint64_t a = publish_n(bus, 1);
    uint64_t b = publish_n(bus, 1);
    ASSERT_EQ(a, start + 1);
    ASSERT_EQ(b, start + 2);
    ASSERT_EQ(realtime__bus_last_seq(bus), b);
    realtime__bus_free(bus);
}

TEST(bus_event_frame_carries_type_seq_and_data)
{
    rt_bus_t *bus = realtime__bus_new(8, 0);
    uint64_t seq = realtime__bus_publish(bus, "typing", "ch_x", NULL, NULL, 0,
                                  json_pack("{s:s, s:b}", "user_id", "usr_1", "is_typing", 1));
    rt_event_t *ev[4];
    bool lost;
    ASSERT_EQ(realtime__bus_fetch(bus, seq - 1, ev, 4, &lost), 1);
    ASSERT_TRUE(!lost);
    json_t *frame = json_loadb(ev[0]->frame, ev[0]->frame_len, 0, NULL);
    ASSERT_NOT_NULL(frame);
    ASSERT_STREQ(json_string_value(json_object_get(frame, "type")), "typing");
    ASSERT_EQ((uint64_t)json_integer_value(json_object_get(frame, "seq")), seq);
    ASSERT_STREQ(json_string_value(json_object_get(json_object_get(frame, "data"), "user_id")),
                 "usr_1");
    /* The data is the frame's own bytes, not a second copy. */
    const char *want = "{\"user_id\":\"usr_1\",\"is_typing\":true}";
    ASSERT_EQ(ev[0]->data_len, strlen(want));
    ASSERT_EQ(memcmp(ev[0]->data, want, strlen(want)), 0);
    ASSERT_TRUE(ev[0]->data > ev[0]->frame && ev[0]->data < ev[0]->frame + ev[0]->frame_len);
    ASSERT_STREQ(ev[0]->channel_id, "ch_x");
    json_decref(frame);
    realtime__event_release(ev[0]);
    realtime__bus_free(bus);
}

TEST(bus_fetch_returns_events_after_the_cursor_in_order)
{
    rt_bus_t *bus = realtime__bus_new(16, 0);
    uint64_t start = realtime__bus_last_seq(bus);
    publish_n(bus, 10);
    rt_event_t *ev[16];
    bool lost;
    size_t n = realtime__bus_fetch(bus, start + 3, ev, 16, &lost);
    ASSERT_EQ(n, 7);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(ev[i]->seq, start + 4 + i);
        realtime__event_release(ev[i]);
    }
    /* A batch limit, then the rest from where it stopped. */
    n = realtime__bus_fetch(bus, start, ev, 4, &lost);
    ASSERT_EQ(n, 4);
    uint64_t next = ev[3]->seq;
    for (size_t i = 0; i < n; i++)
        realtime__event_release(ev[i]);
    ASSERT_EQ(realtime__bus_fetch(bus, next, ev, 16, &lost), 6);
    for (size_t i = 0; i < 6; i++)
        realtime__event_release(ev[i]);
    /* Up to date: nothing, and not lost. */
    ASSERT_EQ(realtime__bus_fetch(bus, realtime__bus_last_seq(bus), ev, 16, &lost), 0);
    ASSERT_TRUE(!lost);
    realtime__bus_free(bus);
}

TEST(bus_resume_points_the_ring_no_longer_covers_are_lost)
{
    rt_bus_t *bus = realtime__bus_new(8, 0);
    uint64_t start = realtime__bus_last_seq(bus);
    publish_n(bus, 20);
    rt_event_t *ev[32];
    bool lost;
    /* The ring keeps seq start+13 .. start+20: resuming after start+12 works,
     * after start+11 does not. */
    size_t n = realtime__bus_fetch(bus, start + 12, ev, 32, &lost);
    ASSERT_TRUE(!lost);
    ASSERT_EQ(n, 8);
    for (size_t i = 0; i < n; i++)
        realtime__event_release(ev[i]);
    ASSERT_EQ(realtime__bus_fetch(bus, start + 11, ev, 32, &lost), 0);
    ASSERT_TRUE(lost);
    /* From an earlier run (below this run's first seq), or from the future. */
    realtime__bus_fetch(bus, 5, ev, 32, &lost);
    ASSERT_TRUE(lost);
    realtime__bus_fetch(bus, realtime__bus_last_seq(bus) + 1, ev, 32, &lost);
    ASSERT_TRUE(lost);
    realtime__bus_free(bus);
}

TEST(bus_events_outlive_the_ring_while_referenced)
{
    rt_bus_t *bus = realtime__bus_new(4, 0);
    uint64_t start = realtime__bus_last_seq(bus);
    publish_n(bus, 1);
    rt_event_t *held[1];
    bool lost;
    ASSERT_EQ(realtime__bus_fetch(bus, start, held, 1, &lost), 1);
    publish_n(bus, 10); /* evicts it from the ring */
    ASSERT_EQ(held[0]->seq, start + 1);
    ASSERT_STREQ(held[0]->type, "message.created");
    realtime__event_release(held[0]); /* ASan reports it if the ring freed it */
    realtime__bus_free(bus);
}

TEST(bus_audience_is_sorted_and_publish_notifies)
{
    rt_bus_t *bus = realtime__bus_new(4, 0);
    published = 0;
    realtime__bus_on_publish(bus, count_publish, NULL);
    const char *audience[] = {"usr_c", "usr_a", "usr_b"};
    uint64_t seq = realtime__bus_publish(bus, "presence", NULL, NULL, audience, 3,
                                  json_pack("{s:s}", "user_id", "usr_a"));
    ASSERT_EQ(published, 1);
    rt_event_t *ev[1];
    bool lost;
    ASSERT_EQ(realtime__bus_fetch(bus, seq - 1, ev, 1, &lost), 1);
    ASSERT_EQ(ev[0]->n_audience, 3);
    ASSERT_STREQ(ev[0]->audience[0], "usr_a");
    ASSERT_STREQ(ev[0]->audience[2], "usr_c");
    realtime__event_release(ev[0]);
    /* A NULL data (out of memory upstream) publishes nothing. */
    ASSERT_EQ(realtime__bus_publish(bus, "x", NULL, NULL, NULL, 0, NULL), 0);
    ASSERT_EQ(published, 1);
    realtime__bus_free(bus);
}

typedef struct {
    rt_bus_t *bus;
    int n;
} publisher_arg_t;

static void *publisher(void *p)
{
    publisher_arg_t *a = p;
    publish_n(a->bus, a->n);
    return NULL;
}

TEST(bus_concurrent_publishers_get_distinct_consecutive_seqs)
{
    rt_bus_t *bus = realtime__bus_new(4096, 0);
    uint64_t start = realtime__bus_last_seq(bus);
    pthread_t t[4];
    publisher_arg_t arg = {bus, 500};
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, publisher, &arg);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ASSERT_EQ(realtime__bus_last_seq(bus), start + 2000);
    uint64_t cursor = start;
    size_t total = 0;
    rt_event_t *ev[64];
    bool lost;
    size_t n;
    while ((n = realtime__bus_fetch(bus, cursor, ev, 64, &lost)) > 0) {
        for (size_t i = 0; i < n; i++) {
            ASSERT_EQ(ev[i]->seq, cursor + 1);
            cursor = ev[i]->seq;
            realtime__event_release(ev[i]);
        }
        total += n;
    }
    ASSERT_EQ(total, 2000);
    realtime__bus_free(bus);
}

/* An event whose data is `size` bytes of JSON text. */
static uint64_t publish_sized(rt_bus_t *bus, size_t size)
{
    char *text = malloc(size + 1);
    memset(text, 'a', size);
    text[0] = '"';
    text[size - 1] = '"';
    text[size] = '\0';
    return realtime__bus_publish_text(bus, "message.created", "ch_a", NULL, NULL, 0, text);
}

TEST(bus_byte_bound_drops_the_oldest_and_resume_from_them_is_lost)
{
    /* Room for 1000 events, but 64 KiB: events of ~10 KB keep only six. */
    rt_bus_t *bus = realtime__bus_new(1000, 65536);
    uint64_t start = realtime__bus_last_seq(bus);
    for (int i = 0; i < 50; i++)
        publish_sized(bus, 10000);
    ASSERT_LE(realtime__bus_bytes(bus), 65536);
    size_t events, capacity;
    realtime__bus_fill(bus, &events, &capacity);
    ASSERT_GE(events, 5);
    ASSERT_LE(events, 6);
    ASSERT_EQ(capacity, 1000);
    uint64_t last = realtime__bus_last_seq(bus);
    rt_event_t *ev[64];
    bool lost;
    /* The kept ones resume, oldest first; one before them is lost. */
    size_t n = realtime__bus_fetch(bus, last - events, ev, 64, &lost);
    ASSERT_TRUE(!lost);
    ASSERT_EQ(n, events);
    ASSERT_EQ(ev[0]->seq, last - events + 1);
    for (size_t i = 0; i < n; i++)
        realtime__event_release(ev[i]);
    ASSERT_EQ(realtime__bus_fetch(bus, last - events - 1, ev, 64, &lost), 0);
    ASSERT_TRUE(lost);
    ASSERT_EQ(realtime__bus_fetch(bus, start, ev, 64, &lost), 0);
    ASSERT_TRUE(lost);
    /* Small events after big ones: the bytes freed go to many of them. */
    for (int i = 0; i < 200; i++)
        publish_n(bus, 1);
    ASSERT_LE(realtime__bus_bytes(bus), 65536);
    realtime__bus_fill(bus, &events, &capacity);
    ASSERT_GE(events, 200);
    /* One event over the bound on its own is still kept (the newest). */
    uint64_t big = publish_sized(bus, 100000);
    realtime__bus_fill(bus, &events, &capacity);
    ASSERT_EQ(events, 1);
    ASSERT_EQ(realtime__bus_fetch(bus, big - 1, ev, 64, &lost), 1);
    ASSERT_TRUE(!lost);
    realtime__event_release(ev[0]);
    realtime__bus_free(bus);
}

TEST(bus_count_bound_still_applies_with_a_byte_bound)
{
    rt_bus_t *bus = realtime__bus_new(8, 1u << 20);
    uint64_t start = realtime__bus_last_seq(bus);
    publish_n(bus, 20);
    size_t events, capacity;
    realtime__bus_fill(bus, &events, &capacity);
    ASSERT_EQ(events, 8);
    rt_event_t *ev[32];
    bool lost;
    ASSERT_EQ(realtime__bus_fetch(bus, start + 12, ev, 32, &lost), 8);
    for (size_t i = 0; i < 8; i++)
        realtime__event_release(ev[i]);
    ASSERT_EQ(realtime__bus_fetch(bus, start + 11, ev, 32, &lost), 0);
    ASSERT_TRUE(lost);
    /* The bytes of evicted events leave the count. */
    size_t bytes = realtime__bus_bytes(bus);
    publish_n(bus, 100);
    ASSERT_LE(realtime__bus_bytes(bus), bytes + 64);
    realtime__bus_free(bus);
}
