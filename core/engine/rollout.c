#include "engine/rollout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"

int ac_rollout_init(ac_rollout_t *ro, const ac_policy_config_t *cfg, ac_err_t *err)
{
    memset(ro, 0, sizeof *ro);
    ro->n_actions = cfg->n_actions;
    return ac_policy_batch_init(&ro->batch, cfg, 256, err);
}

static void clear_records(ac_rollout_t *ro)
{
    for (int i = 0; i < ro->n_steps; i++) {
        free(ro->steps[i].observation);
        json_decref(ro->steps[i].params);
        json_decref(ro->steps[i].result);
    }
    for (int i = 0; i < ro->n_eps; i++) {
        free(ro->eps[i].error);
        json_decref(ro->eps[i].final);
        free(ro->eps[i].step_rewards);
    }
    for (int i = 0; i < ro->n_errors; i++)
        free(ro->first_errors[i]);
}

void ac_rollout_clear(ac_rollout_t *ro)
{
    clear_records(ro);
    ac_policy_batch_clear(&ro->batch);
    ro->n_steps = ro->n_eps = ro->n_groups = ro->n_errors = 0;
    ro->tool_failures = ro->agent_failures = ro->reward_failures = 0;
    ro->cost_micro = 0;
    ro->budget_exhausted = 0;
    ro->stopped = 0;
}

void ac_rollout_free(ac_rollout_t *ro)
{
    clear_records(ro);
    ac_policy_batch_free(&ro->batch);
    free(ro->mask);
    free(ro->steps);
    free(ro->eps);
    memset(ro, 0, sizeof *ro);
}

static void note_error(ac_rollout_t *ro, const char *msg)
{
    if (ro->n_errors < (int)(sizeof ro->first_errors / sizeof ro->first_errors[0]))
        ro->first_errors[ro->n_errors++] = strdup(msg);
}

static void fail_episode(ac_rollout_t *ro, ac_episode_rec_t *ep, int *counter, const ac_err_t *e)
{
    (*counter)++;
    ep->failed = 1;
    free(ep->error);
    ep->error = strdup(e->message[0] ? e->message : "plugin failure");
    note_error(ro, ep->error);
}

static int grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, (size_t)n * elem);
    if (p == NULL)
        return -1;
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(n - *cap) * elem);
    *arr = p;
    *cap = n;
    return 0;
}

json_t *ac_rollout_trajectory_json(const ac_rollout_t *ro, const ac_agent_t *agent, const json_t *queries,
                                   int episode)
{
    const ac_episode_rec_t *ep = &ro->eps[episode];
    json_t *steps = json_array();
    char ts[40];
    for (int k = ep->first_step; k >= 0; k = ro->steps[k].next) {
        const ac_step_rec_t *s = &ro->steps[k];
        json_array_append_new(
            steps, json_pack("{s:{s:s}, s:{s:s, s:O}, s:O, s:s, s:f}", "state", "context",
                             s->observation ? s->observation : "", "action", "tool", agent->actions[s->action],
                             "params", s->params ? s->params : json_null(), "result",
                             s->result ? s->result : json_null(), "timestamp",
                             ac_clock_iso8601(ts, sizeof ts, s->ts_ms, 1), "duration_ms",
                             (double)s->duration_us / 1000.0));
    }
    json_t *q = json_object_get(json_array_get(queries, (size_t)ep->query), "query");
    return json_pack("{s:O, s:o, s:O, s:b}", "query", q ? q : json_null(), "steps", steps, "final",
                     ep->final ? ep->final : json_null(), "truncated", ep->truncated);
}

uint64_t ac_rollout_episode_seed(uint64_t seed, int64_t iteration, int episode)
{
    /* splitmix64 finaliser over the three: nearby runs, iterations and episodes get unrelated
     * streams */
    uint64_t z = seed ^ ((uint64_t)iteration * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)episode * 0xd1b54a32d192ed03ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Ends an episode: its final answer, then its reward. */
static void finish(ac_rollout_t *ro, const ac_rollout_spec_t *spec, int e, ac_episode_t *st)
{
    ac_episode_rec_t *ep = &ro->eps[e];
    ac_err_t err = AC_ERR_INIT;
    if (!ep->failed && ac_agent_final(spec->agent, st, &ep->final, &err) != 0)
        fail_episode(ro, ep, &ro->agent_failures, &err);
    ac_err_clear(&err);
    if (!ep->failed && spec->reward != NULL) {
        json_t *traj = ac_rollout_trajectory_json(ro, spec->agent, spec->queries, e);
        json_t *expected = json_object_get(json_array_get(spec->queries, (size_t)ep->query), "expected_outcome");
        ac_reward_info_t info = {0};
        if (traj == NULL || ac_reward_score(spec->reward, traj, expected, st, &ep->reward, &info, &err) != 0) {
            if (traj == NULL)
                ac_err_set(&err, AC_ERR_INTERNAL, "cannot build the trajectory");
            fail_episode(ro, ep, &ro->reward_failures, &err);
        } else {
            ep->success = info.success;
            if (info.tool_accuracy >= 0) {
                ep->tool_accuracy = info.tool_accuracy;
            } else {
                int ok = 0;
                for (int k = ep->first_step; k >= 0; k = ro->steps[k].next)
                    ok += !ro->steps[k].tool_failed;
                ep->tool_accuracy = ep->n_steps ? (double)ok / ep->n_steps : 0.0;
            }
            if (info.step_rewards != NULL && info.n_step_rewards == (size_t)ep->n_steps) {
                ep->step_rewards = info.step_rewards;
                info.step_rewards = NULL;
            }
            ac_reward_info_clear(&info);
        }
        json_decref(traj);
        ac_err_clear(&err);
    }
    ep->exec_ms = ac_clock_now_ms() - ep->start_ms;
    ac_agent_episode_free(spec->agent, st);
}

int ac_rollout_run(ac_rollout_t *ro, const ac_rollout_spec_t *spec, ac_err_t *err)
{
    ac_agent_t *agent = spec->agent;
    const int A = agent->n_actions;
    if (A != ro->n_actions || A != spec->policy->cfg.n_actions)
        return ac_err_set(err, AC_ERR_INTERNAL, "rollout: the agent has %d actions, the policy %d", A,
                          spec->policy->cfg.n_actions);
    int max_steps = spec->max_steps;
    if (agent->max_steps > 0 && agent->max_steps < max_steps)
        max_steps = agent->max_steps;
    const int E = spec->n_groups * spec->n_per_group;
    if (E <= 0)
        return 0;

    int ret = -1;
    ac_episode_t *st = malloc(sizeof *st * (size_t)E);
    int *live = calloc((size_t)E, sizeof *live);
    int *rows = malloc(sizeof *rows * (size_t)E);
    int *ep_of = malloc(sizeof *ep_of * (size_t)E);
    float *logp = malloc(sizeof *logp * (size_t)E * (size_t)A);
    uint8_t *tmask = malloc((size_t)E * (size_t)A);
    char **obs = calloc((size_t)E, sizeof *obs);
    char *buf = NULL;
    size_t cap = 0, len = 0;
    ac_policy_batch_t tb = {0};
    if (!st || !live || !rows || !ep_of || !logp || !tmask || !obs ||
        grow((void **)&ro->eps, &ro->_cap_eps, ro->n_eps + E, sizeof *ro->eps) != 0 ||
        ac_policy_batch_init(&tb, &spec->policy->cfg, E, err) != 0) {
        ac_err_set(err, AC_ERR_INTERNAL, "rollout: out of memory");
        goto out;
    }
    for (int i = 0; i < E; i++) {
        st[i] = (ac_episode_t)AC_EPISODE_INIT;
        int g = i / spec->n_per_group;
        ep_of[i] = ro->n_eps++;
        ac_episode_rec_t *ep = &ro->eps[ep_of[i]];
        memset(ep, 0, sizeof *ep);
        ep->first_step = ep->last_step = -1;
        ep->query = spec->query_idx[g];
        ep->group = ro->n_groups + g;
        ep->start_ms = ac_clock_now_ms();
        const json_t *q = json_object_get(json_array_get(spec->queries, (size_t)ep->query), "query");
        ac_err_t e = AC_ERR_INIT;
        ac_episode_ctx_t ctx = {ac_rollout_episode_seed(spec->seed, spec->iteration, ep_of[i]), ep_of[i],
                                spec->iteration};
        if (ac_agent_init(agent, q, &ctx, &st[i], &e) != 0) {
            fail_episode(ro, ep, &ro->agent_failures, &e);
            ep->exec_ms = 0;
        } else {
            live[i] = 1;
        }
        ac_err_clear(&e);
    }
    ro->n_groups += spec->n_groups;

    const size_t max_traj = ac_lua_host_limits(ac_lua_plugin_host(agent->_plugin))->max_trajectory_bytes;
    for (int t = 0; t < max_steps; t++) {
        if (spec->stop && atomic_load(spec->stop)) {
            ro->stopped = 1;
            ret = 0;
            goto out;
        }
        ac_policy_batch_clear(&tb);
        int n = 0;
        for (int i = 0; i < E; i++) {
            if (!live[i])
                continue;
            ac_episode_rec_t *ep = &ro->eps[ep_of[i]];
            ac_err_t e = AC_ERR_INIT;
            if (ac_agent_observe(agent, &st[i], &buf, &cap, &len, &e) != 0 ||
                ac_agent_legal(agent, &st[i], tmask + (size_t)n * A, &e) != 0) {
                fail_episode(ro, ep, &ro->agent_failures, &e);
                ac_err_clear(&e);
                live[i] = 0;
                ac_agent_episode_free(agent, &st[i]);
                ep->exec_ms = ac_clock_now_ms() - ep->start_ms;
                continue;
            }
            if (ac_policy_batch_add(&tb, buf, len, err) < 0 || (obs[n] = strndup(buf, len)) == NULL)
                goto out;
            rows[n++] = i;
        }
        if (n == 0)
            break;
        if (ac_policy_forward(spec->policy, logp, &tb, tmask, err) != 0)
            goto out;
        for (int r = 0; r < n; r++) {
            int i = rows[r];
            ac_episode_rec_t *ep = &ro->eps[ep_of[i]];
            const float *row = logp + (size_t)r * A;
            float lp = 0.0f;
            int a = spec->temperature > 0 ? ac_policy_sample(row, A, spec->temperature, spec->rng, &lp)
                                          : ac_policy_greedy(row, A);
            if (spec->temperature <= 0 && a >= 0)
                lp = row[a];
            int64_t cost = spec->step_cost_micro + (agent->has_tool[a] ? agent->tool_cost_micro_usd[a] : 0);
            if (spec->budget_micro >= 0 && ro->cost_micro + cost > spec->budget_micro) {
                ro->budget_exhausted = 1; /* stop before the step that would pass the budget */
                ret = 0;
                goto out;
            }
            /* keep the state for the update: features, mask */
            int srow = ac_policy_batch_add(&ro->batch, obs[r], strlen(obs[r]), err);
            if (srow < 0)
                goto out;
            if (ro->batch._cap > ro->_cap_mask) { /* masks follow the batch's rows */
                uint8_t *nm = realloc(ro->mask, (size_t)ro->batch._cap * A);
                if (nm == NULL) {
                    ac_err_set(err, AC_ERR_INTERNAL, "rollout: out of memory");
                    goto out;
                }
                ro->mask = nm;
                ro->_cap_mask = ro->batch._cap;
            }
            memcpy(ro->mask + (size_t)srow * A, tmask + (size_t)r * A, (size_t)A);
            if (grow((void **)&ro->steps, &ro->_cap_steps, ro->n_steps + 1, sizeof *ro->steps) != 0) {
                ac_err_set(err, AC_ERR_INTERNAL, "rollout: out of memory");
                goto out;
            }
            ac_step_rec_t *s = &ro->steps[ro->n_steps];
            memset(s, 0, sizeof *s);
            s->state = srow;
            s->action = a;
            s->logp_old = lp;
            s->observation = obs[r];
            obs[r] = NULL;
            s->ts_ms = ac_clock_now_ms();
            s->next = -1;
            if (ep->n_steps == 0)
                ep->first_step = ro->n_steps;
            else
                ro->steps[ep->last_step].next = ro->n_steps;
            ep->last_step = ro->n_steps;
            ro->n_steps++;
            ep->n_steps++;
            int64_t t0 = ac_clock_mono_ns();
            int done = 0;
            ac_err_t e = AC_ERR_INIT;
            size_t bytes = 0;
            int rc = ac_agent_step(agent, &st[i], a, &s->params, &s->result, &done, &bytes, &e);
            s->duration_us = (ac_clock_mono_ns() - t0) / 1000;
            ep->bytes += bytes + strlen(s->observation);
            if (rc == 0 && max_traj && ep->bytes > max_traj) {
                ac_err_set(&e, AC_ERR_INTERNAL, "%s: the trajectory is larger than %zu bytes "
                           "(limits.max_trajectory_bytes)", agent->path, max_traj);
                rc = -1;
            }
            ep->cost_micro += cost;
            ro->cost_micro += cost;
            if (rc == AC_AGENT_TOOL_FAILED) {
                s->tool_failed = 1;
                ro->tool_failures++;
                note_error(ro, e.message);
                done = 1;
            } else if (rc != 0) {
                fail_episode(ro, ep, &ro->agent_failures, &e);
                done = 1;
            }
            ac_err_clear(&e);
            if (done) {
                live[i] = 0;
                finish(ro, spec, ep_of[i], &st[i]);
            }
        }
    }
    for (int i = 0; i < E; i++) {
        if (live[i]) {
            live[i] = 0;
            ro->eps[ep_of[i]].truncated = 1;
            finish(ro, spec, ep_of[i], &st[i]);
        }
    }
    ret = 0;
out:
    for (int i = 0; st != NULL && live != NULL && i < E; i++)
        if (live[i])
            ac_agent_episode_free(agent, &st[i]);
    for (int i = 0; obs != NULL && i < E; i++)
        free(obs[i]);
    ac_policy_batch_free(&tb);
    free(buf);
    free(obs);
    free(tmask);
    free(logp);
    free(ep_of);
    free(rows);
    free(live);
    free(st);
    return ret;
}
