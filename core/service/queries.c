/* The job methods that read the jobs store (and cancel, which waits on it): each checks that
 * the caller may see the job, asks one query of store/jobs.h and renders the answer. Their
 * parameters' ranges and defaults are the method table's (methods.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "engine/finetune.h"
#include "lua/plugin.h"
#include "service/app.h"
#include "service/handlers.h"
#include "service/workers.h"
#include "store/jobs.h"

static const char *job_id_of(json_t *params)
{
    return json_string_value(json_object_get(params, "job_id"));
}

/* 0 when the caller may see the job (it is then not kept), else -1 with "not found". */
static int check_visible(ac_call_ctx_t *ctx, const char *id, ac_err_t *err)
{
    ac_job_t job;
    if (ac_app_load_job(ctx, id, &job, err) != 0)
        return -1;
    ac_job_free(&job);
    return 0;
}

static json_t *time_or_null(int64_t ms)
{
    char ts[40];
    return ms > 0 ? json_string(ac_clock_iso8601(ts, sizeof ts, ms, 0)) : json_null();
}

/* ---- training.cancel ------------------------------------------------------------------------------ */

#define CANCEL_WAIT_MS 30000

int ac_method_training_cancel(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    ac_app_t *app = ac_app_of(ctx);
    const char *id = job_id_of(params);
    ac_job_t job;
    if (check_visible(ctx, id, err) != 0 ||
        ac_jobs_cancel(app->jobs, id, json_string_value(json_object_get(params, "reason")), ac_clock_now_ms(), &job,
                       err) != 0)
        return -1;
    ac_workers_interrupt(app->workers, id); /* a running job stops at its next step */
    /* A running job stops at its next safe point (between iterations) and saves a checkpoint:
     * this call runs on an RPC worker, so it can wait for that and report it. */
    int64_t deadline = ac_clock_mono_ns() + (int64_t)CANCEL_WAIT_MS * 1000000;
    while (!ac_job_status_final(job.status) && ac_clock_mono_ns() < deadline) {
        usleep(20000);
        ac_job_free(&job);
        if (ac_jobs_get(app->jobs, id, &job, err) != 1)
            return -1;
    }
    int saved = job.latest_checkpoint[0] != '\0' && job.status == AC_JOB_CANCELLED;
    *result = json_pack("{s:s, s:s, s:o, s:I, s:b, s:o}", "job_id", id, "status",
                        ac_job_status_final(job.status) ? ac_job_status_name(job.status) : "cancelling",
                        "cancelled_at", time_or_null(job.cancelled_ms), "iterations_completed",
                        (json_int_t)job.current_iteration, "checkpoint_saved", saved, "checkpoint_id",
                        saved ? json_string(job.latest_checkpoint) : json_null());
    ac_job_free(&job);
    return 0;
}

/* ---- training.export_trajectories ------------------------------------------------------------------ */

/* The job's agent's declarations, from its plugin: the tools an openai_chat record lists. */
static int job_agent_decl(ac_call_ctx_t *ctx, const char *id, ac_agent_decl_t *d, ac_err_t *err)
{
    ac_job_t job;
    if (ac_app_load_job(ctx, id, &job, err) != 0)
        return -1;
    int rc = ac_app_job_agent_decl(ctx, &job, "format", d, err);
    ac_job_free(&job);
    return rc;
}

/* The page as JSON Lines: each trajectory as it is (jsonl), or as a chat transcript (openai_chat,
 * engine/finetune.h). A malloc'd string, NULL on memory. */
static char *page_lines(const json_t *items, const ac_agent_decl_t *d)
{
    json_t *tools = d ? ac_chat_tools(d) : NULL;
    size_t len = 0, cap = 4096, i;
    char *out = malloc(cap);
    json_t *t;
    json_array_foreach(items, i, t)
    {
        if (out == NULL)
            break;
        json_t *rec = d ? ac_chat_record(t, d, tools) : json_incref(t);
        char *line = rec ? json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
        json_decref(rec);
        size_t n = line ? strlen(line) : 0;
        char *grown = out;
        if (line != NULL && len + n + 2 > cap) {
            cap = 2 * (len + n + 2);
            grown = realloc(out, cap);
        }
        if (line == NULL || grown == NULL) {
            free(line);
            free(out);
            out = NULL;
            break;
        }
        out = grown;
        memcpy(out + len, line, n);
        len += n;
        out[len++] = '\n';
        free(line);
    }
    if (out != NULL)
        out[len] = '\0';
    json_decref(tools);
    return out;
}

int ac_method_training_export_trajectories(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    const char *id = job_id_of(params);
    const char *format = json_string_value(json_object_get(params, "format"));
    json_t *jm = json_object_get(params, "min_reward");
    ac_export_filter_t f = {json_is_true(json_object_get(params, "success_only")), jm != NULL,
                            jm ? json_number_value(jm) : 0.0};
    ac_jobs_page_t page;
    ac_agent_decl_t decl;
    int chat = format != NULL && strcmp(format, "openai_chat") == 0;
    int lines = chat || (format != NULL && strcmp(format, "jsonl") == 0);
    if (check_visible(ctx, id, err) != 0 || (chat && job_agent_decl(ctx, id, &decl, err) != 0))
        return -1;
    if (ac_jobs_export_page(ac_app_of(ctx)->jobs, id, &f, json_integer_value(json_object_get(params, "offset")),
                            json_integer_value(json_object_get(params, "limit")), &page, err) != 0) {
        if (chat)
            ac_agent_decl_free(&decl);
        return -1;
    }
    char *text = lines ? page_lines(page.items, chat ? &decl : NULL) : NULL;
    if (chat)
        ac_agent_decl_free(&decl);
    if (lines && text == NULL) {
        ac_jobs_page_free(&page);
        return ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
    }
    *result = json_pack("{s:s, s:s, s:I, s:I, s:b}", "job_id", id, "format", format ? format : "json", "total_count",
                        (json_int_t)page.total, "returned_count", (json_int_t)json_array_size(page.items),
                        "has_more", page.more);
    if (lines)
        json_object_set_new(*result, "jsonl", json_string(text));
    else
        json_object_set(*result, "trajectories", page.items);
    free(text);
    ac_jobs_page_free(&page);
    return 0;
}

/* ---- training.get_metrics ---------------------------------------------------------------------------- */

int ac_method_training_get_metrics(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    const char *id = job_id_of(params);
    ac_jobs_page_t page;
    if (check_visible(ctx, id, err) != 0 ||
        ac_jobs_metrics_page(ac_app_of(ctx)->jobs, id, (uint32_t)json_integer_value(json_object_get(params,
                                                                                                   "from_iteration")),
                             json_integer_value(json_object_get(params, "limit")), &page, err) != 0)
        return -1;
    *result = json_pack("{s:s, s:O, s:I, s:o, s:b}", "job_id", id, "metrics", page.items, "returned_count",
                        (json_int_t)json_array_size(page.items), "next_from_iteration",
                        page.more ? json_integer(page.next) : json_null(), "has_more", page.more);
    ac_jobs_page_free(&page);
    return 0;
}

/* ---- training.list_jobs, list_checkpoints, list_events ---------------------------------------------- */

int ac_method_training_list_jobs(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    ac_job_status_t status;
    int filter = ac_job_status_parse(json_string_value(json_object_get(params, "status")), &status) == 0
                     ? (int)status
                     : -1; /* the table admits only status names */
    int64_t offset = json_integer_value(json_object_get(params, "offset"));
    ac_job_list_t l;
    if (ac_jobs_list_by_owner(ac_app_of(ctx)->jobs, ctx->principal->sub, filter, offset,
                              json_integer_value(json_object_get(params, "limit")), &l, err) != 0)
        return -1;
    json_t *jobs = json_array();
    char created[40], cost[32], budget[32];
    for (size_t i = 0; i < l.n; i++) {
        const ac_job_t *j = &l.jobs[i];
        /* cost and budget as get_status shows them: a jobs list (the dashboard's) needs no call per job */
        json_array_append_new(jobs, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "job_id", j->id, "agent_id",
                                              j->agent_id, "status", ac_job_status_name(j->status), "created_at",
                                              ac_clock_iso8601(created, sizeof created, j->created_ms, 0),
                                              "current_iteration", (json_int_t)j->current_iteration,
                                              "total_iterations", (json_int_t)j->total_iterations, "cost_usd",
                                              ac_micro_to_usd_str(cost, sizeof cost, j->cost_micro), "budget_usd",
                                              ac_micro_to_usd_str(budget, sizeof budget, j->budget_micro)));
    }
    *result = json_pack("{s:o, s:I, s:I, s:b}", "jobs", jobs, "total_count", (json_int_t)l.total, "returned_count",
                        (json_int_t)l.n, "has_more", offset + (int64_t)l.n < l.total);
    ac_job_list_free(&l);
    return 0;
}

int ac_method_training_list_checkpoints(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    ac_job_t job;
    if (ac_app_load_job(ctx, job_id_of(params), &job, err) != 0)
        return -1;
    json_t *out = json_array();
    char created[40];
    for (size_t i = 0; i < job.n_checkpoints; i++) {
        const ac_job_checkpoint_t *c = &job.checkpoints[i];
        json_array_append_new(
            out, json_pack("{s:s, s:I, s:o, s:s, s:b, s:b}", "checkpoint_id", c->id, "iteration",
                           (json_int_t)c->iteration, "validation_accuracy",
                           isnan(c->validation_accuracy) ? json_null() : json_real(c->validation_accuracy),
                           "created_at", ac_clock_iso8601(created, sizeof created, c->created_ms, 0), "is_best",
                           strcmp(job.best_checkpoint, c->id) == 0, "is_latest",
                           strcmp(job.latest_checkpoint, c->id) == 0));
    }
    *result = json_pack("{s:s, s:o, s:o}", "job_id", job.id, "checkpoints", out, "best_checkpoint_id",
                        job.best_checkpoint[0] ? json_string(job.best_checkpoint) : json_null());
    ac_job_free(&job);
    return 0;
}

int ac_method_training_list_events(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    const char *id = job_id_of(params);
    ac_jobs_page_t page;
    if (check_visible(ctx, id, err) != 0 ||
        ac_jobs_events_page(ac_app_of(ctx)->jobs, id, json_integer_value(json_object_get(params, "cursor")),
                            json_integer_value(json_object_get(params, "limit")), &page, err) != 0)
        return -1;
    *result = json_pack("{s:s, s:O, s:I, s:b}", "job_id", id, "events", page.items, "next_cursor",
                        (json_int_t)page.next, "has_more", page.more);
    ac_jobs_page_free(&page);
    return 0;
}
