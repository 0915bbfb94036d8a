/*
 * The connection gate's probe of a client's socket (gate_peer_gone), which
 * decides at shutdown whether a request in flight is waited for: real TCP
 * connections on loopback, each end in the state the drain must judge.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../test.h"
#include "http/gate.h"

/* A connected pair: *server is the accepted end (the one the gate probes). */
static void tcp_pair(int *client, int *server)
{
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_TRUE(listener >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ASSERT_EQ(bind(listener, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ASSERT_EQ(listen(listener, 1), 0);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(getsockname(listener, (struct sockaddr *)&addr, &len), 0);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(*client, (struct sockaddr *)&addr, sizeof(addr)), 0);
    *server = accept(listener, NULL, NULL);
    ASSERT_TRUE(*server >= 0);
    close(listener);
}

/* Waits (with a generous deadline) until the server end sees the peer's
 * close, so the probe is asked about a state that has arrived. */
static void wait_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};
    ASSERT_EQ(poll(&pfd, 1, 30000), 1);
}

TEST(gate_peer_connected_and_quiet_is_not_gone)
{
    int c, s;
    tcp_pair(&c, &s);
    ASSERT_TRUE(!gate_peer_gone(s));
    close(c);
    close(s);
}

TEST(gate_peer_still_sending_is_not_gone)
{
    int c, s;
    tcp_pair(&c, &s);
    ASSERT_EQ(write(c, "part", 4), 4);
    wait_readable(s);
    ASSERT_TRUE(!gate_peer_gone(s));
    close(c);
    close(s);
}

TEST(gate_peer_closed_with_nothing_unread_is_gone)
{
    int c, s;
    tcp_pair(&c, &s);
    close(c);
    wait_readable(s);
    ASSERT_TRUE(gate_peer_gone(s));
    close(s);
}

TEST(gate_peer_half_closed_is_gone)
{
    int c, s;
    tcp_pair(&c, &s);
    ASSERT_EQ(shutdown(c, SHUT_WR), 0);
    wait_readable(s);
    ASSERT_TRUE(gate_peer_gone(s));
    close(c);
    close(s);
}

TEST(gate_peer_closed_after_sending_the_rest_is_not_gone)
{
    /* The end of the body may still complete the request. */
    int c, s;
    tcp_pair(&c, &s);
    ASSERT_EQ(write(c, "the rest", 8), 8);
    close(c);
    wait_readable(s);
    ASSERT_TRUE(!gate_peer_gone(s));
    char buf[16];
    ASSERT_EQ(read(s, buf, sizeof(buf)), 8);
    ASSERT_TRUE(gate_peer_gone(s));
    close(s);
}

TEST(gate_peer_reset_is_gone)
{
    int c, s;
    tcp_pair(&c, &s);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    ASSERT_EQ(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(c); /* RST */
    wait_readable(s);
    ASSERT_TRUE(gate_peer_gone(s));
    close(s);
}

TEST(gate_unknown_socket_is_not_gone)
{
    ASSERT_TRUE(!gate_peer_gone(-1));
}
