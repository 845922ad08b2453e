/* Typed calls into the three plugin kinds: agents, rewards, validators (docs/plugins.md has the
 * Lua side of each).
 *
 * A handle comes from a host (lua_host.h) and belongs to that host's thread. It pins the version
 * of the plugin it was opened on: when the file changes, the NEXT open returns the new version
 * while this handle keeps calling the old one until it is closed.
 *
 * Every function returns 0 on success, -1 with err filled on failure (AC_ERR_INTERNAL for a
 * plugin that raised, broke a limit or returned something the contract does not allow; the
 * message starts with the plugin's path or file:line, err->data may hold {"traceback": ...}).
 * No function raises; each runs its plugin call under the host's limits. */
#ifndef AC_PLUGIN_H
#define AC_PLUGIN_H

#include <stdint.h>

#include "lua/lua_host.h"
#include "lua/registry.h"

#define AC_AGENT_MAX_ACTIONS 64
#define AC_AGENT_MAX_ARGS 4
#define AC_AGENT_MAX_STEPS 100000
#define AC_AGENT_MAX_CANDIDATES 64
/* ac_agent_step's result when agent.step raised (or broke a limit): a failed tool call, which
 * ends the episode; not a host failure. */
#define AC_AGENT_TOOL_FAILED 1

/* ---- agents: plugins/agents/<name>.lua ------------------------------------------------------- */

/* What may fill a tool's argument (the policy chooses it among the candidates of its kind in
 * what it sees: docs/plugins.md, "Tools and arguments"). */
enum ac_arg_kind {
    AC_ARG_NUMBER,    /* "number": a number token (passed to the tool as a Lua number) */
    AC_ARG_WORD,      /* "word": a word of letters */
    AC_ARG_ID,        /* "id": an identifier (letters and digits mixed, "ORD-1042") or a whole number */
    AC_ARG_ANY,       /* "any": any of those tokens */
    AC_ARG_CANDIDATE, /* "candidate": one of the values agent.candidates(state) returned */
    AC_ARG_KINDS
};
/* "number", ... -> AC_ARG_*, or -1; and back ("?" out of range). */
int ac_arg_kind_from_name(const char *name);
const char *ac_arg_kind_name(int kind);

typedef struct ac_tool_arg {
    char *name;
    int kind; /* ac_arg_kind */
} ac_tool_arg_t;

typedef struct ac_tool {
    char *name;
    char *description;      /* or NULL */
    int64_t cost_micro_usd; /* cost_usd * 1e6, rounded */
    int n_args;
    ac_tool_arg_t args[AC_AGENT_MAX_ARGS];
} ac_tool_t;

typedef struct ac_agent {
    const char *name;    /* the file name ("calculator"), as passed to ac_agent_open */
    const char *version; /* agent.version */
    const char *path;    /* "plugins/agents/calculator.lua" */
    const char *description; /* agent.description (what the agent does, for people and for the
                                fine-tuning datasets' system message), or NULL */
    int n_actions;       /* tools, 1..AC_AGENT_MAX_ACTIONS: the policy's tool choices */
    const ac_tool_t *tools;             /* (n_actions) in agent.tools order */
    const char *const *actions;         /* (n_actions) the tools' names */
    int max_args;                       /* the most arguments a tool takes */
    int max_steps;                      /* agent.max_steps, or 0 when the agent sets none */
    int has_observe, has_legal, has_candidates; /* the optional functions it defines */
    /* private */
    ac_lua_plugin_t *_plugin;
    int _fn[6];   /* registry refs: init step final observe legal candidates (LUA_NOREF: absent) */
    int _index;   /* registry ref: {tool name = 0-based index} */
    ac_tool_t *_tools;
    const char **_names;
    char *_description;
} ac_agent_t;

/* One episode's state: agent.init's table, kept in the Lua registry between calls (no JSON
 * round trip per step). Caller-allocated; belongs to the agent handle that initialized it. */
typedef struct ac_episode {
    int _state;
    ac_rng_t rng; /* what math.random and ctx.rng draw from in this episode's calls */
} ac_episode_t;
#define AC_EPISODE_INIT {-2 /* LUA_NOREF */, {{0, 0, 0, 0}}}

/* What agent.init learns about its episode (ctx): the seed of its random numbers (derived by the
 * caller from the job's seed and the episode's place in the run, so that a rerun or a resumed run
 * draws the same numbers), its number and its iteration. */
typedef struct ac_episode_ctx {
    uint64_t seed;
    int64_t episode;   /* within the iteration (or the evaluation) */
    int64_t iteration; /* 1-based training iteration; 0 in an evaluation */
} ac_episode_ctx_t;

/* Opens the current version of plugins/agents/<name>.lua (loading or reloading it as needed,
 * see ac_lua_plugin_get). Returns a handle to close with ac_agent_close, or NULL with err:
 * AC_ERR_INVALID_PARAMS (bad name), AC_ERR_NOT_FOUND (no file), AC_ERR_INTERNAL (the file
 * fails to load or breaks the contract: "plugins/agents/x.lua: missing function 'step'"). */
ac_agent_t *ac_agent_open(ac_lua_host_t *h, const char *name, ac_err_t *err);
/* Drops the handle; its version is freed once no handle holds it. NULL is a no-op. */
void ac_agent_close(ac_agent_t *a);

/* agent.init(query, ctx): starts an episode. query is borrowed and converted to Lua (the rollout
 * passes the training item's query string; the agent never sees expected_outcome); ctx becomes
 * {seed, episode, iteration, rng} (ctx NULL: seed 0, episode 0, iteration 0). The episode's
 * generator is seeded with ctx->seed: math.random and ctx.rng draw from it in every call of this
 * episode (and in the reward call that scores it). On success ep holds the state until
 * ac_agent_episode_free. */
int ac_agent_init(ac_agent_t *a, const json_t *query, const ac_episode_ctx_t *ctx, ac_episode_t *ep,
                  ac_err_t *err);

/* agent.observe(state), when the agent has it: extra text for the policy. *buf is a malloc'd
 * buffer of *cap bytes that the call grows with realloc as needed (start with NULL and 0; free
 * it when done); on success it holds the text NUL-terminated and *len is its length (0 without
 * observe). Reuse one buffer across steps. */
int ac_agent_observe(ac_agent_t *a, ac_episode_t *ep, char **buf, size_t *cap, size_t *len,
                     ac_err_t *err);

/* agent.legal(state): mask (n_actions bytes, caller's) gets 1 for each legal tool, else 0; every
 * tool is legal for an agent without legal. An unknown tool name or no legal tool at all is an
 * error. */
int ac_agent_legal(ac_agent_t *a, ac_episode_t *ep, uint8_t *mask, ac_err_t *err);

/* agent.candidates(state), when the agent has it: the values arguments of kind "candidate" choose
 * from (strings or numbers, at most AC_AGENT_MAX_CANDIDATES). *list: a new array (empty without
 * the function). */
int ac_agent_candidates(ac_agent_t *a, ac_episode_t *ep, json_t **list, ac_err_t *err);

/* agent.step(state, tool, args): runs the tool with the arguments the policy chose (args: an
 * object, name -> value, borrowed; NULL or {} for a tool without arguments). On 0, *result is a
 * new reference (nil becomes JSON null), *done is 1 when the episode ended and *bytes (may be
 * NULL) estimates its size as JSON text; bounded by limits.max_result_bytes. When step raised
 * or broke a limit, returns AC_AGENT_TOOL_FAILED with *result = {"error": message}, *done = 1
 * and err holding the same message. -1: tool out of range, or step returned a value that is not
 * JSON or too large (*result is then NULL). */
int ac_agent_step(ac_agent_t *a, ac_episode_t *ep, int tool, const json_t *args, json_t **result, int *done,
                  size_t *bytes, ac_err_t *err);

/* agent.final(state): the episode's answer, a new reference in *answer. */
int ac_agent_final(ac_agent_t *a, ac_episode_t *ep, json_t **answer, ac_err_t *err);

/* Drops the episode's state; ep may be reused with ac_agent_init. A freed or never initialized
 * episode is a no-op. */
void ac_agent_episode_free(ac_agent_t *a, ac_episode_t *ep);

/* ---- rewards: plugins/rewards/<name>.lua ----------------------------------------------------- */

typedef struct ac_reward {
    const char *name, *version, *path;
    double range_min, range_max; /* reward.range: a reward outside it is an error */
    double success_threshold;    /* reward.success_threshold, default range_max */
    /* private */
    ac_lua_plugin_t *_plugin;
    int _score;
} ac_reward_t;

typedef struct ac_reward_info {
    int success;             /* info.success, default reward >= success_threshold */
    double *step_rewards;    /* (n_step_rewards) malloc'd, or NULL when the plugin gave none */
    size_t n_step_rewards;   /* equals the trajectory's number of steps when given */
    double tool_accuracy;    /* info.tool_accuracy in [0, 1], or -1 when the plugin gave none */
} ac_reward_info_t;

ac_reward_t *ac_reward_open(ac_lua_host_t *h, const char *name, ac_err_t *err);
void ac_reward_close(ac_reward_t *r);

/* A trajectory as reward.score sees it, handed over as the rollout keeps it (everything borrowed):
 * the score call builds its Lua table directly, with no JSON document in between (that was most of
 * a rollout's time). In Lua: {query, steps = {{state = {context}, action = {tool, params}, result,
 * timestamp, duration_ms}, ...}, final, truncated}, as training.export_trajectories shows it. */
typedef struct ac_traj_step {
    const char *context;  /* what the policy saw */
    const char *tool;
    const json_t *params; /* NULL: {} */
    const json_t *result; /* NULL: null */
    int64_t ts_ms;        /* wall clock when taken: "timestamp" */
    int64_t duration_us;  /* "duration_ms" */
} ac_traj_step_t;

typedef struct ac_trajectory {
    const json_t *query; /* NULL: null */
    const ac_traj_step_t *steps;
    int n_steps;
    const json_t *final; /* NULL: null */
    int truncated;
} ac_trajectory_t;

/* reward.score(trajectory, expected_outcome). trajectory and expected are borrowed; ep (may be
 * NULL) is the episode scored: its generator serves math.random during the call. Fills *reward
 * and *info (info may be NULL; free info->step_rewards with ac_reward_info_clear). A non-number,
 * NaN or out-of-range reward, or a malformed info table, is an error; info is then left empty. */
int ac_reward_score(ac_reward_t *r, const ac_trajectory_t *trajectory, const json_t *expected, ac_episode_t *ep,
                    double *reward, ac_reward_info_t *info, ac_err_t *err);
void ac_reward_info_clear(ac_reward_info_t *info);

/* ---- validators: plugins/validators/<name>.lua ----------------------------------------------- */

typedef struct ac_validator {
    const char *name, *version, *path;
    /* private */
    ac_lua_plugin_t *_plugin;
    int _validate;
} ac_validator_t;

ac_validator_t *ac_validator_open(ac_lua_host_t *h, const char *name, ac_err_t *err);
void ac_validator_close(ac_validator_t *v);

/* validator.validate(training, evaluation, {min_training = min_training}). training and
 * evaluation are borrowed (evaluation NULL: an empty array). On 0, *problems is a new array,
 * empty when the data is fine; each problem is an object with "error" (string) and usually
 * "field" ("training_data[7].query") and "index" (0-based position in its array). The caller
 * turns a non-empty list into AC_ERR_VALIDATION_FAILED. -1 means the validator itself failed. */
int ac_validator_run(ac_validator_t *v, const json_t *training, const json_t *evaluation,
                     int min_training, json_t **problems, ac_err_t *err);

/* ---- webhook policies: plugins/webhooks/<name>.lua ------------------------------------------------ */

typedef struct ac_webhook_policy {
    const char *name, *version, *path;
    /* private */
    ac_lua_plugin_t *_plugin;
    int _route;
} ac_webhook_policy_t;

ac_webhook_policy_t *ac_webhook_policy_open(ac_lua_host_t *h, const char *name, ac_err_t *err);
void ac_webhook_policy_close(ac_webhook_policy_t *w);

/* policy.route(event, target): decides what one subscription gets of one event. event is the
 * payload {event, timestamp, data}; target {url, events, source, subscription_id}. On 0,
 * *deliveries is a new array: empty (drop), or one object per delivery with optional "url"
 * (route elsewhere; the caller checks it), "payload" (replace the body) and "headers" (string
 * values to add, each passing ac_webhook_header_check). -1 (AC_ERR_INTERNAL, the message names
 * the policy's file and the problem) when the policy raises or returns something else: the
 * caller decides what a failing policy means (webhooks.on_policy_error). */
int ac_webhook_route(ac_webhook_policy_t *w, const json_t *event, const json_t *target, json_t **deliveries,
                     ac_err_t *err);

#define AC_WEBHOOK_MAX_HEADERS 32       /* a policy's headers per delivery */
#define AC_WEBHOOK_MAX_HEADER_NAME 128  /* bytes */
#define AC_WEBHOOK_MAX_HEADER_VALUE 4096 /* bytes */

/* One header a policy adds to a delivery. The name must be an RFC 9110 token and none of those
 * the delivery itself owns: framing and hop-by-hop headers (Host, Content-Length,
 * Transfer-Encoding, Connection, Keep-Alive, TE, Trailer, Upgrade, Expect, Proxy-*), the
 * signature headers (webhook-id, webhook-timestamp, webhook-signature) and Content-Type. The
 * value (len bytes) may hold no control character but HTAB: no CR, LF or NUL. Returns 0, or -1
 * with err (AC_ERR_INTERNAL) naming the header and the rule. */
int ac_webhook_header_check(const char *name, size_t name_len, const char *value, size_t value_len,
                            ac_err_t *err);

#endif
