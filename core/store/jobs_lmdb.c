/* The jobs store's LMDB backend (jobs_backend.h): every key layout of a job's records lives here.
 *
 *   AC_DB_JOBS          job_id                         -> the record (JSON, ac_job_to_json)
 *   AC_DB_JOB_DATA      job_id                         -> {training_data, evaluation_data, validation_data?}
 *   AC_DB_QUEUE         be64 queue_seq                 -> job_id
 *   AC_DB_OWNER_JOBS    owner \0 be64 created_ms job_id -> ""
 *   AC_DB_EVENTS        job_id be64 seq                -> event (JSON)
 *   (AC_DB_OUTBOX: an event's webhook work goes in through store/hooks.h in the same transaction)
 *   AC_DB_TRAJECTORIES  job_id be32 iteration be32 index -> trajectory (JSON)
 *   AC_DB_TRAJ_INDEX    the same key                   -> reward f64 (host order), success u8
 *   AC_DB_CHECKPOINTS   job_id checkpoint_id           -> checkpoint (binary)
 *   AC_DB_METRICS       job_id be32 iteration          -> that iteration's metrics row (JSON)
 *   AC_DB_META          "rev:" job_id                  -> be64: bumped by every put of the record
 *                       "sum:" job_id                  -> the job's summary (below)
 *                       "jobs_totals"                  -> the totals of every summary
 *                       "queue_seq"                    -> be64 counter
 *
 * The summary (status, current_iteration, trajectories_generated, cost_micro, budget_micro) is
 * what the totals add up and what budget checks and job lists filter on, so that neither has to
 * parse a record: each put replaces the job's summary and moves the totals by the difference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/hooks_backend.h"
#include "store/jobs_backend.h"

#define ID AC_UUID_LEN
#define TRAJ_KEY (ID + 8)
#define METRICS_KEY (ID + 4)
#define SUMMARY_LEN 33
#define TOTALS_KEY "jobs_totals"
#define TOTALS_LEN (8 * (AC_JOB_STATUS_COUNT + 2))

typedef struct lmdb_jobs {
    ac_jobs_t base;
    ac_store_t *store;
} lmdb_jobs_t;

typedef struct lmdb_txn {
    ac_jobs_txn_t base;
    ac_txn_t *t;
} lmdb_txn_t;

#define TXN(x) (((lmdb_txn_t *)(x))->t)
#define STORE(j) (((lmdb_jobs_t *)(j))->store)

/* ---- transactions ------------------------------------------------------------------------------ */

typedef struct tramp {
    ac_jobs_t *jobs;
    ac_jobs_txn_fn fn;
    void *ud;
} tramp_t;

static int run_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    tramp_t *x = ud;
    lmdb_txn_t lt = {{x->jobs}, t};
    return x->fn(&lt.base, x->ud, err);
}

static int lmdb_write(ac_jobs_t *j, int reserved, ac_jobs_txn_fn fn, void *ud, ac_err_t *err)
{
    tramp_t x = {j, fn, ud};
    return reserved ? ac_store_write_reserved(STORE(j), run_txn, &x, err) : ac_store_write(STORE(j), run_txn, &x, err);
}

static int lmdb_read(ac_jobs_t *j, ac_jobs_txn_fn fn, void *ud, ac_err_t *err)
{
    tramp_t x = {j, fn, ud};
    return ac_store_read(STORE(j), run_txn, &x, err);
}

static int lmdb_degraded(ac_jobs_t *j, char *cause, size_t n)
{
    return ac_store_degraded(STORE(j), cause, n);
}

static int lmdb_probe(ac_jobs_t *j, ac_err_t *err)
{
    return ac_store_probe(STORE(j), err);
}

static void lmdb_close(ac_jobs_t *j)
{
    free(j);
}

/* ---- keys and encodings ------------------------------------------------------------------------- */

static void be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static size_t traj_key(uint8_t key[TRAJ_KEY], const char *id, uint32_t iteration, uint32_t index)
{
    memcpy(key, id, ID);
    be32_put(key + ID, iteration);
    be32_put(key + ID + 4, index);
    return TRAJ_KEY;
}

static size_t metrics_key(uint8_t key[METRICS_KEY], const char *id, uint32_t iteration)
{
    memcpy(key, id, ID);
    be32_put(key + ID, iteration);
    return METRICS_KEY;
}

static size_t meta_key(char key[64], const char *kind, const char *id)
{
    return (size_t)snprintf(key, 64, "%s:%s", kind, id);
}

/* owner \0 be64 created_ms id: a principal's jobs in creation order */
static size_t owner_key(uint8_t key[512], const ac_job_t *job)
{
    size_t olen = strlen(job->owner);
    memcpy(key, job->owner, olen);
    key[olen] = 0;
    ac_be64_put(key + olen + 1, (uint64_t)job->created_ms);
    memcpy(key + olen + 9, job->id, ID);
    return olen + 9 + ID;
}

static int put_json(ac_txn_t *t, int db, const void *key, size_t klen, const json_t *v, ac_err_t *err)
{
    char *text = json_dumps(v, JSON_COMPACT);
    if (text == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: cannot encode a record");
    int rc = ac_txn_put(t, db, key, klen, text, strlen(text), err);
    free(text);
    return rc;
}

/* 1 with *out (new reference), 0 when missing, -1 when missing or corrupt. */
static int get_json(ac_txn_t *t, int db, const void *key, size_t klen, json_t **out, ac_err_t *err)
{
    const void *val = NULL;
    size_t vlen = 0;
    int found = ac_txn_get(t, db, key, klen, &val, &vlen, err);
    if (found <= 0)
        return found;
    json_error_t jerr;
    if ((*out = json_loadb(val, vlen, 0, &jerr)) == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: a record is corrupt: %s", jerr.text);
    return 1;
}

/* Keys collected before they are deleted: deleting under a cursor's feet is not what the scan
 * promises. */
typedef struct keys {
    uint8_t *buf;
    size_t *len, n, cap, used, bufcap;
} keys_t;

static int collect_key(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)val, (void)vlen;
    keys_t *k = ud;
    if (k->n == k->cap || k->used + klen > k->bufcap) {
        size_t cap = k->cap * 2 + 64, bufcap = (k->bufcap + klen) * 2;
        size_t *l = realloc(k->len, cap * sizeof *l);
        uint8_t *b = l ? realloc(k->buf, bufcap) : NULL;
        if (l != NULL)
            k->len = l;
        if (b == NULL)
            return ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
        k->buf = b;
        k->cap = cap;
        k->bufcap = bufcap;
    }
    memcpy(k->buf + k->used, key, klen);
    k->used += klen;
    k->len[k->n++] = klen;
    return 0;
}

static int del_keys(ac_txn_t *t, int db, keys_t *k, ac_err_t *err)
{
    size_t off = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < k->n; off += k->len[i], i++)
        rc = ac_txn_del(t, db, k->buf + off, k->len[i], err) < 0 ? -1 : 0;
    free(k->buf);
    free(k->len);
    return rc;
}

/* The keys of db from start (NULL: the first) that start with prefix, deleted. */
static int del_from(ac_txn_t *t, int db, const void *prefix, size_t plen, const void *start, size_t slen,
                    ac_err_t *err)
{
    keys_t k = {0};
    int rc = ac_txn_scan(t, db, prefix, plen, start, slen, collect_key, &k, err);
    if (rc != 0)
        k.n = 0;
    return del_keys(t, db, &k, err) || rc ? -1 : 0;
}

/* ---- summaries and totals ------------------------------------------------------------------------ */

static void summary_put(uint8_t s[SUMMARY_LEN], const ac_job_t *job)
{
    s[0] = (uint8_t)job->status;
    ac_be64_put(s + 1, (uint64_t)job->current_iteration);
    ac_be64_put(s + 9, (uint64_t)job->trajectories_generated);
    ac_be64_put(s + 17, (uint64_t)job->cost_micro);
    ac_be64_put(s + 25, (uint64_t)job->budget_micro);
}

/* The summary's fields in a record that has only them. */
static void summary_get(const uint8_t s[SUMMARY_LEN], ac_job_t *job)
{
    memset(job, 0, sizeof *job);
    job->status = (ac_job_status_t)s[0];
    job->current_iteration = (int64_t)ac_be64_get(s + 1);
    job->trajectories_generated = (int64_t)ac_be64_get(s + 9);
    job->cost_micro = (int64_t)ac_be64_get(s + 17);
    job->budget_micro = (int64_t)ac_be64_get(s + 25);
}

/* 1 with *job's summary fields, 0 when the job has no summary, -1. */
static int read_summary(ac_txn_t *t, const char *id, ac_job_t *job, ac_err_t *err)
{
    char key[64];
    const void *val;
    size_t vlen = 0;
    int found = ac_txn_get(t, AC_DB_META, key, meta_key(key, "sum", id), &val, &vlen, err);
    if (found <= 0 || vlen != SUMMARY_LEN)
        return found < 0 ? -1 : 0;
    summary_get(val, job);
    return 1;
}

static int read_totals(ac_txn_t *t, ac_jobs_totals_t *out, ac_err_t *err)
{
    const void *val;
    size_t vlen = 0;
    memset(out, 0, sizeof *out);
    int found = ac_txn_get(t, AC_DB_META, TOTALS_KEY, strlen(TOTALS_KEY), &val, &vlen, err);
    if (found <= 0 || vlen != TOTALS_LEN)
        return found < 0 ? -1 : 0;
    const uint8_t *p = val;
    for (int i = 0; i < AC_JOB_STATUS_COUNT; i++)
        out->by_status[i] = (int64_t)ac_be64_get(p + 8 * i);
    out->iterations = (int64_t)ac_be64_get(p + 8 * AC_JOB_STATUS_COUNT);
    out->trajectories = (int64_t)ac_be64_get(p + 8 * (AC_JOB_STATUS_COUNT + 1));
    return 1;
}

static int write_totals(ac_txn_t *t, const ac_jobs_totals_t *tot, ac_err_t *err)
{
    uint8_t buf[TOTALS_LEN];
    for (int i = 0; i < AC_JOB_STATUS_COUNT; i++)
        ac_be64_put(buf + 8 * i, (uint64_t)tot->by_status[i]);
    ac_be64_put(buf + 8 * AC_JOB_STATUS_COUNT, (uint64_t)tot->iterations);
    ac_be64_put(buf + 8 * (AC_JOB_STATUS_COUNT + 1), (uint64_t)tot->trajectories);
    return ac_txn_put(t, AC_DB_META, TOTALS_KEY, strlen(TOTALS_KEY), buf, sizeof buf, err);
}

/* Replaces the job's summary with `now` (NULL: removes it) and moves the totals by the change.
 * Without totals (a data directory whose totals could not be counted yet) only the summary is
 * written: the next open counts them. */
static int account(ac_txn_t *t, const char *id, const ac_job_t *now, ac_err_t *err)
{
    ac_job_t before;
    ac_jobs_totals_t tot;
    char key[64];
    size_t klen = meta_key(key, "sum", id);
    int had = read_summary(t, id, &before, err), kept = read_totals(t, &tot, err);
    if (had < 0 || kept < 0)
        return -1;
    if (had)
        ac_jobs_totals_add(&tot, &before, -1);
    if (now != NULL)
        ac_jobs_totals_add(&tot, now, 1);
    uint8_t s[SUMMARY_LEN];
    if (now != NULL)
        summary_put(s, now);
    int rc = now != NULL ? ac_txn_put(t, AC_DB_META, key, klen, s, sizeof s, err)
                         : ac_txn_del(t, AC_DB_META, key, klen, err) < 0 ? -1 : 0;
    return rc || (kept && write_totals(t, &tot, err)) ? -1 : 0;
}

static int lmdb_get(ac_jobs_txn_t *x, const char *id, ac_job_t *out, ac_err_t *err);

/* The job's summary, from its record when it has none yet. 1, 0 (no such job) or -1. */
static int job_summary(ac_txn_t *t, const char *id, ac_job_t *s, ac_err_t *err)
{
    int found = read_summary(t, id, s, err);
    if (found != 0)
        return found;
    lmdb_txn_t lt = {{NULL}, t};
    ac_job_t job;
    if ((found = lmdb_get(&lt.base, id, &job, err)) != 1)
        return found;
    memset(s, 0, sizeof *s);
    s->status = job.status;
    s->current_iteration = job.current_iteration;
    s->trajectories_generated = job.trajectories_generated;
    s->cost_micro = job.cost_micro;
    s->budget_micro = job.budget_micro;
    ac_job_free(&job);
    return 1;
}

/* ---- job records ---------------------------------------------------------------------------------- */

static int lmdb_get(ac_jobs_txn_t *x, const char *id, ac_job_t *out, ac_err_t *err)
{
    json_t *rec = NULL;
    int found = get_json(TXN(x), AC_DB_JOBS, id, strlen(id), &rec, err);
    if (found <= 0)
        return found;
    int rc = ac_job_from_json(rec, out, err);
    json_decref(rec);
    return rc == 0 ? 1 : -1;
}

static int lmdb_revision(ac_jobs_txn_t *x, const char *id, uint64_t *rev, ac_err_t *err)
{
    char key[64];
    const void *val = NULL;
    size_t vlen = 0;
    int found = ac_txn_get(TXN(x), AC_DB_META, key, meta_key(key, "rev", id), &val, &vlen, err);
    *rev = found == 1 && vlen == 8 ? ac_be64_get(val) : 0;
    return found < 0 ? -1 : found && vlen == 8;
}

typedef struct each_ctx {
    ac_jobs_each_fn fn;
    void *ud;
} each_ctx_t;

static int each_record(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)key;
    each_ctx_t *e = ud;
    json_t *rec = klen == ID ? json_loadb(val, vlen, 0, NULL) : NULL;
    ac_job_t job;
    ac_err_t ignored = AC_ERR_INIT;
    if (rec == NULL || ac_job_from_json(rec, &job, &ignored) != 0) { /* not a job record we can read: skip it */
        json_decref(rec);
        ac_err_clear(&ignored);
        return 0;
    }
    json_decref(rec);
    int rc = e->fn(&job, e->ud, err);
    ac_job_free(&job);
    return rc;
}

static int lmdb_each(ac_jobs_txn_t *x, ac_jobs_each_fn fn, void *ud, ac_err_t *err)
{
    each_ctx_t e = {fn, ud};
    return ac_txn_scan(TXN(x), AC_DB_JOBS, NULL, 0, NULL, 0, each_record, &e, err);
}

static int lmdb_put(ac_jobs_txn_t *x, const ac_job_t *job, ac_err_t *err)
{
    ac_txn_t *t = TXN(x);
    json_t *rec = ac_job_to_json(job);
    int rc = rec ? put_json(t, AC_DB_JOBS, job->id, ID, rec, err)
                 : ac_err_set(err, AC_ERR_INTERNAL, "jobs: cannot encode a record");
    json_decref(rec);
    if (rc != 0)
        return -1;
    /* every change of a job record bumps its revision: readers cache what they rendered */
    char key[64];
    uint64_t rev;
    meta_key(key, "rev", job->id);
    return ac_txn_next_seq(t, key, &rev, err) || account(t, job->id, job, err) ? -1 : 0;
}

static int lmdb_insert(ac_jobs_txn_t *x, const ac_job_t *job, const json_t *data, ac_err_t *err)
{
    uint8_t okey[512];
    if (strlen(job->owner) > 400)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: owner too long");
    return lmdb_put(x, job, err) || put_json(TXN(x), AC_DB_JOB_DATA, job->id, ID, data, err) ||
                   ac_txn_put(TXN(x), AC_DB_OWNER_JOBS, okey, owner_key(okey, job), "", 0, err)
               ? -1
               : 0;
}

static int lmdb_load_data(ac_jobs_txn_t *x, const char *id, json_t **data, ac_err_t *err)
{
    return get_json(TXN(x), AC_DB_JOB_DATA, id, strlen(id), data, err);
}

/* ---- the queue -------------------------------------------------------------------------------------- */

static int lmdb_enqueue(ac_jobs_txn_t *x, ac_job_t *job, ac_err_t *err)
{
    if (job->queue_seq == 0) {
        uint64_t seq;
        if (ac_txn_next_seq(TXN(x), "queue_seq", &seq, err) != 0)
            return -1;
        job->queue_seq = (int64_t)seq;
    }
    uint8_t qkey[8];
    ac_be64_put(qkey, (uint64_t)job->queue_seq);
    return ac_txn_put(TXN(x), AC_DB_QUEUE, qkey, 8, job->id, ID, err);
}

static int lmdb_dequeue(ac_jobs_txn_t *x, const ac_job_t *job, ac_err_t *err)
{
    uint8_t qkey[8];
    ac_be64_put(qkey, (uint64_t)job->queue_seq);
    return ac_txn_del(TXN(x), AC_DB_QUEUE, qkey, 8, err) < 0 ? -1 : 0;
}

typedef struct first_ctx {
    uint8_t key[8];
    size_t klen;
    char id[ID + 1];
    int valid, seen;
} first_ctx_t;

static int first_entry(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)err;
    first_ctx_t *f = ud;
    f->seen = 1;
    f->klen = klen <= 8 ? klen : 8;
    memcpy(f->key, key, f->klen);
    f->valid = klen == 8 && vlen == ID;
    if (f->valid) {
        memcpy(f->id, val, ID);
        f->id[ID] = 0;
    }
    return 1;
}

static int lmdb_take_first(ac_jobs_txn_t *x, char id[AC_UUID_LEN + 1], ac_err_t *err)
{
    for (;;) {
        first_ctx_t f = {{0}, 0, {0}, 0, 0};
        if (ac_txn_scan(TXN(x), AC_DB_QUEUE, NULL, 0, NULL, 0, first_entry, &f, err) != 0)
            return -1;
        if (!f.seen)
            return 0;
        if (ac_txn_del(TXN(x), AC_DB_QUEUE, f.key, f.klen, err) < 0)
            return -1;
        if (f.valid) { /* a malformed entry is dropped on the way */
            memcpy(id, f.id, ID + 1);
            return 1;
        }
    }
}

static size_t lmdb_queued(ac_jobs_txn_t *x)
{
    return ac_txn_count(TXN(x), AC_DB_QUEUE);
}

/* ---- the owner's jobs --------------------------------------------------------------------------------- */

typedef struct owner_scan {
    ac_txn_t *t;
    size_t prefix;
    int64_t committed;
    int status;
    int64_t offset, limit;
    ac_job_list_t *list;
} owner_scan_t;

static int add_commitment(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)val, (void)vlen;
    owner_scan_t *o = ud;
    if (klen != o->prefix + 8 + ID)
        return 0;
    char id[ID + 1];
    memcpy(id, (const char *)key + o->prefix + 8, ID);
    id[ID] = 0;
    ac_job_t s;
    int found = job_summary(o->t, id, &s, err);
    if (found > 0)
        o->committed += ac_job_status_final(s.status) ? s.cost_micro : s.budget_micro;
    return found < 0 ? -1 : 0;
}

static int lmdb_owner_committed(ac_jobs_txn_t *x, const char *owner, int64_t *micro, ac_err_t *err)
{
    size_t olen = strlen(owner);
    owner_scan_t o = {TXN(x), olen + 1, 0, -1, 0, 0, NULL};
    /* the prefix includes the \0 after the owner: "bob" does not match "bobby" */
    int rc = ac_txn_scan(TXN(x), AC_DB_OWNER_JOBS, owner, olen + 1, NULL, 0, add_commitment, &o, err);
    *micro = o.committed;
    return rc;
}

static int list_one(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)val, (void)vlen;
    owner_scan_t *o = ud;
    if (klen != o->prefix + 8 + ID)
        return 0;
    char id[ID + 1];
    memcpy(id, (const char *)key + o->prefix + 8, ID);
    id[ID] = 0;
    ac_job_t s;
    int found = job_summary(o->t, id, &s, err);
    if (found <= 0 || (o->status >= 0 && (int)s.status != o->status))
        return found < 0 ? -1 : 0;
    /* only the page's records are read whole; the others are counted from their summaries */
    if (o->list->total++ < o->offset || (int64_t)o->list->n >= o->limit)
        return 0;
    ac_job_t *jobs = realloc(o->list->jobs, (o->list->n + 1) * sizeof *jobs);
    if (jobs == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
    o->list->jobs = jobs;
    lmdb_txn_t lt = {{NULL}, o->t};
    found = lmdb_get(&lt.base, id, &jobs[o->list->n], err);
    o->list->n += found == 1;
    return found < 0 ? -1 : 0;
}

static int lmdb_list_by_owner(ac_jobs_txn_t *x, const char *owner, int status, int64_t offset, int64_t limit,
                              ac_job_list_t *out, ac_err_t *err)
{
    size_t olen = strlen(owner);
    owner_scan_t o = {TXN(x), olen + 1, 0, status, offset, limit, out};
    return ac_txn_scan_rev(TXN(x), AC_DB_OWNER_JOBS, owner, olen + 1, list_one, &o, err); /* newest first */
}

/* ---- logs and blobs --------------------------------------------------------------------------------- */

static int lmdb_append_event(ac_jobs_txn_t *x, const char *id, int64_t seq, const json_t *event,
                             const json_t *outbox, ac_err_t *err)
{
    ac_txn_t *t = TXN(x);
    uint8_t key[ID + 8];
    memcpy(key, id, ID);
    ac_be64_put(key + ID, (uint64_t)seq);
    if (put_json(t, AC_DB_EVENTS, key, sizeof key, event, err) != 0)
        return -1;
    return outbox != NULL ? ac_hooks_lmdb_push(t, outbox, err) : 0;
}

static int lmdb_put_trajectory(ac_jobs_txn_t *x, const char *id, uint32_t iteration, uint32_t index,
                               const json_t *traj, double reward, int success, ac_err_t *err)
{
    uint8_t key[TRAJ_KEY], summary[9];
    size_t klen = traj_key(key, id, iteration, index);
    memcpy(summary, &reward, 8);
    summary[8] = (uint8_t)(success != 0);
    return put_json(TXN(x), AC_DB_TRAJECTORIES, key, klen, traj, err) ||
                   ac_txn_put(TXN(x), AC_DB_TRAJ_INDEX, key, klen, summary, sizeof summary, err)
               ? -1
               : 0;
}

typedef struct drop_ctx {
    uint32_t to;
    keys_t keys;
} drop_ctx_t;

static int collect_drop(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    drop_ctx_t *d = ud;
    if (klen != TRAJ_KEY || be32_get((const uint8_t *)key + ID) >= d->to)
        return 1;
    return collect_key(key, klen, val, vlen, &d->keys, err);
}

static int lmdb_drop_trajectories(ac_jobs_txn_t *x, const char *id, uint32_t from, uint32_t to, size_t *n,
                                  ac_err_t *err)
{
    uint8_t start[TRAJ_KEY];
    traj_key(start, id, from, 0);
    drop_ctx_t d = {to, {0}};
    int rc = ac_txn_scan(TXN(x), AC_DB_TRAJ_INDEX, id, ID, start, TRAJ_KEY, collect_drop, &d, err);
    *n = d.keys.n;
    size_t off = 0;
    for (size_t i = 0; rc == 0 && i < d.keys.n; off += TRAJ_KEY, i++)
        if (ac_txn_del(TXN(x), AC_DB_TRAJECTORIES, d.keys.buf + off, TRAJ_KEY, err) < 0)
            rc = -1;
    if (rc != 0)
        d.keys.n = 0; /* nothing more to delete: del_keys only frees */
    return del_keys(TXN(x), AC_DB_TRAJ_INDEX, &d.keys, err) || rc ? -1 : 0;
}

static size_t ckpt_key(uint8_t key[2 * ID], const char *id, const char *ckpt)
{
    memcpy(key, id, ID);
    memcpy(key + ID, ckpt, ID);
    return 2 * ID;
}

static int lmdb_put_checkpoint(ac_jobs_txn_t *x, const char *id, const char *ckpt, const void *buf, size_t len,
                               ac_err_t *err)
{
    uint8_t key[2 * ID];
    return ac_txn_put(TXN(x), AC_DB_CHECKPOINTS, key, ckpt_key(key, id, ckpt), buf, len, err);
}

static int lmdb_del_checkpoint(ac_jobs_txn_t *x, const char *id, const char *ckpt, ac_err_t *err)
{
    uint8_t key[2 * ID];
    return ac_txn_del(TXN(x), AC_DB_CHECKPOINTS, key, ckpt_key(key, id, ckpt), err) < 0 ? -1 : 0;
}

static int lmdb_get_checkpoint(ac_jobs_txn_t *x, const char *id, const char *ckpt, uint8_t **buf, size_t *len,
                               ac_err_t *err)
{
    uint8_t key[2 * ID];
    const void *val;
    size_t vlen = 0;
    int found = ac_txn_get(TXN(x), AC_DB_CHECKPOINTS, key, ckpt_key(key, id, ckpt), &val, &vlen, err);
    if (found <= 0)
        return found;
    if ((*buf = malloc(vlen ? vlen : 1)) == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
    memcpy(*buf, val, vlen);
    *len = vlen;
    return 1;
}

static int lmdb_put_metrics(ac_jobs_txn_t *x, const char *id, uint32_t iteration, const json_t *row, ac_err_t *err)
{
    uint8_t key[METRICS_KEY];
    return put_json(TXN(x), AC_DB_METRICS, key, metrics_key(key, id, iteration), row, err);
}

static int lmdb_drop_metrics(ac_jobs_txn_t *x, const char *id, uint32_t from, ac_err_t *err)
{
    uint8_t start[METRICS_KEY];
    metrics_key(start, id, from);
    return del_from(TXN(x), AC_DB_METRICS, id, ID, start, sizeof start, err);
}

/* Everything of a job that has ended: its records in every db, its summary (and share of the
 * totals) and its revision. */
static int lmdb_remove(ac_jobs_txn_t *x, const ac_job_t *job, ac_err_t *err)
{
    ac_txn_t *t = TXN(x);
    static const int per_job[] = {AC_DB_EVENTS, AC_DB_TRAJECTORIES, AC_DB_TRAJ_INDEX, AC_DB_CHECKPOINTS,
                                  AC_DB_METRICS};
    uint8_t okey[512];
    char rkey[64];
    const void *val;
    size_t vlen = 0;
    uint8_t qkey[8];
    ac_be64_put(qkey, (uint64_t)job->queue_seq);
    /* a queue entry left by a cancel or failure is removed only if it is still this job's */
    int queued = ac_txn_get(t, AC_DB_QUEUE, qkey, 8, &val, &vlen, err);
    if (queued < 0 ||
        (queued && vlen == ID && memcmp(val, job->id, ID) == 0 && ac_txn_del(t, AC_DB_QUEUE, qkey, 8, err) < 0))
        return -1;
    for (size_t i = 0; i < sizeof per_job / sizeof per_job[0]; i++)
        if (del_from(t, per_job[i], job->id, ID, NULL, 0, err) != 0)
            return -1;
    if (ac_txn_del(t, AC_DB_JOBS, job->id, ID, err) < 0 || ac_txn_del(t, AC_DB_JOB_DATA, job->id, ID, err) < 0 ||
        ac_txn_del(t, AC_DB_OWNER_JOBS, okey, owner_key(okey, job), err) < 0 ||
        ac_txn_del(t, AC_DB_META, rkey, meta_key(rkey, "rev", job->id), err) < 0)
        return -1;
    return account(t, job->id, NULL, err);
}

/* ---- pages ------------------------------------------------------------------------------------------ */

typedef struct page_ctx {
    int64_t limit;
    ac_jobs_page_t *page;
    size_t klen; /* the keys of this db */
} page_ctx_t;

/* One row of an events or metrics page: parsed into items until limit, then "more". */
static int page_row(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)err;
    page_ctx_t *p = ud;
    if (klen != p->klen)
        return 0;
    if ((int64_t)json_array_size(p->page->items) == p->limit) {
        p->page->more = 1;
        return 1;
    }
    json_t *row = json_loadb(val, vlen, 0, NULL);
    if (row != NULL)
        json_array_append_new(p->page->items, row);
    if (klen == ID + 8) /* an event: the cursor is its seq */
        p->page->next = (int64_t)ac_be64_get((const uint8_t *)key + ID);
    return 0;
}

static int lmdb_events_page(ac_jobs_txn_t *x, const char *id, int64_t after, int64_t limit, ac_jobs_page_t *out,
                            ac_err_t *err)
{
    uint8_t start[ID + 8];
    memcpy(start, id, ID);
    ac_be64_put(start + ID, (uint64_t)after + 1);
    out->items = json_array();
    out->next = after;
    page_ctx_t p = {limit, out, ID + 8};
    return ac_txn_scan(TXN(x), AC_DB_EVENTS, id, ID, start, sizeof start, page_row, &p, err);
}

static int lmdb_metrics_page(ac_jobs_txn_t *x, const char *id, uint32_t from, int64_t limit, ac_jobs_page_t *out,
                             ac_err_t *err)
{
    uint8_t start[METRICS_KEY];
    metrics_key(start, id, from);
    out->items = json_array();
    page_ctx_t p = {limit, out, METRICS_KEY};
    if (ac_txn_scan(TXN(x), AC_DB_METRICS, id, ID, start, sizeof start, page_row, &p, err) != 0)
        return -1;
    json_t *last = json_array_get(out->items, json_array_size(out->items) - 1);
    out->next = out->more ? json_integer_value(json_object_get(last, "iteration")) + 1 : 0;
    return 0;
}

typedef struct export_ctx {
    const ac_export_filter_t *f;
    int64_t offset, limit, total;
    keys_t keys; /* the page's, in order */
} export_ctx_t;

static int export_match(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    export_ctx_t *x = ud;
    if (klen != TRAJ_KEY || vlen != 9)
        return 0;
    double reward;
    memcpy(&reward, val, 8);
    int success = ((const uint8_t *)val)[8];
    if ((x->f->success_only && !success) || (x->f->has_min_reward && !(reward >= x->f->min_reward)))
        return 0;
    /* only the summaries are read while counting: the page's records are fetched afterwards */
    int in_page = x->total >= x->offset && (int64_t)x->keys.n < x->limit;
    x->total++;
    return in_page ? collect_key(key, klen, val, vlen, &x->keys, err) : 0;
}

static int lmdb_export_page(ac_jobs_txn_t *x, const char *id, const ac_export_filter_t *f, int64_t offset,
                            int64_t limit, ac_jobs_page_t *out, ac_err_t *err)
{
    export_ctx_t e = {f, offset, limit, 0, {0}};
    int rc = ac_txn_scan(TXN(x), AC_DB_TRAJ_INDEX, id, ID, NULL, 0, export_match, &e, err);
    out->items = rc == 0 ? json_array() : NULL;
    out->total = e.total;
    for (size_t i = 0; out->items != NULL && rc == 0 && i < e.keys.n; i++) {
        json_t *traj = NULL;
        if (get_json(TXN(x), AC_DB_TRAJECTORIES, e.keys.buf + i * TRAJ_KEY, TRAJ_KEY, &traj, err) != 1)
            rc = err->code ? -1 : ac_err_set(err, AC_ERR_INTERNAL, "export: a trajectory's record is missing");
        else
            json_array_append_new(out->items, traj);
    }
    out->more = offset + (int64_t)json_array_size(out->items) < e.total;
    free(e.keys.buf);
    free(e.keys.len);
    return rc;
}

static int count_job(const ac_job_t *job, void *ud, ac_err_t *err)
{
    (void)err;
    ac_jobs_totals_add(ud, job, 1);
    return 0;
}

static int lmdb_totals(ac_jobs_txn_t *x, ac_jobs_totals_t *out, ac_err_t *err)
{
    int kept = read_totals(TXN(x), out, err);
    if (kept != 0)
        return kept < 0 ? -1 : 0;
    memset(out, 0, sizeof *out); /* not counted yet (ac_jobs_open_lmdb could not write): count now */
    return lmdb_each(x, count_job, out, err);
}

static const ac_jobs_ops_t lmdb_ops = {
    .name = "lmdb",
    .close = lmdb_close,
    .degraded = lmdb_degraded,
    .probe = lmdb_probe,
    .write = lmdb_write,
    .read = lmdb_read,
    .get = lmdb_get,
    .revision = lmdb_revision,
    .each = lmdb_each,
    .each_recoverable = lmdb_each, /* one process: every running job was this process's */
    .insert = lmdb_insert,
    .put = lmdb_put,
    .remove = lmdb_remove,
    .load_data = lmdb_load_data,
    .owner_committed = lmdb_owner_committed,
    .enqueue = lmdb_enqueue,
    .dequeue = lmdb_dequeue,
    .take_first = lmdb_take_first,
    .queued = lmdb_queued,
    .append_event = lmdb_append_event,
    .put_trajectory = lmdb_put_trajectory,
    .drop_trajectories = lmdb_drop_trajectories,
    .put_checkpoint = lmdb_put_checkpoint,
    .del_checkpoint = lmdb_del_checkpoint,
    .get_checkpoint = lmdb_get_checkpoint,
    .put_metrics = lmdb_put_metrics,
    .drop_metrics = lmdb_drop_metrics,
    .list_by_owner = lmdb_list_by_owner,
    .events_page = lmdb_events_page,
    .export_page = lmdb_export_page,
    .metrics_page = lmdb_metrics_page,
    .totals = lmdb_totals,
};

/* ---- opening: a data directory from before the totals gets them counted once ------------------------ */

typedef struct build_ctx {
    ac_txn_t *t;
    ac_jobs_totals_t tot;
} build_ctx_t;

static int summarise(const ac_job_t *job, void *ud, ac_err_t *err)
{
    build_ctx_t *b = ud;
    char key[64];
    uint8_t s[SUMMARY_LEN];
    summary_put(s, job);
    ac_jobs_totals_add(&b->tot, job, 1);
    return ac_txn_put(b->t, AC_DB_META, key, meta_key(key, "sum", job->id), s, sizeof s, err);
}

static int has_totals_txn(ac_jobs_txn_t *x, void *ud, ac_err_t *err)
{
    ac_jobs_totals_t tot;
    int found = read_totals(TXN(x), &tot, err);
    *(int *)ud = found;
    return found < 0 ? -1 : 0;
}

/* Every job's summary written afresh, and the totals they add up to. */
static int build_totals_txn(ac_jobs_txn_t *x, void *ud, ac_err_t *err)
{
    (void)ud;
    build_ctx_t b = {TXN(x), {{0}, 0, 0}};
    return lmdb_each(x, summarise, &b, err) || write_totals(TXN(x), &b.tot, err) ? -1 : 0;
}

ac_jobs_t *ac_jobs_open_lmdb(ac_store_t *store, ac_err_t *err)
{
    lmdb_jobs_t *j = calloc(1, sizeof *j);
    if (j == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
        return NULL;
    }
    j->base.ops = &lmdb_ops;
    j->store = store;
    int has = 0;
    if (lmdb_read(&j->base, has_totals_txn, &has, err) != 0) {
        free(j);
        return NULL;
    }
    ac_err_t e = AC_ERR_INIT;
    if (!has && lmdb_write(&j->base, 0, build_totals_txn, NULL, &e) != 0) /* a full disk: the next open */
        fprintf(stderr, "agentcore: jobs: cannot count the totals yet: %s\n", e.message);
    ac_err_clear(&e);
    return &j->base;
}
