/* Jobs whose store cannot write: a job whose work could not be committed ends failed with the
 * cause and a training.job.failed event; when even that cannot be written it is remembered in
 * memory and written once the store can write; no job is claimed while the store is degraded,
 * so that a job re-queued by a restart does not run into the same fault. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fault.h"
#include "store/jobs.h"

#include "check.h"

static char *new_job(ac_store_t *s, const ac_train_config_t *cfg, json_t *data)
{
    json_t *empty = json_array();
    ac_job_new_t nj = {"alice", "calculator", cfg, data, empty, NULL, 1000, -1, NULL};
    json_t *job = NULL;
    ac_err_t err = AC_ERR_INIT;
    char *id = NULL;
    if (ac_jobs_create(s, &nj, &job, &err) == 0)
        id = strdup(json_string_value(json_object_get(job, "job_id")));
    json_decref(job);
    json_decref(empty);
    ac_err_clear(&err);
    return id;
}

static const char *status_of(ac_store_t *s, const char *id, char *error, size_t n)
{
    static char status[32];
    json_t *job = NULL;
    ac_err_t err = AC_ERR_INIT;
    snprintf(status, sizeof status, "?");
    if (error != NULL)
        error[0] = '\0';
    if (ac_jobs_get(s, id, &job, &err) == 1) {
        snprintf(status, sizeof status, "%s", json_string_value(json_object_get(job, "status")));
        if (error != NULL && json_is_string(json_object_get(job, "error")))
            snprintf(error, n, "%s", json_string_value(json_object_get(job, "error")));
    }
    json_decref(job);
    ac_err_clear(&err);
    return status;
}

typedef struct last_event {
    char name[64];
    char error[256];
} last_event_t;

static int last_event_cb(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)key, (void)klen, (void)err;
    last_event_t *e = ud;
    json_t *ev = json_loadb(val, vlen, 0, NULL);
    snprintf(e->name, sizeof e->name, "%s", json_string_value(json_object_get(ev, "event")));
    const char *msg = json_string_value(json_object_get(json_object_get(ev, "data"), "error"));
    snprintf(e->error, sizeof e->error, "%s", msg ? msg : "");
    json_decref(ev);
    return 1;
}

typedef struct ev_ctx {
    const char *id;
    last_event_t e;
} ev_ctx_t;

static int last_event_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    ev_ctx_t *c = ud;
    return ac_txn_scan_rev(t, AC_DB_EVENTS, c->id, 36, last_event_cb, &c->e, err);
}

static last_event_t last_event(ac_store_t *s, const char *id)
{
    ev_ctx_t c = {id, {"", ""}};
    ac_err_t err = AC_ERR_INIT;
    ac_store_read(s, last_event_txn, &c, &err);
    ac_err_clear(&err);
    return c.e;
}

int main(void)
{
    char dir[] = "/tmp/ac-test-jobs-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    ac_err_t err = AC_ERR_INIT;
    int64_t run = 0;
    ac_store_t *s = ac_store_open(dir, &err);
    CHECK(s != NULL, "open a store");
    if (s == NULL)
        return check_done(__FILE__);
    ac_store_probe(s, &err); /* makes the reserve, as the server does at start */
    ac_train_config_t cfg;
    ac_train_config_defaults(&cfg);
    json_t *data = json_array();
    for (int i = 0; i < 100; i++)
        json_array_append_new(data, json_pack("{s:s}", "query", "add 1 and 2"));
    char claimed[37] = "";
    char *a = new_job(s, &cfg, data);
    CHECK(a != NULL && ac_jobs_claim(s, 2000, claimed, &run, &err) == 1 && strcmp(claimed, a) == 0, "job A runs");

    /* the store fails a commit; the failure record is written (the reserve is released for it) */
    const char *cause = "store: cannot write: No space left on device (0 KiB free)";
    CHECK(ac_jobs_fail(s, a, cause, 3000, &err) == 0, "a job whose work could not be committed is failed");
    char error[256];
    CHECK(strcmp(status_of(s, a, error, sizeof error), "failed") == 0 && strcmp(error, cause) == 0,
          "its record says failed with the storage error");
    last_event_t e = last_event(s, a);
    CHECK(strcmp(e.name, "training.job.failed") == 0 && strcmp(e.error, cause) == 0,
          "a training.job.failed event with the error is stored");
    CHECK(ac_jobs_fail(s, a, "something else", 3100, &err) == 0 &&
              strcmp(status_of(s, a, error, sizeof error), "failed") == 0 && strcmp(error, cause) == 0,
          "a job already ended keeps its end");

    /* even the failure record cannot be written */
    char *b = new_job(s, &cfg, data);
    char *c = new_job(s, &cfg, data);
    CHECK(b != NULL && c != NULL && ac_jobs_claim(s, 4000, claimed, &run, &err) == 1 && strcmp(claimed, b) == 0,
          "job B runs, job C waits in the queue");
    ac_fault_set("store.commit,store.reserved");
    CHECK(ac_jobs_fail(s, b, cause, 5000, &err) == -1 && ac_store_is_write_fault(&err),
          "when the failure cannot be written either, ac_jobs_fail says so");
    ac_err_clear(&err);
    CHECK(ac_jobs_unwritten_failure(b, error, sizeof error) == 1 && strcmp(error, cause) == 0,
          "the failure is remembered in memory with its error");
    CHECK(strcmp(status_of(s, b, NULL, 0), "running") == 0 && ac_store_degraded(s, NULL, 0) == 1,
          "on disk B still says running, and the store is degraded");
    ac_fault_set(NULL);
    CHECK(ac_jobs_claim(s, 6000, claimed, &run, &err) == 0 && strcmp(status_of(s, c, NULL, 0), "queued") == 0,
          "no job is claimed while the store is degraded");
    CHECK(ac_store_probe(s, &err) == 0 && ac_jobs_write_failures(s, 7000, &err) == 0,
          "once the probe succeeds the remembered failure is written");
    CHECK(strcmp(status_of(s, b, error, sizeof error), "failed") == 0 && strcmp(error, cause) == 0 &&
              ac_jobs_unwritten_failure(b, error, sizeof error) == 0,
          "B is failed on disk with its error and no longer only in memory");
    CHECK(strcmp(last_event(s, b).name, "training.job.failed") == 0, "with its training.job.failed event");
    CHECK(ac_jobs_claim(s, 8000, claimed, &run, &err) == 1 && strcmp(claimed, c) == 0, "then C is claimed");

    /* the process ends while C's failure is only in memory; the next start finds the store
     * still unable to write */
    ac_fault_set("store.commit,store.reserved");
    CHECK(ac_jobs_fail(s, c, cause, 9000, &err) == -1, "C's failure cannot be written");
    ac_err_clear(&err);
    ac_store_close(s);
    s = ac_store_open(dir, &err);
    CHECK(s != NULL && ac_store_probe(s, &err) == -1, "restart: the probe finds the store still failing");
    ac_err_clear(&err);
    if (s == NULL)
        return check_done(__FILE__);
    ac_fault_set(NULL); /* the small write that re-queues C fits (it may use the reserve) */
    CHECK(ac_jobs_recover(s, NULL, 0, &err) == 1, "restart: C, running on disk, is re-queued");
    CHECK(ac_jobs_claim(s, 10000, claimed, &run, &err) == 0 && ac_jobs_claim(s, 10001, claimed, &run, &err) == 0,
          "restart: C does not resume while the store is degraded");
    CHECK(ac_store_probe(s, &err) == 0 && ac_jobs_claim(s, 11000, claimed, &run, &err) == 1 && strcmp(claimed, c) == 0,
          "restart: once the store can write, C is claimed (it resumes from its last checkpoint)");
    CHECK(ac_jobs_unwritten_failure(c, error, sizeof error) == 0 && strcmp(status_of(s, c, NULL, 0), "running") == 0,
          "a job that runs again has no failure remembered");

    ac_store_close(s);
    json_decref(data);
    free(a);
    free(b);
    free(c);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return check_done(__FILE__);
}
