/* training.evaluate: a checkpoint of the job against its untrained policy (rebuilt from the
 * job's seed) on the same queries, through ac_eval_compare, with the job's own agent plugins on
 * a Lua host of this call's own. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "engine/checkpoint.h"
#include "engine/eval.h"
#include "engine/trainer.h"
#include "lua/lua_host.h"
#include "lua/plugin.h"
#include "service/app.h"
#include "service/handlers.h"
#include "store/jobs.h"

/* A page of the table's maximum: the job's own evaluation data is held to it too. */
#define MAX_EVAL_QUERIES 10000

/* What one evaluation holds; eval_close frees all of it. */
typedef struct evaluation {
    ac_job_t job;
    json_t *training, *validation, *evaluation; /* the job's data, when its evaluation data is used */
    json_t *queries;                            /* borrowed from params or from evaluation */
    const char *qname;
    const ac_job_checkpoint_t *chosen;
    const char *selected_by;
    ac_checkpoint_t ck;
    ac_lua_host_t *host;
    ac_agent_t *agent;
    ac_reward_t *reward;
    ac_actor_t *baseline;
    ac_eval_comparison_t cmp;
    int compared;
    json_t *trajectories; /* include_trajectories: the trained policy's episodes */
} evaluation_t;

static void eval_close(evaluation_t *e)
{
    json_decref(e->trajectories);
    if (e->compared)
        ac_eval_comparison_free(&e->cmp);
    ac_actor_destroy(e->baseline);
    ac_reward_close(e->reward);
    ac_agent_close(e->agent);
    ac_lua_host_destroy(e->host);
    if (e->ck.policy != NULL)
        ac_checkpoint_release(&e->ck);
    json_decref(e->training);
    json_decref(e->validation);
    json_decref(e->evaluation);
    ac_job_free(&e->job);
}

/* The failure of a part as -40004 naming what failed, with the part's message. */
static int eval_failed(ac_err_t *err, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s", err->message);
    return ac_err_field(err, AC_ERR_EVALUATION_FAILED, what, "%s", msg);
}

/* evaluation_queries, else the job's evaluation data; each {query: non-empty string,
 * expected_outcome: object}. */
static int pick_queries(ac_call_ctx_t *ctx, json_t *params, evaluation_t *e, ac_err_t *err)
{
    e->queries = json_object_get(params, "evaluation_queries");
    e->qname = "evaluation_queries";
    if (e->queries == NULL) {
        if (ac_jobs_load_data(ac_app_of(ctx)->jobs, e->job.id, &e->training, &e->validation, &e->evaluation, err) != 0)
            return -1;
        e->queries = e->evaluation;
        e->qname = "evaluation_data";
    }
    if (json_array_size(e->queries) == 0)
        return ac_err_field(err, AC_ERR_EVALUATION_FAILED, e->qname,
                            "no evaluation queries: pass evaluation_queries or start the job with evaluation_data");
    if (json_array_size(e->queries) > MAX_EVAL_QUERIES)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, e->qname, "at most %d queries", MAX_EVAL_QUERIES);
    size_t i;
    json_t *q;
    char field[96];
    json_array_foreach(e->queries, i, q)
    {
        json_t *text = json_object_get(q, "query");
        if (!json_is_string(text) || json_string_length(text) == 0) {
            snprintf(field, sizeof field, "%s[%zu].query", e->qname, i);
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, field, "must be a non-empty string");
        }
        if (!json_is_object(json_object_get(q, "expected_outcome"))) {
            snprintf(field, sizeof field, "%s[%zu].expected_outcome", e->qname, i);
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, field, "must be an object");
        }
    }
    return 0;
}

/* Which policy: the one asked for, else the one the validation set chose (the evaluation data
 * never chooses), else the latest when no checkpoint has a validation score. Then its blob. */
static int pick_checkpoint(ac_call_ctx_t *ctx, const char *asked, evaluation_t *e, ac_err_t *err)
{
    const ac_job_t *job = &e->job;
    const char *id = asked ? asked : job->best_checkpoint;
    e->chosen = ac_job_checkpoint_find(job, id);
    e->selected_by = asked ? "given" : e->chosen && !isnan(e->chosen->validation_accuracy) ? "validation" : "latest";
    if (asked == NULL && strcmp(e->selected_by, "latest") == 0)
        e->chosen = ac_job_checkpoint_find(job, id = job->latest_checkpoint);
    if (e->chosen == NULL)
        return asked ? ac_err_field(err, AC_ERR_NOT_FOUND, "checkpoint_id", "no checkpoint %s in this job", asked)
                     : ac_err_field(err, AC_ERR_NOT_FOUND, "checkpoint_id", "the job has no checkpoint yet");
    uint8_t *blob = NULL;
    size_t len = 0;
    int found = ac_jobs_get_checkpoint(ac_app_of(ctx)->jobs, job->id, e->chosen->id, &blob, &len, err);
    if (found <= 0)
        return found < 0 ? -1
                         : ac_err_field(err, AC_ERR_NOT_FOUND, "checkpoint_id", "checkpoint %s is gone (retention)",
                                        e->chosen->id);
    int rc = ac_checkpoint_load(&e->ck, blob, len, err);
    free(blob);
    return rc != 0 ? eval_failed(err, "checkpoint_id") : 0;
}

/* The weights a job started from (start_grpo's init_checkpoint) over the baseline's. */
static int baseline_from_init(ac_call_ctx_t *ctx, evaluation_t *e, ac_err_t *err)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    int found = ac_jobs_get_checkpoint(ac_app_of(ctx)->jobs, e->job.id, e->job.init_checkpoint, &blob, &len, err);
    if (found <= 0)
        return found < 0 ? -1 : ac_err_field(err, AC_ERR_EVALUATION_FAILED, "checkpoint_id",
                                             "the checkpoint the job started from is missing");
    ac_checkpoint_t init;
    int rc = ac_checkpoint_load(&init, blob, len, err);
    free(blob);
    if (rc != 0)
        return eval_failed(err, "checkpoint_id");
    size_t n = ac_actor_n_params(e->baseline);
    if (ac_actor_n_params(init.policy) == n)
        memcpy(ac_actor_params(e->baseline), ac_actor_params(init.policy), sizeof(float) * n);
    else
        rc = ac_err_field(err, AC_ERR_EVALUATION_FAILED, "checkpoint_id",
                          "the checkpoint the job started from has another shape");
    ac_checkpoint_release(&init);
    return rc;
}

/* The job's agent and reward plugins, and its untrained policy: the job's initial weights,
 * rebuilt from its seed (or the checkpoint it started from, for a job that fine-tunes one). */
static int open_plugins(ac_call_ctx_t *ctx, evaluation_t *e, ac_err_t *err)
{
    ac_agent_binding_t bind;
    if ((e->host = ac_app_plugin_host(ctx, err)) == NULL)
        return -1;
    if (ac_config_agent(ac_app_of(ctx)->cfg, e->job.agent_id, &bind) != 0)
        return ac_err_field(err, AC_ERR_EVALUATION_FAILED, "agent_id", "the job's agent is no longer available");
    if ((e->agent = ac_agent_open(e->host, bind.agent, err)) == NULL ||
        (e->reward = ac_reward_open(e->host, bind.reward, err)) == NULL)
        return eval_failed(err, "agent_id");
    ac_actor_config_t pc;
    ac_trainer_policy_config(&pc, &e->job.config, e->agent, ac_job_seed(&e->job));
    const ac_actor_config_t *kc = ac_actor_config(e->ck.policy);
    if (kc->n_tools != pc.n_tools || memcmp(kc->n_args, pc.n_args, sizeof pc.n_args) != 0)
        return ac_err_field(err, AC_ERR_EVALUATION_FAILED, "agent_id",
                            "the agent's tools changed since the checkpoint");
    pc.reader = kc->reader; /* the untrained policy reads as the trained one does */
    if ((e->baseline = ac_actor_create(&pc, err)) == NULL)
        return -1;
    return e->job.init_checkpoint[0] != '\0' ? baseline_from_init(ctx, e, err) : 0;
}

static int compare(evaluation_t *e, ac_err_t *err)
{
    if (ac_eval_compare(e->agent, e->reward, e->baseline, e->ck.policy, e->queries,
                        e->job.config.max_steps_per_trajectory, &e->cmp, err) != 0)
        return eval_failed(err, "evaluation");
    e->compared = 1;
    if (e->cmp.trained.failures == e->cmp.trained.n)
        return ac_err_field(err, AC_ERR_EVALUATION_FAILED, "evaluation", "every episode failed: %s",
                            e->cmp.trained.first_error ? e->cmp.trained.first_error : "plugin failure");
    return 0;
}

/* The trained policy's episodes, query by query: the same greedy evaluation again (deterministic:
 * the same calls and results as the one the metrics come from), keeping its trajectories. */
static int trace(evaluation_t *e, ac_err_t *err)
{
    ac_eval_result_t r;
    if (ac_eval_run_traced(e->agent, e->reward, e->ck.policy, e->queries, e->job.config.max_steps_per_trajectory, &r,
                           &e->trajectories, err) != 0)
        return eval_failed(err, "evaluation");
    ac_eval_result_free(&r);
    return 0;
}

/* {job_id, checkpoint_id, selected_by, checkpoint_iteration, metrics: the trained side,
 * baseline_comparison: the rest of ac_eval_comparison_json, queries_evaluated, duration}. */
static json_t *render(const evaluation_t *e, int64_t t0)
{
    json_t *c = ac_eval_comparison_json(&e->cmp);
    json_t *m = json_incref(json_object_get(c, "trained"));
    json_object_del(c, "trained");
    return json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:i, s:I}", "job_id", e->job.id, "checkpoint_id",
                     e->chosen->id, "selected_by", e->selected_by, "checkpoint_iteration",
                     (json_int_t)e->chosen->iteration, "metrics", m, "baseline_comparison", c, "queries_evaluated",
                     e->cmp.trained.n, "evaluation_duration_ms", (json_int_t)((ac_clock_mono_ns() - t0) / 1000000));
}

int ac_method_training_evaluate(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    int64_t t0 = ac_clock_mono_ns();
    evaluation_t e;
    memset(&e, 0, sizeof e);
    ac_job_init(&e.job);
    if (ac_app_load_job(ctx, json_string_value(json_object_get(params, "job_id")), &e.job, err) != 0)
        return -1;
    int rc = pick_queries(ctx, params, &e, err) || pick_checkpoint(ctx, json_string_value(json_object_get(params,
                                                                                            "checkpoint_id")),
                                                                   &e, err) ||
                     open_plugins(ctx, &e, err) || compare(&e, err) ||
                     (json_is_true(json_object_get(params, "include_trajectories")) && trace(&e, err))
                 ? -1
                 : 0;
    if (rc == 0 && (*result = render(&e, t0)) == NULL)
        rc = ac_err_set(err, AC_ERR_INTERNAL, "cannot build the evaluation");
    if (rc == 0 && e.trajectories != NULL)
        json_object_set(*result, "trajectories", e.trajectories);
    eval_close(&e);
    return rc;
}
