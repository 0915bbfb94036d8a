/*
 * Reports in the store: a reader's report of a message to the
 * administrators, with a copy of the message (its content and author) as it
 * was when reported, so that deleting the message keeps the evidence. One
 * record (STORE_REC_REPORT) holds a report's whole state: filed (open), then
 * closed once, resolved with an action or dismissed.
 *
 * Bounds: one report per (reporter, message), whatever its status, and at
 * most STORE_REPORT_OPEN_MAX open reports per reporter, both decided under
 * the store's write lock with the insert. Every report is kept (each at most
 * a few KiB: the reason and the capped copy of the content); the open ones
 * are bounded by the per-reporter cap, the closed ones grow only by admin
 * action.
 */
#ifndef PARLEY_REPORTS_H
#define PARLEY_REPORTS_H

#include "parley/chat.h" /* STORE_E_INVALID */
#include "parley/store.h"

#define STORE_REC_REPORT 33 /* the wal's type byte of report records */

#define STORE_REPORT_REASON_MAX 4000  /* bytes of the reason (1000 code points) */
#define STORE_REPORT_CONTENT_MAX 4096 /* bytes of the message's content kept */
#define STORE_REPORT_OPEN_MAX 100     /* open reports per reporter */

#define STORE_E_REPORT_DUPLICATE (-2101) /* this reporter reported this message already */
#define STORE_E_REPORT_LIMIT (-2102)     /* the reporter has STORE_REPORT_OPEN_MAX open */
#define STORE_E_REPORT_CLOSED (-2103)    /* the report is resolved or dismissed already */

enum store_report_status {
    STORE_REPORT_OPEN = 0,
    STORE_REPORT_RESOLVED = 1,
    STORE_REPORT_DISMISSED = 2,
};

enum store_report_action {
    STORE_REPORT_ACTION_NONE = 0, /* open */
    STORE_REPORT_DISMISS = 1,
    STORE_REPORT_DELETE_MESSAGE = 2,
    STORE_REPORT_BAN_AUTHOR = 3,
    STORE_REPORT_MUTE_AUTHOR = 4,
};

typedef struct store_report {
    char id[STORE_ID_MAX];          /* "rep_..." */
    char message_id[STORE_ID_MAX];
    char channel_id[STORE_ID_MAX];
    char reporter_id[STORE_ID_MAX];
    char author_id[STORE_ID_MAX];   /* the message's author */
    char author_username[STORE_USERNAME_MAX]; /* at report time */
    char *content;                  /* the message's content at report time, at most
                                     * STORE_REPORT_CONTENT_MAX bytes; malloc'd or NULL */
    bool content_truncated;         /* the copy was cut */
    int64_t message_created_at;     /* ms */
    char *reason;                   /* 1-STORE_REPORT_REASON_MAX bytes; malloc'd */
    int status;                     /* enum store_report_status */
    int action;                     /* enum store_report_action */
    int64_t created_at;             /* ms */
    int64_t resolved_at;            /* ms; 0 while open */
    char resolved_by[STORE_ID_MAX]; /* the admin; "" while open */
} store_report_t;

void store_report_clear(store_report_t *r);

/* Names of statuses and actions as the API spells them ("open",
 * "delete_message"...); NULL for an unknown value. And back: -1 when
 * unknown. */
const char *store_report_status_name(int status);
const char *store_report_action_name(int action);
int store_report_status_of(const char *name);
int store_report_action_of(const char *name);

/*
 * Files a new open report r (id set by the caller, e.g. store_new_id("rep")).
 * Under the store's write lock: STORE_E_REPORT_DUPLICATE when the reporter
 * has a report of this message (any status), STORE_E_REPORT_LIMIT when it
 * has STORE_REPORT_OPEN_MAX open ones; STORE_E_INVALID for a state the
 * record could not hold; STORE_E_UNAVAILABLE. Sets *lsn (store_wait it).
 */
int store_report_create(store_t *s, const store_report_t *r, uint64_t *lsn);

/*
 * Closes an open report: status (RESOLVED or DISMISSED), the action taken,
 * by whom, when. STORE_E_NOT_FOUND, STORE_E_REPORT_CLOSED (not open any
 * more: decided under the write lock, so of two admins one wins),
 * STORE_E_INVALID, STORE_E_UNAVAILABLE. On success *out (may be NULL;
 * caller clears) gets the new state and *lsn its record.
 */
int store_report_close(store_t *s, const char *id, int status, int action, const char *by,
                       int64_t at, store_report_t *out, uint64_t *lsn);

/* A copy of one report (caller clears); false when there is none. */
bool store_report_get(store_t *s, const char *id, store_report_t *out);

/*
 * Reports of `status` (-1: all), newest first: fills up to `limit` of them
 * from index `offset` into out (caller clears each) and returns how many
 * matched in all. O(reports).
 */
size_t store_report_list(store_t *s, int status, size_t offset, size_t limit,
                         store_report_t *out, size_t *n_out);

/* The reporter's open reports (O(1)). */
size_t store_report_open_count(store_t *s, const char *reporter_id);

#endif
