/* The jobs store over LMDB.
 *
 * Jobs whose store cannot write: a job whose work could not be committed ends failed with the
 * cause and a training.job.failed event; when even that cannot be written it is remembered in
 * memory and written once the store can write; no job is claimed while the store is degraded,
 * so that a job re-queued by a restart does not run into the same fault.
 *
 * The typed record and the queries the API pages through: a record survives its encoding field
 * by field; list_by_owner (newest first, by status, paged, no other owner's jobs), events_page
 * (cursor), export_page (filters, offset, total), metrics_page, checkpoints and their blobs;
 * writes of a run that lost the job are refused; the owner's budget; delete removes everything
 * of an ended job. The totals GET /metrics reports, kept as jobs change, equal a full count
 * after a mixed sequence of creates, claims, updates, cancels, failures and deletes, across a
 * reopen, and are counted afresh for a data directory that has none. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fault.h"
#include "store/jobs_backend.h"

#include "check.h"

static ac_train_config_t cfg;
static json_t *data;

static char *new_job_for(ac_jobs_t *j, const char *owner, int64_t now_ms)
{
    json_t *empty = json_array();
    ac_job_new_t nj = {owner, "calculator", &cfg, data, empty, NULL, now_ms, -1, NULL};
    ac_job_t job;
    ac_err_t err = AC_ERR_INIT;
    char *id = NULL;
    if (ac_jobs_create(j, &nj, &job, &err) == 0) {
        id = strdup(job.id);
        ac_job_free(&job);
    } else {
        fprintf(stderr, "create: %s\n", err.message);
    }
    json_decref(empty);
    ac_err_clear(&err);
    return id;
}

static char *new_job(ac_jobs_t *j)
{
    return new_job_for(j, "alice", 1000);
}

static const char *status_of(ac_jobs_t *j, const char *id, char *error, size_t n)
{
    static char status[32];
    ac_job_t job;
    ac_err_t err = AC_ERR_INIT;
    snprintf(status, sizeof status, "?");
    if (error != NULL)
        error[0] = '\0';
    if (ac_jobs_get(j, id, &job, &err) == 1) {
        snprintf(status, sizeof status, "%s", ac_job_status_name(job.status));
        if (error != NULL && job.error != NULL)
            snprintf(error, n, "%s", job.error);
        ac_job_free(&job);
    }
    ac_err_clear(&err);
    return status;
}

typedef struct last_event {
    char name[64];
    char error[256];
} last_event_t;

static last_event_t last_event(ac_jobs_t *j, const char *id)
{
    last_event_t e = {"", ""};
    ac_jobs_page_t page;
    ac_err_t err = AC_ERR_INIT;
    if (ac_jobs_events_page(j, id, 0, 1000, &page, &err) == 0) {
        json_t *ev = json_array_get(page.items, json_array_size(page.items) - 1);
        const char *msg = json_string_value(json_object_get(json_object_get(ev, "data"), "error"));
        snprintf(e.name, sizeof e.name, "%s", json_string_value(json_object_get(ev, "event")));
        snprintf(e.error, sizeof e.error, "%s", msg ? msg : "");
        ac_jobs_page_free(&page);
    }
    ac_err_clear(&err);
    return e;
}

/* ---- failures the store could not write (the store's fault injection) -------------------------- */

static void test_unwritable(const char *dir)
{
    ac_err_t err = AC_ERR_INIT;
    int64_t run = 0;
    ac_store_t *s = ac_store_open(dir, &err);
    ac_jobs_t *j = s ? ac_jobs_open_lmdb(s, &err) : NULL;
    CHECK(j != NULL, "open a store and its jobs");
    if (j == NULL)
        return;
    ac_store_probe(s, &err); /* makes the reserve, as the server does at start */
    char claimed[37] = "";
    char *a = new_job(j);
    CHECK(a != NULL && ac_jobs_claim(j, 2000, claimed, &run, &err) == 1 && strcmp(claimed, a) == 0, "job A runs");

    /* the store fails a commit; the failure record is written (the reserve is released for it) */
    const char *cause = "store: cannot write: No space left on device (0 KiB free)";
    CHECK(ac_jobs_fail(j, a, cause, 3000, &err) == 0, "a job whose work could not be committed is failed");
    char error[256];
    CHECK(strcmp(status_of(j, a, error, sizeof error), "failed") == 0 && strcmp(error, cause) == 0,
          "its record says failed with the storage error");
    last_event_t e = last_event(j, a);
    CHECK(strcmp(e.name, "training.job.failed") == 0 && strcmp(e.error, cause) == 0,
          "a training.job.failed event with the error is stored");
    CHECK(ac_jobs_fail(j, a, "something else", 3100, &err) == 0 &&
              strcmp(status_of(j, a, error, sizeof error), "failed") == 0 && strcmp(error, cause) == 0,
          "a job already ended keeps its end");

    /* even the failure record cannot be written */
    char *b = new_job(j);
    char *c = new_job(j);
    CHECK(b != NULL && c != NULL && ac_jobs_claim(j, 4000, claimed, &run, &err) == 1 && strcmp(claimed, b) == 0,
          "job B runs, job C waits in the queue");
    ac_fault_set("store.commit,store.reserved");
    CHECK(ac_jobs_fail(j, b, cause, 5000, &err) == -1 && ac_store_is_write_fault(&err),
          "when the failure cannot be written either, ac_jobs_fail says so");
    ac_err_clear(&err);
    CHECK(ac_jobs_unwritten_failure(b, error, sizeof error) == 1 && strcmp(error, cause) == 0,
          "the failure is remembered in memory with its error");
    CHECK(strcmp(status_of(j, b, NULL, 0), "running") == 0 && ac_store_degraded(s, NULL, 0) == 1 &&
              ac_jobs_degraded(j, NULL, 0) == 1,
          "on disk B still says running, and the store is degraded");
    ac_fault_set(NULL);
    CHECK(ac_jobs_claim(j, 6000, claimed, &run, &err) == 0 && strcmp(status_of(j, c, NULL, 0), "queued") == 0,
          "no job is claimed while the store is degraded");
    CHECK(ac_store_probe(s, &err) == 0 && ac_jobs_write_failures(j, 7000, &err) == 0,
          "once the probe succeeds the remembered failure is written");
    CHECK(strcmp(status_of(j, b, error, sizeof error), "failed") == 0 && strcmp(error, cause) == 0 &&
              ac_jobs_unwritten_failure(b, error, sizeof error) == 0,
          "B is failed on disk with its error and no longer only in memory");
    CHECK(strcmp(last_event(j, b).name, "training.job.failed") == 0, "with its training.job.failed event");
    CHECK(ac_jobs_claim(j, 8000, claimed, &run, &err) == 1 && strcmp(claimed, c) == 0, "then C is claimed");

    /* the process ends while C's failure is only in memory; the next start finds the store
     * still unable to write */
    ac_fault_set("store.commit,store.reserved");
    CHECK(ac_jobs_fail(j, c, cause, 9000, &err) == -1, "C's failure cannot be written");
    ac_err_clear(&err);
    ac_jobs_close(j);
    ac_store_close(s);
    s = ac_store_open(dir, &err);
    j = s ? ac_jobs_open_lmdb(s, &err) : NULL;
    CHECK(j != NULL && ac_store_probe(s, &err) == -1, "restart: the probe finds the store still failing");
    ac_err_clear(&err);
    if (j == NULL)
        return;
    ac_fault_set(NULL); /* the small write that re-queues C fits (it may use the reserve) */
    CHECK(ac_jobs_recover(j, NULL, 0, &err) == 1, "restart: C, running on disk, is re-queued");
    CHECK(ac_jobs_claim(j, 10000, claimed, &run, &err) == 0 && ac_jobs_claim(j, 10001, claimed, &run, &err) == 0,
          "restart: C does not resume while the store is degraded");
    CHECK(ac_store_probe(s, &err) == 0 && ac_jobs_claim(j, 11000, claimed, &run, &err) == 1 && strcmp(claimed, c) == 0,
          "restart: once the store can write, C is claimed (it resumes from its last checkpoint)");
    CHECK(ac_jobs_unwritten_failure(c, error, sizeof error) == 0 && strcmp(status_of(j, c, NULL, 0), "running") == 0,
          "a job that runs again has no failure remembered");
    ac_jobs_close(j);
    ac_store_close(s);
    free(a);
    free(b);
    free(c);
}

/* ---- the record --------------------------------------------------------------------------------- */

static void test_record_round_trip(void)
{
    ac_job_t a, b;
    ac_job_init(&a);
    memcpy(a.id, "0b8d4c8e-3f5a-4c2e-9d1b-7a6e5f4d3c2b", AC_UUID_LEN + 1);
    ac_job_set_text(&a.owner, "carol");
    snprintf(a.agent_id, sizeof a.agent_id, "support");
    a.status = AC_JOB_CANCELLED;
    a.config.n_iterations = 77;
    a.config.seed = 4242;
    a.config.policy_kind = AC_POLICY_KIND_SEQUENCE;
    a.config.max_tokens = 96;
    a.config.n_layers = 3;
    a.created_ms = 1700000000123;
    a.started_ms = 1700000001000;
    a.finished_ms = a.cancelled_ms = 1700000009000;
    a.current_iteration = 12, a.total_iterations = 77, a.cost_micro = 1234567, a.budget_micro = 9000000;
    a.trajectories_generated = 384, a.trajectories_stored = 256, a.oldest_iteration = 5;
    a.episodes = 384, a.plugin_failures = 3, a.n_training = 120, a.n_evaluation = 20;
    a.metrics = json_pack("{s:f, s:i}", "train_loss", 0.25, "groups_used", 4);
    ac_job_checkpoint_t c1 = {"11111111-2222-4333-8444-555555555555", 10, 0.75, 1700000005000};
    ac_job_checkpoint_t c2 = {"66666666-7777-4888-9999-aaaaaaaaaaaa", 12, NAN, 1700000008000};
    ac_job_checkpoint_add(&a, &c1);
    ac_job_checkpoint_add(&a, &c2);
    memcpy(a.best_checkpoint, c1.id, sizeof c1.id);
    memcpy(a.latest_checkpoint, c2.id, sizeof c2.id);
    ac_job_set_text(&a.error, NULL);
    ac_job_set_text(&a.cancel_reason, "user asked");
    a.cancel_requested = 1, a.run = 3, a.queue_seq = 9, a.event_seq = 14, a.crashes = 1;
    a.webhooks = json_pack("[{s:s, s:s}]", "url", "https://hooks.example/x", "events", "*");
    json_t *rec = ac_job_to_json(&a);
    ac_err_t err = AC_ERR_INIT;
    ac_job_t bad;
    int ok = rec != NULL && ac_job_from_json(rec, &b, &err) == 0;
    CHECK(ok && strcmp(b.id, a.id) == 0 && strcmp(b.owner, "carol") == 0 && strcmp(b.agent_id, "support") == 0 &&
              b.status == AC_JOB_CANCELLED && b.config.n_iterations == 77 && b.config.seed == 4242 &&
              b.created_ms == a.created_ms && b.started_ms == a.started_ms && b.finished_ms == a.finished_ms &&
              b.cancelled_ms == a.cancelled_ms && b.eta_ms == 0,
          "a record survives its JSON: identity, status, config, times (created to the ms, others to the second)");
    CHECK(ok && b.config.policy_kind == AC_POLICY_KIND_SEQUENCE && b.config.max_tokens == 96 &&
              b.config.n_layers == 3,
          "... the policy's configuration too (kind, max_tokens, layers: stored nested under \"policy\")");
    CHECK(ok && b.current_iteration == 12 && b.cost_micro == 1234567 && b.budget_micro == 9000000 &&
              b.trajectories_generated == 384 && b.trajectories_stored == 256 && b.oldest_iteration == 5 &&
              b.episodes == 384 && b.plugin_failures == 3 && b.n_training == 120 && b.n_evaluation == 20 &&
              b.run == 3 && b.queue_seq == 9 && b.event_seq == 14 && b.crashes == 1 && b.cancel_requested &&
              b.error == NULL && strcmp(b.cancel_reason, "user asked") == 0 &&
              json_equal(b.metrics, a.metrics) && json_equal(b.webhooks, a.webhooks),
          "... counters, run, sequences, the end's fields, metrics and webhooks");
    CHECK(ok && b.n_checkpoints == 2 && strcmp(b.checkpoints[0].id, c1.id) == 0 &&
              b.checkpoints[0].validation_accuracy == 0.75 && b.checkpoints[0].iteration == 10 &&
              b.checkpoints[0].created_ms == c1.created_ms && isnan(b.checkpoints[1].validation_accuracy) &&
              strcmp(b.best_checkpoint, c1.id) == 0 && strcmp(b.latest_checkpoint, c2.id) == 0 &&
              ac_job_checkpoint_find(&b, c2.id) == &b.checkpoints[1] && ac_job_checkpoint_find(&b, "") == NULL,
          "... and the kept checkpoints, a missing validation score included");
    json_object_set_new(json_object_get(rec, "config"), "a_field_since_removed", json_integer(3));
    CHECK(ac_job_from_json(rec, &bad, &err) == 0 && bad.config.n_iterations == 77,
          "a config key this build does not know (written by another build) does not make the record unreadable");
    ac_job_free(&bad);
    json_object_set_new(rec, "status", json_string("paused"));
    CHECK(ac_job_from_json(rec, &bad, &err) == -1 && err.code == AC_ERR_INTERNAL, "an unknown status is corrupt");
    ac_err_clear(&err);
    ac_job_status_t st;
    int names = 1;
    for (int i = 0; i < AC_JOB_STATUS_COUNT; i++)
        names &= ac_job_status_parse(ac_job_status_names[i], &st) == 0 && (int)st == i;
    CHECK(names && ac_job_status_names[AC_JOB_STATUS_COUNT] == NULL && ac_job_status_parse("paused", &st) == -1 &&
              ac_job_status_final(AC_JOB_FAILED) && !ac_job_status_final(AC_JOB_RUNNING),
          "one name table: every status parses back to itself, others do not");
    json_decref(rec);
    ac_job_free(&a);
    ac_job_free(&b);
}

/* ---- updates, logs and queries ------------------------------------------------------------------ */

typedef struct step {
    int64_t iterations, trajectories, cost;
    int n_traj;      /* trajectories to store, rewards 0, 0.1, ...; every other one a success */
    uint32_t iteration;
    int finish;      /* 1: completed */
    const char *ckpt; /* a checkpoint to store with blob "blob-<ckpt>" */
} step_t;

static int step_fn(ac_jobs_txn_t *t, ac_job_t *job, void *ud, ac_err_t *err)
{
    const step_t *s = ud;
    job->current_iteration += s->iterations;
    job->trajectories_generated += s->trajectories;
    job->cost_micro += s->cost;
    for (int i = 0; i < s->n_traj; i++) {
        json_t *traj = json_pack("{s:i, s:i}", "iteration", s->iteration, "index", i);
        int rc = ac_jobs_txn_put_trajectory(t, job->id, s->iteration, (uint32_t)i, traj, 0.1 * i, i % 2 == 0, err);
        json_decref(traj);
        if (rc != 0)
            return -1;
    }
    json_t *row = json_pack("{s:i, s:f}", "iteration", s->iteration, "train_loss", 1.0 / (s->iteration + 1));
    int rc = ac_jobs_txn_put_metrics(t, job->id, s->iteration, row, err);
    json_decref(row);
    if (rc != 0 || ac_jobs_txn_event(t, job, "training.job.progress", json_pack("{s:i}", "it", s->iteration), 5000,
                                     err) != 0)
        return -1;
    if (s->ckpt != NULL) {
        char blob[64];
        snprintf(blob, sizeof blob, "blob-%s", s->ckpt);
        ac_job_checkpoint_t c = {"", s->iteration, 0.5, 5000};
        snprintf(c.id, sizeof c.id, "%s", s->ckpt);
        if (ac_jobs_txn_put_checkpoint(t, job->id, s->ckpt, blob, strlen(blob), err) != 0 ||
            ac_job_checkpoint_add(job, &c) != 0)
            return -1;
        memcpy(job->latest_checkpoint, c.id, sizeof c.id);
    }
    if (s->finish) {
        job->status = AC_JOB_COMPLETED;
        job->finished_ms = 6000;
    }
    return 0;
}

static int step(ac_jobs_t *j, const char *id, int64_t run, const step_t *s)
{
    ac_err_t err = AC_ERR_INIT;
    int rc = ac_jobs_update_run(j, id, run, step_fn, (void *)s, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "step: %s\n", err.message);
    ac_err_clear(&err);
    return rc;
}

/* The totals the test counts itself, from the jobs it knows of. */
static ac_jobs_totals_t count_known(ac_jobs_t *j, char **ids, int n)
{
    ac_jobs_totals_t t;
    memset(&t, 0, sizeof t);
    for (int i = 0; i < n; i++) {
        ac_job_t job;
        ac_err_t err = AC_ERR_INIT;
        if (ids[i] != NULL && ac_jobs_get(j, ids[i], &job, &err) == 1) {
            ac_jobs_totals_add(&t, &job, 1);
            ac_job_free(&job);
        }
        ac_err_clear(&err);
    }
    return t;
}

static int totals_agree(ac_jobs_t *j, char **ids, int n, const char *when)
{
    ac_jobs_totals_t kept, scan, known = count_known(j, ids, n);
    ac_err_t err = AC_ERR_INIT;
    int ok = ac_jobs_totals(j, &kept, &err) == 0 && ac_jobs_totals_scan(j, &scan, &err) == 0 &&
             memcmp(&kept, &scan, sizeof kept) == 0 && memcmp(&kept, &known, sizeof kept) == 0;
    if (!ok)
        fprintf(stderr, "%s: kept %lld/%lld/%lld/%lld/%lld it %lld tr %lld, scan %lld/%lld/%lld/%lld/%lld it %lld "
                        "tr %lld, known q%lld it %lld\n",
                when, (long long)kept.by_status[0], (long long)kept.by_status[1], (long long)kept.by_status[2],
                (long long)kept.by_status[3], (long long)kept.by_status[4], (long long)kept.iterations,
                (long long)kept.trajectories, (long long)scan.by_status[0], (long long)scan.by_status[1],
                (long long)scan.by_status[2], (long long)scan.by_status[3], (long long)scan.by_status[4],
                (long long)scan.iterations, (long long)scan.trajectories, (long long)known.by_status[0],
                (long long)known.iterations);
    ac_err_clear(&err);
    return ok;
}

static void test_queries(ac_jobs_t *j, char *ids[8])
{
    ac_err_t err = AC_ERR_INIT;
    ac_job_list_t l;
    int ok = ac_jobs_list_by_owner(j, "alice", -1, 0, 100, &l, &err) == 0 && l.total == 5 && l.n == 5;
    for (size_t i = 1; ok && i < l.n; i++)
        ok &= l.jobs[i - 1].created_ms >= l.jobs[i].created_ms && strcmp(l.jobs[i].owner, "alice") == 0;
    CHECK(ok, "list_by_owner: all five of alice's jobs, newest first, none of bob's or bobby's");
    ac_job_list_free(&l);
    /* running: 0 and 4 (re-queued after the crash, running on disk until claimed again) */
    ok = ac_jobs_list_by_owner(j, "alice", AC_JOB_RUNNING, 1, 1, &l, &err) == 0 && l.total == 2 && l.n == 1 &&
         l.jobs[0].status == AC_JOB_RUNNING && strcmp(l.jobs[0].id, ids[0]) == 0;
    CHECK(ok, "list_by_owner: by status, from an offset, at most limit, with the total of every page");
    ac_job_list_free(&l);
    ok = ac_jobs_list_by_owner(j, "bob", -1, 0, 10, &l, &err) == 0 && l.total == 1 && l.n == 1 &&
         strcmp(l.jobs[0].id, ids[5]) == 0;
    CHECK(ok, "list_by_owner: bob's one job (bobby's is not his)");
    ac_job_list_free(&l);

    ac_jobs_page_t p;
    ok = ac_jobs_events_page(j, ids[2], 0, 2, &p, &err) == 0 && json_array_size(p.items) == 2 && p.more &&
         p.next == json_integer_value(json_object_get(json_array_get(p.items, 1), "seq"));
    int64_t next = p.next;
    ac_jobs_page_free(&p);
    ok = ok && ac_jobs_events_page(j, ids[2], next, 100, &p, &err) == 0 && json_array_size(p.items) == 2 &&
         !p.more && json_integer_value(json_object_get(json_array_get(p.items, 0), "seq")) == next + 1;
    CHECK(ok, "events_page: a page of 2 with more, then the rest from its cursor (started + 3 progress events)");
    ac_jobs_page_free(&p);

    ac_export_filter_t all = {0, 0, 0}, wins = {1, 0, 0}, rich = {0, 1, 0.35};
    ok = ac_jobs_export_page(j, ids[2], &all, 3, 4, &p, &err) == 0 && p.total == 12 && json_array_size(p.items) == 4 &&
         p.more && json_integer_value(json_object_get(json_array_get(p.items, 0), "index")) == 3;
    ac_jobs_page_free(&p);
    CHECK(ok, "export_page: 12 stored, the page from offset 3 in (iteration, index) order, more after it");
    ok = ac_jobs_export_page(j, ids[2], &wins, 0, 100, &p, &err) == 0 && p.total == 6 && !p.more;
    ac_jobs_page_free(&p);
    ok = ok && ac_jobs_export_page(j, ids[2], &rich, 0, 100, &p, &err) == 0 && p.total == 4 &&
         json_integer_value(json_object_get(json_array_get(p.items, 0), "index")) == 4;
    ac_jobs_page_free(&p);
    CHECK(ok, "export_page: success_only and min_reward filter on the stored summaries");

    ok = ac_jobs_metrics_page(j, ids[2], 2, 1, &p, &err) == 0 && json_array_size(p.items) == 1 && p.more &&
         p.next == 3;
    ac_jobs_page_free(&p);
    ok = ok && ac_jobs_metrics_page(j, ids[2], 3, 10, &p, &err) == 0 && json_array_size(p.items) == 1 && !p.more;
    ac_jobs_page_free(&p);
    CHECK(ok, "metrics_page: rows from an iteration on, the next iteration when more remain");

    uint8_t *blob = NULL;
    size_t len = 0;
    ac_job_t job;
    ok = ac_jobs_get_checkpoint(j, ids[2], "c0ffee00-0000-4000-8000-000000000001", &blob, &len, &err) == 1 &&
         len == strlen("blob-c0ffee00-0000-4000-8000-000000000001") && memcmp(blob, "blob-", 5) == 0 &&
         ac_jobs_get(j, ids[2], &job, &err) == 1 && job.n_checkpoints == 1 &&
         strcmp(job.latest_checkpoint, "c0ffee00-0000-4000-8000-000000000001") == 0;
    free(blob);
    ac_job_free(&job);
    CHECK(ok && ac_jobs_get_checkpoint(j, ids[2], "c0ffee00-0000-4000-8000-000000000002", &blob, &len, &err) == 0,
          "checkpoints: the record lists it, its blob reads back, an unknown one is not found");
    ac_err_clear(&err);
}

static void test_jobs_and_totals(const char *dir)
{
    ac_err_t err = AC_ERR_INIT;
    ac_store_t *s = ac_store_open(dir, &err);
    ac_jobs_t *j = s ? ac_jobs_open_lmdb(s, &err) : NULL;
    if (j == NULL) {
        CHECK(0, "open a second store");
        return;
    }
    char *ids[8] = {0};
    int64_t runs[8] = {0};
    const char *owners[8] = {"alice", "alice", "alice", "alice", "alice", "bob", "bobby", "carol"};
    int all = 1;
    for (int i = 0; i < 7; i++)
        all &= (ids[i] = new_job_for(j, owners[i], 1000 + i)) != NULL;
    CHECK(all && totals_agree(j, ids, 8, "created"), "totals after creating 7 jobs equal a full count");
    char claimed[37];
    for (int i = 0; i < 5; i++) /* ids 0..4 are claimed in order; 0 and 1 go back to the queue below */
        all &= ac_jobs_claim(j, 2000, claimed, &runs[i], &err) == 1 && strcmp(claimed, ids[i]) == 0;
    CHECK(all && totals_agree(j, ids, 8, "claimed"), "totals after 5 claims");
    step_t s1 = {4, 32, 100, 6, 1, 0, NULL}, s2 = {3, 24, 50, 6, 2, 0, "c0ffee00-0000-4000-8000-000000000001"};
    step_t s3 = {2, 16, 10, 0, 3, 1, NULL};
    all = step(j, ids[2], runs[2], &s1) == 0 && step(j, ids[2], runs[2], &s2) == 0 &&
          step(j, ids[2], runs[2], &s3) == 0 && step(j, ids[3], runs[3], &s1) == 0;
    CHECK(all && totals_agree(j, ids, 8, "updated"), "totals after updates that move iterations and trajectories");
    CHECK(step(j, ids[3], runs[3] + 1, &s1) == -1 && totals_agree(j, ids, 8, "fenced"),
          "a write naming another run is refused and changes nothing");
    ac_job_t job;
    all = ac_jobs_cancel(j, ids[6], "no longer needed", 3000, &job, &err) == 0 && job.status == AC_JOB_CANCELLED;
    ac_job_free(&job);
    all &= ac_jobs_cancel(j, ids[4], NULL, 3000, NULL, &err) == 0 && ac_jobs_fail(j, ids[3], "broken", 3100, &err) == 0;
    CHECK(all && ac_jobs_cancel(j, ids[6], NULL, 3200, NULL, &err) == -1 && err.code == AC_ERR_CANNOT_CANCEL,
          "cancel: a queued job ends, a running one is asked to stop, an ended one is -40003");
    ac_err_clear(&err);
    CHECK(totals_agree(j, ids, 8, "cancelled"), "totals after cancels and a failure");

    /* ids[0] and ids[1] were running when the process died: re-queued, claimed again */
    const char *crashed[] = {ids[1], ids[1]};
    CHECK(ac_jobs_recover(j, crashed, 2, &err) == 2 && strcmp(status_of(j, ids[1], NULL, 0), "failed") == 0 &&
              totals_agree(j, ids, 8, "recovered"),
          "recover: a job that crashed the server twice fails, the other is re-queued; totals follow");
    ac_jobs_cancel(j, ids[0], NULL, 3300, NULL, &err); /* re-queued, on disk running: asked to stop */
    test_queries(j, ids);

    CHECK(ac_jobs_delete(j, ids[0], &err) == -1 && err.code == AC_ERR_INVALID_PARAMS, "a job not ended is not deleted");
    ac_err_clear(&err);
    ac_jobs_page_t p;
    ac_export_filter_t none = {0, 0, 0};
    uint8_t *blob = NULL;
    size_t len = 0;
    CHECK(ac_jobs_delete(j, ids[2], &err) == 0 && ac_jobs_get(j, ids[2], &job, &err) == 0 &&
              ac_jobs_export_page(j, ids[2], &none, 0, 10, &p, &err) == 0 && p.total == 0 &&
              ac_jobs_get_checkpoint(j, ids[2], "c0ffee00-0000-4000-8000-000000000001", &blob, &len, &err) == 0,
          "delete: an ended job goes with its trajectories and checkpoints");
    ac_jobs_page_free(&p);
    ac_jobs_page_t q;
    CHECK(ac_jobs_events_page(j, ids[2], 0, 10, &p, &err) == 0 && json_array_size(p.items) == 0 &&
              ac_jobs_metrics_page(j, ids[2], 0, 10, &q, &err) == 0 && json_array_size(q.items) == 0,
          "... and its events and metrics rows");
    ac_jobs_page_free(&p);
    ac_jobs_page_free(&q);
    free(ids[2]);
    ids[2] = NULL;
    CHECK(ac_jobs_delete(j, ids[6], &err) == 0 && ac_jobs_delete(j, ids[6], &err) == -1 && err.code == AC_ERR_NOT_FOUND,
          "delete twice: the second is not found");
    ac_err_clear(&err);
    free(ids[6]);
    ids[6] = NULL;
    ids[7] = new_job_for(j, "carol", 4000);
    CHECK(ids[7] != NULL && totals_agree(j, ids, 8, "deleted"), "totals after deletes and one more create");

    /* budgets: what alice has committed is her jobs' reservations, or costs once they ended */
    json_t *empty = json_array();
    ac_job_new_t nj = {"alice", "calculator", &cfg, data, empty, NULL, 5000, ac_usd_to_micro(cfg.max_budget_usd) * 3,
                       NULL};
    CHECK(ac_jobs_create(j, &nj, NULL, &err) == -1 && err.code == AC_ERR_BUDGET_EXCEEDED &&
              strcmp(json_string_value(json_object_get(err.data, "field")), "max_budget_usd") == 0,
          "a job over the owner's budget is refused naming max_budget_usd");
    ac_err_clear(&err);
    json_decref(empty);

    /* reopened: the totals are the same; a data directory without them gets them counted */
    ac_jobs_close(j);
    ac_store_close(s);
    s = ac_store_open(dir, &err);
    j = s ? ac_jobs_open_lmdb(s, &err) : NULL;
    CHECK(j != NULL && totals_agree(j, ids, 8, "reopened"), "after a reopen the kept totals still agree");
    ac_jobs_close(j);
    ac_store_close(s);
    for (int i = 0; i < 8; i++)
        free(ids[i]);
}

static int drop_totals_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    (void)ud;
    return ac_txn_del(t, AC_DB_META, "jobs_totals", strlen("jobs_totals"), err) == 1 ? 0 : -1;
}

/* A data directory from before the totals: the next open counts them from the records. */
static void test_totals_counted_on_open(const char *dir)
{
    ac_err_t err = AC_ERR_INIT;
    ac_store_t *s = ac_store_open(dir, &err);
    CHECK(s != NULL && ac_store_write(s, drop_totals_txn, NULL, &err) == 0, "the totals record removed");
    ac_jobs_t *j = s ? ac_jobs_open_lmdb(s, &err) : NULL;
    ac_jobs_totals_t kept, scan;
    CHECK(j != NULL && ac_jobs_totals(j, &kept, &err) == 0 && ac_jobs_totals_scan(j, &scan, &err) == 0 &&
              memcmp(&kept, &scan, sizeof kept) == 0 && kept.by_status[AC_JOB_QUEUED] + kept.by_status[AC_JOB_RUNNING] +
                                                                kept.by_status[AC_JOB_FAILED] +
                                                                kept.by_status[AC_JOB_CANCELLED] ==
                                                            6,
          "opening counts them again from the 6 jobs left, equal to a full count");
    ac_jobs_close(j);
    ac_store_close(s);
    ac_err_clear(&err);
}

int main(void)
{
    char dir[] = "/tmp/ac-test-jobs-XXXXXX", dir2[] = "/tmp/ac-test-jobs2-XXXXXX";
    if (mkdtemp(dir) == NULL || mkdtemp(dir2) == NULL)
        return 1;
    ac_train_config_defaults(&cfg);
    data = json_array();
    for (int i = 0; i < 100; i++)
        json_array_append_new(data, json_pack("{s:s}", "query", "add 1 and 2"));
    test_record_round_trip();
    test_unwritable(dir);
    test_jobs_and_totals(dir2);
    test_totals_counted_on_open(dir2);
    json_decref(data);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir, dir2);
    if (system(cmd) != 0)
        return 1;
    return check_done(__FILE__);
}
