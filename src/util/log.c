/*
 * Log output. yder filters by level and hands each message to log_line(),
 * which stamps it with a millisecond UTC time, replaces control characters
 * (request paths and ids come from clients and must not be able to start a
 * fake line), and writes it to stderr with one write(2) so concurrent
 * threads never interleave inside a line. Containers and systemd both
 * collect stderr, so there is no log file to rotate.
 */
#include "parley/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "parley/clock.h"

enum log_level log_current_level = LOG_LEVEL_INFO;

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
    char line[2048];
    clock_format_rfc3339(clock_wall_ms(), line);
    size_t n = strlen(line);
    n += (size_t)snprintf(line + n, sizeof(line) - n, " %s ", level_tag(level));
    for (const unsigned char *p = (const unsigned char *)message; *p && n < sizeof(line) - 2; p++)
        line[n++] = (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
    line[n++] = '\n';
    ssize_t off = 0;
    while (off < (ssize_t)n) {
        ssize_t w = write(STDERR_FILENO, line + off, n - (size_t)off);
        if (w <= 0)
            break;
        off += w;
    }
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
}

void log_close(void)
{
    y_close_logs();
}
