/* Server configuration: a Lua file returning a table (examples/server.lua documents every key),
 * then command-line flags and environment variables on top. The config is trusted operator
 * input, so it runs in a plain Lua state (not the plugin sandbox) with no instruction limits.
 *
 * Every key is declared once, in config.c's field table (section, key, type, range, default,
 * doc, place in ac_config_t): the reader, the defaults, ac_config_to_json and the reference that
 * `agentcore config --reference` prints (docs/configuration.md) all come from it. */
#ifndef AC_CONFIG_H
#define AC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "lua/lua_host.h"

#define AC_MAX_LISTEN 8

/* Rate-limit classes: one per method group (docs/api.md, "Rate limits"). */
enum ac_rl_class {
    AC_RL_START,
    AC_RL_STATUS,
    AC_RL_CANCEL,
    AC_RL_EVALUATE,
    AC_RL_EXPORT,
    AC_RL_ACT,   /* agents.act: one forward pass of a trained policy */
    AC_RL_RUN,   /* agents.run: one episode of the agent's plugins */
    AC_RL_OTHER, /* list_*, discovery and the methods later issues add */
    AC_RL_LARGE, /* not a method group: requests whose body is above parse_on_loop_bytes, counted
                  * per principal from the headers before the body is parsed */
    AC_RL_COUNT
};

/* store.backend */
enum ac_store_backend { AC_STORE_LMDB = 0, AC_STORE_POSTGRESQL = 1 };

typedef struct ac_rate_rule {
    int limit;    /* requests per window; 0 disables the limit */
    int window_s; /* window length in seconds */
} ac_rate_rule_t;

#define AC_MAX_BUDGETS 64
#define AC_MAX_AGENTS 64
#define AC_MAX_RETRIES 16

typedef struct ac_agent_binding {
    char *id;        /* the agent_id clients send */
    char *agent;     /* plugins/agents/<agent>.lua */
    char *reward;    /* plugins/rewards/<reward>.lua */
    char *validator; /* plugins/validators/<validator>.lua */
} ac_agent_binding_t;

typedef struct ac_config {
    char *path; /* the file read, or NULL for built-in defaults */

    char *listen[AC_MAX_LISTEN]; /* "HOST:PORT" cleartext listeners (HTTP/1.1 and h2c) */
    int n_listen;
    int threads; /* event-loop threads; 0 = number of cores */
    char *data_dir;

    /* the store (store/jobs.h): LMDB in data_dir, or one PostgreSQL database several nodes share */
    int store_backend;      /* AC_STORE_LMDB or AC_STORE_POSTGRESQL */
    char *store_dsn;        /* libpq connection string or URI (AGENTCORE_STORE_DSN wins over it) */
    char *store_node;       /* this node's name; NULL: made once and kept in data_dir */
    int store_pool_size;    /* PostgreSQL connections at most; 0: one per thread that may use one */
    int store_lease_s;      /* a running job's lease; another node takes the job after it runs out */
    int store_auto_migrate; /* bring an older schema up to date at start */

    char *tls_listen; /* "HOST:PORT" TLS listener (HTTP/1.1 and h2 by ALPN), or NULL */
    char *tls_cert_file;
    char *tls_key_file;

    char *auth_alg; /* "HS256" | "RS256" | "ES256" */
    char *auth_secret;
    char *auth_public_key_file;
    char *auth_private_key_file;
    char *auth_issuer;
    char *auth_audience;
    int auth_leeway_s;

    ac_rate_rule_t rate[AC_RL_COUNT];

    size_t max_body_bytes;      /* request bodies above it get 413 */
    int max_json_depth;         /* nesting above it is -32600 */
    int max_json_values;        /* values in one body above it are -32600, counted before parsing */
    int max_batch;              /* calls in one batch */
    size_t parse_on_loop_bytes; /* bodies above it are parsed on the RPC workers, not on a loop */
    int max_parallel_parses;    /* such large bodies parsed (and their calls run) at once */
    int max_queued_parses;      /* large bodies waiting for a worker; more get 503 */
    size_t trim_after_bytes;    /* after a body or response above it, free heap goes back to the
                                 * kernel (malloc_trim); 0: never */
    size_t recv_buffer_bytes;   /* SO_RCVBUF of the listeners (and so of every connection); 0:
                                 * the kernel's autotuning */
    int rpc_workers;            /* threads that run long RPC calls and large bodies off the loops */

    char *plugins_dir; /* search path "dir1:dir2:...": the config's directories, then the built-in */
    char *lua_dir;
    char *dashboard_dir; /* the files GET /ui/ serves (default: this checkout's sdk/dashboard) */

    /* training service */
    int workers;                  /* job worker threads */
    double step_cost_usd;         /* price of one policy step, added to tool costs */
    double default_budget_usd;    /* a principal's budget over its jobs (reservations + costs) */
    int n_budgets;                /* per-principal overrides */
    char *budget_sub[AC_MAX_BUDGETS];
    double budget_usd[AC_MAX_BUDGETS];
    int n_agents;                 /* agent_id -> plugins; ids not listed use the plugins of their name */
    ac_agent_binding_t agents[AC_MAX_AGENTS];
    int keep_best_checkpoints;    /* besides the latest, the k with the best validation accuracy */
    long max_trajectories_per_job; /* stored per job; the oldest iterations go first */
    double max_failure_rate;      /* plugin failures per episode above which a job fails */
    ac_lua_limits_t plugin_limits; /* every plugin call's (lua_host.h) */
    /* inference (agents.act): loaded policies kept, by count and by bytes of parameters */
    int inference_cache_policies;
    size_t inference_cache_bytes;
    int abandon_after_ms;         /* a job's plugin call this far past its wall-clock limit is
                                     abandoned: the job fails, the worker is replaced */

    /* webhooks (webhook.h) */
    char *webhook_secret;         /* whsec_<base64>: signs deliveries of config and job subscriptions */
    char *webhook_policy;         /* plugins/webhooks/<name>.lua */
    int webhook_allow_private;    /* deliver to loopback and private addresses (tests) */
    int webhook_timeout_ms;
    int n_webhook_retries;        /* delays before attempt 1, 2, ... (seconds) */
    double webhook_retry_s[AC_MAX_RETRIES];
    double webhook_jitter;        /* each delay is scaled by 1 +- jitter at random */
    json_t *webhook_subscriptions; /* [{url, events}] for every job (owned; NULL when none) */
    int webhook_deliver_on_policy_error; /* a failing policy: 0 drops the delivery, 1 delivers it unchanged */

    /* errors: -32603 answers carry the whole message and Lua traceback (development) instead
     * of a cleaned description and a reference into the server log */
    int errors_expose_internal;
} ac_config_t;

/* Fills cfg with the built-in defaults, the field table's (listen 127.0.0.1:8001, data ./data,
 * HS256, the documented rate limits, 16 MiB bodies, ...; examples/server.lua lists them all). Free with
 * ac_config_free. */
void ac_config_defaults(ac_config_t *cfg);

/* Reads path (a Lua file returning a table) over the values already in cfg. Errors name
 * "file:line: problem" (the line of the key when a value is wrong): an unknown key in any
 * section, a value of the wrong type, out of range ("'key' must be between A and B") or not one
 * of the key's choices. */
int ac_config_load(ac_config_t *cfg, const char *path, ac_err_t *err);

/* Every key's value in cfg, flat: {"listen": "127.0.0.1:8001", "limits.max_body_bytes": 16777216,
 * "rate_limits.start_grpo.limit": 10, ...}; unset strings are null. It holds the secrets: never
 * log it. New reference. */
json_t *ac_config_to_json(const ac_config_t *cfg);

/* The reference of every key, by top-level section in the order of examples/server.lua:
 * [{section ("" for the top level), doc, keys: [{key (the path inside the section, e.g.
 * "start_grpo.limit"), type, default (the value, as ac_config_to_json gives it), default_doc
 * (when present: how the docs word a default that is a path of this checkout), range (text),
 * doc, and for numbers min, max and zero_off (0 is allowed below min)}]}]. New reference. */
json_t *ac_config_reference(void);

/* Applies AGENTCORE_JWT_SECRET (sets HS256 and that secret) and AGENTCORE_STORE_DSN (sets
 * store.dsn and store.backend = "postgresql"), and checks that the whole config is usable (a
 * secret or key file for the algorithm, a TLS pair when tls_listen is set, a DSN for
 * PostgreSQL). */
int ac_config_finish(ac_config_t *cfg, ac_err_t *err);

/* Replaces a string field (used by command-line flags). */
void ac_config_set_str(char **field, const char *value);

void ac_config_free(ac_config_t *cfg);

/* The plugins of an agent_id: the config's binding, else the agent and reward plugins named
 * like the id and the default validator. Returns 0, or -1 when the id names no agent plugin. */
int ac_config_agent(const ac_config_t *cfg, const char *agent_id, ac_agent_binding_t *out);

/* A principal's budget in USD. */
double ac_config_budget(const ac_config_t *cfg, const char *sub);

/* The rate-limit class name used in the config file ("start_grpo", "get_status", ...). */
const char *ac_rl_class_name(int cls);

#endif
