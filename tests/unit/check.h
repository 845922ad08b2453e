/* Named checks for the C unit tests: each check prints "ok   <what>" or "FAIL file:line: <what>"
 * and counts failures; a test ends with `return check_done(__FILE__);` (non-zero on failure). */
#ifndef AC_TEST_CHECK_H
#define AC_TEST_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what);                         \
            failures++;                                                                            \
        } else {                                                                                   \
            printf("ok   %s\n", what);                                                             \
        }                                                                                          \
    } while (0)

static inline int check_done(const char *file)
{
    printf("%s: %d failed\n", file, failures);
    return failures ? 1 : 0;
}

#endif
