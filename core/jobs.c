#include "jobs.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "uuid.h"

int ac_job_status_final(const char *status)
{
    return strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0;
}

static int put_json(ac_txn_t *t, int db, const char *key, const json_t *v, ac_err_t *err)
{
    char *text = json_dumps(v, JSON_COMPACT);
    if (text == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: cannot encode a record");
    int rc = ac_txn_put(t, db, key, strlen(key), text, strlen(text), err);
    free(text);
    return rc;
}

static int get_json(ac_txn_t *t, int db, const char *key, json_t **out, ac_err_t *err)
{
    const void *val = NULL;
    size_t vlen = 0;
    int found = ac_txn_get(t, db, key, strlen(key), &val, &vlen, err);
    if (found <= 0)
        return found;
    json_error_t jerr;
    *out = json_loadb(val, vlen, 0, &jerr);
    if (*out == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: record %s is corrupt: %s", key, jerr.text);
    return 1;
}

typedef struct create_ctx {
    const ac_job_new_t *nj;
    json_t *job;
} create_ctx_t;

static int create_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    create_ctx_t *c = ud;
    const ac_job_new_t *nj = c->nj;
    json_t *job = c->job;
    uint64_t seq;
    if (ac_txn_next_seq(t, "queue_seq", &seq, err) != 0)
        return -1;
    json_object_set_new(job, "queue_seq", json_integer((json_int_t)seq));
    const char *id = json_string_value(json_object_get(job, "job_id"));
    json_t *data = json_pack("{s:O, s:O}", "training_data", nj->training_data, "evaluation_data",
                             nj->evaluation_data);
    int rc = put_json(t, AC_DB_JOBS, id, job, err) || put_json(t, AC_DB_JOB_DATA, id, data, err);
    json_decref(data);
    if (rc)
        return -1;
    uint8_t qkey[8];
    ac_be64_put(qkey, seq);
    if (ac_txn_put(t, AC_DB_QUEUE, qkey, 8, id, AC_UUID_LEN, err) != 0)
        return -1;
    /* owner \0 created_ms id: lists a principal's jobs in creation order */
    size_t olen = strlen(nj->owner);
    uint8_t okey[512];
    memcpy(okey, nj->owner, olen);
    okey[olen] = 0;
    ac_be64_put(okey + olen + 1, (uint64_t)nj->now_ms);
    memcpy(okey + olen + 9, id, AC_UUID_LEN);
    return ac_txn_put(t, AC_DB_OWNER_JOBS, okey, olen + 9 + AC_UUID_LEN, "", 0, err);
}

int ac_jobs_create(ac_store_t *s, const ac_job_new_t *nj, json_t **job, ac_err_t *err)
{
    char id[AC_UUID_LEN + 1];
    if (ac_uuid_v4(id) != 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: no random source for a job id");
    if (strlen(nj->owner) > 400)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: owner too long");
    char created[40];
    ac_clock_iso8601(created, sizeof created, nj->now_ms, 0);
    json_t *rec = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:s, s:I, s:i, s:i, s:I, s:I, s:{}, s:I, s:I, s:n, s:n, s:n, s:n}", "job_id",
        id, "owner", nj->owner, "agent_id", nj->agent_id, "status", "queued", "config",
        ac_train_config_to_json(nj->config), "created_at", created, "created_at_ms", (json_int_t)nj->now_ms,
        "current_iteration", 0, "total_iterations", nj->config->n_iterations, "cost_micro", (json_int_t)0,
        "budget_micro", (json_int_t)ac_usd_to_micro(nj->config->max_budget_usd), "metrics", "n_training",
        (json_int_t)json_array_size(nj->training_data), "n_evaluation",
        (json_int_t)json_array_size(nj->evaluation_data), "started_at", "finished_at", "best_checkpoint_id",
        "error");
    if (rec == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: cannot build the record");
    create_ctx_t c = {nj, rec};
    if (ac_store_write(s, create_txn, &c, err) != 0) {
        json_decref(rec);
        return -1;
    }
    *job = rec;
    return 0;
}

typedef struct get_ctx {
    const char *id;
    json_t *job;
} get_ctx_t;

static int get_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    get_ctx_t *g = ud;
    return get_json(t, AC_DB_JOBS, g->id, &g->job, err);
}

int ac_jobs_get(ac_store_t *s, const char *job_id, json_t **job, ac_err_t *err)
{
    get_ctx_t g = {job_id, NULL};
    int rc = ac_store_read(s, get_txn, &g, err);
    if (rc == 1)
        *job = g.job;
    return rc;
}

typedef struct cancel_ctx {
    const char *id;
    const char *reason;
    int64_t now_ms;
    json_t *job;
} cancel_ctx_t;

static int cancel_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    cancel_ctx_t *c = ud;
    json_decref(c->job); /* a replay after the map grew starts over */
    c->job = NULL;
    int found = get_json(t, AC_DB_JOBS, c->id, &c->job, err);
    if (found <= 0)
        return found < 0 ? -1 : ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no such job");
    const char *status = json_string_value(json_object_get(c->job, "status"));
    if (status == NULL || ac_job_status_final(status))
        return ac_err_field(err, AC_ERR_CANNOT_CANCEL, "status", "the job is already %s", status ? status : "?");
    json_object_set_new(c->job, "cancel_reason", c->reason ? json_string(c->reason) : json_null());
    if (strcmp(status, "queued") == 0) {
        uint8_t qkey[8];
        ac_be64_put(qkey, (uint64_t)json_integer_value(json_object_get(c->job, "queue_seq")));
        if (ac_txn_del(t, AC_DB_QUEUE, qkey, 8, err) < 0)
            return -1;
        char at[40];
        json_object_set_new(c->job, "status", json_string("cancelled"));
        json_object_set_new(c->job, "finished_at", json_string(ac_clock_iso8601(at, sizeof at, c->now_ms, 0)));
        json_object_set_new(c->job, "cancelled_at", json_string(at));
    } else {
        /* running: the worker stops at its next safe point and records the end */
        json_object_set_new(c->job, "cancel_requested", json_true());
    }
    return put_json(t, AC_DB_JOBS, c->id, c->job, err);
}

int ac_jobs_cancel(ac_store_t *s, const char *job_id, const char *reason, int64_t now_ms, json_t **job,
                   ac_err_t *err)
{
    cancel_ctx_t c = {job_id, reason, now_ms, NULL};
    if (ac_store_write(s, cancel_txn, &c, err) != 0) {
        json_decref(c.job);
        return -1;
    }
    *job = c.job;
    return 0;
}

static int count_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    (void)err;
    *(size_t *)ud = ac_txn_count(t, AC_DB_QUEUE);
    return 0;
}

size_t ac_jobs_queued(ac_store_t *s)
{
    size_t n = 0;
    ac_store_read(s, count_txn, &n, NULL);
    return n;
}
