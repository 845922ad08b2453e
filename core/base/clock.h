/* Wall-clock and monotonic time, and the RFC 3339 timestamps the API returns. */
#ifndef AC_CLOCK_H
#define AC_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

int64_t ac_clock_now_ms(void);  /* wall clock, milliseconds since the epoch */
int64_t ac_clock_mono_ns(void); /* monotonic nanoseconds, for durations */

/* The CLOCK_REALTIME instant ms milliseconds from now: the deadline pthread_cond_timedwait takes. */
struct timespec ac_clock_deadline(int64_t ms);

/* Writes "2025-10-17T10:30:00Z" (or with ".123Z" when with_ms) for `ms` since the epoch into buf
 * (at least 32 bytes). Returns buf. */
char *ac_clock_iso8601(char *buf, size_t len, int64_t ms, int with_ms);

/* Reads what ac_clock_iso8601 writes ("2025-10-17T10:30:00Z", with or without ".123"). Returns 0
 * with *ms set, or -1 when text is not in that form. */
int ac_clock_parse_iso8601(const char *text, int64_t *ms);

#endif
