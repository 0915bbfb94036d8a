/* JSON records of the store's entities (codec.c). Encoders return malloc'd
 * text; decoders fill a zeroed struct and return 0 or STORE_E_CORRUPT. */
#ifndef PARLEY_STORE_CODEC_H
#define PARLEY_STORE_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "parley/store.h"

/* Parses a record's JSON object and checks its schema version "v" (1 up to
 * max_version: STORE_SCHEMA_VERSION, or the record type's own, as
 * STORE_USER_SCHEMA_VERSION). NULL when it does not parse or is of a newer
 * version; the caller decrefs the object. Shared by every decoder. */
json_t *codec_open_record(const void *data, size_t len, int max_version);

/* Field helpers shared by the JSON decoders (and the encoders' nullable
 * strings). Each returns false for a field of the wrong type or over its
 * size; an absent or null field is "" / NULL / 0 / false, except for
 * codec_get_fixed, which requires the string (and refuses one holding a
 * NUL). */
void codec_set_str(json_t *o, const char *key, const char *v); /* NULL: null */
bool codec_get_fixed(json_t *o, const char *key, char *out, size_t size);
bool codec_get_fixed_opt(json_t *o, const char *key, char *out, size_t size);
bool codec_get_dup(json_t *o, const char *key, char **out); /* malloc'd or NULL */
bool codec_get_i64(json_t *o, const char *key, int64_t *out);
bool codec_get_bool(json_t *o, const char *key, bool *out);
/* A record's object as compact text (malloc'd); decrefs o. Aborts when out
 * of memory. */
char *codec_close(json_t *o);

char *codec_user_encode(const store_user_t *u);
int codec_user_decode(const void *data, size_t len, store_user_t *u);
char *codec_session_encode(const store_session_t *s);
int codec_session_decode(const void *data, size_t len, store_session_t *s);
char *codec_api_key_encode(const store_api_key_t *k);
int codec_api_key_decode(const void *data, size_t len, store_api_key_t *k);

#endif
