/* GRPO math over a batch of decisions: advantages (group-normalised, leave-one-out or batch
 * baseline), the clipped-ratio surrogate with a k3 KL penalty to the reference policy and an
 * optional entropy bonus, its gradient w.r.t. the policy's log-probabilities' logits, and the
 * metrics a trainer reports. docs/grpo.md has the formulas.
 *
 * A step of an episode is one tool call; the policy makes one or more DECISIONS at each step (the
 * tool, then each of its argument slots): each decision is a categorical choice among options,
 * and plays the part a token plays in the GRPO papers: it has its own ratio, clipping, KL and
 * entropy, and the loss aggregates over decisions. A decision with a single legal option is no
 * decision (its log-prob is 0 whatever the weights): it carries no gradient, is left out of the
 * loss's normalisation and of every metric.
 *
 * One update, as the trainer drives it (mu epochs over the same rollouts):
 *
 *     ac_grpo_advantages(steps, &m, ...)                 // once per batch of rollouts
 *     policy forward on the reference (frozen)           // once: ref_logp
 *     for epoch in 1..mu:
 *         policy forward -> logp (flat: each token's options at tok.off)
 *         ac_grpo_loss(dlogits, &m, logp, ref_logp, tokens, ...)
 *         policy backward from dlogits; clip; Adam step
 *
 * Pure functions over caller-owned arrays; no global state; thread-safe. */
#ifndef AC_GRPO_H
#define AC_GRPO_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

enum {
    AC_GRPO_LOSS_GRPO = 0,    /* mean over each episode's decisions, then mean over episodes */
    AC_GRPO_LOSS_DR_GRPO = 1, /* sum over decisions / (n_episodes * max_tokens); use scale_std = 0 */
    AC_GRPO_LOSS_DAPO = 2,    /* mean over all decisions of the batch (token-level) */
};

enum {
    AC_GRPO_ADV_GROUP = 0, /* (R - mean of the group) / (std of the group + eps) */
    AC_GRPO_ADV_RLOO = 1,  /* R - mean of the group's OTHER episodes (leave one out) */
    AC_GRPO_ADV_BATCH = 2, /* (R - mean of the batch) / (std of the batch + eps): REINFORCE with a
                              batch baseline. A group of one episode uses this whatever the mode:
                              it has no peers to compare with. */
};

typedef struct ac_grpo_config {
    int loss_type;        /* AC_GRPO_LOSS_*; default GRPO */
    int advantage;        /* AC_GRPO_ADV_*; default GROUP */
    float clip_eps_low;   /* ratio clipped below at 1 - clip_eps_low; default 0.2 */
    float clip_eps_high;  /* and above at 1 + clip_eps_high; default 0.2 (DAPO clip-higher: 0.28) */
    float kl_beta;        /* weight of the k3 KL penalty; default 0.04; 0 disables */
    float entropy_coef;   /* weight of the entropy bonus (subtracted); default 0 */
    int scale_std;        /* 1: divide by the group's (or batch's) std; 0: don't (Dr. GRPO) */
    float std_eps;        /* default 1e-4 */
    int per_step_rewards; /* 0: every decision of an episode gets the episode's advantage.
                             1: step rewards -> discounted returns G_t, normalised per group (or
                             batch) over all steps of the group (put the outcome reward in the
                             last step); rloo then normalises as group */
    float gamma;          /* discount for per-step returns; default 1 */
    int mask_truncated;   /* 1: decisions of truncated episodes add nothing to the loss (they still
                             count in the group's reward statistics); default 0 */
    int max_tokens;       /* decisions an episode can have at most: the DR_GRPO normaliser
                             (required > 0 for it) */
    int norm_tokens;      /* 0: the loss normalises by the decisions (DAPO) and episodes (GRPO)
                             that count among the tokens given; > 0: by these batch-wide counts
                             instead (norm_episodes too), so that a batch can be passed a slice of
                             whole episodes at a time and the slices' gradients add up to the
                             batch's. Metrics stay means over the slice. */
    int norm_episodes;
} ac_grpo_config_t;

typedef struct ac_grpo_step {
    int episode;     /* index into the episode array */
    float reward;    /* per-step reward (only with per_step_rewards) */
    float advantage; /* written by ac_grpo_advantages (or set by the caller) */
} ac_grpo_step_t;

typedef struct ac_grpo_token {
    int step;       /* the step the decision belongs to (its advantage and episode) */
    size_t off;     /* its options' entries in the flat logp / ref_logp / dlogits arrays */
    int n;          /* options: off .. off + n - 1; -INFINITY in logp marks an illegal one */
    int chosen;     /* 0..n-1: the option taken (must be legal) */
    float logp_old; /* behaviour log-prob of the choice, stored when it was sampled */
    float logp_ref; /* reference log-prob of the choice (used when no ref_logp array is given) */
} ac_grpo_token_t;

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
    /* written by ac_grpo_loss: means over the decisions that count (n_tokens_used: more than
     * one legal option, not masked) */
    double loss;          /* the objective aggregated by loss_type: what dlogits is the gradient of */
    double surrogate;     /* mean clipped surrogate -min(rA, clip(r)A) */
    double kl_k3;         /* mean k3 = exp(ref - logp) - (ref - logp) - 1 at the choices */
    double kl_exact;      /* mean exact KL(pi || ref) over legal options; NaN without ref_logp */
    double entropy;       /* mean exact entropy of pi over legal options */
    double clip_low;      /* fraction clipped below with the gradient removed (A < 0, r < 1 - eps) */
    double clip_high;     /* fraction clipped above with the gradient removed (A > 0, r > 1 + eps) */
    double clip_region;   /* fraction with r outside [1 - eps_low, 1 + eps_high], whatever A */
    double ratio_mean, ratio_min, ratio_max;
    int n_tokens_used;
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

/* tokens[i].logp_ref = ref_logp[tokens[i].off + tokens[i].chosen]. */
void ac_grpo_fill_ref(ac_grpo_token_t *tokens, int n_tokens, const float *ref_logp);

/* Loss, its gradient w.r.t. the logits, and the loss metrics.
 *   dlogits (len) out: overwritten; dL/dz of every token's options (0 at illegal ones and at
 *     entries no token covers); tokens may share options (their gradients add).
 *   m out (may be NULL): loss fields; the reward fields are left alone.
 *   logp (len): the current policy's log-probabilities (log-softmax of each token's options).
 *   ref_logp (len) or NULL: the reference policy's on the same tokens; when given, k3 uses it
 *     (tokens' logp_ref ignored) and kl_exact is computed; else k3 uses tokens' logp_ref.
 * -1 with AC_ERR_INVALID_PARAMS on an index out of range, an illegal choice, or DR_GRPO without
 * max_tokens; AC_ERR_INTERNAL on a NaN/inf log-prob (diverged parameters) or memory. Allocates
 * O(n_episodes) scratch per call (once per update, not per decision). */
int ac_grpo_loss(float *dlogits, ac_grpo_metrics_t *m, const float *logp, const float *ref_logp,
                 size_t len, const ac_grpo_token_t *tokens, int n_tokens, const ac_grpo_step_t *steps,
                 int n_steps, const ac_grpo_episode_t *episodes, int n_episodes,
                 const ac_grpo_config_t *cfg, ac_err_t *err);

#endif
