/* Rate limits by category at the router (rate_limit.c), private to src/http/. */
#ifndef PARLEY_HTTP_RATE_LIMIT_H
#define PARLEY_HTTP_RATE_LIMIT_H

#include <stdbool.h>

#include "parley/http.h"

/*
 * Takes a token for this request from the bucket of (`category`, caller):
 * the user `user_id` when non-NULL/non-empty, else the client address.
 * Sets the X-RateLimit-* headers while the category's limit is on. Returns
 * true to go on (also for category -1: not limited), or false after
 * answering 429 RATE_LIMIT_EXCEEDED with Retry-After and details
 * {retry_after, category}.
 */
bool rate_limit_admit(http_ctx_t *ctx, int category, const char *user_id);

#endif
