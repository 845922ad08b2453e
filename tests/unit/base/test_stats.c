/* McNemar, Wilson and the sign-flip test against values computed by hand or by scipy. */
#include <math.h>
#include <stdio.h>

#include "base/stats.h"

static int failures;
static void check_close(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol)) {
        fprintf(stderr, "FAIL %s: got %.10g want %.10g\n", what, got, want);
        failures++;
    } else {
        printf("ok   %s (%.6g)\n", what, got);
    }
}

int main(void)
{
    double odd[] = {3, 1, 2}, even[] = {4, 1, 3, 2};
    check_close(ac_stats_median(odd, 3), 2.0, 0, "median of an odd count: the middle value");
    check_close(odd[0] + 10 * odd[2], 1.0 + 30.0, 0, "median sorts its values (min first, max last)");
    check_close(ac_stats_median(even, 4), 2.5, 0, "median of an even count: the mean of the middle two");
    check_close(isnan(ac_stats_median(even, 0)), 1.0, 0, "median of nothing is NaN");
    /* scipy.stats.binomtest(k, n, 0.5).pvalue */
    check_close(ac_stats_mcnemar_exact(0, 0), 1.0, 0, "mcnemar no discordant pairs");
    check_close(ac_stats_mcnemar_exact(0, 10), 2.0 / 1024.0, 1e-12, "mcnemar 0 vs 10");
    check_close(ac_stats_mcnemar_exact(3, 12), 0.03515625, 1e-9, "mcnemar 3 vs 12");
    check_close(ac_stats_mcnemar_exact(5, 5), 1.0, 0, "mcnemar balanced is capped at 1");
    check_close(ac_stats_mcnemar_exact(2, 40), 2.0 * (1.0 + 42.0 + 861.0) / pow(2.0, 42), 1e-20,
                "mcnemar 2 vs 40 (tiny p)");
    double lo, hi;
    ac_stats_wilson(45, 50, 1.96, &lo, &hi); /* (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), computed by hand */
    check_close(lo, 0.786395, 1e-5, "wilson 45/50 low");
    check_close(hi, 0.956525, 1e-5, "wilson 45/50 high");
    ac_stats_wilson(0, 10, 1.96, &lo, &hi);
    check_close(lo, 0.0, 1e-12, "wilson 0/10 low");
    check_close(hi, 0.2775, 1e-4, "wilson 0/10 high");
    /* exact sign flip: d = 1,1,1,1 -> only the all-plus and all-minus patterns reach 4: 2/16 */
    double d4[] = {1, 1, 1, 1};
    check_close(ac_stats_sign_flip(d4, 4, 0, 1), 2.0 / 16.0, 1e-12, "sign flip exact, 4 positives");
    double dz[] = {1, -1, 1, -1};
    check_close(ac_stats_sign_flip(dz, 4, 0, 1), 1.0, 1e-12, "sign flip exact, mean zero");
    /* 50 differences of +1: Monte Carlo p close to its floor 1/(rounds+1) */
    double d50[50];
    for (int i = 0; i < 50; i++)
        d50[i] = 1.0;
    check_close(ac_stats_sign_flip(d50, 50, 9999, 7), 1.0 / 10000.0, 1e-12, "sign flip Monte Carlo, strong effect");
    for (int i = 0; i < 50; i++)
        d50[i] = i % 2 ? 0.5 : -0.5;
    double p = ac_stats_sign_flip(d50, 50, 9999, 7);
    check_close(p, 1.0, 1e-12, "sign flip Monte Carlo, no effect");
    printf("%s: %d failed\n", __FILE__, failures);
    return failures ? 1 : 0;
}
