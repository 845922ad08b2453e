/* PRNG: determinism, save/restore by copying the state, ranges, moments, categorical. */
#include "engine_check.h"
#include "base/rng.h"

int main(void)
{
    ac_rng_t a, b;
    ac_rng_seed(&a, 123);
    ac_rng_seed(&b, 123);
    int same = 1;
    for (int i = 0; i < 1000; i++)
        same &= ac_rng_u64(&a) == ac_rng_u64(&b);
    CHECK(same);
    ac_rng_seed(&b, 124);
    CHECK(ac_rng_u64(&a) != ac_rng_u64(&b));
    ac_rng_t zero;
    ac_rng_seed(&zero, 0); /* seed 0 must not give the all-zero (stuck) state */
    CHECK(zero.s[0] | zero.s[1] | zero.s[2] | zero.s[3]);

    /* the state is the struct: a copy resumes the exact stream */
    ac_rng_t saved = a;
    double x1 = ac_rng_normal(&a), u1 = ac_rng_uniform(&a);
    a = saved;
    CHECK(ac_rng_normal(&a) == x1 && ac_rng_uniform(&a) == u1);

    /* ranges and moments over 200k draws: std of the mean is ~0.0022 (normal), 0.00065 (uniform) */
    enum { n = 200000 };
    double su = 0, sn = 0, sn2 = 0;
    int in_range = 1;
    for (int i = 0; i < n; i++) {
        float u = ac_rng_uniform(&a);
        double ud = ac_rng_uniform_double(&a);
        in_range &= u >= 0.0f && u < 1.0f && ud >= 0.0 && ud < 1.0;
        su += u;
        double z = ac_rng_normal(&a);
        sn += z;
        sn2 += z * z;
    }
    CHECK(in_range);
    check_scalar(su / n, 0.5, 0, 0.005, "uniform mean");
    check_scalar(sn / n, 0.0, 0, 0.015, "normal mean");
    check_scalar(sn2 / n, 1.0, 0, 0.02, "normal variance");

    /* categorical: zero (and negative) weights never drawn; frequencies follow p / sum(p) */
    float p[5] = {0.2f, 0.0f, 0.6f, -1.0f, 0.2f};
    int counts[5] = {0};
    for (int i = 0; i < n; i++)
        counts[ac_rng_categorical(&a, p, 5)]++;
    CHECK(counts[1] == 0 && counts[3] == 0);
    check_scalar(counts[2] / (double)n, 0.6, 0, 0.01, "categorical p=.6");
    check_scalar(counts[0] / (double)n, 0.2, 0, 0.01, "categorical p=.2");
    float none[2] = {0, 0};
    CHECK(ac_rng_categorical(&a, none, 2) == -1);
    return test_result("test_rng");
}
