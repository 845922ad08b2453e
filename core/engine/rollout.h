/* Rollouts: the policy acting in a Lua agent's environment.
 *
 * Episodes run in lockstep: at each step every live episode's context is rendered by the host
 * (engine/context.h: the query, the episode's earlier calls and results, the agent's optional
 * observation and candidates), the actor reads all of them in one batched forward, and each
 * episode decides its call: the tool (masked by agent.legal and by tools whose arguments have no
 * candidate), then each argument among its candidates (sampled, or greedy). The agent runs the
 * tool with those arguments. An episode ends when the agent says done, when a tool fails, or at
 * max_steps (truncated); then the agent gives its final answer and the reward plugin scores the
 * trajectory.
 *
 * Everything the GRPO update needs is kept: every state's tokens (ro->states, in step order),
 * its tool mask, each decision's options and choice and its behaviour log-probability (stored
 * when sampled, never recomputed), and per-episode rewards. Everything the API exports is kept
 * too: per step the rendered context, the tool and its arguments, the result, a timestamp and a
 * duration. */
#ifndef AC_ROLLOUT_H
#define AC_ROLLOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include "base/err.h"
#include "base/rng.h"
#include "engine/actor.h"
#include "lua/plugin.h"

typedef struct ac_step_rec {
    int state;          /* this step's state in ac_rollout_t.states (episodes that saw the same
                           context at the same step share one state) */
    int mask_row;       /* its tool mask: ac_rollout_t.mask row */
    int action;         /* the tool */
    float logp_old;     /* behaviour log-prob of the tool decision (greedy steps too: the log-prob of the argmax) */
    int n_slots;        /* the tool's arguments: one pointer decision each */
    int cand_off[AC_AGENT_MAX_ARGS];  /* each slot's candidates: ro->cand[cand_off .. + n_cand) */
    int n_cand[AC_AGENT_MAX_ARGS];
    int chosen[AC_AGENT_MAX_ARGS];    /* index into the slot's candidates */
    int chosen_tok[AC_AGENT_MAX_ARGS]; /* the token it points to */
    int from_query[AC_AGENT_MAX_ARGS]; /* that token's place in the query, -1 outside it
                                          (ac_context_query_origin: the cursor's "taken") */
    float slot_logp_old[AC_AGENT_MAX_ARGS];
    char *observation;  /* the rendered context the policy read (owned) */
    json_t *params;     /* the arguments, name -> value (owned; {} for a tool without any) */
    json_t *result;     /* tool result (owned) */
    int64_t ts_ms;      /* wall clock when the step started */
    int64_t duration_us;
    int tool_failed;
    int next;           /* the episode's next step in steps[], -1 after its last (episodes run in
                           lockstep, so their steps interleave) */
} ac_step_rec_t;

typedef struct ac_episode_rec {
    int query;          /* index into the query array the rollout was given */
    int group;          /* 0-based group: episodes of the same query in this rollout */
    int first_step;     /* its first step in steps[] (-1 when none); follow step.next */
    int last_step;
    int n_steps;
    int truncated;      /* cut at max_steps */
    int failed;         /* a plugin (not a tool) failed: the episode has no reward and no gradient */
    int spoiled;        /* any plugin failure, a failed tool call included (counted once) */
    char *error;        /* why it failed (owned), or NULL */
    json_t *final;      /* agent.final's answer (owned; NULL when failed) */
    double reward;
    int success;
    double tool_accuracy; /* from the reward plugin, or the fraction of tool calls that did not fail */
    double *step_rewards; /* (n_steps) owned, or NULL */
    int64_t cost_micro;   /* tool calls plus policy steps, micro-USD */
    int64_t start_ms;
    int64_t exec_ms;
    size_t bytes;         /* its observations, params and results so far (limits.max_trajectory_bytes) */
} ac_episode_rec_t;

typedef struct ac_rollout {
    ac_states_t states;      /* every distinct state visited, in step order */
    uint8_t *mask;           /* (n_mask, n_actions) tool masks, one row per step taken or tried */
    int n_mask, _cap_mask;
    int n_actions;
    int *cand;               /* candidate token indices of every slot decision */
    int n_cand, _cap_cand;
    ac_step_rec_t *steps;
    int n_steps, _cap_steps;
    ac_episode_rec_t *eps;
    int n_eps, _cap_eps;
    int n_groups;
    /* plugin failures, counted (not hidden) */
    int tool_failures, agent_failures, reward_failures; /* failed calls */
    int failed_episodes;   /* episodes with at least one of them */
    char *first_errors[4]; /* a few sample messages (owned) */
    int n_errors;
    int64_t cost_micro;    /* all episodes */
    int budget_exhausted;  /* a step was refused because it would have passed budget_micro */
    int stopped;           /* spec.stop was set: the rollout ended early, unscored */
    /* private: one context per running episode, kept from rollout to rollout (their buffers are
     * what a step renders into) */
    ac_context_t *_ctx;
    int _n_ctx, _ctx_tokens;
} ac_rollout_t;

typedef struct ac_rollout_spec {
    ac_agent_t *agent;
    ac_reward_t *reward;       /* NULL: no scoring */
    ac_actor_t *policy;
    ac_rng_t *rng;             /* sampling; unused when temperature <= 0 */
    const json_t *queries;     /* array of {query, expected_outcome} */
    const int *query_idx;      /* (n_groups) which queries this rollout runs */
    int n_groups;
    int n_per_group;           /* episodes per query */
    int max_steps;             /* the job's cap; the agent's own max_steps applies when smaller */
    float temperature;         /* <= 0: greedy */
    int64_t step_cost_micro;   /* price of one policy step */
    int64_t budget_micro;      /* < 0: unlimited; else no step is taken that would bring the
                                  rollout's cost_micro past it (the rollout then stops with
                                  budget_exhausted set, its unfinished episodes unscored) */
    const atomic_int *stop;    /* NULL, or a flag that, once set, ends the rollout before its next
                                  step with `stopped` set (its episodes are not to be used) */
    uint64_t seed;             /* the plugins' random numbers: episode k of this rollout gets the
                                  seed ac_rollout_episode_seed(seed, iteration, k) */
    int64_t iteration;         /* 1-based training iteration, 0 for an evaluation */
} ac_rollout_spec_t;

/* The seed of an episode's plugin generator (ctx.seed): a mix of the run's seed, the iteration
 * and the episode's number in the rollout, so that a rerun or a resumed run draws the same. */
uint64_t ac_rollout_episode_seed(uint64_t seed, int64_t iteration, int episode);

/* Prepares an empty rollout for an agent of n_actions tools. */
int ac_rollout_init(ac_rollout_t *ro, int n_actions, ac_err_t *err);
/* Empties it, keeping its memory. */
void ac_rollout_clear(ac_rollout_t *ro);
void ac_rollout_free(ac_rollout_t *ro);

/* Runs spec's episodes and APPENDS them (groups numbered after the ones already there; DAPO's
 * dynamic sampling draws more groups into the same rollout). Plugin failures are counted in ro
 * and mark their episode failed; -1 only for failures of the host itself (memory, the policy). */
int ac_rollout_run(ac_rollout_t *ro, const ac_rollout_spec_t *spec, ac_err_t *err);

/* The trajectory as the reward plugin and the export API see it:
 * {query, steps: [{state: {context}, action: {tool, params}, result, timestamp, duration_ms}],
 *  final, truncated}. New reference. */
json_t *ac_rollout_trajectory_json(const ac_rollout_t *ro, const ac_agent_t *agent, const json_t *queries,
                                   int episode);

#endif
