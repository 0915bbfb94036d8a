/*
 * Reports of messages (docs/admin.md, "Reports"): any reader files one with
 * POST /api/v1/messages/{id}/report {reason}; the administrators list them
 * (GET /api/v1/admin/reports?status=) and close each once
 * (POST /api/v1/admin/reports/{id}/resolve {action, until?, reason?}).
 *
 * A report copies the message's content (capped, cut on a character
 * boundary) and its author at filing time, so a deletion keeps the
 * evidence. One report per reader and message (409 the second time); at
 * most STORE_REPORT_OPEN_MAX open reports per reader (409 past it): the
 * store decides both with the insert.
 *
 * Resolving runs the action through the code every other path uses: the
 * message's deletion (message_delete of h_messages.c: record, attachments,
 * event), the ban or mute of the author (admin_moderate of
 * h_admin_users.c, with its refusals), then closes the report. The action
 * comes first and is idempotent (a ban again, a deletion of a deleted
 * message), so two admins resolving one report at once both do no harm and
 * the store lets one of them close it; the other gets 409.
 */
#include <stdlib.h>
#include <string.h>

#include "parley/access.h"
#include "parley/app.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/http.h"
#include "parley/reports.h"
#include "parley/store.h"
#include "parley/xalloc.h"
#include "resource.h"

#define REPORT_REASON_CHARS 1000 /* STORE_REPORT_REASON_MAX bytes at most */

static json_t *report_json(const store_report_t *r)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:{s:s, s:o, s:b, s:o, s:{s:s, s:o}}}",
        "id", r->id, "message_id", r->message_id, "channel_id", r->channel_id, "reporter_id",
        r->reporter_id, "reason", r->reason, "status", store_report_status_name(r->status),
        "created_at", time_json(r->created_at), "resolved_at", time_json(r->resolved_at),
        "resolved_by", r->resolved_by[0] ? json_string(r->resolved_by) : json_null(), "action",
        r->action ? json_string(store_report_action_name(r->action)) : json_null(), "message",
        "id", r->message_id, "content", r->content ? json_string(r->content) : json_null(),
        "content_truncated", r->content_truncated, "created_at",
        time_json(r->message_created_at), "author", "id", r->author_id, "username",
        r->author_username[0] ? json_string(r->author_username) : json_null());
    return o ? o : json_object();
}

/* A copy of at most max bytes of text, cut before a partial character. */
static char *capped_copy(const char *text, size_t max, bool *cut)
{
    size_t n = strlen(text);
    *cut = n > max;
    if (*cut) {
        n = max;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--; /* text[n] continues a character: cut before its start */
    }
    return xstrndup(text, n);
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\n' && *s != '\r' && *s != '\t')
            return false;
    return true;
}

/* ---- POST /messages/{id}/report ------------------------------------------ */

static void post_report(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    chat_message_t m;
    channel_access_t a;
    if (!message_access_load(ctx, p, ctx->params[0], &m, &a)) {
        channel_access_clear(&a);
        return;
    }
    const char *reason = NULL;
    if (m.is_deleted) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "the message was deleted");
        goto out;
    }
    if (http_field_string(ctx, "reason", true, 1, REPORT_REASON_CHARS, true, &reason) != 0)
        goto out;
    if (blank(reason)) {
        http_reply_invalid(ctx, "reason", "reason must say something");
        goto out;
    }
    store_report_t r = {.created_at = clock_wall_ms(), .message_created_at = m.created_at};
    store_new_id("rep", r.id);
    memcpy(r.message_id, m.id, sizeof(r.message_id));
    memcpy(r.channel_id, m.channel_id, sizeof(r.channel_id));
    memcpy(r.reporter_id, p->user.id, sizeof(r.reporter_id));
    memcpy(r.author_id, m.user_id, sizeof(r.author_id));
    store_user_t author;
    if (store_user_get(app->store, m.user_id, &author)) {
        memcpy(r.author_username, author.username, sizeof(r.author_username));
        store_user_clear(&author);
    }
    r.content = m.content ? capped_copy(m.content, STORE_REPORT_CONTENT_MAX, &r.content_truncated)
                          : NULL;
    r.reason = xstrdup(reason);
    uint64_t lsn;
    int rc = store_report_create(app->store, &r, &lsn);
    if (rc == STORE_E_REPORT_DUPLICATE)
        http_reply_error(ctx, HTTP_ERR_CONFLICT, NULL, "you have reported this message already");
    else if (rc == STORE_E_REPORT_LIMIT)
        http_reply_error(ctx, HTTP_ERR_CONFLICT,
                         json_pack("{s:i}", "open_reports_max", STORE_REPORT_OPEN_MAX),
                         "you have %d reports waiting for an administrator already",
                         STORE_REPORT_OPEN_MAX);
    else if (rc == 0 && (rc = store_wait(app->store, lsn)) == 0)
        http_reply_json(ctx, 201, report_json(&r));
    else
        reply_store_error(ctx, rc);
    store_report_clear(&r);
out:
    channel_access_clear(&a);
    chat_message_clear(&m);
}

/* ---- GET /admin/reports ---------------------------------------------------- */

static void get_reports(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const char *name = http_query(ctx, "status");
    int status = name ? store_report_status_of(name) : -1;
    if (name && status < 0) {
        http_reply_invalid(ctx, "status", "status must be one of open, resolved, dismissed");
        return;
    }
    long page, limit;
    if (!http_paging(ctx, &page, &limit))
        return;
    store_report_t *list = xcalloc((size_t)limit, sizeof(*list));
    size_t n;
    size_t total = store_report_list(app->store, status, (size_t)(page - 1) * (size_t)limit,
                                     (size_t)limit, list, &n);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(items, report_json(&list[i]));
        store_report_clear(&list[i]);
    }
    free(list);
    reply_page(ctx, "reports", items, total, page, limit);
}

/* ---- POST /admin/reports/{id}/resolve ------------------------------------ */

/* Runs the action on the report's message or author: true when done,
 * false after answering a refusal. */
static bool take_action(http_ctx_t *ctx, const store_report_t *r, int action,
                        admin_moderation_t *m)
{
    parley_app_t *app = ctx->app;
    switch (action) {
    case STORE_REPORT_DELETE_MESSAGE: {
        chat_message_t msg;
        bool already = true, ok = true;
        if (chat_message_get(app->store, r->message_id, &msg)) {
            ok = message_delete(ctx, &msg, ctx->principal->user.id, &already);
            chat_message_clear(&msg);
        }
        return ok; /* already deleted: the goal holds */
    }
    case STORE_REPORT_BAN_AUTHOR:
    case STORE_REPORT_MUTE_AUTHOR:
        m->what = action == STORE_REPORT_BAN_AUTHOR ? ADMIN_BAN : ADMIN_MUTE;
        return admin_moderate(ctx, r->author_id, m, NULL);
    default:
        return true; /* dismiss: nothing to do */
    }
}

static void post_resolve(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    store_report_t r;
    if (!store_report_get(app->store, ctx->params[0], &r)) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such report");
        return;
    }
    const char *name = NULL;
    admin_moderation_t m = {0};
    int action = -1;
    if (r.status != STORE_REPORT_OPEN) {
        http_reply_error(ctx, HTTP_ERR_CONFLICT,
                         json_pack("{s:s}", "status", store_report_status_name(r.status)),
                         "the report is %s already", store_report_status_name(r.status));
        goto out;
    }
    if (http_field_string(ctx, "action", true, 1, 32, false, &name) != 0)
        goto out;
    if ((action = store_report_action_of(name)) < 0) {
        http_reply_error(ctx, HTTP_ERR_VALIDATION, json_pack("{s:s}", "field", "action"),
                         "action must be one of dismiss, delete_message, ban_author, "
                         "mute_author");
        goto out;
    }
    if (!admin_moderation_read(ctx, &m) || !take_action(ctx, &r, action, &m))
        goto out;
    int status = action == STORE_REPORT_DISMISS ? STORE_REPORT_DISMISSED : STORE_REPORT_RESOLVED;
    store_report_t now;
    uint64_t lsn;
    int rc = store_report_close(app->store, r.id, status, action, ctx->principal->user.id,
                                clock_wall_ms(), &now, &lsn);
    if (rc == 0)
        lsn = audit_write(ctx, lsn, "report.resolve", r.id,
                          json_pack("{s:s, s:s, s:s}", "action", name, "message_id",
                                    r.message_id, "author_id", r.author_id));
    if (rc == STORE_E_REPORT_CLOSED) {
        http_reply_error(ctx, HTTP_ERR_CONFLICT, NULL, "the report was closed meanwhile");
    } else if (rc != 0) {
        reply_store_error(ctx, rc);
    } else {
        rc = store_wait(app->store, lsn);
        if (rc == 0)
            http_reply_json(ctx, 200, report_json(&now));
        else
            reply_store_error(ctx, rc);
        store_report_clear(&now);
    }
out:
    store_report_clear(&r);
}

const http_route_t reports_routes[] = {
    {"POST", "/api/v1/messages/:id/report", post_report, HTTP_USER_WRITE | HTTP_RATE_MESSAGES,
     "", "reason"},
    {"GET", "/api/v1/admin/reports", get_reports, HTTP_ADMIN_READ, "status,page,limit", ""},
    {"POST", "/api/v1/admin/reports/:id/resolve", post_resolve, HTTP_ADMIN_WRITE,
     "", "action,reason,until"},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
