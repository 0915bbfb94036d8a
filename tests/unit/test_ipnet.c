/* IP addresses, networks and sets (src/util/ipnet.c); the walk of
 * X-Forwarded-For / Forwarded behind trusted proxies (src/http/forwarded.c);
 * the blocked addresses in the store (src/store/ip_blocks.c): parsing,
 * normalisation, matching at the edges (/0, /32, /128, v4-mapped), expiry,
 * and the records through a reopen with and without a snapshot. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../test.h"
#include "http/forwarded.h"
#include "parley/http.h"
#include "parley/ip_blocks.h"
#include "parley/ipnet.h"
#include "testutil.h"

static ipnet_t net_of(const char *text)
{
    ipnet_t n;
    int rc = ipnet_parse(text, true, &n);
    if (rc != 0)
        TEST_FAIL_("'%s' does not parse: %d", text, rc);
    return n;
}

static const char *canon(const char *text)
{
    static char out[IPNET_TEXT_MAX];
    ipnet_t n = net_of(text);
    ipnet_format(&n, out);
    return out;
}

TEST(ipnet_parses_and_normalises)
{
    ASSERT_STREQ(canon("1.2.3.4"), "1.2.3.4");
    ASSERT_STREQ(canon("1.2.3.4/32"), "1.2.3.4");
    ASSERT_STREQ(canon("10.0.0.0/8"), "10.0.0.0/8");
    ASSERT_STREQ(canon("0.0.0.0/0"), "0.0.0.0/0");
    ASSERT_STREQ(canon("2001:DB8:0:0::1"), "2001:db8::1");
    ASSERT_STREQ(canon("2001:db8::/32"), "2001:db8::/32");
    ASSERT_STREQ(canon("::/0"), "::/0");
    ASSERT_STREQ(canon("::1/128"), "::1");
    /* IPv4-mapped IPv6 is IPv4; a mapped network of /96 or more too. */
    ASSERT_STREQ(canon("::ffff:1.2.3.4"), "1.2.3.4");
    ASSERT_STREQ(canon("::ffff:10.0.0.0/104"), "10.0.0.0/8");
    ASSERT_STREQ(canon("::ffff:0:0/96"), "0.0.0.0/0");
    ASSERT_STREQ(canon("::fffe:0:0/95"), "::fffe:0:0/95");
    ipnet_t wide;
    ASSERT_EQ(ipnet_parse("::ffff:0:0/95", true, &wide), IPNET_E_HOST_BITS);
    ipnet_t n = net_of("::ffff:1.2.3.4");
    ASSERT_EQ(n.family, IPNET_V4);
    ASSERT_EQ(n.prefix, 32);
    ASSERT_EQ(ipnet_parse_addr("10.0.0.1", 8, &n), 0);
    ASSERT_STREQ(canon("10.0.0.1"), "10.0.0.1");
}

TEST(ipnet_refuses_what_is_not_a_network)
{
    ipnet_t n;
    memset(&n, 0x55, sizeof(n));
    ipnet_t before = n;
    static const char *const syntax[] = {
        "", "garbage", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4/", "1.2.3.4/x",
        "1.2.3.4/-1", "1.2.3.4/+8", "1.2.3.4/08", "1.2.3.4/1000", " 1.2.3.4", "1.2.3.4 ",
        "[::1]", "::1%eth0", "fe80::1%1", "1.2.3.4:80", "2001:db8:::1", "1.2.3.4/8/8",
        "localhost", "0x7f.0.0.1", "1.2.3.4\n",
    };
    for (size_t i = 0; i < sizeof(syntax) / sizeof(syntax[0]); i++) {
        int rc = ipnet_parse(syntax[i], true, &n);
        if (rc != IPNET_E_SYNTAX)
            TEST_FAIL_("'%s': %d, expected IPNET_E_SYNTAX", syntax[i], rc);
    }
    ASSERT_EQ(ipnet_parse("1.2.3.4/33", true, &n), IPNET_E_PREFIX);
    ASSERT_EQ(ipnet_parse("::/129", true, &n), IPNET_E_PREFIX);
    ASSERT_EQ(ipnet_parse("10.1.2.3/8", true, &n), IPNET_E_HOST_BITS);
    ASSERT_EQ(ipnet_parse("2001:db8::1/32", true, &n), IPNET_E_HOST_BITS);
    ASSERT_EQ(memcmp(&n, &before, sizeof(n)), 0); /* untouched on failure */
    ASSERT_EQ(ipnet_parse("10.1.2.3/8", false, &n), 0);
    char out[IPNET_TEXT_MAX];
    ipnet_format(&n, out);
    ASSERT_STREQ(out, "10.0.0.0/8");
    ASSERT_EQ(ipnet_parse_addr("10.0.0.0/8", 10, &n), IPNET_E_SYNTAX);
}

TEST(ipnet_contains_at_the_edges)
{
    ipnet_t all4 = net_of("0.0.0.0/0"), all6 = net_of("::/0");
    ASSERT_TRUE(ipnet_contains(&all4, &(ipnet_t){0}) == false); /* family 0 */
    ipnet_t a = net_of("203.0.113.9"), b = net_of("2001:db8::9");
    ASSERT_TRUE(ipnet_contains(&all4, &a));
    ASSERT_TRUE(!ipnet_contains(&all4, &b));
    ASSERT_TRUE(ipnet_contains(&all6, &b));
    ASSERT_TRUE(!ipnet_contains(&all6, &a)); /* mapped v4 is v4: not in ::/0 */
    ipnet_t n31 = net_of("203.0.113.8/31");
    ASSERT_TRUE(ipnet_contains(&n31, &a));
    ipnet_t a10 = net_of("203.0.113.10");
    ASSERT_TRUE(!ipnet_contains(&n31, &a10));
    ipnet_t n24 = net_of("203.0.113.0/24");
    ASSERT_TRUE(ipnet_contains(&n24, &n31));
    ASSERT_TRUE(!ipnet_contains(&n31, &n24));
    ASSERT_TRUE(ipnet_contains(&a, &a));
}

TEST(ipnet_split_list_trims_and_refuses)
{
    char items[IPNET_LIST_MAX][IPNET_TEXT_MAX];
    ASSERT_EQ(ipnet_split_list("", items, IPNET_LIST_MAX), 0);
    ASSERT_EQ(ipnet_split_list("  ", items, IPNET_LIST_MAX), 0);
    ASSERT_EQ(ipnet_split_list("10.0.0.0/8, ::1 ,127.0.0.1", items, IPNET_LIST_MAX), 3);
    ASSERT_STREQ(items[1], "::1");
    ASSERT_STREQ(items[2], "127.0.0.1");
    ASSERT_EQ(ipnet_split_list("10.0.0.0/8,,::1", items, IPNET_LIST_MAX), -1);
    ASSERT_EQ(ipnet_split_list("10.0.0.0/8,", items, IPNET_LIST_MAX), -1);
    ASSERT_EQ(ipnet_split_list("1.1.1.1,2.2.2.2,3.3.3.3", items, 2), -1);
}

static bool matches(ipnet_set_t *set, const char *addr, int64_t now, char *hit_text)
{
    ipnet_t a = net_of(addr), hit;
    bool m = ipnet_set_match(set, &a, now, &hit, NULL);
    if (m && hit_text)
        ipnet_format(&hit, hit_text);
    return m;
}

TEST(ipnet_set_matches_longest_prefix_first_and_expires)
{
    ipnet_set_t *set = ipnet_set_new();
    ASSERT_TRUE(!matches(set, "1.2.3.4", 0, NULL));
    ipnet_t n8 = net_of("10.0.0.0/8"), h = net_of("10.1.2.3"), v6 = net_of("2001:db8::/32");
    ipnet_set_put(set, &n8, 0);
    ipnet_set_put(set, &h, 1000); /* until t=1000 */
    ipnet_set_put(set, &v6, 0);
    ASSERT_EQ(ipnet_set_count(set), 3);
    char hit[IPNET_TEXT_MAX];
    ASSERT_TRUE(matches(set, "10.1.2.3", 999, hit));
    ASSERT_STREQ(hit, "10.1.2.3");
    /* The host block expired: the /8 still holds. */
    ASSERT_TRUE(matches(set, "10.1.2.3", 1000, hit));
    ASSERT_STREQ(hit, "10.0.0.0/8");
    ASSERT_TRUE(matches(set, "::ffff:10.9.9.9", 0, hit));
    ASSERT_TRUE(!matches(set, "11.0.0.1", 0, NULL));
    ASSERT_TRUE(matches(set, "2001:db8:ffff::1", 0, hit));
    ASSERT_STREQ(hit, "2001:db8::/32");
    ASSERT_TRUE(!matches(set, "2001:db9::1", 0, NULL));
    /* A put of a present network replaces its expiry. */
    ipnet_set_put(set, &n8, 500);
    ASSERT_EQ(ipnet_set_count(set), 3);
    ASSERT_TRUE(!matches(set, "10.200.0.1", 500, NULL));
    ASSERT_TRUE(matches(set, "10.200.0.1", 499, NULL));
    ASSERT_TRUE(ipnet_set_remove(set, &n8));
    ASSERT_TRUE(!ipnet_set_remove(set, &n8));
    ASSERT_TRUE(!matches(set, "10.200.0.1", 0, NULL));
    /* /0 and full-length blocks. */
    ipnet_t all4 = net_of("0.0.0.0/0"), one6 = net_of("::1");
    ipnet_set_put(set, &all4, 0);
    ipnet_set_put(set, &one6, 0);
    ASSERT_TRUE(matches(set, "192.0.2.1", 0, hit));
    ASSERT_STREQ(hit, "0.0.0.0/0");
    ASSERT_TRUE(matches(set, "::1", 0, NULL));
    ASSERT_TRUE(!matches(set, "::2", 0, NULL));
    ipnet_set_clear(set);
    ASSERT_EQ(ipnet_set_count(set), 0);
    ASSERT_TRUE(!matches(set, "192.0.2.1", 0, NULL));
    ipnet_t two[2] = {net_of("127.0.0.1"), net_of("::1")};
    ipnet_set_replace(set, two, 2);
    ASSERT_EQ(ipnet_set_count(set), 2);
    ASSERT_TRUE(matches(set, "127.0.0.1", 0, NULL) && !matches(set, "127.0.0.2", 0, NULL));
    ipnet_set_free(set);
    ipnet_set_free(NULL);
}

/* Many distinct networks of many lengths, half removed in another order:
 * every lookup agrees with a scan of what is left (growth, backward-shift
 * deletion). */
TEST(ipnet_set_agrees_with_a_scan_through_growth_and_removal)
{
    enum { N = 3000 };
    ipnet_set_t *set = ipnet_set_new();
    static ipnet_t nets[N];
    static bool live[N];
    uint64_t x = 88172645463325252ull;
    int n = 0;
    while (n < N) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ipnet_t a;
        memset(&a, 0, sizeof(a));
        bool v6 = n % 3 == 0;
        a.family = v6 ? IPNET_V6 : IPNET_V4;
        memcpy(a.addr, &x, v6 ? 16 - 8 : 4);
        int bits = ipnet_bits(a.family);
        int prefix = bits / 4 + (int)((x >> 40) % (uint64_t)(bits - bits / 4 + 1));
        a.prefix = (uint8_t)bits;
        char text[IPNET_TEXT_MAX], with[IPNET_TEXT_MAX + 16];
        ipnet_format(&a, text);
        snprintf(with, sizeof(with), "%s/%d", text, prefix);
        ASSERT_EQ(ipnet_parse(with, false, &nets[n]), 0);
        bool seen = false;
        for (int i = 0; i < n && !seen; i++)
            seen = memcmp(&nets[i], &nets[n], sizeof(ipnet_t)) == 0;
        if (seen)
            continue;
        ipnet_set_put(set, &nets[n], 0);
        live[n++] = true;
    }
    for (int i = 0; i < N; i += 2) {
        ASSERT_TRUE(ipnet_set_remove(set, &nets[(i * 7) % N]));
        live[(i * 7) % N] = false;
    }
    ASSERT_EQ(ipnet_set_count(set), N / 2);
    int hits = 0;
    for (int probe = 0; probe < 6000; probe++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ipnet_t a = nets[probe % N];
        int bits = ipnet_bits(a.family);
        a.prefix = (uint8_t)bits;
        a.addr[bits / 8 - 1] ^= (uint8_t)(x & 0xff); /* near a network, or in it */
        bool scan = false;
        for (int i = 0; i < N && !scan; i++)
            scan = live[i] && ipnet_contains(&nets[i], &a);
        bool set_says = ipnet_set_match(set, &a, 0, NULL, NULL);
        if (scan != set_says)
            TEST_FAIL_("probe %d: scan %d, set %d", probe, scan, set_says);
        hits += scan;
    }
    ASSERT_GT(hits, 100);
    ASSERT_LT(hits, 5900);
    ipnet_set_free(set);
}

/* ---- X-Forwarded-For / Forwarded --------------------------------------------- */

static const char *client_of(ipnet_set_t *trusted, const char *peer, const char *fwd,
                             const char *xff)
{
    static char out[IPNET_TEXT_MAX];
    ipnet_t p = net_of(peer), c;
    const char *f[1] = {fwd}, *x[1] = {xff};
    forwarded_client(&p, f, fwd ? 1 : 0, x, xff ? 1 : 0, trusted, &c);
    ipnet_format(&c, out);
    return out;
}

TEST(forwarded_believed_only_from_trusted_proxies)
{
    ipnet_set_t *t = ipnet_set_new();
    /* No trusted proxies: the headers are ignored. */
    ASSERT_STREQ(client_of(t, "127.0.0.1", NULL, "203.0.113.5"), "127.0.0.1");
    ipnet_t proxies[2] = {net_of("127.0.0.1"), net_of("10.0.0.0/8")};
    ipnet_set_replace(t, proxies, 2);
    /* From a peer that is no proxy: ignored. */
    ASSERT_STREQ(client_of(t, "192.0.2.1", NULL, "203.0.113.5"), "192.0.2.1");
    ASSERT_STREQ(client_of(t, "127.0.0.1", NULL, "203.0.113.5"), "203.0.113.5");
    /* The first untrusted from the right; what the client wrote further
     * left is not believed. */
    ASSERT_STREQ(client_of(t, "127.0.0.1", NULL, "6.6.6.6, 203.0.113.5, 10.1.1.1"),
                 "203.0.113.5");
    /* All trusted: the left-most. */
    ASSERT_STREQ(client_of(t, "127.0.0.1", NULL, "10.2.2.2, 10.1.1.1"), "10.2.2.2");
    /* Ports, brackets, quotes, blanks, empty elements, v4-mapped. */
    ASSERT_STREQ(client_of(t, "127.0.0.1", NULL, "203.0.113.5:4711"), "203.0.113.5");
    ASSERT_STREQ(client_of(t, "127.0.0.1", NULL, " [2001:db8::7]:443 ,, "), "2001:db8::7");
    ASSERT_STREQ(client_of(t, "127.0.0.1", NULL, "\"2001:db8::8\""), "2001:db8::8");
    ASSERT_STREQ(client_of(t, "127.0.0.1", NULL, "::ffff:203.0.113.9"), "203.0.113.9");
    /* Garbage before an untrusted hop does not matter; right after the
     * proxies it makes the answer the peer. */
    ASSERT_STREQ(client_of(t, "127.0.0.1", NULL, "garbage, 203.0.113.5"), "203.0.113.5");
    static const char *const bad[] = {
        "garbage", "unknown", "203.0.113.5, _hidden", "[2001:db8::1", "[::1]x", "1.2.3.4:port",
        "1.2.3.4:123456", "", ",,,", "1.2.3.4/8",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (strcmp(client_of(t, "127.0.0.1", NULL, bad[i]), "127.0.0.1") != 0)
            TEST_FAIL_("XFF '%s' gave %s", bad[i], client_of(t, "127.0.0.1", NULL, bad[i]));
    ipnet_set_free(t);
}

TEST(forwarded_rfc7239_and_hostile_headers)
{
    ipnet_set_t *t = ipnet_set_new();
    ipnet_t proxy = net_of("127.0.0.0/8");
    ipnet_set_replace(t, &proxy, 1);
    ASSERT_STREQ(client_of(t, "127.0.0.1", "for=192.0.2.60;proto=http;by=203.0.113.43", NULL),
                 "192.0.2.60");
    ASSERT_STREQ(client_of(t, "127.0.0.1", "For=\"[2001:db8:cafe::17]:4711\"", NULL),
                 "2001:db8:cafe::17");
    ASSERT_STREQ(client_of(t, "127.0.0.1", "for=192.0.2.43, for=198.51.100.17;by=x", NULL),
                 "198.51.100.17");
    ASSERT_STREQ(client_of(t, "127.0.0.1", "for=192.0.2.43, for=127.0.0.5", NULL), "192.0.2.43");
    /* Forwarded wins over X-Forwarded-For when both come. */
    ASSERT_STREQ(client_of(t, "127.0.0.1", "for=192.0.2.1", "198.51.100.1"), "192.0.2.1");
    ASSERT_STREQ(client_of(t, "127.0.0.1", "for=\"a\\\"b\", for=192.0.2.2", NULL), "192.0.2.2");
    static const char *const bad[] = {
        "for=unknown", "for=_hidden", "for=\"_SEVKISEK\"", "proto=https", "for", "for=",
        "=1.2.3.4", "for=\"192.0.2.1", "for=1.2.3.4;for=5.6.7.8", "for=1.2.3.4 junk",
        "for=192.0.2.1,by=x", "for=\"[2001:db8::1]:99999\"", ";;;", "for=1.2.3.4\\",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (strcmp(client_of(t, "127.0.0.1", bad[i], NULL), "127.0.0.1") != 0)
            TEST_FAIL_("Forwarded '%s' gave %s", bad[i], client_of(t, "127.0.0.1", bad[i], NULL));
    /* A huge header: thousands of hops, all proxies: more than
     * FORWARDED_HOPS_MAX trusted hops fall back to the peer; a client among
     * the last hops is found; one huge hop is no address. */
    size_t cap = 200000;
    char *huge = malloc(cap);
    size_t len = (size_t)snprintf(huge, cap, "203.0.113.1");
    while (len + 64 < cap)
        len += (size_t)snprintf(huge + len, cap - len, ", 127.0.0.%d", (int)(len % 200) + 1);
    ASSERT_STREQ(client_of(t, "127.0.0.1", NULL, huge), "127.0.0.1");
    snprintf(huge + len, cap - len, ", 198.51.100.9, 127.0.0.9");
    ASSERT_STREQ(client_of(t, "127.0.0.1", NULL, huge), "198.51.100.9");
    memset(huge, 'x', cap - 1);
    huge[cap - 1] = '\0';
    ASSERT_STREQ(client_of(t, "127.0.0.1", NULL, huge), "127.0.0.1");
    ASSERT_STREQ(client_of(t, "127.0.0.1", huge, NULL), "127.0.0.1");
    free(huge);
    ipnet_set_free(t);
}

TEST(trusted_proxies_check_and_set)
{
    const char *good[] = {"127.0.0.1", "10.0.0.0/8", "::1"};
    const char *bad[] = {"10.0.0.0/8", "10.1.0.0/8"};
    size_t at = 99;
    ASSERT_EQ(http_trusted_proxies_check(good, 3, &at), 0);
    ASSERT_EQ(http_trusted_proxies_check(bad, 2, &at), IPNET_E_HOST_BITS);
    ASSERT_EQ(at, 1);
    ASSERT_EQ(http_trusted_proxies_set(bad, 2), IPNET_E_HOST_BITS);
    ASSERT_EQ(ipnet_set_count(forwarded_trusted()), 0); /* nothing changed */
    ASSERT_EQ(http_trusted_proxies_set(good, 3), 0);
    ASSERT_EQ(ipnet_set_count(forwarded_trusted()), 3);
    ASSERT_EQ(http_trusted_proxies_set(NULL, 0), 0);
    ASSERT_EQ(ipnet_set_count(forwarded_trusted()), 0);
}

/* ---- the store's blocks -------------------------------------------------------- */

static bool blocked(store_t *s, const char *addr, int64_t now)
{
    ipnet_t a = net_of(addr);
    return ipnet_set_match(store_ip_block_set(s), &a, now, NULL, NULL);
}

static void new_block(store_ip_block_t *b, const char *ip, int64_t expires_at)
{
    memset(b, 0, sizeof(*b));
    store_new_id("ipb", b->id);
    snprintf(b->ip, sizeof(b->ip), "%s", ip);
    snprintf(b->created_by, sizeof(b->created_by), "usr_1");
    b->created_at = 1000;
    b->expires_at = expires_at;
}

TEST(ip_blocks_apply_replay_and_snapshot)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "ip-blocks");
    store_t *s = ut_store_open(dir);
    store_ip_block_t a, b, c, dup;
    new_block(&a, "10.0.0.0/8", 0);
    new_block(&b, "2001:db8::/32", 5000);
    new_block(&c, "192.0.2.7", 0);
    a.reason = "spam";
    uint64_t lsn;
    ASSERT_EQ(store_ip_block_create(s, &a, 2000, &lsn), 0);
    ASSERT_EQ(store_ip_block_create(s, &b, 2000, &lsn), 0);
    ASSERT_EQ(store_ip_block_create(s, &c, 2000, &lsn), 0);
    new_block(&dup, "10.0.0.0/8", 0);
    ASSERT_EQ(store_ip_block_create(s, &dup, 2000, &lsn), STORE_E_CONFLICT_IP_BLOCK);
    new_block(&dup, "10.1.0.0/8", 0); /* not canonical */
    ASSERT_EQ(store_ip_block_create(s, &dup, 2000, &lsn), STORE_E_INVALID);
    new_block(&dup, "1.2.3.4/32", 0); /* not canonical either */
    ASSERT_EQ(store_ip_block_create(s, &dup, 2000, &lsn), STORE_E_INVALID);
    ASSERT_EQ(store_wait(s, lsn), 0);
    ASSERT_TRUE(blocked(s, "10.9.8.7", 2000) && blocked(s, "2001:db8::1", 4999));
    ASSERT_TRUE(!blocked(s, "2001:db8::1", 5000)); /* expired by the clock */
    ASSERT_TRUE(blocked(s, "192.0.2.7", 0) && !blocked(s, "192.0.2.8", 0));

    /* An expired block of a network is replaced by a new one, same id. */
    new_block(&dup, "2001:db8::/32", 0);
    ASSERT_EQ(store_ip_block_create(s, &dup, 6000, &lsn), 0);
    ASSERT_STREQ(dup.id, b.id);
    ASSERT_TRUE(blocked(s, "2001:db8::1", 7000));

    store_ip_block_t got;
    ASSERT_EQ(store_ip_block_delete(s, NULL, "192.0.2.7", &got, &lsn), 0);
    ASSERT_STREQ(got.id, c.id);
    store_ip_block_clear(&got);
    ASSERT_EQ(store_ip_block_delete(s, c.id, NULL, NULL, &lsn), STORE_E_NOT_FOUND);
    ASSERT_EQ(store_ip_block_delete(s, NULL, "192.0.2.7", NULL, &lsn), STORE_E_NOT_FOUND);
    ASSERT_TRUE(!blocked(s, "192.0.2.7", 0));
    ASSERT_EQ(store_wait(s, lsn), 0);

    for (int round = 0; round < 2; round++) {
        /* round 0: snapshot + log; round 1: the log alone. */
        if (round == 1) {
            store_close(s);
            ut_rm_snapshots(dir);
            s = ut_store_open(dir);
        } else {
            s = ut_store_reopen(s, dir);
        }
        ASSERT_TRUE(blocked(s, "10.9.8.7", 0) && blocked(s, "2001:db8::1", 7000));
        ASSERT_TRUE(!blocked(s, "192.0.2.7", 0));
        ASSERT_EQ(ipnet_set_count(store_ip_block_set(s)), 2);
        ASSERT_TRUE(store_ip_block_get(s, a.id, &got));
        ASSERT_STREQ(got.reason, "spam");
        ASSERT_STREQ(got.ip, "10.0.0.0/8");
        store_ip_block_clear(&got);
        store_ip_block_t page[4];
        size_t n;
        ASSERT_EQ(store_ip_block_list(s, false, 0, 0, 4, page, &n), 2);
        ASSERT_EQ(n, 2);
        for (size_t i = 0; i < n; i++)
            store_ip_block_clear(&page[i]);
        ASSERT_EQ(store_ip_block_list(s, false, 0, 1, 4, page, &n), 2);
        ASSERT_EQ(n, 1);
        store_ip_block_clear(&page[0]);
    }
    store_close(s);
    ut_rmrf(dir);
    ut_leak_check();
}

TEST(ip_blocks_decoder_refuses_bad_records)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "ip-blocks-bad");
    store_t *s = ut_store_open(dir);
    static const char *const bad[] = {
        "{\"v\":1}",
        "not json",
        "{\"v\":2,\"id\":\"ipb_1\",\"ip\":\"10.0.0.0/8\",\"reason\":null,\"created_by\":\"\","
        "\"created_at\":1,\"expires_at\":0,\"deleted\":false}",
        "{\"v\":1,\"id\":\"\",\"ip\":\"10.0.0.0/8\",\"reason\":null,\"created_by\":\"\","
        "\"created_at\":1,\"expires_at\":0,\"deleted\":false}",
        "{\"v\":1,\"id\":\"ipb_1\",\"ip\":\"10.1.0.0/8\",\"reason\":null,\"created_by\":\"\","
        "\"created_at\":1,\"expires_at\":0,\"deleted\":false}",
        "{\"v\":1,\"id\":\"ipb_1\",\"ip\":\"::FFFF:1.2.3.4\",\"reason\":null,\"created_by\":\"\","
        "\"created_at\":1,\"expires_at\":0,\"deleted\":false}",
        "{\"v\":1,\"id\":\"ipb_1\",\"ip\":\"10.0.0.0/8\",\"reason\":7,\"created_by\":\"\","
        "\"created_at\":1,\"expires_at\":0,\"deleted\":false}",
        "{\"v\":1,\"id\":\"ipb_1\",\"ip\":\"10.0.0.0/8\",\"reason\":null,\"created_by\":\"\","
        "\"created_at\":1,\"expires_at\":-5,\"deleted\":false}",
        "{\"v\":1,\"id\":\"ipb_1\",\"ip\":\"10.0.0.0/8\",\"reason\":null,\"created_by\":\"\","
        "\"created_at\":1,\"expires_at\":0,\"deleted\":\"no\"}",
        "{\"v\":1,\"id\":\"ipb_1\",\"ip\":\"10.0.0.0/8\",\"reason\":\"a\\u0000b\","
        "\"created_by\":\"\",\"created_at\":1,\"expires_at\":0,\"deleted\":false}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = store_apply(s, STORE_REC_IP_BLOCK, bad[i], strlen(bad[i]));
        if (rc != STORE_E_CORRUPT)
            TEST_FAIL_("record %zu applied (%d)", i, rc);
    }
    ASSERT_EQ(ipnet_set_count(store_ip_block_set(s)), 0);
    const char *good = "{\"v\":1,\"id\":\"ipb_1\",\"ip\":\"10.0.0.0/8\",\"reason\":null,"
                       "\"created_by\":\"\",\"created_at\":1,\"expires_at\":0,\"deleted\":false}";
    ASSERT_EQ(store_apply(s, STORE_REC_IP_BLOCK, good, strlen(good)), 0);
    ASSERT_EQ(store_apply(s, STORE_REC_IP_BLOCK, good, strlen(good)), 0); /* twice: harmless */
    ASSERT_EQ(ipnet_set_count(store_ip_block_set(s)), 1);
    store_close(s);
    ut_rmrf(dir);
    ut_leak_check();
}

/* Readers match while a writer adds and removes networks (TSan's test of
 * the set's lock; the release build checks that nothing is lost). */
typedef struct race {
    ipnet_set_t *set;
    atomic_bool stop;
    atomic_long misses;
} race_t;

static void *race_reader(void *arg)
{
    race_t *r = arg;
    ipnet_t kept = net_of("192.0.2.1"), other = net_of("2001:db8::77");
    while (!atomic_load(&r->stop)) {
        if (!ipnet_set_match(r->set, &kept, 0, NULL, NULL))
            atomic_fetch_add(&r->misses, 1);
        ipnet_set_match(r->set, &other, 0, NULL, NULL);
    }
    return NULL;
}

TEST(ipnet_set_is_read_while_written)
{
    race_t r = {.set = ipnet_set_new()};
    ipnet_t kept = net_of("192.0.2.0/24");
    ipnet_set_put(r.set, &kept, 0);
    pthread_t readers[3];
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(pthread_create(&readers[i], NULL, race_reader, &r), 0);
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 50; i++) {
            char text[64];
            snprintf(text, sizeof(text), "2001:db8:%x::/%d", round * 50 + i, 48 + i % 60);
            ipnet_t n;
            ASSERT_EQ(ipnet_parse(text, false, &n), 0);
            ipnet_set_put(r.set, &n, 0);
            if (i % 2)
                ipnet_set_remove(r.set, &n);
        }
    }
    atomic_store(&r.stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(readers[i], NULL);
    ASSERT_EQ(atomic_load(&r.misses), 0);
    ipnet_set_free(r.set);
}
