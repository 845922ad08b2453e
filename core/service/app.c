#include "service/app.h"

#include <string.h>

int ac_app_may_see(const ac_call_ctx_t *ctx, const char *owner)
{
    return (owner != NULL && strcmp(owner, ctx->principal->sub) == 0) ||
           ac_principal_has(ctx->principal, AC_PERM_TRAINING_ADMIN);
}

int ac_app_load_job(const ac_call_ctx_t *ctx, const char *job_id, ac_job_t *job, ac_err_t *err)
{
    int found = ac_jobs_get(ac_app_of(ctx)->jobs, job_id, job, err);
    if (found < 0)
        return -1;
    if (found) {
        if (ac_app_may_see(ctx, job->owner))
            return 0;
        ac_job_free(job);
    }
    return ac_err_field(err, AC_ERR_NOT_FOUND, "job_id", "no job %s", job_id);
}

ac_lua_host_t *ac_app_plugin_host(const ac_call_ctx_t *ctx, ac_err_t *err)
{
    const ac_config_t *cfg = ac_app_of(ctx)->cfg;
    return ac_lua_host_create(cfg->lua_dir, cfg->plugins_dir, &cfg->plugin_limits, err);
}

int ac_app_job_agent_decl(const ac_call_ctx_t *ctx, const ac_job_t *job, const char *field, ac_agent_decl_t *d,
                          ac_err_t *err)
{
    ac_agent_binding_t bind;
    if (ac_config_agent(ac_app_of(ctx)->cfg, job->agent_id, &bind) != 0)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, field, "the job's agent is no longer available");
    ac_lua_host_t *h = ac_app_plugin_host(ctx, err);
    ac_agent_t *a = h ? ac_agent_open(h, bind.agent, err) : NULL;
    int rc = a != NULL ? ac_agent_decl_of(d, a, err) : -1;
    ac_agent_close(a);
    ac_lua_host_destroy(h);
    return rc;
}

int ac_app_find_checkpoint(const ac_call_ctx_t *ctx, const char *ckpt_id, const char *field, ac_job_t *job,
                           ac_err_t *err)
{
    ac_jobs_t *jobs = ac_app_of(ctx)->jobs;
    for (int64_t offset = 0;;) {
        ac_job_list_t l;
        if (ac_jobs_list_by_owner(jobs, ctx->principal->sub, -1, offset, 200, &l, err) != 0)
            return -1;
        int found = -1;
        for (size_t i = 0; i < l.n && found < 0; i++)
            if (ac_job_checkpoint_find(&l.jobs[i], ckpt_id) != NULL)
                found = (int)i;
        if (found >= 0) {
            *job = l.jobs[found];
            ac_job_init(&l.jobs[found]); /* moved out */
            ac_job_list_free(&l);
            return 0;
        }
        offset += (int64_t)l.n;
        int more = l.n > 0 && offset < l.total;
        ac_job_list_free(&l);
        if (!more)
            return ac_err_field(err, AC_ERR_NOT_FOUND, field, "no checkpoint %s among your jobs' kept checkpoints",
                                ckpt_id);
    }
}
