/* Training jobs: their typed records, their state machine, the queue and the queries the API
 * needs, over a storage backend (LMDB, or PostgreSQL shared by several nodes; the seam is
 * store/jobs_backend.h).
 *
 *   queued ──▶ running ──▶ completed | failed | cancelled
 *      └──────────────────────────────────────▶ cancelled
 *
 * A job is an ac_job_t; its training and evaluation data live apart so that status reads stay
 * small. Every change is one durable transaction. Writes of a job's runner are fenced by the run
 * number the claim handed out (ac_jobs_update_run): a run that lost the job writes nothing.
 *
 * Handles are thread-safe; a transaction callback runs on the calling thread and may run more
 * than once (the backend retries a transaction that a retry can fix: LMDB's full map,
 * PostgreSQL's serialization failures), so it may only change its record and the store.
 *
 * With PostgreSQL several nodes share the jobs: a node runs a job under a lease it renews, every
 * write of its run is fenced by the run number, and a job whose node died is taken by another
 * node once the lease runs out (ac_jobs_claim), to resume from its last checkpoint. */
#ifndef AC_JOBS_H
#define AC_JOBS_H

#include <stdint.h>

#include "base/err.h"
#include "base/train_config.h"
#include "base/uuid.h"
#include "store/store.h"

/* ---- the job record --------------------------------------------------------------------------- */

typedef enum ac_job_status {
    AC_JOB_QUEUED = 0,
    AC_JOB_RUNNING,
    AC_JOB_COMPLETED,
    AC_JOB_FAILED,
    AC_JOB_CANCELLED,
} ac_job_status_t;
#define AC_JOB_STATUS_COUNT 5

/* The status names the API speaks, indexed by status and NULL-terminated: the one table. */
extern const char *const ac_job_status_names[AC_JOB_STATUS_COUNT + 1];
/* "queued", ...; "?" for a value out of range. */
const char *ac_job_status_name(ac_job_status_t s);
/* 0 with *out set, or -1 when name is no status. */
int ac_job_status_parse(const char *name, ac_job_status_t *out);
/* 1 for completed, failed and cancelled: nothing changes a job's status after them. */
int ac_job_status_final(ac_job_status_t s);

typedef struct ac_job_checkpoint {
    char id[AC_UUID_LEN + 1];
    int64_t iteration;
    double validation_accuracy; /* NAN: no validation was taken for it */
    int64_t created_ms;
} ac_job_checkpoint_t;

/* Times are milliseconds since the epoch, 0 for "not yet"; ids are "" for none. The struct owns
 * what its pointers point to (ac_job_free). */
typedef struct ac_job {
    char id[AC_UUID_LEN + 1];
    char *owner;         /* the principal (JWT sub) that owns the job */
    char agent_id[129];
    ac_job_status_t status;
    ac_train_config_t config; /* what it trains with (resolved, seed drawn) */
    int64_t created_ms, started_ms, finished_ms, cancelled_ms;
    int64_t eta_ms;      /* estimated completion while it runs */
    /* progress */
    int64_t current_iteration, total_iterations;
    int64_t cost_micro, budget_micro; /* spent, and max_budget_usd, in micro-USD */
    int64_t trajectories_generated;   /* every rollout so far */
    int64_t trajectories_stored;      /* kept for export (retention drops the oldest iterations) */
    int64_t oldest_iteration;         /* the oldest iteration whose trajectories are kept (0: none yet) */
    int64_t episodes, plugin_failures;
    int64_t n_training, n_evaluation; /* queries it was given */
    json_t *metrics;                  /* object: the engine's latest metrics by name (never NULL once
                                         read or created) */
    /* checkpoints kept (the best by validation accuracy and the latest), oldest first */
    ac_job_checkpoint_t *checkpoints;
    size_t n_checkpoints;
    char best_checkpoint[AC_UUID_LEN + 1];
    char latest_checkpoint[AC_UUID_LEN + 1];
    /* the end */
    char *error;         /* why it failed, or NULL */
    char *cancel_reason; /* as given to cancel, or "budget_exceeded"; NULL when none */
    int cancel_requested;
    /* execution */
    int64_t run;         /* the current run (fencing token, ac_jobs_claim) */
    int64_t queue_seq;   /* its place in the queue */
    int64_t event_seq;   /* the last event's number */
    int crashes;         /* times the server crashed in its plugins */
    json_t *webhooks;    /* array: its own subscriptions [{url, events, secret?}], or NULL */
    /* using what it trained (agents.run, training.import_checkpoint, start_grpo's init_checkpoint) */
    int64_t inference_cost_micro; /* agents.run episodes charged to the job (also in cost_micro once
                                     it ended, in budget_micro while it is active: ac_jobs_charge) */
    char init_checkpoint[AC_UUID_LEN + 1]; /* the checkpoint it started from, stored with the job
                                              under this id (not a kept checkpoint); "" for none */
    int imported;        /* made by training.import_checkpoint: its one checkpoint came from a file */
} ac_job_t;

/* The seed the job trains with: its config's, else one derived from its id. */
uint64_t ac_job_seed(const ac_job_t *job);

/* Zeroes a record (no allocation): what ac_job_free leaves behind too. */
void ac_job_init(ac_job_t *job);
/* Frees what the record owns; the struct itself is the caller's. NULL is a no-op. */
void ac_job_free(ac_job_t *job);
/* Replaces an owned string (error, cancel_reason, owner) with a copy of value (NULL: none).
 * Returns 0, or -1 when out of memory (the field is then unchanged). */
int ac_job_set_text(char **field, const char *value);
/* The kept checkpoint with this id, or NULL. */
const ac_job_checkpoint_t *ac_job_checkpoint_find(const ac_job_t *job, const char *id);
/* Appends a checkpoint (0, or -1 when out of memory) / removes the i-th. */
int ac_job_checkpoint_add(ac_job_t *job, const ac_job_checkpoint_t *c);
void ac_job_checkpoint_remove(ac_job_t *job, size_t i);

/* ---- the jobs store --------------------------------------------------------------------------- */

typedef struct ac_jobs ac_jobs_t;         /* a backend's handle */
typedef struct ac_jobs_txn ac_jobs_txn_t; /* one transaction of it */
typedef struct ac_pg ac_pg_t;             /* store/pg.h */

/* The jobs kept in an LMDB store (borrowed: it must outlive the handle). An older data directory
 * gets its totals (ac_jobs_totals) counted once here. NULL with err on failure. */
ac_jobs_t *ac_jobs_open_lmdb(ac_store_t *store, ac_err_t *err);
/* The jobs kept in PostgreSQL (borrowed: the pool must outlive the handle), shared with the
 * other nodes that open the same database. NULL with err on failure. */
ac_jobs_t *ac_jobs_open_pg(ac_pg_t *pg, ac_err_t *err);
/* NULL is a no-op. No call may be running. */
void ac_jobs_close(ac_jobs_t *j);
/* "lmdb" or "postgresql". */
const char *ac_jobs_backend(const ac_jobs_t *j);
/* 1 (with the cause, when wanted) while the backend cannot write; 0 when healthy. Cheap. */
int ac_jobs_degraded(ac_jobs_t *j, char *cause, size_t n);
/* Checks that the backend can write again (ac_store_probe, ac_pg_probe): 0 and healthy, or -1
 * with err as a write fault. */
int ac_jobs_probe(ac_jobs_t *j, ac_err_t *err);

typedef struct ac_job_new {
    const char *owner;
    const char *agent_id;
    const ac_train_config_t *config;
    json_t *training_data;   /* borrowed: array of TrainingQuery */
    json_t *evaluation_data; /* borrowed: array, may be empty */
    json_t *validation_data; /* borrowed: array, or NULL (then held out of training_data at start) */
    int64_t now_ms;
    int64_t owner_budget_micro; /* < 0: unlimited */
    json_t *webhooks;           /* borrowed: the job's own subscriptions, or NULL */
} ac_job_new_t;

/* Stores a new queued job. The owner's budget must cover every job it has: the reservation
 * (budget_micro) of those queued or running, the cost of those that ended, and the new one's
 * reservation; else AC_ERR_BUDGET_EXCEEDED (data: field max_budget_usd, budget_usd, committed_usd,
 * available_usd). The check and the insert are one transaction, so concurrent requests cannot
 * both pass. *job (optional) receives the stored record (the caller frees it). */
int ac_jobs_create(ac_jobs_t *j, const ac_job_new_t *nj, ac_job_t *job, ac_err_t *err);
/* The same for a job that starts from a checkpoint (start_grpo's init_checkpoint): the blob (len
 * bytes, borrowed) is stored with the new job under init_id, in the same transaction (a worker may
 * claim the job at once), and the record names it (ac_job_t.init_checkpoint). */
int ac_jobs_create_from(ac_jobs_t *j, const ac_job_new_t *nj, const char *init_id, const uint8_t *blob, size_t len,
                        ac_job_t *job, ac_err_t *err);

/* training.import_checkpoint: stores a job that has already ended (completed, no data, no cost)
 * holding one checkpoint, the blob (len bytes, borrowed) at `iteration`, so that everything that
 * uses a job's checkpoints (evaluate, agents.act and agents.run, export, init_checkpoint) uses it.
 * nj's owner, agent_id, config and now_ms are read (its data may be NULL). *job (optional)
 * receives the stored record. */
int ac_jobs_import(ac_jobs_t *j, const ac_job_new_t *nj, const uint8_t *blob, size_t len, int64_t iteration,
                   ac_job_t *job, ac_err_t *err);

/* Charges micro-USD spent with the job's policy outside its runs (an agents.run episode; negative:
 * a refund of an earlier charge) to the job, in one transaction: added to inference_cost_micro,
 * and to what the owner's budget counts of the job, its cost once it ended, its reservation
 * (budget_micro) while it is queued or running (the runner adds inference_cost_micro to the cost
 * it writes). A positive charge that would bring the owner's committed total past
 * owner_budget_micro (>= 0) is AC_ERR_BUDGET_EXCEEDED (data: field "budget", budget_usd,
 * committed_usd, available_usd) and changes nothing. *job (optional): the updated record. */
int ac_jobs_charge(ac_jobs_t *j, const char *job_id, int64_t micro, int64_t owner_budget_micro, ac_job_t *job,
                   ac_err_t *err);

/* Reads a job. Returns 1 with *job filled (the caller frees it), 0 when there is none, -1. */
int ac_jobs_get(ac_jobs_t *j, const char *job_id, ac_job_t *job, ac_err_t *err);

/* For callers that cache what they render from a record: every change of a record bumps its
 * revision. Returns 2 (and *rev) when the revision still equals known_rev (*job untouched), 1
 * with *job and *rev when it differs, 0 when there is no such job, -1. */
int ac_jobs_get_if_changed(ac_jobs_t *j, const char *job_id, uint64_t known_rev, uint64_t *rev, ac_job_t *job,
                           ac_err_t *err);

/* Cancels a queued job (it leaves the queue) or asks a running one to stop at its next safe
 * point. A job already completed, failed or cancelled is AC_ERR_CANNOT_CANCEL (field status); an
 * unknown one AC_ERR_NOT_FOUND. *job (optional) receives the updated record. */
int ac_jobs_cancel(ac_jobs_t *j, const char *job_id, const char *reason, int64_t now_ms, ac_job_t *job,
                   ac_err_t *err);

/* Deletes a job that has ended, with everything of it (data, events, trajectories, checkpoints,
 * metrics). AC_ERR_NOT_FOUND for an unknown job; AC_ERR_INVALID_PARAMS (field status) for one
 * queued or running. Events already in the webhook outbox are still delivered. */
int ac_jobs_delete(ac_jobs_t *j, const char *job_id, ac_err_t *err);

/* Number of jobs waiting in the queue. */
size_t ac_jobs_queued(ac_jobs_t *j);

/* ---- queries ---------------------------------------------------------------------------------- */

typedef struct ac_job_list {
    ac_job_t *jobs; /* n records (ac_job_list_free) */
    size_t n;
    int64_t total;  /* the jobs that match, in every page */
} ac_job_list_t;

/* A principal's jobs, newest first, those in `status` only (-1: any), from the offset-th match,
 * at most limit. */
int ac_jobs_list_by_owner(ac_jobs_t *j, const char *owner, int status, int64_t offset, int64_t limit,
                          ac_job_list_t *out, ac_err_t *err);
void ac_job_list_free(ac_job_list_t *l);

/* A page of JSON items. */
typedef struct ac_jobs_page {
    json_t *items; /* new array reference */
    int64_t total; /* export: the items that match in every page; else -1 */
    int more;      /* items remain after this page */
    int64_t next;  /* where the next page starts: events, the cursor (the last seq returned, or the
                      given one); metrics, the next iteration (0 when none) */
} ac_jobs_page_t;

/* A job's events with seq > after, oldest first: {seq, event, timestamp, data}. */
int ac_jobs_events_page(ac_jobs_t *j, const char *job_id, int64_t after, int64_t limit, ac_jobs_page_t *out,
                        ac_err_t *err);

typedef struct ac_export_filter {
    int success_only;
    int has_min_reward;
    double min_reward;
} ac_export_filter_t;

/* A job's stored trajectories that pass the filter, in (iteration, index) order, from the
 * offset-th match: only the small summaries are read to count and filter; the page's records
 * are fetched afterwards. */
int ac_jobs_export_page(ac_jobs_t *j, const char *job_id, const ac_export_filter_t *f, int64_t offset, int64_t limit,
                        ac_jobs_page_t *out, ac_err_t *err);

/* The per-iteration metrics series (training.get_metrics): rows from iteration `from` on. */
int ac_jobs_metrics_page(ac_jobs_t *j, const char *job_id, uint32_t from, int64_t limit, ac_jobs_page_t *out,
                         ac_err_t *err);
void ac_jobs_page_free(ac_jobs_page_t *p);

/* Returns 1 with *buf (malloc'd) and *len, 0 when there is no such checkpoint blob, -1. */
int ac_jobs_get_checkpoint(ac_jobs_t *j, const char *job_id, const char *ckpt_id, uint8_t **buf, size_t *len,
                           ac_err_t *err);

/* The job's training, validation and evaluation data (new references; *validation is NULL when
 * the job was started without validation_data). */
int ac_jobs_load_data(ac_jobs_t *j, const char *job_id, json_t **training, json_t **validation, json_t **evaluation,
                      ac_err_t *err);

/* What GET /metrics reports of every job. */
typedef struct ac_jobs_totals {
    int64_t by_status[AC_JOB_STATUS_COUNT];
    int64_t iterations;   /* the sum of current_iteration */
    int64_t trajectories; /* the sum of trajectories_generated */
} ac_jobs_totals_t;

/* The totals, kept as jobs change (in the transactions that change them): no scan. */
int ac_jobs_totals(ac_jobs_t *j, ac_jobs_totals_t *out, ac_err_t *err);
/* The same counted over every job record (what ac_jobs_totals must always equal). */
int ac_jobs_totals_scan(ac_jobs_t *j, ac_jobs_totals_t *out, ac_err_t *err);

/* ---- execution (workers and runners) ------------------------------------------------------------ */

/* A job whose plugins crashed the server this many times is failed at start, not resumed. */
#define AC_JOBS_MAX_CRASHES 2

/* Takes the oldest job from the queue and marks it running (started_at on its first start, a
 * training.job.started event). Returns 1 with job_id and *run filled, 0 when the queue is empty
 * or the backend is degraded (a job started now would run into the same fault: it waits, queued,
 * until the store can write). *run numbers this run of the job: from now on only writes that
 * name it (ac_jobs_update_run) change the job. */
int ac_jobs_claim(ac_jobs_t *j, int64_t now_ms, char job_id[AC_UUID_LEN + 1], int64_t *run, ac_err_t *err);

/* Fails a running job whose run is `run` with `error` (a training.job.failed event) and takes it
 * from that run: the run's later writes are refused. For a run that cannot be stopped (a plugin
 * call that never returns). A job that is no longer running is left alone. */
int ac_jobs_abandon(ac_jobs_t *j, const char *job_id, int64_t run, const char *error, int64_t now_ms,
                    ac_err_t *err);

/* At start-up: jobs a crash left running go back to the queue, ahead of the jobs queued after
 * them, to resume from their last checkpoint (with leases: only those whose lease names this
 * node; other nodes' jobs are theirs, or taken over when their leases run out). crashed (n_crashed ids, repeats allowed) names the
 * jobs that were in a plugin call when the process died (a crash, not a kill): each adds to the
 * job's crashes, and a job at AC_JOBS_MAX_CRASHES is failed instead of resumed into the same
 * fault. A reserved write (store.h): it must succeed on a full disk too. Returns how many were
 * re-queued, or -1. */
int ac_jobs_recover(ac_jobs_t *j, const char *const *crashed, size_t n_crashed, ac_err_t *err);

/* Ends a job that could not go on because the store could not commit its work (error: the write
 * fault's message): status failed, error, finished_at and a training.job.failed event, in one
 * reserved write. Everything committed before stays. A queued job also leaves the queue; a job
 * already ended is left as it is.
 *
 * When even that write fails, the failure is remembered in memory (ac_jobs_unwritten_failure,
 * what get_status shows meanwhile) until ac_jobs_write_failures can write it, and -1 is returned
 * with err set. The job is then still running on disk: if the process ends first, the next start
 * re-queues it, and it resumes from its last checkpoint once the store can write. */
int ac_jobs_fail(ac_jobs_t *j, const char *job_id, const char *error, int64_t now_ms, ac_err_t *err);

/* 1 with the error copied into error (n bytes) when the job failed but its failure is not
 * written yet; 0 otherwise. Cheap when there is none (an atomic load). Thread-safe. */
int ac_jobs_unwritten_failure(const char *job_id, char *error, size_t n);

/* Writes the failures ac_jobs_fail could not write (call it once the store can write again).
 * Returns 0 when none is left, or -1 with err set when the store still cannot write. */
int ac_jobs_write_failures(ac_jobs_t *j, int64_t now_ms, ac_err_t *err);

/* ---- several nodes (leases) -------------------------------------------------------------------- */

/* How long a lease lasts without renewal, in ms, when the backend is shared by several nodes;
 * 0 for a backend without leases (LMDB), where the functions below do nothing (renew reports
 * the record's cancel request) and no signal ever comes. */
int ac_jobs_lease_ms(ac_jobs_t *j);

/* Renews the lease of run `run` on the job. Returns 1 while the run holds it (*cancel: 1 when a
 * cancel was asked, from any node), 0 when it lost it (another node took the job, it was
 * abandoned, or it ended), -1 with err. */
int ac_jobs_renew(ac_jobs_t *j, const char *job_id, int64_t run, int *cancel, ac_err_t *err);

/* Gives up run's lease on a job that stays running (a node that stops): another node may take it
 * at once and resume it from its last checkpoint. 0, or -1 with err. */
int ac_jobs_release(ac_jobs_t *j, const char *job_id, int64_t run, ac_err_t *err);

/* What one node tells the others, through the database. */
typedef enum ac_jobs_signal {
    AC_JOBS_SIGNAL_QUEUED, /* a job entered the queue: idle workers may claim it */
    AC_JOBS_SIGNAL_CANCEL, /* a cancel was asked for a running job: its node interrupts it */
} ac_jobs_signal_t;
typedef void (*ac_jobs_signal_fn)(ac_jobs_signal_t what, const char *job_id, void *ud);
/* Waits up to timeout_ms for signals (every node's, this one's included), calling fn for each.
 * One thread only. Returns 0 (also on a timeout), or -1 with err when the connection failed (the
 * next call reconnects). Without leases it returns 0 at once. */
int ac_jobs_wait_signal(ac_jobs_t *j, int timeout_ms, ac_jobs_signal_fn fn, void *ud, ac_err_t *err);

/* Read-modify-write of one job: in a write transaction, fn gets the record (read afresh each
 * time it runs), may change it and write the job's other records with the ac_jobs_txn_*
 * functions; the record is stored back and everything commits together. *job_out (optional)
 * receives the committed record. A missing job is AC_ERR_NOT_FOUND (field job_id). */
typedef int (*ac_job_update_fn)(ac_jobs_txn_t *txn, ac_job_t *job, void *ud, ac_err_t *err);
int ac_jobs_update(ac_jobs_t *j, const char *job_id, ac_job_update_fn fn, void *ud, ac_job_t *job_out,
                   ac_err_t *err);
/* The same, fenced: fails (AC_ERR_INTERNAL, nothing written) unless the job's run is still `run`
 * (see ac_jobs_claim). Every write of a job's runner goes through it; with leases it also renews
 * the run's lease. */
int ac_jobs_update_run(ac_jobs_t *j, const char *job_id, int64_t run, ac_job_update_fn fn, void *ud,
                       ac_job_t *job_out, ac_err_t *err);

/* Inside an update: appends an event to the job's log, {seq, event, timestamp, data} (data
 * stolen; NULL: {}), and to the webhook outbox in the same transaction (a crash loses neither).
 * Bumps job->event_seq. */
int ac_jobs_txn_event(ac_jobs_txn_t *t, ac_job_t *job, const char *event, json_t *data, int64_t now_ms,
                      ac_err_t *err);
/* Trajectories, stored with the summary export filters on (reward, success). */
int ac_jobs_txn_put_trajectory(ac_jobs_txn_t *t, const char *job_id, uint32_t iteration, uint32_t index,
                               const json_t *traj, double reward, int success, ac_err_t *err);
/* Deletes the trajectories of iterations in [from, to). *n (optional) gets how many. */
int ac_jobs_txn_drop_trajectories(ac_jobs_txn_t *t, const char *job_id, uint32_t from, uint32_t to, size_t *n,
                                  ac_err_t *err);
/* Checkpoint blobs. */
int ac_jobs_txn_put_checkpoint(ac_jobs_txn_t *t, const char *job_id, const char *ckpt_id, const void *buf,
                               size_t len, ac_err_t *err);
int ac_jobs_txn_del_checkpoint(ac_jobs_txn_t *t, const char *job_id, const char *ckpt_id, ac_err_t *err);
/* The metrics series: one row per iteration; drop deletes the rows of iterations >= from. */
int ac_jobs_txn_put_metrics(ac_jobs_txn_t *t, const char *job_id, uint32_t iteration, const json_t *row,
                            ac_err_t *err);
int ac_jobs_txn_drop_metrics(ac_jobs_txn_t *t, const char *job_id, uint32_t from, ac_err_t *err);

#endif
