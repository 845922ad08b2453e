/* JSON-RPC 2.0 over one HTTP request body: single calls, notifications and batches.
 *
 * The method table declares, for each method, its handler, the permission it needs, its
 * rate-limit class and the shape of its parameters; authentication, permission, rate-limit and
 * parameter-shape checks run here, once, before the handler. Handlers only do their own work.
 * This is also the only place where an ac_err_t becomes a JSON-RPC error object: -32603
 * (AC_ERR_INTERNAL) answers say "Internal error" with data {error: the first line of the
 * message without file paths, ref}, and the whole message, with any Lua traceback, goes to
 * stderr under the same ref (errors.expose_internal = true answers with all of it instead).
 *
 * Order of work for a request (README, "Limits"): the token, from the Authorization header alone
 * (ac_rpc_authenticate); for a large body the principal's large-request window (ac_rpc_admit_large,
 * the HTTP layer decides what is large); then a scan of the raw text that bounds nesting and the
 * number of values; only then the parser; then, per call, permission, the method's rate limit,
 * parameter shapes and the handler. */
#ifndef AC_RPC_H
#define AC_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "net/auth.h"
#include "net/params.h"
#include "lua/config.h"
#include "base/err.h"
#include "net/ratelimit.h"

typedef struct ac_rpc ac_rpc_t;

typedef struct ac_call_ctx {
    const ac_rpc_t *rpc;
    const ac_principal_t *principal; /* the authenticated caller */
    void *app;                       /* the application object given to ac_rpc_create */
    int64_t now_ms;
    /* A handler may answer with ready JSON text instead of *result: a malloc'd, valid JSON
     * object that the response embeds as is (the hot path of a cached status skips building
     * and printing the result). The rpc layer frees it. */
    char *raw_result;
    size_t raw_len;
} ac_call_ctx_t;

/* A handler gets validated params (an object; never NULL) and returns 0 with *result set (a new
 * reference), or -1 with err set. */
typedef int (*ac_rpc_handler_t)(ac_call_ctx_t *ctx, json_t *params, json_t **result, ac_err_t *err);

enum {
    AC_METHOD_DEFER = 1, /* long work: runs on an RPC worker thread, never on an event loop */
};

/* One JSON-RPC method: the declaration rpc.c checks and dispatches by (Redis's command table). */
typedef struct ac_method {
    const char *name;
    ac_rpc_handler_t handler;
    uint32_t permission; /* AC_PERM_* bits all required */
    int rl_class;        /* AC_RL_* */
    int flags;           /* AC_METHOD_* */
    int param_error;     /* code for a parameter of the wrong shape: -32602, or -32600 where docs/api.md says so */
    const ac_param_spec_t *params; /* terminated by AC_PARAMS_END (NULL: none) */
    const char *doc;
    const int *errors; /* the method's own error codes, 0-terminated (NULL: none); discovery lists
                          them with the ones every method can return */
} ac_method_t;

/* Checks a method table's declarations: names unique, parameters well formed (a range only on
 * numbers and arrays, min <= max, a default only on an optional integer, number or boolean and
 * within its range, choices only on strings). Returns 0, or -1 with err naming the method and
 * parameter. ac_rpc_create refuses a table that fails it. */
int ac_rpc_check_table(const ac_method_t *methods, ac_err_t *err);

/* methods: terminated by {NULL}; must outlive the rpc object. auth and rl are borrowed. Returns
 * NULL when out of memory or when the table fails ac_rpc_check_table (the reason on stderr: a
 * table is the program's own, so this is a bug caught at start). */
ac_rpc_t *ac_rpc_create(const ac_method_t *methods, void *app, ac_auth_t *auth, ac_ratelimit_t *rl,
                        const ac_config_t *cfg);
void ac_rpc_destroy(ac_rpc_t *rpc);

typedef struct ac_rpc_response {
    int status;          /* HTTP status: 200, 204 (only notifications), 401, 429; ac_rpc_refuse: any */
    char *body;          /* malloc'd JSON text, NULL with 204 */
    size_t len;
    int has_rate;        /* X-RateLimit-* headers apply */
    ac_rate_info_t rate;
    int retry_after_s;   /* > 0: send Retry-After */
    int unauthorized;    /* send WWW-Authenticate: Bearer error="invalid_token" */
} ac_rpc_response_t;

enum { AC_RPC_DONE = 0, AC_RPC_DEFER = 1 };

/* Verifies the bearer token of a request from its Authorization header value alone (auth_header
 * NULL when there is none), before anything looks at the body. Returns 0 with *principal filled
 * (*out zeroed), or -1 with *out holding the 401 answer: -32002 with data.error, `unauthorized`
 * set, and id null, since the body of an unauthenticated request is never parsed. Thread-safe. */
int ac_rpc_authenticate(ac_rpc_t *rpc, const char *auth_header, size_t auth_len, ac_principal_t *principal,
                        ac_rpc_response_t *out);

/* Counts one request with a large body against the principal's rate_limits.large_requests
 * window, before the body is parsed. Returns 0 when it may proceed (*out zeroed), or -1 with *out
 * holding the 429 answer: -32029, data {field "body", error, retry_after_s, limit}, id null,
 * Retry-After and the window's X-RateLimit-* values. Thread-safe. */
int ac_rpc_admit_large(ac_rpc_t *rpc, const ac_principal_t *principal, ac_rpc_response_t *out);

/* Handles one request body for principal (from ac_rpc_authenticate; borrowed for the call). The
 * raw text is scanned first: nesting over limits.max_json_depth or more than
 * limits.max_json_values values is -32600 (id null) without parsing. With allow_defer set, a
 * request that calls an AC_METHOD_DEFER method is left untouched and AC_RPC_DEFER is returned:
 * the caller runs ac_rpc_handle_as again, with allow_defer unset, on a worker thread. Otherwise
 * fills *out and returns AC_RPC_DONE. Thread-safe. */
int ac_rpc_handle_as(ac_rpc_t *rpc, const ac_principal_t *principal, const char *body, size_t len, int allow_defer,
                     ac_rpc_response_t *out);

/* ac_rpc_authenticate, then (with a valid token) ac_rpc_handle_as: a whole request in one call.
 * No large-request accounting: that is for the HTTP layer, which knows what is large. */
int ac_rpc_handle(ac_rpc_t *rpc, const char *auth_header, size_t auth_len, const char *body, size_t len,
                  int allow_defer, ac_rpc_response_t *out);

/* Fills *out with a refusal that no call was parsed for: err (borrowed) as a JSON-RPC error with
 * id null, HTTP status `status`, and Retry-After when retry_after_s > 0. */
void ac_rpc_refuse(const ac_err_t *err, int status, int retry_after_s, ac_rpc_response_t *out);

void ac_rpc_response_free(ac_rpc_response_t *r);

/* The method table, for discovery and tests. */
const ac_method_t *ac_rpc_methods(const ac_rpc_t *rpc);

/* The OpenRPC document of the method table (what `rpc.discover` answers). New reference. */
json_t *ac_rpc_openrpc(const ac_rpc_t *rpc);

/* Appends the request counters and latency histograms in Prometheus text format to *buf
 * (malloc'd, grown as needed; *len bytes used). Returns 0 or -1 (memory). */
int ac_rpc_metrics_text(const ac_rpc_t *rpc, char **buf, size_t *len, size_t *cap);

#endif
