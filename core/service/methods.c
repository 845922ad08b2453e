#include "service/methods.h"

#include <stdint.h>

#include "engine/infer.h"
#include "lua/plugin.h"
#include "service/handlers.h"
#include "store/jobs.h"

/* Bounds the API states; the handlers and the store rely on the table holding them. */
#define EXPORT_MAX 10000       /* trajectories per export page; more is -40005 */
#define METRICS_MAX 10000      /* metrics rows per page */
#define MAX_EVAL_QUERIES 10000 /* queries per evaluation (evaluate.c holds a job's own data to it too) */
#define PAGE_MAX 1000          /* jobs or events per page */
#define MAX_JOB_WEBHOOKS 16    /* a job's own webhooks */

#define RANGE_DEFAULT (AC_PARAM_MIN | AC_PARAM_MAX | AC_PARAM_DEFAULT)

static const ac_param_spec_t subscribe_params[] = {
    {"url", AC_P_STRING, 1, "http(s) URL that receives the events", .checks = 0},
    {"events", AC_P_STRING_OR_ARRAY, 1, "event names, or \"*\" (every event)", .checks = 0},
    AC_PARAMS_END,
};
static const ac_param_spec_t no_params[] = {
    AC_PARAMS_END,
};
static const ac_param_spec_t unsubscribe_params[] = {
    {"subscription_id", AC_P_UUID, 1, "the id webhooks.subscribe returned", .checks = 0},
    AC_PARAMS_END,
};

static const ac_param_spec_t start_params[] = {
    {"agent_id", AC_P_STRING, 1, "agent identifier to train", .checks = 0},
    {"config", AC_P_OBJECT, 1, "GRPOConfig", .checks = 0},
    {"training_data", AC_P_ARRAY, 1, "TrainingQuery[] (at least 100)", .checks = 0},
    {"evaluation_data", AC_P_ARRAY, 0, "held-out TrainingQuery[]: reported on, never used to choose", .checks = 0},
    {"validation_data", AC_P_ARRAY, 0,
     "TrainingQuery[] that selects the best checkpoint (default: config.validation_fraction of training_data)",
     .checks = 0},
    {"webhooks", AC_P_ARRAY, 0, "this job's webhooks: [{url, events, secret?}]", .checks = AC_PARAM_MAX,
     .max = MAX_JOB_WEBHOOKS},
    {"init_checkpoint", AC_P_UUID, 0,
     "a checkpoint of one of your jobs (or an imported one) to start from: its weights, and its policy's shape",
     .checks = 0},
    AC_PARAMS_END,
};
static const ac_param_spec_t job_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier", .checks = 0},
    AC_PARAMS_END,
};
static const ac_param_spec_t cancel_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier", .checks = 0},
    {"reason", AC_P_STRING, 0, "cancellation reason", .checks = 0},
    AC_PARAMS_END,
};
static const ac_param_spec_t evaluate_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier", .checks = 0},
    {"checkpoint_id", AC_P_UUID, 0, "checkpoint to evaluate (default: best)", .checks = 0},
    {"evaluation_queries", AC_P_ARRAY, 0, "TrainingQuery[] (default: the job's evaluation data)",
     .checks = AC_PARAM_MAX, .max = MAX_EVAL_QUERIES},
    {"include_trajectories", AC_P_BOOL, 0, "also return the trained policy's greedy episode of every query",
     .checks = AC_PARAM_DEFAULT, .def = 0},
    AC_PARAMS_END,
};
static const char *const export_formats[] = {"json", "jsonl", "openai_chat", NULL};
static const ac_param_spec_t export_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier", .checks = 0},
    {"success_only", AC_P_BOOL, 0, "only successful trajectories", .checks = 0},
    {"min_reward", AC_P_NUMBER, 0, "minimum reward", .checks = 0},
    {"limit", AC_P_INTEGER, 0, "max trajectories (more than 10000 is -40005)", .checks = RANGE_DEFAULT, .min = 1,
     .max = EXPORT_MAX, .def = 1000, .over_code = AC_ERR_EXPORT_LIMIT},
    {"offset", AC_P_INTEGER, 0, "pagination offset", .checks = AC_PARAM_MIN | AC_PARAM_DEFAULT},
    {"format", AC_P_STRING, 0,
     "\"json\" (default: the trajectories array), \"jsonl\" (one trajectory per line) or \"openai_chat\" "
     "(one chat transcript with tool calls per line, for LLM fine-tuning)",
     .choices = export_formats},
    AC_PARAMS_END,
};
static const ac_param_spec_t list_jobs_params[] = {
    {"status", AC_P_STRING, 0, "only the jobs in this status", .choices = ac_job_status_names},
    {"limit", AC_P_INTEGER, 0, "max jobs", .checks = RANGE_DEFAULT, .min = 1, .max = PAGE_MAX, .def = 50},
    {"offset", AC_P_INTEGER, 0, "pagination offset", .checks = AC_PARAM_MIN | AC_PARAM_DEFAULT},
    AC_PARAMS_END,
};
static const ac_param_spec_t get_metrics_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier", .checks = 0},
    {"from_iteration", AC_P_INTEGER, 0, "the first iteration wanted (0: the untrained policy's validation)",
     .checks = RANGE_DEFAULT, .min = 0, .max = UINT32_MAX, .def = 0},
    {"limit", AC_P_INTEGER, 0, "max rows", .checks = RANGE_DEFAULT, .min = 1, .max = METRICS_MAX, .def = 1000},
    AC_PARAMS_END,
};
static const ac_param_spec_t list_events_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier", .checks = 0},
    {"cursor", AC_P_INTEGER, 0, "the next_cursor of the previous page (0: from the start)",
     .checks = AC_PARAM_MIN | AC_PARAM_DEFAULT},
    {"limit", AC_P_INTEGER, 0, "max events", .checks = RANGE_DEFAULT, .min = 1, .max = PAGE_MAX, .def = 100},
    AC_PARAMS_END,
};

/* agents.act and agents.run: which policy, and what the agent's episode looks like so far */
#define POLICY_PARAMS                                                                                              \
    {"job_id", AC_P_UUID, 0, "the job whose policy acts (its best checkpoint by validation, else its latest)",     \
     .checks = 0},                                                                                                 \
    {"checkpoint_id", AC_P_UUID, 0, "a checkpoint of the job (or, without job_id, of any of your jobs)",           \
     .checks = 0},                                                                                                 \
    {"query", AC_P_STRING, 1, "the task, as a training query's text", .checks = 0},                                 \
    {"greedy", AC_P_BOOL, 0, "each decision's most probable option (false: sampled, seeded)",                      \
     .checks = AC_PARAM_DEFAULT, .def = 1},                                                                        \
    {"temperature", AC_P_NUMBER, 0, "sampling temperature (greedy false)", .checks = RANGE_DEFAULT, .min = 0.01,   \
     .max = 100, .def = 1},                                                                                        \
    {"seed", AC_P_INTEGER, 0, "seed of the sampling (and of the plugins' random numbers in agents.run)",           \
     .checks = RANGE_DEFAULT, .min = 0, .max = 9007199254740991.0, .def = 0}
static const ac_param_spec_t act_params[] = {
    POLICY_PARAMS,
    {"history", AC_P_ARRAY, 0, "the episode so far, oldest first: [{tool, params, result}]",
     .checks = AC_PARAM_MAX, .max = AC_AGENT_MAX_STEPS},
    {"observation", AC_P_STRING, 0, "what agent.observe says now (agents with observe)", .checks = 0},
    {"candidates", AC_P_ARRAY, 0, "what agent.candidates offers now (agents with candidate arguments)",
     .checks = AC_PARAM_MAX, .max = AC_AGENT_MAX_CANDIDATES},
    {"legal", AC_P_ARRAY, 0, "the tools agent.legal allows now (default: all)", .checks = AC_PARAM_MAX,
     .max = AC_AGENT_MAX_ACTIONS},
    {"top_k", AC_P_INTEGER, 0, "how many of the most probable calls to list in alternatives",
     .checks = RANGE_DEFAULT, .min = 0, .max = AC_INFER_MAX_TOP_K, .def = 3},
    {"explain", AC_P_BOOL, 0, "add the context's tokens and every decision's log-probabilities",
     .checks = AC_PARAM_DEFAULT, .def = 0},
    AC_PARAMS_END,
};
static const ac_param_spec_t run_params[] = {
    POLICY_PARAMS,
    {"expected_outcome", AC_P_OBJECT, 0, "scores the episode with the job's reward plugin", .checks = 0},
    {"max_steps", AC_P_INTEGER, 0, "steps at most (default: the job's max_steps_per_trajectory)",
     .checks = AC_PARAM_MIN | AC_PARAM_MAX, .min = 1, .max = 1000},
    AC_PARAMS_END,
};
static const ac_param_spec_t export_checkpoint_params[] = {
    {"job_id", AC_P_UUID, 0, "the job (its best checkpoint by validation, else its latest)", .checks = 0},
    {"checkpoint_id", AC_P_UUID, 0, "a checkpoint of the job (or, without job_id, of any of your jobs)",
     .checks = 0},
    AC_PARAMS_END,
};
static const ac_param_spec_t import_checkpoint_params[] = {
    {"checkpoint", AC_P_STRING, 1, "the checkpoint file (docs/checkpoints.md), base64", .checks = 0},
    {"agent_id", AC_P_STRING, 0, "the agent it acts for (default: the one its metadata names)", .checks = 0},
    {"config", AC_P_OBJECT, 0, "GRPOConfig of the job it becomes (default: its metadata's); the policy's shape is "
     "the file's", .checks = 0},
    AC_PARAMS_END,
};

static const int start_errors[] = {AC_ERR_BUDGET_EXCEEDED, AC_ERR_VALIDATION_FAILED, AC_ERR_NOT_FOUND, 0};
static const int run_errors[] = {AC_ERR_NOT_FOUND, AC_ERR_BUDGET_EXCEEDED, 0};
static const int job_errors[] = {AC_ERR_NOT_FOUND, 0};
static const int cancel_errors[] = {AC_ERR_NOT_FOUND, AC_ERR_CANNOT_CANCEL, 0};
static const int evaluate_errors[] = {AC_ERR_NOT_FOUND, AC_ERR_EVALUATION_FAILED, 0};
static const int export_errors[] = {AC_ERR_NOT_FOUND, AC_ERR_EXPORT_LIMIT, 0};

const ac_method_t ac_service_methods[] = {
    /* start_grpo runs the validator plugin over up to max_body_bytes of data: off the event
     * loop. The API answers its missing or invalid parameters with -32600. */
    {"training.start_grpo", ac_method_training_start_grpo, AC_PERM_TRAINING_START, AC_RL_START, AC_METHOD_DEFER,
     AC_ERR_INVALID_REQUEST, start_params, "Start a new GRPO training job", start_errors},
    {"training.get_status", ac_method_training_get_status, AC_PERM_TRAINING_VIEW, AC_RL_STATUS, 0,
     AC_ERR_INVALID_PARAMS, job_params, "Current status and metrics of a training job", job_errors},
    /* cancel waits for a running job to reach its safe point */
    {"training.cancel", ac_method_training_cancel, AC_PERM_TRAINING_CANCEL, AC_RL_CANCEL, AC_METHOD_DEFER,
     AC_ERR_INVALID_PARAMS, cancel_params, "Cancel a queued or running training job", cancel_errors},
    {"training.evaluate", ac_method_training_evaluate, AC_PERM_TRAINING_EVALUATE, AC_RL_EVALUATE, AC_METHOD_DEFER,
     AC_ERR_INVALID_PARAMS, evaluate_params, "Evaluate a checkpoint against the untrained baseline", evaluate_errors},
    /* a page of up to 10000 trajectories takes ~1 s to build: not on an event loop */
    {"training.export_trajectories", ac_method_training_export_trajectories, AC_PERM_DATA_EXPORT, AC_RL_EXPORT,
     AC_METHOD_DEFER, AC_ERR_INVALID_PARAMS, export_params, "Export a job's trajectories, filtered and paginated",
     export_errors},
    {"training.get_metrics", ac_method_training_get_metrics, AC_PERM_TRAINING_VIEW, AC_RL_OTHER, 0,
     AC_ERR_INVALID_PARAMS, get_metrics_params,
     "A job's metrics per iteration (loss, reward, success, KL, entropy, clip, validation every eval_interval): the "
     "learning curve, paged",
     job_errors},
    {"training.list_jobs", ac_method_training_list_jobs, AC_PERM_TRAINING_VIEW, AC_RL_OTHER, 0, AC_ERR_INVALID_PARAMS,
     list_jobs_params, "The caller's jobs, newest first, by status, paginated", NULL},
    {"training.list_checkpoints", ac_method_training_list_checkpoints, AC_PERM_TRAINING_VIEW, AC_RL_OTHER, 0,
     AC_ERR_INVALID_PARAMS, job_params, "A job's kept checkpoints (the best k by validation accuracy and the latest)",
     job_errors},
    {"training.list_events", ac_method_training_list_events, AC_PERM_TRAINING_VIEW, AC_RL_OTHER, 0,
     AC_ERR_INVALID_PARAMS, list_events_params,
     "A job's events (state changes, progress, budget warnings), cursor-paginated", job_errors},
    /* a forward pass of a loaded policy answers on the event loop; loading one is RPC-worker work */
    {"agents.act", ac_method_agents_act, AC_PERM_AGENTS_INVOKE, AC_RL_ACT, AC_METHOD_DEFER_IF, AC_ERR_INVALID_PARAMS,
     act_params, "The next tool call of a trained policy for a query and an episode so far, without running it",
     job_errors},
    /* a whole episode of the agent's plugins */
    {"agents.run", ac_method_agents_run, AC_PERM_AGENTS_INVOKE, AC_RL_RUN, AC_METHOD_DEFER, AC_ERR_INVALID_PARAMS,
     run_params, "One episode of the job's agent with its trained policy on a new query: the trajectory and reward",
     run_errors},
    {"training.export_checkpoint", ac_method_training_export_checkpoint, AC_PERM_DATA_EXPORT, AC_RL_EXPORT,
     AC_METHOD_DEFER, AC_ERR_INVALID_PARAMS, export_checkpoint_params,
     "A checkpoint file (docs/checkpoints.md), base64: take the trained policy elsewhere", job_errors},
    {"training.import_checkpoint", ac_method_training_import_checkpoint, AC_PERM_TRAINING_START, AC_RL_START,
     AC_METHOD_DEFER, AC_ERR_INVALID_PARAMS, import_checkpoint_params,
     "A checkpoint file made elsewhere becomes a job of yours that has ended, holding it", NULL},
    {"webhooks.subscribe", ac_method_webhooks_subscribe, AC_PERM_WEBHOOKS_MANAGE, AC_RL_OTHER, AC_METHOD_DEFER,
     AC_ERR_INVALID_PARAMS, subscribe_params, "Subscribe a URL to your jobs' events (returns its signing secret)",
     NULL},
    {"webhooks.list", ac_method_webhooks_list, AC_PERM_WEBHOOKS_MANAGE, AC_RL_OTHER, 0, AC_ERR_INVALID_PARAMS,
     no_params, "Your subscriptions with their last delivery status and failure count", NULL},
    {"webhooks.unsubscribe", ac_method_webhooks_unsubscribe, AC_PERM_WEBHOOKS_MANAGE, AC_RL_OTHER, 0,
     AC_ERR_INVALID_PARAMS, unsubscribe_params, "Remove a subscription", job_errors},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};
