/* `agentcore serve`: assembles the service (store, auth, rate limits, JSON-RPC, HTTP) from a
 * finished config, runs it until SIGTERM or SIGINT, and shuts it down cleanly: stop accepting,
 * finish in-flight requests, close LMDB. */
#ifndef AC_SERVER_H
#define AC_SERVER_H

#include "lua/config.h"
#include "base/err.h"

/* Blocks until a stop signal. Prints one line "agentcore: listening on http://HOST:PORT ..."
 * to stdout once the listeners are bound (tests wait for it). Returns 0 after a clean stop. */
int ac_server_run(const ac_config_t *cfg, ac_err_t *err);

/* The verifier/issuer the config describes (the `token` command uses it too). */
#include "net/auth.h"
ac_auth_t *ac_server_auth(const ac_config_t *cfg, ac_err_t *err);

#endif
