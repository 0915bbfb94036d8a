/*
 * The connection guard (conn_guard.c): bounds on what one connection, and
 * one address, may hold before its requests are complete. Private to
 * src/http; the gate calls it.
 */
#ifndef PARLEY_HTTP_CONN_GUARD_H
#define PARLEY_HTTP_CONN_GUARD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct conn_guard_limits {
    unsigned per_ip;         /* connections per address (IPv6: per /64); 0 = no limit */
    unsigned header_timeout; /* seconds from a request's first line to its last header */
    unsigned idle_timeout;   /* seconds a kept-alive connection may wait for its next request */
    unsigned body_min_rate;  /* bytes per second a body must average; 0 = no minimum */
} conn_guard_limits_t;

typedef struct conn_guard conn_guard_t;

/* The key an address is counted under: its family and address, an IPv6
 * one cut to its /64 (an IPv4-mapped one is its IPv4 address). False when
 * sa is no IP address. */
#define CONN_GUARD_KEY_SIZE 17
bool conn_guard_addr_key(const struct sockaddr *sa, uint8_t key[CONN_GUARD_KEY_SIZE]);

/* Sets the limits; called before the daemon starts. */
void conn_guard_configure(const conn_guard_limits_t *limits);

/* Starts the sweeper thread (once; later calls do nothing) and stops it. */
void conn_guard_start(void);
void conn_guard_stop(void);

/* MHD_AcceptPolicyCallback: refuses a connection from an address that
 * already holds per_ip connections (trusted proxies are exempt). */
enum MHD_Result conn_guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);

/* MHD_OPTION_NOTIFY_CONNECTION: one guard per connection. */
void conn_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode toe);

/* The guard of a connection, or NULL. */
conn_guard_t *conn_guard_of(struct MHD_Connection *conn);

/* The phases of a request, as the gate sees them. NULL is a no-op. */
void conn_guard_request_line(conn_guard_t *g); /* its first line is in */
void conn_guard_headers_done(conn_guard_t *g); /* headers in; the body (if any) follows */
void conn_guard_body(conn_guard_t *g, uint64_t bytes); /* more body bytes */
void conn_guard_body_done(conn_guard_t *g);    /* the handler has the whole request */
void conn_guard_request_done(conn_guard_t *g); /* answered; the next may come */
/* The connection is taken over (WebSocket, event stream): its own code
 * bounds it from now on, and the sweeper never cuts it. */
void conn_guard_release(conn_guard_t *g);

/* Connections the sweeper has cut since the start: headers too slow, bodies
 * too slow; and connections refused for their address. */
typedef struct conn_guard_stats {
    uint64_t header_timeouts, slow_bodies, refused_per_ip;
} conn_guard_stats_t;
void conn_guard_get_stats(conn_guard_stats_t *out);

#endif
