/*
 * The connection gate: Parley's code in front of ulfius's request dispatcher.
 *
 * ulfius reads a whole request body before any endpoint runs, and its only
 * limit (max_post_body_size) silently truncates. So a client could make the
 * server read a gigabyte before it may say 413. libmicrohttpd, though, calls
 * its access handler as soon as the headers are in, and lets that handler
 * answer before the body is read. ulfius installs its own (static) access
 * handler when it calls MHD_start_daemon(), so this file defines
 * MHD_start_daemon itself: the executable's definition takes precedence over
 * libmicrohttpd's for libulfius's call (an ordinary ELF symbol interposition,
 * checked by the e2e test of an oversized Content-Length), records ulfius's
 * handler, and starts the daemon through MHD_start_daemon_va() with
 * gate_access() in its place. gate_access() then:
 *   - assigns the request id (a sane client X-Request-Id, or a new one);
 *   - finds the client's address (the peer, or behind trusted proxies the
 *     address their X-Forwarded-For / Forwarded name: forwarded.c) and
 *     answers 403 IP_BLOCKED when it is blocked (gate_set_blocklist), before
 *     anything else: before the body is read, before authentication, before
 *     a WebSocket or event stream is taken over; the check is a few hash
 *     probes (include/parley/ipnet.h), and one atomic load when nothing is
 *     blocked;
 *   - answers 400 at once, and closes the connection, for a message whose
 *     framing a proxy in front could read otherwise (framing_error: two
 *     Content-Length, a header name with white space, a coding but chunked,
 *     Transfer-Encoding with Content-Length), which libmicrohttpd accepts;
 *   - answers 413 from the headers when Content-Length is over the limit,
 *     without reading the body, and closes the connection; the limit is
 *     max_body_bytes, or max_upload_bytes (plus a little for the form) for a
 *     multipart body sent to a route that takes uploads, or the smaller
 *     public_body_bytes for a public route or a request without credentials
 *     (a route that needs them answers 401 instead: gate_set_limits);
 *   - reserves the body's length in the budget of bodies held in memory by
 *     all requests (body_budget_bytes), answering 503 when it is spent, and
 *     gives it back when the request ends;
 *   - tells the connection guard (conn_guard.c: connections per address,
 *     the header deadline, the minimum body rate) each phase of the request;
 *   - counts the bytes of a body without Content-Length (chunked); once they
 *     pass the limit it discards the rest and answers 413 when the body ends
 *     (libmicrohttpd accepts an answer only before the body or after it),
 *     dropping the connection if the client sends more than
 *     OVERFLOW_DROP_BYTES beyond the limit;
 *   - keeps the last bytes of a multipart upload body, so the endpoint can
 *     tell a body that ended with its closing delimiter from one cut short
 *     (libmicrohttpd reports neither the end of a part nor a missing one);
 *   - hands the real-time endpoints (WebSocket upgrade, event streams) to
 *     their own code (gate_set_takeover), which answers from
 *     libmicrohttpd directly;
 *   - counts requests in flight, so shutdown can wait for them;
 *   - hands everything else to ulfius's handler unchanged.
 * It also keeps per-request state for others (http_request_attach: an upload being
 * written to disk), freed when the request ends however it ends (ulfius never
 * calls the endpoint of an aborted upload). It also wraps ulfius's URI-log
 * and completion callbacks to keep its own per-request state beside ulfius's, and writes the access log line when a
 * request completes, so every request is logged exactly once with its final
 * status and duration, whoever answered it (a text line, or with
 * --log-format json an object with the user id, route pattern and bytes
 * too), and counts it then in its route's figures (route_metrics.c: the
 * router notes the route it matched; a request the real-time code took is
 * looked up by its path; none is "unmatched").
 *
 * The handler running on a thread finds its request through a thread-local
 * pointer: ulfius calls endpoints synchronously inside gate_access().
 *
 * One more answer never reaches Parley's code: when a request is not valid
 * HTTP (a malformed header line, headers or URL beyond libmicrohttpd's
 * memory limit), libmicrohttpd answers by itself with a built-in HTML page.
 * It creates that page with MHD_create_response_from_buffer(), which it calls
 * through its PLT, so this file defines that function too: a buffer that is
 * one of libmicrohttpd's static HTML pages (MHD_RESPMEM_PERSISTENT, starting
 * with "<html>") is replaced by a JSON error body of the same status; every
 * other buffer passes through unchanged. Parley itself never creates
 * persistent HTML buffers, so nothing else can match.
 */
#include "gate.h"

#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <stdarg.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <ulfius.h>

#include "conn_guard.h"
#include "forwarded.h"
#include "parley/clock.h"
#include "parley/http.h"
#include "parley/http_server.h"
#include "parley/ipnet.h"
#include "parley/log.h"
#include "route_metrics.h"

#define OVERFLOW_DROP_BYTES (64u << 20)
/* RFC 2046 caps a boundary at 70 characters; the tail holds the closing
 * delimiter of the longest boundary kept plus room for a short epilogue. */
#define MULTIPART_BOUNDARY_MAX 200
#define MULTIPART_TAIL 512

typedef struct gate_request {
    void *inner;                  /* ulfius's per-request state */
    int64_t start_ns;
    uint64_t body_bytes;
    int status;                   /* answered status; 0 = none yet */
    void *metric;                 /* the route's figures (route_slot_t); NULL: none matched */
    uint64_t bytes_out;           /* the answer body's bytes */
    char user_id[40];             /* the authenticated caller; "" = none */
    bool started;                 /* gate_access has seen the headers */
    bool rejected;                /* the gate answered; the body is ignored */
    bool overflowed;              /* a body without Content-Length passed the limit */
    bool seen_by_inner;           /* ulfius's handler has been called */
    char method[16];
    char path[200];               /* without the query string: no tokens in logs */
    char request_id[HTTP_REQUEST_ID_MAX];
    char client_ip[64];           /* "" until the headers are in */
    char peer_ip[64];             /* the connecting peer, when not the client */
    bool https;                   /* over TLS, or a trusted proxy's X-Forwarded-Proto: https */
    ipnet_t client;               /* client_ip, parsed */
    uint64_t limit;               /* the largest body this request may send */
    bool multipart_upload;        /* a multipart body to an upload route */
    char boundary[MULTIPART_BOUNDARY_MAX + 1]; /* "" when unknown */
    char tail[MULTIPART_TAIL];    /* the body's last bytes */
    size_t tail_len;
    void *attached;               /* http_request_attach() */
    void (*attached_free)(void *);
    /* In-flight list (flight_mu), for the drain at shutdown. */
    struct gate_request *flight_prev, *flight_next;
    int fd;                       /* the connection's socket; -1 when unknown */
    bool taken_over;              /* answered by the real-time code (its own shutdown) */
    atomic_bool body_done;        /* the handler has the whole request */
    conn_guard_t *guard;          /* the connection's deadlines (conn_guard.c); may be NULL */
    uint64_t reserved;            /* bytes of body_in_memory this request holds */
    bool chunked;                 /* no Content-Length: the budget is taken as bytes come */
} gate_request_t;

typedef struct gate_daemon {
    MHD_AccessHandlerCallback inner;
    void *inner_cls;
} gate_daemon_t;


static size_t max_body = 1 << 20;
static gate_limits_t limits = {
    .header_timeout = 10,
    .idle_timeout = 60,
    .body_budget_bytes = 256u << 20,
    .public_body_bytes = 16u << 10,
};
static _Atomic uint64_t body_in_memory; /* bytes reserved by requests' bodies (limits.body_budget_bytes) */
static _Atomic uint64_t max_upload = 25u << 20; /* live: gate_set_max_upload */
static bool (*takes_upload)(void *ctx, const char *method, const char *path);
static void *takes_upload_ctx;
static bool (*takeover_claims)(void *ctx, const char *method, const char *path);
static enum MHD_Result (*takeover_take)(void *ctx, struct MHD_Connection *conn, const char *path,
                                        const char *request_id, int *status);
static void *takeover_ctx;
static ipnet_set_t *blocklist; /* set before the port opens; NULL: none */
static atomic_uint in_flight;
static atomic_bool draining;
static atomic_uint_fast64_t next_request_number;
static uint32_t request_id_prefix;
static _Thread_local gate_request_t *current;

#define MAX_DAEMONS 4
static gate_daemon_t daemons[MAX_DAEMONS];
static atomic_int n_daemons;

void gate_configure(size_t max_body_bytes, uint64_t max_upload_bytes,
                    bool (*upload_route)(void *ctx, const char *method, const char *path),
                    void *ctx)
{
    max_body = max_body_bytes;
    atomic_store(&max_upload, max_upload_bytes);
    takes_upload = upload_route;
    takes_upload_ctx = ctx;
    gnutls_rnd(GNUTLS_RND_NONCE, &request_id_prefix, sizeof(request_id_prefix));
}

void gate_set_limits(const gate_limits_t *l)
{
    limits = *l;
    conn_guard_limits_t cl = {
        .per_ip = l->max_connections_per_ip,
        .header_timeout = l->header_timeout,
        .idle_timeout = l->idle_timeout,
        .body_min_rate = l->body_min_rate,
    };
    conn_guard_configure(&cl);
}

void gate_stop(void)
{
    conn_guard_stop();
    conn_guard_stats_t st;
    conn_guard_get_stats(&st);
    log_info("connection guard: %llu connections cut for slow headers, %llu for slow bodies, "
             "%llu refused for their address",
             (unsigned long long)st.header_timeouts, (unsigned long long)st.slow_bodies,
             (unsigned long long)st.refused_per_ip);
}

void gate_set_max_upload(uint64_t max_upload_bytes)
{
    atomic_store(&max_upload, max_upload_bytes);
}

uint64_t gate_upload_limit(void)
{
    if (current != NULL && current->multipart_upload)
        return current->limit - GATE_UPLOAD_SLACK;
    return atomic_load(&max_upload);
}

void gate_set_takeover(bool (*claims)(void *ctx, const char *method, const char *path),
                       enum MHD_Result (*take)(void *ctx, struct MHD_Connection *conn,
                                               const char *path, const char *request_id,
                                               int *status),
                       void *ctx)
{
    takeover_claims = claims;
    takeover_take = take;
    takeover_ctx = ctx;
}

void gate_set_blocklist(ipnet_set_t *blocked)
{
    blocklist = blocked;
}

void http_request_attach(void *state, void (*free_fn)(void *state))
{
    if (current == NULL) {
        if (free_fn)
            free_fn(state);
        return;
    }
    if (current->attached && current->attached_free)
        current->attached_free(current->attached);
    current->attached = state;
    current->attached_free = free_fn;
}

void *gate_attached(void)
{
    return current ? current->attached : NULL;
}

/* Whether c may appear in a boundary (RFC 2046 5.1.1 bchars; a space only
 * inside quotes, and not last). */
static bool boundary_char(char c, bool quoted)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("'()+_,-./:=?", c) != NULL || (c == ' ' && quoted);
}

/* The boundary parameter of a multipart Content-Type (quoted or not), or
 * "" when it is missing, longer than MULTIPART_BOUNDARY_MAX or has a byte
 * RFC 2046 does not allow (fuzz_multipart found `boundary=T"a` taken
 * whole, quote included: a delimiter libmicrohttpd's parser may read
 * otherwise, so the closing check would not be about the same body). */
static void multipart_boundary(const char *type, char out[MULTIPART_BOUNDARY_MAX + 1])
{
    out[0] = '\0';
    const char *p = type;
    while ((p = strchr(p, ';')) != NULL) {
        p++;
        p += strspn(p, " \t");
        if (strncasecmp(p, "boundary=", 9) != 0)
            continue;
        p += 9;
        bool quoted = *p == '"';
        size_t n = quoted ? strcspn(++p, "\"") : strcspn(p, "; \t");
        if (n == 0 || n > MULTIPART_BOUNDARY_MAX || p[n - 1] == ' ')
            return;
        for (size_t i = 0; i < n; i++)
            if (!boundary_char(p[i], quoted))
                return;
        memcpy(out, p, n);
        out[n] = '\0';
        return;
    }
}

static void keep_tail(gate_request_t *gr, const char *data, size_t size)
{
    if (size >= MULTIPART_TAIL) {
        memcpy(gr->tail, data + size - MULTIPART_TAIL, MULTIPART_TAIL);
        gr->tail_len = MULTIPART_TAIL;
        return;
    }
    if (gr->tail_len + size > MULTIPART_TAIL) {
        size_t drop = gr->tail_len + size - MULTIPART_TAIL;
        memmove(gr->tail, gr->tail + drop, gr->tail_len - drop);
        gr->tail_len -= drop;
    }
    memcpy(gr->tail + gr->tail_len, data, size);
    gr->tail_len += size;
}

bool gate_multipart_closed(void)
{
    if (current == NULL || !current->multipart_upload)
        return true;
    if (current->boundary[0] == '\0')
        return false;
    char delimiter[MULTIPART_BOUNDARY_MAX + 6];
    int n = snprintf(delimiter, sizeof(delimiter), "\n--%s--", current->boundary);
    for (size_t i = 0; i + (size_t)n <= current->tail_len; i++)
        if (memcmp(current->tail + i, delimiter, (size_t)n) == 0)
            return true;
    return false;
}

void gate_refuse_body(void)
{
    if (current)
        current->overflowed = true;
}

unsigned gate_in_flight(void)
{
    return atomic_load(&in_flight);
}

unsigned http_requests_in_flight(void)
{
    return gate_in_flight();
}

/*
 * Requests per second over the last minute: a ring of RATE_SLOTS atomic
 * words, one per second, each the second's number (high 32 bits) and its
 * count (low 32). A request adds one with a compare-and-swap on its
 * second's word, restarting the count when the word still holds an older
 * second; no lock, and a reader sums the words whose second is recent.
 */
#define RATE_SLOTS 64
#define RATE_WINDOW 60
static _Atomic uint64_t rate_ring[RATE_SLOTS];

static uint32_t rate_now(void)
{
    return (uint32_t)(clock_mono_ns() / 1000000000);
}

static void rate_count(void)
{
    uint32_t sec = rate_now();
    _Atomic uint64_t *w = &rate_ring[sec % RATE_SLOTS];
    uint64_t v = atomic_load_explicit(w, memory_order_relaxed), next;
    do {
        next = (uint32_t)(v >> 32) == sec ? v + 1 : ((uint64_t)sec << 32) | 1u;
    } while (!atomic_compare_exchange_weak_explicit(w, &v, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

/* Answers by status class (index status / 100, 1..5; 0 for anything
 * else) and the 429s among them, counted as each request completes. */
static _Atomic uint64_t answered[6];
static _Atomic uint64_t answered_429;

static void count_answer(int status)
{
    unsigned c = status >= 100 && status < 600 ? (unsigned)status / 100 : 0;
    atomic_fetch_add_explicit(&answered[c], 1, memory_order_relaxed);
    if (status == 429)
        atomic_fetch_add_explicit(&answered_429, 1, memory_order_relaxed);
}

void http_requests_answered(http_answer_counts_t *out)
{
    for (unsigned i = 0; i < 6; i++)
        out->by_class[i] = atomic_load_explicit(&answered[i], memory_order_relaxed);
    out->too_many = atomic_load_explicit(&answered_429, memory_order_relaxed);
}

double http_requests_per_second(void)
{
    uint32_t now = rate_now();
    uint64_t total = 0;
    for (unsigned i = 0; i < RATE_SLOTS; i++) {
        uint64_t v = atomic_load_explicit(&rate_ring[i], memory_order_relaxed);
        uint32_t age = now - (uint32_t)(v >> 32);
        if (v != 0 && age < RATE_WINDOW)
            total += (uint32_t)v;
    }
    return (double)total / RATE_WINDOW;
}

/*
 * Requests in flight, so that the drain at shutdown can tell a request worth
 * waiting for from one whose client went away mid-body: libmicrohttpd 0.9.75
 * can miss the close of a connection whose body stopped half-way (all its
 * bytes and the FIN already read) and then holds the request until the idle
 * timeout (docs/architecture.md, "Known limits of libmicrohttpd 0.9.75").
 *
 * The drain asks the socket itself rather than guessing from quiet time: a
 * client that is still connected, however slowly it sends, is waited for; one
 * whose end of the connection is closed (FIN or RST received, nothing left
 * unread) can never finish its request. gate_peer_gone() probes without
 * reading, and only under flight_mu: libmicrohttpd calls the completion
 * callback, which takes flight_mu to unlink the request, before it closes the
 * socket, so a descriptor probed here is never one already reused.
 */
static pthread_mutex_t flight_mu = PTHREAD_MUTEX_INITIALIZER; /* guards flight_head, links */
static gate_request_t *flight_head;

bool gate_peer_gone(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&pfd, 1, 0) != 1)
        return false; /* nothing to say: connected and quiet */
    if (pfd.revents & (POLLERR | POLLNVAL))
        return true;
    if (!(pfd.revents & (POLLRDHUP | POLLHUP)))
        return false; /* bytes are waiting: the client is sending */
    /* The peer has closed its side; bytes it sent before may still wait to
     * be read, and those can still complete the request. */
    int unread = 0;
    return ioctl(fd, FIONREAD, &unread) != 0 || unread == 0;
}

static void flight_add(gate_request_t *gr, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    gr->fd = ci ? ci->connect_fd : -1;
    pthread_mutex_lock(&flight_mu);
    gr->flight_next = flight_head;
    if (flight_head)
        flight_head->flight_prev = gr;
    flight_head = gr;
    pthread_mutex_unlock(&flight_mu);
}

static void flight_remove(gate_request_t *gr)
{
    pthread_mutex_lock(&flight_mu);
    if (gr->flight_prev)
        gr->flight_prev->flight_next = gr->flight_next;
    else
        flight_head = gr->flight_next;
    if (gr->flight_next)
        gr->flight_next->flight_prev = gr->flight_prev;
    pthread_mutex_unlock(&flight_mu);
}

unsigned gate_in_flight_waited(void)
{
    unsigned n = 0;
    pthread_mutex_lock(&flight_mu);
    for (const gate_request_t *gr = flight_head; gr; gr = gr->flight_next)
        if (!gr->taken_over && (atomic_load(&gr->body_done) || !gate_peer_gone(gr->fd)))
            n++;
    pthread_mutex_unlock(&flight_mu);
    return n;
}

void gate_begin_drain(void)
{
    atomic_store(&draining, true);
}

bool gate_draining(void)
{
    return atomic_load(&draining);
}

const char *gate_request_id(void)
{
    return current ? current->request_id : NULL;
}

void gate_note_status(int status)
{
    if (current)
        current->status = status;
}

void gate_note_route(void *route_metric)
{
    if (current)
        current->metric = route_metric;
}

void gate_note_bytes_out(uint64_t bytes)
{
    if (current)
        current->bytes_out = bytes;
}

void gate_note_user(const char *user_id)
{
    if (current)
        snprintf(current->user_id, sizeof(current->user_id), "%s", user_id);
}

static _Atomic uint64_t blocked_hits;

uint64_t http_blocked_hits(void)
{
    return atomic_load_explicit(&blocked_hits, memory_order_relaxed);
}

void *gate_uri_logger(void *cls, const char *uri, struct MHD_Connection *conn)
{
    gate_request_t *gr = calloc(1, sizeof(*gr));
    if (gr == NULL)
        return NULL;
    gr->inner = ulfius_uri_logger(cls, uri);
    if (gr->inner == NULL) {
        free(gr);
        return NULL;
    }
    gr->start_ns = clock_mono_ns();
    gr->guard = conn ? conn_guard_of(conn) : NULL;
    conn_guard_request_line(gr->guard);
    size_t n = strcspn(uri, "?");
    if (n >= sizeof(gr->path))
        n = sizeof(gr->path) - 1;
    memcpy(gr->path, uri, n);
    gr->path[n] = '\0';
    return gr;
}

bool http_request_id_acceptable(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok || n >= 64)
            return false;
    }
    return n > 0;
}

static void new_request_id(char out[HTTP_REQUEST_ID_MAX])
{
    uint64_t n = atomic_fetch_add(&next_request_number, 1) + 1;
    snprintf(out, HTTP_REQUEST_ID_MAX, "req_%08x%012llx", (unsigned)request_id_prefix,
             (unsigned long long)n);
}

static void assign_request_id(gate_request_t *gr, struct MHD_Connection *conn)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given != NULL && http_request_id_acceptable(given))
        snprintf(gr->request_id, sizeof(gr->request_id), "%s", given);
    else
        new_request_id(gr->request_id);
}

/* The peer's address as text (ulfius keeps only a truncated sockaddr). */
static void client_address(struct MHD_Connection *conn, char *addr, size_t size)
{
    snprintf(addr, size, "-");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr,
                  (socklen_t)size);
}

#define FORWARD_VALUES_MAX 16

typedef struct forward_headers {
    const char *fwd[FORWARD_VALUES_MAX], *xff[FORWARD_VALUES_MAX];
    size_t n_fwd, n_xff;
    bool too_many;
} forward_headers_t;

static enum MHD_Result collect_forward(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    (void)kind;
    forward_headers_t *fh = cls;
    if (key == NULL || value == NULL)
        return MHD_YES;
    bool fwd = strcasecmp(key, "Forwarded") == 0;
    if (!fwd && strcasecmp(key, "X-Forwarded-For") != 0)
        return MHD_YES;
    size_t *n = fwd ? &fh->n_fwd : &fh->n_xff;
    if (*n == FORWARD_VALUES_MAX) {
        fh->too_many = true;
        return MHD_YES;
    }
    (fwd ? fh->fwd : fh->xff)[(*n)++] = value;
    return MHD_YES;
}

/* Sets gr->client and its text: the peer, or the client its trusted
 * proxies name (forwarded.c); peer_ip keeps the peer when they differ. */
static void resolve_client(struct MHD_Connection *conn, gate_request_t *gr)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    ipnet_t peer;
    if (ci == NULL || !ipnet_from_sockaddr(ci->client_addr, &peer)) {
        client_address(conn, gr->client_ip, sizeof(gr->client_ip));
        memset(&gr->client, 0, sizeof(gr->client)); /* family 0 matches nothing */
        return;
    }
    gr->client = peer;
    const union MHD_ConnectionInfo *tls =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gr->https = tls != NULL && tls->tls_session != NULL;
    ipnet_set_t *trusted = forwarded_trusted();
    if (ipnet_set_count(trusted) > 0 && ipnet_set_match(trusted, &peer, 0, NULL, NULL)) {
        const char *proto =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-Proto");
        /* The first proxy's view, the left-most of a list, is the client's. */
        if (proto != NULL)
            gr->https = strncasecmp(proto, "https", 5) == 0 &&
                        (proto[5] == '\0' || proto[5] == ',' || proto[5] == ' ');
        forward_headers_t fh = {.n_fwd = 0};
        MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_forward, &fh);
        /* More header lines than kept: the right-most are not known. */
        if (!fh.too_many &&
            forwarded_client(&peer, fh.fwd, fh.n_fwd, fh.xff, fh.n_xff, trusted, &gr->client))
            ipnet_format(&peer, gr->peer_ip);
    }
    ipnet_format(&gr->client, gr->client_ip);
}

static bool client_blocked(const gate_request_t *gr)
{
    return blocklist != NULL && gr->client.family != 0 && ipnet_set_count(blocklist) > 0 &&
           ipnet_set_match(blocklist, &gr->client, clock_wall_ms(), NULL, NULL);
}

bool gate_request_https(void)
{
    return current != NULL && current->https;
}

const char *gate_client_ip(void)
{
    return current ? current->client_ip : "";
}

const char *http_client_ip(const http_ctx_t *ctx)
{
    (void)ctx; /* the request served on this thread is ctx's */
    return gate_client_ip();
}

/* The access log line of a completed request: text, or in json format an
 * object with the request id, user id, route pattern, method, status,
 * duration, bytes and addresses (docs/operations.md, "Logs"). */
static void access_log(const gate_request_t *gr, struct MHD_Connection *conn,
                       enum MHD_RequestTerminationCode toe, const route_slot_t *route,
                       int64_t duration_ns)
{
    if (log_current_level < LOG_LEVEL_INFO)
        return;
    char addr[64];
    if (gr->client_ip[0])
        snprintf(addr, sizeof(addr), "%s", gr->client_ip);
    else
        client_address(conn, addr, sizeof(addr));
    double ms = (double)duration_ns / 1e6;
    const char *end = !gr->started ? " (refused by the HTTP parser)"
                      : toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                                                                    : " (connection ended early)";
    const char *method = gr->method[0] ? gr->method : "-";
    if (log_current_format != LOG_FORMAT_JSON) {
        char line[1024];
        snprintf(line, sizeof(line), "http %s %s %d %.3fms id=%s ip=%s%s%s%s", method, gr->path,
                 gr->status, ms, gr->request_id[0] ? gr->request_id : "-", addr,
                 gr->peer_ip[0] ? " via=" : "", gr->peer_ip, end);
        log_info_text(line);
        return;
    }
    json_t *f = json_object();
    if (f == NULL)
        return;
    json_object_set_new(f, "type", json_string("access"));
    json_object_set_new(f, "request_id", log_json_string(gr->request_id));
    json_object_set_new(f, "user_id", gr->user_id[0] ? json_string(gr->user_id) : json_null());
    json_object_set_new(f, "method", log_json_string(method));
    json_object_set_new(f, "route", json_string(route_metrics__route(route)));
    json_object_set_new(f, "path", log_json_string(gr->path));
    json_object_set_new(f, "status", json_integer(gr->status));
    json_object_set_new(f, "duration_ms", json_real((double)(duration_ns / 1000) / 1000.0));
    json_object_set_new(f, "bytes_in", json_integer((json_int_t)gr->body_bytes));
    json_object_set_new(f, "bytes_out", json_integer((json_int_t)gr->bytes_out));
    json_object_set_new(f, "ip", log_json_string(addr));
    if (gr->peer_ip[0])
        json_object_set_new(f, "via", log_json_string(gr->peer_ip));
    if (end[0])
        json_object_set_new(f, "ended", json_string(!gr->started ? "refused by the HTTP parser"
                                                                 : "connection ended early"));
    char msg[320];
    snprintf(msg, sizeof(msg), "http %s %s %d", method, gr->path, gr->status);
    log_fields(msg, f, NULL);
}

void gate_request_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                            enum MHD_RequestTerminationCode toe)
{
    gate_request_t *gr = *con_cls;
    if (gr == NULL)
        return;
    mhd_request_completed(cls, connection, &gr->inner, toe);
    if (!gr->taken_over)
        conn_guard_request_done(gr->guard);
    if (gr->attached && gr->attached_free)
        gr->attached_free(gr->attached);
    route_slot_t *metric = gr->metric;
    if (metric == NULL && gr->taken_over)
        metric = router__route_metric(takes_upload_ctx, gr->method, gr->path);
    int64_t took = clock_mono_ns() - gr->start_ns;
    access_log(gr, connection, toe, metric, took);
    count_answer(gr->status);
    route_metrics__count(metric, gr->status, took, gr->body_bytes, gr->bytes_out);
    if (gr->reserved)
        atomic_fetch_sub(&body_in_memory, gr->reserved);
    if (gr->started) {
        flight_remove(gr);
        atomic_fetch_sub(&in_flight, 1);
    }
    free(gr);
    *con_cls = NULL;
}

static void add_mhd_header(void *ctx, const char *name, const char *value)
{
    MHD_add_response_header(ctx, name, value);
}

/*
 * Wraps an error body (from http_error_body, taken over) in a response with
 * the headers every Parley error carries. NULL (and the body freed) when
 * there is no memory.
 */
static struct MHD_Response *json_error_response(char *body, const char *request_id)
{
    if (body == NULL)
        return NULL;
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(strlen(body), body, free);
    if (r == NULL) {
        free(body);
        return NULL;
    }
    MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(r, "X-Request-Id", request_id);
    http_security_headers_each(add_mhd_header, r);
    http_tls_hsts_each(add_mhd_header, r);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    return r;
}

struct MHD_Response *http_error_response(enum http_error err, const char *message,
                                         const char *request_id)
{
    return json_error_response(http_error_body(err, message, NULL, request_id), request_id);
}

/* Answers 413 and closes the connection. Returns MHD_NO when the answer can
 * no longer be queued, which makes libmicrohttpd drop the connection. */
static enum MHD_Result reject_too_large(struct MHD_Connection *conn, gate_request_t *gr)
{
    char message[96];
    bool upload = gr->multipart_upload;
    uint64_t shown = upload ? gr->limit - GATE_UPLOAD_SLACK : gr->limit;
    snprintf(message, sizeof(message), "the %s is larger than %llu bytes",
             upload ? "upload" : "request body", (unsigned long long)shown);
    char *body = http_error_body(HTTP_ERR_PAYLOAD_TOO_LARGE, message,
                                 json_pack("{s:I}", "max_bytes", (json_int_t)shown),
                                 gr->request_id);
    gr->rejected = true;
    gr->status = 413;
    gr->bytes_out = body ? strlen(body) : 0;
    struct MHD_Response *resp = json_error_response(body, gr->request_id);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ok = MHD_queue_response(conn, 413, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* Answers err (its status) with a JSON error and closes the connection;
 * retry_after > 0 adds a Retry-After of that many seconds. */
static enum MHD_Result reject_retry(struct MHD_Connection *conn, gate_request_t *gr,
                                    enum http_error err, const char *message, unsigned retry_after)
{
    char *body = http_error_body(err, message, NULL, gr->request_id);
    gr->rejected = true;
    gr->status = http_error_status(err);
    gr->bytes_out = body ? strlen(body) : 0;
    struct MHD_Response *resp = json_error_response(body, gr->request_id);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Connection", "close");
    if (retry_after > 0) {
        char secs[16];
        snprintf(secs, sizeof(secs), "%u", retry_after);
        MHD_add_response_header(resp, "Retry-After", secs);
    }
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)gr->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result reject_with(struct MHD_Connection *conn, gate_request_t *gr,
                                   enum http_error err, const char *message)
{
    return reject_retry(conn, gr, err, message, 0);
}

static enum MHD_Result reject_malformed(struct MHD_Connection *conn, gate_request_t *gr,
                                        const char *message)
{
    return reject_with(conn, gr, HTTP_ERR_BAD_REQUEST, message);
}

/*
 * The request's framing, checked before anything reads a body (RFC 9112
 * section 6.3): a proxy in front may read an ambiguous message differently
 * from libmicrohttpd, so one is refused with 400 and its connection closed.
 * Refused: a header name with white space (`Transfer-Encoding :`), more than
 * one Content-Length (even equal ones) or one that is not only digits,
 * more than one Transfer-Encoding or any coding but `chunked`, and
 * Transfer-Encoding with Content-Length.
 */
typedef struct framing {
    unsigned lengths, encodings;
    const char *error;
} framing_t;

static enum MHD_Result check_framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    (void)kind;
    framing_t *f = cls;
    if (key == NULL || f->error != NULL)
        return MHD_YES;
    if (key[0] == '\0' || key[strcspn(key, " \t")] != '\0') {
        f->error = "a header name contains white space";
        return MHD_NO;
    }
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        f->lengths++;
        if (value == NULL || value[0] == '\0' || value[strspn(value, "0123456789")] != '\0' ||
            strlen(value) > 18)
            f->error = "Content-Length must be one decimal number";
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->encodings++;
        if (value == NULL || strcasecmp(value, "chunked") != 0)
            f->error = "the only transfer coding accepted is chunked";
    }
    if (f->error == NULL && f->lengths > 1)
        f->error = "the request has more than one Content-Length";
    if (f->error == NULL && f->encodings > 1)
        f->error = "the request has more than one Transfer-Encoding";
    if (f->error == NULL && f->lengths > 0 && f->encodings > 0)
        f->error = "the request has both Transfer-Encoding and Content-Length";
    return f->error == NULL ? MHD_YES : MHD_NO;
}

static const char *framing_error(struct MHD_Connection *conn)
{
    framing_t f = {.lengths = 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, check_framing_header, &f);
    return f.error;
}

static bool has_credentials(struct MHD_Connection *conn)
{
    const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-API-Key");
    const char *cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, HTTP_SESSION_COOKIE);
    return (authz != NULL && authz[0] != '\0') || (key != NULL && key[0] != '\0') ||
           (cookie != NULL && cookie[0] != '\0');
}

/* Takes n bytes of the global body budget for gr; false when it is spent. */
static bool reserve_body(gate_request_t *gr, uint64_t n)
{
    uint64_t before = atomic_fetch_add(&body_in_memory, n);
    if (before + n > limits.body_budget_bytes) {
        atomic_fetch_sub(&body_in_memory, n);
        return false;
    }
    gr->reserved += n;
    return true;
}

static enum MHD_Result reject_busy(struct MHD_Connection *conn, gate_request_t *gr)
{
    /* One line a minute at most: a flood must not flood the log too. */
    static _Atomic int64_t last_warned;
    int64_t now = clock_mono_ns() / 1000000000, then = atomic_load(&last_warned);
    if ((then == 0 || now - then >= 60) && atomic_compare_exchange_strong(&last_warned, &then, now))
        log_warning("the request body budget (%llu bytes) is spent: requests are answered 503",
                    (unsigned long long)limits.body_budget_bytes);
    return reject_retry(conn, gr, HTTP_ERR_UNAVAILABLE,
                        "the server holds too many request bodies; retry later", 1);
}

static enum MHD_Result gate_access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_data_size,
                                   void **con_cls)
{
    gate_daemon_t *gd = cls;
    gate_request_t *gr = *con_cls;
    if (gr == NULL)
        return MHD_NO;

    if (!gr->started) {
        gr->started = true;
        conn_guard_headers_done(gr->guard);
        atomic_fetch_add(&in_flight, 1);
        rate_count();
        flight_add(gr, conn);
        snprintf(gr->method, sizeof(gr->method), "%s", method);
        assign_request_id(gr, conn);
        resolve_client(conn, gr);
        if (client_blocked(gr)) {
            atomic_fetch_add_explicit(&blocked_hits, 1, memory_order_relaxed);
            return reject_with(conn, gr, HTTP_ERR_IP_BLOCKED,
                               "requests from your address are blocked");
        }
        const char *framing = framing_error(conn);
        if (framing != NULL)
            return reject_malformed(conn, gr, framing);
        gr->limit = max_body;
        const char *type =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (type != NULL && strncasecmp(type, "multipart/form-data", 19) == 0 && takes_upload &&
            takes_upload(takes_upload_ctx, method, gr->path)) {
            gr->limit = atomic_load(&max_upload) + GATE_UPLOAD_SLACK;
            gr->multipart_upload = true;
            multipart_boundary(type, gr->boundary);
        }
        const char *length =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t declared = length != NULL ? strtoull(length, NULL, 10) : 0;
        if (!gr->multipart_upload) {
            /* Bodies before authentication are small: a public route's,
             * and any sent without credentials (it is answered 401 anyway). */
            bool open_route = limits.route_flags != NULL &&
                              (limits.route_flags(takes_upload_ctx, method, gr->path) &
                               HTTP_ROUTE_PUBLIC);
            bool credentials = has_credentials(conn);
            if ((open_route || !credentials) && limits.public_body_bytes < gr->limit) {
                gr->limit = limits.public_body_bytes;
                if (!open_route && declared > gr->limit)
                    return reject_with(conn, gr, HTTP_ERR_AUTHENTICATION_REQUIRED,
                                       "credentials (Authorization, X-API-Key or a session "
                                       "cookie) are needed before a body of this size is read");
            }
        }
        if (declared > gr->limit)
            return reject_too_large(conn, gr);
        gr->chunked = length == NULL;
        if (!gr->multipart_upload && declared > 0 && !reserve_body(gr, declared))
            return reject_busy(conn, gr);
        if (takeover_claims && takeover_claims(takeover_ctx, method, gr->path)) {
            /* Answered here; a body, if any, is read and ignored. */
            gr->rejected = true;
            gr->taken_over = true;
            conn_guard_release(gr->guard);
            current = gr;
            enum MHD_Result ret =
                takeover_take(takeover_ctx, conn, gr->path, gr->request_id, &gr->status);
            current = NULL;
            return ret;
        }
    } else if (gr->rejected) {
        conn_guard_body(gr->guard, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    } else if (*upload_data_size != 0) {
        conn_guard_body(gr->guard, *upload_data_size);
        gr->body_bytes += *upload_data_size;
        if (gr->overflowed || gr->body_bytes > gr->limit) {
            gr->overflowed = true;
            *upload_data_size = 0;
            bool flood = gr->body_bytes > gr->limit &&
                         gr->body_bytes - gr->limit > OVERFLOW_DROP_BYTES;
            return flood ? MHD_NO : MHD_YES;
        }
        if (gr->multipart_upload)
            keep_tail(gr, upload_data, *upload_data_size);
        else if (gr->chunked && !reserve_body(gr, *upload_data_size))
            return MHD_NO; /* no answer can be queued mid-body: the connection is dropped */
    } else if (gr->overflowed) {
        return reject_too_large(conn, gr);
    }

    bool first = gr->body_bytes == 0 && *upload_data_size == 0 && !gr->seen_by_inner;
    if (!first && *upload_data_size == 0) {
        atomic_store(&gr->body_done, true); /* the last call: the endpoint runs now */
        conn_guard_body_done(gr->guard);
    }
    gr->seen_by_inner = true;
    current = gr;
    enum MHD_Result ret =
        gd->inner(gd->inner_cls, conn, url, method, version, upload_data, upload_data_size,
                  &gr->inner);
    current = NULL;
    if (ret == MHD_NO && first) {
        /* ulfius refuses a request it cannot set up (a multipart body whose
         * boundary libmicrohttpd rejects) by dropping the connection: answer
         * it instead, as every malformed request is answered. */
        return reject_malformed(conn, gr,
                                gr->multipart_upload
                                    ? "the Content-Type of this multipart/form-data body has "
                                      "no usable boundary"
                                    : "the body must be sent as Content-Type: application/json");
    }
    return ret;
}

/* libmicrohttpd's logger callback: its format strings are libmicrohttpd's own. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    /* What a client does wrong is the client's problem: at warning level
     * these would let any client flood the log. */
    static const char *const client_caused[] = {
        "Error processing request",
        "Failed to parse",
        "Connection was closed by remote side",
        "Application reported internal error",
        "Received malformed",
        "Connection socket is closed", /* also the connection guard's cuts */
        "Error: received handshake message out of context", /* any failed TLS handshake */
    };
    for (size_t i = 0; i < sizeof(client_caused) / sizeof(client_caused[0]); i++) {
        if (strncmp(line, client_caused[i], strlen(client_caused[i])) == 0) {
            log_debug("libmicrohttpd: %s", line);
            return;
        }
    }
    log_warning("libmicrohttpd: %s", line);
}

static struct MHD_Daemon *start_daemon_with(unsigned int flags, uint16_t port,
                                            MHD_AcceptPolicyCallback apc, void *apc_cls,
                                            gate_daemon_t *gd, ...)
{
    va_list ap;
    va_start(ap, gd);
    struct MHD_Daemon *d = MHD_start_daemon_va(flags, port, apc, apc_cls, gate_access, gd, ap);
    va_end(ap);
    return d;
}

/*
 * ulfius calls this with its options as (MHD_OPTION_ARRAY, items,
 * MHD_OPTION_END). The logger must be the very first option for
 * libmicrohttpd to use it from the start, so it is put in front here; any
 * other form of call is passed on as it is.
 */
struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port,
                                    MHD_AcceptPolicyCallback apc, void *apc_cls,
                                    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
    int slot = atomic_fetch_add(&n_daemons, 1);
    if (slot >= MAX_DAEMONS) {
        log_error("gate: too many HTTP daemons");
        return NULL;
    }
    daemons[slot].inner = dh;
    daemons[slot].inner_cls = dh_cls;
    va_list ap;
    va_start(ap, dh_cls);
    struct MHD_Daemon *d;
    va_list peek;
    va_copy(peek, ap);
    enum MHD_OPTION first = va_arg(peek, enum MHD_OPTION);
    if (first == MHD_OPTION_ARRAY) {
        struct MHD_OptionItem *items = va_arg(peek, struct MHD_OptionItem *);
        conn_guard_start();
        d = start_daemon_with(flags, port, apc ? apc : conn_guard_accept, apc_cls,
                              &daemons[slot], MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                              MHD_OPTION_NOTIFY_CONNECTION, conn_guard_notify, NULL,
                              MHD_OPTION_ARRAY, items, MHD_OPTION_END);
    } else {
        d = MHD_start_daemon_va(flags, port, apc, apc_cls, gate_access, &daemons[slot], ap);
    }
    va_end(peek);
    va_end(ap);
    return d;
}

/* See the file comment: libmicrohttpd's own HTML error pages become JSON. */
struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
                                                     enum MHD_ResponseMemoryMode mode)
{
    if (mode == MHD_RESPMEM_PERSISTENT && buffer != NULL && size >= 6 &&
        memcmp(buffer, "<html>", 6) == 0) {
        bool too_big = memmem(buffer, size, "too big", 7) != NULL;
        char request_id[HTTP_REQUEST_ID_MAX];
        new_request_id(request_id);
        char *body = http_error_body(HTTP_ERR_BAD_REQUEST,
                                     too_big ? "the request's headers or URL are too large"
                                             : "the request is not valid HTTP",
                                     NULL, request_id);
        if (body != NULL)
            return json_error_response(body, request_id);
    }
    if (mode == MHD_RESPMEM_MUST_COPY && size > 0) {
        void *copy = malloc(size);
        if (copy == NULL)
            return NULL;
        memcpy(copy, buffer, size);
        struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(size, copy, free);
        if (r == NULL)
            free(copy);
        return r;
    }
    return MHD_create_response_from_buffer_with_free_callback(
        size, buffer, mode == MHD_RESPMEM_MUST_FREE ? free : NULL);
}
