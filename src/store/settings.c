/*
 * The server's live settings (include/parley/settings.h).
 *
 * Two layers: the configured values (flags, environment, config file; given
 * once by store_settings_seed) and the overrides, the settings changed
 * through the API. The log holds only the overrides, as one record of
 * their whole state (type 30, {"v":1,"settings":{name: value...}}): a
 * setting nobody changed keeps following its flag across restarts, and one
 * changed through the API keeps its value whatever the flags say, until a
 * PATCH sets it to null. The effective values are recomputed at each apply
 * and at the seed into a plain struct behind `lock` (a leaf rwlock), which
 * readers copy out: the hot readers (an upload's limit and types, a
 * registration's mode) take a read lock for a memcpy.
 *
 * One parser (read_settings) checks a PATCH body, decodes a record and
 * overlays the overrides, so a record the server writes always passes its
 * own replay.
 */
#include "parley/ipnet.h"
#include "parley/origin.h"
#include "parley/settings.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"
#include "codec.h"
#include "parley/chat.h"
#include "parley/xalloc.h"

const char *const settings_names[SETTINGS_F_COUNT] = {
    [SETTINGS_F_SERVER_NAME] = "server_name",
    [SETTINGS_F_SERVER_DESCRIPTION] = "server_description",
    [SETTINGS_F_REGISTRATION] = "registration",
    [SETTINGS_F_REQUIRE_MFA] = "require_mfa_for_admins",
    [SETTINGS_F_MAX_UPLOAD] = "max_upload_bytes",
    [SETTINGS_F_ALLOWED_TYPES] = "allowed_types",
    [SETTINGS_F_RETENTION] = "message_retention_days",
    [SETTINGS_F_DEFAULT_CHANNEL] = "default_channel",
    [SETTINGS_F_RATE_LIMITS] = "rate_limits",
    [SETTINGS_F_TRUSTED_PROXIES] = "trusted_proxies",
    [SETTINGS_F_AUDIT_MAX_ENTRIES] = "audit_max_entries",
    [SETTINGS_F_AUDIT_MAX_DAYS] = "audit_max_days",
    [SETTINGS_F_STORAGE_QUOTA] = "storage_quota_bytes",
    [SETTINGS_F_UPLOAD_BUDGET] = "upload_bytes_per_minute",
    [SETTINGS_F_CORS_ORIGINS] = "cors_origins",
    [SETTINGS_F_HSTS_MAX_AGE] = "hsts_max_age_seconds",
};

_Static_assert(SETTINGS_ORIGINS_MAX == ORIGIN_LIST_MAX && SETTINGS_ORIGIN_LEN == ORIGIN_LEN_MAX,
               "the setting holds what the origin rules allow");

const char *const settings_rate_names[SETTINGS_RATE_COUNT] = {
    "auth", "messages", "uploads", "search", "admin", "default",
};

const char *const settings_registration_names[3] = {"open", "invite", "closed"};

#define MAX_HOOKS 8

struct settings_state {
    pthread_rwlock_t lock;       /* guards the three below */
    store_settings_t configured; /* from the configuration */
    json_t *overrides;           /* object: name -> value; never NULL */
    store_settings_t effective;
    pthread_mutex_t hook_mu;     /* one run of the hooks at a time */
    store_settings_hook_fn hooks[MAX_HOOKS];
    void *hook_ctx[MAX_HOOKS];
    size_t n_hooks;
};

/* ---- the one parser -------------------------------------------------------- */

static bool fail(char field[64], char msg[256], const char *name, const char *text)
{
    snprintf(field, 64, "%s", name);
    snprintf(msg, 256, "%s %s", name, text);
    return false;
}

/* Code points of a valid UTF-8 string; SIZE_MAX when it holds a control
 * character (newlines and tabs allowed when `lines`). */
static size_t text_chars(const char *s, bool lines)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p < 0x20 && !(lines && (*p == '\n' || *p == '\r' || *p == '\t'))) || *p == 0x7f)
            return SIZE_MAX;
        if ((*p & 0xc0) != 0x80)
            n++;
    }
    return n;
}

static bool glob_ok(const char *g)
{
    size_t n = strlen(g), slashes = 0;
    if (n == 0 || n > SETTINGS_TYPE_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = g[i];
        if (c == '/')
            slashes++;
        else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   strchr("!#$&^_.+-*?", c)))
            return false;
    }
    return slashes == 1 && g[0] != '/' && g[n - 1] != '/';
}

/* Loosely an address or CIDR (the proxy list's own parser checks it
 * properly where it is built). */
/* An address or CIDR range written in its normal form (no host bits). */
static bool proxy_ok(const char *p)
{
    ipnet_t net;
    return strlen(p) <= SETTINGS_PROXY_LEN && ipnet_parse(p, true, &net) == 0;
}

static bool read_uint(const json_t *v, long long max, const char *name, char field[64],
                      char msg[256], long long *out)
{
    char text[96];
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
        snprintf(text, sizeof(text), "must be a whole number from 0 to %lld", max);
        return fail(field, msg, name, text);
    }
    *out = json_integer_value(v);
    return true;
}

static bool read_string_list(const json_t *v, size_t max, bool (*ok)(const char *),
                             const char *name, const char *what, char field[64], char msg[256])
{
    char text[128];
    if (!json_is_array(v) || json_array_size(v) > max) {
        snprintf(text, sizeof(text), "must be a list of at most %zu %s", max, what);
        return fail(field, msg, name, text);
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e) || !ok(json_string_value(e))) {
            snprintf(text, sizeof(text), "[%zu] is not a valid %s", i, what);
            return fail(field, msg, name, text);
        }
    }
    return true;
}

/* The index of key in names[0..n), or n. */
static int name_index(const char *const *names, int n, const char *key)
{
    int i = 0;
    while (i < n && strcmp(names[i], key) != 0)
        i++;
    return i;
}

static bool read_rate_limits(const json_t *v, uint32_t limits[SETTINGS_RATE_COUNT],
                             char field[64], char msg[256])
{
    if (!json_is_object(v))
        return fail(field, msg, "rate_limits", "must be an object of limits per minute");
    const char *key;
    json_t *e;
    json_object_foreach((json_t *)v, key, e) {
        int k = name_index(settings_rate_names, SETTINGS_RATE_COUNT, key);
        char name[64];
        snprintf(name, sizeof(name), "rate_limits.%.40s", key);
        if (k == SETTINGS_RATE_COUNT)
            return fail(field, msg, name,
                        "is not a category (auth, messages, uploads, search, admin, default)");
        long long n;
        if (!read_uint(e, SETTINGS_RATE_MAX, name, field, msg, &n))
            return false;
        limits[k] = (uint32_t)n;
    }
    return true;
}

/* Reads one setting's value into *st. */
static bool read_one(int f, const json_t *v, store_settings_t *st, char field[64], char msg[256])
{
    const char *name = settings_names[f];
    long long n;
    switch (f) {
    case SETTINGS_F_SERVER_NAME: {
        size_t c = json_is_string(v) ? text_chars(json_string_value(v), false) : SIZE_MAX;
        if (c < 1 || c > SETTINGS_NAME_CHARS)
            return fail(field, msg, name, "must be 1-64 characters, no control characters");
        snprintf(st->server_name, sizeof(st->server_name), "%s", json_string_value(v));
        return true;
    }
    case SETTINGS_F_SERVER_DESCRIPTION: {
        size_t c = json_is_string(v) ? text_chars(json_string_value(v), true) : SIZE_MAX;
        if (c > SETTINGS_DESCRIPTION_CHARS)
            return fail(field, msg, name, "must be 0-500 characters");
        snprintf(st->server_description, sizeof(st->server_description), "%s",
                 json_string_value(v));
        return true;
    }
    case SETTINGS_F_REGISTRATION:
        for (int i = 0; i < 3 && json_is_string(v); i++)
            if (strcmp(json_string_value(v), settings_registration_names[i]) == 0) {
                st->registration = i;
                return true;
            }
        return fail(field, msg, name, "must be one of open, invite, closed");
    case SETTINGS_F_REQUIRE_MFA:
        if (!json_is_boolean(v))
            return fail(field, msg, name, "must be true or false");
        st->require_mfa_for_admins = json_is_true(v);
        return true;
    case SETTINGS_F_MAX_UPLOAD:
        if (!read_uint(v, (long long)SETTINGS_UPLOAD_MAX, name, field, msg, &n))
            return false;
        if (n < 1)
            return fail(field, msg, name, "must be at least 1");
        st->max_upload_bytes = (uint64_t)n;
        return true;
    case SETTINGS_F_ALLOWED_TYPES: {
        if (!read_string_list(v, SETTINGS_TYPES_MAX, glob_ok, name, "MIME type glob", field,
                              msg))
            return false;
        if (json_array_size(v) == 0)
            return fail(field, msg, name, "must name at least one type (\"*/*\" for any)");
        char list[sizeof(st->allowed_types)];
        size_t len = 0;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            int w = snprintf(list + len, sizeof(list) - len, "%s%s", i ? "," : "",
                             json_string_value(e));
            if (w < 0 || (size_t)w >= sizeof(list) - len)
                return fail(field, msg, name, "is too long (1023 bytes in all)");
            len += (size_t)w;
        }
        memcpy(st->allowed_types, list, len + 1);
        return true;
    }
    case SETTINGS_F_RETENTION:
        if (!read_uint(v, SETTINGS_RETENTION_MAX, name, field, msg, &n))
            return false;
        st->message_retention_days = (uint32_t)n;
        return true;
    case SETTINGS_F_DEFAULT_CHANNEL: {
        const char *id = json_is_string(v) ? json_string_value(v) : NULL;
        if (id == NULL || (id[0] && !chat__valid_id(id)))
            return fail(field, msg, name, "must be a channel id, or \"\" for none");
        snprintf(st->default_channel, sizeof(st->default_channel), "%s", id);
        return true;
    }
    case SETTINGS_F_RATE_LIMITS:
        return read_rate_limits(v, st->rate_limits, field, msg);
    case SETTINGS_F_AUDIT_MAX_ENTRIES:
        if (!read_uint(v, SETTINGS_AUDIT_ENTRIES_MAX, name, field, msg, &n))
            return false;
        if (n < 1)
            return fail(field, msg, name, "must be at least 1");
        st->audit_max_entries = (uint32_t)n;
        return true;
    case SETTINGS_F_AUDIT_MAX_DAYS:
        if (!read_uint(v, SETTINGS_RETENTION_MAX, name, field, msg, &n))
            return false;
        st->audit_max_days = (uint32_t)n;
        return true;
    case SETTINGS_F_STORAGE_QUOTA:
        if (!read_uint(v, (long long)SETTINGS_QUOTA_MAX, name, field, msg, &n))
            return false;
        st->storage_quota_bytes = (uint64_t)n;
        return true;
    case SETTINGS_F_UPLOAD_BUDGET:
        if (!read_uint(v, (long long)SETTINGS_UPLOAD_BUDGET_MAX, name, field, msg, &n))
            return false;
        st->upload_bytes_per_minute = (uint64_t)n;
        return true;
    case SETTINGS_F_HSTS_MAX_AGE:
        if (!read_uint(v, SETTINGS_HSTS_MAX, name, field, msg, &n))
            return false;
        st->hsts_max_age_seconds = (uint32_t)n;
        return true;
    case SETTINGS_F_CORS_ORIGINS: {
        if (!read_string_list(v, SETTINGS_ORIGINS_MAX, origin_valid, name,
                              "origin (scheme://host[:port], no path, no wildcard)", field, msg))
            return false;
        size_t i;
        json_t *e;
        st->n_cors_origins = json_array_size(v);
        json_array_foreach(v, i, e)
            snprintf(st->cors_origins[i], sizeof(st->cors_origins[i]), "%s",
                     json_string_value(e));
        return true;
    }
    case SETTINGS_F_TRUSTED_PROXIES: {
        if (!read_string_list(v, SETTINGS_PROXIES_MAX, proxy_ok, name, "address or CIDR range",
                              field, msg))
            return false;
        size_t i;
        json_t *e;
        st->n_trusted_proxies = json_array_size(v);
        json_array_foreach(v, i, e)
            snprintf(st->trusted_proxies[i], sizeof(st->trusted_proxies[i]), "%s",
                     json_string_value(e));
        return true;
    }
    }
    return false;
}

/*
 * Reads every member of obj into *st (nulls skipped when allow_null, else
 * refused), marking each in st->overridden. False with field and msg on
 * the first bad one.
 */
static bool read_settings(const json_t *obj, store_settings_t *st, bool allow_null,
                          char field[64], char msg[256])
{
    if (!json_is_object(obj))
        return fail(field, msg, "settings", "must be an object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int f = name_index(settings_names, SETTINGS_F_COUNT, key);
        char name[64];
        snprintf(name, sizeof(name), "%.60s", key);
        if (f == SETTINGS_F_COUNT)
            return fail(field, msg, name, "is not a setting");
        if (json_is_null(v)) {
            if (!allow_null)
                return fail(field, msg, name, "must not be null");
            continue;
        }
        if (!read_one(f, v, st, field, msg))
            return false;
        st->overridden |= 1u << f;
    }
    return true;
}

bool store_settings_check(const json_t *patch, char field[64], char msg[256])
{
    store_settings_t scratch;
    memset(&scratch, 0, sizeof(scratch));
    return read_settings(patch, &scratch, true, field, msg);
}

/* ---- the view ---------------------------------------------------------------- */

static json_t *types_json(const char *list)
{
    json_t *a = json_array();
    char copy[1024];
    snprintf(copy, sizeof(copy), "%s", list);
    char *save = NULL;
    for (char *g = strtok_r(copy, ", ", &save); g; g = strtok_r(NULL, ", ", &save))
        json_array_append_new(a, json_string(g));
    return a;
}

json_t *store_settings_json(const store_settings_t *st)
{
    json_t *rates = json_object();
    for (int k = 0; k < SETTINGS_RATE_COUNT; k++)
        json_object_set_new(rates, settings_rate_names[k], json_integer(st->rate_limits[k]));
    json_t *proxies = json_array();
    for (size_t i = 0; i < st->n_trusted_proxies; i++)
        json_array_append_new(proxies, json_string(st->trusted_proxies[i]));
    json_t *origins = json_array();
    for (size_t i = 0; i < st->n_cors_origins; i++)
        json_array_append_new(origins, json_string(st->cors_origins[i]));
    json_t *over = json_array();
    for (int f = 0; f < SETTINGS_F_COUNT; f++)
        if (st->overridden & (1u << f))
            json_array_append_new(over, json_string(settings_names[f]));
    json_t *o = json_object();
    json_object_set_new(o, "server_name", json_string(st->server_name));
    json_object_set_new(o, "server_description", json_string(st->server_description));
    json_object_set_new(o, "registration",
                        json_string(settings_registration_names[st->registration]));
    json_object_set_new(o, "require_mfa_for_admins", json_boolean(st->require_mfa_for_admins));
    json_object_set_new(o, "max_upload_bytes", json_integer((json_int_t)st->max_upload_bytes));
    json_object_set_new(o, "allowed_types", types_json(st->allowed_types));
    json_object_set_new(o, "message_retention_days", json_integer(st->message_retention_days));
    json_object_set_new(o, "default_channel",
                        st->default_channel[0] ? json_string(st->default_channel) : json_null());
    json_object_set_new(o, "rate_limits", rates);
    json_object_set_new(o, "trusted_proxies", proxies);
    json_object_set_new(o, "audit_max_entries", json_integer(st->audit_max_entries));
    json_object_set_new(o, "audit_max_days", json_integer(st->audit_max_days));
    json_object_set_new(o, "storage_quota_bytes",
                        json_integer((json_int_t)st->storage_quota_bytes));
    json_object_set_new(o, "upload_bytes_per_minute",
                        json_integer((json_int_t)st->upload_bytes_per_minute));
    json_object_set_new(o, "cors_origins", origins);
    json_object_set_new(o, "hsts_max_age_seconds", json_integer(st->hsts_max_age_seconds));
    json_object_set_new(o, "overridden", over);
    return o;
}

/* ---- state, apply, snapshot ------------------------------------------------ */

struct settings_state *settings__new(void)
{
    struct settings_state *t = xcalloc(1, sizeof(*t));
    pthread_rwlock_init(&t->lock, NULL);
    pthread_mutex_init(&t->hook_mu, NULL);
    t->overrides = json_object();
    return t;
}

void settings__free(struct settings_state *t)
{
    if (t == NULL)
        return;
    json_decref(t->overrides);
    pthread_rwlock_destroy(&t->lock);
    pthread_mutex_destroy(&t->hook_mu);
    free(t);
}

/* The effective settings of configured + overrides (already checked). */
static void overlay(const store_settings_t *configured, const json_t *overrides,
                    store_settings_t *out)
{
    char field[64], msg[256];
    *out = *configured;
    out->overridden = 0;
    read_settings(overrides, out, false, field, msg);
}

/* Takes over `overrides` (a checked object). */
static void install(struct settings_state *t, json_t *overrides)
{
    pthread_rwlock_wrlock(&t->lock);
    json_decref(t->overrides);
    t->overrides = overrides;
    overlay(&t->configured, overrides, &t->effective);
    pthread_rwlock_unlock(&t->lock);
}

void settings__clear(struct settings_state *t)
{
    install(t, json_object());
}

int settings__apply(store_t *s, const void *data, size_t len)
{
    json_t *rec = codec_open_record(data, len, STORE_SETTINGS_SCHEMA_VERSION);
    if (rec == NULL)
        return STORE_E_CORRUPT;
    json_t *over = json_object_get(rec, "settings");
    store_settings_t scratch;
    char field[64], msg[256];
    memset(&scratch, 0, sizeof(scratch));
    if (!json_is_object(over) || !read_settings(over, &scratch, false, field, msg)) {
        json_decref(rec);
        return STORE_E_CORRUPT;
    }
    install(s->settings, json_incref(over));
    json_decref(rec);
    return 0;
}

static char *encode(const json_t *overrides)
{
    json_t *rec = json_pack("{s:i, s:O}", "v", STORE_SETTINGS_SCHEMA_VERSION, "settings",
                            overrides);
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    return text;
}

int settings__snapshot(store_t *s, wal_snapshot_t *snap)
{
    struct settings_state *t = s->settings;
    pthread_rwlock_rdlock(&t->lock);
    char *text = json_object_size(t->overrides) ? encode(t->overrides) : NULL;
    pthread_rwlock_unlock(&t->lock);
    if (text == NULL)
        return 0;
    int rc = wal_snapshot_add(snap, STORE_REC_SETTINGS, text, strlen(text));
    free(text);
    return rc;
}

/* ---- the public functions ------------------------------------------------- */

static void run_hooks(store_t *s)
{
    struct settings_state *t = s->settings;
    pthread_mutex_lock(&t->hook_mu);
    if (t->n_hooks) {
        store_settings_t now;
        store_settings_get(s, &now);
        for (size_t i = 0; i < t->n_hooks; i++)
            t->hooks[i](t->hook_ctx[i], &now);
    }
    pthread_mutex_unlock(&t->hook_mu);
}

void store_settings_add_hook(store_t *s, store_settings_hook_fn fn, void *ctx)
{
    struct settings_state *t = s->settings;
    pthread_mutex_lock(&t->hook_mu);
    if (t->n_hooks < MAX_HOOKS) {
        t->hooks[t->n_hooks] = fn;
        t->hook_ctx[t->n_hooks++] = ctx;
    }
    pthread_mutex_unlock(&t->hook_mu);
}

void store_settings_seed(store_t *s, const store_settings_t *configured)
{
    struct settings_state *t = s->settings;
    pthread_rwlock_wrlock(&t->lock);
    t->configured = *configured;
    t->configured.overridden = 0;
    overlay(&t->configured, t->overrides, &t->effective);
    pthread_rwlock_unlock(&t->lock);
    run_hooks(s);
}

void store_settings_get(store_t *s, store_settings_t *out)
{
    struct settings_state *t = s->settings;
    pthread_rwlock_rdlock(&t->lock);
    *out = t->effective;
    pthread_rwlock_unlock(&t->lock);
}

int store_settings_patch(store_t *s, const json_t *patch,
                         int (*check)(void *ctx, const store_settings_t *next), void *ctx,
                         store_settings_t *out, uint64_t *lsn)
{
    char field[64], msg[256];
    if (!store_settings_check(patch, field, msg))
        return STORE_E_INVALID;
    struct settings_state *t = s->settings;
    pthread_mutex_lock(&s->write_mu);
    pthread_rwlock_rdlock(&t->lock);
    json_t *next = json_deep_copy(t->overrides);
    store_settings_t cur = t->effective, configured = t->configured;
    pthread_rwlock_unlock(&t->lock);

    const char *key;
    json_t *v;
    json_object_foreach((json_t *)patch, key, v) {
        if (json_is_null(v)) {
            json_object_del(next, key);
        } else if (strcmp(key, "rate_limits") == 0) {
            /* Categories merge into the current limits; the override holds
             * all of them. */
            json_t *all = json_object();
            for (int k = 0; k < SETTINGS_RATE_COUNT; k++)
                json_object_set_new(all, settings_rate_names[k],
                                    json_integer(cur.rate_limits[k]));
            json_object_update(all, v);
            json_object_set_new(next, key, all);
        } else {
            json_object_set(next, key, v);
        }
    }
    store_settings_t eff;
    overlay(&configured, next, &eff);
    int rc = check ? check(ctx, &eff) : 0;
    if (rc == 0)
        rc = store__append(s, STORE_REC_SETTINGS, encode(next), lsn);
    if (rc == 0)
        install(t, next);
    else
        json_decref(next);
    pthread_mutex_unlock(&s->write_mu);
    if (rc == 0) {
        if (out)
            store_settings_get(s, out);
        run_hooks(s);
    }
    return rc;
}
