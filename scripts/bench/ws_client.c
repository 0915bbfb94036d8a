/*
 * The WebSocket client of `make bench`'s P3 (scripts/bench/ws_fanout.py
 * drives it): N WebSockets to a Parley server, held by one thread with
 * epoll, framed by libwslay (pings are answered, as a browser would), so
 * the fan-out latency measures the server rather than a slow client.
 *
 *     bench_ws_client <port> <token> <connections>
 *
 * The server may be Parley or the node baseline of the same run
 * (scripts/bench/node/ws_broadcast.mjs): a socket counts as open once the
 * 101 is read; frames before the marker's (Parley's "ready", presence) are
 * read and ignored. It prints "ready" once every socket is open, then reads commands on
 * stdin, one a line:
 *     expect <marker>  answers "armed", then, once every socket has received
 *                      a text message holding <marker> (or after 10 s),
 *                      "got <count> <t1> <t2> ..." with each socket's receive
 *                      time (CLOCK_REALTIME seconds, the clock Python's
 *                      time.time() reads, so the driver can subtract the
 *                      time it sent the POST);
 *     quit             exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

#define EXPECT_TIMEOUT_S 10.0

typedef struct client {
    int fd;
    wslay_event_context_ptr ws;
    double got_at; /* 0: not yet, for the current marker */
    bool read_once; /* this wake-up's recv() is done (see on_recv) */
} client_t;

static char marker[256];
static size_t n_got;
static size_t got_bytes; /* the size of the last message holding the marker */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
    (void)flags;
    client_t *c = user;
    /* One recv() a wake-up: wslay reads until it would block, which costs a
     * second recv() that finds nothing; epoll is level-triggered, so what
     * is left is read on the next round. Half the system calls, so the
     * client's share of the two cores is smaller. */
    if (c->read_once) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    c->read_once = true;
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return n;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)flags;
    client_t *c = user;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n < 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return n;
}

static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)ctx;
    (void)user;
    return gnutls_rnd(GNUTLS_RND_NONCE, buf, len) == 0 ? 0 : -1;
}

static void on_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                       void *user)
{
    (void)ctx;
    client_t *c = user;
    if (arg->opcode != WSLAY_TEXT_FRAME || marker[0] == '\0' || c->got_at != 0)
        return;
    if (memmem(arg->msg, arg->msg_length, marker, strlen(marker)) != NULL) {
        c->got_at = now_s();
        n_got++;
        got_bytes = arg->msg_length;
    }
}

/* A blocking connect and the upgrade; the answer is read a byte at a time
 * so that no frame after it is taken from wslay. */
static int open_socket(int port, const char *token)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET /api/v1/ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     token);
    if (n <= 0 || (size_t)n >= sizeof(req) || send(fd, req, (size_t)n, 0) != n)
        return -1;
    char head[4096];
    size_t len = 0;
    while (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0) {
        if (len == sizeof(head) - 1 || recv(fd, head + len, 1, 0) != 1)
            return -1;
        len++;
    }
    head[len] = '\0';
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "bench_ws_client: upgrade refused: %.80s\n", head);
        return -1;
    }
    return fd;
}

static void report(client_t *cs, size_t n)
{
    printf("got %zu %zu", n_got, got_bytes);
    for (size_t i = 0; i < n; i++)
        if (cs[i].got_at != 0)
            printf(" %.6f", cs[i].got_at);
    printf("\n");
    fflush(stdout);
    marker[0] = '\0';
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s <port> <token> <connections>\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    size_t n = (size_t)atol(argv[3]);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    client_t *cs = calloc(n, sizeof(*cs));
    int ep = epoll_create1(0);
    struct wslay_event_callbacks cb = {on_recv, on_send, on_genmask, NULL, NULL, NULL,
                                       on_message};
    for (size_t i = 0; i < n; i++) {
        cs[i].fd = open_socket(port, argv[2]);
        if (cs[i].fd < 0) {
            fprintf(stderr, "bench_ws_client: socket %zu could not open\n", i);
            return 1;
        }
        wslay_event_context_client_init(&cs[i].ws, &cb, &cs[i]);
        int flags = fcntl(cs[i].fd, F_GETFL);
        if (flags < 0 || fcntl(cs[i].fd, F_SETFL, flags | O_NONBLOCK) != 0)
            return 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    struct epoll_event in = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &in);
    printf("ready\n");
    fflush(stdout);

    double deadline = 0;
    struct epoll_event evs[1024];
    for (;;) {
        int k = epoll_wait(ep, evs, 1024, marker[0] ? 50 : 1000);
        for (int e = 0; e < k; e++) {
            if (evs[e].data.u64 == UINT64_MAX) {
                char line[256];
                if (fgets(line, sizeof(line), stdin) == NULL || strncmp(line, "quit", 4) == 0)
                    return 0;
                if (strncmp(line, "expect ", 7) == 0) {
                    line[strcspn(line, "\n")] = '\0';
                    snprintf(marker, sizeof(marker), "%s", line + 7);
                    n_got = 0;
                    for (size_t i = 0; i < n; i++)
                        cs[i].got_at = 0;
                    deadline = now_s() + EXPECT_TIMEOUT_S;
                    printf("armed\n");
                    fflush(stdout);
                }
                continue;
            }
            client_t *c = &cs[evs[e].data.u64];
            c->read_once = false;
            if (wslay_event_recv(c->ws) != 0 || wslay_event_send(c->ws) != 0) {
                fprintf(stderr, "bench_ws_client: a socket failed\n");
                return 1;
            }
        }
        if (marker[0] && (n_got == n || now_s() > deadline))
            report(cs, n);
    }
}
