/* One GRPO update of the bag actor (the trainer's default policy, engine/actor.h): reference
 * forward + forward + loss + backward + clip + Adam on 16 queries x 8 trajectories x 20 steps =
 * 2560 states of 24 tokens, each step three decisions (the tool, then two argument slots pointing
 * at the state's 8 number tokens, the second given the first's choice), timed phase by phase next
 * to the sgemm peak of this machine measured in the same run. Peers with the same sizes and the
 * same update: bench/grpo_update_numpy.py, bench/grpo_update_torch.py. See bench/README.md.
 *
 *     grpo_update [--threads N] [--runs R]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/stats.h"
#include "engine/actor.h"
#include "engine/blas.h"
#include "engine/grpo.h"
#include "engine/optim.h"
#include "engine/policy.h"

/* NTOK tokens per state: NCAND of them numbers (the candidates of both slots), the others words.
 * The bag reads NTOK unigrams + (NTOK - 1) bigrams per state (F = 47 hashed ids), each candidate
 * 8 hashed ids (its text, two neighbours each side, segment/age, kind/flags, ordinal). */
enum { Q = 16, G = 8, T = 20, N = Q * G * T, NTOK = 24, NCAND = 8, NB = 32768, D = 64, H = 256, NA = 16,
       NARGS = 2, DEC = 1 + NARGS };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Median GFLOP/s of C (m, n) = A (m, k) . B (k, n) over `reps` calls. */
static double sgemm_gflops(int m, int n, int k, int reps)
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
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
        t[r] = now() - t0;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * m * n * k / ac_stats_median(t, reps) / 1e9;
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

    ac_actor_config_t pc = {.kind = AC_ACTOR_BAG, .reader = AC_ACTOR_READER_CURRENT, .n_tools = NA, .max_tokens = 64,
                            .seed = 1, .n_buckets = NB, .d_emb = D, .hidden = H};
    for (int a = 0; a < NA; a++)
        pc.n_args[a] = NARGS;
    ac_actor_t *p = ac_actor_create(&pc, &err), *ref = p ? ac_actor_clone(p, &err) : NULL;
    ac_optim_config_t oc;
    ac_optim_config_default(&oc); /* lr 1e-3 on every parameter, as the peers */
    ac_optim_t *opt = p ? ac_optim_create(ac_actor_n_params(p), &oc, &err) : NULL;
    if (!p || !ref || !opt) {
        fprintf(stderr, "setup: %s\n", err.message);
        return 1;
    }
    /* Synthetic states: random token hashes (rendering contexts is not part of an update). */
    ac_rng_t rng;
    ac_rng_seed(&rng, 7);
    ac_states_t S = {0};
    ac_token_t tok[NTOK];
    int cand[NCAND];
    for (int k = 0; k < NCAND; k++)
        cand[k] = 1 + 3 * k; /* every third token is a number */
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < NTOK; k++) {
            int number = k % 3 == 1;
            tok[k] = (ac_token_t){.hash = ac_rng_u64(&rng), .kind = number ? AC_TOK_NUMBER : AC_TOK_WORD,
                                  .seg = k < 12 ? AC_SEG_QUERY : (k < 18 ? AC_SEG_CALL : AC_SEG_RESULT),
                                  .age = k < 12 ? 0 : 1, .flags = (uint8_t)(ac_rng_u64(&rng) % 8),
                                  .pos = (uint8_t)k, .value = number ? (float)(ac_rng_u64(&rng) % 100) : 0.0f};
        }
        ac_context_t ctx = {.n = NTOK, .tok = tok};
        if (ac_states_add(&S, &ctx, &err) != i) {
            fprintf(stderr, "states: %s\n", err.message);
            return 1;
        }
    }
    /* Acting (not timed): each state's tool among ~3/4 legal ones, then its two arguments. */
    uint8_t *mask = malloc((size_t)N * NA);
    for (int i = 0; i < N * NA; i++)
        mask[i] = (uint8_t)(i % NA == 0 || ac_rng_u64(&rng) % 4 != 0);
    const size_t LEN = (size_t)N * (NA + NARGS * NCAND);
    ac_decision_t *d = malloc(sizeof *d * N * DEC);
    ac_grpo_token_t *tk = malloc(sizeof *tk * N * DEC);
    ac_grpo_step_t *st = malloc(sizeof *st * N);
    int *prev = malloc(sizeof(int) * N);
    ac_grpo_episode_t ep[Q * G];
    float *logp = malloc(sizeof(float) * LEN), *ref_logp = malloc(sizeof(float) * LEN), *dl = malloc(sizeof(float) * LEN);
    if (ac_actor_read(p, &S, 0, N, &err) != 0) {
        fprintf(stderr, "read: %s\n", err.message);
        return 1;
    }
    size_t off = 0;
    int n_d = 0;
    for (int i = 0; i < N; i++) {
        float row[NA > NCAND ? NA : NCAND], lt;
        ac_actor_tool_logp(p, i, mask + (size_t)i * NA, row);
        int a = ac_policy_sample(row, NA, 1.0f, &rng, &lt);
        d[n_d] = (ac_decision_t){i, a, -1, off, NA, mask + (size_t)i * NA, NULL, NULL, 0, a};
        tk[n_d++] = (ac_grpo_token_t){.step = i, .off = off, .n = NA, .chosen = a, .logp_old = lt};
        off += NA;
        for (int k = 0; k < NARGS; k++) {
            ac_actor_slot_logp(p, i, a, k, cand, NCAND, &prev[i], k, row);
            int c = ac_policy_sample(row, NCAND, 1.0f, &rng, &lt);
            d[n_d] = (ac_decision_t){i, a, k, off, NCAND, NULL, cand, &prev[i], k, c};
            tk[n_d++] = (ac_grpo_token_t){.step = i, .off = off, .n = NCAND, .chosen = c, .logp_old = lt};
            off += NCAND;
            if (k == 0)
                prev[i] = cand[c];
        }
        st[i] = (ac_grpo_step_t){.episode = i / T};
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
    int bad = 0;
    for (int r = 0; r < runs + 3; r++) { /* 3 warm-up runs, not counted */
        double t0 = now();
        bad |= ac_actor_forward(ref, &S, 0, N, d, n_d, ref_logp, &err);
        double t1 = now();
        bad |= ac_actor_forward(p, &S, 0, N, d, n_d, logp, &err);
        double t2 = now();
        bad |= ac_grpo_loss(dl, &m, logp, ref_logp, LEN, tk, n_d, st, N, ep, Q * G, &gc, &err);
        double t3 = now();
        ac_actor_zero_grad(p);
        bad |= ac_actor_backward(p, dl, &err);
        double t4 = now();
        ac_optim_clip_grad_norm(ac_actor_grads(p), ac_actor_n_params(p), 1.0);
        ac_optim_step(opt, ac_actor_params(p), ac_actor_grads(p));
        double t5 = now();
        if (bad) {
            fprintf(stderr, "update: %s\n", err.message);
            return 1;
        }
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
        med[k] = ac_stats_median(col, runs);
    }
    /* Dense FLOPs of a forward: the bag layer (D x H per state), the tool head (H x NA), and per
     * state the pointer queries: slot 0 h Wq and Wk q, slot 1 the same plus psum U (H x H each),
     * and the candidates' scores (2 x NCAND x H). The backward does about twice that. */
    double fwd = 2.0 * N * ((double)D * H + (double)H * NA + 5.0 * H * H + 2.0 * NCAND * H);
    double dense_time = med[0] + med[1] + med[3];
    printf("agentcore C  bag actor, kernel %s, %d BLAS thread(s), %d runs (median), %zu parameters\n",
           ac_blas_kernel(), threads, runs, ac_actor_n_params(p));
    printf("model: %d states x %d tokens (%d ids/state), E %dx%d, hidden %d relu, %d tools x %d number "
           "arguments over %d candidates; %d decisions\n",
           N, NTOK, 2 * NTOK - 1, NB, D, H, NA, NARGS, NCAND, n_d);
    for (int k = 0; k < PH; k++)
        printf("  %-12s %8.2f ms\n", names[k], 1e3 * med[k]);
    printf("  dense FLOPs per update %.2f GFLOP; fwd+ref+bwd phases %.1f GFLOP/s (include the "
           "embedding bags, softmaxes, activations)\n",
           4 * fwd / 1e9, 4 * fwd / dense_time / 1e9);
    printf("  sgemm peak (2048^3, same run): %.1f GFLOP/s\n", sgemm_gflops(2048, 2048, 2048, 5));
    printf("  (loss %.4f, kl %.2e, entropy %.3f, clip %.2f: sanity)\n", m.loss, m.kl_exact, m.entropy,
           m.clip_region);
    free(t);
    free(mask);
    free(logp);
    free(ref_logp);
    free(dl);
    free(st);
    free(tk);
    free(d);
    free(prev);
    ac_states_free(&S);
    ac_actor_destroy(p);
    ac_actor_destroy(ref);
    ac_optim_destroy(opt);
    return 0;
}
