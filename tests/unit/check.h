/* The checks of the C unit tests. CHECK(cond) or CHECK(cond, "what it shows"): a failure prints
 * "FAIL file:line: <what, or the condition's text>" and is counted; a passing check with a
 * description prints "ok   <what>". A test ends with `return check_done(__FILE__);` (non-zero
 * when any check failed). engine_check.h adds the numeric comparisons. */
#ifndef AC_TEST_CHECK_H
#define AC_TEST_CHECK_H

#include <stdio.h>

static int failures;

static inline int check_report(int ok, const char *file, int line, const char *what, const char *cond)
{
    if (!ok) {
        fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what[0] ? what : cond);
        failures++;
    } else if (what[0]) {
        printf("ok   %s\n", what);
    }
    return ok;
}

/* CHECK with one argument or two: the second, when given, describes the check */
#define CHECK(...) CHECK_PICK_(__VA_ARGS__, CHECK_WHAT_, CHECK_COND_, )(__VA_ARGS__)
#define CHECK_PICK_(a, b, name, ...) name
#define CHECK_WHAT_(cond, what) check_report(!!(cond), __FILE__, __LINE__, (what), #cond)
#define CHECK_COND_(cond) check_report(!!(cond), __FILE__, __LINE__, "", #cond)

static inline int check_done(const char *file)
{
    printf("%s: %d failed\n", file, failures);
    return failures ? 1 : 0;
}

#endif
