/* Who is calling: authentication of a request, shared by every handler
 * that needs a user (principal.c). */
#ifndef PARLEY_HTTP_PRINCIPAL_H
#define PARLEY_HTTP_PRINCIPAL_H

#include <jansson.h>

#include "parley/auth.h"
#include "parley/http.h"
#include "parley/store.h"

typedef struct principal {
    store_user_t user;                  /* a copy; principal_clear frees it */
    char session_id[STORE_ID_MAX];      /* "" when called with an API key */
    char api_key_hash[AUTH_SHA256_HEX]; /* the key's SHA-256 (hex) with an API key */
    bool via_api_key;
    bool can_read;
    bool can_write;
} principal_t;

/*
 * Authenticates the request by `Authorization: Bearer <access token>` or
 * `X-API-Key: plx_...`, then counts it against the user's rate limit and sets
 * the X-RateLimit-* headers. Returns true with *p filled, or false after
 * answering: 401 AUTHENTICATION_REQUIRED (no credentials), TOKEN_EXPIRED,
 * TOKEN_INVALID (bad, revoked or for a deactivated user; also a bad API key),
 * 403 INSUFFICIENT_PERMISSIONS (a read-only API key on a write), 429
 * RATE_LIMIT_EXCEEDED.
 */
bool http_authenticate(http_ctx_t *ctx, principal_t *p);

/*
 * Checks an access token or an API key without answering or counting
 * anything (for the real-time endpoints, which answer in their own way).
 * Returns -1 with *p filled (principal_clear it), or the error:
 * HTTP_ERR_TOKEN_EXPIRED, HTTP_ERR_TOKEN_INVALID (bad or revoked token, ended
 * session, deactivated user; any bad API key).
 */
struct parley_app;
int principal_from_token(struct parley_app *app, const char *token, principal_t *p);
int principal_from_api_key(struct parley_app *app, const char *key, principal_t *p);

/* Whether the login (session) or API key behind a principal still holds and
 * its user is still active; refreshes p->user. For connections that outlive
 * their token's checks. */
bool principal_still_valid(struct parley_app *app, principal_t *p);

/* Like http_authenticate and the caller must be an admin (else 403). */
bool http_authenticate_admin(http_ctx_t *ctx, principal_t *p);

void principal_clear(principal_t *p);

/*
 * Whether a request carries valid credentials (for `write`: allowing
 * writes), decided without answering or counting anything. For code that
 * runs before the handler, such as the upload callback, which must not write
 * a stranger's bytes to disk; the handler still calls http_authenticate.
 */
bool http_credentials_valid(struct parley_app *app, const struct _u_request *req, bool write);

/* The API's user object (shared/API.md): email only when `full` (self or an
 * admin), preferences only when `self`. */
json_t *user_json(const store_user_t *u, bool full, bool self);

/* An RFC 3339 string value for a time in ms, or null for 0. */
json_t *time_json(int64_t ms);

/* Answers the error for a store failure (conflicts, unavailable...). */
void reply_store_error(http_ctx_t *ctx, int rc);

#endif
