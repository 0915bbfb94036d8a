/*
 * The audit log of the store: who did what, when, from where. Admin actions
 * (bans, roles, settings, blocks, deletions of others' content, invites,
 * report resolutions) and security events (logins and failed logins, MFA
 * and password changes, API keys, refresh-token reuse, throttled accounts)
 * are each one record of the write-ahead log, so an entry acknowledged is
 * durable, replayed at start and kept in snapshots like every other change.
 *
 * Bounded: the store keeps the newest `max_entries` entries (and, when
 * `max_days` is set, none older than that many days); an entry past either
 * bound is dropped from memory as the next is applied, and snapshots write
 * only what is kept, so the log trims them with its segments.
 *
 * Entries are append-only: a record names a new entry, and one applied a
 * second time (a snapshot taken while writes went on) changes nothing.
 */
#ifndef PARLEY_AUDIT_H
#define PARLEY_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/chat.h" /* STORE_E_INVALID */
#include "parley/store.h"

#define STORE_REC_AUDIT 34 /* the wal's type byte of audit entries */

#define AUDIT_ACTION_MAX 48  /* "user.ban", "auth.login_failed"... + NUL */
#define AUDIT_TARGET_MAX 130 /* an id, an address or range, a username... + NUL */
#define AUDIT_IP_MAX 48      /* an IPv6 text address + NUL */
#define AUDIT_DETAILS_MAX 4096 /* bytes of the details' JSON text */
#define AUDIT_DEFAULT_MAX_ENTRIES 100000

typedef struct store_audit {
    char id[STORE_ID_MAX];         /* "aud_..." */
    int64_t at;                    /* ms since the epoch */
    char actor_id[STORE_ID_MAX];   /* the account that acted; "" when none */
    char action[AUDIT_ACTION_MAX]; /* [a-z0-9_.]+ */
    char target[AUDIT_TARGET_MAX]; /* what it acted on; "" when nothing */
    char ip[AUDIT_IP_MAX];         /* the client's address; "" when none */
    char *details;                 /* a JSON object's text, malloc'd, or NULL */
    uint64_t seq; /* in memory only: the order entries were applied in */
} store_audit_t;

void store_audit_clear(store_audit_t *a);

/*
 * Appends a new entry: fills a->id (when empty) and a->at (when 0), logs and
 * applies it. Returns 0 (and *lsn: the caller store_waits before it answers),
 * STORE_E_INVALID (an action outside [a-z0-9_.], a string over its limit,
 * details that are not a JSON object of at most AUDIT_DETAILS_MAX bytes),
 * or STORE_E_UNAVAILABLE. Thread-safe.
 */
int store_audit_append(store_t *s, store_audit_t *a, uint64_t *lsn);

typedef struct store_audit_query {
    const char *actor_id; /* NULL: any */
    const char *action;   /* NULL: any; "user." (ending in a dot): every action under it */
    const char *target;   /* NULL: any */
    int64_t from, to;     /* ms, [from, to); 0: unbounded */
    size_t offset, limit;
} store_audit_query_t;

/*
 * The entries matching q, newest first: copies up to q->limit of them from
 * index q->offset into out (caller clears each; *n_out of them) and returns
 * how many matched in all. O(entries kept). Thread-safe.
 */
size_t store_audit_find(store_t *s, const store_audit_query_t *q, store_audit_t *out,
                        size_t *n_out);

/* Entries kept now. */
size_t store_audit_count(store_t *s);

/* Changes the bounds (0 days: no age bound; max_entries at least 1); the
 * next append or snapshot applies them. Thread-safe. */
void store_audit_set_limits(store_t *s, size_t max_entries, unsigned max_days);

#endif
