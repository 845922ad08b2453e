/* The service's JSON-RPC handlers, one per method of the table (methods.c), named after the
 * method. Each gets params already checked against the table (net/params.h), expects
 * ac_call_ctx_t.app to be an ac_app_t, and returns 0 with *result, or -1 with err: errors are
 * values, rpc.c renders them. */
#ifndef AC_HANDLERS_H
#define AC_HANDLERS_H

#include "base/train_config.h"
#include "engine/actor.h"
#include "net/rpc.h"

/* start.c */
int ac_method_training_start_grpo(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
/* status.c */
int ac_method_training_get_status(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
/* evaluate.c */
int ac_method_training_evaluate(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
/* queries.c */
int ac_method_training_cancel(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
int ac_method_training_export_trajectories(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
int ac_method_training_get_metrics(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
int ac_method_training_list_jobs(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
int ac_method_training_list_checkpoints(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
int ac_method_training_list_events(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
/* agents.c */
int ac_method_agents_act(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
int ac_method_agents_run(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
/* The defer check of the AC_METHOD_DEFER_IF methods (ac_rpc_set_defer_check; app is the ac_app_t):
 * agents.act runs on the event loop when the policy it names is loaded, else on an RPC worker. */
int ac_service_defer_check(void *app, const ac_method_t *m, const json_t *params);
/* checkpoints.c */
int ac_method_training_export_checkpoint(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
int ac_method_training_import_checkpoint(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
/* start_grpo's init_checkpoint: the caller's checkpoint ckpt_id as *blob (malloc'd, *len bytes),
 * its policy's shape written into cfg (a shape field the caller gave that differs is `code`, named
 * "config.<field>"), and agent_id's plugin checked against it. Errors: AC_ERR_NOT_FOUND (field
 * init_checkpoint), `code` (config, agent_id), AC_ERR_INTERNAL. */
int ac_service_init_checkpoint(ac_call_ctx_t *ctx, const char *ckpt_id, const char *agent_id, ac_train_config_t *cfg,
                               uint8_t **blob, size_t *len, int code, ac_err_t *err);
/* The shape of a policy (kind, sizes) into a job's config; a field given explicitly that differs
 * is `code` with data.field "config.<field>". */
int ac_service_config_shape(ac_train_config_t *cfg, const ac_actor_config_t *a, int code, ac_err_t *err);
/* subscriptions.c */
int ac_method_webhooks_subscribe(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
int ac_method_webhooks_list(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
int ac_method_webhooks_unsubscribe(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);

#endif
