/*
 * A WebSocket connection's outbound queue of text frames (websocket.c).
 *
 * Why not libwslay's own queue: wslay_event_queue_msg copies each message
 * into a malloc'd buffer of its own, and wslay_event_send writes a frame's
 * header and its payload in two send()s. A fan-out to N subscribers paid N
 * allocations, N copies of the frame and 2N system calls. Here an event's
 * frame, rendered once when it was published (bus.c), is queued by
 * reference (the event's refcount), so N subscribers share one buffer; and
 * the queue goes out with one sendmsg() of header + payload for up to
 * OUTQ_IOV_FRAMES frames at a time (a resume's backlog in one call). A frame
 * of the connection's own (ready, acks, errors) is queued as its text.
 *
 * Frames from the server are never masked (RFC 6455 5.1), so the header is
 * 2, 4 or 10 bytes computed when the frame is queued. A frame that is half
 * written stays first until it is out whole (`sent` says how far it got):
 * the caller sends wslay's control frames (pings, pongs, the close) only
 * between whole frames, so a stream never has a frame cut by another.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "internal.h"

#define OUTQ_IOV_FRAMES 32
#define OUTQ_FIRST_CAP 4

/* The header of an unmasked, final text frame of len bytes. */
static uint8_t frame_head(uint8_t *head, size_t len)
{
    head[0] = 0x81; /* FIN, text */
    if (len < 126) {
        head[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        head[1] = 126;
        head[2] = (uint8_t)(len >> 8);
        head[3] = (uint8_t)len;
        return 4;
    }
    head[1] = 127;
    for (int i = 0; i < 8; i++)
        head[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

static rt_out_frame_t *slot(rt_outq_t *q, size_t i)
{
    return &q->ring[(q->first + i) % q->cap];
}

/* A new entry at the tail, its header set; NULL when out of memory. */
static rt_out_frame_t *push(rt_outq_t *q, size_t len)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : OUTQ_FIRST_CAP;
        rt_out_frame_t *grown = malloc(cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        for (size_t i = 0; i < q->n; i++)
            grown[i] = *slot(q, i);
        free(q->ring);
        q->ring = grown;
        q->cap = cap;
        q->first = 0;
    }
    rt_out_frame_t *f = slot(q, q->n++);
    memset(f, 0, sizeof(*f));
    f->head_len = frame_head(f->head, len);
    f->len = len;
    q->bytes += f->head_len + len;
    return f;
}

bool realtime__outq_push_event(rt_outq_t *q, rt_event_t *ev)
{
    rt_out_frame_t *f = push(q, ev->frame_len);
    if (f == NULL)
        return false;
    atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
    f->event = ev;
    f->text = ev->frame;
    return true;
}

bool realtime__outq_push_owned(rt_outq_t *q, char *text, size_t len)
{
    rt_out_frame_t *f = push(q, len);
    if (f == NULL) {
        free(text);
        return false;
    }
    f->own = text;
    f->text = text;
    return true;
}

bool realtime__outq_push_copy(rt_outq_t *q, const char *text, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return false;
    memcpy(copy, text, len);
    return realtime__outq_push_owned(q, copy, len);
}

static void drop_first(rt_outq_t *q)
{
    rt_out_frame_t *f = slot(q, 0);
    q->bytes -= f->head_len + f->len;
    realtime__event_release(f->event);
    free(f->own);
    q->first = (q->first + 1) % q->cap;
    q->n--;
    q->sent = 0;
}

ssize_t realtime__outq_flush(rt_outq_t *q, int fd, bool only_begun)
{
    if (only_begun && q->sent == 0)
        return 0;
    size_t total = 0;
    while (q->n > 0) {
        struct iovec iov[2 * OUTQ_IOV_FRAMES];
        int k = 0;
        size_t frames = only_begun ? 1 : q->n < OUTQ_IOV_FRAMES ? q->n : OUTQ_IOV_FRAMES;
        size_t skip = q->sent;
        for (size_t i = 0; i < frames; i++) {
            rt_out_frame_t *f = slot(q, i);
            if (skip < f->head_len)
                iov[k++] = (struct iovec){f->head + skip, f->head_len - skip};
            size_t text_skip = skip > f->head_len ? skip - f->head_len : 0;
            if (f->len > text_skip)
                iov[k++] = (struct iovec){(char *)f->text + text_skip, f->len - text_skip};
            skip = 0;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t r = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return (ssize_t)total;
            return -1;
        }
        total += (size_t)r;
        size_t left = (size_t)r;
        while (q->n > 0 && left > 0) {
            rt_out_frame_t *f = slot(q, 0);
            size_t rest = f->head_len + f->len - q->sent;
            if (left < rest) {
                q->sent += left;
                left = 0;
            } else {
                left -= rest;
                drop_first(q);
            }
        }
        if (q->sent > 0 || only_begun)
            return (ssize_t)total; /* the socket took less than offered: it is full */
    }
    return (ssize_t)total;
}

void realtime__outq_drop_unbegun(rt_outq_t *q)
{
    while (q->n > (q->sent > 0 ? 1u : 0u)) {
        /* from the tail: the begun head stays */
        rt_out_frame_t *f = slot(q, q->n - 1);
        q->bytes -= f->head_len + f->len;
        realtime__event_release(f->event);
        free(f->own);
        q->n--;
    }
}

void realtime__outq_clear(rt_outq_t *q)
{
    while (q->n > 0)
        drop_first(q);
    free(q->ring);
    memset(q, 0, sizeof(*q));
}
