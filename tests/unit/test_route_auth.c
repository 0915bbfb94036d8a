/*
 * Authentication in the route table: every route of the server is walked
 * and called through the real router with real ulfius requests, as an
 * anonymous caller, as a signed-in user who is not an admin, and with a
 * read-only API key. The router must refuse each caller the route's flags
 * exclude before its handler runs (which it proves: the handlers run with a
 * store and keys but no file store, no real time and no view cache, so a
 * handler that ran where it should not would answer otherwise, or crash).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "parley/api.h"
#include "parley/app.h"
#include "parley/blobs.h"
#include "parley/clock.h"
#include "parley/http_server.h"
#include "testutil.h"

/* The routes open to anyone; every other must refuse an anonymous call. */
static const char *const public_routes[] = {
    "GET /api/health",           "GET /api/v1/openapi.json",       "POST /api/v1/auth/register",
    "POST /api/v1/auth/login",   "POST /api/v1/auth/refresh",      "POST /api/v1/auth/mfa/verify",
    "GET /api/v1/ws",            "GET /api/v1/events",
    /* the web client and the documentation pages (h_web.c) */
    "GET /", "GET /assets/:name", "GET /docs", "GET /redoc", "GET /favicon.svg",
    "GET /register",
};

/* The routes that put content before others (HTTP_ROUTE_CONTENT): refused
 * to a muted account. docs/admin.md ("Mutes") lists the same. */
static const char *const content_routes[] = {
    "POST /api/v1/channels/:id/messages", "POST /api/v1/messages",
    "PUT /api/v1/messages/:id",           "POST /api/v1/messages/:id/reactions",
    "POST /api/v1/files",                 "POST /api/v1/files/upload",
    "POST /api/v1/channels",              "PATCH /api/v1/channels/:id",
    "POST /api/v1/channels/direct",
};

/* The account-security routes (HTTP_ROUTE_LOGIN_ONLY): they need a login,
 * never an API key, whatever its permissions. docs/api.md lists the same. */
static const char *const login_only_routes[] = {
    "POST /api/v1/auth/mfa/setup",       "POST /api/v1/auth/mfa/enable",
    "POST /api/v1/auth/mfa/disable",     "PUT /api/v1/auth/change-password",
    "POST /api/v1/auth/api-keys",        "GET /api/v1/auth/api-keys",
    "DELETE /api/v1/auth/api-keys/:id",  "POST /api/v1/auth/logout",
};

typedef struct world {
    char dir[128];
    parley_app_t app;
    parley_config_t cfg;
    router_t *router;
    char user_id[STORE_ID_MAX];
    char *user_token;     /* a signed-in user who is not an admin */
    char bearer[2048];    /* "Bearer <user_token>" */
    char read_key[128];   /* an API key of that user with read only */
    char full_key[128];   /* an API key of that user with read and write */
} world_t;

static void add_user(world_t *w, const char *name, store_user_t *u)
{
    memset(u, 0, sizeof(*u));
    store_new_id("usr", u->id);
    snprintf(u->username, sizeof(u->username), "%s", name);
    snprintf(u->email, sizeof(u->email), "%s@example.org", name);
    snprintf(u->password_hash, sizeof(u->password_hash), "x");
    u->is_active = true;
    u->created_at = u->updated_at = clock_wall_ms();
    uint64_t lsn;
    ASSERT_EQ(store_user_create(w->app.store, u, true, &lsn), 0);
    ASSERT_EQ(store_wait(w->app.store, lsn), 0);
}

/* A new login (session) of the plain user and its access token: a route
 * such as POST /auth/logout ends the one it is called with. */
static void sign_in(world_t *w)
{
    int64_t now = clock_wall_ms();
    store_session_t ss = {.generation = 1, .created_at = now, .expires_at = now + 3600000};
    store_new_id("ses", ss.id);
    snprintf(ss.user_id, sizeof(ss.user_id), "%s", w->user_id);
    uint64_t lsn;
    ASSERT_EQ(store_session_put(w->app.store, &ss, &lsn), 0);
    ASSERT_EQ(store_wait(w->app.store, lsn), 0);
    free(w->user_token);
    w->user_token = NULL;
    ASSERT_EQ(auth_token_issue(&w->app.keys, w->user_id, ss.id, now / 1000, 600, &w->user_token),
              AUTH_OK);
    snprintf(w->bearer, sizeof(w->bearer), "Bearer %s", w->user_token);
}

static void world_open(world_t *w)
{
    memset(w, 0, sizeof(*w));
    ut_tmpdir(w->dir, sizeof(w->dir), "routeauth");
    config_defaults(&w->cfg);
    w->app.config = &w->cfg;
    w->app.store = ut_store_open(w->dir);
    char err[256];
    w->app.blobs = blobs_open(w->dir, err, sizeof(err));
    ASSERT_NOT_NULL(w->app.blobs);
    ASSERT_EQ(auth_keys_derive("0123456789abcdef0123456789abcdef", 32, &w->app.keys), AUTH_OK);
    w->app.rate_limiter = auth_rate_limiter_new(NULL, 0); /* all off */
    w->app.login_limiter = auth_login_limiter_new(0);
    w->router = router_new(api_route_tables, &w->app);

    store_user_t admin, user;
    add_user(w, "first", &admin); /* the first account is the admin */
    add_user(w, "plain", &user);
    ASSERT_TRUE(admin.is_admin);
    ASSERT_TRUE(!user.is_admin);

    snprintf(w->user_id, sizeof(w->user_id), "%s", user.id);
    sign_in(w);
    int64_t now = clock_wall_ms();
    uint64_t lsn;
    char key_id[AUTH_API_KEY_ID_MAX];
    store_api_key_t k = {.can_read = true, .can_write = false, .created_at = now};
    ASSERT_EQ(auth_api_key_new(w->read_key, key_id, k.hash), AUTH_OK);
    snprintf(k.id, sizeof(k.id), "%s", key_id);
    snprintf(k.user_id, sizeof(k.user_id), "%s", user.id);
    snprintf(k.name, sizeof(k.name), "reader");
    ASSERT_EQ(store_api_key_put(w->app.store, &k, &lsn), 0);
    ASSERT_EQ(store_wait(w->app.store, lsn), 0);
    store_api_key_t full = {.can_read = true, .can_write = true, .created_at = now};
    ASSERT_EQ(auth_api_key_new(w->full_key, key_id, full.hash), AUTH_OK);
    snprintf(full.id, sizeof(full.id), "%s", key_id);
    snprintf(full.user_id, sizeof(full.user_id), "%s", user.id);
    snprintf(full.name, sizeof(full.name), "writer");
    ASSERT_EQ(store_api_key_put(w->app.store, &full, &lsn), 0);
    ASSERT_EQ(store_wait(w->app.store, lsn), 0);
    store_user_clear(&admin);
    store_user_clear(&user);
}

static void world_close(world_t *w)
{
    router_free(w->router);
    free(w->user_token);
    auth_rate_limiter_free(w->app.rate_limiter);
    auth_login_limiter_free(w->app.login_limiter);
    auth_keys_wipe(&w->app.keys);
    blobs_close(w->app.blobs);
    ASSERT_EQ(store_close(w->app.store), 0);
    ut_rmrf(w->dir);
}

/* The route's pattern with every ":param" filled in. */
static void concrete_path(const char *pattern, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = pattern; *p && n + 16 < size;) {
        if (*p == ':') {
            n += (size_t)snprintf(out + n, size - n, "x1");
            p += 1 + strcspn(p + 1, "/");
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}

typedef struct answer {
    long status;
    char code[64];
    char message[160];
} answer_t;

/* Calls method+path through the router with one credentials header (name
 * NULL: none) and a JSON object body for methods that take one. */
static answer_t call(world_t *w, const char *method, const char *path, const char *header,
                     const char *value)
{
    struct _u_request req;
    struct _u_response resp;
    ulfius_init_request(&req);
    ulfius_init_response(&resp);
    o_free(req.http_verb);
    req.http_verb = o_strdup(method);
    req.url_path = o_strdup(path);
    if (header)
        u_map_put(req.map_header, header, value);
    if (strcmp(method, "GET") != 0) {
        u_map_put(req.map_header, "Content-Type", "application/json");
        req.binary_body = o_strdup("{}");
        req.binary_body_length = 2;
    }
    ASSERT_EQ(router_dispatch(&req, &resp, w->router), U_CALLBACK_COMPLETE);
    answer_t a = {.status = resp.status};
    json_t *body = resp.binary_body_length
                       ? json_loadb(resp.binary_body, resp.binary_body_length, 0, NULL)
                       : NULL;
    const char *code =
        json_string_value(json_object_get(json_object_get(body, "error"), "code"));
    snprintf(a.code, sizeof(a.code), "%s", code ? code : "");
    const char *message =
        json_string_value(json_object_get(json_object_get(body, "error"), "message"));
    snprintf(a.message, sizeof(a.message), "%s", message ? message : "");
    json_decref(body);
    ulfius_clean_request(&req);
    ulfius_clean_response(&resp);
    return a;
}

static bool listed_in(const http_route_t *r, const char *const *list, size_t n)
{
    char name[256];
    snprintf(name, sizeof(name), "%s %s", r->method, r->pattern);
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

static bool listed_public(const http_route_t *r)
{
    return listed_in(r, public_routes, sizeof(public_routes) / sizeof(public_routes[0]));
}

TEST(route_table_says_who_may_call_every_route)
{
    size_t n_public = 0, n_routes = 0;
    for (size_t t = 0; api_route_tables[t]; t++) {
        for (const http_route_t *r = api_route_tables[t]; r->method; r++, n_routes++) {
            bool is_public = (r->flags & HTTP_ROUTE_PUBLIC) != 0;
            if (is_public != listed_public(r))
                TEST_FAIL_("%s %s is %s but %s the list of public routes", r->method,
                           r->pattern, is_public ? "public" : "not public",
                           is_public ? "not in" : "in");
            n_public += is_public;
            /* A GET changes nothing: it needs the read permission; every
             * other method changes something: it needs write. */
            bool get = strcmp(r->method, "GET") == 0;
            if (!is_public && get != ((r->flags & HTTP_ROUTE_READ) != 0))
                TEST_FAIL_("%s %s needs %s but is flagged otherwise", r->method, r->pattern,
                           get ? "READ" : "WRITE");
        }
    }
    ASSERT_EQ(n_public, sizeof(public_routes) / sizeof(public_routes[0]));
    ASSERT_GT(n_routes, n_public + 40);
}

TEST(route_table_marks_the_routes_that_put_content_before_others)
{
    size_t n = 0, want = sizeof(content_routes) / sizeof(content_routes[0]);
    for (size_t t = 0; api_route_tables[t]; t++) {
        for (const http_route_t *r = api_route_tables[t]; r->method; r++) {
            bool content = (r->flags & HTTP_ROUTE_CONTENT) != 0;
            if (content != listed_in(r, content_routes, want))
                TEST_FAIL_("%s %s is %s but %s the list of content routes", r->method,
                           r->pattern, content ? "CONTENT" : "not CONTENT",
                           content ? "not in" : "in");
            n += content;
        }
    }
    ASSERT_EQ(n, want);
}

static int mute_for_an_hour(void *ctx, store_user_t *u)
{
    (void)ctx;
    u->muted_at = clock_wall_ms();
    u->muted_until = u->muted_at + 3600000;
    return 0;
}

TEST(every_content_route_refuses_a_muted_user_and_the_others_do_not)
{
    world_t w;
    world_open(&w);
    uint64_t lsn;
    ASSERT_EQ(store_user_modify(w.app.store, w.user_id, mute_for_an_hour, NULL, NULL, &lsn), 0);
    ASSERT_EQ(store_wait(w.app.store, lsn), 0);
    ASSERT_EQ(call(&w, "GET", "/api/v1/users/me", "Authorization", w.bearer).status, 200);
    size_t checked = 0;
    for (size_t t = 0; api_route_tables[t]; t++) {
        for (const http_route_t *r = api_route_tables[t]; r->method; r++) {
            if (!(r->flags & HTTP_ROUTE_USER))
                continue;
            char path[256];
            concrete_path(r->pattern, path, sizeof(path));
            sign_in(&w);
            answer_t a = call(&w, r->method, path, "Authorization", w.bearer);
            bool refused = a.status == 403 && strcmp(a.code, "ACCOUNT_MUTED") == 0;
            if (refused != ((r->flags & HTTP_ROUTE_CONTENT) != 0))
                TEST_FAIL_("a muted user on %s %s got %ld %s", r->method, path, a.status,
                           a.code);
            checked += refused;
        }
    }
    ASSERT_EQ(checked, sizeof(content_routes) / sizeof(content_routes[0]));
    world_close(&w);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The rate-limit category a route should have, from what it is. */
static int expected_category(const http_route_t *r)
{
    bool get = strcmp(r->method, "GET") == 0;
    if (strcmp(r->pattern, "/api/health") == 0)
        return -1; /* never limited: probes must not meet a 429 */
    if (r->flags & HTTP_ROUTE_ADMIN)
        return AUTH_RATE_ADMIN;
    if (starts_with(r->pattern, "/api/v1/auth/"))
        return AUTH_RATE_AUTH;
    if (r->flags & HTTP_ROUTE_UPLOAD)
        return AUTH_RATE_UPLOADS;
    if (starts_with(r->pattern, "/api/v1/search/"))
        return AUTH_RATE_SEARCH;
    /* Writing a message or a reaction: the message routes that change one. */
    if (!get && (starts_with(r->pattern, "/api/v1/messages") ||
                 strcmp(r->pattern, "/api/v1/channels/:id/messages") == 0))
        return AUTH_RATE_MESSAGES;
    return AUTH_RATE_DEFAULT;
}

TEST(every_route_has_the_rate_limit_category_it_should)
{
    size_t seen[AUTH_RATE_CATEGORIES] = {0};
    for (size_t t = 0; api_route_tables[t]; t++) {
        for (const http_route_t *r = api_route_tables[t]; r->method; r++) {
            int want = expected_category(r), got = http_route_rate_category(r->flags);
            if (want != got)
                TEST_FAIL_("%s %s is in rate-limit category %s, expected %s", r->method,
                           r->pattern, got < 0 ? "none" : auth_rate_category_name(got),
                           want < 0 ? "none" : auth_rate_category_name(want));
            /* Every path under /api/v1/admin is an admin route. */
            if (starts_with(r->pattern, "/api/v1/admin") && !(r->flags & HTTP_ROUTE_ADMIN))
                TEST_FAIL_("%s %s is under /api/v1/admin but not an ADMIN route", r->method,
                           r->pattern);
            if (got >= 0)
                seen[got]++;
        }
    }
    /* Each category has its routes (login, register, refresh, MFA verify
     * among the auth ones: tested above by path). */
    for (int c = 0; c < AUTH_RATE_CATEGORIES; c++)
        if (seen[c] == 0)
            TEST_FAIL_("no route is in the rate-limit category %s", auth_rate_category_name(c));
    ASSERT_GE(seen[AUTH_RATE_AUTH], 4);
    ASSERT_GE(seen[AUTH_RATE_MESSAGES], 5);
    ASSERT_GE(seen[AUTH_RATE_UPLOADS], 2);
}

TEST(router_applies_the_route_category_limit_per_user)
{
    world_t w;
    world_open(&w);
    ASSERT_EQ(auth_rate_set_category_limit(w.app.rate_limiter, AUTH_RATE_SEARCH, 2), AUTH_OK);
    for (int i = 0; i < 2; i++) {
        answer_t a = call(&w, "GET", "/api/v1/search/users", "Authorization", w.bearer);
        ASSERT_NE(a.status, 429); /* what the handler says of no ?q= is its business */
    }
    answer_t a = call(&w, "GET", "/api/v1/search/users", "Authorization", w.bearer);
    ASSERT_EQ(a.status, 429);
    ASSERT_STREQ(a.code, "RATE_LIMIT_EXCEEDED");
    ASSERT_CONTAINS(a.message, "search");
    /* The user's key is the same user: same bucket. */
    ASSERT_EQ(call(&w, "GET", "/api/v1/search/channels", "X-API-Key", w.read_key).status, 429);
    /* Other categories are not touched. */
    ASSERT_EQ(call(&w, "GET", "/api/v1/users/me", "Authorization", w.bearer).status, 200);
    /* The setter acts at once: off, and the search passes again. */
    ASSERT_EQ(auth_rate_set_category_limit(w.app.rate_limiter, AUTH_RATE_SEARCH, 0), AUTH_OK);
    ASSERT_NE(call(&w, "GET", "/api/v1/search/users", "Authorization", w.bearer).status, 429);
    world_close(&w);
}

TEST(every_route_but_the_public_ones_refuses_an_anonymous_call)
{
    world_t w;
    world_open(&w);
    size_t checked = 0;
    for (size_t t = 0; api_route_tables[t]; t++) {
        for (const http_route_t *r = api_route_tables[t]; r->method; r++) {
            if (r->flags & HTTP_ROUTE_PUBLIC)
                continue;
            char path[256];
            concrete_path(r->pattern, path, sizeof(path));
            answer_t a = call(&w, r->method, path, NULL, NULL);
            if (a.status != 401 || strcmp(a.code, "AUTHENTICATION_REQUIRED") != 0)
                TEST_FAIL_("anonymous %s %s answered %ld %s", r->method, path, a.status, a.code);
            a = call(&w, r->method, path, "Authorization", "Bearer not-a-token");
            if (a.status != 401 || strcmp(a.code, "TOKEN_INVALID") != 0)
                TEST_FAIL_("forged token on %s %s answered %ld %s", r->method, path, a.status,
                           a.code);
            checked++;
        }
    }
    ASSERT_GT(checked, 40);
    world_close(&w);
}

TEST(every_admin_route_refuses_a_user_who_is_not_an_admin)
{
    world_t w;
    world_open(&w);
    /* The credentials are good: a route for users answers them. */
    ASSERT_EQ(call(&w, "GET", "/api/v1/users/me", "Authorization", w.bearer).status, 200);
    size_t checked = 0;
    for (size_t t = 0; api_route_tables[t]; t++) {
        for (const http_route_t *r = api_route_tables[t]; r->method; r++) {
            if (!(r->flags & HTTP_ROUTE_ADMIN))
                continue;
            char path[256];
            concrete_path(r->pattern, path, sizeof(path));
            answer_t a = call(&w, r->method, path, "Authorization", w.bearer);
            if (a.status != 403 || strcmp(a.code, "INSUFFICIENT_PERMISSIONS") != 0)
                TEST_FAIL_("a non-admin on %s %s got %ld %s", r->method, path, a.status, a.code);
            checked++;
        }
    }
    ASSERT_GE(checked, 1);
    world_close(&w);
}

TEST(every_write_route_refuses_a_read_only_api_key)
{
    world_t w;
    world_open(&w);
    /* The key is good: a read route answers it. */
    ASSERT_EQ(call(&w, "GET", "/api/v1/users/me", "X-API-Key", w.read_key).status, 200);
    size_t checked = 0;
    for (size_t t = 0; api_route_tables[t]; t++) {
        for (const http_route_t *r = api_route_tables[t]; r->method; r++) {
            if (!(r->flags & HTTP_ROUTE_WRITE))
                continue;
            char path[256];
            concrete_path(r->pattern, path, sizeof(path));
            answer_t a = call(&w, r->method, path, "X-API-Key", w.read_key);
            if (a.status != 403 || strcmp(a.code, "INSUFFICIENT_PERMISSIONS") != 0)
                TEST_FAIL_("a read-only key on %s %s got %ld %s", r->method, path, a.status,
                           a.code);
            checked++;
        }
    }
    ASSERT_GT(checked, 25);
    world_close(&w);
}

/* Whether the router itself refused the caller (authentication, the key's
 * permission, the admin role), as opposed to the handler answering. */
static bool refused_by_router(const answer_t *a)
{
    return a->status == 401 || a->status == 429 ||
           (a->status == 403 && (strstr(a->message, "API key does not have") != NULL ||
                                 strstr(a->message, "for administrators") != NULL));
}

TEST(the_callers_a_route_allows_get_past_the_router)
{
    /* The other side of the refusals above: a user passes every USER route,
     * a read-only key every READ route (what the handler then answers for
     * the made-up ids is its own business). */
    world_t w;
    world_open(&w);
    size_t user_routes = 0, read_routes = 0;
    for (size_t t = 0; api_route_tables[t]; t++) {
        for (const http_route_t *r = api_route_tables[t]; r->method; r++) {
            if (!(r->flags & HTTP_ROUTE_USER))
                continue;
            char path[256];
            concrete_path(r->pattern, path, sizeof(path));
            sign_in(&w);
            answer_t a = call(&w, r->method, path, "Authorization", w.bearer);
            if (refused_by_router(&a))
                TEST_FAIL_("a user on %s %s was refused: %ld %s", r->method, path, a.status,
                           a.message);
            user_routes++;
            if (!(r->flags & HTTP_ROUTE_READ) || (r->flags & HTTP_ROUTE_LOGIN_ONLY))
                continue;
            a = call(&w, r->method, path, "X-API-Key", w.read_key);
            if (refused_by_router(&a))
                TEST_FAIL_("a read-only key on %s %s was refused: %ld %s", r->method, path,
                           a.status, a.message);
            read_routes++;
        }
    }
    ASSERT_GT(user_routes, 40);
    ASSERT_GT(read_routes, 15);
    world_close(&w);
}

TEST(every_account_security_route_refuses_any_api_key_and_takes_a_login)
{
    world_t w;
    world_open(&w);
    /* The key is good: a write route that is not account security passes
     * the router with it (what the handler says of {} is its business). */
    ASSERT_NE(call(&w, "PUT", "/api/v1/users/me", "X-API-Key", w.full_key).status, 403);
    size_t n = 0, want = sizeof(login_only_routes) / sizeof(login_only_routes[0]);
    for (size_t t = 0; api_route_tables[t]; t++) {
        for (const http_route_t *r = api_route_tables[t]; r->method; r++) {
            bool login_only = (r->flags & HTTP_ROUTE_LOGIN_ONLY) != 0;
            if (login_only != listed_in(r, login_only_routes, want))
                TEST_FAIL_("%s %s is %s but %s the list of login-only routes", r->method,
                           r->pattern, login_only ? "LOGIN_ONLY" : "not LOGIN_ONLY",
                           login_only ? "not in" : "in");
            if (!login_only)
                continue;
            char path[256];
            concrete_path(r->pattern, path, sizeof(path));
            answer_t a = call(&w, r->method, path, "X-API-Key", w.full_key);
            if (a.status != 403 || strcmp(a.code, "INSUFFICIENT_PERMISSIONS") != 0 ||
                strstr(a.message, "login") == NULL)
                TEST_FAIL_("a read-write key on %s %s got %ld %s", r->method, path, a.status,
                           a.code);
            sign_in(&w);
            a = call(&w, r->method, path, "Authorization", w.bearer);
            if (refused_by_router(&a) || (a.status == 403 && strstr(a.message, "login")))
                TEST_FAIL_("a login on %s %s was refused: %ld %s", r->method, path, a.status,
                           a.message);
            n++;
        }
    }
    ASSERT_EQ(n, want);
    world_close(&w);
}

TEST(router_refuses_a_route_that_does_not_say_who_may_call_it)
{
    /* router_new aborts on a programming error; run it in a child. */
    static const http_route_t unmarked[] = {{"GET", "/api/v1/x", NULL, 0, NULL, NULL},
                                            {NULL, NULL, NULL, 0, NULL, NULL}};
    static const http_route_t no_permission[] = {
        {"POST", "/api/v1/x", NULL, HTTP_ROUTE_USER, NULL, NULL}, {NULL, NULL, NULL, 0, NULL, NULL}};
    static const http_route_t both[] = {
        {"GET", "/api/v1/x", NULL, HTTP_ROUTE_PUBLIC | HTTP_ROUTE_USER | HTTP_ROUTE_READ, NULL, NULL},
        {NULL, NULL, NULL, 0, NULL, NULL}};
    static const http_route_t content_read[] = {
        {"GET", "/api/v1/x", NULL, HTTP_USER_READ | HTTP_ROUTE_CONTENT, NULL, NULL},
        {NULL, NULL, NULL, 0, NULL, NULL}};
    static const http_route_t two_categories[] = {
        {"GET", "/api/v1/x", NULL, HTTP_USER_READ | HTTP_RATE_SEARCH | HTTP_RATE_MESSAGES, NULL, NULL},
        {NULL, NULL, NULL, 0, NULL, NULL}};
    static const http_route_t admin_and_search[] = {
        {"GET", "/api/v1/x", NULL, HTTP_ADMIN_READ | HTTP_RATE_SEARCH, NULL, NULL},
        {NULL, NULL, NULL, 0, NULL, NULL}};
    const http_route_t *const *cases[] = {
        (const http_route_t *const[]){content_read, NULL},
        (const http_route_t *const[]){unmarked, NULL},
        (const http_route_t *const[]){no_permission, NULL},
        (const http_route_t *const[]){both, NULL},
        (const http_route_t *const[]){two_categories, NULL},
        (const http_route_t *const[]){admin_and_search, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            freopen("/dev/null", "w", stderr);
            router_new(cases[i], NULL);
            _exit(0);
        }
        int status;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    }
}
