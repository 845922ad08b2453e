/* The service's JSON-RPC handlers, one per method of the table (methods.c), named after the
 * method. Each gets params already checked against the table (net/params.h), expects
 * ac_call_ctx_t.app to be an ac_app_t, and returns 0 with *result, or -1 with err: errors are
 * values, rpc.c renders them. */
#ifndef AC_HANDLERS_H
#define AC_HANDLERS_H

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
/* subscriptions.c */
int ac_method_webhooks_subscribe(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
int ac_method_webhooks_list(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);
int ac_method_webhooks_unsubscribe(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);

#endif
