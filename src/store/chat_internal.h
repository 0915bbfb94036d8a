/*
 * The insides of the chat tables, shared by chat.c (channels, memberships,
 * messages, apply, snapshots), chat_codec.c (records), chat_ds.c (small
 * containers) and search.c (the word index). Not for use outside src/store/.
 * The design and the locking are described at the top of chat.c.
 */
#ifndef PARLEY_STORE_CHAT_INTERNAL_H
#define PARLEY_STORE_CHAT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* ---- small containers (chat_ds.c): no locks of their own ------------------ */

/* String -> pointer, open addressing with linear probing and backward-shift
 * deletion. Keys are copied (and freed) by the table; values are the
 * caller's. */
typedef struct smap_slot {
    uint64_t hash;
    char *key; /* NULL: empty */
    void *val;
} smap_slot_t;

typedef struct smap {
    smap_slot_t *slots;
    size_t cap, n; /* cap: 0 or a power of two */
} smap_t;

void *chat__smap_get(const smap_t *m, const char *key);
/* Sets key -> val; returns the value it replaces (NULL when new). */
void *chat__smap_put(smap_t *m, const char *key, void *val);
/* The table's own copy of key, inserted (with val NULL) when absent; stable
 * until the key is removed (used to intern user ids). */
const char *chat__smap_intern(smap_t *m, const char *key);
/* Removes key; returns its value (NULL when absent). */
void *chat__smap_del(smap_t *m, const char *key);
/* Empties the table, calling free_val (may be NULL) on each value. */
void chat__smap_free(smap_t *m, void (*free_val)(void *val));

/* uint64_t -> object, for objects whose first member is their (non-zero)
 * uint64_t key: 8 bytes a slot. No removal (messages are never removed). */
typedef struct ptab {
    void **slots;
    size_t cap, n;
} ptab_t;

void *chat__ptab_get(const ptab_t *t, uint64_t key);
/* Inserts obj; its key must be absent. */
void chat__ptab_put(ptab_t *t, void *obj);
void chat__ptab_free(ptab_t *t, void (*free_obj)(void *obj));

/* seq -> object, for the messages: pages of STAB_PAGE slots, found through a
 * ptab of pages by page number. Messages are numbered 1, 2, 3..., so pages
 * fill up and a lookup is two loads, no probing (the ptab of messages it
 * replaced probed ~8 cache-missing slots for each new message at 75%
 * load); 8 bytes a message. A stray seq (a record may hold any 16-digit
 * one) costs one page. Nothing is removed. */
#define STAB_PAGE_BITS 10
#define STAB_PAGE (1u << STAB_PAGE_BITS)

typedef struct stab_page {
    uint64_t no; /* (seq >> STAB_PAGE_BITS) + 1: first member, non-zero (ptab key) */
    void *slot[STAB_PAGE];
} stab_page_t;

typedef struct stab {
    ptab_t pages;
    size_t n;
} stab_t;

void *chat__stab_get(const stab_t *t, uint64_t seq);
/* Sets seq -> obj (obj not NULL); seq must be absent. */
void chat__stab_put(stab_t *t, uint64_t seq, void *obj);
/* Calls fn on every object, in no particular order. */
void chat__stab_each(const stab_t *t, void (*fn)(void *ctx, void *obj), void *ctx);
void chat__stab_free(stab_t *t, void (*free_obj)(void *obj));

/* A sorted set of strings (copies). */
typedef struct idset {
    char **v;
    size_t n, cap;
} idset_t;

bool chat__idset_has(const idset_t *s, const char *id);
void chat__idset_add(idset_t *s, const char *id);
void chat__idset_del(idset_t *s, const char *id);
void chat__idset_free(idset_t *s);

/* ---- messages in memory ------------------------------------------------------ */

struct msg_list;

/* What few messages have: kept out of msg_t to keep it small. */
typedef struct msg_extra {
    char *idem; /* idempotency key or NULL */
    size_t n_mentions;
    char (*mentions)[STORE_ID_MAX];
    size_t n_attachments;
    char (*attachments)[STORE_ID_MAX];
    size_t n_reactions;
    chat_reaction_t *reactions;
} msg_extra_t;

/* One message: ~80 bytes plus its content. */
typedef struct msg {
    uint64_t seq;            /* the number in its id; first member (ptab key) */
    uint64_t reply_seq;      /* 0: not a reply */
    uint64_t thread_seq;     /* 0: not in a thread */
    int64_t created_at, updated_at;
    struct msg_list *list;   /* its channel's list */
    const char *user;        /* interned in chat_tables.users */
    char *content;           /* NULL once deleted */
    msg_extra_t *extra;      /* NULL when it has none */
    bool is_edited, is_deleted;
    uint32_t rev;            /* +1 at each apply (in the padding: no extra bytes) */
} msg_t;

/* Messages in id order: a channel's history or a thread's replies. */
typedef struct mvec {
    msg_t **v;
    size_t n, cap;
} mvec_t;

typedef struct msg_list {
    mvec_t msgs;
    char id[STORE_ID_MAX]; /* the channel */
} msg_list_t;

typedef struct thread {
    uint64_t root; /* first member (ptab key) */
    mvec_t msgs;
} thread_t;

/* The members and the banned of one channel (idx_lock). */
typedef struct people {
    idset_t members; /* role > NONE */
    idset_t banned;  /* banned_at > 0 */
} people_t;

struct chat_tables {
    /* Entities: sharded maps, each shard with its rwlock (map.c). */
    map_t channels;          /* id -> chat_channel_t* */
    map_t channel_by_name;   /* folded name -> id (char*), named and not deleted */
    map_t channel_by_direct; /* direct_key -> id (char*), not deleted */
    map_t memberships;       /* "<channel_id>/<user_id>" -> chat_membership_t* */

    /* The listing order of named channels (chat_channel_list without a
     * query), rebuilt when a channel changed since it was built. */
    atomic_uint_fast64_t channels_gen; /* bumped by every channel apply */
    pthread_mutex_t order_mu;          /* guards the four below */
    uint64_t order_gen;                /* channels_gen it was built at; 0: never */
    struct chat_order_entry *order;    /* named, not deleted, by (folded name, id) */
    size_t n_order;
    size_t n_order_public;

    pthread_rwlock_t idx_lock; /* guards people, joined and listings */
    smap_t people;             /* channel id -> people_t* */
    smap_t joined;             /* user id -> idset_t* of channel ids (role > NONE) */
    /* user id -> what the default listing counts of its channels (its
     * private named ones, its direct ones in order: chat.c, listing_t),
     * kept by apply_membership and apply_channel, so that a listing never
     * reads each of the user's channels. */
    smap_t listings;

    pthread_rwlock_t msg_lock; /* guards everything below (writer-preferring) */
    stab_t msgs;               /* seq -> msg_t* */
    smap_t lists;              /* channel id -> msg_list_t* */
    ptab_t threads;            /* root seq -> thread_t* */
    smap_t idem;               /* "<user_id>/<key>" -> msg_t* */
    smap_t users;              /* interned user ids -> (uintptr_t) live messages */
    smap_t words;              /* word -> posting (search.c) */
    /* The same postings by word, for prefixes (search.c, "Prefixes"):
     * vocab sorted, vocab_new those added since, unsorted. */
    struct posting **vocab, **vocab_new;
    size_t n_vocab, vocab_cap, n_vocab_new, vocab_new_cap;
    uint64_t vocab_merges;     /* +1 at every merge of vocab_new into vocab */
    /* +1 at every change of the index but an append at a list's end (a
     * list rewritten or removed): a search resuming after it released the
     * lock re-finds its place in the lists (search.c, "Locking"). */
    uint64_t index_gen;
    uint64_t next_seq;         /* max seq applied + 1 */
    /* The list and the interned user of the last message applied: replay
     * and bursts of posts mostly repeat them, and a compare is cheaper than
     * hashing and probing (a tenth of recovery went to those lookups). */
    msg_list_t *last_list;
    const char *last_user;
    /* Messages with seq <= indexed_upto are in the word index; apply indexes
     * only those. 0 during recovery, UINT64_MAX once the index is built
     * (search.c, "Building"). */
    uint64_t indexed_upto;

    /* The index builder (search.c): not under msg_lock. */
    pthread_mutex_t index_mu;
    pthread_cond_t index_cv;
    bool index_ready, index_stop, index_thread_started;
    pthread_t index_thread;
    /* The live indexer (search.c, "Indexing"): once the index is built,
     * apply queues each change of a message's words and the builder's
     * thread applies them in order. Guarded by index_mu. */
    struct index_job *jobs_head, *jobs_tail;
    uint64_t jobs_queued, jobs_done; /* tickets: done <= queued */
    bool indexer_idle;
    /* The indexer runs, so apply queues: changed under msg_lock (write) and
     * read under it. */
    bool index_async;
};

/* Position of the first message with seq >= `seq` in v. */
size_t chat__mvec_lower(const mvec_t *v, uint64_t seq);

/* Copies a message out. REQUIRES: msg_lock held (read or write). */
void chat__msg_export(const msg_t *g, chat_message_t *out);

/* ---- ids and records (chat_codec.c) -------------------------------------------- */

#define CHAT_SEQ_MAX 9999999999999999ull /* 16 digits */

/* 1-39 characters of [A-Za-z0-9_-]. */
bool chat__valid_id(const char *s);
/* The seq of "msg_" + 16 digits (>= 1); 0 for anything else. */
uint64_t chat__msg_seq(const char *id);
void chat__msg_id(uint64_t seq, char out[STORE_ID_MAX]);

/* The checks every record passes, written or read: true when valid. They
 * may normalise (a deleted message drops its content). */
bool chat__channel_valid(chat_channel_t *c);
bool chat__membership_valid(const chat_membership_t *m);
bool chat__message_valid(chat_message_t *m);

/* Encoders: malloc'd JSON text, or NULL when a string is not valid UTF-8. */
char *chat__channel_encode(const chat_channel_t *c);
char *chat__membership_encode(const chat_membership_t *m);

/* Message records are binary (message_record.c), told apart from the JSON
 * ones of earlier versions by their first byte (JSON starts with '{'). */
#define CHAT_MSG_RECORD_BINARY 0x02
/* Malloc'd bytes and *len, or NULL when a string is not valid UTF-8. */
char *chat__message_encode(const chat_message_t *m, size_t *len);
int chat__message_decode_binary(const void *data, size_t len, chat_message_t *m);
/* The message as the JSON record earlier versions wrote (for tools). */
char *chat__message_json(const chat_message_t *m);

/* Decoders: 0 (the struct filled; caller clears) or STORE_E_CORRUPT (the
 * struct zeroed, nothing to free). */
int chat__channel_decode(const void *data, size_t len, chat_channel_t *c);
int chat__membership_decode(const void *data, size_t len, chat_membership_t *m);
/* Either kind of message record: binary or JSON. */
int chat__message_decode(const void *data, size_t len, chat_message_t *m);

/* ---- the word index (search.c) ------------------------------------------------- */

/* Replaces the words of message `seq`: those of old_text (NULL: none) by
 * those of new_text (NULL: none). REQUIRES: msg_lock held for writing. */
void chat__index_update(struct chat_tables *t, uint64_t seq, const char *old_text,
                        const char *new_text);
/* The same change from apply: done here (returns old_text, the caller's
 * still), or, once the indexer runs, queued for it in apply order (takes
 * old_text, copies new_text; returns NULL). A search waits for the changes
 * queued before it started. REQUIRES: msg_lock held for writing. */
char *chat__index_change(struct chat_tables *t, uint64_t seq, char *old_text,
                         const char *new_text);
/* Frees the whole index. REQUIRES: msg_lock held for writing. */
void chat__index_free(struct chat_tables *t);
/* Stops the index builder (before the tables are freed). */
void chat__index_build_stop(struct chat_tables *t);
/* Blocks until the index is built and holds every change queued so far. */
void chat__index_wait(struct chat_tables *t);
/* Bytes held by the index (for tests and benchmarks). REQUIRES: msg_lock. */
size_t chat__index_bytes(struct chat_tables *t);

/* Case folding of one UTF-8 string (as the index folds words) into out
 * (size bytes; truncated at a code point). Used for channel names. */
void chat__fold(const char *in, char *out, size_t size);

#endif
