/*
 * The chat part of the store: channels (public, private, direct), their
 * memberships (role, bans, read markers), messages (history in creation
 * order with cursors, edits, deletes, replies and threads, mentions,
 * attachments, reactions, idempotency keys) and the search index.
 *
 * It follows the store's rules (include/parley/store.h): every change is a
 * log record stating an entity's whole new state, applied by the same code
 * live and in replay, under the store's write lock; the caller waits with
 * store_wait(lsn) before it answers. Reads copy out (free with *_clear).
 *
 * Permissions are the caller's (the HTTP layer): these functions store and
 * find, they do not decide who may.
 */
#ifndef PARLEY_CHAT_H
#define PARLEY_CHAT_H

#include "parley/store.h"

#define CHAT_NAME_MAX 321       /* 1-80 characters: up to 320 bytes of UTF-8 + NUL */
#define CHAT_EMOJI_MAX 65       /* 1-64 bytes + NUL */
#define CHAT_IDEMPOTENCY_MAX 129
#define CHAT_CONTENT_MAX 4000   /* characters */
#define CHAT_DIRECT_MAX 10      /* users in a direct channel, the caller included */

#define STORE_E_CONFLICT_NAME (-2010) /* a channel name in use (case-insensitively) */
/* A state the log could not hold (added): a bad id, a string over its limit,
 * invalid UTF-8, too many mentions... Validate before calling; nothing was
 * written. Every record written passes the same check its decoder makes, so
 * replay can never refuse a record the server wrote. */
#define STORE_E_INVALID (-2011)

/* Limits of a record (added; the decoders refuse more). Ids: 1-39 of
 * [A-Za-z0-9_-]; message ids "msg_" + 16 digits. */
#define CHAT_CONTENT_BYTES_MAX (4 * CHAT_CONTENT_MAX) /* content, in bytes */
#define CHAT_DESCRIPTION_MAX 16000  /* bytes */
#define CHAT_MENTIONS_MAX 1000
#define CHAT_ATTACHMENTS_MAX 100
#define CHAT_REACTIONS_MAX 100000   /* (emoji, user) pairs on one message */
/* What a reaction change may add (chat_reaction_room; older records past
 * them still load): distinct emoji on one message, and emoji one user has
 * on one message. */
#define CHAT_REACTION_EMOJI_MAX 50
#define CHAT_REACTIONS_PER_USER_MAX 20
#define STORE_E_REACTION_EMOJI_LIMIT (-2012) /* the message has its distinct emoji */
#define STORE_E_REACTION_USER_LIMIT (-2013)  /* the user has their emoji on it */
#define CHAT_DIRECT_KEY_MAX (CHAT_DIRECT_MAX * STORE_ID_MAX)

/* More record types (the wal's type byte), beside store.h's. */
enum chat_record_type {
    STORE_REC_CHANNEL = 10,
    STORE_REC_MEMBERSHIP = 11,
    STORE_REC_MESSAGE = 12,
};

enum chat_role {
    CHAT_ROLE_NONE = 0,  /* not a member (never joined, left or removed) */
    CHAT_ROLE_MEMBER = 1,
    CHAT_ROLE_MODERATOR = 2,
    CHAT_ROLE_OWNER = 3,
};

typedef struct chat_channel {
    char id[STORE_ID_MAX];      /* "ch_..." */
    char name[CHAT_NAME_MAX];   /* "" for direct channels */
    char *description;          /* malloc'd or NULL */
    bool is_direct;
    bool is_private;            /* always true for direct channels */
    bool is_deleted;
    char owner_id[STORE_ID_MAX];
    char *direct_key;           /* direct: the sorted member ids joined by ','; else NULL */
    int64_t created_at;         /* ms */
    int64_t updated_at;
} chat_channel_t;

/* One user's relation to one channel: everything per (channel, user). */
typedef struct chat_membership {
    char channel_id[STORE_ID_MAX];
    char user_id[STORE_ID_MAX];
    int role;                       /* enum chat_role */
    int64_t joined_at;              /* ms; of the current membership */
    int64_t banned_at;              /* ms; 0 = not banned */
    char last_read[STORE_ID_MAX];   /* id of the last message read, "" = none */
} chat_membership_t;

typedef struct chat_reaction {
    char emoji[CHAT_EMOJI_MAX];
    size_t n_users;
    char (*users)[STORE_ID_MAX];    /* malloc'd, in the order they reacted */
} chat_reaction_t;

typedef struct chat_message {
    char id[STORE_ID_MAX];          /* "msg_" + 16 digits: sorts in creation order */
    char channel_id[STORE_ID_MAX];
    char user_id[STORE_ID_MAX];
    char *content;                  /* malloc'd; NULL once deleted */
    char reply_to[STORE_ID_MAX];    /* "" = not a reply */
    char thread_id[STORE_ID_MAX];   /* the thread's first message; "" = not in a thread */
    size_t n_mentions;
    char (*mentions)[STORE_ID_MAX]; /* malloc'd user ids */
    size_t n_attachments;
    char (*attachments)[STORE_ID_MAX]; /* malloc'd file ids */
    size_t n_reactions;
    chat_reaction_t *reactions;     /* malloc'd */
    char idempotency_key[CHAT_IDEMPOTENCY_MAX]; /* "" = none */
    bool is_edited;
    bool is_deleted;
    int64_t created_at;             /* ms */
    int64_t updated_at;
    uint32_t rev; /* in memory only: changes with each apply (see store_user_t) */
} chat_message_t;

void chat_channel_clear(chat_channel_t *c);

/* Channels not deleted, by kind: public, private (not direct), direct.
 * O(channels), shard by shard. */
void chat_channel_kinds(store_t *s, size_t *public_n, size_t *private_n, size_t *direct_n);
void chat_message_clear(chat_message_t *m);
/* Deep copy; dst must be clear (or zeroed). */
void chat_message_copy(chat_message_t *dst, const chat_message_t *src);

/* (added) The direct_key of a set of users: the ids sorted, duplicates
 * dropped, joined by ','. Malloc'd (caller frees). */
char *chat_direct_key(const char *const *user_ids, size_t n);

/* ---- channels ---- */

/*
 * Creates a channel and makes `owner_id` its owner member, in one step. A
 * named channel's name must be free case-insensitively among channels that
 * are not deleted (STORE_E_CONFLICT_NAME). For a direct channel
 * (c->is_direct, c->direct_key set, members[] its users), an existing
 * channel with the same direct_key is returned instead (*created false).
 * Fills c->id when it creates; *lsn.
 *
 * Details (added): a direct channel with c->direct_key NULL gets
 * chat_direct_key(members); it is always private. Every user of members[]
 * other than the owner gets a MEMBER membership (direct or not), the owner
 * an OWNER one, all joined at c->created_at (now when 0). When an existing
 * channel is returned, *c is cleared and replaced by it (caller clears).
 * Returns 0, STORE_E_CONFLICT_NAME, STORE_E_INVALID (empty name of a
 * non-direct channel, bad ids, over a limit), STORE_E_UNAVAILABLE.
 */
int chat_channel_create(store_t *s, chat_channel_t *c, const char *const *members,
                        size_t n_members, bool *created, uint64_t *lsn);

/* Read-modify-write of a channel (rename, describe, make private, delete),
 * like store_user_modify; a new name is checked for uniqueness. fn runs
 * under the store's write lock (quick, no I/O; it may read the store). id,
 * is_direct and direct_key cannot change; a direct channel stays private.
 * 0, STORE_E_NOT_FOUND, STORE_E_CONFLICT_NAME, STORE_E_INVALID,
 * STORE_E_UNAVAILABLE or fn's non-zero result. *out may be NULL. */
int chat_channel_modify(store_t *s, const char *id, int (*fn)(void *ctx, chat_channel_t *c),
                        void *ctx, chat_channel_t *out, uint64_t *lsn);

bool chat_channel_get(store_t *s, const char *id, chat_channel_t *out);

/* (Added) The id of the named channel (not deleted, not direct) whose name is
 * `name` case-insensitively (names are unique so): O(1), from the index the
 * uniqueness check uses. false when none. Says nothing of who may read it. */
bool chat_channel_by_name(store_t *s, const char *name, char id_out[STORE_ID_MAX]);

/*
 * The channels `user_id` may see (public ones and those it is a member of,
 * not deleted), ordered by name (direct channels last, newest first),
 * from `offset`, at most `limit` into out (caller clears each); returns the
 * total count.
 * `query` (NULL or "" for all) keeps the channels whose name contains it,
 * case-insensitively (direct channels have no name: left out then).
 * user_id NULL: public channels only.
 */
size_t chat_channel_list(store_t *s, const char *user_id, const char *query, size_t offset,
                         size_t limit, chat_channel_t *out, size_t *n_out);
/* The orders of chat_channel_list_sorted (ties by id, so pages are stable). */
typedef enum chat_channel_sort {
    CHAT_CHANNEL_BY_NAME,     /* the listing order above */
    CHAT_CHANNEL_BY_CREATED,
    CHAT_CHANNEL_BY_ACTIVITY, /* its last message's time, else its creation */
} chat_channel_sort_t;
/* chat_channel_list (all: chat_channel_list_all, user_id ignored) in the
 * order `sort`, descending when `desc` (reversed: direct channels first by
 * name). O(channels) but for the default order without a query. */
size_t chat_channel_list_sorted(store_t *s, const char *user_id, bool all, const char *query,
                                chat_channel_sort_t sort, bool desc, size_t offset, size_t limit,
                                chat_channel_t *out, size_t *n_out);
/* The same over every channel, private and direct ones included (the
 * admins' listing: GET /api/v1/channels?all=true). */
size_t chat_channel_list_all(store_t *s, const char *query, size_t offset, size_t limit,
                             chat_channel_t *out, size_t *n_out);

/* ---- memberships ---- */

/* The ids of the channels user_id is a member of (role > NONE; deleted
 * channels included), from the per-user index: malloc'd, *n set; NULL when
 * none. O(memberships of the user), never a scan of the channels. */
char (*chat_user_channels(store_t *s, const char *user_id, size_t *n))[STORE_ID_MAX];

/* The membership of (channel, user); false when there has never been one. */
bool chat_membership_get(store_t *s, const char *channel_id, const char *user_id,
                         chat_membership_t *out);

/* Read-modify-write of (channel, user): fn gets the current state (zeroed,
 * with the ids filled in, when there is none). fn runs under the store's
 * write lock; the ids cannot change. STORE_E_NOT_FOUND when the channel does
 * not exist (a deleted one does); STORE_E_INVALID (last_read must be "" or a
 * message id, role 0-3); fn's non-zero result. *out may be NULL. */
int chat_membership_modify(store_t *s, const char *channel_id, const char *user_id,
                           int (*fn)(void *ctx, chat_membership_t *m), void *ctx,
                           chat_membership_t *out, uint64_t *lsn);

/* Members (role > NONE) of a channel, by joined_at; returns the total. */
size_t chat_members(store_t *s, const char *channel_id, size_t offset, size_t limit,
                    chat_membership_t *out, size_t *n_out);
size_t chat_member_count(store_t *s, const char *channel_id);

/* The user's messages not deleted, kept by the apply (O(1), no scan). */
uint64_t chat_user_message_count(store_t *s, const char *user_id);

/* Users banned from a channel (banned_at > 0); returns the total. */
size_t chat_banned(store_t *s, const char *channel_id, size_t offset, size_t limit,
                   chat_membership_t *out, size_t *n_out);

/* ---- messages ---- */

/*
 * Posts a message: gives it the next id, its created_at, and its thread_id
 * (the thread of reply_to, or reply_to itself); fills m->id. When
 * m->idempotency_key is set and this user already posted with it, nothing is
 * written: *existing is set to true, *m is replaced by that message and *lsn
 * is the current LSN (wait for it all the same). STORE_E_NOT_FOUND when
 * reply_to is not a message of the same channel.
 *
 * Details (added): also STORE_E_NOT_FOUND when the channel does not exist or
 * is deleted; STORE_E_INVALID (see the limits above); STORE_E_UNAVAILABLE.
 * is_edited/is_deleted start false, updated_at = created_at. On failure *m is
 * as it was. `existing` may be NULL.
 */
int chat_message_post(store_t *s, chat_message_t *m, bool *existing, uint64_t *lsn);

/* Read-modify-write of a message (edit, delete, react). fn runs under the
 * store's write lock. id, channel_id, user_id, created_at, reply_to,
 * thread_id and idempotency_key cannot change; a message fn marks deleted
 * loses its content (freed here); reactions left with no user are dropped.
 * 0, STORE_E_NOT_FOUND, STORE_E_INVALID, STORE_E_UNAVAILABLE or fn's
 * non-zero result. *out may be NULL. */
int chat_message_modify(store_t *s, const char *id, int (*fn)(void *ctx, chat_message_t *m),
                        void *ctx, chat_message_t *out, uint64_t *lsn);

bool chat_message_get(store_t *s, const char *id, chat_message_t *out);

/* Only a message's updated_at and whether it is deleted, without copying it
 * (the real-time service checks that an event still shows the message as it
 * is). false when there is no such message. Thread-safe. */
bool chat_message_state(store_t *s, const char *id, int64_t *updated_at, bool *deleted);

/* Whether user_id may add `emoji` to m (a reaction change, called under the
 * store's write lock from chat_message_modify's fn): 0, or
 * STORE_E_REACTION_EMOJI_LIMIT when it would be the message's emoji number
 * CHAT_REACTION_EMOJI_MAX + 1, STORE_E_REACTION_USER_LIMIT when the user
 * has CHAT_REACTIONS_PER_USER_MAX emoji on it already. */
int chat_reaction_room(const chat_message_t *m, const char *emoji, const char *user_id);

/*
 * History of a channel in creation order, O(log n + limit): at most `limit`
 * messages strictly before `before` (the newest ones), or strictly after
 * `after` (the oldest ones), or the newest when both are NULL; deleted ones
 * included. *has_more says whether more lie beyond in the direction read.
 * Returns STORE_E_NOT_FOUND when a cursor is not a message of this channel.
 * (Added:) with both cursors, the oldest `limit` strictly between them,
 * *has_more telling whether more lie between. out holds `limit` messages
 * (caller clears each). A channel without messages gives 0 and none.
 */
int chat_history(store_t *s, const char *channel_id, const char *before, const char *after,
                 size_t limit, chat_message_t *out, size_t *n_out, bool *has_more);

/*
 * (Added, issue 17) Offset paging of a channel's history, counted from the
 * newest: skipping the `skip` newest messages, the `limit` ones just older,
 * oldest first in out (caller clears each). Deleted messages count (they
 * keep their place in the history, as in the cursor pages). skip at or past
 * the end gives none. *has_more: older messages lie beyond the page; *total:
 * the channel's messages, deleted ones included. O(log n + limit): the
 * channel's list is an array in creation order, so a rank is an index.
 * A channel without messages (or unknown) gives 0, none and total 0.
 */
void chat_history_skip(store_t *s, const char *channel_id, uint64_t skip, size_t limit,
                       chat_message_t *out, size_t *n_out, bool *has_more, size_t *total);

/* (Added) The messages of a channel's history, deleted ones included: O(1). */
size_t chat_history_count(store_t *s, const char *channel_id);

/* (Added) The id of the direct channel (not deleted) whose direct_key is
 * `key` (chat_direct_key); false when there is none. */
bool chat_direct_find(store_t *s, const char *key, char id_out[STORE_ID_MAX]);

/* The replies of a thread (messages whose thread_id is `root`), oldest
 * first, at most `limit`; returns the total. */
size_t chat_thread(store_t *s, const char *root, size_t limit, chat_message_t *out,
                   size_t *n_out);

/* Messages of a channel after `last_read` ("" = all) not posted by
 * `user_id` and not deleted, counted up to `cap`. */
size_t chat_unread(store_t *s, const char *channel_id, const char *user_id,
                   const char *last_read, size_t cap);

/* The newest message of a channel; false when it has none. */
bool chat_last_message(store_t *s, const char *channel_id, chat_message_t *out);

/*
 * (Added) The retention sweep's batch: messages not deleted created before
 * cutoff_ms, in id (= creation) order from seq *cursor (0: the first),
 * looking at a bounded number of messages under one read lock. Fills up
 * to max ids, advances *cursor past what it looked at, and sets *more
 * when it stopped early (call again from *cursor). Stops at the first
 * message newer than the cutoff.
 */
size_t chat_messages_older(store_t *s, uint64_t *cursor, int64_t cutoff_ms, size_t max,
                           char (*ids)[STORE_ID_MAX], bool *more);

/* Whether s has the shape of an id (1-39 of [A-Za-z0-9_-]): what the
 * decoders accept; for refusing a malformed id with 422 before a look-up. */
bool chat_id_ok(const char *s);

/* ---- search ---- */

/* The bounds of one query (added; docs/api.md "Search"). A last word of
 * fewer than CHAT_SEARCH_PREFIX_MIN characters matches whole words only. */
#define CHAT_SEARCH_PREFIX_MIN 2
#define CHAT_SEARCH_WORK_MAX 50000     /* postings decoded, by default */
#define CHAT_SEARCH_TOTAL_MAX 1000     /* matches counted, by default */
#define CHAT_SEARCH_PREFIX_WORDS 32    /* words a prefix expands to, by default */

/* What a query cost and whether it stopped at a bound (added). */
typedef struct chat_search_info {
    size_t work;          /* postings decoded (deterministic for a given index) */
    size_t words_scanned; /* vocabulary entries looked at for the prefix */
    size_t prefix_words;  /* words the prefix expanded to (0: no prefix) */
    size_t chunks;        /* read-lock holds of the walk */
    /* A bound was hit (work, total, prefix words, or progress said stop):
     * older matches may exist beyond `results`, and the total returned is
     * a lower bound. */
    bool truncated;
} chat_search_info_t;

typedef struct chat_search_query {
    const char *text;         /* the words; case-insensitive, any script */
    const char *channel_id;   /* NULL: every channel `can_read` allows */
    const char *sender_id;    /* NULL: anyone */
    int64_t from_ms, to_ms;   /* 0: unbounded */
    size_t limit;
    /* Whether the caller may read a channel; called once per channel (per
     * query), with no lock of the store held: it may call chat_*_get. NULL:
     * every channel. from_ms/to_ms are inclusive bounds on created_at. */
    bool (*can_read)(void *ctx, const char *channel_id);
    void *ctx;
    /* (Added:) bounds, 0: the defaults above (SIZE_MAX: none). */
    size_t work_max, total_max, prefix_words_max;
    /* Called between two chunks of the walk or of the prefix's vocabulary
     * scan, with no lock held (NULL: none); false stops the query there
     * (truncated): a time budget. */
    bool (*progress)(void *ctx, const chat_search_info_t *so_far);
    chat_search_info_t *info; /* NULL, or filled */
    /* (Added:) filters of several ids (n_* 0: none; borrowed): a message
     * passes when its channel is one of channel_ids and its sender one of
     * sender_ids (OR within a kind, AND across kinds and with channel_id,
     * sender_id and the dates). */
    const char *const *channel_ids;
    size_t n_channel_ids;
    const char *const *sender_ids;
    size_t n_sender_ids;
    /* (Added:) matches skipped, newest first, before out is filled (a
     * page); they count in the total. */
    size_t offset;
} chat_search_query_t;

typedef struct chat_search_hit {
    chat_message_t message;
    double score;
} chat_search_hit_t;

/*
 * Messages (not deleted) containing every word of the query (the last word
 * may be a prefix), newest first; at most q->limit into out (caller clears
 * each .message); returns the total matched (a lower bound when
 * info->truncated).
 * (Added:) score = sum over the query's words of 1 + ln(1 + occurrences in
 * the message) (the prefix counts every word it matches) + 1 / (1 + age in
 * days), reported, not used for the order. Words: see chat_words; words are
 * indexed up to 64 bytes (longer ones by their first 64), at most 32 query
 * words. The last word is a prefix when it has at least
 * CHAT_SEARCH_PREFIX_MIN characters, expanded to the prefix_words_max words
 * with the most postings (ties by word). The walk goes from the newest
 * message down and stops at the end of the lists, at total_max matches or
 * work_max postings decoded; it holds the read lock for a chunk of a few
 * thousand postings at a time, so writers wait little.
 */
size_t chat_search(store_t *s, const chat_search_query_t *q, chat_search_hit_t *out,
                   size_t *n_out);

/* Splits text into lower-cased words the way the index does (for
 * highlighting): calls fn for each word with its byte offset and length in
 * `text`. (Added:) a word is a run of letters and digits: ASCII ones, and
 * non-ASCII code points that the C.UTF-8 locale classes as alphanumeric,
 * plus combining marks (without that locale: every non-ASCII code point but
 * the punctuation, symbol and emoji blocks). Invalid UTF-8 separates words.
 * `lower` is NUL-terminated and valid only during the call. */
void chat_words(const char *text, void (*fn)(void *ctx, size_t off, size_t len, const char *lower),
                void *ctx);

#endif
