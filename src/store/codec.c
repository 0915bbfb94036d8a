/*
 * Records of the store: each entity's full state as a JSON object with the
 * schema version "v", the payload of the log records and of the snapshot
 * records alike. JSON keeps the records readable with `parley wal inspect`
 * and lets later versions add fields: a reader fills what it knows, treats a
 * missing optional field as empty, and refuses a record of a newer "v".
 * (The log compresses the repeated keys away; docs/benchmarks.md.)
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "parley/xalloc.h"

void codec_set_str(json_t *o, const char *key, const char *v)
{
    json_object_set_new(o, key, v ? json_string(v) : json_null());
}

bool codec_get_fixed(json_t *o, const char *key, char *out, size_t size)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || json_string_length(v) >= size ||
        strlen(json_string_value(v)) != json_string_length(v))
        return false;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

/* Like get_fixed, but a missing or null field is "" (fields added after v1). */
bool codec_get_fixed_opt(json_t *o, const char *key, char *out, size_t size)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v)) {
        out[0] = '\0';
        return true;
    }
    return codec_get_fixed(o, key, out, size);
}

/* A nullable string field as a malloc'd copy (NULL when null or absent). */
bool codec_get_dup(json_t *o, const char *key, char **out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return false;
    *out = xstrdup(json_string_value(v));
    return true;
}

bool codec_get_i64(json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL) {
        *out = 0;
        return true;
    }
    if (!json_is_integer(v))
        return false;
    *out = json_integer_value(v);
    return true;
}

bool codec_get_bool(json_t *o, const char *key, bool *out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL) {
        *out = false;
        return true;
    }
    if (!json_is_boolean(v))
        return false;
    *out = json_is_true(v);
    return true;
}

json_t *codec_open_record(const void *data, size_t len, int max_version)
{
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    if (o == NULL)
        return NULL;
    json_t *v = json_object_get(o, "v");
    if (!json_is_object(o) || !json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > max_version) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *codec_close(json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL)
        abort();
    return text;
}

char *codec_user_encode(const store_user_t *u)
{
    json_t *o = json_object();
    json_object_set_new(o, "v", json_integer(STORE_USER_SCHEMA_VERSION));
    codec_set_str(o, "id", u->id);
    codec_set_str(o, "username", u->username);
    codec_set_str(o, "email", u->email);
    codec_set_str(o, "password_hash", u->password_hash);
    codec_set_str(o, "display_name", u->display_name);
    codec_set_str(o, "bio", u->bio);
    codec_set_str(o, "avatar_url", u->avatar_url);
    codec_set_str(o, "preferences", u->preferences);
    json_object_set_new(o, "is_admin", json_boolean(u->is_admin));
    json_object_set_new(o, "is_active", json_boolean(u->is_active));
    json_object_set_new(o, "created_at", json_integer(u->created_at));
    json_object_set_new(o, "updated_at", json_integer(u->updated_at));
    json_object_set_new(o, "last_seen", json_integer(u->last_seen));
    json_object_set_new(o, "mfa_enabled", json_boolean(u->mfa_enabled));
    codec_set_str(o, "mfa_secret", u->mfa_secret[0] ? u->mfa_secret : NULL);
    codec_set_str(o, "mfa_pending", u->mfa_pending[0] ? u->mfa_pending : NULL);
    json_object_set_new(o, "mfa_last_step", json_integer(u->mfa_last_step));
    json_object_set_new(o, "banned_at", json_integer(u->banned_at));
    json_object_set_new(o, "banned_until", json_integer(u->banned_until));
    codec_set_str(o, "ban_reason", u->ban_reason);
    json_object_set_new(o, "last_login", json_integer(u->last_login));
    json_object_set_new(o, "login_count", json_integer(u->login_count));
    json_object_set_new(o, "deleted_at", json_integer(u->deleted_at));
    json_object_set_new(o, "muted_at", json_integer(u->muted_at));
    json_object_set_new(o, "muted_until", json_integer(u->muted_until));
    codec_set_str(o, "mute_reason", u->mute_reason);
    return codec_close(o);
}

int codec_user_decode(const void *data, size_t len, store_user_t *u)
{
    memset(u, 0, sizeof(*u));
    json_t *o = codec_open_record(data, len, STORE_USER_SCHEMA_VERSION);
    if (o == NULL)
        return STORE_E_CORRUPT;
    bool ok = codec_get_fixed(o, "id", u->id, sizeof(u->id)) &&
              codec_get_fixed(o, "username", u->username, sizeof(u->username)) &&
              codec_get_fixed(o, "email", u->email, sizeof(u->email)) &&
              codec_get_fixed(o, "password_hash", u->password_hash, sizeof(u->password_hash)) &&
              codec_get_dup(o, "display_name", &u->display_name) && codec_get_dup(o, "bio", &u->bio) &&
              codec_get_dup(o, "avatar_url", &u->avatar_url) &&
              codec_get_dup(o, "preferences", &u->preferences) &&
              codec_get_bool(o, "is_admin", &u->is_admin) && codec_get_bool(o, "is_active", &u->is_active) &&
              codec_get_i64(o, "created_at", &u->created_at) &&
              codec_get_i64(o, "updated_at", &u->updated_at) && codec_get_i64(o, "last_seen", &u->last_seen) &&
              codec_get_bool(o, "mfa_enabled", &u->mfa_enabled) &&
              codec_get_fixed_opt(o, "mfa_secret", u->mfa_secret, sizeof(u->mfa_secret)) &&
              codec_get_fixed_opt(o, "mfa_pending", u->mfa_pending, sizeof(u->mfa_pending)) &&
              codec_get_i64(o, "mfa_last_step", &u->mfa_last_step) &&
              /* v2; absent (0, NULL) in v1 records */
              codec_get_i64(o, "banned_at", &u->banned_at) && u->banned_at >= 0 &&
              codec_get_i64(o, "banned_until", &u->banned_until) && u->banned_until >= 0 &&
              codec_get_dup(o, "ban_reason", &u->ban_reason) &&
              (u->ban_reason == NULL || strlen(u->ban_reason) <= STORE_BAN_REASON_MAX) &&
              codec_get_i64(o, "last_login", &u->last_login) &&
              codec_get_i64(o, "login_count", &u->login_count) && u->login_count >= 0 &&
              codec_get_i64(o, "deleted_at", &u->deleted_at) &&
              /* v3; absent (0, NULL) in v1 and v2 records */
              codec_get_i64(o, "muted_at", &u->muted_at) && u->muted_at >= 0 &&
              codec_get_i64(o, "muted_until", &u->muted_until) && u->muted_until >= 0 &&
              codec_get_dup(o, "mute_reason", &u->mute_reason) &&
              (u->mute_reason == NULL || strlen(u->mute_reason) <= STORE_BAN_REASON_MAX);
    json_decref(o);
    if (!ok) {
        store_user_clear(u);
        return STORE_E_CORRUPT;
    }
    return 0;
}

char *codec_session_encode(const store_session_t *ss)
{
    json_t *o = json_object();
    json_object_set_new(o, "v", json_integer(STORE_SCHEMA_VERSION));
    codec_set_str(o, "id", ss->id);
    codec_set_str(o, "user_id", ss->user_id);
    codec_set_str(o, "salt", ss->salt);
    json_object_set_new(o, "generation", json_integer((json_int_t)ss->generation));
    json_object_set_new(o, "created_at", json_integer(ss->created_at));
    json_object_set_new(o, "expires_at", json_integer(ss->expires_at));
    json_object_set_new(o, "revoked", json_boolean(ss->revoked));
    return codec_close(o);
}

int codec_session_decode(const void *data, size_t len, store_session_t *ss)
{
    memset(ss, 0, sizeof(*ss));
    json_t *o = codec_open_record(data, len, STORE_SCHEMA_VERSION);
    if (o == NULL)
        return STORE_E_CORRUPT;
    int64_t gen = 0;
    bool ok = codec_get_fixed(o, "id", ss->id, sizeof(ss->id)) &&
              codec_get_fixed(o, "user_id", ss->user_id, sizeof(ss->user_id)) &&
              codec_get_fixed(o, "salt", ss->salt, sizeof(ss->salt)) &&
              codec_get_i64(o, "generation", &gen) && gen >= 0 &&
              codec_get_i64(o, "created_at", &ss->created_at) &&
              codec_get_i64(o, "expires_at", &ss->expires_at) && codec_get_bool(o, "revoked", &ss->revoked);
    ss->generation = (uint64_t)gen;
    json_decref(o);
    return ok ? 0 : STORE_E_CORRUPT;
}

char *codec_api_key_encode(const store_api_key_t *k)
{
    json_t *o = json_object();
    json_object_set_new(o, "v", json_integer(STORE_SCHEMA_VERSION));
    codec_set_str(o, "id", k->id);
    codec_set_str(o, "user_id", k->user_id);
    codec_set_str(o, "name", k->name);
    codec_set_str(o, "hash", k->hash);
    json_object_set_new(o, "can_read", json_boolean(k->can_read));
    json_object_set_new(o, "can_write", json_boolean(k->can_write));
    json_object_set_new(o, "created_at", json_integer(k->created_at));
    json_object_set_new(o, "expires_at", json_integer(k->expires_at));
    json_object_set_new(o, "revoked", json_boolean(k->revoked));
    return codec_close(o);
}

int codec_api_key_decode(const void *data, size_t len, store_api_key_t *k)
{
    memset(k, 0, sizeof(*k));
    json_t *o = codec_open_record(data, len, STORE_SCHEMA_VERSION);
    if (o == NULL)
        return STORE_E_CORRUPT;
    bool ok = codec_get_fixed(o, "id", k->id, sizeof(k->id)) &&
              codec_get_fixed(o, "user_id", k->user_id, sizeof(k->user_id)) &&
              codec_get_fixed(o, "name", k->name, sizeof(k->name)) &&
              codec_get_fixed(o, "hash", k->hash, sizeof(k->hash)) &&
              codec_get_bool(o, "can_read", &k->can_read) && codec_get_bool(o, "can_write", &k->can_write) &&
              codec_get_i64(o, "created_at", &k->created_at) &&
              codec_get_i64(o, "expires_at", &k->expires_at) && codec_get_bool(o, "revoked", &k->revoked);
    json_decref(o);
    return ok ? 0 : STORE_E_CORRUPT;
}
