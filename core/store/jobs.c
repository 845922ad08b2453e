/* The jobs store's rules, written once over a backend's primitives (jobs_backend.h): creation
 * under the owner's budget, cancel, the queue and claims with run numbers, failures (also those
 * the store could not write yet), recovery after a crash, events with their webhook outbox. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "store/jobs_backend.h"

#define OPS(j) ((j)->ops)
#define TOPS(t) ((t)->jobs->ops)

void ac_jobs_close(ac_jobs_t *j)
{
    if (j != NULL)
        OPS(j)->close(j);
}

const char *ac_jobs_backend(const ac_jobs_t *j)
{
    return OPS(j)->name;
}

int ac_jobs_degraded(ac_jobs_t *j, char *cause, size_t n)
{
    return OPS(j)->degraded(j, cause, n);
}

int ac_jobs_probe(ac_jobs_t *j, ac_err_t *err)
{
    return OPS(j)->probe(j, err);
}

/* Tells the other nodes (a backend without leases has none to tell). */
static int signal_nodes(ac_jobs_txn_t *t, ac_jobs_signal_t what, const char *id, ac_err_t *err)
{
    return TOPS(t)->signal != NULL ? TOPS(t)->signal(t, what, id, err) : 0;
}

/* ---- create ------------------------------------------------------------------------------------ */

typedef struct create_ctx {
    const ac_job_new_t *nj;
    ac_job_t *job;
    json_t *data;
    const uint8_t *init_blob; /* NULL: none */
    size_t init_len;
} create_ctx_t;

static int budget_exceeded(int64_t budget, int64_t committed, ac_err_t *err)
{
    char b[32], used[32], left[32];
    int64_t rest = budget - committed;
    ac_micro_to_usd_str(b, sizeof b, budget);
    ac_micro_to_usd_str(used, sizeof used, committed);
    ac_micro_to_usd_str(left, sizeof left, rest > 0 ? rest : 0);
    ac_err_set(err, AC_ERR_BUDGET_EXCEEDED, "Budget exceeded: %s USD of %s USD are committed", used, b);
    ac_err_set_data(err, json_pack("{s:s, s:s, s:s, s:s, s:s}", "field", "max_budget_usd", "error",
                                   "more than the rest of your budget", "budget_usd", b, "committed_usd", used,
                                   "available_usd", left));
    return -1;
}

static int create_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    create_ctx_t *c = ud;
    const ac_job_new_t *nj = c->nj;
    if (nj->owner_budget_micro >= 0) {
        int64_t committed = 0;
        if (TOPS(t)->owner_committed(t, nj->owner, &committed, err) != 0)
            return -1;
        if (committed + c->job->budget_micro > nj->owner_budget_micro)
            return budget_exceeded(nj->owner_budget_micro, committed, err);
    }
    c->job->queue_seq = 0; /* a replay takes a new place */
    if (TOPS(t)->enqueue(t, c->job, err) != 0 || TOPS(t)->insert(t, c->job, c->data, err) != 0)
        return -1;
    /* the checkpoint it starts from goes in with it: a worker may claim the job at once */
    if (c->init_blob != NULL &&
        TOPS(t)->put_checkpoint(t, c->job->id, c->job->init_checkpoint, c->init_blob, c->init_len, err) != 0)
        return -1;
    return signal_nodes(t, AC_JOBS_SIGNAL_QUEUED, c->job->id, err) != 0 ? -1 : 0;
}

/* The new record: queued, its config resolved, nothing run yet. */
static int new_record(const ac_job_new_t *nj, ac_job_t *job, ac_err_t *err)
{
    ac_job_init(job);
    if (ac_uuid_v4(job->id) != 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: no random source for a job id");
    if (strlen(nj->owner) > 400)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: owner too long");
    snprintf(job->agent_id, sizeof job->agent_id, "%s", nj->agent_id);
    job->status = AC_JOB_QUEUED;
    job->config = *nj->config;
    job->created_ms = nj->now_ms;
    job->total_iterations = nj->config->n_iterations;
    job->budget_micro = ac_usd_to_micro(nj->config->max_budget_usd);
    job->n_training = (int64_t)json_array_size(nj->training_data);
    job->n_evaluation = (int64_t)json_array_size(nj->evaluation_data);
    job->metrics = json_object();
    job->webhooks = nj->webhooks != NULL ? json_incref(nj->webhooks) : NULL;
    if (job->metrics == NULL || ac_job_set_text(&job->owner, nj->owner) != 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
    return 0;
}

int ac_jobs_create(ac_jobs_t *j, const ac_job_new_t *nj, ac_job_t *job, ac_err_t *err)
{
    return ac_jobs_create_from(j, nj, NULL, NULL, 0, job, err);
}

int ac_jobs_create_from(ac_jobs_t *j, const ac_job_new_t *nj, const char *init_id, const uint8_t *blob, size_t len,
                        ac_job_t *job, ac_err_t *err)
{
    ac_job_t rec;
    if (new_record(nj, &rec, err) != 0) {
        ac_job_free(&rec);
        return -1;
    }
    if (blob != NULL) {
        if (init_id == NULL || strlen(init_id) != AC_UUID_LEN) {
            ac_job_free(&rec);
            return ac_err_set(err, AC_ERR_INTERNAL, "jobs: an init checkpoint needs an id");
        }
        memcpy(rec.init_checkpoint, init_id, AC_UUID_LEN + 1);
    }
    json_t *data = json_pack("{s:O, s:O}", "training_data", nj->training_data, "evaluation_data", nj->evaluation_data);
    if (data != NULL && nj->validation_data != NULL)
        json_object_set(data, "validation_data", nj->validation_data);
    create_ctx_t c = {nj, &rec, data, blob, len};
    int rc = data != NULL ? OPS(j)->write(j, 0, create_txn, &c, err)
                          : ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
    json_decref(data);
    if (rc == 0 && job != NULL)
        *job = rec;
    else
        ac_job_free(&rec);
    return rc;
}

/* ---- import ------------------------------------------------------------------------------------- */

typedef struct import_ctx {
    ac_job_t *job;
    json_t *data;
    const uint8_t *blob;
    size_t len;
} import_ctx_t;

static int import_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    import_ctx_t *c = ud;
    return TOPS(t)->insert(t, c->job, c->data, err) ||
                   TOPS(t)->put_checkpoint(t, c->job->id, c->job->checkpoints[0].id, c->blob, c->len, err)
               ? -1
               : 0;
}

int ac_jobs_import(ac_jobs_t *j, const ac_job_new_t *nj, const uint8_t *blob, size_t len, int64_t iteration,
                   ac_job_t *job, ac_err_t *err)
{
    ac_job_t rec;
    json_t *empty = json_array();
    ac_job_new_t n = *nj;
    n.training_data = n.evaluation_data = empty;
    n.validation_data = NULL;
    int rc = empty != NULL ? new_record(&n, &rec, err) : ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
    json_t *data = rc == 0 ? json_pack("{s:O, s:O}", "training_data", empty, "evaluation_data", empty) : NULL;
    if (rc == 0) {
        /* ended before it began: nothing to run, nothing spent, nothing reserved */
        rec.status = AC_JOB_COMPLETED;
        rec.started_ms = rec.finished_ms = nj->now_ms;
        rec.total_iterations = rec.current_iteration = iteration;
        rec.budget_micro = 0;
        rec.imported = 1;
        ac_job_checkpoint_t c = {.iteration = iteration, .validation_accuracy = NAN, .created_ms = nj->now_ms};
        if (data == NULL || ac_uuid_v4(c.id) != 0 || ac_job_checkpoint_add(&rec, &c) != 0)
            rc = ac_err_set(err, AC_ERR_INTERNAL, "jobs: cannot make the imported job");
        else {
            memcpy(rec.best_checkpoint, c.id, sizeof c.id);
            memcpy(rec.latest_checkpoint, c.id, sizeof c.id);
        }
    }
    import_ctx_t c = {&rec, data, blob, len};
    if (rc == 0)
        rc = OPS(j)->write(j, 0, import_txn, &c, err);
    json_decref(data);
    json_decref(empty);
    if (rc == 0 && job != NULL)
        *job = rec;
    else
        ac_job_free(&rec);
    return rc;
}

/* ---- reads -------------------------------------------------------------------------------------- */

typedef struct get_ctx {
    const char *id;
    ac_job_t *job;
    uint64_t known_rev, rev;
} get_ctx_t;

static int get_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    get_ctx_t *g = ud;
    return TOPS(t)->get(t, g->id, g->job, err);
}

int ac_jobs_get(ac_jobs_t *j, const char *job_id, ac_job_t *job, ac_err_t *err)
{
    get_ctx_t g = {job_id, job, 0, 0};
    return OPS(j)->read(j, get_txn, &g, err);
}

static int get_changed_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    get_ctx_t *g = ud;
    int found = TOPS(t)->revision(t, g->id, &g->rev, err);
    if (found < 0)
        return -1;
    if (found && g->rev == g->known_rev)
        return 2; /* unchanged: the record is not read at all */
    return TOPS(t)->get(t, g->id, g->job, err);
}

int ac_jobs_get_if_changed(ac_jobs_t *j, const char *job_id, uint64_t known_rev, uint64_t *rev, ac_job_t *job,
                           ac_err_t *err)
{
    get_ctx_t g = {job_id, job, known_rev, 0};
    int rc = OPS(j)->read(j, get_changed_txn, &g, err);
    *rev = g.rev;
    return rc;
}

static int queued_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    (void)err;
    *(size_t *)ud = TOPS(t)->queued(t);
    return 0;
}

size_t ac_jobs_queued(ac_jobs_t *j)
{
    size_t n = 0;
    ac_err_t err = AC_ERR_INIT;
    OPS(j)->read(j, queued_txn, &n, &err);
    ac_err_clear(&err);
    return n;
}

/* ---- updates ------------------------------------------------------------------------------------ */

typedef struct update_ctx {
    const char *id;
    ac_job_update_fn fn;
    void *ud;
    ac_job_t job;
    int64_t run; /* > 0: only while the record's run is this one */
} update_ctx_t;

static int update_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    update_ctx_t *u = ud;
    ac_job_free(&u->job); /* a replay starts over from the record */
    int found = TOPS(t)->get(t, u->id, &u->job, err);
    if (found <= 0)
        return found < 0 ? -1 : ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no such job");
    if (u->run > 0 && u->job.run != u->run)
        return ac_err_set(err, AC_ERR_INTERNAL, "job %s: this run (%lld) no longer owns the job", u->id,
                          (long long)u->run);
    if (u->fn(t, &u->job, u->ud, err) != 0 || TOPS(t)->put(t, &u->job, err) != 0)
        return -1;
    /* the run's write renews its lease: a node that commits iterations holds its job */
    return u->run > 0 && u->job.status == AC_JOB_RUNNING && TOPS(t)->lease != NULL ? TOPS(t)->lease(t, &u->job, err)
                                                                                   : 0;
}

static int update(ac_jobs_t *j, int reserved, const char *job_id, int64_t run, ac_job_update_fn fn, void *ud,
                  ac_job_t *job_out, ac_err_t *err)
{
    update_ctx_t u = {.id = job_id, .fn = fn, .ud = ud, .run = run};
    ac_job_init(&u.job);
    int rc = OPS(j)->write(j, reserved, update_txn, &u, err);
    if (rc == 0 && job_out != NULL)
        *job_out = u.job;
    else
        ac_job_free(&u.job);
    return rc;
}

int ac_jobs_update(ac_jobs_t *j, const char *job_id, ac_job_update_fn fn, void *ud, ac_job_t *job_out,
                   ac_err_t *err)
{
    return update(j, 0, job_id, 0, fn, ud, job_out, err);
}

int ac_jobs_update_reserved(ac_jobs_t *j, const char *job_id, ac_job_update_fn fn, void *ud, ac_job_t *job_out,
                            ac_err_t *err)
{
    return update(j, 1, job_id, 0, fn, ud, job_out, err);
}

int ac_jobs_update_run(ac_jobs_t *j, const char *job_id, int64_t run, ac_job_update_fn fn, void *ud,
                       ac_job_t *job_out, ac_err_t *err)
{
    return update(j, 0, job_id, run, fn, ud, job_out, err);
}

typedef struct cancel_ctx {
    const char *reason;
    int64_t now_ms;
} cancel_ctx_t;

static int cancel_fn(ac_jobs_txn_t *t, ac_job_t *job, void *ud, ac_err_t *err)
{
    cancel_ctx_t *c = ud;
    if (ac_job_status_final(job->status))
        return ac_err_field(err, AC_ERR_CANNOT_CANCEL, "status", "the job is already %s",
                            ac_job_status_name(job->status));
    if (ac_job_set_text(&job->cancel_reason, c->reason) != 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
    if (job->status == AC_JOB_QUEUED) {
        if (TOPS(t)->dequeue(t, job, err) != 0)
            return -1;
        job->status = AC_JOB_CANCELLED;
        job->finished_ms = job->cancelled_ms = c->now_ms;
    } else {
        job->cancel_requested = 1; /* the runner stops at its next safe point and records the end */
        return signal_nodes(t, AC_JOBS_SIGNAL_CANCEL, job->id, err); /* whichever node runs it */
    }
    return 0;
}

int ac_jobs_cancel(ac_jobs_t *j, const char *job_id, const char *reason, int64_t now_ms, ac_job_t *job,
                   ac_err_t *err)
{
    cancel_ctx_t c = {reason, now_ms};
    return update(j, 0, job_id, 0, cancel_fn, &c, job, err);
}

typedef struct charge_ctx {
    int64_t micro, owner_budget;
} charge_ctx_t;

static int charge_fn(ac_jobs_txn_t *t, ac_job_t *job, void *ud, ac_err_t *err)
{
    charge_ctx_t *c = ud;
    if (c->micro > 0 && c->owner_budget >= 0) {
        int64_t committed = 0;
        if (TOPS(t)->owner_committed(t, job->owner, &committed, err) != 0)
            return -1;
        if (committed + c->micro > c->owner_budget) {
            budget_exceeded(c->owner_budget, committed, err);
            json_object_set_new(err->data, "field", json_string("budget"));
            json_object_set_new(err->data, "error", json_string("the episode could cost more than the rest of your "
                                                                "budget"));
            return -1;
        }
    }
    job->inference_cost_micro += c->micro;
    /* what the owner's budget counts of this job (jobs_backend.h, owner_committed) */
    if (ac_job_status_final(job->status))
        job->cost_micro += c->micro;
    else
        job->budget_micro += c->micro;
    return 0;
}

int ac_jobs_charge(ac_jobs_t *j, const char *job_id, int64_t micro, int64_t owner_budget_micro, ac_job_t *job,
                   ac_err_t *err)
{
    charge_ctx_t c = {micro, owner_budget_micro};
    return update(j, 0, job_id, 0, charge_fn, &c, job, err);
}

static int delete_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    ac_job_t job;
    int found = TOPS(t)->get(t, ud, &job, err);
    if (found <= 0)
        return found < 0 ? -1 : ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no such job");
    int rc = ac_job_status_final(job.status)
                 ? TOPS(t)->remove(t, &job, err)
                 : ac_err_field(err, AC_ERR_INVALID_PARAMS, "status", "the job is still %s: cancel it first",
                                ac_job_status_name(job.status));
    ac_job_free(&job);
    return rc;
}

int ac_jobs_delete(ac_jobs_t *j, const char *job_id, ac_err_t *err)
{
    return OPS(j)->write(j, 0, delete_txn, (void *)job_id, err);
}

/* ---- leases ------------------------------------------------------------------------------------ */

int ac_jobs_lease_ms(ac_jobs_t *j)
{
    return OPS(j)->lease_ms != NULL ? OPS(j)->lease_ms(j) : 0;
}

typedef struct renew_ctx {
    const char *id;
    int64_t run;
    int held, cancel;
} renew_ctx_t;

static int renew_read_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    renew_ctx_t *r = ud;
    ac_job_t job;
    int found = TOPS(t)->get(t, r->id, &job, err);
    if (found < 0)
        return -1;
    r->held = found && job.run == r->run && job.status == AC_JOB_RUNNING;
    r->cancel = found && job.cancel_requested;
    if (found)
        ac_job_free(&job);
    return 0;
}

int ac_jobs_renew(ac_jobs_t *j, const char *job_id, int64_t run, int *cancel, ac_err_t *err)
{
    if (OPS(j)->renew != NULL)
        return OPS(j)->renew(j, job_id, run, cancel, err);
    renew_ctx_t r = {job_id, run, 0, 0}; /* no lease: what the record says */
    if (OPS(j)->read(j, renew_read_txn, &r, err) != 0)
        return -1;
    *cancel = r.cancel;
    return r.held;
}

int ac_jobs_release(ac_jobs_t *j, const char *job_id, int64_t run, ac_err_t *err)
{
    return OPS(j)->release != NULL ? OPS(j)->release(j, job_id, run, err) : 0;
}

int ac_jobs_wait_signal(ac_jobs_t *j, int timeout_ms, ac_jobs_signal_fn fn, void *ud, ac_err_t *err)
{
    return OPS(j)->wait_signal != NULL ? OPS(j)->wait_signal(j, timeout_ms, fn, ud, err) : 0;
}

/* ---- events ------------------------------------------------------------------------------------- */

int ac_jobs_txn_event(ac_jobs_txn_t *t, ac_job_t *job, const char *event, json_t *data, int64_t now_ms,
                      ac_err_t *err)
{
    char ts[40];
    int64_t seq = job->event_seq + 1;
    json_t *ev = json_pack("{s:I, s:s, s:s, s:o}", "seq", (json_int_t)seq, "event", event, "timestamp",
                           ac_clock_iso8601(ts, sizeof ts, now_ms, 0), "data", data ? data : json_object());
    /* The webhook outbox gets the event in the same transaction: the delivery thread fans it out
     * to the subscriptions (webhook.h). */
    json_t *entry = ev == NULL ? NULL
                               : json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:O}, s:O}", "kind", "event", "owner",
                                           job->owner ? job->owner : "", "job_id", job->id, "event", "event", event,
                                           "timestamp", ts, "data", json_object_get(ev, "data"), "webhooks",
                                           job->webhooks ? job->webhooks : json_null());
    int rc = entry != NULL ? TOPS(t)->append_event(t, job->id, seq, ev, entry, err)
                           : ac_err_set(err, AC_ERR_INTERNAL, "jobs: cannot encode an event");
    if (rc == 0)
        job->event_seq = seq;
    json_decref(entry);
    json_decref(ev);
    return rc;
}

/* ---- a job's other records, inside an update ---------------------------------------------------- */

int ac_jobs_txn_put_trajectory(ac_jobs_txn_t *t, const char *job_id, uint32_t iteration, uint32_t index,
                               const json_t *traj, double reward, int success, ac_err_t *err)
{
    return TOPS(t)->put_trajectory(t, job_id, iteration, index, traj, reward, success, err);
}

int ac_jobs_txn_drop_trajectories(ac_jobs_txn_t *t, const char *job_id, uint32_t from, uint32_t to, size_t *n,
                                  ac_err_t *err)
{
    size_t dropped = 0;
    int rc = TOPS(t)->drop_trajectories(t, job_id, from, to, &dropped, err);
    if (n != NULL)
        *n = dropped;
    return rc;
}

int ac_jobs_txn_put_checkpoint(ac_jobs_txn_t *t, const char *job_id, const char *ckpt_id, const void *buf,
                               size_t len, ac_err_t *err)
{
    return TOPS(t)->put_checkpoint(t, job_id, ckpt_id, buf, len, err);
}

int ac_jobs_txn_del_checkpoint(ac_jobs_txn_t *t, const char *job_id, const char *ckpt_id, ac_err_t *err)
{
    return TOPS(t)->del_checkpoint(t, job_id, ckpt_id, err);
}

int ac_jobs_txn_put_metrics(ac_jobs_txn_t *t, const char *job_id, uint32_t iteration, const json_t *row,
                            ac_err_t *err)
{
    return TOPS(t)->put_metrics(t, job_id, iteration, row, err);
}

int ac_jobs_txn_drop_metrics(ac_jobs_txn_t *t, const char *job_id, uint32_t from, ac_err_t *err)
{
    return TOPS(t)->drop_metrics(t, job_id, from, err);
}
