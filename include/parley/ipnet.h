/*
 * IP addresses and networks (CIDR ranges), IPv4 and IPv6, and a set of
 * networks that tells in O(prefix lengths in use) whether an address lies in
 * one of them: the blocked addresses (include/parley/ip_blocks.h) and the
 * trusted proxies (http_trusted_proxies_set) are such sets.
 *
 * Normal form: an IPv4-mapped IPv6 address (::ffff:1.2.3.4) is the IPv4
 * address it maps, and a mapped network of prefix 96 or more is the IPv4
 * network (::ffff:10.0.0.0/104 is 10.0.0.0/8), so a dual-stack socket's
 * peer matches IPv4 entries. Bits past the prefix are zero; the parser
 * refuses a network written with host bits set (10.1.2.3/8) rather than
 * guess what was meant (ipnet_parse's `strict`).
 */
#ifndef PARLEY_IPNET_H
#define PARLEY_IPNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define IPNET_V4 4
#define IPNET_V6 6
#define IPNET_TEXT_MAX 64 /* the longest text ipnet_format writes, NUL included */

/* Why a text is not an address or a network. */
#define IPNET_E_SYNTAX (-1)    /* not an IPv4/IPv6 address (or a prefix that is no number) */
#define IPNET_E_PREFIX (-2)    /* a prefix length over 32 (IPv4) or 128 (IPv6) */
#define IPNET_E_HOST_BITS (-3) /* bits set past the prefix (strict parsing) */

typedef struct ipnet {
    uint8_t family;   /* IPNET_V4 or IPNET_V6 */
    uint8_t prefix;   /* 0-32 or 0-128; 32/128 for a single address */
    uint8_t addr[16]; /* network byte order; 4 bytes used for IPv4, the rest 0;
                       * bits past the prefix are 0 */
} ipnet_t;

/* The bits of an address of `family` (32 or 128). */
int ipnet_bits(uint8_t family);

/*
 * Parses "1.2.3.4", "2001:db8::1" (a single address) or "10.0.0.0/8",
 * "2001:db8::/32" (a network) into *out, in the normal form above. With
 * `strict`, host bits past the prefix are IPNET_E_HOST_BITS; without, they
 * are cleared. Returns 0 or IPNET_E_*; *out untouched on failure. No zone
 * ids ("fe80::1%eth0"), no brackets, no ports, no spaces.
 */
int ipnet_parse(const char *text, bool strict, ipnet_t *out);

/* The same for `len` bytes of text (not NUL-terminated), address only: a
 * prefix is IPNET_E_SYNTAX. */
int ipnet_parse_addr(const char *text, size_t len, ipnet_t *out);

/* The peer address of a socket (AF_INET / AF_INET6), normalised; false for
 * other families. */
bool ipnet_from_sockaddr(const struct sockaddr *sa, ipnet_t *out);

/* Canonical text: "1.2.3.4" / "2001:db8::1" for a single address,
 * "10.0.0.0/8" / "2001:db8::/32" for a wider network (inet_ntop's forms). */
void ipnet_format(const ipnet_t *net, char out[IPNET_TEXT_MAX]);

/* Whether every address of `inner` is in `net` (an address: inner->prefix
 * is full). Different families never contain each other. */
bool ipnet_contains(const ipnet_t *net, const ipnet_t *inner);

/*
 * Splits a comma-separated list ("10.0.0.0/8, ::1"; blanks around entries
 * ignored, "" is the empty list) into out[0..max) (copies, not parsed).
 * Returns the count, or -1 when an entry is empty or too long or there are
 * more than max.
 */
#define IPNET_LIST_MAX 64
int ipnet_split_list(const char *text, char (*out)[IPNET_TEXT_MAX], size_t max);

/* ---- sets of networks ------------------------------------------------------ */

/*
 * A set of networks, each with an expiry time, read on every request and
 * changed rarely. Lookup masks the address once per distinct prefix length
 * in use in its family (at most 33 or 129 hash probes, longest prefix first)
 * under a read lock; an empty set answers without taking it. Every function
 * is thread-safe; the lock is a leaf.
 */
typedef struct ipnet_set ipnet_set_t;

ipnet_set_t *ipnet_set_new(void);
void ipnet_set_free(ipnet_set_t *set); /* NULL: no-op */

/* Adds `net`, or replaces its expiry when it is there. expires_at: ms since
 * the epoch after which it stops matching; 0 = never. */
void ipnet_set_put(ipnet_set_t *set, const ipnet_t *net, int64_t expires_at);
/* Removes `net` (exactly that network); false when it was not there. */
bool ipnet_set_remove(ipnet_set_t *set, const ipnet_t *net);
/* Replaces the whole content by nets[0..n) (no expiry), at once for readers. */
void ipnet_set_replace(ipnet_set_t *set, const ipnet_t *nets, size_t n);
void ipnet_set_clear(ipnet_set_t *set);
/* Networks in the set, expired ones included; a lock-free read. */
size_t ipnet_set_count(const ipnet_set_t *set);

/*
 * Whether address `addr` lies in a network of the set that has not expired
 * at now_ms (expires_at > now_ms). On a match, *hit (may be NULL) gets the
 * most specific such network and *expires_at (may be NULL) its expiry.
 */
bool ipnet_set_match(ipnet_set_t *set, const ipnet_t *addr, int64_t now_ms, ipnet_t *hit,
                     int64_t *expires_at);

#endif
