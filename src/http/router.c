/*
 * The router. ulfius is given a single catch-all endpoint whose callback is
 * router_dispatch(); matching happens here, for three reasons:
 *   - ulfius matches by splitting and copying every registered pattern on
 *     every request (several allocations per route per request);
 *   - a 405 needs to know that the path exists under other methods, which
 *     ulfius's first-match cannot say;
 *   - every request must pass the same steps in the same order, whatever the
 *     route: request id, body checks, route, method, handler.
 *
 * Patterns are split into segments once at start-up. A request path is
 * walked in place (no allocation); empty segments are skipped, so a trailing
 * slash does not matter. ":name" segments are captured, percent-decoded into
 * the context, and must be non-empty UTF-8 with no control characters.
 *
 * Order of checks (docs/architecture.md): body size (the gate, 413) → a CORS
 * preflight (OPTIONS with Access-Control-Request-Method to a path that
 * exists: 204, cors.c) → body
 * type and JSON syntax (400) → route (404) → method (405, with Allow) →
 * path parameters (400) → the rate limit of the route's category and the
 * caller, as the route's flags ask (rate_limit.c, authenticate.c: 429, 401,
 * 403) → the names of the query parameters and body fields against the
 * route's declared lists (422; after the caller is known, so a stranger
 * learns nothing of a route's inputs and every refusal counts against its
 * limit) → handler (permissions on the resource, values). A body is judged before the route because it is part of the
 * request's form, not of what it asks for.
 */
#include "parley/http_server.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authenticate.h"
#include "cors.h"
#include "gate.h"
#include "parley/auth.h"
#include "parley/hex.h"
#include "parley/log.h"
#include "parley/utf8.h"
#include "parley/xalloc.h"
#include "rate_limit.h"
#include "route_metrics.h"

#define MAX_SEGMENTS 12

typedef struct compiled_route {
    const http_route_t *def;
    size_t n_segments;
    const char *segment[MAX_SEGMENTS]; /* point into def->pattern copies */
    size_t segment_len[MAX_SEGMENTS];
    bool is_param[MAX_SEGMENTS];
    route_slot_t *metric;              /* its requests' figures (route_metrics.c) */
} compiled_route_t;

struct router {
    compiled_route_t *routes;
    size_t n_routes;
    void *app;
    route_metrics_t *metrics;
};

typedef struct path_view {
    size_t n;
    const char *segment[MAX_SEGMENTS];
    size_t segment_len[MAX_SEGMENTS];
} path_view_t;

/* Splits `path` (stopping at '?') into segments; false when too many. */
static bool split_path(const char *path, path_view_t *view)
{
    view->n = 0;
    const char *p = path;
    while (*p && *p != '?') {
        while (*p == '/')
            p++;
        if (*p == '\0' || *p == '?')
            break;
        const char *start = p;
        while (*p && *p != '/' && *p != '?')
            p++;
        if (view->n == MAX_SEGMENTS)
            return false;
        view->segment[view->n] = start;
        view->segment_len[view->n] = (size_t)(p - start);
        view->n++;
    }
    return true;
}

/* Exactly one of PUBLIC/USER/ADMIN; READ or WRITE (one) unless public;
 * CONTENT only with WRITE. */
static bool route_flags_valid(unsigned flags)
{
    if ((flags & HTTP_ROUTE_CONTENT) && !(flags & HTTP_ROUTE_WRITE))
        return false;
    unsigned who = flags & (HTTP_ROUTE_PUBLIC | HTTP_ROUTE_USER | HTTP_ROUTE_ADMIN);
    unsigned need = flags & (HTTP_ROUTE_READ | HTTP_ROUTE_WRITE);
    if (who != HTTP_ROUTE_PUBLIC && who != HTTP_ROUTE_USER && who != HTTP_ROUTE_ADMIN)
        return false;
    if (who == HTTP_ROUTE_PUBLIC ? need != 0 : need != HTTP_ROUTE_READ && need != HTTP_ROUTE_WRITE)
        return false;
    unsigned named = flags & (HTTP_ROUTE_ADMIN | HTTP_ROUTE_UPLOAD | HTTP_RATE_AUTH |
                              HTTP_RATE_MESSAGES | HTTP_RATE_SEARCH | HTTP_RATE_NONE);
    return (named & (named - 1)) == 0; /* at most one rate-limit category */
}

int http_route_rate_category(unsigned flags)
{
    static const struct {
        unsigned flag;
        int category;
    } marks[] = {
        {HTTP_ROUTE_ADMIN, AUTH_RATE_ADMIN},      {HTTP_ROUTE_UPLOAD, AUTH_RATE_UPLOADS},
        {HTTP_RATE_AUTH, AUTH_RATE_AUTH},         {HTTP_RATE_MESSAGES, AUTH_RATE_MESSAGES},
        {HTTP_RATE_SEARCH, AUTH_RATE_SEARCH},     {HTTP_RATE_NONE, -1},
    };
    int category = AUTH_RATE_DEFAULT, found = 0;
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
        if (flags & marks[i].flag) {
            category = marks[i].category;
            found++;
        }
    }
    return found <= 1 ? category : -1;
}

router_t *router_new(const http_route_t *const *tables, void *app)
{
    router_t *r = xcalloc(1, sizeof(*r));
    r->app = app;
    for (size_t t = 0; tables[t]; t++)
        for (const http_route_t *d = tables[t]; d->method; d++)
            r->n_routes++;
    r->routes = xcalloc(r->n_routes ? r->n_routes : 1, sizeof(*r->routes));
    r->metrics = route_metrics__new(r->n_routes);
    size_t i = 0;
    for (size_t t = 0; tables[t]; t++) {
        for (const http_route_t *d = tables[t]; d->method; d++, i++) {
            compiled_route_t *c = &r->routes[i];
            c->def = d;
            route_metrics__name(r->metrics, i, d->method, d->pattern);
            c->metric = route_metrics__slot(r->metrics, i);
            path_view_t view;
            if (d->pattern[0] != '/' || !split_path(d->pattern, &view)) {
                log_error("router: malformed route pattern '%s'", d->pattern);
                abort();
            }
            if (!route_flags_valid(d->flags)) {
                log_error("router: route %s %s must say who may call it (PUBLIC, USER or "
                          "ADMIN) and, unless public, what an API key needs (READ or WRITE; CONTENT "
                          "with WRITE), and name at most one rate-limit category",
                          d->method, d->pattern);
                abort();
            }
            c->n_segments = view.n;
            for (size_t s = 0; s < view.n; s++) {
                c->is_param[s] = view.segment[s][0] == ':';
                c->segment[s] = view.segment[s];
                c->segment_len[s] = view.segment_len[s];
            }
        }
    }
    return r;
}

void router_free(router_t *router)
{
    if (router == NULL)
        return;
    route_metrics__free(router->metrics);
    free(router->routes);
    free(router);
}

static bool path_matches(const compiled_route_t *c, const path_view_t *view)
{
    if (c->n_segments != view->n)
        return false;
    for (size_t s = 0; s < view->n; s++) {
        if (c->is_param[s])
            continue;
        if (c->segment_len[s] != view->segment_len[s] ||
            memcmp(c->segment[s], view->segment[s], view->segment_len[s]) != 0)
            return false;
    }
    return true;
}

static bool method_matches(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

static void allow_add(char *allow, size_t size, const char *method)
{
    if (strstr(allow, method) != NULL)
        return;
    size_t n = strlen(allow);
    snprintf(allow + n, size - n, "%s%s", n ? ", " : "", method);
}

/* Finds the route for method+path. When none matches but the path exists,
 * fills `allow` with the methods it takes. */
static const compiled_route_t *match(const router_t *r, const char *method,
                                     const path_view_t *view, char *allow, size_t allow_size)
{
    allow[0] = '\0';
    for (size_t i = 0; i < r->n_routes; i++) {
        const compiled_route_t *c = &r->routes[i];
        if (!path_matches(c, view))
            continue;
        if (method_matches(c->def->method, method))
            return c;
        allow_add(allow, allow_size, c->def->method);
        if (strcmp(c->def->method, "GET") == 0)
            allow_add(allow, allow_size, "HEAD");
    }
    return NULL;
}

/* Checks that s[0..len) is UTF-8 without control characters. */
static bool clean_utf8(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence(s + i, len - i);
        if (n == 0 || s[i] < 0x20 || s[i] == 0x7f)
            return false;
        i += n;
    }
    return true;
}

/* Decodes the route's parameters into ctx. False on a malformed one. */
static bool capture_params(http_ctx_t *ctx, const compiled_route_t *c, const path_view_t *view)
{
    char *out = ctx->_param_buf;
    char *end = ctx->_param_buf + sizeof(ctx->_param_buf);
    for (size_t s = 0; s < view->n; s++) {
        if (!c->is_param[s])
            continue;
        if (ctx->n_params == HTTP_MAX_PARAMS)
            return false;
        char *start = out;
        const char *in = view->segment[s];
        for (size_t k = 0; k < view->segment_len[s]; k++) {
            if (out + 1 >= end)
                return false;
            if (in[k] == '%') {
                if (k + 2 >= view->segment_len[s])
                    return false;
                int hi = hex_digit(in[k + 1]), lo = hex_digit(in[k + 2]);
                if (hi < 0 || lo < 0)
                    return false;
                *out++ = (char)(hi * 16 + lo);
                k += 2;
            } else {
                *out++ = in[k];
            }
        }
        if (out == start || !clean_utf8((const unsigned char *)start, (size_t)(out - start)))
            return false;
        *out++ = '\0';
        ctx->params[ctx->n_params++] = start;
    }
    return true;
}

unsigned router_route_flags(void *router, const char *method, const char *path)
{
    const router_t *r = router;
    path_view_t view;
    char allow[96];
    if (!split_path(path, &view))
        return 0;
    const compiled_route_t *c = match(r, method, &view, allow, sizeof(allow));
    return c != NULL ? c->def->flags : 0;
}

void *router__route_metric(void *router, const char *method, const char *path)
{
    const router_t *r = router;
    path_view_t view;
    char allow[96];
    if (r == NULL || !split_path(path, &view))
        return NULL;
    const compiled_route_t *c = match(r, method, &view, allow, sizeof(allow));
    return c != NULL ? c->metric : NULL;
}

bool router_takes_upload(void *router, const char *method, const char *path)
{
    return (router_route_flags(router, method, path) & HTTP_ROUTE_UPLOAD) != 0;
}

/* Whether `name` is one of the comma-separated `list` (http_route_t's
 * query or body); false for a NULL list. */
static bool listed(const char *list, const char *name)
{
    if (list == NULL)
        return false;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && memcmp(p, name, n) == 0)
            return true;
        p += k;
        if (*p == ',')
            p++;
    }
    return false;
}

/* Answers 422 for `name`, an input of `in` ("query" or "body") the route
 * does not take; details.allowed lists what it does. The name is echoed as
 * sent up to its first 64 bytes (cut between characters), or as "" when it
 * is not UTF-8 without control characters (a query's name is any bytes). */
static void reply_unknown(http_ctx_t *ctx, const char *in, const char *name, const char *list)
{
    char echo[65];
    size_t len = 0, total = strlen(name);
    while (len < total) {
        size_t n = utf8_sequence((const unsigned char *)name + len, total - len);
        if (n == 0 || (unsigned char)name[len] < 0x20 || name[len] == 0x7f) {
            len = 0;
            break;
        }
        if (len + n > sizeof(echo) - 1)
            break;
        len += n;
    }
    memcpy(echo, name, len);
    echo[len] = '\0';
    json_t *allowed = json_array();
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        json_array_append_new(allowed, json_stringn(p, k));
        p += k;
        if (*p == ',')
            p++;
    }
    http_reply_error(ctx, HTTP_ERR_VALIDATION,
                     json_pack("{s:s, s:s, s:o}", "field", echo, "in", in, "allowed", allowed),
                     "this endpoint takes no %s '%s'",
                     strcmp(in, "query") == 0 ? "query parameter" : "body field", echo);
}

/* The first key of `map` (may be NULL) not in `list`. */
static const char *first_unlisted(const struct _u_map *map, const char *list)
{
    const char *const *keys = map != NULL ? u_map_enum_keys(map) : NULL; /* the map's own */
    for (size_t i = 0; keys != NULL && keys[i] != NULL; i++)
        if (!listed(list, keys[i]))
            return keys[i];
    return NULL;
}

/* The first parameter name of the request's raw query string (http_url
 * after '?', up to '#') not in `list`, percent-decoded ('+' is a space)
 * into out, cut at size - 1 bytes; NULL when every name is listed. Read
 * from the raw text because ulfius leaves out of map_url the names that are
 * not UTF-8, which would then pass unseen. */
static const char *first_unlisted_query(const char *url, const char *list, char *out,
                                        size_t size)
{
    const char *q = url != NULL ? strchr(url, '?') : NULL;
    if (q == NULL)
        return NULL;
    for (q++; *q && *q != '#';) {
        size_t seg = strcspn(q, "&#");
        size_t name_len = strcspn(q, "=&#");
        size_t n = 0;
        for (size_t k = 0; k < name_len; k++) {
            int c = (unsigned char)q[k];
            if (c == '%' && k + 2 < name_len && hex_digit(q[k + 1]) >= 0 &&
                hex_digit(q[k + 2]) >= 0) {
                c = hex_digit(q[k + 1]) * 16 + hex_digit(q[k + 2]);
                k += 2;
            } else if (c == '+') {
                c = ' ';
            }
            if (n + 1 < size)
                out[n++] = (char)c;
        }
        out[n] = '\0';
        if (seg > 0 && (memchr(out, '\0', n) != NULL || !listed(list, out)))
            return out;
        q += seg;
        if (*q == '&')
            q++;
    }
    return NULL;
}

/* Checks the request's query parameters and body fields against the
 * route's declared lists (http_route_t). True to go on; false after
 * answering 422 naming the first unknown one. A row without lists (NULL)
 * is not checked; a JSON body that is not an object is left to the
 * handler's readers. */
static bool inputs_declared(http_ctx_t *ctx, const http_route_t *def)
{
    const char *bad;
    char name[256];
    if (def->query != NULL && (bad = first_unlisted_query(ctx->req->http_url, def->query, name,
                                                          sizeof(name))) != NULL) {
        reply_unknown(ctx, "query", bad, def->query);
        return false;
    }
    if (def->body == NULL || strcmp(def->body, HTTP_FIELDS_OWN) == 0)
        return true;
    if (json_is_object(ctx->body)) {
        const char *key;
        json_t *value;
        json_object_foreach(ctx->body, key, value) {
            if (!listed(def->body, key)) {
                reply_unknown(ctx, "body", key, def->body);
                return false;
            }
        }
    }
    /* An upload's form fields, and a file in a part of another name than
     * "file" (upload.c notes it and does not read it). */
    if (!(def->flags & HTTP_ROUTE_UPLOAD))
        return true;
    const upload_t *up = http_upload_current();
    if ((bad = first_unlisted(ctx->req->map_post_body, def->body)) == NULL && up != NULL &&
        up->other_file)
        bad = up->other_name;
    if (bad != NULL) {
        reply_unknown(ctx, "body", bad, def->body);
        return false;
    }
    return true;
}

static bool method_has_body(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
}

/* Routes and runs one request whose ctx has req, resp, app and request_id
 * set. The body is ctx->body when already parsed (router_call), else the
 * request's raw body is judged here. */
static void run(const router_t *r, http_ctx_t *ctx)
{
    const struct _u_request *req = ctx->req;
    const char *method = req->http_verb;
    path_view_t view;
    char allow[96];
    const compiled_route_t *route = NULL;
    bool path_ok = split_path(req->url_path, &view);
    if (path_ok)
        route = match(r, method, &view, allow, sizeof(allow));
    else
        allow[0] = '\0';
    /* A preflight asks whether the real request may be sent: answered for
     * any path that exists, before the body, authentication and limits. */
    if (route == NULL && allow[0] != '\0' && cors_is_preflight(ctx)) {
        cors_preflight(ctx, allow);
        return;
    }

    if (ctx->body == NULL && method_has_body(method) && req->binary_body_length > 0) {
        enum http_error err;
        char msg[256];
        bool upload = route && (route->def->flags & HTTP_ROUTE_UPLOAD);
        if (http_parse_json_body(http_header(ctx, "Content-Type"), req->binary_body,
                                 req->binary_body_length, upload, &ctx->body, &err, msg,
                                 sizeof(msg)) != 0) {
            http_reply_error(ctx, err, NULL, "%s", msg);
            return;
        }
    }

    if (route == NULL) {
        if (allow[0] != '\0') {
            http_set_header(ctx, "Allow", allow);
            http_reply_error(ctx, HTTP_ERR_METHOD_NOT_ALLOWED,
                             json_pack("{s:s}", "allow", allow),
                             "this endpoint does not take %s", method);
        } else {
            http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "there is no endpoint at this path");
        }
        return;
    }
    gate_note_route(route->metric);
    if (!capture_params(ctx, route, &view)) {
        http_reply_error(ctx, HTTP_ERR_BAD_REQUEST, NULL, "a path parameter is malformed");
        return;
    }

    principal_t caller;
    bool authenticated = (route->def->flags & (HTTP_ROUTE_USER | HTTP_ROUTE_ADMIN)) != 0;
    if (authenticated) {
        if (!authenticate_route(ctx, route->def->flags, &caller))
            return;
        ctx->principal = &caller;
        gate_note_user(caller.user.id);
    } else if (!rate_limit_admit(ctx, http_route_rate_category(route->def->flags), NULL)) {
        return;
    }
    if (inputs_declared(ctx, route->def))
        route->def->handler(ctx);
    if (authenticated) {
        ctx->principal = NULL;
        principal_clear(&caller);
    }
    if (ctx->status == 0) {
        log_error("request %s: the handler of %s %s did not answer", ctx->request_id,
                  route->def->method, route->def->pattern);
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "internal error");
    }
}

static void put_header(void *map, const char *name, const char *value)
{
    u_map_put(map, name, value);
}

int router_dispatch(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    const router_t *r = user_data;
    http_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.req = req;
    ctx.resp = resp;
    ctx.app = r->app;
    ctx.request_id = gate_request_id();
    if (ctx.request_id == NULL)
        ctx.request_id = "req_none";
    u_map_put(resp->map_header, "X-Request-Id", ctx.request_id);
    if (gate_draining())
        u_map_put(resp->map_header, "Connection", "close");
    cors_annotate(&ctx);
    http_tls_hsts_each(put_header, resp->map_header);
    run(r, &ctx);
    gate_note_status(ctx.status);
    gate_note_bytes_out(resp->stream_callback != NULL ? resp->stream_size
                                                      : resp->binary_body_length);
    json_decref(ctx.body);
    return U_CALLBACK_COMPLETE;
}

/* Fills map_url from a query string "a=1&b=x%20y" (percent- and
 * plus-decoded, as ulfius does for a request from the network). False when
 * a part cannot be decoded. */
static bool parse_query(struct _u_map *map, const char *query)
{
    char *copy = o_strdup(query), *save = NULL;
    bool ok = copy != NULL;
    for (char *part = ok ? strtok_r(copy, "&", &save) : NULL; part && ok;
         part = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(part, '=');
        if (eq)
            *eq = '\0';
        for (char *c = eq ? eq + 1 : part; eq && *c; c++)
            if (*c == '+')
                *c = ' ';
        char *name = ulfius_url_decode(part), *value = ulfius_url_decode(eq ? eq + 1 : "");
        ok = name && value && name[0] && u_map_put(map, name, value) == U_OK;
        o_free(name);
        o_free(value);
    }
    o_free(copy);
    return ok;
}

int router_call(router_t *r, const char *method, const char *path, json_t *body,
                const principal_t *preauth, const char *request_id, json_t **answer)
{
    struct _u_request req;
    struct _u_response resp;
    *answer = NULL;
    if (ulfius_init_request(&req) != U_OK)
        return 500;
    if (ulfius_init_response(&resp) != U_OK) {
        ulfius_clean_request(&req);
        return 500;
    }
    o_free(req.http_verb);
    req.http_verb = o_strdup(method);
    const char *query = strchr(path, '?');
    req.url_path = query ? o_strndup(path, (size_t)(query - path)) : o_strdup(path);
    req.http_url = o_strdup(path);
    if (query && !parse_query(req.map_url, query + 1)) {
        ulfius_clean_response(&resp);
        ulfius_clean_request(&req);
        return 400;
    }
    http_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.req = &req;
    ctx.resp = &resp;
    ctx.app = r->app;
    ctx.request_id = request_id;
    ctx.preauth = preauth;
    ctx.body = json_incref(body);
    run(r, &ctx);
    json_decref(ctx.body);
    if (resp.stream_callback_free != NULL && resp.stream_user_data != NULL) {
        /* A stream (HTTP_ROUTE_STREAM) has nobody to read it here. */
        resp.stream_callback_free(resp.stream_user_data);
        resp.stream_user_data = NULL;
        resp.stream_callback = NULL;
    }
    if (resp.binary_body_length > 0)
        *answer = json_loadb(resp.binary_body, resp.binary_body_length, 0, NULL);
    int status = ctx.status ? ctx.status : 500;
    ulfius_clean_response(&resp);
    ulfius_clean_request(&req);
    return status;
}
