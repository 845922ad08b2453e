/* training.get_status and the cache of its answers (status.h). */
#include "service/status.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/train_config.h"
#include "service/app.h"
#include "service/handlers.h"
#include "store/jobs.h"

/* Direct-mapped slots with striped locks; a slot holds one job's answer. */
#define STATUS_SLOTS 1024
#define STATUS_LOCKS 64

typedef struct status_slot {
    char id[AC_UUID_LEN + 1];
    uint64_t rev;
    char *owner;
    char *text;
    size_t len;
} status_slot_t;

struct ac_status_cache {
    status_slot_t slots[STATUS_SLOTS];
    pthread_mutex_t locks[STATUS_LOCKS];
};

ac_status_cache_t *ac_status_cache_create(void)
{
    ac_status_cache_t *c = calloc(1, sizeof *c);
    for (int i = 0; c != NULL && i < STATUS_LOCKS; i++)
        pthread_mutex_init(&c->locks[i], NULL);
    return c;
}

void ac_status_cache_destroy(ac_status_cache_t *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < STATUS_SLOTS; i++) {
        free(c->slots[i].owner);
        free(c->slots[i].text);
    }
    for (int i = 0; i < STATUS_LOCKS; i++)
        pthread_mutex_destroy(&c->locks[i]);
    free(c);
}

static size_t slot_of(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return (size_t)(h % STATUS_SLOTS);
}

/* A copy of the cached answer when the slot holds this job at this revision and the caller may
 * see it: 1, or 0 (miss), or -1 (the job is someone else's). */
static int cached(ac_status_cache_t *c, const ac_call_ctx_t *ctx, size_t slot, const char *id, uint64_t rev,
                  char **text, size_t *len)
{
    status_slot_t *s = &c->slots[slot];
    pthread_mutex_t *lock = &c->locks[slot % STATUS_LOCKS];
    int ret = 0;
    pthread_mutex_lock(lock);
    if (s->text != NULL && strcmp(s->id, id) == 0 && (rev == 0 || s->rev == rev)) {
        if (!ac_app_may_see(ctx, s->owner))
            ret = -1;
        else if ((*text = malloc(s->len + 1)) != NULL) {
            memcpy(*text, s->text, s->len + 1);
            *len = s->len;
            ret = 1;
        }
    }
    pthread_mutex_unlock(lock);
    return ret;
}

static uint64_t known_rev(ac_status_cache_t *c, size_t slot, const char *id)
{
    if (c == NULL)
        return 0;
    pthread_mutex_t *lock = &c->locks[slot % STATUS_LOCKS];
    pthread_mutex_lock(lock);
    uint64_t rev = strcmp(c->slots[slot].id, id) == 0 ? c->slots[slot].rev : 0;
    pthread_mutex_unlock(lock);
    return rev;
}

static void store(ac_status_cache_t *c, size_t slot, const ac_job_t *job, uint64_t rev, const char *text, size_t len)
{
    char *t = malloc(len + 1), *o = strdup(job->owner ? job->owner : "");
    if (t == NULL || o == NULL) {
        free(t);
        free(o);
        return;
    }
    memcpy(t, text, len + 1);
    status_slot_t *s = &c->slots[slot];
    pthread_mutex_t *lock = &c->locks[slot % STATUS_LOCKS];
    pthread_mutex_lock(lock);
    free(s->text);
    free(s->owner);
    memcpy(s->id, job->id, sizeof s->id);
    s->rev = rev;
    s->owner = o;
    s->text = t;
    s->len = len;
    pthread_mutex_unlock(lock);
}

/* ---- the answer ---------------------------------------------------------------------------------- */

static json_t *metric_or_null(const json_t *metrics, const char *name)
{
    json_t *v = json_object_get(metrics, name);
    return v != NULL ? json_incref(v) : json_null();
}

static json_t *time_or_null(int64_t ms)
{
    char ts[40];
    return ms > 0 ? json_string(ac_clock_iso8601(ts, sizeof ts, ms, 0)) : json_null();
}

static void set_time(json_t *r, const char *key, int64_t ms)
{
    if (ms > 0)
        json_object_set_new(r, key, time_or_null(ms));
}

/* Beyond the API's own fields: what users of such services look for, when the job has it. */
static void add_extras(json_t *r, const ac_job_t *job)
{
    if (job->config.seed > 0) /* what reruns the job exactly */
        json_object_set_new(r, "seed", json_integer(job->config.seed));
    set_time(r, "created_at", job->created_ms);
    set_time(r, "finished_at", job->finished_ms);
    set_time(r, "cancelled_at", job->cancelled_ms);
    if (job->cancel_reason != NULL)
        json_object_set_new(r, "cancel_reason", json_string(job->cancel_reason));
    if (job->error != NULL)
        json_object_set_new(r, "error", json_string(job->error));
    if (job->latest_checkpoint[0] != '\0')
        json_object_set_new(r, "latest_checkpoint_id", json_string(job->latest_checkpoint));
    int ran = job->started_ms > 0; /* the counters of a job that has run */
    if (ran)
        json_object_set_new(r, "trajectories_stored", json_integer(job->trajectories_stored));
    if (job->oldest_iteration > 0)
        json_object_set_new(r, "oldest_iteration", json_integer(job->oldest_iteration));
    if (ran) {
        json_object_set_new(r, "plugin_failures", json_integer(job->plugin_failures));
        json_object_set_new(r, "episodes", json_integer(job->episodes));
    }
    if (job->crashes > 0)
        json_object_set_new(r, "crashes", json_integer(job->crashes));
    if (job->init_checkpoint[0] != '\0') /* fine-tunes that checkpoint (start_grpo's init_checkpoint) */
        json_object_set_new(r, "init_checkpoint_id", json_string(job->init_checkpoint));
    if (job->imported)
        json_object_set_new(r, "imported", json_true());
    if (job->inference_cost_micro != 0) /* agents.run episodes, part of cost_usd */
        json_object_set_new(r, "inference_cost_usd", json_real((double)job->inference_cost_micro / 1e6));
}

/* The status answer, rendered from the record alone (so that it can be cached per revision). */
static json_t *render(const ac_job_t *job)
{
    int64_t cur = job->current_iteration, total = job->total_iterations;
    int64_t cost = job->cost_micro, budget = job->budget_micro;
    char cost_s[32], budget_s[32];
    double remaining = budget > 0 ? 100.0 * (double)(budget - cost) / (double)budget : 0.0;
    /* the four metrics the API names first, then every other metric the engine reports */
    json_t *m = json_pack("{s:o, s:o, s:o, s:I}", "train_loss", metric_or_null(job->metrics, "train_loss"),
                          "validation_accuracy", metric_or_null(job->metrics, "validation_accuracy"), "avg_reward",
                          metric_or_null(job->metrics, "avg_reward"), "trajectories_generated",
                          (json_int_t)job->trajectories_generated);
    json_object_update_missing(m, job->metrics);
    json_t *r = json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:o, s:s, s:s, s:f, s:o, s:o, s:o}", "job_id", job->id,
                          "agent_id", job->agent_id, "status", ac_job_status_name(job->status), "current_iteration",
                          (json_int_t)cur, "total_iterations", (json_int_t)total, "progress_percent",
                          total > 0 ? round(1000.0 * (double)cur / (double)total) / 10.0 : 0.0, "metrics", m,
                          "cost_usd", ac_micro_to_usd_str(cost_s, sizeof cost_s, cost), "budget_usd",
                          ac_micro_to_usd_str(budget_s, sizeof budget_s, budget), "budget_remaining_percent",
                          round(remaining * 10.0) / 10.0, "started_at", time_or_null(job->started_ms),
                          "estimated_completion", time_or_null(job->eta_ms), "best_checkpoint_id",
                          job->best_checkpoint[0] ? json_string(job->best_checkpoint) : json_null());
    if (r != NULL)
        add_extras(r, job);
    return r;
}

/* get_status while the store is degraded, or for a job whose failure is not written yet: the
 * record on disk says less than the truth, so the answer adds it (and is not cached). A job not
 * ended gets store_error: it cannot make progress. One whose failure could not be written shows
 * failed with its error and error_saved: false. */
static int answer_degraded(ac_call_ctx_t *ctx, const char *id, const char *cause, json_t **result, ac_err_t *err)
{
    ac_job_t job;
    if (ac_app_load_job(ctx, id, &job, err) != 0)
        return -1;
    json_t *r = render(&job);
    char failure[256];
    if (r != NULL && !ac_job_status_final(job.status)) {
        if (ac_jobs_unwritten_failure(id, failure, sizeof failure)) {
            json_object_set_new(r, "status", json_string(ac_job_status_name(AC_JOB_FAILED)));
            json_object_set_new(r, "error", json_string(failure));
            json_object_set_new(r, "error_saved", json_false());
        }
        if (cause[0] != '\0')
            json_object_set_new(r, "store_error", json_string(cause));
    }
    ac_job_free(&job);
    if (r == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "cannot build the status");
    *result = r;
    return 0;
}

/* The record when it changed since the cached answer, or the cached answer itself (ctx->raw_result):
 * 1 (*job read), 2 (answered from the cache), 0 (no job the caller may see), -1. */
static int lookup(ac_call_ctx_t *ctx, const char *id, size_t slot, uint64_t *rev, ac_job_t *job, ac_err_t *err)
{
    ac_status_cache_t *cache = ac_app_of(ctx)->status;
    int rc = ac_jobs_get_if_changed(ac_app_of(ctx)->jobs, id, known_rev(cache, slot, id), rev, job, err);
    if (rc == 2) { /* unchanged since it was rendered */
        int hit = cache != NULL ? cached(cache, ctx, slot, id, *rev, &ctx->raw_result, &ctx->raw_len) : 0;
        if (hit != 0)
            return hit > 0 ? 2 : 0;
        rc = ac_jobs_get_if_changed(ac_app_of(ctx)->jobs, id, 0, rev, job, err); /* evicted meanwhile */
    }
    if (rc == 1 && !ac_app_may_see(ctx, job->owner)) {
        ac_job_free(job);
        return 0;
    }
    return rc;
}

int ac_method_training_get_status(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    const char *id = json_string_value(json_object_get(params, "job_id"));
    char cause[256] = "", failure[8];
    if (ac_jobs_degraded(ac_app_of(ctx)->jobs, cause, sizeof cause) ||
        ac_jobs_unwritten_failure(id, failure, sizeof failure))
        return answer_degraded(ctx, id, cause, result, err);
    size_t slot = slot_of(id);
    uint64_t rev = 0;
    ac_job_t job;
    int rc = lookup(ctx, id, slot, &rev, &job, err);
    if (rc <= 0 || rc == 2)
        return rc < 0 ? -1 : rc == 2 ? 0 : ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no job %s", id);
    json_t *r = render(&job);
    char *text = r ? json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(r);
    if (text != NULL && rev > 0 && ac_app_of(ctx)->status != NULL)
        store(ac_app_of(ctx)->status, slot, &job, rev, text, strlen(text));
    ac_job_free(&job);
    if (text == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "cannot build the status");
    ctx->raw_result = text;
    ctx->raw_len = strlen(text);
    return 0;
}
