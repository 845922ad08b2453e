#include "base/stats.h"

#include <math.h>
#include <stdlib.h>

#include "base/rng.h"

double ac_stats_mcnemar_exact(int b, int c)
{
    int n = b + c;
    if (n == 0)
        return 1.0;
    int k = b < c ? b : c;
    /* P[X <= k] summed in log space: n can be in the thousands */
    double log_half_n = n * log(0.5), cdf = 0.0;
    for (int i = 0; i <= k; i++)
        cdf += exp(lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0) + log_half_n);
    double p = 2.0 * cdf;
    return p < 1.0 ? p : 1.0;
}

void ac_stats_wilson(int k, int n, double z, double *lo, double *hi)
{
    if (n <= 0) {
        *lo = 0.0;
        *hi = 1.0;
        return;
    }
    double p = (double)k / n, z2 = z * z;
    double denom = 1.0 + z2 / n;
    double centre = (p + z2 / (2.0 * n)) / denom;
    double half = z * sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom;
    *lo = centre - half < 0.0 ? 0.0 : centre - half;
    *hi = centre + half > 1.0 ? 1.0 : centre + half;
}

double ac_stats_sign_flip(const double *d, int n, int rounds, uint64_t seed)
{
    if (n == 0)
        return 1.0;
    double observed = 0.0;
    for (int i = 0; i < n; i++)
        observed += d[i];
    observed = fabs(observed);
    /* a pattern counts when its |sum| reaches the observed one (with float slack) */
    double tol = 1e-9 * (1.0 + observed);
    if (n <= 20) {
        long total = 1L << n, hits = 0;
        for (long mask = 0; mask < total; mask++) {
            double s = 0.0;
            for (int i = 0; i < n; i++)
                s += (mask >> i & 1) ? -d[i] : d[i];
            hits += fabs(s) >= observed - tol;
        }
        return (double)hits / (double)total;
    }
    ac_rng_t rng;
    ac_rng_seed(&rng, seed);
    long hits = 1; /* the observed pattern */
    for (int r = 0; r < rounds; r++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += (ac_rng_u64(&rng) >> 63) ? -d[i] : d[i];
        hits += fabs(s) >= observed - tol;
    }
    return (double)hits / (double)(rounds + 1);
}

/* t quantile 0.975 for 1..30 degrees of freedom; beyond, the normal's 1.96 is within 3 %. */
static const double t975[31] = {NAN,   12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                2.201, 2.179,  2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080,
                                2.074, 2.069,  2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};

void ac_stats_mean_ci95(const double *x, int n, double *mean, double *lo, double *hi)
{
    if (n <= 0) {
        *mean = *lo = *hi = NAN;
        return;
    }
    double s = 0;
    for (int i = 0; i < n; i++)
        s += x[i];
    double m = s / n, ss = 0;
    for (int i = 0; i < n; i++)
        ss += (x[i] - m) * (x[i] - m);
    *mean = m;
    if (n == 1) {
        *lo = *hi = m;
        return;
    }
    double half = (n - 1 <= 30 ? t975[n - 1] : 1.96) * sqrt(ss / (n - 1)) / sqrt((double)n);
    *lo = m - half;
    *hi = m + half;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double ac_stats_median(double *x, int n)
{
    if (n <= 0)
        return NAN;
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}
