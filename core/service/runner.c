#include "service/runner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "engine/dataset.h"
#include "engine/eval.h"
#include "store/jobs.h"
#include "lua/plugin.h"
#include "base/train_config.h"
#include "engine/trainer.h"
#include "base/uuid.h"

#define MAX_ERROR_SAMPLES 3

typedef struct run {
    const ac_runner_env_t *env;
    const char *id;
    int64_t run;          /* this run of the job: every write names it (ac_jobs_update_run) */
    int restore_failed;   /* its checkpoint could not be read: the job fails (docs/operations.md) */
    ac_lua_host_t *host;  /* this job's own */
    json_t *job; /* the last committed record */
    ac_train_config_t cfg;
    ac_agent_t *agent;
    ac_reward_t *reward;
    ac_trainer_t *tr;
    json_t *training;   /* what trains (training_data less the validation it held out) */
    json_t *validation; /* what selects: validation_data, or held out of training_data */
    json_t *evaluation; /* reported on by training.evaluate only: the runner never reads it */
    /* the last validation: the learning curve's point and the checkpoint's score */
    uint64_t val_iteration;
    double val_success, val_reward;
    int val_fresh; /* taken at the iteration being committed */
    /* the job's counters: restored from the checkpoint on resume */
    int64_t cost_micro, budget_micro;
    json_int_t trajectories_generated;
    json_int_t episodes_total, failures_total;
    int warned75, warned90;
    int fire75, fire90; /* this iteration crosses the threshold */
    json_t *metrics;
    json_t *samples; /* a few plugin error messages */
    /* this session's pace */
    int64_t session_start_ns;
    int session_iterations;
    /* what the current update does (fn arguments) */
    const ac_iter_metrics_t *m;
    const char *final_status, *reason, *error;
    const char *ckpt_id;
    const uint8_t *ckpt_buf;
    size_t ckpt_len;
    double validation_accuracy;
    uint64_t ckpt_iteration;
    uint32_t drop_from;
} run_t;

uint64_t ac_runner_seed(const char *job_id, int config_seed)
{
    if (config_seed > 0)
        return (uint64_t)config_seed;
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = job_id; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return h;
}

static json_t *counters_json(const run_t *r)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:b, s:b, s:O, s:O}", "cost_micro", (json_int_t)r->cost_micro,
                     "trajectories_generated", r->trajectories_generated, "episodes_total", r->episodes_total,
                     "failures_total", r->failures_total, "warned75", r->warned75, "warned90", r->warned90,
                     "metrics", r->metrics, "error_samples", r->samples);
}

static void counters_from_json(run_t *r, const json_t *c)
{
    r->cost_micro = json_integer_value(json_object_get(c, "cost_micro"));
    r->trajectories_generated = json_integer_value(json_object_get(c, "trajectories_generated"));
    r->episodes_total = json_integer_value(json_object_get(c, "episodes_total"));
    r->failures_total = json_integer_value(json_object_get(c, "failures_total"));
    r->warned75 = json_is_true(json_object_get(c, "warned75"));
    r->warned90 = json_is_true(json_object_get(c, "warned90"));
    json_t *m = json_object_get(c, "metrics"), *s = json_object_get(c, "error_samples");
    json_decref(r->metrics);
    json_decref(r->samples);
    r->metrics = json_is_object(m) ? json_deep_copy(m) : json_object();
    r->samples = json_is_array(s) ? json_deep_copy(s) : json_array();
}

static json_t *base_event(const run_t *r, json_t *job, const char *status)
{
    return json_pack("{s:s, s:O, s:s}", "job_id", r->id, "agent_id", json_object_get(job, "agent_id"), "status",
                     status);
}

/* The counters and metrics as the status API reads them. */
static void set_progress(run_t *r, json_t *job)
{
    json_object_set_new(job, "cost_micro", json_integer((json_int_t)r->cost_micro));
    json_object_set(job, "metrics", r->metrics);
    json_object_set_new(job, "trajectories_generated", json_integer(r->trajectories_generated));
    json_object_set_new(job, "plugin_failures", json_integer(r->failures_total));
    json_object_set_new(job, "episodes", json_integer(r->episodes_total));
}

/* Greedy success and reward of the current policy on the validation set (once per iteration).
 * Returns 0 (r->val_* set, or left alone when there is nothing to validate on or the job is
 * being interrupted: every plugin call would fail and the score be wrong), or -1. */
static int validate(run_t *r, ac_err_t *err)
{
    if (json_array_size(r->validation) == 0 || atomic_load(&r->env->watch->interrupt))
        return 0;
    if (r->val_fresh && r->val_iteration == r->tr->iteration)
        return 0;
    ac_eval_result_t ev;
    if (ac_eval_run(r->agent, r->reward, r->tr->policy, r->validation, r->cfg.max_steps_per_trajectory, &ev, err) != 0)
        return -1;
    r->val_iteration = r->tr->iteration;
    r->val_success = ev.success_rate;
    r->val_reward = ev.avg_reward;
    r->val_fresh = 1;
    ac_eval_result_free(&ev);
    json_object_set_new(r->metrics, "validation_accuracy", json_real(r->val_success));
    json_object_set_new(r->metrics, "validation_reward", json_real(r->val_reward));
    return 0;
}

/* ---- resume --------------------------------------------------------------------------------- */

static int resume_txn(ac_txn_t *t, json_t *job, void *ud, ac_err_t *err)
{
    run_t *r = ud;
    size_t dropped = 0;
    if (ac_jobs_txn_drop_trajectories(t, r->id, r->drop_from, UINT32_MAX, &dropped, err) != 0 ||
        ac_jobs_txn_drop_metrics(t, r->id, r->drop_from, err) != 0)
        return -1;
    if (r->drop_from == 1 && r->val_fresh) { /* the curve's first point: the untrained policy */
        json_t *row = json_pack("{s:i, s:f, s:f}", "iteration", 0, "validation_accuracy", r->val_success,
                                "validation_reward", r->val_reward);
        int rc = ac_jobs_txn_put_metrics(t, r->id, 0, row, err);
        json_decref(row);
        if (rc != 0)
            return -1;
    }
    json_int_t stored = json_integer_value(json_object_get(job, "trajectories_stored"));
    json_object_set_new(job, "trajectories_stored", json_integer(stored - (json_int_t)dropped));
    json_object_set_new(job, "current_iteration", json_integer((json_int_t)r->drop_from - 1));
    set_progress(r, job);
    return 0;
}

static int resume(run_t *r, ac_err_t *err)
{
    const char *latest = json_string_value(json_object_get(r->job, "latest_checkpoint_id"));
    r->drop_from = 1;
    if (latest != NULL) {
        uint8_t *buf = NULL;
        size_t len = 0;
        int found = ac_jobs_get_checkpoint(r->env->store, r->id, latest, &buf, &len, err);
        if (found < 0)
            return -1;
        if (found) {
            char *meta = NULL;
            size_t meta_len = 0;
            int rc = ac_trainer_restore(r->tr, buf, len, &meta, &meta_len, err);
            free(buf);
            if (rc != 0) { /* not the store's fault: a checkpoint this build cannot read */
                r->restore_failed = 1;
                return -1;
            }
            /* the job's counters travel in the checkpoint's meta bytes */
            json_t *counters = meta ? json_loadb(meta, meta_len, 0, NULL) : NULL;
            free(meta);
            counters_from_json(r, counters);
            json_decref(counters);
            r->drop_from = (uint32_t)r->tr->iteration + 1;
        }
    }
    if (r->drop_from == 1 && validate(r, err) != 0)
        return -1;
    /* trajectories written after the checkpoint belong to iterations that will run again */
    json_t *job = NULL;
    if (ac_jobs_update_run(r->env->store, r->id, r->run, resume_txn, r, &job, err) != 0)
        return -1;
    json_decref(r->job);
    r->job = job;
    return 0;
}

/* ---- one iteration -------------------------------------------------------------------------- */

static int iteration_txn(ac_txn_t *t, json_t *job, void *ud, ac_err_t *err)
{
    run_t *r = ud;
    const ac_iter_metrics_t *m = r->m;
    const ac_rollout_t *ro = &r->tr->ro;
    uint32_t it = (uint32_t)m->iteration;
    json_t *queries = r->training;
    for (int e = 0; e < ro->n_eps; e++) {
        const ac_episode_rec_t *ep = &ro->eps[e];
        json_t *traj = ac_rollout_trajectory_json(ro, r->agent, queries, e);
        char tid[40];
        snprintf(tid, sizeof tid, "traj-%06u-%04d", it, e);
        json_object_set_new(traj, "trajectory_id", json_string(tid));
        json_object_set_new(traj, "iteration", json_integer(it));
        json_object_set_new(traj, "reward", json_real(ep->failed ? 0.0 : ep->reward));
        double nr = r->tr->ep_norm_reward ? r->tr->ep_norm_reward[e] : NAN;
        double adv = r->tr->ep_advantage ? r->tr->ep_advantage[e] : NAN;
        json_object_set_new(traj, "normalized_reward", isnan(nr) ? json_null() : json_real(nr));
        json_object_set_new(traj, "advantage", isnan(adv) ? json_null() : json_real(adv));
        json_object_set_new(traj, "success", json_boolean(!ep->failed && ep->success));
        json_object_set_new(traj, "execution_time_ms", json_integer(ep->exec_ms));
        json_object_set_new(traj, "cost_usd", json_real((double)ep->cost_micro / 1e6));
        if (ep->failed)
            json_object_set_new(traj, "error", json_string(ep->error ? ep->error : "plugin failure"));
        int rc = ac_jobs_txn_put_trajectory(t, r->id, it, (uint32_t)e, traj, ep->failed ? 0.0 : ep->reward,
                                            !ep->failed && ep->success, err);
        json_decref(traj);
        if (rc != 0)
            return -1;
    }
    json_int_t stored = json_integer_value(json_object_get(job, "trajectories_stored")) + ro->n_eps;
    /* retention: the oldest iterations go first, whole */
    json_int_t oldest = json_integer_value(json_object_get(job, "oldest_iteration"));
    if (oldest < 1)
        oldest = 1;
    while (stored > r->env->cfg->max_trajectories_per_job && oldest < (json_int_t)it) {
        size_t dropped = 0;
        if (ac_jobs_txn_drop_trajectories(t, r->id, (uint32_t)oldest, (uint32_t)oldest + 1, &dropped, err) != 0)
            return -1;
        stored -= (json_int_t)dropped;
        oldest++;
    }
    json_object_set_new(job, "oldest_iteration", json_integer(oldest));
    json_object_set_new(job, "trajectories_stored", json_integer(stored));
    json_object_set_new(job, "current_iteration", json_integer(it));
    set_progress(r, job);
    double per_iter_ms = r->session_iterations
                             ? (double)(ac_clock_mono_ns() - r->session_start_ns) / 1e6 / r->session_iterations
                             : 0.0;
    int left = r->cfg.n_iterations - (int)it;
    char ts[40];
    json_object_set_new(job, "estimated_completion",
                        json_string(ac_clock_iso8601(ts, sizeof ts, ac_clock_now_ms() + (int64_t)(per_iter_ms * left),
                                                     0)));
    int64_t now = ac_clock_now_ms();
    if (it % 10 == 0) {
        json_t *d = base_event(r, job, "running");
        json_object_set_new(d, "current_iteration", json_integer(it));
        json_object_set_new(d, "total_iterations", json_integer(r->cfg.n_iterations));
        json_object_set_new(d, "progress_percent", json_real(round(1000.0 * it / r->cfg.n_iterations) / 10.0));
        json_object_set(d, "metrics", r->metrics);
        if (ac_jobs_txn_event(t, job, "training.job.progress", d, now, err) != 0)
            return -1;
    }
    if (m->zero_var_stall) {
        json_t *d = base_event(r, job, "running");
        json_object_set_new(d, "iteration", json_integer(it));
        json_object_set_new(d, "groups_short", json_integer(m->groups_short));
        json_object_set_new(d, "rollouts", json_integer(m->trajectories));
        json_object_set_new(d, "batch_size", json_integer(r->cfg.batch_size));
        if (ac_jobs_txn_event(t, job, "training.zero_variance_stall", d, now, err) != 0)
            return -1;
    }
    /* the series training.get_metrics pages through, and the learning curve's point */
    json_t *row = json_deep_copy(r->metrics);
    json_object_set_new(row, "iteration", json_integer(it));
    json_object_set_new(row, "cost_usd", json_real((double)r->cost_micro / 1e6));
    if (!(r->val_fresh && r->val_iteration == it)) {
        json_object_del(row, "validation_accuracy");
        json_object_del(row, "validation_reward");
    }
    int rc = ac_jobs_txn_put_metrics(t, r->id, it, row, err);
    json_decref(row);
    if (rc != 0)
        return -1;
    if (r->val_fresh && r->val_iteration == it) {
        json_t *d = base_event(r, job, "running");
        json_object_set_new(d, "iteration", json_integer(it));
        json_object_set_new(d, "success_rate", json_real(r->val_success));
        json_object_set_new(d, "avg_reward", json_real(r->val_reward));
        json_object_set_new(d, "queries", json_integer((json_int_t)json_array_size(r->validation)));
        if (ac_jobs_txn_event(t, job, "training.validation", d, now, err) != 0)
            return -1;
    }
    /* budget warnings fire once each, when the cost crosses the threshold (decided before the
     * transaction, which may run twice) */
    for (int level = 75; level <= 90; level += 15) {
        if (level == 75 ? r->fire75 : r->fire90) {
            char cost[32], budget[32];
            json_t *d = base_event(r, job, "running");
            json_object_set_new(d, "threshold_percent", json_integer(level));
            json_object_set_new(d, "cost_usd", json_string(ac_micro_to_usd_str(cost, sizeof cost, r->cost_micro)));
            json_object_set_new(d, "budget_usd",
                                json_string(ac_micro_to_usd_str(budget, sizeof budget, r->budget_micro)));
            if (ac_jobs_txn_event(t, job, "training.budget.warning", d, now, err) != 0)
                return -1;
            json_object_set_new(job, level == 75 ? "budget_warned_75" : "budget_warned_90", json_true());
        }
    }
    return 0;
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

static int checkpoint_txn(ac_txn_t *t, json_t *job, void *ud, ac_err_t *err)
{
    run_t *r = ud;
    if (ac_jobs_txn_put_checkpoint(t, r->id, r->ckpt_id, r->ckpt_buf, r->ckpt_len, err) != 0)
        return -1;
    json_t *list = json_object_get(job, "checkpoints");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(job, "checkpoints", list);
    }
    char ts[40];
    json_t *entry = json_pack("{s:s, s:I, s:o, s:s}", "checkpoint_id", r->ckpt_id, "iteration",
                              (json_int_t)r->ckpt_iteration, "validation_accuracy",
                              isnan(r->validation_accuracy) ? json_null() : json_real(r->validation_accuracy),
                              "created_at", ac_clock_iso8601(ts, sizeof ts, ac_clock_now_ms(), 0));
    json_array_append_new(list, entry);
    /* best: highest validation accuracy, the later one on a tie */
    json_t *best = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        json_t *va = json_object_get(c, "validation_accuracy");
        json_t *bva = best ? json_object_get(best, "validation_accuracy") : NULL;
        if (best == NULL || (json_is_number(va) && (!json_is_number(bva) || json_number_value(va) >= json_number_value(bva))))
            best = c;
    }
    json_object_set(job, "best_checkpoint_id", json_object_get(best, "checkpoint_id"));
    json_object_set_new(job, "latest_checkpoint_id", json_string(r->ckpt_id));
    /* retention: the latest and the k best by validation accuracy */
    int keep = r->env->cfg->keep_best_checkpoints;
    while ((int)json_array_size(list) > keep + 1) {
        size_t worst = SIZE_MAX;
        double worst_va = INFINITY;
        json_array_foreach(list, i, c)
        {
            const char *cid = json_string_value(json_object_get(c, "checkpoint_id"));
            if (strcmp(cid, r->ckpt_id) == 0 || c == best)
                continue;
            json_t *va = json_object_get(c, "validation_accuracy");
            double v = json_is_number(va) ? json_number_value(va) : -1.0;
            if (worst == SIZE_MAX || v < worst_va) /* oldest first among equals */
                worst = i, worst_va = v;
        }
        if (worst == SIZE_MAX)
            break;
        const char *cid = json_string_value(json_object_get(json_array_get(list, worst), "checkpoint_id"));
        if (ac_jobs_txn_del_checkpoint(t, r->id, cid, err) != 0)
            return -1;
        json_array_remove(list, worst);
    }
    set_progress(r, job);
    return 0;
}

static int save_checkpoint(run_t *r, int evaluate, ac_err_t *err)
{
    r->validation_accuracy = NAN;
    if (evaluate && validate(r, err) != 0)
        return -1;
    if (evaluate && r->val_fresh && r->val_iteration == r->tr->iteration)
        r->validation_accuracy = r->val_success;
    char id[AC_UUID_LEN + 1];
    if (ac_uuid_v4(id) != 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "no random source for a checkpoint id");
    uint8_t *buf = NULL;
    size_t len = 0;
    json_t *counters = counters_json(r);
    char *meta = counters ? json_dumps(counters, JSON_COMPACT) : NULL;
    json_decref(counters);
    int saved = meta != NULL && ac_trainer_save(r->tr, meta, strlen(meta), &buf, &len, err) == 0;
    free(meta);
    if (!saved)
        return err->code ? -1 : ac_err_set(err, AC_ERR_INTERNAL, "cannot encode the job's counters");
    r->ckpt_id = id;
    r->ckpt_buf = buf;
    r->ckpt_len = len;
    r->ckpt_iteration = r->tr->iteration;
    json_t *job = NULL;
    int rc = ac_jobs_update_run(r->env->store, r->id, r->run, checkpoint_txn, r, &job, err);
    free(buf);
    r->ckpt_id = NULL;
    r->ckpt_buf = NULL;
    if (rc == 0) {
        json_decref(r->job);
        r->job = job;
    }
    return rc;
}

/* ---- the end -------------------------------------------------------------------------------- */

static int finish_txn(ac_txn_t *t, json_t *job, void *ud, ac_err_t *err)
{
    run_t *r = ud;
    int64_t now = ac_clock_now_ms();
    char ts[40], cost[32];
    ac_clock_iso8601(ts, sizeof ts, now, 0);
    set_progress(r, job);
    json_object_set_new(job, "status", json_string(r->final_status));
    json_object_set_new(job, "finished_at", json_string(ts));
    json_object_del(job, "estimated_completion");
    json_t *d = base_event(r, job, r->final_status);
    const char *event;
    if (strcmp(r->final_status, "cancelled") == 0) {
        json_object_set_new(job, "cancelled_at", json_string(ts));
        if (r->reason != NULL)
            json_object_set_new(job, "cancel_reason", json_string(r->reason));
        json_object_set(d, "reason", json_object_get(job, "cancel_reason"));
        json_object_set(d, "checkpoint_id", json_object_get(job, "latest_checkpoint_id"));
        json_object_set_new(d, "iterations_completed", json_integer(r->tr ? (json_int_t)r->tr->iteration : 0));
        event = "training.job.cancelled";
    } else if (strcmp(r->final_status, "failed") == 0) {
        json_object_set_new(job, "error", json_string(r->error));
        json_object_set_new(d, "error", json_string(r->error));
        event = "training.job.failed";
    } else {
        event = "training.job.completed";
    }
    json_t *va = json_object_get(r->metrics, "validation_accuracy");
    json_t *sr = json_object_get(r->metrics, "success_rate");
    json_object_set_new(d, "final_metrics",
                        json_pack("{s:O, s:s, s:O}", "success_rate", va ? va : sr ? sr : json_null(), "cost_usd",
                                  ac_micro_to_usd_str(cost, sizeof cost, r->cost_micro), "avg_reward",
                                  json_object_get(r->metrics, "avg_reward") ? json_object_get(r->metrics, "avg_reward")
                                                                            : json_null()));
    return ac_jobs_txn_event(t, job, event, d, now, err);
}

static int finish(run_t *r, const char *status, const char *reason, const char *error, ac_err_t *err)
{
    r->final_status = status;
    r->reason = reason;
    r->error = error;
    json_t *job = NULL;
    if (ac_jobs_update_run(r->env->store, r->id, r->run, finish_txn, r, &job, err) != 0)
        return -1;
    json_decref(r->job);
    r->job = job;
    return 0;
}

static void metrics_from(run_t *r, const ac_iter_metrics_t *m)
{
    json_t *va = json_incref(json_object_get(r->metrics, "validation_accuracy"));
    json_decref(r->metrics);
    r->metrics = json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:i, s:i, s:f, "
                           "s:{s:i, s:i, s:i}}",
                           "train_loss", m->loss, "avg_reward", m->avg_reward, "reward_std", m->reward_std,
                           "success_rate", m->success_rate, "kl", m->kl, "kl_exact", m->kl_exact, "entropy",
                           m->entropy, "clip_fraction", m->clip_fraction, "clip_low", m->clip_low, "clip_high",
                           m->clip_high, "clip_region", m->clip_region, "zero_variance_groups", m->zero_var_frac,
                           "grad_norm", m->grad_norm, "trajectories_generated", r->trajectories_generated,
                           "groups_used", m->groups_used, "decisions", m->decisions, "iteration_ms", m->wall_ms,
                           "plugin_failures", "tool", m->tool_failures, "agent", m->agent_failures, "reward",
                           m->reward_failures);
    if (r->metrics == NULL) /* NaN metrics (nothing to learn from): keep the counts */
        r->metrics = json_pack("{s:I}", "trajectories_generated", r->trajectories_generated);
    if (va != NULL)
        json_object_set_new(r->metrics, "validation_accuracy", va);
}

/* The job was interrupted before it could run: a cancel ends it (with no checkpoint: nothing
 * was trained in this run); anything else leaves it as the store has it. */
static int cancel_if_requested(run_t *r, ac_err_t *err)
{
    json_t *job = NULL;
    if (ac_jobs_get(r->env->store, r->id, &job, err) != 1)
        return -1;
    int cancel = json_is_true(json_object_get(job, "cancel_requested"));
    json_decref(job);
    return cancel ? finish(r, "cancelled", NULL, NULL, err) : 0;
}

static int run_loop(run_t *r, ac_err_t *err)
{
    const ac_runner_env_t *env = r->env;
    char failure[768];
    for (;;) {
        if (atomic_load(env->stopping))
            return 0; /* stays running: it resumes from its checkpoint at the next start */
        json_t *job = NULL;
        if (ac_jobs_get(env->store, r->id, &job, err) != 1)
            return -1;
        int cancel = json_is_true(json_object_get(job, "cancel_requested"));
        int ours = json_integer_value(json_object_get(job, "run")) == r->run;
        json_decref(job);
        if (!ours)
            return ac_err_set(err, AC_ERR_INTERNAL, "this run no longer owns the job (abandoned)");
        if (cancel) {
            if (r->tr->iteration > r->ckpt_iteration && save_checkpoint(r, 1, err) != 0)
                return -1;
            return finish(r, "cancelled", NULL, NULL, err);
        }
        if ((int)r->tr->iteration >= r->cfg.n_iterations)
            break;
        ac_iter_metrics_t m;
        if (ac_trainer_iterate(r->tr, r->training, r->budget_micro - r->cost_micro, &m, err) != 0) {
            /* the engine itself failed (diverged weights, memory): resuming would fail the same
             * way, so the job ends here with the cause */
            char why[600];
            snprintf(why, sizeof why, "training failed at iteration %llu: %s",
                     (unsigned long long)r->tr->iteration + 1, err->message);
            ac_err_clear(err);
            return finish(r, "failed", NULL, why, err);
        }
        if (m.stopped) { /* interrupted: the loop's checks above say why */
            if (!atomic_load(env->stopping) && ac_jobs_get(env->store, r->id, &job, err) == 1) {
                int why = json_is_true(json_object_get(job, "cancel_requested")) ||
                          json_integer_value(json_object_get(job, "run")) != r->run;
                json_decref(job);
                if (!why)
                    return ac_err_set(err, AC_ERR_INTERNAL, "interrupted without a reason");
            }
            continue;
        }
        r->cost_micro += m.cost_micro;
        r->trajectories_generated += m.trajectories;
        if (m.budget_exhausted) {
            if (r->tr->iteration > r->ckpt_iteration && save_checkpoint(r, 1, err) != 0)
                return -1;
            return finish(r, "cancelled", "budget_exceeded", NULL, err);
        }
        int fails = m.tool_failures + m.agent_failures + m.reward_failures;
        r->episodes_total += m.trajectories;
        r->failures_total += fails;
        for (int i = 0; i < r->tr->ro.n_errors && json_array_size(r->samples) < MAX_ERROR_SAMPLES; i++)
            json_array_append_new(r->samples, json_string(r->tr->ro.first_errors[i]));
        metrics_from(r, &m);
        int done_it = (int)r->tr->iteration;
        if ((done_it % r->cfg.eval_interval == 0 || done_it == r->cfg.n_iterations) && validate(r, err) != 0)
            return -1;
        r->session_iterations++;
        r->m = &m;
        r->fire75 = !r->warned75 && r->budget_micro > 0 && r->cost_micro * 100 >= r->budget_micro * 75;
        r->fire90 = !r->warned90 && r->budget_micro > 0 && r->cost_micro * 100 >= r->budget_micro * 90;
        r->warned75 |= r->fire75;
        r->warned90 |= r->fire90;
        json_t *updated = NULL;
        if (ac_jobs_update_run(env->store, r->id, r->run, iteration_txn, r, &updated, err) != 0)
            return -1;
        json_decref(r->job);
        r->job = updated;
        if (fails > 0 && ac_trainer_failures_exceed(r->failures_total, r->episodes_total, env->cfg->max_failure_rate,
                                                    failure, sizeof failure)) {
            int n = (int)strlen(failure);
            for (size_t i = 0; i < json_array_size(r->samples) && n < (int)sizeof failure; i++)
                n += snprintf(failure + n, sizeof failure - (size_t)n, "%s %s", i ? ";" : "; e.g.",
                              json_string_value(json_array_get(r->samples, i)));
            return finish(r, "failed", NULL, failure, err);
        }
        int it = (int)r->tr->iteration;
        if (it % r->cfg.checkpoint_interval == 0 || it == r->cfg.n_iterations) {
            if (save_checkpoint(r, 1, err) != 0)
                return -1;
        }
    }
    return finish(r, "completed", NULL, NULL, err);
}

int ac_runner_run(const ac_runner_env_t *env, const char *job_id, int64_t run, ac_err_t *err)
{
    run_t r = {.env = env, .id = job_id, .run = run, .session_start_ns = ac_clock_mono_ns()};
    r.metrics = json_object();
    r.samples = json_array();
    int ret = -1;
    ac_err_t plugin_err = AC_ERR_INIT;
    char failure[512];
    if (ac_jobs_get(env->store, job_id, &r.job, err) != 1 ||
        ac_jobs_load_data(env->store, job_id, &r.training, &r.validation, &r.evaluation, err) != 0)
        goto out;
    ac_train_config_defaults(&r.cfg);
    if (ac_train_config_from_json(&r.cfg, json_object_get(r.job, "config"), AC_ERR_INTERNAL, err) != 0)
        goto out;
    r.budget_micro = ac_usd_to_micro(r.cfg.max_budget_usd);
    ac_agent_binding_t bind;
    const char *agent_id = json_string_value(json_object_get(r.job, "agent_id"));
    /* a plugin that cannot be opened fails the job with its message (not a store failure) */
    if (ac_config_agent(env->cfg, agent_id, &bind) != 0) {
        snprintf(failure, sizeof failure, "unknown agent '%s'", agent_id);
        goto fail_job;
    }
    if ((r.host = ac_lua_host_create(env->cfg->lua_dir, env->cfg->plugins_dir, &env->cfg->plugin_limits,
                                     &plugin_err)) == NULL) {
        snprintf(failure, sizeof failure, "%s", plugin_err.message);
        goto fail_job;
    }
    ac_lua_host_set_watch(r.host, env->watch);
    if ((r.agent = ac_agent_open(r.host, bind.agent, &plugin_err)) == NULL ||
        (r.reward = ac_reward_open(r.host, bind.reward, &plugin_err)) == NULL) {
        snprintf(failure, sizeof failure, "%s", plugin_err.message);
        goto fail_job;
    }
    uint64_t seed = ac_runner_seed(job_id, r.cfg.seed);
    if (r.validation == NULL) { /* held out of the training data, the same at every resume */
        json_t *train = NULL;
        if (ac_dataset_split(r.training, r.cfg.validation_fraction, seed, &train, &r.validation, err) != 0)
            goto out;
        json_decref(r.training);
        r.training = train;
    }
    if ((r.tr = ac_trainer_create(&r.cfg, r.agent, r.reward, seed, ac_usd_to_micro(env->cfg->step_cost_usd),
                                  &plugin_err)) == NULL) {
        snprintf(failure, sizeof failure, "%s", plugin_err.message);
        goto fail_job;
    }
    r.tr->stop = &env->watch->interrupt;
    if (resume(&r, err) != 0) {
        if (!r.restore_failed)
            goto out;
        snprintf(failure, sizeof failure, "cannot resume from its checkpoint: %s", err->message);
        ac_err_clear(err);
        goto fail_job;
    }
    r.ckpt_iteration = r.tr->iteration;
    ret = run_loop(&r, err);
    goto out;
fail_job:
    if (r.host != NULL && ac_lua_host_interrupted(r.host)) {
        /* not the plugins' fault: the job was being cancelled (or the server stopped, or the
         * run abandoned) while its plugins loaded */
        ret = atomic_load(env->stopping) ? 0 : cancel_if_requested(&r, err);
        goto out;
    }
    ret = finish(&r, "failed", NULL, failure, err);
out:
    ac_err_clear(&plugin_err);
    ac_trainer_destroy(r.tr);
    ac_reward_close(r.reward);
    ac_agent_close(r.agent);
    ac_lua_host_destroy(r.host);
    json_decref(r.training);
    json_decref(r.evaluation);
    json_decref(r.validation);
    json_decref(r.job);
    json_decref(r.metrics);
    json_decref(r.samples);
    return ret;
}
