/*
 * The audit log over HTTP: audit_write(), which every resource calls when an
 * admin acts or a security event happens, and GET /api/v1/admin/audit-log
 * (docs/admin.md, "Audit log").
 *
 * An entry is a record of the write-ahead log like every change
 * (include/parley/audit.h). audit_write() appends it after the change it
 * tells of and returns the later of the two records' LSNs: the handler
 * waits for that one before it answers, and since the log is made durable
 * in order, an answered change always has its entry. (A crash between the
 * two appends can leave a change without its entry, never the reverse; the
 * client got no answer for it.)
 *
 * The entry names the caller (the principal, or the account a login was
 * for), the client's address as http_client_ip() sees it, an action name
 * ("user.ban", "auth.login_failed": docs/admin.md lists them all), its
 * target (an id, an address, a name) and details (a small JSON object).
 */
#include <stdlib.h>
#include <string.h>

#include "parley/access.h"
#include "parley/app.h"
#include "parley/audit.h"
#include "parley/clock.h"
#include "parley/http.h"
#include "parley/log.h"
#include "parley/store.h"
#include "parley/xalloc.h"
#include "resource.h"

#define FILTER_MAX 128 /* bytes of actor, action and target filters */

uint64_t audit_write_as(http_ctx_t *ctx, const char *actor_id, uint64_t after,
                        const char *action, const char *target, json_t *details)
{
    parley_app_t *app = ctx->app;
    store_audit_t a;
    memset(&a, 0, sizeof(a));
    snprintf(a.action, sizeof(a.action), "%s", action);
    if (actor_id)
        snprintf(a.actor_id, sizeof(a.actor_id), "%s", actor_id);
    if (target) /* a name typed by a client may be long: the start says enough */
        snprintf(a.target, sizeof(a.target), "%s", target);
    const char *ip = http_client_ip(ctx);
    if (ip)
        snprintf(a.ip, sizeof(a.ip), "%s", ip);
    if (details && json_object_size(details) > 0)
        a.details = json_dumps(details, JSON_COMPACT);
    json_decref(details);
    uint64_t lsn = 0;
    int rc = store_audit_append(app->store, &a, &lsn);
    store_audit_clear(&a);
    if (rc != 0) {
        log_error("audit: %s on %s not recorded (%d)", action, target ? target : "-", rc);
        return after;
    }
    return lsn > after ? lsn : after;
}

uint64_t audit_write(http_ctx_t *ctx, uint64_t after, const char *action, const char *target,
                     json_t *details)
{
    const principal_t *p = ctx->principal;
    return audit_write_as(ctx, p ? p->user.id : NULL, after, action, target, details);
}

/* ---- GET /admin/audit-log ------------------------------------------------ */

static json_t *entry_json(store_t *store, const store_audit_t *a)
{
    json_t *actor = json_null();
    if (a->actor_id[0]) {
        store_user_t u;
        if (store_user_get(store, a->actor_id, &u)) {
            /* A deleted account's username may be someone else's now. */
            actor = json_pack("{s:s, s:o}", "id", u.id, "username",
                              u.deleted_at ? json_null() : json_string(u.username));
            store_user_clear(&u);
        } else {
            actor = json_pack("{s:s, s:n}", "id", a->actor_id, "username");
        }
    }
    json_t *details = a->details ? json_loads(a->details, 0, NULL) : NULL;
    return json_pack("{s:s, s:o, s:o, s:s, s:o, s:o, s:o}", "id", a->id, "timestamp",
                     time_json(a->at), "actor", actor, "action", a->action, "target",
                     a->target[0] ? json_string(a->target) : json_null(), "ip",
                     a->ip[0] ? json_string(a->ip) : json_null(), "details",
                     details ? details : json_object());
}

/* The query parameter `name` (NULL when absent) when at most FILTER_MAX
 * bytes; false after answering 422. */
static bool filter_param(http_ctx_t *ctx, const char *name, const char **out)
{
    *out = http_query(ctx, name);
    if (*out && (strlen(*out) == 0 || strlen(*out) > FILTER_MAX)) {
        http_reply_invalid(ctx, name, "%s must be 1-%d characters", name, FILTER_MAX);
        return false;
    }
    return true;
}

static bool time_param(http_ctx_t *ctx, const char *name, int64_t *out)
{
    const char *v = http_query(ctx, name);
    *out = 0;
    if (v && !http_parse_time(v, out)) {
        http_reply_invalid(ctx, name, "%s must be an RFC 3339 time", name);
        return false;
    }
    return true;
}

static void get_audit_log(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    store_audit_query_t q = {0};
    const char *actor;
    long page, limit;
    if (!filter_param(ctx, "actor", &actor) || !filter_param(ctx, "action", &q.action) ||
        !filter_param(ctx, "target", &q.target) || !time_param(ctx, "from", &q.from) ||
        !time_param(ctx, "to", &q.to) || !http_paging(ctx, &page, &limit))
        return;
    if (q.from && q.to && q.to <= q.from) {
        http_reply_invalid(ctx, "to", "to must be after from");
        return;
    }
    /* An actor is a user id or a username (of an account that exists now). */
    store_user_t u;
    char actor_id[STORE_ID_MAX] = "";
    if (actor) {
        if (store_user_get(app->store, actor, &u) || store_user_find(app->store, actor, &u)) {
            snprintf(actor_id, sizeof(actor_id), "%s", u.id);
            store_user_clear(&u);
        } else {
            snprintf(actor_id, sizeof(actor_id), "%.*s", STORE_ID_MAX - 1, actor);
        }
        q.actor_id = actor_id;
    }
    q.offset = (size_t)(page - 1) * (size_t)limit;
    q.limit = (size_t)limit;
    store_audit_t *hits = xcalloc((size_t)limit, sizeof(*hits));
    size_t n;
    size_t total = store_audit_find(app->store, &q, hits, &n);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(list, entry_json(app->store, &hits[i]));
        store_audit_clear(&hits[i]);
    }
    free(hits);
    reply_page(ctx, "entries", list, total, page, limit);
}

const http_route_t admin_audit_routes[] = {
    {"GET", "/api/v1/admin/audit-log", get_audit_log, HTTP_ADMIN_READ,
     "actor,action,target,from,to,page,limit", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
