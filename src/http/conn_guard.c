/*
 * The connection guard: what one connection and one address may hold.
 *
 * libmicrohttpd's own bounds are a total connection limit and an idle
 * timeout that every byte received resets, so a client that sends one
 * header line every few seconds holds its connection for ever, and a few
 * thousand such connections (slowloris) take every slot. Three bounds are
 * added here:
 *   - connections per address: the accept policy callback refuses a
 *     connection from an address (an IPv6 address counts as its /64, where
 *     one host usually has many addresses) that already holds `per_ip`.
 *     The count rises when libmicrohttpd reports the connection started and
 *     falls when it reports it closed (MHD_OPTION_NOTIFY_CONNECTION), so a
 *     refused or failed accept is never counted; concurrent accepts on the
 *     pool threads may overshoot the limit by at most one per thread.
 *     Trusted proxies (--trusted-proxies) are exempt: every client behind
 *     them shares their address;
 *   - a header deadline: a request must finish its header block within
 *     `header_timeout` of its first line (the first request of a connection:
 *     of the connection's start), and a kept-alive connection must send its
 *     next request within idle + header timeout of the last answer. The
 *     deadline is fixed when the phase begins; bytes do not move it;
 *   - a minimum body rate: once the headers are in, a body must average
 *     `body_min_rate` bytes per second after a grace of `header_timeout`.
 * libmicrohttpd calls the access handler only when the headers are
 * complete, and gives no hook per byte, so the deadlines are enforced by a
 * sweeper thread: every SWEEP_MS it walks the open connections and shuts
 * down (shutdown(2), both ways) the socket of one past its deadline;
 * libmicrohttpd then reads the end of the stream on its own thread and
 * closes the connection as any client-closed one. The sweeper holds `mu`
 * while it does, and libmicrohttpd reports a connection closed (which
 * unlinks it under `mu`) before it closes the socket, so a descriptor shut
 * down here is never one already reused.
 */
#include "conn_guard.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "forwarded.h"
#include "parley/clock.h"
#include "parley/ipnet.h"
#include "parley/log.h"

#define SWEEP_MS 200
#define ADDR_BUCKETS 1024

typedef struct addr_count {
    struct addr_count *next;
    uint8_t key[CONN_GUARD_KEY_SIZE];
    unsigned n;
} addr_count_t;

struct conn_guard {
    conn_guard_t *prev, *next;   /* the open connections (mu) */
    int fd;
    bool counted;                /* holds one of its address's count */
    bool cut;                    /* the sweeper has shut it down */
    uint8_t key[CONN_GUARD_KEY_SIZE];
    _Atomic int64_t deadline_ns; /* headers (or the next request) due; 0: none */
    _Atomic int64_t body_start_ns; /* a body is being read since; 0: none */
    _Atomic uint64_t body_bytes;
    atomic_bool released;        /* taken over (WebSocket, event stream): never cut */
};

static conn_guard_limits_t limits = {.per_ip = 0, .header_timeout = 10, .idle_timeout = 60};
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* guards conns, counts, the thread */
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static conn_guard_t *conns;
static addr_count_t *counts[ADDR_BUCKETS];
static pthread_t sweeper;
static bool running, stopping;
static _Atomic uint64_t n_header_timeouts, n_slow_bodies, n_refused;

void conn_guard_configure(const conn_guard_limits_t *l)
{
    limits = *l;
}

/* The counting key of an address: family and address, an IPv6 one cut to
 * its /64. False when it is no IP address. */
static bool addr_key(const struct sockaddr *sa, uint8_t key[CONN_GUARD_KEY_SIZE], ipnet_t *net)
{
    if (sa == NULL || !ipnet_from_sockaddr(sa, net))
        return false;
    memset(key, 0, CONN_GUARD_KEY_SIZE);
    key[0] = net->family;
    memcpy(key + 1, net->addr, net->family == IPNET_V4 ? 4 : 8);
    return true;
}

bool conn_guard_addr_key(const struct sockaddr *sa, uint8_t key[CONN_GUARD_KEY_SIZE])
{
    ipnet_t net;
    return addr_key(sa, key, &net);
}

static unsigned key_hash(const uint8_t key[CONN_GUARD_KEY_SIZE])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < CONN_GUARD_KEY_SIZE; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % ADDR_BUCKETS;
}

static addr_count_t **count_slot(const uint8_t key[CONN_GUARD_KEY_SIZE])
{
    addr_count_t **p = &counts[key_hash(key)];
    while (*p && memcmp((*p)->key, key, CONN_GUARD_KEY_SIZE) != 0)
        p = &(*p)->next;
    return p;
}

static bool exempt(const ipnet_t *net)
{
    ipnet_set_t *trusted = forwarded_trusted();
    return ipnet_set_count(trusted) > 0 && ipnet_set_match(trusted, net, 0, NULL, NULL);
}

enum MHD_Result conn_guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)cls;
    (void)addrlen;
    uint8_t key[CONN_GUARD_KEY_SIZE];
    ipnet_t net;
    if (limits.per_ip == 0 || !addr_key(addr, key, &net) || exempt(&net))
        return MHD_YES;
    pthread_mutex_lock(&mu);
    addr_count_t *c = *count_slot(key);
    bool full = c != NULL && c->n >= limits.per_ip;
    pthread_mutex_unlock(&mu);
    if (full) {
        atomic_fetch_add(&n_refused, 1);
        char text[IPNET_TEXT_MAX];
        ipnet_format(&net, text);
        log_debug("refused a connection from %s: %u connections already", text, limits.per_ip);
        return MHD_NO;
    }
    return MHD_YES;
}

static void started(struct MHD_Connection *conn, void **socket_context)
{
    conn_guard_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return; /* unguarded: the idle timeout still applies */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    g->fd = ci ? ci->connect_fd : -1;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    ipnet_t net;
    bool keyed = limits.per_ip > 0 && ci != NULL && addr_key(ci->client_addr, g->key, &net) &&
                 !exempt(&net);
    atomic_store(&g->deadline_ns,
                 clock_mono_ns() + (int64_t)limits.header_timeout * 1000000000);
    pthread_mutex_lock(&mu);
    if (keyed) {
        addr_count_t **slot = count_slot(g->key);
        if (*slot == NULL)
            *slot = calloc(1, sizeof(**slot));
        if (*slot != NULL) {
            if ((*slot)->n == 0)
                memcpy((*slot)->key, g->key, CONN_GUARD_KEY_SIZE);
            (*slot)->n++;
            g->counted = true;
        }
    }
    g->next = conns;
    if (conns)
        conns->prev = g;
    conns = g;
    pthread_mutex_unlock(&mu);
    *socket_context = g;
}

static void closed(conn_guard_t *g)
{
    pthread_mutex_lock(&mu);
    if (g->prev)
        g->prev->next = g->next;
    else
        conns = g->next;
    if (g->next)
        g->next->prev = g->prev;
    if (g->counted) {
        addr_count_t **slot = count_slot(g->key);
        addr_count_t *c = *slot;
        if (c != NULL && --c->n == 0) {
            *slot = c->next;
            free(c);
        }
    }
    pthread_mutex_unlock(&mu);
    free(g);
}

void conn_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        started(conn, socket_context);
    else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context != NULL) {
        closed(*socket_context);
        *socket_context = NULL;
    }
}

conn_guard_t *conn_guard_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void conn_guard_request_line(conn_guard_t *g)
{
    if (g == NULL)
        return;
    int64_t due = clock_mono_ns() + (int64_t)limits.header_timeout * 1000000000;
    int64_t now_due = atomic_load(&g->deadline_ns);
    if (now_due == 0 || due < now_due)
        atomic_store(&g->deadline_ns, due);
}

void conn_guard_headers_done(conn_guard_t *g)
{
    if (g == NULL)
        return;
    atomic_store(&g->deadline_ns, 0);
    atomic_store(&g->body_bytes, 0);
    atomic_store(&g->body_start_ns, clock_mono_ns());
}

void conn_guard_body(conn_guard_t *g, uint64_t bytes)
{
    if (g != NULL)
        atomic_fetch_add(&g->body_bytes, bytes);
}

void conn_guard_body_done(conn_guard_t *g)
{
    if (g != NULL)
        atomic_store(&g->body_start_ns, 0);
}

void conn_guard_release(conn_guard_t *g)
{
    if (g != NULL)
        atomic_store(&g->released, true);
}

void conn_guard_request_done(conn_guard_t *g)
{
    if (g == NULL)
        return;
    atomic_store(&g->body_start_ns, 0);
    atomic_store(&g->deadline_ns,
                 clock_mono_ns() +
                     (int64_t)(limits.idle_timeout + limits.header_timeout) * 1000000000);
}

void conn_guard_get_stats(conn_guard_stats_t *out)
{
    out->header_timeouts = atomic_load(&n_header_timeouts);
    out->slow_bodies = atomic_load(&n_slow_bodies);
    out->refused_per_ip = atomic_load(&n_refused);
}

/* Under mu. */
static void sweep(int64_t now)
{
    for (conn_guard_t *g = conns; g; g = g->next) {
        if (g->cut || g->fd < 0 || atomic_load(&g->released))
            continue;
        int64_t due = atomic_load(&g->deadline_ns);
        int64_t body = atomic_load(&g->body_start_ns);
        bool late = due != 0 && now > due;
        bool slow = false;
        if (!late && body != 0 && limits.body_min_rate > 0) {
            int64_t grace = (int64_t)limits.header_timeout * 1000000000;
            if (now - body > grace) {
                double owed = (double)limits.body_min_rate * (double)(now - body - grace) / 1e9;
                slow = (double)atomic_load(&g->body_bytes) < owed;
            }
        }
        if (!late && !slow)
            continue;
        atomic_fetch_add(late ? &n_header_timeouts : &n_slow_bodies, 1);
        log_debug("closing a connection: %s", late ? "its request's headers came too slowly"
                                                   : "its request's body came too slowly");
        shutdown(g->fd, SHUT_RDWR);
        g->cut = true;
    }
}

static void *sweeper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SWEEP_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cv, &mu, &ts);
        if (!stopping)
            sweep(clock_mono_ns());
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

void conn_guard_start(void)
{
    pthread_mutex_lock(&mu);
    if (!running && pthread_create(&sweeper, NULL, sweeper_main, NULL) == 0)
        running = true;
    pthread_mutex_unlock(&mu);
}

void conn_guard_stop(void)
{
    pthread_mutex_lock(&mu);
    bool was = running;
    stopping = true;
    running = false;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    if (was)
        pthread_join(sweeper, NULL);
}
