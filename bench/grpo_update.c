/* One GRPO update (reference forward + forward + loss + backward + clip + Adam) on
 * 16 queries x 8 trajectories x 20 steps = 2560 states, timed phase by phase, next to the sgemm
 * peak of this machine measured in the same run. Peers with the same sizes and the same update:
 * bench/grpo_update_numpy.py, bench/grpo_update_torch.py. See bench/README.md.
 *
 *     grpo_update [--threads N] [--runs R]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/blas.h"
#include "engine/grpo.h"
#include "engine/optim.h"
#include "engine/policy.h"

enum { Q = 16, G = 8, T = 20, N = Q * G * T, F = 48, NB = 32768, D = 64, H1 = 256, H2 = 256, NA = 16 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* Median GFLOP/s of C (m, n) = A (m, k) . B (k, n) with the given transposes, over `reps` calls.
 * The operand buffers only need to be large enough; their values do not matter for speed. */
static double sgemm_gflops(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, int reps)
{
    float *a = calloc((size_t)m * k, sizeof(float)), *b = calloc((size_t)k * n, sizeof(float));
    float *c = calloc((size_t)m * n, sizeof(float));
    for (size_t i = 0; i < (size_t)m * k; i++)
        a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)k * n; i++)
        b[i] = (float)(i % 5) * 0.1f;
    double t[32];
    reps = reps > 32 ? 32 : reps;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, ta == CblasNoTrans ? k : m, b,
                    tb == CblasNoTrans ? n : k, 0.0f, c, n);
        t[r] = now() - t0;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * m * n * k / median(t, reps) / 1e9;
}

int main(int argc, char **argv)
{
    ac_blas_maybe_reexec(argc, argv);
    int threads = 2, runs = 21;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
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

    ac_policy_config_t pc = {.n_buckets = NB, .d_emb = D, .n_hidden = 2, .hidden = {H1, H2},
                             .activation = AC_POLICY_TANH, .n_actions = NA, .max_features = F,
                             .seed = 1};
    ac_policy_t *p = ac_policy_create(&pc, &err), *ref = ac_policy_clone(p, &err);
    ac_optim_config_t oc;
    ac_optim_config_default(&oc);
    ac_optim_t *opt = ac_optim_create(p->n_params, &oc, &err);
    if (!p || !ref || !opt) {
        fprintf(stderr, "setup: %s\n", err.message);
        return 1;
    }
    /* Synthetic rollouts: F random feature ids per state (featurizing text is not part of an
     * update), ~3/4 of the actions legal, 16 groups x 8 episodes x 20 steps, 0/1 rewards. */
    ac_rng_t rng;
    ac_rng_seed(&rng, 7);
    ac_policy_batch_t b;
    ac_policy_batch_init(&b, &pc, N, &err);
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < F; k++)
            b.ids[i * F + k] = (int)(ac_rng_u64(&rng) % NB);
        b.offsets[i + 1] = (i + 1) * F;
    }
    b.n = N;
    uint8_t *mask = malloc((size_t)N * NA);
    for (int i = 0; i < N * NA; i++)
        mask[i] = (uint8_t)(i % NA == 0 || ac_rng_u64(&rng) % 4 != 0);
    float *logp = malloc(sizeof(float) * N * NA), *ref_logp = malloc(sizeof(float) * N * NA);
    float *dl = malloc(sizeof(float) * N * NA);
    ac_grpo_step_t *st = malloc(sizeof *st * N);
    ac_grpo_token_t *tk = malloc(sizeof *tk * N);
    ac_grpo_episode_t ep[Q * G];
    ac_policy_forward(p, logp, &b, mask, &err);
    for (int i = 0; i < N; i++) {
        float lt;
        int a = ac_policy_sample(logp + (size_t)i * NA, NA, 1.0f, &rng, &lt);
        st[i] = (ac_grpo_step_t){.episode = i / T};
        tk[i] = (ac_grpo_token_t){.step = i, .off = (size_t)i * NA, .n = NA, .chosen = a, .logp_old = lt};
    }
    for (int e = 0; e < Q * G; e++)
        ep[e] = (ac_grpo_episode_t){.group = e / G, .reward = (float)(ac_rng_u64(&rng) % 2)};
    ac_grpo_config_t gc;
    ac_grpo_config_default(&gc);
    ac_grpo_advantages(st, NULL, N, ep, Q * G, &gc, &err);

    enum { PH = 6 };
    const char *names[PH] = {"ref forward", "forward", "loss", "backward", "clip+adam", "total"};
    double *t = malloc(sizeof(double) * PH * (runs + 3));
    ac_grpo_metrics_t m;
    for (int r = 0; r < runs + 3; r++) { /* 3 warm-up runs, not counted */
        double t0 = now();
        ac_policy_forward(ref, ref_logp, &b, mask, &err);
        double t1 = now();
        ac_policy_forward(p, logp, &b, mask, &err);
        double t2 = now();
        ac_grpo_loss(dl, &m, logp, ref_logp, (size_t)N * NA, tk, N, st, N, ep, Q * G, &gc, &err);
        double t3 = now();
        ac_policy_zero_grad(p);
        ac_policy_backward(p, dl, &b, &err);
        double t4 = now();
        ac_optim_clip_grad_norm(p->grads, p->n_params, 1.0);
        ac_optim_step(opt, p->params, p->grads);
        double t5 = now();
        if (r >= 3) {
            double *row = t + (size_t)(r - 3) * PH;
            row[0] = t1 - t0, row[1] = t2 - t1, row[2] = t3 - t2, row[3] = t4 - t3, row[4] = t5 - t4;
            row[5] = t5 - t0;
        }
    }
    double med[PH], col[1000];
    for (int k = 0; k < PH; k++) {
        for (int r = 0; r < runs; r++)
            col[r] = t[(size_t)r * PH + k];
        med[k] = median(col, runs);
    }
    /* Dense FLOPs: forward 2*N*sum(in*out); backward twice that (dW and dX per layer). */
    double fwd = 2.0 * N * ((double)D * H1 + (double)H1 * H2 + (double)H2 * NA);
    double dense_time = med[0] + med[1] + med[3];
    printf("agentcore C  kernel %s, %d BLAS thread(s), %d runs (median), %zu parameters\n",
           ac_blas_kernel(), threads, runs, p->n_params);
    printf("model: %d states, %d ids/state, E %dx%d, hidden %d-%d tanh, %d actions\n", N, F, NB, D, H1,
           H2, NA);
    for (int k = 0; k < PH; k++)
        printf("  %-12s %8.2f ms\n", names[k], 1e3 * med[k]);
    printf("  dense FLOPs per update %.2f GFLOP; fwd+ref+bwd phases %.1f GFLOP/s (include the "
           "embedding bag, softmax, activations)\n",
           4 * fwd / 1e9, 4 * fwd / dense_time / 1e9);
    /* The same sgemm shapes alone: what the dense layers reach without the rest. */
    int dims[4] = {D, H1, H2, NA};
    double sg_time = 0;
    for (int l = 0; l < 3; l++) {
        double fl = 2.0 * N * dims[l] * dims[l + 1];
        sg_time += fl / sgemm_gflops(CblasNoTrans, CblasNoTrans, N, dims[l + 1], dims[l], 9) * 2;
        sg_time += fl / sgemm_gflops(CblasTrans, CblasNoTrans, dims[l], dims[l + 1], N, 9);
        sg_time += fl / sgemm_gflops(CblasNoTrans, CblasTrans, N, dims[l], dims[l + 1], 9);
    }
    printf("  same sgemm shapes alone: %.1f GFLOP/s\n", 4 * fwd / sg_time);
    printf("  sgemm peak (2048^3, same run): %.1f GFLOP/s\n",
           sgemm_gflops(CblasNoTrans, CblasNoTrans, 2048, 2048, 2048, 5));
    printf("  (loss %.4f, kl %.2e: sanity)\n", m.loss, m.kl_exact);
    free(t);
    free(mask);
    free(logp);
    free(ref_logp);
    free(dl);
    free(st);
    free(tk);
    ac_policy_batch_free(&b);
    ac_policy_destroy(p);
    ac_policy_destroy(ref);
    ac_optim_destroy(opt);
    return 0;
}
