/* The application object the JSON-RPC handlers receive (ac_call_ctx_t.app): the service's
 * shared parts, created by the server at start and destroyed at exit. */
#ifndef AC_APP_H
#define AC_APP_H

#include "auth.h"
#include "config.h"
#include "ratelimit.h"
#include "store.h"
#include "webhook.h"
#include "workers.h"

typedef struct ac_app {
    const ac_config_t *cfg;
    ac_store_t *store;
    ac_auth_t *auth;
    ac_ratelimit_t *rl;
    ac_workers_t *workers;
    ac_webhooks_t *webhooks;
} ac_app_t;

#endif
