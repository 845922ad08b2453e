#include "service/training.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#include "service/app.h"
#include "engine/checkpoint.h"
#include "base/clock.h"
#include "engine/eval.h"
#include "store/jobs.h"
#include "lua/lua_host.h"
#include "lua/plugin.h"
#include "service/runner.h"
#include "base/train_config.h"
#include "engine/trainer.h"
#include "base/uuid.h"
#include "service/webhook.h"

static ac_app_t *app_of(ac_call_ctx_t *ctx)
{
    return ctx->app;
}

/* A job is its owner's; training:admin sees every job. */
static int visible_to(ac_call_ctx_t *ctx, const char *owner)
{
    return (owner != NULL && strcmp(owner, ctx->principal->sub) == 0) ||
           ac_principal_has(ctx->principal, AC_PERM_TRAINING_ADMIN);
}

/* Loads a job the caller may see. Another principal's job is "not found": its existence is
 * not revealed. training:admin sees every job. */
static int load_visible_job(ac_call_ctx_t *ctx, const char *job_id, json_t **job, ac_err_t *err)
{
    int found = ac_jobs_get(app_of(ctx)->store, job_id, job, err);
    if (found < 0)
        return -1;
    if (found) {
        if (visible_to(ctx, json_string_value(json_object_get(*job, "owner"))))
            return 0;
        json_decref(*job);
        *job = NULL;
    }
    return ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no job %s", job_id);
}

/* ---- plugins on RPC worker threads -------------------------------------------------------
 * Validators and evaluations run Lua on the RPC worker threads: each call gets a Lua host of its
 * own, dropped when it returns, so that no call sees what another (another principal's) left in
 * a Lua state. Creating one costs well under a millisecond next to the call's own work. */

static ac_lua_host_t *call_host(ac_call_ctx_t *ctx, ac_err_t *err)
{
    const ac_config_t *cfg = app_of(ctx)->cfg;
    return ac_lua_host_create(cfg->lua_dir, cfg->plugins_dir, &cfg->plugin_limits, err);
}

/* ---- training.start_grpo -------------------------------------------------------------------- */

#define MIN_TRAINING_QUERIES 100

/* SPEC.md: -40002 when the data fails validation; data lists every problem with its index and
 * field (the first one also as data.field/data.error, the shape other errors have). */
/* SPEC.md: -40002 when the data fails validation; data lists every problem with its index and
 * field (the first one also as data.field/data.error, the shape other errors have). The validator
 * plugin checks training and one held-out set; validation_data is checked as that set, its
 * problems then named by `held_out` ("validation_data[3].query"). */
static int validate_data(ac_call_ctx_t *ctx, const char *validator, json_t *training, json_t *held, const char *held_out,
                         ac_err_t *err)
{
    ac_lua_host_t *h = call_host(ctx, err);
    if (h == NULL)
        return -1;
    ac_validator_t *v = ac_validator_open(h, validator, err);
    if (v == NULL) { /* the server's plugins are wrong, not the request */
        ac_lua_host_destroy(h);
        err->code = AC_ERR_INTERNAL;
        return -1;
    }
    json_t *problems = NULL;
    int rc = ac_validator_run(v, training, held, MIN_TRAINING_QUERIES, &problems, err);
    ac_validator_close(v);
    ac_lua_host_destroy(h);
    if (rc != 0)
        return -1; /* the validator itself failed: -32603 with its file:line */
    if (json_array_size(problems) == 0) {
        json_decref(problems);
        return 0;
    }
    size_t i;
    json_t *pr;
    json_array_foreach(problems, i, pr) {
        const char *f = json_string_value(json_object_get(pr, "field"));
        if (held_out != NULL && f != NULL && strncmp(f, "evaluation_data", 15) == 0) {
            char renamed[300];
            snprintf(renamed, sizeof renamed, "%s%s", held_out, f + 15);
            json_object_set_new(pr, "field", json_string(renamed));
        }
    }
    json_t *first = json_array_get(problems, 0);
    json_t *field = json_object_get(first, "field"), *error = json_object_get(first, "error");
    ac_err_set(err, AC_ERR_VALIDATION_FAILED, "Training data validation failed: %zu problem(s)",
               json_array_size(problems));
    ac_err_set_data(err, json_pack("{s:O, s:O, s:o}", "field", field ? field : json_null(), "error",
                                   error ? error : json_null(), "problems", problems));
    return -1;
}

static int agent_id_ok(const char *s, size_t len)
{
    if (len == 0 || len > 128)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.' || c == ':'))
            return 0;
    }
    return 1;
}

/* SPEC.md answers start_grpo's invalid parameters with -32600, whoever found the problem. */
static int as_invalid_request(ac_err_t *err)
{
    err->code = AC_ERR_INVALID_REQUEST;
    snprintf(err->message, sizeof err->message, "%s", ac_err_name(AC_ERR_INVALID_REQUEST));
    return -1;
}

/* start_grpo's `webhooks`: [{url, events, secret?}], each signed with its own secret or the
 * server's webhooks.secret. */
static int check_job_webhooks(const ac_config_t *cfg, json_t *hooks, ac_err_t *err)
{
    size_t i;
    json_t *h;
    char field[64];
    if (json_array_size(hooks) > 16)
        return ac_err_field(err, AC_ERR_INVALID_REQUEST, "webhooks", "at most 16 webhooks per job");
    json_array_foreach(hooks, i, h)
    {
        snprintf(field, sizeof field, "webhooks[%zu]", i);
        if (!json_is_object(h))
            return ac_err_field(err, AC_ERR_INVALID_REQUEST, field, "must be {url, events, secret?}");
        json_t *url = json_object_get(h, "url"), *secret = json_object_get(h, "secret");
        snprintf(field, sizeof field, "webhooks[%zu].url", i);
        if (!json_is_string(url))
            return ac_err_field(err, AC_ERR_INVALID_REQUEST, field, "must be a string");
        if (ac_webhook_url_check(cfg, json_string_value(url), field, err) != 0)
            return as_invalid_request(err);
        snprintf(field, sizeof field, "webhooks[%zu].events", i);
        if (ac_webhook_events_check(json_object_get(h, "events"), field, err) != 0)
            return as_invalid_request(err);
        snprintf(field, sizeof field, "webhooks[%zu].secret", i);
        if (secret != NULL && (!json_is_string(secret) || strncmp(json_string_value(secret), "whsec_", 6) != 0))
            return ac_err_field(err, AC_ERR_INVALID_REQUEST, field, "must look like whsec_<base64>");
        if (secret == NULL && cfg->webhook_secret == NULL)
            return ac_err_field(err, AC_ERR_INVALID_REQUEST, field,
                                "is required: the server has no webhooks.secret to sign with");
    }
    return 0;
}

static int start_grpo(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    ac_app_t *app = app_of(ctx);
    /* A job accepted now could not be stored, or would fail at its first iteration: refuse at
     * once, before validating anything (docs/api.md). */
    char cause[256];
    if (ac_store_degraded(app->store, cause, sizeof cause)) {
        ac_err_set(err, AC_ERR_INTERNAL, "Storage unavailable: no new job is accepted until the store can write (%s)",
                   cause);
        ac_err_set_data(err, json_pack("{s:s, s:s}", "field", "store", "error", cause));
        return -1;
    }
    json_t *jagent = json_object_get(params, "agent_id");
    const char *agent_id = json_string_value(jagent);
    if (!agent_id_ok(agent_id, json_string_length(jagent)))
        return ac_err_field(err, AC_ERR_INVALID_REQUEST, "agent_id",
                            "must be 1-128 characters of letters, digits, '-', '_', '.', ':'");
    ac_agent_binding_t bind;
    if (ac_config_agent(app->cfg, agent_id, &bind) != 0)
        return ac_err_field(err, AC_ERR_INVALID_REQUEST, "agent_id",
                            "unknown agent '%s': no plugins/agents/%s.lua and no binding in the config", agent_id,
                            agent_id);
    ac_train_config_t cfg;
    ac_train_config_defaults(&cfg);
    if (ac_train_config_from_json(&cfg, json_object_get(params, "config"), AC_ERR_INVALID_REQUEST, err) != 0) {
        snprintf(err->message, sizeof err->message, "Invalid training configuration");
        return -1;
    }
    ac_train_config_resolve(&cfg); /* the job stores what it will train with */
    json_t *hooks = json_object_get(params, "webhooks");
    if (check_job_webhooks(app->cfg, hooks, err) != 0)
        return -1;
    json_t *training = json_object_get(params, "training_data");
    json_t *evaluation = json_object_get(params, "evaluation_data");
    json_t *validation = json_object_get(params, "validation_data");
    if (json_is_null(validation))
        validation = NULL;
    json_t *empty = evaluation == NULL ? json_array() : NULL;
    if (empty != NULL)
        evaluation = empty;
    if (validate_data(ctx, bind.validator, training, evaluation, NULL, err) != 0 ||
        (validation != NULL && validate_data(ctx, bind.validator, training, validation, "validation_data", err) != 0)) {
        json_decref(empty);
        return -1;
    }
    if (cfg.seed == 0) { /* drawn now and stored, so that the job can be run again exactly */
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
            json_decref(empty);
            return ac_err_set(err, AC_ERR_INTERNAL, "no random source for the job's seed");
        }
        cfg.seed = (int)(r % 2147483646u) + 1;
    }
    ac_job_new_t nj = {ctx->principal->sub, agent_id, &cfg, training, evaluation, validation, ctx->now_ms,
                       ac_usd_to_micro(ac_config_budget(app->cfg, ctx->principal->sub)), hooks};
    json_t *job;
    int rc = ac_jobs_create(app->store, &nj, &job, err);
    json_decref(empty);
    if (rc != 0)
        return -1;
    ac_workers_notify(app->workers);
    *result = json_pack("{s:O, s:s, s:O, s:O, s:O}", "job_id", json_object_get(job, "job_id"), "status", "queued",
                        "agent_id", json_object_get(job, "agent_id"), "total_iterations",
                        json_object_get(job, "total_iterations"), "created_at", json_object_get(job, "created_at"));
    json_decref(job);
    return 0;
}

/* ---- training.get_status ------------------------------------------------------------------- */

static json_t *field_or_null(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return v != NULL ? json_incref(v) : json_null();
}

/* The status answer, rendered from a job record alone (so that it can be cached per revision). */
static json_t *render_status(json_t *job)
{
    json_int_t cur = json_integer_value(json_object_get(job, "current_iteration"));
    json_int_t total = json_integer_value(json_object_get(job, "total_iterations"));
    json_int_t cost = json_integer_value(json_object_get(job, "cost_micro"));
    json_int_t budget = json_integer_value(json_object_get(job, "budget_micro"));
    json_t *metrics = json_object_get(job, "metrics");
    char cost_s[32], budget_s[32];
    double remaining = budget > 0 ? 100.0 * (double)(budget - cost) / (double)budget : 0.0;
    /* SPEC.md's four metrics first, then every other metric the engine reports */
    json_t *m = json_pack("{s:o, s:o, s:o, s:I}", "train_loss", field_or_null(metrics, "train_loss"),
                          "validation_accuracy", field_or_null(metrics, "validation_accuracy"), "avg_reward",
                          field_or_null(metrics, "avg_reward"), "trajectories_generated",
                          json_integer_value(json_object_get(job, "trajectories_generated")));
    json_object_update_missing(m, metrics);
    json_t *r = json_pack("{s:O, s:O, s:O, s:I, s:I, s:f, s:o, s:s, s:s, s:f, s:o, s:o, s:o}", "job_id",
                          json_object_get(job, "job_id"), "agent_id", json_object_get(job, "agent_id"), "status",
                          json_object_get(job, "status"), "current_iteration", cur, "total_iterations", total,
                          "progress_percent", total > 0 ? round(1000.0 * (double)cur / (double)total) / 10.0 : 0.0,
                          "metrics", m, "cost_usd", ac_micro_to_usd_str(cost_s, sizeof cost_s, cost), "budget_usd",
                          ac_micro_to_usd_str(budget_s, sizeof budget_s, budget), "budget_remaining_percent",
                          round(remaining * 10.0) / 10.0, "started_at", field_or_null(job, "started_at"),
                          "estimated_completion", field_or_null(job, "estimated_completion"), "best_checkpoint_id",
                          field_or_null(job, "best_checkpoint_id"));
    if (r == NULL)
        return NULL;
    /* beyond SPEC.md: what users of such services look for */
    json_t *seed = json_object_get(json_object_get(job, "config"), "seed");
    if (json_is_integer(seed) && json_integer_value(seed) > 0) /* what reruns the job exactly */
        json_object_set(r, "seed", seed);
    static const char *const extra[] = {"created_at", "finished_at", "cancelled_at", "cancel_reason", "error",
                                        "latest_checkpoint_id", "trajectories_stored", "oldest_iteration",
                                        "plugin_failures", "episodes", "crashes", NULL};
    for (const char *const *k = extra; *k; k++) {
        json_t *v = json_object_get(job, *k);
        if (v != NULL && !json_is_null(v))
            json_object_set(r, *k, v);
    }
    return r;
}

/* get_status is the hot read path (clients poll it): its answer is cached, rendered, per job
 * revision, so that an unchanged job costs a revision lookup and a copy. Direct-mapped slots
 * with striped locks; a slot holds one job. */
#define STATUS_SLOTS 1024
#define STATUS_LOCKS 64

typedef struct status_slot {
    char id[AC_UUID_LEN + 1];
    uint64_t rev;
    char *owner;
    char *text;
    size_t len;
} status_slot_t;

static status_slot_t status_cache[STATUS_SLOTS];
static pthread_mutex_t status_locks[STATUS_LOCKS];
static pthread_once_t status_once = PTHREAD_ONCE_INIT;

static void status_init(void)
{
    for (int i = 0; i < STATUS_LOCKS; i++)
        pthread_mutex_init(&status_locks[i], NULL);
}

static size_t status_slot_of(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return (size_t)(h % STATUS_SLOTS);
}

/* A copy of the cached answer when the slot holds this job at this revision and the caller may
 * see it: 1, or 0 (miss), or -1 (the job is someone else's). */
static int status_cached(ac_call_ctx_t *ctx, size_t slot, const char *id, uint64_t rev, char **text, size_t *len)
{
    status_slot_t *c = &status_cache[slot];
    pthread_mutex_t *lock = &status_locks[slot % STATUS_LOCKS];
    int ret = 0;
    pthread_mutex_lock(lock);
    if (c->text != NULL && strcmp(c->id, id) == 0 && (rev == 0 || c->rev == rev)) {
        if (!visible_to(ctx, c->owner))
            ret = -1;
        else if ((*text = malloc(c->len + 1)) != NULL) {
            memcpy(*text, c->text, c->len + 1);
            *len = c->len;
            ret = 1;
        }
    }
    pthread_mutex_unlock(lock);
    return ret;
}

static uint64_t status_known_rev(size_t slot, const char *id)
{
    pthread_mutex_t *lock = &status_locks[slot % STATUS_LOCKS];
    pthread_mutex_lock(lock);
    uint64_t rev = strcmp(status_cache[slot].id, id) == 0 ? status_cache[slot].rev : 0;
    pthread_mutex_unlock(lock);
    return rev;
}

static void status_store(size_t slot, const char *id, uint64_t rev, const char *owner, const char *text, size_t len)
{
    char *t = malloc(len + 1), *o = strdup(owner ? owner : "");
    if (t == NULL || o == NULL) {
        free(t);
        free(o);
        return;
    }
    memcpy(t, text, len + 1);
    status_slot_t *c = &status_cache[slot];
    pthread_mutex_t *lock = &status_locks[slot % STATUS_LOCKS];
    pthread_mutex_lock(lock);
    free(c->text);
    free(c->owner);
    snprintf(c->id, sizeof c->id, "%s", id);
    c->rev = rev;
    c->owner = o;
    c->text = t;
    c->len = len;
    pthread_mutex_unlock(lock);
}

/* get_status while the store is degraded, or for a job whose failure is not written yet: the
 * record on disk says less than the truth, so the answer adds it (and is not cached). A job not
 * ended gets store_error: it cannot make progress. One whose failure could not be written shows
 * failed with its error and error_saved: false. */
static int status_degraded(ac_call_ctx_t *ctx, const char *id, const char *cause, json_t **result, ac_err_t *err)
{
    json_t *job;
    if (load_visible_job(ctx, id, &job, err) != 0)
        return -1;
    json_t *r = render_status(job);
    const char *status = json_string_value(json_object_get(job, "status"));
    char failure[256];
    if (r != NULL && status != NULL && !ac_job_status_final(status)) {
        if (ac_jobs_unwritten_failure(id, failure, sizeof failure)) {
            json_object_set_new(r, "status", json_string("failed"));
            json_object_set_new(r, "error", json_string(failure));
            json_object_set_new(r, "error_saved", json_false());
        }
        if (cause[0] != '\0')
            json_object_set_new(r, "store_error", json_string(cause));
    }
    json_decref(job);
    if (r == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "cannot build the status");
    *result = r;
    return 0;
}

static int get_status(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    pthread_once(&status_once, status_init);
    const char *id = json_string_value(json_object_get(params, "job_id"));
    char cause[256] = "", failure[8];
    if (ac_store_degraded(app_of(ctx)->store, cause, sizeof cause) ||
        ac_jobs_unwritten_failure(id, failure, sizeof failure))
        return status_degraded(ctx, id, cause, result, err);
    size_t slot = status_slot_of(id);
    uint64_t rev = 0;
    json_t *job = NULL;
    int rc = ac_jobs_get_if_changed(app_of(ctx)->store, id, status_known_rev(slot, id), &rev, &job, err);
    if (rc < 0)
        return -1;
    if (rc == 2) { /* unchanged since it was rendered */
        int hit = status_cached(ctx, slot, id, rev, &ctx->raw_result, &ctx->raw_len);
        if (hit == 1)
            return 0;
        if (hit < 0)
            return ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no job %s", id);
        rc = ac_jobs_get_if_changed(app_of(ctx)->store, id, 0, &rev, &job, err); /* evicted meanwhile */
        if (rc < 0)
            return -1;
    }
    if (rc == 0 || !visible_to(ctx, json_string_value(json_object_get(job, "owner")))) {
        json_decref(job);
        return ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no job %s", id);
    }
    json_t *r = render_status(job);
    char *text = r ? json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(r);
    if (text == NULL) {
        json_decref(job);
        return ac_err_set(err, AC_ERR_INTERNAL, "cannot build the status");
    }
    size_t len = strlen(text);
    if (rev > 0)
        status_store(slot, id, rev, json_string_value(json_object_get(job, "owner")), text, len);
    json_decref(job);
    ctx->raw_result = text;
    ctx->raw_len = len;
    return 0;
}

/* ---- training.cancel ----------------------------------------------------------------------- */

#define CANCEL_WAIT_MS 30000

static int cancel(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    ac_app_t *app = app_of(ctx);
    const char *id = json_string_value(json_object_get(params, "job_id"));
    json_t *job;
    if (load_visible_job(ctx, id, &job, err) != 0)
        return -1;
    json_decref(job);
    const char *reason = json_string_value(json_object_get(params, "reason"));
    if (ac_jobs_cancel(app->store, id, reason, ac_clock_now_ms(), &job, err) != 0)
        return -1;
    ac_workers_interrupt(app->workers, id); /* a running job stops at its next step */
    /* A running job stops at its next safe point (between iterations) and saves a checkpoint:
     * this call runs on an RPC worker, so it can wait for that and report it. */
    int64_t deadline = ac_clock_mono_ns() + (int64_t)CANCEL_WAIT_MS * 1000000;
    while (!ac_job_status_final(json_string_value(json_object_get(job, "status"))) &&
           ac_clock_mono_ns() < deadline) {
        usleep(20000);
        json_decref(job);
        if (ac_jobs_get(app->store, id, &job, err) != 1)
            return -1;
    }
    const char *status = json_string_value(json_object_get(job, "status"));
    json_t *ckpt = json_object_get(job, "latest_checkpoint_id");
    int saved = ckpt != NULL && !json_is_null(ckpt) && strcmp(status, "cancelled") == 0;
    *result = json_pack("{s:s, s:s, s:o, s:O, s:b, s:o}", "job_id", id, "status",
                        ac_job_status_final(status) ? status : "cancelling", "cancelled_at",
                        field_or_null(job, "cancelled_at"), "iterations_completed",
                        json_object_get(job, "current_iteration"), "checkpoint_saved", saved, "checkpoint_id",
                        saved ? json_incref(ckpt) : json_null());
    json_decref(job);
    return 0;
}

/* ---- training.evaluate --------------------------------------------------------------------- */

static int check_queries_shape(json_t *queries, const char *name, ac_err_t *err)
{
    size_t i;
    json_t *q;
    char field[96];
    json_array_foreach(queries, i, q)
    {
        json_t *text = json_object_get(q, "query");
        if (!json_is_string(text) || json_string_length(text) == 0) {
            snprintf(field, sizeof field, "%s[%zu].query", name, i);
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, field, "must be a non-empty string");
        }
        if (!json_is_object(json_object_get(q, "expected_outcome"))) {
            snprintf(field, sizeof field, "%s[%zu].expected_outcome", name, i);
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, field, "must be an object");
        }
    }
    return 0;
}

static json_t *find_checkpoint(json_t *job, const char *ckpt_id)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(job, "checkpoints"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "checkpoint_id")), ckpt_id) == 0)
            return c;
    }
    return NULL;
}

static int eval_failed(ac_err_t *err, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s", err->message);
    return ac_err_field(err, AC_ERR_EVALUATION_FAILED, what, "%s", msg);
}

static int evaluate(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    ac_app_t *app = app_of(ctx);
    int64_t t0 = ac_clock_mono_ns();
    const char *id = json_string_value(json_object_get(params, "job_id"));
    json_t *job = NULL, *training = NULL, *validation = NULL, *evaluation = NULL;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    ac_checkpoint_t ck = {0};
    ac_agent_t *agent = NULL;
    ac_reward_t *reward = NULL;
    ac_policy_t *baseline = NULL;
    ac_eval_result_t rb = {0}, rt = {0};
    ac_lua_host_t *host = NULL;
    int ret = -1;
    if (load_visible_job(ctx, id, &job, err) != 0)
        return -1;
    json_t *queries = json_object_get(params, "evaluation_queries");
    const char *qname = "evaluation_queries";
    if (queries == NULL) {
        if (ac_jobs_load_data(app->store, id, &training, &validation, &evaluation, err) != 0)
            goto out;
        queries = evaluation;
        qname = "evaluation_data";
    }
    if (json_array_size(queries) == 0) {
        ac_err_field(err, AC_ERR_EVALUATION_FAILED, qname, "no evaluation queries: pass evaluation_queries or "
                                                           "start the job with evaluation_data");
        goto out;
    }
    if (json_array_size(queries) > 10000) {
        ac_err_field(err, AC_ERR_INVALID_PARAMS, qname, "at most 10000 queries");
        goto out;
    }
    if (check_queries_shape(queries, qname, err) != 0)
        goto out;
    /* which policy: the one asked for, else the one the validation set chose (the evaluation
     * data never chooses), else the latest when no checkpoint has a validation score */
    json_t *jck = json_object_get(params, "checkpoint_id");
    const char *ckpt_id = jck ? json_string_value(jck) : json_string_value(json_object_get(job, "best_checkpoint_id"));
    json_t *chosen = ckpt_id ? find_checkpoint(job, ckpt_id) : NULL;
    const char *selected_by = jck ? "given"
                              : json_is_number(json_object_get(chosen, "validation_accuracy")) ? "validation"
                                                                                              : "latest";
    if (jck == NULL && strcmp(selected_by, "latest") == 0) {
        ckpt_id = json_string_value(json_object_get(job, "latest_checkpoint_id"));
        chosen = ckpt_id ? find_checkpoint(job, ckpt_id) : NULL;
    }
    if (ckpt_id == NULL || chosen == NULL) {
        if (jck != NULL)
            ac_err_field(err, AC_ERR_NOT_FOUND, "checkpoint_id", "no checkpoint %s in this job", ckpt_id);
        else
            ac_err_field(err, AC_ERR_NOT_FOUND, "checkpoint_id", "the job has no checkpoint yet");
        goto out;
    }
    int found = ac_jobs_get_checkpoint(app->store, id, ckpt_id, &blob, &blob_len, err);
    if (found <= 0) {
        if (found == 0)
            ac_err_field(err, AC_ERR_NOT_FOUND, "checkpoint_id", "checkpoint %s is gone (retention)", ckpt_id);
        goto out;
    }
    if (ac_checkpoint_load(&ck, blob, blob_len, err) != 0) {
        eval_failed(err, "checkpoint_id");
        goto out;
    }
    ac_train_config_t cfg;
    ac_train_config_defaults(&cfg);
    ac_train_config_from_json(&cfg, json_object_get(job, "config"), AC_ERR_INTERNAL, err);
    ac_agent_binding_t bind;
    if ((host = call_host(ctx, err)) == NULL)
        goto out;
    if (ac_config_agent(app->cfg, json_string_value(json_object_get(job, "agent_id")), &bind) != 0) {
        ac_err_field(err, AC_ERR_EVALUATION_FAILED, "agent_id", "the job's agent is no longer available");
        goto out;
    }
    if ((agent = ac_agent_open(host, bind.agent, err)) == NULL || (reward = ac_reward_open(host, bind.reward, err)) == NULL) {
        eval_failed(err, "agent_id");
        goto out;
    }
    if (agent->n_actions != ck.policy->cfg.n_actions) {
        ac_err_field(err, AC_ERR_EVALUATION_FAILED, "agent_id", "the agent's actions changed since the checkpoint");
        goto out;
    }
    /* the baseline is the untrained policy: the job's initial weights, rebuilt from its seed */
    ac_policy_config_t pc;
    ac_trainer_policy_config(&pc, &cfg, agent, ac_runner_seed(id, cfg.seed));
    if ((baseline = ac_policy_create(&pc, err)) == NULL)
        goto out;
    if (ac_eval_run(agent, reward, baseline, queries, cfg.max_steps_per_trajectory, &rb, err) != 0 ||
        ac_eval_run(agent, reward, ck.policy, queries, cfg.max_steps_per_trajectory, &rt, err) != 0) {
        eval_failed(err, "evaluation");
        goto out;
    }
    if (rt.failures == rt.n) {
        ac_err_field(err, AC_ERR_EVALUATION_FAILED, "evaluation", "every episode failed: %s",
                     rt.first_error ? rt.first_error : "plugin failure");
        goto out;
    }
    ac_eval_comparison_t cmp;
    ac_eval_compare(&rb, &rt, &cmp);
    json_t *m = ac_eval_metrics_json(&rt);
    json_object_set_new(m, "success_rate_ci95", json_pack("[f, f]", cmp.trained_ci[0], cmp.trained_ci[1]));
    json_object_set_new(m, "plugin_failures", json_integer(rt.failures));
    json_t *base = ac_eval_metrics_json(&rb);
    json_object_set_new(base, "success_rate_ci95", json_pack("[f, f]", cmp.baseline_ci[0], cmp.baseline_ci[1]));
    *result = json_pack("{s:s, s:s, s:s, s:O, s:o, s:{s:f, s:f, s:f, s:b, s:f, s:o}, s:i, s:I}", "job_id", id,
                        "checkpoint_id", ckpt_id, "selected_by", selected_by, "checkpoint_iteration",
                        json_object_get(chosen, "iteration"), "metrics", m, "baseline_comparison", "success_rate_improvement",
                        cmp.success_rate_improvement, "avg_reward_improvement", cmp.avg_reward_improvement,
                        "p_value", cmp.p_value, "statistically_significant", cmp.p_value < 0.05, "p_value_reward",
                        cmp.p_value_reward, "baseline", base, "queries_evaluated", rt.n, "evaluation_duration_ms",
                        (json_int_t)((ac_clock_mono_ns() - t0) / 1000000));
    ret = *result != NULL ? 0 : ac_err_set(err, AC_ERR_INTERNAL, "cannot build the evaluation");
out:
    ac_eval_result_free(&rb);
    ac_eval_result_free(&rt);
    ac_policy_destroy(baseline);
    ac_reward_close(reward);
    ac_agent_close(agent);
    ac_lua_host_destroy(host);
    if (ck.policy != NULL)
        ac_checkpoint_release(&ck);
    free(blob);
    json_decref(training);
    json_decref(validation);
    json_decref(evaluation);
    json_decref(job);
    return ret;
}

/* An AC_P_INTEGER parameter, or dflt when absent. rpc.c lets any JSON integer through, and
 * reals with an integral value below 2^53: going through a double would round an integer near
 * 2^63 to a value that does not fit back into json_int_t (undefined behaviour). */
static json_int_t int_param(const json_t *v, json_int_t dflt)
{
    if (v == NULL)
        return dflt;
    return json_is_integer(v) ? json_integer_value(v) : (json_int_t)json_real_value(v);
}

/* ---- training.export_trajectories ----------------------------------------------------------- */

#define EXPORT_MAX 10000

typedef struct export_ctx {
    const char *job_id;
    int success_only;
    int has_min;
    double min_reward;
    json_int_t limit, offset;
    json_int_t total;
    uint8_t (*keys)[44];
    json_int_t n_keys;
    json_t *trajectories;
} export_ctx_t;

static int export_match(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)err;
    export_ctx_t *x = ud;
    if (klen != 44 || vlen != 9)
        return 0;
    double reward;
    memcpy(&reward, val, 8);
    int success = ((const uint8_t *)val)[8];
    if ((x->success_only && !success) || (x->has_min && !(reward >= x->min_reward)))
        return 0;
    /* only the summaries are read while counting: the page's records are fetched afterwards */
    if (x->total >= x->offset && x->n_keys < x->limit)
        memcpy(x->keys[x->n_keys++], key, 44);
    x->total++;
    return 0;
}

static int export_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    export_ctx_t *x = ud;
    x->total = x->n_keys = 0;
    if (ac_txn_scan(t, AC_DB_TRAJ_INDEX, x->job_id, AC_UUID_LEN, NULL, 0, export_match, x, err) != 0)
        return -1;
    json_array_clear(x->trajectories);
    for (json_int_t i = 0; i < x->n_keys; i++) {
        const void *val;
        size_t vlen;
        if (ac_txn_get(t, AC_DB_TRAJECTORIES, x->keys[i], 44, &val, &vlen, err) != 1)
            return ac_err_set(err, AC_ERR_INTERNAL, "export: a trajectory's record is missing");
        json_t *traj = json_loadb(val, vlen, 0, NULL);
        if (traj == NULL)
            return ac_err_set(err, AC_ERR_INTERNAL, "export: a trajectory's record is corrupt");
        json_array_append_new(x->trajectories, traj);
    }
    return 0;
}

static int export_trajectories(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    const char *id = json_string_value(json_object_get(params, "job_id"));
    json_t *job;
    if (load_visible_job(ctx, id, &job, err) != 0)
        return -1;
    json_decref(job);
    json_t *jl = json_object_get(params, "limit"), *jo = json_object_get(params, "offset");
    json_t *jm = json_object_get(params, "min_reward");
    export_ctx_t x = {.job_id = id, .success_only = json_is_true(json_object_get(params, "success_only")),
                      .has_min = jm != NULL, .min_reward = jm ? json_number_value(jm) : 0.0,
                      .limit = int_param(jl, 1000), .offset = int_param(jo, 0)};
    if (x.limit > EXPORT_MAX)
        return ac_err_field(err, AC_ERR_EXPORT_LIMIT, "limit", "at most %d trajectories per request", EXPORT_MAX);
    if (x.limit < 1)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "limit", "must be at least 1");
    if (x.offset < 0)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "offset", "must be at least 0");
    x.keys = malloc(sizeof *x.keys * (size_t)x.limit);
    x.trajectories = json_array();
    if (x.keys == NULL) {
        json_decref(x.trajectories);
        return ac_err_set(err, AC_ERR_INTERNAL, "export: out of memory");
    }
    int rc = ac_store_read(app_of(ctx)->store, export_txn, &x, err);
    free(x.keys);
    if (rc != 0) {
        json_decref(x.trajectories);
        return -1;
    }
    json_int_t returned = (json_int_t)json_array_size(x.trajectories);
    *result = json_pack("{s:s, s:o, s:I, s:I, s:b}", "job_id", id, "trajectories", x.trajectories, "total_count",
                        x.total, "returned_count", returned, "has_more", x.offset + returned < x.total);
    return 0;
}

/* ---- training.get_metrics ------------------------------------------------------------------- */

#define METRICS_MAX 10000

static int get_metrics(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    const char *id = json_string_value(json_object_get(params, "job_id"));
    json_t *job;
    if (load_visible_job(ctx, id, &job, err) != 0)
        return -1;
    json_decref(job);
    json_int_t from = int_param(json_object_get(params, "from_iteration"), 0);
    json_int_t limit = int_param(json_object_get(params, "limit"), 1000);
    if (from < 0 || from > UINT32_MAX)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "from_iteration", "must be between 0 and 4294967295");
    if (limit < 1 || limit > METRICS_MAX)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "limit", "must be between 1 and %d", METRICS_MAX);
    json_t *rows = NULL;
    int more = 0;
    if (ac_jobs_metrics_page(app_of(ctx)->store, id, (uint32_t)from, (int)limit, &rows, &more, err) != 0)
        return -1;
    json_t *last = json_array_get(rows, json_array_size(rows) - 1);
    json_int_t next = more ? json_integer_value(json_object_get(last, "iteration")) + 1 : 0;
    *result = json_pack("{s:s, s:o, s:I, s:o, s:b}", "job_id", id, "metrics", rows, "returned_count",
                        (json_int_t)json_array_size(rows), "next_from_iteration",
                        more ? json_integer(next) : json_null(), "has_more", more);
    return 0;
}

/* ---- beyond SPEC.md: list_jobs, list_checkpoints, list_events -------------------------------- */

typedef struct list_ctx {
    const char *owner;
    const char *status;
    json_int_t limit, offset, total;
    ac_txn_t *txn;
    json_t *jobs;
} list_ctx_t;

static int list_one(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)val, (void)vlen;
    list_ctx_t *l = ud;
    if (klen < 8 + AC_UUID_LEN)
        return 0;
    char id[AC_UUID_LEN + 1];
    memcpy(id, (const char *)key + klen - AC_UUID_LEN, AC_UUID_LEN);
    id[AC_UUID_LEN] = 0;
    const void *rec;
    size_t rlen;
    if (ac_txn_get(l->txn, AC_DB_JOBS, id, AC_UUID_LEN, &rec, &rlen, err) != 1)
        return 0;
    json_t *job = json_loadb(rec, rlen, 0, NULL);
    const char *status = json_string_value(json_object_get(job, "status"));
    if (job != NULL && (l->status == NULL || (status && strcmp(status, l->status) == 0))) {
        /* cost and budget as get_status shows them: a jobs list (the dashboard's) needs no call per job */
        char cost_s[32], budget_s[32];
        if (l->total >= l->offset && (json_int_t)json_array_size(l->jobs) < l->limit)
            json_array_append_new(
                l->jobs, json_pack("{s:s, s:O, s:O, s:O, s:O, s:O, s:s, s:s}", "job_id", id, "agent_id",
                                   json_object_get(job, "agent_id"), "status", json_object_get(job, "status"),
                                   "created_at", json_object_get(job, "created_at"), "current_iteration",
                                   json_object_get(job, "current_iteration"), "total_iterations",
                                   json_object_get(job, "total_iterations"), "cost_usd",
                                   ac_micro_to_usd_str(cost_s, sizeof cost_s,
                                                       json_integer_value(json_object_get(job, "cost_micro"))),
                                   "budget_usd",
                                   ac_micro_to_usd_str(budget_s, sizeof budget_s,
                                                       json_integer_value(json_object_get(job, "budget_micro")))));
        l->total++;
    }
    json_decref(job);
    return 0;
}

static int list_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    list_ctx_t *l = ud;
    l->txn = t;
    l->total = 0;
    json_array_clear(l->jobs);
    size_t olen = strlen(l->owner);
    char prefix[256];
    memcpy(prefix, l->owner, olen);
    prefix[olen] = 0;
    /* newest first */
    return ac_txn_scan_rev(t, AC_DB_OWNER_JOBS, prefix, olen + 1, list_one, l, err);
}

static const char *const status_names[] = {"queued", "running", "completed", "failed", "cancelled", NULL};

static int list_jobs(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    json_t *js = json_object_get(params, "status"), *jl = json_object_get(params, "limit"),
           *jo = json_object_get(params, "offset");
    const char *status = json_string_value(js);
    if (status != NULL) {
        int ok = 0;
        for (const char *const *p = status_names; *p; p++)
            ok |= strcmp(*p, status) == 0;
        if (!ok)
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, "status",
                                "must be queued, running, completed, failed or cancelled");
    }
    list_ctx_t l = {ctx->principal->sub, status, int_param(jl, 50), int_param(jo, 0), 0, NULL, json_array()};
    if (l.limit < 1 || l.limit > 1000) {
        json_decref(l.jobs);
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "limit", "must be between 1 and 1000");
    }
    if (l.offset < 0) {
        json_decref(l.jobs);
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "offset", "must be at least 0");
    }
    if (ac_store_read(app_of(ctx)->store, list_txn, &l, err) != 0) {
        json_decref(l.jobs);
        return -1;
    }
    json_int_t n = (json_int_t)json_array_size(l.jobs);
    *result = json_pack("{s:o, s:I, s:I, s:b}", "jobs", l.jobs, "total_count", l.total, "returned_count", n,
                        "has_more", l.offset + n < l.total);
    return 0;
}

static int list_checkpoints(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    json_t *job;
    if (load_visible_job(ctx, json_string_value(json_object_get(params, "job_id")), &job, err) != 0)
        return -1;
    const char *best = json_string_value(json_object_get(job, "best_checkpoint_id"));
    const char *latest = json_string_value(json_object_get(job, "latest_checkpoint_id"));
    json_t *out = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(job, "checkpoints"), i, c)
    {
        const char *cid = json_string_value(json_object_get(c, "checkpoint_id"));
        json_array_append_new(out, json_pack("{s:s, s:O, s:O, s:O, s:b, s:b}", "checkpoint_id", cid, "iteration",
                                             json_object_get(c, "iteration"), "validation_accuracy",
                                             json_object_get(c, "validation_accuracy"), "created_at",
                                             json_object_get(c, "created_at"), "is_best",
                                             best && strcmp(best, cid) == 0, "is_latest",
                                             latest && strcmp(latest, cid) == 0));
    }
    *result = json_pack("{s:O, s:o, s:O}", "job_id", json_object_get(job, "job_id"), "checkpoints", out,
                        "best_checkpoint_id", json_object_get(job, "best_checkpoint_id"));
    json_decref(job);
    return 0;
}

typedef struct events_ctx {
    const char *job_id;
    json_int_t after, limit;
    json_t *events;
    json_int_t last;
    int more;
} events_ctx_t;

static int event_one(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)err;
    events_ctx_t *e = ud;
    if (klen != AC_UUID_LEN + 8)
        return 0;
    if ((json_int_t)json_array_size(e->events) == e->limit) {
        e->more = 1;
        return 1;
    }
    json_t *ev = json_loadb(val, vlen, 0, NULL);
    if (ev != NULL)
        json_array_append_new(e->events, ev);
    e->last = (json_int_t)ac_be64_get((const uint8_t *)key + AC_UUID_LEN);
    return 0;
}

static int events_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    events_ctx_t *e = ud;
    json_array_clear(e->events);
    e->more = 0;
    uint8_t start[AC_UUID_LEN + 8];
    memcpy(start, e->job_id, AC_UUID_LEN);
    ac_be64_put(start + AC_UUID_LEN, (uint64_t)e->after + 1);
    return ac_txn_scan(t, AC_DB_EVENTS, e->job_id, AC_UUID_LEN, start, sizeof start, event_one, e, err);
}

static int list_events(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    const char *id = json_string_value(json_object_get(params, "job_id"));
    json_t *job;
    if (load_visible_job(ctx, id, &job, err) != 0)
        return -1;
    json_decref(job);
    json_t *jc = json_object_get(params, "cursor"), *jl = json_object_get(params, "limit");
    events_ctx_t e = {id, int_param(jc, 0), int_param(jl, 100), json_array(), 0, 0};
    if (e.limit < 1 || e.limit > 1000 || e.after < 0) {
        json_decref(e.events);
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, e.after < 0 ? "cursor" : "limit",
                            e.after < 0 ? "must be at least 0" : "must be between 1 and 1000");
    }
    e.last = e.after;
    if (ac_store_read(app_of(ctx)->store, events_txn, &e, err) != 0) {
        json_decref(e.events);
        return -1;
    }
    *result = json_pack("{s:s, s:o, s:I, s:b}", "job_id", id, "events", e.events, "next_cursor", e.last, "has_more",
                        e.more);
    return 0;
}

/* ---- webhooks.subscribe / list / unsubscribe ----------------------------------------------- */

static int webhooks_subscribe(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    ac_app_t *app = app_of(ctx);
    return ac_webhooks_subscribe(app->store, app->cfg, ctx->principal->sub,
                                 json_string_value(json_object_get(params, "url")), json_object_get(params, "events"),
                                 ctx->now_ms, result, err);
}

static int webhooks_list(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    (void)params;
    json_t *subs;
    if (ac_webhooks_list(app_of(ctx)->store, ctx->principal->sub, &subs, err) != 0)
        return -1;
    *result = json_pack("{s:o}", "subscriptions", subs);
    return 0;
}

static int webhooks_unsubscribe(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    const char *id = json_string_value(json_object_get(params, "subscription_id"));
    if (ac_webhooks_unsubscribe(app_of(ctx)->store, ctx->principal->sub, id, err) != 0)
        return -1;
    *result = json_pack("{s:s, s:b}", "subscription_id", id, "unsubscribed", 1);
    return 0;
}

/* ---- the table ------------------------------------------------------------------------------ */

static const ac_param_spec_t subscribe_params[] = {
    {"url", AC_P_STRING, 1, "http(s) URL that receives the events"},
    {"events", AC_P_STRING_OR_ARRAY, 1, "event names, or \"*\" (every event)"},
    {NULL, 0, 0, NULL},
};
static const ac_param_spec_t no_params[] = {
    {NULL, 0, 0, NULL},
};
static const ac_param_spec_t unsubscribe_params[] = {
    {"subscription_id", AC_P_UUID, 1, "the id webhooks.subscribe returned"},
    {NULL, 0, 0, NULL},
};

static const ac_param_spec_t start_params[] = {
    {"agent_id", AC_P_STRING, 1, "agent identifier to train"},
    {"config", AC_P_OBJECT, 1, "GRPOConfig"},
    {"training_data", AC_P_ARRAY, 1, "TrainingQuery[] (at least 100)"},
    {"evaluation_data", AC_P_ARRAY, 0, "held-out TrainingQuery[]: reported on, never used to choose"},
    {"validation_data", AC_P_ARRAY, 0,
     "TrainingQuery[] that selects the best checkpoint (default: config.validation_fraction of training_data)"},
    {"webhooks", AC_P_ARRAY, 0, "this job's webhooks: [{url, events, secret?}]"},
    {NULL, 0, 0, NULL},
};
static const ac_param_spec_t job_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier"},
    {NULL, 0, 0, NULL},
};
static const ac_param_spec_t cancel_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier"},
    {"reason", AC_P_STRING, 0, "cancellation reason"},
    {NULL, 0, 0, NULL},
};
static const ac_param_spec_t evaluate_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier"},
    {"checkpoint_id", AC_P_UUID, 0, "checkpoint to evaluate (default: best)"},
    {"evaluation_queries", AC_P_ARRAY, 0, "TrainingQuery[] (default: the job's evaluation data)"},
    {NULL, 0, 0, NULL},
};
static const ac_param_spec_t export_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier"},
    {"success_only", AC_P_BOOL, 0, "only successful trajectories"},
    {"min_reward", AC_P_NUMBER, 0, "minimum reward"},
    {"limit", AC_P_INTEGER, 0, "max trajectories (default 1000, at most 10000)"},
    {"offset", AC_P_INTEGER, 0, "pagination offset (default 0)"},
    {NULL, 0, 0, NULL},
};
static const ac_param_spec_t list_jobs_params[] = {
    {"status", AC_P_STRING, 0, "queued | running | completed | failed | cancelled"},
    {"limit", AC_P_INTEGER, 0, "max jobs (default 50, at most 1000)"},
    {"offset", AC_P_INTEGER, 0, "pagination offset"},
    {NULL, 0, 0, NULL},
};
static const ac_param_spec_t get_metrics_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier"},
    {"from_iteration", AC_P_INTEGER, 0, "the first iteration wanted (default 0: the untrained policy's validation)"},
    {"limit", AC_P_INTEGER, 0, "max rows (default 1000, at most 10000)"},
    {NULL, 0, 0, NULL},
};
static const ac_param_spec_t list_events_params[] = {
    {"job_id", AC_P_UUID, 1, "training job identifier"},
    {"cursor", AC_P_INTEGER, 0, "the next_cursor of the previous page (default 0: from the start)"},
    {"limit", AC_P_INTEGER, 0, "max events (default 100, at most 1000)"},
    {NULL, 0, 0, NULL},
};

static const int start_errors[] = {AC_ERR_BUDGET_EXCEEDED, AC_ERR_VALIDATION_FAILED, 0};
static const int job_errors[] = {AC_ERR_NOT_FOUND, 0};
static const int cancel_errors[] = {AC_ERR_NOT_FOUND, AC_ERR_CANNOT_CANCEL, 0};
static const int evaluate_errors[] = {AC_ERR_NOT_FOUND, AC_ERR_EVALUATION_FAILED, 0};
static const int export_errors[] = {AC_ERR_NOT_FOUND, AC_ERR_EXPORT_LIMIT, 0};

const ac_method_t ac_training_methods[] = {
    /* start_grpo runs the validator plugin over up to max_body_bytes of data: off the event
     * loop. SPEC.md answers its missing or invalid parameters with -32600. */
    {"training.start_grpo", start_grpo, AC_PERM_TRAINING_START, AC_RL_START, AC_METHOD_DEFER, AC_ERR_INVALID_REQUEST,
     start_params, "Start a new GRPO training job", start_errors},
    {"training.get_status", get_status, AC_PERM_TRAINING_VIEW, AC_RL_STATUS, 0, AC_ERR_INVALID_PARAMS, job_params,
     "Current status and metrics of a training job", job_errors},
    /* cancel waits for a running job to reach its safe point */
    {"training.cancel", cancel, AC_PERM_TRAINING_CANCEL, AC_RL_CANCEL, AC_METHOD_DEFER, AC_ERR_INVALID_PARAMS,
     cancel_params, "Cancel a queued or running training job", cancel_errors},
    {"training.evaluate", evaluate, AC_PERM_TRAINING_EVALUATE, AC_RL_EVALUATE, AC_METHOD_DEFER,
     AC_ERR_INVALID_PARAMS, evaluate_params, "Evaluate a checkpoint against the untrained baseline", evaluate_errors},
    /* a page of up to 10000 trajectories takes ~1 s to build: not on an event loop */
    {"training.export_trajectories", export_trajectories, AC_PERM_DATA_EXPORT, AC_RL_EXPORT, AC_METHOD_DEFER,
     AC_ERR_INVALID_PARAMS, export_params, "Export a job's trajectories, filtered and paginated", export_errors},
    {"training.get_metrics", get_metrics, AC_PERM_TRAINING_VIEW, AC_RL_OTHER, 0, AC_ERR_INVALID_PARAMS,
     get_metrics_params, "A job's metrics per iteration (loss, reward, success, KL, entropy, clip, validation every "
     "eval_interval): the learning curve, paged", job_errors},
    {"training.list_jobs", list_jobs, AC_PERM_TRAINING_VIEW, AC_RL_OTHER, 0, AC_ERR_INVALID_PARAMS,
     list_jobs_params, "The caller's jobs, newest first, by status, paginated", NULL},
    {"training.list_checkpoints", list_checkpoints, AC_PERM_TRAINING_VIEW, AC_RL_OTHER, 0, AC_ERR_INVALID_PARAMS,
     job_params, "A job's kept checkpoints (the best k by validation accuracy and the latest)", job_errors},
    {"training.list_events", list_events, AC_PERM_TRAINING_VIEW, AC_RL_OTHER, 0, AC_ERR_INVALID_PARAMS,
     list_events_params, "A job's events (state changes, progress, budget warnings), cursor-paginated", job_errors},
    {"webhooks.subscribe", webhooks_subscribe, AC_PERM_WEBHOOKS_MANAGE, AC_RL_OTHER, AC_METHOD_DEFER,
     AC_ERR_INVALID_PARAMS, subscribe_params, "Subscribe a URL to your jobs' events (returns its signing secret)", NULL},
    {"webhooks.list", webhooks_list, AC_PERM_WEBHOOKS_MANAGE, AC_RL_OTHER, 0, AC_ERR_INVALID_PARAMS, no_params,
     "Your subscriptions with their last delivery status and failure count", NULL},
    {"webhooks.unsubscribe", webhooks_unsubscribe, AC_PERM_WEBHOOKS_MANAGE, AC_RL_OTHER, 0, AC_ERR_INVALID_PARAMS,
     unsubscribe_params, "Remove a subscription", job_errors},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};
