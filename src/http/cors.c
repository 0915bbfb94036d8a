/*
 * CORS (the Fetch standard's CORS protocol) for the origins an operator
 * lists (the cors_origins setting): an answer to a listed Origin names that
 * origin (never "*", since credentials are allowed) and exposes the headers
 * a client reads; an Origin not listed gets no CORS header at all, so the
 * browser keeps the answer from the page. A preflight (OPTIONS with
 * Access-Control-Request-Method) is answered by the router before
 * authentication, for any path that exists, with the methods that path
 * takes; the real request then goes through every usual check.
 *
 * The list is a copy behind a read-write lock, replaced whole by the
 * settings hook (http_cors_origins_set): a request takes the read lock for
 * a few string comparisons.
 */
#include "cors.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "parley/origin.h"

#define MAX_AGE "600"
#define EXPOSED                                                                          \
    "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, "       \
    "X-RateLimit-Window, Retry-After"

/* The request headers a page may send; what a preflight asks for is
 * answered with those of these it named. */
static const char *const allowed_headers[] = {
    "Authorization", "Content-Type", "X-API-Key", "X-Request-Id", "X-CSRF-Token",
};
#define N_ALLOWED (sizeof(allowed_headers) / sizeof(allowed_headers[0]))

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static char origins[ORIGIN_LIST_MAX][ORIGIN_LEN_MAX + 1];
static size_t n_origins;

int http_cors_origins_set(const char *const *list, size_t n)
{
    if (n > ORIGIN_LIST_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!origin_valid(list[i]))
            return -1;
    pthread_rwlock_wrlock(&lock);
    for (size_t i = 0; i < n; i++)
        snprintf(origins[i], sizeof(origins[i]), "%s", list[i]);
    n_origins = n;
    pthread_rwlock_unlock(&lock);
    return 0;
}

/* Whether origin is listed; *any: whether the list is not empty. */
static bool listed(const char *origin, bool *any)
{
    bool found = false;
    pthread_rwlock_rdlock(&lock);
    *any = n_origins > 0;
    for (size_t i = 0; origin && i < n_origins && !found; i++)
        found = origin_equal(origins[i], origin);
    pthread_rwlock_unlock(&lock);
    return found;
}

bool http_origin_trusted(const char *origin, const char *host, bool https)
{
    if (origin == NULL || !origin_valid(origin))
        return false;
    bool any;
    if (listed(origin, &any))
        return true;
    char own[ORIGIN_LEN_MAX + 16];
    if (host == NULL || host[0] == '\0' ||
        (size_t)snprintf(own, sizeof(own), "%s://%s", https ? "https" : "http", host) >=
            sizeof(own))
        return false;
    return origin_equal(own, origin);
}

bool cors_is_preflight(const http_ctx_t *ctx)
{
    return ctx->req->http_verb && strcmp(ctx->req->http_verb, "OPTIONS") == 0 &&
           http_header(ctx, "Origin") != NULL &&
           http_header(ctx, "Access-Control-Request-Method") != NULL;
}

void http_cors_headers_each(const char *origin,
                            void (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    bool any;
    bool ok = listed(origin, &any);
    if (any)
        fn(ctx, "Vary", "Origin");
    if (!ok)
        return;
    fn(ctx, "Access-Control-Allow-Origin", origin);
    fn(ctx, "Access-Control-Allow-Credentials", "true");
    fn(ctx, "Access-Control-Expose-Headers", EXPOSED);
}

static void set_header(void *ctx, const char *name, const char *value)
{
    http_set_header(ctx, name, value);
}

void cors_annotate(http_ctx_t *ctx)
{
    http_cors_headers_each(http_header(ctx, "Origin"), set_header, ctx);
}

/* The allowed headers, in their spelling, that `asked` (a comma-separated
 * list, any case) names, then the ones every request may send. */
static void answer_headers(const char *asked, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < N_ALLOWED; i++) {
        bool named = false;
        for (const char *p = asked ? asked : ""; *p && !named;) {
            size_t n = strcspn(p, ",");
            const char *a = p, *b = p + n;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            named = (size_t)(b - a) == strlen(allowed_headers[i]) &&
                    strncasecmp(a, allowed_headers[i], (size_t)(b - a)) == 0;
            p += n + (p[n] == ',');
        }
        /* Authorization and Content-Type always: the API's own. */
        if (named || i < 2) {
            int w = snprintf(out + len, size - len, "%s%s", len ? ", " : "", allowed_headers[i]);
            if (w > 0 && (size_t)w < size - len)
                len += (size_t)w;
        }
    }
}

void cors_preflight(http_ctx_t *ctx, const char *allow)
{
    const char *acao = u_map_get_case(ctx->resp->map_header, "Access-Control-Allow-Origin");
    if (acao != NULL) {
        char hdrs[160];
        answer_headers(http_header(ctx, "Access-Control-Request-Headers"), hdrs, sizeof(hdrs));
        http_set_header(ctx, "Access-Control-Allow-Methods", allow);
        http_set_header(ctx, "Access-Control-Allow-Headers", hdrs);
        http_set_header(ctx, "Access-Control-Max-Age", MAX_AGE);
    }
    http_reply_empty(ctx, 204);
}
