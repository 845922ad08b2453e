/* The jobs store's queries: each in a read transaction (a snapshot) of the backend. */
#include <stdlib.h>
#include <string.h>

#include "store/jobs_backend.h"

#define TOPS(t) ((t)->jobs->ops)

/* A query's arguments and outputs, whichever query it is. */
typedef struct query {
    const char *id;
    const char *owner;
    int status;
    int64_t a, b; /* offset and limit, or after/from and limit */
    const ac_export_filter_t *filter;
    ac_job_list_t *list;
    ac_jobs_page_t *page;
    ac_jobs_totals_t *totals;
    const char *ckpt;
    uint8_t *buf;
    size_t len;
    json_t *data;
} query_t;

static void page_reset(ac_jobs_page_t *p)
{
    json_decref(p->items);
    *p = (ac_jobs_page_t){NULL, -1, 0, 0};
}

void ac_jobs_page_free(ac_jobs_page_t *p)
{
    page_reset(p);
}

void ac_job_list_free(ac_job_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        ac_job_free(&l->jobs[i]);
    free(l->jobs);
    *l = (ac_job_list_t){NULL, 0, 0};
}

static int list_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    query_t *q = ud;
    ac_job_list_free(q->list);
    return TOPS(t)->list_by_owner(t, q->owner, q->status, q->a, q->b, q->list, err);
}

int ac_jobs_list_by_owner(ac_jobs_t *j, const char *owner, int status, int64_t offset, int64_t limit,
                          ac_job_list_t *out, ac_err_t *err)
{
    *out = (ac_job_list_t){NULL, 0, 0};
    query_t q = {.owner = owner, .status = status, .a = offset, .b = limit, .list = out};
    if (j->ops->read(j, list_txn, &q, err) == 0)
        return 0;
    ac_job_list_free(out);
    return -1;
}

static int events_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    query_t *q = ud;
    page_reset(q->page);
    return TOPS(t)->events_page(t, q->id, q->a, q->b, q->page, err);
}

static int export_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    query_t *q = ud;
    page_reset(q->page);
    return TOPS(t)->export_page(t, q->id, q->filter, q->a, q->b, q->page, err);
}

static int metrics_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    query_t *q = ud;
    page_reset(q->page);
    return TOPS(t)->metrics_page(t, q->id, (uint32_t)q->a, q->b, q->page, err);
}

/* Runs a page query; on failure *out holds nothing. */
static int page(ac_jobs_t *j, ac_jobs_txn_fn fn, query_t *q, ac_jobs_page_t *out, ac_err_t *err)
{
    *out = (ac_jobs_page_t){NULL, -1, 0, 0};
    q->page = out;
    if (j->ops->read(j, fn, q, err) == 0 && out->items != NULL)
        return 0;
    page_reset(out);
    return err->code ? -1 : ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
}

int ac_jobs_events_page(ac_jobs_t *j, const char *job_id, int64_t after, int64_t limit, ac_jobs_page_t *out,
                        ac_err_t *err)
{
    query_t q = {.id = job_id, .a = after, .b = limit};
    return page(j, events_txn, &q, out, err);
}

int ac_jobs_export_page(ac_jobs_t *j, const char *job_id, const ac_export_filter_t *f, int64_t offset, int64_t limit,
                        ac_jobs_page_t *out, ac_err_t *err)
{
    query_t q = {.id = job_id, .filter = f, .a = offset, .b = limit};
    return page(j, export_txn, &q, out, err);
}

int ac_jobs_metrics_page(ac_jobs_t *j, const char *job_id, uint32_t from, int64_t limit, ac_jobs_page_t *out,
                         ac_err_t *err)
{
    query_t q = {.id = job_id, .a = from, .b = limit};
    return page(j, metrics_txn, &q, out, err);
}

static int checkpoint_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    query_t *q = ud;
    return TOPS(t)->get_checkpoint(t, q->id, q->ckpt, &q->buf, &q->len, err);
}

int ac_jobs_get_checkpoint(ac_jobs_t *j, const char *job_id, const char *ckpt_id, uint8_t **buf, size_t *len,
                           ac_err_t *err)
{
    if (strlen(ckpt_id) != AC_UUID_LEN)
        return 0;
    query_t q = {.id = job_id, .ckpt = ckpt_id};
    int rc = j->ops->read(j, checkpoint_txn, &q, err);
    if (rc == 1) {
        *buf = q.buf;
        *len = q.len;
    }
    return rc;
}

static int data_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    query_t *q = ud;
    json_decref(q->data);
    q->data = NULL;
    int found = TOPS(t)->load_data(t, q->id, &q->data, err);
    return found < 0 ? -1 : found == 0 ? ac_err_set(err, AC_ERR_NOT_FOUND, "jobs: no data for %s", q->id) : 0;
}

int ac_jobs_load_data(ac_jobs_t *j, const char *job_id, json_t **training, json_t **validation, json_t **evaluation,
                      ac_err_t *err)
{
    query_t q = {.id = job_id};
    if (j->ops->read(j, data_txn, &q, err) != 0) {
        json_decref(q.data);
        return -1;
    }
    *training = json_incref(json_object_get(q.data, "training_data"));
    *validation = json_incref(json_object_get(q.data, "validation_data"));
    *evaluation = json_incref(json_object_get(q.data, "evaluation_data"));
    json_decref(q.data);
    return 0;
}

static int totals_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    query_t *q = ud;
    memset(q->totals, 0, sizeof *q->totals);
    return TOPS(t)->totals(t, q->totals, err);
}

int ac_jobs_totals(ac_jobs_t *j, ac_jobs_totals_t *out, ac_err_t *err)
{
    query_t q = {.totals = out};
    return j->ops->read(j, totals_txn, &q, err);
}

static int count_job(const ac_job_t *job, void *ud, ac_err_t *err)
{
    (void)err;
    ac_jobs_totals_add(ud, job, 1);
    return 0;
}

static int scan_txn(ac_jobs_txn_t *t, void *ud, ac_err_t *err)
{
    query_t *q = ud;
    memset(q->totals, 0, sizeof *q->totals);
    return TOPS(t)->each(t, count_job, q->totals, err);
}

int ac_jobs_totals_scan(ac_jobs_t *j, ac_jobs_totals_t *out, ac_err_t *err)
{
    query_t q = {.totals = out};
    return j->ops->read(j, scan_txn, &q, err);
}
