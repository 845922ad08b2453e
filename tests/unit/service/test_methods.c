/* The service's method table: it passes rpc.c's declaration checks, and what it declares is what
 * the API promises, checked through the real rpc layer (every refusal here comes from the table,
 * before any handler runs: the application object is NULL). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/config.h"
#include "net/auth.h"
#include "net/ratelimit.h"
#include "net/rpc.h"
#include "service/methods.h"
#include "store/jobs.h"

#include "check.h"

static const ac_method_t *method(const char *name)
{
    for (const ac_method_t *m = ac_service_methods; m->name != NULL; m++)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

static const ac_param_spec_t *param(const char *m, const char *p)
{
    const ac_method_t *mm = method(m);
    for (const ac_param_spec_t *s = mm ? mm->params : NULL; s != NULL && s->name != NULL; s++)
        if (strcmp(s->name, p) == 0)
            return s;
    return NULL;
}

static void test_declarations(void)
{
    ac_err_t err = AC_ERR_INIT;
    CHECK(ac_rpc_check_table(ac_service_methods, &err) == 0, "the table passes ac_rpc_check_table");
    ac_err_clear(&err);
    int n = 0, job_first = 1;
    for (const ac_method_t *m = ac_service_methods; m->name != NULL; m++, n++) {
        const ac_param_spec_t *p = m->params;
        /* export_checkpoint may name a checkpoint alone; import_checkpoint makes a job */
        if (strncmp(m->name, "training.", 9) == 0 && strcmp(m->name, "training.start_grpo") != 0 &&
            strcmp(m->name, "training.list_jobs") != 0 && strcmp(m->name, "training.export_checkpoint") != 0 &&
            strcmp(m->name, "training.import_checkpoint") != 0)
            job_first &= p != NULL && strcmp(p->name, "job_id") == 0 && p->type == AC_P_UUID && p->required;
    }
    CHECK(n == 16, "16 methods");
    CHECK(job_first, "every method of one job takes job_id first, a required UUID");
    const ac_param_spec_t *status = param("training.list_jobs", "status");
    CHECK(status != NULL && status->choices == ac_job_status_names,
          "list_jobs' status choices are the jobs store's one table of status names");
    const ac_param_spec_t *limit = param("training.export_trajectories", "limit");
    CHECK(limit != NULL && limit->max == 10000 && limit->over_code == AC_ERR_EXPORT_LIMIT && limit->def == 1000 &&
              limit->min == 1,
          "export's limit: 1..10000, default 1000, -40005 above");
    CHECK(method("training.start_grpo")->param_error == AC_ERR_INVALID_REQUEST &&
              (method("training.start_grpo")->flags & AC_METHOD_DEFER) &&
              (method("training.evaluate")->flags & AC_METHOD_DEFER) &&
              !(method("training.get_status")->flags & AC_METHOD_DEFER),
          "start_grpo answers bad parameters with -32600; plugin-running methods are deferred, get_status is not");
}

static ac_auth_t *auth;
static ac_ratelimit_t *rl;
static char header[1024];

static json_t *call(ac_rpc_t *rpc, const char *method_name, const char *params)
{
    char body[2048];
    snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"id\":1,\"params\":{%s}}", method_name,
             params);
    ac_rpc_response_t out;
    ac_rpc_handle(rpc, header, strlen(header), body, strlen(body), 0, &out);
    json_t *doc = out.body ? json_loadb(out.body, out.len, 0, NULL) : NULL;
    ac_rpc_response_free(&out);
    return doc;
}

static int refused(json_t *doc, int code, const char *field, const char *text)
{
    json_t *e = json_object_get(doc, "error"), *data = json_object_get(e, "data");
    const char *f = json_string_value(json_object_get(data, "field"));
    const char *t = json_string_value(json_object_get(data, "error"));
    int ok = json_integer_value(json_object_get(e, "code")) == code && f && strcmp(f, field) == 0 &&
             (text == NULL || (t && strcmp(t, text) == 0));
    if (!ok) {
        char *d = json_dumps(doc, JSON_COMPACT);
        fprintf(stderr, "  got %s\n", d ? d : "(none)");
        free(d);
    }
    json_decref(doc);
    return ok;
}

#define JOB "\"job_id\":\"550e8400-e29b-41d4-a716-446655440000\""

static void test_through_rpc(void)
{
    ac_config_t cfg;
    ac_config_defaults(&cfg);
    ac_rpc_t *rpc = ac_rpc_create(ac_service_methods, NULL, auth, rl, &cfg);
    CHECK(rpc != NULL, "an rpc object over the table");
    CHECK(refused(call(rpc, "training.list_jobs", "\"status\":\"paused\""), AC_ERR_INVALID_PARAMS, "status",
                  "must be queued, running, completed, failed or cancelled"),
          "list_jobs: an unknown status is -32602 naming status and every status");
    CHECK(refused(call(rpc, "training.list_jobs", "\"limit\":0"), AC_ERR_INVALID_PARAMS, "limit",
                  "must be between 1 and 1000"),
          "list_jobs: limit 0 is refused with the range");
    CHECK(refused(call(rpc, "training.export_trajectories", JOB ",\"limit\":10001"), AC_ERR_EXPORT_LIMIT, "limit", NULL),
          "export: limit 10001 is -40005 naming limit");
    CHECK(refused(call(rpc, "training.export_trajectories", JOB ",\"offset\":-1"), AC_ERR_INVALID_PARAMS, "offset",
                  "must be at least 0"),
          "export: a negative offset is -32602");
    CHECK(refused(call(rpc, "training.get_metrics", JOB ",\"from_iteration\":4294967296"), AC_ERR_INVALID_PARAMS,
                  "from_iteration", "must be between 0 and 4294967295"),
          "get_metrics: from_iteration beyond 32 bits is refused");
    CHECK(refused(call(rpc, "training.list_events", JOB ",\"cursor\":-5"), AC_ERR_INVALID_PARAMS, "cursor",
                  "must be at least 0"),
          "list_events: a negative cursor is refused");
    CHECK(refused(call(rpc, "training.start_grpo", "\"config\":{}"), AC_ERR_INVALID_REQUEST, "agent_id", "is required"),
          "start_grpo: a missing agent_id is -32600");
    char many[1024] = "\"agent_id\":\"a\",\"config\":{},\"training_data\":[],\"webhooks\":[";
    for (int i = 0; i < 17; i++)
        strcat(many, i ? ",{}" : "{}");
    strcat(many, "]");
    CHECK(refused(call(rpc, "training.start_grpo", many), AC_ERR_INVALID_REQUEST, "webhooks",
                  "must hold at most 16 items"),
          "start_grpo: 17 webhooks are refused (-32600)");
    ac_rpc_destroy(rpc);
    ac_config_free(&cfg);
}

int main(void)
{
    ac_err_t err = AC_ERR_INIT;
    ac_auth_config_t acfg = {.alg = "HS256", .secret = "test-methods-secret-0123456789", .leeway_s = -1};
    auth = ac_auth_create(&acfg, &err);
    char *token = ac_auth_issue(auth, "tester", "training:start,training:view,data:export", 600, (int64_t)time(NULL),
                                &err);
    snprintf(header, sizeof header, "Bearer %s", token);
    free(token);
    ac_rate_rule_t loose[AC_RL_COUNT];
    for (int i = 0; i < AC_RL_COUNT; i++)
        loose[i] = (ac_rate_rule_t){0, 60};
    rl = ac_ratelimit_create(loose);
    test_declarations();
    test_through_rpc();
    ac_ratelimit_destroy(rl);
    ac_auth_destroy(auth);
    return check_done(__FILE__);
}
