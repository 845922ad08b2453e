#include "store/jobs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/uuid.h"

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
    if (rc == 0 && db == AC_DB_JOBS) {
        /* every change of a job record bumps its revision: readers cache what they rendered */
        char name[64];
        uint64_t rev;
        snprintf(name, sizeof name, "rev:%s", key);
        rc = ac_txn_next_seq(t, name, &rev, err);
    }
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

typedef struct commit_sum {
    ac_txn_t *txn;
    size_t prefix;
    int64_t committed;
} commit_sum_t;

static int add_commitment(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)val, (void)vlen;
    commit_sum_t *c = ud;
    if (klen != c->prefix + 8 + AC_UUID_LEN)
        return 0;
    char id[AC_UUID_LEN + 1];
    memcpy(id, (const char *)key + c->prefix + 8, AC_UUID_LEN);
    id[AC_UUID_LEN] = 0;
    json_t *job = NULL;
    if (get_json(c->txn, AC_DB_JOBS, id, &job, err) < 0)
        return -1;
    if (job != NULL) {
        const char *status = json_string_value(json_object_get(job, "status"));
        c->committed += json_integer_value(
            json_object_get(job, status && ac_job_status_final(status) ? "cost_micro" : "budget_micro"));
        json_decref(job);
    }
    return 0;
}

static int create_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    create_ctx_t *c = ud;
    const ac_job_new_t *nj = c->nj;
    json_t *job = c->job;
    if (nj->owner_budget_micro >= 0) {
        size_t olen = strlen(nj->owner);
        char prefix[512];
        memcpy(prefix, nj->owner, olen);
        prefix[olen] = 0;
        commit_sum_t sum = {t, olen + 1, 0};
        if (ac_txn_scan(t, AC_DB_OWNER_JOBS, prefix, olen + 1, NULL, 0, add_commitment, &sum, err) != 0)
            return -1;
        int64_t want = json_integer_value(json_object_get(job, "budget_micro"));
        if (sum.committed + want > nj->owner_budget_micro) {
            char budget[32], used[32], left[32];
            int64_t rest = nj->owner_budget_micro - sum.committed;
            ac_micro_to_usd_str(budget, sizeof budget, nj->owner_budget_micro);
            ac_micro_to_usd_str(used, sizeof used, sum.committed);
            ac_micro_to_usd_str(left, sizeof left, rest > 0 ? rest : 0);
            ac_err_set(err, AC_ERR_BUDGET_EXCEEDED, "Budget exceeded: %s USD of %s USD are committed", used, budget);
            ac_err_set_data(err, json_pack("{s:s, s:s, s:s, s:s, s:s}", "field", "max_budget_usd", "error",
                                           "more than the rest of your budget", "budget_usd", budget,
                                           "committed_usd", used, "available_usd", left));
            return -1;
        }
    }
    uint64_t seq;
    if (ac_txn_next_seq(t, "queue_seq", &seq, err) != 0)
        return -1;
    json_object_set_new(job, "queue_seq", json_integer((json_int_t)seq));
    const char *id = json_string_value(json_object_get(job, "job_id"));
    json_t *data = json_pack("{s:O, s:O}", "training_data", nj->training_data, "evaluation_data",
                             nj->evaluation_data);
    if (data != NULL && nj->validation_data != NULL)
        json_object_set(data, "validation_data", nj->validation_data);
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
    if (nj->webhooks != NULL)
        json_object_set(rec, "webhooks", nj->webhooks);
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
    uint64_t known_rev, rev;
} get_ctx_t;

static int get_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    get_ctx_t *g = ud;
    return get_json(t, AC_DB_JOBS, g->id, &g->job, err);
}

static int get_changed_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    get_ctx_t *g = ud;
    char name[64];
    snprintf(name, sizeof name, "rev:%s", g->id);
    const void *val = NULL;
    size_t vlen = 0;
    int found = ac_txn_get(t, AC_DB_META, name, strlen(name), &val, &vlen, err);
    if (found < 0)
        return -1;
    g->rev = found && vlen == 8 ? ac_be64_get(val) : 0;
    if (found && g->rev == g->known_rev)
        return 2; /* unchanged: the record is not read at all */
    return get_json(t, AC_DB_JOBS, g->id, &g->job, err);
}

int ac_jobs_get_if_changed(ac_store_t *s, const char *job_id, uint64_t known_rev, uint64_t *rev, json_t **job,
                           ac_err_t *err)
{
    get_ctx_t g = {job_id, NULL, known_rev, 0};
    int rc = ac_store_read(s, get_changed_txn, &g, err);
    *rev = g.rev;
    if (rc == 1)
        *job = g.job;
    return rc;
}

int ac_jobs_get(ac_store_t *s, const char *job_id, json_t **job, ac_err_t *err)
{
    get_ctx_t g = {job_id, NULL, 0, 0};
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

/* ---- execution -------------------------------------------------------------------------------- */

size_t ac_jobs_traj_key(uint8_t key[44], const char *job_id, uint32_t iteration, uint32_t index)
{
    memcpy(key, job_id, AC_UUID_LEN);
    for (int i = 0; i < 4; i++) {
        key[AC_UUID_LEN + i] = (uint8_t)(iteration >> (24 - 8 * i));
        key[AC_UUID_LEN + 4 + i] = (uint8_t)(index >> (24 - 8 * i));
    }
    return AC_UUID_LEN + 8;
}

int ac_jobs_txn_event(ac_txn_t *t, json_t *job, const char *event, json_t *data, int64_t now_ms, ac_err_t *err)
{
    const char *id = json_string_value(json_object_get(job, "job_id"));
    json_int_t seq = json_integer_value(json_object_get(job, "event_seq")) + 1;
    json_object_set_new(job, "event_seq", json_integer(seq));
    char ts[40];
    json_t *ev = json_pack("{s:I, s:s, s:s, s:o}", "seq", seq, "event", event, "timestamp",
                           ac_clock_iso8601(ts, sizeof ts, now_ms, 0), "data", data ? data : json_object());
    uint8_t key[AC_UUID_LEN + 8];
    memcpy(key, id, AC_UUID_LEN);
    ac_be64_put(key + AC_UUID_LEN, (uint64_t)seq);
    char *text = json_dumps(ev, JSON_COMPACT);
    int rc = text ? ac_txn_put(t, AC_DB_EVENTS, key, sizeof key, text, strlen(text), err)
                  : ac_err_set(err, AC_ERR_INTERNAL, "jobs: cannot encode an event");
    free(text);
    /* The webhook outbox gets the event in the same transaction: a crash can lose neither. The
     * delivery thread fans it out to the subscriptions (webhook.h). */
    if (rc == 0) {
        json_t *entry = json_pack("{s:s, s:O, s:s, s:{s:s, s:O, s:O}, s:O}", "kind", "event", "owner",
                                  json_object_get(job, "owner"), "job_id", id, "event", "event", event, "timestamp",
                                  json_object_get(ev, "timestamp"), "data", json_object_get(ev, "data"), "webhooks",
                                  json_object_get(job, "webhooks") ? json_object_get(job, "webhooks") : json_null());
        uint64_t seq;
        char *etext = entry ? json_dumps(entry, JSON_COMPACT) : NULL;
        uint8_t okey[8];
        if (etext == NULL)
            rc = ac_err_set(err, AC_ERR_INTERNAL, "jobs: cannot encode an outbox entry");
        else if ((rc = ac_txn_next_seq(t, "outbox_seq", &seq, err)) == 0) {
            ac_be64_put(okey, seq);
            rc = ac_txn_put(t, AC_DB_OUTBOX, okey, 8, etext, strlen(etext), err);
        }
        free(etext);
        json_decref(entry);
    }
    json_decref(ev);
    return rc;
}

int ac_jobs_txn_put_trajectory(ac_txn_t *t, const char *job_id, uint32_t iteration, uint32_t index,
                               const json_t *traj, double reward, int success, ac_err_t *err)
{
    uint8_t key[44];
    size_t klen = ac_jobs_traj_key(key, job_id, iteration, index);
    char *text = json_dumps(traj, JSON_COMPACT);
    if (text == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: cannot encode a trajectory");
    int rc = ac_txn_put(t, AC_DB_TRAJECTORIES, key, klen, text, strlen(text), err);
    free(text);
    uint8_t summary[9];
    memcpy(summary, &reward, 8);
    summary[8] = (uint8_t)(success != 0);
    return rc || ac_txn_put(t, AC_DB_TRAJ_INDEX, key, klen, summary, sizeof summary, err);
}

typedef struct drop_ctx {
    uint32_t to;
    uint8_t (*keys)[44];
    size_t n, cap;
} drop_ctx_t;

static int collect_drop(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)val, (void)vlen;
    drop_ctx_t *d = ud;
    const uint8_t *k = key;
    uint32_t it = (uint32_t)k[AC_UUID_LEN] << 24 | (uint32_t)k[AC_UUID_LEN + 1] << 16 |
                  (uint32_t)k[AC_UUID_LEN + 2] << 8 | k[AC_UUID_LEN + 3];
    if (klen != 44 || it >= d->to)
        return 1;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        void *p = realloc(d->keys, cap * 44);
        if (p == NULL)
            return ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
        d->keys = p;
        d->cap = cap;
    }
    memcpy(d->keys[d->n++], key, 44);
    return 0;
}

int ac_jobs_txn_drop_trajectories(ac_txn_t *t, const char *job_id, uint32_t from, uint32_t to, size_t *n,
                                  ac_err_t *err)
{
    uint8_t start[44];
    ac_jobs_traj_key(start, job_id, from, 0);
    drop_ctx_t d = {to, NULL, 0, 0};
    /* collect first: deleting under a cursor's feet is not what the scan helper promises */
    int rc = ac_txn_scan(t, AC_DB_TRAJ_INDEX, job_id, AC_UUID_LEN, start, 44, collect_drop, &d, err);
    for (size_t i = 0; rc == 0 && i < d.n; i++)
        if (ac_txn_del(t, AC_DB_TRAJECTORIES, d.keys[i], 44, err) < 0 ||
            ac_txn_del(t, AC_DB_TRAJ_INDEX, d.keys[i], 44, err) < 0)
            rc = -1;
    if (n != NULL)
        *n = d.n;
    free(d.keys);
    return rc;
}

static size_t ckpt_key(uint8_t key[2 * AC_UUID_LEN], const char *job_id, const char *ckpt_id)
{
    memcpy(key, job_id, AC_UUID_LEN);
    memcpy(key + AC_UUID_LEN, ckpt_id, AC_UUID_LEN);
    return 2 * AC_UUID_LEN;
}

int ac_jobs_txn_put_checkpoint(ac_txn_t *t, const char *job_id, const char *ckpt_id, const void *buf, size_t len,
                               ac_err_t *err)
{
    uint8_t key[2 * AC_UUID_LEN];
    return ac_txn_put(t, AC_DB_CHECKPOINTS, key, ckpt_key(key, job_id, ckpt_id), buf, len, err);
}

int ac_jobs_txn_del_checkpoint(ac_txn_t *t, const char *job_id, const char *ckpt_id, ac_err_t *err)
{
    uint8_t key[2 * AC_UUID_LEN];
    return ac_txn_del(t, AC_DB_CHECKPOINTS, key, ckpt_key(key, job_id, ckpt_id), err) < 0 ? -1 : 0;
}

typedef struct blob_ctx {
    const char *job_id, *ckpt_id;
    uint8_t *buf;
    size_t len;
} blob_ctx_t;

static int get_blob_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    blob_ctx_t *b = ud;
    uint8_t key[2 * AC_UUID_LEN];
    const void *val;
    size_t vlen = 0;
    int found = ac_txn_get(t, AC_DB_CHECKPOINTS, key, ckpt_key(key, b->job_id, b->ckpt_id), &val, &vlen, err);
    if (found <= 0)
        return found;
    if ((b->buf = malloc(vlen ? vlen : 1)) == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
    memcpy(b->buf, val, vlen);
    b->len = vlen;
    return 1;
}

int ac_jobs_get_checkpoint(ac_store_t *s, const char *job_id, const char *ckpt_id, uint8_t **buf, size_t *len,
                           ac_err_t *err)
{
    if (strlen(ckpt_id) != AC_UUID_LEN)
        return 0;
    blob_ctx_t b = {job_id, ckpt_id, NULL, 0};
    int rc = ac_store_read(s, get_blob_txn, &b, err);
    if (rc == 1) {
        *buf = b.buf;
        *len = b.len;
    }
    return rc;
}

typedef struct update_ctx {
    const char *id;
    ac_job_update_fn fn;
    void *ud;
    json_t *job;
    int64_t run; /* > 0: only while the record's run is this one */
} update_ctx_t;

static int update_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    update_ctx_t *u = ud;
    json_decref(u->job);
    u->job = NULL;
    int found = get_json(t, AC_DB_JOBS, u->id, &u->job, err);
    if (found <= 0)
        return found < 0 ? -1 : ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no such job");
    if (u->run > 0 && json_integer_value(json_object_get(u->job, "run")) != u->run)
        return ac_err_set(err, AC_ERR_INTERNAL, "job %s: this run (%lld) no longer owns the job", u->id,
                          (long long)u->run);
    if (u->fn(t, u->job, u->ud, err) != 0)
        return -1;
    return put_json(t, AC_DB_JOBS, u->id, u->job, err);
}

int ac_jobs_update(ac_store_t *s, const char *job_id, ac_job_update_fn fn, void *ud, json_t **job_out,
                   ac_err_t *err)
{
    return ac_jobs_update_run(s, job_id, 0, fn, ud, job_out, err);
}

int ac_jobs_update_run(ac_store_t *s, const char *job_id, int64_t run, ac_job_update_fn fn, void *ud,
                       json_t **job_out, ac_err_t *err)
{
    update_ctx_t u = {job_id, fn, ud, NULL, run};
    int rc = ac_store_write(s, update_txn, &u, err);
    if (rc == 0 && job_out != NULL)
        *job_out = u.job;
    else
        json_decref(u.job);
    return rc;
}

static void unwritten_drop(const char *id);

typedef struct claim_ctx {
    int64_t now_ms;
    char id[AC_UUID_LEN + 1];
    uint8_t qkey[8];
    int found;
    int64_t run;
} claim_ctx_t;

static int first_in_queue(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)err;
    claim_ctx_t *c = ud;
    if (klen == 8 && vlen == AC_UUID_LEN) {
        memcpy(c->qkey, key, 8);
        memcpy(c->id, val, AC_UUID_LEN);
        c->id[AC_UUID_LEN] = 0;
        c->found = 1;
    }
    return 1;
}

static int claim_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    claim_ctx_t *c = ud;
    for (;;) {
        c->found = 0;
        if (ac_txn_scan(t, AC_DB_QUEUE, NULL, 0, NULL, 0, first_in_queue, c, err) != 0)
            return -1;
        if (!c->found)
            return 0; /* commits the removal of stale entries, if any */
        if (ac_txn_del(t, AC_DB_QUEUE, c->qkey, 8, err) < 0)
            return -1;
        json_t *job = NULL;
        int f = get_json(t, AC_DB_JOBS, c->id, &job, err);
        if (f < 0)
            return -1;
        if (f == 0 || ac_job_status_final(json_string_value(json_object_get(job, "status")))) {
            json_decref(job); /* a stale entry: the job ended meanwhile */
            continue;
        }
        char ts[40];
        int first_start = json_is_null(json_object_get(job, "started_at"));
        json_object_set_new(job, "status", json_string("running"));
        /* a new run: it alone may write the job from now on (ac_jobs_update_run) */
        c->run = json_integer_value(json_object_get(job, "run")) + 1;
        json_object_set_new(job, "run", json_integer(c->run));
        if (first_start)
            json_object_set_new(job, "started_at", json_string(ac_clock_iso8601(ts, sizeof ts, c->now_ms, 0)));
        int rc = (first_start ? ac_jobs_txn_event(t, job, "training.job.started",
                                                  json_pack("{s:s, s:O, s:s}", "job_id", c->id, "agent_id",
                                                            json_object_get(job, "agent_id"), "status", "running"),
                                                  c->now_ms, err)
                              : 0) ||
                 put_json(t, AC_DB_JOBS, c->id, job, err);
        json_decref(job);
        return rc ? -1 : 0; /* found stays 1: only 0 commits */
    }
}

int ac_jobs_claim(ac_store_t *s, int64_t now_ms, char job_id[37], int64_t *run, ac_err_t *err)
{
    if (ac_store_degraded(s, NULL, 0))
        return 0;
    claim_ctx_t c = {now_ms, {0}, {0}, 0, 0};
    if (ac_store_write(s, claim_txn, &c, err) != 0)
        return -1;
    if (c.found) {
        memcpy(job_id, c.id, AC_UUID_LEN + 1);
        *run = c.run;
        unwritten_drop(c.id); /* it runs again (re-queued at a start): an old failure no longer holds */
    }
    return c.found;
}

/* Ends a running job as failed with `error` and a training.job.failed event. */
static int fail_running(ac_txn_t *t, json_t *job, const char *error, int64_t now_ms, ac_err_t *err)
{
    char ts[40];
    json_object_set_new(job, "status", json_string("failed"));
    json_object_set_new(job, "error", json_string(error));
    json_object_set_new(job, "finished_at", json_string(ac_clock_iso8601(ts, sizeof ts, now_ms, 0)));
    json_object_del(job, "estimated_completion");
    return ac_jobs_txn_event(t, job, "training.job.failed",
                             json_pack("{s:O, s:O, s:s, s:s}", "job_id", json_object_get(job, "job_id"),
                                       "agent_id", json_object_get(job, "agent_id"), "status", "failed", "error",
                                       error),
                             now_ms, err);
}

typedef struct abandon_ctx {
    const char *error;
    int64_t now_ms;
} abandon_ctx_t;

static int abandon_fn(ac_txn_t *t, json_t *job, void *ud, ac_err_t *err)
{
    abandon_ctx_t *a = ud;
    if (strcmp(json_string_value(json_object_get(job, "status")), "running") != 0)
        return 0;
    /* the abandoned run's writes are refused from here on */
    json_object_set_new(job, "run", json_integer(json_integer_value(json_object_get(job, "run")) + 1));
    return fail_running(t, job, a->error, a->now_ms, err);
}

int ac_jobs_abandon(ac_store_t *s, const char *job_id, int64_t run, const char *error, int64_t now_ms,
                    ac_err_t *err)
{
    abandon_ctx_t a = {error, now_ms};
    return ac_jobs_update_run(s, job_id, run, abandon_fn, &a, NULL, err);
}

typedef struct recover_ctx {
    char (*ids)[AC_UUID_LEN + 1];
    json_int_t *seqs;
    size_t n, cap;
    size_t failed;
    const char *const *crashed;
    size_t n_crashed;
} recover_ctx_t;

static int find_running(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    recover_ctx_t *r = ud;
    if (klen != AC_UUID_LEN)
        return 0;
    json_t *job = json_loadb(val, vlen, 0, NULL);
    const char *status = json_string_value(json_object_get(job, "status"));
    if (status != NULL && strcmp(status, "running") == 0) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 16;
            void *a = realloc(r->ids, cap * sizeof *r->ids), *b = realloc(r->seqs, cap * sizeof *r->seqs);
            if (a)
                r->ids = a;
            if (b)
                r->seqs = b;
            if (!a || !b) {
                json_decref(job);
                return ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
            }
            r->cap = cap;
        }
        memcpy(r->ids[r->n], key, AC_UUID_LEN);
        r->ids[r->n][AC_UUID_LEN] = 0;
        r->seqs[r->n++] = json_integer_value(json_object_get(job, "queue_seq"));
    }
    json_decref(job);
    return 0;
}

static int find_running_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    recover_ctx_t *r = ud;
    r->n = 0;
    return ac_txn_scan(t, AC_DB_JOBS, NULL, 0, NULL, 0, find_running, r, err);
}

static int recover_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    recover_ctx_t *r = ud;
    if (find_running_txn(t, ud, err) != 0)
        return -1;
    r->failed = 0;
    for (size_t i = 0; i < r->n; i++) {
        json_t *job = NULL;
        if (get_json(t, AC_DB_JOBS, r->ids[i], &job, err) != 1)
            return -1;
        json_int_t crashes = json_integer_value(json_object_get(job, "crashes"));
        for (size_t k = 0; k < r->n_crashed; k++)
            crashes += strcmp(r->crashed[k], r->ids[i]) == 0;
        json_object_set_new(job, "crashes", json_integer(crashes));
        int give_up = crashes >= AC_JOBS_MAX_CRASHES;
        if (give_up && fail_running(t, job, "the server crashed while this job's plugins ran, twice: it was not "
                                            "resumed a third time", ac_clock_now_ms(), err) != 0) {
            json_decref(job);
            return -1;
        }
        int rc = put_json(t, AC_DB_JOBS, r->ids[i], job, err);
        json_decref(job);
        if (rc != 0)
            return -1;
        if (give_up) {
            r->failed++;
            continue;
        }
        /* its original place: older than every job queued after it */
        uint8_t qkey[8];
        ac_be64_put(qkey, (uint64_t)r->seqs[i]);
        if (ac_txn_put(t, AC_DB_QUEUE, qkey, 8, r->ids[i], AC_UUID_LEN, err) != 0)
            return -1;
    }
    return 0;
}

int ac_jobs_recover(ac_store_t *s, const char *const *crashed, size_t n_crashed, ac_err_t *err)
{
    recover_ctx_t r = {0};
    r.crashed = crashed;
    r.n_crashed = n_crashed;
    /* look first: a start with nothing to recover writes nothing */
    int rc = ac_store_read(s, find_running_txn, &r, err);
    if (rc == 0 && r.n > 0)
        rc = ac_store_write_reserved(s, recover_txn, &r, err);
    free(r.ids);
    free(r.seqs);
    return rc == 0 ? (int)(r.n - r.failed) : -1;
}

typedef struct data_ctx {
    const char *id;
    json_t *data;
} data_ctx_t;

static int data_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    data_ctx_t *d = ud;
    int found = get_json(t, AC_DB_JOB_DATA, d->id, &d->data, err);
    return found < 0 ? -1 : found == 0 ? ac_err_set(err, AC_ERR_NOT_FOUND, "jobs: no data for %s", d->id) : 0;
}

int ac_jobs_load_data(ac_store_t *s, const char *job_id, json_t **training, json_t **validation, json_t **evaluation,
                      ac_err_t *err)
{
    data_ctx_t d = {job_id, NULL};
    if (ac_store_read(s, data_txn, &d, err) != 0)
        return -1;
    *training = json_incref(json_object_get(d.data, "training_data"));
    *validation = json_incref(json_object_get(d.data, "validation_data"));
    *evaluation = json_incref(json_object_get(d.data, "evaluation_data"));
    json_decref(d.data);
    return 0;
}

/* ---- the per-iteration metrics series ---------------------------------------------------------- */

static size_t metrics_key(uint8_t key[AC_UUID_LEN + 4], const char *job_id, uint32_t iteration)
{
    memcpy(key, job_id, AC_UUID_LEN);
    key[AC_UUID_LEN] = (uint8_t)(iteration >> 24);
    key[AC_UUID_LEN + 1] = (uint8_t)(iteration >> 16);
    key[AC_UUID_LEN + 2] = (uint8_t)(iteration >> 8);
    key[AC_UUID_LEN + 3] = (uint8_t)iteration;
    return AC_UUID_LEN + 4;
}

int ac_jobs_txn_put_metrics(ac_txn_t *t, const char *job_id, uint32_t iteration, const json_t *row, ac_err_t *err)
{
    uint8_t key[AC_UUID_LEN + 4];
    char *text = json_dumps(row, JSON_COMPACT);
    if (text == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: cannot encode a metrics row");
    int rc = ac_txn_put(t, AC_DB_METRICS, key, metrics_key(key, job_id, iteration), text, strlen(text), err);
    free(text);
    return rc;
}

typedef struct drop_metrics_ctx {
    ac_txn_t *t;
    uint8_t (*keys)[AC_UUID_LEN + 4];
    size_t n, cap;
} drop_metrics_ctx_t;

static int collect_metrics_key(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)val, (void)vlen;
    drop_metrics_ctx_t *d = ud;
    if (klen != AC_UUID_LEN + 4)
        return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        void *k = realloc(d->keys, cap * sizeof *d->keys);
        if (k == NULL)
            return ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
        d->keys = k;
        d->cap = cap;
    }
    memcpy(d->keys[d->n++], key, klen);
    return 0;
}

int ac_jobs_txn_drop_metrics(ac_txn_t *t, const char *job_id, uint32_t from, ac_err_t *err)
{
    uint8_t start[AC_UUID_LEN + 4];
    metrics_key(start, job_id, from);
    drop_metrics_ctx_t d = {t, NULL, 0, 0};
    int rc = ac_txn_scan(t, AC_DB_METRICS, job_id, AC_UUID_LEN, start, sizeof start, collect_metrics_key, &d, err);
    for (size_t i = 0; rc == 0 && i < d.n; i++)
        rc = ac_txn_del(t, AC_DB_METRICS, d.keys[i], AC_UUID_LEN + 4, err) < 0 ? -1 : 0;
    free(d.keys);
    return rc;
}

typedef struct metrics_page_ctx {
    const char *job_id;
    uint32_t from;
    int limit;
    json_t *rows;
    int more;
} metrics_page_ctx_t;

static int metrics_row(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)key, (void)err;
    metrics_page_ctx_t *p = ud;
    if (klen != AC_UUID_LEN + 4)
        return 0;
    if ((int)json_array_size(p->rows) == p->limit) {
        p->more = 1;
        return 1;
    }
    json_t *row = json_loadb(val, vlen, 0, NULL);
    if (row != NULL)
        json_array_append_new(p->rows, row);
    return 0;
}

static int metrics_page_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    metrics_page_ctx_t *p = ud;
    uint8_t start[AC_UUID_LEN + 4];
    metrics_key(start, p->job_id, p->from);
    json_array_clear(p->rows);
    p->more = 0;
    return ac_txn_scan(t, AC_DB_METRICS, p->job_id, AC_UUID_LEN, start, sizeof start, metrics_row, p, err);
}

int ac_jobs_metrics_page(ac_store_t *s, const char *job_id, uint32_t from, int limit, json_t **rows, int *more,
                         ac_err_t *err)
{
    metrics_page_ctx_t p = {job_id, from, limit, json_array(), 0};
    if (p.rows == NULL || ac_store_read(s, metrics_page_txn, &p, err) != 0) {
        json_decref(p.rows);
        return err->code ? -1 : ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
    }
    *rows = p.rows;
    *more = p.more;
    return 0;
}

/* ---- failures the store could not commit ------------------------------------------------------ */

typedef struct fail_ctx {
    const char *id;
    const char *error;
    int64_t now_ms;
    json_t *job;
    int changed;
} fail_ctx_t;

static int fail_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    fail_ctx_t *f = ud;
    json_decref(f->job); /* a replay after the map grew starts over */
    f->job = NULL;
    f->changed = 0;
    int found = get_json(t, AC_DB_JOBS, f->id, &f->job, err);
    if (found <= 0)
        return found < 0 ? -1 : ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no such job");
    json_t *job = f->job;
    const char *status = json_string_value(json_object_get(job, "status"));
    if (status == NULL || ac_job_status_final(status))
        return 0; /* it ended meanwhile: nothing to say */
    if (strcmp(status, "queued") == 0) {
        uint8_t qkey[8];
        ac_be64_put(qkey, (uint64_t)json_integer_value(json_object_get(job, "queue_seq")));
        if (ac_txn_del(t, AC_DB_QUEUE, qkey, 8, err) < 0)
            return -1;
    }
    char ts[40], cost[32];
    ac_clock_iso8601(ts, sizeof ts, f->now_ms, 0);
    json_object_set_new(job, "status", json_string("failed"));
    json_object_set_new(job, "error", json_string(f->error));
    json_object_set_new(job, "finished_at", json_string(ts));
    json_object_del(job, "estimated_completion");
    /* the event the runner's own failures send, from what was committed last */
    json_t *metrics = json_object_get(job, "metrics");
    json_t *va = json_object_get(metrics, "validation_accuracy"), *sr = json_object_get(metrics, "success_rate");
    json_t *avg = json_object_get(metrics, "avg_reward");
    json_t *d = json_pack("{s:s, s:O, s:s, s:s, s:{s:O, s:s, s:O}}", "job_id", f->id, "agent_id",
                          json_object_get(job, "agent_id"), "status", "failed", "error", f->error, "final_metrics",
                          "success_rate", va ? va : sr ? sr : json_null(), "cost_usd",
                          ac_micro_to_usd_str(cost, sizeof cost, json_integer_value(json_object_get(job, "cost_micro"))),
                          "avg_reward", avg ? avg : json_null());
    if (d == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: cannot build the failure event");
    if (ac_jobs_txn_event(t, job, "training.job.failed", d, f->now_ms, err) != 0 ||
        put_json(t, AC_DB_JOBS, f->id, job, err) != 0)
        return -1;
    f->changed = 1;
    return 0;
}

/* The failures not written yet: a fixed table (a handful at most: one per worker whose job
 * failed while the store could not write; claims wait meanwhile), process-wide because a job id
 * names one job whichever store handle reads it. */
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
static int fail_write(ac_store_t *s, const char *job_id, const char *error, int64_t now_ms, ac_err_t *err)
{
    fail_ctx_t f = {job_id, error, now_ms, NULL, 0};
    ac_err_t e = AC_ERR_INIT;
    int rc = ac_store_write_reserved(s, fail_txn, &f, &e);
    json_decref(f.job);
    if (rc == 0)
        return 0;
    int fault = ac_store_is_write_fault(&e);
    ac_err_set(err, e.code, "%s", e.message);
    ac_err_set_data(err, json_incref(e.data));
    ac_err_clear(&e);
    return fault ? 1 : -1;
}

int ac_jobs_fail(ac_store_t *s, const char *job_id, const char *error, int64_t now_ms, ac_err_t *err)
{
    char text[256]; /* error may be err's own message, which err's new value overwrites */
    snprintf(text, sizeof text, "%s", error);
    int rc = fail_write(s, job_id, text, now_ms, err);
    if (rc == 1)
        unwritten_put(job_id, text);
    else
        unwritten_drop(job_id);
    return rc == 0 ? 0 : -1;
}

int ac_jobs_write_failures(ac_store_t *s, int64_t now_ms, ac_err_t *err)
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
        if (fail_write(s, u.id, u.error, now_ms, &e) == 1) {
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
