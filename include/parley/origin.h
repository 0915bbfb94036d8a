/*
 * Web origins as browsers send them in `Origin` (RFC 6454): the allowed
 * origins of CORS (the cors_origins setting, --cors-origins) are checked and
 * split here, so the configuration, the settings and the HTTP layer agree.
 */
#ifndef PARLEY_ORIGIN_H
#define PARLEY_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

#define ORIGIN_LEN_MAX 255 /* bytes of one origin */
#define ORIGIN_LIST_MAX 32 /* origins in one list */

/*
 * Whether s is one serialized origin: "http" or "https", "://", a host
 * (letters, digits, '-', '.'; or an IPv6 literal in brackets), an optional
 * ":port" (1-65535, not the scheme's default: a browser leaves it out), and
 * nothing after it (no path, no '/', no query). "*" and "null" are refused.
 * At most ORIGIN_LEN_MAX bytes. Case does not matter (origin_equal).
 */
bool origin_valid(const char *s);

/* Whether two origins are the same (scheme and host compare without case). */
bool origin_equal(const char *a, const char *b);

/* Splits a comma-separated list (spaces around items skipped, empty items
 * dropped) into items; the count, or -1 when there are more than max or an
 * item is longer than ORIGIN_LEN_MAX. Items are not checked. */
int origin_split_list(const char *text, char items[][ORIGIN_LEN_MAX + 1], int max);

#endif
