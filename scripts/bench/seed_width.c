/*
 * P15's stores (docs/benchmarks.md, "P15"): seeds a stopped server's data
 * directory with users, channels, memberships and messages, so that the cost
 * of a request can be compared between a small store and a wide one.
 * Registering 100,000 users over HTTP would cost an argon2 hash each, so this
 * tool writes the store directly, the way `parley user create` does
 * (src/tools/user_cmd.c): it takes the data directory's lock, recovers the
 * store, makes every change through the store's mutation path (one log
 * record each, fsync none: the close writes a snapshot), and closes it. All
 * users share one password hash, computed once.
 *
 *   build/release/bench_seed_width DIR small|wide
 *
 * small: 100 users, 10 channels, the measured user "bencher" in all 10.
 * wide: 100,000 users, 10,000 channels, bencher in 1,000 of them.
 * In both: a tenth of bencher's channels are private, and of the others' a
 * third; every channel has its owner and four more members; bencher's
 * channels hold 30 messages each (its read marker at the 10th: 20 unread,
 * some of them its own), the others' channels 30 too. Among the users, 20 "targets"
 * (username mira.00-mira.19, display name "Mira Example NN") are the
 * answers of P15's user searches; every other username and display name is
 * made of syllables without the letter m, so the same queries find the same
 * 20 users in both stores: only the width differs. Prints one JSON object
 * (the password, bencher's id, the ids of its channels, the bytes of the
 * user-search index) for
 * scripts/bench/suite.py.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/auth.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/datadir.h"
#include "parley/store.h"
#include "parley/xalloc.h"
#include "store/internal.h"
#include "store/user_names.h"
#include "xorshift.h"

#define PASSWORD "correct horse battery"
#define TARGETS 20
#define OTHER_MEMBERS 4
#define MINE_MESSAGES 30
#define MINE_READ_AT 10
#define OTHER_MESSAGES 30

typedef struct shape {
    size_t users, channels, mine_every; /* bencher is in channel i when i % mine_every == 0 */
} shape_t;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void)
{
    return bench_xorshift(&rng);
}

/* No letter m in any of them: the targets' queries match targets only. */
static const char *const syllables[] = {"ka", "lo", "ri", "tu", "ne", "sa", "po", "di", "fe",
                                        "go", "ba", "ce", "vu", "ho", "ji", "ly", "ze", "wa"};
#define N_SYLLABLES (sizeof(syllables) / sizeof(*syllables))

static void syllable_word(char *out, size_t size, int n, bool capital)
{
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        strncat(out, syllables[next_random() % N_SYLLABLES], size - strlen(out) - 1);
    if (capital)
        out[0] = (char)(out[0] - 'a' + 'A');
}

static void fail(const char *what, int rc)
{
    fprintf(stderr, "bench_seed_width: %s failed (%d)\n", what, rc);
    exit(1);
}

/* User number i: 0 is bencher, 1..TARGETS the targets, the rest fillers. */
static void make_user(store_t *s, size_t i, const char *hash, char id_out[STORE_ID_MAX])
{
    store_user_t u;
    memset(&u, 0, sizeof(u));
    store_new_id("usr", u.id);
    char display[64];
    if (i == 0) {
        snprintf(u.username, sizeof(u.username), "bencher");
        snprintf(display, sizeof(display), "Bench User");
    } else if (i <= TARGETS) {
        snprintf(u.username, sizeof(u.username), "mira.%02zu", i - 1);
        snprintf(display, sizeof(display), "Mira Example %02zu", i - 1);
    } else {
        char a[16], b[16];
        syllable_word(a, sizeof(a), 3, false);
        snprintf(u.username, sizeof(u.username), "%s%zu", a, i);
        syllable_word(a, sizeof(a), 2, true);
        syllable_word(b, sizeof(b), 3, true);
        snprintf(display, sizeof(display), "%s %s", a, b);
    }
    snprintf(u.email, sizeof(u.email), "u%zu@example.com", i);
    snprintf(u.password_hash, sizeof(u.password_hash), "%s", hash);
    u.display_name = xstrdup(display);
    u.is_active = true;
    u.created_at = u.updated_at = clock_wall_ms();
    uint64_t lsn;
    int rc = store_user_create(s, &u, true, &lsn);
    if (rc != 0)
        fail("store_user_create", rc);
    memcpy(id_out, u.id, STORE_ID_MAX);
    store_user_clear(&u);
}

static void post(store_t *s, const char *channel_id, const char *user_id, size_t n,
                 char last_id[STORE_ID_MAX])
{
    chat_message_t m;
    memset(&m, 0, sizeof(m));
    snprintf(m.channel_id, sizeof(m.channel_id), "%s", channel_id);
    snprintf(m.user_id, sizeof(m.user_id), "%s", user_id);
    char text[128], w1[16], w2[16];
    syllable_word(w1, sizeof(w1), 2, false);
    syllable_word(w2, sizeof(w2), 3, false);
    snprintf(text, sizeof(text), "message %zu of the width benchmark: %s %s", n, w1, w2);
    m.content = xstrdup(text);
    uint64_t lsn;
    int rc = chat_message_post(s, &m, NULL, &lsn);
    if (rc != 0)
        fail("chat_message_post", rc);
    if (last_id)
        memcpy(last_id, m.id, STORE_ID_MAX);
    chat_message_clear(&m);
}

static int set_read(void *ctx, chat_membership_t *m)
{
    snprintf(m->last_read, sizeof(m->last_read), "%s", (const char *)ctx);
    return 0;
}

/* Channel number i, its members and messages; bencher's ids go into mine. */
static void make_channel(store_t *s, const shape_t *sh, size_t i, char (*users)[STORE_ID_MAX],
                         json_t *mine)
{
    bool is_mine = i % sh->mine_every == 0;
    chat_channel_t c;
    memset(&c, 0, sizeof(c));
    char word[16];
    syllable_word(word, sizeof(word), 2, false);
    snprintf(c.name, sizeof(c.name), "c%05zu-%s", i, word);
    c.is_private = is_mine ? (i / sh->mine_every) % 10 == 0 : i % 3 == 1;
    /* The owner is never bencher, so its channels are ones it joined. */
    snprintf(c.owner_id, sizeof(c.owner_id), "%s", users[1 + next_random() % (sh->users - 1)]);
    c.created_at = c.updated_at = clock_wall_ms();
    const char *members[OTHER_MEMBERS + 1];
    size_t n = 0;
    for (; n < OTHER_MEMBERS; n++)
        members[n] = users[1 + next_random() % (sh->users - 1)];
    if (is_mine)
        members[n++] = users[0];
    bool created;
    uint64_t lsn;
    int rc = chat_channel_create(s, &c, members, n, &created, &lsn);
    if (rc != 0)
        fail("chat_channel_create", rc);
    size_t count = is_mine ? MINE_MESSAGES : OTHER_MESSAGES;
    char read_id[STORE_ID_MAX] = "";
    for (size_t k = 0; k < count; k++) {
        /* One in five of bencher's channel's messages is its own. */
        const char *from = is_mine && k % 5 == 4 ? users[0] : members[k % OTHER_MEMBERS];
        post(s, c.id, from, k, k + 1 == MINE_READ_AT ? read_id : NULL);
    }
    if (is_mine) {
        rc = chat_membership_modify(s, c.id, users[0], set_read, read_id, NULL, &lsn);
        if (rc != 0)
            fail("chat_membership_modify", rc);
        json_array_append_new(mine, json_string(c.id));
    }
    chat_channel_clear(&c);
}

int main(int argc, char **argv)
{
    shape_t sh;
    if (argc == 3 && strcmp(argv[2], "small") == 0) {
        sh = (shape_t){100, 10, 1};
    } else if (argc == 3 && strcmp(argv[2], "wide") == 0) {
        sh = (shape_t){100000, 10000, 10};
    } else {
        fprintf(stderr, "usage: bench_seed_width DIR small|wide\n");
        return 2;
    }
    char hash[STORE_HASH_MAX], err[512];
    if (auth_password_hash(PASSWORD, hash, sizeof(hash)) != AUTH_OK)
        fail("auth_password_hash", -1);
    int lock = datadir_lock(argv[1], err, sizeof(err));
    if (lock < 0) {
        fprintf(stderr, "bench_seed_width: %s\n", err);
        return 1;
    }
    store_t *s;
    store_options_t so = {.fsync = WAL_FSYNC_NONE};
    if (store_open(&s, argv[1], &so, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_seed_width: %s\n", err);
        return 1;
    }
    char(*users)[STORE_ID_MAX] = xmalloc(sh.users * sizeof(*users));
    for (size_t i = 0; i < sh.users; i++)
        make_user(s, i, hash, users[i]);
    json_t *mine = json_array();
    for (size_t i = 0; i < sh.channels; i++)
        make_channel(s, &sh, i, users, mine);
    size_t name_index = store__names_bytes(s->user_names);
    if (store_close(s) != 0)
        fail("store_close", -1);
    datadir_unlock(lock);
    json_t *out = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "username", "bencher",
                            "password", PASSWORD, "user_id", users[0], "users",
                            (json_int_t)sh.users, "channels", (json_int_t)sh.channels,
                            "name_index_bytes", (json_int_t)name_index, "mine", mine);
    char *text = json_dumps(out, JSON_COMPACT);
    puts(text);
    free(text);
    json_decref(out);
    free(users);
    return 0;
}
