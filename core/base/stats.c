#include "base/stats.h"

#include <math.h>

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
