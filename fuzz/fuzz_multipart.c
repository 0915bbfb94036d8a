/*
 * libFuzzer harness: what the gate reads of a multipart upload
 * (src/http/gate.c): the boundary parameter of the Content-Type
 * (multipart_boundary), the body's last bytes kept chunk by chunk as they
 * arrive (keep_tail) and the check that the body ended with its closing
 * delimiter (gate_multipart_closed), which decides whether an upload is
 * complete. (The parts themselves are split by libmicrohttpd's post
 * processor, which needs a live connection; the e2e tests send it hostile
 * bodies.) These are static, so the file is compiled into the harness.
 *
 * Input: one byte that seeds the chunk sizes, the Content-Type value, NUL,
 * the body. Beyond "no crash, no leak": a boundary found is at most
 * MULTIPART_BOUNDARY_MAX bytes of the header without a quote; however the
 * body is cut into chunks, the close
 * check answers what a search of the whole body's last MULTIPART_TAIL bytes
 * for "\n--<boundary>--" answers.
 */
#include "http/gate.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool closed_in(const uint8_t *body, size_t len, const char *boundary)
{
    if (boundary[0] == '\0')
        return false;
    char delim[MULTIPART_BOUNDARY_MAX + 6];
    size_t n = (size_t)snprintf(delim, sizeof(delim), "\n--%s--", boundary);
    size_t from = len > MULTIPART_TAIL ? len - MULTIPART_TAIL : 0;
    for (size_t i = from; i + n <= len; i++)
        if (memcmp(body + i, delim, n) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 65536)
        return 0;
    uint32_t seed = data[0];
    const uint8_t *nul = memchr(data + 1, '\0', size - 1);
    if (nul == NULL)
        return 0;
    size_t type_len = (size_t)(nul - (data + 1));
    char *type = malloc(type_len + 1);
    memcpy(type, data + 1, type_len);
    type[type_len] = '\0';
    const uint8_t *body = nul + 1;
    size_t body_len = size - 1 - type_len - 1;

    static gate_request_t gr;
    memset(&gr, 0, sizeof(gr));
    gr.multipart_upload = true;
    multipart_boundary(type, gr.boundary);
    size_t bl = strlen(gr.boundary);
    if (bl > MULTIPART_BOUNDARY_MAX || strchr(gr.boundary, '"'))
        abort();
    if (bl > 0 && strstr(type, gr.boundary) == NULL)
        abort(); /* the boundary is a piece of the header */

    for (size_t off = 0; off < body_len;) {
        seed = seed * 1103515245u + 12345u;
        size_t chunk = 1 + (seed >> 16) % 700;
        if (chunk > body_len - off)
            chunk = body_len - off;
        keep_tail(&gr, (const char *)body + off, chunk);
        if (gr.tail_len > MULTIPART_TAIL)
            abort();
        off += chunk;
    }
    current = &gr;
    bool closed = gate_multipart_closed();
    current = NULL;
    if (closed != closed_in(body, body_len, gr.boundary))
        abort();
    free(type);
    return 0;
}
