/* RFC 3339 timestamps: the per-thread cache of the last second's text must write what gmtime_r
 * and snprintf write, at every instant (second and day boundaries, leap days, far years), and
 * what it writes must parse back. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "base/clock.h"

/* The reference: the format written out in full each time. */
static void reference(char *buf, size_t len, int64_t ms, int with_ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char full[96];
    gmtime_r(&s, &tm);
    if (with_ms)
        snprintf(full, sizeof full, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    else
        snprintf(full, sizeof full, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
    size_t n = strlen(full) < len ? strlen(full) : len - 1; /* cut as snprintf cuts */
    memcpy(buf, full, n);
    buf[n] = 0;
}

/* Whether ac_clock_iso8601 writes the reference's text for ms, with and without milliseconds. */
static int same(int64_t ms)
{
    for (int with_ms = 0; with_ms <= 1; with_ms++) {
        char got[40], want[40];
        memset(got, 'x', sizeof got);
        ac_clock_iso8601(got, sizeof got, ms, with_ms);
        reference(want, sizeof want, ms, with_ms);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "  ms %lld: got '%s', want '%s'\n", (long long)ms, got, want);
            return 0;
        }
    }
    return 1;
}

int main(void)
{
    int ok = 1;
    for (int64_t ms = 1764633599000LL - 1500; ms < 1764633599000LL + 2500 && ok; ms += 7) /* a day's end */
        ok = same(ms);
    CHECK(ok, "every 7 ms across a second and a day boundary, in order");
    ok = 1;
    const int64_t spots[] = {0, 999, 1000, 951782400000LL /* 2000-02-29 */, 1764633600123LL, 1764633599999LL,
                             253402300799999LL /* 9999-12-31T23:59:59.999 */, 253402300800000LL /* year 10000 */,
                             1764633600123LL, 5, 1764633600124LL};
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++)
        ok &= same(spots[i]);
    CHECK(ok, "out of order: the epoch, a leap day, years 9999 and 10000, back and forth");
    uint64_t x = 88172645463325252ULL;
    ok = 1;
    for (int i = 0; i < 20000 && ok; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ok = same((int64_t)(x % 4102444800000ULL)); /* up to 2100 */
    }
    CHECK(ok, "20000 random instants up to 2100");

    char small[12];
    ac_clock_iso8601(small, sizeof small, 1764633600123LL, 1);
    char want[12];
    reference(want, sizeof want, 1764633600123LL, 1);
    CHECK(strcmp(small, want) == 0, "a short buffer is cut as snprintf cuts it");

    char buf[40];
    int64_t back = 0;
    ac_clock_iso8601(buf, sizeof buf, 1764633600123LL, 1);
    CHECK(ac_clock_parse_iso8601(buf, &back) == 0 && back == 1764633600123LL, "parses back");
    return check_done(__FILE__);
}
