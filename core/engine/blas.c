#include "engine/blas.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

const char *ac_blas_cpu_coretype(void)
{
#if defined(__x86_64__) || defined(__i386__)
    /* libgcc's feature bits include the XGETBV check that the OS saves the AVX/AVX-512 state:
     * a CPU flag alone is not enough (a VM may hide the registers). */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

int ac_blas_maybe_reexec(int argc, char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") != NULL || getenv("AGENTCORE_NO_REEXEC") != NULL)
        return 0;
    const char *core = ac_blas_cpu_coretype();
    if (core == NULL || argc < 1 || argv == NULL || argv[argc] != NULL)
        return 0;
    /* The child sees OPENBLAS_CORETYPE set, so it never re-executes again: no loop. */
    if (setenv("OPENBLAS_CORETYPE", core, 1) != 0 || setenv("AGENTCORE_BLAS_AUTO", core, 1) != 0)
        goto fail;
    execv("/proc/self/exe", argv);
fail:
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("AGENTCORE_BLAS_AUTO");
    return -1;
}

int ac_blas_fallback_reexec(char **argv, ac_err_t *err)
{
    if (getenv("AGENTCORE_BLAS_AUTO") == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL,
                          "OpenBLAS kernel %s failed its self-check and was not chosen "
                          "automatically: nothing to fall back to",
                          ac_blas_kernel());
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("AGENTCORE_BLAS_AUTO");
    setenv("AGENTCORE_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    return ac_err_set(err, AC_ERR_INTERNAL, "re-exec with the default OpenBLAS kernel failed");
}

const char *ac_blas_kernel(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

void ac_blas_set_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }

/* Deterministic fill in [-1, 1) (an LCG): the check must not depend on rng.c or on a seed. */
static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

int ac_blas_selfcheck(ac_err_t *err)
{
    /* Odd sizes hit every edge path of the blocked kernels (M, N, K not multiples of the
     * register tile or cache block); B is transposed and beta != 0 to cover more of the code. */
    enum { M = 333, K = 1029, N = 257 };
    float *a = malloc(sizeof(float) * M * K);  /* (M, K) */
    float *bt = malloc(sizeof(float) * N * K); /* (N, K): B transposed */
    float *c = malloc(sizeof(float) * M * N);  /* (M, N): result */
    float *c0 = malloc(sizeof(float) * M * N); /* (M, N): C before the call, for the reference */
    int rc = -1;
    if (!a || !bt || !c || !c0) {
        ac_err_set(err, AC_ERR_INTERNAL, "blas self-check: out of memory");
        goto out;
    }
    fill(a, (size_t)M * K, 1);
    fill(bt, (size_t)N * K, 2);
    fill(c, (size_t)M * N, 3);
    fill(c0, (size_t)M * N, 3);
    const float alpha = 0.75f, beta = 0.5f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, alpha, a, K, bt, K, beta, c, N);
    double worst = 0.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0, mag = 0.0;
            for (int k = 0; k < K; k++) {
                double p = (double)a[(size_t)i * K + k] * bt[(size_t)j * K + k];
                s += p;
                mag += fabs(p);
            }
            double ref = alpha * s + beta * c0[(size_t)i * N + j];
            double scale = alpha * mag + fabs(beta * c0[(size_t)i * N + j]);
            /* Relative to the sum of magnitudes: a cancelling dot product has a tiny result
             * whose plain relative error says nothing about the kernel. */
            double e = fabs(c[(size_t)i * N + j] - ref) / (scale > 0 ? scale : 1.0);
            if (!(e <= worst)) /* NaN-safe */
                worst = e;
        }
    if (!(worst <= 1e-4)) {
        ac_err_set(err, AC_ERR_INTERNAL,
                   "OpenBLAS kernel %s failed its self-check: max relative error %.3g > 1e-4",
                   ac_blas_kernel(), worst);
        goto out;
    }
    rc = 0;
out:
    free(a);
    free(bt);
    free(c);
    free(c0);
    return rc;
}
