/*
 * Full-text search of messages: the tokenizer, the inverted index and the
 * query.
 *
 * DESIGN
 * Words. A word is a run of letters and digits: ASCII ones, and non-ASCII
 * code points the C.UTF-8 locale classes as alphanumeric, plus combining
 * marks (so decomposed "é" stays one word). Without that locale every
 * non-ASCII code point is a letter but the punctuation, symbol and emoji
 * blocks. Words are case-folded: ASCII by hand, the rest with towlower_l()
 * on a locale made once with newlocale() (no global setlocale), plus
 * final sigma -> sigma. Invalid UTF-8 separates words. The index keeps a
 * word's first 64 bytes (WORD_MAX): a long URL or hash costs no more.
 * The locale never changes within a process, and the index is rebuilt from
 * the records at every start, so a different rule next release is harmless.
 *
 * Index. chat_tables.words maps each word to a posting list: the messages
 * that hold it, as (seq, occurrences) pairs sorted by seq, delta-encoded as
 * two LEB128 varints (Lucene's layout): ~2-4 bytes a pair instead of 16, so
 * the index costs ~40 bytes for a 100-byte message. A new message has the
 * largest seq, so its pairs append at the end in O(1); an edit diffs the old
 * and new words and rewrites only the lists of words that changed (decode,
 * change, encode: O(list length)); a delete removes its words. Deleted
 * messages hold no words, so matches are never deleted ones.
 *
 * Query. Every word of the text must match (AND); the last one as a prefix
 * when it has 2 characters or more (a shorter one is a whole word), the
 * prefix standing for the prefix_words_max words beginning so with the most
 * postings. Prefixes. Every query's last word is one, so finding its words
 * must not cost the whole vocabulary (a scan of the hash table's slots was
 * three quarters of a query's CPU with 30,000 words: docs/benchmarks.md,
 * P14): chat_tables.vocab holds the postings sorted by word, and the words
 * of a prefix are a range of it found by binary search (SCAN_SLOTS words
 * per lock hold); words new since its last merge wait in vocab_new,
 * unsorted, at most VOCAB_NEW_MAX once the index is built (while it is
 * built no query runs, and vocab_new may grow as large as vocab, so that
 * building merges O(log words) times), then sorted and merged in, O(words);
 * a word whose list empties leaves both. Each list is cut in blocks of 64 pairs with a directory (first
 * seq, offset), so it is walked from its newest end, and a seek below skips
 * whole blocks by binary search. The walk is a leapfrog from the newest
 * message down: every word's lists seek to the highest seq <= x; when all
 * agree, x matches (the filters, then can_read); else x falls to the lowest
 * of them (a prefix's lists in a max-heap by their position, so only those
 * above x move). Results come out newest first, so the walk stops at total_max
 * matches, or when work (pairs decoded plus a unit per list sought) passes
 * work_max: a query costs O(work_max) however large the index, and the
 * answer says truncated. The score (sum over query words of 1 + ln(1 +
 * occurrences), plus 1 / (1 + age in days)) is reported, not sorted on.
 *
 * Building. Replay does not index: tokenizing was two thirds of replaying
 * a message, and a restart should not wait for search. Recovery leaves
 * indexed_upto at 0, so apply skips the index, then
 * chat__index_build_start() indexes every message in a thread: it collects
 * the seqs of the messages applied so far (read lock), sorts them (so
 * posting lists grow by appends), and indexes them 64 per write lock
 * (~0.3 ms, so posts meanwhile wait little),
 * moving indexed_upto along; apply keeps indexing the messages at or below
 * it (an edit of a message already indexed), and the builder indexes the
 * rest as they are when it reaches them. New posts have larger seqs, so it
 * loops until none is left, then sets indexed_upto to UINT64_MAX under the
 * write lock: from then on everything is indexed, below. A search waits
 * for that (chat__index_wait); measured for 1,000,000 messages in
 * docs/benchmarks.md.
 *
 * Indexing. Once built, the index is kept off the post's path by the
 * builder's thread, now the indexer: apply (write lock) hands each change
 * of a message's words to chat__index_change, which queues the text the
 * index holds (the old content, which apply would have freed) and a copy of
 * the new one, in apply order, under index_mu; the indexer takes the whole
 * queue, tokenizes LIVE_BATCH changes with no lock held (the costly part:
 * decoding, folding, sorting the words) and applies them under one write
 * lock hold: the posting lists change in the same order as before, only
 * later. Idle, it is woken by INDEXER_WAKE changes or by a search, not by
 * every post. Each change is a ticket (jobs_queued); a search takes the ticket
 * count when it starts and waits until the indexer has done that many
 * (jobs_done), so it sees every change applied before it began and never
 * waits for posts that came after. Without the thread (pthread_create
 * failed), or once it is stopped at close, apply indexes itself, as during
 * the build; what is still queued at close is freed with the index (the
 * next open builds it from the records).
 *
 * Locking. Everything here is guarded by chat_tables.msg_lock but the
 * indexer's queue and tickets (index_mu, a leaf: apply takes it under
 * msg_lock): the index is changed by the indexer, the builder or apply
 * (write lock, through bags_apply) and read by
 * chat_search (read lock), which holds it for one chunk at a time:
 * CHUNK_WORK units of work, then the lock is let go, can_read asked for the
 * channels of the chunk's matches (no lock held: the caller may call back
 * into the store), the progress callback too (a time budget), and the lock
 * taken again. The walk resumes at its x; its iterators keep copies of the
 * blocks they decoded and no pointer into a list's bytes, so appends
 * meanwhile (new messages, above the walk) change nothing, and when a list
 * was rewritten or removed (index_gen moved: an edit, a delete) every list
 * is looked up again by its word and sought to x. A match is as its message
 * was when its chunk ran; the winners are copied out last, EXPORT_CHUNK per
 * lock hold, one deleted in between skipped.
 */
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "chat_internal.h"
#include "parley/clock.h"
#include "parley/log.h"
#include "parley/xalloc.h"

#define WORD_MAX 64       /* bytes of a word the index keeps */
#define QUERY_WORDS_MAX 32
#define BAD_CP 0xffffffffu

/* ---- code points ------------------------------------------------------------- */

static locale_t utf8_locale;
static pthread_once_t locale_once = PTHREAD_ONCE_INIT;

static void locale_init(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (utf8_locale == (locale_t)0)
        utf8_locale = newlocale(LC_CTYPE_MASK, "C.utf8", (locale_t)0);
}

/* Decodes one code point of s (n > 0 bytes); BAD_CP and 1 for an invalid
 * sequence (overlong, surrogate, truncated, out of range). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = BAD_CP;
        return 1;
    }
    if (len > n)
        goto bad;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            goto bad;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        goto bad;
    *cp = v;
    return len;
bad:
    *cp = BAD_CP;
    return 1;
}

/* Writes cp as UTF-8 (at most 4 bytes); returns the length. */
static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static bool is_combining(uint32_t c)
{
    return (c >= 0x300 && c <= 0x36f) || (c >= 0x1ab0 && c <= 0x1aff) ||
           (c >= 0x1dc0 && c <= 0x1dff) || (c >= 0x20d0 && c <= 0x20ff) ||
           (c >= 0xfe20 && c <= 0xfe2f);
}

/* Without a UTF-8 locale: the punctuation, symbol and emoji blocks. */
static bool fallback_separator(uint32_t c)
{
    return (c <= 0xbf && c != 0xaa && c != 0xb5 && c != 0xba) || c == 0xd7 || c == 0xf7 ||
           (c >= 0x2000 && c <= 0x2bff && !is_combining(c)) || (c >= 0x3000 && c <= 0x303f) ||
           (c >= 0xfe00 && c <= 0xfe0f) || (c >= 0xfe30 && c <= 0xfe4f) || c == 0xfeff ||
           (c >= 0xff00 && c <= 0xff0f) || (c >= 0x1f000 && c <= 0x1faff);
}

static bool is_word_cp(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (c == BAD_CP)
        return false;
    if (utf8_locale != (locale_t)0)
        return iswalnum_l((wint_t)c, utf8_locale) || is_combining(c);
    return !fallback_separator(c);
}

static uint32_t fold_cp(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (c == 0x3c2) /* final sigma */
        return 0x3c3;
    if (utf8_locale != (locale_t)0) {
        uint32_t l = (uint32_t)towlower_l((wint_t)c, utf8_locale);
        return (l <= 0x10ffff && !(l >= 0xd800 && l <= 0xdfff)) ? l : c;
    }
    if ((c >= 0xc0 && c <= 0xde && c != 0xd7) || (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) ||
        (c >= 0x410 && c <= 0x42f))
        return c + 32;
    if (c >= 0x400 && c <= 0x40f)
        return c + 80;
    return c;
}

/* ---- words -------------------------------------------------------------------- */

typedef void (*word_fn)(void *ctx, size_t off, size_t len, const char *lower, size_t lower_len);

/* Calls fn for every word of text: its byte range and its folded form. */
static void each_word(const char *text, word_fn fn, void *ctx)
{
    pthread_once(&locale_once, locale_init);
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), i = 0;
    char small[256], *buf = small;
    size_t cap = sizeof(small);
    while (i < n) {
        uint32_t c;
        size_t k = utf8_next(s + i, n - i, &c);
        if (!is_word_cp(c)) {
            i += k;
            continue;
        }
        size_t start = i, len = 0;
        while (i < n) {
            k = utf8_next(s + i, n - i, &c);
            if (!is_word_cp(c))
                break;
            if (len + 5 > cap) {
                cap *= 2;
                if (buf == small) {
                    buf = xmalloc(cap);
                    memcpy(buf, small, len);
                } else {
                    buf = xrealloc(buf, cap);
                }
            }
            len += utf8_put(fold_cp(c), buf + len);
            i += k;
        }
        buf[len] = '\0';
        fn(ctx, start, i - start, buf, len);
    }
    if (buf != small)
        free(buf);
}

typedef struct words_ctx {
    void (*fn)(void *ctx, size_t off, size_t len, const char *lower);
    void *ctx;
} words_ctx_t;

static void words_trampoline(void *ctx, size_t off, size_t len, const char *lower,
                             size_t lower_len)
{
    (void)lower_len;
    words_ctx_t *wc = ctx;
    wc->fn(wc->ctx, off, len, lower);
}

void chat_words(const char *text, void (*fn)(void *ctx, size_t off, size_t len, const char *lower),
                void *ctx)
{
    words_ctx_t wc = {fn, ctx};
    if (text)
        each_word(text, words_trampoline, &wc);
}

void chat__fold(const char *in, char *out, size_t size)
{
    pthread_once(&locale_once, locale_init);
    const unsigned char *s = (const unsigned char *)in;
    size_t n = strlen(in), i = 0, o = 0;
    while (i < n) {
        uint32_t c;
        size_t k = utf8_next(s + i, n - i, &c);
        char tmp[4];
        size_t w;
        if (c == BAD_CP) {
            tmp[0] = (char)s[i];
            w = 1;
        } else {
            w = utf8_put(fold_cp(c), tmp);
        }
        if (o + w >= size)
            break;
        memcpy(out + o, tmp, w);
        o += w;
        i += k;
    }
    if (size)
        out[o] = '\0';
}

/* The length of w cut to WORD_MAX bytes at a code point boundary. */
static size_t index_len(const char *w, size_t len)
{
    if (len <= WORD_MAX)
        return len;
    len = WORD_MAX;
    while (len > 0 && ((unsigned char)w[len] & 0xc0) == 0x80)
        len--;
    return len;
}

/* The distinct words of a text with their counts, sorted. */
typedef struct bag {
    char *buf;          /* the words, each NUL-terminated */
    size_t len, cap;
    size_t *offs;
    size_t n, ncap;
    const char **w;     /* after bag_finish: distinct words, sorted */
    uint32_t *tf;
    size_t nw;
} bag_t;

static void bag_add(void *ctx, size_t off, size_t len, const char *lower, size_t lower_len)
{
    (void)off;
    (void)len;
    bag_t *b = ctx;
    size_t l = index_len(lower, lower_len);
    if (b->len + l + 1 > b->cap) {
        b->cap = (b->len + l + 1) * 2;
        b->buf = xrealloc(b->buf, b->cap);
    }
    if (b->n == b->ncap) {
        b->ncap = b->ncap ? b->ncap * 2 : 16;
        b->offs = xrealloc(b->offs, b->ncap * sizeof(*b->offs));
    }
    memcpy(b->buf + b->len, lower, l);
    b->buf[b->len + l] = '\0';
    b->offs[b->n++] = b->len;
    b->len += l + 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void bag_fill(bag_t *b, const char *text)
{
    memset(b, 0, sizeof(*b));
    if (text == NULL)
        return;
    each_word(text, bag_add, b);
    if (b->n == 0)
        return;
    b->w = xmalloc(b->n * sizeof(*b->w));
    b->tf = xmalloc(b->n * sizeof(*b->tf));
    for (size_t i = 0; i < b->n; i++)
        b->w[i] = b->buf + b->offs[i];
    qsort(b->w, b->n, sizeof(*b->w), cmp_str);
    for (size_t i = 0; i < b->n; i++) {
        if (b->nw && strcmp(b->w[b->nw - 1], b->w[i]) == 0) {
            b->tf[b->nw - 1]++;
        } else {
            b->w[b->nw] = b->w[i];
            b->tf[b->nw++] = 1;
        }
    }
}

static void bag_free(bag_t *b)
{
    free(b->buf);
    free(b->offs);
    free(b->w);
    free(b->tf);
}

/* ---- posting lists ---------------------------------------------------------------- */

/* A list is cut in blocks of BLOCK pairs; each block's first delta counts
 * from 0, so a block decodes alone, and the directory (the first seq and
 * the byte offset of blocks 1...) finds the block that holds a seq in
 * O(log blocks): a query walks a list from its newest end and skips. */
#define BLOCK 64

typedef struct pblock {
    uint64_t first;     /* seq of the block's first pair */
    uint32_t off;       /* its byte offset in buf */
} pblock_t;

typedef struct posting {
    const char *word;   /* the key of chat_tables.words that holds it */
    uint8_t *buf;
    uint32_t len, cap;
    uint32_t count;     /* pairs */
    uint64_t last;      /* seq of the last pair */
    pblock_t *dir;      /* blocks 1.. ((count - 1) / BLOCK entries) */
    uint32_t dircap;
} posting_t;

typedef struct pent {
    uint64_t seq;
    uint32_t tf;
} pent_t;

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_varint(uint8_t *b, uint32_t *len, uint64_t v)
{
    while (v >= 0x80) {
        b[(*len)++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[(*len)++] = (uint8_t)v;
}

static uint64_t get_varint(const uint8_t *b, uint32_t *at)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t c = b[(*at)++];
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            break;
    }
    return v;
}

/* Appends (seq, tf); seq > p->last. */
static void posting_append(posting_t *p, uint64_t seq, uint32_t tf)
{
    bool new_block = p->count % BLOCK == 0;
    uint64_t delta = new_block ? seq : seq - p->last;
    uint32_t need = (uint32_t)(varint_len(delta) + varint_len(tf));
    if (p->cap - p->len < need) {
        uint32_t cap = p->cap + p->cap / 2;
        if (cap < p->len + need)
            cap = p->len + need;
        if (cap < 8)
            cap = 8;
        p->buf = xrealloc(p->buf, cap);
        p->cap = cap;
    }
    if (new_block && p->count) {
        uint32_t b = p->count / BLOCK; /* dir[b - 1] */
        if (b > p->dircap) {
            p->dircap = p->dircap ? p->dircap * 2 : 4;
            p->dir = xrealloc(p->dir, p->dircap * sizeof(*p->dir));
        }
        p->dir[b - 1] = (pblock_t){seq, p->len};
    }
    put_varint(p->buf, &p->len, delta);
    put_varint(p->buf, &p->len, tf);
    p->last = seq;
    p->count++;
}

static uint32_t posting_blocks(const posting_t *p)
{
    return (p->count + BLOCK - 1) / BLOCK;
}

/* Decodes block b into out; returns its pairs. */
static uint32_t block_decode(const posting_t *p, uint32_t b, pent_t *out)
{
    uint32_t at = b ? p->dir[b - 1].off : 0, n = p->count - b * BLOCK;
    if (n > BLOCK)
        n = BLOCK;
    uint64_t seq = 0;
    for (uint32_t i = 0; i < n; i++) {
        seq += get_varint(p->buf, &at);
        out[i].seq = seq;
        out[i].tf = (uint32_t)get_varint(p->buf, &at);
    }
    return n;
}

/* Decodes every pair into out (p->count entries). */
static void posting_decode(const posting_t *p, pent_t *out)
{
    for (uint32_t b = 0, nb = posting_blocks(p); b < nb; b++)
        block_decode(p, b, out + (size_t)b * BLOCK);
}

static void free_posting(void *v)
{
    posting_t *p = v;
    if (p) {
        free(p->buf);
        free(p->dir);
        free(p);
    }
}

/* ---- the vocabulary in order (prefixes) ---- */

/* Words added since the last merge, at most, once the index is built. */
#define VOCAB_NEW_MAX 1024

static int cmp_posting_word(const void *a, const void *b)
{
    return strcmp((*(posting_t *const *)a)->word, (*(posting_t *const *)b)->word);
}

/* The first position of the sorted vocabulary whose word is >= w. */
static size_t vocab_lower(const struct chat_tables *t, const char *w)
{
    size_t lo = 0, hi = t->n_vocab;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(t->vocab[mid]->word, w) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Sorts the new words into the vocabulary: O(n_vocab + new log new).
 * REQUIRES: msg_lock held for writing. */
static void vocab_merge(struct chat_tables *t)
{
    if (t->n_vocab_new == 0)
        return;
    qsort(t->vocab_new, t->n_vocab_new, sizeof(*t->vocab_new), cmp_posting_word);
    size_t n = t->n_vocab + t->n_vocab_new;
    if (n > t->vocab_cap) {
        t->vocab_cap = n + n / 2;
        t->vocab = xrealloc(t->vocab, t->vocab_cap * sizeof(*t->vocab));
    }
    /* From the back, the larger of the two each time: in place. */
    size_t i = t->n_vocab, j = t->n_vocab_new, k = n;
    while (j > 0) {
        if (i > 0 && strcmp(t->vocab[i - 1]->word, t->vocab_new[j - 1]->word) > 0)
            t->vocab[--k] = t->vocab[--i];
        else
            t->vocab[--k] = t->vocab_new[--j];
    }
    t->n_vocab = n;
    t->n_vocab_new = 0;
    t->vocab_merges++;
}

/* A new word. While the index is being built (no query runs: they wait for
 * it) the new words grow with the vocabulary, so that building merges
 * O(log words) times; then VOCAB_NEW_MAX, so that a prefix looks at few
 * unsorted words. REQUIRES: msg_lock held for writing. */
static void vocab_add(struct chat_tables *t, posting_t *p)
{
    if (t->n_vocab_new == t->vocab_new_cap) {
        t->vocab_new_cap = t->vocab_new_cap ? t->vocab_new_cap * 2 : 64;
        t->vocab_new = xrealloc(t->vocab_new, t->vocab_new_cap * sizeof(*t->vocab_new));
    }
    t->vocab_new[t->n_vocab_new++] = p;
    bool building = t->indexed_upto != UINT64_MAX;
    if (t->n_vocab_new > VOCAB_NEW_MAX && (!building || t->n_vocab_new > t->n_vocab))
        vocab_merge(t);
}

/* A word gone from the index. REQUIRES: msg_lock held for writing. */
static void vocab_remove(struct chat_tables *t, const posting_t *p)
{
    size_t at = vocab_lower(t, p->word);
    if (at < t->n_vocab && t->vocab[at] == p) {
        memmove(&t->vocab[at], &t->vocab[at + 1], (t->n_vocab - at - 1) * sizeof(*t->vocab));
        t->n_vocab--;
        return;
    }
    for (size_t i = 0; i < t->n_vocab_new; i++) {
        if (t->vocab_new[i] == p) {
            t->vocab_new[i] = t->vocab_new[--t->n_vocab_new];
            return;
        }
    }
}

/* Sets the count of `word` in message seq (0: removes it). */
static void posting_set(struct chat_tables *t, const char *word, uint64_t seq, uint32_t tf)
{
    posting_t *p = chat__smap_get(&t->words, word);
    if (p == NULL) {
        if (tf == 0)
            return;
        p = xcalloc(1, sizeof(*p));
        p->word = chat__smap_intern(&t->words, word);
        chat__smap_put(&t->words, word, p);
        vocab_add(t, p);
    }
    if (tf && seq > p->last) {
        posting_append(p, seq, tf);
        return;
    }
    t->index_gen++; /* rewritten: a running query re-finds its place */
    pent_t *v = xmalloc(((size_t)p->count + 1) * sizeof(*v));
    posting_decode(p, v);
    size_t n = p->count, lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < n && v[lo].seq == seq) {
        if (tf) {
            v[lo].tf = tf;
        } else {
            memmove(&v[lo], &v[lo + 1], (n - lo - 1) * sizeof(*v));
            n--;
        }
    } else if (tf) {
        memmove(&v[lo + 1], &v[lo], (n - lo) * sizeof(*v));
        v[lo] = (pent_t){seq, tf};
        n++;
    }
    p->len = 0;
    p->count = 0;
    p->last = 0;
    for (size_t i = 0; i < n; i++)
        posting_append(p, v[i].seq, v[i].tf);
    free(v);
    if (p->count == 0) {
        vocab_remove(t, p);
        free_posting(chat__smap_del(&t->words, word));
    }
}

/* Replaces the words of a (the message's as indexed) by those of b.
 * REQUIRES: msg_lock held for writing. */
static void bags_apply(struct chat_tables *t, uint64_t seq, const bag_t *a, const bag_t *b)
{
    size_t i = 0, j = 0;
    while (i < a->nw || j < b->nw) {
        int c = i == a->nw ? 1 : j == b->nw ? -1 : strcmp(a->w[i], b->w[j]);
        if (c < 0) {
            posting_set(t, a->w[i++], seq, 0);
        } else if (c > 0) {
            posting_set(t, b->w[j], seq, b->tf[j]);
            j++;
        } else {
            if (a->tf[i] != b->tf[j])
                posting_set(t, b->w[j], seq, b->tf[j]);
            i++;
            j++;
        }
    }
}

void chat__index_update(struct chat_tables *t, uint64_t seq, const char *old_text,
                        const char *new_text)
{
    bag_t a, b;
    bag_fill(&a, old_text);
    bag_fill(&b, new_text);
    bags_apply(t, seq, &a, &b);
    bag_free(&a);
    bag_free(&b);
}

/* ---- the live indexer ------------------------------------------------------------ */

/* One change of a message's words, as apply saw it. */
typedef struct index_job {
    struct index_job *next;
    uint64_t seq;
    char *old_text, *new_text; /* owned; NULL: none */
} index_job_t;

static void jobs_free(index_job_t *j)
{
    while (j) {
        index_job_t *next = j->next;
        free(j->old_text);
        free(j->new_text);
        free(j);
        j = next;
    }
}

/* The changes queued before apply wakes the idle indexer: one wake-up (a
 * futex call and two context switches on the post's path) per post cost
 * more than the indexing it moved; a search wakes it at once. */
#define INDEXER_WAKE 256

char *chat__index_change(struct chat_tables *t, uint64_t seq, char *old_text,
                         const char *new_text)
{
    if (!t->index_async) {
        chat__index_update(t, seq, old_text, new_text);
        return old_text;
    }
    index_job_t *j = xmalloc(sizeof(*j));
    *j = (index_job_t){NULL, seq, old_text, new_text ? xstrdup(new_text) : NULL};
    pthread_mutex_lock(&t->index_mu);
    if (t->jobs_tail)
        t->jobs_tail->next = j;
    else
        t->jobs_head = j;
    t->jobs_tail = j;
    t->jobs_queued++;
    if (t->indexer_idle && t->jobs_queued - t->jobs_done >= INDEXER_WAKE)
        pthread_cond_broadcast(&t->index_cv);
    pthread_mutex_unlock(&t->index_mu);
    return NULL;
}

/* Applies a list of jobs in order: LIVE_BATCH of them tokenized with no
 * lock held, then applied under one write-lock hold. */
#define LIVE_BATCH 64

static void jobs_run(struct chat_tables *t, index_job_t *jobs)
{
    bag_t (*bags)[2] = xmalloc(LIVE_BATCH * sizeof(*bags));
    while (jobs) {
        index_job_t *first = jobs;
        size_t n = 0;
        for (; jobs && n < LIVE_BATCH; jobs = jobs->next, n++) {
            bag_fill(&bags[n][0], jobs->old_text);
            bag_fill(&bags[n][1], jobs->new_text);
        }
        pthread_rwlock_wrlock(&t->msg_lock);
        size_t k = 0;
        for (index_job_t *j = first; k < n; j = j->next, k++)
            bags_apply(t, j->seq, &bags[k][0], &bags[k][1]);
        pthread_rwlock_unlock(&t->msg_lock);
        for (k = 0; k < n; k++) {
            bag_free(&bags[k][0]);
            bag_free(&bags[k][1]);
        }
    }
    free(bags);
}

/* The builder's thread once the index is built: takes what apply queued,
 * all of it at a time, runs it, and tells the searches waiting for it;
 * idle, it sleeps until INDEXER_WAKE changes wait or a search does;
 * when stopped, runs what is left and leaves (apply then indexes itself). */
static void index_live(struct chat_tables *t)
{
    pthread_mutex_lock(&t->index_mu);
    for (;;) {
        /* Woken by a search, by INDEXER_WAKE changes, or to stop. */
        while (t->jobs_head == NULL && !t->index_stop) {
            t->indexer_idle = true;
            pthread_cond_wait(&t->index_cv, &t->index_mu);
            t->indexer_idle = false;
        }
        index_job_t *jobs = t->jobs_head;
        uint64_t upto = t->jobs_queued;
        bool stop = t->index_stop;
        t->jobs_head = t->jobs_tail = NULL;
        pthread_mutex_unlock(&t->index_mu);
        jobs_run(t, jobs);
        jobs_free(jobs);
        pthread_mutex_lock(&t->index_mu);
        t->jobs_done = upto;
        pthread_cond_broadcast(&t->index_cv);
        if (stop)
            break;
    }
    pthread_mutex_unlock(&t->index_mu);
}

void chat__index_free(struct chat_tables *t)
{
    pthread_mutex_lock(&t->index_mu); /* what is queued is of the tables cleared */
    jobs_free(t->jobs_head);
    t->jobs_head = t->jobs_tail = NULL;
    t->jobs_done = t->jobs_queued;
    pthread_cond_broadcast(&t->index_cv);
    pthread_mutex_unlock(&t->index_mu);
    t->index_gen++;
    free(t->vocab);
    free(t->vocab_new);
    t->vocab = t->vocab_new = NULL;
    t->n_vocab = t->vocab_cap = t->n_vocab_new = t->vocab_new_cap = 0;
    chat__smap_free(&t->words, free_posting);
}

/* ---- building -------------------------------------------------------------------- */

#define BUILD_BATCH 64

static int by_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct seq_list {
    uint64_t *v, above;
    size_t n;
} seq_list_t;

static void collect_seq(void *ctx, void *obj)
{
    seq_list_t *l = ctx;
    const msg_t *g = obj;
    if (g->seq > l->above)
        l->v[l->n++] = g->seq;
}

/* The seqs of the messages not yet indexed, sorted. REQUIRES: msg_lock. */
static uint64_t *unindexed(struct chat_tables *t, size_t *n_out)
{
    seq_list_t l = {xmalloc((t->msgs.n ? t->msgs.n : 1) * sizeof(uint64_t)),
                    t->indexed_upto, 0};
    chat__stab_each(&t->msgs, collect_seq, &l);
    qsort(l.v, l.n, sizeof(*l.v), by_u64);
    *n_out = l.n;
    return l.v;
}

static bool stopping(struct chat_tables *t)
{
    pthread_mutex_lock(&t->index_mu);
    bool stop = t->index_stop;
    pthread_mutex_unlock(&t->index_mu);
    return stop;
}

/* Builds the index; with `live` (on the builder's own thread), the apply
 * queues its changes from the moment it is built. Returns whether it was
 * built (false: stopped first). */
static bool build(struct chat_tables *t, bool live)
{
    int64_t started = clock_mono_ns();
    size_t total = 0;
    bool done = false;
    while (!done && !stopping(t)) {
        pthread_rwlock_rdlock(&t->msg_lock);
        size_t n;
        uint64_t *seqs = unindexed(t, &n);
        pthread_rwlock_unlock(&t->msg_lock);
        for (size_t i = 0; i < n || n == 0;) {
            pthread_rwlock_wrlock(&t->msg_lock);
            for (size_t end = i + BUILD_BATCH; i < n && i < end; i++) {
                const msg_t *g = chat__stab_get(&t->msgs, seqs[i]);
                if (g == NULL) /* never: messages are removed only by chat__clear */
                    continue;
                chat__index_update(t, g->seq, NULL, g->content);
                t->indexed_upto = g->seq;
            }
            if (i == n) {
                /* Done when nothing was posted meanwhile (larger seqs). */
                done = t->next_seq - 1 <= t->indexed_upto || t->msgs.n == 0;
                if (done) {
                    t->indexed_upto = UINT64_MAX;
                    t->index_async = live;
                    vocab_merge(t);
                }
            }
            pthread_rwlock_unlock(&t->msg_lock);
            if (i == n || stopping(t))
                break;
        }
        total += n;
        free(seqs);
    }
    if (done) {
        pthread_mutex_lock(&t->index_mu);
        t->index_ready = true;
        pthread_cond_broadcast(&t->index_cv);
        pthread_mutex_unlock(&t->index_mu);
        if (total) {
            double ms = (double)(clock_mono_ns() - started) / 1e6;
            pthread_rwlock_rdlock(&t->msg_lock);
            size_t bytes = chat__index_bytes(t);
            pthread_rwlock_unlock(&t->msg_lock);
            log_info("search index built in %.1f ms (%zu messages, %zu bytes)", ms, total,
                     bytes);
        }
    }
    return done;
}

static void *index_main(void *arg)
{
    struct chat_tables *t = arg;
    pthread_setname_np(pthread_self(), "parley-index");
    if (build(t, true))
        index_live(t);
    return NULL;
}

void chat__index_build_start(struct chat_tables *t)
{
    if (pthread_create(&t->index_thread, NULL, index_main, t) == 0) {
        t->index_thread_started = true;
        return;
    }
    build(t, false); /* no thread: build here, before the store opens; apply indexes */
}

void chat__index_build_stop(struct chat_tables *t)
{
    if (!t->index_thread_started)
        return;
    pthread_mutex_lock(&t->index_mu);
    t->index_stop = true;
    pthread_cond_broadcast(&t->index_cv);
    pthread_mutex_unlock(&t->index_mu);
    pthread_join(t->index_thread, NULL);
    t->index_thread_started = false;
    pthread_rwlock_wrlock(&t->msg_lock); /* no indexer: apply indexes itself again */
    t->index_async = false;
    pthread_rwlock_unlock(&t->msg_lock);
}

void chat__index_wait(struct chat_tables *t)
{
    pthread_mutex_lock(&t->index_mu);
    while (!t->index_ready && !t->index_stop)
        pthread_cond_wait(&t->index_cv, &t->index_mu);
    /* The changes applied before this search started, and no later ones:
     * a stream of posts does not keep it waiting. */
    uint64_t ticket = t->jobs_queued;
    if (t->jobs_done < ticket && t->indexer_idle)
        pthread_cond_broadcast(&t->index_cv); /* the indexer waits for more: this search */
    while (t->jobs_done < ticket && !t->index_stop)
        pthread_cond_wait(&t->index_cv, &t->index_mu);
    pthread_mutex_unlock(&t->index_mu);
}

size_t chat__index_bytes(struct chat_tables *t)
{
    size_t bytes = t->words.cap * sizeof(smap_slot_t) +
                   (t->vocab_cap + t->vocab_new_cap) * sizeof(*t->vocab);
    for (size_t i = 0; i < t->words.cap; i++) {
        const smap_slot_t *sl = &t->words.slots[i];
        if (sl->key) {
            const posting_t *p = sl->val;
            bytes += strlen(sl->key) + 1 + sizeof(*p) + p->cap + p->dircap * sizeof(*p->dir);
        }
    }
    return bytes;
}

/* ---- the query ------------------------------------------------------------------------ */

/* ln(x) for x >= 1 without libm (the build links none): x = m * 2^e with
 * m in [1, 2), ln m = 2 atanh((m - 1) / (m + 1)) by its series. */
static double ln(double x)
{
    int e = 0;
    while (x >= 2.0) {
        x /= 2.0;
        e++;
    }
    double z = (x - 1.0) / (x + 1.0), z2 = z * z, term = z, sum = 0.0;
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= z2;
    }
    return 2.0 * sum + e * 0.69314718055994530942;
}

static double weight(uint32_t tf)
{
    return 1.0 + ln(1.0 + tf);
}

typedef struct qwords {
    char w[QUERY_WORDS_MAX][WORD_MAX + 1];
    size_t n;
} qwords_t;

static void query_word(void *ctx, size_t off, size_t len, const char *lower, size_t lower_len)
{
    (void)off;
    (void)len;
    qwords_t *q = ctx;
    if (q->n == QUERY_WORDS_MAX)
        return;
    size_t l = index_len(lower, lower_len);
    memcpy(q->w[q->n], lower, l);
    q->w[q->n++][l] = '\0';
}

static size_t code_points(const char *w)
{
    size_t n = 0;
    for (; *w; w++)
        n += ((unsigned char)*w & 0xc0) != 0x80;
    return n;
}

/* ---- the walk: posting iterators from the newest end ---- */

#define CHUNK_WORK 1024    /* postings decoded per read-lock hold */
#define SCAN_SLOTS 16384   /* vocabulary slots looked at per read-lock hold */
#define EXPORT_CHUNK 16    /* messages copied out per read-lock hold */

/* One word's list, walked from the newest pair down: `buf` holds the
 * decoded block b, `i` the current pair (the largest seq <= the bound of
 * the last seek). It keeps no pointer into the list's bytes, so it survives
 * a release of the lock while only appends happen (index_gen unchanged). */
typedef struct piter {
    const posting_t *p; /* NULL: exhausted */
    uint32_t b, n, i;   /* n == 0: no block decoded yet */
    pent_t buf[BLOCK];
} piter_t;

/* Moves to the largest seq <= x (x never above the last position); false
 * when none is left. Decoding a block adds its pairs to *work. */
static bool it_seek(piter_t *it, uint64_t x, size_t *work)
{
    if (it->p == NULL)
        return false;
    if (it->n == 0 || it->buf[0].seq > x) {
        /* The last block, below the current one, whose first seq <= x. */
        uint32_t hi = it->n ? it->b : posting_blocks(it->p), lo = 1, b = 0;
        if (hi == 0 || (it->n && it->b == 0)) {
            it->p = NULL;
            return false;
        }
        while (lo < hi) { /* blocks [lo, hi) by dir[b - 1].first */
            uint32_t mid = lo + (hi - lo) / 2;
            if (it->p->dir[mid - 1].first <= x) {
                b = mid;
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        it->b = b;
        it->n = block_decode(it->p, b, it->buf);
        it->i = it->n - 1;
        *work += it->n;
        if (it->buf[0].seq > x) { /* only block 0 can start above x */
            it->p = NULL;
            return false;
        }
    }
    /* Already there (the seeks of a step mostly find a list at or below x). */
    if (it->buf[it->i].seq <= x)
        return true;
    /* A few pairs down, else by binary search: the last of buf[0..i] <= x. */
    for (uint32_t k = 0; k < 4 && it->i > 0; k++)
        if (it->buf[--it->i].seq <= x)
            return true;
    uint32_t lo = 0, hi = it->i + 1;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (it->buf[mid].seq <= x)
            lo = mid;
        else
            hi = mid;
    }
    it->i = lo;
    return true;
}

/* A query word: one list, or the union of the lists of the words a
 * prefix expands to, kept in a max-heap by their current seq (a list not
 * sought yet counts as above everything), so that a seek moves only the
 * lists above its bound: a prefix of 32 words costs what its matches do,
 * not 32 lists a step. */
typedef struct term {
    piter_t *it;
    char (*words)[WORD_MAX + 1];
    size_t n;
    uint32_t *heap;  /* indices into it[]: the lists not exhausted */
    size_t nheap;
    uint64_t cur;  /* after term_seek: the largest seq <= x in any list */
    uint32_t tf;   /* its occurrences, summed over the lists */
} term_t;

static uint64_t it_key(const piter_t *it)
{
    return it->n ? it->buf[it->i].seq : UINT64_MAX;
}

static void heap_down(term_t *t, size_t at)
{
    for (;;) {
        size_t big = at, l = 2 * at + 1, r = l + 1;
        if (l < t->nheap && it_key(&t->it[t->heap[l]]) > it_key(&t->it[t->heap[big]]))
            big = l;
        if (r < t->nheap && it_key(&t->it[t->heap[r]]) > it_key(&t->it[t->heap[big]]))
            big = r;
        if (big == at)
            return;
        uint32_t tmp = t->heap[at];
        t->heap[at] = t->heap[big];
        t->heap[big] = tmp;
        at = big;
    }
}

/* The occurrences of seq in the lists at heap[at] and below that hold it. */
static uint32_t heap_tf(const term_t *t, size_t at, uint64_t seq)
{
    if (at >= t->nheap)
        return 0;
    const piter_t *it = &t->it[t->heap[at]];
    if (it_key(it) != seq)
        return 0; /* below: so is everything under it */
    return it->buf[it->i].tf + heap_tf(t, 2 * at + 1, seq) + heap_tf(t, 2 * at + 2, seq);
}

/* Every list of the term sought again from scratch (after terms_attach). */
static void term_reset(term_t *t)
{
    t->nheap = t->n;
    for (size_t i = 0; i < t->n; i++)
        t->heap[i] = (uint32_t)i;
}

/* Seeks the lists above x, a unit of work each (and their decoding). */
static bool term_seek(term_t *t, uint64_t x, size_t *work)
{
    while (t->nheap && it_key(&t->it[t->heap[0]]) > x) {
        (*work)++;
        if (!it_seek(&t->it[t->heap[0]], x, work))
            t->heap[0] = t->heap[--t->nheap];
        heap_down(t, 0);
    }
    if (t->nheap == 0)
        return false;
    t->cur = it_key(&t->it[t->heap[0]]);
    t->tf = heap_tf(t, 0, t->cur);
    return true;
}

/* (Re)finds every list by its word. REQUIRES: msg_lock. */
static void terms_attach(struct chat_tables *t, term_t *terms, size_t nt)
{
    for (size_t k = 0; k < nt; k++) {
        for (size_t i = 0; i < terms[k].n; i++)
            terms[k].it[i] = (piter_t){.p = chat__smap_get(&t->words, terms[k].words[i])};
        term_reset(&terms[k]);
    }
}

/* ---- the prefix: the words with the most postings ---- */

typedef struct pword {
    char w[WORD_MAX + 1];
    uint32_t count;
} pword_t;

static bool pword_better(const char *w, uint32_t count, const pword_t *than)
{
    return count != than->count ? count > than->count : strcmp(w, than->w) < 0;
}

/* Offers one word of the prefix to out (at most max, a word seen again
 * updates its count); *more when one was left out. */
static void pword_offer(pword_t *out, size_t *n, size_t max, const posting_t *p, bool *more)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(out[i].w, p->word) == 0) {
            out[i].count = p->count;
            return;
        }
    }
    if (*n < max) {
        snprintf(out[*n].w, sizeof(out[*n].w), "%s", p->word);
        out[(*n)++].count = p->count;
        return;
    }
    *more = true;
    size_t worst = 0;
    for (size_t i = 1; i < *n; i++)
        if (pword_better(out[worst].w, out[worst].count, &out[i]))
            worst = i;
    if (*n && pword_better(p->word, p->count, &out[worst])) {
        snprintf(out[worst].w, sizeof(out[worst].w), "%s", p->word);
        out[worst].count = p->count;
    }
}

/* Collects into out (at most max) the words starting with prefix with the
 * most postings: the range of the sorted vocabulary that starts so (found
 * by binary search), SCAN_SLOTS words per read-lock hold, each hold
 * resuming after the last word it saw (the vocabulary may be merged or
 * shrink meanwhile), asking q->progress between two (false: the scan stops
 * there); then the words added since the last merge. Returns how many
 * there are; *more: others were, or may have been, left out. */
static size_t prefix_words(struct chat_tables *t, const chat_search_query_t *q,
                           const char *prefix, pword_t *out, size_t max, bool *more,
                           chat_search_info_t *info)
{
    size_t n = 0, plen = strlen(prefix);
    char after[WORD_MAX + 1] = ""; /* the last word looked at; "": none yet */
    uint64_t merges = 0;
    *more = false;
    for (;;) {
        pthread_rwlock_rdlock(&t->msg_lock);
        /* A merge between two holds may have put a word behind `after`. */
        if (after[0] && merges != t->vocab_merges)
            *more = true;
        merges = t->vocab_merges;
        size_t at = vocab_lower(t, after[0] ? after : prefix), seen = 0;
        if (after[0] && at < t->n_vocab && strcmp(t->vocab[at]->word, after) == 0)
            at++;
        bool done = true;
        for (; at < t->n_vocab && strncmp(t->vocab[at]->word, prefix, plen) == 0; at++) {
            if (seen == SCAN_SLOTS) {
                done = false;
                break;
            }
            pword_offer(out, &n, max, t->vocab[at], more);
            snprintf(after, sizeof(after), "%s", t->vocab[at]->word);
            seen++;
        }
        if (done) {
            for (size_t i = 0; i < t->n_vocab_new; i++, seen++)
                if (strncmp(t->vocab_new[i]->word, prefix, plen) == 0)
                    pword_offer(out, &n, max, t->vocab_new[i], more);
        }
        info->words_scanned += seen;
        pthread_rwlock_unlock(&t->msg_lock);
        if (done)
            return n;
        if (q->progress && !q->progress(q->ctx, info)) {
            *more = true;
            return n;
        }
    }
}

/* ---- the query ---- */

typedef struct cand {
    uint64_t seq;
    double score;
    char channel[STORE_ID_MAX];
} cand_t;

typedef struct chan_ok {
    char id[STORE_ID_MAX];
    bool ok;
} chan_ok_t;

typedef struct walk {
    struct chat_tables *t;
    const chat_search_query_t *q;
    term_t *terms;
    size_t nt;         /* terms */
    uint64_t x;        /* the next seq to look at, and below */
    bool done;         /* the lists are exhausted */
    uint64_t gen;
    size_t work;
    int64_t now;
    msg_list_t *only;  /* q->channel_id's list */
    cand_t *pend;      /* matches of the chunk that pass every filter but can_read */
    size_t npend, pendcap;
    chan_ok_t *chans;  /* can_read's answers so far */
    size_t nch, chcap;
} walk_t;

/* Whether id is one of ids[0, n). */
static bool id_in(const char *id, const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(id, ids[i]) == 0)
            return true;
    return false;
}

/* One chunk under the read lock: matches into w->pend until CHUNK_WORK
 * more postings are decoded, `want` matches are pending or the lists end. */
static void walk_chunk(walk_t *w, size_t work_max, size_t want)
{
    struct chat_tables *t = w->t;
    const chat_search_query_t *q = w->q;
    if (w->gen != t->index_gen) { /* lists rewritten: find the place again */
        terms_attach(t, w->terms, w->nt);
        w->gen = t->index_gen;
    }
    size_t end = w->work + CHUNK_WORK;
    if (end > work_max)
        end = work_max;
    while (!w->done && w->work < end && w->npend < want) {
        uint64_t lo = w->x;
        for (size_t k = 0; k < w->nt && !w->done; k++) {
            if (!term_seek(&w->terms[k], w->x, &w->work))
                w->done = true;
            else if (w->terms[k].cur < lo)
                lo = w->terms[k].cur;
        }
        if (w->done)
            break;
        if (lo < w->x) { /* not every word at x: try the highest they may share */
            w->x = lo;
            continue;
        }
        uint64_t seq = w->x;
        double score = 0;
        for (size_t k = 0; k < w->nt; k++)
            score += weight(w->terms[k].tf);
        if (seq <= 1)
            w->done = true;
        else
            w->x = seq - 1;
        const msg_t *g = chat__stab_get(&t->msgs, seq);
        if (g == NULL || g->is_deleted || (w->only && g->list != w->only) ||
            (q->sender_id && strcmp(g->user, q->sender_id) != 0) ||
            (q->from_ms && g->created_at < q->from_ms) || (q->to_ms && g->created_at > q->to_ms) ||
            (q->n_sender_ids && !id_in(g->user, q->sender_ids, q->n_sender_ids)) ||
            (q->n_channel_ids && !id_in(g->list->id, q->channel_ids, q->n_channel_ids)))
            continue;
        double age_days = (double)(w->now > g->created_at ? w->now - g->created_at : 0) / 86400000.0;
        if (w->npend == w->pendcap) {
            w->pendcap = w->pendcap ? w->pendcap * 2 : 64;
            w->pend = xrealloc(w->pend, w->pendcap * sizeof(*w->pend));
        }
        cand_t *c = &w->pend[w->npend++];
        c->seq = seq;
        c->score = score + 1.0 / (1.0 + age_days);
        memcpy(c->channel, g->list->id, sizeof(c->channel));
    }
}

/* can_read of a channel, asked once per query, with no lock held. */
static bool walk_can_read(walk_t *w, const char *channel)
{
    if (w->q->can_read == NULL || w->q->channel_id)
        return true;
    for (size_t i = 0; i < w->nch; i++)
        if (strcmp(w->chans[i].id, channel) == 0)
            return w->chans[i].ok;
    if (w->nch == w->chcap) {
        w->chcap = w->chcap ? w->chcap * 2 : 16;
        w->chans = xrealloc(w->chans, w->chcap * sizeof(*w->chans));
    }
    chan_ok_t *c = &w->chans[w->nch++];
    memcpy(c->id, channel, sizeof(c->id));
    c->ok = w->q->can_read(w->q->ctx, channel);
    return c->ok;
}

static size_t or_default(size_t v, size_t def)
{
    return v ? v : def;
}

size_t chat_search(store_t *s, const chat_search_query_t *q, chat_search_hit_t *out,
                   size_t *n_out)
{
    struct chat_tables *t = s->chat;
    chat_search_info_t info_local, *info = q->info ? q->info : &info_local;
    memset(info, 0, sizeof(*info));
    *n_out = 0;
    if (q->text == NULL)
        return 0;
    size_t work_max = or_default(q->work_max, CHAT_SEARCH_WORK_MAX);
    size_t total_max = or_default(q->total_max, CHAT_SEARCH_TOTAL_MAX);
    size_t pw_max = or_default(q->prefix_words_max, CHAT_SEARCH_PREFIX_WORDS);
    qwords_t *qw = xmalloc(sizeof(*qw));
    qw->n = 0;
    each_word(q->text, query_word, qw);
    walk_t w = {.t = t, .q = q, .now = clock_wall_ms()};
    pword_t *pw = NULL;
    cand_t *hits = NULL;
    size_t total = 0, nhits = 0;
    if (qw->n == 0 || (q->channel_id && q->can_read && !q->can_read(q->ctx, q->channel_id)))
        goto out;
    chat__index_wait(t);

    /* The terms: the distinct whole words, then the last one, a prefix when
     * long enough (the words it expands to, chosen first). */
    const char *last = qw->w[qw->n - 1];
    bool is_prefix = code_points(last) >= CHAT_SEARCH_PREFIX_MIN;
    size_t npw = 0;
    if (is_prefix) {
        bool more;
        pw = xmalloc((pw_max < 4096 ? pw_max : 4096) * sizeof(*pw));
        npw = prefix_words(t, q, last, pw, pw_max < 4096 ? pw_max : 4096, &more, info);
        info->prefix_words = npw;
        info->truncated = more;
        if (npw == 0)
            goto out;
    }
    w.terms = xcalloc(qw->n, sizeof(*w.terms));
    for (size_t i = 0; i < qw->n; i++) {
        bool as_prefix = is_prefix && i + 1 == qw->n;
        bool dup = !as_prefix && is_prefix && strcmp(qw->w[i], last) == 0;
        for (size_t j = 0; j < i && !dup && !as_prefix; j++)
            dup = strcmp(qw->w[i], qw->w[j]) == 0;
        if (dup)
            continue;
        term_t *tm = &w.terms[w.nt++];
        tm->n = as_prefix ? npw : 1;
        tm->words = xmalloc(tm->n * sizeof(*tm->words));
        for (size_t k = 0; k < tm->n; k++)
            memcpy(tm->words[k], as_prefix ? pw[k].w : qw->w[i], sizeof(tm->words[k]));
        tm->it = xmalloc(tm->n * sizeof(*tm->it));
        tm->heap = xmalloc(tm->n * sizeof(*tm->heap));
    }

    /* The walk, newest first, a chunk per read-lock hold. */
    hits = xmalloc((q->limit ? q->limit : 1) * sizeof(*hits));
    pthread_rwlock_rdlock(&t->msg_lock);
    w.x = t->next_seq ? t->next_seq - 1 : 0;
    w.done = w.x == 0;
    w.gen = t->index_gen;
    terms_attach(t, w.terms, w.nt);
    if (q->channel_id && (w.only = chat__smap_get(&t->lists, q->channel_id)) == NULL)
        w.done = true;
    for (;;) {
        w.npend = 0;
        walk_chunk(&w, work_max, total_max - total);
        info->chunks++;
        pthread_rwlock_unlock(&t->msg_lock);
        for (size_t i = 0; i < w.npend && total < total_max; i++) {
            if (!walk_can_read(&w, w.pend[i].channel))
                continue;
            if (total >= q->offset && nhits < q->limit)
                hits[nhits++] = w.pend[i];
            total++;
        }
        info->work = w.work;
        if (w.done)
            break;
        if (total >= total_max || w.work >= work_max ||
            (q->progress && !q->progress(q->ctx, info))) {
            info->truncated = true;
            break;
        }
        pthread_rwlock_rdlock(&t->msg_lock);
    }

    /* Copy the winners out, a few per lock hold (one deleted since is skipped). */
    for (size_t i = 0; i < nhits;) {
        pthread_rwlock_rdlock(&t->msg_lock);
        for (size_t end = i + EXPORT_CHUNK; i < nhits && i < end; i++) {
            const msg_t *g = chat__stab_get(&t->msgs, hits[i].seq);
            if (g == NULL || g->is_deleted) {
                total--;
                continue;
            }
            chat__msg_export(g, &out[*n_out].message);
            out[(*n_out)++].score = hits[i].score;
        }
        pthread_rwlock_unlock(&t->msg_lock);
    }
out:
    for (size_t i = 0; i < w.nt; i++) {
        free(w.terms[i].it);
        free(w.terms[i].heap);
        free(w.terms[i].words);
    }
    free(w.terms);
    free(w.pend);
    free(w.chans);
    free(hits);
    free(pw);
    free(qw);
    return total;
}
