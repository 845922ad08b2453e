/* The service's JSON-RPC method table (the training.* and webhooks.* methods): per method its
 * handler (handlers.h), permission, rate-limit class, whether it runs off the event loop, and
 * its parameters declared with types, ranges, defaults and choices (net/params.h), which rpc.c
 * checks before the handler runs and rpc.discover publishes. */
#ifndef AC_METHODS_H
#define AC_METHODS_H

#include "net/rpc.h"

/* Terminated by {NULL}. Handlers expect ac_call_ctx_t.app to be an ac_app_t. */
extern const ac_method_t ac_service_methods[];

#endif
