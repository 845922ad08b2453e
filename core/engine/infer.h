/* Using a trained policy: "given this query and what happened so far, which tool with which
 * arguments?" (agents.act, `agentcore act`), and one whole episode of the agent with the policy
 * on a new query (agents.run, `agentcore run`).
 *
 * A call is decided as the rollouts decide it (engine/rollout.c): the host renders the context
 * from the query and the history (engine/context.h), the tool is chosen among the legal tools
 * whose arguments have a candidate, then each argument among its candidates. Greedy: each
 * decision takes its most probable option, exactly what a greedy evaluation does; sampled: each
 * decision draws from the policy at a temperature. Log-probabilities are the policy's own
 * (temperature 1), whatever the sampling temperature.
 *
 * An agent's declarations (its tools, their arguments and kinds) are what the context is
 * rendered with: a checkpoint carries them in its metadata (docs/checkpoints.md), so that a
 * policy can be used without the agent's plugin. */
#ifndef AC_INFER_H
#define AC_INFER_H

#include <stdint.h>

#include "base/err.h"
#include "base/rng.h"
#include "engine/actor.h"
#include "engine/context.h"
#include "lua/plugin.h"

/* ---- an agent's declarations ------------------------------------------------------------------ */

typedef struct ac_agent_decl {
    char *name;        /* the agent plugin's name ("calculator") */
    char *version;     /* or NULL */
    char *description; /* or NULL */
    int max_steps;     /* agent.max_steps, 0 when it sets none */
    int n_tools;
    ac_tool_t tools[AC_AGENT_MAX_ACTIONS]; /* the struct owns every string */
} ac_agent_decl_t;

/* A copy of an open agent's declarations into *d (0, or -1 on memory). Free with
 * ac_agent_decl_free. */
int ac_agent_decl_of(ac_agent_decl_t *d, const ac_agent_t *a, ac_err_t *err);
/* {"name", "version", "description", "max_steps", "tools": [{"name", "description",
 * "cost_usd", "args": [{"name", "type"}]}]}. New reference. */
json_t *ac_agent_decl_json(const ac_agent_decl_t *d);
/* The same read back (what a checkpoint's metadata holds): -1 with AC_ERR_INVALID_PARAMS naming
 * the member that is wrong. */
int ac_agent_decl_parse(ac_agent_decl_t *d, const json_t *j, ac_err_t *err);
/* Frees what d owns and zeroes it; a zeroed d is a no-op. */
void ac_agent_decl_free(ac_agent_decl_t *d);
/* 0 when the policy was made for these tools (their number and each one's arguments), else -1
 * with AC_ERR_INVALID_PARAMS saying what differs. */
int ac_agent_decl_check(const ac_agent_decl_t *d, const ac_actor_config_t *cfg, ac_err_t *err);
/* The index of the tool named `name`, or -1. */
int ac_agent_decl_tool(const ac_agent_decl_t *d, const char *name);

/* A checkpoint's metadata (JSON, docs/checkpoints.md): the agent declarations under "agent".
 * Returns 1 with *d filled, 0 when the metadata has none (not JSON, or no "agent"), -1 when it
 * has one that does not parse. */
int ac_agent_decl_from_meta(ac_agent_decl_t *d, const uint8_t *meta, size_t len, ac_err_t *err);

/* ---- one call ----------------------------------------------------------------------------------- */

/* What the policy is asked about, parsed from agents.act's parameters (the JSON stays the
 * caller's: the steps borrow from it). */
typedef struct ac_infer_call {
    const char *query;
    ac_context_step_t *steps; /* (n_steps) the history, oldest first */
    int n_steps;
    const char *observation;  /* what agent.observe would say now, or NULL */
    const json_t *candidates; /* agent.candidates' values now (array), or NULL */
    uint8_t legal[AC_AGENT_MAX_ACTIONS]; /* agent.legal now: 1 = legal (all when not given) */
    const char *_arg_names[AC_AGENT_MAX_ACTIONS][AC_AGENT_MAX_ARGS]; /* the steps point here */
} ac_infer_call_t;

/* Reads {query, history?: [{tool, params?, result?}], observation?, candidates?, legal?} (params
 * and d, borrowed: they must outlive c, which must not move) against the agent's declarations. A problem is -1 with `code` and
 * data.field naming it ("history[2].tool"). Free with ac_infer_call_free. */
int ac_infer_call_parse(ac_infer_call_t *c, const ac_agent_decl_t *d, const json_t *params, int code, ac_err_t *err);
void ac_infer_call_free(ac_infer_call_t *c);

typedef struct ac_infer_opts {
    int greedy;        /* 1: each decision's most probable option */
    float temperature; /* sampling only (> 0) */
    ac_rng_t *rng;     /* sampling only */
    int top_k;         /* alternatives wanted, 0..AC_INFER_MAX_TOP_K */
    int explain;       /* add the context's tokens and every decision's log-probabilities */
} ac_infer_opts_t;

#define AC_INFER_MAX_TOP_K 20
/* Slot decisions the search for alternatives may score (each one a pointer over candidates). */
#define AC_INFER_MAX_EXPANSIONS 256

/* What one decision needs besides the policy: the context and the state it is read as. Reuse one
 * per thread; it belongs to a policy's max_tokens. */
typedef struct ac_infer_scratch {
    ac_context_t ctx;
    ac_states_t states;
} ac_infer_scratch_t;

int ac_infer_scratch_init(ac_infer_scratch_t *s, int max_tokens, ac_err_t *err);
void ac_infer_scratch_free(ac_infer_scratch_t *s);

/* The next call of the agent (declarations d) by policy p (used by this thread alone), without
 * running anything:
 *   {"tool", "params", "log_prob", "alternatives": [{"tool", "params", "log_prob", "p"}],
 *    "explain"?: {"context", "tokens": [...], "decisions": [...]}}
 * alternatives: the top_k most probable calls (best first), from a best-first search over the
 * decisions; calls whose arguments differ only in which token carried the same value are one
 * call, their probabilities summed. -1 with AC_ERR_INVALID_PARAMS (field "legal") when no tool can
 * be called, AC_ERR_INTERNAL (memory, the policy). docs/api.md describes every member. */
int ac_infer_act(ac_actor_t *p, const ac_agent_decl_t *d, const ac_infer_call_t *c, const ac_infer_opts_t *o,
                 ac_infer_scratch_t *s, json_t **out, ac_err_t *err);

/* ---- one episode -------------------------------------------------------------------------------- */

typedef struct ac_infer_run_opts {
    const char *query;
    const json_t *expected;  /* expected_outcome: the reward plugin scores the episode; NULL: not scored */
    int max_steps;           /* the job's cap (the agent's own max_steps applies when smaller) */
    int greedy;
    float temperature;       /* sampling only */
    uint64_t seed;           /* the sampling and the plugins' random numbers */
    int64_t step_cost_micro; /* price of one policy step */
    int64_t budget_micro;    /* < 0: unlimited; else the episode stops before a step past it */
} ac_infer_run_opts_t;

/* The most an episode can cost: max_steps x (step cost + the dearest tool). */
int64_t ac_infer_max_cost(const ac_agent_t *agent, int max_steps, int64_t step_cost_micro);

/* Runs one episode of `agent` with policy p (reward may be NULL when o->expected is). *traj: the
 * trajectory in the export format ({query, steps, final, truncated}) with "reward" and "success"
 * (null when not scored), "cost_usd", "execution_time_ms", "budget_exhausted" and "error" (the
 * plugin failure that ended it, or null). *cost_micro: what it spent. -1 only when the host fails
 * (memory, the policy); a plugin failing is an episode with an error. */
int ac_infer_run(ac_agent_t *agent, ac_reward_t *reward, ac_actor_t *p, const ac_infer_run_opts_t *o, json_t **traj,
                 int64_t *cost_micro, ac_err_t *err);

#endif
