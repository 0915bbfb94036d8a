/* Account logic shared by the auth and users resources (account.c). */
#ifndef PARLEY_HTTP_ACCOUNT_H
#define PARLEY_HTTP_ACCOUNT_H

#include "parley/app.h"
#include "parley/http.h"
#include "parley/store.h"

/*
 * Reads and validates username, email, password and display_name from the
 * body, hashes the password and creates the user (the first account ever is
 * made admin when first_is_admin; `admin` makes it one anyway). Answers the
 * error itself and returns false, or returns true with *out (caller clears)
 * once the user is durable.
 */
bool account_create(http_ctx_t *ctx, bool first_is_admin, bool admin, store_user_t *out);

/*
 * POST /auth/register's account: account_create as the live registration
 * setting allows (docs/admin.md, "Registration"): `closed` answers 403
 * REGISTRATION_CLOSED, `invite` needs a usable invite_code (missing: 422;
 * unknown, revoked, expired or used up: 403 INVITE_INVALID), `open` takes
 * one too. The first account of a server registers whatever the mode. An
 * invite's use is counted with the account, atomically; its channels are
 * joined after.
 */
bool account_register(http_ctx_t *ctx, store_user_t *out);

/* Answers 403 INVITE_INVALID for `code`, with details.reason "unknown",
 * "expired" or "used_up". */
void account_reply_invite_refused(http_ctx_t *ctx, const char *code);

/*
 * Makes user_id a member of channel_id (durable, member.joined published),
 * unless it is one already or banned there; a deleted or direct channel,
 * and a private one when public_only, are refused. True when it joined.
 */
bool account_join(parley_app_t *app, const char *channel_id, const char *user_id,
                  bool public_only);

/*
 * Reads the body's optional "session" (a boolean: log in with session
 * cookies instead of a token pair). Returns true, or false after answering
 * 422 (details.field "session") for a value that is not a boolean. Login,
 * register and the MFA step call it before they change anything.
 */
bool account_session_field_valid(http_ctx_t *ctx);

/* Whether the body asked for session cookies ("session": true). */
bool account_session_wanted(const http_ctx_t *ctx);

/*
 * Starts a login for `u`: a new session, durable, and answers `status` with
 * the token pair {access_token, token_type, expires_in, refresh_token, user};
 * when the body said "session": true, with the session cookies instead
 * (http_session_cookies_set) and {token_type: "cookie", csrf_token,
 * expires_at, user}: no token a script could read.
 */
void account_start_session(http_ctx_t *ctx, const store_user_t *u, int status);

/*
 * A login that passed every check (password, second factor): notes it on
 * the user (last_login, login_count; a record of the log like any change)
 * and starts the session as account_start_session, answering 200. The
 * session's record comes after the user's in the log, so waiting for it
 * makes both durable before the answer.
 */
void account_login(http_ctx_t *ctx, const store_user_t *u);

/*
 * A login step that failed after the throttle let it through (a wrong
 * password; a wrong two-factor code is counted apart, by
 * account_mfa_accept, under the user's code entry): restarts the throttle's
 * delay for the
 * account (`account_key`: the user's id, or the name typed when no account
 * has it) and the client's address, and writes the audit entry
 * auth.login_failed (and auth.lockout when this failure starts the
 * account's delays), durable before it returns. `u` is the account named,
 * NULL when none; `reason` says which step failed. Answers nothing.
 */
void account_login_failed(http_ctx_t *ctx, const char *account_key, const store_user_t *u,
                          const char *reason);

/* When `u` is banned now, answers 403 ACCOUNT_BANNED (details.until for a
 * timed ban, details.reason when given) and returns true. Only after the
 * right password, so it tells a guesser nothing. */
bool account_refuse_banned(http_ctx_t *ctx, const store_user_t *u);

/* Answers the token pair of an existing session at its current generation. */
void account_reply_tokens(http_ctx_t *ctx, const store_user_t *u, const store_session_t *ss,
                          int status);

/*
 * Accepts a two-factor code for `u` (updated in place and in the store: the
 * step it used can never be used again), through the user's code throttle
 * (h_mfa.c: a wrong code counts and is audited, an accepted one clears the
 * count). Returns true, or false after answering (401 INVALID_CREDENTIALS
 * for a wrong or replayed code, 429 RATE_LIMIT_EXCEEDED while the code
 * failures delay the user, 503).
 */
bool account_mfa_accept(http_ctx_t *ctx, store_user_t *u, const char *code);

/* Seconds a login has to give its code after the password (MFA_REQUIRED). */
#define ACCOUNT_MFA_TOKEN_TTL 300

#endif
