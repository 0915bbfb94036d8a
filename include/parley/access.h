/*
 * The policy layer (src/access/): who is calling, who may read or write
 * what, and the JSON views of users, channels, messages and files that HTTP
 * answers and real-time events both carry. It sits below the transport
 * (src/http/), the resources (src/api/) and real time (src/realtime/), and
 * answers nothing itself: each caller turns a refusal into its own answer.
 *
 *   principal.c      an access token or API key → the calling user
 *   channel_access.c what a user may do in a channel
 *   views.c          the API's JSON objects, and message pages from cached views
 *   view_cache.c     rendered message views (include/parley/view_cache.h)
 *   online.c         who holds a live real-time connection
 */
#ifndef PARLEY_ACCESS_H
#define PARLEY_ACCESS_H

#include <jansson.h>
#include <stdbool.h>

#include "parley/auth.h"
#include "parley/chat.h"
#include "parley/store.h"

struct parley_app;
struct store_file;
struct view_cache;

/* ---- who is calling (principal.c) -------------------------------------- */

typedef struct principal {
    store_user_t user;                  /* a copy; principal_clear frees it */
    char session_id[STORE_ID_MAX];      /* "" when called with an API key */
    char api_key_hash[AUTH_SHA256_HEX]; /* the key's SHA-256 (hex) with an API key */
    bool via_api_key;
    bool via_cookie;  /* a browser's session cookie (principal_from_session_cookie) */
    bool csrf_valid;  /* with via_cookie: the request carried the session's CSRF token */
    bool can_read;
    bool can_write;
    int64_t banned_until; /* after ACCESS_E_BANNED: when the ban ends (0: when lifted) */
} principal_t;

/* Why a caller is refused (http_error_of_access maps them to answers). */
#define ACCESS_E_EXPIRED (-1101) /* the access token has expired */
#define ACCESS_E_INVALID (-1102) /* bad or revoked token or key, ended session, gone user */
#define ACCESS_E_BANNED (-1103)  /* valid credentials of a banned account (403 ACCOUNT_BANNED) */

/* Whether the user's ban holds at now_ms: banned, and either until unbanned
 * or until a time still ahead (a timed ban ends by itself, with no write). */
bool principal_user_banned(const store_user_t *u, int64_t now_ms);

/* Whether the user's server-wide mute holds at now_ms (as a ban: until
 * unmuted, or until a time still ahead). A muted account may read and stay
 * connected but may not put content before others: the routes flagged
 * HTTP_ROUTE_CONTENT answer 403 ACCOUNT_MUTED, typing_start frames an
 * ACCOUNT_MUTED error (docs/admin.md, "Mutes"). */
bool principal_user_muted(const store_user_t *u, int64_t now_ms);

/*
 * Checks an access token or an API key without answering or counting
 * anything. Returns 0 with *p filled (principal_clear it), or
 * ACCESS_E_EXPIRED, ACCESS_E_INVALID (bad or revoked token, ended session,
 * deactivated user; any bad API key), ACCESS_E_BANNED (otherwise valid
 * credentials of a banned user) with *p cleared.
 */
int principal_from_token(struct parley_app *app, const char *token, principal_t *p);
int principal_from_api_key(struct parley_app *app, const char *key, principal_t *p);

/*
 * Checks a browser's session cookie (`value`: the parley_session cookie,
 * auth_session_cookie_issue) as principal_from_token checks a token: the
 * MAC, the session (live, unexpired), the user (active, not banned). `csrf`
 * is the request's X-CSRF-Token header (NULL when absent): p->csrf_valid
 * says whether it is the session's CSRF token; the caller decides whether
 * the request needs it. Returns 0 with *p filled (via_cookie set), or
 * ACCESS_E_INVALID, ACCESS_E_BANNED with *p cleared. One HMAC, two lookups,
 * no write.
 */
int principal_from_session_cookie(struct parley_app *app, const char *value, const char *csrf,
                                  principal_t *p);

/* The principal that `given` (a caller authenticated elsewhere, e.g. a
 * WebSocket) stands for, with the user as it is now: 0 with *p filled, or
 * ACCESS_E_INVALID when the user is gone or deactivated, ACCESS_E_BANNED
 * when banned. */
int principal_from_given(struct parley_app *app, const principal_t *given, principal_t *p);

/* Whether the login (session) or API key behind a principal still holds and
 * its user is still active and not banned; refreshes p->user. For
 * connections that outlive their token's checks (a ban closes them). */
bool principal_still_valid(struct parley_app *app, principal_t *p);

void principal_clear(principal_t *p);

/* ---- who may do what in a channel (channel_access.c) --------------------- */

typedef struct channel_access {
    chat_channel_t channel;     /* a copy; channel_access_clear frees it */
    chat_membership_t member;   /* zeroed when the caller never was one */
    bool exists;                /* and is not deleted */
    bool can_see;               /* can_read, or an admin: knows it exists (its object, deleting it) */
    bool can_read;              /* public, or a member: messages, files, members, events */
    bool can_post;              /* can read and is not banned (public: anyone) */
    bool can_moderate;          /* owner, moderator or admin (direct channels: admin only) */
    bool is_owner;              /* owner or admin */
    bool banned;
} channel_access_t;

/* Loads the channel and the user's relation to it into *a, whatever it
 * says; channel_access_clear() after. */
void channel_access_get(store_t *s, const store_user_t *u, const char *channel_id,
                        channel_access_t *a);
void channel_access_clear(channel_access_t *a);

/* Only whether the user may read the channel (search filters, listings). */
bool channel_readable(store_t *s, const store_user_t *u, const char *channel_id);

/* ---- the API's JSON objects (views.c) ------------------------------------ */

/* The user object: email only when `full` (self or an admin); preferences,
 * mfa_enabled, last_login and permissions only when `self`. */
json_t *user_json(const store_user_t *u, bool full, bool self);

/* What the account's roles allow, as the names clients show ("messages.write",
 * "users.manage"...; docs/api.md, "Users"). */
json_t *user_permissions_json(const store_user_t *u);

/* {id, name, description, type, is_private, owner_id, member_count, created_at, updated_at} */
json_t *channel_json(store_t *s, const chat_channel_t *c);

/* The message object, with the sender's public profile. */
json_t *message_json(store_t *s, const chat_message_t *m);

/* {id, filename, size, content_type, sha256, url, channel_id, uploaded_by,
 * uploaded_at, description} */
json_t *file_view_json(const struct store_file *f);

/* {id, username, display_name, avatar_url} of a user, or nulls when gone;
 * a deleted account: {id, username: null, display_name: "Deleted user",
 * avatar_url: null, is_deleted: true}. */
json_t *sender_json(store_t *s, const char *user_id);

/* An RFC 3339 string value for a time in ms, or null for 0. */
json_t *time_json(int64_t ms);

/*
 * The JSON text {"messages": [the views of list[0..n)], ...the members of
 * rest} (rest consumed; an object), malloc'd, or NULL when it cannot be
 * encoded. The views come from `views` (may be NULL) when the cached text is
 * current (same message, sender and file revs), else are rendered and
 * cached; list must be copies out of the store (revs set).
 */
char *message_page_text(store_t *s, struct view_cache *views, const chat_message_t *list,
                        size_t n, json_t *rest);

/* ---- who is online (online.c) -------------------------------------------- */

/* Counts a real-time connection of the user in (true: its first) or out
 * (true: its last). Thread-safe. */
bool online_join(const char *user_id);
bool online_leave(const char *user_id);

/* "online" while the user holds a live connection, else "offline". */
const char *online_status(const char *user_id);

/* ---- who has been active (activity.c; in memory only) ---------------------- */

/* Notes an authenticated request of the user at t_ms. Thread-safe, O(1). */
void activity_note(const char *user_id, int64_t t_ms);
/* Seeds the table with each account's last login / last seen (at start). */
void activity_seed(store_t *s);
/* Accounts whose latest activity is at or after since_ms. O(accounts). */
size_t activity_active_since(int64_t since_ms);
/* Distinct active accounts per bucket (series_read of a series kept here). */
void activity_series_read(enum series_level level, int64_t first, size_t n, int64_t *out);

#endif
