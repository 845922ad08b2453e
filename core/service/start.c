/* training.start_grpo: the agent, its config, its webhooks, its data through the validator
 * plugin, a seed drawn for a job without one, then the job stored and the workers woken. The
 * API answers this method's invalid parameters with -32600 (its param_error), whoever found them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/clock.h"
#include "base/train_config.h"
#include "lua/lua_host.h"
#include "lua/plugin.h"
#include "service/app.h"
#include "service/handlers.h"
#include "service/webhook.h"
#include "service/workers.h"
#include "store/jobs.h"

#define MIN_TRAINING_QUERIES 100

/* Renames problems of the held-out set the validator checked ("evaluation_data[3].query") after
 * the parameter it came from (held_out: "validation_data"). */
static void rename_held_out(json_t *problems, const char *held_out)
{
    size_t i;
    json_t *pr;
    json_array_foreach(problems, i, pr)
    {
        const char *f = json_string_value(json_object_get(pr, "field"));
        if (held_out != NULL && f != NULL && strncmp(f, "evaluation_data", 15) == 0) {
            char renamed[300];
            snprintf(renamed, sizeof renamed, "%s%s", held_out, f + 15);
            json_object_set_new(pr, "field", json_string(renamed));
        }
    }
}

/* -40002 when the data fails validation; data lists every problem with its index and field (the
 * first one also as data.field/data.error, the shape other errors have). The validator plugin
 * checks training and one held-out set; validation_data is checked as that set, its problems
 * then named by `held_out`. */
static int validate_data(ac_call_ctx_t *ctx, const char *validator, json_t *training, json_t *held,
                         const char *held_out, ac_err_t *err)
{
    ac_lua_host_t *h = ac_app_plugin_host(ctx, err);
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
    rename_held_out(problems, held_out);
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
    if (s == NULL || len == 0 || len > 128)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.' || c == ':'))
            return 0;
    }
    return 1;
}

/* A check another module words with -32602 becomes this method's -32600. */
static int as_invalid_request(ac_err_t *err)
{
    err->code = AC_ERR_INVALID_REQUEST;
    snprintf(err->message, sizeof err->message, "%s", ac_err_name(AC_ERR_INVALID_REQUEST));
    return -1;
}

/* `webhooks`: [{url, events, secret?}] (at most 16: the table says so), each signed with its own
 * secret or the server's webhooks.secret. */
static int check_job_webhooks(const ac_config_t *cfg, json_t *hooks, ac_err_t *err)
{
    size_t i;
    json_t *h;
    char field[64];
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

/* A job accepted now could not be stored, or would fail at its first iteration: refused at
 * once, before anything is validated (docs/api.md). */
static int refuse_when_degraded(ac_app_t *app, ac_err_t *err)
{
    char cause[256];
    if (!ac_jobs_degraded(app->jobs, cause, sizeof cause))
        return 0;
    ac_err_set(err, AC_ERR_INTERNAL, "Storage unavailable: no new job is accepted until the store can write (%s)",
               cause);
    ac_err_set_data(err, json_pack("{s:s, s:s}", "field", "store", "error", cause));
    return -1;
}

/* The agent's plugins and the job's config, as it will train with them. */
static int read_agent_and_config(ac_app_t *app, json_t *params, ac_agent_binding_t *bind, ac_train_config_t *cfg,
                                 ac_err_t *err)
{
    json_t *jagent = json_object_get(params, "agent_id");
    const char *agent_id = json_string_value(jagent);
    if (!agent_id_ok(agent_id, json_string_length(jagent)))
        return ac_err_field(err, AC_ERR_INVALID_REQUEST, "agent_id",
                            "must be 1-128 characters of letters, digits, '-', '_', '.', ':'");
    if (ac_config_agent(app->cfg, agent_id, bind) != 0)
        return ac_err_field(err, AC_ERR_INVALID_REQUEST, "agent_id",
                            "unknown agent '%s': no plugins/agents/%s.lua and no binding in the config", agent_id,
                            agent_id);
    ac_train_config_defaults(cfg);
    if (ac_train_config_from_json(cfg, json_object_get(params, "config"), AC_ERR_INVALID_REQUEST, err) != 0) {
        snprintf(err->message, sizeof err->message, "Invalid training configuration");
        return -1;
    }
    ac_train_config_resolve(cfg); /* the job stores what it will train with */
    if (cfg->seed == 0) {         /* drawn now and stored, so that the job can be run again exactly */
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            return ac_err_set(err, AC_ERR_INTERNAL, "no random source for the job's seed");
        cfg->seed = (int)(r % 2147483646u) + 1;
    }
    return 0;
}

int ac_method_training_start_grpo(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    ac_app_t *app = ac_app_of(ctx);
    ac_agent_binding_t bind;
    ac_train_config_t cfg;
    json_t *hooks = json_object_get(params, "webhooks");
    const char *init = json_string_value(json_object_get(params, "init_checkpoint"));
    uint8_t *init_blob = NULL;
    size_t init_len = 0;
    if (refuse_when_degraded(app, err) != 0 || read_agent_and_config(app, params, &bind, &cfg, err) != 0 ||
        check_job_webhooks(app->cfg, hooks, err) != 0)
        return -1;
    /* fine-tuning: the job starts from that checkpoint's weights, with its policy's shape */
    if (init != NULL && ac_service_init_checkpoint(ctx, init, json_string_value(json_object_get(params, "agent_id")),
                                                   &cfg, &init_blob, &init_len, AC_ERR_INVALID_REQUEST, err) != 0)
        return -1;
    json_t *training = json_object_get(params, "training_data");
    json_t *evaluation = json_object_get(params, "evaluation_data");
    json_t *validation = json_object_get(params, "validation_data"); /* absent or null: held out at start */
    json_t *empty = evaluation == NULL ? json_array() : NULL;
    if (empty != NULL)
        evaluation = empty;
    ac_job_new_t nj = {ctx->principal->sub, json_string_value(json_object_get(params, "agent_id")), &cfg, training,
                       evaluation, validation, ctx->now_ms,
                       ac_usd_to_micro(ac_config_budget(app->cfg, ctx->principal->sub)), hooks};
    ac_job_t job;
    int rc = validate_data(ctx, bind.validator, training, evaluation, NULL, err) != 0 ||
                     (validation != NULL &&
                      validate_data(ctx, bind.validator, training, validation, "validation_data", err) != 0) ||
                     ac_jobs_create_from(app->jobs, &nj, init, init_blob, init_len, &job, err) != 0
                 ? -1
                 : 0;
    json_decref(empty);
    free(init_blob);
    if (rc != 0)
        return -1;
    ac_workers_notify(app->workers);
    char created[40];
    *result = json_pack("{s:s, s:s, s:s, s:I, s:s}", "job_id", job.id, "status", ac_job_status_name(job.status), "agent_id", job.agent_id,
                        "total_iterations", (json_int_t)job.total_iterations, "created_at",
                        ac_clock_iso8601(created, sizeof created, job.created_ms, 0));
    ac_job_free(&job);
    return 0;
}
