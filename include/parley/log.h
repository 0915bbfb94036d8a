/*
 * Logging through yder, one line per event on stderr:
 *   2026-01-09T12:00:00.000Z INFO message
 * Lines are written with a single write(2), so threads never interleave,
 * and control characters in messages are replaced, so a client cannot
 * forge log lines.
 */
#ifndef PARLEY_LOG_H
#define PARLEY_LOG_H

#include <yder.h>

/* The levels, most severe first (the setting log_level names them). */
enum log_level {
    LOG_LEVEL_ERROR,
    LOG_LEVEL_WARNING,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
};

/* Starts logging at `level`. Call once, before any thread starts. */
void log_init(enum log_level level);
void log_close(void);

/* The level given to log_init; read-only afterwards. */
extern enum log_level log_current_level;

#define log_error(...) y_log_message(Y_LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) y_log_message(Y_LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...)                                                   \
    do {                                                                \
        if (log_current_level >= LOG_LEVEL_INFO)                        \
            y_log_message(Y_LOG_LEVEL_INFO, __VA_ARGS__);               \
    } while (0)
#define log_debug(...)                                                  \
    do {                                                                \
        if (log_current_level >= LOG_LEVEL_DEBUG)                       \
            y_log_message(Y_LOG_LEVEL_DEBUG, __VA_ARGS__);              \
    } while (0)

#endif
