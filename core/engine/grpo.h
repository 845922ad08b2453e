/* GRPO math over a batch of steps: group-normalised advantages, the clipped-ratio surrogate with a
 * k3 KL penalty to the reference policy and an optional entropy bonus, its gradient w.r.t. the
 * policy's logits, and the metrics a trainer reports. docs/grpo.md has the formulas.
 *
 * One update, as the trainer drives it (mu epochs over the same rollouts):
 *
 *     ac_grpo_advantages(steps, &m, ...)                 // once per batch of rollouts
 *     ac_policy_forward(ref, ref_logp, batch, mask)      // once: the reference is frozen
 *     for epoch in 1..mu:
 *         ac_policy_forward(policy, logp, batch, mask)
 *         ac_grpo_loss(dlogits, &m, logp, ref_logp, ...) // logp_old stays the sampled one
 *         ac_policy_zero_grad(policy); ac_policy_backward(policy, dlogits, batch)
 *         ac_optim_clip_grad_norm(...); ac_optim_step(...)
 *
 * Pure functions over caller-owned arrays; no global state; thread-safe. */
#ifndef AC_GRPO_H
#define AC_GRPO_H

#include <stdint.h>

#include "base/err.h"

enum {
    AC_GRPO_LOSS_GRPO = 0,    /* mean over each episode's steps, then mean over episodes */
    AC_GRPO_LOSS_DR_GRPO = 1, /* sum over steps / (n_episodes * max_steps); use scale_std = 0 */
    AC_GRPO_LOSS_DAPO = 2,    /* mean over all steps of the batch (token-level) */
};

typedef struct ac_grpo_config {
    int loss_type;        /* AC_GRPO_LOSS_*; default GRPO */
    float clip_eps_low;   /* ratio clipped below at 1 - clip_eps_low; default 0.2 */
    float clip_eps_high;  /* and above at 1 + clip_eps_high; default 0.2 (DAPO clip-higher: 0.28) */
    float kl_beta;        /* weight of the k3 KL penalty; default 0.04; 0 disables */
    float entropy_coef;   /* weight of the entropy bonus (subtracted); default 0 */
    int scale_std;        /* 1: A = (R - mean) / (std + std_eps); 0: A = R - mean (Dr. GRPO) */
    float std_eps;        /* default 1e-4 */
    int per_step_rewards; /* 0: every step of an episode gets the episode's advantage.
                             1: step rewards -> discounted returns G_t, normalised per group over
                             all steps of the group (put the outcome reward in the last step) */
    float gamma;          /* discount for per-step returns; default 1 */
    int mask_truncated;   /* 1: steps of truncated episodes add nothing to the loss (they still
                             count in the group's reward statistics); default 0 */
    int max_steps;        /* episode step cap: the DR_GRPO normaliser (required > 0 for it) */
} ac_grpo_config_t;

typedef struct ac_grpo_step {
    int state;       /* row of this step's state in the forward batch (logp matrices) */
    int action;      /* the action taken (must be legal in that state) */
    int episode;     /* index into the episode array */
    float logp_old;  /* behaviour log-prob stored when the action was sampled (never recomputed) */
    float logp_ref;  /* reference policy's log-prob of the action (used when no ref_logp matrix
                        is given to ac_grpo_loss; ac_grpo_fill_ref fills it) */
    float reward;    /* per-step reward (only with per_step_rewards) */
    float advantage; /* written by ac_grpo_advantages (or set by the caller) */
} ac_grpo_step_t;

typedef struct ac_grpo_episode {
    int group;     /* group (query) id in [0, n_groups) */
    float reward;  /* the episode's reward: advantages (outcome mode) and reward metrics */
    int truncated; /* 1 when cut at max steps */
} ac_grpo_episode_t;

typedef struct ac_grpo_metrics {
    /* written by ac_grpo_advantages */
    double avg_reward;    /* mean episode reward */
    double reward_std;    /* mean over groups of the group's reward std (population) */
    double zero_var_frac; /* fraction of groups whose rewards are all equal (no signal) */
    int n_groups;         /* max group id + 1 */
    /* written by ac_grpo_loss; means over the steps that count (n_steps_used) */
    double loss;          /* the objective aggregated by loss_type: what dlogits is the gradient of */
    double surrogate;     /* mean clipped surrogate -min(rA, clip(r)A) */
    double kl_k3;         /* mean k3 = exp(ref - logp) - (ref - logp) - 1 at the taken actions */
    double kl_exact;      /* mean exact KL(pi || ref) over legal actions; NaN without ref_logp */
    double entropy;       /* mean exact entropy of pi over legal actions */
    double clip_fraction; /* fraction of steps whose gradient clipping removed:
                             (A > 0 and r > 1 + eps_high) or (A < 0 and r < 1 - eps_low) */
    double ratio_mean, ratio_min, ratio_max;
    int n_steps_used;     /* steps not masked out */
} ac_grpo_metrics_t;

/* Defaults listed with the fields. */
void ac_grpo_config_default(ac_grpo_config_t *cfg);

/* Writes steps[i].advantage and the reward metrics (m may be NULL).
 * Steps of one episode must appear in time order (they need not be contiguous).
 * -1 with AC_ERR_INVALID_PARAMS on an episode or group index out of range. Allocates scratch
 * of O(n_groups + n_episodes). */
int ac_grpo_advantages(ac_grpo_step_t *steps, ac_grpo_metrics_t *m, int n_steps,
                       const ac_grpo_episode_t *episodes, int n_episodes,
                       const ac_grpo_config_t *cfg, ac_err_t *err);

/* zero_var (n_groups) out: 1 when all rewards of the group are equal (one or no episode
 * included), else 0. For DAPO dynamic sampling: the caller drops or resamples those groups.
 * Returns how many groups have zero variance, or -1 (AC_ERR_INVALID_PARAMS) on a group id
 * outside [0, n_groups). */
int ac_grpo_zero_variance_groups(uint8_t *zero_var, int n_groups, const ac_grpo_episode_t *episodes,
                                 int n_episodes, ac_err_t *err);

/* steps[i].logp_ref = ref_logp[steps[i].state, steps[i].action]; ref_logp (N, A). */
void ac_grpo_fill_ref(ac_grpo_step_t *steps, int n_steps, const float *ref_logp, int A);

/* Loss, its gradient w.r.t. the logits, and the loss metrics.
 *   dlogits (N, A) out: overwritten; dL/dlogits of the states, 0 at illegal actions; feed it to
 *     ac_policy_backward. Steps may share a state row (their gradients add).
 *   m out (may be NULL): loss fields; the reward fields are left alone.
 *   logp (N, A): the current policy's forward (-INFINITY = illegal).
 *   ref_logp (N, A) or NULL: the reference policy's forward on the same batch; when given, k3
 *     uses it (steps' logp_ref ignored) and kl_exact is computed; else k3 uses steps' logp_ref.
 * -1 with AC_ERR_INVALID_PARAMS on an index out of range, an illegal taken action, or
 * DR_GRPO without max_steps; AC_ERR_INTERNAL on a NaN/inf log-prob (diverged parameters) or
 * memory. Allocates O(n_episodes) scratch per call (once per update, not per step). */
int ac_grpo_loss(float *dlogits, ac_grpo_metrics_t *m, const float *logp, const float *ref_logp,
                 int N, int A, const ac_grpo_step_t *steps, int n_steps,
                 const ac_grpo_episode_t *episodes, int n_episodes, const ac_grpo_config_t *cfg,
                 ac_err_t *err);

#endif
