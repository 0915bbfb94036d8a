/* A WebSocket's outbound queue (src/realtime/outq.c): the frames it writes
 * are decoded by libwslay's own client on the other end of a socket pair
 * (every header size, in order, whole), a full socket leaves a frame half
 * written that goes out whole before any other, and an event's frame is
 * shared by reference, not copied. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "../test.h"
#include "realtime/internal.h"

#define MAX_MSGS 64

/* The reading end: what arrived on fd is fed to a wslay client context,
 * which collects the text messages. */
typedef struct reader {
    int fd;
    wslay_event_context_ptr ws;
    uint8_t chunk[65536];   /* bytes read from fd, not yet taken by wslay */
    size_t chunk_len, chunk_off;
    char *msgs[MAX_MSGS];
    size_t lens[MAX_MSGS];
    size_t n;
} reader_t;

/* wslay's input: the chunk read from the socket by reader_take. */
static ssize_t reader_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                           void *user)
{
    (void)flags;
    reader_t *r = user;
    size_t left = r->chunk_len - r->chunk_off;
    if (left == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > left)
        len = left;
    memcpy(buf, r->chunk + r->chunk_off, len);
    r->chunk_off += len;
    return (ssize_t)len;
}

/* Reads what the socket holds, a chunk at a time, and decodes it. */
static void reader_take(reader_t *r)
{
    for (;;) {
        ssize_t got = recv(r->fd, r->chunk, sizeof(r->chunk), 0);
        if (got <= 0)
            return;
        r->chunk_len = (size_t)got;
        r->chunk_off = 0;
        wslay_event_recv(r->ws);
    }
}

static ssize_t reader_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                           int flags, void *user)
{
    (void)ctx;
    (void)data;
    (void)flags;
    (void)user;
    return (ssize_t)len; /* the reader never answers */
}

static int reader_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)ctx;
    (void)user;
    memset(buf, 0x5a, len);
    return 0;
}

static void reader_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                       void *user)
{
    (void)ctx;
    reader_t *r = user;
    if (arg->opcode != WSLAY_TEXT_FRAME || r->n == MAX_MSGS)
        return;
    r->msgs[r->n] = malloc(arg->msg_length + 1);
    if (arg->msg_length > 0) /* an empty message may come with no buffer */
        memcpy(r->msgs[r->n], arg->msg, arg->msg_length);
    r->lens[r->n++] = arg->msg_length;
}

static void reader_init(reader_t *r, int fd)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    static const struct wslay_event_callbacks cb = {
        .recv_callback = reader_recv,
        .send_callback = reader_send,
        .genmask_callback = reader_genmask,
        .on_msg_recv_callback = reader_msg,
    };
    wslay_event_context_client_init(&r->ws, &cb, r);
    wslay_event_config_set_max_recv_msg_length(r->ws, 1u << 24);
}

/* Frees the reader and closes both ends (fds[1] may be closed already: -1). */
static void reader_free(reader_t *r, int fds[2])
{
    for (size_t i = 0; i < r->n; i++)
        free(r->msgs[i]);
    wslay_event_context_free(r->ws);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Two connected non-blocking stream sockets, fds[0] to write, fds[1] read
 * by r; the writer's send buffer small when small_buffer (so that a big
 * frame fills it). */
static void reader_open(reader_t *r, int fds[2], bool small_buffer)
{
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    for (int i = 0; i < 2; i++)
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    if (small_buffer) {
        int size = 4096;
        setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
    reader_init(r, fds[1]);
}

static char *text_of(size_t len, char fill)
{
    char *t = malloc(len ? len : 1);
    memset(t, fill, len);
    if (len > 0)
        t[0] = '{';
    return t;
}

/* Flushes and reads in turns until the queue is empty (a bounded number of
 * turns: each moves at least one byte). */
static void pump(rt_outq_t *q, int fd, reader_t *r)
{
    for (int turn = 0; turn < 100000 && (q->n > 0 || r->n == 0); turn++) {
        ASSERT_TRUE(realtime__outq_flush(q, fd, false) >= 0);
        reader_take(r);
        if (q->n == 0)
            break;
    }
    reader_take(r);
    ASSERT_EQ(q->n, 0);
}

TEST(outq_frames_of_every_header_size_arrive_whole_and_in_order)
{
    int fds[2];
    reader_t r;
    reader_open(&r, fds, false);
    rt_outq_t q = {0};
    /* 2-byte headers up to 125, 4-byte up to 65535, 10-byte above. */
    const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 200000};
    const size_t n = sizeof(sizes) / sizeof(sizes[0]);
    for (size_t i = 0; i < n; i++) {
        char *t = text_of(sizes[i], (char)('a' + i));
        if (i % 2)
            ASSERT_TRUE(realtime__outq_push_owned(&q, t, sizes[i]));
        else {
            ASSERT_TRUE(realtime__outq_push_copy(&q, t, sizes[i]));
            free(t);
        }
    }
    ASSERT_EQ(q.n, n);
    pump(&q, fds[0], &r);
    ASSERT_EQ(r.n, n);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(r.lens[i], sizes[i]);
        if (sizes[i] > 1)
            ASSERT_EQ(r.msgs[i][sizes[i] - 1], (char)('a' + i));
    }
    ASSERT_EQ(q.bytes, 0);
    realtime__outq_clear(&q);
    reader_free(&r, fds);
}

TEST(outq_a_full_socket_leaves_one_frame_begun_that_goes_out_whole_first)
{
    int fds[2];
    reader_t r;
    reader_open(&r, fds, true);
    rt_outq_t q = {0};
    ASSERT_TRUE(realtime__outq_push_owned(&q, text_of(300000, 'x'), 300000));
    ASSERT_TRUE(realtime__outq_push_owned(&q, text_of(10, 'y'), 10));
    ssize_t wrote = realtime__outq_flush(&q, fds[0], false);
    ASSERT_TRUE(wrote > 0);
    ASSERT_TRUE(realtime__outq_begun(&q)); /* the socket took part of the first */
    ASSERT_EQ(q.n, 2);
    /* Only the begun frame may go on (control frames wait for its end);
     * the frames not begun can be dropped, the begun one stays. */
    realtime__outq_drop_unbegun(&q);
    ASSERT_EQ(q.n, 1);
    for (int turn = 0; turn < 100000 && q.n > 0; turn++) {
        ASSERT_TRUE(realtime__outq_flush(&q, fds[0], true) >= 0);
        reader_take(&r);
    }
    reader_take(&r);
    ASSERT_EQ(q.n, 0);
    ASSERT_TRUE(!realtime__outq_begun(&q));
    ASSERT_EQ(r.n, 1);
    ASSERT_EQ(r.lens[0], 300000);
    /* With nothing begun, only_begun writes nothing. */
    ASSERT_TRUE(realtime__outq_push_owned(&q, text_of(10, 'z'), 10));
    ASSERT_EQ(realtime__outq_flush(&q, fds[0], true), 0);
    ASSERT_EQ(q.n, 1);
    realtime__outq_clear(&q);
    reader_free(&r, fds);
}

TEST(outq_an_events_frame_is_shared_by_reference_among_queues)
{
    rt_bus_t *bus = realtime__bus_new(8, 0);
    uint64_t seq = realtime__bus_publish(bus, "message.created", "ch_a", NULL, NULL, 0,
                                         json_pack("{s:s}", "content", "hello"));
    rt_event_t *ev;
    bool lost;
    ASSERT_EQ(realtime__bus_fetch(bus, seq - 1, &ev, 1, &lost), 1);
    int refs = atomic_load(&ev->refs); /* the ring's and ours */
    rt_outq_t queues[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        ASSERT_TRUE(realtime__outq_push_event(&queues[i], ev));
        ASSERT_TRUE(queues[i].ring[queues[i].first].text == ev->frame); /* no copy */
    }
    ASSERT_EQ(atomic_load(&ev->refs), refs + 3);
    int fds[2];
    reader_t r;
    reader_open(&r, fds, false);
    pump(&queues[0], fds[0], &r);
    ASSERT_EQ(r.n, 1);
    ASSERT_EQ(r.lens[0], ev->frame_len);
    ASSERT_EQ(memcmp(r.msgs[0], ev->frame, ev->frame_len), 0);
    ASSERT_EQ(atomic_load(&ev->refs), refs + 2); /* written: released */
    realtime__outq_clear(&queues[1]);
    realtime__outq_clear(&queues[2]);
    ASSERT_EQ(atomic_load(&ev->refs), refs);
    realtime__outq_clear(&queues[0]);
    realtime__event_release(ev);
    realtime__bus_free(bus);
    reader_free(&r, fds);
}

TEST(outq_many_frames_go_out_in_batches_and_a_closed_peer_is_an_error)
{
    int fds[2];
    reader_t r;
    reader_open(&r, fds, false);
    rt_outq_t q = {0};
    /* More than one sendmsg's worth (32 frames), the ring growing. */
    for (int i = 0; i < 50; i++) {
        char text[32];
        int len = snprintf(text, sizeof(text), "{\"n\":%d}", i);
        ASSERT_TRUE(realtime__outq_push_copy(&q, text, (size_t)len));
    }
    ASSERT_EQ(q.n, 50);
    pump(&q, fds[0], &r);
    ASSERT_EQ(r.n, MAX_MSGS < 50 ? MAX_MSGS : 50);
    ASSERT_EQ(memcmp(r.msgs[49], "{\"n\":49}", 8), 0);
    close(fds[1]);
    fds[1] = -1;
    ASSERT_TRUE(realtime__outq_push_copy(&q, "{}", 2));
    ASSERT_EQ(realtime__outq_flush(&q, fds[0], false), -1); /* EPIPE, no SIGPIPE */
    realtime__outq_clear(&q);
    reader_free(&r, fds);
}
