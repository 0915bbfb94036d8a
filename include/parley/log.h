/*
 * Logging through yder, one line per event on stderr:
 *   2026-01-09T12:00:00.000Z INFO message
 * Lines are written with a single write(2), so threads never interleave,
 * and control characters in messages are replaced, so a client cannot
 * forge log lines.
 */
#ifndef PARLEY_LOG_H
#define PARLEY_LOG_H

#include <jansson.h>
#include <yder.h>

/* The levels, most severe first (the setting log_level names them). */
enum log_level {
    LOG_LEVEL_ERROR,
    LOG_LEVEL_WARNING,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
};

/* How lines are written: text (the line above) or json, one JSON object
 * per line: {"time":..., "level":"info", "msg":...} plus the fields of a
 * structured line (log_fields). */
enum log_format {
    LOG_FORMAT_TEXT,
    LOG_FORMAT_JSON,
};

/* Starts logging at `level`. Call once, before any thread starts. */
void log_init(enum log_level level);
/* Chooses the format (text until called). Call before any thread starts. */
void log_set_format(enum log_format format);

/* Writes one line at info level whose message is `msg` and whose fields are
 * the members of `fields` (a JSON object; the reference is stolen): in json
 * format they are members of the line's object beside time, level and msg;
 * in text format the line is `text` (the caller's rendering of the same
 * line; NULL: msg alone).
 * Thread-safe (one write(2) per line). */
void log_fields(const char *msg, json_t *fields, const char *text);

/* A JSON string of s (at most 8 KiB of it) with bytes that are not UTF-8
 * as '?', for a field of log_fields taken from a client. New reference. */
json_t *log_json_string(const char *s);

/* An info line already formatted (text format): straight to the writer,
 * without yder's formatting (it formats every message twice). */
void log_info_text(const char *message);

/* The format chosen; read-only after start-up. */
extern enum log_format log_current_format;
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
