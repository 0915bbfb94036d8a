/*
 * MIME detection of uploads with libmagic, from their bytes only.
 *
 * DESIGN
 * A magic_t is not thread-safe (magic_buffer returns a buffer inside it), so
 * each thread gets its own, created on first use (magic_open(MAGIC_MIME_TYPE)
 * + magic_load(NULL): ~7 ms, ~200 KB) and kept in a pthread key whose
 * destructor closes it when the thread exits. The thread that calls exit()
 * never runs key destructors, so an atexit handler (registered with the key)
 * and blobs_thread_cleanup() free that one; LeakSanitizer stays quiet.
 *
 * Only the first BLOB_HEAD_BYTES bytes are examined (MAGIC_PARAM_BYTES_MAX as
 * well as the length we pass): text or random data costs ~0.5 ms per 64 KB,
 * and every format we care about is recognised from its head. MAGIC_COMPRESS
 * is off, so libmagic never decompresses (no decompression bombs).
 *
 * A failed load is not cached: the next call retries (a missing magic
 * database is a deployment error, logged once per process). Failures answer
 * "application/octet-stream", the type that makes browsers download.
 */
#include "parley/blobs.h"

#include <errno.h>
#include <magic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/log.h"

#define OCTET_STREAM "application/octet-stream"

static pthread_key_t magic_key;
static pthread_once_t magic_once = PTHREAD_ONCE_INIT;
static atomic_bool load_error_logged;
static atomic_bool buffer_error_logged;

static void magic_destructor(void *p)
{
    if (p != NULL)
        magic_close((magic_t)p);
}

static void magic_atexit(void)
{
    blobs_thread_cleanup();
}

static void magic_key_init(void)
{
    if (pthread_key_create(&magic_key, magic_destructor) != 0)
        abort(); /* out of keys: a programming error, as for allocations */
    atexit(magic_atexit);
}

/* The calling thread's handle, loading it on first use; NULL on failure. */
static magic_t thread_magic(void)
{
    pthread_once(&magic_once, magic_key_init);
    magic_t m = pthread_getspecific(magic_key);
    if (m != NULL)
        return m;
    m = magic_open(MAGIC_MIME_TYPE);
    if (m == NULL)
        goto fail;
    if (magic_load(m, NULL) != 0)
        goto fail;
    size_t max = BLOB_HEAD_BYTES;
    if (magic_setparam(m, MAGIC_PARAM_BYTES_MAX, &max) != 0)
        goto fail;
    if (pthread_setspecific(magic_key, m) != 0)
        goto fail;
    return m;
fail:
    if (!atomic_exchange(&load_error_logged, true))
        log_error("libmagic: cannot load the magic database: %s",
                  m != NULL && magic_error(m) != NULL ? magic_error(m) : strerror(errno));
    if (m != NULL)
        magic_close(m);
    return NULL;
}

void blobs_thread_cleanup(void)
{
    pthread_once(&magic_once, magic_key_init);
    magic_t m = pthread_getspecific(magic_key);
    if (m != NULL) {
        pthread_setspecific(magic_key, NULL);
        magic_close(m);
    }
}

static int put(char *out, size_t out_size, const char *s)
{
    size_t n = strlen(s);
    if (n >= out_size) {
        if (out_size > 0)
            out[0] = '\0';
        return -ERANGE;
    }
    memcpy(out, s, n + 1);
    return 0;
}

int blobs_detect_mime(const void *head, size_t len, char *out, size_t out_size)
{
    if (head == NULL && len > 0)
        return BLOB_E_ARG;
    if (len > BLOB_HEAD_BYTES)
        len = BLOB_HEAD_BYTES;
    magic_t m = thread_magic();
    if (m == NULL) {
        put(out, out_size, OCTET_STREAM);
        return BLOB_E_MAGIC;
    }
    /* libmagic reads nothing when len is 0, but wants a valid pointer. */
    const char *type = magic_buffer(m, len > 0 ? head : "", len);
    if (type == NULL) {
        if (!atomic_exchange(&buffer_error_logged, true)) /* the input is a client's */
            log_warning("libmagic: %s", magic_error(m) != NULL ? magic_error(m) : "failed");
        put(out, out_size, OCTET_STREAM);
        return BLOB_E_MAGIC;
    }
    return put(out, out_size, type);
}
