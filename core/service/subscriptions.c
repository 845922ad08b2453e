/* webhooks.subscribe / list / unsubscribe: a principal's own subscriptions (webhook.h). */
#include "service/app.h"
#include "service/handlers.h"
#include "service/webhook.h"

int ac_method_webhooks_subscribe(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    ac_app_t *app = ac_app_of(ctx);
    return ac_webhooks_subscribe(app->hooks, app->cfg, ctx->principal->sub,
                                 json_string_value(json_object_get(params, "url")), json_object_get(params, "events"),
                                 ctx->now_ms, result, err);
}

int ac_method_webhooks_list(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    (void)params;
    json_t *subs;
    if (ac_webhooks_list(ac_app_of(ctx)->hooks, ctx->principal->sub, &subs, err) != 0)
        return -1;
    *result = json_pack("{s:o}", "subscriptions", subs);
    return 0;
}

int ac_method_webhooks_unsubscribe(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err)
{
    const char *id = json_string_value(json_object_get(params, "subscription_id"));
    if (ac_webhooks_unsubscribe(ac_app_of(ctx)->hooks, ctx->principal->sub, id, err) != 0)
        return -1;
    *result = json_pack("{s:s, s:b}", "subscription_id", id, "unsubscribed", 1);
    return 0;
}
