/* Small file helpers shared by the config and experiment loaders. */
#ifndef AC_FILE_H
#define AC_FILE_H

#include <stddef.h>

/* Reads a whole file. Returns a malloc'd, NUL-terminated buffer (the caller frees it) and its
 * length in *len (may be NULL), or NULL when the file cannot be read (errno says why). */
char *ac_file_read(const char *path, size_t *len);

/* mkdir -p. Returns 0, or -1 with errno set. */
int ac_file_mkdirs(const char *path);

/* The directory part of path ("." when it has none), written into buf. */
char *ac_file_dirname(char *buf, size_t len, const char *path);

#endif
