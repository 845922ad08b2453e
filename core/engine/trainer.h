/* The GRPO trainer: one policy learning one agent's task, an iteration at a time.
 *
 * An iteration samples batch_size queries, runs n_trajectories_per_query rollouts of each (a
 * group), scores them with the reward plugin, computes group-relative advantages, and takes mu
 * Adam steps on the clipped surrogate plus a KL penalty to the reference policy (the initial
 * one). DAPO's dynamic sampling drops groups whose rewards are all equal and draws more queries
 * until the batch is full or the iteration spent dapo_max_draws x batch rollouts.
 *
 * The state that makes a run reproducible is the policy, the Adam moments, the RNG and the
 * iteration: a checkpoint holds exactly that (ac_trainer_save/restore), and restoring then
 * continuing gives the same numbers as never stopping. The reference policy is not saved: it is
 * rebuilt from the seed. */
#ifndef AC_TRAINER_H
#define AC_TRAINER_H

#include <stdint.h>

#include "engine/grpo.h"
#include "engine/optim.h"
#include "lua/plugin.h"
#include "engine/actor.h"
#include "engine/rollout.h"
#include "base/train_config.h"

typedef struct ac_iter_metrics {
    uint64_t iteration;      /* 1-based number of the iteration just done */
    double loss;             /* the objective of the last epoch */
    double avg_reward;
    double reward_std;
    double success_rate;     /* over the scored episodes */
    double kl;               /* k3 estimate at the taken actions */
    double kl_exact;         /* exact KL(pi || ref) over the legal actions */
    double entropy;
    double clip_fraction;    /* of the last epoch: decisions whose clipping removed the gradient
                                (clip_low + clip_high) */
    double clip_low, clip_high; /* ... below 1 - eps with A < 0, above 1 + eps_high with A > 0 */
    double clip_region;      /* decisions whose ratio left [1 - eps, 1 + eps_high], whatever A */
    int decisions;           /* decisions the loss counted (more than one legal option) */
    double zero_var_frac;    /* groups with equal rewards (no signal), before DAPO drops them */
    double grad_norm;        /* before clipping, last epoch */
    int trajectories;        /* episodes generated (all draws) */
    int steps;               /* agent steps taken */
    int groups_used;         /* groups that carried gradient */
    int tool_failures, agent_failures, reward_failures; /* failed plugin calls, by kind */
    int failed_episodes;     /* episodes with at least one (what training.max_failure_rate bounds) */
    int64_t cost_micro;      /* this iteration's tool and policy-step cost */
    int budget_exhausted;    /* the budget stopped the rollouts: no update, iteration not counted */
    int stopped;             /* the trainer's stop flag ended the rollouts: likewise */
    int zero_var_stall;      /* DAPO: the rollout cap was hit with groups_short groups missing */
    int groups_short;
    double wall_ms;
} ac_iter_metrics_t;

/* A slice of the update's batch: whole episodes whose states the actor reads at once. */
typedef struct ac_trainer_slice {
    int st0, st1;  /* states of t->states */
    int d0, d1;    /* decisions (and GRPO tokens) */
    size_t f0, f1; /* their options in the flat arrays; the decisions' off are relative to f0 */
} ac_trainer_slice_t;

typedef struct ac_trainer {
    ac_train_config_t cfg;
    ac_agent_t *agent;   /* borrowed */
    ac_reward_t *reward; /* borrowed */
    uint64_t seed;
    ac_actor_t *policy;
    ac_actor_t *ref;     /* frozen initial policy */
    ac_optim_t *optim;
    ac_rng_t rng;
    uint64_t iteration;
    ac_grpo_config_t gcfg;
    int64_t step_cost_micro;
    ac_rollout_t ro;     /* the last iteration's rollouts (for storing trajectories) */
    /* per-episode advantage of the last iteration's episodes (ro.eps order; NaN when unused) */
    double *ep_advantage;
    double *ep_norm_reward;
    /* the update's batch, episode after episode: states, decisions, GRPO inputs, slices */
    ac_states_t states;
    ac_decision_t *dec;
    ac_grpo_token_t *tokens;
    ac_grpo_step_t *steps;
    ac_grpo_episode_t *eps;
    ac_trainer_slice_t *slices;
    int n_dec, n_steps, n_slices;
    int cap_dec, cap_tokens, cap_steps, cap_eps, cap_slices;
    float *logp, *ref_logp, *dlogits; /* flat: every decision's options */
    size_t n_flat, cap_flat;
    int n_batch_eps;
    int *emap, *gmap; /* rollout episode -> batch episode, rollout group -> batch group (-1: dropped) */
    int cap_emap, cap_gmap;
    int *smap;        /* per rollout state: (slice, batch state) it was copied to in this slice */
    int cap_smap;
    uint8_t *signal;  /* per rollout group: its rewards differ */
    int cap_signal;
    double *first_adv; /* per batch episode: its first step's advantage */
    int cap_first_adv;
    int *order; /* (n queries) sampling scratch */
    int n_order;
    const atomic_int *stop; /* NULL, or a flag that ends the current iteration early (cancel,
                               shutdown): it then changes nothing (m->stopped) */
} ac_trainer_t;

/* The policy a config describes for an agent (kind and sizes from cfg, tools and their
 * arguments from the agent). */
void ac_trainer_policy_config(ac_actor_config_t *pc, const ac_train_config_t *cfg, const ac_agent_t *agent,
                              uint64_t seed);

/* Creates a trainer at iteration 0 with a fresh policy from seed. agent and reward are borrowed
 * and must outlive it. step_cost_micro: the price of one policy step. */
ac_trainer_t *ac_trainer_create(const ac_train_config_t *cfg, ac_agent_t *agent, ac_reward_t *reward,
                                uint64_t seed, int64_t step_cost_micro, ac_err_t *err);
void ac_trainer_destroy(ac_trainer_t *t);

/* Threads for the sequence policy's own kernels (attention, GELU) in the policy and its
 * reference, beside the BLAS threads (ac_blas_set_threads); nothing for the bag policy. Results
 * do not depend on n. -1 when threads cannot be started (it then runs on one). */
int ac_trainer_set_threads(ac_trainer_t *t, int n, ac_err_t *err);

/* One iteration over `training` (array of {query, expected_outcome}). budget_micro < 0 is
 * unlimited; else no agent step is taken that would bring the iteration's cost past it, and
 * when that happens the iteration is abandoned (m->budget_exhausted, no update; the cost of
 * the steps taken is in m->cost_micro). Plugin failures are counted in m, not returned; -1
 * only when the engine itself fails. */
int ac_trainer_iterate(ac_trainer_t *t, const json_t *training, int64_t budget_micro, ac_iter_metrics_t *m,
                       ac_err_t *err);

/* The rule the service and agentcore train both apply to plugin failures: 1 when failures /
 * episodes > max_rate (and there was at least one failure), with msg "plugin failures: F of E
 * episodes (rate above R)". */
int ac_trainer_failures_exceed(int64_t failures, int64_t episodes, double max_rate, char *msg, size_t len);

/* Checkpoint: serialises policy, Adam state, RNG and iteration (meta: optional bytes kept with
 * it). *buf is malloc'd. */
int ac_trainer_save(const ac_trainer_t *t, const void *meta, size_t meta_len, uint8_t **buf, size_t *len,
                    ac_err_t *err);
/* Restores a checkpoint made by ac_trainer_save for the same config, agent and seed. When meta
 * is not NULL, *meta receives a malloc'd, NUL-terminated copy of the saved meta bytes (NULL when
 * there were none) and *meta_len their length. The policy and the reference go on reading with
 * the checkpoint's feature set (a job trained before a reader change resumes as it trained). */
int ac_trainer_restore(ac_trainer_t *t, const uint8_t *buf, size_t len, char **meta, size_t *meta_len,
                       ac_err_t *err);
/* Fine-tuning: the policy and the reference (what the KL penalty holds it to) take init's
 * weights and feature set. -1 (nothing changed) when init has another kind or shape. */
int ac_trainer_start_from(ac_trainer_t *t, ac_actor_t *init);

#endif
