/*
 * The live settings and invites of the store (include/parley/settings.h):
 * a PATCH checked whole, overrides over the configured values across a
 * reopen (with and without a snapshot), null resetting, the decoder refusing
 * bad records, invites counted atomically under racing registrations, and
 * the retention sweep's selection and deletion with an injected clock (the
 * e2e test cannot age messages; see test_admin_settings.py for the one that
 * replays old-timestamped records).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "parley/api.h"
#include "parley/app.h"
#include "parley/chat.h"
#include "parley/clock.h"
#include "parley/config.h"
#include "parley/settings.h"
#include "testutil.h"

static void configured(store_settings_t *st)
{
    memset(st, 0, sizeof(*st));
    snprintf(st->server_name, sizeof(st->server_name), "Configured");
    st->max_upload_bytes = 1000;
    snprintf(st->allowed_types, sizeof(st->allowed_types), "*/*");
}

static int patch_text(store_t *s, const char *text)
{
    json_t *p = json_loads(text, 0, NULL);
    uint64_t lsn = 0;
    int rc = store_settings_patch(s, p, NULL, NULL, NULL, &lsn);
    json_decref(p);
    if (rc == 0)
        rc = store_wait(s, lsn);
    return rc;
}

static bool check_text(const char *text, char field[64])
{
    char msg[256];
    json_t *p = json_loads(text, 0, NULL);
    bool ok = store_settings_check(p, field, msg);
    json_decref(p);
    return ok;
}

TEST(settings_check_names_the_bad_field)
{
    char field[64];
    ASSERT_TRUE(check_text("{\"server_name\": \"x\", \"registration\": null}", field));
    ASSERT_TRUE(!check_text("{\"nope\": 1}", field));
    ASSERT_STREQ(field, "nope");
    ASSERT_TRUE(!check_text("{\"max_upload_bytes\": 0}", field));
    ASSERT_STREQ(field, "max_upload_bytes");
    ASSERT_TRUE(!check_text("{\"rate_limits\": {\"auth\": -1}}", field));
    ASSERT_STREQ(field, "rate_limits.auth");
    ASSERT_TRUE(!check_text("{\"rate_limits\": {\"zzz\": 1}}", field));
    ASSERT_STREQ(field, "rate_limits.zzz");
    ASSERT_TRUE(!check_text("{\"allowed_types\": [\"image\"]}", field));
    ASSERT_STREQ(field, "allowed_types");
    ASSERT_TRUE(!check_text("{\"registration\": \"maybe\"}", field));
    ASSERT_STREQ(field, "registration");
    ASSERT_TRUE(!check_text("{\"default_channel\": \"a b\"}", field));
    ASSERT_STREQ(field, "default_channel");
}

TEST(settings_overrides_win_over_the_configuration_across_reopens)
{
    char dir[128];
    ut_tmpdir(dir, sizeof(dir), "settings");
    store_t *s = ut_store_open(dir);
    store_settings_t c, got;
    configured(&c);
    store_settings_seed(s, &c);
    ASSERT_EQ(patch_text(s, "{\"server_name\": \"Mine\", \"registration\": \"closed\", "
                            "\"rate_limits\": {\"auth\": 3}, \"allowed_types\": "
                            "[\"image/*\", \"text/plain\"]}"),
              0);
    ASSERT_EQ(patch_text(s, "{\"rate_limits\": {\"search\": 4}}"), 0);
    /* a refused patch changes nothing */
    ASSERT_EQ(patch_text(s, "{\"server_name\": \"Other\", \"max_upload_bytes\": -1}"),
              STORE_E_INVALID);
    for (int round = 0; round < 2; round++) {
        if (round == 0) {
            store_close(s);
            ut_rm_snapshots(dir); /* the log alone */
            s = ut_store_open(dir);
        } else {
            s = ut_store_reopen(s, dir); /* from the snapshot */
        }
        configured(&c);
        snprintf(c.server_name, sizeof(c.server_name), "Reconfigured");
        c.max_upload_bytes = 2000;
        store_settings_seed(s, &c);
        store_settings_get(s, &got);
        ASSERT_STREQ(got.server_name, "Mine");
        ASSERT_EQ(got.registration, SETTINGS_REG_CLOSED);
        ASSERT_EQ(got.max_upload_bytes, 2000); /* not overridden: follows the config */
        ASSERT_STREQ(got.allowed_types, "image/*,text/plain");
        ASSERT_EQ(got.rate_limits[SETTINGS_RATE_AUTH], 3);
        ASSERT_EQ(got.rate_limits[SETTINGS_RATE_SEARCH], 4);
        ASSERT_EQ(got.overridden, (1u << SETTINGS_F_SERVER_NAME) |
                                      (1u << SETTINGS_F_REGISTRATION) |
                                      (1u << SETTINGS_F_ALLOWED_TYPES) |
                                      (1u << SETTINGS_F_RATE_LIMITS));
    }
    ASSERT_EQ(patch_text(s, "{\"server_name\": null}"), 0);
    s = ut_store_reopen(s, dir);
    store_settings_seed(s, &c);
    store_settings_get(s, &got);
    ASSERT_STREQ(got.server_name, "Reconfigured");
    store_close(s);
    ut_rmrf(dir);
}

static int hook_calls;
static uint64_t hook_seen;

static void hook(void *ctx, const store_settings_t *st)
{
    (void)ctx;
    hook_calls++;
    hook_seen = st->max_upload_bytes;
}

TEST(settings_hooks_see_every_change)
{
    char dir[128];
    ut_tmpdir(dir, sizeof(dir), "settings-hooks");
    store_t *s = ut_store_open(dir);
    store_settings_add_hook(s, hook, NULL);
    store_settings_t c;
    configured(&c);
    store_settings_seed(s, &c);
    ASSERT_EQ(hook_calls, 1);
    ASSERT_EQ(hook_seen, 1000);
    ASSERT_EQ(patch_text(s, "{\"max_upload_bytes\": 77}"), 0);
    ASSERT_EQ(hook_calls, 2);
    ASSERT_EQ(hook_seen, 77);
    store_close(s);
    ut_rmrf(dir);
}

TEST(settings_and_invite_decoders_refuse_bad_records)
{
    char dir[128];
    ut_tmpdir(dir, sizeof(dir), "settings-bad");
    store_t *s = ut_store_open(dir);
    static const char *const bad_settings[] = {
        "", "[]", "{\"v\":1}", "{\"v\":2,\"settings\":{}}", "{\"v\":1,\"settings\":[]}",
        "{\"v\":1,\"settings\":{\"nope\":1}}", "{\"v\":1,\"settings\":{\"server_name\":null}}",
        "{\"v\":1,\"settings\":{\"max_upload_bytes\":0}}", "{\"v\":1,\"settings\":{",
    };
    for (size_t i = 0; i < sizeof(bad_settings) / sizeof(bad_settings[0]); i++)
        ASSERT_EQ(store_apply(s, STORE_REC_SETTINGS, bad_settings[i], strlen(bad_settings[i])),
                  STORE_E_CORRUPT);
    static const char *const bad_invites[] = {
        "{\"v\":1}",
        "{\"v\":1,\"code\":\"a b\",\"created_by\":\"usr_1\",\"created_at\":1,\"expires_at\":0,"
        "\"max_uses\":0,\"uses\":0,\"revoked\":false,\"channel_ids\":[]}",
        "{\"v\":1,\"code\":\"abc\",\"created_by\":\"usr_1\",\"created_at\":1,\"expires_at\":0,"
        "\"max_uses\":-1,\"uses\":0,\"revoked\":false,\"channel_ids\":[]}",
        "{\"v\":1,\"code\":\"abc\",\"created_by\":\"usr_1\",\"created_at\":1,\"expires_at\":0,"
        "\"max_uses\":0,\"uses\":0,\"revoked\":false,\"channel_ids\":[3]}",
        "{\"v\":9,\"code\":\"abc\",\"created_by\":\"usr_1\",\"created_at\":1,\"expires_at\":0,"
        "\"max_uses\":0,\"uses\":0,\"revoked\":false,\"channel_ids\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad_invites) / sizeof(bad_invites[0]); i++)
        ASSERT_EQ(store_apply(s, STORE_REC_INVITE, bad_invites[i], strlen(bad_invites[i])),
                  STORE_E_CORRUPT);
    store_settings_t got;
    store_settings_get(s, &got);
    ASSERT_EQ(got.overridden, 0);
    store_invite_t *all;
    ASSERT_EQ(store_invite_list(s, &all), 0);
    free(all);
    store_close(s);
    ut_rmrf(dir);
    ut_leak_check();
}

static void new_user(store_user_t *u, const char *name)
{
    memset(u, 0, sizeof(*u));
    store_new_id("usr", u->id);
    snprintf(u->username, sizeof(u->username), "%s", name);
    snprintf(u->email, sizeof(u->email), "%s@example.org", name);
    snprintf(u->password_hash, sizeof(u->password_hash), "x");
    u->is_active = true;
    u->created_at = u->updated_at = clock_wall_ms();
}

typedef struct racer {
    store_t *s;
    int n;
    int rc;
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    store_user_t u;
    char name[32];
    snprintf(name, sizeof(name), "racer%d", r->n);
    new_user(&u, name);
    uint64_t lsn;
    r->rc = store_user_create_invited(r->s, &u, false, "lastuse", clock_wall_ms(), NULL, &lsn);
    if (r->rc == 0)
        r->rc = store_wait(r->s, lsn);
    store_user_clear(&u);
    return NULL;
}

TEST(invite_last_use_goes_to_one_registration)
{
    char dir[128];
    ut_tmpdir(dir, sizeof(dir), "invites");
    store_t *s = ut_store_open(dir);
    store_invite_t inv;
    memset(&inv, 0, sizeof(inv));
    snprintf(inv.code, sizeof(inv.code), "lastuse");
    snprintf(inv.created_by, sizeof(inv.created_by), "usr_admin");
    inv.created_at = clock_wall_ms();
    inv.max_uses = 3;
    inv.uses = 2;
    uint64_t lsn;
    ASSERT_EQ(store_invite_put(s, &inv, &lsn), 0);
    enum { N = 8 };
    pthread_t t[N];
    racer_t r[N];
    for (int i = 0; i < N; i++) {
        r[i] = (racer_t){.s = s, .n = i};
        ASSERT_EQ(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int won = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        if (r[i].rc == 0)
            won++;
        else
            ASSERT_EQ(r[i].rc, STORE_E_INVITE);
    }
    ASSERT_EQ(won, 1);
    ASSERT_EQ(store_user_count(s), 1);
    /* durable, and an expired or revoked invite is refused */
    s = ut_store_reopen(s, dir);
    ASSERT_TRUE(store_invite_get(s, "lastuse", &inv));
    ASSERT_EQ(inv.uses, 3);
    ASSERT_TRUE(!store_invite_usable(&inv, clock_wall_ms()));
    inv.max_uses = 0;
    inv.expires_at = clock_wall_ms() - 1;
    ASSERT_EQ(store_invite_put(s, &inv, &lsn), 0);
    ASSERT_EQ(store_invite_use(s, "lastuse", clock_wall_ms(), NULL, &lsn), STORE_E_INVITE);
    inv.expires_at = 0;
    ASSERT_EQ(store_invite_put(s, &inv, &lsn), 0);
    ASSERT_EQ(store_invite_use(s, "lastuse", clock_wall_ms(), &inv, &lsn), 0);
    ASSERT_EQ(inv.uses, 4);
    inv.revoked = true;
    ASSERT_EQ(store_invite_put(s, &inv, &lsn), 0);
    ut_rm_snapshots(dir);
    store_close(s);
    s = ut_store_open(dir);
    ASSERT_TRUE(!store_invite_get(s, "lastuse", &inv));
    store_close(s);
    ut_rmrf(dir);
}

static chat_message_t text_message(const char *channel_id, const char *user_id, const char *text)
{
    chat_message_t m;
    memset(&m, 0, sizeof(m));
    snprintf(m.channel_id, sizeof(m.channel_id), "%s", channel_id);
    snprintf(m.user_id, sizeof(m.user_id), "%s", user_id);
    m.content = strdup(text);
    return m;
}

TEST(retention_sweep_deletes_what_is_older_than_the_setting)
{
    char dir[128];
    ut_tmpdir(dir, sizeof(dir), "retention");
    parley_app_t app;
    memset(&app, 0, sizeof(app));
    app.store = ut_store_open(dir);
    store_t *s = app.store;
    store_settings_t c;
    configured(&c);
    store_settings_seed(s, &c);
    chat_channel_t ch;
    memset(&ch, 0, sizeof(ch));
    snprintf(ch.name, sizeof(ch.name), "room");
    snprintf(ch.owner_id, sizeof(ch.owner_id), "usr_owner");
    const char *owner = "usr_owner";
    bool created;
    uint64_t lsn;
    ASSERT_EQ(chat_channel_create(s, &ch, &owner, 1, &created, &lsn), 0);
    enum { N = 250 };
    char ids[N][STORE_ID_MAX];
    for (int i = 0; i < N; i++) {
        chat_message_t m = text_message(ch.id, owner, "words");
        ASSERT_EQ(chat_message_post(s, &m, NULL, &lsn), 0);
        snprintf(ids[i], STORE_ID_MAX, "%s", m.id);
        chat_message_clear(&m);
    }
    ASSERT_EQ(store_wait(s, lsn), 0);
    int64_t now = clock_wall_ms();
    /* retention off: nothing, whatever the clock */
    ASSERT_EQ(api_retention_sweep(&app, now + 1000ll * 86400 * 1000), 0);
    ASSERT_EQ(patch_text(s, "{\"message_retention_days\": 1}"), 0);
    /* today's messages stay */
    ASSERT_EQ(api_retention_sweep(&app, now), 0);
    /* two days on, every one of them goes, in batches */
    ASSERT_EQ(api_retention_sweep(&app, now + 2ll * 86400 * 1000), N);
    ASSERT_EQ(api_retention_sweep(&app, now + 2ll * 86400 * 1000), 0);
    chat_message_t m;
    for (int i = 0; i < N; i += 50) {
        ASSERT_TRUE(chat_message_get(s, ids[i], &m));
        ASSERT_TRUE(m.is_deleted);
        ASSERT_NULL(m.content);
        chat_message_clear(&m);
    }
    /* a message posted after is kept by a sweep as of now + 2 days minus a bit */
    chat_message_t fresh = text_message(ch.id, owner, "fresh");
    ASSERT_EQ(chat_message_post(s, &fresh, NULL, &lsn), 0);
    ASSERT_EQ(store_wait(s, lsn), 0);
    ASSERT_EQ(api_retention_sweep(&app, clock_wall_ms() + 86400ll * 1000 - 60000), 0);
    s = ut_store_reopen(s, dir);
    app.store = s;
    ASSERT_TRUE(chat_message_get(s, ids[N - 1], &m));
    ASSERT_TRUE(m.is_deleted);
    chat_message_clear(&m);
    ASSERT_TRUE(chat_message_get(s, fresh.id, &m));
    ASSERT_TRUE(!m.is_deleted);
    chat_message_clear(&m);
    chat_message_clear(&fresh);
    chat_channel_clear(&ch);
    store_close(s);
    ut_rmrf(dir);
}

TEST(messages_older_stops_at_the_first_newer_message)
{
    char dir[128];
    ut_tmpdir(dir, sizeof(dir), "older");
    store_t *s = ut_store_open(dir);
    chat_channel_t ch;
    memset(&ch, 0, sizeof(ch));
    snprintf(ch.name, sizeof(ch.name), "r");
    snprintf(ch.owner_id, sizeof(ch.owner_id), "usr_o");
    const char *owner = "usr_o";
    bool created;
    uint64_t lsn;
    ASSERT_EQ(chat_channel_create(s, &ch, &owner, 1, &created, &lsn), 0);
    for (int i = 0; i < 10; i++) {
        chat_message_t m = text_message(ch.id, owner, "x");
        ASSERT_EQ(chat_message_post(s, &m, NULL, &lsn), 0);
        chat_message_clear(&m);
    }
    char ids[4][STORE_ID_MAX];
    uint64_t cursor = 0;
    bool more;
    /* a cutoff before everything: none, and the cursor stays at the first */
    ASSERT_EQ(chat_messages_older(s, &cursor, 0, 4, ids, &more), 0);
    ASSERT_TRUE(!more);
    /* a cutoff after everything: batches of 4, then 2 */
    int64_t later = clock_wall_ms() + 1000;
    ASSERT_EQ(chat_messages_older(s, &cursor, later, 4, ids, &more), 4);
    ASSERT_TRUE(more);
    ASSERT_STREQ(ids[0], "msg_0000000000000001");
    ASSERT_EQ(chat_messages_older(s, &cursor, later, 4, ids, &more), 4);
    ASSERT_EQ(chat_messages_older(s, &cursor, later, 4, ids, &more), 2);
    ASSERT_TRUE(!more);
    ASSERT_STREQ(ids[1], "msg_0000000000000010");
    ASSERT_EQ(chat_messages_older(s, &cursor, later, 4, ids, &more), 0);
    chat_channel_clear(&ch);
    store_close(s);
    ut_rmrf(dir);
}

TEST(config_seeds_the_live_settings)
{
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    char *argv[] = {"--registration", "invite", "--require-mfa-for-admins", "true",
                    "--server-description=", "--default-channel", "ch_lobby",
                    "--message-retention-days", "30", "--retention-sweep-interval", "5"};
    ASSERT_EQ(config_load(&cfg, 11, argv, NULL, err), 0);
    ASSERT_EQ(cfg.registration, SETTINGS_REG_INVITE);
    ASSERT_EQ(cfg.require_mfa_for_admins, 1);
    ASSERT_STREQ(cfg.server_description, "");
    ASSERT_STREQ(cfg.server_name, "Parley");
    ASSERT_STREQ(cfg.default_channel, "ch_lobby");
    ASSERT_EQ(cfg.message_retention_days, 30);
    ASSERT_EQ(cfg.retention_sweep_interval, 5);
    char *bad1[] = {"--registration", "sometimes"};
    ASSERT_EQ(config_load(&cfg, 2, bad1, NULL, err), -1);
    ASSERT_CONTAINS(err, "registration");
    char *bad2[] = {"--require-mfa-for-admins", "2"};
    ASSERT_EQ(config_load(&cfg, 2, bad2, NULL, err), -1);
    ASSERT_CONTAINS(err, "require_mfa_for_admins");
    char *bad3[] = {"--server-name="};
    ASSERT_EQ(config_load(&cfg, 1, bad3, NULL, err), -1);
}
