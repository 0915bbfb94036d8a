/*
 * /api/v1/admin/blocked-ips: blocked client addresses (docs/admin.md,
 * "Blocked addresses and proxies"): the list, a new block of one address or
 * a CIDR range (IPv4 or IPv6) with an optional reason and expiry, and its
 * removal by network or by id.
 *
 * The block itself is enforced by the connection gate (src/http/gate.c),
 * which matches every request's client address against the store's set
 * before anything else; this file only changes the set, through the log
 * (include/parley/ip_blocks.h), durable before the answer.
 *
 * Choices an operator meets here:
 *   - a network written with host bits set (10.1.2.3/8) is refused (422,
 *     details.suggestion names the network, 10.0.0.0/8): it is a typo as
 *     often as not, and guessing could block a thousand times more than
 *     meant; a single address may be written with /32 or /128;
 *   - a block that would match the caller's own address is refused (409,
 *     details.client_ip): the operator would lock themselves out on the next
 *     request, and would have to stop the server to get back in;
 *   - a second block of the same network while the first holds is 409 (with
 *     details.id); one whose first block has expired replaces it.
 */
#include <stdlib.h>
#include <string.h>

#include "parley/app.h"
#include "parley/clock.h"
#include "parley/http.h"
#include "parley/ip_blocks.h"
#include "parley/ipnet.h"
#include "parley/store.h"
#include "parley/xalloc.h"
#include "resource.h"

#define REASON_MAX 500 /* code points; IP_BLOCK_REASON_MAX bytes at most */

static json_t *block_json(const store_ip_block_t *b, int64_t now_ms)
{
    ipnet_t net;
    ipnet_parse(b->ip, true, &net); /* canonical: the store checked it */
    return json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:o, s:o, s:b}", "id", b->id, "ip", b->ip,
                     "family", net.family == IPNET_V4 ? "ipv4" : "ipv6", "prefix_length",
                     (int)net.prefix, "reason",
                     b->reason ? json_string(b->reason) : json_null(), "created_by",
                     b->created_by[0] ? json_string(b->created_by) : json_null(), "created_at",
                     time_json(b->created_at), "expires_at", time_json(b->expires_at),
                     "is_active", store_ip_block_active(b, now_ms));
}

/* After a change that returned rc (and lsn): waits until it is durable.
 * True then; false after answering the failure. */
static bool durable(http_ctx_t *ctx, int rc, uint64_t lsn)
{
    parley_app_t *app = ctx->app;
    if (rc == 0)
        rc = store_wait(app->store, lsn);
    if (rc != 0)
        reply_store_error(ctx, rc);
    return rc == 0;
}

/* ---- GET /admin/blocked-ips ------------------------------------------------ */

static void get_blocks(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    long page, limit;
    const char *status = http_query(ctx, "status");
    bool active_only = false;
    if (status && strcmp(status, "active") == 0) {
        active_only = true;
    } else if (status && strcmp(status, "all") != 0) {
        http_reply_invalid(ctx, "status", "status must be one of active, all");
        return;
    }
    if (!http_paging(ctx, &page, &limit))
        return;
    int64_t now = clock_wall_ms();
    store_ip_block_t *out = xcalloc((size_t)limit, sizeof(*out));
    size_t n;
    size_t total = store_ip_block_list(app->store, active_only, now,
                                       (size_t)(page - 1) * (size_t)limit, (size_t)limit, out, &n);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(list, block_json(&out[i], now));
        store_ip_block_clear(&out[i]);
    }
    free(out);
    reply_page(ctx, "blocked_ips", list, total, page, limit);
}

/* ---- POST /admin/blocked-ips ----------------------------------------------- */

/* Parses an ip of a request (body field or path) into *net, strictly;
 * answers 422 naming `field` and returns false when it is no address or
 * network. */
static bool parse_ip(http_ctx_t *ctx, const char *field, const char *text, ipnet_t *net)
{
    int rc = ipnet_parse(text, true, net);
    if (rc == 0)
        return true;
    if (rc == IPNET_E_HOST_BITS) {
        ipnet_t masked;
        char suggestion[IPNET_TEXT_MAX];
        ipnet_parse(text, false, &masked);
        ipnet_format(&masked, suggestion);
        http_reply_error(ctx, HTTP_ERR_VALIDATION,
                         json_pack("{s:s, s:s}", "field", field, "suggestion", suggestion),
                         "%s has bits set past its prefix length; the network is %s", text,
                         suggestion);
    } else if (rc == IPNET_E_PREFIX) {
        http_reply_invalid(ctx, field,
                           "the prefix length must be 0-32 for IPv4 and 0-128 for IPv6");
    } else {
        http_reply_invalid(ctx, field,
                           "%s must be an IPv4 or IPv6 address or a CIDR range "
                           "(\"192.0.2.7\", \"10.0.0.0/8\", \"2001:db8::/32\")",
                           field);
    }
    return false;
}

static void post_block(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const char *ip = NULL, *reason = NULL, *expires = NULL;
    if (http_field_string(ctx, "ip", true, 1, IPNET_TEXT_MAX - 1, false, &ip) != 0 ||
        http_field_string(ctx, "reason", false, 0, REASON_MAX, true, &reason) != 0 ||
        http_field_string(ctx, "expires_at", false, 1, 64, false, &expires) != 0)
        return;
    ipnet_t net;
    if (!parse_ip(ctx, "ip", ip, &net))
        return;
    int64_t now = clock_wall_ms();
    store_ip_block_t b = {.created_at = now};
    if (expires) {
        if (!http_parse_time(expires, &b.expires_at)) {
            http_reply_invalid(ctx, "expires_at", "expires_at must be an RFC 3339 time");
            return;
        }
        if (b.expires_at <= now) {
            http_reply_invalid(ctx, "expires_at", "expires_at must be in the future");
            return;
        }
    }
    ipnet_t me;
    const char *my_ip = http_client_ip(ctx);
    if (ipnet_parse(my_ip, true, &me) == 0 && ipnet_contains(&net, &me)) {
        http_reply_error(ctx, HTTP_ERR_CONFLICT,
                         json_pack("{s:s, s:s}", "field", "ip", "client_ip", my_ip),
                         "this block would match your own address (%s): you would be locked "
                         "out",
                         my_ip);
        return;
    }
    ipnet_format(&net, b.ip);
    store_new_id("ipb", b.id);
    snprintf(b.created_by, sizeof(b.created_by), "%s", ctx->principal->user.id);
    b.reason = reason && reason[0] ? (char *)reason : NULL; /* borrowed: not cleared */
    uint64_t lsn;
    int rc = store_ip_block_create(app->store, &b, now, &lsn);
    if (rc == STORE_E_CONFLICT_IP_BLOCK) {
        store_ip_block_t old;
        bool found = store_ip_block_find(app->store, b.ip, &old);
        http_reply_error(ctx, HTTP_ERR_CONFLICT,
                         json_pack("{s:s, s:s}", "field", "ip", "id", found ? old.id : ""),
                         "%s is already blocked", b.ip);
        if (found)
            store_ip_block_clear(&old);
        return;
    }
    if (rc == 0)
        lsn = audit_write(ctx, lsn, "ip.block", b.ip,
                          json_pack("{s:s, s:o, s:o}", "id", b.id, "reason",
                                    b.reason ? json_string(b.reason) : json_null(), "expires_at",
                                    time_json(b.expires_at)));
    if (durable(ctx, rc, lsn))
        http_reply_json(ctx, 201, block_json(&b, now));
}

/* ---- DELETE /admin/blocked-ips/{ip or id} --------------------------------- */

/* The block named by the path: an id ("ipb_..."), an address, or a network
 * whose '/' came as %2F or as a second segment (prefix, may be NULL). */
static void delete_block_named(http_ctx_t *ctx, const char *name, const char *prefix)
{
    parley_app_t *app = ctx->app;
    const char *id = NULL;
    char ip[IPNET_TEXT_MAX];
    if (prefix == NULL && strncmp(name, "ipb_", 4) == 0) {
        id = name;
    } else {
        char text[2 * IPNET_TEXT_MAX];
        snprintf(text, sizeof(text), "%s%s%s", name, prefix ? "/" : "", prefix ? prefix : "");
        ipnet_t net;
        if (!parse_ip(ctx, "ip", text, &net))
            return;
        ipnet_format(&net, ip);
    }
    uint64_t lsn;
    store_ip_block_t was;
    int rc = store_ip_block_delete(app->store, id, id ? NULL : ip, &was, &lsn);
    if (rc == STORE_E_NOT_FOUND) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such block");
        return;
    }
    if (rc == 0) {
        lsn = audit_write(ctx, lsn, "ip.unblock", was.ip, json_pack("{s:s}", "id", was.id));
        store_ip_block_clear(&was);
    }
    if (durable(ctx, rc, lsn))
        http_reply_empty(ctx, 204);
}

static void delete_block(http_ctx_t *ctx)
{
    delete_block_named(ctx, ctx->params[0], NULL);
}

static void delete_block_cidr(http_ctx_t *ctx)
{
    delete_block_named(ctx, ctx->params[0], ctx->params[1]);
}

const http_route_t admin_ip_blocks_routes[] = {
    {"GET", "/api/v1/admin/blocked-ips", get_blocks, HTTP_ADMIN_READ, "status,page,limit", ""},
    {"POST", "/api/v1/admin/blocked-ips", post_block, HTTP_ADMIN_WRITE,
     "", "ip,reason,expires_at"},
    {"DELETE", "/api/v1/admin/blocked-ips/:ip", delete_block, HTTP_ADMIN_WRITE, "", ""},
    {"DELETE", "/api/v1/admin/blocked-ips/:ip/:prefix", delete_block_cidr, HTTP_ADMIN_WRITE,
     "", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
