/* The training.* JSON-RPC methods (SPEC.md): their declarations and handlers. */
#ifndef AC_TRAINING_H
#define AC_TRAINING_H

#include "net/rpc.h"

/* The method table, terminated by {NULL}. Handlers expect ac_call_ctx_t.app to be an ac_app_t. */
extern const ac_method_t ac_training_methods[];

#endif
