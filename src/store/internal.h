/*
 * The store's insides, shared by the files of src/store/ (store.c: users,
 * sessions, API keys, the log and snapshots; chat.c: channels, memberships,
 * messages and search; files.c: file records; reports.c: reports). Not for use outside src/store/.
 */
#ifndef PARLEY_STORE_INTERNAL_H
#define PARLEY_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "map.h"
#include "parley/chat.h"
#include "parley/store.h"

struct store {
    wal_t *wal;
    store_options_t opts;
    pthread_mutex_t write_mu; /* serialises append + apply */
    map_t users;              /* id -> store_user_t* */
    map_t user_by_name;       /* lower(username) -> id (char*) */
    map_t user_by_email;      /* lower(email) -> id (char*) */
    map_t sessions;           /* id -> store_session_t* */
    map_t api_keys;           /* id -> store_api_key_t* */
    map_t api_key_by_hash;    /* hash -> id (char*) */
    struct user_names *user_names; /* user search by name (user_names.c) */

    pthread_mutex_t snap_mu;  /* one snapshot at a time */
    pthread_mutex_t thread_mu;
    pthread_cond_t thread_cv;
    bool stop;
    pthread_t snap_thread;
    bool snap_thread_started;
    _Atomic uint64_t snapshot_lsn;
    int64_t last_snapshot_ns;
    atomic_bool snapshot_running;   /* a snapshot is being written (under snap_mu) */
    pthread_mutex_t info_mu;        /* leaf: guards last_snap and the snapshot failures */
    store_snapshot_info_t last_snap; /* guarded by info_mu */
    uint64_t snap_failures;         /* guarded by info_mu: since start */
    unsigned snap_fails_in_row;     /* guarded by info_mu: since the last success */
    int64_t snap_failed_ms;         /* guarded by info_mu: wall clock of the last */
    int64_t snap_retry_ns;          /* guarded by info_mu: no scheduled try before (mono) */
    char snap_error[128];           /* guarded by info_mu */

    /* The dashboard's counts per bucket, kept by the apply (stats.c). */
    series_t *series[STORE_METRICS];

    struct chat_tables *chat; /* channels, memberships, messages, search (chat.c) */
    struct file_tables *files; /* file records and blob reference counts (files.c) */
    struct audit_tables *audit; /* the audit log's entries (audit.c) */
    struct report_tables *reports; /* reports of messages (reports.c) */
    struct settings_state *settings; /* configured values and overrides (settings.c) */
    map_t invites;            /* code -> store_invite_t* (invites.c) */
    struct ip_block_tables *ip_blocks; /* blocked addresses (ip_blocks.c) */
};

/* Recovery's records applied on a second thread, in order (replay.c). */
typedef struct replayer replayer_t;
/* NULL when no thread could be started (apply inline then). */
replayer_t *store__replayer_start(store_t *s);
/* Queues a record; 1 when an earlier one failed to apply (stop the scan). */
int store__replayer_add(replayer_t *r, uint64_t lsn, uint8_t type, const void *data, size_t len);
/* Waits until everything queued is applied; 0, or 1 after a failure. */
int store__replayer_drain(replayer_t *r);
/* Drains, stops the thread and frees r. False when a record failed:
 * *bad_lsn (0 for a snapshot record) and *bad_type name it. */
bool store__replayer_stop(replayer_t *r, uint64_t *bad_lsn, uint8_t *bad_type);

/* Appends a record (text is freed). REQUIRES: write_mu held. 0 or
 * STORE_E_UNAVAILABLE. */
int store__append(store_t *s, uint8_t type, char *text, uint64_t *lsn);
/* The same for len bytes of a binary record (data is freed). */
int store__append_bytes(store_t *s, uint8_t type, void *data, size_t len, uint64_t *lsn);

/* store_user_create's checks, record and apply. REQUIRES: write_mu held. */
int store__user_create_locked(store_t *s, store_user_t *u, bool first_is_admin, uint64_t *lsn);
/* Adds every value of map m to a snapshot as a record of `type`, the text
 * encode(value) gives (malloc'd; freed here). 0 or the log's error. */
int store__snapshot_map(map_t *m, uint8_t type, char *(*encode)(const void *value),
                        wal_snapshot_t *snap);

/* One page of a list collected from a table: sorts hits[0..n) (malloc'd
 * structs of `size` bytes) by cmp, moves those from index offset on, at
 * most limit, into out (*n_out of them), clears the others with clear, and
 * frees hits. cmp NULL: hits are in order already. */
void store__page(void *hits, size_t n, size_t size, int (*cmp)(const void *, const void *),
                 void (*clear)(void *item), size_t offset, size_t limit, void *out,
                 size_t *n_out);

/* Counts one event of metric m at t_ms (delta may be negative) in the
 * dashboard's series; any thread (the series has its own leaf lock). */
void store__count(store_t *s, enum store_metric m, int64_t t_ms, int64_t delta);

/* Records the snapshot recovery loaded (lsn 0: none) as the last one. */
void store__snapshot_found(store_t *s, uint64_t lsn);

/* ASCII lower-casing into out (size bytes). */
void store__lower(const char *in, char *out, size_t size);

/* ---- the chat tables (chat.c) ---- */

struct chat_tables *chat__new(void);
void chat__free(struct chat_tables *t);
void chat__clear(struct chat_tables *t);
/* Applies a record of a chat type; STORE_E_CORRUPT for anything else. */
int chat__apply(store_t *s, uint8_t type, const void *data, size_t len);
/* Indexes every message applied so far for search, in a thread of its own
 * (recovery does not index); searches wait until it is done (search.c). */
void chat__index_build_start(struct chat_tables *t);
/* A message record (binary or JSON) as JSON text, or NULL (store_record_json). */
char *chat__message_record_json(const void *data, size_t len);
/* Adds every chat entity to a snapshot. */
int chat__snapshot(store_t *s, wal_snapshot_t *snap);
/* Counts for the admin view. */
void chat__stats(store_t *s, size_t *channels, size_t *messages);

/* ---- the file tables (files.c) ---- */

struct file_tables *files__new(void);
void files__free(struct file_tables *t);
void files__clear(struct file_tables *t);
int files__apply(store_t *s, const void *data, size_t len);
int files__snapshot(store_t *s, wal_snapshot_t *snap);
size_t files__count(store_t *s);
/* The live files, their sizes added up, and the sizes of the distinct
 * blobs they name. */
void files__bytes(store_t *s, uint64_t *live_files, uint64_t *file_bytes, uint64_t *blob_bytes);

/* ---- the audit log (audit.c) ---- */

struct audit_tables *audit__new(void);
void audit__free(struct audit_tables *t);
void audit__clear(struct audit_tables *t);
int audit__apply(store_t *s, const void *data, size_t len);
int audit__snapshot(store_t *s, wal_snapshot_t *snap);
/* ---- the report tables (reports.c) ---- */

struct report_tables *reports__new(void);
void reports__free(struct report_tables *t);
void reports__clear(struct report_tables *t);
int reports__apply(store_t *s, const void *data, size_t len);
int reports__snapshot(store_t *s, wal_snapshot_t *snap);
/* ---- settings and invites (settings.c, invites.c) ---- */

struct settings_state *settings__new(void);
void settings__free(struct settings_state *t);
/* Drops the overrides (a snapshot's load starts from empty tables). */
void settings__clear(struct settings_state *t);
int settings__apply(store_t *s, const void *data, size_t len);
int settings__snapshot(store_t *s, wal_snapshot_t *snap);
int invites__apply(store_t *s, const void *data, size_t len);
int invites__snapshot(store_t *s, wal_snapshot_t *snap);
/* ---- the blocked addresses (ip_blocks.c) ---- */

struct ip_block_tables *ip_blocks__new(void);
void ip_blocks__free(struct ip_block_tables *t);
void ip_blocks__clear(struct ip_block_tables *t);
int ip_blocks__apply(store_t *s, const void *data, size_t len);
int ip_blocks__snapshot(store_t *s, wal_snapshot_t *snap);

#endif
