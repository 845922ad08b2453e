/* The job record: its status names, its owned parts, and its JSON form (jobs_backend.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "store/jobs_backend.h"

const char *const ac_job_status_names[AC_JOB_STATUS_COUNT + 1] = {"queued", "running", "completed", "failed",
                                                                  "cancelled", NULL};

const char *ac_job_status_name(ac_job_status_t s)
{
    return (unsigned)s < AC_JOB_STATUS_COUNT ? ac_job_status_names[s] : "?";
}

int ac_job_status_parse(const char *name, ac_job_status_t *out)
{
    for (int i = 0; name != NULL && i < AC_JOB_STATUS_COUNT; i++)
        if (strcmp(ac_job_status_names[i], name) == 0) {
            *out = (ac_job_status_t)i;
            return 0;
        }
    return -1;
}

int ac_job_status_final(ac_job_status_t s)
{
    return s == AC_JOB_COMPLETED || s == AC_JOB_FAILED || s == AC_JOB_CANCELLED;
}

uint64_t ac_job_seed(const ac_job_t *job)
{
    if (job->config.seed > 0)
        return (uint64_t)job->config.seed;
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = job->id; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return h;
}

void ac_job_init(ac_job_t *job)
{
    memset(job, 0, sizeof *job);
    ac_train_config_defaults(&job->config);
}

void ac_job_free(ac_job_t *job)
{
    if (job == NULL)
        return;
    free(job->owner);
    free(job->error);
    free(job->cancel_reason);
    free(job->checkpoints);
    json_decref(job->metrics);
    json_decref(job->webhooks);
    ac_job_init(job);
}

int ac_job_set_text(char **field, const char *value)
{
    char *copy = NULL;
    if (value != NULL && (copy = strdup(value)) == NULL)
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

const ac_job_checkpoint_t *ac_job_checkpoint_find(const ac_job_t *job, const char *id)
{
    for (size_t i = 0; id != NULL && i < job->n_checkpoints; i++)
        if (strcmp(job->checkpoints[i].id, id) == 0)
            return &job->checkpoints[i];
    return NULL;
}

int ac_job_checkpoint_add(ac_job_t *job, const ac_job_checkpoint_t *c)
{
    ac_job_checkpoint_t *n = realloc(job->checkpoints, (job->n_checkpoints + 1) * sizeof *n);
    if (n == NULL)
        return -1;
    n[job->n_checkpoints++] = *c;
    job->checkpoints = n;
    return 0;
}

void ac_job_checkpoint_remove(ac_job_t *job, size_t i)
{
    if (i >= job->n_checkpoints)
        return;
    memmove(&job->checkpoints[i], &job->checkpoints[i + 1], (job->n_checkpoints - i - 1) * sizeof *job->checkpoints);
    job->n_checkpoints--;
}

void ac_jobs_totals_add(ac_jobs_totals_t *t, const ac_job_t *job, int sign)
{
    if ((unsigned)job->status < AC_JOB_STATUS_COUNT)
        t->by_status[job->status] += sign;
    t->iterations += sign * job->current_iteration;
    t->trajectories += sign * job->trajectories_generated;
}

/* ---- JSON ----------------------------------------------------------------------------------- */

static json_t *time_json(int64_t ms)
{
    char ts[40];
    return ms > 0 ? json_string(ac_clock_iso8601(ts, sizeof ts, ms, 0)) : json_null();
}

static json_t *text_json(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *checkpoints_json(const ac_job_t *job)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < job->n_checkpoints; i++) {
        const ac_job_checkpoint_t *c = &job->checkpoints[i];
        json_array_append_new(a, json_pack("{s:s, s:I, s:o, s:o}", "checkpoint_id", c->id, "iteration",
                                           (json_int_t)c->iteration, "validation_accuracy",
                                           isnan(c->validation_accuracy) ? json_null()
                                                                         : json_real(c->validation_accuracy),
                                           "created_at", time_json(c->created_ms)));
    }
    return a;
}

json_t *ac_job_to_json(const ac_job_t *job)
{
    json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:o, s:o, s:o, s:o}", "job_id", job->id, "owner",
                          job->owner ? job->owner : "", "agent_id", job->agent_id, "status",
                          ac_job_status_name(job->status), "config", ac_train_config_to_json(&job->config),
                          "created_at", time_json(job->created_ms), "created_at_ms", (json_int_t)job->created_ms,
                          "started_at", time_json(job->started_ms), "finished_at", time_json(job->finished_ms),
                          "cancelled_at", time_json(job->cancelled_ms), "estimated_completion",
                          time_json(job->eta_ms));
    json_t *n = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i}",
                          "current_iteration", (json_int_t)job->current_iteration, "total_iterations",
                          (json_int_t)job->total_iterations, "cost_micro", (json_int_t)job->cost_micro,
                          "budget_micro", (json_int_t)job->budget_micro, "trajectories_generated",
                          (json_int_t)job->trajectories_generated, "trajectories_stored",
                          (json_int_t)job->trajectories_stored, "oldest_iteration", (json_int_t)job->oldest_iteration,
                          "episodes", (json_int_t)job->episodes, "plugin_failures", (json_int_t)job->plugin_failures,
                          "n_training", (json_int_t)job->n_training, "n_evaluation", (json_int_t)job->n_evaluation,
                          "run", (json_int_t)job->run, "queue_seq", (json_int_t)job->queue_seq, "event_seq",
                          (json_int_t)job->event_seq, "crashes", job->crashes);
    json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:b}", "metrics",
                          job->metrics ? json_incref(job->metrics) : json_object(), "checkpoints",
                          checkpoints_json(job),
                          "best_checkpoint_id", text_json(job->best_checkpoint), "latest_checkpoint_id",
                          text_json(job->latest_checkpoint), "error", text_json(job->error), "cancel_reason",
                          text_json(job->cancel_reason), "cancel_requested", job->cancel_requested);
    if (r == NULL || n == NULL || o == NULL || json_object_update(r, n) != 0 || json_object_update(r, o) != 0) {
        json_decref(r);
        r = NULL;
    } else {
        if (job->webhooks != NULL)
            json_object_set(r, "webhooks", job->webhooks);
        /* written only when set: records of jobs that never used them stay as they were */
        if (job->inference_cost_micro != 0)
            json_object_set_new(r, "inference_cost_micro", json_integer((json_int_t)job->inference_cost_micro));
        if (job->init_checkpoint[0] != '\0')
            json_object_set_new(r, "init_checkpoint_id", json_string(job->init_checkpoint));
        if (job->imported)
            json_object_set_new(r, "imported", json_true());
    }
    json_decref(n);
    json_decref(o);
    return r;
}

static int64_t int_of(const json_t *rec, const char *key)
{
    return json_integer_value(json_object_get(rec, key));
}

static int64_t time_of(const json_t *rec, const char *key)
{
    int64_t ms = 0;
    const char *s = json_string_value(json_object_get(rec, key));
    return s != NULL && ac_clock_parse_iso8601(s, &ms) == 0 ? ms : 0;
}

static void copy_id(char *dst, const json_t *v)
{
    const char *s = json_string_value(v);
    snprintf(dst, AC_UUID_LEN + 1, "%s", s != NULL && strlen(s) == AC_UUID_LEN ? s : "");
}

static int checkpoints_from_json(const json_t *a, ac_job_t *job)
{
    size_t i;
    json_t *c;
    json_array_foreach(a, i, c)
    {
        ac_job_checkpoint_t ck = {.iteration = int_of(c, "iteration"), .created_ms = time_of(c, "created_at")};
        json_t *va = json_object_get(c, "validation_accuracy");
        ck.validation_accuracy = json_is_number(va) ? json_number_value(va) : NAN;
        copy_id(ck.id, json_object_get(c, "checkpoint_id"));
        if (ac_job_checkpoint_add(job, &ck) != 0)
            return -1;
    }
    return 0;
}

/* The optional and owned parts of a record. */
static int owned_from_json(const json_t *rec, ac_job_t *job)
{
    json_t *m = json_object_get(rec, "metrics"), *w = json_object_get(rec, "webhooks");
    job->metrics = json_is_object(m) ? json_incref(m) : json_object();
    job->webhooks = json_is_array(w) ? json_incref(w) : NULL;
    copy_id(job->best_checkpoint, json_object_get(rec, "best_checkpoint_id"));
    copy_id(job->latest_checkpoint, json_object_get(rec, "latest_checkpoint_id"));
    job->cancel_requested = json_is_true(json_object_get(rec, "cancel_requested"));
    if (job->metrics == NULL || ac_job_set_text(&job->owner, json_string_value(json_object_get(rec, "owner"))) != 0 ||
        ac_job_set_text(&job->error, json_string_value(json_object_get(rec, "error"))) != 0 ||
        ac_job_set_text(&job->cancel_reason, json_string_value(json_object_get(rec, "cancel_reason"))) != 0)
        return -1;
    return checkpoints_from_json(json_object_get(rec, "checkpoints"), job);
}

/* The stored config, read with this build's fields only: a key a build before or after this one
 * wrote (a field since removed) must not make every stored job unreadable. */
static int config_from_json(const json_t *stored, ac_train_config_t *c, ac_err_t *err)
{
    /* the policy's keys are stored nested, as the API takes them: {"policy": {"kind": ...}} */
    json_t *known = json_object(), *policy = json_object();
    const json_t *stored_policy = json_object_get(stored, "policy");
    for (const ac_config_field_t *f = ac_train_config_fields; known && policy && f->name != NULL; f++) {
        int nested = strncmp(f->name, "policy.", 7) == 0;
        json_t *v = nested ? json_object_get(stored_policy, f->name + 7) : json_object_get(stored, f->name);
        if (v != NULL)
            json_object_set(nested ? policy : known, nested ? f->name + 7 : f->name, v);
    }
    if (known != NULL && policy != NULL && json_object_size(policy) > 0)
        json_object_set(known, "policy", policy);
    json_decref(policy);
    int rc = known != NULL ? ac_train_config_from_json(c, known, AC_ERR_INTERNAL, err)
                           : ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
    json_decref(known);
    return rc;
}

int ac_job_from_json(const json_t *rec, ac_job_t *job, ac_err_t *err)
{
    ac_job_init(job);
    const char *id = json_string_value(json_object_get(rec, "job_id"));
    const char *agent = json_string_value(json_object_get(rec, "agent_id"));
    if (id == NULL || strlen(id) != AC_UUID_LEN || agent == NULL ||
        ac_job_status_parse(json_string_value(json_object_get(rec, "status")), &job->status) != 0 ||
        !json_is_string(json_object_get(rec, "owner")))
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: a job record is corrupt (id, owner, agent_id or status)");
    memcpy(job->id, id, AC_UUID_LEN + 1);
    snprintf(job->agent_id, sizeof job->agent_id, "%s", agent);
    if (config_from_json(json_object_get(rec, "config"), &job->config, err) != 0)
        return -1;
    job->created_ms = int_of(rec, "created_at_ms");
    job->started_ms = time_of(rec, "started_at");
    job->finished_ms = time_of(rec, "finished_at");
    job->cancelled_ms = time_of(rec, "cancelled_at");
    job->eta_ms = time_of(rec, "estimated_completion");
    job->current_iteration = int_of(rec, "current_iteration");
    job->total_iterations = int_of(rec, "total_iterations");
    job->cost_micro = int_of(rec, "cost_micro");
    job->budget_micro = int_of(rec, "budget_micro");
    job->trajectories_generated = int_of(rec, "trajectories_generated");
    job->trajectories_stored = int_of(rec, "trajectories_stored");
    job->oldest_iteration = int_of(rec, "oldest_iteration");
    job->episodes = int_of(rec, "episodes");
    job->plugin_failures = int_of(rec, "plugin_failures");
    job->n_training = int_of(rec, "n_training");
    job->n_evaluation = int_of(rec, "n_evaluation");
    job->run = int_of(rec, "run");
    job->queue_seq = int_of(rec, "queue_seq");
    job->event_seq = int_of(rec, "event_seq");
    job->crashes = (int)int_of(rec, "crashes");
    job->inference_cost_micro = int_of(rec, "inference_cost_micro");
    copy_id(job->init_checkpoint, json_object_get(rec, "init_checkpoint_id"));
    job->imported = json_is_true(json_object_get(rec, "imported"));
    if (owned_from_json(rec, job) != 0) {
        ac_job_free(job);
        return ac_err_set(err, AC_ERR_INTERNAL, "jobs: out of memory");
    }
    return 0;
}
