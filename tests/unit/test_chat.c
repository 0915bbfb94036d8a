/*
 * The chat tables (src/store/chat*.c, search.c): channels and their names,
 * direct channels, memberships, messages and history cursors, edits,
 * reactions, threads, idempotency, unread counts, replay after reopening
 * (with and without a snapshot), idempotent apply, concurrent posters, the
 * search index, the record decoders on bad input, and memory per message.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <unistd.h>

#include "../test.h"
#include "testutil.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "store/chat_internal.h"

/* ---- helpers ------------------------------------------------------------------ */

static int make_channel(store_t *s, const char *name, const char *owner, bool is_private,
                        char id[STORE_ID_MAX])
{
    chat_channel_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.name, sizeof(c.name), "%s", name);
    snprintf(c.owner_id, sizeof(c.owner_id), "%s", owner);
    c.description = strdup("about it");
    c.is_private = is_private;
    const char *members[1] = {owner};
    bool created = false;
    uint64_t lsn = 0;
    int rc = chat_channel_create(s, &c, members, 1, &created, &lsn);
    if (rc == 0) {
        ASSERT_TRUE(created);
        ASSERT_GT(lsn, 0);
        ASSERT_EQ(store_wait(s, lsn), 0);
        if (id)
            snprintf(id, STORE_ID_MAX, "%s", c.id);
    }
    chat_channel_clear(&c);
    return rc;
}

static void channel(store_t *s, const char *name, const char *owner, bool is_private,
                    char id[STORE_ID_MAX])
{
    ASSERT_EQ(make_channel(s, name, owner, is_private, id), 0);
}

static int post_full(store_t *s, const char *ch, const char *user, const char *text,
                     const char *reply_to, const char *key, char id[STORE_ID_MAX], bool *existing)
{
    chat_message_t m;
    memset(&m, 0, sizeof(m));
    snprintf(m.channel_id, sizeof(m.channel_id), "%s", ch);
    snprintf(m.user_id, sizeof(m.user_id), "%s", user);
    m.content = text ? strdup(text) : NULL;
    if (reply_to)
        snprintf(m.reply_to, sizeof(m.reply_to), "%s", reply_to);
    if (key)
        snprintf(m.idempotency_key, sizeof(m.idempotency_key), "%s", key);
    uint64_t lsn = 0;
    bool ex = false;
    int rc = chat_message_post(s, &m, &ex, &lsn);
    if (rc == 0) {
        ASSERT_TRUE(lsn > 0 || ex); /* an existing message: the last LSN, 0 for none */
        if (id)
            snprintf(id, STORE_ID_MAX, "%s", m.id);
        if (existing)
            *existing = ex;
    }
    chat_message_clear(&m);
    return rc;
}

static void post(store_t *s, const char *ch, const char *user, const char *text,
                 char id[STORE_ID_MAX])
{
    ASSERT_EQ(post_full(s, ch, user, text, NULL, NULL, id, NULL), 0);
}

typedef struct member_change {
    int role;
    int64_t joined_at, banned_at;
    const char *last_read;
    bool check_fresh; /* expect a zeroed struct with the ids */
    const char *ch, *user;
} member_change_t;

static int change_member(void *ctx, chat_membership_t *m)
{
    member_change_t *c = ctx;
    if (c->check_fresh) {
        if (m->role != 0 || m->joined_at != 0 || m->banned_at != 0 || m->last_read[0] ||
            strcmp(m->channel_id, c->ch) != 0 || strcmp(m->user_id, c->user) != 0)
            return 99;
    }
    m->role = c->role;
    if (c->joined_at >= 0)
        m->joined_at = c->joined_at;
    if (c->banned_at >= 0)
        m->banned_at = c->banned_at;
    if (c->last_read)
        snprintf(m->last_read, sizeof(m->last_read), "%s", c->last_read);
    snprintf(m->user_id, sizeof(m->user_id), "hijack"); /* must not stick */
    return 0;
}

static int set_member(store_t *s, const char *ch, const char *user, int role, int64_t joined,
                      int64_t banned)
{
    member_change_t c = {.role = role, .joined_at = joined, .banned_at = banned};
    uint64_t lsn;
    int rc = chat_membership_modify(s, ch, user, change_member, &c, NULL, &lsn);
    if (rc == 0)
        ASSERT_EQ(store_wait(s, lsn), 0);
    return rc;
}

/* A growing string, for dumps. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf_t;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void dump_message(sbuf_t *b, const chat_message_t *m)
{
    sb_printf(b, "%s ch=%s u=%s c=%s r=%s t=%s k=%s e=%d d=%d at=%lld/%lld", m->id,
              m->channel_id, m->user_id, m->content ? m->content : "(null)", m->reply_to,
              m->thread_id, m->idempotency_key, m->is_edited, m->is_deleted,
              (long long)m->created_at, (long long)m->updated_at);
    for (size_t i = 0; i < m->n_mentions; i++)
        sb_printf(b, " @%s", m->mentions[i]);
    for (size_t i = 0; i < m->n_attachments; i++)
        sb_printf(b, " +%s", m->attachments[i]);
    for (size_t i = 0; i < m->n_reactions; i++) {
        sb_printf(b, " [%s", m->reactions[i].emoji);
        for (size_t j = 0; j < m->reactions[i].n_users; j++)
            sb_printf(b, " %s", m->reactions[i].users[j]);
        sb_printf(b, "]");
    }
    sb_printf(b, "\n");
}

static void dump_search(sbuf_t *b, store_t *s, const char *text)
{
    chat_search_query_t q = {.text = text, .limit = 50};
    chat_search_hit_t hits[50];
    size_t n;
    size_t total = chat_search(s, &q, hits, &n);
    sb_printf(b, "search %s: %zu:", text, total);
    for (size_t i = 0; i < n; i++) {
        sb_printf(b, " %s", hits[i].message.id);
        chat_message_clear(&hits[i].message);
    }
    sb_printf(b, "\n");
}

/* Everything a user of the store can see, as text. */
static char *dump_state(store_t *s, const char *const *users, size_t n_users)
{
    sbuf_t b = {0};
    for (size_t u = 0; u < n_users; u++) {
        chat_channel_t list[64];
        size_t n;
        size_t total = chat_channel_list(s, users[u], NULL, 0, 64, list, &n);
        sb_printf(&b, "user %s sees %zu\n", users[u], total);
        for (size_t i = 0; i < n; i++) {
            chat_channel_t *c = &list[i];
            sb_printf(&b, " %s '%s' desc=%s d=%d p=%d o=%s k=%s at=%lld/%lld\n", c->id, c->name,
                      c->description ? c->description : "(null)", c->is_direct, c->is_private,
                      c->owner_id, c->direct_key ? c->direct_key : "-",
                      (long long)c->created_at, (long long)c->updated_at);
            chat_membership_t mm[64];
            size_t nm;
            size_t tm = chat_members(s, c->id, 0, 64, mm, &nm);
            sb_printf(&b, "  members %zu/%zu:", tm, chat_member_count(s, c->id));
            for (size_t k = 0; k < nm; k++)
                sb_printf(&b, " %s:%d:%lld:%s", mm[k].user_id, mm[k].role,
                          (long long)mm[k].joined_at, mm[k].last_read);
            tm = chat_banned(s, c->id, 0, 64, mm, &nm);
            sb_printf(&b, "\n  banned %zu:", tm);
            for (size_t k = 0; k < nm; k++)
                sb_printf(&b, " %s:%lld", mm[k].user_id, (long long)mm[k].banned_at);
            sb_printf(&b, "\n  unread %zu\n", chat_unread(s, c->id, users[u], "", 1000));
            chat_message_t *h = calloc(2000, sizeof(*h));
            size_t nh;
            bool more;
            ASSERT_EQ(chat_history(s, c->id, NULL, NULL, 2000, h, &nh, &more), 0);
            for (size_t k = 0; k < nh; k++) {
                dump_message(&b, &h[k]);
                chat_message_t th[16];
                size_t nt;
                size_t tt = chat_thread(s, h[k].id, 16, th, &nt);
                if (tt)
                    sb_printf(&b, "   thread %zu:", tt);
                for (size_t x = 0; x < nt; x++) {
                    sb_printf(&b, " %s", th[x].id);
                    chat_message_clear(&th[x]);
                }
                if (tt)
                    sb_printf(&b, "\n");
                chat_message_clear(&h[k]);
            }
            free(h);
            chat_channel_clear(c);
        }
    }
    return b.p;
}

static const char *const queries[] = {"apples", "APPLES", "pears", "ωmega", "ünïcödé",
                                      "mess", "number 1", "welcome lob"};

static char *full_dump(store_t *s, const char *const *users, size_t n_users)
{
    sbuf_t sb = {0};
    char *state = dump_state(s, users, n_users);
    sb_printf(&sb, "%s", state);
    free(state);
    for (size_t i = 0; i < sizeof(queries) / sizeof(*queries); i++)
        dump_search(&sb, s, queries[i]);
    return sb.p;
}

static void expect_dump(store_t *s, const char *const *users, const char *want, const char *what)
{
    char *got = full_dump(s, users, 3);
    if (strcmp(got, want) != 0)
        TEST_FAIL_("%s differs:\n--- want\n%s\n--- got\n%s", what, want, got);
    free(got);
}

/* ---- channels ------------------------------------------------------------------- */

TEST(chat_channels_create_get_and_list_by_visibility)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-chan");
    store_t *s = ut_store_open(dir);
    char general[STORE_ID_MAX], secret[STORE_ID_MAX], rnd[STORE_ID_MAX];
    channel(s, "General", "usr_alice", false, general);
    channel(s, "Secret", "usr_alice", true, secret);
    channel(s, "random", "usr_bob", false, rnd);
    ASSERT_EQ(strncmp(general, "ch_", 3), 0);

    chat_channel_t c;
    ASSERT_TRUE(chat_channel_get(s, secret, &c));
    ASSERT_STREQ(c.name, "Secret");
    ASSERT_STREQ(c.description, "about it");
    ASSERT_STREQ(c.owner_id, "usr_alice");
    ASSERT_TRUE(c.is_private);
    ASSERT_TRUE(!c.is_direct);
    ASSERT_TRUE(!c.is_deleted);
    ASSERT_NULL(c.direct_key);
    ASSERT_GT(c.created_at, 0);
    ASSERT_EQ(c.updated_at, c.created_at);
    chat_channel_clear(&c);
    ASSERT_TRUE(!chat_channel_get(s, "ch_missing", &c));

    chat_membership_t m;
    ASSERT_TRUE(chat_membership_get(s, general, "usr_alice", &m));
    ASSERT_EQ(m.role, CHAT_ROLE_OWNER);
    ASSERT_EQ(chat_member_count(s, general), 1);

    chat_channel_t list[8];
    size_t n;
    ASSERT_EQ(chat_channel_list(s, "usr_alice", NULL, 0, 8, list, &n), 3);
    ASSERT_EQ(n, 3);
    ASSERT_STREQ(list[0].name, "General");
    ASSERT_STREQ(list[1].name, "random");
    ASSERT_STREQ(list[2].name, "Secret");
    for (size_t i = 0; i < n; i++)
        chat_channel_clear(&list[i]);
    /* Private channels only to members. */
    ASSERT_EQ(chat_channel_list(s, "usr_carol", NULL, 0, 8, list, &n), 2);
    ASSERT_STREQ(list[0].name, "General");
    ASSERT_STREQ(list[1].name, "random");
    for (size_t i = 0; i < n; i++)
        chat_channel_clear(&list[i]);
    ASSERT_EQ(chat_channel_list(s, NULL, NULL, 0, 8, list, &n), 2);
    for (size_t i = 0; i < n; i++)
        chat_channel_clear(&list[i]);
    ASSERT_EQ(chat_channel_list(s, "usr_carol", "ENER", 0, 8, list, &n), 1);
    ASSERT_STREQ(list[0].name, "General");
    chat_channel_clear(&list[0]);
    ASSERT_EQ(chat_channel_list(s, "usr_alice", NULL, 1, 1, list, &n), 3);
    ASSERT_EQ(n, 1);
    ASSERT_STREQ(list[0].name, "random");
    chat_channel_clear(&list[0]);

    /* A member of a private channel sees it; after leaving, no more. */
    ASSERT_EQ(set_member(s, secret, "usr_carol", CHAT_ROLE_MEMBER, 5, -1), 0);
    ASSERT_EQ(chat_channel_list(s, "usr_carol", NULL, 0, 8, list, &n), 3);
    for (size_t i = 0; i < n; i++)
        chat_channel_clear(&list[i]);
    ASSERT_EQ(set_member(s, secret, "usr_carol", CHAT_ROLE_NONE, -1, -1), 0);
    ASSERT_EQ(chat_channel_list(s, "usr_carol", NULL, 0, 8, list, &n), 2);
    for (size_t i = 0; i < n; i++)
        chat_channel_clear(&list[i]);

    /* Direct channels come last, newest first. */
    const char *pair1[] = {"usr_alice", "usr_bob"}, *pair2[] = {"usr_alice", "usr_carol"};
    char d1[STORE_ID_MAX], d2[STORE_ID_MAX];
    chat_channel_t dc;
    bool created;
    uint64_t lsn;
    memset(&dc, 0, sizeof(dc));
    dc.is_direct = true;
    snprintf(dc.owner_id, sizeof(dc.owner_id), "usr_alice");
    dc.created_at = 1000;
    ASSERT_EQ(chat_channel_create(s, &dc, pair1, 2, &created, &lsn), 0);
    snprintf(d1, sizeof(d1), "%s", dc.id);
    chat_channel_clear(&dc);
    memset(&dc, 0, sizeof(dc));
    dc.is_direct = true;
    snprintf(dc.owner_id, sizeof(dc.owner_id), "usr_alice");
    dc.created_at = 2000;
    ASSERT_EQ(chat_channel_create(s, &dc, pair2, 2, &created, &lsn), 0);
    snprintf(d2, sizeof(d2), "%s", dc.id);
    chat_channel_clear(&dc);
    ASSERT_EQ(chat_channel_list(s, "usr_alice", NULL, 0, 8, list, &n), 5);
    ASSERT_STREQ(list[3].id, d2);
    ASSERT_STREQ(list[4].id, d1);
    for (size_t i = 0; i < n; i++)
        chat_channel_clear(&list[i]);
    /* A query leaves direct channels out. */
    ASSERT_EQ(chat_channel_list(s, "usr_alice", "e", 0, 8, list, &n), 2);
    for (size_t i = 0; i < n; i++)
        chat_channel_clear(&list[i]);
    ASSERT_EQ(chat_channel_list(s, "usr_bob", NULL, 0, 8, list, &n), 3);
    ASSERT_STREQ(list[2].id, d1);
    for (size_t i = 0; i < n; i++)
        chat_channel_clear(&list[i]);

    size_t nch, nmsg;
    chat__stats(s, &nch, &nmsg);
    ASSERT_EQ(nch, 5);
    ASSERT_EQ(nmsg, 0);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

typedef struct chan_change {
    const char *name;
    bool delete_it;
    int result;
} chan_change_t;

static int change_channel(void *ctx, chat_channel_t *c)
{
    chan_change_t *cc = ctx;
    if (cc->result)
        return cc->result;
    if (cc->name)
        snprintf(c->name, sizeof(c->name), "%s", cc->name);
    if (cc->delete_it)
        c->is_deleted = true;
    free(c->description);
    c->description = strdup("changed");
    snprintf(c->id, sizeof(c->id), "ch_hijack"); /* must not stick */
    c->updated_at++;
    return 0;
}

static int rename_channel(store_t *s, const char *id, const char *name, bool del)
{
    chan_change_t cc = {.name = name, .delete_it = del};
    chat_channel_t out;
    uint64_t lsn;
    int rc = chat_channel_modify(s, id, change_channel, &cc, &out, &lsn);
    if (rc == 0) {
        ASSERT_STREQ(out.id, id);
        ASSERT_STREQ(out.description, "changed");
        chat_channel_clear(&out);
        ASSERT_EQ(store_wait(s, lsn), 0);
    }
    return rc;
}

static void expect_names(store_t *s, const char *user, size_t offset, size_t limit,
                         size_t total, const char *const *names, size_t n_names)
{
    chat_channel_t list[16];
    size_t n;
    ASSERT_EQ(chat_channel_list(s, user, NULL, offset, limit, list, &n), total);
    ASSERT_EQ(n, n_names);
    for (size_t i = 0; i < n; i++) {
        ASSERT_STREQ(list[i].name, names[i]);
        chat_channel_clear(&list[i]);
    }
}

/* The listing without a query pages from a cached order: every change of a
 * channel (create, rename, delete) shows in the next listing. */
TEST(chat_channel_list_pages_follow_every_change)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-order");
    store_t *s = ut_store_open(dir);
    char b[STORE_ID_MAX], d[STORE_ID_MAX];
    channel(s, "bravo", "usr_alice", false, b);
    channel(s, "delta", "usr_alice", false, d);
    channel(s, "charlie", "usr_bob", true, NULL);
    channel(s, "alpha", "usr_alice", false, NULL);
    expect_names(s, "usr_alice", 0, 2, 3, (const char *[]){"alpha", "bravo"}, 2);
    expect_names(s, "usr_alice", 2, 2, 3, (const char *[]){"delta"}, 1);
    expect_names(s, "usr_bob", 1, 2, 4, (const char *[]){"bravo", "charlie"}, 2);
    ASSERT_EQ(rename_channel(s, b, "echo", false), 0);
    expect_names(s, "usr_alice", 0, 8, 3, (const char *[]){"alpha", "delta", "echo"}, 3);
    ASSERT_EQ(rename_channel(s, d, NULL, true), 0);
    expect_names(s, "usr_alice", 0, 8, 2, (const char *[]){"alpha", "echo"}, 2);
    expect_names(s, "usr_alice", 5, 8, 2, NULL, 0);
    store_close(s);
}

TEST(chat_channel_names_are_unique_case_insensitively_and_freed_by_delete)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-names");
    store_t *s = ut_store_open(dir);
    char dev[STORE_ID_MAX], uber[STORE_ID_MAX], other[STORE_ID_MAX];
    channel(s, "Dev", "usr_a", false, dev);
    ASSERT_EQ(make_channel(s, "dev", "usr_b", false, NULL), STORE_E_CONFLICT_NAME);
    ASSERT_EQ(make_channel(s, "DEV", "usr_b", true, NULL), STORE_E_CONFLICT_NAME);
    channel(s, "Über", "usr_a", false, uber);
    ASSERT_EQ(make_channel(s, "über", "usr_b", false, NULL), STORE_E_CONFLICT_NAME);
    ASSERT_EQ(make_channel(s, "ÜBER", "usr_b", false, NULL), STORE_E_CONFLICT_NAME);
    ASSERT_EQ(make_channel(s, "", "usr_b", false, NULL), STORE_E_INVALID);
    ASSERT_EQ(make_channel(s, "x", "", false, NULL), STORE_E_INVALID);
    ASSERT_EQ(make_channel(s, "x", "bad id!", false, NULL), STORE_E_INVALID);

    /* A rename moves the name. */
    ASSERT_EQ(rename_channel(s, dev, "Ops", false), 0);
    channel(s, "dev", "usr_b", false, other);
    ASSERT_EQ(make_channel(s, "ops", "usr_b", false, NULL), STORE_E_CONFLICT_NAME);
    ASSERT_EQ(rename_channel(s, other, "OPS", false), STORE_E_CONFLICT_NAME);
    ASSERT_EQ(rename_channel(s, dev, "ops", false), 0); /* its own name, new case */
    ASSERT_EQ(rename_channel(s, dev, "", false), STORE_E_INVALID);
    chat_channel_t c;
    ASSERT_TRUE(chat_channel_get(s, dev, &c));
    ASSERT_STREQ(c.name, "ops");
    chat_channel_clear(&c);

    /* A delete frees it. */
    ASSERT_EQ(rename_channel(s, dev, NULL, true), 0);
    ASSERT_TRUE(chat_channel_get(s, dev, &c));
    ASSERT_TRUE(c.is_deleted);
    chat_channel_clear(&c);
    channel(s, "OPS", "usr_b", false, NULL);
    chat_channel_t list[8];
    size_t n;
    ASSERT_EQ(chat_channel_list(s, "usr_a", NULL, 0, 8, list, &n), 3);
    for (size_t i = 0; i < n; i++) {
        ASSERT_STRNE(list[i].id, dev);
        chat_channel_clear(&list[i]);
    }

    /* fn's refusal, a missing channel. */
    chan_change_t refuse = {.name = "zzz", .result = 42};
    uint64_t lsn;
    ASSERT_EQ(chat_channel_modify(s, uber, change_channel, &refuse, NULL, &lsn), 42);
    ASSERT_TRUE(chat_channel_get(s, uber, &c));
    ASSERT_STREQ(c.name, "Über");
    chat_channel_clear(&c);
    ASSERT_EQ(rename_channel(s, "ch_nope", "a", false), STORE_E_NOT_FOUND);

    /* The names survive a reopen (log only, then the snapshot). */
    ASSERT_EQ(store_close(s), 0);
    ut_rm_snapshots(dir);
    for (int round = 0; round < 2; round++) {
        s = ut_store_open(dir);
        ASSERT_EQ(make_channel(s, "über", "usr_b", false, NULL), STORE_E_CONFLICT_NAME);
        ASSERT_EQ(make_channel(s, "Ops", "usr_b", false, NULL), STORE_E_CONFLICT_NAME);
        ASSERT_EQ(make_channel(s, "Dev", "usr_b", false, NULL), STORE_E_CONFLICT_NAME);
        ASSERT_EQ(store_close(s), 0);
    }
    ut_rmrf(dir);
    ut_leak_check();
}

/* Offset pages from the newest (chat_history_skip) agree with the cursor
 * pages, count deleted messages, and reopen the same; the total is the
 * list's length. */
static void expect_skip(store_t *s, const char *ch, uint64_t skip, size_t limit,
                        char (*ids)[STORE_ID_MAX], size_t first, size_t count, bool more,
                        size_t total)
{
    chat_message_t *out = calloc(limit ? limit : 1, sizeof(*out));
    size_t n = 99, t = 99;
    bool has_more = !more;
    chat_history_skip(s, ch, skip, limit, out, &n, &has_more, &t);
    ASSERT_EQ(n, count);
    ASSERT_EQ(has_more, more);
    ASSERT_EQ(t, total);
    for (size_t i = 0; i < n; i++) {
        ASSERT_STREQ(out[i].id, ids[first + i]);
        chat_message_clear(&out[i]);
    }
    free(out);
}

static int mark_deleted(void *ctx, chat_message_t *m)
{
    (void)ctx;
    free(m->content);
    m->content = NULL;
    m->is_deleted = true;
    return 0;
}

TEST(chat_history_skip_pages_from_the_newest)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-skip");
    store_t *s = ut_store_open(dir);
    char ch[STORE_ID_MAX], other[STORE_ID_MAX], stray[STORE_ID_MAX];
    channel(s, "main", "usr_a", false, ch);
    channel(s, "other", "usr_a", false, other);
    expect_skip(s, ch, 0, 10, NULL, 0, 0, false, 0);
    expect_skip(s, "ch_missing", 0, 10, NULL, 0, 0, false, 0);
    ASSERT_EQ(chat_history_count(s, ch), 0);
    enum { N = 300 };
    char (*ids)[STORE_ID_MAX] = calloc(N, STORE_ID_MAX);
    for (int i = 0; i < N; i++) {
        post(s, ch, "usr_a", "m", ids[i]);
        if (i % 100 == 0)
            post(s, other, "usr_a", "elsewhere", stray);
    }
    for (int round = 0; round < 2; round++) {
        ASSERT_EQ(chat_history_count(s, ch), N);
        ASSERT_EQ(chat_history_count(s, other), 3);
        expect_skip(s, ch, 0, 50, ids, N - 50, 50, true, N);
        expect_skip(s, ch, 25, 25, ids, N - 50, 25, true, N);
        expect_skip(s, ch, N - 10, 25, ids, 0, 10, false, N);
        expect_skip(s, ch, N - 1, 1, ids, 0, 1, false, N);
        expect_skip(s, ch, N - 2, 1, ids, 1, 1, true, N);
        expect_skip(s, ch, N, 10, ids, 0, 0, false, N);
        expect_skip(s, ch, UINT64_MAX, 10, ids, 0, 0, false, N);
        expect_skip(s, ch, 0, N + 5, ids, 0, N, false, N);
        /* A deleted message keeps its place and its count. */
        if (round == 0) {
            uint64_t lsn;
            ASSERT_EQ(chat_message_modify(s, ids[N - 1], mark_deleted, NULL, NULL, &lsn), 0);
            s = ut_store_reopen(s, dir);
        }
    }
    chat_message_t one;
    size_t n, total;
    bool more;
    chat_history_skip(s, ch, 0, 1, &one, &n, &more, &total);
    ASSERT_EQ(n, 1);
    ASSERT_TRUE(one.is_deleted);
    chat_message_clear(&one);
    free(ids);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

TEST(chat_direct_channels_are_one_per_set_of_users)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-direct");
    store_t *s = ut_store_open(dir);
    const char *ids[] = {"usr_b", "usr_a", "usr_b", "usr_c"};
    char *key = chat_direct_key(ids, 4);
    ASSERT_STREQ(key, "usr_a,usr_b,usr_c");
    free(key);

    const char *abc[] = {"usr_a", "usr_b", "usr_c"}, *cba[] = {"usr_c", "usr_b", "usr_a"};
    chat_channel_t c;
    memset(&c, 0, sizeof(c));
    c.is_direct = true;
    snprintf(c.owner_id, sizeof(c.owner_id), "usr_a");
    c.direct_key = chat_direct_key(abc, 3);
    bool created = false;
    uint64_t lsn = 0;
    ASSERT_EQ(chat_channel_create(s, &c, abc, 3, &created, &lsn), 0);
    ASSERT_TRUE(created);
    ASSERT_TRUE(c.is_private);
    char found[STORE_ID_MAX];
    ASSERT_TRUE(chat_direct_find(s, "usr_a,usr_b,usr_c", found));
    ASSERT_STREQ(found, c.id);
    ASSERT_TRUE(!chat_direct_find(s, "usr_a,usr_b", found));
    ASSERT_EQ(c.name[0], '\0');
    ASSERT_EQ(store_wait(s, lsn), 0);
    char id[STORE_ID_MAX];
    snprintf(id, sizeof(id), "%s", c.id);
    chat_channel_clear(&c);

    /* The same set, another order, another creator, no key given. */
    memset(&c, 0, sizeof(c));
    c.is_direct = true;
    snprintf(c.owner_id, sizeof(c.owner_id), "usr_c");
    uint64_t lsn2 = 0;
    ASSERT_EQ(chat_channel_create(s, &c, cba, 3, &created, &lsn2), 0);
    ASSERT_TRUE(!created);
    ASSERT_STREQ(c.id, id);
    ASSERT_STREQ(c.owner_id, "usr_a");
    ASSERT_STREQ(c.direct_key, "usr_a,usr_b,usr_c");
    ASSERT_GE(lsn2, lsn);
    ASSERT_EQ(store_wait(s, lsn2), 0);
    chat_channel_clear(&c);

    chat_membership_t m;
    ASSERT_TRUE(chat_membership_get(s, id, "usr_a", &m));
    ASSERT_EQ(m.role, CHAT_ROLE_OWNER);
    ASSERT_TRUE(chat_membership_get(s, id, "usr_b", &m));
    ASSERT_EQ(m.role, CHAT_ROLE_MEMBER);
    ASSERT_TRUE(chat_membership_get(s, id, "usr_c", &m));
    ASSERT_EQ(m.role, CHAT_ROLE_MEMBER);
    ASSERT_EQ(chat_member_count(s, id), 3);

    /* Another set, another channel; too many users are refused. */
    const char *ab[] = {"usr_a", "usr_b"};
    memset(&c, 0, sizeof(c));
    c.is_direct = true;
    snprintf(c.owner_id, sizeof(c.owner_id), "usr_b");
    ASSERT_EQ(chat_channel_create(s, &c, ab, 2, &created, &lsn), 0);
    ASSERT_TRUE(created);
    ASSERT_STRNE(c.id, id);
    ASSERT_STREQ(c.direct_key, "usr_a,usr_b");
    chat_channel_clear(&c);
    const char *many[11] = {"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10"};
    memset(&c, 0, sizeof(c));
    c.is_direct = true;
    snprintf(c.owner_id, sizeof(c.owner_id), "u0");
    ASSERT_EQ(chat_channel_create(s, &c, many, 11, &created, &lsn), STORE_E_INVALID);
    chat_channel_clear(&c);

    /* It survives a reopen. */
    s = ut_store_reopen(s, dir);
    memset(&c, 0, sizeof(c));
    c.is_direct = true;
    snprintf(c.owner_id, sizeof(c.owner_id), "usr_b");
    ASSERT_EQ(chat_channel_create(s, &c, cba, 3, &created, &lsn), 0);
    ASSERT_TRUE(!created);
    ASSERT_STREQ(c.id, id);
    chat_channel_clear(&c);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

/* ---- memberships ----------------------------------------------------------------- */

TEST(chat_memberships_roles_bans_and_counts)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-members");
    store_t *s = ut_store_open(dir);
    char ch[STORE_ID_MAX];
    channel(s, "room", "usr_alice", false, ch);
    int64_t t0 = 2000000000000;

    /* A fresh membership: fn sees zeros and the ids; ids cannot change. */
    member_change_t c = {.role = CHAT_ROLE_MEMBER, .joined_at = t0 + 1, .banned_at = -1,
                         .check_fresh = true, .ch = ch, .user = "usr_bob"};
    chat_membership_t out;
    uint64_t lsn;
    ASSERT_EQ(chat_membership_modify(s, ch, "usr_bob", change_member, &c, &out, &lsn), 0);
    ASSERT_STREQ(out.user_id, "usr_bob");
    ASSERT_STREQ(out.channel_id, ch);
    ASSERT_EQ(out.role, CHAT_ROLE_MEMBER);
    ASSERT_EQ(store_wait(s, lsn), 0);
    ASSERT_EQ(chat_member_count(s, ch), 2);
    ASSERT_EQ(set_member(s, ch, "usr_carol", CHAT_ROLE_MEMBER, t0 + 2, -1), 0);
    ASSERT_EQ(set_member(s, ch, "usr_bob", CHAT_ROLE_MODERATOR, -1, -1), 0);
    chat_membership_t m;
    ASSERT_TRUE(chat_membership_get(s, ch, "usr_bob", &m));
    ASSERT_EQ(m.role, CHAT_ROLE_MODERATOR);
    ASSERT_EQ(m.joined_at, t0 + 1);
    ASSERT_EQ(chat_member_count(s, ch), 3);

    chat_membership_t list[8];
    size_t n;
    ASSERT_EQ(chat_members(s, ch, 0, 8, list, &n), 3);
    ASSERT_STREQ(list[0].user_id, "usr_alice"); /* by joined_at */
    ASSERT_STREQ(list[1].user_id, "usr_bob");
    ASSERT_STREQ(list[2].user_id, "usr_carol");
    ASSERT_EQ(chat_members(s, ch, 2, 8, list, &n), 3);
    ASSERT_EQ(n, 1);
    ASSERT_STREQ(list[0].user_id, "usr_carol");

    /* Leaving: role NONE, the membership stays. */
    ASSERT_EQ(set_member(s, ch, "usr_carol", CHAT_ROLE_NONE, -1, -1), 0);
    ASSERT_EQ(chat_member_count(s, ch), 2);
    ASSERT_TRUE(chat_membership_get(s, ch, "usr_carol", &m));
    ASSERT_EQ(m.role, CHAT_ROLE_NONE);
    ASSERT_EQ(chat_members(s, ch, 0, 8, list, &n), 2);
    /* Leaving twice is harmless. */
    ASSERT_EQ(set_member(s, ch, "usr_carol", CHAT_ROLE_NONE, -1, -1), 0);
    ASSERT_EQ(chat_member_count(s, ch), 2);

    /* Bans. */
    ASSERT_EQ(set_member(s, ch, "usr_dave", CHAT_ROLE_NONE, -1, 5), 0);
    ASSERT_EQ(set_member(s, ch, "usr_bob", CHAT_ROLE_NONE, -1, 6), 0);
    ASSERT_EQ(chat_member_count(s, ch), 1);
    ASSERT_EQ(chat_banned(s, ch, 0, 8, list, &n), 2);
    ASSERT_STREQ(list[0].user_id, "usr_dave");
    ASSERT_STREQ(list[1].user_id, "usr_bob");
    ASSERT_EQ(set_member(s, ch, "usr_dave", CHAT_ROLE_NONE, -1, 0), 0);
    ASSERT_EQ(chat_banned(s, ch, 0, 8, list, &n), 1);
    ASSERT_STREQ(list[0].user_id, "usr_bob");

    /* Refusals. */
    ASSERT_EQ(set_member(s, "ch_missing", "usr_x", CHAT_ROLE_MEMBER, 1, -1), STORE_E_NOT_FOUND);
    ASSERT_EQ(set_member(s, ch, "usr_x", 9, 1, -1), STORE_E_INVALID);
    member_change_t bad = {.role = 1, .joined_at = 1, .banned_at = -1, .last_read = "garbage"};
    ASSERT_EQ(chat_membership_modify(s, ch, "usr_x", change_member, &bad, NULL, &lsn),
              STORE_E_INVALID);
    ASSERT_TRUE(!chat_membership_get(s, ch, "usr_x", &m));
    ASSERT_EQ(chat_member_count(s, "ch_missing"), 0);
    ASSERT_EQ(chat_members(s, "ch_missing", 0, 8, list, &n), 0);

    /* The sets are rebuilt on reopen. */
    ASSERT_EQ(store_close(s), 0);
    ut_rm_snapshots(dir);
    for (int round = 0; round < 2; round++) {
        s = ut_store_open(dir);
        ASSERT_EQ(chat_member_count(s, ch), 1);
        ASSERT_EQ(chat_banned(s, ch, 0, 8, list, &n), 1);
        ASSERT_STREQ(list[0].user_id, "usr_bob");
        ASSERT_TRUE(chat_membership_get(s, ch, "usr_carol", &m));
        ASSERT_EQ(m.role, CHAT_ROLE_NONE);
        ASSERT_EQ(store_close(s), 0);
    }
    ut_rmrf(dir);
    ut_leak_check();
}

/* ---- messages ------------------------------------------------------------------------ */

static void expect_history(store_t *s, const char *ch, const char *before, const char *after,
                           size_t limit, char (*ids)[STORE_ID_MAX], size_t first, size_t count,
                           bool more)
{
    chat_message_t *out = calloc(limit ? limit : 1, sizeof(*out));
    size_t n = 99;
    bool has_more = !more;
    ASSERT_EQ(chat_history(s, ch, before, after, limit, out, &n, &has_more), 0);
    if (n != count || has_more != more)
        TEST_FAIL_("history before=%s after=%s limit=%zu: %zu messages (more %d), expected %zu "
                   "(more %d)",
                   before ? before : "-", after ? after : "-", limit, n, has_more, count, more);
    for (size_t i = 0; i < n; i++) {
        ASSERT_STREQ(out[i].id, ids[first + i]);
        chat_message_clear(&out[i]);
    }
    free(out);
}

TEST(chat_history_cursors_limits_and_edges)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-history");
    store_t *s = ut_store_open(dir);
    char ch[STORE_ID_MAX], other[STORE_ID_MAX], foreign[STORE_ID_MAX];
    channel(s, "main", "usr_a", false, ch);
    channel(s, "other", "usr_a", false, other);

    /* An empty channel. */
    chat_message_t out[4];
    size_t n;
    bool more;
    ASSERT_EQ(chat_history(s, ch, NULL, NULL, 10, out, &n, &more), 0);
    ASSERT_EQ(n, 0);
    ASSERT_TRUE(!more);
    ASSERT_EQ(chat_history(s, ch, "msg_0000000000000001", NULL, 10, out, &n, &more),
              STORE_E_NOT_FOUND);
    ASSERT_TRUE(!chat_last_message(s, ch, &out[0]));

    post(s, other, "usr_a", "elsewhere", foreign);
    enum { N = 1000 };
    char (*ids)[STORE_ID_MAX] = calloc(N, STORE_ID_MAX);
    for (int i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof(text), "message %d", i);
        post(s, ch, i % 2 ? "usr_a" : "usr_b", text, ids[i]);
        ASSERT_EQ(strlen(ids[i]), 20);
        ASSERT_EQ(strncmp(ids[i], "msg_", 4), 0);
        if (i)
            ASSERT_STRLT(ids[i - 1], ids[i]);
        else
            ASSERT_STRLT(foreign, ids[i]);
    }

    expect_history(s, ch, NULL, NULL, 1, ids, N - 1, 1, true);
    expect_history(s, ch, NULL, NULL, 50, ids, N - 50, 50, true);
    expect_history(s, ch, NULL, NULL, N, ids, 0, N, false);
    expect_history(s, ch, NULL, NULL, N + 5, ids, 0, N, false);
    expect_history(s, ch, NULL, NULL, 0, ids, 0, 0, true);
    expect_history(s, ch, ids[950], NULL, 50, ids, 900, 50, true);
    expect_history(s, ch, ids[10], NULL, 50, ids, 0, 10, false);
    expect_history(s, ch, ids[50], NULL, 50, ids, 0, 50, false);
    expect_history(s, ch, ids[1], NULL, 1, ids, 0, 1, false);
    expect_history(s, ch, ids[0], NULL, 50, ids, 0, 0, false);
    expect_history(s, ch, NULL, ids[990], 50, ids, 991, 9, false);
    expect_history(s, ch, NULL, ids[900], 50, ids, 901, 50, true);
    expect_history(s, ch, NULL, ids[N - 1], 50, ids, 0, 0, false);
    expect_history(s, ch, NULL, ids[N - 2], 1, ids, N - 1, 1, false);
    expect_history(s, ch, NULL, ids[0], 1, ids, 1, 1, true);
    expect_history(s, ch, ids[20], ids[10], 5, ids, 11, 5, true);
    expect_history(s, ch, ids[20], ids[10], 9, ids, 11, 9, false);
    expect_history(s, ch, ids[10], ids[20], 5, ids, 0, 0, false);

    /* Cursors that are not messages of this channel. */
    const char *bad[] = {"nope", "msg_", "msg_9999999999999999", "msg_00000000000000001", foreign,
                         ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        ASSERT_EQ(chat_history(s, ch, bad[i], NULL, 10, out, &n, &more), STORE_E_NOT_FOUND);
        ASSERT_EQ(chat_history(s, ch, NULL, bad[i], 10, out, &n, &more), STORE_E_NOT_FOUND);
    }
    ASSERT_EQ(chat_history(s, "ch_missing", ids[3], NULL, 10, out, &n, &more), STORE_E_NOT_FOUND);

    chat_message_t m;
    ASSERT_TRUE(chat_last_message(s, ch, &m));
    ASSERT_STREQ(m.id, ids[N - 1]);
    ASSERT_STREQ(m.content, "message 999");
    chat_message_clear(&m);
    ASSERT_TRUE(chat_message_get(s, ids[7], &m));
    ASSERT_STREQ(m.content, "message 7");
    ASSERT_STREQ(m.user_id, "usr_a");
    ASSERT_STREQ(m.channel_id, ch);
    ASSERT_GT(m.created_at, 0);
    ASSERT_EQ(m.updated_at, m.created_at);
    ASSERT_TRUE(!m.is_edited);
    chat_message_clear(&m);
    ASSERT_TRUE(!chat_message_get(s, "msg_x", &m));

    /* Refused posts write nothing. */
    size_t nch, before_count, after_count;
    chat__stats(s, &nch, &before_count);
    ASSERT_EQ(post_full(s, "ch_missing", "usr_a", "x", NULL, NULL, NULL, NULL), STORE_E_NOT_FOUND);
    ASSERT_EQ(post_full(s, ch, "usr_a", "x", foreign, NULL, NULL, NULL), STORE_E_NOT_FOUND);
    ASSERT_EQ(post_full(s, ch, "usr_a", "x", "msg_0000000077777777", NULL, NULL, NULL),
              STORE_E_NOT_FOUND);
    char *big = malloc(CHAT_CONTENT_BYTES_MAX + 2);
    memset(big, 'a', CHAT_CONTENT_BYTES_MAX + 1);
    big[CHAT_CONTENT_BYTES_MAX + 1] = '\0';
    ASSERT_EQ(post_full(s, ch, "usr_a", big, NULL, NULL, NULL, NULL), STORE_E_INVALID);
    free(big);
    ASSERT_EQ(post_full(s, ch, "usr_a", "bad \xff utf-8", NULL, NULL, NULL, NULL),
              STORE_E_INVALID);
    ASSERT_EQ(post_full(s, ch, "not an id", "x", NULL, NULL, NULL, NULL), STORE_E_INVALID);
    chat__stats(s, &nch, &after_count);
    ASSERT_EQ(after_count, before_count);
    expect_history(s, ch, NULL, NULL, 1, ids, N - 1, 1, true);

    /* A deleted channel takes no posts. */
    ASSERT_EQ(rename_channel(s, other, NULL, true), 0);
    ASSERT_EQ(post_full(s, other, "usr_a", "x", NULL, NULL, NULL, NULL), STORE_E_NOT_FOUND);
    free(ids);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

typedef struct msg_change {
    enum { EDIT, DELETE, REACT, UNREACT, REFUSE } what;
    const char *text, *emoji, *user;
} msg_change_t;

static int change_message(void *ctx, chat_message_t *m)
{
    msg_change_t *c = ctx;
    snprintf(m->channel_id, sizeof(m->channel_id), "ch_hijack"); /* must not stick */
    snprintf(m->user_id, sizeof(m->user_id), "usr_hijack");
    m->created_at = 1;
    switch (c->what) {
    case EDIT:
        free(m->content);
        m->content = strdup(c->text);
        m->is_edited = true;
        break;
    case DELETE:
        m->is_deleted = true;
        break;
    case REACT:
    case UNREACT: {
        chat_reaction_t *r = NULL;
        for (size_t i = 0; i < m->n_reactions; i++)
            if (strcmp(m->reactions[i].emoji, c->emoji) == 0)
                r = &m->reactions[i];
        if (c->what == REACT) {
            if (r == NULL) {
                m->reactions = realloc(m->reactions, (m->n_reactions + 1) * sizeof(*r));
                r = &m->reactions[m->n_reactions++];
                memset(r, 0, sizeof(*r));
                snprintf(r->emoji, sizeof(r->emoji), "%s", c->emoji);
            }
            r->users = realloc(r->users, (r->n_users + 1) * STORE_ID_MAX);
            snprintf(r->users[r->n_users++], STORE_ID_MAX, "%s", c->user);
        } else if (r) {
            for (size_t i = 0; i < r->n_users; i++) {
                if (strcmp(r->users[i], c->user) == 0) {
                    memmove(&r->users[i], &r->users[i + 1], (r->n_users - i - 1) * STORE_ID_MAX);
                    r->n_users--;
                    break;
                }
            }
        }
        break;
    }
    case REFUSE:
        m->is_deleted = true;
        return 77;
    }
    m->updated_at = m->updated_at + 1;
    return 0;
}

static int modify(store_t *s, const char *id, msg_change_t c)
{
    uint64_t lsn;
    chat_message_t out;
    int rc = chat_message_modify(s, id, change_message, &c, &out, &lsn);
    if (rc == 0) {
        ASSERT_STREQ(out.id, id);
        ASSERT_STRNE(out.user_id, "usr_hijack");
        chat_message_clear(&out);
        ASSERT_EQ(store_wait(s, lsn), 0);
    }
    return rc;
}

TEST(chat_edits_deletes_and_reactions_keep_the_message_in_place)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-edit");
    store_t *s = ut_store_open(dir);
    char ch[STORE_ID_MAX], ids[3][STORE_ID_MAX];
    channel(s, "main", "usr_a", false, ch);
    post(s, ch, "usr_a", "first", ids[0]);
    post(s, ch, "usr_b", "second", ids[1]);
    post(s, ch, "usr_a", "third", ids[2]);
    chat_message_t before;
    ASSERT_TRUE(chat_message_get(s, ids[1], &before));
    ASSERT_EQ(before.rev, 1);

    ASSERT_EQ(modify(s, ids[1], (msg_change_t){EDIT, "second, edited", NULL, NULL}), 0);
    ASSERT_EQ(modify(s, ids[1], (msg_change_t){REACT, NULL, "👍", "usr_a"}), 0);
    ASSERT_EQ(modify(s, ids[1], (msg_change_t){REACT, NULL, "👍", "usr_c"}), 0);
    ASSERT_EQ(modify(s, ids[1], (msg_change_t){REACT, NULL, "🎉", "usr_c"}), 0);
    ASSERT_EQ(modify(s, ids[1], (msg_change_t){UNREACT, NULL, "👍", "usr_a"}), 0);

    chat_message_t h[3];
    size_t n;
    bool more;
    ASSERT_EQ(chat_history(s, ch, NULL, NULL, 3, h, &n, &more), 0);
    ASSERT_EQ(n, 3);
    ASSERT_STREQ(h[1].id, ids[1]);
    ASSERT_STREQ(h[1].content, "second, edited");
    ASSERT_STREQ(h[1].channel_id, ch);
    ASSERT_STREQ(h[1].user_id, "usr_b");
    ASSERT_TRUE(h[1].is_edited && !h[1].is_deleted);
    ASSERT_EQ(h[1].created_at, before.created_at);
    ASSERT_GT(h[1].updated_at, before.updated_at);
    ASSERT_EQ(h[1].n_reactions, 2);
    ASSERT_STREQ(h[1].reactions[0].emoji, "👍");
    ASSERT_EQ(h[1].reactions[0].n_users, 1);
    ASSERT_STREQ(h[1].reactions[0].users[0], "usr_c");
    ASSERT_STREQ(h[1].reactions[1].emoji, "🎉");
    /* Each change moved the in-memory rev on; untouched messages kept 1. */
    ASSERT_EQ(h[1].rev, 6);
    ASSERT_EQ(h[0].rev, 1);
    for (size_t i = 0; i < n; i++)
        chat_message_clear(&h[i]);
    chat_message_clear(&before);

    /* The last user of a reaction leaves: the reaction goes. */
    ASSERT_EQ(modify(s, ids[1], (msg_change_t){UNREACT, NULL, "🎉", "usr_c"}), 0);
    chat_message_t m;
    ASSERT_TRUE(chat_message_get(s, ids[1], &m));
    ASSERT_EQ(m.n_reactions, 1);
    chat_message_clear(&m);

    /* Refused and missing. */
    ASSERT_EQ(modify(s, ids[0], (msg_change_t){REFUSE, NULL, NULL, NULL}), 77);
    ASSERT_TRUE(chat_message_get(s, ids[0], &m));
    ASSERT_TRUE(!m.is_deleted);
    ASSERT_EQ(m.rev, 1);
    chat_message_clear(&m);
    ASSERT_EQ(modify(s, "msg_0000000000099999", (msg_change_t){DELETE, NULL, NULL, NULL}),
              STORE_E_NOT_FOUND);
    ASSERT_EQ(modify(s, ids[0], (msg_change_t){EDIT, "\xc3\x28", NULL, NULL}), STORE_E_INVALID);

    /* A delete keeps the place and drops the content. */
    ASSERT_EQ(modify(s, ids[0], (msg_change_t){DELETE, NULL, NULL, NULL}), 0);
    ASSERT_EQ(chat_history(s, ch, NULL, NULL, 3, h, &n, &more), 0);
    ASSERT_EQ(n, 3);
    ASSERT_STREQ(h[0].id, ids[0]);
    ASSERT_TRUE(h[0].is_deleted);
    ASSERT_NULL(h[0].content);
    for (size_t i = 0; i < n; i++)
        chat_message_clear(&h[i]);

    /* Identical after a reopen. */
    const char *users[] = {"usr_a"};
    char *want = dump_state(s, users, 1);
    s = ut_store_reopen(s, dir);
    char *got = dump_state(s, users, 1);
    ASSERT_STREQ(got, want);
    free(got);
    free(want);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

TEST(chat_threads_follow_reply_to)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-thread");
    store_t *s = ut_store_open(dir);
    char ch[STORE_ID_MAX], other[STORE_ID_MAX], root[STORE_ID_MAX], a[STORE_ID_MAX],
        b[STORE_ID_MAX], c[STORE_ID_MAX], x[STORE_ID_MAX];
    channel(s, "main", "usr_a", false, ch);
    channel(s, "other", "usr_a", false, other);
    post(s, ch, "usr_a", "root", root);
    post(s, other, "usr_a", "elsewhere", x);
    ASSERT_EQ(post_full(s, ch, "usr_b", "reply a", root, NULL, a, NULL), 0);
    ASSERT_EQ(post_full(s, ch, "usr_c", "reply to a", a, NULL, b, NULL), 0);
    ASSERT_EQ(post_full(s, ch, "usr_b", "reply c", root, NULL, c, NULL), 0);
    ASSERT_EQ(post_full(s, ch, "usr_b", "cross", x, NULL, NULL, NULL), STORE_E_NOT_FOUND);

    chat_message_t m;
    ASSERT_TRUE(chat_message_get(s, b, &m));
    ASSERT_STREQ(m.reply_to, a);
    ASSERT_STREQ(m.thread_id, root);
    chat_message_clear(&m);
    ASSERT_TRUE(chat_message_get(s, root, &m));
    ASSERT_STREQ(m.thread_id, "");
    chat_message_clear(&m);

    chat_message_t t[4];
    size_t n;
    ASSERT_EQ(chat_thread(s, root, 4, t, &n), 3);
    ASSERT_EQ(n, 3);
    ASSERT_STREQ(t[0].id, a);
    ASSERT_STREQ(t[1].id, b);
    ASSERT_STREQ(t[2].id, c);
    for (size_t i = 0; i < n; i++)
        chat_message_clear(&t[i]);
    ASSERT_EQ(chat_thread(s, root, 2, t, &n), 3);
    ASSERT_EQ(n, 2);
    ASSERT_STREQ(t[1].id, b);
    for (size_t i = 0; i < n; i++)
        chat_message_clear(&t[i]);
    ASSERT_EQ(chat_thread(s, a, 4, t, &n), 0);
    ASSERT_EQ(chat_thread(s, "garbage", 4, t, &n), 0);
    ASSERT_EQ(n, 0);

    ASSERT_EQ(store_close(s), 0);
    ut_rm_snapshots(dir);
    s = ut_store_open(dir);
    ASSERT_EQ(chat_thread(s, root, 4, t, &n), 3);
    for (size_t i = 0; i < n; i++)
        chat_message_clear(&t[i]);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

TEST(chat_idempotency_keys_survive_reopen)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-idem");
    store_t *s = ut_store_open(dir);
    char ch[STORE_ID_MAX], first[STORE_ID_MAX], again[STORE_ID_MAX], other[STORE_ID_MAX];
    channel(s, "main", "usr_a", false, ch);
    bool existing = true;
    ASSERT_EQ(post_full(s, ch, "usr_a", "hello", NULL, "k1", first, &existing), 0);
    ASSERT_TRUE(!existing);
    ASSERT_EQ(post_full(s, ch, "usr_a", "hello again", NULL, "k1", again, &existing), 0);
    ASSERT_TRUE(existing);
    ASSERT_STREQ(again, first);
    ASSERT_EQ(post_full(s, ch, "usr_b", "hello", NULL, "k1", other, &existing), 0);
    ASSERT_TRUE(!existing);
    ASSERT_STRNE(other, first);

    /* The returned message is the first one, content included. */
    chat_message_t m;
    memset(&m, 0, sizeof(m));
    snprintf(m.channel_id, sizeof(m.channel_id), "%s", ch);
    snprintf(m.user_id, sizeof(m.user_id), "usr_a");
    snprintf(m.idempotency_key, sizeof(m.idempotency_key), "k1");
    m.content = strdup("ignored");
    uint64_t lsn = 0;
    ASSERT_EQ(chat_message_post(s, &m, &existing, &lsn), 0);
    ASSERT_TRUE(existing);
    ASSERT_GT(lsn, 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    ASSERT_STREQ(m.id, first);
    ASSERT_STREQ(m.content, "hello");
    ASSERT_STREQ(m.idempotency_key, "k1");
    chat_message_clear(&m);
    size_t nch, nmsg;
    chat__stats(s, &nch, &nmsg);
    ASSERT_EQ(nmsg, 2);

    ASSERT_EQ(store_close(s), 0);
    ut_rm_snapshots(dir);
    for (int round = 0; round < 2; round++) { /* the log alone, then the snapshot */
        s = ut_store_open(dir);
        ASSERT_EQ(post_full(s, ch, "usr_a", "later", NULL, "k1", again, &existing), 0);
        ASSERT_TRUE(existing);
        ASSERT_STREQ(again, first);
        ASSERT_EQ(post_full(s, ch, "usr_b", "later", NULL, "k1", again, &existing), 0);
        ASSERT_TRUE(existing);
        ASSERT_STREQ(again, other);
        ASSERT_EQ(store_close(s), 0);
    }
    ut_rmrf(dir);
    ut_leak_check();
}

TEST(chat_unread_counts)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-unread");
    store_t *s = ut_store_open(dir);
    char ch[STORE_ID_MAX], ids[10][STORE_ID_MAX];
    channel(s, "main", "usr_a", false, ch);
    ASSERT_EQ(chat_unread(s, ch, "usr_b", "", 100), 0);
    for (int i = 0; i < 10; i++)
        post(s, ch, i < 6 ? "usr_a" : "usr_b", "text", ids[i]);
    ASSERT_EQ(modify(s, ids[2], (msg_change_t){DELETE, NULL, NULL, NULL}), 0);
    ASSERT_EQ(chat_unread(s, ch, "usr_b", "", 100), 5);   /* a's six, one deleted */
    ASSERT_EQ(chat_unread(s, ch, "usr_a", "", 100), 4);
    ASSERT_EQ(chat_unread(s, ch, "usr_c", "", 100), 9);
    ASSERT_EQ(chat_unread(s, ch, "usr_c", NULL, 100), 9);
    ASSERT_EQ(chat_unread(s, ch, "usr_c", "", 3), 3);
    ASSERT_EQ(chat_unread(s, ch, "usr_b", ids[3], 100), 2);
    ASSERT_EQ(chat_unread(s, ch, "usr_a", ids[3], 100), 4);
    ASSERT_EQ(chat_unread(s, ch, "usr_c", ids[9], 100), 0);
    ASSERT_EQ(chat_unread(s, ch, "usr_c", ids[8], 100), 1);
    ASSERT_EQ(chat_unread(s, "ch_none", "usr_c", "", 100), 0);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

/* ---- replay ------------------------------------------------------------------------------ */

TEST(chat_reopen_gives_the_same_state_with_and_without_snapshot)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-replay");
    store_t *s = ut_store_open(dir);
    char pub[STORE_ID_MAX], priv[STORE_ID_MAX], id[STORE_ID_MAX], root[STORE_ID_MAX];
    channel(s, "Lobby", "usr_a", false, pub);
    channel(s, "Staff", "usr_a", true, priv);
    ASSERT_EQ(set_member(s, priv, "usr_b", CHAT_ROLE_MODERATOR, 10, -1), 0);
    ASSERT_EQ(set_member(s, pub, "usr_c", CHAT_ROLE_NONE, -1, 99), 0);
    const char *dm[] = {"usr_a", "usr_b"};
    chat_channel_t dc;
    memset(&dc, 0, sizeof(dc));
    dc.is_direct = true;
    snprintf(dc.owner_id, sizeof(dc.owner_id), "usr_a");
    bool created;
    uint64_t lsn;
    ASSERT_EQ(chat_channel_create(s, &dc, dm, 2, &created, &lsn), 0);
    post(s, dc.id, "usr_b", "psst, Ünïcödé secret", NULL);
    chat_channel_clear(&dc);
    post(s, pub, "usr_a", "Welcome to the lobby", root);
    for (int i = 0; i < 60; i++) {
        char text[64];
        snprintf(text, sizeof(text), "message number %d about apples and Ωmega", i);
        ASSERT_EQ(post_full(s, i % 3 ? pub : priv, i % 2 ? "usr_a" : "usr_b", text,
                            i % 3 == 1 ? root : NULL, i % 7 ? NULL : "key", id, NULL),
                  0);
        if (i % 5 == 0)
            ASSERT_EQ(modify(s, id, (msg_change_t){EDIT, "edited pears", NULL, NULL}), 0);
        if (i % 11 == 0)
            ASSERT_EQ(modify(s, id, (msg_change_t){DELETE, NULL, NULL, NULL}), 0);
        if (i % 4 == 0)
            ASSERT_EQ(modify(s, id, (msg_change_t){REACT, NULL, "🍎", "usr_c"}), 0);
    }
    member_change_t read = {.role = CHAT_ROLE_OWNER, .joined_at = -1, .banned_at = -1,
                            .last_read = root};
    ASSERT_EQ(chat_membership_modify(s, pub, "usr_a", change_member, &read, NULL, &lsn), 0);
    ASSERT_EQ(rename_channel(s, priv, "Staff room", false), 0);

    const char *users[] = {"usr_a", "usr_b", "usr_c"};
    char *want = full_dump(s, users, 3);
    ASSERT_NULL(strstr(want, "search pears: 0:"));
    ASSERT_CONTAINS(want, "search ünïcödé: 1:");
    ASSERT_EQ(store_close(s), 0); /* snapshot S1 */

    /* 1. The log alone. */
    ut_rm_snapshots(dir);
    s = ut_store_open(dir);
    expect_dump(s, users, want, "log only");
    ASSERT_EQ(store_close(s), 0); /* snapshot S2 */

    /* 2. The snapshot alone; then more records, and close (S3). */
    s = ut_store_open(dir);
    expect_dump(s, users, want, "snapshot");
    char next[STORE_ID_MAX];
    post(s, pub, "usr_a", "after reopen apples", next);
    ASSERT_STRLT(id, next);
    ASSERT_EQ(modify(s, id, (msg_change_t){EDIT, "pears again", NULL, NULL}), 0);
    ASSERT_EQ(set_member(s, pub, "usr_b", CHAT_ROLE_MEMBER, 77, -1), 0);
    free(want);
    want = full_dump(s, users, 3);
    ASSERT_EQ(store_close(s), 0);

    /* 3. Lose S3: S2 plus the log after it. */
    ut_rm_newest_snapshot(dir);
    s = ut_store_open(dir);
    expect_dump(s, users, want, "snapshot + log");
    ASSERT_EQ(store_close(s), 0);
    free(want);
    ut_rmrf(dir);
    ut_leak_check();
}

static void apply_ok(store_t *s, uint8_t type, const char *rec)
{
    int rc = store_apply(s, type, rec, strlen(rec));
    if (rc != 0)
        TEST_FAIL_("apply type %u: %d: %s", type, rc, rec);
}

TEST(chat_applying_a_record_twice_changes_nothing)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-twice");
    store_t *s = ut_store_open(dir);
    const char *ch = "{\"v\":1,\"id\":\"ch_1\",\"name\":\"Twice\",\"owner_id\":\"usr_a\","
                     "\"created_at\":5,\"updated_at\":5}";
    const char *mem = "{\"v\":1,\"channel_id\":\"ch_1\",\"user_id\":\"usr_a\",\"role\":3,"
                      "\"joined_at\":5}";
    const char *msg = "{\"v\":1,\"id\":\"msg_0000000000000007\",\"channel_id\":\"ch_1\","
                      "\"user_id\":\"usr_a\",\"content\":\"hello hello world\","
                      "\"idempotency_key\":\"k\",\"created_at\":6,\"updated_at\":6}";
    const char *reply = "{\"v\":1,\"id\":\"msg_0000000000000008\",\"channel_id\":\"ch_1\","
                        "\"user_id\":\"usr_b\",\"content\":\"re\",\"reply_to\":"
                        "\"msg_0000000000000007\",\"thread_id\":\"msg_0000000000000007\","
                        "\"mentions\":[\"usr_a\"],\"reactions\":[{\"emoji\":\"x\",\"users\":"
                        "[\"usr_a\"]}],\"created_at\":7,\"updated_at\":7}";
    const char *edit = "{\"v\":1,\"id\":\"msg_0000000000000007\",\"channel_id\":\"ch_1\","
                       "\"user_id\":\"usr_a\",\"content\":\"goodbye\",\"idempotency_key\":\"k\","
                       "\"is_edited\":true,\"created_at\":6,\"updated_at\":9}";
    const char *leave = "{\"v\":1,\"channel_id\":\"ch_1\",\"user_id\":\"usr_a\",\"role\":0,"
                        "\"joined_at\":5,\"banned_at\":3}";
    const char *users[] = {"usr_a"};
    char *first = NULL;
    for (int i = 0; i < 2; i++) {
        apply_ok(s, STORE_REC_CHANNEL, ch);
        apply_ok(s, STORE_REC_MEMBERSHIP, mem);
        apply_ok(s, STORE_REC_MESSAGE, msg);
        apply_ok(s, STORE_REC_MESSAGE, reply);
        char *d = dump_state(s, users, 1);
        sbuf_t sb = {0};
        sb_printf(&sb, "%s", d);
        free(d);
        dump_search(&sb, s, "hello");
        if (i == 0)
            first = sb.p;
        else {
            ASSERT_STREQ(sb.p, first);
            free(sb.p);
        }
    }
    ASSERT_CONTAINS(first, "members 1/1");
    ASSERT_CONTAINS(first, "search hello: 1:");
    ASSERT_CONTAINS(first, "thread 1: msg_0000000000000008");
    free(first);
    for (int i = 0; i < 2; i++) {
        apply_ok(s, STORE_REC_MESSAGE, edit);
        apply_ok(s, STORE_REC_MEMBERSHIP, leave);
        ASSERT_EQ(chat_member_count(s, "ch_1"), 0);
        chat_membership_t b[2];
        size_t n;
        ASSERT_EQ(chat_banned(s, "ch_1", 0, 2, b, &n), 1);
        chat_message_t h[4];
        bool more;
        ASSERT_EQ(chat_history(s, "ch_1", NULL, NULL, 4, h, &n, &more), 0);
        ASSERT_EQ(n, 2);
        ASSERT_STREQ(h[0].content, "goodbye");
        for (size_t k = 0; k < n; k++)
            chat_message_clear(&h[k]);
        chat_search_query_t q = {.text = "hello", .limit = 4};
        chat_search_hit_t hits[4];
        ASSERT_EQ(chat_search(s, &q, hits, &n), 0);
        q.text = "goodbye";
        ASSERT_EQ(chat_search(s, &q, hits, &n), 1);
        chat_message_clear(&hits[0].message);
    }
    /* The idempotency key still leads to the message, and the next id
     * follows the highest applied. */
    char id[STORE_ID_MAX];
    bool existing;
    ASSERT_EQ(post_full(s, "ch_1", "usr_a", "x", NULL, "k", id, &existing), 0);
    ASSERT_TRUE(existing);
    ASSERT_STREQ(id, "msg_0000000000000007");
    post(s, "ch_1", "usr_a", "x", id);
    ASSERT_STREQ(id, "msg_0000000000000009");
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

/* ---- bad records ------------------------------------------------------------------------- */

static void expect_corrupt(store_t *s, uint8_t type, const char *rec)
{
    int rc = store_apply(s, type, rec, strlen(rec));
    if (rc != STORE_E_CORRUPT)
        TEST_FAIL_("type %u: %d instead of STORE_E_CORRUPT: %.200s", type, rc, rec);
}

TEST(chat_records_that_do_not_validate_are_corrupt)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-corrupt");
    store_t *s = ut_store_open_mode(dir, WAL_FSYNC_NONE);
    char longname[CHAT_NAME_MAX + 1], longid[80];
    memset(longname, 'n', CHAT_NAME_MAX);
    longname[CHAT_NAME_MAX] = '\0';
    memset(longid, 'i', 45);
    longid[45] = '\0';
    char rec[100000];

    /* Channels. */
    expect_corrupt(s, STORE_REC_CHANNEL, "{");
    expect_corrupt(s, STORE_REC_CHANNEL, "[]");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":1}");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":2,\"id\":\"ch_1\",\"name\":\"x\"}");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":0,\"id\":\"ch_1\",\"name\":\"x\"}");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":\"1\",\"id\":\"ch_1\",\"name\":\"x\"}");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":1,\"id\":5,\"name\":\"x\"}");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":1,\"id\":\"ch 1\",\"name\":\"x\"}");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":1,\"id\":\"\",\"name\":\"x\"}");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":1,\"id\":\"ch_1\",\"id\":\"ch_2\"}");
    snprintf(rec, sizeof(rec), "{\"v\":1,\"id\":\"ch_1\",\"name\":\"%s\"}", longname);
    expect_corrupt(s, STORE_REC_CHANNEL, rec);
    snprintf(rec, sizeof(rec), "{\"v\":1,\"id\":\"%s\",\"name\":\"x\"}", longid);
    expect_corrupt(s, STORE_REC_CHANNEL, rec);
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":1,\"id\":\"ch_1\",\"is_private\":1}");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":1,\"id\":\"ch_1\",\"created_at\":1.5}");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":1,\"id\":\"ch_1\",\"description\":[]}");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":1,\"id\":\"ch_1\",\"is_direct\":true,"
                                         "\"is_private\":true}");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":1,\"id\":\"ch_1\",\"is_direct\":true,"
                                         "\"is_private\":true,\"direct_key\":\"a;b\"}");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":1,\"id\":\"ch_1\",\"direct_key\":\"a,b\"}");
    expect_corrupt(s, STORE_REC_CHANNEL, "{\"v\":1,\"id\":\"ch_1\",\"name\":\"a\\u0000b\"}");
    char *desc = malloc(CHAT_DESCRIPTION_MAX + 100);
    memset(desc, 'd', CHAT_DESCRIPTION_MAX + 1);
    desc[CHAT_DESCRIPTION_MAX + 1] = '\0';
    snprintf(rec, sizeof(rec), "{\"v\":1,\"id\":\"ch_1\",\"name\":\"x\",\"description\":\"%s\"}",
             desc);
    expect_corrupt(s, STORE_REC_CHANNEL, rec);
    free(desc);

    /* Memberships. */
    expect_corrupt(s, STORE_REC_MEMBERSHIP, "{\"v\":1,\"channel_id\":\"ch_1\"}");
    expect_corrupt(s, STORE_REC_MEMBERSHIP,
                   "{\"v\":1,\"channel_id\":\"ch_1\",\"user_id\":\"u\",\"role\":4}");
    expect_corrupt(s, STORE_REC_MEMBERSHIP,
                   "{\"v\":1,\"channel_id\":\"ch_1\",\"user_id\":\"u\",\"role\":-1}");
    expect_corrupt(s, STORE_REC_MEMBERSHIP,
                   "{\"v\":1,\"channel_id\":\"ch/1\",\"user_id\":\"u\",\"role\":1}");
    expect_corrupt(s, STORE_REC_MEMBERSHIP, "{\"v\":1,\"channel_id\":\"ch_1\",\"user_id\":\"u\","
                                            "\"last_read\":\"msg_1\"}");
    expect_corrupt(s, STORE_REC_MEMBERSHIP, "{\"v\":1,\"channel_id\":\"ch_1\",\"user_id\":\"u\","
                                            "\"role\":99999999999999999999}");

    /* Messages. */
    chat_message_t m0;
    const char *head = "\"v\":1,\"id\":\"msg_0000000000000001\",\"channel_id\":\"ch_1\","
                       "\"user_id\":\"usr_a\"";
    const char *bad_msgs[] = {
        "\"content\":5",
        "\"content\":\"a\",\"reply_to\":\"msg_x\"",
        "\"thread_id\":\"ch_1\"",
        "\"mentions\":\"usr_a\"",
        "\"mentions\":[5]",
        "\"mentions\":[\"bad id\"]",
        "\"attachments\":[{}]",
        "\"reactions\":{}",
        "\"reactions\":[5]",
        "\"reactions\":[{\"users\":[\"usr_a\"]}]",
        "\"reactions\":[{\"emoji\":\"\",\"users\":[]}]",
        "\"reactions\":[{\"emoji\":\"x\",\"users\":[1]}]",
        "\"is_edited\":null",
        "\"updated_at\":\"now\"",
    };
    for (size_t i = 0; i < sizeof(bad_msgs) / sizeof(*bad_msgs); i++) {
        snprintf(rec, sizeof(rec), "{%s,%s}", head, bad_msgs[i]);
        expect_corrupt(s, STORE_REC_MESSAGE, rec);
    }
    char emoji[CHAT_EMOJI_MAX + 1];
    memset(emoji, 'e', CHAT_EMOJI_MAX);
    emoji[CHAT_EMOJI_MAX] = '\0';
    snprintf(rec, sizeof(rec), "{%s,\"reactions\":[{\"emoji\":\"%s\"}]}", head, emoji);
    expect_corrupt(s, STORE_REC_MESSAGE, rec);
    emoji[CHAT_EMOJI_MAX - 1] = '\0'; /* 64 bytes: fine */
    snprintf(rec, sizeof(rec), "{%s,\"reactions\":[{\"emoji\":\"%s\",\"users\":[\"u\"]}]}",
             head, emoji);
    ASSERT_EQ(store_apply(s, STORE_REC_MESSAGE, rec, strlen(rec)), 0);
    ASSERT_TRUE(chat_message_get(s, "msg_0000000000000001", &m0));
    ASSERT_EQ(strlen(m0.reactions[0].emoji), 64);
    chat_message_clear(&m0);
    chat__clear(s->chat);
    expect_corrupt(s, STORE_REC_MESSAGE, "{\"v\":1,\"id\":\"msg_0000000000000000\","
                                         "\"channel_id\":\"ch_1\",\"user_id\":\"usr_a\"}");
    expect_corrupt(s, STORE_REC_MESSAGE, "{\"v\":1,\"id\":\"msg_000000000000001\","
                                         "\"channel_id\":\"ch_1\",\"user_id\":\"usr_a\"}");
    /* Too many mentions, too long a content, idempotency key. */
    size_t at = (size_t)snprintf(rec, sizeof(rec), "{%s,\"mentions\":[", head);
    for (int i = 0; i <= CHAT_MENTIONS_MAX; i++)
        at += (size_t)snprintf(rec + at, sizeof(rec) - at, "%s\"u%d\"", i ? "," : "", i);
    snprintf(rec + at, sizeof(rec) - at, "]}");
    expect_corrupt(s, STORE_REC_MESSAGE, rec);
    at = (size_t)snprintf(rec, sizeof(rec), "{%s,\"content\":\"", head);
    memset(rec + at, 'c', CHAT_CONTENT_BYTES_MAX + 1);
    at += CHAT_CONTENT_BYTES_MAX + 1;
    snprintf(rec + at, sizeof(rec) - at, "\"}");
    expect_corrupt(s, STORE_REC_MESSAGE, rec);
    at = (size_t)snprintf(rec, sizeof(rec), "{%s,\"idempotency_key\":\"", head);
    memset(rec + at, 'k', CHAT_IDEMPOTENCY_MAX);
    at += CHAT_IDEMPOTENCY_MAX;
    snprintf(rec + at, sizeof(rec) - at, "\"}");
    expect_corrupt(s, STORE_REC_MESSAGE, rec);

    /* More (emoji, user) pairs than a message may hold. */
    size_t cap = 2 * 60000 * 8 + 1024;
    char *big = malloc(cap);
    at = (size_t)snprintf(big, cap, "{%s,\"reactions\":[", head);
    for (int r = 0; r < 2; r++) {
        at += (size_t)snprintf(big + at, cap - at, "%s{\"emoji\":\"e%d\",\"users\":[", r ? "," : "",
                               r);
        for (int i = 0; i < 60000; i++)
            at += (size_t)snprintf(big + at, cap - at, "%s\"u\"", i ? "," : "");
        at += (size_t)snprintf(big + at, cap - at, "]}");
    }
    snprintf(big + at, cap - at, "]}");
    expect_corrupt(s, STORE_REC_MESSAGE, big);
    free(big);

    /* Unknown types, deep nesting, random bytes. */
    expect_corrupt(s, 99, "{\"v\":1}");
    expect_corrupt(s, 13, "{\"v\":1}");
    at = (size_t)snprintf(rec, sizeof(rec), "{%s,\"mentions\":", head);
    for (int i = 0; i < 5000; i++)
        rec[at++] = '[';
    rec[at] = '\0';
    expect_corrupt(s, STORE_REC_MESSAGE, rec);
    unsigned seed = 12345;
    for (int i = 0; i < 3000; i++) {
        size_t len = (size_t)(rand_r(&seed) % 64);
        char junk[64];
        for (size_t k = 0; k < len; k++)
            junk[k] = (char)(rand_r(&seed) % 8 == 0 ? "{}[]\":,"[rand_r(&seed) % 7] : rand_r(&seed));
        int rc = store_apply(s, (uint8_t)(10 + i % 3), junk, len);
        ASSERT_TRUE(rc == 0 || rc == STORE_E_CORRUPT);
    }

    /* Nothing was applied; minimal records with defaults are fine. */
    size_t nch, nmsg;
    chat__stats(s, &nch, &nmsg);
    ASSERT_EQ(nch, 0);
    ASSERT_EQ(nmsg, 0);
    snprintf(rec, sizeof(rec), "{%s}", head);
    apply_ok(s, STORE_REC_MESSAGE, rec);
    apply_ok(s, STORE_REC_CHANNEL, "{\"v\":1,\"id\":\"ch_1\"}");
    apply_ok(s, STORE_REC_MEMBERSHIP, "{\"v\":1,\"channel_id\":\"ch_1\",\"user_id\":\"u\"}");
    chat_message_t m;
    ASSERT_TRUE(chat_message_get(s, "msg_0000000000000001", &m));
    ASSERT_NULL(m.content);
    ASSERT_EQ(m.n_reactions, 0);
    ASSERT_TRUE(!m.is_deleted);
    chat_message_clear(&m);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

TEST(chat_records_round_trip_through_the_codec)
{
    chat_message_t m;
    memset(&m, 0, sizeof(m));
    snprintf(m.id, sizeof(m.id), "msg_0000000000000042");
    snprintf(m.channel_id, sizeof(m.channel_id), "ch_x");
    snprintf(m.user_id, sizeof(m.user_id), "usr_y");
    m.content = strdup("héllo \"quoted\" \\ back\nslash");
    snprintf(m.reply_to, sizeof(m.reply_to), "msg_0000000000000041");
    snprintf(m.thread_id, sizeof(m.thread_id), "msg_0000000000000040");
    m.n_mentions = 2;
    m.mentions = calloc(2, STORE_ID_MAX);
    snprintf(m.mentions[0], STORE_ID_MAX, "usr_a");
    snprintf(m.mentions[1], STORE_ID_MAX, "usr_b");
    m.n_attachments = 1;
    m.attachments = calloc(1, STORE_ID_MAX);
    snprintf(m.attachments[0], STORE_ID_MAX, "file_1");
    m.n_reactions = 1;
    m.reactions = calloc(1, sizeof(*m.reactions));
    snprintf(m.reactions[0].emoji, sizeof(m.reactions[0].emoji), "❤️");
    m.reactions[0].n_users = 2;
    m.reactions[0].users = calloc(2, STORE_ID_MAX);
    snprintf(m.reactions[0].users[0], STORE_ID_MAX, "usr_b");
    snprintf(m.reactions[0].users[1], STORE_ID_MAX, "usr_a");
    snprintf(m.idempotency_key, sizeof(m.idempotency_key), "key-1");
    m.is_edited = true;
    m.created_at = 1767960000000;
    m.updated_at = 1767960000001;
    ASSERT_TRUE(chat__message_valid(&m));
    size_t len;
    char *text = chat__message_encode(&m, &len);
    ASSERT_EQ((unsigned char)text[0], CHAT_MSG_RECORD_BINARY);
    chat_message_t d;
    ASSERT_EQ(chat__message_decode(text, len, &d), 0);
    sbuf_t a = {0}, b = {0};
    dump_message(&a, &m);
    dump_message(&b, &d);
    ASSERT_STREQ(b.p, a.p);
    free(a.p);
    free(b.p);
    chat_message_clear(&d);
    /* Every cut of the record, and a byte more, is refused whole (and
     * leaves nothing to free: ASan's leak check runs on these tests). */
    for (size_t cut = 0; cut < len; cut++)
        ASSERT_EQ(chat__message_decode(text, cut, &d), STORE_E_CORRUPT);
    char *longer = malloc(len + 1);
    memcpy(longer, text, len);
    longer[len] = 0;
    ASSERT_EQ(chat__message_decode(longer, len + 1, &d), STORE_E_CORRUPT);
    free(longer);
    free(text);
    chat_message_clear(&d);
    chat_message_t copy;
    chat_message_copy(&copy, &m);
    chat_message_clear(&m);
    ASSERT_EQ(copy.reactions[0].n_users, 2);
    ASSERT_STREQ(copy.reactions[0].users[1], "usr_a");
    chat_message_clear(&copy);

    chat_channel_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "ch_d");
    c.is_direct = c.is_private = true;
    c.direct_key = strdup("usr_a,usr_b");
    snprintf(c.owner_id, sizeof(c.owner_id), "usr_a");
    c.created_at = 3;
    text = chat__channel_encode(&c);
    chat_channel_t cd;
    ASSERT_EQ(chat__channel_decode(text, strlen(text), &cd), 0);
    ASSERT_STREQ(cd.direct_key, "usr_a,usr_b");
    ASSERT_TRUE(cd.is_direct);
    ASSERT_TRUE(cd.is_private);
    ASSERT_NULL(cd.description);
    ASSERT_EQ(cd.created_at, 3);
    free(text);
    chat_channel_clear(&cd);
    chat_channel_clear(&c);

    chat_membership_t mm = {.role = 2, .joined_at = 4, .banned_at = 5};
    snprintf(mm.channel_id, sizeof(mm.channel_id), "ch_d");
    snprintf(mm.user_id, sizeof(mm.user_id), "usr_a");
    snprintf(mm.last_read, sizeof(mm.last_read), "msg_0000000000000001");
    text = chat__membership_encode(&mm);
    chat_membership_t md;
    ASSERT_EQ(chat__membership_decode(text, strlen(text), &md), 0);
    ASSERT_STREQ(md.channel_id, mm.channel_id);
    ASSERT_STREQ(md.user_id, mm.user_id);
    ASSERT_STREQ(md.last_read, mm.last_read);
    ASSERT_EQ(md.role, 2);
    ASSERT_EQ(md.joined_at, 4);
    ASSERT_EQ(md.banned_at, 5);
    free(text);
    ut_leak_check();
}

/* ---- concurrency ------------------------------------------------------------------------ */

typedef struct poster {
    store_t *s;
    char (*channels)[STORE_ID_MAX];
    int id;
    int failures;
} poster_t;

enum { POSTERS = 8, PER_POSTER = 200, CHANNELS = 4 };

static void *post_many(void *arg)
{
    poster_t *p = arg;
    char user[16];
    snprintf(user, sizeof(user), "usr_%d", p->id);
    for (int i = 0; i < PER_POSTER; i++) {
        chat_message_t m;
        memset(&m, 0, sizeof(m));
        snprintf(m.channel_id, sizeof(m.channel_id), "%s", p->channels[(p->id + i) % CHANNELS]);
        snprintf(m.user_id, sizeof(m.user_id), "%s", user);
        char text[64];
        snprintf(text, sizeof(text), "poster%d item%d shared words", p->id, i);
        m.content = strdup(text);
        uint64_t lsn;
        bool existing;
        if (chat_message_post(p->s, &m, &existing, &lsn) != 0 || store_wait(p->s, lsn) != 0 ||
            existing)
            p->failures++;
        chat_message_clear(&m);
    }
    return NULL;
}

typedef struct reader {
    store_t *s;
    char (*channels)[STORE_ID_MAX];
    _Atomic bool stop;
    int failures;
    long rounds;
    long checks;
} reader_t;

/* A can_read that reads the store itself, while posters wait for the
 * (writer-preferring) message lock: a lock held across it would hang. */
static bool reenter(void *ctx, const char *channel_id)
{
    reader_t *r = ctx;
    chat_message_t out[2];
    size_t n;
    bool more;
    if (chat_history(r->s, channel_id, NULL, NULL, 2, out, &n, &more) != 0)
        r->failures++;
    for (size_t i = 0; i < n; i++)
        chat_message_clear(&out[i]);
    chat_membership_t m;
    chat_membership_get(r->s, channel_id, "usr_owner", &m);
    r->checks++;
    return true;
}

static void *read_while_posting(void *arg)
{
    reader_t *r = arg;
    chat_message_t out[20];
    /* Until the posters are done, and at least one round has seen their
     * messages, however the threads were scheduled. */
    while (!r->stop || r->checks == 0) {
        for (int c = 0; c < CHANNELS; c++) {
            size_t n;
            bool more;
            if (chat_history(r->s, r->channels[c], NULL, NULL, 20, out, &n, &more) != 0)
                r->failures++;
            for (size_t i = 0; i < n; i++) {
                if (i && strcmp(out[i - 1].id, out[i].id) >= 0)
                    r->failures++;
                chat_message_clear(&out[i]);
            }
        }
        chat_search_query_t q = {.text = "shared wor", .limit = 5, .can_read = reenter, .ctx = r};
        chat_search_hit_t hits[5];
        size_t n;
        chat_search(r->s, &q, hits, &n);
        for (size_t i = 0; i < n; i++)
            chat_message_clear(&hits[i].message);
        r->rounds++;
    }
    return NULL;
}

TEST(chat_concurrent_posters_each_message_once_in_order)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-conc");
    store_t *s = ut_store_open(dir);
    char channels[CHANNELS][STORE_ID_MAX];
    for (int i = 0; i < CHANNELS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", i);
        channel(s, name, "usr_owner", false, channels[i]);
    }
    pthread_t t[POSTERS], rt;
    poster_t p[POSTERS];
    reader_t r = {.s = s, .channels = channels};
    pthread_create(&rt, NULL, read_while_posting, &r);
    for (int i = 0; i < POSTERS; i++) {
        p[i] = (poster_t){.s = s, .channels = channels, .id = i};
        pthread_create(&t[i], NULL, post_many, &p[i]);
    }
    for (int i = 0; i < POSTERS; i++) {
        pthread_join(t[i], NULL);
        ASSERT_EQ(p[i].failures, 0);
    }
    r.stop = true;
    pthread_join(rt, NULL);
    ASSERT_EQ(r.failures, 0);
    ASSERT_GT(r.rounds, 0);
    ASSERT_GT(r.checks, 0);

    for (int round = 0; round < 2; round++) {
        static bool seen[POSTERS][PER_POSTER];
        memset(seen, 0, sizeof(seen));
        size_t total = 0;
        chat_message_t *out = calloc(POSTERS * PER_POSTER, sizeof(*out));
        for (int c = 0; c < CHANNELS; c++) {
            size_t n;
            bool more;
            ASSERT_EQ(chat_history(s, channels[c], NULL, NULL, POSTERS * PER_POSTER, out, &n,
                                   &more),
                      0);
            ASSERT_EQ(n, POSTERS * PER_POSTER / CHANNELS);
            for (size_t i = 0; i < n; i++) {
                if (i)
                    ASSERT_STRLT(out[i - 1].id, out[i].id);
                int who, item;
                ASSERT_EQ(sscanf(out[i].content, "poster%d item%d", &who, &item), 2);
                ASSERT_TRUE(!seen[who][item]);
                seen[who][item] = true;
                chat_message_clear(&out[i]);
            }
            total += n;
        }
        free(out);
        ASSERT_EQ(total, POSTERS * PER_POSTER);
        chat_search_query_t q = {.text = "shared", .limit = 1, .total_max = SIZE_MAX,
                                 .work_max = SIZE_MAX};
        chat_search_hit_t hit;
        size_t n;
        ASSERT_EQ(chat_search(s, &q, &hit, &n), POSTERS * PER_POSTER);
        chat_message_clear(&hit.message);
        s = ut_store_reopen(s, dir);
    }
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

/* ---- search ----------------------------------------------------------------------------- */

static size_t search_ids(store_t *s, const chat_search_query_t *q, char (*ids)[STORE_ID_MAX],
                         size_t max)
{
    chat_search_hit_t *hits = calloc(max ? max : 1, sizeof(*hits));
    chat_search_query_t qq = *q;
    qq.limit = max;
    size_t n;
    size_t total = chat_search(s, &qq, hits, &n);
    ASSERT_LE(n, max);
    ASSERT_LE(n, total);
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], STORE_ID_MAX, "%s", hits[i].message.id);
        ASSERT_TRUE(!hits[i].message.is_deleted);
        if (i) /* newest first */
            ASSERT_STRLT(hits[i].message.id, hits[i - 1].message.id);
        chat_message_clear(&hits[i].message);
    }
    free(hits);
    return total;
}

static size_t count(store_t *s, const char *text)
{
    chat_search_query_t q = {.text = text, .work_max = SIZE_MAX, .total_max = SIZE_MAX};
    char ids[1][STORE_ID_MAX];
    return search_ids(s, &q, ids, 0);
}

typedef struct word_list {
    char text[512];
} word_list_t;

static void list_word(void *ctx, size_t off, size_t len, const char *lower)
{
    word_list_t *w = ctx;
    size_t at = strlen(w->text);
    snprintf(w->text + at, sizeof(w->text) - at, "%s%zu+%zu:%s", at ? " " : "", off, len, lower);
}

TEST(chat_words_split_and_fold_like_the_index)
{
    word_list_t w = {""};
    chat_words("Hello, Wörld! ÇA va? x2 don't — ΣΊΣΥΦΟΣ Привет_Мир 中文", list_word, &w);
    ASSERT_STREQ(w.text, "0+5:hello 7+6:wörld 15+3:ça 19+2:va 23+2:x2 26+3:don 30+1:t "
                         "36+14:σίσυφοσ 51+12:привет 64+6:мир 71+6:中文");
    w.text[0] = '\0';
    chat_words("bad\xff" "utf\xc3(8 e\xcc\x81t\xc3\xa9", list_word, &w);
    ASSERT_STREQ(w.text, "0+3:bad 4+3:utf 9+1:8 11+6:e\xcc\x81t\xc3\xa9");
    w.text[0] = '\0';
    chat_words("", list_word, &w);
    chat_words("  ,.;  ", list_word, &w);
    ASSERT_STREQ(w.text, "");
    char out[64];
    chat__fold("ÜBER Straße ΑΘΗΝΑ", out, sizeof(out));
    ASSERT_STREQ(out, "über straße αθηνα");
    chat__fold("ÜÜÜ", out, 4); /* truncated at a code point */
    ASSERT_STREQ(out, "ü");
}

TEST(chat_search_words_case_scripts_prefix_and_and)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-search");
    store_t *s = ut_store_open(dir);
    char ch[STORE_ID_MAX], ids[8][STORE_ID_MAX];
    channel(s, "main", "usr_a", false, ch);
    post(s, ch, "usr_a", "Hello World", ids[0]);
    post(s, ch, "usr_b", "hello there, friend", ids[1]);
    post(s, ch, "usr_a", "HELLO again, world!", ids[2]);
    post(s, ch, "usr_b", "Ünïcödé test with ümlauts", ids[3]);
    post(s, ch, "usr_a", "Καλημέρα κόσμε and Привет мир", ids[4]);
    post(s, ch, "usr_b", "worldwide helpers", ids[5]);

    ASSERT_EQ(count(s, "hello"), 3);
    ASSERT_EQ(count(s, "HeLLo"), 3);
    ASSERT_EQ(count(s, "hello world"), 2);   /* AND */
    ASSERT_EQ(count(s, "world hello"), 2);   /* "hello" as a prefix: no "helpers" */
    ASSERT_EQ(count(s, "world hel"), 2);
    ASSERT_EQ(count(s, "worldwide hel"), 1); /* "hel" matches helpers */
    ASSERT_EQ(count(s, "wor"), 3);           /* prefix of the last word */
    ASSERT_EQ(count(s, "wor hello"), 0);     /* only the last word is a prefix */
    ASSERT_EQ(count(s, "hello, world!!"), 2);
    ASSERT_EQ(count(s, "nothing"), 0);
    ASSERT_EQ(count(s, ""), 0);
    ASSERT_EQ(count(s, " ,;; "), 0);
    ASSERT_EQ(count(s, "ünïcödé"), 1);
    ASSERT_EQ(count(s, "ÜNÏCÖDÉ"), 1);
    ASSERT_EQ(count(s, "Ünï"), 1);
    ASSERT_EQ(count(s, "ün"), 1);            /* a prefix of two characters */
    ASSERT_EQ(count(s, "ü"), 0);             /* one character: a whole word only */
    ASSERT_EQ(count(s, "καλημέρα"), 1);
    ASSERT_EQ(count(s, "ΚΑΛΗΜΈΡΑ"), 1);
    ASSERT_EQ(count(s, "κόσμ"), 1);
    ASSERT_EQ(count(s, "ПРИВЕТ"), 1);
    ASSERT_EQ(count(s, "привет мир"), 1);
    ASSERT_EQ(count(s, "hello мир"), 0);
    ASSERT_EQ(count(s, "hello hello hello"), 3);

    chat_search_query_t q = {.text = "hello"};
    char got[8][STORE_ID_MAX];
    ASSERT_EQ(search_ids(s, &q, got, 2), 3); /* the total, two returned */
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

/* Waits until the wall clock (the one messages are stamped with) is past
 * `ms`, and returns it. */
static int64_t wall_ms_after(int64_t ms)
{
    int64_t deadline = tu_deadline(), now;
    while ((now = clock_wall_ms()) <= ms) {
        if (tu_expired(deadline))
            TEST_FAIL_("the wall clock stayed at %lld ms", (long long)now);
        usleep(100);
    }
    return now;
}

typedef struct read_rule {
    const char *deny;
    int calls;
    store_t *s;
} read_rule_t;

static bool can_read(void *ctx, const char *channel_id)
{
    read_rule_t *r = ctx;
    r->calls++;
    /* Calling back into the store must be fine. */
    chat_channel_t c;
    if (r->s && chat_channel_get(r->s, channel_id, &c))
        chat_channel_clear(&c);
    chat_membership_t m;
    if (r->s)
        chat_membership_get(r->s, channel_id, "usr_a", &m);
    return r->deny == NULL || strcmp(channel_id, r->deny) != 0;
}

TEST(chat_search_filters_and_can_read)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-filters");
    store_t *s = ut_store_open(dir);
    char c1[STORE_ID_MAX], c2[STORE_ID_MAX], c3[STORE_ID_MAX], ids[6][STORE_ID_MAX];
    channel(s, "one", "usr_a", false, c1);
    channel(s, "two", "usr_a", false, c2);
    channel(s, "three", "usr_a", true, c3);
    post(s, c1, "usr_a", "deploy today", ids[0]);
    post(s, c2, "usr_b", "deploy tomorrow", ids[1]);
    post(s, c3, "usr_a", "deploy secretly", ids[2]);
    /* A millisecond between the first three and `mid`, and between `mid`
     * and the last two: waited for on the clock, not slept. */
    int64_t mid = wall_ms_after(clock_wall_ms());
    wall_ms_after(mid);
    post(s, c1, "usr_b", "deploy again", ids[3]);
    post(s, c2, "usr_a", "deploy later", ids[4]);

    char got[8][STORE_ID_MAX];
    chat_search_query_t q = {.text = "deploy"};
    ASSERT_EQ(search_ids(s, &q, got, 8), 5);
    q.channel_id = c1;
    ASSERT_EQ(search_ids(s, &q, got, 8), 2);
    q.channel_id = "ch_missing";
    ASSERT_EQ(search_ids(s, &q, got, 8), 0);
    q.channel_id = NULL;
    q.sender_id = "usr_b";
    ASSERT_EQ(search_ids(s, &q, got, 8), 2);
    q.sender_id = "usr_a";
    q.from_ms = mid;
    ASSERT_EQ(search_ids(s, &q, got, 8), 1);
    ASSERT_STREQ(got[0], ids[4]);
    q.sender_id = NULL;
    q.from_ms = 0;
    q.to_ms = mid;
    ASSERT_EQ(search_ids(s, &q, got, 8), 3);

    /* can_read: once per channel, no lock held (it calls the store). */
    read_rule_t rule = {.deny = c3, .s = s};
    q = (chat_search_query_t){.text = "deploy", .can_read = can_read, .ctx = &rule};
    ASSERT_EQ(search_ids(s, &q, got, 8), 4);
    ASSERT_EQ(rule.calls, 3);
    for (int i = 0; i < 4; i++)
        ASSERT_STRNE(got[i], ids[2]);
    rule.calls = 0;
    q.channel_id = c3;
    ASSERT_EQ(search_ids(s, &q, got, 8), 0);
    ASSERT_EQ(rule.calls, 1);
    rule.calls = 0;
    q.channel_id = c2;
    ASSERT_EQ(search_ids(s, &q, got, 8), 2);
    ASSERT_EQ(rule.calls, 1);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

/* Several ids per kind (OR within, AND across) and an offset (a page). */
TEST(chat_search_id_lists_and_offset)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-idlists");
    store_t *s = ut_store_open(dir);
    char c1[STORE_ID_MAX], c2[STORE_ID_MAX], c3[STORE_ID_MAX], ids[5][STORE_ID_MAX];
    channel(s, "one", "usr_a", false, c1);
    channel(s, "two", "usr_a", false, c2);
    channel(s, "three", "usr_a", false, c3);
    post(s, c1, "usr_a", "deploy one", ids[0]);
    post(s, c2, "usr_b", "deploy two", ids[1]);
    post(s, c3, "usr_c", "deploy three", ids[2]);
    post(s, c1, "usr_b", "deploy four", ids[3]);
    post(s, c3, "usr_a", "deploy five", ids[4]);

    char got[8][STORE_ID_MAX];
    const char *chans[] = {c1, c3}, *senders[] = {"usr_a", "usr_b"};
    chat_search_query_t q = {.text = "deploy", .channel_ids = chans, .n_channel_ids = 2};
    ASSERT_EQ(search_ids(s, &q, got, 8), 4);
    q.sender_ids = senders;
    q.n_sender_ids = 2;
    ASSERT_EQ(search_ids(s, &q, got, 8), 3); /* c1 or c3, and usr_a or usr_b */
    ASSERT_STREQ(got[0], ids[4]);
    ASSERT_STREQ(got[1], ids[3]);
    ASSERT_STREQ(got[2], ids[0]);
    q.n_channel_ids = 0;
    ASSERT_EQ(search_ids(s, &q, got, 8), 4);
    q.n_sender_ids = 1; /* usr_a */
    q.channel_id = c2;
    ASSERT_EQ(search_ids(s, &q, got, 8), 0);

    /* An offset skips the newest matches; they still count in the total. */
    q = (chat_search_query_t){.text = "deploy", .offset = 3};
    memset(got, 0, sizeof(got));
    ASSERT_EQ(search_ids(s, &q, got, 8), 5);
    ASSERT_STREQ(got[0], ids[1]);
    ASSERT_STREQ(got[1], ids[0]);
    ASSERT_STREQ(got[2], "");
    q.offset = 5;
    memset(got, 0, sizeof(got));
    ASSERT_EQ(search_ids(s, &q, got, 8), 5);
    ASSERT_STREQ(got[0], "");
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

TEST(chat_search_index_follows_edits_and_deletes)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-reindex");
    store_t *s = ut_store_open(dir);
    char ch[STORE_ID_MAX], a[STORE_ID_MAX], b[STORE_ID_MAX];
    channel(s, "main", "usr_a", false, ch);
    post(s, ch, "usr_a", "the quick brown fox", a);
    post(s, ch, "usr_a", "a lazy brown dog", b);
    ASSERT_EQ(count(s, "brown"), 2);
    ASSERT_EQ(modify(s, a, (msg_change_t){EDIT, "the slow red fox", NULL, NULL}), 0);
    ASSERT_EQ(count(s, "brown"), 1);
    ASSERT_EQ(count(s, "quick"), 0);
    ASSERT_EQ(count(s, "slow red"), 1);
    ASSERT_EQ(count(s, "fox"), 1);
    /* An edit of an older message while newer ones exist. */
    for (int i = 0; i < 20; i++)
        post(s, ch, "usr_b", "brown noise", NULL);
    ASSERT_EQ(modify(s, a, (msg_change_t){EDIT, "brown brown fox", NULL, NULL}), 0);
    ASSERT_EQ(count(s, "brown"), 22);
    ASSERT_EQ(modify(s, b, (msg_change_t){DELETE, NULL, NULL, NULL}), 0);
    ASSERT_EQ(count(s, "brown"), 21);
    ASSERT_EQ(count(s, "lazy"), 0);
    ASSERT_EQ(count(s, "dog"), 0);
    ASSERT_EQ(count(s, "l"), 0); /* "lazy" left the vocabulary */
    s = ut_store_reopen(s, dir);
    ASSERT_EQ(count(s, "brown"), 21);
    ASSERT_EQ(count(s, "lazy"), 0);
    ASSERT_EQ(count(s, "slow"), 0);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

TEST(chat_search_newest_first_scored_by_occurrences_and_recency)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-rank");
    store_t *s = ut_store_open(dir);
    char ch[STORE_ID_MAX], once[STORE_ID_MAX], thrice[STORE_ID_MAX], later[STORE_ID_MAX],
        both[STORE_ID_MAX], old[STORE_ID_MAX];
    channel(s, "main", "usr_a", false, ch);
    /* An old message, written as a record with a created_at a year ago. */
    char rec[512];
    snprintf(rec, sizeof(rec),
             "{\"v\":1,\"id\":\"msg_0000000000000001\",\"channel_id\":\"%s\",\"user_id\":"
             "\"usr_a\",\"content\":\"apple pie\",\"created_at\":%lld}",
             ch, (long long)(clock_wall_ms() - 365LL * 86400000));
    apply_ok(s, STORE_REC_MESSAGE, rec);
    snprintf(old, sizeof(old), "msg_0000000000000001");
    post(s, ch, "usr_a", "apple", once);
    post(s, ch, "usr_a", "apple apple apple", thrice);
    post(s, ch, "usr_a", "an apple", later);
    post(s, ch, "usr_a", "apple banana", both);

    char got[8][STORE_ID_MAX];
    chat_search_query_t q = {.text = "apple"};
    ASSERT_EQ(search_ids(s, &q, got, 8), 5);
    ASSERT_STREQ(got[0], both); /* newest first, whatever the score */
    ASSERT_STREQ(got[1], later);
    ASSERT_STREQ(got[2], thrice);
    ASSERT_STREQ(got[3], once);
    ASSERT_STREQ(got[4], old);
    q.text = "apple ban";
    ASSERT_EQ(search_ids(s, &q, got, 8), 1);
    ASSERT_STREQ(got[0], both);

    chat_search_hit_t hit[3];
    size_t n;
    q = (chat_search_query_t){.text = "apple", .limit = 3};
    chat_search(s, &q, hit, &n);
    ASSERT_EQ(n, 3);
    ASSERT_STREQ(hit[2].message.id, thrice);
    /* 1 + ln 4 + a bonus of ~1 for a message of now; once: 1 + ln 2 + ~1. */
    ASSERT_TRUE(hit[2].score > 3.38 && hit[2].score < 3.39);
    ASSERT_TRUE(hit[1].score > 2.69 && hit[1].score < 2.70);
    for (size_t i = 0; i < n; i++)
        chat_message_clear(&hit[i].message);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

TEST(chat_recovery_of_many_channels_is_fast_and_exact)
{
    /* The snapshot holds the messages in id order across channels, so
     * replay appends to the word index; per channel it would rewrite whole
     * posting lists for every word (quadratic). */
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-recover");
    store_t *s = ut_store_open_mode(dir, WAL_FSYNC_NONE);
    enum { CH = 16, MSGS = 20000 };
    char chans[CH][STORE_ID_MAX];
    for (int i = 0; i < CH; i++) {
        char name[16];
        snprintf(name, sizeof(name), "r%d", i);
        channel(s, name, "usr_a", false, chans[i]);
    }
    for (int i = 0; i < MSGS; i++) {
        char text[96];
        snprintf(text, sizeof(text), "common words in every message, number %d of %s", i % 97,
                 i % 2 ? "odd" : "even");
        post(s, chans[i % CH], "usr_a", text, NULL);
    }
    ASSERT_EQ(count(s, "common"), MSGS);
    ASSERT_EQ(store_close(s), 0); /* the snapshot */
    /* The time is printed, not asserted: on two shared cores, and in the
     * sanitizer builds, no bound would be both safe and tight. */
    int64_t t0 = clock_mono_ns();
    s = ut_store_open_mode(dir, WAL_FSYNC_NONE);
    double ms = (double)(clock_mono_ns() - t0) / 1e6;
    printf("  %d messages in %d channels recovered in %.0f ms\n", MSGS, CH, ms);
    ASSERT_EQ(count(s, "common"), MSGS);
    ASSERT_EQ(count(s, "odd"), MSGS / 2);
    ASSERT_EQ(count(s, "number 42"), MSGS / 97 + (MSGS % 97 > 42));
    chat_message_t *h = calloc(MSGS / CH, sizeof(*h));
    size_t n;
    bool more;
    ASSERT_EQ(chat_history(s, chans[3], NULL, NULL, MSGS / CH, h, &n, &more), 0);
    ASSERT_EQ(n, MSGS / CH);
    for (size_t i = 0; i < n; i++) {
        if (i)
            ASSERT_STRLT(h[i - 1].id, h[i].id);
        chat_message_clear(&h[i]);
    }
    free(h);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

/* ---- memory ------------------------------------------------------------------------------- */

TEST(chat_memory_per_message)
{
#if defined(UT_ASAN) || defined(UT_TSAN)
    return; /* the sanitizer's allocator has its own accounting */
#else
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-mem");
    store_t *s = ut_store_open_mode(dir, WAL_FSYNC_NONE);
    char ch[STORE_ID_MAX];
    channel(s, "main", "usr_a", false, ch);
    /* ~2,000 distinct words of 3-9 letters; messages of ~100 bytes. */
    static const char *syl[] = {"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "pa",
                                "qu", "de", "fo", "gi", "hu", "ja", "be", "co", "xi", "wy"};
    enum { N = 50000 };
    unsigned seed = 7;
    char content[160], rec[512];
    size_t content_bytes = 0;
    struct mallinfo2 before = mallinfo2();
    for (int i = 1; i <= N; i++) {
        size_t len = 0;
        while (len < 95) {
            unsigned w = (unsigned)rand_r(&seed) % 2000;
            int parts = 2 + (int)(w % 3);
            if (len)
                content[len++] = ' ';
            for (int p = 0; p < parts; p++) {
                memcpy(content + len, syl[(w >> (p * 3)) % 20], 2);
                len += 2;
            }
        }
        content[len] = '\0';
        content_bytes += len;
        snprintf(rec, sizeof(rec),
                 "{\"v\":1,\"id\":\"msg_%016d\",\"channel_id\":\"%s\",\"user_id\":\"usr_%d\","
                 "\"content\":\"%s\",\"created_at\":1767960000000}",
                 i, ch, i % 50, content);
        apply_ok(s, STORE_REC_MESSAGE, rec);
    }
    chat__index_wait(s->chat); /* the index of what was applied, built */
    struct mallinfo2 after = mallinfo2();
    double per = (double)(after.uordblks - before.uordblks) / N;
    double content_per = (double)content_bytes / N;
    pthread_rwlock_rdlock(&s->chat->msg_lock);
    double index_per = (double)chat__index_bytes(s->chat) / N;
    pthread_rwlock_unlock(&s->chat->msg_lock);
    printf("  %.0f bytes per message of %.0f bytes: %.0f overhead (index %.0f)\n", per,
           content_per, per - content_per, index_per);
    ASSERT_TRUE(per - content_per <= 300);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
#endif
}

TEST(chat_message_ids_are_msg_and_sixteen_digits_both_ways)
{
    char id[STORE_ID_MAX];
    const uint64_t seqs[] = {1, 42, 1234567890123456ull, CHAT_SEQ_MAX};
    const char *const want[] = {"msg_0000000000000001", "msg_0000000000000042",
                                "msg_1234567890123456", "msg_9999999999999999"};
    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        chat__msg_id(seqs[i], id);
        ASSERT_STREQ(id, want[i]);
        ASSERT_EQ(chat__msg_seq(id), seqs[i]);
    }
    ASSERT_EQ(chat__msg_seq("msg_000000000000001"), 0);   /* 15 digits */
    ASSERT_EQ(chat__msg_seq("msg_00000000000000011"), 0); /* 17 digits */
    ASSERT_EQ(chat__msg_seq("msg_000000000000000x"), 0);
    ASSERT_EQ(chat__msg_seq("ch_0000000000000001"), 0);
}

/* A binary message record by hand, for the decoder's refusals. */
static size_t hand_record(uint8_t *b, uint8_t flags, const char *content, size_t content_len,
                          uint32_t n_mentions)
{
    size_t n = 0;
    b[n++] = CHAT_MSG_RECORD_BINARY;
    b[n++] = flags;
    memset(b + n, 0, 16); /* created_at, updated_at */
    n += 16;
    const char *fixed[] = {"msg_0000000000000007", "ch_a", "usr_a", "", "", ""};
    for (int i = 0; i < 6; i++) {
        b[n++] = (uint8_t)strlen(fixed[i]);
        memcpy(b + n, fixed[i], strlen(fixed[i]));
        n += strlen(fixed[i]);
    }
    if (flags & 4) {
        uint32_t c = (uint32_t)content_len;
        memcpy(b + n, &c, 4); /* little-endian machines only run these tests */
        n += 4;
        memcpy(b + n, content, content_len);
        n += content_len;
    }
    memcpy(b + n, &n_mentions, 4);
    n += 4;
    memset(b + n, 0, 8); /* no attachments, no reactions */
    return n + 8;
}

TEST(chat_binary_message_records_refuse_bad_bytes)
{
    uint8_t b[512];
    chat_message_t m;
    size_t n = hand_record(b, 4 | 1, "hello", 5, 0);
    ASSERT_EQ(chat__message_decode(b, n, &m), 0);
    ASSERT_STREQ(m.content, "hello");
    ASSERT_TRUE(m.is_edited && !m.is_deleted);
    chat_message_clear(&m);
    /* Unknown flag bits. */
    n = hand_record(b, 4 | 8, "hello", 5, 0);
    ASSERT_EQ(chat__message_decode(b, n, &m), STORE_E_CORRUPT);
    /* A NUL, invalid UTF-8, an overlong form and a surrogate in the content. */
    const char *bad[] = {"he\0lo", "he\xffo", "\xc0\xaf", "\xed\xa0\x80"};
    const size_t bad_len[] = {5, 4, 2, 3};
    for (int i = 0; i < 4; i++) {
        n = hand_record(b, 4, bad[i], bad_len[i], 0);
        ASSERT_EQ(chat__message_decode(b, n, &m), STORE_E_CORRUPT);
    }
    /* A count the rest cannot hold, and one over the limit: refused before
     * anything is allocated (ASan would see a huge allocation). */
    n = hand_record(b, 0, NULL, 0, 0xffffffffu);
    ASSERT_EQ(chat__message_decode(b, n, &m), STORE_E_CORRUPT);
    n = hand_record(b, 0, NULL, 0, 3);
    ASSERT_EQ(chat__message_decode(b, n, &m), STORE_E_CORRUPT);
    /* Content longer than the record. */
    n = hand_record(b, 4, "abc", 3, 0);
    b[2 + 16 + 1 + 20 + 1 + 4 + 1 + 5 + 3] = 0xff; /* the content length's low byte */
    ASSERT_EQ(chat__message_decode(b, n, &m), STORE_E_CORRUPT);
    /* A deleted message keeps no content. */
    n = hand_record(b, 2 | 4, "gone", 4, 0);
    ASSERT_EQ(chat__message_decode(b, n, &m), 0);
    ASSERT_TRUE(m.is_deleted);
    ASSERT_NULL(m.content);
    chat_message_clear(&m);
    /* An encoder refuses invalid UTF-8 rather than write what replay refuses. */
    memset(&m, 0, sizeof(m));
    snprintf(m.id, sizeof(m.id), "msg_0000000000000001");
    snprintf(m.channel_id, sizeof(m.channel_id), "ch_a");
    snprintf(m.user_id, sizeof(m.user_id), "usr_a");
    m.content = strdup("\xff");
    size_t len;
    ASSERT_NULL(chat__message_encode(&m, &len));
    chat_message_clear(&m);
    ut_leak_check();
}

static int no_snapshot(void *ctx, uint64_t lsn)
{
    (void)ctx;
    (void)lsn;
    return 0;
}

static int no_record(void *ctx, uint64_t lsn, uint8_t type, const void *data, size_t len)
{
    (void)ctx, (void)lsn, (void)type, (void)data, (void)len;
    return 0;
}

/* The log of a new data directory, opened without the store, to write
 * records as given. */
static wal_t *bare_log(char *dir, size_t size, const char *tag)
{
    ut_tmpdir(dir, size, tag);
    wal_t *w;
    wal_options_t wo = {.fsync = WAL_FSYNC_NONE};
    wal_replay_t none = {no_snapshot, NULL, no_record, NULL};
    wal_recovery_t rep;
    ASSERT_EQ(wal_open(dir, &wo, &none, &w, &rep), 0);
    return w;
}

TEST(chat_json_message_records_of_earlier_versions_still_load)
{
    char dir[64];
    /* A log as the JSON-only versions wrote it. */
    wal_t *w = bare_log(dir, sizeof(dir), "chat-legacy");
    const char *ch = "{\"v\":1,\"id\":\"ch_old\",\"name\":\"old\",\"description\":null,"
                     "\"owner_id\":\"usr_a\",\"direct_key\":null,\"is_direct\":false,"
                     "\"is_private\":false,\"is_deleted\":false,\"created_at\":1,"
                     "\"updated_at\":1}";
    const char *msg = "{\"v\":1,\"id\":\"msg_0000000000000001\",\"channel_id\":\"ch_old\","
                      "\"user_id\":\"usr_a\",\"content\":\"from before\",\"reply_to\":null,"
                      "\"thread_id\":null,\"mentions\":[\"usr_b\"],\"attachments\":[],"
                      "\"idempotency_key\":\"k1\",\"reactions\":[{\"emoji\":\"👍\","
                      "\"users\":[\"usr_b\"]}],\"is_edited\":true,\"is_deleted\":false,"
                      "\"created_at\":5,\"updated_at\":6}";
    uint64_t lsn;
    ASSERT_EQ(wal_append(w, STORE_REC_CHANNEL, ch, strlen(ch), &lsn), 0);
    ASSERT_EQ(wal_append(w, STORE_REC_MESSAGE, msg, strlen(msg), &lsn), 0);
    ASSERT_EQ(wal_close(w), 0);

    /* Replayed from the log, then from a snapshot written in binary. */
    for (int round = 0; round < 2; round++) {
        store_t *s = ut_store_open(dir);
        chat_message_t m;
        ASSERT_TRUE(chat_message_get(s, "msg_0000000000000001", &m));
        ASSERT_STREQ(m.content, "from before");
        ASSERT_STREQ(m.idempotency_key, "k1");
        ASSERT_EQ(m.n_mentions, 1);
        ASSERT_EQ(m.n_reactions, 1);
        ASSERT_TRUE(m.is_edited);
        ASSERT_EQ(m.created_at, 5);
        chat_message_clear(&m);
        /* New posts beside it are binary, and the next seq follows it. */
        char id[STORE_ID_MAX];
        post(s, "ch_old", "usr_a", round ? "third" : "second", id);
        ASSERT_STREQ(id, round ? "msg_0000000000000003" : "msg_0000000000000002");
        if (round == 0)
            ASSERT_EQ(store_snapshot(s), 0);
        ASSERT_EQ(store_close(s), 0);
    }
    ut_rmrf(dir);
    ut_leak_check();
}

static size_t search_total(store_t *s, const char *text)
{
    chat_search_query_t q = {.text = text, .limit = 1, .total_max = SIZE_MAX, .work_max = SIZE_MAX};
    chat_search_hit_t hit[1];
    size_t n;
    size_t total = chat_search(s, &q, hit, &n);
    for (size_t i = 0; i < n; i++)
        chat_message_clear(&hit[i].message);
    return total;
}

/* A store without fsync (many posts) and its channel "main". */
static store_t *fast_store(char *dir, size_t size, const char *tag, char ch[STORE_ID_MAX])
{
    ut_tmpdir(dir, size, tag);
    store_t *s = ut_store_open_mode(dir, WAL_FSYNC_NONE);
    channel(s, "main", "usr_a", false, ch);
    return s;
}

/* Recovery does not index; the builder thread does, while posts, edits and
 * deletes go on. Whatever the interleaving, once built the index must be
 * the index of the messages as they are. */
TEST(chat_search_index_built_after_reopen_sees_changes_made_meanwhile)
{
    char dir[64], ch[STORE_ID_MAX];
    store_t *s = fast_store(dir, sizeof(dir), "chat-build", ch);
    enum { N = 20000 };
    static char ids[N][STORE_ID_MAX];
    for (int i = 0; i < N; i++) {
        char text[64];
        snprintf(text, sizeof(text), "common word%d %s", i, i % 2 ? "odd" : "even");
        post(s, ch, "usr_a", text, ids[i]);
    }
    ASSERT_EQ(store_close(s), 0);
    ut_rm_snapshots(dir); /* replay the log: the longest build */

    s = ut_store_open_mode(dir, WAL_FSYNC_NONE);
    /* At once, while the builder runs: edit the first and last 100, delete
     * 100 in the middle, post 100 more. */
    for (int i = 0; i < 100; i++) {
        char text[64];
        snprintf(text, sizeof(text), "changed zebra%d", i);
        ASSERT_EQ(modify(s, ids[i], (msg_change_t){EDIT, text, NULL, NULL}), 0);
        snprintf(text, sizeof(text), "changed zebra%d", N - 1 - i);
        ASSERT_EQ(modify(s, ids[N - 1 - i], (msg_change_t){EDIT, text, NULL, NULL}), 0);
        ASSERT_EQ(modify(s, ids[N / 2 + i], (msg_change_t){DELETE, NULL, NULL, NULL}), 0);
        post(s, ch, "usr_b", "common fresh", NULL);
    }
    ASSERT_EQ(search_total(s, "common"), N - 200 - 100 + 100);
    ASSERT_EQ(search_total(s, "fresh"), 100);
    ASSERT_EQ(search_total(s, "changed"), 200);
    ASSERT_EQ(search_total(s, "zebra0"), 1);
    ASSERT_EQ(search_total(s, "zebra19999"), 1);
    ASSERT_EQ(search_total(s, "word0"), 0);       /* edited away */
    ASSERT_EQ(search_total(s, "word10000"), 0);   /* deleted */
    ASSERT_EQ(search_total(s, "word10100"), 1);   /* untouched */
    ASSERT_EQ(search_total(s, "odd"), N / 2 - 150);
    /* After the build, applies index as they always did. */
    post(s, ch, "usr_b", "later unicorn", NULL);
    ASSERT_EQ(search_total(s, "unicorn"), 1);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

/* Once built, the index is kept by its thread: apply queues each change
 * and a search waits for those queued before it started. Whatever the
 * timing, a search after a post, an edit or a delete sees it; a burst is
 * all there; a close with changes still queued leaks nothing, and the next
 * open indexes them from the log. */
TEST(chat_search_sees_every_change_applied_before_it_started)
{
    char dir[64], ch[STORE_ID_MAX];
    store_t *s = fast_store(dir, sizeof(dir), "chat-live", ch);
    post(s, ch, "usr_a", "first", NULL);
    ASSERT_EQ(search_total(s, "first"), 1); /* built: from here apply queues */
    for (int i = 0; i < 200; i++) {
        char text[64], word[32], id[STORE_ID_MAX];
        snprintf(text, sizeof(text), "alpha%d beta", i);
        post(s, ch, "usr_a", text, id);
        snprintf(word, sizeof(word), "alpha%d", i);
        ASSERT_EQ(search_total(s, word), 1);
        snprintf(text, sizeof(text), "gamma%d", i);
        ASSERT_EQ(modify(s, id, (msg_change_t){EDIT, text, NULL, NULL}), 0);
        ASSERT_EQ(search_total(s, word), 0);
        ASSERT_EQ(search_total(s, text), 1);
        if (i % 2)
            ASSERT_EQ(modify(s, id, (msg_change_t){DELETE, NULL, NULL, NULL}), 0);
        ASSERT_EQ(search_total(s, text), i % 2 ? 0 : 1);
    }
    ASSERT_EQ(search_total(s, "beta"), 0);
    for (int i = 0; i < 5000; i++)
        post(s, ch, "usr_b", "burst of posts", NULL);
    ASSERT_EQ(search_total(s, "burst"), 5000);
    pthread_mutex_lock(&s->chat->index_mu);
    ASSERT_GE(s->chat->jobs_queued, 5000 + 200 * 2); /* the indexer's, not apply's */
    pthread_mutex_unlock(&s->chat->index_mu);
    for (int i = 0; i < 3000; i++)
        post(s, ch, "usr_b", "burst at close", NULL);
    ASSERT_EQ(store_close(s), 0);
    ut_rm_snapshots(dir);
    s = ut_store_open_mode(dir, WAL_FSYNC_NONE);
    ASSERT_EQ(search_total(s, "burst"), 8000);
    ASSERT_EQ(search_total(s, "close"), 3000);
    ASSERT_EQ(search_total(s, "gamma199"), 0); /* deleted */
    ASSERT_EQ(search_total(s, "gamma198"), 1);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

/* Recovery applies records on a second thread; a record that does not apply
 * must still fail the open, wherever it lies: early (while batches of good
 * ones follow), or in the last batch. */
TEST(chat_a_record_that_does_not_apply_fails_recovery)
{
    for (int where = 0; where < 2; where++) {
        char dir[64];
        wal_t *w = bare_log(dir, sizeof(dir), "chat-badrec");
        uint64_t lsn;
        const char *ch = "{\"v\":1,\"id\":\"ch_b\",\"name\":\"b\",\"owner_id\":\"usr_a\","
                         "\"created_at\":1,\"updated_at\":1}";
        ASSERT_EQ(wal_append(w, STORE_REC_CHANNEL, ch, strlen(ch), &lsn), 0);
        int good = where == 0 ? 20000 : 100;
        for (int i = 1; i <= good; i++) {
            if (where == 0 && i == 10) {
                ASSERT_EQ(wal_append(w, STORE_REC_MESSAGE, "\x02garbage", 8, &lsn), 0);
                continue;
            }
            chat_message_t m;
            memset(&m, 0, sizeof(m));
            chat__msg_id((uint64_t)i, m.id);
            snprintf(m.channel_id, sizeof(m.channel_id), "ch_b");
            snprintf(m.user_id, sizeof(m.user_id), "usr_a");
            m.content = strdup("a message long enough to fill batches quickly, padded out");
            size_t len;
            char *rec = chat__message_encode(&m, &len);
            ASSERT_EQ(wal_append(w, STORE_REC_MESSAGE, rec, len, &lsn), 0);
            free(rec);
            chat_message_clear(&m);
        }
        if (where == 1)
            ASSERT_EQ(wal_append(w, STORE_REC_MESSAGE, "\x02garbage", 8, &lsn), 0);
        ASSERT_EQ(wal_close(w), 0);

        store_t *s;
        char err[256];
        store_options_t o = {.fsync = WAL_FSYNC_NONE};
        ASSERT_NE(store_open(&s, dir, &o, err, sizeof(err)), 0);
        ASSERT_CONTAINS(err, "cannot recover the log");
        ut_rmrf(dir);
    }
    ut_leak_check();
}

TEST(chat_user_message_count_is_kept_by_the_apply)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-count");
    store_t *s = ut_store_open(dir);
    char ch[STORE_ID_MAX], first[STORE_ID_MAX], id[STORE_ID_MAX];
    channel(s, "Counted", "usr_a", false, ch);
    post(s, ch, "usr_a", "one", first);
    post(s, ch, "usr_a", "two", id);
    post(s, ch, "usr_a", "three", id);
    post(s, ch, "usr_b", "mine", id);
    ASSERT_EQ(chat_user_message_count(s, "usr_a"), 3);
    ASSERT_EQ(chat_user_message_count(s, "usr_b"), 1);
    ASSERT_EQ(chat_user_message_count(s, "usr_nobody"), 0);
    /* An edit moves nothing; a delete one down, once. */
    ASSERT_EQ(modify(s, first, (msg_change_t){.what = EDIT, .text = "uno"}), 0);
    ASSERT_EQ(chat_user_message_count(s, "usr_a"), 3);
    ASSERT_EQ(modify(s, first, (msg_change_t){.what = DELETE}), 0);
    ASSERT_EQ(modify(s, first, (msg_change_t){.what = DELETE}), 0);
    ASSERT_EQ(chat_user_message_count(s, "usr_a"), 2);
    ASSERT_EQ(store_close(s), 0);
    /* The log alone, then the snapshot the next close writes. */
    ut_rm_snapshots(dir);
    s = ut_store_open(dir);
    ASSERT_EQ(chat_user_message_count(s, "usr_a"), 2);
    ASSERT_EQ(chat_user_message_count(s, "usr_b"), 1);
    s = ut_store_reopen(s, dir);
    ASSERT_EQ(chat_user_message_count(s, "usr_a"), 2);
    ASSERT_EQ(chat_user_message_count(s, "usr_b"), 1);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
}

/* ---- search cost (issue 15, item 4) ------------------------------------------------------ */

/* The slack over work_max a walk may take: its last step, and one block per
 * list decoded past the bound (64 pairs). */
#define WORK_SLACK(lists) ((lists) * 64 + (lists) + 64)

static size_t search_info(store_t *s, chat_search_query_t q, chat_search_info_t *info,
                          char (*ids)[STORE_ID_MAX], size_t max, size_t *n_out)
{
    chat_search_hit_t *hits = calloc(max ? max : 1, sizeof(*hits));
    q.limit = max;
    q.info = info;
    size_t n, total = chat_search(s, &q, hits, &n);
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], STORE_ID_MAX, "%s", hits[i].message.id);
        if (i)
            ASSERT_STRLT(hits[i].message.id, hits[i - 1].message.id);
        chat_message_clear(&hits[i].message);
    }
    free(hits);
    *n_out = n;
    return total;
}

TEST(chat_search_worst_case_queries_visit_a_bounded_number_of_postings)
{
    char dir[64], ch[STORE_ID_MAX];
    store_t *s = fast_store(dir, sizeof(dir), "chat-cost", ch);
    enum { N = 30000 };
    static char ids[N][STORE_ID_MAX];
    for (int i = 0; i < N; i++) {
        char text[96];
        /* "a" and "common" in every message; "rare" in one of 1,000; 100
         * words "pre<k>", pre0 the most common. */
        snprintf(text, sizeof(text), "a common word%d pre%d%s", i, (i % 100) * (i % 100) % 97,
                 i % 1000 == 7 ? " rare" : "");
        post(s, ch, "usr_a", text, ids[i]);
    }
    static char got[100][STORE_ID_MAX];
    size_t n;
    chat_search_info_t info;

    /* q=a: a whole word (one character), in every message: the newest 50,
     * the total counted up to its bound, a few postings per match. */
    ASSERT_EQ(search_info(s, (chat_search_query_t){.text = "a"}, &info, got, 50, &n),
              CHAT_SEARCH_TOTAL_MAX);
    ASSERT_EQ(n, 50);
    for (size_t i = 0; i < n; i++)
        ASSERT_STREQ(got[i], ids[N - 1 - i]);
    ASSERT_TRUE(info.truncated);
    ASSERT_EQ(info.prefix_words, 0);
    ASSERT_LE(info.work, 2 * CHAT_SEARCH_TOTAL_MAX + WORK_SLACK(1));
    size_t first_work = info.work;
    search_info(s, (chat_search_query_t){.text = "a"}, &info, got, 50, &n);
    ASSERT_EQ(info.work, first_work); /* deterministic */

    /* A filter nothing passes: the walk stops at the work bound. */
    ASSERT_EQ(search_info(s, (chat_search_query_t){.text = "common", .sender_id = "usr_zz"},
                          &info, got, 50, &n),
              0);
    ASSERT_TRUE(info.truncated);
    ASSERT_GE(info.work, CHAT_SEARCH_WORK_MAX);
    ASSERT_LE(info.work, CHAT_SEARCH_WORK_MAX + WORK_SLACK(1));
    ASSERT_GT(info.chunks, 1); /* the lock was let go between chunks */
    /* A smaller bound of the caller's. */
    search_info(s, (chat_search_query_t){.text = "common", .sender_id = "usr_zz", .work_max = 5000},
                &info, got, 50, &n);
    ASSERT_TRUE(info.truncated && info.work >= 5000 && info.work <= 5000 + WORK_SLACK(1));

    /* A rare word beside a common one: the long list is skipped through,
     * every match found, nothing truncated, far fewer postings than the
     * lists hold (2 x 30,000). */
    ASSERT_EQ(search_info(s, (chat_search_query_t){.text = "a common rare"}, &info, got, 50, &n),
              N / 1000);
    ASSERT_EQ(n, N / 1000);
    for (size_t i = 0; i < n; i++)
        ASSERT_STREQ(got[i], ids[(N / 1000 - 1 - i) * 1000 + 7]);
    ASSERT_TRUE(!info.truncated);
    ASSERT_LE(info.work, (N / 1000 + 1) * (3 * 64 + 3) * 2); /* a block per list per match */

    /* The prefix "pr" expands to its words with the most postings, at most
     * prefix_words_max; the answer says words were left out. */
    ASSERT_EQ(search_info(s, (chat_search_query_t){.text = "pr", .prefix_words_max = 4}, &info,
                          got, 100, &n),
              CHAT_SEARCH_TOTAL_MAX);
    ASSERT_EQ(info.prefix_words, 4);
    ASSERT_TRUE(info.truncated);
    ASSERT_GE(info.words_scanned, 97);
    ASSERT_LE(info.work, 2 * CHAT_SEARCH_TOTAL_MAX * 4 + WORK_SLACK(4));
    /* Newest first, from the four words only (the top counts of pre<k>). */
    size_t expect = 0;
    int cnt[97] = {0};
    for (int i = 0; i < N; i++)
        cnt[(i % 100) * (i % 100) % 97]++;
    for (int i = N - 1; i >= 0 && expect < n; i--) {
        /* The words before pre<k>: more postings, or as many and less by strcmp. */
        int k = (i % 100) * (i % 100) % 97, better = 0;
        char wk[16];
        snprintf(wk, sizeof(wk), "pre%d", k);
        for (int j = 0; j < 97; j++) {
            char wj[16];
            snprintf(wj, sizeof(wj), "pre%d", j);
            better += cnt[j] > cnt[k] || (cnt[j] == cnt[k] && strcmp(wj, wk) < 0);
        }
        if (better < 4) {
            ASSERT_STREQ(got[expect], ids[i]);
            expect++;
        }
    }
    ASSERT_EQ(expect, n);
    /* With the default 32 words, a step seeks only the lists above its
     * bound (a heap): the cost of the matches, not of 32 lists a step. */
    ASSERT_EQ(search_info(s, (chat_search_query_t){.text = "pr"}, &info, got, 50, &n),
              CHAT_SEARCH_TOTAL_MAX);
    ASSERT_EQ(info.prefix_words, CHAT_SEARCH_PREFIX_WORDS);
    ASSERT_LE(info.work, 2 * CHAT_SEARCH_TOTAL_MAX + WORK_SLACK(CHAT_SEARCH_PREFIX_WORDS));
    /* Under the default bound, every word: the total of the prefix. */
    search_info(s, (chat_search_query_t){.text = "pre", .total_max = SIZE_MAX, .work_max = SIZE_MAX,
                                         .prefix_words_max = 1000},
                &info, got, 10, &n);
    ASSERT_TRUE(!info.truncated);
    size_t distinct = 0;
    for (int j = 0; j < 97; j++)
        distinct += cnt[j] > 0;
    ASSERT_EQ(info.prefix_words, distinct);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

/* The words of a prefix, with at most `max` of them: (prefix words, total). */
static size_t prefix_count(store_t *s, const char *text, size_t max, size_t *words)
{
    chat_search_info_t info;
    static char got[1][STORE_ID_MAX];
    size_t n, total = search_info(s, (chat_search_query_t){.text = text, .prefix_words_max = max,
                                                           .total_max = SIZE_MAX,
                                                           .work_max = SIZE_MAX},
                                  &info, got, 1, &n);
    *words = info.prefix_words;
    return total;
}

/* A prefix finds its words by binary search in the sorted vocabulary and in
 * the words added since its last merge: words posted after the build (more
 * than the unsorted part holds, so merges happen), removed by an edit or a
 * delete, added again, and the same after a reopen (built by the builder). */
TEST(chat_search_prefix_words_follow_posts_edits_and_deletes)
{
    char dir[64], ch[STORE_ID_MAX];
    store_t *s = fast_store(dir, sizeof(dir), "chat-prefix", ch);
    enum { N = 17000 }; /* "zq" spans two read-lock holds of the vocabulary */
    static char ids[N][STORE_ID_MAX];
    for (int i = 0; i < N; i++) {
        char text[64];
        snprintf(text, sizeof(text), "word zq%05d %s", i, i % 2 ? "odd" : "even");
        post(s, ch, "usr_a", text, ids[i]);
    }
    size_t words;
    /* Every word looked at, the first 4,096 (the most a prefix takes; ties by word) kept. */
    ASSERT_EQ(prefix_count(s, "zq", 10000, &words), 4096);
    ASSERT_EQ(words, 4096);
    ASSERT_EQ(prefix_count(s, "zq01", 10000, &words), 1000);
    ASSERT_EQ(words, 1000);
    ASSERT_EQ(prefix_count(s, "zq029", 10000, &words), 100);
    ASSERT_EQ(words, 100);
    ASSERT_EQ(prefix_count(s, "odd zq000", 10000, &words), 50);
    ASSERT_EQ(prefix_count(s, "zqa", 10000, &words), 0);
    ASSERT_EQ(words, 0);
    ASSERT_EQ(prefix_count(s, "zq", 7, &words), 7); /* the bound */
    ASSERT_EQ(words, 7);
    /* Gone: zq00005 (deleted), zq00006 (edited away); zq00007x new. */
    ASSERT_EQ(modify(s, ids[5], (msg_change_t){DELETE, NULL, NULL, NULL}), 0);
    ASSERT_EQ(modify(s, ids[6], (msg_change_t){EDIT, "other", NULL, NULL}), 0);
    ASSERT_EQ(modify(s, ids[7], (msg_change_t){EDIT, "zq00007 zq00007x", NULL, NULL}), 0);
    for (int round = 0; round < 2; round++) {
        ASSERT_EQ(prefix_count(s, "zq0000", 10000, &words), 8);
        ASSERT_EQ(words, 9); /* zq00000-zq00009 but 5 and 6, and zq00007x */
        ASSERT_EQ(prefix_count(s, "zq00006", 10000, &words), 0);
        ASSERT_EQ(prefix_count(s, "zq00", 10000, &words), 998);
        ASSERT_EQ(words, 999);
        if (round == 0) {
            ASSERT_EQ(store_close(s), 0);
            ut_rm_snapshots(dir);
            s = ut_store_open_mode(dir, WAL_FSYNC_NONE); /* the log replayed, then built */
        }
    }
    post(s, ch, "usr_a", "zq00005 back", NULL);
    ASSERT_EQ(prefix_count(s, "zq00005", 10000, &words), 1);
    ASSERT_EQ(words, 1);
    ASSERT_EQ(prefix_count(s, "zq00", 10000, &words), 999);
    ASSERT_EQ(words, 1000);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

/* A writer during a long query: the progress callback runs between two
 * chunks with no lock held; there, a thread posts, edits and deletes, and
 * the query waits for it to finish. Had the query kept the read lock, the
 * writer could not finish (the wait gives up after a generous minute and
 * the test fails). */
typedef struct writer {
    store_t *s;
    const char *ch;
    char (*ids)[STORE_ID_MAX];
    int done;          /* appends completed */
    bool finished;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} writer_t;

enum { W_MSGS = 20000, W_POSTS = 300 };

static void *write_during_query(void *arg)
{
    writer_t *w = arg;
    for (int i = 0; i < W_POSTS; i++) {
        post(w->s, w->ch, "usr_w", "needle posted meanwhile", NULL);
        w->done++;
    }
    /* Older messages the walk has not reached: deleted (lists rewritten). */
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(modify(w->s, w->ids[i * 2], (msg_change_t){DELETE, NULL, NULL, NULL}), 0);
    pthread_mutex_lock(&w->mu);
    w->finished = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

typedef struct progress_ctx {
    writer_t *w;
    int calls, writes_seen;
    bool writer_ok;
} progress_ctx_t;

static bool run_writer(void *ctx, const chat_search_info_t *so_far)
{
    (void)so_far;
    progress_ctx_t *p = ctx;
    if (p->calls++ == 0) {
        pthread_t th;
        pthread_create(&th, NULL, write_during_query, p->w);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 60;
        pthread_mutex_lock(&p->w->mu);
        while (!p->w->finished &&
               pthread_cond_timedwait(&p->w->cv, &p->w->mu, &until) == 0)
            ;
        p->writer_ok = p->w->finished;
        pthread_mutex_unlock(&p->w->mu);
        if (!p->writer_ok)
            return false; /* the query ends, and releases the writer */
        pthread_join(th, NULL);
        p->writes_seen = p->w->done;
    }
    return true;
}

TEST(chat_search_a_writer_completes_while_a_long_query_runs)
{
    char dir[64], ch[STORE_ID_MAX];
    store_t *s = fast_store(dir, sizeof(dir), "chat-cost-w", ch);
    static char ids[W_MSGS][STORE_ID_MAX];
    for (int i = 0; i < W_MSGS; i++)
        post(s, ch, "usr_a", "needle in the haystack", ids[i]);
    writer_t w = {.s = s, .ch = ch, .ids = ids};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    progress_ctx_t p = {.w = &w};
    chat_search_info_t info;
    static char got[100][STORE_ID_MAX];
    size_t n;
    size_t total = search_info(s, (chat_search_query_t){.text = "needle", .progress = run_writer,
                                                        .ctx = &p, .total_max = SIZE_MAX,
                                                        .work_max = SIZE_MAX},
                               &info, got, 100, &n);
    ASSERT_TRUE(p.writer_ok);
    ASSERT_EQ(p.writes_seen, W_POSTS); /* every append done before the query finished */
    ASSERT_GT(p.calls, 1);
    ASSERT_TRUE(!info.truncated);
    /* The walk began before the posts (not seen) and reached the deleted
     * messages after they were deleted (not seen either). */
    ASSERT_EQ(total, W_MSGS - 100);
    ASSERT_EQ(n, 100);
    for (size_t i = 0; i < n; i++)
        ASSERT_STREQ(got[i], ids[W_MSGS - 1 - i]);
    /* A new query sees them all. */
    ASSERT_EQ(search_info(s, (chat_search_query_t){.text = "needle", .total_max = SIZE_MAX,
                                                   .work_max = SIZE_MAX},
                          &info, got, 1, &n),
              W_MSGS - 100 + W_POSTS);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

/* m with n emoji "e<i>", the first `mine` of them by usr_me, all by usr_x. */
static void reacted(chat_message_t *m, size_t n, size_t mine)
{
    memset(m, 0, sizeof(*m));
    m->reactions = calloc(n ? n : 1, sizeof(*m->reactions));
    m->n_reactions = n;
    for (size_t i = 0; i < n; i++) {
        chat_reaction_t *r = &m->reactions[i];
        snprintf(r->emoji, sizeof(r->emoji), "e%zu", i);
        r->users = calloc(2, sizeof(*r->users));
        snprintf(r->users[r->n_users++], STORE_ID_MAX, "usr_x");
        if (i < mine)
            snprintf(r->users[r->n_users++], STORE_ID_MAX, "usr_me");
    }
}

TEST(chat_reaction_room_caps_emoji_per_message_and_per_user)
{
    chat_message_t m;
    reacted(&m, CHAT_REACTION_EMOJI_MAX - 1, 0);
    ASSERT_EQ(chat_reaction_room(&m, "new", "usr_me"), 0);
    chat_message_clear(&m);
    /* Full: a new emoji is refused, one already there may be joined. */
    reacted(&m, CHAT_REACTION_EMOJI_MAX, 0);
    ASSERT_EQ(chat_reaction_room(&m, "new", "usr_me"), STORE_E_REACTION_EMOJI_LIMIT);
    ASSERT_EQ(chat_reaction_room(&m, "e3", "usr_me"), 0);
    chat_message_clear(&m);
    /* A user at its own cap: refused even on an emoji already there. */
    reacted(&m, 30, CHAT_REACTIONS_PER_USER_MAX);
    ASSERT_EQ(chat_reaction_room(&m, "e25", "usr_me"), STORE_E_REACTION_USER_LIMIT);
    ASSERT_EQ(chat_reaction_room(&m, "new", "usr_me"), STORE_E_REACTION_USER_LIMIT);
    ASSERT_EQ(chat_reaction_room(&m, "new", "usr_other"), 0);
    chat_message_clear(&m);
    reacted(&m, 30, CHAT_REACTIONS_PER_USER_MAX - 1);
    ASSERT_EQ(chat_reaction_room(&m, "e25", "usr_me"), 0);
    chat_message_clear(&m);
    ut_leak_check();
}

TEST(chat_message_state_tells_updated_at_and_deletion_without_a_copy)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-state");
    store_t *s = ut_store_open(dir);
    char ch[STORE_ID_MAX], id[STORE_ID_MAX];
    channel(s, "main", "usr_a", false, ch);
    post(s, ch, "usr_a", "first", id);
    chat_message_t m;
    ASSERT_TRUE(chat_message_get(s, id, &m));
    int64_t at = 0;
    bool deleted = true;
    ASSERT_TRUE(chat_message_state(s, id, &at, &deleted));
    ASSERT_EQ(at, m.updated_at);
    ASSERT_TRUE(!deleted);
    chat_message_clear(&m);
    ASSERT_EQ(modify(s, id, (msg_change_t){EDIT, "edited", NULL, NULL}), 0);
    ASSERT_TRUE(chat_message_get(s, id, &m));
    ASSERT_TRUE(chat_message_state(s, id, &at, &deleted));
    ASSERT_EQ(at, m.updated_at);
    chat_message_clear(&m);
    ASSERT_EQ(modify(s, id, (msg_change_t){DELETE, NULL, NULL, NULL}), 0);
    ASSERT_TRUE(chat_message_state(s, id, &at, &deleted));
    ASSERT_TRUE(deleted);
    ASSERT_TRUE(!chat_message_state(s, "msg_0000000000099999", &at, &deleted));
    ASSERT_TRUE(!chat_message_state(s, "nonsense", &at, &deleted));
    ASSERT_EQ(store_close(s), 0);
    ut_rmrf(dir);
    ut_leak_check();
}

/* ---- the default listing's per-user counts (listing_t) ------------------------------ */

static int toggle_channel(void *ctx, chat_channel_t *c)
{
    int what = *(const int *)ctx;
    if (what == 0 && !c->is_direct)
        c->is_private = !c->is_private;
    else if (what == 1)
        c->is_deleted = true;
    return 0;
}

/* The default listing (paged from the cached order and the users' counts)
 * is the generic listing's name order reversed, for every user. */
static void expect_listing_matches_scan(store_t *s, const char *const *users, size_t n_users)
{
    enum { MAX = 256 };
    chat_channel_t *fast = calloc(MAX, sizeof(*fast)), *scan = calloc(MAX, sizeof(*scan));
    for (size_t u = 0; u < n_users; u++) {
        size_t n_fast, n_scan, n_page;
        size_t total = chat_channel_list(s, users[u], NULL, 0, MAX, fast, &n_fast);
        ASSERT_EQ(chat_channel_list_sorted(s, users[u], false, NULL, CHAT_CHANNEL_BY_NAME, true,
                                           0, MAX, scan, &n_scan),
                  total);
        ASSERT_EQ(n_fast, total);
        ASSERT_EQ(n_scan, total);
        for (size_t i = 0; i < total; i++)
            ASSERT_STREQ(fast[i].id, scan[total - 1 - i].id);
        /* A page in the middle, across the named and the direct ones. */
        if (total > 4) {
            chat_channel_t page[3];
            ASSERT_EQ(chat_channel_list(s, users[u], NULL, total - 4, 3, page, &n_page), total);
            ASSERT_EQ(n_page, 3);
            for (size_t i = 0; i < n_page; i++) {
                ASSERT_STREQ(page[i].id, fast[total - 4 + i].id);
                chat_channel_clear(&page[i]);
            }
        }
        for (size_t i = 0; i < total; i++) {
            chat_channel_clear(&fast[i]);
            chat_channel_clear(&scan[i]);
        }
    }
    free(fast);
    free(scan);
}

TEST(chat_listing_counts_follow_memberships_kinds_and_deletes)
{
    char dir[64];
    ut_tmpdir(dir, sizeof(dir), "chat-listing");
    store_t *s = ut_store_open(dir);
    static const char *const users[] = {"usr_a", "usr_b", "usr_c", "usr_d"};
    char ids[120][STORE_ID_MAX];
    size_t n = 0;
    uint64_t r = 0x2545f4914f6cdd1dull;
    for (int step = 0; step < 400; step++) {
        ut_xorshift(&r);
        const char *who = users[r % 4], *other = users[(r >> 8) % 4];
        int op = (int)((r >> 16) % 6);
        if (n < 8 || (op == 0 && n < 120)) { /* a named channel */
            char name[32];
            snprintf(name, sizeof(name), "%c-room-%d", "qMaZ"[(r >> 24) % 4], step);
            channel(s, name, who, (r >> 32) % 2, ids[n++]);
        } else if (op == 1 && n < 120) { /* a direct channel */
            chat_channel_t c;
            memset(&c, 0, sizeof(c));
            c.is_direct = true;
            c.created_at = 1767960000000 + (int64_t)((r >> 40) % 5); /* ties too */
            snprintf(c.owner_id, sizeof(c.owner_id), "%s", who);
            const char *members[2] = {who, other};
            bool created;
            uint64_t lsn;
            ASSERT_EQ(chat_channel_create(s, &c, members, 2, &created, &lsn), 0);
            ASSERT_EQ(store_wait(s, lsn), 0);
            if (created)
                snprintf(ids[n++], STORE_ID_MAX, "%s", c.id);
            chat_channel_clear(&c);
        } else if (op == 2 || op == 3) { /* join, or leave */
            ASSERT_EQ(set_member(s, ids[(r >> 24) % n], who, op == 2 ? CHAT_ROLE_MEMBER : 0, 1, -1),
                      0);
        } else { /* private <-> public, or a delete (one in ten) */
            int what = (r >> 32) % 10 == 0 ? 1 : 0;
            uint64_t lsn;
            ASSERT_EQ(chat_channel_modify(s, ids[(r >> 24) % n], toggle_channel, &what, NULL, &lsn),
                      0);
            ASSERT_EQ(store_wait(s, lsn), 0);
        }
        if (step % 40 == 39)
            expect_listing_matches_scan(s, users, 4);
    }
    s = ut_store_reopen(s, dir); /* replay from a snapshot rebuilds the counts */
    expect_listing_matches_scan(s, users, 4);
    store_close(s);
}
