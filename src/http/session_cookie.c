/*
 * A browser's login by cookie: the Set-Cookie answers of a login and a
 * logout, whether a request came over HTTPS (the Secure attribute), and the
 * Origin check of a cookie's real-time connection (the check itself is
 * http_origin_trusted in cors.c, beside the list it reads).
 *
 * Two cookies, both Path=/ and SameSite=Lax: parley_session (HttpOnly) holds
 * the session credential (auth_session_cookie_issue: a MAC over the same
 * session record a refresh token names, checked per request with one HMAC
 * and no write), and parley_csrf (readable by the page's script) the
 * session's CSRF token, which a cookie request that changes state sends back
 * in X-CSRF-Token. Lax rather than Strict: a link followed from elsewhere to
 * a page of the server keeps its login (a GET, which changes nothing), and
 * every write is guarded by the CSRF token whatever SameSite does. Secure
 * follows --cookie-secure: `auto` sets it when the request came over TLS, or
 * from a trusted proxy saying X-Forwarded-Proto: https. No Domain attribute:
 * the cookies stay with the host that set them.
 */
#include "parley/http.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <ulfius.h>

#include "gate.h"

static atomic_int secure_mode; /* HTTP_COOKIE_SECURE_*; set once at start */

void http_session_cookies_secure(int mode)
{
    atomic_store(&secure_mode, mode);
}

static bool secure_for(const http_ctx_t *ctx)
{
    int mode = atomic_load(&secure_mode);
    if (mode == HTTP_COOKIE_SECURE_ALWAYS)
        return true;
    if (mode == HTTP_COOKIE_SECURE_NEVER)
        return false;
    return http_request_https(ctx);
}

bool http_request_https(const http_ctx_t *ctx)
{
    (void)ctx; /* the request served on this thread is ctx's */
    return gate_request_https();
}

const char *http_session_cookie(const http_ctx_t *ctx)
{
    return ctx->req->map_cookie ? u_map_get(ctx->req->map_cookie, HTTP_SESSION_COOKIE) : NULL;
}

static void add(http_ctx_t *ctx, const char *name, const char *value, unsigned max_age,
                bool http_only)
{
    /* Expires as well as Max-Age: ulfius writes no Max-Age of 0, and a
     * clearing cookie needs a date in the past. */
    ulfius_add_same_site_cookie_to_response(ctx->resp, name, value,
                                            max_age == 0 ? "Thu, 01 Jan 1970 00:00:00 GMT"
                                                         : NULL,
                                            max_age, NULL, "/", secure_for(ctx), http_only,
                                            U_COOKIE_SAME_SITE_LAX);
}

void http_session_cookies_set(http_ctx_t *ctx, const char *credential, const char *csrf,
                              int64_t max_age_s)
{
    unsigned age = max_age_s < 1 ? 1 : max_age_s > 400 * 86400 ? 400 * 86400 : (unsigned)max_age_s;
    add(ctx, HTTP_SESSION_COOKIE, credential, age, true);
    add(ctx, HTTP_CSRF_COOKIE, csrf, age, false);
}

void http_session_cookies_clear(http_ctx_t *ctx)
{
    add(ctx, HTTP_SESSION_COOKIE, "", 0, true);
    add(ctx, HTTP_CSRF_COOKIE, "", 0, false);
}
