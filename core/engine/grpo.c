#include "engine/grpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ac_grpo_config_default(ac_grpo_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->loss_type = AC_GRPO_LOSS_GRPO;
    c->clip_eps_low = 0.2f;
    c->clip_eps_high = 0.2f;
    c->kl_beta = 0.04f;
    c->entropy_coef = 0.0f;
    c->scale_std = 1;
    c->std_eps = 1e-4f;
    c->per_step_rewards = 0;
    c->gamma = 1.0f;
    c->mask_truncated = 0;
    c->max_steps = 0;
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
    /* per group: count, sum, sum of squares of the normalised quantity (episode reward or step
     * return); per episode: the running discounted return. */
    double *gs = calloc((size_t)3 * G + 1, sizeof(double));
    double *ret = calloc((size_t)n_episodes + 1, sizeof(double));
    uint8_t *zv = malloc((size_t)G + 1);
    if (!gs || !ret || !zv) {
        free(gs);
        free(ret);
        free(zv);
        return ac_err_set(err, AC_ERR_INTERNAL, "grpo: out of memory");
    }
    double *cnt = gs, *sum = gs + G, *sq = gs + 2 * G;

    /* Reward metrics (always over episode rewards). */
    double rsum = 0.0;
    for (int e = 0; e < n_episodes; e++) {
        int g = eps[e].group;
        cnt[g] += 1;
        sum[g] += eps[e].reward;
        sq[g] += (double)eps[e].reward * eps[e].reward;
        rsum += eps[e].reward;
    }
    double std_sum = 0.0;
    int g_nonempty = 0;
    for (int g = 0; g < G; g++)
        if (cnt[g] > 0) {
            double mu = sum[g] / cnt[g], var = sq[g] / cnt[g] - mu * mu;
            std_sum += sqrt(var > 0 ? var : 0);
            g_nonempty++;
        }
    int nzv = ac_grpo_zero_variance_groups(zv, G, eps, n_episodes, NULL);
    if (m != NULL) {
        m->avg_reward = n_episodes ? rsum / n_episodes : 0.0;
        m->reward_std = g_nonempty ? std_sum / g_nonempty : 0.0;
        m->zero_var_frac = G ? (double)nzv / G : 0.0;
        m->n_groups = G;
    }

    if (cfg->per_step_rewards) {
        /* Discounted returns, walking each episode backwards: G_t = r_t + gamma G_{t+1}. */
        for (int t = n_steps - 1; t >= 0; t--) {
            int e = steps[t].episode;
            ret[e] = steps[t].reward + cfg->gamma * ret[e];
            steps[t].advantage = (float)ret[e]; /* the raw return for now */
        }
        memset(gs, 0, sizeof(double) * 3 * G);
        for (int t = 0; t < n_steps; t++) {
            int g = eps[steps[t].episode].group;
            double x = steps[t].advantage;
            cnt[g] += 1;
            sum[g] += x;
            sq[g] += x * x;
        }
    }
    /* The group statistics the normalisation uses are now in cnt/sum/sq (of episode rewards, or
     * of step returns). Two-pass variance would be more accurate; rewards are O(1) and groups
     * small, so the one-pass form in double loses nothing that matters. */
    for (int t = 0; t < n_steps; t++) {
        int g = eps[steps[t].episode].group;
        double x = cfg->per_step_rewards ? steps[t].advantage : eps[steps[t].episode].reward;
        double mu = sum[g] / cnt[g], var = sq[g] / cnt[g] - mu * mu;
        double a = x - mu;
        if (cfg->scale_std)
            a /= sqrt(var > 0 ? var : 0) + cfg->std_eps;
        steps[t].advantage = (float)a;
    }
    free(gs);
    free(ret);
    free(zv);
    return 0;
}

void ac_grpo_fill_ref(ac_grpo_step_t *steps, int n_steps, const float *ref_logp, int A)
{
    for (int t = 0; t < n_steps; t++)
        steps[t].logp_ref = ref_logp[(size_t)steps[t].state * A + steps[t].action];
}

int ac_grpo_loss(float *dlogits, ac_grpo_metrics_t *m, const float *logp, const float *ref_logp,
                 int N, int A, const ac_grpo_step_t *steps, int n_steps,
                 const ac_grpo_episode_t *eps, int n_episodes, const ac_grpo_config_t *cfg,
                 ac_err_t *err)
{
    if (cfg->loss_type == AC_GRPO_LOSS_DR_GRPO && cfg->max_steps <= 0)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "max_steps", "dr_grpo needs max_steps > 0");
    if (cfg->loss_type < AC_GRPO_LOSS_GRPO || cfg->loss_type > AC_GRPO_LOSS_DAPO)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "loss_type", "unknown loss type %d",
                            cfg->loss_type);
    for (int t = 0; t < n_steps; t++) {
        const ac_grpo_step_t *s = &steps[t];
        if (s->state < 0 || s->state >= N || s->action < 0 || s->action >= A || s->episode < 0 ||
            s->episode >= n_episodes)
            return ac_err_set(err, AC_ERR_INVALID_PARAMS,
                              "grpo: step %d (state %d, action %d, episode %d) out of range", t,
                              s->state, s->action, s->episode);
        float lpa = logp[(size_t)s->state * A + s->action];
        if (lpa == -INFINITY)
            return ac_err_set(err, AC_ERR_INVALID_PARAMS, "grpo: step %d took illegal action %d", t,
                              s->action);
        if (!isfinite(lpa) || !isfinite(s->logp_old))
            return ac_err_set(err, AC_ERR_INTERNAL,
                              "grpo: step %d has a non-finite log-prob (diverged parameters?)", t);
    }
    /* Per-step weight w_t so that L = sum_t w_t l_t; a masked step has w_t = 0. */
    int *ep_steps = calloc((size_t)n_episodes + 1, sizeof(int));
    if (ep_steps == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "grpo: out of memory");
#define COUNTS(t) (!(cfg->mask_truncated && eps[steps[t].episode].truncated))
    int used = 0, eps_used = 0;
    for (int t = 0; t < n_steps; t++)
        if (COUNTS(t)) {
            used++;
            if (ep_steps[steps[t].episode]++ == 0)
                eps_used++;
        }

    memset(dlogits, 0, sizeof(float) * (size_t)N * A);
    const double lo = 1.0 - cfg->clip_eps_low, hi = 1.0 + cfg->clip_eps_high;
    const double beta = cfg->kl_beta, c_ent = cfg->entropy_coef;
    double loss = 0, surr_sum = 0, k3_sum = 0, kl_sum = 0, ent_sum = 0, r_sum = 0;
    double r_min = INFINITY, r_max = -INFINITY;
    int n_clipped = 0;
    for (int t = 0; t < n_steps; t++) {
        if (!COUNTS(t))
            continue;
        const ac_grpo_step_t *s = &steps[t];
        double w;
        switch (cfg->loss_type) {
        case AC_GRPO_LOSS_GRPO: w = 1.0 / ((double)eps_used * ep_steps[s->episode]); break;
        case AC_GRPO_LOSS_DR_GRPO: w = 1.0 / ((double)n_episodes * cfg->max_steps); break;
        default: w = 1.0 / used; break;
        }
        const float *lp = logp + (size_t)s->state * A;
        const float *rp = ref_logp ? ref_logp + (size_t)s->state * A : NULL;
        float *dz = dlogits + (size_t)s->state * A;
        double lpa = lp[s->action], adv = s->advantage;

        /* Clipped surrogate. The min picks the clipped branch exactly when clipping removes the
         * gradient; at the boundary both branches are equal and the unclipped one is kept. */
        double r = exp(lpa - s->logp_old);
        int clipped = (adv > 0 && r > hi) || (adv < 0 && r < lo);
        double rc = r < lo ? lo : (r > hi ? hi : r);
        double surr = -fmin(r * adv, rc * adv);
        double g_lp = clipped ? 0.0 : -r * adv; /* d surr / d logp_a */

        /* k3 = exp(d) - d - 1 with d = ref - logp: unbiased for KL(pi||ref) under pi, >= 0. */
        double d = (rp ? rp[s->action] : s->logp_ref) - lpa;
        double k3 = expm1(d) - d;
        g_lp += beta * -expm1(d); /* d k3 / d logp_a = 1 - exp(d) */

        /* Exact entropy and KL over the legal actions (p = 0 at illegal ones). */
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
                double g = g_lp * ((b == s->action) - pb) + c_ent * pb * (lp[b] + H);
                dz[b] += (float)(w * g);
            }

        loss += w * (surr + beta * k3 - c_ent * H);
        surr_sum += surr;
        k3_sum += k3;
        kl_sum += kl;
        ent_sum += H;
        r_sum += r;
        r_min = fmin(r_min, r);
        r_max = fmax(r_max, r);
        n_clipped += clipped;
    }
#undef COUNTS
    free(ep_steps);
    if (m != NULL) {
        double inv = used ? 1.0 / used : 0.0;
        m->loss = loss;
        m->surrogate = surr_sum * inv;
        m->kl_k3 = k3_sum * inv;
        m->kl_exact = ref_logp ? kl_sum * inv : NAN;
        m->entropy = ent_sum * inv;
        m->clip_fraction = n_clipped * inv;
        m->ratio_mean = used ? r_sum * inv : 1.0;
        m->ratio_min = used ? r_min : 1.0;
        m->ratio_max = used ? r_max : 1.0;
        m->n_steps_used = used;
    }
    return 0;
}
