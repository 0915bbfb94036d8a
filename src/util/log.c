/*
 * Log output. yder filters by level and hands each message to log_line(),
 * which stamps it with a millisecond UTC time, replaces control characters
 * (request paths and ids come from clients and must not be able to start a
 * fake line), and hands it to one writer thread that writes whatever lines
 * have gathered to stderr with one write(2): lines never interleave, a
 * request thread does not wait on the log's pipe or file (a write(2) per
 * access line was ~3% of a durable post), and under load many lines share
 * one system call. The buffer is bounded (LOG_BUFFER_BYTES): when the
 * writer falls behind, the threads that log wait for room, as they waited
 * on write(2) before. log_close() (and exit()) writes what is left; before
 * log_init() and after log_close() lines are written directly. Containers
 * and systemd both collect stderr, so there is no log file to rotate.
 *
 * With --log-format json every line is one JSON object instead (time, level,
 * msg, and for a structured line such as the access log its own fields),
 * made by jansson, never by hand: jansson escapes control characters, so the
 * same guarantee holds (a client's bytes cannot end a line), and bytes that
 * are not UTF-8 become '?' first, as jansson refuses them.
 */
#include "parley/log.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parley/clock.h"
#include "parley/utf8.h"

enum log_level log_current_level = LOG_LEVEL_INFO;
enum log_format log_current_format = LOG_FORMAT_TEXT;

static const char *level_tag(unsigned long level)
{
    switch (level) {
    case Y_LOG_LEVEL_ERROR:
        return "ERROR";
    case Y_LOG_LEVEL_WARNING:
        return "WARN";
    case Y_LOG_LEVEL_INFO:
        return "INFO";
    default:
        return "DEBUG";
    }
}

/* ulfius reports some client mistakes as errors; they are the client's. */
static bool client_caused(const char *message)
{
    return strncmp(message, "Ulfius - Error allocating post_processor", 40) == 0;
}

static void write_all(const char *line, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(STDERR_FILENO, line + off, n - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

/* ---- the writer thread --------------------------------------------------- */

#define LOG_BUFFER_BYTES (256 * 1024)

static struct {
    pthread_mutex_t lock;
    pthread_cond_t lines_waiting; /* the writer waits for lines */
    pthread_cond_t room;          /* loggers wait for room, log_close for the end */
    char *pending;                /* lines not yet handed to write(2) */
    char *writing;                /* the buffer the writer is writing */
    size_t pending_len;
    bool running, stopping, busy;
    pthread_t thread;
} queue = {.lock = PTHREAD_MUTEX_INITIALIZER,
         .lines_waiting = PTHREAD_COND_INITIALIZER,
         .room = PTHREAD_COND_INITIALIZER};

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&queue.lock);
    for (;;) {
        while (queue.pending_len == 0 && !queue.stopping)
            pthread_cond_wait(&queue.lines_waiting, &queue.lock);
        if (queue.pending_len == 0)
            break; /* stopping, and everything written */
        char *batch = queue.pending;
        size_t n = queue.pending_len;
        queue.pending = queue.writing;
        queue.writing = batch;
        queue.pending_len = 0;
        queue.busy = true;
        pthread_cond_broadcast(&queue.room);
        pthread_mutex_unlock(&queue.lock);
        write_all(batch, n);
        pthread_mutex_lock(&queue.lock);
        queue.busy = false;
    }
    pthread_mutex_unlock(&queue.lock);
    return NULL;
}

/* One whole line (its '\n' included) to the log. */
static void emit(const char *line, size_t n)
{
    pthread_mutex_lock(&queue.lock);
    if (!queue.running || n > LOG_BUFFER_BYTES) {
        /* No writer (or a line bigger than its buffer): write it here,
         * after what is queued, so lines keep their order. */
        while (queue.running && (queue.pending_len > 0 || queue.busy))
            pthread_cond_wait(&queue.room, &queue.lock);
        write_all(line, n);
        pthread_mutex_unlock(&queue.lock);
        return;
    }
    while (queue.running && queue.pending_len + n > LOG_BUFFER_BYTES)
        pthread_cond_wait(&queue.room, &queue.lock);
    memcpy(queue.pending + queue.pending_len, line, n);
    queue.pending_len += n;
    if (!queue.busy)
        pthread_cond_signal(&queue.lines_waiting);
    pthread_mutex_unlock(&queue.lock);
}

/* Writes what is queued and stops the writer (idempotent). */
static void writer_stop(void)
{
    pthread_mutex_lock(&queue.lock);
    if (!queue.running) {
        pthread_mutex_unlock(&queue.lock);
        return;
    }
    queue.stopping = true;
    pthread_cond_signal(&queue.lines_waiting);
    pthread_mutex_unlock(&queue.lock);
    pthread_join(queue.thread, NULL);
    pthread_mutex_lock(&queue.lock);
    queue.running = false;
    queue.stopping = false;
    pthread_cond_broadcast(&queue.room);
    pthread_mutex_unlock(&queue.lock);
}

static void writer_start(void)
{
    pthread_mutex_lock(&queue.lock);
    if (queue.running) {
        pthread_mutex_unlock(&queue.lock);
        return;
    }
    if (queue.pending == NULL) {
        queue.pending = malloc(LOG_BUFFER_BYTES);
        queue.writing = malloc(LOG_BUFFER_BYTES);
    }
    /* The writer takes no signal: the server waits for its signals with
     * sigwait() (src/server.c), which needs every thread to block them, and
     * this thread starts before the server blocks them in its own. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (queue.pending != NULL && queue.writing != NULL &&
        pthread_create(&queue.thread, NULL, writer_main, NULL) == 0)
        queue.running = true;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_unlock(&queue.lock);
    static bool registered;
    if (queue.running && !registered) {
        registered = true;
        atexit(writer_stop); /* an exit() after a fatal error still writes its lines */
    }
}

/* A copy of s (at most max bytes) that is valid UTF-8: other bytes become
 * '?'. malloc'd; NULL when out of memory. */
static char *utf8_clean(const char *s, size_t max)
{
    size_t len = strnlen(s, max);
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence((const unsigned char *)s + i, len - i);
        if (n == 0) {
            out[i++] = '?';
            continue;
        }
        memcpy(out + i, s + i, n);
        i += n;
    }
    out[len] = '\0';
    return out;
}

json_t *log_json_string(const char *s)
{
    char *clean = utf8_clean(s, 8192);
    json_t *v = clean ? json_string(clean) : NULL;
    free(clean);
    return v ? v : json_string("?");
}

static const char *level_name(unsigned long level)
{
    switch (level) {
    case Y_LOG_LEVEL_ERROR:
        return "error";
    case Y_LOG_LEVEL_WARNING:
        return "warning";
    case Y_LOG_LEVEL_INFO:
        return "info";
    default:
        return "debug";
    }
}

/* Writes obj (stolen) as one JSON line, with time, level and msg set. */
static void json_line(json_t *obj, unsigned long level, const char *message)
{
    if (obj == NULL)
        return;
    char when[40];
    clock_format_rfc3339(clock_wall_ms(), when);
    char *msg = utf8_clean(message, 8192);
    json_object_set_new(obj, "time", json_string(when));
    json_object_set_new(obj, "level", json_string(level_name(level)));
    json_object_set_new(obj, "msg", msg ? json_string(msg) : json_string("?"));
    free(msg);
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(obj);
    if (text == NULL)
        return;
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps's NUL becomes the line's end */
    emit(text, n + 1);
    free(text);
}

void log_set_format(enum log_format format)
{
    log_current_format = format;
}

static void log_line(void *cls, const char *app, const time_t date, unsigned long level,
                     const char *message);

void log_fields(const char *msg, json_t *fields, const char *text)
{
    if (log_current_level < LOG_LEVEL_INFO) {
        json_decref(fields);
        return;
    }
    if (log_current_format != LOG_FORMAT_JSON) {
        json_decref(fields);
        log_line(NULL, NULL, 0, Y_LOG_LEVEL_INFO, text != NULL ? text : msg);
        return;
    }
    json_t *obj = json_object();
    if (obj == NULL) {
        json_decref(fields);
        return;
    }
    /* time, level and msg first, then the line's own fields */
    json_object_set_new(obj, "time", json_null());
    json_object_set_new(obj, "level", json_null());
    json_object_set_new(obj, "msg", json_null());
    if (fields != NULL)
        json_object_update(obj, fields);
    json_decref(fields);
    json_line(obj, Y_LOG_LEVEL_INFO, msg);
}

static void log_line(void *cls, const char *app, const time_t date, unsigned long level,
                     const char *message)
{
    (void)cls;
    (void)app;
    (void)date;
    if (client_caused(message)) {
        if (log_current_level < LOG_LEVEL_DEBUG)
            return;
        level = Y_LOG_LEVEL_DEBUG;
    }
    if (log_current_format == LOG_FORMAT_JSON) {
        json_line(json_object(), level, message);
        return;
    }
    char line[2048];
    clock_format_rfc3339(clock_wall_ms(), line);
    size_t n = strlen(line);
    n += (size_t)snprintf(line + n, sizeof(line) - n, " %s ", level_tag(level));
    for (const unsigned char *p = (const unsigned char *)message; *p && n < sizeof(line) - 2; p++)
        line[n++] = (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
    line[n++] = '\n';
    emit(line, n);
}

void log_info_text(const char *message)
{
    if (log_current_level >= LOG_LEVEL_INFO)
        log_line(NULL, NULL, 0, Y_LOG_LEVEL_INFO, message);
}

static unsigned long yder_level(enum log_level level)
{
    switch (level) {
    case LOG_LEVEL_ERROR:
        return Y_LOG_LEVEL_ERROR;
    case LOG_LEVEL_WARNING:
        return Y_LOG_LEVEL_WARNING;
    case LOG_LEVEL_INFO:
        return Y_LOG_LEVEL_INFO;
    default:
        return Y_LOG_LEVEL_DEBUG;
    }
}

void log_init(enum log_level level)
{
    log_current_level = level;
    y_init_logs("parley", Y_LOG_MODE_CALLBACK, yder_level(level), NULL, NULL);
    y_set_logs_callback(log_line, NULL, NULL);
    writer_start();
}

void log_close(void)
{
    y_close_logs();
    writer_stop();
}
