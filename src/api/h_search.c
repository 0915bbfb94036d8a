/*
 * /api/v1/search: messages (GET with query parameters, POST with the same
 * fields in a JSON body), users and channels (docs/api.md, "Search").
 *
 * Message search runs on the store's inverted index (chat_search) with a
 * per-channel permission callback, so a result can only come from a channel
 * the caller may read. The content of each hit is HTML-escaped and the
 * words that matched are wrapped in <mark>…</mark>, using the index's own
 * tokenizer and its rules (chat.h: the first 32 query words count, the last
 * as a prefix; words compare by their first 64 bytes) so that highlighting
 * and matching agree (a last word shorter than CHAT_SEARCH_PREFIX_MIN is a
 * whole word).
 *
 * Filters: Fechatter's nested `filters {chat_ids, sender_ids, date_from,
 * date_to}` and the flat names (channel_id, chat_ids=a,b, sender_id...),
 * OR within a kind and AND across kinds, go to the store as id lists (at
 * most FILTER_IDS_MAX each, so a match's check stays cheap); `page` is an
 * offset into the newest-first matches the store counts anyway, so the
 * bounds below hold for every page.
 *
 * A query's cost is bounded in the store (chat.h: work, total and prefix
 * bounds, newest first, the read lock held a chunk at a time); here a time
 * budget stops it between chunks as a backstop, and "truncated" tells the
 * client a bound was hit (total is then a lower bound). The searches run
 * on a few low-priority workers (below).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "resource.h"
#include "parley/app.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/log.h"
#include "parley/xalloc.h"

#define MAX_QUERY_WORDS 32  /* the index reads no more (chat_search) */
#define INDEX_WORD_BYTES 64 /* the index keeps a word's first 64 bytes */
#define QUERY_MAX_CHARS 200
#define SEARCH_TIME_BUDGET_MS 250 /* a backstop beside the store's work bound */

/* Message searches run on a few worker threads of their own, at most
 * config->search_concurrency (0: half the cores, at least 1), started as
 * needed and kept, at nice SEARCH_NICE; the request's thread hands its
 * query over and sleeps until the answer is ready. A query waits at most
 * QUEUE_WAIT_MS for a worker, then answers 503. A search costs CPU the whole
 * time it runs (up to search_work_max postings); on few cores 16 of them at
 * once took the CPU posts need. With the workers, searches get at most
 * their number of cores, and the scheduler gives the CPU to the other
 * requests first (nice 19 weighs 15 against 1024 for nice 0: measured in
 * docs/benchmarks.md, P10, against nice 10 and against no workers at all).
 * Process-wide, as the cores are. */
#define QUEUE_WAIT_MS 2000
#define SEARCH_NICE 19

typedef struct read_ctx {
    store_t *store;
    const store_user_t *user;
    int64_t deadline; /* clock_mono_ns: the query's time budget */
} read_ctx_t;

typedef struct search_job {
    store_t *store;
    chat_search_query_t q;
    read_ctx_t rc;
    chat_search_hit_t *hits;
    size_t n, total;
    bool taken, done;
    struct search_job *next;
} search_job_t;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cv = PTHREAD_COND_INITIALIZER; /* a job queued */
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER; /* a job done */
static search_job_t *queue_head, *queue_tail;
static unsigned workers, idle_workers;

static unsigned workers_max(const parley_config_t *cfg)
{
    if (cfg->search_concurrency)
        return cfg->search_concurrency;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores >= 4 ? (unsigned)(cores / 2) : 1;
}

static void *search_worker(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "parley-search");
    /* This thread only: raising a nice needs no privilege. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SEARCH_NICE) != 0)
        log_warning("search worker: setpriority: %s", strerror(errno));
    pthread_mutex_lock(&pool_mu);
    for (;;) {
        while (queue_head == NULL) {
            idle_workers++;
            pthread_cond_wait(&jobs_cv, &pool_mu);
            idle_workers--;
        }
        search_job_t *job = queue_head;
        queue_head = job->next;
        if (queue_head == NULL)
            queue_tail = NULL;
        job->taken = true;
        pthread_mutex_unlock(&pool_mu);
        /* The time budget counts from here, not from the wait. */
        job->rc.deadline = clock_mono_ns() + SEARCH_TIME_BUDGET_MS * 1000000LL;
        job->total = chat_search(job->store, &job->q, job->hits, &job->n);
        pthread_mutex_lock(&pool_mu);
        job->done = true;
        pthread_cond_broadcast(&done_cv);
    }
    return NULL;
}

/* Runs the job on a worker; false when none took it within QUEUE_WAIT_MS. */
static bool run_on_worker(const parley_config_t *cfg, search_job_t *job)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += QUEUE_WAIT_MS / 1000;
    pthread_mutex_lock(&pool_mu);
    job->next = NULL;
    if (queue_tail)
        queue_tail->next = job;
    else
        queue_head = job;
    queue_tail = job;
    if (idle_workers == 0 && workers < workers_max(cfg)) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &attr, search_worker, NULL) == 0)
            workers++;
        pthread_attr_destroy(&attr);
    }
    pthread_cond_signal(&jobs_cv);
    while (!job->done) {
        if (job->taken)
            pthread_cond_wait(&done_cv, &pool_mu);
        else if (pthread_cond_timedwait(&done_cv, &pool_mu, &until) == ETIMEDOUT && !job->taken)
            break;
    }
    bool ok = job->done;
    if (!ok) { /* never taken: out of the queue */
        search_job_t **at = &queue_head, *prev = NULL;
        while (*at != job) {
            prev = *at;
            at = &(*at)->next;
        }
        *at = job->next;
        if (queue_tail == job)
            queue_tail = prev;
    }
    pthread_mutex_unlock(&pool_mu);
    return ok;
}

typedef struct query_words {
    char *word[MAX_QUERY_WORDS];
    size_t n;
    bool prefix_ok; /* the last word is long enough to be a prefix */
} query_words_t;

/* The bytes of a lower-cased word the index compares: its first 64, cut at
 * a code point boundary. */
static size_t indexed_len(const char *lower)
{
    size_t len = strlen(lower);
    if (len <= INDEX_WORD_BYTES)
        return len;
    len = INDEX_WORD_BYTES;
    while (len > 0 && ((unsigned char)lower[len] & 0xc0) == 0x80)
        len--;
    return len;
}

static void collect_word(void *ctx, size_t off, size_t len, const char *lower)
{
    (void)off;
    (void)len;
    query_words_t *q = ctx;
    if (q->n < MAX_QUERY_WORDS) {
        q->word[q->n] = xstrndup(lower, indexed_len(lower));
        q->n++;
    }
}

static size_t code_points(const char *w)
{
    size_t n = 0;
    for (; *w; w++)
        n += ((unsigned char)*w & 0xc0) != 0x80;
    return n;
}

static void free_words(query_words_t *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->word[i]);
    q->n = 0;
}

typedef struct highlight {
    const query_words_t *q;
    const char *text;
    size_t done;       /* bytes of text already copied */
    char *out;
    size_t len, cap;
} highlight_t;

static void put(highlight_t *h, const char *s, size_t n)
{
    if (h->len + n + 1 > h->cap) {
        h->cap = (h->len + n + 1) * 2;
        h->out = xrealloc(h->out, h->cap);
    }
    memcpy(h->out + h->len, s, n);
    h->len += n;
    h->out[h->len] = '\0';
}

/* Copies text[from, to) HTML-escaped. */
static void put_escaped(highlight_t *h, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        switch (h->text[i]) {
        case '&':
            put(h, "&amp;", 5);
            break;
        case '<':
            put(h, "&lt;", 4);
            break;
        case '>':
            put(h, "&gt;", 4);
            break;
        case '"':
            put(h, "&quot;", 6);
            break;
        case '\'':
            put(h, "&#39;", 5);
            break;
        default:
            put(h, &h->text[i], 1);
        }
    }
}

static bool word_matches(const query_words_t *q, const char *lower)
{
    size_t len = indexed_len(lower);
    for (size_t i = 0; i < q->n; i++) {
        size_t qlen = strlen(q->word[i]);
        bool last = i + 1 == q->n && q->prefix_ok;
        if (last ? qlen <= len && memcmp(lower, q->word[i], qlen) == 0
                 : qlen == len && memcmp(lower, q->word[i], len) == 0)
            return true;
    }
    return false;
}

static void mark_word(void *ctx, size_t off, size_t len, const char *lower)
{
    highlight_t *h = ctx;
    if (!word_matches(h->q, lower))
        return;
    put_escaped(h, h->done, off);
    put(h, "<mark>", 6);
    put_escaped(h, off, off + len);
    put(h, "</mark>", 7);
    h->done = off + len;
}

static char *highlighted(const query_words_t *q, const char *text)
{
    highlight_t h = {.q = q, .text = text};
    put(&h, "", 0);
    chat_words(text, mark_word, &h);
    put_escaped(&h, h.done, strlen(text));
    return h.out;
}

static bool can_read(void *ctx, const char *channel_id)
{
    read_ctx_t *rc = ctx;
    return channel_readable(rc->store, rc->user, channel_id);
}

/* Between two chunks of the walk: go on while within the time budget. */
static bool in_time(void *ctx, const chat_search_info_t *so_far)
{
    (void)so_far;
    const read_ctx_t *rc = ctx;
    return clock_mono_ns() < rc->deadline;
}

/* Parses a date filter: RFC 3339, or a day "YYYY-MM-DD" (its start, or its
 * end when end_of_day). */
static bool parse_date(const char *s, bool end_of_day, int64_t *ms)
{
    if (http_parse_time(s, ms))
        return true;
    char full[40];
    if (strlen(s) != 10 || snprintf(full, sizeof(full), "%sT00:00:00Z", s) < 0 ||
        !http_parse_time(full, ms))
        return false;
    if (end_of_day)
        *ms += 86400000 - 1;
    return true;
}

/* A message search's filters, read from the query string or the body
 * (docs/api.md, "Search"): the single ids and Fechatter's lists, OR within
 * a kind, AND across kinds. The strings are borrowed from the request (or
 * from `buf`, the GET form's split lists). */
#define FILTER_IDS_MAX 20 /* ids per kind (fixed; docs/security.md "Search") */
#define SEARCH_PAGE_MAX 1000

typedef struct search_args {
    const char *text;
    const char *chans[FILTER_IDS_MAX + 1], *senders[FILTER_IDS_MAX + 1];
    size_t nchans, nsenders;
    const char *from, *to;
    const char *from_field, *to_field; /* the names errors give */
    long limit, page;
    char *buf[2]; /* malloc'd copies the GET lists point into */
} search_args_t;

/* Adds one id to a kind's list; false after answering 422 naming field. */
static bool add_id(http_ctx_t *ctx, const char *field, const char *id, const char **list,
                   size_t *n)
{
    if (id == NULL || !chat_id_ok(id)) {
        http_reply_invalid(ctx, field, "%s must hold ids (letters, digits, _ and -)", field);
        return false;
    }
    if (*n == FILTER_IDS_MAX) {
        http_reply_invalid(ctx, field, "%s holds at most %d ids", field, FILTER_IDS_MAX);
        return false;
    }
    for (size_t i = 0; i < *n; i++)
        if (strcmp(list[i], id) == 0)
            return true;
    list[(*n)++] = id;
    return true;
}

/* Splits "a,b,c" (a malloc'd copy kept in *keep) into the kind's list;
 * false after answering 422 naming field. */
static bool add_id_list(http_ctx_t *ctx, const char *field, const char *text, char **keep,
                        const char **list, size_t *n)
{
    if (text == NULL)
        return true;
    *keep = xstrdup(text);
    /* Every element counts: "a,,b", "a," and "" are refused (add_id). */
    for (char *rest = *keep, *tok; (tok = strsep(&rest, ",")) != NULL;)
        if (!add_id(ctx, field, tok, list, n))
            return false;
    return true;
}

/* The channel names and sender objects of one answer's hits, each looked
 * up once: a page's hits share a few channels and senders, and the
 * look-ups (a channel copied out, a sender's view built) were a tenth of a
 * rare word's search (docs/benchmarks.md, P14). */
typedef struct hit_views {
    struct {
        char id[STORE_ID_MAX];
        char name[CHAT_NAME_MAX];
    } *channel;
    struct {
        char id[STORE_ID_MAX];
        json_t *json;
    } *sender;
    size_t nchannels, nsenders;
} hit_views_t;

/* The channel's name ("" when it is gone). */
static const char *hit_channel_name(hit_views_t *v, store_t *store, const char *id)
{
    for (size_t i = 0; i < v->nchannels; i++)
        if (strcmp(v->channel[i].id, id) == 0)
            return v->channel[i].name;
    chat_channel_t c;
    bool found = chat_channel_get(store, id, &c);
    size_t at = v->nchannels++;
    snprintf(v->channel[at].id, sizeof(v->channel[at].id), "%s", id);
    snprintf(v->channel[at].name, sizeof(v->channel[at].name), "%s", found ? c.name : "");
    if (found)
        chat_channel_clear(&c);
    return v->channel[at].name;
}

/* The sender's object, borrowed (hit_views_clear releases it). */
static json_t *hit_sender(hit_views_t *v, store_t *store, const char *user_id)
{
    for (size_t i = 0; i < v->nsenders; i++)
        if (strcmp(v->sender[i].id, user_id) == 0)
            return v->sender[i].json;
    size_t at = v->nsenders++;
    snprintf(v->sender[at].id, sizeof(v->sender[at].id), "%s", user_id);
    v->sender[at].json = sender_json(store, user_id);
    return v->sender[at].json;
}

static void hit_views_clear(hit_views_t *v)
{
    for (size_t i = 0; i < v->nsenders; i++)
        json_decref(v->sender[i].json);
    free(v->channel);
    free(v->sender);
}

/* The search itself, from values read out of the query string or body. */
static void search_messages(http_ctx_t *ctx, const principal_t *p, search_args_t *a)
{
    parley_app_t *app = ctx->app;
    int64_t started = clock_mono_ns();
    const char *text = a->text;
    long limit = a->limit;
    if (text == NULL || text[0] == '\0' || http_utf8_length(text, strlen(text)) > QUERY_MAX_CHARS) {
        http_reply_invalid(ctx, "q", "q must be 1-%d characters", QUERY_MAX_CHARS);
        return;
    }
    int64_t from_ms = 0, to_ms = 0;
    if (a->from && !parse_date(a->from, false, &from_ms)) {
        http_reply_invalid(ctx, a->from_field, "%s must be an RFC 3339 time or a date",
                           a->from_field);
        return;
    }
    if (a->to && !parse_date(a->to, true, &to_ms)) {
        http_reply_invalid(ctx, a->to_field, "%s must be an RFC 3339 time or a date", a->to_field);
        return;
    }
    for (size_t i = 0; i < a->nchans; i++) {
        if (!channel_readable(app->store, &p->user, a->chans[i])) {
            http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such channel");
            return;
        }
    }
    query_words_t words = {0};
    chat_words(text, collect_word, &words);
    words.prefix_ok = words.n && code_points(words.word[words.n - 1]) >= CHAT_SEARCH_PREFIX_MIN;
    chat_search_info_t info = {0};
    search_job_t job = {.store = app->store,
                        .rc = {app->store, &p->user, 0},
                        .hits = xcalloc((size_t)limit, sizeof(*job.hits))};
    /* One channel: the store walks only its list (and asks can_read once). */
    job.q = (chat_search_query_t){.text = text,
                                  .channel_id = a->nchans == 1 ? a->chans[0] : NULL,
                                  .channel_ids = a->nchans > 1 ? a->chans : NULL,
                                  .n_channel_ids = a->nchans > 1 ? a->nchans : 0,
                                  .sender_ids = a->senders,
                                  .n_sender_ids = a->nsenders,
                                  .from_ms = from_ms,
                                  .to_ms = to_ms,
                                  .limit = (size_t)limit,
                                  .offset = (size_t)(a->page - 1) * (size_t)limit,
                                  .can_read = can_read,
                                  .ctx = &job.rc,
                                  .progress = in_time,
                                  .work_max = app->config->search_work_max,
                                  .info = &info};
    if (words.n > 0 && !run_on_worker(app->config, &job)) {
        free(job.hits);
        free_words(&words);
        http_set_header(ctx, "Retry-After", "1");
        http_reply_error(ctx, HTTP_ERR_UNAVAILABLE, NULL, "too many searches at once; retry");
        return;
    }
    chat_search_hit_t *hits = job.hits;
    size_t n = job.n, total = job.total;
    json_t *results = json_array();
    hit_views_t views = {.channel = xcalloc(n ? n : 1, sizeof(*views.channel)),
                         .sender = xcalloc(n ? n : 1, sizeof(*views.sender))};
    for (size_t i = 0; i < n; i++) {
        chat_message_t *m = &hits[i].message;
        char *content = highlighted(&words, m->content ? m->content : "");
        json_array_append_new(
            results,
            json_pack("{s:s, s:s, s:s, s:s, s:O, s:o, s:f}", "message_id", m->id, "channel_id",
                      m->channel_id, "channel_name",
                      hit_channel_name(&views, app->store, m->channel_id), "content", content,
                      "sender", hit_sender(&views, app->store, m->user_id), "created_at",
                      time_json(m->created_at), "score", hits[i].score));
        free(content);
        chat_message_clear(m);
    }
    hit_views_clear(&views);
    free(hits);
    free_words(&words);
    double ms = (double)(clock_mono_ns() - started) / 1e6;
    http_reply_json(ctx, 200,
                    json_pack("{s:o, s:I, s:b, s:f, s:I, s:I, s:I}", "results", results, "total",
                              (json_int_t)total, "truncated", info.truncated,
                              "processing_time_ms", ms, "page", (json_int_t)a->page, "pages",
                              (json_int_t)((total + (size_t)limit - 1) / (size_t)limit),
                              "limit", (json_int_t)limit));
}

/* A whole number from 1 to max in the query string (absent: *out kept). */
static bool read_number(http_ctx_t *ctx, const char *name, long max, long *out)
{
    const char *text = http_query(ctx, name);
    if (text == NULL)
        return true;
    char *end;
    long v = strtol(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || v < 1 || v > max) {
        http_reply_invalid(ctx, name, "%s must be a whole number from 1 to %ld", name, max);
        return false;
    }
    *out = v;
    return true;
}

static bool read_limit(http_ctx_t *ctx, long *limit)
{
    *limit = 50;
    return read_number(ctx, "limit", 100, limit);
}

static void get_search_messages(http_ctx_t *ctx)
{
    const principal_t *p = ctx->principal;
    search_args_t a = {.from_field = "date_from", .to_field = "date_to", .page = 1};
    a.text = http_query(ctx, "q");
    if (a.text == NULL)
        a.text = http_query(ctx, "query");
    a.from = http_query(ctx, "date_from");
    a.to = http_query(ctx, "date_to");
    const char *chan = http_query(ctx, "channel_id"), *sender = http_query(ctx, "sender_id");
    if (read_limit(ctx, &a.limit) && read_number(ctx, "page", SEARCH_PAGE_MAX, &a.page) &&
        (chan == NULL || add_id(ctx, "channel_id", chan, a.chans, &a.nchans)) &&
        add_id_list(ctx, "chat_ids", http_query(ctx, "chat_ids"), &a.buf[0], a.chans, &a.nchans) &&
        (sender == NULL || add_id(ctx, "sender_id", sender, a.senders, &a.nsenders)) &&
        add_id_list(ctx, "sender_ids", http_query(ctx, "sender_ids"), &a.buf[1], a.senders,
                    &a.nsenders))
        search_messages(ctx, p, &a);
    free(a.buf[0]);
    free(a.buf[1]);
}

/* Reads a JSON array of ids (absent or null: none) into a kind's list. */
static bool body_ids(http_ctx_t *ctx, json_t *parent, const char *key, const char *field,
                     const char **list, size_t *n)
{
    json_t *v = json_object_get(parent, key);
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_array(v)) {
        http_reply_invalid(ctx, field, "%s must be a list of ids", field);
        return false;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!add_id(ctx, field, json_string_value(e), list, n))
            return false;
    }
    return true;
}

/* A date of the filters object: a string, or absent/null. */
static bool body_date(http_ctx_t *ctx, json_t *filters, const char *key, const char *field,
                      const char **out)
{
    json_t *v = json_object_get(filters, key);
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v) || json_string_length(v) > 40) {
        http_reply_invalid(ctx, field, "%s must be an RFC 3339 time or a date", field);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* Fechatter's nested form: filters {chat_ids, sender_ids, date_from,
 * date_to}; any other key there is refused, naming it. */
static bool body_filters(http_ctx_t *ctx, search_args_t *a)
{
    json_t *f = json_object_get(ctx->body, "filters");
    if (f == NULL || json_is_null(f))
        return true;
    if (!json_is_object(f)) {
        http_reply_invalid(ctx, "filters", "filters must be an object");
        return false;
    }
    static const char *const known[] = {"chat_ids", "sender_ids", "date_from", "date_to"};
    const char *key;
    json_t *v;
    json_object_foreach(f, key, v) {
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok) {
            char field[80];
            snprintf(field, sizeof(field), "filters.%.64s", key);
            http_reply_invalid(ctx, field,
                               "unknown filter; filters takes chat_ids, sender_ids, date_from, "
                               "date_to");
            return false;
        }
    }
    if ((a->from && json_object_get(f, "date_from")) || (a->to && json_object_get(f, "date_to"))) {
        http_reply_invalid(ctx, a->from && json_object_get(f, "date_from") ? "filters.date_from"
                                                                            : "filters.date_to",
                           "give a date either at the top level or in filters");
        return false;
    }
    if (json_object_get(f, "date_from"))
        a->from_field = "filters.date_from";
    if (json_object_get(f, "date_to"))
        a->to_field = "filters.date_to";
    return body_ids(ctx, f, "chat_ids", "filters.chat_ids", a->chans, &a->nchans) &&
           body_ids(ctx, f, "sender_ids", "filters.sender_ids", a->senders, &a->nsenders) &&
           body_date(ctx, f, "date_from", "filters.date_from", &a->from) &&
           body_date(ctx, f, "date_to", "filters.date_to", &a->to);
}

static void post_search_messages(http_ctx_t *ctx)
{
    const principal_t *p = ctx->principal;
    search_args_t a = {.from_field = "date_from", .to_field = "date_to", .page = 1};
    const char *channel = NULL, *sender = NULL;
    long long limit = 50, page = 1;
    if (http_field_string(ctx, "q", false, 0, 1000, false, &a.text) == 0 &&
        (a.text != NULL || http_field_string(ctx, "query", false, 0, 1000, false, &a.text) == 0) &&
        http_field_string(ctx, "channel_id", false, 1, STORE_ID_MAX - 1, false, &channel) == 0 &&
        http_field_string(ctx, "sender_id", false, 1, STORE_ID_MAX - 1, false, &sender) == 0 &&
        http_field_string(ctx, "date_from", false, 1, 40, false, &a.from) == 0 &&
        http_field_string(ctx, "date_to", false, 1, 40, false, &a.to) == 0 &&
        http_field_int(ctx, "limit", false, 1, 100, &limit) == 0 &&
        http_field_int(ctx, "page", false, 1, SEARCH_PAGE_MAX, &page) == 0 &&
        (channel == NULL || add_id(ctx, "channel_id", channel, a.chans, &a.nchans)) &&
        (sender == NULL || add_id(ctx, "sender_id", sender, a.senders, &a.nsenders)) &&
        body_filters(ctx, &a)) {
        a.limit = (long)limit;
        a.page = (long)page;
        search_messages(ctx, p, &a);
    }
}

static void get_search_users(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    long limit;
    const char *q = http_query(ctx, "q");
    if (q && http_utf8_length(q, strlen(q)) > 100) {
        http_reply_invalid(ctx, "q", "q is limited to 100 characters");
    } else if (read_limit(ctx, &limit) && fields_prune(ctx, FIELDS_USER, NULL)) {
        store_user_t *list = xcalloc((size_t)limit, sizeof(*list));
        size_t n;
        size_t total = store_user_search(app->store, q, 0, (size_t)limit, list, &n);
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            bool self = strcmp(list[i].id, p->user.id) == 0;
            json_array_append_new(arr, user_json(&list[i], self || p->user.is_admin, self));
            store_user_clear(&list[i]);
        }
        free(list);
        fields_prune(ctx, FIELDS_USER, arr);
        http_reply_json(ctx, 200, json_pack("{s:o, s:I}", "users", arr, "total", (json_int_t)total));
    }
}

static void get_search_channels(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    const principal_t *p = ctx->principal;
    long limit;
    const char *q = http_query(ctx, "q");
    if (q && http_utf8_length(q, strlen(q)) > 100) {
        http_reply_invalid(ctx, "q", "q is limited to 100 characters");
    } else if (read_limit(ctx, &limit) && fields_prune(ctx, FIELDS_CHANNEL, NULL)) {
        chat_channel_t *list = xcalloc((size_t)limit, sizeof(*list));
        size_t n;
        size_t total = chat_channel_list(app->store, p->user.id, q, 0, (size_t)limit, list, &n);
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(arr, channel_json(app->store, &list[i]));
            chat_channel_clear(&list[i]);
        }
        free(list);
        fields_prune(ctx, FIELDS_CHANNEL, arr);
        http_reply_json(ctx, 200,
                        json_pack("{s:o, s:I}", "channels", arr, "total", (json_int_t)total));
    }
}

const http_route_t search_routes[] = {
    {"GET", "/api/v1/search/messages", get_search_messages, HTTP_USER_READ | HTTP_RATE_SEARCH,
     "q,query,channel_id,chat_ids,sender_id,sender_ids,date_from,date_to,page,limit", ""},
    {"POST", "/api/v1/search/messages", post_search_messages, HTTP_USER_WRITE | HTTP_RATE_SEARCH,
     "", "q,query,channel_id,chat_ids,sender_id,sender_ids,date_from,date_to,filters,page,limit"},
    {"GET", "/api/v1/search/users", get_search_users, HTTP_USER_READ | HTTP_RATE_SEARCH,
     "q,limit,fields", ""},
    {"GET", "/api/v1/search/channels", get_search_channels, HTTP_USER_READ | HTTP_RATE_SEARCH,
     "q,limit,fields", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
