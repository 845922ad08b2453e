/* Encoder forward + backward (core/encoder.h) on 768 packed sequences of 16..64 tokens (mean
 * ~40), D 64, 4 heads, 2 layers, MLP 256: median, min and max of R repetitions, time per kind of
 * kernel, and the GFLOP/s of the projection sgemms next to a 2048^3 sgemm measured in the same
 * run (the machine's peak). Peer with the same model and work in PyTorch:
 * bench/encoder_torch.py. See bench/README.md.
 *
 *     build/bench_encoder [--threads 1|2] [--runs R] [--simd sse|avx2] [--enc-threads N]
 *
 * --threads sets the BLAS threads and, unless --enc-threads says otherwise, the encoder's
 * threads for attention and GELU (ac_encoder_set_threads).
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/stats.h"
#include "engine/blas.h"
#include "engine/encoder.h"

enum { B = 768, D = 64, H = 4, L = 2, FF = 256, MIN_LEN = 16, MAX_LEN = 64 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* CPU time of the calling thread: with one BLAS thread all the work runs on it, and unlike wall
 * time it does not grow when other processes share the cores. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Median GFLOP/s of a square n^3 sgemm over reps calls. */
static double sgemm_peak(int n, int reps)
{
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    double t[16];
    reps = reps > 16 ? 16 : reps;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        t[r] = now() - t0;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * n / ac_stats_median(t, reps) / 1e9;
}

/* The sequence lengths: a 64-bit LCG (Knuth's MMIX constants) from a fixed seed, uniform in
 * MIN_LEN..MAX_LEN; bench/encoder_torch.py draws the same ones. */
static void draw_lengths(int *len, int n)
{
    uint64_t s = 42;
    for (int b = 0; b < n; b++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        len[b] = MIN_LEN + (int)((s >> 33) % (MAX_LEN - MIN_LEN + 1));
    }
}

int main(int argc, char **argv)
{
    ac_blas_maybe_reexec(argc, argv);
    int threads = 1, runs = 21, enc_threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--enc-threads") == 0)
            enc_threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--simd") == 0 && ac_encoder_simd_force(argv[i + 1]) != 0) {
            fprintf(stderr, "--simd %s: not available on this CPU\n", argv[i + 1]);
            return 1;
        }
    }
    if (runs < 1 || runs > 1000)
        runs = 21;
    ac_err_t err = AC_ERR_INIT;
    if (ac_blas_selfcheck(&err) != 0) {
        ac_blas_fallback_reexec(argv, &err);
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    ac_blas_set_threads(threads);

    ac_encoder_config_t cfg = {.d_model = D, .n_heads = H, .n_layers = L, .d_ff = FF, .max_len = MAX_LEN};
    int len[B], offsets[B + 1];
    draw_lengths(len, B);
    offsets[0] = 0;
    long long sum_sq = 0;
    for (int b = 0; b < B; b++) {
        offsets[b + 1] = offsets[b] + len[b];
        sum_sq += (long long)len[b] * len[b];
    }
    const int N = offsets[B];
    size_t np = ac_encoder_n_params(&cfg);
    float *params = malloc(sizeof(float) * np), *grads = calloc(np, sizeof(float));
    float *X = malloc(sizeof(float) * N * D), *Y = malloc(sizeof(float) * N * D);
    float *dY = malloc(sizeof(float) * N * D), *dX = malloc(sizeof(float) * N * D);
    ac_rng_t rng;
    ac_rng_seed(&rng, 1);
    ac_encoder_init(params, &cfg, &rng);
    for (size_t i = 0; i < (size_t)N * D; i++) {
        X[i] = (float)ac_rng_normal(&rng);
        dY[i] = (float)ac_rng_normal(&rng); /* the loss sum(Y * R) has dL/dY = R */
    }
    ac_encoder_t *e = ac_encoder_create(&cfg, &err);
    /* the attention and GELU kernels get as many threads as BLAS unless told otherwise */
    if (enc_threads < 1)
        enc_threads = threads;
    if (e == NULL || ac_encoder_reserve(e, N, B, &err) != 0 || ac_encoder_set_threads(e, enc_threads, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err.message);
        return 1;
    }

    enum { WARM = 3 };
    double *t_fwd = malloc(sizeof(double) * runs), *t_bwd = malloc(sizeof(double) * runs);
    double *t_tot = malloc(sizeof(double) * runs), *t_cpu = malloc(sizeof(double) * runs);
    enum { NK = 6 };
    const char *kinds[NK] = {"sgemm", "bias", "attention", "layernorm", "gelu", "other"};
    double *t_kind = malloc(sizeof(double) * NK * runs);
    for (int r = 0; r < runs + WARM; r++) {
        ac_encoder_timing_t tm = {0};
        ac_encoder_set_timing(e, r >= WARM ? &tm : NULL);
        memset(grads, 0, sizeof(float) * np); /* outside the clock: the trainer's zero_grad */
        double c0 = cpu_now(), t0 = now();
        if (ac_encoder_forward(e, Y, params, X, offsets, B, &err) != 0)
            break;
        double t1 = now();
        if (ac_encoder_backward(e, dX, grads, params, dY, &err) != 0)
            break;
        double t2 = now(), c2 = cpu_now();
        if (r >= WARM) {
            int k = r - WARM;
            t_cpu[k] = c2 - c0;
            t_fwd[k] = t1 - t0, t_bwd[k] = t2 - t1, t_tot[k] = t2 - t0;
            double v[NK] = {tm.sgemm, tm.bias, tm.attn, tm.norm, tm.gelu, tm.other};
            for (int j = 0; j < NK; j++)
                t_kind[(size_t)j * runs + k] = v[j];
        }
    }
    if (err.code != 0) {
        fprintf(stderr, "run: %s\n", err.message);
        return 1;
    }
    /* Projection FLOPs: forward 2 N (D 3D + D D + D F + F D) per layer; backward twice that (dW
     * and dX). Attention: 4 T^2 dh per sequence and head forward (q k^T, P v), 10 backward (the
     * recomputed q k^T, do v^T, dS k, dS^T q, P^T do). */
    double proj = 3.0 * L * 2.0 * N * ((double)D * 3 * D + (double)D * D + 2.0 * D * FF);
    double attn = 14.0 * L * H * (double)sum_sq * (D / H);
    double med_tot = ac_stats_median(t_tot, runs), mn = t_tot[0], mx = t_tot[runs - 1];
    double med_fwd = ac_stats_median(t_fwd, runs), med_bwd = ac_stats_median(t_bwd, runs);
    double med_kind[NK];
    for (int j = 0; j < NK; j++)
        med_kind[j] = ac_stats_median(t_kind + (size_t)j * runs, runs);
    double peak = sgemm_peak(2048, 5);

    printf("agentcore C encoder  kernel %s, %d BLAS thread(s), %d encoder thread(s), %d runs (after %d warm-up), "
           "%s attention/GELU\n", ac_blas_kernel(), threads, enc_threads, runs, WARM, ac_encoder_simd());
    printf("model: D %d, %d heads, %d layers, MLP %d, %zu parameters\n", D, H, L, FF, np);
    printf("batch: %d sequences of %d..%d tokens, %d tokens in total (mean %.1f)\n", B, MIN_LEN, MAX_LEN, N,
           (double)N / B);
    printf("  forward + backward  median %8.2f ms   min %.2f  max %.2f\n", 1e3 * med_tot, 1e3 * mn, 1e3 * mx);
    printf("  forward             median %8.2f ms\n", 1e3 * med_fwd);
    double med_cpu = ac_stats_median(t_cpu, runs);
    printf("  (calling thread's CPU time: median %.2f ms, min %.2f)\n", 1e3 * med_cpu, 1e3 * t_cpu[0]);
    printf("  backward            median %8.2f ms\n", 1e3 * med_bwd);
    printf("  per kind (medians, forward + backward):\n");
    for (int j = 0; j < NK; j++)
        printf("    %-10s %8.2f ms  %5.1f%%\n", kinds[j], 1e3 * med_kind[j], 100 * med_kind[j] / med_tot);
    printf("  projection sgemms: %.2f GFLOP in %.2f ms = %.1f GFLOP/s = %.0f%% of the sgemm peak\n", proj / 1e9,
           1e3 * med_kind[0], proj / med_kind[0] / 1e9, 100 * proj / med_kind[0] / 1e9 / peak);
    printf("  attention: %.2f GFLOP in %.2f ms = %.1f GFLOP/s\n", attn / 1e9, 1e3 * med_kind[2],
           attn / med_kind[2] / 1e9);
    printf("  sgemm peak (2048^3, same run): %.1f GFLOP/s\n", peak);
    double cs = 0;
    for (size_t i = 0; i < np; i++)
        cs += grads[i] * grads[i];
    printf("  (sum Y*R %.4f, |grad| %.4f: sanity)\n",
           /* the loss of the last run, to compare with the torch peer */
           ({
               double s = 0;
               for (size_t i = 0; i < (size_t)N * D; i++)
                   s += (double)Y[i] * dY[i];
               s;
           }),
           sqrt(cs));
    ac_encoder_destroy(e);
    free(params);
    free(grads);
    free(X);
    free(Y);
    free(dY);
    free(dX);
    free(t_fwd);
    free(t_bwd);
    free(t_tot);
    free(t_cpu);
    free(t_kind);
    return 0;
}
