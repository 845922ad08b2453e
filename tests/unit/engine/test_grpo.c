/* GRPO: advantages, loss gradients w.r.t. logits vs finite differences for every loss type and
 * term, clip-fraction semantics, metrics, errors, and a learning sanity run.
 *
 * `test_grpo --dump FILE` writes fixed inputs and this build's results (forward, advantages,
 * loss, gradients, one clipped Adam update) as JSON for tests/ref/grpo_ref.py, the NumPy
 * reference, which ctest runs as ref_grpo. */
#include <stdlib.h>
#include <time.h>

#include "engine/blas.h"
#include "engine_check.h"
#include "engine/grpo.h"
#include "engine/optim.h"
#include "engine/policy.h"

/* ---- advantages ----------------------------------------------------------------------------- */

static void test_advantages(void)
{
    ac_grpo_config_t cfg;
    ac_grpo_config_default(&cfg);
    /* group 0: rewards 1 0 0 1 (mean .5, std .5); group 1: 2 2 (zero variance); group 2: 3, a
     * group of one, judged against the batch (mean 9/7, std sqrt(19/7 - 81/49)) */
    ac_grpo_episode_t eps[7] = {{0, 1, 0}, {0, 0, 0}, {0, 0, 0}, {0, 1, 0},
                                {1, 2, 0}, {1, 2, 0}, {2, 3, 0}};
    ac_grpo_step_t st[8];
    memset(st, 0, sizeof st);
    for (int t = 0; t < 7; t++)
        st[t].episode = t;
    st[7].episode = 0; /* a second step of episode 0: same advantage */
    ac_grpo_metrics_t m;
    ac_err_t err = AC_ERR_INIT;
    CHECK(ac_grpo_advantages(st, &m, 8, eps, 7, &cfg, &err) == 0);
    double a = 0.5 / (0.5 + 1e-4), bsd = sqrt(19.0 / 7 - 81.0 / 49), b = (3 - 9.0 / 7) / (bsd + 1e-4);
    double want[8] = {a, -a, -a, a, 0, 0, b, a}, got[8];
    for (int t = 0; t < 8; t++)
        got[t] = st[t].advantage;
    check_close_d(got, want, 8, 1e-6, 1e-7, "adv std");
    check_scalar(m.avg_reward, 9.0 / 7, 1e-12, 0, "avg_reward");
    check_scalar(m.reward_std, 0.5 / 3, 1e-12, 0, "reward_std"); /* groups: .5, 0, 0 */
    check_scalar(m.zero_var_frac, 2.0 / 3, 1e-12, 0, "zero_var_frac");
    CHECK(m.n_groups == 3);

    cfg.scale_std = 0; /* Dr. GRPO: no division by std */
    CHECK(ac_grpo_advantages(st, NULL, 8, eps, 7, &cfg, &err) == 0);
    double want2[8] = {.5, -.5, -.5, .5, 0, 0, 3 - 9.0 / 7, .5};
    for (int t = 0; t < 8; t++)
        got[t] = st[t].advantage;
    check_close_d(got, want2, 8, 1e-7, 0, "adv no-std");

    uint8_t zv[3];
    CHECK(ac_grpo_zero_variance_groups(zv, 3, eps, 7, &err) == 2);
    CHECK(zv[0] == 0 && zv[1] == 1 && zv[2] == 1);
    CHECK(ac_grpo_zero_variance_groups(zv, 2, eps, 7, &err) == -1); /* group 2 out of range */
    ac_err_clear(&err);

    /* per-step rewards, gamma .5. Episode 0 (group 0): rewards 0, 0, 1 -> returns .25 .5 1;
     * episode 1 (group 0): 0, 0 -> 0 0; interleaved in the step array (time order kept). */
    ac_grpo_episode_t e2[2] = {{0, 1, 0}, {0, 0, 0}};
    ac_grpo_step_t s2[5];
    memset(s2, 0, sizeof s2);
    int ep_of[5] = {0, 1, 0, 1, 0};
    float rw[5] = {0, 0, 0, 0, 1};
    for (int t = 0; t < 5; t++) {
        s2[t].episode = ep_of[t];
        s2[t].reward = rw[t];
    }
    cfg.scale_std = 1;
    cfg.per_step_rewards = 1;
    cfg.gamma = 0.5f;
    CHECK(ac_grpo_advantages(s2, &m, 5, e2, 2, &cfg, &err) == 0);
    double ret[5] = {0.25, 0, 0.5, 0, 1}, mu = 1.75 / 5, var = 0;
    for (int t = 0; t < 5; t++)
        var += (ret[t] - mu) * (ret[t] - mu) / 5;
    double want3[5];
    for (int t = 0; t < 5; t++) {
        want3[t] = (ret[t] - mu) / (sqrt(var) + 1e-4);
        got[t] = s2[t].advantage;
    }
    check_close_d(got, want3, 5, 1e-6, 1e-7, "adv per-step");
    check_scalar(m.avg_reward, 0.5, 1e-12, 0, "avg_reward/ps");

    st[0].episode = 9;
    CHECK(ac_grpo_advantages(st, NULL, 8, eps, 7, &cfg, &err) == -1 && err.code == AC_ERR_INVALID_PARAMS);
    ac_err_clear(&err);
}

/* ---- loss gradients vs finite differences ------------------------------------------------- */

enum { N = 6, A = 5, NS = 8, NE = 4 };

typedef struct {
    float logits[N * A];
    uint8_t mask[N * A];
    float ref_logp[N * A];
    ac_grpo_step_t st[NS];
    ac_grpo_token_t tk[NS]; /* one decision per step: the action at its state's row */
    ac_grpo_episode_t ep[NE];
} fixture_t;

/* Ratios are set well away from the clip boundaries (0.8 and 1.28 here) so that a finite
 * difference never crosses one. */
static void make_fixture(fixture_t *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < N * A; i++) {
        f->logits[i] = (float)(((i * 37) % 17) - 8) / 5.0f;
        f->mask[i] = (uint8_t)((i % A) == (i / A) % A || (i * 11) % 3 != 0);
    }
    float ref_logits[N * A];
    for (int i = 0; i < N * A; i++)
        ref_logits[i] = f->logits[i] + (float)(((i * 13) % 7) - 3) / 4.0f;
    ac_policy_log_softmax_forward(f->ref_logp, ref_logits, f->mask, N, A);
    float logp[N * A];
    ac_policy_log_softmax_forward(logp, f->logits, f->mask, N, A);
    /* episodes: 0, 1 in group 0; 2, 3 in group 1; episode 3 truncated */
    ac_grpo_episode_t ep[NE] = {{0, 1, 0}, {0, 0, 0}, {1, 0.5f, 0}, {1, 0, 1}};
    memcpy(f->ep, ep, sizeof ep);
    int state[NS] = {0, 1, 2, 3, 4, 5, 0, 2}; /* steps 6 and 7 share rows 0 and 2 */
    int episode[NS] = {0, 0, 0, 1, 2, 3, 1, 3};
    float ratio[NS] = {1.0f, 1.5f, 0.6f, 0.9f, 1.1f, 2.0f, 0.5f, 1.05f};
    float adv[NS] = {0.7f, 1.2f, -0.8f, -1.0f, 0.4f, -0.3f, 1.5f, -2.0f};
    for (int t = 0; t < NS; t++) {
        ac_grpo_step_t *s = &f->st[t];
        ac_grpo_token_t *k = &f->tk[t];
        s->episode = episode[t];
        s->advantage = adv[t];
        k->step = t;
        k->off = (size_t)state[t] * A;
        k->n = A;
        for (k->chosen = (t * 3) % A; !f->mask[k->off + k->chosen]; k->chosen = (k->chosen + 1) % A)
            ;
        float lp = logp[k->off + k->chosen];
        k->logp_old = lp - logf(ratio[t]);
        k->logp_ref = f->ref_logp[k->off + k->chosen];
    }
}

/* loss at logits z (N, A) */
static double loss_at(const fixture_t *f, const float *z, const ac_grpo_config_t *cfg,
                      ac_grpo_metrics_t *m, float *dlogits)
{
    float logp[N * A], dz[N * A];
    ac_policy_log_softmax_forward(logp, z, f->mask, N, A);
    ac_grpo_metrics_t mm;
    ac_err_t err = AC_ERR_INIT;
    if (ac_grpo_loss(dlogits ? dlogits : dz, m ? m : &mm, logp, f->ref_logp, N * A, f->tk, NS, f->st, NS,
                     f->ep, NE, cfg, &err) != 0) {
        fprintf(stderr, "loss: %s\n", err.message);
        failures++;
        return NAN;
    }
    return (m ? m : &mm)->loss;
}

static void check_grad_fd(const ac_grpo_config_t *cfg, const char *label)
{
    fixture_t f;
    make_fixture(&f);
    float dl[N * A], fd[N * A], z[N * A];
    loss_at(&f, f.logits, cfg, NULL, dl);
    memcpy(z, f.logits, sizeof z);
    for (int i = 0; i < N * A; i++) {
        float orig = z[i], up = orig + 2e-3f, dn = orig - 2e-3f;
        z[i] = up;
        double lp = loss_at(&f, z, cfg, NULL, NULL);
        z[i] = dn;
        double lm = loss_at(&f, z, cfg, NULL, NULL);
        z[i] = orig;
        fd[i] = f.mask[i] ? (float)((lp - lm) / ((double)up - dn)) : 0.0f;
    }
    /* Float logp carries ~1e-7 rounding, divided by the 4e-3 step: ~5e-5 noise at most. */
    char name[64];
    snprintf(name, sizeof name, "dlogits/%s", label);
    check_close(dl, fd, N * A, 1e-2, 1e-4, name);
    double s = 0;
    for (int i = 0; i < N * A; i++)
        s += fabs(dl[i]);
    CHECK(s > 1e-2); /* not vacuous */
    for (int i = 0; i < N * A; i++)
        CHECK(f.mask[i] || dl[i] == 0.0f); /* no gradient into illegal logits */
}

static void test_loss_gradients(void)
{
    ac_grpo_config_t cfg;
    ac_grpo_config_default(&cfg);
    cfg.kl_beta = 0.3f;
    cfg.entropy_coef = 0.05f;
    cfg.clip_eps_high = 0.28f;
    cfg.max_tokens = 4;
    const char *names[3] = {"grpo", "dr_grpo", "dapo"};
    for (int lt = 0; lt < 3; lt++) {
        cfg.loss_type = lt;
        cfg.mask_truncated = 0;
        check_grad_fd(&cfg, names[lt]);
        cfg.mask_truncated = 1;
        char name[64];
        snprintf(name, sizeof name, "%s+masktrunc", names[lt]);
        check_grad_fd(&cfg, name);
    }
    /* each term alone */
    ac_grpo_config_default(&cfg);
    cfg.kl_beta = 0; /* surrogate only */
    check_grad_fd(&cfg, "surrogate");
    fixture_t f;
    make_fixture(&f);
    cfg.kl_beta = 1.0f; /* KL only: zero advantages */
    for (int t = 0; t < NS; t++)
        f.st[t].advantage = 0;
    float dl[N * A], z[N * A], fd[N * A];
    ac_grpo_config_t kc = cfg, ec = cfg;
    ec.kl_beta = 0;
    ec.entropy_coef = 1.0f; /* entropy only */
    const ac_grpo_config_t *only[2] = {&kc, &ec};
    const char *only_name[2] = {"dlogits/kl-only", "dlogits/entropy-only"};
    for (int k = 0; k < 2; k++) {
        loss_at(&f, f.logits, only[k], NULL, dl);
        memcpy(z, f.logits, sizeof z);
        for (int i = 0; i < N * A; i++) {
            float orig = z[i], up = orig + 2e-3f, dn = orig - 2e-3f;
            z[i] = up;
            double lp = loss_at(&f, z, only[k], NULL, NULL);
            z[i] = dn;
            double lm = loss_at(&f, z, only[k], NULL, NULL);
            z[i] = orig;
            fd[i] = f.mask[i] ? (float)((lp - lm) / ((double)up - dn)) : 0.0f;
        }
        check_close(dl, fd, N * A, 1e-2, 1e-4, only_name[k]);
    }
}

/* ---- loss values, clip fraction, metrics -------------------------------------------------- */

static void test_clip_fraction_and_metrics(void)
{
    /* one state per step, 3 legal actions, uniform policy */
    enum { S = 6 };
    float logp[S * 3], dl[S * 3];
    for (int i = 0; i < S * 3; i++)
        logp[i] = logf(1.0f / 3);
    /* (ratio, advantage): clipping removes the gradient only in the 1st and 3rd case */
    float r[S] = {1.5f, 1.5f, 0.5f, 0.5f, 1.0f, 1.0f};
    float adv[S] = {1, -1, -1, 1, 1, -1};
    int removed[S] = {1, 0, 1, 0, 0, 0};
    ac_grpo_step_t st[S];
    ac_grpo_token_t tk[S];
    ac_grpo_episode_t ep[S];
    memset(st, 0, sizeof st);
    for (int t = 0; t < S; t++) {
        st[t] = (ac_grpo_step_t){.episode = t, .advantage = adv[t]};
        tk[t] = (ac_grpo_token_t){.step = t, .off = (size_t)t * 3, .n = 3, .chosen = 1,
                                  .logp_old = logp[0] - logf(r[t]), .logp_ref = logp[0]};
        ep[t] = (ac_grpo_episode_t){.group = 0, .reward = 0, .truncated = 0};
    }
    ac_grpo_config_t cfg;
    ac_grpo_config_default(&cfg);
    cfg.kl_beta = 0;
    cfg.loss_type = AC_GRPO_LOSS_DAPO;
    ac_grpo_metrics_t m;
    ac_err_t err = AC_ERR_INIT;
    CHECK(ac_grpo_loss(dl, &m, logp, logp, S * 3, tk, S, st, S, ep, S, &cfg, &err) == 0);
    check_scalar(m.clip_high, 1.0 / 6, 0, 1e-12, "clip_high");
    check_scalar(m.clip_low, 1.0 / 6, 0, 1e-12, "clip_low");
    check_scalar(m.clip_region, 4.0 / 6, 0, 1e-12, "clip_region");
    for (int t = 0; t < S; t++) {
        double g = fabs(dl[t * 3]) + fabs(dl[t * 3 + 1]) + fabs(dl[t * 3 + 2]);
        CHECK(removed[t] ? g == 0 : g > 0);
    }
    /* loss = mean of -min(rA, clip(r)A): -1.2, 1.5, 0.8(=-(0.5*-1)... see below), -0.5, -1, 1 */
    double surr[S] = {-1.2, 1.5, 0.8, -0.5, -1.0, 1.0};
    double want = 0;
    for (int t = 0; t < S; t++)
        want += surr[t] / S;
    check_scalar(m.loss, want, 1e-6, 1e-7, "dapo loss");
    check_scalar(m.kl_exact, 0, 0, 1e-7, "kl_exact=0");
    check_scalar(m.kl_k3, 0, 0, 1e-7, "kl_k3=0");
    check_scalar(m.entropy, log(3.0), 1e-6, 0, "entropy uniform");
    check_scalar(m.ratio_max, 1.5, 1e-6, 0, "ratio_max");

    /* exact KL against a different reference: pi uniform over 3, ref (.5, .25, .25) */
    float ref[S * 3];
    for (int t = 0; t < S; t++) {
        ref[t * 3] = logf(0.5f);
        ref[t * 3 + 1] = ref[t * 3 + 2] = logf(0.25f);
    }
    CHECK(ac_grpo_loss(dl, &m, logp, ref, S * 3, tk, S, st, S, ep, S, &cfg, &err) == 0);
    double kl = (log(1.0 / 3 / 0.5) + 2 * log(1.0 / 3 / 0.25)) / 3;
    check_scalar(m.kl_exact, kl, 1e-5, 0, "kl_exact");
    double d = log(0.25) - log(1.0 / 3); /* k3 at the taken action 1 */
    check_scalar(m.kl_k3, exp(d) - d - 1, 1e-5, 0, "kl_k3");
    /* without a ref matrix k3 uses the tokens' logp_ref and exact KL is unknown */
    CHECK(ac_grpo_loss(dl, &m, logp, NULL, S * 3, tk, S, st, S, ep, S, &cfg, &err) == 0);
    CHECK(isnan(m.kl_exact) && fabs(m.kl_k3) < 1e-7);

    /* errors: illegal choice, options out of range, dr_grpo without max_tokens */
    logp[4] = -INFINITY; /* state 1, action 1 */
    CHECK(ac_grpo_loss(dl, &m, logp, NULL, S * 3, tk, S, st, S, ep, S, &cfg, &err) == -1);
    CHECK(strstr(err.message, "illegal") != NULL);
    logp[4] = NAN; /* diverged parameters: an internal error, not "illegal action" */
    CHECK(ac_grpo_loss(dl, &m, logp, NULL, S * 3, tk, S, st, S, ep, S, &cfg, &err) == -1 &&
          err.code == AC_ERR_INTERNAL);
    logp[4] = logf(1.0f / 3);
    tk[2].off = (size_t)S * 3;
    CHECK(ac_grpo_loss(dl, &m, logp, NULL, S * 3, tk, S, st, S, ep, S, &cfg, &err) == -1);
    tk[2].off = 6;
    cfg.loss_type = AC_GRPO_LOSS_DR_GRPO;
    CHECK(ac_grpo_loss(dl, &m, logp, NULL, S * 3, tk, S, st, S, ep, S, &cfg, &err) == -1 &&
          err.code == AC_ERR_INVALID_PARAMS);
    ac_err_clear(&err);
}

/* Aggregation by loss type, by hand: episodes of 1, 2 and 3 steps, ratio 1, no KL, so each
 * step's loss is -A_t with A_t = 1..6. */
static void test_loss_aggregation(void)
{
    enum { S = 6 };
    float logp[S * 2], dl[S * 2];
    for (int i = 0; i < S * 2; i++)
        logp[i] = logf(0.5f);
    ac_grpo_episode_t ep[3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 1}}; /* the 3-step one is truncated */
    int ep_of[S] = {0, 1, 1, 2, 2, 2};
    ac_grpo_step_t st[S];
    ac_grpo_token_t tk[S];
    for (int t = 0; t < S; t++) {
        st[t] = (ac_grpo_step_t){.episode = ep_of[t], .advantage = (float)(t + 1)};
        tk[t] = (ac_grpo_token_t){.step = t, .off = (size_t)t * 2, .n = 2, .chosen = 0, .logp_old = logp[0]};
    }
    ac_grpo_config_t cfg;
    ac_grpo_config_default(&cfg);
    cfg.kl_beta = 0;
    cfg.max_tokens = 4;
    ac_grpo_metrics_t m;
    ac_err_t err = AC_ERR_INIT;
    /* {loss_type, mask_truncated, expected} */
    struct { int lt, mt; double want; const char *name; } cases[] = {
        {AC_GRPO_LOSS_GRPO, 0, -(1 + 2.5 + 5) / 3.0, "agg grpo"},
        {AC_GRPO_LOSS_DR_GRPO, 0, -21 / 12.0, "agg dr_grpo"},
        {AC_GRPO_LOSS_DAPO, 0, -21 / 6.0, "agg dapo"},
        {AC_GRPO_LOSS_GRPO, 1, -(1 + 2.5) / 2.0, "agg grpo/mask"},
        {AC_GRPO_LOSS_DR_GRPO, 1, -6 / 12.0, "agg dr_grpo/mask"}, /* the normaliser is constant */
        {AC_GRPO_LOSS_DAPO, 1, -6 / 3.0, "agg dapo/mask"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        cfg.loss_type = cases[k].lt;
        cfg.mask_truncated = cases[k].mt;
        CHECK(ac_grpo_loss(dl, &m, logp, NULL, S * 2, tk, S, st, S, ep, 3, &cfg, &err) == 0);
        check_scalar(m.loss, cases[k].want, 1e-6, 0, cases[k].name);
        CHECK(m.n_tokens_used == (cases[k].mt ? 3 : 6));
    }
}

/* mu = 1: logp_old equals the current logp, every ratio is 1, and per group the advantages are
 * mean-zero, so the surrogate loss is ~0 while its gradient is not. docs/grpo.md explains it. */
static void test_loss_near_zero_at_mu1(void)
{
    fixture_t f;
    make_fixture(&f);
    float logp[N * A], dl[N * A];
    ac_policy_log_softmax_forward(logp, f.logits, f.mask, N, A);
    ac_grpo_episode_t ep[NE] = {{0, 1, 0}, {0, 0, 0}, {1, 0.5f, 0}, {1, 0, 0}};
    /* one step per episode */
    ac_grpo_step_t st[NE];
    ac_grpo_token_t tk[NE];
    for (int e = 0; e < NE; e++) {
        st[e] = f.st[e];
        st[e].episode = e;
        tk[e] = f.tk[e];
        tk[e].step = e;
        tk[e].logp_old = logp[tk[e].off + tk[e].chosen];
    }
    ac_grpo_config_t cfg;
    ac_grpo_config_default(&cfg);
    cfg.kl_beta = 0;
    ac_err_t err = AC_ERR_INIT;
    CHECK(ac_grpo_advantages(st, NULL, NE, ep, NE, &cfg, &err) == 0);
    ac_grpo_metrics_t m;
    CHECK(ac_grpo_loss(dl, &m, logp, NULL, N * A, tk, NE, st, NE, ep, NE, &cfg, &err) == 0);
    CHECK(fabs(m.loss) < 1e-6 && m.ratio_min == 1.0 && m.ratio_max == 1.0 && m.clip_region == 0);
    double g = 0;
    for (int i = 0; i < N * A; i++)
        g += fabs(dl[i]);
    CHECK(g > 0.1);
}

/* ---- learning sanity: a contextual bandit --------------------------------------------------- */

static const char *OPS[4] = {"add", "mul", "sub", "div"};

static int make_obs(char *buf, size_t cap, int op, ac_rng_t *rng)
{
    static const char *lead[] = {"please", "can you", "now", "task:", "quickly"};
    static const char *mid[] = {"the numbers", "these", "values", "them", "both"};
    int x = (int)(ac_rng_u64(rng) % 100), y = (int)(ac_rng_u64(rng) % 100);
    int i = (int)(ac_rng_u64(rng) % 5), j = (int)(ac_rng_u64(rng) % 5);
    return snprintf(buf, cap, "%s %s %s %d and %d", lead[i], OPS[op], mid[j], x, y);
}

static double greedy_accuracy(ac_policy_t *p, ac_policy_batch_t *b, float *logp, ac_rng_t *rng, int n)
{
    char text[128];
    int ops[256];
    ac_policy_batch_clear(b);
    for (int i = 0; i < n; i++) {
        ops[i] = (int)(ac_rng_u64(rng) % 4);
        int len = make_obs(text, sizeof text, ops[i], rng);
        ac_policy_batch_add(b, text, (size_t)len, NULL);
    }
    if (ac_policy_forward(p, logp, b, NULL, NULL) != 0)
        return -1;
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += ac_policy_greedy(logp + i * 4, 4) == ops[i];
    return (double)ok / n;
}

/* Trains the bandit (each observation names the right action among 4 words of noise) with G
 * samples per query and the given advantage mode and sampling temperature; returns the greedy
 * accuracy before (acc0) and after. Every iteration draws 128 samples whatever G is. */
static double learn(int G, int adv_mode, float temperature, double *acc0)
{
    enum { SAMPLES = 128, ITERS = 40, EVAL = 256 };
    const int Q = SAMPLES / G;
    ac_err_t err = AC_ERR_INIT;
    ac_policy_config_t pc = {.n_buckets = 1024, .d_emb = 16, .n_hidden = 1, .hidden = {32},
                             .activation = AC_POLICY_TANH, .n_actions = 4, .max_features = 32,
                             .seed = 1};
    ac_policy_t *p = ac_policy_create(&pc, &err), *ref = ac_policy_clone(p, &err);
    p->temperature = ref->temperature = temperature;
    ac_optim_config_t oc;
    ac_optim_config_default(&oc);
    oc.lr = 0.02f;
    ac_optim_t *opt = ac_optim_create(p->n_params, &oc, &err);
    ac_grpo_config_t gc;
    ac_grpo_config_default(&gc);
    gc.advantage = adv_mode;
    ac_policy_batch_t b, eb;
    ac_policy_batch_init(&b, &pc, SAMPLES, &err);
    ac_policy_batch_init(&eb, &pc, EVAL, &err);
    float *logp = malloc(sizeof(float) * EVAL * 4), *ref_logp = malloc(sizeof(float) * SAMPLES * 4);
    float *dl = malloc(sizeof(float) * SAMPLES * 4);
    ac_grpo_step_t st[SAMPLES];
    ac_grpo_token_t tk[SAMPLES];
    ac_grpo_episode_t ep[SAMPLES];
    ac_rng_t rng, eval_rng;
    ac_rng_seed(&rng, 2024);
    ac_rng_seed(&eval_rng, 99);
    ac_rng_t er = eval_rng;
    *acc0 = greedy_accuracy(p, &eb, logp, &er, EVAL);
    ac_grpo_metrics_t m = {0};
    char text[128];
    int ops[SAMPLES];
    double max_ratio_dev = 0;
    for (int it = 0; it < ITERS; it++) {
        /* rollouts: Q queries, G samples each, one step per episode */
        ac_policy_batch_clear(&b);
        for (int q = 0; q < Q; q++) {
            ops[q] = (int)(ac_rng_u64(&rng) % 4);
            int len = make_obs(text, sizeof text, ops[q], &rng);
            for (int g = 0; g < G; g++)
                ac_policy_batch_add(&b, text, (size_t)len, &err);
        }
        CHECK(ac_policy_forward(p, logp, &b, NULL, &err) == 0);
        for (int i = 0; i < SAMPLES; i++) {
            float lt;
            int a = ac_policy_sample(logp + i * 4, 4, 1.0f, &rng, &lt); /* logp is tempered */
            st[i] = (ac_grpo_step_t){.episode = i};
            tk[i] = (ac_grpo_token_t){.step = i, .off = (size_t)i * 4, .n = 4, .chosen = a, .logp_old = lt};
            ep[i] = (ac_grpo_episode_t){.group = i / G, .reward = a == ops[i / G] ? 1.0f : 0.0f};
        }
        CHECK(ac_grpo_advantages(st, &m, SAMPLES, ep, SAMPLES, &gc, &err) == 0);
        CHECK(ac_policy_forward(ref, ref_logp, &b, NULL, &err) == 0);
        for (int mu = 0; mu < 2; mu++) { /* two epochs over the same rollouts */
            CHECK(ac_policy_forward(p, logp, &b, NULL, &err) == 0);
            CHECK(ac_grpo_loss(dl, &m, logp, ref_logp, SAMPLES * 4, tk, SAMPLES, st, SAMPLES, ep, SAMPLES, &gc,
                               &err) == 0);
            if (mu == 0) /* on-policy: the same weights that sampled, at the same temperature */
                max_ratio_dev = fmax(max_ratio_dev, fmax(m.ratio_max - 1, 1 - m.ratio_min));
            ac_policy_zero_grad(p);
            CHECK(ac_policy_backward(p, dl, &b, &err) == 0);
            ac_optim_clip_grad_norm(p->grads, p->n_params, 1.0);
            ac_optim_step(opt, p->params, p->grads);
        }
    }
    er = eval_rng;
    double acc1 = greedy_accuracy(p, &eb, logp, &er, EVAL);
    fprintf(stderr, "bandit G=%d adv=%d T=%.1f: greedy accuracy %.3f -> %.3f (last avg_reward %.3f, kl %.4f, "
                    "entropy %.3f, on-policy ratio within %.2g of 1)\n",
            G, adv_mode, temperature, *acc0, acc1, m.avg_reward, m.kl_exact, m.entropy, max_ratio_dev);
    CHECK(max_ratio_dev < 1e-5); /* the first epoch's ratios are exactly 1 */
    CHECK(m.kl_exact > 0);
    free(logp);
    free(ref_logp);
    free(dl);
    ac_policy_batch_free(&b);
    ac_policy_batch_free(&eb);
    ac_policy_destroy(p);
    ac_policy_destroy(ref);
    ac_optim_destroy(opt);
    return acc1;
}

static void test_learning(void)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double acc0, acc1;
    acc1 = learn(8, AC_GRPO_ADV_GROUP, 1.0f, &acc0);
    CHECK(acc0 < 0.5 && acc1 > 0.95); /* chance is 0.25: the initial policy must not already know */
    acc1 = learn(1, AC_GRPO_ADV_GROUP, 1.0f, &acc0); /* groups of one: the batch baseline */
    CHECK(acc1 > 0.95);
    acc1 = learn(8, AC_GRPO_ADV_RLOO, 1.0f, &acc0);
    CHECK(acc1 > 0.95);
    acc1 = learn(4, AC_GRPO_ADV_BATCH, 1.0f, &acc0);
    CHECK(acc1 > 0.95);
    acc1 = learn(8, AC_GRPO_ADV_GROUP, 0.7f, &acc0); /* ratio 1 on-policy at T != 1 too */
    CHECK(acc1 > 0.95);
    acc1 = learn(8, AC_GRPO_ADV_GROUP, 1.5f, &acc0);
    CHECK(acc1 > 0.95);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "bandit runs: %.2f s\n", (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec));
}

/* A group of one has no peers: its advantage is against the batch, not 0 (which would train
 * nothing). And a decision with one legal option is no decision: no gradient, not counted. */
static void test_groups_of_one_and_forced_steps(void)
{
    ac_grpo_config_t cfg;
    ac_grpo_config_default(&cfg);
    ac_grpo_episode_t eps[4] = {{0, 1, 0}, {1, 0, 0}, {2, 0, 0}, {3, 1, 0}};
    ac_grpo_step_t st[4];
    for (int e = 0; e < 4; e++)
        st[e] = (ac_grpo_step_t){.episode = e};
    ac_err_t err = AC_ERR_INIT;
    CHECK(ac_grpo_advantages(st, NULL, 4, eps, 4, &cfg, &err) == 0);
    double a = 0.5 / (0.5 + 1e-4), want[4] = {a, -a, -a, a}, got[4];
    for (int e = 0; e < 4; e++)
        got[e] = st[e].advantage;
    check_close_d(got, want, 4, 1e-6, 1e-7, "adv groups of one: batch baseline");
    /* rloo: 0 1 1 in one group -> 0 - 1, 1 - .5, 1 - .5 */
    ac_grpo_episode_t e3[3] = {{0, 0, 0}, {0, 1, 0}, {0, 1, 0}};
    cfg.advantage = AC_GRPO_ADV_RLOO;
    CHECK(ac_grpo_advantages(st, NULL, 3, e3, 3, &cfg, &err) == 0);
    double w3[3] = {-1, 0.5, 0.5}, g3[3];
    for (int e = 0; e < 3; e++)
        g3[e] = st[e].advantage;
    check_close_d(g3, w3, 3, 1e-6, 1e-7, "adv rloo");

    /* two decisions of one step; the second has a single legal option */
    float logp[5] = {logf(0.5f), logf(0.5f), 0.0f, -INFINITY, -INFINITY}, dl[5];
    ac_grpo_step_t s1[1] = {{.episode = 0, .advantage = 1}};
    ac_grpo_token_t tk[2] = {{.step = 0, .off = 0, .n = 2, .chosen = 0, .logp_old = logf(0.5f)},
                             {.step = 0, .off = 2, .n = 3, .chosen = 0, .logp_old = 0.0f}};
    ac_grpo_episode_t e1[1] = {{0, 1, 0}};
    cfg.advantage = AC_GRPO_ADV_GROUP;
    cfg.kl_beta = 0;
    ac_grpo_metrics_t m;
    CHECK(ac_grpo_loss(dl, &m, logp, logp, 5, tk, 2, s1, 1, e1, 1, &cfg, &err) == 0);
    CHECK(m.n_tokens_used == 1);                         /* the forced one is not a decision */
    check_scalar(m.entropy, log(2.0), 1e-6, 0, "entropy over real decisions only");
    check_scalar(m.loss, -1.0, 1e-6, 0, "loss normalised over real decisions only");
    CHECK(dl[2] == 0 && dl[3] == 0 && dl[4] == 0 && dl[0] != 0);
}

/* ---- dump for the NumPy reference ----------------------------------------------------------- */

static void dump_floats(FILE *f, const char *name, const float *x, size_t n, int last)
{
    fprintf(f, "\"%s\": [", name);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%.9g", i ? "," : "", x[i]);
    fprintf(f, "]%s\n", last ? "" : ",");
}

static const char *REF_TEXTS[] = {
    "find the weather in paris", "add 2 and 3", "mul 4 by 5 please", "",
    "search: capital of france", "ADD two numbers, then answer", "tool output 17 ok", "divide 9 by 3",
};

/* One case: a policy perturbed away from its reference, rollouts with logp_old offset from the
 * current policy (ratios != 1, some clipped), advantages, loss, backward, clip, one Adam step. */
static int dump_case(FILE *f, int loss_type, int per_step, int mask_trunc, int activation, int adv_mode, int last)
{
    enum { S = 8, NA = 5, NEP = 6 };
    ac_err_t err = AC_ERR_INIT;
    ac_policy_config_t pc = {.n_buckets = 97, .d_emb = 6, .n_hidden = 2, .hidden = {9, 7},
                             .activation = activation, .n_actions = NA, .max_features = 12,
                             .seed = 5};
    ac_policy_t *ref = ac_policy_create(&pc, &err), *p = ac_policy_clone(ref, &err);
    ac_rng_t rng;
    ac_rng_seed(&rng, 11 + (uint64_t)loss_type);
    for (size_t k = 0; k < p->n_params; k++)
        p->params[k] += 0.3f * (float)ac_rng_normal(&rng);
    ac_policy_batch_t b;
    ac_policy_batch_init(&b, &pc, S, &err);
    for (int i = 0; i < S; i++)
        ac_policy_batch_add(&b, REF_TEXTS[i], strlen(REF_TEXTS[i]), &err);
    uint8_t mask[S * NA];
    for (int i = 0; i < S * NA; i++)
        mask[i] = (uint8_t)(i % NA == i / NA % NA || (i * 7) % 5 != 1);
    float logp[S * NA], ref_logp[S * NA], dl[S * NA];
    if (ac_policy_forward(ref, ref_logp, &b, mask, &err) || ac_policy_forward(p, logp, &b, mask, &err))
        return -1;
    /* 6 episodes in 2 groups; 8 steps: episode e has steps at states listed in time order */
    ac_grpo_episode_t ep[NEP] = {{0, 1, 0}, {0, 0, 0}, {0, 0.25f, 1}, {1, 1, 0}, {1, 0.5f, 0}, {1, 0, 0}};
    int ep_of[S] = {0, 0, 1, 2, 3, 4, 4, 5};
    ac_grpo_step_t st[S];
    ac_grpo_token_t tk[S];
    for (int t = 0; t < S; t++) {
        float lt;
        int a = ac_policy_sample(logp + t * NA, NA, 1.0f, &rng, &lt);
        st[t] = (ac_grpo_step_t){.episode = ep_of[t], .reward = (t % 3 == 0) ? 1.0f : 0.0f};
        tk[t] = (ac_grpo_token_t){.step = t, .off = (size_t)t * NA, .n = NA, .chosen = a,
                                  .logp_old = lt + 0.8f * (ac_rng_uniform(&rng) - 0.5f)};
    }
    ac_grpo_config_t gc;
    ac_grpo_config_default(&gc);
    gc.loss_type = loss_type;
    gc.per_step_rewards = per_step;
    gc.gamma = 0.9f;
    gc.mask_truncated = mask_trunc;
    gc.kl_beta = 0.1f;
    gc.entropy_coef = 0.01f;
    gc.clip_eps_high = 0.28f;
    gc.max_tokens = 3;
    gc.scale_std = loss_type != AC_GRPO_LOSS_DR_GRPO;
    gc.advantage = adv_mode;
    ac_grpo_metrics_t m;
    if (ac_grpo_advantages(st, &m, S, ep, NEP, &gc, &err) ||
        ac_grpo_loss(dl, &m, logp, ref_logp, S * NA, tk, S, st, S, ep, NEP, &gc, &err))
        return -1;
    ac_policy_zero_grad(p);
    if (ac_policy_backward(p, dl, &b, &err))
        return -1;
    float *grads = malloc(sizeof(float) * p->n_params);
    memcpy(grads, p->grads, sizeof(float) * p->n_params);
    const double max_norm = 0.5;
    double norm = ac_optim_clip_grad_norm(p->grads, p->n_params, max_norm);
    ac_optim_config_t oc;
    ac_optim_config_default(&oc);
    oc.lr = 0.01f;
    oc.weight_decay = 0.01f;
    ac_optim_t *o = ac_optim_create(p->n_params, &oc, &err);
    float *before = malloc(sizeof(float) * p->n_params);
    memcpy(before, p->params, sizeof(float) * p->n_params);
    ac_optim_step(o, p->params, p->grads);

    fprintf(f, "{\"policy\": {\"n_buckets\": %d, \"d_emb\": %d, \"hidden\": [%d, %d], "
               "\"activation\": \"%s\", \"n_actions\": %d, \"max_features\": %d},\n",
            pc.n_buckets, pc.d_emb, pc.hidden[0], pc.hidden[1],
            activation == AC_POLICY_TANH ? "tanh" : "relu", pc.n_actions, pc.max_features);
    fprintf(f, "\"texts\": [");
    for (int i = 0; i < S; i++)
        fprintf(f, "%s\"%s\"", i ? "," : "", REF_TEXTS[i]);
    fprintf(f, "],\n\"ids\": [");
    for (int i = 0; i < S; i++) {
        fprintf(f, "%s[", i ? "," : "");
        for (int k = b.offsets[i]; k < b.offsets[i + 1]; k++)
            fprintf(f, "%s%d", k > b.offsets[i] ? "," : "", b.ids[k]);
        fprintf(f, "]");
    }
    fprintf(f, "],\n\"mask\": [");
    for (int i = 0; i < S * NA; i++)
        fprintf(f, "%s%d", i ? "," : "", mask[i]);
    fprintf(f, "],\n\"steps\": [");
    for (int t = 0; t < S; t++)
        fprintf(f, "%s[%d, %d, %d, %.9g, %.9g]", t ? "," : "", t, tk[t].chosen, st[t].episode,
                tk[t].logp_old, st[t].reward);
    fprintf(f, "],\n\"episodes\": [");
    for (int e = 0; e < NEP; e++)
        fprintf(f, "%s[%d, %.9g, %d]", e ? "," : "", ep[e].group, ep[e].reward, ep[e].truncated);
    fprintf(f, "],\n\"grpo\": {\"loss_type\": %d, \"eps_low\": %.9g, \"eps_high\": %.9g, \"beta\": %.9g, "
               "\"entropy_coef\": %.9g, \"scale_std\": %d, \"std_eps\": %.9g, \"per_step\": %d, "
               "\"gamma\": %.9g, \"mask_truncated\": %d, \"max_tokens\": %d, \"advantage\": %d},\n",
            gc.loss_type, gc.clip_eps_low, gc.clip_eps_high, gc.kl_beta, gc.entropy_coef, gc.scale_std,
            gc.std_eps, gc.per_step_rewards, gc.gamma, gc.mask_truncated, gc.max_tokens, gc.advantage);
    fprintf(f, "\"adam\": {\"lr\": %.9g, \"beta1\": %.9g, \"beta2\": %.9g, \"eps\": %.9g, "
               "\"weight_decay\": %.9g, \"max_norm\": %.17g},\n",
            oc.lr, oc.beta1, oc.beta2, oc.eps, oc.weight_decay, max_norm);
    dump_floats(f, "ref_params", ref->params, ref->n_params, 0);
    dump_floats(f, "params", before, p->n_params, 0);
    float adv[S];
    for (int t = 0; t < S; t++)
        adv[t] = st[t].advantage;
    fprintf(f, "\"c\": {\"loss\": %.17g, \"kl_k3\": %.17g, \"kl_exact\": %.17g, \"entropy\": %.17g, "
               "\"clip_low\": %.17g, \"clip_high\": %.17g, \"clip_region\": %.17g, \"avg_reward\": %.17g, "
               "\"reward_std\": %.17g, \"grad_norm\": %.17g,\n",
            m.loss, m.kl_k3, m.kl_exact, m.entropy, m.clip_low, m.clip_high, m.clip_region, m.avg_reward,
            m.reward_std, norm);
    dump_floats(f, "advantages", adv, S, 0);
    float finite_logp[S * NA];
    for (int i = 0; i < S * NA; i++)
        finite_logp[i] = mask[i] ? logp[i] : 0.0f; /* JSON has no -inf */
    dump_floats(f, "logp", finite_logp, S * NA, 0);
    dump_floats(f, "grads", grads, p->n_params, 0);
    dump_floats(f, "params_after", p->params, p->n_params, 1);
    fprintf(f, "}}%s\n", last ? "" : ",");
    free(grads);
    free(before);
    ac_optim_destroy(o);
    ac_policy_batch_free(&b);
    ac_policy_destroy(p);
    ac_policy_destroy(ref);
    return 0;
}

static int dump(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    /* (loss_type, per_step_rewards, mask_truncated, activation, advantage) */
    int cases[][5] = {{AC_GRPO_LOSS_GRPO, 0, 0, AC_POLICY_TANH, AC_GRPO_ADV_GROUP},
                      {AC_GRPO_LOSS_DR_GRPO, 0, 1, AC_POLICY_RELU, AC_GRPO_ADV_GROUP},
                      {AC_GRPO_LOSS_DAPO, 1, 0, AC_POLICY_TANH, AC_GRPO_ADV_GROUP},
                      {AC_GRPO_LOSS_GRPO, 1, 1, AC_POLICY_RELU, AC_GRPO_ADV_BATCH},
                      {AC_GRPO_LOSS_GRPO, 0, 0, AC_POLICY_TANH, AC_GRPO_ADV_RLOO},
                      {AC_GRPO_LOSS_DAPO, 0, 0, AC_POLICY_RELU, AC_GRPO_ADV_BATCH}};
    int n = (int)(sizeof cases / sizeof *cases), rc = 0;
    fprintf(f, "[\n");
    for (int i = 0; i < n && rc == 0; i++)
        rc = dump_case(f, cases[i][0], cases[i][1], cases[i][2], cases[i][3], cases[i][4], i == n - 1);
    fprintf(f, "]\n");
    fclose(f);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    ac_blas_set_threads(1);
    if (argc == 3 && strcmp(argv[1], "--dump") == 0)
        return dump(argv[2]);
    test_advantages();
    test_loss_gradients();
    test_clip_fraction_and_metrics();
    test_loss_aggregation();
    test_loss_near_zero_at_mu1();
    test_groups_of_one_and_forced_steps();
    test_learning();
    return test_result("test_grpo");
}
