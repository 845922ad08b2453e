#include "training.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "clock.h"
#include "jobs.h"
#include "train_config.h"

#define MIN_TRAINING_QUERIES 100
#define MAX_QUERIES 10000
#define MAX_QUERY_BYTES 4096
#define MAX_PROBLEMS 50

static ac_app_t *app_of(ac_call_ctx_t *ctx)
{
    return ctx->app;
}

/* Loads a job the caller may see. Another principal's job is "not found": its existence is
 * not revealed. training:admin sees every job. */
static int load_visible_job(ac_call_ctx_t *ctx, const char *job_id, json_t **job, ac_err_t *err)
{
    int found = ac_jobs_get(app_of(ctx)->store, job_id, job, err);
    if (found < 0)
        return -1;
    if (found) {
        const char *owner = json_string_value(json_object_get(*job, "owner"));
        if ((owner != NULL && strcmp(owner, ctx->principal->sub) == 0) ||
            ac_principal_has(ctx->principal, AC_PERM_TRAINING_ADMIN))
            return 0;
        json_decref(*job);
        *job = NULL;
    }
    return ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no job %s", job_id);
}

/* ---- training.start_grpo -------------------------------------------------------------------- */

static void add_problem(json_t *problems, int index, const char *field, const char *error)
{
    if (json_array_size(problems) < MAX_PROBLEMS)
        json_array_append_new(problems, json_pack("{s:i, s:s, s:s}", "index", index, "field", field, "error", error));
}

static void check_queries(json_t *problems, const char *name, json_t *queries)
{
    size_t i;
    json_t *q;
    char field[96];
    if (json_array_size(queries) > MAX_QUERIES) {
        snprintf(field, sizeof field, "%s", name);
        add_problem(problems, -1, field, "must hold at most 10000 queries");
    }
    json_array_foreach(queries, i, q)
    {
        if (!json_is_object(q)) {
            snprintf(field, sizeof field, "%s[%zu]", name, i);
            add_problem(problems, (int)i, field, "must be an object {query, expected_outcome}");
            continue;
        }
        json_t *text = json_object_get(q, "query");
        snprintf(field, sizeof field, "%s[%zu].query", name, i);
        if (!json_is_string(text) || json_string_length(text) == 0)
            add_problem(problems, (int)i, field, "must be a non-empty string");
        else if (json_string_length(text) > MAX_QUERY_BYTES)
            add_problem(problems, (int)i, field, "must be at most 4096 bytes");
        snprintf(field, sizeof field, "%s[%zu].expected_outcome", name, i);
        if (!json_is_object(json_object_get(q, "expected_outcome")))
            add_problem(problems, (int)i, field, "must be an object");
    }
}

/* SPEC.md: -40002 when the data fails validation; data lists every problem with its index and
 * field (the first one also as data.field/data.error, the shape other errors have). */
static int validate_data(json_t *training, json_t *evaluation, ac_err_t *err)
{
    json_t *problems = json_array();
    if (json_array_size(training) < MIN_TRAINING_QUERIES) {
        char msg[80];
        snprintf(msg, sizeof msg, "must hold at least %d queries, got %zu", MIN_TRAINING_QUERIES,
                 json_array_size(training));
        add_problem(problems, -1, "training_data", msg);
    }
    check_queries(problems, "training_data", training);
    if (evaluation != NULL) {
        check_queries(problems, "evaluation_data", evaluation);
        /* a held-out query copied from training would make evaluation meaningless */
        json_t *seen = json_object();
        size_t i;
        json_t *q;
        json_array_foreach(training, i, q)
        {
            json_t *t = json_object_get(q, "query");
            if (json_is_string(t))
                json_object_set_new(seen, json_string_value(t), json_true());
        }
        json_array_foreach(evaluation, i, q)
        {
            json_t *t = json_object_get(q, "query");
            if (json_is_string(t) && json_object_get(seen, json_string_value(t)) != NULL) {
                char field[96];
                snprintf(field, sizeof field, "evaluation_data[%zu].query", i);
                add_problem(problems, (int)i, field, "is also a training query");
            }
        }
        json_decref(seen);
    }
    if (json_array_size(problems) == 0) {
        json_decref(problems);
        return 0;
    }
    json_t *first = json_array_get(problems, 0);
    ac_err_set(err, AC_ERR_VALIDATION_FAILED, "Training data validation failed: %zu problem(s)",
               json_array_size(problems));
    ac_err_set_data(err, json_pack("{s:O, s:O, s:o}", "field", json_object_get(first, "field"), "error",
                                   json_object_get(first, "error"), "problems", problems));
    return -1;
}

static int agent_id_ok(const char *s, size_t len)
{
    if (len == 0 || len > 128)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.' || c == ':'))
            return 0;
    }
    return 1;
}

static int start_grpo(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    json_t *jagent = json_object_get(params, "agent_id");
    if (!agent_id_ok(json_string_value(jagent), json_string_length(jagent)))
        return ac_err_field(err, AC_ERR_INVALID_REQUEST, "agent_id",
                            "must be 1-128 characters of letters, digits, '-', '_', '.', ':'");
    ac_train_config_t cfg;
    ac_train_config_defaults(&cfg);
    if (ac_train_config_from_json(&cfg, json_object_get(params, "config"), AC_ERR_INVALID_REQUEST, err) != 0) {
        snprintf(err->message, sizeof err->message, "Invalid training configuration");
        return -1;
    }
    json_t *training = json_object_get(params, "training_data");
    json_t *evaluation = json_object_get(params, "evaluation_data");
    if (validate_data(training, evaluation, err) != 0)
        return -1;
    json_t *empty = evaluation == NULL ? json_array() : NULL;
    ac_job_new_t nj = {ctx->principal->sub, json_string_value(jagent), &cfg, training,
                       evaluation != NULL ? evaluation : empty, ctx->now_ms};
    json_t *job;
    int rc = ac_jobs_create(app_of(ctx)->store, &nj, &job, err);
    json_decref(empty);
    if (rc != 0)
        return -1;
    *result = json_pack("{s:O, s:s, s:O, s:O, s:O}", "job_id", json_object_get(job, "job_id"), "status", "queued",
                        "agent_id", json_object_get(job, "agent_id"), "total_iterations",
                        json_object_get(job, "total_iterations"), "created_at", json_object_get(job, "created_at"));
    json_decref(job);
    return 0;
}

/* ---- training.get_status ------------------------------------------------------------------- */

static json_t *metric_or_null(json_t *metrics, const char *name)
{
    json_t *v = json_object_get(metrics, name);
    return v != NULL ? json_incref(v) : json_null();
}

static int get_status(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    json_t *job;
    if (load_visible_job(ctx, json_string_value(json_object_get(params, "job_id")), &job, err) != 0)
        return -1;
    json_int_t cur = json_integer_value(json_object_get(job, "current_iteration"));
    json_int_t total = json_integer_value(json_object_get(job, "total_iterations"));
    json_int_t cost = json_integer_value(json_object_get(job, "cost_micro"));
    json_int_t budget = json_integer_value(json_object_get(job, "budget_micro"));
    json_t *metrics = json_object_get(job, "metrics");
    char cost_s[32], budget_s[32];
    double remaining = budget > 0 ? 100.0 * (double)(budget - cost) / (double)budget : 0.0;
    json_t *m = json_pack("{s:o, s:o, s:o, s:o}", "train_loss", metric_or_null(metrics, "train_loss"),
                          "validation_accuracy", metric_or_null(metrics, "validation_accuracy"), "avg_reward",
                          metric_or_null(metrics, "avg_reward"), "trajectories_generated",
                          json_object_get(metrics, "trajectories_generated")
                              ? json_incref(json_object_get(metrics, "trajectories_generated"))
                              : json_integer(0));
    *result = json_pack("{s:O, s:O, s:O, s:I, s:I, s:f, s:o, s:s, s:s, s:f, s:O, s:O, s:O}", "job_id",
                        json_object_get(job, "job_id"), "agent_id", json_object_get(job, "agent_id"), "status",
                        json_object_get(job, "status"), "current_iteration", cur, "total_iterations", total,
                        "progress_percent", total > 0 ? round(1000.0 * (double)cur / (double)total) / 10.0 : 0.0,
                        "metrics", m, "cost_usd", ac_micro_to_usd_str(cost_s, sizeof cost_s, cost), "budget_usd",
                        ac_micro_to_usd_str(budget_s, sizeof budget_s, budget), "budget_remaining_percent",
                        round(remaining * 10.0) / 10.0, "started_at", json_object_get(job, "started_at"),
                        "estimated_completion",
                        json_object_get(job, "estimated_completion") ? json_object_get(job, "estimated_completion")
                                                                      : json_null(),
                        "best_checkpoint_id", json_object_get(job, "best_checkpoint_id"));
    json_t *error = json_object_get(job, "error");
    if (error != NULL && !json_is_null(error))
        json_object_set(*result, "error", error);
    json_decref(job);
    return *result != NULL ? 0 : ac_err_set(err, AC_ERR_INTERNAL, "cannot build the status");
}

/* ---- training.cancel ----------------------------------------------------------------------- */

static int cancel(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    const char *id = json_string_value(json_object_get(params, "job_id"));
    json_t *job;
    if (load_visible_job(ctx, id, &job, err) != 0)
        return -1;
    json_decref(job);
    const char *reason = json_string_value(json_object_get(params, "reason"));
    if (ac_jobs_cancel(app_of(ctx)->store, id, reason, ctx->now_ms, &job, err) != 0)
        return -1;
    json_t *ckpt = json_object_get(job, "latest_checkpoint_id");
    *result = json_pack("{s:s, s:s, s:O, s:O, s:b, s:O}", "job_id", id, "status", "cancelled", "cancelled_at",
                        json_object_get(job, "cancelled_at") ? json_object_get(job, "cancelled_at") : json_null(),
                        "iterations_completed", json_object_get(job, "current_iteration"), "checkpoint_saved",
                        ckpt != NULL && !json_is_null(ckpt), "checkpoint_id", ckpt != NULL ? ckpt : json_null());
    json_decref(job);
    return 0;
}

/* ---- the table ------------------------------------------------------------------------------ */

static const ac_param_spec_t start_params[] = {
    {"agent_id", AC_P_STRING, 1, "agent identifier to train"},
    {"config", AC_P_OBJECT, 1, "GRPOConfig"},
    {"training_data", AC_P_ARRAY, 1, "TrainingQuery[] (at least 100)"},
    {"evaluation_data", AC_P_ARRAY, 0, "held-out TrainingQuery[]"},
    {NULL, 0, 0, NULL},
};
static const ac_param_spec_t status_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier"},
    {NULL, 0, 0, NULL},
};
static const ac_param_spec_t cancel_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier"},
    {"reason", AC_P_STRING, 0, "cancellation reason"},
    {NULL, 0, 0, NULL},
};

const ac_method_t ac_training_methods[] = {
    /* start_grpo parses and stores up to max_body_bytes of data: off the event loop. SPEC.md
     * answers its missing or invalid parameters with -32600. */
    {"training.start_grpo", start_grpo, AC_PERM_TRAINING_START, AC_RL_START, AC_METHOD_DEFER, AC_ERR_INVALID_REQUEST,
     start_params, "Start a new GRPO training job"},
    {"training.get_status", get_status, AC_PERM_TRAINING_VIEW, AC_RL_STATUS, 0, AC_ERR_INVALID_PARAMS, status_params,
     "Current status and metrics of a training job"},
    {"training.cancel", cancel, AC_PERM_TRAINING_CANCEL, AC_RL_CANCEL, 0, AC_ERR_INVALID_PARAMS, cancel_params,
     "Cancel a queued or running training job"},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL},
};
