/* The application object the JSON-RPC handlers receive (ac_call_ctx_t.app): the service's
 * shared parts, created by the server at start and destroyed at exit, and what every handler
 * asks of them (which jobs a caller may see, a Lua host for one call). */
#ifndef AC_APP_H
#define AC_APP_H

#include "engine/infer.h"
#include "lua/config.h"
#include "lua/lua_host.h"
#include "net/auth.h"
#include "net/ratelimit.h"
#include "net/rpc.h"
#include "service/policies.h"
#include "service/status.h"
#include "service/webhook.h"
#include "service/workers.h"
#include "store/hooks.h"
#include "store/jobs.h"
#include "store/store.h"

typedef struct ac_app {
    const ac_config_t *cfg;
    ac_store_t *store;          /* the LMDB environment (store.backend = "lmdb"; else NULL) */
    ac_pg_t *pg;                /* the PostgreSQL pool (store.backend = "postgresql"; else NULL) */
    ac_jobs_t *jobs;            /* the jobs kept in one of them */
    ac_hooks_t *hooks;          /* webhook subscriptions and outbox, beside the jobs */
    ac_auth_t *auth;
    ac_ratelimit_t *rl;
    ac_workers_t *workers;      /* NULL: jobs stay queued (tests) */
    ac_webhooks_t *webhooks;    /* NULL: events stay in the outbox (tests) */
    ac_status_cache_t *status;  /* get_status answers by job revision; NULL: none cached */
    ac_policies_t *policies;    /* agents.act's loaded checkpoints */
} ac_app_t;

static inline ac_app_t *ac_app_of(const ac_call_ctx_t *ctx)
{
    return ctx->app;
}

/* 1 when the caller may see a job of this owner: its own, or any with training:admin. */
int ac_app_may_see(const ac_call_ctx_t *ctx, const char *owner);

/* Reads a job the caller may see into *job (the caller frees it). Another principal's job is
 * "not found", as an unknown one (AC_ERR_NOT_FOUND, field job_id): its existence is not
 * revealed. Returns 0 or -1. */
int ac_app_load_job(const ac_call_ctx_t *ctx, const char *job_id, ac_job_t *job, ac_err_t *err);

/* The caller's own job that keeps the checkpoint ckpt_id (its kept checkpoints, or the one it was
 * imported with), into *job (the caller frees it): its jobs are searched newest first. A
 * checkpoint of no job of the caller is AC_ERR_NOT_FOUND (field `field`). Returns 0 or -1. */
int ac_app_find_checkpoint(const ac_call_ctx_t *ctx, const char *ckpt_id, const char *field, ac_job_t *job,
                           ac_err_t *err);

/* A Lua host of the call's own, for plugins run on an RPC worker thread (validators,
 * evaluations), so that no call sees what another (another principal's) left in a Lua state.
 * The caller destroys it; creating one costs well under a millisecond next to the call's work. */
ac_lua_host_t *ac_app_plugin_host(const ac_call_ctx_t *ctx, ac_err_t *err);

/* The declarations (tools and their arguments) of the agent job ran, from its plugin as the
 * config binds it now (job stays the caller's: the binding may point into it). An agent no
 * longer bound is AC_ERR_INVALID_PARAMS on `field`. Returns 0 or -1. */
int ac_app_job_agent_decl(const ac_call_ctx_t *ctx, const ac_job_t *job, const char *field, ac_agent_decl_t *d,
                          ac_err_t *err);

#endif
