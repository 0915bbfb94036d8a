/*
 * libFuzzer harness: what a WebSocket client sends before it is signed in
 * (src/realtime/websocket.c): the bytes of its frames, parsed by wslay with
 * the server's callbacks and frame limit, and each message handed to the
 * server's handler (on_message: the frame budget, binary refused; then
 * handle_text: the JSON, the frame type, the auth frame with whatever token
 * or API key it carries). The file is compiled into the harness to reach
 * those static functions; the connection is a socketpair whose far end is
 * drained, with an empty store in a scratch directory behind the auth.
 *
 * Input: the raw bytes a client sends after the handshake (client frames
 * are masked; the seeds are). Beyond "no crash, no leak, no undefined
 * behaviour": no input signs the connection in (it cannot know a token).
 */
#include <sys/socket.h>

#include "realtime/websocket.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static parley_config_t cfg;
static parley_app_t app;
static realtime_t rt;
static struct ws_loop loop;
static char dir[256];

static void teardown(void)
{
    store_close(app.store);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return;
}

static bool setup(void)
{
    if (app.store)
        return true;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof(dir), "%s/fuzz-ws-XXXXXX", base);
    if (mkdtemp(dir) == NULL)
        return false;
    config_defaults(&cfg);
    char err[256];
    store_options_t o = {.fsync = WAL_FSYNC_NONE};
    if (store_open(&app.store, dir, &o, err, sizeof(err)) != 0)
        abort();
    static const char secret[] = "fuzz-secret-that-no-input-can-know-0123456789";
    if (auth_keys_derive(secret, sizeof(secret) - 1, &app.keys) != AUTH_OK)
        abort();
    app.config = &cfg;
    rt.app = &app;
    loop.rt = &rt;
    loop.max_frame = 64 * 1024;
    loop.queue_bytes = 1 << 20;
    loop.rate = 50;
    atexit(teardown);
    return true;
}

static void drain(int fd)
{
    char buf[4096];
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536 || !setup())
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return 0;
    ws_conn_t *c = calloc(1, sizeof(*c));
    c->loop = &loop;
    c->fd = sv[0];
    c->preread = malloc(size ? size : 1);
    memcpy(c->preread, data, size);
    c->preread_len = size;
    c->tokens = loop.rate * 2;
    c->tokens_ns = clock_mono_ns();
    static const struct wslay_event_callbacks callbacks = {
        .recv_callback = on_recv,
        .send_callback = on_send,
        .genmask_callback = on_genmask,
        .on_msg_recv_callback = on_message,
    };
    if (wslay_event_context_server_init(&c->ws, &callbacks, c) != 0)
        abort();
    wslay_event_config_set_max_recv_msg_length(c->ws, loop.max_frame);
    for (int round = 0; round < 64 && !c->peer_gone; round++) {
        bool more = c->preread_off < c->preread_len;
        if (wslay_event_want_read(c->ws) && wslay_event_recv(c->ws) != 0)
            break;
        if (c->closing && !c->close_queued && wslay_event_get_queued_msg_count(c->ws) == 0) {
            wslay_event_queue_close(c->ws, c->close_code, (const uint8_t *)c->close_reason,
                                    strlen(c->close_reason));
            c->close_queued = true;
        }
        if (wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0)
            break;
        drain(sv[1]);
        if (!more && !wslay_event_want_write(c->ws))
            break;
    }
    if (c->client.authenticated)
        abort(); /* signed in without a token */
    wslay_event_context_free(c->ws);
    realtime__client_clear(&c->client);
    realtime__outq_clear(&c->out); /* the frames answered, never sent here */
    free(c->preread);
    free(c);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
