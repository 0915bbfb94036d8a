/*
 * Blocked client addresses in the store: single addresses and CIDR ranges,
 * IPv4 and IPv6, each with an optional reason and expiry. One record per
 * block's whole state (STORE_REC_IP_BLOCK), replayed and snapshotted like
 * every table; the store also keeps the blocks in an ipnet_set_t, which the
 * connection gate reads on every request (store_ip_block_set).
 *
 * One block per network: the key is the network's canonical text
 * (ipnet_format). An expired block stops matching by the clock, with
 * nothing written; it stays listed until it is deleted, and a new block of
 * the same network takes its place.
 */
#ifndef PARLEY_IP_BLOCKS_H
#define PARLEY_IP_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/ipnet.h"
#include "parley/store.h"

#define STORE_REC_IP_BLOCK 31 /* the wal's type byte of block records */
#define STORE_E_CONFLICT_IP_BLOCK (-2031) /* a live block of that network exists */
#define IP_BLOCK_REASON_MAX 2000 /* bytes, NUL excluded (500 code points) */

typedef struct store_ip_block {
    char id[STORE_ID_MAX];        /* "ipb_..." */
    char ip[IPNET_TEXT_MAX];      /* canonical network text: "10.0.0.0/8", "2001:db8::1" */
    char *reason;                 /* malloc'd or NULL */
    char created_by[STORE_ID_MAX]; /* the admin's user id; "" when unknown */
    int64_t created_at;           /* ms */
    int64_t expires_at;           /* ms; 0 = until deleted */
    bool deleted;
} store_ip_block_t;

void store_ip_block_clear(store_ip_block_t *b);

/* Whether a block is in force at now_ms (not deleted, not expired). */
bool store_ip_block_active(const store_ip_block_t *b, int64_t now_ms);

/*
 * Creates block `b` (b->ip canonical, b->id fresh, deleted false). When a
 * block of the same network exists and has expired, the new one replaces it
 * (keeping the old id, written into b->id). Returns 0 and *lsn (the caller
 * store_waits), STORE_E_CONFLICT_IP_BLOCK (a block of that network in force
 * at now_ms), STORE_E_INVALID (a field the record would refuse),
 * STORE_E_UNAVAILABLE. The check and the write are one step under the
 * store's write lock.
 */
int store_ip_block_create(store_t *s, store_ip_block_t *b, int64_t now_ms, uint64_t *lsn);

/* Deletes the block with id `id`, or whose network is `ip` (canonical
 * text); exactly one of them non-NULL. On success *out (may be NULL; the
 * caller clears) gets the block as it was. 0, STORE_E_NOT_FOUND,
 * STORE_E_UNAVAILABLE. */
int store_ip_block_delete(store_t *s, const char *id, const char *ip, store_ip_block_t *out,
                          uint64_t *lsn);

/* A block by id or by canonical network text; false when there is none
 * (deleted blocks are gone). The caller clears *out. */
bool store_ip_block_get(store_t *s, const char *id, store_ip_block_t *out);
bool store_ip_block_find(store_t *s, const char *ip, store_ip_block_t *out);

/* The blocks (expired ones too unless active_only), newest first: fills up
 * to `limit` from index `offset` into out (caller clears each) and returns
 * how many there are in all. */
size_t store_ip_block_list(store_t *s, bool active_only, int64_t now_ms, size_t offset,
                           size_t limit, store_ip_block_t *out, size_t *n_out);

/* The blocks as a set for matching (expiries included), owned by the store
 * and alive as long as it is: ipnet_set_match(set, addr, now, ...) tells
 * whether an address is blocked. Thread-safe. */
ipnet_set_t *store_ip_block_set(store_t *s);

#endif
