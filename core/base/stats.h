/* Statistics for comparing a trained policy with its baseline on the same queries. */
#ifndef AC_STATS_H
#define AC_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Exact two-sided McNemar test on paired successes: b = queries only the baseline solved,
 * c = queries only the trained policy solved. p = min(1, 2 * P[X <= min(b, c)]) for
 * X ~ Binomial(b + c, 1/2); 1 when b + c = 0. */
double ac_stats_mcnemar_exact(int b, int c);

/* Wilson score interval for k successes in n trials at z (1.96 for 95 %). n = 0 gives [0, 1]. */
void ac_stats_wilson(int k, int n, double z, double *lo, double *hi);

/* Paired sign-flip permutation test of mean(d) = 0 for per-query differences d (n values),
 * two-sided. Exact over all 2^n sign patterns when n <= 20, else `rounds` random patterns from
 * `seed` (with the observed pattern counted, so p > 0). */
double ac_stats_sign_flip(const double *d, int n, int rounds, uint64_t seed);

/* Mean of x (n values) and its two-sided 95 % confidence interval from Student's t with n - 1
 * degrees of freedom (across seeds: mean +- t * sd / sqrt(n), sd the sample standard deviation).
 * n = 1 gives the value itself as all three; n = 0 gives NaN. */
void ac_stats_mean_ci95(const double *x, int n, double *mean, double *lo, double *hi);

/* The median of x (n values), which it sorts ascending in place (so x[0] and x[n - 1] are then
 * the min and max); the mean of the middle two for even n; NaN for n = 0. */
double ac_stats_median(double *x, int n);

#endif
