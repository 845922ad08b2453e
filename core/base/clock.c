#include "base/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t ac_clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ac_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static char *iso8601_slow(char *buf, size_t len, int64_t ms, int with_ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    if (with_ms)
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    else
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

char *ac_clock_iso8601(char *buf, size_t len, int64_t ms, int with_ms)
{
    /* Every step of a rollout is stamped, and gmtime_r with snprintf cost ~5k instructions a
     * call (4 % of a rollout): the thread keeps the last second's text, and only the
     * milliseconds change within it. */
    static _Thread_local int64_t last_s = -1;
    static _Thread_local char last[32];
    static _Thread_local size_t last_len;
    if (ms < 0 || len < 32)
        return iso8601_slow(buf, len, ms, with_ms);
    int64_t s = ms / 1000;
    if (s != last_s) {
        time_t t = (time_t)s;
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL)
            return iso8601_slow(buf, len, ms, with_ms);
        int n = snprintf(last, sizeof last, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (n < 0 || (size_t)n >= sizeof last)
            return iso8601_slow(buf, len, ms, with_ms);
        last_len = (size_t)n;
        last_s = s;
    }
    if (last_len + 6 > len)
        return iso8601_slow(buf, len, ms, with_ms);
    char *p = buf + last_len;
    memcpy(buf, last, last_len);
    if (with_ms) {
        int f = (int)(ms % 1000);
        *p++ = '.';
        *p++ = (char)('0' + f / 100);
        *p++ = (char)('0' + f / 10 % 10);
        *p++ = (char)('0' + f % 10);
    }
    *p++ = 'Z';
    *p = 0;
    return buf;
}

int ac_clock_parse_iso8601(const char *text, int64_t *ms)
{
    struct tm tm = {0};
    int frac = 0, n = 0, used = 0;
    if (text == NULL || sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                               &tm.tm_min, &tm.tm_sec, &used) != 6)
        return -1;
    const char *p = text + used;
    if (*p == '.' && sscanf(p, ".%3d%n", &frac, &n) == 1)
        p += n;
    if (p[0] != 'Z' || p[1] != '\0')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return 0;
}

struct timespec ac_clock_deadline(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}
