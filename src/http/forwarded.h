/*
 * Who the client is behind trusted proxies (forwarded.c): the trusted
 * proxies' set and the walk of X-Forwarded-For / Forwarded. The public half
 * (http_trusted_proxies_set, http_trusted_proxies_check) is in
 * include/parley/http.h.
 */
#ifndef PARLEY_HTTP_FORWARDED_H
#define PARLEY_HTTP_FORWARDED_H

#include <stdbool.h>
#include <stddef.h>

#include "parley/ipnet.h"

/* Hops walked from the right at most; a longer chain of trusted hops falls
 * back to the peer. */
#define FORWARDED_HOPS_MAX 32

/* The trusted proxies (empty until http_trusted_proxies_set). */
ipnet_set_t *forwarded_trusted(void);

/*
 * The client address of a request whose connecting peer is `peer`, given
 * its Forwarded header values (fwd[0..n_fwd), in the order received) and its
 * X-Forwarded-For values (xff[0..n_xff)). When the peer is not in `trusted`
 * (or trusted is empty), the peer. Otherwise the addresses the headers list
 * (Forwarded's for= when that header is present, else X-Forwarded-For) are
 * walked from the right: the first one not in `trusted` is the client; when
 * all are trusted, the left-most. Any hop that is not an address (garbage,
 * "unknown", an obfuscated "_name", a malformed header, more than
 * FORWARDED_HOPS_MAX hops) before an untrusted one is found makes the
 * answer the peer: nothing a client wrote is believed unless every hop after
 * it is a trusted proxy. Addresses may carry a port and IPv6 brackets
 * ("[2001:db8::1]:443", "1.2.3.4:80"). Returns true when *out comes from
 * the headers, false when it is the peer. Allocates nothing.
 */
bool forwarded_client(const ipnet_t *peer, const char *const *fwd, size_t n_fwd,
                      const char *const *xff, size_t n_xff, ipnet_set_t *trusted, ipnet_t *out);

#endif
