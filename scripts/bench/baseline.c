/*
 * The HTTP baseline of `make bench`: a bare ulfius program answering
 * GET /hello with a small JSON object, in the same libmicrohttpd mode as
 * Parley (internal polling threads + epoll, a fixed thread pool), with
 * nothing else: no gate, no router, no authentication, no store. Parley's
 * read path (P2) is measured as a ratio of this.
 *
 * POST /echo parses a JSON body and answers it back with 201: the floor of
 * a POST with a body on this stack, with no authentication, no store and
 * no log (P1 is reported beside it).
 *
 * GET /page answers the bytes of page-file (a copy of a history page Parley
 * gave), copied into each answer as ulfius does: the floor of answering
 * that many bytes with this stack, whatever the work behind them.
 *
 *     bench_hello <port> <threads> [page-file]
 *
 * Runs until SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ulfius.h>

static int hello(const struct _u_request *req, struct _u_response *resp, void *data)
{
    (void)req;
    (void)data;
    json_t *body = json_pack("{s:s}", "hello", "world");
    ulfius_set_json_body_response(resp, 200, body);
    json_decref(body);
    return U_CALLBACK_COMPLETE;
}

static int echo(const struct _u_request *req, struct _u_response *resp, void *data)
{
    (void)data;
    json_t *body = ulfius_get_json_body_request(req, NULL);
    if (body == NULL) {
        ulfius_set_string_body_response(resp, 400, "{\"error\":\"bad json\"}");
        return U_CALLBACK_COMPLETE;
    }
    ulfius_set_json_body_response(resp, 201, body);
    json_decref(body);
    return U_CALLBACK_COMPLETE;
}

struct page {
    char *bytes;
    size_t len;
};

static int page(const struct _u_request *req, struct _u_response *resp, void *data)
{
    (void)req;
    const struct page *p = data;
    ulfius_set_binary_body_response(resp, 200, p->bytes, p->len);
    u_map_put(resp->map_header, "Content-Type", "application/json; charset=utf-8");
    return U_CALLBACK_COMPLETE;
}

static bool read_page(const char *path, struct page *p)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    p->bytes = malloc(1 << 20);
    p->len = p->bytes ? fread(p->bytes, 1, 1 << 20, f) : 0;
    fclose(f);
    return p->len > 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s <port> <threads> [page-file]\n", argv[0]);
        return 2;
    }
    struct page body = {0};
    if (argc == 4 && !read_page(argv[3], &body)) {
        fprintf(stderr, "cannot read %s\n", argv[3]);
        return 2;
    }
    unsigned port = (unsigned)atoi(argv[1]);
    unsigned threads = (unsigned)atoi(argv[2]);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    struct _u_instance instance;
    if (ulfius_init_instance(&instance, port, NULL, NULL) != U_OK)
        return 1;
    ulfius_add_endpoint_by_val(&instance, "GET", "/hello", NULL, 0, hello, NULL);
    ulfius_add_endpoint_by_val(&instance, "POST", "/echo", NULL, 0, echo, NULL);
    if (body.len)
        ulfius_add_endpoint_by_val(&instance, "GET", "/page", NULL, 0, page, &body);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_OptionItem options[] = {
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)mhd_request_completed, NULL},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)ulfius_uri_logger, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 4096, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, (void *)&addr},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_USE_ITC;
    if (ulfius_start_framework_with_mhd_options(&instance, flags, options) != U_OK) {
        fprintf(stderr, "cannot listen on port %u\n", port);
        return 1;
    }
    int sig;
    sigwait(&stop, &sig);
    ulfius_stop_framework(&instance);
    ulfius_clean_instance(&instance);
    free(body.bytes);
    return 0;
}
