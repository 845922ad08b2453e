/* Runs one training job on the calling (worker) thread: GRPO iterations with everything a job
 * owes its user persisted as it goes.
 *
 * Each iteration commits, in one transaction, its trajectories (every field of docs/api.md), the job's
 * progress and metrics, and its events (progress every 10 iterations, budget warnings at 75 %
 * and 90 %). Every checkpoint_interval iterations and at the end the runner evaluates the policy
 * on the job's evaluation data (validation accuracy) and stores a checkpoint: policy, Adam state,
 * RNG, iteration, and the job's counters. A job that finds a checkpoint resumes from it and first
 * drops the trajectories written after it, so that a crash loses nothing relative to the last
 * checkpoint, duplicates nothing, and (same seed, one BLAS thread) ends exactly as an
 * uninterrupted run.
 *
 * A job ends completed, failed (engine error, or plugin failures above the configured rate:
 * `error` holds the count and sample messages with file:line), or cancelled (at the user's
 * request, or before a step would pass max_budget_usd: reason budget_exceeded), each time with a
 * checkpoint of where it stopped. */
#ifndef AC_RUNNER_H
#define AC_RUNNER_H

#include <stdatomic.h>

#include "lua/config.h"
#include "lua/lua_host.h"
#include "store/jobs.h"

typedef struct ac_runner_env {
    ac_jobs_t *jobs;
    const ac_config_t *cfg;
    ac_lua_watch_t *watch;  /* the worker's: the job's plugin calls report to it, and its interrupt
                               flag ends the current iteration (cancel, shutdown, abandonment) */
    atomic_int *stopping;   /* server shutdown: leave the job running, it resumes at restart */
} ac_runner_env_t;

/* The compute threads one job may use: the configured threads shared among the workers, so that
 * all running jobs together fit the cores. */
int ac_runner_threads(const ac_config_t *cfg);

/* Runs the job (already claimed as run `run`: status running) until it ends or the server stops.
 * The job's plugins get a Lua host of their own, made here and dropped at the end: nothing of
 * one job's Lua survives into another's. Returns 0, or -1 when the store fails or the run lost
 * the job (abandoned): a write fault (ac_store_is_write_fault) is for the caller to turn into the
 * job's failure (ac_jobs_fail); after any other error the job stays as the store has it (running:
 * it resumes at the next start). */
int ac_runner_run(const ac_runner_env_t *env, const char *job_id, int64_t run, ac_err_t *err);

#endif
