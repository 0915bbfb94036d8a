/*
 * libFuzzer harness: the client address behind trusted proxies
 * (src/http/forwarded.c) and the address parser under it (ipnet_parse).
 * The input is split at NUL bytes into header values; the first byte says
 * which are Forwarded and which X-Forwarded-For. Any crash, leak or
 * undefined behaviour is a finding, and so is a client that is a network
 * rather than an address, a fallback that is not the peer, or a parsed
 * address whose canonical text does not read back as itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/forwarded.h"
#include "parley/ipnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ipnet_set_t *trusted;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (trusted == NULL) {
        trusted = ipnet_set_new();
        ipnet_t nets[2];
        if (ipnet_parse("127.0.0.0/8", true, &nets[0]) != 0 ||
            ipnet_parse("2001:db8::/32", true, &nets[1]) != 0)
            abort();
        ipnet_set_replace(trusted, nets, 2);
    }
    if (size < 1 || size > 65536)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    const char *fwd[8], *xff[8];
    size_t n_fwd = 0, n_xff = 0, k = 0;
    for (char *p = text; p < text + size; p += strlen(p) + 1, k++) {
        bool is_fwd = (data[0] >> (k % 8)) & 1;
        if (is_fwd && n_fwd < 8)
            fwd[n_fwd++] = p;
        else if (!is_fwd && n_xff < 8)
            xff[n_xff++] = p;
        ipnet_t n; /* every value is also a candidate address or network */
        if (ipnet_parse(p, false, &n) == 0) {
            char again[IPNET_TEXT_MAX];
            ipnet_format(&n, again);
            ipnet_t m;
            if (ipnet_parse(again, true, &m) != 0 || memcmp(&m, &n, sizeof(m)) != 0)
                abort(); /* the canonical text reads back as itself */
        }
    }
    ipnet_t peer, out;
    if (ipnet_parse("127.0.0.1", true, &peer) != 0)
        abort();
    bool from_headers = forwarded_client(&peer, fwd, n_fwd, xff, n_xff, trusted, &out);
    if (!from_headers && memcmp(&out, &peer, sizeof(out)) != 0)
        abort();
    if (out.prefix != ipnet_bits(out.family))
        abort(); /* a client is an address, never a network */
    free(text);
    return 0;
}
