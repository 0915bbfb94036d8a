/*
 * GET /, /docs, /redoc, /favicon.svg and /assets/{name}: the built-in web client and the
 * documentation pages, served from the files embedded at build time
 * (web_assets.h). Bundles are named by their content hash and cached for a
 * year; pages are revalidated every time (`no-cache` with an ETag, so a
 * reload after an upgrade gets the new bundles). The variant is chosen by
 * Accept-Encoding among those compressed at build time: nothing is
 * compressed per request. Pages carry their own Content-Security-Policy: the
 * API's default (`default-src 'none'`) would stop the client itself, so a
 * page may load its own scripts and styles and talk to its own origin, and
 * nothing else (no inline script, no eval, no other origin, no framing).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parley/http.h"
#include "resource.h"
#include "web_assets.h"

/* The pages' policy: everything from this origin only; images also from
 * blob: (previews of files being uploaded) and data: (QR codes). */
#define WEB_PAGE_CSP                                                                      \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " \
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "          \
    "form-action 'self'; frame-ancestors 'none'"

/* Redoc's policy: the same, but Redoc's styled-components put its styles in
 * <style> elements made at run time, which needs style-src 'unsafe-inline'
 * (a nonce cannot be given to a page embedded once for all answers); scripts
 * stay 'self' only (no inline script, no eval). /docs (Swagger UI) needs no
 * exception and has the client's policy. */
#define WEB_REDOC_CSP                                                                    \
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "            \
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "    \
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/* The policy of a page (an asset that is not immutable). */
static const char *web_page_csp(const web_asset_t *asset)
{
    if (strcmp(asset->url, "/redoc") == 0)
        return WEB_REDOC_CSP;
    return WEB_PAGE_CSP;
}

static int compare_url(const void *key, const void *member)
{
    return strcmp((const char *)key, ((const web_asset_t *)member)->url);
}

static const web_asset_t *web_find(const char *url)
{
    return bsearch(url, web_assets, web_assets_count, sizeof(web_assets[0]), compare_url);
}

/* Whether Accept-Encoding lists `coding` with a non-zero weight. */
static bool web_accepts(const char *accept, const char *coding)
{
    if (accept == NULL)
        return false;
    size_t n = strlen(coding);
    for (const char *p = accept; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *token = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        bool match = (size_t)(p - token) == n && strncasecmp(token, coding, n) == 0;
        double q = 1.0;
        while (*p && *p != ',') {
            if (*p == ';') {
                p++;
                while (*p == ' ' || *p == '\t')
                    p++;
                if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=')
                    q = strtod(p + 2, NULL);
                continue;
            }
            p++;
        }
        if (match)
            return q > 0.0;
    }
    return false;
}

/* Whether If-None-Match names `etag` (or is `*`). */
static bool web_not_modified(const char *if_none_match, const char *etag)
{
    if (if_none_match == NULL)
        return false;
    if (strcmp(if_none_match, "*") == 0)
        return true;
    size_t n = strlen(etag);
    for (const char *p = if_none_match; (p = strstr(p, etag)) != NULL; p += n) {
        bool starts = p == if_none_match || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/';
        bool ends = p[n] == '\0' || p[n] == ',' || p[n] == ' ';
        if (starts && ends)
            return true;
    }
    return false;
}

static void web_serve(http_ctx_t *ctx, const web_asset_t *asset)
{
    if (asset == NULL) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such file");
        return;
    }
    http_set_header(ctx, "ETag", asset->etag);
    http_set_header(ctx, "Vary", "Accept-Encoding");
    http_set_header(ctx, "Cache-Control",
                    asset->immutable ? "public, max-age=31536000, immutable" : "no-cache");
    if (!asset->immutable)
        http_set_header(ctx, "Content-Security-Policy", web_page_csp(asset));
    if (web_not_modified(http_header(ctx, "If-None-Match"), asset->etag)) {
        http_reply_empty(ctx, 304);
        return;
    }
    const char *accept = http_header(ctx, "Accept-Encoding");
    const web_bytes_t *bytes = &asset->identity;
    if (asset->brotli.start && web_accepts(accept, "br")) {
        bytes = &asset->brotli;
        http_set_header(ctx, "Content-Encoding", "br");
    } else if (asset->gzip.start && web_accepts(accept, "gzip")) {
        bytes = &asset->gzip;
        http_set_header(ctx, "Content-Encoding", "gzip");
    }
    http_reply_bytes(ctx, 200, asset->content_type, bytes->start,
                     (size_t)(bytes->end - bytes->start));
}

static void get_client(http_ctx_t *ctx)
{
    web_serve(ctx, web_find("/"));
}

static void get_docs(http_ctx_t *ctx)
{
    web_serve(ctx, web_find("/docs"));
}

static void get_redoc(http_ctx_t *ctx)
{
    web_serve(ctx, web_find("/redoc"));
}

static void get_favicon(http_ctx_t *ctx)
{
    web_serve(ctx, web_find("/favicon.svg"));
}

/* GET /register?invite=<code>: the link an invite carries (h_invites.c)
 * leads to the client's registration page with the code filled in. The
 * client routes by the URL's fragment, so this is a redirect to
 * /#/register?invite=<code>; a code is letters, digits, '-' and '_' (what
 * the server makes, and all that may go into the Location header). */
static void get_register(http_ctx_t *ctx)
{
    const char *code = http_query(ctx, "invite");
    char location[128] = "/#/register";
    if (code != NULL) {
        size_t n = strlen(code);
        bool ok = n > 0 && n <= 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)code[i]) || code[i] == '-' || code[i] == '_';
        if (!ok) {
            http_reply_invalid(ctx, "invite", "an invite code is 1-64 letters, digits, - or _");
            return;
        }
        snprintf(location, sizeof(location), "/#/register?invite=%s", code);
    }
    http_set_header(ctx, "Location", location);
    http_set_header(ctx, "Cache-Control", "no-store");
    http_reply_empty(ctx, 302);
}

static void get_asset(http_ctx_t *ctx)
{
    const char *name = ctx->n_params ? ctx->params[0] : NULL;
    char url[256];
    if (name == NULL || strchr(name, '/') != NULL ||
        (size_t)snprintf(url, sizeof(url), "/assets/%s", name) >= sizeof(url)) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such file");
        return;
    }
    web_serve(ctx, web_find(url));
}

const http_route_t web_routes[] = {
    {"GET", "/", get_client, HTTP_ROUTE_PUBLIC, "", ""},
    {"GET", "/docs", get_docs, HTTP_ROUTE_PUBLIC, "", ""},
    {"GET", "/redoc", get_redoc, HTTP_ROUTE_PUBLIC, "", ""},
    {"GET", "/favicon.svg", get_favicon, HTTP_ROUTE_PUBLIC, "", ""},
    {"GET", "/register", get_register, HTTP_ROUTE_PUBLIC, "invite", ""},
    {"GET", "/assets/:name", get_asset, HTTP_ROUTE_PUBLIC, "", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
