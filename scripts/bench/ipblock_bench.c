/*
 * The cost of the blocked-address check the connection gate makes on every
 * request (ipnet_set_match, include/parley/ipnet.h), in ns per lookup:
 * with no blocks (the common case: one atomic load), and with 10,000 blocks
 * of IPv4 and IPv6 networks of every prefix length (8-32 and 16-128: each
 * lookup then tries every length in use, the bound of the design), and
 * with 10,000 blocks of the lengths blocks usually have (IPv4 /32, /24,
 * /16; IPv6 /128, /64, /48, /32), looked up by addresses of both families,
 * a quarter of them inside a block. Prints one JSON object for
 * scripts/bench/suite.py.
 *
 *   build/release/bench_ipblock [blocks] [lookups]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parley/ipnet.h"
#include "xorshift.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
    return bench_xorshift(&rng);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static const int common_v4[] = {32, 32, 32, 32, 32, 32, 32, 32, 24, 24, 24, 16};
static const int common_v6[] = {128, 128, 128, 128, 128, 128, 64, 64, 64, 64, 48, 32};

static void random_addr(ipnet_t *a, bool v6)
{
    memset(a, 0, sizeof(*a));
    a->family = v6 ? IPNET_V6 : IPNET_V4;
    a->prefix = (uint8_t)ipnet_bits(a->family);
    uint64_t x = next(), y = next();
    memcpy(a->addr, &x, 8);
    if (v6)
        memcpy(a->addr + 8, &y, 8);
    else
        memset(a->addr + 4, 0, 12);
}

/* ns per lookup over probes[0..n), best of seven passes; *hits counted. */
static double measure(ipnet_set_t *set, const ipnet_t *probes, size_t n, size_t *hits)
{
    double best = 1e18;
    for (int pass = 0; pass < 7; pass++) {
        size_t h = 0;
        double t0 = now_ns();
        for (size_t i = 0; i < n; i++)
            h += ipnet_set_match(set, &probes[i], 1, NULL, NULL);
        double ns = (now_ns() - t0) / (double)n;
        if (ns < best)
            best = ns;
        *hits = h;
    }
    return best;
}

/* A set of `blocks` networks (every length, or the common ones) into
 * nets, and lookups probes of which a quarter fall inside one. */
static ipnet_set_t *build(size_t blocks, bool every_length, ipnet_t *nets, ipnet_t *probes,
                          size_t lookups)
{
    ipnet_set_t *set = ipnet_set_new();
    for (size_t i = 0; i < blocks; i++) {
        bool v6 = i % 2 == 1;
        ipnet_t a;
        random_addr(&a, v6);
        int lo = v6 ? 16 : 8, bits = ipnet_bits(a.family);
        int prefix = lo + (int)(next() % (uint64_t)(bits - lo + 1));
        if (!every_length)
            prefix = (v6 ? common_v6 : common_v4)[next() % 12];
        char text[IPNET_TEXT_MAX], cidr[IPNET_TEXT_MAX + 16];
        ipnet_format(&a, text);
        snprintf(cidr, sizeof(cidr), "%s/%d", text, prefix);
        if (ipnet_parse(cidr, false, &nets[i]) != 0)
            abort();
        ipnet_set_put(set, &nets[i], i % 4 == 0 ? 0 : 4102444800000); /* some expire in 2100 */
    }
    for (size_t i = 0; i < lookups; i++) {
        bool v6 = i % 2 == 1;
        random_addr(&probes[i], v6);
        if (blocks && i % 4 == 0) {
            /* inside a block of the same family */
            const ipnet_t *n = &nets[(next() % (blocks / 2)) * 2 + (v6 ? 1 : 0)];
            uint8_t keep[16];
            memcpy(keep, probes[i].addr, 16);
            memcpy(probes[i].addr, n->addr, 16);
            for (int b = n->prefix; b < ipnet_bits(n->family); b++)
                if (keep[b / 8] & (0x80 >> (b % 8)))
                    probes[i].addr[b / 8] |= (uint8_t)(0x80 >> (b % 8));
        }
    }
    return set;
}

int main(int argc, char **argv)
{
    size_t blocks = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
    size_t lookups = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000000;
    ipnet_t *nets = calloc(blocks, sizeof(*nets));
    ipnet_t *probes = calloc(lookups, sizeof(*probes));
    if ((blocks && !nets) || !probes)
        return 1;
    size_t hits_common;
    ipnet_set_t *common = build(blocks, false, nets, probes, lookups);
    double ns_common = measure(common, probes, lookups, &hits_common);
    ipnet_set_free(common);
    ipnet_set_t *set = build(blocks, true, nets, probes, lookups);
    ipnet_set_t *empty = ipnet_set_new();
    size_t hits_empty, hits_full;
    double ns_empty = measure(empty, probes, lookups, &hits_empty);
    double ns_full = measure(set, probes, lookups, &hits_full);
    /* IPv4 and IPv6 apart: the number of prefix lengths in use differs. */
    size_t half = lookups / 2, h4, h6;
    ipnet_t *v4 = calloc(half, sizeof(*v4)), *v6 = calloc(half, sizeof(*v6));
    for (size_t i = 0; i < half; i++) {
        v4[i] = probes[2 * i];
        v6[i] = probes[2 * i + 1];
    }
    double ns_v4 = measure(set, v4, half, &h4), ns_v6 = measure(set, v6, half, &h6);
    printf("{\"blocks\": %zu, \"lookups\": %zu, \"ns_empty\": %.2f, \"ns_blocks\": %.2f, "
           "\"ns_blocks_v4\": %.2f, \"ns_blocks_v6\": %.2f, \"ns_common\": %.2f, \"hits\": %zu, "
           "\"hits_common\": %zu, \"hits_empty\": %zu}\n",
           blocks, lookups, ns_empty, ns_full, ns_v4, ns_v6, ns_common, hits_full, hits_common,
           hits_empty);
    ipnet_set_free(set);
    ipnet_set_free(empty);
    free(nets);
    free(probes);
    free(v4);
    free(v6);
    return 0;
}
