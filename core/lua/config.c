#include "lua/config.h"

#include "base/file.h"
#include "lua/lua_json.h"
#include "lua/registry.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const rl_names[AC_RL_COUNT] = {"start_grpo", "get_status", "cancel", "evaluate",
                                                  "export_trajectories", "act", "run", "other", "large_requests"};

const char *ac_rl_class_name(int cls)
{
    return cls >= 0 && cls < AC_RL_COUNT ? rl_names[cls] : "?";
}

/* The plugins shipped with agentcore: always the last directory of the search path. */
#define AC_BUILTIN_PLUGINS AC_SOURCE_DIR "/plugins"

void ac_config_set_str(char **field, const char *value)
{
    free(*field);
    *field = value != NULL ? strdup(value) : NULL;
}

/* ---- the field table -------------------------------------------------------------------------
 * Every key of the config file, declared once: the reader, the defaults, ac_config_free, the
 * values (ac_config_to_json) and the generated reference (docs/configuration.md) all walk it. */

typedef enum key_type {
    K_INT,    /* a Lua integer within [min, max], stored scaled into an int-sized or 64-bit field */
    K_NUMBER, /* a number within [min, max], stored as a double */
    K_BOOL,   /* stored as an int 0/1 */
    K_STRING, /* stored as a malloc'd char * (NULL: unset); choices, when given, restrict it */
    K_ENUM,   /* one of choices, stored as its index (an int) */
    K_CUSTOM, /* lists and maps: the key's own functions (custom_t) */
} key_type_t;

typedef struct reader reader_t;
typedef struct config_key config_key_t;

/* How a structured key is read, defaulted, shown and freed. */
typedef struct custom {
    const char *type_doc, *range_doc;
    /* the value is on top of the stack and not nil; returns 0, or -1 with r->err set */
    int (*read)(reader_t *r, ac_config_t *cfg, const config_key_t *k);
    void (*init)(ac_config_t *cfg, const config_key_t *k); /* the default; NULL: nothing */
    json_t *(*value)(const ac_config_t *cfg);               /* new reference */
    void (*clear)(ac_config_t *cfg);
} custom_t;

#define AC_CFG_ZERO_OFF 1u /* K_INT: 0 is allowed below min (the key's "off") */

struct config_key {
    const char *section; /* "" for the top level, "auth", "rate_limits.start_grpo" */
    const char *key;
    key_type_t type;
    size_t offset, size;        /* of the value in ac_config_t */
    double min, max;            /* K_INT, K_NUMBER: inclusive */
    double def;                 /* K_INT (as written in the file), K_NUMBER, K_BOOL, K_ENUM (index) */
    const char *def_str;        /* K_STRING and string-like customs: the default (NULL: none) */
    const char *def_doc;        /* the default as the reference words it, when the value itself
                                 * is not portable (a path into this checkout) or is computed */
    double scale;               /* K_INT: stored = written * scale (MiB kept in bytes); 0 means 1 */
    unsigned flags;             /* AC_CFG_ZERO_OFF */
    const char *const *choices; /* K_ENUM, K_STRING: NULL-terminated */
    const custom_t *custom;     /* K_CUSTOM */
    const char *doc;
};

static const custom_t listen_type, plugins_dir_type, principals_type, agents_type, retry_type, subscriptions_type;
static const char *const alg_names[] = {"HS256", "RS256", "ES256", NULL};
static const char *const policy_error_names[] = {"drop", "deliver", NULL};
static const char *const store_names[] = {"lmdb", "postgresql", NULL};

#define AT(member) .offset = offsetof(ac_config_t, member), .size = sizeof(((ac_config_t *)0)->member)
#define RATE(cls, name, lim, what)                                                                                 \
    {"rate_limits." name, "limit", K_INT, AT(rate[cls].limit), .min = 0, .max = 1e9, .def = lim,                  \
     .doc = what " per principal and window; 0: no limit"},                                                       \
    {                                                                                                              \
        "rate_limits." name, "window_s", K_INT, AT(rate[cls].window_s), .min = 1, .max = 86400, .def = 60,        \
        .doc = "the window of `" name ".limit`, in seconds"                                                        \
    }

/* In the order of examples/server.lua. Measured reasons for the defaults are in the comments. */
static const config_key_t keys[] = {
    {"", "listen", K_CUSTOM, .custom = &listen_type, .def_str = "127.0.0.1:8001",
     .doc = "cleartext listeners \"HOST:PORT\"; each serves HTTP/1.1 and HTTP/2 with prior knowledge (h2c); "
            "port 0 picks a free port"},
    {"", "threads", K_INT, AT(threads), .min = 0, .max = 256, .def = 0,
     .doc = "event-loop threads, each with its own listener (SO_REUSEPORT); 0: one per core"},
    {"", "rpc_workers", K_INT, AT(rpc_workers), .min = 1, .max = 64, .def = 2,
     .doc = "threads that run long calls (start_grpo, evaluate, ...) and parse large bodies, off the event loops"},
    {"", "data_dir", K_STRING, AT(data_dir), .def_str = "./data",
     .doc = "the LMDB environment (created when missing; one server per directory); with `store.backend = "
            "\"postgresql\"` only this node's name and crash log; `--data` overrides it"},
    {"store", "backend", K_ENUM, AT(store_backend), .def = AC_STORE_LMDB, .choices = store_names,
     .doc = "where jobs, trajectories, checkpoints and webhooks live: \"lmdb\" in `data_dir` (one process), or "
            "\"postgresql\" at `dsn`, shared by every node that names the same database (docs/operations.md, "
            "\"Several nodes\")"},
    {"store", "dsn", K_STRING, AT(store_dsn),
     .doc = "PostgreSQL: a libpq connection string or URI (\"postgresql://agentcore@db.internal/agentcore\"); "
            "`AGENTCORE_STORE_DSN` wins over it and sets `backend = \"postgresql\"`; a password is better in "
            "~/.pgpass or `PGPASSWORD` than here"},
    {"store", "node", K_STRING, AT(store_node),
     .def_doc = "`<hostname>-<8 hex digits>`, made once and kept in `data_dir`/agentcore.node",
     .doc = "PostgreSQL: this node's name, unique among the nodes (jobs' leases and webhook claims carry it; a "
            "node that restarts under its name takes its own jobs back at once)"},
    {"store", "pool_size", K_INT, AT(store_pool_size), .min = 2, .max = 1000, .def = 0, .flags = AC_CFG_ZERO_OFF,
     .doc = "PostgreSQL: connections this node opens at most (as needed); 0: threads + rpc_workers + workers + 4, "
            "one for every thread that may use one"},
    /* renewed every third of it: a node misses two renewals before it loses its jobs */
    {"store", "lease_s", K_INT, AT(store_lease_s), .min = 2, .max = 3600, .def = 30,
     .doc = "PostgreSQL: a running job's lease, renewed every third of it; when the node stops renewing (it "
            "died) another node takes the job after this long and resumes it from its last checkpoint"},
    {"store", "auto_migrate", K_BOOL, AT(store_auto_migrate), .def = 1,
     .doc = "PostgreSQL: bring an older schema up to date at start; false: refuse to start until `agentcore "
            "migrate` has (a schema newer than the binary always refuses)"},
    {"tls", "listen", K_STRING, AT(tls_listen), .doc = "the TLS listener \"HOST:PORT\" (HTTP/1.1 and h2 by ALPN)"},
    {"tls", "cert_file", K_STRING, AT(tls_cert_file), .doc = "PEM certificate chain; needed with `listen`"},
    {"tls", "key_file", K_STRING, AT(tls_key_file), .doc = "PEM private key; needed with `listen`"},
    {"auth", "alg", K_STRING, AT(auth_alg), .def_str = "HS256", .choices = alg_names,
     .doc = "the one algorithm tokens may use (others, \"none\" included, are refused)"},
    {"auth", "secret", K_STRING, AT(auth_secret),
     .doc = "HS256 secret, at least 16 bytes; `AGENTCORE_JWT_SECRET` wins over it; without either, serve "
            "refuses to start"},
    {"auth", "public_key_file", K_STRING, AT(auth_public_key_file), .doc = "RS256/ES256: PEM key that verifies tokens"},
    {"auth", "private_key_file", K_STRING, AT(auth_private_key_file),
     .doc = "RS256/ES256: PEM key with which `agentcore token` signs"},
    {"auth", "issuer", K_STRING, AT(auth_issuer), .doc = "when set, tokens must carry this `iss`"},
    {"auth", "audience", K_STRING, AT(auth_audience), .doc = "when set, `aud` must contain it"},
    {"auth", "leeway_s", K_INT, AT(auth_leeway_s), .min = 0, .max = 3600, .def = 30,
     .doc = "clock skew allowed on `exp`, `nbf` and `iat`"},
    RATE(AC_RL_START, "start_grpo", 10, "training.start_grpo calls"),
    RATE(AC_RL_STATUS, "get_status", 100, "training.get_status calls"),
    RATE(AC_RL_CANCEL, "cancel", 20, "training.cancel calls"),
    RATE(AC_RL_EVALUATE, "evaluate", 5, "training.evaluate calls"),
    RATE(AC_RL_EXPORT, "export_trajectories", 10, "training.export_trajectories and training.export_checkpoint calls"),
    /* an agent asks for one call per step: a client driving a few episodes at once */
    RATE(AC_RL_ACT, "act", 1000, "agents.act calls"),
    RATE(AC_RL_RUN, "run", 30, "agents.run calls (each runs a whole episode of the agent's plugins)"),
    RATE(AC_RL_OTHER, "other", 100, "calls of every other method"),
    /* start_grpo (10/min) is the only call that needs a large body: 30/min leaves room for retries
     * and batches */
    RATE(AC_RL_LARGE, "large_requests", 30,
         "requests whose body is over `limits.parse_on_loop_bytes`, counted from the headers before the body "
         "is parsed (HTTP 429, `data.field` \"body\"),"),
    {"limits", "max_body_bytes", K_INT, AT(max_body_bytes), .min = 1024, .max = 1 << 30, .def = 16 << 20,
     .doc = "larger request bodies get HTTP 413"},
    {"limits", "max_json_depth", K_INT, AT(max_json_depth), .min = 2, .max = 1000, .def = 64,
     .doc = "deeper nesting is refused (-32600) before parsing"},
    /* a start_grpo holds at most 2 x 10000 queries (the default validator), ~7 values each with a
     * small expected_outcome: ~140k values. jansson parses 1M values in ~0.14 s and ~40 MB here */
    {"limits", "max_json_values", K_INT, AT(max_json_values), .min = 16, .max = 1e9, .def = 1000000,
     .doc = "more values in one body (member names included) are refused (-32600, `data.field` \"body\") "
            "before parsing"},
    {"limits", "max_batch", K_INT, AT(max_batch), .min = 1, .max = 10000, .def = 100,
     .doc = "calls in one JSON-RPC batch"},
    /* jansson parses 64 KiB in 1.1 ms (start_grpo-like data) to 2.7 ms ("[0,0,...]") here */
    {"limits", "parse_on_loop_bytes", K_INT, AT(parse_on_loop_bytes), .min = 0, .max = 1 << 30, .def = 64 * 1024,
     .doc = "larger bodies are parsed on an RPC worker, not on an event loop"},
    {"limits", "max_parallel_parses", K_INT, AT(max_parallel_parses), .min = 1, .max = 64, .def = 1,
     .doc = "large bodies parsed (and their calls run) at once; keep it below `rpc_workers` so that long calls "
            "always find a worker"},
    {"limits", "max_queued_parses", K_INT, AT(max_queued_parses), .min = 0, .max = 1024, .def = 4,
     .doc = "large bodies waiting for that; more get HTTP 503 with Retry-After"},
    {"limits", "trim_after_bytes", K_INT, AT(trim_after_bytes), .min = 65536, .max = 1 << 30, .def = 1 << 20,
     .flags = AC_CFG_ZERO_OFF,
     .doc = "after a body or response this large, free memory goes back to the kernel (malloc_trim); 0: never"},
    /* /healthz p99 while 8 x 16 MiB bodies arrived (alternating runs on a loaded 2-core machine):
     * 68-194 ms with autotuning, 30-83 ms at 256 KiB, 20-74 ms at 128 KiB */
    {"limits", "recv_buffer_bytes", K_INT, AT(recv_buffer_bytes), .min = 0, .max = 64 << 20, .def = 256 * 1024,
     .doc = "each connection's socket receive buffer (SO_RCVBUF): bounds how much an event loop reads of one "
            "upload at a time; 0: the kernel's autotuning (faster WAN uploads)"},
    {"", "plugins_dir", K_CUSTOM, AT(plugins_dir), .custom = &plugins_dir_type, .def_str = AC_BUILTIN_PLUGINS,
     .def_doc = "only the built-in `plugins/`",
     .doc = "your plugin directories (each with agents/, rewards/, validators/, webhooks/), searched in order "
            "before the built-in plugins, which are always searched last"},
    {"", "lua_dir", K_STRING, AT(lua_dir), .def_str = AC_SOURCE_DIR "/lua", .def_doc = "this checkout's `lua/`",
     .doc = "the Lua runtime library"},
    {"", "dashboard_dir", K_STRING, AT(dashboard_dir), .def_str = AC_SOURCE_DIR "/sdk/dashboard",
     .def_doc = "this checkout's `sdk/dashboard/`",
     .doc = "the web dashboard's files, served at GET /ui/ (the server does not start when it is not a directory)"},
    {"", "workers", K_INT, AT(workers), .min = 0, .max = 64, .def = 1,
     .doc = "training workers: threads that take queued jobs in order; each job gets threads / workers compute "
            "threads (OpenBLAS, and the sequence policy's attention); 0: this node runs no job (with PostgreSQL "
            "an API-only node: other nodes run its jobs)"},
    {"budgets", "default_usd", K_NUMBER, AT(default_budget_usd), .min = 0, .max = 1e12, .def = 1000,
     .doc = "a principal's budget over its jobs: the `max_budget_usd` of its queued and running jobs plus the "
            "cost of its finished ones (else -40001)"},
    {"budgets", "principals", K_CUSTOM, .custom = &principals_type, .doc = "per-principal budgets, by JWT `sub`"},
    {"", "agents", K_CUSTOM, .custom = &agents_type,
     .doc = "agent_id -> plugins; `reward` defaults to the agent's name, `validator` to \"default\"; an id not "
            "listed uses plugins/agents/<id>.lua, the reward of the same name and the default validator"},
    {"training", "step_cost_usd", K_NUMBER, AT(step_cost_usd), .min = 0, .max = 1000, .def = 0.00001,
     .doc = "price of one policy step, added to each tool's `cost_usd`"},
    {"training", "keep_best_checkpoints", K_INT, AT(keep_best_checkpoints), .min = 1, .max = 100, .def = 3,
     .doc = "per job, besides the latest: the k with the best validation accuracy"},
    {"training", "max_trajectories_per_job", K_INT, AT(max_trajectories_per_job), .min = 100, .max = 100000000,
     .def = 100000, .doc = "stored per job; the oldest iterations' trajectories go first"},
    {"training", "max_failure_rate", K_NUMBER, AT(max_failure_rate), .min = 0, .max = 1, .def = 0.5,
     .doc = "the share of episodes a plugin failure spoiled above which a job fails (`agentcore train --config` applies it too)"},
    /* a bag policy of the default size is 2.1 MB of parameters, a sequence one 3.4 MB */
    {"inference", "cache_policies", K_INT, AT(inference_cache_policies), .min = 1, .max = 4096, .def = 16,
     .doc = "checkpoints agents.act keeps loaded (least recently used go first): a call on one of them is one "
            "forward pass on the event loop, else it loads the checkpoint on an RPC worker"},
    {"inference", "cache_mb", K_INT, AT(inference_cache_bytes), .min = 1, .max = 65536, .def = 512,
     .scale = 1 << 20, .doc = "the most memory those policies' parameters may take, in MiB"},
    {"plugin_limits", "max_instructions", K_INT, AT(plugin_limits.max_instructions), .min = 100000, .max = 1e11,
     .def = 50000000, .doc = "VM instructions per plugin call"},
    {"plugin_limits", "max_wall_ms", K_INT, AT(plugin_limits.max_wall_ms), .min = 10, .max = 600000, .def = 2000,
     .doc = "wall-clock time per call, checked with the instruction count"},
    {"plugin_limits", "max_call_mb", K_INT, AT(plugin_limits.max_call_bytes), .min = 1, .max = 65536, .def = 128,
     .scale = 1 << 20, .doc = "memory one call may add to its Lua state, in MiB"},
    {"plugin_limits", "max_state_mb", K_INT, AT(plugin_limits.max_state_bytes), .min = 1, .max = 65536, .def = 256,
     .scale = 1 << 20, .doc = "memory a plugin's Lua state may hold, in MiB"},
    {"plugin_limits", "max_observation_bytes", K_INT, AT(plugin_limits.max_observation_bytes), .min = 64,
     .max = 1 << 30, .def = 65536, .doc = "agent.observe's text"},
    {"plugin_limits", "max_result_bytes", K_INT, AT(plugin_limits.max_result_bytes), .min = 64, .max = 1 << 30,
     .def = 1 << 20, .doc = "one step's params or result, or a final answer, as JSON"},
    {"plugin_limits", "max_trajectory_bytes", K_INT, AT(plugin_limits.max_trajectory_bytes), .min = 1024,
     .max = 17179869184.0, .def = 8 << 20, .doc = "one episode's observations, params and results together"},
    {"plugin_limits", "abandon_after_ms", K_INT, AT(abandon_after_ms), .min = 100, .max = 600000, .def = 2000,
     .doc = "a call stuck inside a C function this long past `max_wall_ms` is abandoned: its job fails, its Lua "
            "state is dropped and the worker thread replaced"},
    {"webhooks", "secret", K_STRING, AT(webhook_secret),
     .doc = "whsec_<base64>: signs deliveries of `subscriptions` and of jobs' own webhooks (Standard Webhooks)"},
    {"webhooks", "policy", K_STRING, AT(webhook_policy), .def_str = "default",
     .doc = "plugins/webhooks/<name>.lua decides what each subscriber gets"},
    {"webhooks", "on_policy_error", K_ENUM, AT(webhook_deliver_on_policy_error), .def = 0,
     .choices = policy_error_names,
     .doc = "a policy that raises or returns something unusable: drop that delivery (fail closed) or deliver "
            "the event unchanged; counted and shown on the subscription either way"},
    {"webhooks", "allow_private", K_BOOL, AT(webhook_allow_private), .def = 0,
     .doc = "deliver to loopback and private addresses (tests, local receivers)"},
    {"webhooks", "timeout_ms", K_INT, AT(webhook_timeout_ms), .min = 100, .max = 600000, .def = 15000,
     .doc = "one delivery attempt"},
    /* the Standard Webhooks schedule: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h */
    {"webhooks", "retry_schedule_s", K_CUSTOM, .custom = &retry_type,
     .doc = "delays before attempt 1, 2, ..., in seconds (each scaled by 1 +- `jitter` at random)"},
    {"webhooks", "jitter", K_NUMBER, AT(webhook_jitter), .min = 0, .max = 1, .def = 0.1,
     .doc = "random share of each retry delay"},
    {"webhooks", "subscriptions", K_CUSTOM, .custom = &subscriptions_type,
     .doc = "every job's events, for operators: `{ { url = \"https://...\", events = { \"training.job.failed\" } "
            "} }` (`events = \"*\"` for all); URLs and event names are checked at start"},
    {"errors", "expose_internal", K_BOOL, AT(errors_expose_internal), .def = 0,
     .doc = "-32603 answers carry the whole message and Lua traceback instead of \"Internal error\" with a `ref` "
            "into the server log (development only)"},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

/* The top-level sections (and the keys of the top level, ""), in the reference's order. */
static const struct {
    const char *name, *doc;
} sections[] = {
    {"", "The top level: listeners, threads, directories, workers and the agent bindings."},
    {"store", "Where the service keeps its data: LMDB in `data_dir`, or a PostgreSQL database that several nodes "
              "share (docs/operations.md, \"Several nodes\"). The keys after `backend` apply to PostgreSQL."},
    {"tls", "A TLS listener (HTTP/1.1 and HTTP/2 negotiated by ALPN); off unless `listen` is set."},
    {"auth", "How bearer tokens (JWT) are verified; `agentcore token --config` signs with the same settings."},
    {"rate_limits", "Requests per principal (JWT `sub`) and method class in a fixed window. A class not written "
                    "keeps its defaults; a class written with only `limit` keeps its window."},
    {"limits", "What the server checks before and while it parses a request (README, \"Limits\")."},
    {"budgets", "What each principal may spend over its jobs."},
    {"training", "The training service: cost, retention and failure tolerance of jobs."},
    {"inference", "Using trained policies: agents.act's cache of loaded checkpoints (docs/api.md, \"agents.act\")."},
    {"plugin_limits", "What every plugin call may use (docs/plugins.md, \"Limits\"); a plugin that hands back more "
                      "than the byte limits fails that episode."},
    {"webhooks", "Signed deliveries of job events (docs/api.md, \"Webhooks\")."},
    {"errors", "What internal errors (-32603) tell clients."},
};

/* ---- the structured keys ---------------------------------------------------------------------- */

typedef struct reader {
    lua_State *L;
    const char *path;
    char *src; /* the file's text */
    ac_err_t *err;
    const char *scope[8]; /* the sections around the table being read, outermost first */
    int depth;
} reader_t;

static int bad(reader_t *r, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void listen_clear(ac_config_t *cfg)
{
    for (int i = 0; i < cfg->n_listen; i++)
        free(cfg->listen[i]);
    cfg->n_listen = 0;
}

static void listen_init(ac_config_t *cfg, const config_key_t *k)
{
    cfg->listen[cfg->n_listen++] = strdup(k->def_str);
}

static int listen_read(reader_t *r, ac_config_t *cfg, const config_key_t *k)
{
    int t = lua_type(r->L, -1); /* ... listen */
    if (t != LUA_TSTRING && t != LUA_TTABLE)
        return bad(r, k->key, "must be a string or a list of strings");
    listen_clear(cfg);
    if (t == LUA_TSTRING) {
        cfg->listen[cfg->n_listen++] = strdup(lua_tostring(r->L, -1));
        return 0;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(r->L, -1);
    if (n < 1 || n > AC_MAX_LISTEN)
        return bad(r, k->key, "must list between 1 and %d addresses", AC_MAX_LISTEN);
    for (lua_Integer i = 1; i <= n; i++) {
        int ok = lua_rawgeti(r->L, -1, i) == LUA_TSTRING; /* ... listen addr */
        if (ok)
            cfg->listen[cfg->n_listen++] = strdup(lua_tostring(r->L, -1));
        lua_pop(r->L, 1); /* ... listen */
        if (!ok)
            return bad(r, k->key, "must hold strings \"HOST:PORT\"");
    }
    return 0;
}

static json_t *listen_value(const ac_config_t *cfg)
{
    if (cfg->n_listen == 1)
        return json_string(cfg->listen[0]);
    json_t *a = json_array();
    for (int i = 0; i < cfg->n_listen; i++)
        json_array_append_new(a, json_string(cfg->listen[i]));
    return a;
}

static const custom_t listen_type = {"string or list of strings", "1 to 8 addresses", listen_read, listen_init,
                                     listen_value, listen_clear};

static void plugins_dir_init(ac_config_t *cfg, const config_key_t *k)
{
    cfg->plugins_dir = strdup(k->def_str);
}

/* A directory or a list of them, searched in order before the built-in plugins (which stay last,
 * so that the default validator and webhook policy are always there). */
static int plugins_dir_read(reader_t *r, ac_config_t *cfg, const config_key_t *k)
{
    int t = lua_type(r->L, -1); /* ... dirs */
    char path[8192] = "";
    size_t used = 0;
    if (t == LUA_TSTRING) {
        used = (size_t)snprintf(path, sizeof path, "%s", lua_tostring(r->L, -1));
    } else if (t == LUA_TTABLE) {
        lua_Integer n = (lua_Integer)lua_rawlen(r->L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            int ok = lua_rawgeti(r->L, -1, i) == LUA_TSTRING; /* ... dirs dir */
            if (ok && used < sizeof path)
                used += (size_t)snprintf(path + used, sizeof path - used, "%s%s", used ? ":" : "",
                                         lua_tostring(r->L, -1));
            lua_pop(r->L, 1); /* ... dirs */
            if (!ok)
                return bad(r, k->key, "must be a directory or a list of directories");
        }
    } else {
        return bad(r, k->key, "must be a directory or a list of directories");
    }
    if (used == 0)
        return 0;
    if (strchr(path, '\0') != path + used || used >= sizeof path)
        return bad(r, k->key, "is too long");
    char full[8192 + 512];
    if (strcmp(path, AC_BUILTIN_PLUGINS) == 0)
        snprintf(full, sizeof full, "%s", path);
    else
        snprintf(full, sizeof full, "%s:%s", path, AC_BUILTIN_PLUGINS);
    ac_config_set_str(&cfg->plugins_dir, full);
    return 0;
}

static json_t *plugins_dir_value(const ac_config_t *cfg)
{
    return cfg->plugins_dir ? json_string(cfg->plugins_dir) : json_null();
}

static void plugins_dir_clear(ac_config_t *cfg)
{
    ac_config_set_str(&cfg->plugins_dir, NULL);
}

static const custom_t plugins_dir_type = {"string or list of strings", "", plugins_dir_read, plugins_dir_init,
                                          plugins_dir_value, plugins_dir_clear};

static int principals_read(reader_t *r, ac_config_t *cfg, const config_key_t *k)
{
    if (!lua_istable(r->L, -1))
        return bad(r, k->key, "must be a table");
    lua_pushnil(r->L);                  /* ... principals nil */
    while (lua_next(r->L, -2) != 0) { /* ... principals name usd */
        const char *problem = NULL;
        if (lua_type(r->L, -2) != LUA_TSTRING || lua_type(r->L, -1) != LUA_TNUMBER || lua_tonumber(r->L, -1) < 0)
            problem = "must map principal names to USD amounts";
        else if (cfg->n_budgets == AC_MAX_BUDGETS)
            problem = "may list at most 64 principals";
        if (problem != NULL) {
            lua_pop(r->L, 2); /* ... principals */
            return bad(r, k->key, "%s", problem);
        }
        cfg->budget_sub[cfg->n_budgets] = strdup(lua_tostring(r->L, -2));
        cfg->budget_usd[cfg->n_budgets++] = lua_tonumber(r->L, -1);
        lua_pop(r->L, 1); /* ... principals name */
    }
    return 0;
}

static json_t *principals_value(const ac_config_t *cfg)
{
    json_t *o = json_object();
    for (int i = 0; i < cfg->n_budgets; i++)
        json_object_set_new(o, cfg->budget_sub[i], json_real(cfg->budget_usd[i]));
    return o;
}

static void principals_clear(ac_config_t *cfg)
{
    for (int i = 0; i < cfg->n_budgets; i++)
        free(cfg->budget_sub[i]);
    cfg->n_budgets = 0;
}

static const custom_t principals_type = {"table: name -> USD", "at most 64; amounts >= 0", principals_read, NULL,
                                         principals_value, principals_clear};

static int check_keys(reader_t *r, const char *section, const char *const *list);
static int read_string(reader_t *r, const char *key, char **dst);

/* One binding, the table on top of the stack: {agent, reward, validator}. */
static int agent_binding_read(reader_t *r, ac_agent_binding_t *b)
{
    static const char *const binding_keys[] = {"agent", "reward", "validator", NULL};
    r->scope[r->depth++] = b->id;
    int ret = check_keys(r, NULL, binding_keys) || read_string(r, "agent", &b->agent) ||
              read_string(r, "reward", &b->reward) || read_string(r, "validator", &b->validator);
    r->depth--;
    if (ret != 0)
        return -1;
    if (b->agent == NULL)
        return bad(r, b->id, "needs agent = \"<plugin name>\"");
    if (b->reward == NULL)
        b->reward = strdup(b->agent);
    if (b->validator == NULL)
        b->validator = strdup("default");
    return 0;
}

static int agents_read(reader_t *r, ac_config_t *cfg, const config_key_t *k)
{
    if (!lua_istable(r->L, -1))
        return bad(r, k->key, "must be a table");
    lua_pushnil(r->L);                  /* ... agents nil */
    while (lua_next(r->L, -2) != 0) { /* ... agents id binding */
        int ret = 0;
        if (lua_type(r->L, -2) != LUA_TSTRING || !lua_istable(r->L, -1)) {
            ret = bad(r, k->key, "must map agent ids to {agent, reward, validator}");
        } else if (cfg->n_agents == AC_MAX_AGENTS) {
            ret = bad(r, k->key, "may list at most 64 agents");
        } else {
            ac_agent_binding_t *b = &cfg->agents[cfg->n_agents++];
            memset(b, 0, sizeof *b);
            b->id = strdup(lua_tostring(r->L, -2));
            r->scope[r->depth++] = k->key; /* a binding's line is found after "agents =" */
            ret = agent_binding_read(r, b);
            r->depth--;
        }
        lua_pop(r->L, 1); /* ... agents id */
        if (ret != 0) {
            lua_pop(r->L, 1); /* ... agents */
            return -1;
        }
    }
    return 0;
}

static json_t *agents_value(const ac_config_t *cfg)
{
    json_t *o = json_object();
    for (int i = 0; i < cfg->n_agents; i++) {
        const ac_agent_binding_t *b = &cfg->agents[i];
        json_object_set_new(o, b->id, json_pack("{s:s, s:s, s:s}", "agent", b->agent, "reward", b->reward,
                                                "validator", b->validator));
    }
    return o;
}

static void agents_clear(ac_config_t *cfg)
{
    for (int i = 0; i < cfg->n_agents; i++) {
        free(cfg->agents[i].id);
        free(cfg->agents[i].agent);
        free(cfg->agents[i].reward);
        free(cfg->agents[i].validator);
    }
    cfg->n_agents = 0;
}

static const custom_t agents_type = {"table: agent_id -> { agent, reward, validator }", "at most 64", agents_read,
                                     NULL, agents_value, agents_clear};

static void retry_init(ac_config_t *cfg, const config_key_t *k)
{
    (void)k;
    static const double schedule[] = {0, 5, 300, 1800, 7200, 18000, 36000, 36000};
    cfg->n_webhook_retries = (int)(sizeof schedule / sizeof schedule[0]);
    memcpy(cfg->webhook_retry_s, schedule, sizeof schedule);
}

static int retry_read(reader_t *r, ac_config_t *cfg, const config_key_t *k)
{
    if (!lua_istable(r->L, -1))
        return bad(r, k->key, "must be a list of seconds");
    lua_Integer n = (lua_Integer)lua_rawlen(r->L, -1);
    if (n < 1 || n > AC_MAX_RETRIES)
        return bad(r, k->key, "must list 1 to %d delays", AC_MAX_RETRIES);
    double delays[AC_MAX_RETRIES];
    for (lua_Integer i = 1; i <= n; i++) {
        int ok = lua_rawgeti(r->L, -1, i) == LUA_TNUMBER && lua_tonumber(r->L, -1) >= 0; /* ... list delay */
        delays[i - 1] = ok ? lua_tonumber(r->L, -1) : 0;
        lua_pop(r->L, 1); /* ... list */
        if (!ok)
            return bad(r, k->key, "must hold delays in seconds (>= 0)");
    }
    memcpy(cfg->webhook_retry_s, delays, sizeof(double) * (size_t)n);
    cfg->n_webhook_retries = (int)n;
    return 0;
}

static json_t *retry_value(const ac_config_t *cfg)
{
    json_t *a = json_array();
    for (int i = 0; i < cfg->n_webhook_retries; i++)
        json_array_append_new(a, json_real(cfg->webhook_retry_s[i]));
    return a;
}

static const custom_t retry_type = {"list of numbers", "1 to 16 delays >= 0", retry_read, retry_init, retry_value,
                                    NULL};

static int subscriptions_read(reader_t *r, ac_config_t *cfg, const config_key_t *k)
{
    ac_err_t e = AC_ERR_INIT;
    json_t *subs = ac_lua_to_json(r->L, -1, &e);
    ac_err_clear(&e);
    int ok = json_is_array(subs);
    size_t i;
    json_t *sub;
    json_array_foreach(subs, i, sub)
    {
        json_t *events = json_object_get(sub, "events");
        /* the URL and the event names are checked where webhooks start (webhook.c) */
        ok = ok && json_is_string(json_object_get(sub, "url")) && (json_is_array(events) || json_is_string(events));
    }
    if (!ok) {
        json_decref(subs);
        return bad(r, k->key, "must be a list of {url = ..., events = {...} or \"*\"}");
    }
    json_decref(cfg->webhook_subscriptions);
    cfg->webhook_subscriptions = subs;
    return 0;
}

static json_t *subscriptions_value(const ac_config_t *cfg)
{
    return cfg->webhook_subscriptions ? json_deep_copy(cfg->webhook_subscriptions) : json_array();
}

static void subscriptions_clear(ac_config_t *cfg)
{
    json_decref(cfg->webhook_subscriptions);
    cfg->webhook_subscriptions = NULL;
}

static const custom_t subscriptions_type = {"list of { url, events }", "", subscriptions_read, NULL,
                                            subscriptions_value, subscriptions_clear};

/* ---- values in ac_config_t -------------------------------------------------------------------- */

static void *slot(ac_config_t *cfg, const config_key_t *k)
{
    return (char *)cfg + k->offset;
}

static double scale_of(const config_key_t *k)
{
    return k->scale > 0 ? k->scale : 1;
}

/* K_INT fields are int/uint32_t (4 bytes) or long/size_t/uint64_t (8 bytes); every range fits. */
static void put_int(void *p, size_t size, long long v)
{
    if (size == sizeof(int32_t)) {
        int32_t x = (int32_t)v;
        memcpy(p, &x, sizeof x);
    } else {
        int64_t x = (int64_t)v;
        memcpy(p, &x, sizeof x);
    }
}

static long long get_int(const void *p, size_t size)
{
    if (size == sizeof(int32_t)) {
        int32_t x;
        memcpy(&x, p, sizeof x);
        return x;
    }
    int64_t x;
    memcpy(&x, p, sizeof x);
    return (long long)x;
}

void ac_config_defaults(ac_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    /* the plugin limits the config does not set (pattern cost, string.rep, reload interval) */
    cfg->plugin_limits = (ac_lua_limits_t)AC_LUA_DEFAULT_LIMITS;
    for (size_t i = 0; i < N_KEYS; i++) {
        const config_key_t *k = &keys[i];
        void *p = slot(cfg, k);
        switch (k->type) {
        case K_INT: put_int(p, k->size, (long long)(k->def * scale_of(k))); break;
        case K_NUMBER: *(double *)p = k->def; break;
        case K_BOOL:
        case K_ENUM: *(int *)p = (int)k->def; break;
        case K_STRING: *(char **)p = k->def_str ? strdup(k->def_str) : NULL; break;
        case K_CUSTOM:
            if (k->custom->init)
                k->custom->init(cfg, k);
            break;
        }
    }
}

void ac_config_free(ac_config_t *cfg)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (keys[i].type == K_STRING)
            ac_config_set_str((char **)slot(cfg, &keys[i]), NULL);
        else if (keys[i].type == K_CUSTOM && keys[i].custom->clear)
            keys[i].custom->clear(cfg);
    }
    ac_config_set_str(&cfg->path, NULL);
}

static json_t *key_value(const ac_config_t *cfg, const config_key_t *k)
{
    const void *p = (const char *)cfg + k->offset;
    switch (k->type) {
    case K_INT: return json_integer((json_int_t)(get_int(p, k->size) / (long long)scale_of(k)));
    case K_NUMBER: return json_real(*(const double *)p);
    case K_BOOL: return json_boolean(*(const int *)p);
    case K_ENUM: return json_string(k->choices[*(const int *)p]);
    case K_STRING: return *(char *const *)p ? json_string(*(char *const *)p) : json_null();
    case K_CUSTOM: return k->custom->value(cfg);
    }
    return json_null();
}

static void key_path(const config_key_t *k, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", k->section, k->section[0] ? "." : "", k->key);
}

json_t *ac_config_to_json(const ac_config_t *cfg)
{
    json_t *o = json_object();
    for (size_t i = 0; i < N_KEYS; i++) {
        char path[128];
        key_path(&keys[i], path, sizeof path);
        json_object_set_new(o, path, key_value(cfg, &keys[i]));
    }
    return o;
}

/* ---- the reference ------------------------------------------------------------------------------ */

/* A bound as errors and the reference write it: whole numbers without an exponent. */
static void fmt_bound(char *buf, size_t len, const config_key_t *k, double v)
{
    if (k->type == K_INT || (v == floor(v) && fabs(v) < 1e15))
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%g", v);
}

static void range_text(const config_key_t *k, char *buf, size_t len)
{
    char lo[32], hi[32];
    buf[0] = '\0';
    if (k->type == K_INT || k->type == K_NUMBER) {
        fmt_bound(lo, sizeof lo, k, k->min);
        fmt_bound(hi, sizeof hi, k, k->max);
        snprintf(buf, len, "%s%s to %s", k->flags & AC_CFG_ZERO_OFF ? "0, or " : "", lo, hi);
    } else if (k->choices != NULL) {
        for (int i = 0; k->choices[i]; i++)
            snprintf(buf + strlen(buf), len - strlen(buf), "%s\"%s\"", i ? ", " : "", k->choices[i]);
    } else if (k->type == K_CUSTOM) {
        snprintf(buf, len, "%s", k->custom->range_doc);
    }
}

static const char *type_text(const config_key_t *k)
{
    static const char *const names[] = {"integer", "number", "boolean", "string", "string", ""};
    return k->type == K_CUSTOM ? k->custom->type_doc : names[k->type];
}

/* One row: {key, type, default, range, doc} and, for numbers, {min, max, zero_off}. */
static json_t *reference_row(const config_key_t *k, const char *section, json_t *defaults)
{
    char path[128], range[256];
    key_path(k, path, sizeof path);
    range_text(k, range, sizeof range);
    size_t skip = section[0] ? strlen(section) + 1 : 0;
    json_t *row = json_pack("{s:s, s:s, s:O, s:s, s:s}", "key", path + skip, "type", type_text(k), "default",
                            json_object_get(defaults, path), "range", range, "doc", k->doc);
    if (k->def_doc != NULL)
        json_object_set_new(row, "default_doc", json_string(k->def_doc));
    if (k->type == K_INT || k->type == K_NUMBER) {
        json_object_set_new(row, "min", k->type == K_INT ? json_integer((json_int_t)k->min) : json_real(k->min));
        json_object_set_new(row, "max", k->type == K_INT ? json_integer((json_int_t)k->max) : json_real(k->max));
        json_object_set_new(row, "zero_off", json_boolean(k->flags & AC_CFG_ZERO_OFF));
    }
    return row;
}

json_t *ac_config_reference(void)
{
    ac_config_t d;
    ac_config_defaults(&d);
    json_t *defaults = ac_config_to_json(&d);
    ac_config_free(&d);
    json_t *out = json_array();
    for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
        const char *name = sections[s].name;
        size_t n = strlen(name);
        json_t *rows = json_array();
        for (size_t i = 0; i < N_KEYS; i++) {
            const char *sec = keys[i].section;
            int in = n == 0 ? sec[0] == '\0' : strncmp(sec, name, n) == 0 && (sec[n] == '\0' || sec[n] == '.');
            if (in)
                json_array_append_new(rows, reference_row(&keys[i], name, defaults));
        }
        json_array_append_new(out, json_pack("{s:s, s:s, s:o}", "section", name, "doc", sections[s].doc, "keys", rows));
    }
    json_decref(defaults);
    return out;
}

/* ---- reading the file ----------------------------------------------------------------------------
 * A wrong value is reported at the line where its key is written: Lua keeps no positions for
 * table fields, so the reader looks for "key =" in the source text, after the "section =" of
 * each section around it. Values are read with raw access: a config's metatables run nothing. */

/* The first "key =" (or ["key"] =) at or after from, or NULL. */
static const char *find_assign(const char *src, const char *from, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = from; *p; p++) {
        if (strncmp(p, key, klen) != 0 || (p > src && (p[-1] == '_' || isalnum((unsigned char)p[-1]))))
            continue;
        const char *q = p + klen;
        if (*q == '"' || *q == '\'')
            q++, q += (*q == ']');
        while (*q == ' ' || *q == '\t' || *q == ']')
            q++;
        if (*q == '=' && q[1] != '=')
            return p;
    }
    return NULL;
}

static int key_line(const reader_t *r, const char *key)
{
    if (r->src == NULL)
        return 0;
    const char *from = r->src, *at;
    for (int i = 0; i < r->depth && from != NULL; i++)
        from = find_assign(r->src, from, r->scope[i]);
    if (from == NULL || (at = find_assign(r->src, from, key)) == NULL)
        at = find_assign(r->src, r->src, key); /* a section written some other way: the first one */
    if (at == NULL)
        return 0;
    int line = 1;
    for (const char *p = r->src; p < at; p++)
        line += *p == '\n';
    return line;
}

static int bad(reader_t *r, const char *key, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = key_line(r, key);
    if (line > 0)
        return ac_err_set(r->err, AC_ERR_INVALID_PARAMS, "%s:%d: '%s' %s", r->path, line, key, msg);
    return ac_err_set(r->err, AC_ERR_INVALID_PARAMS, "%s: '%s' %s", r->path, key, msg);
}

/* Is k a key or a sub-section of section? */
static int known_in(const char *section, const char *k)
{
    size_t n = strlen(section), kl = strlen(k);
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *s = keys[i].section;
        if (strcmp(s, section) == 0 && strcmp(keys[i].key, k) == 0)
            return 1;
        if (n > 0 && (strncmp(s, section, n) != 0 || s[n] != '.'))
            continue;
        const char *child = n > 0 ? s + n + 1 : s;
        if (strncmp(child, k, kl) == 0 && (child[kl] == '\0' || child[kl] == '.'))
            return 1;
    }
    return 0;
}

/* Rejects keys the section does not know: a typo must not silently keep a default. The keys are
 * the table's for `section`, or `list` when section is NULL. */
static int check_keys(reader_t *r, const char *section, const char *const *list)
{
    lua_pushnil(r->L);                  /* tbl nil */
    while (lua_next(r->L, -2) != 0) { /* tbl key value */
        lua_pop(r->L, 1);               /* tbl key */
        if (lua_type(r->L, -1) != LUA_TSTRING) {
            lua_pop(r->L, 1); /* tbl */
            const char *where = r->depth > 0 ? r->scope[r->depth - 1] : "the config";
            return ac_err_set(r->err, AC_ERR_INVALID_PARAMS, "%s: %s has a key that is not a string", r->path, where);
        }
        const char *k = lua_tostring(r->L, -1);
        int ok = 0;
        if (section != NULL)
            ok = known_in(section, k);
        for (const char *const *p = list; !ok && p && *p; p++)
            ok = strcmp(*p, k) == 0;
        if (!ok) {
            char key[64];
            snprintf(key, sizeof key, "%s", k);
            lua_pop(r->L, 1); /* tbl */
            return bad(r, key, "is not a known key%s", r->depth > 0 ? " of this section" : "");
        }
    }
    return 0;
}

/* A string key outside the table (an agent binding's); a missing key leaves *dst. */
static int read_string(reader_t *r, const char *key, char **dst)
{
    lua_pushstring(r->L, key);
    int t = lua_rawget(r->L, -2); /* tbl value */
    if (t == LUA_TSTRING)
        ac_config_set_str(dst, lua_tostring(r->L, -1));
    lua_pop(r->L, 1); /* tbl */
    return t == LUA_TSTRING || t == LUA_TNIL ? 0 : bad(r, key, "must be a string");
}

static int range_error(reader_t *r, const config_key_t *k)
{
    char lo[32], hi[32];
    fmt_bound(lo, sizeof lo, k, k->min);
    fmt_bound(hi, sizeof hi, k, k->max);
    if (k->flags & AC_CFG_ZERO_OFF)
        return bad(r, k->key, "must be 0 (off) or between %s and %s", lo, hi);
    return bad(r, k->key, "must be between %s and %s", lo, hi);
}

static int one_of(const char *const *choices, const char *s)
{
    for (int i = 0; choices[i]; i++)
        if (strcmp(choices[i], s) == 0)
            return i;
    return -1;
}

static int choices_error(reader_t *r, const config_key_t *k)
{
    char list[160] = "";
    for (int i = 0; k->choices[i]; i++) {
        const char *sep = i == 0 ? "" : k->choices[i + 1] ? ", " : " or ";
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", sep, k->choices[i]);
    }
    return bad(r, k->key, "must be %s", list);
}

/* The value of k, on top of the stack and not nil, into cfg. */
static int store(reader_t *r, ac_config_t *cfg, const config_key_t *k)
{
    lua_State *L = r->L;
    void *p = slot(cfg, k);
    switch (k->type) {
    case K_INT: {
        if (!lua_isinteger(L, -1))
            return bad(r, k->key, "must be an integer");
        long long v = lua_tointeger(L, -1);
        if ((v < k->min || v > k->max) && !(v == 0 && (k->flags & AC_CFG_ZERO_OFF)))
            return range_error(r, k);
        put_int(p, k->size, (long long)((double)v * scale_of(k)));
        return 0;
    }
    case K_NUMBER: {
        if (lua_type(L, -1) != LUA_TNUMBER)
            return bad(r, k->key, "must be a number");
        double v = lua_tonumber(L, -1);
        if (!(v >= k->min && v <= k->max))
            return range_error(r, k);
        *(double *)p = v;
        return 0;
    }
    case K_BOOL:
        if (!lua_isboolean(L, -1))
            return bad(r, k->key, "must be a boolean");
        *(int *)p = lua_toboolean(L, -1);
        return 0;
    case K_STRING:
        if (k->choices != NULL && (lua_type(L, -1) != LUA_TSTRING || one_of(k->choices, lua_tostring(L, -1)) < 0))
            return choices_error(r, k);
        if (lua_type(L, -1) != LUA_TSTRING)
            return bad(r, k->key, "must be a string");
        ac_config_set_str((char **)p, lua_tostring(L, -1));
        return 0;
    case K_ENUM: {
        int idx = lua_type(L, -1) == LUA_TSTRING ? one_of(k->choices, lua_tostring(L, -1)) : -1;
        if (idx < 0)
            return choices_error(r, k);
        *(int *)p = idx;
        return 0;
    }
    case K_CUSTOM: return k->custom->read(r, cfg, k);
    }
    return 0;
}

/* The sub-sections of section, in the order of the table ("rate_limits" of "", "start_grpo" of
 * "rate_limits"). Returns how many. */
static int children(const char *section, char names[][32], int max)
{
    size_t n = strlen(section);
    int count = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *s = keys[i].section;
        if (s[0] == '\0' || (n > 0 && (strncmp(s, section, n) != 0 || s[n] != '.')))
            continue;
        const char *child = n > 0 ? s + n + 1 : s;
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(child, "."), child);
        int seen = 0;
        for (int j = 0; j < count; j++)
            seen |= strcmp(names[j], name) == 0;
        if (!seen && count < max)
            snprintf(names[count++], 32, "%s", name);
    }
    return count;
}

static int read_section(reader_t *r, ac_config_t *cfg, const char *section);

/* The sub-section `name` of the table on top of the stack, when it is there. */
static int read_child(reader_t *r, ac_config_t *cfg, const char *section, const char *name)
{
    char sub[128];
    snprintf(sub, sizeof sub, "%.63s%s%.31s", section, section[0] ? "." : "", name);
    lua_pushstring(r->L, name);
    int t = lua_rawget(r->L, -2); /* tbl sub */
    int ret = 0;
    if (t == LUA_TTABLE) {
        r->scope[r->depth++] = name;
        ret = read_section(r, cfg, sub);
        r->depth--;
    } else if (t != LUA_TNIL) {
        ret = bad(r, name, "must be a table");
    }
    lua_pop(r->L, 1); /* tbl */
    return ret;
}

/* The table on top of the stack is `section`: its keys, then its sub-sections. */
static int read_section(reader_t *r, ac_config_t *cfg, const char *section)
{
    if (check_keys(r, section, NULL) != 0)
        return -1;
    for (size_t i = 0; i < N_KEYS; i++) {
        const config_key_t *k = &keys[i];
        if (strcmp(k->section, section) != 0)
            continue;
        lua_pushstring(r->L, k->key);
        int t = lua_rawget(r->L, -2); /* tbl value */
        int ret = t == LUA_TNIL ? 0 : store(r, cfg, k);
        lua_pop(r->L, 1); /* tbl */
        if (ret != 0)
            return -1;
    }
    char names[16][32];
    int n = children(section, names, 16);
    for (int i = 0; i < n; i++)
        if (read_child(r, cfg, section, names[i]) != 0)
            return -1;
    return 0;
}

int ac_config_load(ac_config_t *cfg, const char *path, ac_err_t *err)
{
    reader_t r = {luaL_newstate(), path, ac_file_read(path, NULL), err, {0}, 0};
    if (r.L == NULL || r.src == NULL) {
        if (r.L)
            lua_close(r.L);
        free(r.src);
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: cannot read the config file", path);
    }
    /* The config may compute values (string.format, os.getenv); it needs no more than this. */
    luaL_requiref(r.L, "_G", luaopen_base, 1);
    luaL_requiref(r.L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(r.L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(r.L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(r.L, LUA_OSLIBNAME, luaopen_os, 1);
    lua_settop(r.L, 0);

    char chunkname[1024];
    snprintf(chunkname, sizeof chunkname, "@%s", path);
    int ret = -1;
    if (luaL_loadbufferx(r.L, r.src, strlen(r.src), chunkname, "t") != LUA_OK ||
        lua_pcall(r.L, 0, 1, 0) != LUA_OK) {
        /* Lua's message already reads "file:line: problem" */
        ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s", lua_tostring(r.L, -1));
    } else if (!lua_istable(r.L, -1)) {
        ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: the config must return a table", path);
    } else {
        ret = read_section(&r, cfg, "");
    }
    if (ret == 0)
        ac_config_set_str(&cfg->path, path);
    lua_close(r.L);
    free(r.src);
    return ret;
}

int ac_config_agent(const ac_config_t *cfg, const char *agent_id, ac_agent_binding_t *out)
{
    for (int i = 0; i < cfg->n_agents; i++)
        if (strcmp(cfg->agents[i].id, agent_id) == 0) {
            *out = cfg->agents[i];
            return 0;
        }
    /* an id that names a plugin directly: the agent, the reward of the same name, the default
     * validator */
    char path[4096];
    for (const char *p = agent_id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return -1;
    if (!ac_lua_plugin_find(cfg->plugins_dir, "agents", agent_id, path, sizeof path, NULL, 0))
        return -1;
    out->id = out->agent = out->reward = (char *)agent_id;
    out->validator = (char *)"default";
    return 0;
}

double ac_config_budget(const ac_config_t *cfg, const char *sub)
{
    for (int i = 0; i < cfg->n_budgets; i++)
        if (strcmp(cfg->budget_sub[i], sub) == 0)
            return cfg->budget_usd[i];
    return cfg->default_budget_usd;
}

int ac_config_finish(ac_config_t *cfg, ac_err_t *err)
{
    const char *env_secret = getenv("AGENTCORE_JWT_SECRET");
    if (env_secret != NULL && env_secret[0] != '\0') {
        ac_config_set_str(&cfg->auth_alg, "HS256");
        ac_config_set_str(&cfg->auth_secret, env_secret);
    }
    const char *env_dsn = getenv("AGENTCORE_STORE_DSN");
    if (env_dsn != NULL && env_dsn[0] != '\0') {
        ac_config_set_str(&cfg->store_dsn, env_dsn);
        cfg->store_backend = AC_STORE_POSTGRESQL;
    }
    if (cfg->store_backend == AC_STORE_POSTGRESQL && (cfg->store_dsn == NULL || cfg->store_dsn[0] == '\0'))
        return ac_err_set(err, AC_ERR_INVALID_PARAMS,
                          "store.backend = \"postgresql\" needs store.dsn (or AGENTCORE_STORE_DSN)");
    if (cfg->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = n > 0 ? (int)n : 1;
    }
    const char *alg = cfg->auth_alg;
    if (strcmp(alg, "HS256") == 0) {
        if (cfg->auth_secret == NULL)
            return ac_err_set(err, AC_ERR_INVALID_PARAMS,
                              "no JWT secret: set AGENTCORE_JWT_SECRET or auth.secret in the config");
    } else if (strcmp(alg, "RS256") == 0 || strcmp(alg, "ES256") == 0) {
        if (cfg->auth_public_key_file == NULL)
            return ac_err_set(err, AC_ERR_INVALID_PARAMS, "auth.alg %s needs auth.public_key_file", alg);
    } else {
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "auth.alg must be HS256, RS256 or ES256, not '%s'", alg);
    }
    /* a binding must name plugins that exist: find out now, not at the first job */
    for (int i = 0; i < cfg->n_agents; i++) {
        const ac_agent_binding_t *b = &cfg->agents[i];
        const char *kinds[3] = {"agents", "rewards", "validators"}, *names[3] = {b->agent, b->reward, b->validator};
        for (int k = 0; k < 3; k++) {
            char path[4096], searched[1024];
            if (strchr(names[k], '/') != NULL || strchr(names[k], ':') != NULL ||
                !ac_lua_plugin_find(cfg->plugins_dir, kinds[k], names[k], path, sizeof path, searched, sizeof searched))
                return ac_err_set(err, AC_ERR_INVALID_PARAMS, "agents[\"%s\"]: no %s/%s.lua (searched %s)", b->id,
                                  kinds[k], names[k], searched);
        }
    }
    if (cfg->webhook_secret != NULL && strncmp(cfg->webhook_secret, "whsec_", 6) != 0)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "webhooks.secret must look like whsec_<base64>");
    if (json_array_size(cfg->webhook_subscriptions) > 0 && cfg->webhook_secret == NULL)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "webhooks.subscriptions need webhooks.secret to sign with");
    if (cfg->tls_listen != NULL && (cfg->tls_cert_file == NULL || cfg->tls_key_file == NULL))
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "tls.listen needs tls.cert_file and tls.key_file");
    return 0;
}
