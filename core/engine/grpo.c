#include "engine/grpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ac_grpo_config_default(ac_grpo_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->loss_type = AC_GRPO_LOSS_GRPO;
    c->advantage = AC_GRPO_ADV_GROUP;
    c->clip_eps_low = 0.2f;
    c->clip_eps_high = 0.2f;
    c->kl_beta = 0.04f;
    c->entropy_coef = 0.0f;
    c->scale_std = 1;
    c->std_eps = 1e-4f;
    c->per_step_rewards = 0;
    c->gamma = 1.0f;
    c->mask_truncated = 0;
    c->max_tokens = 0;
}

static int n_groups_of(const ac_grpo_episode_t *eps, int n, ac_err_t *err)
{
    int g = 0;
    for (int e = 0; e < n; e++) {
        if (eps[e].group < 0)
            return ac_err_set(err, AC_ERR_INVALID_PARAMS, "grpo: episode %d has group %d < 0", e,
                              eps[e].group);
        g = eps[e].group + 1 > g ? eps[e].group + 1 : g;
    }
    return g;
}

int ac_grpo_zero_variance_groups(uint8_t *zero_var, int n_groups, const ac_grpo_episode_t *eps,
                                 int n_episodes, ac_err_t *err)
{
    /* min == max is exact: no threshold to tune, and equal floats are what "no signal" means. */
    float *lo = malloc(sizeof(float) * (n_groups > 0 ? n_groups : 1));
    if (lo == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "grpo: out of memory");
    for (int g = 0; g < n_groups; g++)
        zero_var[g] = 2; /* 2: no episode seen yet */
    for (int e = 0; e < n_episodes; e++) {
        int g = eps[e].group;
        if (g < 0 || g >= n_groups) {
            free(lo);
            return ac_err_set(err, AC_ERR_INVALID_PARAMS, "grpo: episode %d group %d not in [0, %d)",
                              e, g, n_groups);
        }
        if (zero_var[g] == 2) {
            zero_var[g] = 1;
            lo[g] = eps[e].reward;
        } else if (eps[e].reward != lo[g]) {
            zero_var[g] = 0;
        }
    }
    int count = 0;
    for (int g = 0; g < n_groups; g++) {
        zero_var[g] = zero_var[g] != 0;
        count += zero_var[g];
    }
    free(lo);
    return count;
}

/* Per group: episodes, and count, sum and sum of squares of their rewards; the batch's sums. */
static void episode_stats(const ac_grpo_episode_t *eps, int n_episodes, double *ep_cnt, double *cnt, double *sum,
                          double *sq, double *bsum, double *bsq)
{
    for (int e = 0; e < n_episodes; e++) {
        int g = eps[e].group;
        double r = eps[e].reward;
        ep_cnt[g] += 1, cnt[g] += 1, sum[g] += r, sq[g] += r * r;
        *bsum += r, *bsq += r * r;
    }
}

/* The reward metrics: mean reward, mean within-group std, share of groups without signal. */
static void reward_metrics(ac_grpo_metrics_t *m, const ac_grpo_episode_t *eps, int n_episodes, int G,
                           const double *cnt, const double *sum, const double *sq, double bsum, uint8_t *zv)
{
    double std_sum = 0.0;
    int g_nonempty = 0;
    for (int g = 0; g < G; g++)
        if (cnt[g] > 0) {
            double mu = sum[g] / cnt[g], var = sq[g] / cnt[g] - mu * mu;
            std_sum += sqrt(var > 0 ? var : 0);
            g_nonempty++;
        }
    int nzv = ac_grpo_zero_variance_groups(zv, G, eps, n_episodes, NULL);
    m->avg_reward = n_episodes ? bsum / n_episodes : 0.0;
    m->reward_std = g_nonempty ? std_sum / g_nonempty : 0.0;
    m->zero_var_frac = G ? (double)nzv / G : 0.0;
    m->n_groups = G;
}

int ac_grpo_advantages(ac_grpo_step_t *steps, ac_grpo_metrics_t *m, int n_steps,
                       const ac_grpo_episode_t *eps, int n_episodes, const ac_grpo_config_t *cfg,
                       ac_err_t *err)
{
    int G = n_groups_of(eps, n_episodes, err);
    if (G < 0)
        return -1;
    for (int t = 0; t < n_steps; t++)
        if (steps[t].episode < 0 || steps[t].episode >= n_episodes)
            return ac_err_set(err, AC_ERR_INVALID_PARAMS, "grpo: step %d episode %d not in [0, %d)",
                              t, steps[t].episode, n_episodes);
    /* One block of scratch: per group the episode count and count, sum, sum of squares of what
     * is normalised (episode reward or step return); per episode the running return; per step
     * the quantity itself. */
    double *block = calloc((size_t)4 * G + (size_t)n_episodes + (size_t)n_steps + 1, sizeof(double));
    uint8_t *zv = malloc((size_t)G + 1);
    if (block == NULL || zv == NULL) {
        free(block);
        free(zv);
        return ac_err_set(err, AC_ERR_INTERNAL, "grpo: out of memory");
    }
    double *ep_cnt = block, *cnt = block + G, *sum = block + 2 * G, *sq = block + 3 * G;
    double *ret = block + 4 * G, *x = ret + n_episodes;

    /* Reward metrics (always over episode rewards), and the episode statistics. */
    double bcnt = n_episodes, bsum = 0, bsq = 0;
    episode_stats(eps, n_episodes, ep_cnt, cnt, sum, sq, &bsum, &bsq);
    if (m != NULL)
        reward_metrics(m, eps, n_episodes, G, cnt, sum, sq, bsum, zv);
    if (cfg->per_step_rewards) {
        /* discounted returns, walking each episode backwards: G_t = r_t + gamma G_{t+1} */
        for (int t = n_steps - 1; t >= 0; t--) {
            int e = steps[t].episode;
            ret[e] = steps[t].reward + cfg->gamma * ret[e];
            x[t] = ret[e];
        }
        /* the statistics are then over the steps' returns */
        memset(cnt, 0, sizeof(double) * 3 * (size_t)G);
        bcnt = bsum = bsq = 0;
        for (int t = 0; t < n_steps; t++) {
            int g = eps[steps[t].episode].group;
            cnt[g] += 1, sum[g] += x[t], sq[g] += x[t] * x[t];
            bcnt += 1, bsum += x[t], bsq += x[t] * x[t];
        }
    } else {
        for (int t = 0; t < n_steps; t++)
            x[t] = eps[steps[t].episode].reward;
    }
    /* One-pass variance in double: rewards are O(1) and groups small, nothing that matters is
     * lost to cancellation. A group of one episode has no peers: the batch is its baseline. */
    for (int t = 0; t < n_steps; t++) {
        int g = eps[steps[t].episode].group;
        int batch = cfg->advantage == AC_GRPO_ADV_BATCH || ep_cnt[g] < 2;
        double a;
        if (!batch && cfg->advantage == AC_GRPO_ADV_RLOO && !cfg->per_step_rewards) {
            a = x[t] - (sum[g] - x[t]) / (cnt[g] - 1); /* the mean of the group's others */
        } else {
            double n = batch ? bcnt : cnt[g], s1 = batch ? bsum : sum[g], s2 = batch ? bsq : sq[g];
            double mu = s1 / n, var = s2 / n - mu * mu;
            a = x[t] - mu;
            if (cfg->scale_std)
                a /= sqrt(var > 0 ? var : 0) + cfg->std_eps;
        }
        steps[t].advantage = (float)a;
    }
    free(block);
    free(zv);
    return 0;
}

void ac_grpo_fill_ref(ac_grpo_token_t *tokens, int n_tokens, const float *ref_logp)
{
    for (int k = 0; k < n_tokens; k++)
        tokens[k].logp_ref = ref_logp[tokens[k].off + (size_t)tokens[k].chosen];
}

/* Legal options of a token (finite log-probs). */
static int n_legal(const float *lp, int n)
{
    int c = 0;
    for (int b = 0; b < n; b++)
        c += lp[b] != -INFINITY;
    return c;
}

/* Checks every token against the arrays it indexes: an out-of-range or illegal choice is the
 * caller's bug, a non-finite log-prob diverged parameters. */
static int check_tokens(const float *logp, size_t len, const ac_grpo_token_t *tokens, int n_tokens,
                        const ac_grpo_step_t *steps, int n_steps, int n_episodes, ac_err_t *err)
{
    for (int k = 0; k < n_tokens; k++) {
        const ac_grpo_token_t *tk = &tokens[k];
        if (tk->step < 0 || tk->step >= n_steps || tk->n < 1 || tk->off > len || (size_t)tk->n > len - tk->off ||
            tk->chosen < 0 || tk->chosen >= tk->n || steps[tk->step].episode < 0 ||
            steps[tk->step].episode >= n_episodes)
            return ac_err_set(err, AC_ERR_INVALID_PARAMS,
                              "grpo: token %d (step %d, options %zu+%d, chosen %d) out of range", k, tk->step,
                              tk->off, tk->n, tk->chosen);
        float lpa = logp[tk->off + (size_t)tk->chosen];
        if (lpa == -INFINITY)
            return ac_err_set(err, AC_ERR_INVALID_PARAMS, "grpo: token %d chose illegal option %d", k,
                              tk->chosen);
        if (!isfinite(lpa) || !isfinite(tk->logp_old))
            return ac_err_set(err, AC_ERR_INTERNAL,
                              "grpo: token %d has a non-finite log-prob (diverged parameters?)", k);
    }
    return 0;
}

/* What the loss sums over the counted tokens, for the metrics. */
typedef struct loss_sums {
    double loss, surr, k3, kl, ent, r, r_min, r_max;
    int low, high, region;
} loss_sums_t;

/* One token's term: adds w x (surrogate + beta k3 - c H) to s and its gradient w.r.t. the
 * option logits to dz. rp: the reference's log-probs of the options, or NULL (then only the
 * chosen one's, tk->logp_ref, is known and the exact KL is not). */
static void token_term(const ac_grpo_token_t *tk, double adv, double w, const float *lp, const float *rp, float *dz,
                       const ac_grpo_config_t *cfg, loss_sums_t *s)
{
    const double lo = 1.0 - cfg->clip_eps_low, hi = 1.0 + cfg->clip_eps_high;
    const double beta = cfg->kl_beta, c_ent = cfg->entropy_coef;
    const int A = tk->n, a = tk->chosen;
    double lpa = lp[a];

    /* Clipped surrogate. The min picks the clipped branch exactly when clipping removes the
     * gradient; at the boundary both branches are equal and the unclipped one is kept. */
    double r = exp(lpa - tk->logp_old);
    int low = adv < 0 && r < lo, high = adv > 0 && r > hi;
    double rc = r < lo ? lo : (r > hi ? hi : r);
    double surr = -fmin(r * adv, rc * adv);
    double g_lp = (low || high) ? 0.0 : -r * adv; /* d surr / d logp_a */

    /* k3 = exp(d) - d - 1 with d = ref - logp: unbiased for KL(pi||ref) under pi, >= 0. */
    double d = (rp ? rp[a] : tk->logp_ref) - lpa;
    double k3 = expm1(d) - d;
    g_lp += beta * -expm1(d); /* d k3 / d logp_a = 1 - exp(d) */

    /* Exact entropy and KL over the legal options (p = 0 at illegal ones). */
    double H = 0, kl = 0;
    for (int b = 0; b < A; b++)
        if (lp[b] != -INFINITY) {
            double pb = exp(lp[b]);
            H -= pb * lp[b];
            if (rp)
                kl += pb * (lp[b] - rp[b]);
        }

    /* d logp_a / d z_b = [a == b] - p_b;  d H / d z_b = -p_b (logp_b + H). */
    for (int b = 0; b < A; b++)
        if (lp[b] != -INFINITY) {
            double pb = exp(lp[b]);
            double g = g_lp * ((b == a) - pb) + c_ent * pb * (lp[b] + H);
            dz[b] += (float)(w * g);
        }

    s->loss += w * (surr + beta * k3 - c_ent * H);
    s->surr += surr;
    s->k3 += k3;
    s->kl += kl;
    s->ent += H;
    s->r += r;
    s->r_min = fmin(s->r_min, r);
    s->r_max = fmax(s->r_max, r);
    s->low += low;
    s->high += high;
    s->region += r < lo || r > hi;
}

static void loss_metrics(ac_grpo_metrics_t *m, const loss_sums_t *s, int used, int have_ref)
{
    double inv = used ? 1.0 / used : 0.0;
    m->loss = s->loss;
    m->surrogate = s->surr * inv;
    m->kl_k3 = s->k3 * inv;
    m->kl_exact = have_ref ? s->kl * inv : NAN;
    m->entropy = s->ent * inv;
    m->clip_low = s->low * inv;
    m->clip_high = s->high * inv;
    m->clip_region = s->region * inv;
    m->ratio_mean = used ? s->r * inv : 1.0;
    m->ratio_min = used ? s->r_min : 1.0;
    m->ratio_max = used ? s->r_max : 1.0;
    m->n_tokens_used = used;
}

int ac_grpo_loss(float *dlogits, ac_grpo_metrics_t *m, const float *logp, const float *ref_logp,
                 size_t len, const ac_grpo_token_t *tokens, int n_tokens, const ac_grpo_step_t *steps,
                 int n_steps, const ac_grpo_episode_t *eps, int n_episodes, const ac_grpo_config_t *cfg,
                 ac_err_t *err)
{
    if (cfg->loss_type == AC_GRPO_LOSS_DR_GRPO && cfg->max_tokens <= 0)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "max_tokens", "dr_grpo needs max_tokens > 0");
    if (cfg->loss_type < AC_GRPO_LOSS_GRPO || cfg->loss_type > AC_GRPO_LOSS_DAPO)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "loss_type", "unknown loss type %d",
                            cfg->loss_type);
    if (check_tokens(logp, len, tokens, n_tokens, steps, n_steps, n_episodes, err) != 0)
        return -1;
    /* Which tokens count: a real decision (two or more legal options) of an episode that is not
     * masked. Per episode: how many, for GRPO's per-episode mean. */
    int *ep_tokens = calloc((size_t)n_episodes + 1, sizeof(int));
    uint8_t *counts = malloc((size_t)n_tokens + 1);
    if (ep_tokens == NULL || counts == NULL) {
        free(ep_tokens);
        free(counts);
        return ac_err_set(err, AC_ERR_INTERNAL, "grpo: out of memory");
    }
    int used = 0, eps_used = 0;
    for (int k = 0; k < n_tokens; k++) {
        int e = steps[tokens[k].step].episode;
        counts[k] = !(cfg->mask_truncated && eps[e].truncated) && n_legal(logp + tokens[k].off, tokens[k].n) > 1;
        if (counts[k]) {
            used++;
            if (ep_tokens[e]++ == 0)
                eps_used++;
        }
    }

    const int norm_tok = cfg->norm_tokens > 0 ? cfg->norm_tokens : used;
    const int norm_eps = cfg->norm_episodes > 0 ? cfg->norm_episodes : eps_used;
    memset(dlogits, 0, sizeof(float) * len);
    loss_sums_t sums = {.r_min = INFINITY, .r_max = -INFINITY};
    for (int k = 0; k < n_tokens; k++) {
        if (!counts[k])
            continue;
        const ac_grpo_token_t *tk = &tokens[k];
        const ac_grpo_step_t *s = &steps[tk->step];
        double w;
        switch (cfg->loss_type) {
        case AC_GRPO_LOSS_GRPO: w = 1.0 / ((double)norm_eps * ep_tokens[s->episode]); break;
        case AC_GRPO_LOSS_DR_GRPO: w = 1.0 / ((double)n_episodes * cfg->max_tokens); break;
        default: w = 1.0 / norm_tok; break;
        }
        token_term(tk, s->advantage, w, logp + tk->off, ref_logp ? ref_logp + tk->off : NULL, dlogits + tk->off,
                   cfg, &sums);
    }
    free(ep_tokens);
    free(counts);
    if (m != NULL)
        loss_metrics(m, &sums, used, ref_logp != NULL);
    return 0;
}
