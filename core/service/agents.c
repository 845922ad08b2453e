/* agents.act and agents.run: a job's trained policy asked for the next call, or run through a
 * whole episode of the job's agent on a new query (engine/infer.h). The loaded policies are
 * cached (policies.h): agents.act on one of them is a forward pass on the event loop (the defer
 * check below sends the others to an RPC worker, which loads the checkpoint first). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/train_config.h"
#include "engine/checkpoint.h"
#include "engine/infer.h"
#include "lua/plugin.h"
#include "service/app.h"
#include "service/handlers.h"
#include "store/jobs.h"

static const char *str_param(const json_t *params, const char *key)
{
    return json_string_value(json_object_get(params, key));
}

/* The agent declarations of a checkpoint without any: the job's agent plugin's, now. */
static int decl_from_plugin(ac_call_ctx_t *ctx, const char *job_id, ac_agent_decl_t *d, ac_err_t *err)
{
    ac_job_t job;
    if (ac_jobs_get(ac_app_of(ctx)->jobs, job_id, &job, err) != 1)
        return err->code ? -1 : ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no job %s", job_id);
    int rc = ac_app_job_agent_decl(ctx, &job, "job_id", d, err);
    ac_job_free(&job);
    return rc;
}

/* Loads the target's checkpoint into the cache and takes a use of it. */
static int load_policy(ac_call_ctx_t *ctx, const ac_policy_target_t *t, ac_policy_use_t *use, ac_err_t *err)
{
    ac_app_t *app = ac_app_of(ctx);
    uint8_t *blob = NULL;
    size_t len = 0;
    int found = ac_jobs_get_checkpoint(app->jobs, t->job_id, t->checkpoint_id, &blob, &len, err);
    if (found <= 0)
        return found < 0 ? -1
                         : ac_err_field(err, AC_ERR_NOT_FOUND, "checkpoint_id", "checkpoint %s is gone (retention)",
                                        t->checkpoint_id);
    ac_checkpoint_t ck;
    int rc = ac_checkpoint_load(&ck, blob, len, err);
    free(blob);
    if (rc != 0) { /* the server's own blob: not the caller's fault */
        err->code = AC_ERR_INTERNAL;
        return -1;
    }
    ac_agent_decl_t decl;
    rc = ac_agent_decl_from_meta(&decl, ck.meta, ck.meta_len, err);
    if (rc == 0)
        rc = decl_from_plugin(ctx, t->job_id, &decl, err) == 0 ? 1 : -1;
    if (rc == 1 && ac_agent_decl_check(&decl, ac_actor_config(ck.policy), err) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", err->message);
        ac_err_field(err, AC_ERR_INVALID_PARAMS, "checkpoint_id", "the agent does not match the checkpoint: %s", msg);
        rc = -1;
        ac_agent_decl_free(&decl);
    }
    if (rc != 1) {
        ac_checkpoint_release(&ck);
        return -1;
    }
    ac_actor_t *actor = ck.policy;
    ck.policy = NULL; /* the cache takes it */
    ac_checkpoint_release(&ck);
    return ac_policies_put(app->policies, t->checkpoint_id, t->job_id, actor, &decl, use, err);
}

/* The policy a call names (job_id and/or checkpoint_id) and a use of it, the caller's right to
 * it checked: another principal's job or checkpoint is "not found", as an unknown one. */
static int open_policy(ac_call_ctx_t *ctx, json_t *params, ac_policy_target_t *t, ac_policy_use_t *use,
                       ac_err_t *err)
{
    ac_app_t *app = ac_app_of(ctx);
    const char *job_id = str_param(params, "job_id"), *ckpt = str_param(params, "checkpoint_id");
    memset(use, 0, sizeof *use);
    if (job_id == NULL && ckpt == NULL)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "job_id", "job_id or checkpoint_id is required");
    int rc = ac_policies_target(app->policies, app->jobs, job_id, ckpt, t, err);
    if (rc == 0 && job_id == NULL) { /* not loaded: its job is one of the caller's */
        ac_job_t job;
        if (ac_app_find_checkpoint(ctx, ckpt, "checkpoint_id", &job, err) != 0)
            return -1;
        rc = ac_policies_target(app->policies, app->jobs, job.id, ckpt, t, err);
        ac_job_free(&job);
    }
    if (rc < 0)
        return -1;
    if (rc == 0 || !ac_app_may_see(ctx, t->owner))
        return job_id ? ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no job %s", job_id)
                      : ac_err_field(err, AC_ERR_NOT_FOUND, "checkpoint_id", "no checkpoint %s", ckpt);
    if (t->checkpoint_id[0] == '\0')
        return ckpt ? ac_err_field(err, AC_ERR_NOT_FOUND, "checkpoint_id", "no checkpoint %s in this job", ckpt)
                    : ac_err_field(err, AC_ERR_NOT_FOUND, "checkpoint_id", "the job has no checkpoint yet");
    rc = ac_policies_get(app->policies, t->checkpoint_id, use, err);
    return rc < 0 ? -1 : rc == 1 ? 0 : load_policy(ctx, t, use, err);
}

static void add_target(json_t *out, const ac_policy_target_t *t)
{
    json_object_set_new(out, "job_id", json_string(t->job_id));
    json_object_set_new(out, "checkpoint_id", json_string(t->checkpoint_id));
    json_object_set_new(out, "selected_by", json_string(t->selected_by ? t->selected_by : "given"));
    json_object_set_new(out, "checkpoint_iteration", json_integer((json_int_t)t->iteration));
}

/* ---- agents.act ------------------------------------------------------------------------------------ */

int ac_method_agents_act(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    ac_policy_target_t t;
    ac_policy_use_t use;
    if (open_policy(ctx, params, &t, &use, err) != 0)
        return -1;
    ac_infer_call_t call;
    ac_rng_t rng;
    ac_rng_seed(&rng, (uint64_t)json_integer_value(json_object_get(params, "seed")));
    ac_infer_opts_t o = {!json_is_false(json_object_get(params, "greedy")),
                         (float)json_number_value(json_object_get(params, "temperature")), &rng,
                         (int)json_integer_value(json_object_get(params, "top_k")),
                         json_is_true(json_object_get(params, "explain"))};
    int rc = ac_infer_call_parse(&call, use.decl, params, AC_ERR_INVALID_PARAMS, err);
    if (rc == 0) {
        rc = ac_infer_act(use.actor, use.decl, &call, &o, use.scratch, result, err);
        ac_infer_call_free(&call);
    }
    ac_policies_release(ac_app_of(ctx)->policies, &use);
    if (rc == 0)
        add_target(*result, &t);
    return rc;
}

int ac_service_defer_check(void *appv, const ac_method_t *m, const json_t *params)
{
    ac_app_t *app = appv;
    if (strcmp(m->name, "agents.act") != 0 || app->policies == NULL)
        return 1;
    const char *job_id = str_param(params, "job_id"), *ckpt = str_param(params, "checkpoint_id");
    /* malformed ids, or none: the parameter checks answer at once, on the loop */
    if ((job_id != NULL && strlen(job_id) != AC_UUID_LEN) || (ckpt != NULL && strlen(ckpt) != AC_UUID_LEN) ||
        (job_id == NULL && ckpt == NULL) || !json_is_object(params))
        return 0;
    ac_policy_target_t t;
    ac_err_t e = AC_ERR_INIT;
    int rc = ac_policies_target(app->policies, app->jobs, job_id, ckpt, &t, &e);
    ac_err_clear(&e);
    if (rc < 0 || (rc == 0 && job_id == NULL))
        return 1; /* a store failure, or a checkpoint to look for among the caller's jobs */
    if (rc == 0 || t.checkpoint_id[0] == '\0')
        return 0; /* not found: answered at once */
    return !ac_policies_has(app->policies, t.checkpoint_id);
}

/* ---- agents.run ------------------------------------------------------------------------------------ */

typedef struct run_call {
    ac_job_t job;
    ac_lua_host_t *host;
    ac_agent_t *agent;
    ac_reward_t *reward;
} run_call_t;

static void run_close(run_call_t *r)
{
    ac_reward_close(r->reward);
    ac_agent_close(r->agent);
    ac_lua_host_destroy(r->host);
    ac_job_free(&r->job);
}

/* The job's agent and reward plugins on a Lua host of this call's own (a hostile plugin sees no
 * other call's state), and the check that the agent still has the tools the policy knows. */
static int run_open(ac_call_ctx_t *ctx, const ac_policy_target_t *t, const ac_actor_t *policy, run_call_t *r,
                    ac_err_t *err)
{
    ac_app_t *app = ac_app_of(ctx);
    ac_agent_binding_t bind;
    if (ac_jobs_get(app->jobs, t->job_id, &r->job, err) != 1)
        return err->code ? -1 : ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no job %s", t->job_id);
    if (ac_config_agent(app->cfg, r->job.agent_id, &bind) != 0)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "job_id", "the job's agent is no longer available");
    if ((r->host = ac_app_plugin_host(ctx, err)) == NULL || (r->agent = ac_agent_open(r->host, bind.agent, err)) == NULL ||
        (r->reward = ac_reward_open(r->host, bind.reward, err)) == NULL)
        return -1;
    ac_agent_decl_t d;
    if (ac_agent_decl_of(&d, r->agent, err) != 0)
        return -1;
    int rc = ac_agent_decl_check(&d, ac_actor_config(policy), err);
    ac_agent_decl_free(&d);
    if (rc != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", err->message);
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "job_id", "the agent's tools changed since the checkpoint: %s",
                            msg);
    }
    return 0;
}

int ac_method_agents_run(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    ac_app_t *app = ac_app_of(ctx);
    ac_policy_target_t t;
    ac_policy_use_t use;
    run_call_t r;
    memset(&r, 0, sizeof r);
    ac_job_init(&r.job);
    json_t *expected = json_object_get(params, "expected_outcome");
    if (open_policy(ctx, params, &t, &use, err) != 0)
        return -1;
    int rc = run_open(ctx, &t, use.actor, &r, err);
    if (rc == 0) {
        json_t *ms = json_object_get(params, "max_steps");
        ac_infer_run_opts_t o = {str_param(params, "query"), expected,
                                 ms ? (int)json_integer_value(ms) : r.job.config.max_steps_per_trajectory,
                                 !json_is_false(json_object_get(params, "greedy")),
                                 (float)json_number_value(json_object_get(params, "temperature")),
                                 (uint64_t)json_integer_value(json_object_get(params, "seed")),
                                 ac_usd_to_micro(app->cfg->step_cost_usd), -1};
        /* the job pays, within its owner's budget: the most the episode can cost is reserved
         * first, what it did cost is kept after */
        int64_t reserve = ac_infer_max_cost(r.agent, o.max_steps, o.step_cost_micro), cost = 0;
        int64_t budget = ac_usd_to_micro(ac_config_budget(app->cfg, r.job.owner));
        json_t *traj = NULL;
        rc = ac_jobs_charge(app->jobs, t.job_id, reserve, budget, NULL, err);
        if (rc == 0) {
            rc = ac_infer_run(r.agent, r.reward, use.actor, &o, &traj, &cost, err);
            ac_err_t e = AC_ERR_INIT;
            if (ac_jobs_charge(app->jobs, t.job_id, cost - reserve, -1, NULL, rc == 0 ? err : &e) != 0 && rc == 0)
                rc = -1;
            ac_err_clear(&e);
        }
        if (rc == 0) {
            *result = json_pack("{s:O, s:O, s:O}", "trajectory", traj, "reward", json_object_get(traj, "reward"),
                                "success", json_object_get(traj, "success"));
            json_object_set_new(*result, "cost_usd", json_real((double)cost / 1e6));
            add_target(*result, &t);
        }
        json_decref(traj);
    }
    ac_policies_release(app->policies, &use);
    run_close(&r);
    return rc;
}
