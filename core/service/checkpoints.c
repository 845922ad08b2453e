/* Checkpoints leaving and entering the service: training.export_checkpoint (the file, base64 in
 * the answer), training.import_checkpoint (a file made elsewhere becomes a job of the caller's
 * that has ended, holding it), and what training.start_grpo's init_checkpoint needs. The file's
 * layout is docs/checkpoints.md's (engine/checkpoint.h). */
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/train_config.h"
#include "engine/checkpoint.h"
#include "engine/infer.h"
#include "lua/plugin.h"
#include "service/app.h"
#include "service/handlers.h"
#include "store/jobs.h"

static const char *kind_name(int kind)
{
    return kind == AC_ACTOR_SEQUENCE ? "sequence" : "bag";
}

/* ---- the policy's shape in a job's config ------------------------------------------------------------ */

/* A field of the config that fixes the policy's shape, and its value in an actor's config. */
static int shape_value(const char *name, const ac_actor_config_t *a, int *v)
{
    static const char *const names[] = {"policy.kind", "n_buckets", "embed_dim", "hidden_size", "policy.max_tokens",
                                        "policy.d_model", "policy.n_heads", "policy.n_layers", "policy.d_ff"};
    const int values[] = {a->kind, a->n_buckets, a->d_emb, a->hidden, a->max_tokens, a->enc.d_model,
                          a->enc.n_heads, a->enc.n_layers, a->enc.d_ff};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i], name) == 0) {
            *v = values[i];
            return 1;
        }
    return 0;
}

int ac_service_config_shape(ac_train_config_t *cfg, const ac_actor_config_t *a, int code, ac_err_t *err)
{
    int i = 0;
    for (const ac_config_field_t *f = ac_train_config_fields; f->name != NULL; f++, i++) {
        int v;
        if (!shape_value(f->name, a, &v))
            continue;
        int *field = (int *)((char *)cfg + f->offset);
        if ((cfg->given >> i & 1) && *field != v) {
            char name[64];
            snprintf(name, sizeof name, "config.%s", f->name);
            return ac_err_field(err, code, name, "is %d in the init checkpoint: a job that starts from it has its "
                                "policy's shape (leave it out)", v);
        }
        *field = v;
    }
    return 0;
}

/* The agent plugin of agent_id (open on a host of this call's own) against a policy: its
 * declarations into *d when it has the tools the policy was made for. */
static int agent_matches(ac_call_ctx_t *ctx, const char *agent_id, const ac_actor_config_t *a, int code,
                         ac_agent_decl_t *d, ac_err_t *err)
{
    ac_agent_binding_t bind;
    if (ac_config_agent(ac_app_of(ctx)->cfg, agent_id, &bind) != 0)
        return ac_err_field(err, code, "agent_id", "unknown agent '%s'", agent_id);
    ac_lua_host_t *h = ac_app_plugin_host(ctx, err);
    ac_agent_t *agent = h ? ac_agent_open(h, bind.agent, err) : NULL;
    int rc = agent != NULL ? ac_agent_decl_of(d, agent, err) : -1;
    ac_agent_close(agent);
    ac_lua_host_destroy(h);
    if (rc != 0)
        return -1;
    if (ac_agent_decl_check(d, a, err) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", err->message);
        ac_agent_decl_free(d);
        return ac_err_field(err, code, "agent_id", "the agent does not fit the checkpoint's policy: %s", msg);
    }
    return 0;
}

int ac_service_init_checkpoint(ac_call_ctx_t *ctx, const char *ckpt_id, const char *agent_id, ac_train_config_t *cfg,
                               uint8_t **blob, size_t *len, int code, ac_err_t *err)
{
    *blob = NULL;
    ac_job_t job;
    if (ac_app_find_checkpoint(ctx, ckpt_id, "init_checkpoint", &job, err) != 0)
        return -1;
    int found = ac_jobs_get_checkpoint(ac_app_of(ctx)->jobs, job.id, ckpt_id, blob, len, err);
    ac_job_free(&job);
    if (found <= 0)
        return found < 0 ? -1
                         : ac_err_field(err, AC_ERR_NOT_FOUND, "init_checkpoint", "checkpoint %s is gone (retention)",
                                        ckpt_id);
    ac_checkpoint_t ck;
    ac_agent_decl_t d;
    int rc = ac_checkpoint_load(&ck, *blob, *len, err);
    if (rc != 0) {
        err->code = AC_ERR_INTERNAL;
    } else {
        rc = ac_service_config_shape(cfg, ac_actor_config(ck.policy), code, err) ||
                     agent_matches(ctx, agent_id, ac_actor_config(ck.policy), code, &d, err)
                 ? -1
                 : 0;
        if (rc == 0)
            ac_agent_decl_free(&d);
        ac_checkpoint_release(&ck);
    }
    if (rc != 0) {
        free(*blob);
        *blob = NULL;
    }
    return rc;
}

/* ---- training.export_checkpoint ---------------------------------------------------------------------- */

int ac_method_training_export_checkpoint(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    const char *job_id = json_string_value(json_object_get(params, "job_id"));
    const char *ckpt = json_string_value(json_object_get(params, "checkpoint_id"));
    ac_job_t job;
    if (job_id == NULL && ckpt == NULL)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "job_id", "job_id or checkpoint_id is required");
    if ((job_id ? ac_app_load_job(ctx, job_id, &job, err) : ac_app_find_checkpoint(ctx, ckpt, "checkpoint_id", &job,
                                                                                     err)) != 0)
        return -1;
    /* the one training.evaluate picks when none is named: the best by validation, else the latest */
    const ac_job_checkpoint_t *c = ac_job_checkpoint_find(&job, ckpt ? ckpt : job.best_checkpoint);
    if (ckpt == NULL && (c == NULL || isnan(c->validation_accuracy)))
        c = ac_job_checkpoint_find(&job, job.latest_checkpoint);
    uint8_t *blob = NULL;
    size_t len = 0;
    int rc = c == NULL ? (ckpt ? ac_err_field(err, AC_ERR_NOT_FOUND, "checkpoint_id", "no checkpoint %s in this job", ckpt)
                               : ac_err_field(err, AC_ERR_NOT_FOUND, "checkpoint_id", "the job has no checkpoint yet"))
                       : ac_jobs_get_checkpoint(ac_app_of(ctx)->jobs, job.id, c->id, &blob, &len, err);
    if (rc == 0)
        rc = ac_err_field(err, AC_ERR_NOT_FOUND, "checkpoint_id", "checkpoint %s is gone (retention)", c->id);
    ac_checkpoint_t ck;
    char *b64 = NULL;
    if (rc == 1 && ac_checkpoint_load(&ck, blob, len, err) != 0) {
        err->code = AC_ERR_INTERNAL;
        rc = -1;
    } else if (rc == 1) {
        const ac_actor_config_t *a = ac_actor_config(ck.policy);
        uint32_t version = 0;
        for (int i = 0; i < 4; i++)
            version |= (uint32_t)blob[8 + i] << (8 * i);
        char crc[16];
        snprintf(crc, sizeof crc, "%08x", ac_checkpoint_crc32(blob, len - 4));
        if (len > (size_t)INT32_MAX / 4 * 3 || (b64 = malloc(4 * ((len + 2) / 3) + 1)) == NULL) {
            rc = ac_err_set(err, AC_ERR_INTERNAL, "the checkpoint is too large to export (%zu bytes)", len);
        } else {
            EVP_EncodeBlock((unsigned char *)b64, blob, (int)len);
            *result = json_pack("{s:s, s:s, s:I, s:o, s:s, s:I, s:{s:s, s:I}, s:I, s:s, s:s}", "job_id", job.id,
                                "checkpoint_id", c->id, "iteration", (json_int_t)c->iteration, "validation_accuracy",
                                isnan(c->validation_accuracy) ? json_null() : json_real(c->validation_accuracy),
                                "format", "agentcore-checkpoint", "version", (json_int_t)version, "policy", "kind",
                                kind_name(a->kind), "n_params", (json_int_t)ac_actor_n_params(ck.policy), "bytes",
                                (json_int_t)len, "crc32", crc, "data", b64);
            rc = *result != NULL ? 0 : ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
        }
        ac_checkpoint_release(&ck);
    }
    free(b64);
    free(blob);
    ac_job_free(&job);
    return rc == 0 ? 0 : -1;
}

/* ---- training.import_checkpoint ---------------------------------------------------------------------- */

/* Strict base64 (RFC 4648, padded): *out (malloc'd) of *n bytes, or -1. */
static int b64_decode(const char *s, size_t len, uint8_t **out, size_t *n)
{
    *out = NULL;
    if (len == 0 || len % 4 != 0 || len > (size_t)INT32_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                 c == '/' || (c == '=' && i >= len - 2 && (i == len - 1 || s[len - 1] == '='));
        if (!ok)
            return -1;
    }
    if ((*out = malloc(len / 4 * 3 + 1)) == NULL)
        return -1;
    int got = EVP_DecodeBlock(*out, (const unsigned char *)s, (int)len);
    if (got < 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    *n = (size_t)got - (s[len - 1] == '=') - (s[len - 2] == '='); /* DecodeBlock counts the padding */
    return 0;
}

int ac_method_training_import_checkpoint(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    ac_app_t *app = ac_app_of(ctx);
    json_t *data = json_object_get(params, "checkpoint");
    uint8_t *blob = NULL;
    size_t len = 0;
    if (b64_decode(json_string_value(data), json_string_length(data), &blob, &len) != 0)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "checkpoint", "must be the checkpoint file in base64");
    ac_checkpoint_t ck;
    if (ac_checkpoint_load(&ck, blob, len, err) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", err->message);
        free(blob);
        return err->code == AC_ERR_INTERNAL ? -1 : ac_err_field(err, AC_ERR_INVALID_PARAMS, "checkpoint", "%s", msg);
    }
    /* what the file says of itself (docs/checkpoints.md, "Metadata"), then what the call says */
    json_t *meta = ck.meta_len ? json_loadb((const char *)ck.meta, ck.meta_len, 0, NULL) : NULL;
    const char *agent_id = json_string_value(json_object_get(params, "agent_id"));
    if (agent_id == NULL)
        agent_id = json_string_value(json_object_get(meta, "agent_id"));
    ac_train_config_t cfg;
    ac_train_config_defaults(&cfg);
    ac_err_t ignored = AC_ERR_INIT;
    json_t *mcfg = json_object_get(meta, "config");
    if (json_is_object(mcfg) && ac_train_config_from_json(&cfg, mcfg, AC_ERR_INVALID_PARAMS, &ignored) != 0)
        ac_train_config_defaults(&cfg); /* a config this build cannot read: the defaults */
    ac_err_clear(&ignored);
    cfg.given = 0;
    ac_agent_decl_t d;
    int rc = agent_id == NULL ? ac_err_field(err, AC_ERR_INVALID_PARAMS, "agent_id",
                                             "is required: the checkpoint does not name its agent")
                              : 0;
    if (rc == 0 && ac_train_config_from_json(&cfg, json_object_get(params, "config"), AC_ERR_INVALID_PARAMS, err) != 0)
        rc = -1;
    const ac_actor_config_t *a = ac_actor_config(ck.policy);
    if (rc == 0 && (ac_service_config_shape(&cfg, a, AC_ERR_INVALID_PARAMS, err) != 0 ||
                    agent_matches(ctx, agent_id, a, AC_ERR_INVALID_PARAMS, &d, err) != 0))
        rc = -1;
    if (rc == 0) {
        ac_agent_decl_free(&d);
        ac_train_config_resolve(&cfg);
        /* the seed rebuilds the untrained policy training.evaluate compares with: the policy's own */
        if (!(json_is_object(mcfg) && cfg.seed > 0) && a->seed > 0 && a->seed <= 2147483647u)
            cfg.seed = (int)a->seed;
        ac_job_new_t nj = {ctx->principal->sub, agent_id, &cfg, NULL, NULL, NULL, ctx->now_ms, -1, NULL};
        ac_job_t job;
        rc = ac_jobs_import(app->jobs, &nj, blob, len, (int64_t)ck.iteration, &job, err);
        if (rc == 0) {
            char created[40];
            *result = json_pack("{s:s, s:s, s:s, s:s, s:I, s:{s:s, s:I}, s:s}", "job_id", job.id, "checkpoint_id",
                                job.checkpoints[0].id, "status", ac_job_status_name(job.status), "agent_id",
                                job.agent_id, "iteration", (json_int_t)ck.iteration, "policy", "kind",
                                kind_name(a->kind), "n_params", (json_int_t)ac_actor_n_params(ck.policy),
                                "created_at", ac_clock_iso8601(created, sizeof created, job.created_ms, 0));
            ac_job_free(&job);
            rc = *result != NULL ? 0 : ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
        }
    }
    json_decref(meta);
    ac_checkpoint_release(&ck);
    free(blob);
    return rc;
}
