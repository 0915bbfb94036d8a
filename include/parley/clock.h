/* Wall-clock and monotonic time, and the API's RFC 3339 timestamps. */
#ifndef PARLEY_CLOCK_H
#define PARLEY_CLOCK_H

#include <stdint.h>

#define CLOCK_RFC3339_LEN 25 /* "2026-01-09T12:00:00.000Z" + NUL */

/* Milliseconds since the Unix epoch. */
int64_t clock_wall_ms(void);

/* Nanoseconds on a clock that never jumps; for durations only. */
int64_t clock_mono_ns(void);

/* Writes `ms` (since the epoch) as "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void clock_format_rfc3339(int64_t ms, char out[CLOCK_RFC3339_LEN]);

#endif
