#include "engine/eval.h"

#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "engine/keyword.h"
#include "engine/rollout.h"
#include "base/stats.h"

#define SIGN_FLIP_ROUNDS 9999
#define SIGN_FLIP_SEED 20251017
#define AC_EVAL_SEED 0x0e7a1ULL

static int eval_core(ac_agent_t *agent, ac_reward_t *reward, ac_actor_t *policy, const json_t *queries,
                     int max_steps, float temperature, ac_rng_t *rng, ac_eval_result_t *out, json_t **traj,
                     ac_err_t *err);

int ac_eval_run(ac_agent_t *agent, ac_reward_t *reward, ac_actor_t *policy, const json_t *queries, int max_steps,
                ac_eval_result_t *out, ac_err_t *err)
{
    return eval_core(agent, reward, policy, queries, max_steps, 0.0f, NULL, out, NULL, err);
}

int ac_eval_run_traced(ac_agent_t *agent, ac_reward_t *reward, ac_actor_t *policy, const json_t *queries,
                       int max_steps, ac_eval_result_t *out, json_t **trajectories, ac_err_t *err)
{
    return eval_core(agent, reward, policy, queries, max_steps, 0.0f, NULL, out, trajectories, err);
}

int ac_eval_run_random(ac_agent_t *agent, ac_reward_t *reward, const ac_actor_config_t *pc, const json_t *queries,
                       int max_steps, uint64_t seed, ac_eval_result_t *out, ac_err_t *err)
{
    memset(out, 0, sizeof *out);
    ac_actor_t *p = ac_actor_create(pc, err);
    if (p == NULL)
        return -1;
    /* every head weight 0: all logits 0, uniform over the legal tools and over the candidates */
    memset(ac_actor_params(p), 0, sizeof(float) * ac_actor_n_params(p));
    ac_rng_t rng;
    ac_rng_seed(&rng, seed);
    int rc = eval_core(agent, reward, p, queries, max_steps, 1.0f, &rng, out, NULL, err);
    ac_actor_destroy(p);
    return rc;
}

int ac_eval_fit_keyword(ac_agent_t *agent, ac_reward_t *reward, ac_actor_t *policy, const json_t *queries,
                        int max_steps, struct ac_keyword **out, ac_err_t *err)
{
    *out = NULL;
    int n = (int)json_array_size(queries);
    int *idx = malloc(sizeof *idx * (size_t)(n ? n : 1));
    ac_rollout_t ro;
    if (idx == NULL || ac_rollout_init(&ro, agent->n_actions, err) != 0) {
        free(idx);
        return ac_err_set(err, AC_ERR_INTERNAL, "eval: out of memory");
    }
    for (int i = 0; i < n; i++)
        idx[i] = i;
    ac_rollout_spec_t spec = {agent, reward, policy, NULL, queries, idx, n, 1, max_steps, 0.0f, 0, -1, NULL,
                              AC_EVAL_SEED, 0};
    int rc = n > 0 ? ac_rollout_run(&ro, &spec, err) : 0;
    if (rc == 0 && (*out = ac_keyword_fit(&ro, agent->n_actions, err)) == NULL)
        rc = -1;
    free(idx);
    ac_rollout_free(&ro);
    return rc;
}

int ac_eval_run_keyword(ac_agent_t *agent, ac_reward_t *reward, const ac_actor_config_t *cfg,
                        const struct ac_keyword *k, const json_t *queries, int max_steps, ac_eval_result_t *out,
                        ac_err_t *err)
{
    memset(out, 0, sizeof *out);
    ac_actor_t *p = ac_actor_keyword(cfg, k, err);
    if (p == NULL)
        return -1;
    int rc = eval_core(agent, reward, p, queries, max_steps, 0.0f, NULL, out, NULL, err);
    ac_actor_destroy(p);
    return rc;
}

static int eval_core(ac_agent_t *agent, ac_reward_t *reward, ac_actor_t *policy, const json_t *queries,
                     int max_steps, float temperature, ac_rng_t *rng, ac_eval_result_t *out, json_t **traj,
                     ac_err_t *err)
{
    memset(out, 0, sizeof *out);
    if (traj != NULL)
        *traj = NULL;
    int64_t t0 = ac_clock_mono_ns();
    int n = (int)json_array_size(queries);
    out->n = n;
    if (n == 0)
        return 0;
    out->success = calloc((size_t)n, 1);
    out->reward = calloc((size_t)n, sizeof *out->reward);
    int *idx = malloc(sizeof *idx * (size_t)n);
    ac_rollout_t ro;
    if (!out->success || !out->reward || !idx || ac_rollout_init(&ro, agent->n_actions, err) != 0) {
        free(idx);
        ac_eval_result_free(out);
        return ac_err_set(err, AC_ERR_INTERNAL, "eval: out of memory");
    }
    for (int i = 0; i < n; i++)
        idx[i] = i;
    /* the plugins' random numbers depend on the query's place alone: every policy evaluated on
     * these queries meets the same environment */
    ac_rollout_spec_t spec = {agent, reward, policy, rng, queries, idx, n, 1, max_steps, temperature, 0, -1, NULL,
                              AC_EVAL_SEED, 0};
    int rc = ac_rollout_run(&ro, &spec, err);
    free(idx);
    if (rc != 0) {
        ac_rollout_free(&ro);
        ac_eval_result_free(out);
        return -1;
    }
    double steps = 0, acc = 0, rew = 0;
    int ok = 0;
    for (int e = 0; e < ro.n_eps; e++) {
        const ac_episode_rec_t *ep = &ro.eps[e];
        steps += ep->n_steps;
        if (ep->failed) {
            out->failures++;
            if (out->first_error == NULL && ep->error != NULL)
                out->first_error = strdup(ep->error);
            continue;
        }
        out->success[ep->query] = (uint8_t)(ep->success != 0);
        out->reward[ep->query] = ep->reward;
        ok += ep->success != 0;
        rew += ep->reward;
        acc += ep->tool_accuracy;
    }
    out->success_rate = (double)ok / n;
    out->avg_reward = rew / n;
    out->avg_steps = steps / n;
    out->tool_accuracy = acc / n;
    out->wall_ms = (double)(ac_clock_mono_ns() - t0) / 1e6;
    if (traj != NULL && (*traj = json_array()) != NULL) { /* in query order */
        for (int i = 0; i < n; i++)
            json_array_append_new(*traj, json_null());
        for (int e = 0; e < ro.n_eps; e++) {
            const ac_episode_rec_t *ep = &ro.eps[e];
            json_t *t = ac_rollout_trajectory_json(&ro, agent, queries, e);
            if (t == NULL)
                continue;
            json_object_set_new(t, "reward", json_real(ep->failed ? 0.0 : ep->reward));
            json_object_set_new(t, "success", json_boolean(!ep->failed && ep->success));
            json_object_set_new(t, "error", ep->error ? json_string(ep->error) : json_null());
            json_array_set_new(*traj, (size_t)ep->query, t);
        }
    }
    ac_rollout_free(&ro);
    return 0;
}

void ac_eval_result_free(ac_eval_result_t *r)
{
    free(r->success);
    free(r->reward);
    free(r->first_error);
    r->success = NULL;
    r->reward = NULL;
    r->first_error = NULL;
}

/* base and trained must have evaluated the same queries in the same order. */
static void paired_stats(const ac_eval_result_t *base, const ac_eval_result_t *trained, ac_eval_stats_t *out)
{
    memset(out, 0, sizeof *out);
    int n = base->n < trained->n ? base->n : trained->n;
    double *d = malloc(sizeof *d * (size_t)(n ? n : 1));
    int kb = 0, kt = 0;
    for (int i = 0; i < n; i++) {
        out->only_baseline += base->success[i] && !trained->success[i];
        out->only_trained += !base->success[i] && trained->success[i];
        kb += base->success[i];
        kt += trained->success[i];
        if (d != NULL)
            d[i] = trained->reward[i] - base->reward[i];
    }
    out->success_rate_improvement = trained->success_rate - base->success_rate;
    out->avg_reward_improvement = trained->avg_reward - base->avg_reward;
    out->p_value = ac_stats_mcnemar_exact(out->only_baseline, out->only_trained);
    out->p_value_reward = d != NULL ? ac_stats_sign_flip(d, n, SIGN_FLIP_ROUNDS, SIGN_FLIP_SEED) : 1.0;
    ac_stats_wilson(kb, n, 1.96, &out->baseline_ci[0], &out->baseline_ci[1]);
    ac_stats_wilson(kt, n, 1.96, &out->trained_ci[0], &out->trained_ci[1]);
    free(d);
}

int ac_eval_compare(ac_agent_t *agent, ac_reward_t *reward, ac_actor_t *baseline, ac_actor_t *trained,
                    const json_t *queries, int max_steps, ac_eval_comparison_t *out, ac_err_t *err)
{
    memset(out, 0, sizeof *out);
    if (ac_eval_run(agent, reward, baseline, queries, max_steps, &out->baseline, err) != 0)
        return -1;
    if (ac_eval_run(agent, reward, trained, queries, max_steps, &out->trained, err) != 0) {
        ac_eval_result_free(&out->baseline);
        return -1;
    }
    paired_stats(&out->baseline, &out->trained, &out->stats);
    return 0;
}

void ac_eval_comparison_free(ac_eval_comparison_t *c)
{
    ac_eval_result_free(&c->baseline);
    ac_eval_result_free(&c->trained);
}

json_t *ac_eval_comparison_json(const ac_eval_comparison_t *c)
{
    const ac_eval_stats_t *s = &c->stats;
    return json_pack("{s:o, s:o, s:f, s:f, s:f, s:b, s:f, s:i, s:i}", "baseline", ac_eval_side_json(&c->baseline),
                     "trained", ac_eval_side_json(&c->trained), "success_rate_improvement",
                     s->success_rate_improvement, "avg_reward_improvement", s->avg_reward_improvement, "p_value",
                     s->p_value, "statistically_significant", s->p_value < 0.05, "p_value_reward", s->p_value_reward,
                     "only_baseline_solved", s->only_baseline, "only_trained_solved", s->only_trained);
}

json_t *ac_eval_side_json(const ac_eval_result_t *r)
{
    double lo, hi;
    int k = 0;
    for (int i = 0; i < r->n; i++)
        k += r->success[i] != 0;
    ac_stats_wilson(k, r->n, 1.96, &lo, &hi);
    json_t *o = ac_eval_metrics_json(r);
    json_object_set_new(o, "success_rate_ci95", json_pack("[f, f]", lo, hi));
    json_object_set_new(o, "queries", json_integer(r->n));
    json_object_set_new(o, "plugin_failures", json_integer(r->failures));
    return o;
}

json_t *ac_eval_metrics_json(const ac_eval_result_t *r)
{
    return json_pack("{s:f, s:f, s:f, s:f}", "success_rate", r->success_rate, "avg_reward", r->avg_reward,
                     "avg_steps", r->avg_steps, "tool_accuracy", r->tool_accuracy);
}
