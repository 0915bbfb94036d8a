/*
 * The plain-HTTP port of --tls-redirect-port: a browser or a client typing
 * http:// is sent to the TLS port with 308 (method and body kept), and a load
 * balancer that checks health over plain HTTP still gets /api/health.
 *
 * It is its own small libmicrohttpd daemon (one internal thread with epoll,
 * at most 256 connections, 16 per address, 10 s idle timeout, 16 KiB per
 * connection) and not a second listener of the API's daemon: nothing but the
 * redirect and the health answer is ever served in clear text. It is started
 * with MHD_start_daemon_va, not MHD_start_daemon, so the connection gate
 * (gate.c, which takes over MHD_start_daemon for ulfius) stays out of it; it
 * reads no body (a request with one is answered and the connection closed).
 *
 * The target is https://<host><:port><path?query>: the host from the Host
 * header without its port (checked: letters, digits, '.', '-', or a
 * bracketed IPv6 literal; anything else is a 400 in JSON), the port the TLS
 * port (left out when 443), the path and query exactly as the request line
 * gave them (taken from libmicrohttpd's URI-log callback, which sees the raw
 * request target).
 */
#include "parley/http_server.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/log.h"
#include "parley/xalloc.h"

#define REDIRECT_TARGET_MAX 8192

struct http_tls_redirect {
    struct MHD_Daemon *daemon;
    uint16_t https_port;
    router_t *router;
};

/* The raw request target of one request, kept from the URI-log callback. */
typedef struct {
    char *target;
} redirect_request_t;

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls, (void)conn;
    redirect_request_t *rq = xcalloc(1, sizeof(*rq));
    rq->target = xstrdup(uri ? uri : "/");
    return rq;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    redirect_request_t *rq = *con_cls;
    if (rq != NULL) {
        free(rq->target);
        free(rq);
    }
    *con_cls = NULL;
}

static void add_header(void *response, const char *name, const char *value)
{
    MHD_add_response_header(response, name, value);
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, char *body,
                              const char *location)
{
    size_t len = body ? strlen(body) : 0;
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    if (body != NULL)
        MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    if (location != NULL)
        MHD_add_response_header(r, "Location", location);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    http_security_headers_each(add_header, r);
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* The Host header's host part ("chat.example.com", "[::1]") into out, or
 * false when it is missing or not a plain name or address. */
static bool host_of(const char *host, char out[256])
{
    if (host == NULL || host[0] == '\0')
        return false;
    size_t n;
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        if (end == NULL)
            return false;
        n = (size_t)(end - host) + 1;
        for (size_t i = 1; i + 1 < n; i++)
            if (!strchr("0123456789abcdefABCDEF:.", host[i]))
                return false;
        if (end[1] != '\0' && end[1] != ':')
            return false;
    } else {
        n = strcspn(host, ":");
        for (size_t i = 0; i < n; i++) {
            char c = host[i];
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '-';
            if (!ok)
                return false;
        }
    }
    if (n == 0 || n > 255)
        return false;
    memcpy(out, host, n);
    out[n] = '\0';
    return true;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
    (void)version, (void)upload_data;
    http_tls_redirect_t *rd = cls;
    redirect_request_t *rq = *con_cls;
    if (*upload_data_size > 0) {
        *upload_data_size = 0; /* a body is not read: answered at its end */
        return MHD_YES;
    }
    char request_id[HTTP_REQUEST_ID_MAX];
    snprintf(request_id, sizeof(request_id), "req_redirect");
    bool health_method = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (health_method && strcmp(url, "/api/health") == 0) {
        json_t *body = NULL;
        int status = router_call(rd->router, "GET", "/api/health", NULL, NULL, request_id,
                                 &body);
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        return answer(conn, (unsigned)status, text, NULL);
    }
    char host[256];
    if (!host_of(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host"), host)) {
        return answer(conn, 400,
                      http_error_body(HTTP_ERR_BAD_REQUEST,
                                      "this port only redirects to HTTPS, and needs a Host "
                                      "header naming the server",
                                      NULL, request_id),
                      NULL);
    }
    const char *target = rq != NULL && rq->target[0] == '/' ? rq->target : "/";
    char *location = malloc(REDIRECT_TARGET_MAX + 300);
    if (location == NULL)
        return MHD_NO;
    char port[8] = "";
    if (rd->https_port != 443)
        snprintf(port, sizeof(port), ":%u", rd->https_port);
    int n = snprintf(location, REDIRECT_TARGET_MAX + 300, "https://%s%s%s", host, port,
                     target);
    enum MHD_Result ok;
    if (n < 0 || n >= REDIRECT_TARGET_MAX + 300)
        ok = answer(conn, 414,
                    http_error_body(HTTP_ERR_BAD_REQUEST, "the request target is too long",
                                    NULL, request_id),
                    NULL);
    else
        ok = answer(conn, 308, NULL, location);
    free(location);
    return ok;
}

static struct MHD_Daemon *start_va(unsigned flags, http_tls_redirect_t *rd, ...)
{
    va_list ap;
    va_start(ap, rd);
    struct MHD_Daemon *d = MHD_start_daemon_va(flags, 0, NULL, NULL, handle, rd, ap);
    va_end(ap);
    return d;
}

http_tls_redirect_t *http_tls_redirect_start(const char *bind, uint16_t port,
                                             uint16_t https_port, router_t *router,
                                             char *err, size_t errlen)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
    memset(&addr, 0, sizeof(addr));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, bind, &addr.v4.sin_addr) == 1) {
        addr.v4.sin_family = AF_INET;
        addr.v4.sin_port = htons(port);
    } else if (inet_pton(AF_INET6, bind, &addr.v6.sin6_addr) == 1) {
        addr.v6.sin6_family = AF_INET6;
        addr.v6.sin6_port = htons(port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "the redirect port: '%s' is not an IP address", bind);
        return NULL;
    }
    http_tls_redirect_t *rd = xcalloc(1, sizeof(*rd));
    rd->https_port = https_port;
    rd->router = router;
    rd->daemon = start_va(flags, rd, MHD_OPTION_SOCK_ADDR, &addr.sa,
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
                          MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16,
                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
                          MHD_OPTION_URI_LOG_CALLBACK, uri_logger, NULL,
                          MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    if (rd->daemon == NULL) {
        snprintf(err, errlen, "cannot listen on %s port %u for --tls-redirect-port (is the port "
                 "in use?)", bind, port);
        free(rd);
        return NULL;
    }
    log_info("redirecting plain HTTP on %s port %u to HTTPS port %u", bind, port, https_port);
    return rd;
}

void http_tls_redirect_stop(http_tls_redirect_t *rd)
{
    if (rd == NULL)
        return;
    MHD_stop_daemon(rd->daemon);
    free(rd);
}
