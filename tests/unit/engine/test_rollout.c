/* Rollouts (core/engine/rollout.c) of the real calculator agent (plugins/agents/calculator.lua)
 * and its reward plugin, with an untrained policy sampling, as a training iteration runs them:
 *   - lockstep: every live episode takes its k-th step before any takes its (k+1)-th, each step's
 *     contexts are read as one batch, and episodes of one query share their first state;
 *   - ends: an episode ends when it answers, or is truncated at max_steps (the job's cap, or the
 *     agent's own max_steps = 7 when smaller), and every episode gets its final answer and reward;
 *   - refused calls: a division by zero is answered with an error result the next step's context
 *     shows, not a tool failure: the episode goes on;
 *   - behaviour log-probs: every decision's stored log-prob (the tool and each argument) equals the
 *     policy's log-prob of the chosen option, recomputed the way the GRPO update does
 *     (ac_actor_forward over the stored state, mask, candidates and earlier choices), for both
 *     readers and at a temperature other than 1: the update's ratio is 1 on-policy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/train_config.h"
#include "engine/actor.h"
#include "engine/rollout.h"
#include "engine/trainer.h"
#include "lua/lua_host.h"
#include "lua/plugin.h"

#include "check.h"

static ac_lua_host_t *host;
static ac_agent_t *agent;
static ac_reward_t *reward;
static json_t *queries;

#define N_QUERIES 3

/* The second query has only zeros to divide: an untrained policy soon calls divide(0, 0) or
 * modulo(0, 0), which the calculator refuses. */
static const char *const QUERIES =
    "[{\"query\": \"Start with 7, add 5, then multiply by 3.\","
    "  \"expected_outcome\": {\"answer\": 36, \"ops\": [\"add\", \"multiply\"], \"values\": [12, 36]}},"
    " {\"query\": \"Divide 0 by 0.\", \"expected_outcome\": {\"answer\": 0}},"
    " {\"query\": \"Take 9 and subtract 4.\", \"expected_outcome\": {\"answer\": 5, \"ops\": [\"subtract\"],"
    "  \"values\": [5]}}]";

static ac_actor_t *new_policy(int kind)
{
    ac_train_config_t cfg;
    ac_train_config_defaults(&cfg);
    cfg.policy_kind = kind;
    ac_actor_config_t pc;
    ac_trainer_policy_config(&pc, &cfg, agent, 11);
    ac_err_t err = AC_ERR_INIT;
    ac_actor_t *p = ac_actor_create(&pc, &err);
    if (p == NULL)
        fprintf(stderr, "  policy: %s\n", err.message);
    ac_err_clear(&err);
    return p;
}

/* n_per_group episodes of each query, sampled (the trainer's way: the actor holds the
 * temperature, the rollout samples from its log-probs at 1). 0, or -1. */
static int run(ac_rollout_t *ro, ac_actor_t *policy, int max_steps, int n_per_group, uint64_t seed)
{
    static const int idx[N_QUERIES] = {0, 1, 2};
    ac_rng_t rng;
    ac_rng_seed(&rng, seed);
    ac_rollout_spec_t spec = {.agent = agent, .reward = reward, .policy = policy, .rng = &rng, .queries = queries,
                              .query_idx = idx, .n_groups = N_QUERIES, .n_per_group = n_per_group,
                              .max_steps = max_steps, .temperature = 1.0f, .step_cost_micro = 10,
                              .budget_micro = -1, .seed = seed, .iteration = 1};
    ac_err_t err = AC_ERR_INIT;
    ac_rollout_clear(ro);
    int rc = ac_rollout_run(ro, &spec, &err);
    if (rc != 0)
        fprintf(stderr, "  rollout: %s\n", err.message);
    ac_err_clear(&err);
    return rc;
}

static int tool_index(const char *name)
{
    for (int a = 0; a < agent->n_actions; a++)
        if (strcmp(agent->actions[a], name) == 0)
            return a;
    return -1;
}

/* Each step's position in its episode (0-based). (n_steps) malloc'd. */
static int *depths(const ac_rollout_t *ro)
{
    int *d = calloc((size_t)ro->n_steps + 1, sizeof *d);
    for (int e = 0; e < ro->n_eps; e++) {
        int k = 0;
        for (int i = ro->eps[e].first_step; i >= 0; i = ro->steps[i].next)
            d[i] = k++;
    }
    return d;
}

static void test_lockstep_and_ends(ac_actor_t *policy)
{
    ac_rollout_t ro;
    ac_err_t err = AC_ERR_INIT;
    ac_rollout_init(&ro, agent->n_actions, &err);
    const int per = 8, E = N_QUERIES * per, answer = tool_index("answer");
    int ok = run(&ro, policy, 50, per, 1) == 0;
    CHECK(ok && ro.n_eps == E && ro.n_groups == N_QUERIES && ro.tool_failures == 0 && ro.agent_failures == 0 &&
              ro.reward_failures == 0,
          "a rollout of 3 queries x 8 episodes runs without plugin failures");

    /* lockstep: step records come depth by depth, and each depth holds one step of every episode
     * still running at it */
    int *d = depths(&ro), monotone = 1, counts_ok = 1, states_ok = 1, max_depth = -1;
    for (int i = 0; i < ro.n_steps; i++) {
        monotone &= i == 0 || d[i] >= d[i - 1];
        max_depth = d[i] > max_depth ? d[i] : max_depth;
    }
    for (int k = 0; k <= max_depth; k++) {
        int at_k = 0, running = 0, lo = INT32_MAX, hi = -1, prev_hi = -1;
        for (int i = 0; i < ro.n_steps; i++) {
            if (d[i] == k) {
                at_k++;
                lo = ro.steps[i].state < lo ? ro.steps[i].state : lo;
                hi = ro.steps[i].state > hi ? ro.steps[i].state : hi;
            }
            if (d[i] == k - 1)
                prev_hi = ro.steps[i].state > prev_hi ? ro.steps[i].state : prev_hi;
        }
        for (int e = 0; e < ro.n_eps; e++)
            running += ro.eps[e].n_steps > k;
        counts_ok &= at_k == running;
        states_ok &= lo > prev_hi; /* a depth's contexts are rendered after the previous depth ran */
    }
    CHECK(ok && monotone && counts_ok, "lockstep: every running episode takes its k-th step before any takes its "
                                       "(k+1)-th");
    CHECK(ok && states_ok, "lockstep: each step's contexts are new states, read after the previous step ran");
    /* the first step: one state per query, shared by its episodes */
    int first_state[N_QUERIES] = {-1, -1, -1}, shared = ok;
    for (int e = 0; e < ro.n_eps && shared; e++) {
        const ac_episode_rec_t *ep = &ro.eps[e];
        int st = ro.steps[ep->first_step].state;
        shared &= ep->query == e / per && ep->group == e / per;
        if (first_state[ep->query] < 0)
            first_state[ep->query] = st;
        shared &= first_state[ep->query] == st;
    }
    shared &= first_state[0] != first_state[1] && first_state[1] != first_state[2] && first_state[0] != first_state[2];
    CHECK(shared, "episodes of one query start from one shared state; other queries from their own");

    /* the ends: an answer ends the episode; else it is truncated at the agent's max_steps (7,
     * below the job's 50); every episode gets its final answer and its reward */
    int ends_ok = ok, answered = 0, truncated = 0, scored = ok;
    for (int e = 0; e < ro.n_eps; e++) {
        const ac_episode_rec_t *ep = &ro.eps[e];
        int last = ro.steps[ep->last_step].action;
        for (int i = ep->first_step; i >= 0 && i != ep->last_step; i = ro.steps[i].next)
            ends_ok &= ro.steps[i].action != answer; /* nothing after an answer */
        if (last == answer && !ep->truncated)
            answered++;
        else if (last != answer && ep->truncated && ep->n_steps == 7)
            truncated++;
        else
            ends_ok = 0;
        scored &= !ep->failed && ep->final != NULL && ep->reward >= -1.0 && ep->reward <= 1.0;
        /* success is the exact answer (the reward plugin's rule), and it gives reward 1 */
        json_t *want = json_object_get(json_object_get(json_array_get(queries, (size_t)ep->query), "expected_outcome"),
                                       "answer");
        json_t *got = json_object_get(ep->final, "answer");
        int exact = json_is_number(got) && json_number_value(got) == json_number_value(want);
        scored &= ep->success == exact && (!exact || ep->reward == 1.0);
    }
    CHECK(ends_ok && answered > 0 && truncated > 0 && answered + truncated == E,
          "an episode ends at its answer, or is truncated at the agent's max_steps (7 < the job's 50)");
    printf("     %d answered, %d truncated at 7 steps, %d steps\n", answered, truncated, ro.n_steps);
    CHECK(scored, "every episode has its final answer and its reward; success exactly when the answer is right");

    /* origins: each argument records the query token its pointer chose (-1 for a result's), and
     * every later state of the episode marks a query number so taken, and only those */
    int origins_ok = ok, from_query = 0, from_result = 0;
    for (int e = 0; e < ro.n_eps; e++)
        for (int i = ro.eps[e].first_step; i >= 0; i = ro.steps[i].next) {
            const ac_step_rec_t *st = &ro.steps[i];
            const ac_token_t *t = ro.states.tok + ro.states.off[st->state];
            for (int k = 0; k < st->n_slots; k++) {
                const ac_token_t *c = &t[st->chosen_tok[k]];
                origins_ok &= st->from_query[k] == (c->seg == AC_SEG_QUERY ? st->chosen_tok[k] - 1 : -1);
                from_query += st->from_query[k] >= 0;
                from_result += c->seg == AC_SEG_RESULT;
            }
            const int nx = st->next;
            if (nx < 0)
                continue;
            const ac_token_t *u = ro.states.tok + ro.states.off[ro.steps[nx].state];
            for (int j = 1; u[j].seg == AC_SEG_QUERY; j++) {
                if (u[j].kind != AC_TOK_NUMBER)
                    continue;
                int taken = 0; /* by this episode's calls up to step i */
                for (int h = ro.eps[e].first_step; h >= 0 && h != nx; h = ro.steps[h].next)
                    for (int k = 0; k < ro.steps[h].n_slots; k++)
                        taken |= ro.steps[h].from_query[k] == j - 1;
                origins_ok &= taken == ((u[j].flags & AC_TOKF_TAKEN) != 0);
            }
        }
    CHECK(origins_ok && from_query > 0 && from_result > 0,
          "each argument records the query token it was taken from; later states mark those numbers taken, only those");

    /* the job's cap below the agent's */
    ok = run(&ro, policy, 2, per, 2) == 0;
    int capped = ok, cut = 0;
    for (int e = 0; e < ro.n_eps; e++) {
        const ac_episode_rec_t *ep = &ro.eps[e];
        int last = ro.steps[ep->last_step].action;
        capped &= ep->n_steps >= 1 && ep->n_steps <= 2 && ep->truncated == (last != answer) &&
                  (!ep->truncated || ep->n_steps == 2) && ep->final != NULL;
        cut += ep->truncated;
    }
    CHECK(capped && cut > 0, "max_steps 2: no episode takes a third step; those that did not answer are truncated");
    free(d);
    ac_rollout_free(&ro);
}

/* Division by zero: the calculator's error result is what the policy reads next, not a failure. */
static void test_refused_calls(ac_actor_t *policy)
{
    ac_rollout_t ro;
    ac_err_t err = AC_ERR_INIT;
    ac_rollout_init(&ro, agent->n_actions, &err);
    int ok = run(&ro, policy, 50, 8, 3) == 0;
    const int divide = tool_index("divide"), modulo = tool_index("modulo");
    int refused = 0, went_on = 0, right = ok;
    for (int e = 0; ok && e < ro.n_eps; e++) {
        const ac_episode_rec_t *ep = &ro.eps[e];
        for (int i = ep->first_step; i >= 0; i = ro.steps[i].next) {
            const ac_step_rec_t *s = &ro.steps[i];
            json_t *b = json_object_get(s->params, "b");
            if ((s->action != divide && s->action != modulo) || !json_is_number(b) || json_number_value(b) != 0)
                continue;
            refused++;
            char want[64];
            snprintf(want, sizeof want, "%s: division by zero", agent->actions[s->action]);
            const char *got = json_string_value(json_object_get(s->result, "error"));
            right &= got != NULL && strcmp(got, want) == 0 && !s->tool_failed && !ep->failed;
            if (s->next >= 0) {
                went_on++;
                right &= strstr(ro.steps[s->next].observation, "division by zero") != NULL;
            } else {
                right &= ep->truncated; /* its last step: the episode was cut there, not ended */
            }
        }
    }
    CHECK(ok && refused > 0 && went_on > 0 && right && ro.tool_failures == 0,
          "a call the calculator refuses (x / 0, x mod 0) gets an error result, the next context shows it, and "
          "the episode goes on (no tool failure)");
    printf("     %d refused calls, %d followed by another step\n", refused, went_on);
    ac_rollout_free(&ro);
}

/* The stored behaviour log-probs against the update's forward of the same decisions. */
static int logps_match(ac_actor_t *policy, const ac_rollout_t *ro, double *worst, int *n_dec)
{
    const int A = agent->n_actions;
    float logp[AC_AGENT_MAX_ACTIONS + AC_AGENT_MAX_ARGS * AC_ACTOR_MAX_CANDS];
    ac_err_t err = AC_ERR_INIT;
    int ok = 1;
    *worst = 0;
    *n_dec = 0;
    for (int i = 0; i < ro->n_steps && ok; i++) {
        const ac_step_rec_t *s = &ro->steps[i];
        const uint8_t *mask = ro->mask + (size_t)s->mask_row * A;
        ac_decision_t d[1 + AC_AGENT_MAX_ARGS];
        d[0] = (ac_decision_t){s->state, s->action, -1, 0, A, mask, NULL, NULL, 0, s->action};
        size_t off = (size_t)A;
        for (int k = 0; k < s->n_slots; k++) {
            d[1 + k] = (ac_decision_t){s->state, s->action, k, off, s->n_cand[k], NULL, ro->cand + s->cand_off[k],
                                       s->chosen_tok, k, s->chosen[k]};
            off += (size_t)s->n_cand[k];
            ok &= s->chosen[k] >= 0 && s->chosen[k] < s->n_cand[k] &&
                  ro->cand[s->cand_off[k] + s->chosen[k]] == s->chosen_tok[k];
        }
        ok &= mask[s->action] == 1;
        if (!ok || ac_actor_forward(policy, &ro->states, s->state, 1, d, 1 + s->n_slots, logp, &err) != 0) {
            fprintf(stderr, "  step %d: %s\n", i, err.message[0] ? err.message : "chosen option not offered");
            ac_err_clear(&err);
            return 0;
        }
        double diffs[1 + AC_AGENT_MAX_ARGS];
        diffs[0] = fabs((double)logp[s->action] - s->logp_old);
        for (int k = 0; k < s->n_slots; k++)
            diffs[1 + k] = fabs((double)logp[d[1 + k].off + (size_t)s->chosen[k]] - s->slot_logp_old[k]);
        for (int k = 0; k <= s->n_slots; k++) {
            *worst = diffs[k] > *worst ? diffs[k] : *worst;
            ok &= diffs[k] <= 1e-5;
            (*n_dec)++;
        }
    }
    return ok;
}

static void test_behaviour_logps(ac_actor_t *policy, const char *reader)
{
    ac_rollout_t ro;
    ac_err_t err = AC_ERR_INIT;
    ac_rollout_init(&ro, agent->n_actions, &err);
    char what[200];
    const float temps[2] = {1.0f, 0.7f};
    for (int t = 0; t < 2; t++) {
        ac_actor_set_temperature(policy, temps[t]);
        int ok = run(&ro, policy, 50, 4, 4 + (uint64_t)t) == 0, n_dec = 0, sampled = 0;
        double worst = 0;
        ok = ok && ro.n_steps > N_QUERIES * 4 && logps_match(policy, &ro, &worst, &n_dec);
        for (int i = 0; i < ro.n_steps; i++)
            sampled += ro.steps[i].logp_old < -1e-3f; /* not all probability-1 choices */
        snprintf(what, sizeof what,
                 "%s reader, temperature %.1f: every stored behaviour log-prob (tool and arguments) equals the "
                 "update's log-prob of the chosen option",
                 reader, (double)temps[t]);
        CHECK(ok && sampled > 0, what);
        printf("     %d decisions of %d steps, largest difference %.2g\n", n_dec, ro.n_steps, worst);
    }
    ac_actor_set_temperature(policy, 1.0f);
    ac_rollout_free(&ro);
}

int main(void)
{
    const char *env = getenv("AC_SOURCE_DIR");
    const char *src = env && *env ? env : AC_SOURCE_DIR;
    char lua_dir[1024], plugins_dir[1024];
    snprintf(lua_dir, sizeof lua_dir, "%s/lua", src);
    snprintf(plugins_dir, sizeof plugins_dir, "%s/plugins", src);
    ac_lua_limits_t limits = AC_LUA_DEFAULT_LIMITS;
    ac_err_t err = AC_ERR_INIT;
    host = ac_lua_host_create(lua_dir, plugins_dir, &limits, &err);
    agent = host ? ac_agent_open(host, "calculator", &err) : NULL;
    reward = agent ? ac_reward_open(host, "calculator", &err) : NULL;
    queries = json_loads(QUERIES, 0, NULL);
    if (reward == NULL || queries == NULL) {
        fprintf(stderr, "test_rollout: %s\n", err.message[0] ? err.message : "bad QUERIES");
        return 1;
    }
    CHECK(agent->n_actions == 7 && agent->max_steps == 7 && tool_index("answer") >= 0 && tool_index("divide") >= 0,
          "the calculator agent: 7 tools (answer and divide among them), max_steps 7");
    ac_actor_t *bag = new_policy(AC_POLICY_KIND_BAG), *seq = new_policy(AC_POLICY_KIND_SEQUENCE);
    if (bag == NULL || seq == NULL)
        return 1;
    test_lockstep_and_ends(bag);
    test_refused_calls(bag);
    test_behaviour_logps(bag, "bag");
    test_behaviour_logps(seq, "sequence");
    ac_actor_destroy(bag);
    ac_actor_destroy(seq);
    json_decref(queries);
    ac_reward_close(reward);
    ac_agent_close(agent);
    ac_lua_host_destroy(host);
    return check_done(__FILE__);
}
