/* Jobs in execution: claims from the queue with run numbers, abandonment, recovery after a
 * crash, and failures, including those the store could not write yet (remembered in memory). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "store/jobs_backend.h"

#define TOPS(t) ((t)->jobs->ops)

static void unwritten_drop(const char *id);

/* The job's final metrics as its end event reports them. */
static json_t *final_metrics(const ac_job_t *job)
{
    char cost[32];
    json_t *va = json_object_get(job->metrics, "validation_accuracy");
    json_t *sr = json_object_get(job->metrics, "success_rate"), *avg = json_object_get(job->metrics, "avg_reward");
    return json_pack("{s:O, s:s, s:O}", "success_rate", va ? va : sr ? sr : json_null(), "cost_usd",
                     ac_micro_to_usd_str(cost, sizeof cost, job->cost_micro), "avg_reward", avg ? avg : json_null());
}

/* Ends a job as failed with `error` and a training.job.failed event (with final_metrics when
 * asked: the runner's own failures report them). */
static int fail_job(ac_jobs_txn_t *t, ac_job_t *job, const char *error, int with_metrics, int64_t now_ms,
                    ac_err_t *err)
{
    job->status = AC_JOB_FAILED;
    job->finished_ms = now_ms;
    job->eta_ms = 0;
    if (ac_job_set_text(&job->error, error) != 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
    json_t *d = json_pack("{s:s, s:s, s:s, s:s}", "job_id", job->id, "agent_id", job->agent_id, "status",
                          ac_job_status_name(AC_JOB_FAILED), "error", error);
    if (d != NULL && with_metrics)
        json_object_set_new(d, "final_metrics", final_metrics(job));
    if (d == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: cannot build the failure event");
    return ac_jobs_txn_event(t, job, "training.job.failed", d, now_ms, err);
}

/* ---- claim --------------------------------------------------------------------------------------- */

typedef struct claim_ctx {
    int64_t now_ms;
    char id[AC_UUID_LEN + 1];
    int found;
    int64_t run;
} claim_ctx_t;

static int claim_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    claim_ctx_t *c = ud;
    for (;;) {
        c->found = TOPS(t)->take_first(t, c->id, err);
        if (c->found <= 0)
            return c->found; /* 0 commits the removal of stale entries, if any */
        ac_job_t job;
        int f = TOPS(t)->get(t, c->id, &job, err);
        if (f < 0)
            return -1;
        if (f == 0 || ac_job_status_final(job.status)) {
            ac_job_free(&job); /* a stale entry: the job ended meanwhile */
            continue;
        }
        int first_start = job.started_ms == 0;
        job.status = AC_JOB_RUNNING;
        job.run++; /* a new run: it alone may write the job from now on (ac_jobs_update_run) */
        c->run = job.run;
        if (first_start)
            job.started_ms = c->now_ms;
        int rc = (first_start ? ac_jobs_txn_event(t, &job, "training.job.started",
                                                  json_pack("{s:s, s:s, s:s}", "job_id", job.id, "agent_id",
                                                            job.agent_id, "status",
                                                            ac_job_status_name(AC_JOB_RUNNING)),
                                                  c->now_ms, err)
                              : 0) ||
                 TOPS(t)->put(t, &job, err) || (TOPS(t)->lease != NULL && TOPS(t)->lease(t, &job, err));
        ac_job_free(&job);
        return rc ? -1 : 0; /* found stays 1: only 0 commits */
    }
}

int ac_jobs_claim(ac_jobs_t *j, int64_t now_ms, char job_id[AC_UUID_LEN + 1], int64_t *run, ac_err_t *err)
{
    if (j->ops->degraded(j, NULL, 0))
        return 0;
    claim_ctx_t c = {now_ms, {0}, 0, 0};
    if (j->ops->write(j, 0, claim_txn, &c, err) != 0)
        return -1;
    if (c.found) {
        memcpy(job_id, c.id, AC_UUID_LEN + 1);
        *run = c.run;
        unwritten_drop(c.id); /* it runs again (re-queued at a start): an old failure no longer holds */
    }
    return c.found;
}

/* ---- abandon -------------------------------------------------------------------------------------- */

typedef struct abandon_ctx {
    const char *error;
    int64_t now_ms;
} abandon_ctx_t;

static int abandon_fn(ac_jobs_txn_t *t, ac_job_t *job, void *ud, ac_err_t *err)
{
    abandon_ctx_t *a = ud;
    if (job->status != AC_JOB_RUNNING)
        return 0;
    job->run++; /* the abandoned run's writes are refused from here on */
    return fail_job(t, job, a->error, 0, a->now_ms, err);
}

int ac_jobs_abandon(ac_jobs_t *j, const char *job_id, int64_t run, const char *error, int64_t now_ms,
                    ac_err_t *err)
{
    abandon_ctx_t a = {error, now_ms};
    return ac_jobs_update_run(j, job_id, run, abandon_fn, &a, NULL, err);
}

/* ---- recover -------------------------------------------------------------------------------------- */

typedef struct recover_ctx {
    char (*ids)[AC_UUID_LEN + 1];
    size_t n, cap;
    size_t failed;
    const char *const *crashed;
    size_t n_crashed;
} recover_ctx_t;

static int collect_running(const ac_job_t *job, void *ud, ac_err_t *err)
{
    recover_ctx_t *r = ud;
    if (job->status != AC_JOB_RUNNING)
        return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        void *ids = realloc(r->ids, cap * sizeof *r->ids);
        if (ids == NULL)
            return ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
        r->ids = ids;
        r->cap = cap;
    }
    memcpy(r->ids[r->n++], job->id, AC_UUID_LEN + 1);
    return 0;
}

static int find_running_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    recover_ctx_t *r = ud;
    r->n = 0;
    return TOPS(t)->each_recoverable(t, collect_running, r, err);
}

/* One job a crash left running: back to its place in the queue, or failed after too many crashes. */
static int recover_one(ac_jobs_txn_t *t, recover_ctx_t *r, const char *id, ac_err_t *err)
{
    ac_job_t job;
    if (TOPS(t)->get(t, id, &job, err) != 1)
        return -1;
    for (size_t k = 0; k < r->n_crashed; k++)
        job.crashes += strcmp(r->crashed[k], id) == 0;
    int give_up = job.crashes >= AC_JOBS_MAX_CRASHES;
    int rc = give_up ? fail_job(t, &job, "the server crashed while this job's plugins ran, twice: it was not "
                                         "resumed a third time", 0, ac_clock_now_ms(), err)
                     : 0;
    if (rc == 0 && !give_up) /* its original place: older than every job queued after it; the
                                record says running until a worker claims it again */
        rc = TOPS(t)->enqueue(t, &job, err) ||
             (TOPS(t)->signal != NULL && TOPS(t)->signal(t, AC_JOBS_SIGNAL_QUEUED, job.id, err));
    if (rc == 0)
        rc = TOPS(t)->put(t, &job, err);
    r->failed += rc == 0 && give_up;
    ac_job_free(&job);
    return rc;
}

static int recover_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    recover_ctx_t *r = ud;
    if (find_running_txn(t, ud, err) != 0)
        return -1;
    r->failed = 0;
    for (size_t i = 0; i < r->n; i++)
        if (recover_one(t, r, r->ids[i], err) != 0)
            return -1;
    return 0;
}

int ac_jobs_recover(ac_jobs_t *j, const char *const *crashed, size_t n_crashed, ac_err_t *err)
{
    recover_ctx_t r = {0};
    r.crashed = crashed;
    r.n_crashed = n_crashed;
    /* look first: a start with nothing to recover writes nothing */
    int rc = j->ops->read(j, find_running_txn, &r, err);
    if (rc == 0 && r.n > 0)
        rc = j->ops->write(j, 1, recover_txn, &r, err);
    free(r.ids);
    return rc == 0 ? (int)(r.n - r.failed) : -1;
}

/* ---- failures the store could not commit ------------------------------------------------------- */

typedef struct fail_ctx {
    const char *error;
    int64_t now_ms;
} fail_ctx_t;

static int fail_fn(ac_jobs_txn_t *t, ac_job_t *job, void *ud, ac_err_t *err)
{
    fail_ctx_t *f = ud;
    if (ac_job_status_final(job->status))
        return 0; /* it ended meanwhile: nothing to say */
    if (job->status == AC_JOB_QUEUED && TOPS(t)->dequeue(t, job, err) != 0)
        return -1;
    return fail_job(t, job, f->error, 1, f->now_ms, err); /* the event the runner's own failures send */
}

/* The failures not written yet: a fixed table (a handful at most: one per worker whose job failed
 * while the store could not write; claims wait meanwhile), process-wide because a job id names
 * one job whichever handle reads it. */
#define UNWRITTEN_MAX 64

typedef struct unwritten {
    char id[AC_UUID_LEN + 1];
    char error[256];
} unwritten_t;

static pthread_mutex_t unwritten_lock = PTHREAD_MUTEX_INITIALIZER;
static unwritten_t unwritten[UNWRITTEN_MAX];
static atomic_int n_unwritten;

static void unwritten_put(const char *id, const char *error)
{
    pthread_mutex_lock(&unwritten_lock);
    int n = atomic_load(&n_unwritten), i = 0;
    while (i < n && strcmp(unwritten[i].id, id) != 0)
        i++;
    if (i == n && n == UNWRITTEN_MAX)
        i = 0; /* full: the oldest gives way (its job still shows the store's degraded state) */
    snprintf(unwritten[i].id, sizeof unwritten[i].id, "%s", id);
    snprintf(unwritten[i].error, sizeof unwritten[i].error, "%s", error);
    if (i == n)
        atomic_store(&n_unwritten, n + 1);
    pthread_mutex_unlock(&unwritten_lock);
}

static void unwritten_drop(const char *id)
{
    pthread_mutex_lock(&unwritten_lock);
    int n = atomic_load(&n_unwritten);
    for (int i = 0; i < n; i++)
        if (strcmp(unwritten[i].id, id) == 0) {
            unwritten[i] = unwritten[n - 1];
            atomic_store(&n_unwritten, n - 1);
            break;
        }
    pthread_mutex_unlock(&unwritten_lock);
}

int ac_jobs_unwritten_failure(const char *job_id, char *error, size_t n)
{
    if (atomic_load(&n_unwritten) == 0)
        return 0;
    int found = 0;
    pthread_mutex_lock(&unwritten_lock);
    for (int i = 0; i < atomic_load(&n_unwritten) && !found; i++)
        if (strcmp(unwritten[i].id, job_id) == 0) {
            snprintf(error, n, "%s", unwritten[i].error);
            found = 1;
        }
    pthread_mutex_unlock(&unwritten_lock);
    return found;
}

/* 0 when written (or nothing to write), 1 when the store could not write it, -1 on another
 * error; err is set for 1 and -1. */
static int fail_write(ac_jobs_t *j, const char *job_id, const char *error, int64_t now_ms, ac_err_t *err)
{
    fail_ctx_t f = {error, now_ms};
    ac_err_t e = AC_ERR_INIT;
    ac_job_t job;
    int rc = ac_jobs_update_reserved(j, job_id, fail_fn, &f, &job, &e);
    if (rc == 0) {
        ac_job_free(&job);
        return 0;
    }
    int fault = ac_store_is_write_fault(&e);
    ac_err_set(err, e.code, "%s", e.message);
    ac_err_set_data(err, json_incref(e.data));
    ac_err_clear(&e);
    return fault ? 1 : -1;
}

int ac_jobs_fail(ac_jobs_t *j, const char *job_id, const char *error, int64_t now_ms, ac_err_t *err)
{
    char text[256]; /* error may be err's own message, which err's new value overwrites */
    snprintf(text, sizeof text, "%s", error);
    int rc = fail_write(j, job_id, text, now_ms, err);
    if (rc == 1)
        unwritten_put(job_id, text);
    else
        unwritten_drop(job_id);
    return rc == 0 ? 0 : -1;
}

int ac_jobs_write_failures(ac_jobs_t *j, int64_t now_ms, ac_err_t *err)
{
    for (;;) {
        unwritten_t u;
        pthread_mutex_lock(&unwritten_lock);
        int n = atomic_load(&n_unwritten);
        if (n > 0)
            u = unwritten[n - 1];
        pthread_mutex_unlock(&unwritten_lock);
        if (n == 0)
            return 0;
        ac_err_t e = AC_ERR_INIT;
        if (fail_write(j, u.id, u.error, now_ms, &e) == 1) {
            ac_err_set(err, e.code, "%s", e.message);
            ac_err_set_data(err, json_incref(e.data));
            ac_err_clear(&e);
            return -1;
        }
        /* written, or the job is not in this store: either way done with */
        ac_err_clear(&e);
        unwritten_drop(u.id);
    }
}
