#include "engine/rollout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "engine/policy.h"

int ac_rollout_init(ac_rollout_t *ro, int n_actions, ac_err_t *err)
{
    (void)err;
    memset(ro, 0, sizeof *ro);
    ro->n_actions = n_actions;
    return 0;
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
    ac_states_clear(&ro->states);
    ro->n_cand = 0;
    ro->n_mask = 0;
    ro->n_steps = ro->n_eps = ro->n_groups = ro->n_errors = 0;
    ro->tool_failures = ro->agent_failures = ro->reward_failures = 0;
    ro->failed_episodes = 0;
    ro->cost_micro = 0;
    ro->budget_exhausted = 0;
    ro->stopped = 0;
}

void ac_rollout_free(ac_rollout_t *ro)
{
    clear_records(ro);
    for (int i = 0; i < ro->_n_ctx; i++)
        ac_context_free(&ro->_ctx[i]);
    free(ro->_ctx);
    ac_states_free(&ro->states);
    free(ro->cand);
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

/* A plugin failure in ep (a failed call of the kind counter counts). */
static void spoil(ac_rollout_t *ro, ac_episode_rec_t *ep, int *counter)
{
    (*counter)++;
    ro->failed_episodes += !ep->spoiled;
    ep->spoiled = 1;
}

static void fail_episode(ac_rollout_t *ro, ac_episode_rec_t *ep, int *counter, const ac_err_t *e)
{
    spoil(ro, ep, counter);
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
            steps, json_pack("{s:{s:s}, s:{s:s, s:o}, s:O, s:s, s:f}", "state", "context",
                             s->observation ? s->observation : "", "action", "tool", agent->actions[s->action],
                             "params", s->params ? json_incref(s->params) : json_object(), "result",
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
        const json_t *q = json_array_get(spec->queries, (size_t)ep->query);
        ac_traj_step_t few[32], *ts = ep->n_steps <= 32 ? few : malloc(sizeof *ts * (size_t)ep->n_steps);
        int i = 0;
        for (int k = ep->first_step; ts != NULL && k >= 0; k = ro->steps[k].next, i++) {
            const ac_step_rec_t *s = &ro->steps[k];
            ts[i] = (ac_traj_step_t){s->observation, spec->agent->actions[s->action], s->params, s->result, s->ts_ms,
                                     s->duration_us};
        }
        ac_trajectory_t traj = {json_object_get(q, "query"), ts, ep->n_steps, ep->final, ep->truncated};
        ac_reward_info_t info = {0};
        if (ts == NULL || ac_reward_score(spec->reward, &traj, json_object_get(q, "expected_outcome"), st,
                                          &ep->reward, &info, &err) != 0) {
            if (ts == NULL)
                ac_err_set(&err, AC_ERR_INTERNAL, "rollout: out of memory");
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
        if (ts != few)
            free(ts);
        ac_err_clear(&err);
    }
    ep->exec_ms = ac_clock_now_ms() - ep->start_ms;
    ac_agent_episode_free(spec->agent, st);
}

/* ---- one rollout ------------------------------------------------------------------------------ */

/* What a rollout keeps per episode while it runs. */
typedef struct live {
    ac_episode_t st;
    int live;
    int ep;            /* its record in ro->eps */
    ac_context_t *ctx; /* its context at the current step (one of ro->_ctx) */
    json_t *cands;     /* agent.candidates' values at the current step */
    int state;         /* its state in ro->states at the current step */
    int mask_row;      /* its tool mask at the current step: ro->mask row */
} live_t;

typedef struct run {
    ac_rollout_t *ro;
    const ac_rollout_spec_t *spec;
    ac_agent_t *agent;
    int E, max_steps;
    live_t *lv;
    ac_context_step_t *hist; /* scratch: one episode's history */
    int cap_hist;
    char *buf;               /* agent.observe's text */
    size_t cap, len;
    size_t max_traj;
    const char *names[AC_AGENT_MAX_ACTIONS][AC_AGENT_MAX_ARGS];
    int *dedup;              /* open addressing over this step's states: index + 1, 0 empty */
    int cap_dedup;
} run_t;

/* The state of ctx if this step already has one with the same tokens (episodes of one query
 * start alike, and stay alike while they act alike: the actor reads each context once), else a
 * new one. -1 on memory. */
static int state_of(run_t *R, const ac_context_t *ctx, int first, ac_err_t *err)
{
    ac_states_t *S = &R->ro->states;
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < ctx->n; i++)
        h = (h ^ ctx->tok[i].hash ^ ((uint64_t)ctx->tok[i].flags << 56 | (uint64_t)ctx->tok[i].age << 48)) * 1099511628211ULL;
    size_t mask = (size_t)R->cap_dedup - 1;
    for (size_t i = (size_t)(h ^ (h >> 29)) & mask;; i = (i + 1) & mask) {
        int k = R->dedup[i] - 1;
        if (k < 0) {
            int st = ac_states_add(S, ctx, err);
            if (st >= 0)
                R->dedup[i] = st + 1;
            return st;
        }
        if (k >= first && S->off[k + 1] - S->off[k] == ctx->n &&
            memcmp(S->tok + S->off[k], ctx->tok, sizeof *ctx->tok * (size_t)ctx->n) == 0)
            return k;
    }
}

static int oom(ac_err_t *err) { return ac_err_set(err, AC_ERR_INTERNAL, "rollout: out of memory"); }

static void end_episode(run_t *R, live_t *l, int failed_by_agent, const ac_err_t *e)
{
    ac_episode_rec_t *ep = &R->ro->eps[l->ep];
    if (failed_by_agent)
        fail_episode(R->ro, ep, &R->ro->agent_failures, e);
    l->live = 0;
    if (failed_by_agent) {
        ac_agent_episode_free(R->agent, &l->st);
        ep->exec_ms = ac_clock_now_ms() - ep->start_ms;
    } else {
        finish(R->ro, R->spec, l->ep, &l->st);
    }
}

/* At least n contexts of max_tokens in ro->_ctx. */
static int contexts(ac_rollout_t *ro, int n, int max_tokens, ac_err_t *err)
{
    if (ro->_ctx_tokens != max_tokens) {
        for (int i = 0; i < ro->_n_ctx; i++)
            ac_context_free(&ro->_ctx[i]);
        ro->_n_ctx = 0;
        ro->_ctx_tokens = max_tokens;
    }
    if (n <= ro->_n_ctx)
        return 0;
    ac_context_t *c = realloc(ro->_ctx, sizeof *c * (size_t)n);
    if (c == NULL)
        return oom(err);
    ro->_ctx = c;
    for (; ro->_n_ctx < n; ro->_n_ctx++)
        if (ac_context_init(&c[ro->_n_ctx], max_tokens, err) != 0)
            return -1;
    return 0;
}

static int start_episodes(run_t *R, ac_err_t *err)
{
    ac_rollout_t *ro = R->ro;
    const ac_rollout_spec_t *spec = R->spec;
    if (grow((void **)&ro->eps, &ro->_cap_eps, ro->n_eps + R->E, sizeof *ro->eps) != 0 ||
        contexts(ro, R->E, ac_actor_config(spec->policy)->max_tokens, err) != 0)
        return err->code ? -1 : oom(err);
    for (int i = 0; i < R->E; i++) {
        live_t *l = &R->lv[i];
        l->st = (ac_episode_t)AC_EPISODE_INIT;
        l->ctx = &ro->_ctx[i];
        ac_context_begin_episode(l->ctx); /* the query and history renderings are reused step by step */
        l->ep = ro->n_eps++;
        ac_episode_rec_t *ep = &ro->eps[l->ep];
        memset(ep, 0, sizeof *ep);
        ep->first_step = ep->last_step = -1;
        ep->query = spec->query_idx[i / spec->n_per_group];
        ep->group = ro->n_groups + i / spec->n_per_group;
        ep->start_ms = ac_clock_now_ms();
        const json_t *q = json_object_get(json_array_get(spec->queries, (size_t)ep->query), "query");
        ac_err_t e = AC_ERR_INIT;
        ac_episode_ctx_t ctx = {ac_rollout_episode_seed(spec->seed, spec->iteration, l->ep), l->ep,
                                spec->iteration};
        if (ac_agent_init(R->agent, q, &ctx, &l->st, &e) != 0)
            fail_episode(ro, ep, &ro->agent_failures, &e);
        else
            l->live = 1;
        ac_err_clear(&e);
    }
    ro->n_groups += spec->n_groups;
    return 0;
}

/* The episode's history as the context renders it. */
static int history(run_t *R, const ac_episode_rec_t *ep, ac_err_t *err)
{
    if (ep->n_steps > R->cap_hist) {
        int cap = ep->n_steps * 2;
        ac_context_step_t *h = realloc(R->hist, sizeof *h * (size_t)cap);
        if (h == NULL)
            return oom(err);
        R->hist = h;
        R->cap_hist = cap;
    }
    int k = 0;
    for (int i = ep->first_step; i >= 0; i = R->ro->steps[i].next, k++) {
        const ac_step_rec_t *s = &R->ro->steps[i];
        R->hist[k] = (ac_context_step_t){R->agent->actions[s->action], R->names[s->action], s->params,
                                         R->agent->tools[s->action].n_args, s->result, s->from_query};
    }
    return 0;
}

/* A tool whose arguments all have a candidate, and that agent.legal allows. */
static void tool_mask(run_t *R, live_t *l, uint8_t *mask)
{
    /* each kind looked up once: tools share kinds (the calculator's are all numbers), and a kind
     * with no candidate is a scan of the whole context */
    int has[AC_ARG_KINDS] = {0}, cand; /* 0 unknown, 1 yes, -1 no */
    for (int a = 0; a < R->agent->n_actions; a++)
        for (int k = 0; mask[a] && k < R->agent->tools[a].n_args; k++) {
            int kind = R->agent->tools[a].args[k].kind;
            if (has[kind] == 0)
                has[kind] = ac_context_candidates(l->ctx, kind, &cand, 1) > 0 ? 1 : -1;
            if (has[kind] < 0)
                mask[a] = 0;
        }
}

/* Renders each live episode's context and appends its state. Returns the first state's index
 * (the step's states are contiguous), with *n the number of live episodes; -1 on a host failure. */
static int render(run_t *R, int *n, ac_err_t *err)
{
    ac_rollout_t *ro = R->ro;
    const int A = R->agent->n_actions;
    int first = ro->states.n;
    *n = 0;
    memset(R->dedup, 0, sizeof *R->dedup * (size_t)R->cap_dedup);
    for (int i = 0; i < R->E; i++) {
        live_t *l = &R->lv[i];
        if (!l->live)
            continue;
        ac_episode_rec_t *ep = &ro->eps[l->ep];
        json_decref(l->cands);
        l->cands = NULL;
        if (grow((void **)&ro->mask, &ro->_cap_mask, ro->n_mask + 1, (size_t)A) != 0 || history(R, ep, err) != 0)
            return oom(err);
        uint8_t *mask = ro->mask + (size_t)ro->n_mask * A;
        ac_err_t e = AC_ERR_INIT;
        if (ac_agent_observe(R->agent, &l->st, &R->buf, &R->cap, &R->len, &e) != 0 ||
            ac_agent_legal(R->agent, &l->st, mask, &e) != 0 ||
            (R->agent->has_candidates && ac_agent_candidates(R->agent, &l->st, &l->cands, &e) != 0)) {
            end_episode(R, l, 1, &e);
            ac_err_clear(&e);
            continue;
        }
        const char *q = json_string_value(json_object_get(json_array_get(R->spec->queries, (size_t)ep->query), "query"));
        if (ac_context_build(l->ctx, q, R->hist, ep->n_steps, R->len ? R->buf : NULL, l->cands, err) != 0)
            return -1;
        tool_mask(R, l, mask);
        if (memchr(mask, 1, (size_t)A) == NULL) {
            ac_err_set(&e, AC_ERR_INTERNAL, "%s: no tool can be called (agent.legal allows none whose arguments "
                       "have a candidate)", R->agent->path);
            end_episode(R, l, 1, &e);
            ac_err_clear(&e);
            continue;
        }
        if ((l->state = state_of(R, l->ctx, first, err)) < 0)
            return -1;
        l->mask_row = ro->n_mask++;
        (*n)++;
    }
    *n = ro->states.n - first; /* distinct states */
    return first;
}

static int pick(const float *logp, int n, const ac_rollout_spec_t *spec, float *lp)
{
    int a = spec->temperature > 0 ? ac_policy_sample(logp, n, spec->temperature, spec->rng, lp)
                                  : ac_policy_greedy(logp, n);
    if (spec->temperature <= 0 && a >= 0)
        *lp = logp[a];
    return a;
}

/* The episode's call at read state r: the tool, then each argument. Fills s and *args. */
static int decide(run_t *R, live_t *l, int r, ac_step_rec_t *s, json_t **args, ac_err_t *err)
{
    ac_rollout_t *ro = R->ro;
    const int A = R->agent->n_actions;
    float logp[AC_ACTOR_MAX_CANDS];
    if (ac_actor_tool_logp(R->spec->policy, r, ro->mask + (size_t)l->mask_row * A, logp) != 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "rollout: no legal tool");
    s->action = pick(logp, A, R->spec, &s->logp_old);
    const ac_tool_t *tool = &R->agent->tools[s->action];
    s->n_slots = tool->n_args;
    if ((*args = json_object()) == NULL)
        return oom(err);
    for (int k = 0; k < tool->n_args; k++) {
        if (grow((void **)&ro->cand, &ro->_cap_cand, ro->n_cand + l->ctx->n, sizeof *ro->cand) != 0)
            return oom(err);
        int *cand = ro->cand + ro->n_cand, n;
        if (k > 0 && tool->args[k].kind == tool->args[k - 1].kind) { /* the same list: no second scan */
            n = s->n_cand[k - 1];
            memcpy(cand, ro->cand + s->cand_off[k - 1], sizeof *cand * (size_t)n);
        } else {
            n = ac_context_candidates(l->ctx, tool->args[k].kind, cand, AC_ACTOR_MAX_CANDS);
        }
        if (ac_actor_slot_logp(R->spec->policy, r, s->action, k, cand, n, s->chosen_tok, k, logp) != 0)
            return ac_err_set(err, AC_ERR_INTERNAL, "rollout: slot %d of %s has no candidate", k, tool->name);
        s->cand_off[k] = ro->n_cand;
        s->n_cand[k] = n;
        ro->n_cand += n;
        s->chosen[k] = pick(logp, n, R->spec, &s->slot_logp_old[k]);
        s->chosen_tok[k] = cand[s->chosen[k]];
        s->from_query[k] = ac_context_query_origin(l->ctx, s->chosen_tok[k]);
        json_t *v = ac_context_value(l->ctx, tool->args[k].kind, s->chosen_tok[k], l->cands);
        if (v == NULL || json_object_set_new(*args, tool->args[k].name, v) != 0)
            return oom(err);
    }
    return 0;
}

/* Records step s of live episode l and runs its tool. */
static void take_step(run_t *R, live_t *l, ac_step_rec_t *s, int64_t cost)
{
    ac_rollout_t *ro = R->ro;
    ac_episode_rec_t *ep = &ro->eps[l->ep];
    int idx = (int)(s - ro->steps);
    if (ep->n_steps == 0)
        ep->first_step = idx;
    else
        ro->steps[ep->last_step].next = idx;
    ep->last_step = idx;
    ro->n_steps++;
    ep->n_steps++;
    int64_t t0 = ac_clock_mono_ns();
    int done = 0;
    ac_err_t e = AC_ERR_INIT;
    size_t bytes = 0;
    int rc = ac_agent_step(R->agent, &l->st, s->action, s->params, &s->result, &done, &bytes, &e);
    s->duration_us = (ac_clock_mono_ns() - t0) / 1000;
    ep->bytes += bytes + strlen(s->observation);
    if (rc == 0 && R->max_traj && ep->bytes > R->max_traj) {
        ac_err_set(&e, AC_ERR_INTERNAL, "%s: the trajectory is larger than %zu bytes "
                   "(limits.max_trajectory_bytes)", R->agent->path, R->max_traj);
        rc = -1;
    }
    ep->cost_micro += cost;
    ro->cost_micro += cost;
    if (rc == AC_AGENT_TOOL_FAILED) {
        s->tool_failed = 1;
        spoil(ro, ep, &ro->tool_failures);
        note_error(ro, e.message);
        done = 1;
    } else if (rc != 0) {
        fail_episode(ro, ep, &ro->agent_failures, &e);
        done = 1;
    }
    ac_err_clear(&e);
    if (done) {
        l->live = 0;
        finish(ro, R->spec, l->ep, &l->st);
    }
}

/* The actor reads at most this many tokens at once: its workspace grows with them (the sequence
 * reader keeps about 10 KB per token for its backward). */
#define READ_TOKENS 8192

/* One step of every live episode. Returns 1 when the rollout must stop (budget), 0, or -1. */
static int step_all(run_t *R, ac_err_t *err)
{
    ac_rollout_t *ro = R->ro;
    int n = 0, first = render(R, &n, err);
    if (first < 0)
        return -1;
    for (int c0 = first; c0 < first + n;) { /* read the step's states in slices */
        int c1 = c0 + 1;
        while (c1 < first + n && ro->states.off[c1 + 1] - ro->states.off[c0] <= READ_TOKENS)
            c1++;
        if (ac_actor_read(R->spec->policy, &ro->states, c0, c1 - c0, err) != 0)
            return -1;
        for (int i = 0; i < R->E; i++) {
            live_t *l = &R->lv[i];
            if (!l->live || l->state < c0 || l->state >= c1)
                continue;
            if (grow((void **)&ro->steps, &ro->_cap_steps, ro->n_steps + 1, sizeof *ro->steps) != 0)
                return oom(err);
            ac_step_rec_t *s = &ro->steps[ro->n_steps];
            memset(s, 0, sizeof *s);
            s->state = l->state;
            s->mask_row = l->mask_row;
            s->next = -1;
            s->ts_ms = ac_clock_now_ms();
            if (decide(R, l, l->state - c0, s, &s->params, err) != 0) {
                json_decref(s->params);
                return -1;
            }
            int64_t cost = R->spec->step_cost_micro + R->agent->tools[s->action].cost_micro_usd;
            if (R->spec->budget_micro >= 0 && ro->cost_micro + cost > R->spec->budget_micro) {
                json_decref(s->params); /* stop before the step that would pass the budget */
                ro->budget_exhausted = 1;
                return 1;
            }
            if ((s->observation = strdup(l->ctx->text)) == NULL) {
                json_decref(s->params);
                return oom(err);
            }
            take_step(R, l, s, cost);
        }
        c0 = c1;
    }
    return 0;
}

int ac_rollout_run(ac_rollout_t *ro, const ac_rollout_spec_t *spec, ac_err_t *err)
{
    ac_agent_t *agent = spec->agent;
    if (agent->n_actions != ro->n_actions || agent->n_actions != ac_actor_config(spec->policy)->n_tools)
        return ac_err_set(err, AC_ERR_INTERNAL, "rollout: the agent has %d tools, the policy %d", agent->n_actions,
                          ac_actor_config(spec->policy)->n_tools);
    run_t R = {.ro = ro, .spec = spec, .agent = agent, .E = spec->n_groups * spec->n_per_group,
               .max_steps = spec->max_steps};
    if (agent->max_steps > 0 && agent->max_steps < R.max_steps)
        R.max_steps = agent->max_steps;
    if (R.E <= 0)
        return 0;
    for (int a = 0; a < agent->n_actions; a++)
        for (int k = 0; k < agent->tools[a].n_args; k++)
            R.names[a][k] = agent->tools[a].args[k].name;
    R.max_traj = ac_lua_host_limits(ac_lua_plugin_host(agent->_plugin))->max_trajectory_bytes;
    int ret = -1;
    for (R.cap_dedup = 64; R.cap_dedup < 2 * R.E; R.cap_dedup *= 2)
        ;
    if ((R.lv = calloc((size_t)R.E, sizeof *R.lv)) == NULL || (R.dedup = calloc((size_t)R.cap_dedup, sizeof *R.dedup)) == NULL) {
        oom(err);
        goto out;
    }
    if (start_episodes(&R, err) != 0)
        goto out;
    for (int t = 0; t < R.max_steps; t++) {
        if (spec->stop && atomic_load(spec->stop)) {
            ro->stopped = 1;
            ret = 0;
            goto out;
        }
        int rc = step_all(&R, err);
        if (rc != 0) {
            ret = rc > 0 ? 0 : -1;
            goto out;
        }
    }
    for (int i = 0; i < R.E; i++)
        if (R.lv[i].live) {
            R.lv[i].live = 0;
            ro->eps[R.lv[i].ep].truncated = 1;
            finish(ro, spec, R.lv[i].ep, &R.lv[i].st);
        }
    /* a stop asked during the last steps interrupted their plugin calls: those episodes failed
     * because of it, not of their plugins, so the whole rollout counts as stopped */
    ro->stopped = spec->stop && atomic_load(spec->stop);
    ret = 0;
out:
    for (int i = 0; R.lv != NULL && i < R.E; i++) {
        if (R.lv[i].live)
            ac_agent_episode_free(agent, &R.lv[i].st);
        json_decref(R.lv[i].cands);
    }
    free(R.lv);
    free(R.dedup);
    free(R.hist);
    free(R.buf);
    return ret;
}
