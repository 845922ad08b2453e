/* The seam between the jobs store (jobs.c: the state machine, the queue's rules, budgets,
 * events, failures, written once) and a storage backend (jobs_lmdb.c, jobs_pg.c). Only jobs.c
 * and backends include this file.
 *
 * A backend provides transactions and, inside them, primitives over its own layout: job records,
 * the queue, logs (events and their outbox entries, trajectories, metrics rows), checkpoint blobs,
 * and the queries the API pages through. It keeps two things for itself, because only it can
 * keep them cheap: a revision per job record (bumped by every put) and the totals of
 * ac_jobs_totals.
 *
 * Transactions: write runs fn and commits when it returns 0 (durably); fn returning -1 aborts. A
 * backend may run fn again in a new transaction when a retry can succeed (LMDB: the map grew;
 * PostgreSQL: a serialization failure or a deadlock), so fn only changes the store and its own
 * outputs. Inside a write, `get` locks the record until the commit (PostgreSQL: FOR UPDATE), so
 * that a read-modify-write of a job is one step whichever node makes it. `reserved` marks the
 * few writes that record a failure and must get through on a full disk (store.h). A write the
 * store cannot commit fails with data {"field": "store", ...} (ac_store_is_write_fault) and
 * marks the backend degraded.
 *
 * Several nodes over one database (a backend with leases: lease_ms returns > 0): a running job
 * is held by the node that claimed it under a lease, renewed by every fenced write and by
 * `renew`; take_first also hands out running jobs whose lease ran out (their node died), and the
 * claim's new run number fences the old holder out. A backend without leases (LMDB: one process)
 * leaves those entries NULL; a crash there is recovered at the next start (ac_jobs_recover). */
#ifndef AC_JOBS_BACKEND_H
#define AC_JOBS_BACKEND_H

#include "store/jobs.h"

typedef int (*ac_jobs_txn_fn)(ac_jobs_txn_t *txn, void *ud, ac_err_t *err);
/* Called for each job record; returns 0 to go on, 1 to stop, -1 with err set. */
typedef int (*ac_jobs_each_fn)(const ac_job_t *job, void *ud, ac_err_t *err);

typedef struct ac_jobs_ops {
    const char *name; /* "lmdb", "postgresql" */
    void (*close)(ac_jobs_t *j);
    int (*degraded)(ac_jobs_t *j, char *cause, size_t n);
    int (*probe)(ac_jobs_t *j, ac_err_t *err);
    int (*write)(ac_jobs_t *j, int reserved, ac_jobs_txn_fn fn, void *ud, ac_err_t *err);
    int (*read)(ac_jobs_t *j, ac_jobs_txn_fn fn, void *ud, ac_err_t *err);

    /* ---- job records (1 found / 0 not found / -1 for lookups) ---- */
    int (*get)(ac_jobs_txn_t *t, const char *id, ac_job_t *out, ac_err_t *err);
    int (*revision)(ac_jobs_txn_t *t, const char *id, uint64_t *rev, ac_err_t *err);
    int (*each)(ac_jobs_txn_t *t, ac_jobs_each_fn fn, void *ud, ac_err_t *err);
    /* the running jobs this process recovers at start: every one (LMDB), or those whose lease
     * names this node (its previous process died holding them); locked inside a write */
    int (*each_recoverable)(ac_jobs_txn_t *t, ac_jobs_each_fn fn, void *ud, ac_err_t *err);
    /* a new job: its record, its data ({training_data, evaluation_data, validation_data?}) and
     * its place among its owner's jobs */
    int (*insert)(ac_jobs_txn_t *t, const ac_job_t *job, const json_t *data, ac_err_t *err);
    int (*put)(ac_jobs_txn_t *t, const ac_job_t *job, ac_err_t *err);
    int (*remove)(ac_jobs_txn_t *t, const ac_job_t *job, ac_err_t *err); /* the job and all of its records */
    int (*load_data)(ac_jobs_txn_t *t, const char *id, json_t **data, ac_err_t *err);
    /* the cost of the owner's ended jobs plus the reservation of the others, in micro-USD */
    int (*owner_committed)(ac_jobs_txn_t *t, const char *owner, int64_t *micro, ac_err_t *err);

    /* ---- the queue, in queue_seq order ---- */
    /* job->queue_seq 0: a new place after every other (assigned to job->queue_seq); else that place */
    int (*enqueue)(ac_jobs_txn_t *t, ac_job_t *job, ac_err_t *err);
    int (*dequeue)(ac_jobs_txn_t *t, const ac_job_t *job, ac_err_t *err);
    /* takes the oldest entry out of the queue (with leases: or a running job whose lease ran
     * out, by its place): 1 with its job id, 0 when empty */
    int (*take_first)(ac_jobs_txn_t *t, char id[AC_UUID_LEN + 1], ac_err_t *err);
    size_t (*queued)(ac_jobs_txn_t *t);

    /* ---- leases and signals between nodes (NULL without leases) ---- */
    int (*lease_ms)(ac_jobs_t *j);
    /* gives this node the job's lease for lease_ms from now (the claim, every fenced write) */
    int (*lease)(ac_jobs_txn_t *t, const ac_job_t *job, ac_err_t *err);
    /* outside transactions: ac_jobs_renew, ac_jobs_release, ac_jobs_wait_signal */
    int (*renew)(ac_jobs_t *j, const char *id, int64_t run, int *cancel, ac_err_t *err);
    int (*release)(ac_jobs_t *j, const char *id, int64_t run, ac_err_t *err);
    int (*wait_signal)(ac_jobs_t *j, int timeout_ms, ac_jobs_signal_fn fn, void *ud, ac_err_t *err);
    /* sent to every node when the transaction commits */
    int (*signal)(ac_jobs_txn_t *t, ac_jobs_signal_t what, const char *id, ac_err_t *err);

    /* ---- a job's logs and blobs ---- */
    /* the event (its seq inside) and, when outbox is not NULL, the webhook work it makes */
    int (*append_event)(ac_jobs_txn_t *t, const char *id, int64_t seq, const json_t *event, const json_t *outbox,
                        ac_err_t *err);
    int (*put_trajectory)(ac_jobs_txn_t *t, const char *id, uint32_t iteration, uint32_t index, const json_t *traj,
                          double reward, int success, ac_err_t *err);
    int (*drop_trajectories)(ac_jobs_txn_t *t, const char *id, uint32_t from, uint32_t to, size_t *n,
                             ac_err_t *err);
    int (*put_checkpoint)(ac_jobs_txn_t *t, const char *id, const char *ckpt, const void *buf, size_t len,
                          ac_err_t *err);
    int (*del_checkpoint)(ac_jobs_txn_t *t, const char *id, const char *ckpt, ac_err_t *err);
    int (*get_checkpoint)(ac_jobs_txn_t *t, const char *id, const char *ckpt, uint8_t **buf, size_t *len,
                          ac_err_t *err);
    int (*put_metrics)(ac_jobs_txn_t *t, const char *id, uint32_t iteration, const json_t *row, ac_err_t *err);
    int (*drop_metrics)(ac_jobs_txn_t *t, const char *id, uint32_t from, ac_err_t *err);

    /* ---- queries (jobs.c opens the read transaction) ---- */
    int (*list_by_owner)(ac_jobs_txn_t *t, const char *owner, int status, int64_t offset, int64_t limit,
                         ac_job_list_t *out, ac_err_t *err);
    int (*events_page)(ac_jobs_txn_t *t, const char *id, int64_t after, int64_t limit, ac_jobs_page_t *out,
                       ac_err_t *err);
    int (*export_page)(ac_jobs_txn_t *t, const char *id, const ac_export_filter_t *f, int64_t offset, int64_t limit,
                       ac_jobs_page_t *out, ac_err_t *err);
    int (*metrics_page)(ac_jobs_txn_t *t, const char *id, uint32_t from, int64_t limit, ac_jobs_page_t *out,
                        ac_err_t *err);
    int (*totals)(ac_jobs_txn_t *t, ac_jobs_totals_t *out, ac_err_t *err);
} ac_jobs_ops_t;

/* What every backend's handle and transaction start with. */
struct ac_jobs {
    const ac_jobs_ops_t *ops;
};
struct ac_jobs_txn {
    ac_jobs_t *jobs;
};

/* ---- shared by backends ------------------------------------------------------------------------- */

/* A job record as one JSON object (LMDB's value; a PostgreSQL backend's jsonb). The keys are the
 * ones data directories have always held, so that older records read back. New reference. */
json_t *ac_job_to_json(const ac_job_t *job);
/* Fills *job (initialised here) from such an object. -1 with err (AC_ERR_INTERNAL, "corrupt")
 * when a required key is missing or of the wrong type. */
int ac_job_from_json(const json_t *rec, ac_job_t *job, ac_err_t *err);

/* ac_jobs_update as a reserved write (store.h): for the records of a failure. */
int ac_jobs_update_reserved(ac_jobs_t *j, const char *job_id, ac_job_update_fn fn, void *ud, ac_job_t *job_out,
                            ac_err_t *err);

/* Adds (sign 1) or removes (sign -1) a job's share of the totals. */
void ac_jobs_totals_add(ac_jobs_totals_t *t, const ac_job_t *job, int sign);

#endif
