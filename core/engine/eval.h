/* Evaluation: a policy acting greedily on held-out queries, and the comparison of a trained
 * policy with its baseline (the untrained one) on the same queries. */
#ifndef AC_EVAL_H
#define AC_EVAL_H

#include <stdint.h>

#include "lua/plugin.h"
#include "engine/actor.h"

typedef struct ac_eval_result {
    int n;                 /* queries evaluated */
    int failures;          /* episodes a plugin failed (they count as unsuccessful, reward 0) */
    double success_rate;
    double avg_reward;
    double avg_steps;
    double tool_accuracy;
    uint8_t *success;      /* (n) per query */
    double *reward;        /* (n) per query */
    char *first_error;     /* a sample failure message, or NULL */
    double wall_ms;
} ac_eval_result_t;

/* One greedy episode per query, all queries in lockstep. */
int ac_eval_run(ac_agent_t *agent, ac_reward_t *reward, ac_actor_t *policy, const json_t *queries, int max_steps,
                ac_eval_result_t *out, ac_err_t *err);
/* The same, keeping each query's episode: *trajectories (new array, in query order) holds the
 * trajectories in the export format with "reward", "success" and "error". */
int ac_eval_run_traced(ac_agent_t *agent, ac_reward_t *reward, ac_actor_t *policy, const json_t *queries,
                       int max_steps, ac_eval_result_t *out, json_t **trajectories, ac_err_t *err);
/* The random baseline: one episode per query choosing uniformly among the legal tools and among
 * each argument's candidates (a policy of cfg's shape with every weight 0, sampled from a
 * generator seeded with seed). */
int ac_eval_run_random(ac_agent_t *agent, ac_reward_t *reward, const ac_actor_config_t *cfg, const json_t *queries,
                       int max_steps, uint64_t seed, ac_eval_result_t *out, ac_err_t *err);
void ac_eval_result_free(ac_eval_result_t *r);

/* The keyword rule baseline (engine/keyword.h): fitted on the successful greedy episodes of
 * `policy` on `queries` (the training split), then run like a greedy policy. *out: free with
 * ac_keyword_free. */
struct ac_keyword;
int ac_eval_fit_keyword(ac_agent_t *agent, ac_reward_t *reward, ac_actor_t *policy, const json_t *queries,
                        int max_steps, struct ac_keyword **out, ac_err_t *err);
int ac_eval_run_keyword(ac_agent_t *agent, ac_reward_t *reward, const ac_actor_config_t *cfg,
                        const struct ac_keyword *k, const json_t *queries, int max_steps, ac_eval_result_t *out,
                        ac_err_t *err);

/* The paired statistics of two policies' results on the same queries. */
typedef struct ac_eval_stats {
    double success_rate_improvement; /* trained - baseline */
    double avg_reward_improvement;
    int only_baseline;               /* queries only the baseline solved (McNemar's b) */
    int only_trained;                /* queries only the trained policy solved (c) */
    double p_value;                  /* exact McNemar on paired success */
    double p_value_reward;           /* paired sign-flip permutation test on per-query rewards */
    double baseline_ci[2];           /* Wilson 95 % interval of each success rate */
    double trained_ci[2];
} ac_eval_stats_t;

/* "Baseline, trained, compare": both policies evaluated greedily on the same queries, and the
 * paired statistics. What training.evaluate (the untrained policy rebuilt from the job's seed
 * against a checkpoint) and agentcore train (the untrained policy against the one validation
 * selected) both report. */
typedef struct ac_eval_comparison {
    ac_eval_result_t baseline; /* owned: ac_eval_comparison_free */
    ac_eval_result_t trained;
    ac_eval_stats_t stats;
} ac_eval_comparison_t;

/* Runs baseline, then trained, on queries (max_steps per episode) and compares them. The
 * policies are borrowed and left as they were. Returns 0, or -1 with err set (a plugin or memory
 * failure; *out then holds nothing to free). A plugin failing inside an episode is not an error:
 * the episode counts as unsuccessful (ac_eval_result_t.failures). */
int ac_eval_compare(ac_agent_t *agent, ac_reward_t *reward, ac_actor_t *baseline, ac_actor_t *trained,
                    const json_t *queries, int max_steps, ac_eval_comparison_t *out, ac_err_t *err);
void ac_eval_comparison_free(ac_eval_comparison_t *c);

/* The comparison as both callers report it (new reference):
 *   {"baseline": side, "trained": side, "success_rate_improvement", "avg_reward_improvement",
 *    "p_value", "statistically_significant" (p_value < 0.05), "p_value_reward",
 *    "only_baseline_solved", "only_trained_solved"}
 * where side is ac_eval_side_json. */
json_t *ac_eval_comparison_json(const ac_eval_comparison_t *c);

/* {"success_rate", "avg_reward", "avg_steps", "tool_accuracy"}: new reference. */
json_t *ac_eval_metrics_json(const ac_eval_result_t *r);
/* The same plus "success_rate_ci95" (Wilson), "queries" and "plugin_failures": one side of a
 * comparison as the service's evaluate and agentcore train report it. New reference. */
json_t *ac_eval_side_json(const ac_eval_result_t *r);

#endif
