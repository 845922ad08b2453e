#include "service/runner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/train_config.h"
#include "base/uuid.h"
#include "engine/dataset.h"
#include "engine/checkpoint.h"
#include "engine/eval.h"
#include "engine/infer.h"
#include "engine/trainer.h"
#include "lua/plugin.h"
#include "store/jobs.h"

#define MAX_ERROR_SAMPLES 3

typedef struct run {
    const ac_runner_env_t *env;
    const char *id;
    int64_t run;          /* this run of the job: every write names it (ac_jobs_update_run) */
    int restore_failed;   /* its checkpoint could not be read: the job fails (docs/operations.md) */
    ac_lua_host_t *host;  /* this job's own */
    ac_job_t job;         /* the last committed record */
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
    ac_job_status_t final_status;
    const char *reason, *error;
    const char *ckpt_id;
    const uint8_t *ckpt_buf;
    size_t ckpt_len;
    double validation_accuracy;
    uint64_t ckpt_iteration;
    uint32_t drop_from;
} run_t;

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

static json_t *base_event(const ac_job_t *job, ac_job_status_t status)
{
    return json_pack("{s:s, s:s, s:s}", "job_id", job->id, "agent_id", job->agent_id, "status",
                     ac_job_status_name(status));
}

/* The counters and metrics as the status API reads them. */
static void set_progress(run_t *r, ac_job_t *job)
{
    job->cost_micro = r->cost_micro + job->inference_cost_micro; /* agents.run episodes count too */
    json_decref(job->metrics);
    job->metrics = json_incref(r->metrics);
    job->trajectories_generated = r->trajectories_generated;
    job->plugin_failures = r->failures_total;
    job->episodes = r->episodes_total;
}

/* Keeps the record a committed update returned as the run's last one. */
static void committed(run_t *r, ac_job_t *job)
{
    ac_job_free(&r->job);
    r->job = *job;
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
    if (atomic_load(&r->env->watch->interrupt)) { /* interrupted on the way: its plugin calls failed */
        ac_eval_result_free(&ev);
        return 0;
    }
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

static int resume_txn(ac_jobs_txn_t *t, ac_job_t *job, void *ud, ac_err_t *err)
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
    job->trajectories_stored -= (int64_t)dropped;
    job->current_iteration = (int64_t)r->drop_from - 1;
    set_progress(r, job);
    return 0;
}

static int resume(run_t *r, ac_err_t *err)
{
    const char *latest = r->job.latest_checkpoint;
    r->drop_from = 1;
    if (latest[0] != '\0') {
        uint8_t *buf = NULL;
        size_t len = 0;
        int found = ac_jobs_get_checkpoint(r->env->jobs, r->id, latest, &buf, &len, err);
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
    ac_job_t job;
    if (ac_jobs_update_run(r->env->jobs, r->id, r->run, resume_txn, r, &job, err) != 0)
        return -1;
    committed(r, &job);
    return 0;
}

/* ---- one iteration -------------------------------------------------------------------------- */

/* The iteration's trajectories, every field the API exports. */
static int put_trajectories(ac_jobs_txn_t *t, run_t *r, uint32_t it, ac_err_t *err)
{
    const ac_rollout_t *ro = &r->tr->ro;
    for (int e = 0; e < ro->n_eps; e++) {
        const ac_episode_rec_t *ep = &ro->eps[e];
        json_t *traj = ac_rollout_trajectory_json(ro, r->agent, r->training, e);
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
    return 0;
}

/* Retention: the oldest iterations go first, whole, until the job keeps at most
 * max_trajectories_per_job. */
static int retain_trajectories(ac_jobs_txn_t *t, run_t *r, ac_job_t *job, uint32_t it, ac_err_t *err)
{
    int64_t stored = job->trajectories_stored + r->tr->ro.n_eps;
    int64_t oldest = job->oldest_iteration < 1 ? 1 : job->oldest_iteration;
    while (stored > r->env->cfg->max_trajectories_per_job && oldest < (int64_t)it) {
        size_t dropped = 0;
        if (ac_jobs_txn_drop_trajectories(t, r->id, (uint32_t)oldest, (uint32_t)oldest + 1, &dropped, err) != 0)
            return -1;
        stored -= (int64_t)dropped;
        oldest++;
    }
    job->oldest_iteration = oldest;
    job->trajectories_stored = stored;
    return 0;
}

/* The series training.get_metrics pages through: the learning curve's point. */
static int put_metrics_row(ac_jobs_txn_t *t, run_t *r, uint32_t it, ac_err_t *err)
{
    json_t *row = json_deep_copy(r->metrics);
    json_object_set_new(row, "iteration", json_integer(it));
    json_object_set_new(row, "cost_usd", json_real((double)r->cost_micro / 1e6));
    if (!(r->val_fresh && r->val_iteration == it)) {
        json_object_del(row, "validation_accuracy");
        json_object_del(row, "validation_reward");
    }
    int rc = ac_jobs_txn_put_metrics(t, r->id, it, row, err);
    json_decref(row);
    return rc;
}

/* The iteration's events: progress every 10 iterations, a zero-variance stall, the validation
 * taken at it, and budget warnings (each fires once, when the cost crosses its threshold: decided
 * before the transaction, which may run twice). */
static int iteration_events(ac_jobs_txn_t *t, run_t *r, ac_job_t *job, uint32_t it, ac_err_t *err)
{
    const ac_iter_metrics_t *m = r->m;
    int64_t now = ac_clock_now_ms();
    json_t *d;
    if (it % 10 == 0) {
        d = base_event(job, AC_JOB_RUNNING);
        json_object_set_new(d, "current_iteration", json_integer(it));
        json_object_set_new(d, "total_iterations", json_integer(r->cfg.n_iterations));
        json_object_set_new(d, "progress_percent", json_real(round(1000.0 * it / r->cfg.n_iterations) / 10.0));
        json_object_set(d, "metrics", r->metrics);
        if (ac_jobs_txn_event(t, job, "training.job.progress", d, now, err) != 0)
            return -1;
    }
    if (m->zero_var_stall) {
        d = base_event(job, AC_JOB_RUNNING);
        json_object_set_new(d, "iteration", json_integer(it));
        json_object_set_new(d, "groups_short", json_integer(m->groups_short));
        json_object_set_new(d, "rollouts", json_integer(m->trajectories));
        json_object_set_new(d, "batch_size", json_integer(r->cfg.batch_size));
        if (ac_jobs_txn_event(t, job, "training.zero_variance_stall", d, now, err) != 0)
            return -1;
    }
    if (r->val_fresh && r->val_iteration == it) {
        d = base_event(job, AC_JOB_RUNNING);
        json_object_set_new(d, "iteration", json_integer(it));
        json_object_set_new(d, "success_rate", json_real(r->val_success));
        json_object_set_new(d, "avg_reward", json_real(r->val_reward));
        json_object_set_new(d, "queries", json_integer((json_int_t)json_array_size(r->validation)));
        if (ac_jobs_txn_event(t, job, "training.validation", d, now, err) != 0)
            return -1;
    }
    for (int level = 75; level <= 90; level += 15) {
        if (!(level == 75 ? r->fire75 : r->fire90))
            continue;
        char cost[32], budget[32];
        d = base_event(job, AC_JOB_RUNNING);
        json_object_set_new(d, "threshold_percent", json_integer(level));
        json_object_set_new(d, "cost_usd", json_string(ac_micro_to_usd_str(cost, sizeof cost, r->cost_micro)));
        json_object_set_new(d, "budget_usd", json_string(ac_micro_to_usd_str(budget, sizeof budget, r->budget_micro)));
        if (ac_jobs_txn_event(t, job, "training.budget.warning", d, now, err) != 0)
            return -1;
    }
    return 0;
}

static int iteration_txn(ac_jobs_txn_t *t, ac_job_t *job, void *ud, ac_err_t *err)
{
    run_t *r = ud;
    uint32_t it = (uint32_t)r->m->iteration;
    if (put_trajectories(t, r, it, err) != 0 || retain_trajectories(t, r, job, it, err) != 0)
        return -1;
    job->current_iteration = it;
    set_progress(r, job);
    double per_iter_ms = r->session_iterations
                             ? (double)(ac_clock_mono_ns() - r->session_start_ns) / 1e6 / r->session_iterations
                             : 0.0;
    job->eta_ms = ac_clock_now_ms() + (int64_t)(per_iter_ms * (r->cfg.n_iterations - (int)it));
    return put_metrics_row(t, r, it, err) || iteration_events(t, r, job, it, err) ? -1 : 0;
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

/* The kept checkpoint with the highest validation accuracy (the later on a tie; one without a
 * score only when none has one): its index. */
static size_t best_checkpoint(const ac_job_t *job)
{
    size_t best = 0;
    for (size_t i = 1; i < job->n_checkpoints; i++) {
        double va = job->checkpoints[i].validation_accuracy, bva = job->checkpoints[best].validation_accuracy;
        if (!isnan(va) && (isnan(bva) || va >= bva))
            best = i;
    }
    return best;
}

/* Retention: the latest and the keep_best_checkpoints best by validation accuracy. */
static int retain_checkpoints(ac_jobs_txn_t *t, run_t *r, ac_job_t *job, ac_err_t *err)
{
    int keep = r->env->cfg->keep_best_checkpoints;
    while ((int)job->n_checkpoints > keep + 1) {
        size_t best = best_checkpoint(job), worst = SIZE_MAX;
        double worst_va = INFINITY;
        for (size_t i = 0; i < job->n_checkpoints; i++) {
            const ac_job_checkpoint_t *c = &job->checkpoints[i];
            if (strcmp(c->id, r->ckpt_id) == 0 || i == best)
                continue;
            double v = isnan(c->validation_accuracy) ? -1.0 : c->validation_accuracy;
            if (worst == SIZE_MAX || v < worst_va) /* oldest first among equals */
                worst = i, worst_va = v;
        }
        if (worst == SIZE_MAX)
            break;
        if (ac_jobs_txn_del_checkpoint(t, r->id, job->checkpoints[worst].id, err) != 0)
            return -1;
        ac_job_checkpoint_remove(job, worst);
    }
    return 0;
}

static int checkpoint_txn(ac_jobs_txn_t *t, ac_job_t *job, void *ud, ac_err_t *err)
{
    run_t *r = ud;
    if (ac_jobs_txn_put_checkpoint(t, r->id, r->ckpt_id, r->ckpt_buf, r->ckpt_len, err) != 0)
        return -1;
    ac_job_checkpoint_t c = {.iteration = (int64_t)r->ckpt_iteration,
                             .validation_accuracy = r->validation_accuracy,
                             .created_ms = ac_clock_now_ms()};
    memcpy(c.id, r->ckpt_id, sizeof c.id);
    if (ac_job_checkpoint_add(job, &c) != 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
    memcpy(job->best_checkpoint, job->checkpoints[best_checkpoint(job)].id, sizeof job->best_checkpoint);
    memcpy(job->latest_checkpoint, r->ckpt_id, sizeof job->latest_checkpoint);
    if (retain_checkpoints(t, r, job, err) != 0)
        return -1;
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
    /* what makes the checkpoint usable on its own (docs/checkpoints.md, "Metadata"): the agent's
     * declarations the policy was trained with, its agent_id and the job's config */
    ac_agent_decl_t decl;
    if (counters != NULL && ac_agent_decl_of(&decl, r->agent, err) == 0) {
        json_object_set_new(counters, "agent", ac_agent_decl_json(&decl));
        json_object_set_new(counters, "agent_id", json_string(r->job.agent_id));
        json_object_set_new(counters, "config", ac_train_config_to_json(&r->cfg));
        ac_agent_decl_free(&decl);
    }
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
    ac_job_t job;
    int rc = ac_jobs_update_run(r->env->jobs, r->id, r->run, checkpoint_txn, r, &job, err);
    free(buf);
    r->ckpt_id = NULL;
    r->ckpt_buf = NULL;
    if (rc == 0)
        committed(r, &job);
    return rc;
}

/* ---- the end -------------------------------------------------------------------------------- */

static int finish_txn(ac_jobs_txn_t *t, ac_job_t *job, void *ud, ac_err_t *err)
{
    run_t *r = ud;
    int64_t now = ac_clock_now_ms();
    char cost[32];
    set_progress(r, job);
    job->status = r->final_status;
    job->finished_ms = now;
    job->eta_ms = 0;
    json_t *d = base_event(job, r->final_status);
    const char *event = "training.job.completed";
    if (r->final_status == AC_JOB_CANCELLED) {
        job->cancelled_ms = now;
        if (r->reason != NULL && ac_job_set_text(&job->cancel_reason, r->reason) != 0)
            return ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
        json_object_set_new(d, "reason", job->cancel_reason ? json_string(job->cancel_reason) : json_null());
        json_object_set_new(d, "checkpoint_id",
                            job->latest_checkpoint[0] ? json_string(job->latest_checkpoint) : json_null());
        json_object_set_new(d, "iterations_completed", json_integer(r->tr ? (json_int_t)r->tr->iteration : 0));
        event = "training.job.cancelled";
    } else if (r->final_status == AC_JOB_FAILED) {
        if (ac_job_set_text(&job->error, r->error) != 0)
            return ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
        json_object_set_new(d, "error", json_string(r->error));
        event = "training.job.failed";
    }
    json_t *va = json_object_get(r->metrics, "validation_accuracy");
    json_t *sr = json_object_get(r->metrics, "success_rate"), *avg = json_object_get(r->metrics, "avg_reward");
    json_object_set_new(d, "final_metrics",
                        json_pack("{s:O, s:s, s:O}", "success_rate", va ? va : sr ? sr : json_null(), "cost_usd",
                                  ac_micro_to_usd_str(cost, sizeof cost, r->cost_micro), "avg_reward",
                                  avg ? avg : json_null()));
    return ac_jobs_txn_event(t, job, event, d, now, err);
}

static int finish(run_t *r, ac_job_status_t status, const char *reason, const char *error, ac_err_t *err)
{
    r->final_status = status;
    r->reason = reason;
    r->error = error;
    ac_job_t job;
    if (ac_jobs_update_run(r->env->jobs, r->id, r->run, finish_txn, r, &job, err) != 0)
        return -1;
    committed(r, &job);
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

/* What the store says of this run: 1 when a cancel was asked for, 0 to go on, -1 when the run no
 * longer owns the job (abandoned) or the store failed. */
static int cancel_asked(run_t *r, ac_err_t *err)
{
    ac_job_t job;
    if (ac_jobs_get(r->env->jobs, r->id, &job, err) != 1)
        return -1;
    int cancel = job.cancel_requested, ours = job.run == r->run;
    ac_job_free(&job);
    if (!ours)
        return ac_err_set(err, AC_ERR_INTERNAL, "this run no longer owns the job (abandoned)");
    return cancel;
}

/* The job was interrupted before it could run: a cancel ends it (with no checkpoint: nothing
 * was trained in this run); anything else leaves it as the store has it. */
static int cancel_if_requested(run_t *r, ac_err_t *err)
{
    int cancel = cancel_asked(r, err);
    return cancel < 0 ? -1 : cancel ? finish(r, AC_JOB_CANCELLED, NULL, NULL, err) : 0;
}

/* After an iteration: its counters, its validation, its commit. 1 when the job ended (failed on
 * plugin failures, or cancelled over budget), 0 to go on, -1. */
static int after_iteration(run_t *r, ac_iter_metrics_t *m, ac_err_t *err)
{
    char failure[768];
    if (m->budget_exhausted) {
        if (r->tr->iteration > r->ckpt_iteration && save_checkpoint(r, 1, err) != 0)
            return -1;
        return finish(r, AC_JOB_CANCELLED, "budget_exceeded", NULL, err) ? -1 : 1;
    }
    int fails = m->failed_episodes;
    r->episodes_total += m->trajectories;
    r->failures_total += fails;
    for (int i = 0; i < r->tr->ro.n_errors && json_array_size(r->samples) < MAX_ERROR_SAMPLES; i++)
        json_array_append_new(r->samples, json_string(r->tr->ro.first_errors[i]));
    metrics_from(r, m);
    int done_it = (int)r->tr->iteration;
    if ((done_it % r->cfg.eval_interval == 0 || done_it == r->cfg.n_iterations) && validate(r, err) != 0)
        return -1;
    r->session_iterations++;
    r->m = m;
    r->fire75 = !r->warned75 && r->budget_micro > 0 && r->cost_micro * 100 >= r->budget_micro * 75;
    r->fire90 = !r->warned90 && r->budget_micro > 0 && r->cost_micro * 100 >= r->budget_micro * 90;
    r->warned75 |= r->fire75;
    r->warned90 |= r->fire90;
    ac_job_t updated;
    if (ac_jobs_update_run(r->env->jobs, r->id, r->run, iteration_txn, r, &updated, err) != 0)
        return -1;
    committed(r, &updated);
    if (fails > 0 && ac_trainer_failures_exceed(r->failures_total, r->episodes_total, r->env->cfg->max_failure_rate,
                                                failure, sizeof failure)) {
        int n = (int)strlen(failure);
        for (size_t i = 0; i < json_array_size(r->samples) && n < (int)sizeof failure; i++)
            n += snprintf(failure + n, sizeof failure - (size_t)n, "%s %s", i ? ";" : "; e.g.",
                          json_string_value(json_array_get(r->samples, i)));
        return finish(r, AC_JOB_FAILED, NULL, failure, err) ? -1 : 1;
    }
    if (done_it % r->cfg.checkpoint_interval == 0 || done_it == r->cfg.n_iterations)
        return save_checkpoint(r, 1, err);
    return 0;
}

static int run_loop(run_t *r, ac_err_t *err)
{
    const ac_runner_env_t *env = r->env;
    for (;;) {
        if (atomic_load(env->stopping))
            return 0; /* stays running: it resumes from its checkpoint at the next start */
        int cancel = cancel_asked(r, err);
        if (cancel < 0)
            return -1;
        if (cancel) {
            if (r->tr->iteration > r->ckpt_iteration && save_checkpoint(r, 1, err) != 0)
                return -1;
            return finish(r, AC_JOB_CANCELLED, NULL, NULL, err);
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
            return finish(r, AC_JOB_FAILED, NULL, why, err);
        }
        if (m.stopped) { /* interrupted: the checks above say why, or this does */
            ac_err_t e = AC_ERR_INIT;
            int why = atomic_load(env->stopping) ? 1 : cancel_asked(r, &e);
            ac_err_clear(&e);
            if (why == 0)
                return ac_err_set(err, AC_ERR_INTERNAL, "interrupted without a reason");
            continue;
        }
        r->cost_micro += m.cost_micro;
        r->trajectories_generated += m.trajectories;
        int ended = after_iteration(r, &m, err);
        if (ended != 0)
            return ended < 0 ? -1 : 0;
    }
    return finish(r, AC_JOB_COMPLETED, NULL, NULL, err);
}

/* The job's agent and reward plugins on a Lua host of its own: 0, or 1 with `failure` (a plugin
 * that cannot be opened fails the job: it is the job's problem, not the store's). */
static int open_plugins(run_t *r, char *failure, size_t n)
{
    const ac_runner_env_t *env = r->env;
    ac_err_t perr = AC_ERR_INIT;
    ac_agent_binding_t bind;
    int rc = 1;
    if (ac_config_agent(env->cfg, r->job.agent_id, &bind) != 0) {
        snprintf(failure, n, "unknown agent '%s'", r->job.agent_id);
        return 1;
    }
    r->host = ac_lua_host_create(env->cfg->lua_dir, env->cfg->plugins_dir, &env->cfg->plugin_limits, &perr);
    if (r->host != NULL) {
        ac_lua_host_set_watch(r->host, env->watch);
        if ((r->agent = ac_agent_open(r->host, bind.agent, &perr)) != NULL &&
            (r->reward = ac_reward_open(r->host, bind.reward, &perr)) != NULL)
            rc = 0;
    }
    if (rc != 0)
        snprintf(failure, n, "%s", perr.message);
    ac_err_clear(&perr);
    return rc;
}

/* A job started from a checkpoint (start_grpo's init_checkpoint): its policy and its reference
 * (what the KL penalty holds it to) are that checkpoint's weights, at every start of the job (a
 * resume then overwrites the policy with its own checkpoint's). Returns 0, -1 for a store
 * failure, or 1 with `failure`. */
static int start_from(run_t *r, char *failure, size_t n, ac_err_t *err)
{
    if (r->job.init_checkpoint[0] == '\0')
        return 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int found = ac_jobs_get_checkpoint(r->env->jobs, r->id, r->job.init_checkpoint, &buf, &len, err);
    if (found <= 0) {
        if (found < 0)
            return -1;
        snprintf(failure, n, "its init checkpoint %s is missing", r->job.init_checkpoint);
        return 1;
    }
    ac_checkpoint_t ck;
    ac_err_t e = AC_ERR_INIT;
    int rc = ac_checkpoint_load(&ck, buf, len, &e);
    free(buf);
    if (rc != 0) {
        snprintf(failure, n, "cannot read its init checkpoint: %s", e.message);
        ac_err_clear(&e);
        return 1;
    }
    if (ac_trainer_start_from(r->tr, ck.policy) != 0) {
        snprintf(failure, n, "its init checkpoint was made for another policy shape");
        rc = 1;
    }
    ac_checkpoint_release(&ck);
    return rc;
}

/* The job's record and data, its plugins, its split and its trainer. Returns 0, -1 for a store
 * failure, or 1 with `failure` for what fails the job. */
static int setup(run_t *r, char *failure, size_t n, ac_err_t *err)
{
    const ac_runner_env_t *env = r->env;
    if (ac_jobs_get(env->jobs, r->id, &r->job, err) != 1 ||
        ac_jobs_load_data(env->jobs, r->id, &r->training, &r->validation, &r->evaluation, err) != 0)
        return -1;
    r->cfg = r->job.config;
    r->budget_micro = ac_usd_to_micro(r->cfg.max_budget_usd);
    uint64_t seed = ac_job_seed(&r->job);
    if (open_plugins(r, failure, n) != 0)
        return 1;
    if (r->validation == NULL) { /* held out of the training data, the same at every resume */
        json_t *train = NULL;
        if (ac_dataset_split(r->training, r->cfg.validation_fraction, seed, &train, &r->validation, err) != 0)
            return -1;
        json_decref(r->training);
        r->training = train;
    }
    ac_err_t perr = AC_ERR_INIT;
    r->tr = ac_trainer_create(&r->cfg, r->agent, r->reward, seed, ac_usd_to_micro(env->cfg->step_cost_usd), &perr);
    if (r->tr == NULL)
        snprintf(failure, n, "%s", perr.message);
    else if (ac_trainer_set_threads(r->tr, ac_runner_threads(env->cfg), &perr) != 0)
        fprintf(stderr, "agentcore: job %s runs on one thread: %s\n", r->id, perr.message); /* slower, not wrong */
    ac_err_clear(&perr);
    return r->tr == NULL ? 1 : start_from(r, failure, n, err);
}

int ac_runner_threads(const ac_config_t *cfg)
{
    int per = cfg->threads > 0 && cfg->workers > 0 ? cfg->threads / cfg->workers : 1;
    return per > 0 ? per : 1;
}

int ac_runner_run(const ac_runner_env_t *env, const char *job_id, int64_t run, ac_err_t *err)
{
    run_t r = {.env = env, .id = job_id, .run = run, .session_start_ns = ac_clock_mono_ns()};
    ac_job_init(&r.job);
    r.metrics = json_object();
    r.samples = json_array();
    int ret = -1;
    char failure[512];
    int rc = setup(&r, failure, sizeof failure, err);
    if (rc == 0) {
        r.tr->stop = &env->watch->interrupt;
        if (resume(&r, err) == 0) {
            r.ckpt_iteration = r.tr->iteration;
            ret = run_loop(&r, err);
        } else if (r.restore_failed) {
            snprintf(failure, sizeof failure, "cannot resume from its checkpoint: %s", err->message);
            ac_err_clear(err);
            rc = 1;
        }
    }
    if (rc == 1) {
        if (r.host != NULL && ac_lua_host_interrupted(r.host)) /* not the plugins' fault: the job was
            being cancelled (or the server stopped, or the run abandoned) while its plugins loaded */
            ret = atomic_load(env->stopping) ? 0 : cancel_if_requested(&r, err);
        else
            ret = finish(&r, AC_JOB_FAILED, NULL, failure, err);
    }
    ac_trainer_destroy(r.tr);
    ac_reward_close(r.reward);
    ac_agent_close(r.agent);
    ac_lua_host_destroy(r.host);
    json_decref(r.training);
    json_decref(r.evaluation);
    json_decref(r.validation);
    ac_job_free(&r.job);
    json_decref(r.metrics);
    json_decref(r.samples);
    return ret;
}
