/* The sequence policy (engine/actor.h, kind "sequence", the API's default sizes: d_model 64,
 * 4 heads, 2 layers, d_ff 128, 4096 buckets, 128 tokens at most) timed two ways:
 *
 *   update   one GRPO update as the trainer runs it: reference forward + forward + loss (clipped
 *            ratio, k3 KL) + backward + global-norm clip + Adam, on 16 queries x 8 episodes x 4
 *            steps = 512 states of 32..96 tokens (a fixed LCG; bench/actor_torch.py draws the
 *            same lengths), each step three decisions: the tool (8 tools, ~3/4 legal), then two
 *            number arguments over the state's first 8 number tokens, the second given the first;
 *   rollout  one rollout-style forward: the 128 episodes' current states read at once, then
 *            each one's tool and both argument distributions (ac_actor_tool_logp, slot_logp).
 *
 * Medians (min, max) of R runs after 3 warm-up ones, the encoder's time per kernel kind, and
 * the projection sgemms' FLOP rate (Wqkv, Wo, W1, W2 in every forward and backward of the
 * update) against a 2048^3 sgemm measured in the same run. Peer: bench/actor_torch.py; both
 * side by side: bench/actor_bench.sh; results: bench/actor.md.
 *
 *     build/bench_actor [--threads N] [--enc-threads N] [--runs R]
 *
 * --threads sets the BLAS threads and, unless --enc-threads says otherwise, the encoder's
 * threads for attention and GELU. The last line (RESULT ...) is for bench/actor_bench.sh. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
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

enum { Q = 16, G = 8, T = 4, N = Q * G * T, ROLL = Q * G, MIN_LEN = 32, MAX_LEN = 96, NA = 8, NARGS = 2,
       NCAND = 8, DEC = 1 + NARGS, D = 64, NH = 4, L = 2, FF = 128, NB = 4096, WARM = 3 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* CPU time of the whole process (every BLAS and encoder thread): unlike wall time it does not
 * grow while other processes hold the cores. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Median GFLOP/s of an n^3 sgemm over reps calls, by wall time (returned) and per CPU-second of
 * the process (*per_cpu: with one thread, the core's rate whatever else runs on the machine). */
static double sgemm_peak(int n, int reps, double *per_cpu)
{
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    double t[16], tc[16];
    reps = reps > 16 ? 16 : reps;
    for (int r = 0; r < reps; r++) {
        double c0 = cpu_now(), t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        t[r] = now() - t0;
        tc[r] = cpu_now() - c0;
    }
    free(a);
    free(b);
    free(c);
    *per_cpu = 2.0 * n * n * n / ac_stats_median(tc, reps) / 1e9;
    return 2.0 * n * n * n / ac_stats_median(t, reps) / 1e9;
}

/* The projection sgemms of one update replayed alone, with the encoder's shapes and transposes
 * over n_tok rows: per layer Wqkv (D, 3D), Wo (D, D), W1 (D, F), W2 (F, D); two forwards
 * (reference, policy: out = inp W) and one backward (dW += inp^T dout, dinp = dout W^T). Wall
 * time returned, the process's CPU time in *cpu: on a machine shared with other work, CPU time
 * still says how fast the calls run on the core they get. */
static double replay_projections(int n_tok, double *cpu)
{
    const int shape[4][2] = {{D, 3 * D}, {D, D}, {D, FF}, {FF, D}};
    const size_t wide = (size_t)(3 * D > FF ? 3 * D : FF);
    float *a = malloc(sizeof(float) * n_tok * wide), *b = malloc(sizeof(float) * n_tok * wide);
    float *w = malloc(sizeof(float) * wide * wide), *dw = calloc(wide * wide, sizeof(float));
    float *da = malloc(sizeof(float) * n_tok * wide); /* dinp apart: the inputs stay as they are */
    for (size_t i = 0; i < (size_t)n_tok * wide; i++)
        a[i] = (float)(i % 7) * 0.01f, b[i] = (float)(i % 5) * 0.01f;
    for (size_t i = 0; i < wide * wide; i++)
        w[i] = (float)(i % 3) * 0.01f;
    double c0 = cpu_now(), t0 = now();
    for (int l = 0; l < L; l++)
        for (int k = 0; k < 4; k++) {
            const int C = shape[k][0], OC = shape[k][1];
            for (int f = 0; f < 2; f++) /* reference and policy forwards */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n_tok, OC, C, 1.0f, a, C, w, OC, 0.0f, b, OC);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, OC, n_tok, 1.0f, a, C, b, OC, 1.0f, dw, OC);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_tok, C, OC, 1.0f, b, OC, w, OC, 0.0f, da, C);
        }
    double t = now() - t0;
    *cpu = cpu_now() - c0;
    free(a), free(b), free(w), free(dw), free(da);
    return t;
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

/* State i's tokens: [cls], a query of ~40 %, then calls and results of 4 tokens each (older
 * first); every third token a number, some punctuation, words with affixes; random hashes and
 * copy flags (rendering contexts is not part of an update). Its first NCAND numbers are the
 * candidates of both argument slots (cand, token indices). */
static int make_state(ac_token_t *tok, int len, uint64_t *s, int *cand)
{
    int q = 1 + (len - 1) * 2 / 5, nc = 0;
    int seg_start = 1, count[AC_TOK_KINDS] = {0};
    tok[0] = (ac_token_t){.hash = lcg(s) << 31 | lcg(s), .kind = AC_TOK_SPECIAL, .seg = AC_SEG_CLS};
    for (int k = 1; k < len; k++) {
        int seg = AC_SEG_QUERY, age = 0;
        if (k > q) {
            int blk = (k - q - 1) / 4;
            seg = blk % 2 ? AC_SEG_RESULT : AC_SEG_CALL;
            age = 1 + (int)((len - k) / 8);
            age = age > AC_CONTEXT_MAX_AGE ? AC_CONTEXT_MAX_AGE : age;
            if ((k - q - 1) % 4 == 0)
                seg_start = k;
        }
        if (k > q && (k - q - 1) % 4 == 0) /* a new segment: ordinals restart */
            memset(count, 0, sizeof count);
        int kind = k % 3 == 1 ? AC_TOK_NUMBER : (k % 12 == 0 ? AC_TOK_PUNCT : AC_TOK_WORD);
        ac_token_t *t = &tok[k];
        *t = (ac_token_t){.hash = lcg(s) << 31 | lcg(s), .kind = (uint8_t)kind, .seg = (uint8_t)seg,
                          .age = (uint8_t)age, .flags = (uint8_t)(lcg(s) % 8), .pos = (uint8_t)(k - seg_start),
                          .ord = (uint8_t)(count[kind] > 15 ? 15 : count[kind])};
        count[kind]++;
        if (kind == AC_TOK_WORD)
            t->pre = (uint32_t)lcg(s) | 1, t->suf = (uint32_t)lcg(s) | 1;
        if (kind == AC_TOK_NUMBER) {
            t->value = (float)(lcg(s) % 4000) / 4.0f;
            if (nc < NCAND)
                cand[nc++] = k;
        }
    }
    return nc;
}

int main(int argc, char **argv)
{
    ac_blas_maybe_reexec(argc, argv);
    int threads = 1, enc_threads = 0, runs = 7;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--enc-threads") == 0)
            enc_threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
    }
    if (runs < 1 || runs > 1000)
        runs = 7;
    if (enc_threads < 1)
        enc_threads = threads;
    ac_err_t err = AC_ERR_INIT;
    if (ac_blas_selfcheck(&err) != 0) {
        ac_blas_fallback_reexec(argv, &err);
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    ac_blas_set_threads(threads);

    ac_actor_config_t pc = {.kind = AC_ACTOR_SEQUENCE, .reader = AC_ACTOR_READER_CURRENT, .n_tools = NA,
                            .max_tokens = 128, .seed = 1, .n_buckets = NB, .d_emb = 64, .enc = {D, NH, L, FF, 128}};
    for (int a = 0; a < NA; a++)
        pc.n_args[a] = NARGS;
    ac_actor_t *p = ac_actor_create(&pc, &err), *ref = p ? ac_actor_clone(p, &err) : NULL;
    ac_optim_config_t oc;
    ac_optim_config_default(&oc); /* lr 1e-3 on every parameter, as the peer */
    ac_optim_t *opt = p ? ac_optim_create(ac_actor_n_params(p), &oc, &err) : NULL;
    if (!p || !ref || !opt || ac_encoder_set_threads(ac_actor_encoder(p), enc_threads, &err) != 0 ||
        ac_encoder_set_threads(ac_actor_encoder(ref), enc_threads, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err.message);
        return 1;
    }

    ac_states_t S = {0};
    static ac_token_t tok[MAX_LEN];
    static int cand[N][NCAND];
    uint64_t seed = 42, hs = 7;
    for (int i = 0; i < N; i++) {
        int len = MIN_LEN + (int)(lcg(&seed) % (MAX_LEN - MIN_LEN + 1));
        if (make_state(tok, len, &hs, cand[i]) != NCAND) {
            fprintf(stderr, "state %d: fewer than %d numbers\n", i, NCAND);
            return 1;
        }
        ac_context_t ctx = {.n = len, .tok = tok};
        if (ac_states_add(&S, &ctx, &err) != i) {
            fprintf(stderr, "states: %s\n", err.message);
            return 1;
        }
    }
    const size_t n_tok = S.n_tok;

    /* Acting (not timed): each state's tool, then its two arguments, sampled from the policy. */
    ac_rng_t rng;
    ac_rng_seed(&rng, 7);
    uint8_t *mask = malloc((size_t)N * NA);
    for (int i = 0; i < N * NA; i++)
        mask[i] = (uint8_t)(i % NA == 0 || ac_rng_u64(&rng) % 4 != 0);
    const size_t LEN = (size_t)N * (NA + NARGS * NCAND);
    ac_decision_t *d = malloc(sizeof *d * N * DEC);
    ac_grpo_token_t *tk = malloc(sizeof *tk * N * DEC);
    ac_grpo_step_t *st = malloc(sizeof *st * N);
    int *prev = malloc(sizeof(int) * N);
    ac_grpo_episode_t ep[Q * G];
    float *logp = malloc(sizeof(float) * LEN), *ref_logp = malloc(sizeof(float) * LEN);
    float *dl = malloc(sizeof(float) * LEN);
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
            ac_actor_slot_logp(p, i, a, k, cand[i], NCAND, &prev[i], k, row);
            int c = ac_policy_sample(row, NCAND, 1.0f, &rng, &lt);
            d[n_d] = (ac_decision_t){i, a, k, off, NCAND, NULL, cand[i], &prev[i], k, c};
            tk[n_d++] = (ac_grpo_token_t){.step = i, .off = off, .n = NCAND, .chosen = c, .logp_old = lt};
            off += NCAND;
            if (k == 0)
                prev[i] = cand[i][c];
        }
        st[i] = (ac_grpo_step_t){.episode = i / T};
    }
    for (int e = 0; e < Q * G; e++)
        ep[e] = (ac_grpo_episode_t){.group = e / G, .reward = (float)(ac_rng_u64(&rng) % 2)};
    ac_grpo_config_t gc;
    ac_grpo_config_default(&gc);
    ac_grpo_advantages(st, NULL, N, ep, Q * G, &gc, &err);

    /* ---- the update ---- */
    enum { PH = 6 };
    const char *names[PH] = {"ref forward", "forward", "loss", "backward", "clip+adam", "total"};
    double *t = malloc(sizeof(double) * PH * runs), *t_sgemm = malloc(sizeof(double) * runs);
    double *t_attn = malloc(sizeof(double) * runs), *t_enc = malloc(sizeof(double) * runs);
    double *t_cpu = malloc(sizeof(double) * runs);
    ac_grpo_metrics_t m;
    int bad = 0;
    for (int r = 0; r < runs + WARM; r++) {
        ac_encoder_timing_t tm = {0};
        ac_encoder_set_timing(ac_actor_encoder(p), r >= WARM ? &tm : NULL);
        ac_encoder_set_timing(ac_actor_encoder(ref), r >= WARM ? &tm : NULL);
        double c0 = cpu_now(), t0 = now();
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
        if (r >= WARM) {
            double *row = t + (size_t)(r - WARM) * PH;
            row[0] = t1 - t0, row[1] = t2 - t1, row[2] = t3 - t2, row[3] = t4 - t3, row[4] = t5 - t4;
            row[5] = t5 - t0;
            t_sgemm[r - WARM] = tm.sgemm;
            t_cpu[r - WARM] = cpu_now() - c0;
            t_attn[r - WARM] = tm.attn;
            t_enc[r - WARM] = tm.sgemm + tm.bias + tm.attn + tm.norm + tm.gelu + tm.other;
        }
    }
    ac_encoder_set_timing(ac_actor_encoder(p), NULL);
    ac_encoder_set_timing(ac_actor_encoder(ref), NULL);
    double med[PH], mn[PH], mx[PH], *col = malloc(sizeof(double) * runs);
    for (int k = 0; k < PH; k++) {
        for (int r = 0; r < runs; r++)
            col[r] = t[(size_t)r * PH + k];
        med[k] = ac_stats_median(col, runs);
        mn[k] = col[0], mx[k] = col[runs - 1];
    }
    double med_cpu = ac_stats_median(t_cpu, runs);
    double med_sgemm = ac_stats_median(t_sgemm, runs), med_attn = ac_stats_median(t_attn, runs), med_enc = ac_stats_median(t_enc, runs);

    /* ---- the rollout-style forward: the first ROLL states (one per episode) ---- */
    double *t_roll = malloc(sizeof(double) * runs);
    float row[NA > NCAND ? NA : NCAND];
    double sink = 0;
    for (int r = 0; r < runs + WARM; r++) {
        double t0 = now();
        if (ac_actor_read(p, &S, 0, ROLL, &err) != 0) {
            fprintf(stderr, "rollout read: %s\n", err.message);
            return 1;
        }
        for (int i = 0; i < ROLL; i++) {
            ac_actor_tool_logp(p, i, mask + (size_t)i * NA, row);
            sink += row[0];
            for (int k = 0; k < NARGS; k++) {
                ac_actor_slot_logp(p, i, 1, k, cand[i], NCAND, cand[i], k, row);
                sink += row[0];
            }
        }
        if (r >= WARM)
            t_roll[r - WARM] = now() - t0;
    }
    double roll = ac_stats_median(t_roll, runs), roll_min = t_roll[0], roll_max = t_roll[runs - 1];

    /* Projection FLOPs: per forward, 2 n_tok (D 3D + D D + D F + F D) per layer; the backward
     * twice that (dW and dX; the first layer's dX feeds the embeddings); the update runs two
     * forwards (reference, policy) and one backward. */
    double proj_fwd = 2.0 * (double)n_tok * L * ((double)D * 3 * D + (double)D * D + 2.0 * D * FF);
    double proj = 4.0 * proj_fwd;
    double peak_cpu, peak = sgemm_peak(2048, 5, &peak_cpu);
    double *t_rep = malloc(sizeof(double) * runs), *c_rep = malloc(sizeof(double) * runs);
    for (int r = 0; r < runs + 1; r++) { /* one warm-up */
        double c, w = replay_projections((int)n_tok, &c);
        if (r >= 1)
            t_rep[r - 1] = w, c_rep[r - 1] = c;
    }
    double rep = ac_stats_median(t_rep, runs), rep_cpu = ac_stats_median(c_rep, runs);
    printf("agentcore C  sequence actor, kernel %s, %d BLAS thread(s), %d encoder thread(s), %d runs (after %d "
           "warm-up), %zu parameters\n",
           ac_blas_kernel(), threads, enc_threads, runs, WARM, ac_actor_n_params(p));
    printf("model: d_model %d, %d heads, %d layers, d_ff %d, %d buckets, %d tools x %d number arguments over %d "
           "candidates\n", D, NH, L, FF, NB, NA, NARGS, NCAND);
    printf("update batch: %d states (%d x %d x %d), %zu tokens (%d..%d, mean %.1f), %d decisions\n", N, Q, G, T,
           n_tok, MIN_LEN, MAX_LEN, (double)n_tok / N, n_d);
    for (int k = 0; k < PH; k++)
        printf("  %-12s %8.2f ms  (min %.2f, max %.2f)\n", names[k], 1e3 * med[k], 1e3 * mn[k], 1e3 * mx[k]);
    printf("  process CPU time per update: median %.2f ms\n", 1e3 * med_cpu);
    printf("  encoder, all kernels: %.2f ms; attention %.2f ms; projection sgemms %.2f ms\n", 1e3 * med_enc,
           1e3 * med_attn, 1e3 * med_sgemm);
    printf("  projection sgemms: %.2f GFLOP in %.2f ms = %.1f GFLOP/s = %.0f%% of the sgemm peak\n", proj / 1e9,
           1e3 * med_sgemm, proj / med_sgemm / 1e9, 100 * proj / med_sgemm / 1e9 / peak);
    printf("  the same sgemm calls replayed alone: %.2f ms = %.1f GFLOP/s = %.0f%% of the peak; per CPU-second "
           "%.1f GFLOP = %.0f%% of the peak's %.1f\n",
           1e3 * rep, proj / rep / 1e9, 100 * proj / rep / 1e9 / peak, proj / rep_cpu / 1e9,
           100 * (proj / rep_cpu) / (peak_cpu * 1e9), peak_cpu);
    printf("rollout forward: %d states, tool + 2 arguments each: %.2f ms (min %.2f, max %.2f)\n", ROLL, 1e3 * roll,
           1e3 * roll_min, 1e3 * roll_max);
    printf("  sgemm peak (2048^3, same run): %.1f GFLOP/s (%.1f GFLOP per CPU-second)\n", peak, peak_cpu);
    printf("  (loss %.4f, kl %.2e, entropy %.3f, clip %.2f, sum %.1f: sanity)\n", m.loss, m.kl_exact, m.entropy,
           m.clip_region, sink);
    printf("RESULT impl=C threads=%d update_ms=%.2f update_min=%.2f update_max=%.2f update_cpu_ms=%.2f rollout_ms=%.2f proj_gflops=%.1f "
           "peak_gflops=%.1f peak_cpu_gflops=%.1f "
           "replay_gflops=%.1f replay_cpu_gflops=%.1f\n",
           threads, 1e3 * med[PH - 1], 1e3 * mn[PH - 1], 1e3 * mx[PH - 1], 1e3 * med_cpu, 1e3 * roll, proj / med_sgemm / 1e9, peak, peak_cpu,
           proj / rep / 1e9, proj / rep_cpu / 1e9);
    free(t), free(t_sgemm), free(t_attn), free(t_enc), free(t_cpu), free(col), free(t_roll), free(t_rep), free(c_rep);
    free(mask), free(logp), free(ref_logp), free(dl), free(st), free(tk), free(d), free(prev);
    ac_states_free(&S);
    ac_actor_destroy(p);
    ac_actor_destroy(ref);
    ac_optim_destroy(opt);
    return 0;
}
