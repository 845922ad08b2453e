/* Training jobs: their records, their state machine and the queue, kept in the store.
 *
 *   queued ──▶ running ──▶ completed | failed | cancelled
 *      └──────────────────────────────────────▶ cancelled
 *
 * A job record is a JSON object (AC_DB_JOBS); its training and evaluation data live apart
 * (AC_DB_JOB_DATA) so that status reads stay small. Every change is one durable transaction. */
#ifndef AC_JOBS_H
#define AC_JOBS_H

#include <stdint.h>

#include "base/err.h"
#include "store/store.h"
#include "base/train_config.h"

typedef struct ac_job_new {
    const char *owner;    /* the principal (JWT sub) that owns the job */
    const char *agent_id;
    const ac_train_config_t *config;
    json_t *training_data;   /* borrowed: array of TrainingQuery */
    json_t *evaluation_data; /* borrowed: array, may be empty */
    json_t *validation_data; /* borrowed: array, or NULL (then held out of training_data at start) */
    int64_t now_ms;
    int64_t owner_budget_micro; /* < 0: unlimited */
    json_t *webhooks;           /* borrowed: the job's own subscriptions [{url, events, secret?}], or NULL */
} ac_job_new_t;

/* Stores a new queued job. The owner's budget must cover every job it has: the reservation
 * (max_budget_usd) of those queued or running, the cost of those that ended, and the new
 * one's reservation; else AC_ERR_BUDGET_EXCEEDED. The check and the insert are one transaction,
 * so concurrent requests cannot both pass. *job receives the stored record (new reference). */
int ac_jobs_create(ac_store_t *s, const ac_job_new_t *nj, json_t **job, ac_err_t *err);

/* Reads a job record. Returns 1 with *job set (new reference), 0 when there is no such job,
 * -1 on a store error. */
int ac_jobs_get(ac_store_t *s, const char *job_id, json_t **job, ac_err_t *err);

/* Like ac_jobs_get, for callers that cache what they render from a record: every change of a
 * record bumps its revision. Returns 2 (and *rev) when the revision still equals known_rev
 * (*job untouched), 1 with *job and *rev when it differs, 0 when there is no such job, -1. */
int ac_jobs_get_if_changed(ac_store_t *s, const char *job_id, uint64_t known_rev, uint64_t *rev, json_t **job,
                           ac_err_t *err);

/* Cancels a queued job (it leaves the queue) or asks a running one to stop at its next safe
 * point. A job already completed, failed or cancelled is AC_ERR_CANNOT_CANCEL; an unknown one
 * AC_ERR_NOT_FOUND. *job receives the updated record. */
int ac_jobs_cancel(ac_store_t *s, const char *job_id, const char *reason, int64_t now_ms, json_t **job,
                   ac_err_t *err);

/* 1 when status is final (completed, failed, cancelled). */
int ac_job_status_final(const char *status);

/* Number of jobs waiting in the queue. */
size_t ac_jobs_queued(ac_store_t *s);

/* ---- execution (workers) -------------------------------------------------------------------- */

/* A job whose plugins crashed the server this many times is failed at start, not resumed. */
#define AC_JOBS_MAX_CRASHES 2

/* Takes the oldest job from the queue and marks it running (started_at on its first start,
 * a training.job.started event). Returns 1 with job_id and *run filled, 0 when the queue is
 * empty or the store is degraded (a job started now would run into the same fault: it waits,
 * queued, until ac_store_probe succeeds). *run numbers this run of the job: from now on only
 * writes that name it (ac_jobs_update_run) change the job. */
int ac_jobs_claim(ac_store_t *s, int64_t now_ms, char job_id[37], int64_t *run, ac_err_t *err);

/* Fails a running job whose run is `run` with `error` (a training.job.failed event) and takes
 * it from that run: the run's later writes are refused. For a run that cannot be stopped (a
 * plugin call that never returns). A job that is no longer running is left alone. */
int ac_jobs_abandon(ac_store_t *s, const char *job_id, int64_t run, const char *error, int64_t now_ms,
                    ac_err_t *err);

/* At start-up: jobs a crash left running go back to the queue, ahead of the jobs queued after
 * them, to resume from their last checkpoint. crashed (n_crashed ids, repeats allowed) names the
 * jobs that were in a plugin call when the process died (a crash, not a kill): each adds to the
 * job's `crashes`, and a job at AC_JOBS_MAX_CRASHES is failed instead of resumed into the same
 * fault. A reserved write (store.h): it must succeed on a full disk too. Returns how many were
 * re-queued, or -1. */
int ac_jobs_recover(ac_store_t *s, const char *const *crashed, size_t n_crashed, ac_err_t *err);

/* Ends a job that could not go on because the store could not commit its work (error: the
 * write fault's message, "store: cannot write: No space left on device (...)"): status
 * failed, error, finished_at and a training.job.failed event, in one reserved write (store.h).
 * Everything committed before stays. A queued job also leaves the queue; a job already
 * completed, failed or cancelled is left as it is.
 *
 * When even that write fails, the failure is remembered in memory (ac_jobs_unwritten_failure,
 * what get_status shows meanwhile) until ac_jobs_write_failures can write it, and -1 is
 * returned with err set. The job is then still running on disk: if the process ends first, the
 * next start re-queues it, and it resumes from its last checkpoint once the store can write
 * (ac_jobs_claim waits while it is degraded) instead of running into the same fault. */
int ac_jobs_fail(ac_store_t *s, const char *job_id, const char *error, int64_t now_ms, ac_err_t *err);

/* 1 with the error copied into error (n bytes) when the job failed but its failure is not
 * written yet; 0 otherwise. Cheap when there is none (an atomic load). Thread-safe. */
int ac_jobs_unwritten_failure(const char *job_id, char *error, size_t n);

/* Writes the failures ac_jobs_fail could not write (call it after ac_store_probe succeeded).
 * Returns 0 when none is left, or -1 with err set when the store still cannot write (the rest
 * stay remembered). */
int ac_jobs_write_failures(ac_store_t *s, int64_t now_ms, ac_err_t *err);

/* The job's training, validation and evaluation data (new references; *validation is NULL when
 * the job was started without validation_data). */
int ac_jobs_load_data(ac_store_t *s, const char *job_id, json_t **training, json_t **validation, json_t **evaluation,
                      ac_err_t *err);

/* The per-iteration metrics series (training.get_metrics): one row per iteration. */
int ac_jobs_txn_put_metrics(ac_txn_t *t, const char *job_id, uint32_t iteration, const json_t *row, ac_err_t *err);
/* Deletes the rows of iterations >= from (a resumed job runs them again). */
int ac_jobs_txn_drop_metrics(ac_txn_t *t, const char *job_id, uint32_t from, ac_err_t *err);
/* Up to limit rows from iteration `from` on, in iteration order (*rows: new array); *more is 1
 * when rows remain after them. */
int ac_jobs_metrics_page(ac_store_t *s, const char *job_id, uint32_t from, int limit, json_t **rows, int *more,
                         ac_err_t *err);

/* Read-modify-write of one job record: in a write transaction, fn gets the record (a fresh
 * copy each time: fn may run again after the map grew, so it must only change the record and
 * the store), may change it and write other records with the ac_jobs_txn_* helpers; the
 * record is stored back and everything commits together. *job_out (optional) receives the
 * committed record. A missing job is AC_ERR_NOT_FOUND. */
typedef int (*ac_job_update_fn)(ac_txn_t *txn, json_t *job, void *ud, ac_err_t *err);
int ac_jobs_update(ac_store_t *s, const char *job_id, ac_job_update_fn fn, void *ud, json_t **job_out,
                   ac_err_t *err);
/* The same, fenced: fails (AC_ERR_INTERNAL, nothing written) unless the job's run is still `run`
 * (see ac_jobs_claim). Every write of a job's runner goes through it. */
int ac_jobs_update_run(ac_store_t *s, const char *job_id, int64_t run, ac_job_update_fn fn, void *ud,
                       json_t **job_out, ac_err_t *err);

/* Appends an event to the job's log: {seq, event, timestamp, data} (data stolen). The same
 * events are what webhooks deliver. */
int ac_jobs_txn_event(ac_txn_t *t, json_t *job, const char *event, json_t *data, int64_t now_ms, ac_err_t *err);

/* Trajectories: stored with a small summary (reward, success) that export filters on. */
int ac_jobs_txn_put_trajectory(ac_txn_t *t, const char *job_id, uint32_t iteration, uint32_t index,
                               const json_t *traj, double reward, int success, ac_err_t *err);
/* Deletes the trajectories of iterations in [from, to). *n (optional) gets how many. */
int ac_jobs_txn_drop_trajectories(ac_txn_t *t, const char *job_id, uint32_t from, uint32_t to, size_t *n,
                                  ac_err_t *err);

/* Checkpoint blobs. */
int ac_jobs_txn_put_checkpoint(ac_txn_t *t, const char *job_id, const char *ckpt_id, const void *buf, size_t len,
                               ac_err_t *err);
int ac_jobs_txn_del_checkpoint(ac_txn_t *t, const char *job_id, const char *ckpt_id, ac_err_t *err);
/* Returns 1 with *buf (malloc'd) and *len, 0 when there is no such checkpoint, -1 on error. */
int ac_jobs_get_checkpoint(ac_store_t *s, const char *job_id, const char *ckpt_id, uint8_t **buf, size_t *len,
                           ac_err_t *err);

/* Key helpers: job_id (36 bytes) followed by big-endian numbers. */
size_t ac_jobs_traj_key(uint8_t key[44], const char *job_id, uint32_t iteration, uint32_t index);

#endif
