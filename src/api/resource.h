/*
 * What the resource files of src/api/ share: answers that need the HTTP
 * context on top of the policy layer's decisions (resource.c), the route
 * tables (routes.c lists them all).
 */
#ifndef PARLEY_API_RESOURCE_H
#define PARLEY_API_RESOURCE_H

#include <pthread.h>
#include <sys/time.h>

#include "parley/access.h"
#include "parley/app.h"
#include "parley/chat.h"
#include "parley/http.h"

extern const http_route_t health_routes[];
extern const http_route_t openapi_routes[];
extern const http_route_t auth_routes[];
extern const http_route_t users_routes[];
extern const http_route_t mfa_routes[];
extern const http_route_t channels_routes[];
extern const http_route_t messages_routes[];
extern const http_route_t search_routes[];
extern const http_route_t files_routes[];
extern const http_route_t batch_routes[];
extern const http_route_t web_routes[];
extern const http_route_t realtime_routes[];
extern const http_route_t admin_users_routes[];
extern const http_route_t admin_audit_routes[];

/*
 * Writes an audit entry for this request (h_admin_audit.c): the caller
 * (ctx->principal; audit_write_as names another account, or NULL for
 * none), the client's address, `action`, `target` (may be NULL) and
 * `details` (a JSON object, stolen; NULL or empty for none). Returns the LSN
 * to wait for before answering: the later of `after` (the change's record,
 * 0 when none) and the entry's; `after` when the entry could not be written
 * (logged; the log then refuses the change's wait too).
 */
uint64_t audit_write(http_ctx_t *ctx, uint64_t after, const char *action, const char *target,
                     json_t *details);
uint64_t audit_write_as(http_ctx_t *ctx, const char *actor_id, uint64_t after,
                        const char *action, const char *target, json_t *details);
extern const http_route_t reports_routes[];
extern const http_route_t admin_settings_routes[];
extern const http_route_t invites_routes[];
extern const http_route_t admin_ip_blocks_routes[];
extern const http_route_t admin_stats_routes[];
extern const http_route_t metrics_routes[];
extern const http_route_t admin_backup_routes[];
extern const http_route_t not_offered_routes[];

/* ---- the process's figures (h_admin_stats.c), for the system status and
 * GET /metrics ---- */
/* Resident memory (/proc/self/statm), bytes; 0 when unreadable. */
int64_t process_rss_bytes(void);
/* Open file descriptors (/proc/self/fd); 0 when unreadable. */
int64_t process_open_fds(void);
/* Whole seconds since start-up (app->started_mono_ns). */
int64_t process_uptime_seconds(const parley_app_t *app);
/* A struct timeval (getrusage's) in seconds. */
double timeval_seconds(struct timeval tv);

/* The log's state as {"state", "error" and "since" (both null when ok)},
 * for /api/health and the system status (h_health.c). New reference. */
json_t *log_state_json(const store_log_state_t *ls);

/*
 * Loads the channel and the caller's relation to it. Returns true when the
 * caller may read it (a->can_read); otherwise answers 404 (a channel one may
 * not read does not exist, for that caller) and returns false.
 * channel_access_clear() in both cases.
 */
bool channel_access_load(http_ctx_t *ctx, const principal_t *p, const char *channel_id,
                         channel_access_t *a);
/* The same for the routes an admin may use on a private channel or a direct
 * conversation it is not a member of (a->can_see: the channel's object,
 * deleting it); nothing of its content. */
bool channel_access_load_known(http_ctx_t *ctx, const principal_t *p, const char *channel_id,
                               channel_access_t *a);

/*
 * Loads message `id` and its channel's access for the caller. Returns true
 * when the caller may see the channel (*m: chat_message_clear it); else
 * answers 404 RESOURCE_NOT_FOUND "no such message", the very same answer
 * for a message that does not exist and one in a channel the caller may not
 * see (so the two cannot be told apart), and returns false. *a is to be
 * channel_access_clear'ed in both cases.
 */
bool message_access_load(http_ctx_t *ctx, const principal_t *p, const char *id,
                         chat_message_t *m, channel_access_t *a);

/* Answers 200 with {"messages": [views of list[0..n)], ...rest's members}
 * (rest consumed), from cached views where current (message_page_text);
 * with ?fields=, each message pruned (fields_prune, which may answer 422). */
void http_reply_message_page(http_ctx_t *ctx, const chat_message_t *list, size_t n,
                             json_t *rest);

/* Answers 200 with {key: items, total, page, pages} (items stolen), the
 * shape of every paged list. */
void reply_page(http_ctx_t *ctx, const char *key, json_t *items, size_t total, long page,
                long limit);

/* ---- sparse fieldsets: ?fields=a,b (Fechatter's "Advanced Features") ---- */

/* The objects ?fields= applies to; each has its list of known keys
 * (resource.c: every key any view of that object may carry). */
typedef enum fields_kind { FIELDS_USER, FIELDS_CHANNEL, FIELDS_MESSAGE, FIELDS_FILE } fields_kind_t;

/*
 * Reads ?fields= (comma-separated keys of a `kind` object) and prunes v to
 * them: v an object, or an array whose object elements are each pruned; v
 * NULL only validates. "id" is always kept; absent ?fields= keeps all.
 * Returns true, or false after answering 422 VALIDATION_ERROR (details:
 * field "fields", `unknown`: the name, `allowed`: the known keys) for an
 * empty or unknown name, leaving v untouched (the caller still owns it).
 */
bool fields_prune(http_ctx_t *ctx, fields_kind_t kind, json_t *v);

/* http_reply_json(ctx, status, v) after fields_prune (v stolen). */
void reply_fields(http_ctx_t *ctx, int status, fields_kind_t kind, json_t *v);

/* ---- list order: ?sort=&order= ---- */

/* A list's sort keys: names[i] (NULL-terminated; names[0] is the default)
 * and whether each sorts descending when ?order= is absent. */
typedef struct sort_keys {
    const char *const *names;
    const bool *desc_default;
} sort_keys_t;

/*
 * Reads ?sort= (one of keys->names) into *sort (its index) and ?order=
 * ("asc" or "desc") into *desc. Returns true, or false after answering 422
 * VALIDATION_ERROR naming the parameter (details.allowed: the values).
 */
bool sort_read(http_ctx_t *ctx, const sort_keys_t *keys, int *sort, bool *desc);

/* ---- moderation (h_admin_users.c), for the admin resources ---- */

typedef struct admin_moderation {
    enum { ADMIN_BAN, ADMIN_MUTE } what;
    const char *reason; /* NULL or "" for none; points into the request body */
    int64_t until;      /* ms it ends by itself; 0 = until lifted */
} admin_moderation_t;

/* Reads the body's {reason?, until?} (reason at most 500 characters, until
 * an RFC 3339 time in the future) into m->reason and m->until: true, or
 * false after answering 422 naming the field. */
bool admin_moderation_read(http_ctx_t *ctx, admin_moderation_t *m);

/* Bans or mutes account user_id for the calling admin, durably (a ban or
 * mute again replaces the reason and the end): true once the record is
 * durable, nothing answered, *out (may be NULL; caller clears) the new
 * state; false after answering 404 (no such user), 403 (the caller's own
 * account), 409 (a deleted account) or a store failure. */
bool admin_moderate(http_ctx_t *ctx, const char *user_id, const admin_moderation_t *m,
                    store_user_t *out);

/* ---- messages (h_messages.c) ---- */

/* Deletes message m (a copy from the store) on behalf of user `by`, the one
 * path of every deletion: the record (durable), the files attached to it,
 * the message.deleted event. True when done, nothing answered; *already
 * true when it was deleted before (nothing written). False after answering
 * a store failure. */
bool message_delete(http_ctx_t *ctx, const chat_message_t *m, const char *by, bool *already);
/* Deletes the files a deleted message owns (its author's uploads that name
 * it; never an avatar, the file the author's avatar_url names, or a file a
 * moderator shared), and with them their blobs when no other file record
 * refers to them: what a message's deletion does, by its author, a
 * moderator or the retention sweep.
 * 0 or the first STORE_E_* met. No lock held. */
int delete_message_files(parley_app_t *app, const chat_message_t *m);

/* A field a seed document sends whose one value is what Parley always does
 * (mfa "method": "totp", a message's "content_type": "text"): true when it
 * is absent, null or `value`; otherwise false after answering 422 naming
 * it, so another value is never taken and ignored. */
bool field_only_value(http_ctx_t *ctx, const char *name, const char *value);

/* Answers the error for a store failure (conflicts, unavailable...). */
void reply_store_error(http_ctx_t *ctx, int rc);

/* ---- read receipts (receipts.c; docs/realtime.md, "Receipts") ---- */

#define RECEIPTS_READ_MAX 100    /* messages one read-marker move announces */
#define RECEIPTS_READ_BY_MAX 100 /* readers listed in a message's read_by */

typedef struct receipts_mark {
    char message_id[STORE_ID_MAX];
    char user_id[STORE_ID_MAX];
} receipts_mark_t;

/* What a read-marker move needs to know of the channel before it. */
typedef struct receipts_move {
    pthread_mutex_t *lock;          /* the channel's stripe, held begin..end */
    char old_read[STORE_ID_MAX];    /* the reader's marker before the move */
    receipts_mark_t top[2];         /* the two furthest markers of the others */
} receipts_move_t;

/* Around a read-marker move of `reader` in a channel: begin takes the
 * channel's stripe lock and notes the markers, then the caller applies the
 * move (chat_membership_modify, no wait) and calls end; once it is durable,
 * publish sends each message's author the message_status "read" of the
 * messages this move is the first to pass (at most RECEIPTS_READ_MAX, the
 * newest). */
void receipts_read_begin(store_t *s, const char *channel_id, const char *reader,
                         receipts_move_t *mv);
void receipts_read_end(receipts_move_t *mv);
void receipts_read_publish(parley_app_t *app, const char *channel_id, const char *reader,
                           const receipts_move_t *mv, const char *new_read);

/* Adds read_count (members other than the author whose read marker is at or
 * past m) and read_by ([{user_id}], at most RECEIPTS_READ_BY_MAX) to view:
 * the author's view of its message. O(members of the channel). */
void receipts_add_read_state(store_t *s, const chat_message_t *m, json_t *view);

#endif
