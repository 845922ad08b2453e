/* Shared checks for the GRPO engine's unit tests (test_policy, test_grpo, test_optim,
 * test_checkpoint, test_blas). Header-only: each test is one translation unit. */
#ifndef AC_ENGINE_CHECK_H
#define AC_ENGINE_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* |a - b| <= atol + rtol * |b| element-wise (b is the reference). Prints the worst element and
 * counts a failure when any element is out; NaN in either is out. Returns 1 when all close. */
static inline int check_close_d(const double *a, const double *b, size_t n, double rtol, double atol,
                         const char *name)
{
    size_t worst = 0, bad = 0;
    double worst_excess = -INFINITY, max_diff = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs(a[i] - b[i]), lim = atol + rtol * fabs(b[i]);
        if (!(diff <= lim))
            bad++;
        max_diff = diff > max_diff ? diff : max_diff;
        double excess = isnan(diff) ? INFINITY : diff - lim;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (bad) {
        fprintf(stderr, "FAIL %-22s %zu/%zu out of tolerance (rtol %g atol %g); worst [%zu]: %.9g vs ref %.9g\n",
                name, bad, n, rtol, atol, worst, n ? a[worst] : 0.0, n ? b[worst] : 0.0);
        failures++;
        return 0;
    }
    fprintf(stderr, "ok   %-22s n=%-5zu max|diff| %.3g\n", name, n, max_diff);
    return 1;
}

static inline int check_close(const float *a, const float *b, size_t n, double rtol, double atol,
                       const char *name)
{
    double *da = malloc(sizeof(double) * (n ? n : 1)), *db = malloc(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        da[i] = a[i];
        db[i] = b[i];
    }
    int ok = check_close_d(da, db, n, rtol, atol, name);
    free(da);
    free(db);
    return ok;
}

static inline int check_scalar(double a, double b, double rtol, double atol, const char *name)
{
    return check_close_d(&a, &b, 1, rtol, atol, name);
}

static inline int test_result(const char *prog)
{
    if (failures)
        fprintf(stderr, "%s: %d check(s) FAILED\n", prog, failures);
    else
        fprintf(stderr, "%s: all checks passed\n", prog);
    return failures ? 1 : 0;
}

#endif
