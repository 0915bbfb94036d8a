/*
 * The connection gate's probe of a client's socket (gate_peer_gone), which
 * decides at shutdown whether a request in flight is waited for: real TCP
 * connections on loopback, each end in the state the drain must judge.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../test.h"
#include "http/conn_guard.h"
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

/* The key of a textual address (IPv4 or IPv6) for the limit per address. */
static void key_of(const char *text, uint8_t key[CONN_GUARD_KEY_SIZE])
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        ASSERT_EQ(inet_pton(AF_INET6, text, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        ASSERT_EQ(inet_pton(AF_INET, text, &a->sin_addr), 1);
    }
    ASSERT_TRUE(conn_guard_addr_key((struct sockaddr *)&ss, key));
}

TEST(conn_guard_counts_ipv6_per_64_and_ipv4_per_address)
{
    uint8_t a[CONN_GUARD_KEY_SIZE], b[CONN_GUARD_KEY_SIZE];
    key_of("2001:db8:1:2::1", a);
    key_of("2001:db8:1:2:ffff:eeee:dddd:cccc", b);
    ASSERT_EQ(memcmp(a, b, sizeof(a)), 0); /* one /64 */
    key_of("2001:db8:1:3::1", b);
    ASSERT_TRUE(memcmp(a, b, sizeof(a)) != 0); /* the next /64 */
    key_of("10.0.0.1", a);
    key_of("::ffff:10.0.0.1", b);
    ASSERT_EQ(memcmp(a, b, sizeof(a)), 0); /* a mapped IPv4 address is itself */
    key_of("10.0.0.2", b);
    ASSERT_TRUE(memcmp(a, b, sizeof(a)) != 0); /* IPv4: each address */
    struct sockaddr un = {.sa_family = AF_UNIX};
    ASSERT_TRUE(!conn_guard_addr_key(&un, a));
}
