/*
 * Counts per time bucket (src/util/series.c), for the admin dashboard's
 * time series: how many messages, sign-ups, uploads, logins or active users
 * fell in each minute, hour and day (UTC). Each level is a sorted array of
 * (bucket number, count), so adding at the newest bucket is O(1), adding
 * elsewhere O(log n + memmove), and reading n consecutive buckets is
 * O(log n + n) whatever the number of events counted.
 */
#ifndef PARLEY_SERIES_H
#define PARLEY_SERIES_H

#include <stddef.h>
#include <stdint.h>

enum series_level { SERIES_MINUTE, SERIES_HOUR, SERIES_DAY, SERIES_LEVELS };

#define SERIES_MINUTE_MS 60000LL
#define SERIES_HOUR_MS 3600000LL
#define SERIES_DAY_MS 86400000LL

typedef struct series series_t;

/* A new, empty series; series_free(NULL) is a no-op. Every function is
 * thread-safe (one mutex per series, a leaf lock). */
series_t *series_new(void);
void series_free(series_t *s);
/* Forgets every count. */
void series_clear(series_t *s);

/* The width of a level's buckets in ms. */
int64_t series_width_ms(enum series_level level);
/* The number of the bucket of time t_ms at a level (floor division, so
 * times before 1970 work too). */
int64_t series_bucket_of(enum series_level level, int64_t t_ms);

/* Adds delta to the buckets of t_ms at every level. */
void series_add(series_t *s, int64_t t_ms, int64_t delta);
/* Adds delta to the bucket of t_ms at one level (for counts that are not
 * sums across levels, like distinct active users). */
void series_add_level(series_t *s, enum series_level level, int64_t t_ms, int64_t delta);

/* Fills out[0..n) with the counts of buckets first, first + 1, ...,
 * first + n - 1 (bucket numbers of series_bucket_of) at `level`; zero where
 * nothing was counted. O(log k + n) for k buckets held. */
void series_read(series_t *s, enum series_level level, int64_t first, size_t n, int64_t *out);

/* The sum over every bucket of the minute level (everything counted). */
int64_t series_total(series_t *s);

#endif
