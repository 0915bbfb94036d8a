/*
 * The separate plain listener of --metrics-bind: its own small libmicrohttpd
 * daemon that answers GET (and HEAD) /metrics without credentials and
 * nothing else, so a Prometheus on a private network or the same machine
 * can scrape without an API key while the main port keeps GET /metrics an
 * admin route (docs/operations.md, "Metrics").
 *
 * Why a daemon of its own rather than a second port of the main one: the
 * main daemon's every request goes through the gate and the router
 * (authentication, rate limits, bodies, the access log), which a scrape
 * must skip here and keep there. This one is deliberately small: one
 * internal thread (a scrape every few seconds needs no pool), at most
 * METRICS_MAX_CONNECTIONS connections, a short idle timeout, no bodies
 * (a request with one is answered before it is read, and its connection
 * closed), JSON errors of docs/api.md for anything but GET /metrics (404,
 * 405 with Allow). It is started with MHD_start_daemon_va, not
 * MHD_start_daemon, which the gate interposes for ulfius's daemon
 * (gate.c), so none of the gate's per-request state is made for it. Its
 * requests are not counted in the HTTP figures (they describe the API).
 * The text comes from the render function server.c hands it
 * (api_metrics_text), the same as the main port's.
 */
#include "parley/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "parley/http.h"
#include "parley/log.h"
#include "parley/xalloc.h"

#define METRICS_MAX_CONNECTIONS 16
#define METRICS_IDLE_TIMEOUT 10
#define METRICS_REQUEST_ID "req_metrics_listener"

struct http_metrics_listener {
    struct MHD_Daemon *daemon;
    http_metrics_render_fn render;
    void *ctx;
};

static void add_header(void *resp, const char *name, const char *value)
{
    MHD_add_response_header(resp, name, value);
}

static enum MHD_Result answer_error(struct MHD_Connection *conn, enum http_error err,
                                    const char *message, const char *allow)
{
    struct MHD_Response *r = http_error_response(err, message, METRICS_REQUEST_ID);
    if (r == NULL)
        return MHD_NO;
    if (allow != NULL)
        MHD_add_response_header(r, "Allow", allow);
    MHD_add_response_header(r, "Connection", "close");
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)http_error_status(err), r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    (void)upload_data;
    http_metrics_listener_t *l = cls;
    if (*con_cls != NULL) { /* a body after the answer was queued: dropped */
        *upload_data_size = 0;
        return MHD_YES;
    }
    *con_cls = l;
    size_t path_len = strcspn(url, "?");
    bool is_metrics = path_len == 8 && memcmp(url, "/metrics", 8) == 0;
    if (!is_metrics)
        return answer_error(conn, HTTP_ERR_NOT_FOUND,
                            "this listener serves only GET /metrics", NULL);
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0)
        return answer_error(conn, HTTP_ERR_METHOD_NOT_ALLOWED,
                            "GET /metrics is the only request this listener takes", "GET, HEAD");
    size_t len = 0;
    char *text = l->render(l->ctx, &len);
    if (text == NULL)
        return answer_error(conn, HTTP_ERR_UNAVAILABLE, "out of memory for the metrics", NULL);
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, text, free);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", HTTP_METRICS_CONTENT_TYPE);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    http_security_headers_each(add_header, r);
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_debug("metrics listener: libmicrohttpd: %s", line);
}

static struct MHD_Daemon *start_va(unsigned flags, http_metrics_listener_t *l, ...)
{
    va_list ap;
    va_start(ap, l);
    struct MHD_Daemon *d = MHD_start_daemon_va(flags, 0, NULL, NULL, on_request, l, ap);
    va_end(ap);
    return d;
}

http_metrics_listener_t *http_metrics_listener_start(const char *host, uint16_t port, bool is_v6,
                                                     http_metrics_render_fn render, void *ctx)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
    memset(&addr, 0, sizeof(addr));
    if (is_v6) {
        addr.v6.sin6_family = AF_INET6;
        addr.v6.sin6_port = htons(port);
        if (inet_pton(AF_INET6, host, &addr.v6.sin6_addr) != 1)
            return NULL;
    } else {
        addr.v4.sin_family = AF_INET;
        addr.v4.sin_port = htons(port);
        if (inet_pton(AF_INET, host, &addr.v4.sin_addr) != 1)
            return NULL;
    }
    http_metrics_listener_t *l = xcalloc(1, sizeof(*l));
    l->render = render;
    l->ctx = ctx;
    /* epoll, not select: the process may hold thousands of descriptors, and
     * select cannot watch one above FD_SETSIZE (1,024). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (is_v6)
        flags |= MHD_USE_IPv6;
    l->daemon = start_va(flags, l, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                         MHD_OPTION_SOCK_ADDR, &addr.sa, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)METRICS_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)METRICS_IDLE_TIMEOUT, MHD_OPTION_END);
    if (l->daemon == NULL) {
        free(l);
        return NULL;
    }
    log_info("metrics listener on %s%s%s port %u (GET /metrics, no credentials)",
             is_v6 ? "[" : "", host, is_v6 ? "]" : "", (unsigned)port);
    return l;
}

void http_metrics_listener_stop(http_metrics_listener_t *l)
{
    if (l == NULL)
        return;
    MHD_stop_daemon(l->daemon);
    free(l);
}
