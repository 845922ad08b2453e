/* Random (version 4) UUIDs for job, checkpoint and trajectory ids. */
#ifndef AC_UUID_H
#define AC_UUID_H

#include <stddef.h>

#define AC_UUID_LEN 36 /* without the terminating NUL */

/* Writes a new lowercase v4 UUID and a NUL into out (at least 37 bytes). Returns 0, or -1 when
 * the kernel's random source fails. Thread-safe. */
int ac_uuid_v4(char out[AC_UUID_LEN + 1]);

/* 1 when s (len bytes) is a UUID in the 8-4-4-4-12 hex form (any version, either case). */
int ac_uuid_valid(const char *s, size_t len);

#endif
