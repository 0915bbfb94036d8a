/*
 * Time for the whole server: wall-clock milliseconds for timestamps the API
 * shows, a monotonic clock for durations (uptime, request timing), and the
 * one formatter of RFC 3339 UTC times with milliseconds the API promises.
 */
#include "parley/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Writes n decimal digits of v (zero-padded) at out. */
static void put_digits(char *out, int v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* The proleptic Gregorian date of a day count since 1970-01-01 (Howard
 * Hinnant's days-to-civil algorithm): pure arithmetic, where gmtime_r takes
 * glibc's time-zone lock on every call. */
static void civil_from_days(int64_t days, int *year, int *month, int *day)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;                                    /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                     /* [0, 11] */
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (*month <= 2));
}

/* Formatted by hand rather than with snprintf and gmtime_r: every message
 * view and log line carries timestamps, and the two were ~3% of a post's
 * instructions (and gmtime_r a lock shared by every thread). */
void clock_format_rfc3339(int64_t ms, char out[CLOCK_RFC3339_LEN])
{
    int64_t secs = ms / 1000;
    int millis = (int)(ms % 1000);
    if (millis < 0) {
        millis += 1000;
        secs -= 1;
    }
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int sod = (int)(secs - days * 86400);
    int year, month, day;
    civil_from_days(days, &year, &month, &day);
    /* YYYY-MM-DDTHH:MM:SS.mmmZ (years outside 0-9999 wrap, as before) */
    put_digits(out, ((year % 10000) + 10000) % 10000, 4);
    out[4] = '-';
    put_digits(out + 5, month, 2);
    out[7] = '-';
    put_digits(out + 8, day, 2);
    out[10] = 'T';
    put_digits(out + 11, sod / 3600, 2);
    out[13] = ':';
    put_digits(out + 14, sod / 60 % 60, 2);
    out[16] = ':';
    put_digits(out + 17, sod % 60, 2);
    out[19] = '.';
    put_digits(out + 20, millis, 3);
    out[23] = 'Z';
    out[CLOCK_RFC3339_LEN - 1] = '\0';
}
