/* The application object the JSON-RPC handlers receive (ac_call_ctx_t.app): the service's
 * shared parts, created by the server at start and destroyed at exit. */
#ifndef AC_APP_H
#define AC_APP_H

#include "net/auth.h"
#include "lua/config.h"
#include "net/ratelimit.h"
#include "store/store.h"
#include "service/webhook.h"
#include "service/workers.h"

typedef struct ac_app {
    const ac_config_t *cfg;
    ac_store_t *store;
    ac_auth_t *auth;
    ac_ratelimit_t *rl;
    ac_workers_t *workers;
    ac_webhooks_t *webhooks;
} ac_app_t;

#endif
